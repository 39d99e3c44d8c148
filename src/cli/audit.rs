//! `m365sync audit`: the append-only audit log.
use std::io::Write;

use anyhow::Result;
use clap::Args;

use crate::config::Settings;

use super::open_directory_read_only;

#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
}

/// `m365sync audit [--json]`.
pub fn audit(settings: &Settings, args: &AuditArgs, out: &mut dyn Write) -> Result<()> {
    let d = open_directory_read_only(settings)?;
    for a in d.audit_list()? {
        if args.json {
            serde_json::to_writer(&mut *out, &a)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "{} {:<24} {:<13} {:<40} {:<7} {} {}",
                a.at,
                a.actor,
                a.action,
                a.target,
                a.outcome,
                a.request_id.as_deref().unwrap_or("-"),
                a.detail.as_deref().unwrap_or("")
            )?;
        }
    }
    Ok(())
}
