//! `m365sync groups` and `m365sync group ...`: directory groups and their fixes.
use std::io::Write;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use crate::config::Settings;
use crate::directory::Directory;
use crate::text::clean;

use super::open_directory_read_only;
use super::output::{self, Format, FormatArgs, Record};

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
        .with_context(|| format!("no directory group is named `{}`", clean(name)))?;
    match cmd {
        GroupCommand::Nickname { nickname, .. } => {
            let problems = crate::sync::preflight::check_mail_nickname(nickname);
            if let Some(p) = problems.first() {
                bail!(
                    "`{}` cannot be a mailNickname: {}",
                    clean(nickname),
                    clean(&p.message)
                );
            }
            d.set_group_nickname(g.id, Some(nickname))?;
            writeln!(
                out,
                "group \"{}\" will be provisioned with the mailNickname {}",
                clean(&g.name),
                clean(nickname)
            )?;
        }
        GroupCommand::Rename { new_name, .. } => {
            d.rename_group(g.id, new_name)?;
            writeln!(
                out,
                "group \"{}\" renamed to \"{}\"",
                clean(&g.name),
                clean(new_name)
            )?;
        }
        GroupCommand::Trim { .. } => {
            let trimmed = d.trim_group_name(g.id)?;
            writeln!(
                out,
                "group \"{}\" is now \"{}\"",
                clean(&g.name),
                clean(&trimmed)
            )?;
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Args)]
pub struct GroupsArgs {
    #[command(flatten)]
    pub format: FormatArgs,
}

/// One line of `m365sync groups --json|--csv`.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupLine {
    pub name: String,
    /// `security` or `m365`.
    pub kind: crate::directory::GroupKind,
    pub mail_nickname: String,
    /// Whether the nickname is the admin's override (else derived from the name).
    pub nickname_override: bool,
    /// `unbound`, `pending`, `bound`, `kept`, `failed`, ...
    pub state: crate::directory::GroupState,
    pub want_bound: bool,
    pub members: usize,
    pub tenant_group_id: Option<String>,
    pub last_error: Option<String>,
}

impl Record for GroupLine {
    const FIELDS: &'static [&'static str] = &[
        "name",
        "kind",
        "mailNickname",
        "nicknameOverride",
        "state",
        "wantBound",
        "members",
        "tenantGroupId",
        "lastError",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            output::word(&self.kind),
            self.mail_nickname.clone(),
            self.nickname_override.to_string(),
            output::word(&self.state),
            self.want_bound.to_string(),
            self.members.to_string(),
            output::opt(&self.tenant_group_id),
            output::opt(&self.last_error),
        ]
    }
}

/// `m365sync groups [--json|--csv]`.
pub fn groups(settings: &Settings, args: &GroupsArgs, out: &mut dyn Write) -> Result<()> {
    let d = open_directory_read_only(settings)?;
    let format = args.format.format();
    match format {
        Format::Csv => output::csv_header::<GroupLine>(out)?,
        Format::Text => output::row(
            out,
            &[
                ("STATE", 18),
                ("KIND", 8),
                ("NAME", 30),
                ("MAILNICKNAME", 24),
                ("MEMBERS", 11),
                ("M365 GROUP ID", 0),
            ],
        )?,
        Format::Json => {}
    }
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
        if format != Format::Text {
            output::record(out, format, &line)?;
            continue;
        }
        // Quoted: a stray space in a name shows.
        let name = format!("\"{}\"", clean(&line.name));
        let members = crate::format::count(line.members, "member", None);
        let mut rest = line.tenant_group_id.clone().unwrap_or_else(|| "-".into());
        if let Some(e) = &line.last_error {
            rest.push_str(&format!("  last error: {e}"));
        }
        output::row(
            out,
            &[
                (line.state.label(), 18),
                (line.kind.as_str(), 8),
                (&name, 30),
                (
                    if line.mail_nickname.is_empty() {
                        "(none)"
                    } else {
                        &line.mail_nickname
                    },
                    24,
                ),
                (&members, 11),
                (&rest, 0),
            ],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_json_and_csv_have_the_same_camel_case_fields() {
        crate::cli::output::tests::same_fields_in_json_and_csv(&GroupLine {
            name: "Sales (EU)".into(),
            kind: crate::directory::GroupKind::M365,
            mail_nickname: "SalesEU".into(),
            nickname_override: false,
            state: crate::directory::GroupState::Failed,
            want_bound: true,
            members: 3,
            tenant_group_id: None,
            last_error: Some("Graph said no".into()),
        });
    }
}
