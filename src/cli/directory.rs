//! `m365sync directory import|list|policy` and `bind`/`unbind`: the local directory.
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use crate::config::Settings;
use crate::format::count;
use crate::text::clean;

use super::output::{self, Format, FormatArgs, Record};
use super::{open_directory, open_directory_read_only, UsageError};

#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Add or update directory users from a CSV with a header row: email, givenName, surname,
    /// displayName, optional jobTitle, department, groups (other columns ignored; a column
    /// the file lacks leaves that field as it is, an empty cell clears it)
    Import { file: PathBuf },
    /// Directory users with their binding state, wish and linked account
    List(FormatArgs),
    /// Show or change the directory policy (password maximum age, mass-change guard,
    /// deprovisioning, sign-out on password push)
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
    /// What happens to the account of a user unbound: block (default), block+revoke (sign
    /// out everywhere), block+unlicense[:DAYS] (remove the licences m365sync assigned, now
    /// or DAYS after the block), block+delete:DAYS (soft-delete DAYS after the block,
    /// restorable for 30 days; never a purge); steps combine (block+revoke+delete:30)
    #[arg(long, value_name = "POLICY")]
    pub deprovision: Option<String>,
    /// Set --deprovision for this directory group only (its users unbound because they left
    /// or unbound it); `--deprovision directory` goes back to the directory's
    #[arg(long, value_name = "NAME", requires = "deprovision")]
    pub group: Option<String>,
    /// Whether a password pushed to an account signs the user out everywhere (default on)
    #[arg(long, value_name = "on|off", value_parser = ["on", "off"])]
    pub revoke_on_password: Option<String>,
    /// Deleting more accounts than this in one sync needs --yes-delete (default 10)
    #[arg(long)]
    pub guard_max_deletes: Option<usize>,
    /// The usage location (two-letter ISO 3166 code, e.g. US) an account gets on bind when
    /// the directory user has none of its own; licences need one. `none` removes it
    #[arg(long, value_name = "CC")]
    pub usage_location: Option<String>,
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
    let r = d
        .import_csv(std::io::BufReader::new(f))
        .with_context(|| format!("importing {}", file.display()))?;
    let path = file.display().to_string();
    for rej in &r.rejected {
        writeln!(
            out,
            "{}:{}: rejected: {}",
            clean(&path),
            rej.line,
            clean(&rej.reason)
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
            "groups: {} added, {} changed",
            r.groups_added,
            count(r.memberships_changed, "membership", None)
        )?;
    }
    Ok(r.rejected.is_empty())
}

/// One directory user as `directory list --json|--csv` prints it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryUserLine {
    pub email: String,
    /// The UPN its account has or gets: the override (the use-default-domain fix), else the
    /// email.
    pub user_principal_name: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    /// `unbound`, `bound` or `blocked`.
    pub binding: crate::directory::BindingState,
    /// The admin's wish (bind): a sync makes the binding match it.
    pub want_bound: bool,
    /// The bound groups the user is a member of: each one a reason to be bound too.
    pub bound_via: Vec<String>,
    /// Graph object id of the linked account.
    pub tenant_user_id: Option<String>,
    /// When the directory password was last set (RFC 3339); never the password.
    pub password_set_at: Option<String>,
}

impl DirectoryUserLine {
    /// Why the user is bound: `direct`, `via Field Team`, both; empty when not wanted.
    pub fn reason(&self) -> String {
        let via =
            (!self.bound_via.is_empty()).then(|| format!("via {}", self.bound_via.join(", ")));
        match (self.want_bound, via) {
            (true, Some(v)) => format!("direct, {v}"),
            (true, None) => "direct".into(),
            (false, Some(v)) => v,
            (false, None) => String::new(),
        }
    }
}

impl Record for DirectoryUserLine {
    const FIELDS: &'static [&'static str] = &[
        "email",
        "userPrincipalName",
        "displayName",
        "givenName",
        "surname",
        "jobTitle",
        "department",
        "binding",
        "wantBound",
        "boundVia",
        "tenantUserId",
        "passwordSetAt",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.email.clone(),
            self.user_principal_name.clone(),
            self.display_name.clone(),
            output::opt(&self.given_name),
            output::opt(&self.surname),
            output::opt(&self.job_title),
            output::opt(&self.department),
            output::word(&self.binding),
            self.want_bound.to_string(),
            self.bound_via.join(";"),
            output::opt(&self.tenant_user_id),
            output::opt(&self.password_set_at),
        ]
    }
}

/// `m365sync directory list [--json|--csv]`.
pub fn directory_list(settings: &Settings, args: &FormatArgs, out: &mut dyn Write) -> Result<()> {
    let d = open_directory_read_only(settings)?;
    let overrides = d.upn_overrides()?;
    let format = args.format();
    match format {
        Format::Csv => output::csv_header::<DirectoryUserLine>(out)?,
        Format::Text => output::row(
            out,
            &[
                ("BINDING", 8),
                ("WHY BOUND", 24),
                ("EMAIL", 40),
                ("DISPLAY NAME", 30),
                ("M365 USER ID", 0),
            ],
        )?,
        Format::Json => {}
    }
    for u in d.users()? {
        let line = DirectoryUserLine {
            user_principal_name: overrides
                .get(&u.id)
                .cloned()
                .unwrap_or_else(|| u.email.clone()),
            email: u.email,
            display_name: u.display_name,
            given_name: u.given_name,
            surname: u.surname,
            job_title: u.job_title,
            department: u.department,
            binding: u.binding,
            want_bound: u.want_bound,
            bound_via: u.bound_via,
            tenant_user_id: u.tenant_user_id,
            password_set_at: u.password_set_at,
        };
        if format == Format::Text {
            let reason = match line.reason() {
                r if r.is_empty() => "-".to_string(),
                r => r,
            };
            output::row(
                out,
                &[
                    (line.binding.label(), 8),
                    (&reason, 24),
                    (&line.email, 40),
                    (&line.display_name, 30),
                    (line.tenant_user_id.as_deref().unwrap_or(""), 0),
                ],
            )?;
        } else {
            output::record(out, format, &line)?;
        }
    }
    Ok(())
}

/// `m365sync directory policy`.
pub fn directory_policy(settings: &Settings, args: &PolicyArgs, out: &mut dyn Write) -> Result<()> {
    let mut d = open_directory(settings)?;
    let (mut policy, mut guard) = d.policy()?;
    let mut changing = args.password_max_age_days.is_some()
        || args.guard_max_blocks.is_some()
        || args.guard_max_share.is_some()
        || args.attributes.is_some()
        || args.revoke_on_password.is_some()
        || args.guard_max_deletes.is_some()
        || args.usage_location.is_some();
    if let Some(text) = &args.deprovision {
        use crate::sync::deprovision::Deprovision;
        match &args.group {
            Some(name) => {
                let p = if text.trim().eq_ignore_ascii_case("directory") {
                    None
                } else {
                    Some(
                        Deprovision::parse(text)
                            .map_err(|e| UsageError(format!("--deprovision {e}")))?,
                    )
                };
                d.set_group_deprovision(name, p)?;
            }
            None => {
                policy.deprovision = Deprovision::parse(text)
                    .map_err(|e| UsageError(format!("--deprovision {e}")))?;
                changing = true;
            }
        }
    }
    if let Some(v) = &args.revoke_on_password {
        policy.keep_sessions_on_password = v == "off";
    }
    if let Some(n) = args.guard_max_deletes {
        guard.max_deletes = n;
    }
    if let Some(cc) = args.usage_location.as_deref().map(str::trim) {
        policy.usage_location = if cc.eq_ignore_ascii_case("none") || cc.is_empty() {
            None
        } else if crate::sync::attributes::is_country_code(cc) {
            Some(cc.to_string())
        } else {
            return Err(UsageError(format!(
                "--usage-location: `{cc}` is not a two-letter ISO 3166 country code in capitals \
                 (US, GB, DE), nor `none`"
            ))
            .into());
        };
    }
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
            return Err(UsageError(format!(
                "--guard-max-share is a share between 0 and 1, not {s}"
            ))
            .into());
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
            .map_or("none".to_string(), |d| count(d as usize, "day", None))
    )?;
    writeln!(
        out,
        "guard: more than {} or {:.0}% of bound users needs confirmation",
        count(guard.max_blocks, "block", None),
        guard.max_share * 100.0
    )?;
    writeln!(out, "attributes: {}", policy.attributes.describe())?;
    writeln!(out, "deprovision: {}", policy.deprovision)?;
    let groups = d.groups()?;
    for (id, p) in d.group_deprovision_policies()? {
        if let Some(g) = groups.iter().find(|g| g.id == id) {
            writeln!(out, "deprovision (group {}): {p}", clean(&g.name))?;
        }
    }
    writeln!(
        out,
        "delete guard: more than {} needs --yes-delete",
        count(guard.max_deletes, "delete", None)
    )?;
    writeln!(
        out,
        "revoke on password: {} (a pushed password {} the user out everywhere)",
        if policy.keep_sessions_on_password {
            "off"
        } else {
            "on"
        },
        if policy.keep_sessions_on_password {
            "does not sign"
        } else {
            "signs"
        }
    )?;
    writeln!(
        out,
        "default usage location: {}",
        policy.usage_location.as_deref().unwrap_or("none")
    )?;
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
                None => unknown.push(format!("`{}`", clean(name))),
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
                None => unknown.push(clean(e).into_owned()),
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
        "{} marked to {verb}; run `m365sync sync --dry-run` to preview",
        count(changed, "directory user", None)
    )?;
    Ok(())
}
