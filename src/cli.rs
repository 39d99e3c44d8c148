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
