//! `m365sync users`: the tenant's users with their import status, streamed.
use std::io::Write;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use futures::StreamExt;

use crate::config::Settings;
use crate::directory::{Directory, ImportStatus};
use crate::graph::GraphClient;

use super::{session, SecretArgs};

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
    let index = tokio::task::spawn_blocking(move || Directory::open_read_only(&db)?.index())
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
        crate::csvsafe::write_row(&mut csv::Writer::from_writer(&mut buf), header)?;
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
                // Spreadsheet-safe: a display name like `=HYPERLINK(...)` stays text.
                crate::csvsafe::write_row(
                    &mut w,
                    [
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
                    ],
                )?;
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
