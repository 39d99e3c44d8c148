//! The engine calls the TUI makes beyond the plan and apply, in one place.
use std::path::{Path, PathBuf};

use crate::graph::GraphClient;
use crate::sync::apply::SetPasswordOutcome;

/// Push `password` to the account of the directory user `email` (records `password_set_at`,
/// never the password; re-enables an account blocked for an expired password).
pub async fn set_password(
    graph: GraphClient,
    db_path: PathBuf,
    email: String,
    password: String,
    actor: String,
) -> anyhow::Result<()> {
    match crate::sync::apply::set_password(graph, db_path, &email, &password, &actor).await? {
        SetPasswordOutcome::Pushed { .. } | SetPasswordOutcome::RecordedOnly => Ok(()),
        SetPasswordOutcome::Failed(Some(e)) => Err(e.into()),
        SetPasswordOutcome::Failed(None) => {
            anyhow::bail!("the password could not be pushed to the account of {email}")
        }
    }
}

/// Un-select every binding and forget the links, so no later sync touches the tenant; M365
/// accounts are left exactly as they are. (The runtime clears the token cache itself.)
pub fn disconnect(db_path: &Path) -> anyhow::Result<()> {
    crate::directory::Directory::open(db_path)?.disconnect()?;
    Ok(())
}
