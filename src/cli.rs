//! The command line: global options shared by every command, and the headless commands
//! (`login`, `logout`, `status`, `users`) that scripts and cron use.
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use futures::StreamExt;

use crate::auth::{Authenticator, Session, TokenCache};
use crate::config::{Overrides, Settings};
use crate::directory::{Directory, ImportStatus};
use crate::graph::GraphClient;

#[derive(Debug, Parser)]
#[command(
    name = "m365sync",
    version,
    about = "Provision your directory's users into a Microsoft 365 tenant, from the terminal.",
    long_about = "Provision your directory's users into a Microsoft 365 tenant, from the terminal.\n\n\
                  Without a command, opens the console. Try `m365sync demo` for a simulated tenant."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Where to sign in and what to talk to. Flags beat environment variables, which beat
/// `config.toml` in the data dir.
#[derive(Debug, Clone, Args, Default)]
pub struct GlobalArgs {
    /// Identity platform base URL [default: https://login.microsoftonline.com]
    #[arg(long, global = true, env = "M365SYNC_AUTHORITY")]
    pub authority: Option<String>,
    /// Microsoft Graph base URL [default: https://graph.microsoft.com/v1.0]
    #[arg(long, global = true, env = "M365SYNC_GRAPH_URL")]
    pub graph_url: Option<String>,
    /// Tenant id, or a domain of the tenant such as contoso.onmicrosoft.com
    #[arg(long, global = true, env = "M365SYNC_TENANT")]
    pub tenant: Option<String>,
    /// Application (client) id of m365sync's app registration in the tenant
    #[arg(long, global = true, env = "M365SYNC_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Extra CA certificates (PEM) to trust for https endpoints
    #[arg(long, global = true, env = "M365SYNC_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Where m365sync keeps everything it writes: config, token cache, database, logs
    /// [default: the platform data dir]
    #[arg(long, global = true, env = "M365SYNC_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

impl GlobalArgs {
    pub fn settings(&self) -> Result<Settings> {
        Settings::resolve(Overrides {
            authority: self.authority.clone(),
            graph_url: self.graph_url.clone(),
            tenant: self.tenant.clone(),
            client_id: self.client_id.clone(),
            ca_file: self.ca_file.clone(),
            data_dir: self.data_dir.clone(),
        })
    }
}

/// App-only sign-in takes its secret from a file or the environment, never from a flag
/// (flags end up in shell history and `ps`).
#[derive(Debug, Clone, Args, Default)]
pub struct SecretArgs {
    /// Sign in app-only (client credentials) with the client secret read from this file
    #[arg(long, value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,
}

impl SecretArgs {
    pub fn secret(&self) -> Result<Option<String>> {
        if let Some(path) = &self.client_secret_file {
            let s = std::fs::read_to_string(path)
                .with_context(|| format!("reading client secret file {}", path.display()))?;
            let s = s.trim().to_string();
            if s.is_empty() {
                bail!("client secret file {} is empty", path.display());
            }
            return Ok(Some(s));
        }
        Ok(std::env::var("M365SYNC_CLIENT_SECRET")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the console against a built-in simulated tenant (nothing real is touched)
    Demo,
    /// Run the simulated tenant (Graph + identity platform) as a server
    Sim(crate::sim::SimArgs),
    /// Sign in: device code (open the link on any device), or app-only with a client secret
    /// from --client-secret-file or M365SYNC_CLIENT_SECRET
    Login(SecretArgs),
    /// Remove the cached tokens of the tenant
    Logout,
    /// Show who is signed in to the tenant and until when
    Status,
    /// Stream the tenant's users with their import status to stdout
    Users(UsersArgs),
    /// The local directory: import users from CSV, list them
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Record that these directory users (or, with --group, groups) should be bound (nothing
    /// is sent until `sync`); a bound group is provisioned and its membership kept in sync
    Bind(SelectArgs),
    /// Record that these directory users should be unbound: `sync` blocks their sign-in and
    /// deletes nothing. With --group: stop syncing the group; the M365 group is left as it is
    Unbind(SelectArgs),
    /// Directory groups with their kind, mailNickname, state, member count and M365 group id
    Groups(GroupsArgs),
    /// Fix a directory group before it is provisioned: accept or set its mailNickname,
    /// rename it, or trim stray spaces from its name
    #[command(subcommand)]
    Group(GroupCommand),
    /// Make the tenant match the directory: --dry-run prints the plan, --apply applies it
    Sync(SyncArgs),
    /// Directory passwords
    #[command(subcommand)]
    Password(PasswordCommand),
    /// Print the audit log (every write to the tenant: who, what, when, request-id, outcome)
    Audit(AuditArgs),
    /// Every known failure explained: import failures, failed ops of the last runs, and what
    /// preflight says Graph would refuse (the last needs a sign-in for the tenant's domains)
    Errors(ErrorsArgs),
    /// Forget the tenant: clear every binding selection, every link and the token cache.
    /// Microsoft 365 accounts are left exactly as they are.
    Disconnect,
}

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
    /// Write generated passwords to this CSV (mode 0600) instead of printing them
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

#[derive(Debug, Subcommand)]
pub enum PasswordCommand {
    /// Set a directory user's password (read from stdin, no echo on a terminal) and push it at
    /// once to the bound account
    Set {
        email: String,
        #[command(flatten)]
        secret: SecretArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ErrorsArgs {
    /// One JSON object per line (the diagnosis: kind, title, what, why, steps, fix, raw)
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub secret: SecretArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFilter {
    New,
    Imported,
    Conflict,
    Failed,
}

impl From<StatusFilter> for ImportStatus {
    fn from(s: StatusFilter) -> Self {
        match s {
            StatusFilter::New => ImportStatus::New,
            StatusFilter::Imported => ImportStatus::Imported,
            StatusFilter::Conflict => ImportStatus::Conflict,
            StatusFilter::Failed => ImportStatus::Failed,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct UsersArgs {
    /// Only users with this import status
    #[arg(long)]
    pub status: Option<StatusFilter>,
    /// One JSON object per line (Graph's property names plus importStatus)
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// CSV with a header row
    #[arg(long)]
    pub csv: bool,
    #[command(flatten)]
    pub secret: SecretArgs,
}

fn authenticator(settings: &Settings) -> Result<Authenticator> {
    Ok(Authenticator::new(
        settings.http_client()?,
        &settings.authority,
        settings.tenant()?,
        settings.client_id()?,
    ))
}

fn cache(settings: &Settings) -> Result<TokenCache> {
    Ok(TokenCache::new(
        settings.token_cache_path(settings.tenant()?),
    ))
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// "in 59 min", "2 min ago": how people read token lifetimes.
pub fn relative(secs_from_now: i64) -> String {
    let (n, future) = (secs_from_now.abs(), secs_from_now >= 0);
    let amount = if n < 120 {
        format!("{n} s")
    } else if n < 7200 {
        format!("{} min", n / 60)
    } else if n < 172_800 {
        format!("{} h", n / 3600)
    } else {
        format!("{} days", n / 86_400)
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

pub async fn login(settings: &Settings, secret: &SecretArgs, out: &mut dyn Write) -> Result<()> {
    let auth = authenticator(settings)?;
    let cache = cache(settings)?;
    let secret = secret.secret()?;
    let tokens = match &secret {
        Some(secret) => auth.client_credentials(secret).await?,
        None => {
            let start = auth.start_device_code().await?;
            writeln!(out, "{}", start.message)?;
            out.flush()?;
            auth.poll_device_code(&start).await?
        }
    };
    let session = Session::start(auth, cache, tokens, secret)?;
    let who = session.identity().await;
    let expires = session.expires_at().await;
    writeln!(
        out,
        "Signed in to tenant {} as {}. Token expires {}; cached in {}.",
        settings.tenant()?,
        who.name,
        relative(expires - unix_now()),
        session.cache.path.display()
    )?;
    Ok(())
}

pub fn logout(settings: &Settings, out: &mut dyn Write) -> Result<()> {
    let cache = cache(settings)?;
    let existed = cache.path.exists();
    cache.clear()?;
    if existed {
        writeln!(
            out,
            "Signed out of tenant {}: removed {}.",
            settings.tenant()?,
            cache.path.display()
        )?;
    } else {
        writeln!(out, "Not signed in to tenant {}.", settings.tenant()?)?;
    }
    Ok(())
}

/// Exit status 0 when signed in (the token may be due a refresh), 1 when not.
pub fn status(settings: &Settings, out: &mut dyn Write) -> Result<bool> {
    let cache = cache(settings)?;
    writeln!(out, "tenant:     {}", settings.tenant()?)?;
    writeln!(out, "authority:  {}", settings.authority)?;
    writeln!(out, "graph:      {}", settings.graph_url)?;
    writeln!(out, "data dir:   {}", settings.data_dir.display())?;
    match cache.load()? {
        None => {
            writeln!(out, "signed in:  no (run `m365sync login`)")?;
            Ok(false)
        }
        Some(t) => {
            let left = t.expires_at - unix_now();
            let state = if left > 0 {
                format!("expires {}", relative(left))
            } else if t.refresh_token.is_some() || t.grant == "client_credentials" {
                format!("expired {}; refreshed on next use", relative(left))
            } else {
                format!("expired {}; run `m365sync login`", relative(left))
            };
            writeln!(out, "signed in:  {} ({})", t.identity.name, t.grant)?;
            writeln!(out, "token:      {state}")?;
            writeln!(out, "cache:      {}", cache.path.display())?;
            Ok(left > 0 || t.refresh_token.is_some() || t.grant == "client_credentials")
        }
    }
}

/// The signed-in session of the configured tenant, or a clear error that says what to do.
pub async fn session(settings: &Settings, secret: Option<String>) -> Result<Arc<Session>> {
    let auth = authenticator(settings)?;
    let cache = cache(settings)?;
    let session = Session::resume(auth, cache, secret)?.with_context(|| {
        format!(
            "not signed in to tenant {}: run `m365sync login` first",
            settings.tenant().unwrap_or("?")
        )
    })?;
    // Fail here, with the sign-in error, rather than on the first Graph call.
    session.access_token(false).await.map_err(|e| {
        anyhow::anyhow!(
            "the sign-in for tenant {} is no longer valid: {e}; run `m365sync login`",
            settings.tenant().unwrap_or("?")
        )
    })?;
    Ok(session)
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct UserLine<'a> {
    #[serde(flatten)]
    user: &'a crate::graph::User,
    import_status: ImportStatus,
}

/// `m365sync users`: the same client and classification as the Import tab, streamed.
pub async fn users(settings: &Settings, args: &UsersArgs, out: &mut dyn Write) -> Result<()> {
    let session = session(settings, args.secret.secret()?).await?;
    let db = settings.db_path();
    let index = tokio::task::spawn_blocking(move || Directory::open(&db)?.index())
        .await?
        .context("reading the directory")?;
    let graph = GraphClient::new(settings.http_client()?, &settings.graph_url, session);
    let mut pages = graph.list_users(999);
    let wanted: Option<ImportStatus> = args.status.map(Into::into);
    let header = [
        "id",
        "userPrincipalName",
        "mail",
        "displayName",
        "accountEnabled",
        "importStatus",
    ];
    let mut buf: Vec<u8> = Vec::new();
    if args.csv {
        csv::Writer::from_writer(&mut buf).write_record(header)?;
    }
    while let Some(page) = pages.next().await {
        let page = page.context("listing tenant users")?;
        let shown = page
            .iter()
            .map(|u| (u, index.classify(u)))
            .filter(|(_, status)| wanted.is_none_or(|w| w == *status));
        if args.csv {
            let mut w = csv::Writer::from_writer(&mut buf);
            for (user, status) in shown {
                w.write_record([
                    user.id.as_str(),
                    &user.user_principal_name,
                    user.mail.as_deref().unwrap_or(""),
                    user.display_name.as_deref().unwrap_or(""),
                    match user.account_enabled {
                        Some(true) => "true",
                        Some(false) => "false",
                        None => "",
                    },
                    status.label(),
                ])?;
            }
            w.flush()?;
        } else if args.json {
            for (user, status) in shown {
                serde_json::to_writer(
                    &mut buf,
                    &UserLine {
                        user,
                        import_status: status,
                    },
                )?;
                buf.push(b'\n');
            }
        } else {
            for (user, status) in shown {
                writeln!(
                    buf,
                    "{:<9} {:<40} {}",
                    status.label(),
                    user.user_principal_name,
                    user.display_name.as_deref().unwrap_or("")
                )?;
            }
        }
        // Stream page by page: a script sees the first users at once, and a million-user
        // tenant is never held in memory.
        out.write_all(&buf)?;
        out.flush()?;
        buf.clear();
    }
    Ok(())
}

fn open_directory(settings: &Settings) -> Result<Directory> {
    Directory::open(&settings.db_path()).context("opening the directory")
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
    let d = open_directory(settings)?;
    for u in d.users()? {
        if json {
            serde_json::to_writer(&mut *out, &u)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "{:<8} {:<7} {:<40} {:<30} {}",
                u.binding.label(),
                if u.want_bound { "want" } else { "-" },
                u.email,
                u.display_name,
                u.tenant_user_id.as_deref().unwrap_or("")
            )?;
        }
    }
    Ok(())
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
    let d = open_directory(settings)?;
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

/// `m365sync directory policy`.
pub fn directory_policy(settings: &Settings, args: &PolicyArgs, out: &mut dyn Write) -> Result<()> {
    let mut d = open_directory(settings)?;
    let (mut policy, mut guard) = d.policy()?;
    let changing = args.password_max_age_days.is_some()
        || args.guard_max_blocks.is_some()
        || args.guard_max_share.is_some();
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
        let changed = d.set_group_want(&ids, bound)?;
        writeln!(
            out,
            "{changed} group{} marked to {verb}; run `m365sync sync --dry-run` to preview{}",
            if changed == 1 { "" } else { "s" },
            if bound {
                ""
            } else {
                " (unbinding stops syncing a group; the M365 group and its members are kept)"
            }
        )?;
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

fn write_handoff(
    path: &std::path::Path,
    passwords: &[crate::sync::apply::IssuedPassword],
) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let exists = path.exists();
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening the hand-off file {}", path.display()))?;
    // An existing file keeps its contents but must not stay readable by others.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let mut w = csv::Writer::from_writer(f);
    if !exists {
        w.write_record(["email", "userPrincipalName", "temporaryPassword"])?;
    }
    for p in passwords {
        w.write_record([&p.email, &p.upn, &p.password])?;
    }
    w.flush()?;
    Ok(())
}

/// `m365sync sync`: exit code 0 when every op is done, 2 when some failed, 1 on errors.
pub async fn sync(settings: &Settings, args: &SyncArgs, out: &mut dyn Write) -> Result<u8> {
    use crate::sync::apply::{self, ApplyEvent, ApplyOptions};
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
        match &args.handoff {
            Some(path) => {
                write_handoff(path, &passwords)?;
                writeln!(
                    out,
                    "{} temporary password{} written to {} (mode 0600)",
                    passwords.len(),
                    if passwords.len() == 1 { "" } else { "s" },
                    path.display()
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

fn read_password() -> Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password("New password: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        if p != again {
            bail!("the two passwords differ");
        }
        Ok(p)
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    }
}

/// `m365sync password set EMAIL`: exit 0 when set, 2 when Graph refused it.
pub async fn password_set(
    settings: &Settings,
    email: &str,
    secret: &SecretArgs,
    out: &mut dyn Write,
) -> Result<u8> {
    use crate::sync::apply::{self, SetPasswordOutcome};
    let password = read_password()?;
    crate::sync::password::check(&password)?;
    let d = open_directory(settings)?;
    let user = d
        .find_by_email(email)?
        .with_context(|| format!("no directory user has the email {email}"))?;
    drop(d);
    let bound = user.want_bound && user.tenant_user_id.is_some();
    let (graph, actor) = if bound {
        let session = session(settings, secret.secret()?).await?;
        let actor = session.identity().await.name;
        (
            GraphClient::new(settings.http_client()?, &settings.graph_url, session),
            actor,
        )
    } else {
        // Nothing to push: no sign-in needed.
        (
            GraphClient::new(
                settings.http_client()?,
                &settings.graph_url,
                Arc::new(crate::graph::StaticToken(String::new())),
            ),
            std::env::var("USER").unwrap_or_else(|_| "local".into()),
        )
    };
    match apply::set_password(graph, settings.db_path(), email, &password, &actor).await? {
        SetPasswordOutcome::Pushed { re_enabled } => {
            writeln!(
                out,
                "Password set for {email} and pushed to its Microsoft 365 account{}.",
                if re_enabled {
                    "; sign-in re-enabled"
                } else {
                    ""
                }
            )?;
            Ok(0)
        }
        SetPasswordOutcome::RecordedOnly => {
            writeln!(
                out,
                "Password set for {email} (not bound: nothing pushed to Microsoft 365)."
            )?;
            Ok(0)
        }
        SetPasswordOutcome::Failed(e) => {
            writeln!(
                out,
                "Microsoft 365 refused the password for {email}: {}",
                e.map_or("unknown error".to_string(), |e| e.to_string())
            )?;
            Ok(2)
        }
    }
}

/// `m365sync audit [--json]`.
pub fn audit(settings: &Settings, args: &AuditArgs, out: &mut dyn Write) -> Result<()> {
    let d = open_directory(settings)?;
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

/// `m365sync disconnect`.
pub fn disconnect(settings: &Settings, out: &mut dyn Write) -> Result<()> {
    let mut d = open_directory(settings)?;
    let n = d.disconnect()?;
    let cache = cache(settings)?;
    let had = cache.path.exists();
    cache.clear()?;
    writeln!(
        out,
        "Cleared the binding selection and the account link of {n} directory user{}.",
        if n == 1 { "" } else { "s" }
    )?;
    if had {
        writeln!(out, "Removed the token cache {}.", cache.path.display())?;
    } else {
        writeln!(out, "No token cache to remove.")?;
    }
    writeln!(out, "No Microsoft 365 account was changed.")?;
    Ok(())
}

/// The status a journal's failed op most likely had, from Graph's code (the journal keeps the
/// code, message and request-id, not the status).
fn status_of_code(code: &str) -> u16 {
    match code {
        "InvalidAuthenticationToken" => 401,
        "Authorization_RequestDenied" => 403,
        "Request_ResourceNotFound" => 404,
        "TooManyRequests" | "Request_ThrottledTemporarily" => 429,
        "serviceNotAvailable" | "Service_InternalServerError" => 503,
        "generalException" => 500,
        _ => 400,
    }
}

/// `m365sync errors`: the Errors tab, headless.
pub async fn errors(settings: &Settings, args: &ErrorsArgs, out: &mut dyn Write) -> Result<()> {
    use crate::diagnose::{self, Context, Diagnosis, Subject};
    use crate::directory::JournalState;
    let db = settings.db_path();
    let (failures, journal, users) = tokio::task::spawn_blocking(move || -> Result<_> {
        let d = Directory::open(&db)?;
        Ok((d.failures()?, d.journal_list(None)?, d.users()?))
    })
    .await??;
    let mut found: Vec<(&'static str, Diagnosis)> = Vec::new();
    for f in &failures {
        found.push((
            "import",
            diagnose::diagnose_import(&f.kind, &f.user_principal_name, &f.message, Some(&f.at)),
        ));
    }
    // The last outcome of each (user, kind of change): a failure a later run fixed is gone.
    let mut last: std::collections::HashMap<(i64, crate::sync::plan::OpKind), usize> =
        Default::default();
    for (i, e) in journal.iter().enumerate() {
        last.insert((e.op.directory_id, e.op.kind), i);
    }
    let mut latest: Vec<usize> = last.into_values().collect();
    latest.sort_unstable();
    for e in latest.into_iter().map(|i| &journal[i]) {
        if e.state != JournalState::Failed {
            continue;
        }
        let code = e.error_code.clone().unwrap_or_else(|| "unknown".into());
        let err = crate::graph::GraphError::Api {
            status: status_of_code(&code),
            code,
            message: e.error_message.clone().unwrap_or_default(),
            request_id: e.request_id.clone(),
            date: Some(e.updated_at.clone()),
            retry_after: None,
        };
        found.push((
            "sync",
            diagnose::diagnose_graph(&err, &Context::for_op(&e.op)),
        ));
    }
    // Preflight needs the tenant's domains (and its deleted users): only when signed in.
    match session(settings, args.secret.secret()?).await {
        Ok(session) => {
            let graph = GraphClient::new(settings.http_client()?, &settings.graph_url, session);
            let (deleted, domains) = crate::sync::apply::deleted_and_domains(&graph)
                .await
                .context("reading the tenant's domains and deleted users")?;
            let index = crate::sync::preflight::TenantIndex::new(std::iter::empty(), &deleted);
            let by_id: std::collections::HashMap<i64, &crate::directory::DirectoryUser> =
                users.iter().map(|u| (u.id, u)).collect();
            for issue in crate::sync::preflight::preflight(
                &users,
                &domains,
                Some(&index),
                &crate::sync::preflight::PreflightOptions::default(),
            ) {
                let subject = by_id
                    .get(&issue.directory_id)
                    .map(|u| Subject::User(u.email.clone()))
                    .unwrap_or_default();
                found.push(("preflight", diagnose::diagnose_issue(&issue, subject)));
            }
        }
        Err(e) => eprintln!("note: preflight left out ({e:#})"),
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
        writeln!(out, "{} errors", found.len())?;
    }
    Ok(())
}
