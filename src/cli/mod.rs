//! The command line: global options shared by every command, the clap definitions, and the
//! helpers the commands share (sign-in session, token cache, opening the directory). Each
//! headless command lives in its own module; their functions are re-exported here
//! (`m365sync::cli::sync`, `m365sync::cli::status`, ...).
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::auth::{Authenticator, Session, TokenCache};
use crate::config::{Overrides, Settings};
use crate::directory::Directory;

mod audit;
mod directory;
mod disconnect;
mod errors;
mod groups;
mod licences;
mod login;
mod output;
mod password;
mod shell;
mod sync;
mod tenant;
mod users;

pub use audit::{audit, AuditArgs};
pub use directory::{
    directory_import, directory_list, directory_policy, set_want, DirectoryCommand, PolicyArgs,
    SelectArgs,
};
pub use disconnect::{disconnect, DisconnectArgs};
pub use errors::{errors, ErrorsArgs};
pub use groups::{group_fix, groups, GroupCommand, GroupLine, GroupsArgs};
pub use licences::{licence, licences, LicenceCommand, LicencesArgs};
pub use login::{login, logout, status};
pub use output::{Format, FormatArgs};
pub use password::{password_set, PasswordCommand};
pub use shell::{completions, manpage};
pub use sync::{sync, SyncArgs};
pub use tenant::{FreshnessArgs, NoSnapshot};
pub use users::{users, StatusFilter, UsersArgs};

/// Exit codes of every command (README, "Exit codes").
pub mod exit {
    /// Done.
    pub const OK: u8 = 0;
    /// An error: nothing or not everything could be tried (the message says why).
    pub const ERROR: u8 = 1;
    /// It ran, but something failed or was held back (e.g. `sync`: an op failed, preflight
    /// held one back, Ctrl-C left ops unsent).
    pub const INCOMPLETE: u8 = 2;
    /// The command line was wrong: a bad flag or value, `sync` without --dry-run or --apply,
    /// `disconnect` off a terminal without --yes (sysexits' EX_USAGE). Nothing was done.
    pub const USAGE: u8 = 64;
    /// `--offline` and no saved copy of the tenant yet (sysexits' EX_NOINPUT): run once
    /// without it.
    pub const NO_SNAPSHOT: u8 = 66;
    /// Another m365sync is applying changes with the same data dir (sysexits' EX_TEMPFAIL:
    /// try again later).
    pub const LOCKED: u8 = 75;
    /// `sync --apply` stopped by Ctrl-C, SIGTERM or SIGHUP (what was on the wire recorded).
    pub const INTERRUPTED: u8 = 130;
}

/// The exit codes, as `--help` shows them after the commands.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    done
  1    error (the message on stderr says what and what to do)
  2    something failed or was held back (an op Graph refused, one preflight held back)
  64   usage: a bad flag or value, sync without --dry-run or --apply, disconnect off a
       terminal without --yes (nothing was done)
  66   no saved copy of the tenant for --offline: run the command once without it
  75   locked: another m365sync is applying changes with this data dir; try again later
  130  interrupted: sync --apply stopped by Ctrl-C, SIGTERM or SIGHUP; it stopped
       sending, let the writes on the wire finish and recorded them";

/// A command line that cannot be run as given (exit [`exit::USAGE`]): the message says what
/// to type instead.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code of a command that failed with `err`: [`exit::LOCKED`] when anywhere in its
/// chain another process holds the apply lock, [`exit::USAGE`] for a [`UsageError`],
/// [`exit::NO_SNAPSHOT`] for [`NoSnapshot`], else [`exit::ERROR`].
pub fn exit_code_of(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.is::<UsageError>()) {
        return exit::USAGE;
    }
    if err.chain().any(|e| e.is::<NoSnapshot>()) {
        return exit::NO_SNAPSHOT;
    }
    let held = err.chain().any(|e| {
        matches!(
            e.downcast_ref::<crate::lock::LockError>(),
            Some(crate::lock::LockError::Held(_))
        ) || matches!(
            e.downcast_ref::<crate::failure::Failure>(),
            Some(crate::failure::Failure::Locked(_))
        )
    });
    if held {
        exit::LOCKED
    } else {
        exit::ERROR
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "m365sync",
    version,
    about = "Provision your directory's users into a Microsoft 365 tenant, from the terminal.",
    long_about = "Provision your directory's users into a Microsoft 365 tenant, from the terminal.\n\n\
                  Without a command, opens the console. Try `m365sync demo` for a simulated tenant.",
    after_help = EXIT_CODES_HELP
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
#[command(next_help_heading = "Global options")]
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
    /// The UPN an app-only run acts for: never blocked without --yes-block-self
    #[arg(long, global = true, env = "M365SYNC_SERVICE_ACCOUNT")]
    pub service_account: Option<String>,
}

impl GlobalArgs {
    pub fn settings(&self) -> Result<Settings> {
        Settings::resolve(Overrides {
            authority: self.authority.clone(),
            graph_url: self.graph_url.clone(),
            tenant: self.tenant.clone(),
            client_id: self.client_id.clone(),
            ca_file: self.ca_file.clone(),
            service_account: self.service_account.clone(),
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
    /// The tenant's licences with their seats, what m365sync assigns per group and user, and
    /// the users with licence errors
    Licences(LicencesArgs),
    /// The default licences of a directory group or user (assign, unassign)
    #[command(subcommand)]
    Licence(LicenceCommand),
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
    /// Forget the tenant: clear the binding wishes and links of users and groups, the UPN
    /// overrides, the failed-import records and the token cache (asks first, or --yes).
    /// Microsoft 365 accounts are left exactly as they are
    Disconnect(DisconnectArgs),
    /// Print a shell completion script: `m365sync completions bash > /etc/bash_completion.d/m365sync`
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `m365sync manpage > m365sync.1; man ./m365sync.1`
    Manpage,
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

/// The pipeline of the configured tenant, signed in: what `sync`, `errors` and `password
/// set` run.
pub async fn pipeline(
    settings: &Settings,
    secret: Option<String>,
    budget: crate::sync::apply::WriteBudget,
) -> Result<crate::sync::pipeline::Pipeline> {
    let session = session(settings, secret).await?;
    let name = session.identity().await.name;
    let graph =
        crate::graph::GraphClient::new(settings.http_client()?, &settings.graph_url, session);
    Ok(crate::sync::pipeline::Pipeline {
        graph,
        data_dir: settings.data_dir.clone(),
        db_path: settings.db_path(),
        tenant: settings.tenant()?.to_string(),
        me: crate::sync::pipeline::Me::from_identity(&name, settings.service_account.as_deref()),
        budget,
    })
}

fn open_directory(settings: &Settings) -> Result<Directory> {
    Directory::open(&settings.db_path()).context("opening the directory")
}

/// For the commands that only read: never creates, migrates or writes anything, so they work
/// in a read-only data dir (a missing database reads as an empty directory).
fn open_directory_read_only(settings: &Settings) -> Result<Directory> {
    Directory::open_read_only(&settings.db_path()).context("opening the directory")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::{Holder, LockError};

    #[test]
    fn help_lists_the_exit_codes() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        for help in [
            Cli::command().render_help().to_string(),
            Cli::command().render_long_help().to_string(),
        ] {
            let codes = help.split("Exit codes:").nth(1).expect(&help);
            for (code, says) in [
                (exit::OK, "done"),
                (exit::ERROR, "error"),
                (exit::INCOMPLETE, "failed or was held back"),
                (exit::USAGE, "usage"),
                (exit::NO_SNAPSHOT, "--offline"),
                (exit::LOCKED, "locked"),
                (exit::INTERRUPTED, "stopped by Ctrl-C"),
            ] {
                assert!(
                    codes.lines().any(
                        |l| l.trim_start().starts_with(&format!("{code} ")) && l.contains(says)
                    ),
                    "{code} {says}:\n{codes}"
                );
            }
        }
    }

    /// The global options have their own heading, in the top-level help and in a command's.
    #[test]
    fn global_options_are_under_their_own_heading() {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        let top = cmd.render_help().to_string();
        let sub = cmd
            .find_subcommand_mut("sync")
            .unwrap()
            .render_help()
            .to_string();
        for help in [top, sub] {
            let (before, globals) = help.split_once("Global options:").expect(&help);
            for flag in ["--tenant", "--client-id", "--data-dir", "--graph-url"] {
                assert!(
                    globals.contains(flag) && !before.contains(flag),
                    "{flag}\n{help}"
                );
            }
        }
    }

    /// Usage errors exit 64, --help and --version 0 (main maps clap's errors so).
    #[test]
    fn usage_errors_are_64() {
        let e = Cli::try_parse_from(["m365sync", "--no-such-flag"]).unwrap_err();
        assert!(e.use_stderr());
        let e = Cli::try_parse_from(["m365sync", "--help"]).unwrap_err();
        assert!(!e.use_stderr());
        let e = Cli::try_parse_from(["m365sync", "--version"]).unwrap_err();
        assert!(!e.use_stderr());
        let wrapped = Err::<(), _>(UsageError("use --dry-run or --apply".into()))
            .context("sync")
            .unwrap_err();
        assert_eq!(exit_code_of(&wrapped), exit::USAGE);
    }

    #[test]
    fn a_held_lock_anywhere_in_the_chain_exits_75_else_1() {
        let held = || {
            LockError::Held(Holder {
                pid: 1,
                host: "h".into(),
                command: "sync --apply".into(),
                since: "2026-12-03T10:00:00Z".into(),
            })
        };
        assert_eq!(exit_code_of(&anyhow::Error::new(held())), exit::LOCKED);
        let wrapped = Err::<(), _>(held())
            .context("syncing")
            .context("sync --apply")
            .unwrap_err();
        assert_eq!(exit_code_of(&wrapped), 75);
        let io = LockError::Io {
            path: "/x".into(),
            source: std::io::Error::other("boom"),
        };
        assert_eq!(exit_code_of(&anyhow::Error::new(io)), exit::ERROR);
        assert_eq!(exit_code_of(&anyhow::anyhow!("anything else")), 1);
    }
}
