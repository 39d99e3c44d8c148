//! `m365sync groups` and `m365sync group ...`: directory groups and their fixes.
use std::io::Write;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use crate::config::Settings;
use crate::directory::Directory;

use super::open_directory_read_only;

#[derive(Debug, Clone, Subcommand)]
pub enum GroupCommand {
    /// Set the mailNickname m365sync sends for the group (e.g. accept the suggested one)
    Nickname { name: String, nickname: String },
    /// Give the group another name
    Rename { name: String, new_name: String },
    /// Remove stray spaces at the start, at the end or doubled inside the group's name
    Trim { name: String },
}

/// `m365sync group ...`: the one-key group fixes of the Errors tab, headless.
pub fn group_fix(settings: &Settings, cmd: &GroupCommand, out: &mut dyn Write) -> Result<()> {
    let mut d = Directory::open(&settings.db_path())?;
    let name = match cmd {
        GroupCommand::Nickname { name, .. }
        | GroupCommand::Rename { name, .. }
        | GroupCommand::Trim { name } => name,
    };
    let g = d
        .find_group(name)?
        .with_context(|| format!("no directory group is named `{name}`"))?;
    match cmd {
        GroupCommand::Nickname { nickname, .. } => {
            let problems = crate::sync::preflight::check_mail_nickname(nickname);
            if let Some(p) = problems.first() {
                bail!("`{nickname}` cannot be a mailNickname: {}", p.message);
            }
            d.set_group_nickname(g.id, Some(nickname))?;
            writeln!(
                out,
                "group \"{}\" will be provisioned with the mailNickname {nickname}",
                g.name
            )?;
        }
        GroupCommand::Rename { new_name, .. } => {
            d.rename_group(g.id, new_name)?;
            writeln!(out, "group \"{}\" renamed to \"{new_name}\"", g.name)?;
        }
        GroupCommand::Trim { .. } => {
            let trimmed = d.trim_group_name(g.id)?;
            writeln!(out, "group \"{}\" is now \"{trimmed}\"", g.name)?;
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Args)]
pub struct GroupsArgs {
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
}

/// One line of `m365sync groups --json`.
#[derive(Debug, serde::Serialize)]
pub struct GroupLine {
    pub name: String,
    pub kind: crate::directory::GroupKind,
    pub mail_nickname: String,
    /// Whether the nickname is the admin's override (else derived from the name).
    pub nickname_override: bool,
    pub state: crate::directory::GroupState,
    pub want_bound: bool,
    pub members: usize,
    pub tenant_group_id: Option<String>,
    pub last_error: Option<String>,
}

/// `m365sync groups [--json]`.
pub fn groups(settings: &Settings, args: &GroupsArgs, out: &mut dyn Write) -> Result<()> {
    let d = open_directory_read_only(settings)?;
    for g in d.groups()? {
        let line = GroupLine {
            mail_nickname: crate::sync::groups::nickname_for(&g),
            nickname_override: g
                .mail_nickname
                .as_deref()
                .is_some_and(|n| !n.trim().is_empty()),
            state: g.state(),
            want_bound: g.want_bound,
            members: g.members.len(),
            kind: g.kind,
            tenant_group_id: g.tenant_group_id.clone(),
            last_error: g.last_error.clone(),
            name: g.name,
        };
        if args.json {
            serde_json::to_writer(&mut *out, &line)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "{:<18} {:<9} {:<30} {:<24} {:>4} members  {}{}",
                line.state.label(),
                line.kind.as_str(),
                format!("{:?}", line.name),
                if line.mail_nickname.is_empty() {
                    "(none)".to_string()
                } else {
                    line.mail_nickname.clone()
                },
                line.members,
                line.tenant_group_id.as_deref().unwrap_or("-"),
                line.last_error
                    .as_deref()
                    .map(|e| format!("  last error: {e}"))
                    .unwrap_or_default()
            )?;
        }
    }
    Ok(())
}
