//! `m365sync users`: the tenant's users with their import status, streamed.
use std::io::Write;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use crate::config::Settings;
use crate::directory::{Directory, ImportStatus};
use crate::graph::GraphClient;

use super::output::{self, Format, FormatArgs, Record};
use super::{session, SecretArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFilter {
    New,
    Imported,
    Conflict,
    Failed,
    Guest,
}

impl From<StatusFilter> for ImportStatus {
    fn from(s: StatusFilter) -> Self {
        match s {
            StatusFilter::New => ImportStatus::New,
            StatusFilter::Imported => ImportStatus::Imported,
            StatusFilter::Conflict => ImportStatus::Conflict,
            StatusFilter::Failed => ImportStatus::Failed,
            StatusFilter::Guest => ImportStatus::Guest,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct UsersArgs {
    /// Only users with this import status (as printed: New, Imported, Conflict, Failed,
    /// Guest; any case)
    #[arg(long, ignore_case = true)]
    pub status: Option<StatusFilter>,
    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub freshness: super::FreshnessArgs,
    #[command(flatten)]
    pub secret: SecretArgs,
}

/// One tenant user as `users --json|--csv` prints it: Graph's properties and its import
/// status.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserLine<'a> {
    pub id: &'a str,
    pub user_principal_name: &'a str,
    pub mail: Option<&'a str>,
    pub display_name: Option<&'a str>,
    pub given_name: Option<&'a str>,
    pub surname: Option<&'a str>,
    pub account_enabled: Option<bool>,
    /// `new`, `imported`, `conflict`, `failed` or `guest`.
    pub import_status: ImportStatus,
}

impl<'a> UserLine<'a> {
    fn new(u: &'a crate::graph::User, import_status: ImportStatus) -> Self {
        UserLine {
            id: &u.id,
            user_principal_name: &u.user_principal_name,
            mail: u.mail.as_deref(),
            display_name: u.display_name.as_deref(),
            given_name: u.given_name.as_deref(),
            surname: u.surname.as_deref(),
            account_enabled: u.account_enabled,
            import_status,
        }
    }
}

impl Record for UserLine<'_> {
    const FIELDS: &'static [&'static str] = &[
        "id",
        "userPrincipalName",
        "mail",
        "displayName",
        "givenName",
        "surname",
        "accountEnabled",
        "importStatus",
    ];
    fn cells(&self) -> Vec<String> {
        let s = |v: Option<&str>| v.unwrap_or_default().to_string();
        vec![
            self.id.to_string(),
            self.user_principal_name.to_string(),
            s(self.mail),
            s(self.display_name),
            s(self.given_name),
            s(self.surname),
            self.account_enabled
                .map(|b| b.to_string())
                .unwrap_or_default(),
            output::word(&self.import_status),
        ]
    }
}

/// `m365sync users`: the same client and classification as the Import tab, from the tenant
/// snapshot brought up to date (`--fresh`: listed in full; `--offline`: as saved, no sign-in
/// needed), written page by page.
pub async fn users(settings: &Settings, args: &UsersArgs, out: &mut dyn Write) -> Result<()> {
    let db = settings.db_path();
    let index = tokio::task::spawn_blocking(move || Directory::open_read_only(&db)?.index())
        .await?
        .context("reading the directory")?;
    let pages = if args.freshness.offline {
        super::tenant::offline(settings).await?.pages
    } else {
        let session = session(settings, args.secret.secret()?).await?;
        let graph = GraphClient::new(settings.http_client()?, &settings.graph_url, session);
        super::tenant::tenant(settings, &graph, &args.freshness)
            .await?
            .pages
    };
    let wanted: Option<ImportStatus> = args.status.map(Into::into);
    let format = args.format.format();
    let mut buf: Vec<u8> = Vec::new();
    match format {
        Format::Csv => output::csv_header::<UserLine>(&mut buf)?,
        Format::Text => output::row(
            &mut buf,
            &[
                ("STATUS", 9),
                ("USER PRINCIPAL NAME", 40),
                ("DISPLAY NAME", 0),
            ],
        )?,
        Format::Json => {}
    }
    for page in &pages {
        let shown = page
            .iter()
            .map(|u| (u, index.classify(u)))
            .filter(|(_, status)| wanted.is_none_or(|w| w == *status));
        for (user, status) in shown {
            if format == Format::Text {
                output::row(
                    &mut buf,
                    &[
                        (status.label(), 9),
                        (&user.user_principal_name, 40),
                        (user.display_name.as_deref().unwrap_or(""), 0),
                    ],
                )?;
            } else {
                // CSV cells spreadsheet-safe: a display name like `=HYPERLINK(...)` stays text.
                output::record(&mut buf, format, &UserLine::new(user, status))?;
            }
        }
        // Page by page: the output is never held whole.
        out.write_all(&buf)?;
        out.flush()?;
        buf.clear();
    }
    if !buf.is_empty() {
        out.write_all(&buf)?;
        out.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn users_json_and_csv_have_the_same_camel_case_fields() {
        let u = crate::graph::User {
            id: "1".into(),
            user_principal_name: "ann@contoso.com".into(),
            mail: None,
            display_name: Some("Ann".into()),
            given_name: Some("Ann".into()),
            surname: None,
            account_enabled: Some(false),
            ..Default::default()
        };
        output::tests::same_fields_in_json_and_csv(&UserLine::new(&u, ImportStatus::Conflict));
    }

    #[test]
    fn status_takes_the_printed_words_in_any_case() {
        for (word, want) in [
            ("Imported", StatusFilter::Imported),
            ("imported", StatusFilter::Imported),
            ("CONFLICT", StatusFilter::Conflict),
            ("New", StatusFilter::New),
            ("failed", StatusFilter::Failed),
        ] {
            let cli =
                crate::cli::Cli::try_parse_from(["m365sync", "users", "--status", word]).unwrap();
            match cli.command {
                Some(crate::cli::Command::Users(a)) => assert_eq!(a.status, Some(want)),
                other => panic!("{other:?}"),
            }
            assert_eq!(
                ImportStatus::from(want).label().to_lowercase(),
                word.to_lowercase()
            );
        }
    }
}
