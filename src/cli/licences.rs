//! `m365sync licences` (the Licences tab, headless: SKUs with seats, what m365sync assigns per
//! group and user, users with licence errors) and `m365sync licence assign|unassign` (the
//! default SKU set of a directory group or user; nothing is sent until `sync`).
use std::io::Write;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::config::Settings;
use crate::directory::{LicenceChange, LicenceOwner, LicencePick};
use crate::format::thousands;
use crate::text::clean;

use super::{open_directory, pipeline, unix_now, SecretArgs, UsageError};

#[derive(Debug, Clone, Args)]
pub struct LicencesArgs {
    /// One JSON object: skus (seats enabled, warning, suspended, consumed, free, planned,
    /// short), assignments (per group and user), errors (users with licence errors)
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub secret: SecretArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub enum LicenceCommand {
    /// Add a SKU to the default licences of a directory group or user (replaces the same
    /// SKU's disabled plans); bound accounts get it at the next sync
    Assign(LicenceTarget),
    /// Remove a SKU from the default licences of a directory group or user; the next sync
    /// removes it from the accounts m365sync gave it to (never a licence a group in Microsoft
    /// 365 gives)
    Unassign(LicenceTarget),
}

#[derive(Debug, Clone, Args)]
pub struct LicenceTarget {
    /// The directory group
    #[arg(
        long,
        value_name = "NAME",
        required_unless_present = "user",
        conflicts_with = "user"
    )]
    pub group: Option<String>,
    /// The directory user
    #[arg(long, value_name = "EMAIL")]
    pub user: Option<String>,
    /// The SKU part number, then service plans to turn off: SPE_E3,-EXCHANGE_S_ENTERPRISE
    /// (see `m365sync licences`)
    #[arg(long, value_name = "PART[,-PLAN...]")]
    pub sku: String,
}

/// `m365sync licence assign|unassign`.
pub fn licence(settings: &Settings, cmd: &LicenceCommand, out: &mut dyn Write) -> Result<()> {
    let (t, assign) = match cmd {
        LicenceCommand::Assign(t) => (t, true),
        LicenceCommand::Unassign(t) => (t, false),
    };
    let pick = LicencePick::parse(&t.sku).map_err(|e| UsageError(format!("--sku: {e}")))?;
    let mut d = open_directory(settings)?;
    let (owner, name) = match (&t.group, &t.user) {
        (Some(g), _) => match d.find_group(g)? {
            Some(g) => (LicenceOwner::Group(g.id), format!("group \"{}\"", g.name)),
            None => {
                return Err(UsageError(format!(
                    "no directory group is named \"{}\" (see `m365sync groups`)",
                    clean(g)
                ))
                .into())
            }
        },
        (None, Some(e)) => match d.find_by_email(e)? {
            Some(u) => (LicenceOwner::User(u.id), u.email.clone()),
            None => {
                return Err(UsageError(format!(
                    "no directory user has the email {} (see `m365sync directory list`)",
                    clean(e)
                ))
                .into())
            }
        },
        (None, None) => return Err(UsageError("give --group NAME or --user EMAIL".into()).into()),
    };
    let change = if assign {
        LicenceChange::Assign(pick)
    } else {
        LicenceChange::Unassign(pick.sku)
    };
    writeln!(out, "{}", d.change_licence(owner, &name, &change)?)?;
    writeln!(
        out,
        "nothing is sent yet: `m365sync sync --dry-run` shows what changes, `sync --apply` applies it"
    )?;
    Ok(())
}

/// `m365sync licences [--json]`.
pub async fn licences(settings: &Settings, args: &LicencesArgs, out: &mut dyn Write) -> Result<()> {
    let budget = crate::sync::apply::WriteBudget::GRAPH;
    let p = pipeline(settings, args.secret.secret()?, budget).await?;
    let (report, _view) = p.licence_report(unix_now()).await?;
    if args.json {
        serde_json::to_writer(&mut *out, &report)?;
        writeln!(out)?;
        return Ok(());
    }
    write_report(&report, out)
}

/// The report as text.
pub fn write_report(r: &crate::sync::licences::LicenceReport, out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "{:<24} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8}  STATUS",
        "SKU", "ENABLED", "WARNING", "SUSPENDED", "IN USE", "FREE", "PLANNED"
    )?;
    for s in &r.skus {
        let short = if s.short > 0 {
            format!(" ({} held back: no seat)", thousands(s.short as usize))
        } else {
            String::new()
        };
        writeln!(
            out,
            "{:<24} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8}  {}{}{short}",
            clean(&s.sku),
            s.enabled,
            s.warning,
            s.suspended,
            s.consumed,
            s.free,
            s.planned,
            clean(&s.status),
            if s.applies_to.eq_ignore_ascii_case("User") {
                ""
            } else {
                " (not for users)"
            },
        )?;
    }
    writeln!(out)?;
    if r.assignments.is_empty() {
        writeln!(
            out,
            "m365sync assigns no licence (`m365sync licence assign --group NAME --sku PART`)"
        )?;
    } else {
        writeln!(out, "m365sync assigns:")?;
        for a in &r.assignments {
            writeln!(
                out,
                "  {} {}: {} ({})",
                a.owner,
                clean(&a.name),
                clean(&a.licences.join("; ")),
                crate::format::count(a.users, "user", None)
            )?;
        }
    }
    writeln!(out)?;
    if r.errors.is_empty() {
        writeln!(out, "no user has a licence error")?;
    } else {
        writeln!(out, "users with licence errors:")?;
        for e in &r.errors {
            writeln!(
                out,
                "  {} [{}] {}: {}",
                clean(&e.email),
                e.kind,
                clean(&e.sku),
                clean(&e.message)
            )?;
        }
    }
    Ok(())
}
