//! `m365sync sync --dry-run|--apply`: make the tenant match the directory, through the same
//! pipeline as the console (`sync::pipeline`).
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::config::Settings;
use crate::sync::apply::WriteBudget;
use crate::sync::apply::{
    ApplyEvent, ApplyOptions, IssuedPassword, Outcome, PasswordSink, Stopped,
};
use crate::sync::pipeline::{Confirm, PlanView};

use crate::text::clean;

use super::{pipeline, unix_now, SecretArgs, UsageError};

#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    /// Print the plan and change nothing (one of --dry-run or --apply is needed)
    #[arg(long, conflicts_with = "apply")]
    pub dry_run: bool,
    /// Apply the plan (after checking what an interrupted run left in the journal)
    #[arg(long, conflicts_with = "offline")]
    pub apply: bool,
    /// Confirm a plan that trips the mass-change guard by giving its number of changes
    #[arg(long, value_name = "COUNT")]
    pub yes_block: Option<usize>,
    /// Confirm a plan that deletes more accounts than the delete guard's limit (default 10)
    /// by giving its number of deletes
    #[arg(long, value_name = "COUNT")]
    pub yes_delete: Option<usize>,
    /// Confirm a plan that blocks the signed-in account (or the service account)
    #[arg(long)]
    pub yes_block_self: bool,
    /// Write generated passwords to this new CSV file (mode 0600) instead of printing them;
    /// an existing file is refused before anything is sent
    #[arg(long, value_name = "FILE")]
    pub handoff: Option<PathBuf>,
    /// The tenant's write budget: writes per window (Graph: 3000 per 150 s)
    #[arg(long, default_value_t = WriteBudget::GRAPH.writes, env = "M365SYNC_WRITE_BUDGET")]
    pub write_budget: u32,
    /// The write budget's window, seconds
    #[arg(long, default_value_t = WriteBudget::GRAPH.window.as_secs(), env = "M365SYNC_BUDGET_WINDOW_SECS")]
    pub budget_window_secs: u64,
    /// Batches in flight at most
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Stop a run that finishes no change for this many seconds (throttled without end)
    #[arg(long, default_value_t = 900, env = "M365SYNC_STALL_SECS")]
    pub stall_secs: u64,
    /// The tenant's users: a delta round from the saved copy (default), `--fresh` or
    /// `--offline` (the saved copy as it is: --dry-run only, nothing is sent on stale data)
    #[command(flatten)]
    pub freshness: super::FreshnessArgs,
    #[command(flatten)]
    pub secret: SecretArgs,
}

/// Passwords printed on stdout, each as soon as its account exists.
struct StdoutSink {
    header: bool,
}

impl PasswordSink for StdoutSink {
    fn deliver(&mut self, p: &IssuedPassword) -> Result<(), String> {
        let mut out = std::io::stdout().lock();
        let r = (|| {
            if !self.header {
                writeln!(
                    out,
                    "Temporary passwords (shown once; users must change them at first sign-in):"
                )?;
                self.header = true;
            }
            writeln!(out, "{}\t{}", clean(&p.upn), p.password)?;
            out.flush()
        })();
        r.map_err(|e| format!("stdout: {e}"))
    }
    fn describe(&self) -> String {
        "standard output".into()
    }
}

fn print_plan(view: &PlanView, budget: WriteBudget, out: &mut dyn Write) -> Result<()> {
    use crate::format::{count, duration};
    for v in &view.verified {
        writeln!(out, "checked: {}", clean(&v.describe()))?;
    }
    if let Some(who) = &view.running {
        writeln!(
            out,
            "note: {}; what it has not finished was not checked, and applying must wait for it",
            clean(who)
        )?;
    }
    // Grouped by cause, as the console's preview lists them (one function groups both).
    for group in crate::sync::causes::by_cause(view) {
        writeln!(out, "== {} ==", clean(&group.title()))?;
        for r in group.ops {
            match r {
                crate::sync::causes::OpRef::User(i) => {
                    let op = &view.plan.ops[i];
                    writeln!(
                        out,
                        "{:<27} {} {}",
                        op.kind.label(),
                        crate::text::pad(&op.email, 40),
                        clean(&op.reason)
                    )?;
                    // The field-level diff an update (or a takeover, a re-enable) applies.
                    if op.kind != crate::sync::plan::OpKind::Create {
                        for c in &op.changes {
                            writeln!(out, "{:<27} {}", "", clean(&c.describe()))?;
                        }
                    }
                }
                crate::sync::causes::OpRef::Group(i) => {
                    let op = &view.group_ops[i];
                    let target = match &op.member {
                        Some(m) => format!("{}: {}", op.group_name, m.email),
                        None => format!("{} ({})", op.group_name, op.mail_nickname),
                    };
                    writeln!(
                        out,
                        "{:<27} {} {}",
                        op.kind.label(),
                        crate::text::pad(&target, 40),
                        clean(&op.reason)
                    )?;
                }
            }
        }
    }
    if view.in_sync() {
        writeln!(out, "Nothing to do: the tenant matches the directory.")?;
    } else if view.is_empty() {
        writeln!(
            out,
            "Nothing can be sent: {} held back (see below).",
            count(view.held_count(), "change is", Some("changes are"))
        )?;
    } else {
        let parts: Vec<String> = crate::sync::ops::Kind::all()
            .filter_map(|k| {
                let n = view.count(k);
                (n > 0).then(|| format!("{n} {}", k.label()))
            })
            .collect();
        let total = view.plan.ops.len() + view.group_ops.len();
        writeln!(out, "{}: {}", count(total, "op", None), parts.join(", "))?;
        writeln!(
            out,
            "ETA: about {} for {} at the write budget of {} per {} s",
            duration(view.eta),
            count(view.writes as usize, "write", None),
            count(budget.writes as usize, "write", None),
            budget.window.as_secs()
        )?;
    }
    for w in &view.warnings {
        writeln!(out, "warning: {}", clean(w))?;
    }
    for (issue, _) in view
        .issues
        .iter()
        .filter(|(i, _)| i.kind == "synced-from-on-premises")
    {
        writeln!(out, "not edited: {}", issue.message)?;
    }
    if let Some(t) = &view.guard {
        writeln!(out, "guard: {}", clean(&t.message))?;
    }
    if let Some(t) = &view.delete_guard {
        writeln!(out, "guard: {}", clean(&t.message))?;
    }
    if let Some(s) = &view.self_block {
        writeln!(out, "guard: {}", clean(&s.message))?;
    }
    for line in &view.deprovision.scheduled {
        writeln!(out, "scheduled: {}", clean(line))?;
    }
    for line in &view.deprovision.cancelled {
        writeln!(out, "cancelled: {}", clean(line))?;
    }
    for f in crate::sync::pipeline::findings(view) {
        let (Some(op), issue) = (f.op, f.issue) else {
            continue;
        };
        let d = crate::diagnose::diagnose_issue(&issue, f.subject);
        let fix = match &op {
            crate::sync::ops::AnyOp::Group(_) => issue
                .suggestion
                .as_deref()
                .map(|s| format!("use \"{s}\""))
                .unwrap_or_else(|| "see `m365sync errors`".into()),
            crate::sync::ops::AnyOp::User(_) => d
                .steps
                .first()
                .cloned()
                .unwrap_or_else(|| "see `m365sync errors`".into()),
        };
        let target = match &op {
            crate::sync::ops::AnyOp::Group(g) => format!("\"{}\"", g.group_name),
            other => other.target(),
        };
        writeln!(
            out,
            "held back: {} {}: {} ({}); fix: {}",
            op.kind().label(),
            clean(&target),
            clean(&d.title),
            clean(&issue.message),
            clean(&fix),
        )?;
    }
    for (op, issue) in &view.member_held {
        let who = op.member.as_ref().map(|m| m.email.as_str()).unwrap_or("?");
        writeln!(
            out,
            "held back: {} {}: {}: waits for {} ({})",
            op.kind.label(),
            clean(&op.group_name),
            clean(who),
            clean(who),
            clean(&issue.message)
        )?;
    }
    Ok(())
}

/// Stop on Ctrl-C, SIGTERM and SIGHUP as on Ctrl-C: no new writes, in-flight ones finish and
/// are recorded, passwords written. The handlers are in place when this returns (a signal
/// right after is not the default kill).
fn stop_on_signals(cancel: tokio_util::sync::CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            cancel.cancel();
        });
        return;
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
        eprintln!("stopping: no new writes are sent; writes on the wire finish");
        cancel.cancel();
    });
}

/// `m365sync sync`: exit 0 when every op is done, 2 when some failed, were held back or not
/// sent, 1 on errors, 75 when another apply holds the lock, 130 when stopped by a signal.
pub async fn sync(settings: &Settings, args: &SyncArgs, out: &mut dyn Write) -> Result<u8> {
    if !args.dry_run && !args.apply {
        return Err(UsageError(
            "use --dry-run or --apply: `m365sync sync --dry-run` prints the plan and changes \
             nothing, `m365sync sync --apply` applies it"
                .into(),
        )
        .into());
    }
    let budget = WriteBudget {
        writes: args.write_budget.max(1),
        window: Duration::from_secs(args.budget_window_secs.max(1)),
    };
    // The hand-off file first: a path that cannot work is found out before any write.
    let sink: Box<dyn PasswordSink> = match (&args.handoff, args.apply) {
        (Some(path), true) => Box::new(
            crate::handoff::HandoffFile::create(path)
                .map_err(|e| crate::failure::Failure::file(path, e))?,
        ),
        _ => Box::new(StdoutSink { header: false }),
    };
    // A signal from here on stops the command cleanly: before the run nothing has been sent
    // (the plan is dropped, exit 130); during it, as below.
    let cancel = tokio_util::sync::CancellationToken::new();
    stop_on_signals(cancel.clone());
    let prepared = async {
        let pipeline = pipeline(settings, args.secret.secret()?, budget).await?;
        // An apply holds the lock from before the plan to the end of the run.
        let lock = if args.apply {
            Some(pipeline.lock("sync --apply")?)
        } else {
            None
        };
        // The tenant: the saved copy brought up to date under the lock (an apply plans on
        // nothing older), or as saved with --offline (a dry run that reads no user from Graph
        // and leaves the journal unchecked).
        let tenant = super::tenant::tenant(settings, &pipeline.graph, &args.freshness).await?;
        let view = if args.freshness.offline {
            pipeline.plan_only(Some(tenant), unix_now()).await?
        } else {
            pipeline
                .prepare(lock.as_ref(), Some(tenant), unix_now())
                .await?
        };
        Ok::<_, anyhow::Error>((pipeline, lock, view))
    };
    let (pipeline, lock, view) = tokio::select! {
        r = prepared => r?,
        _ = cancel.cancelled() => {
            eprintln!("stopped before the run: nothing was sent");
            return Ok(130);
        }
    };
    if view.unchecked > 0 {
        eprintln!(
            "note: {} not checked (--offline); a sync without it checks them",
            crate::format::count(
                view.unchecked,
                "op an interrupted run left is",
                Some("ops an interrupted run left are")
            )
        );
    }
    print_plan(&view, budget, out)?;
    let undelivered = {
        let db = settings.db_path();
        crate::failure::blocking("reading the journal", move || {
            crate::directory::Directory::open(&db)?.passwords_undelivered()
        })
        .await?
    };
    for u in &undelivered {
        let email = clean(&u.email);
        writeln!(
            out,
            "note: the account of {email} was created but its temporary password was never \
             delivered; set one with `m365sync password set {email}`"
        )?;
    }
    out.flush()?;
    let mut code = if view.held_count() > 0 || !undelivered.is_empty() {
        2
    } else {
        0
    };
    let Some(lock) = lock else {
        return Ok(code);
    };
    if view.is_empty() {
        return Ok(code);
    }
    let confirm = Confirm {
        yes_block: args.yes_block,
        yes_block_self: None,
        yes_block_self_any: args.yes_block_self,
        yes_delete: args.yes_delete,
    };
    crate::sync::pipeline::check_confirmed(&view, &confirm)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<ApplyEvent>();
    let printer = tokio::spawn(async move {
        let mut last = std::time::Instant::now() - Duration::from_secs(10);
        while let Some(ev) = rx.recv().await {
            match ev {
                ApplyEvent::Progress(p)
                    if last.elapsed() >= Duration::from_secs(1) || p.remaining == 0 =>
                {
                    last = std::time::Instant::now();
                    eprintln!(
                        "progress: {} done, {} failed, {} not sent, {} remaining, {} throttled, \
                         {:.1} ops/s",
                        p.done, p.failed, p.not_sent, p.remaining, p.throttled, p.rate
                    );
                }
                ApplyEvent::OpFailed { op, error } => {
                    eprintln!(
                        "failed: {} {}: {}",
                        op.kind().label(),
                        clean(&op.target()),
                        clean(&error.to_string())
                    );
                }
                ApplyEvent::OpNotSent { op, why } => {
                    eprintln!(
                        "not sent: {} {}: {}",
                        op.kind().label(),
                        clean(&op.target()),
                        clean(&why.to_string())
                    );
                }
                _ => {}
            }
        }
    });
    let opts = ApplyOptions {
        max_concurrency: args.concurrency.max(1),
        stall_limit: Duration::from_secs(args.stall_secs.max(1)),
        ..Default::default()
    };
    let described = sink.describe();
    let result = pipeline
        .apply(&lock, &view, &confirm, opts, sink, tx, cancel.clone())
        .await;
    let _ = printer.await;
    drop(lock);
    let s = result?;
    writeln!(
        out,
        "{} done, {} failed, {} not sent{}",
        s.done,
        s.failed,
        s.cancelled,
        if s.cancelled > 0 { " (stopped)" } else { "" }
    )?;
    if !s.passwords.is_empty() && args.handoff.is_some() {
        writeln!(
            out,
            "{} written to {described} (mode 0600)",
            crate::format::count(s.passwords.len(), "temporary password", None)
        )?;
    }
    for e in &s.passwords_lost {
        let e = clean(e);
        writeln!(
            out,
            "note: the account of {e} was created but its temporary password could not be \
             delivered to {described}; set one with `m365sync password set {e}`"
        )?;
    }
    match &s.stopped {
        Some(Stopped::Stalled { after, throttled }) => writeln!(
            out,
            "stopped: no change finished for {} (throttled {throttled} times); what was not \
             sent is planned again by the next sync",
            crate::format::duration(*after)
        )?,
        Some(Stopped::SinkFailed(e)) => writeln!(out, "stopped: {}", clean(e))?,
        Some(Stopped::Cancelled) | None => {}
    }
    let unfinished = s
        .results
        .iter()
        .any(|r| !matches!(r.outcome, Outcome::Done));
    if unfinished || !s.passwords_lost.is_empty() {
        code = super::exit::INCOMPLETE;
    }
    if s.stopped == Some(Stopped::Cancelled) {
        code = super::exit::INTERRUPTED;
    }
    Ok(code)
}
