//! `m365sync sync --dry-run|--apply`: make the tenant match the directory.
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::config::Settings;
use crate::directory::Directory;
use crate::graph::GraphClient;

use super::{session, unix_now, SecretArgs};

#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    /// Print the plan and change nothing
    #[arg(long, required_unless_present = "apply", conflicts_with = "apply")]
    pub dry_run: bool,
    /// Apply the plan (after finishing what an interrupted run left in the journal)
    #[arg(long)]
    pub apply: bool,
    /// Confirm a plan that trips the mass-change guard by giving its number of blocks
    #[arg(long, value_name = "COUNT")]
    pub yes_block: Option<usize>,
    /// Write generated passwords to this new CSV file (mode 0600) instead of printing them;
    /// an existing file is refused before anything is sent
    #[arg(long, value_name = "FILE")]
    pub handoff: Option<PathBuf>,
    /// The tenant's write budget: writes per window (Graph: 3000 per 150 s)
    #[arg(long, default_value_t = 3000, env = "M365SYNC_WRITE_BUDGET")]
    pub write_budget: u32,
    /// The write budget's window, seconds
    #[arg(long, default_value_t = 150, env = "M365SYNC_BUDGET_WINDOW_SECS")]
    pub budget_window_secs: u64,
    /// Batches in flight at most
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    #[command(flatten)]
    pub secret: SecretArgs,
}

fn human(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s < 120 {
        format!("{s} s")
    } else if s < 7200 {
        format!("{} min", s.div_ceil(60))
    } else {
        format!("{:.1} h", s as f64 / 3600.0)
    }
}

fn print_plan(
    plan: &crate::sync::plan::Plan,
    args: &SyncArgs,
    guard: &crate::sync::plan::GuardConfig,
    group_ops: usize,
    out: &mut dyn Write,
) -> Result<Option<crate::sync::plan::GuardTrip>> {
    for op in &plan.ops {
        writeln!(
            out,
            "{:<27} {:<40} {}",
            op.kind.label(),
            op.email,
            op.reason
        )?;
    }
    let counts = plan.counts();
    if counts.is_empty() && group_ops == 0 {
        writeln!(out, "Nothing to do: the tenant matches the directory.")?;
    } else if counts.is_empty() {
    } else {
        let parts: Vec<String> = counts
            .iter()
            .map(|(k, n)| format!("{n} {}", k.label()))
            .collect();
        writeln!(out, "{} ops: {}", plan.ops.len(), parts.join(", "))?;
        let eta = plan.eta(
            args.write_budget,
            std::time::Duration::from_secs(args.budget_window_secs),
        );
        writeln!(
            out,
            "ETA: about {} at the write budget of {} writes per {} s",
            human(eta),
            args.write_budget,
            args.budget_window_secs
        )?;
    }
    for w in plan.warnings() {
        writeln!(out, "warning: {w}")?;
    }
    let trip = plan.guard(guard);
    if let Some(t) = &trip {
        writeln!(out, "guard: {}", t.message)?;
    }
    Ok(trip)
}

fn print_group_plan(ops: &[crate::sync::groups::GroupOp], out: &mut dyn Write) -> Result<()> {
    use crate::sync::groups::GroupOpKind;
    for op in ops {
        let target = match &op.member {
            Some(m) => format!("{}: {}", op.group_name, m.email),
            None => format!("{} ({})", op.group_name, op.mail_nickname),
        };
        writeln!(out, "{:<27} {:<40} {}", op.kind.label(), target, op.reason)?;
    }
    if !ops.is_empty() {
        let parts: Vec<String> = GroupOpKind::ALL
            .iter()
            .filter_map(|k| {
                let n = ops.iter().filter(|o| o.kind == *k).count();
                (n > 0).then(|| format!("{n} {}", k.label()))
            })
            .collect();
        writeln!(out, "{} group ops: {}", ops.len(), parts.join(", "))?;
    }
    Ok(())
}

/// `m365sync sync`: exit code 0 when every op is done, 2 when some failed, 1 on errors.
pub async fn sync(settings: &Settings, args: &SyncArgs, out: &mut dyn Write) -> Result<u8> {
    use crate::sync::apply::{self, ApplyEvent, ApplyOptions};
    // The hand-off file is created before anything is sent: an existing file, a symlink or a
    // missing folder is refused now, not after accounts were created.
    let mut handoff = match (&args.handoff, args.apply) {
        (Some(path), true) => Some(crate::handoff::HandoffFile::create(path)?),
        _ => None,
    };
    let session = session(settings, args.secret.secret()?).await?;
    let actor = session.identity().await.name;
    let graph = GraphClient::new(settings.http_client()?, &settings.graph_url, session);
    let db = settings.db_path();
    let opts = ApplyOptions {
        actor,
        write_budget: args.write_budget,
        budget_window: std::time::Duration::from_secs(args.budget_window_secs),
        max_concurrency: args.concurrency.max(1),
        ..Default::default()
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<ApplyEvent>();
    let printer = tokio::spawn(async move {
        let mut last = std::time::Instant::now() - std::time::Duration::from_secs(10);
        let mut failures = Vec::new();
        while let Some(ev) = rx.recv().await {
            match ev {
                ApplyEvent::Progress(p)
                    if last.elapsed() >= std::time::Duration::from_secs(1) || p.remaining == 0 =>
                {
                    last = std::time::Instant::now();
                    eprintln!(
                        "progress: {} done, {} failed, {} remaining, {} throttled, {:.1} ops/s",
                        p.done, p.failed, p.remaining, p.throttled, p.rate
                    );
                }
                ApplyEvent::OpFailed { op, error } => {
                    eprintln!("failed: {} {}: {error}", op.kind.label(), op.email);
                    failures.push(op.email);
                }
                _ => {}
            }
        }
        failures
    });
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("stopping: no new writes are sent; writes on the wire finish");
                cancel.cancel();
            }
        });
    }
    let mut failed = 0;
    let mut passwords = Vec::new();
    let mut lost = Vec::new();
    let unfinished = {
        let db = db.clone();
        tokio::task::spawn_blocking(move || Directory::open(&db)?.journal_unfinished()).await??
    };
    if args.apply && !unfinished.is_empty() {
        eprintln!(
            "resuming {} ops an interrupted run left in the journal",
            unfinished.len()
        );
        let s = apply::resume(
            graph.clone(),
            db.clone(),
            opts.clone(),
            tx.clone(),
            cancel.clone(),
        )
        .await?;
        failed += s.failed;
        passwords.extend(s.passwords);
        lost.extend(s.passwords_lost);
    }
    if args.dry_run && !unfinished.is_empty() {
        writeln!(
            out,
            "note: {} ops of an interrupted run are unfinished in the journal; `sync --apply` \
             finishes them first (checking the tenant before sending anything again)",
            unfinished.len()
        )?;
    }
    let snapshot = apply::snapshot(&graph)
        .await
        .context("reading the tenant (users, deleted users, domains)")?;
    let tenant = settings.tenant()?.to_string();
    let (users, policy, guard, preflight_opts) = {
        let db = db.clone();
        tokio::task::spawn_blocking(move || -> Result<_> {
            let d = Directory::open(&db)?;
            let (p, g) = d.policy()?;
            let domains = d.domain_settings(&tenant)?;
            let opts = crate::sync::preflight::PreflightOptions {
                enabled_domains: domains.enabled,
                default_domain: domains.default,
                upn_overrides: d.upn_overrides()?,
                ..Default::default()
            };
            Ok((d.users()?, p, g, opts))
        })
        .await??
    };
    let plan = crate::sync::plan::plan(&users, &snapshot, &policy, unix_now());
    // Preflight: what Graph would refuse is held back and never sent.
    let (plan, held, _) =
        crate::sync::preflight::check_plan(plan, &users, &snapshot, &preflight_opts);
    let (group_plan, groups_held) = crate::sync::groups::plan_from_directory(&graph, db.clone())
        .await
        .context("reading the tenant's groups")?;
    let trip = print_plan(&plan, args, &guard, group_plan.len(), out)?;
    if args.dry_run {
        print_group_plan(&group_plan, out)?;
    }
    for (op, issue) in &groups_held {
        let d = crate::diagnose::diagnose_issue(
            issue,
            crate::diagnose::Subject::Group(op.group_name.clone()),
        );
        writeln!(
            out,
            "held back: {} \"{}\": {} ({}); fix: {}",
            op.kind.label(),
            op.group_name,
            d.title,
            issue.message,
            issue
                .suggestion
                .as_deref()
                .map(|s| format!("use \"{s}\""))
                .unwrap_or_else(|| "see `m365sync errors`".into())
        )?;
    }
    for (op, issue) in &held {
        let d = crate::diagnose::diagnose_issue(
            issue,
            crate::diagnose::Subject::User(op.email.clone()),
        );
        writeln!(
            out,
            "held back: {} {}: {} ({}); fix: {}",
            op.kind.label(),
            op.email,
            d.title,
            issue.message,
            d.steps
                .first()
                .map(String::as_str)
                .unwrap_or("see `m365sync errors`")
        )?;
    }
    out.flush()?;
    let mut code = if held.is_empty() && groups_held.is_empty() {
        0
    } else {
        2
    };
    if args.apply && !plan.ops.is_empty() {
        if let Some(t) = &trip {
            if args.yes_block != Some(t.blocks) {
                drop(tx);
                let _ = printer.await;
                bail!(
                    "refused: the plan blocks sign-in for {} users; run again with --yes-block {} \
                     if that is what you want",
                    t.blocks,
                    t.blocks
                );
            }
        }
        let s = apply::apply(
            graph.clone(),
            db.clone(),
            plan,
            opts.clone(),
            tx.clone(),
            cancel.clone(),
        )
        .await?;
        failed += s.failed;
        passwords.extend(s.passwords);
        lost.extend(s.passwords_lost);
        writeln!(
            out,
            "{} done, {} failed, {} not sent (stopped)",
            s.done, s.failed, s.cancelled
        )?;
        if s.cancelled > 0 {
            code = 2;
        }
    }
    if args.apply && !cancel.is_cancelled() {
        // Second phase: groups, planned again now that the users' accounts exist.
        let (gplan, s) = crate::sync::groups::sync_groups(&graph, db.clone(), &opts.actor)
            .await
            .context("syncing the groups")?;
        if !gplan.is_empty() {
            print_group_plan(&gplan, out)?;
            for (op, e) in &s.failures {
                eprintln!(
                    "failed: {} {}{}: {e}",
                    op.kind.label(),
                    op.group_name,
                    op.member
                        .as_ref()
                        .map(|m| format!(" {}", m.email))
                        .unwrap_or_default()
                );
            }
            writeln!(out, "groups: {} done, {} failed", s.done, s.failed)?;
            failed += s.failed;
        }
    }
    drop(tx);
    let _ = printer.await;
    if !passwords.is_empty() {
        match &mut handoff {
            Some(h) => {
                for p in &passwords {
                    h.write(p)?;
                }
                writeln!(
                    out,
                    "{} temporary password{} written to {} (mode 0600)",
                    passwords.len(),
                    if passwords.len() == 1 { "" } else { "s" },
                    h.path().display()
                )?;
            }
            None => {
                writeln!(
                    out,
                    "Temporary passwords (shown once; users must change them at first sign-in):"
                )?;
                for p in &passwords {
                    writeln!(out, "{}\t{}", p.upn, p.password)?;
                }
            }
        }
    }
    for e in &lost {
        writeln!(
            out,
            "note: {e} was created by an interrupted run whose temporary password was lost; \
             set one with `m365sync password set {e}`"
        )?;
    }
    if failed > 0 {
        code = 2;
    }
    Ok(code)
}
