//! `m365sync errors`: the Errors tab, headless: import failures, the failures of the last
//! runs, passwords never delivered, and the plan's findings (held-back users and groups), from
//! the same pipeline as `sync --dry-run` and the console.
use std::io::Write;

use anyhow::Result;
use clap::Args;

use crate::config::Settings;
use crate::diagnose::{self, Diagnosis};
use crate::directory::Directory;

use super::{pipeline, unix_now, SecretArgs};

#[derive(Debug, Clone, Args)]
pub struct ErrorsArgs {
    /// One JSON object per line (the diagnosis: kind, title, what, why, steps, fix, raw)
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub secret: SecretArgs,
}

/// `m365sync errors`: the Errors tab, headless.
pub async fn errors(settings: &Settings, args: &ErrorsArgs, out: &mut dyn Write) -> Result<()> {
    let db = settings.db_path();
    let (failures, latest, undelivered) =
        crate::failure::blocking("reading the directory", move || {
            let d = Directory::open_read_only(&db)?;
            Ok((
                d.failures()?,
                d.journal_latest()?,
                d.passwords_undelivered()?,
            ))
        })
        .await?;
    let mut found: Vec<(&'static str, Diagnosis)> = Vec::new();
    for f in &failures {
        found.push((
            "import",
            diagnose::diagnose_import(&f.kind, &f.user_principal_name, &f.message, Some(&f.at)),
        ));
    }
    for (_, d) in crate::sync::pipeline::journal_failures(&latest) {
        found.push(("sync", d));
    }
    for u in &undelivered {
        found.push(("sync", diagnose::diagnose_undelivered(&u.email, &u.at)));
    }
    // The plan's findings need the tenant (domains, deleted users): only when signed in.
    let budget = crate::sync::apply::WriteBudget::GRAPH;
    match pipeline(settings, args.secret.secret()?, budget).await {
        Ok(p) => {
            let view = p.plan_only(None, unix_now()).await?;
            for (issue, subject, _) in crate::sync::pipeline::findings(&view) {
                found.push(("preflight", diagnose::diagnose_issue(&issue, subject)));
            }
            if view.unchecked > 0 {
                eprintln!(
                    "note: {} an interrupted run left are not checked yet; `m365sync sync \
                     --dry-run` checks them against the tenant",
                    crate::format::count(view.unchecked, "op", None)
                );
            }
        }
        Err(e) => eprintln!("note: the plan's findings are left out ({e:#})"),
    }
    for (source, d) in &found {
        if args.json {
            let mut v = serde_json::to_value(d)?;
            v["source"] = serde_json::Value::from(*source);
            serde_json::to_writer(&mut *out, &v)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "[{}] {} ({source}): {}",
                d.kind,
                d.subject.label(),
                d.title
            )?;
            for (n, step) in d.steps.iter().enumerate() {
                writeln!(out, "    {}. {step}", n + 1)?;
            }
            if let Some(raw) = &d.raw {
                writeln!(
                    out,
                    "    raw: {} {} (request-id {})",
                    raw.code,
                    raw.message,
                    raw.request_id.as_deref().unwrap_or("-")
                )?;
            }
        }
    }
    if !args.json {
        writeln!(out, "{}", crate::format::count(found.len(), "error", None))?;
    }
    Ok(())
}
