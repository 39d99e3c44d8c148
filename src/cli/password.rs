//! `m365sync password set`: a directory user's password, pushed to the bound account.
use std::io::Write;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Subcommand;

use crate::config::Settings;
use crate::graph::GraphClient;
use crate::text::clean;

use super::{open_directory, session, SecretArgs};

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
        .with_context(|| format!("no directory user has the email {}", clean(email)))?;
    drop(d);
    let bound = user.wanted() && user.tenant_user_id.is_some();
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
    // A push writes to the tenant: one apply at a time per data dir.
    let _lock = if bound {
        Some(crate::sync::pipeline::lock(
            &settings.data_dir,
            "password set",
        )?)
    } else {
        None
    };
    let shown = clean(email);
    match apply::set_password(graph, settings.db_path(), email, &password, &actor).await? {
        SetPasswordOutcome::Pushed {
            re_enabled,
            signed_out,
        } => {
            use crate::sync::apply::SignOut;
            writeln!(
                out,
                "Password set for {shown} and pushed to its Microsoft 365 account{}{}.",
                if re_enabled {
                    "; sign-in re-enabled"
                } else {
                    ""
                },
                match &signed_out {
                    SignOut::Done => "; signed out everywhere",
                    SignOut::NotAsked => "",
                    SignOut::Failed(_) => "",
                }
            )?;
            if let SignOut::Failed(e) = &signed_out {
                writeln!(
                    out,
                    "Signing {shown} out everywhere failed: {} (see `m365sync errors`)",
                    clean(&e.to_string())
                )?;
                return Ok(2);
            }
            Ok(0)
        }
        SetPasswordOutcome::RecordedOnly => {
            writeln!(
                out,
                "Password set for {shown} (not bound: nothing pushed to Microsoft 365)."
            )?;
            Ok(0)
        }
        SetPasswordOutcome::Failed(e) => {
            writeln!(
                out,
                "Microsoft 365 refused the password for {shown}: {}",
                clean(&e.to_string())
            )?;
            Ok(2)
        }
    }
}
