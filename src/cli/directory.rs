//! `m365sync directory import|list|policy` and `bind`/`unbind`: the local directory.
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use crate::config::Settings;

use super::{open_directory, open_directory_read_only};

#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Add or update directory users from a CSV with a header row: email, givenName, surname,
    /// displayName, optional jobTitle, department (other columns ignored)
    Import { file: PathBuf },
    /// Directory users with their binding state
    List {
        /// One JSON object per line
        #[arg(long)]
        json: bool,
    },
    /// Show or change the directory policy (password maximum age, mass-change guard)
    Policy(PolicyArgs),
}

#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// Block bound users whose directory password is older than this many days (0: never)
    #[arg(long)]
    pub password_max_age_days: Option<u32>,
    /// The guard refuses, unless confirmed, a plan blocking more users than this
    #[arg(long)]
    pub guard_max_blocks: Option<usize>,
    /// ... or more than this share (0..1) of the bound users
    #[arg(long)]
    pub guard_max_share: Option<f64>,
    /// The kind of M365 group a bound group is created as: security (default) or m365
    /// (a Microsoft 365 group); groups already created keep their kind
    #[arg(long, value_name = "KIND", value_parser = ["security", "m365"])]
    pub group_kind: Option<String>,
    /// Which attributes flow from the directory to the accounts, e.g.
    /// `jobTitle=ignore,department=sync` (every attribute syncs unless set to ignore)
    #[arg(long, value_name = "ATTR=sync|ignore,...")]
    pub attributes: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct SelectArgs {
    /// Directory users by email
    #[arg(required_unless_present_any = ["all", "from", "group"])]
    pub emails: Vec<String>,
    /// Every directory user
    #[arg(long, conflicts_with_all = ["emails", "from", "group"])]
    pub all: bool,
    /// A file with one email a line
    #[arg(long, value_name = "FILE", conflicts_with_all = ["emails", "group"])]
    pub from: Option<PathBuf>,
    /// A directory group by name instead of users (repeatable)
    #[arg(long = "group", value_name = "NAME", conflicts_with = "emails")]
    pub group: Vec<String>,
}

/// `m365sync directory import FILE.csv`. Exit 1 when a row was rejected.
pub fn directory_import(
    settings: &Settings,
    file: &std::path::Path,
    out: &mut dyn Write,
) -> Result<bool> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut d = open_directory(settings)?;
    let r = d.import_csv(std::io::BufReader::new(f))?;
    for rej in &r.rejected {
        writeln!(
            out,
            "{}:{}: rejected: {}",
            file.display(),
            rej.line,
            rej.reason
        )?;
    }
    writeln!(
        out,
        "{} added, {} updated, {} unchanged, {} rejected",
        r.added,
        r.updated,
        r.unchanged,
        r.rejected.len()
    )?;
    if r.groups_added > 0 || r.memberships_changed > 0 {
        writeln!(
            out,
            "groups: {} added, {} memberships changed",
            r.groups_added, r.memberships_changed
        )?;
    }
    Ok(r.rejected.is_empty())
}

/// `m365sync directory list [--json]`.
pub fn directory_list(settings: &Settings, json: bool, out: &mut dyn Write) -> Result<()> {
    let d = open_directory_read_only(settings)?;
    for u in d.users()? {
        if json {
            serde_json::to_writer(&mut *out, &u)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "{:<8} {:<24} {:<40} {:<30} {}",
                u.binding.label(),
                match u.reason() {
                    r if r.is_empty() => "-".to_string(),
                    r => r,
                },
                u.email,
                u.display_name,
                u.tenant_user_id.as_deref().unwrap_or("")
            )?;
        }
    }
    Ok(())
}

/// `m365sync directory policy`.
pub fn directory_policy(settings: &Settings, args: &PolicyArgs, out: &mut dyn Write) -> Result<()> {
    let mut d = open_directory(settings)?;
    let (mut policy, mut guard) = d.policy()?;
    let changing = args.password_max_age_days.is_some()
        || args.guard_max_blocks.is_some()
        || args.guard_max_share.is_some()
        || args.attributes.is_some();
    if let Some(spec) = &args.attributes {
        policy
            .attributes
            .apply(spec)
            .map_err(|e| anyhow::anyhow!("--attributes: {e}"))?;
    }
    if let Some(days) = args.password_max_age_days {
        policy.password_max_age_days = (days > 0).then_some(days);
    }
    if let Some(n) = args.guard_max_blocks {
        guard.max_blocks = n;
    }
    if let Some(s) = args.guard_max_share {
        if !(0.0..=1.0).contains(&s) {
            bail!("--guard-max-share is a share between 0 and 1, not {s}");
        }
        guard.max_share = s;
    }
    if changing {
        d.set_policy(&policy, &guard)?;
    }
    if let Some(k) = args
        .group_kind
        .as_deref()
        .and_then(crate::directory::GroupKind::parse)
    {
        d.set_group_kind(k)?;
    }
    writeln!(out, "group kind: {}", d.group_kind()?.as_str())?;
    writeln!(
        out,
        "password max age: {}",
        policy
            .password_max_age_days
            .map_or("none".to_string(), |d| format!("{d} days"))
    )?;
    writeln!(
        out,
        "guard: more than {} blocks or {:.0}% of bound users needs confirmation",
        guard.max_blocks,
        guard.max_share * 100.0
    )?;
    writeln!(out, "attributes: {}", policy.attributes.describe())?;
    Ok(())
}

/// `m365sync bind|unbind`: record the desired state exactly as the console's toggle does.
/// Unknown emails are reported and nothing is recorded.
pub fn set_want(
    settings: &Settings,
    args: &SelectArgs,
    bound: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let mut d = open_directory(settings)?;
    let verb = if bound { "bind" } else { "unbind" };
    if !args.group.is_empty() {
        let mut ids = Vec::new();
        let mut unknown = Vec::new();
        for name in &args.group {
            match d.find_group(name)? {
                Some(g) => ids.push(g.id),
                None => unknown.push(format!("`{name}`")),
            }
        }
        if !unknown.is_empty() {
            bail!(
                "no directory group is named {}; nothing recorded (see `m365sync groups`)",
                unknown.join(", ")
            );
        }
        let wanted = |d: &crate::directory::Directory| -> Result<std::collections::HashSet<i64>> {
            Ok(d.users()?
                .into_iter()
                .filter(|u| u.wanted())
                .map(|u| u.id)
                .collect())
        };
        let before = wanted(&d)?;
        let changed = d.set_group_want(&ids, bound)?;
        let after = wanted(&d)?;
        use crate::format::count;
        writeln!(
            out,
            "{} marked to {verb}; run `m365sync sync --dry-run` to preview",
            count(changed, "group", None)
        )?;
        if bound {
            let n = after.difference(&before).count();
            writeln!(
                out,
                "{} bound through {} (members not bound before)",
                count(n, "member is", Some("members are")),
                if ids.len() == 1 { "it" } else { "them" }
            )?;
        } else {
            let n = before.difference(&after).count();
            writeln!(
                out,
                "{} no other reason to be bound: the next sync blocks their sign-in (the M365 \
                 group and its members are kept; it is no longer synced)",
                count(n, "member has", Some("members have"))
            )?;
        }
        return Ok(());
    }
    let changed = if args.all {
        d.set_want_all(bound)?
    } else {
        let mut emails = args.emails.clone();
        if let Some(f) = &args.from {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            emails.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string),
            );
        }
        let mut ids = Vec::new();
        let mut unknown = Vec::new();
        for e in &emails {
            match d.find_by_email(e)? {
                Some(u) => ids.push(u.id),
                None => unknown.push(e.clone()),
            }
        }
        if !unknown.is_empty() {
            bail!(
                "no directory user has the email{} {}; nothing recorded",
                if unknown.len() == 1 { "" } else { "s" },
                unknown.join(", ")
            );
        }
        d.set_want(&ids, bound)?
    };
    writeln!(
        out,
        "{changed} directory user{} marked to {verb}; run `m365sync sync --dry-run` to preview",
        if changed == 1 { "" } else { "s" }
    )?;
    Ok(())
}
