//! The two engine calls the TUI needs beyond the skeleton's signatures, in one place so the
//! lead wires them once the engine lands. Until then each reports that it is not wired, and
//! the TUI shows that as an error instead of pretending.
//!
//! - `crate::sync::apply::set_password(graph, db_path, email, password, actor)`: push a
//!   password the admin typed to the bound account (`forceChangePasswordNextSignIn: false`),
//!   record `password_set_at` (never the password), re-enable an account blocked for an
//!   expired password, audit the write.
//! - `crate::directory::Directory::disconnect(&mut self)`: un-select every binding and forget
//!   the links' wishes so no later sync touches the tenant; M365 accounts are left as they are.
//!   (The runtime clears the token cache itself.)
use std::path::{Path, PathBuf};

use crate::graph::GraphClient;

/// Push `password` to the account of the directory user `email`.
pub async fn set_password(
    graph: GraphClient,
    db_path: PathBuf,
    email: String,
    password: String,
    actor: String,
) -> anyhow::Result<()> {
    let _ = (graph, db_path, email, password, actor);
    anyhow::bail!("setting a password is not wired to the engine yet (sync::apply::set_password)")
}

/// Un-select every binding in the directory at `db_path`.
pub fn disconnect(db_path: &Path) -> anyhow::Result<()> {
    let _ = db_path;
    anyhow::bail!("disconnecting is not wired to the directory yet (Directory::disconnect)")
}
