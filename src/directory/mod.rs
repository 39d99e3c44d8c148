//! The local directory in SQLite (WAL, versioned migrations): directory users, their link to a
//! tenant user, import records. Safe for two processes on one database.
use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::graph::User;

/// Import status of a tenant user, as the Import tab shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ImportStatus {
    /// No directory user is linked to it or has its email.
    New,
    /// Linked to a directory user by Graph object id.
    Imported,
    /// A directory user already has this email and is not linked to it.
    Conflict,
    /// The last import attempt failed (see its failure).
    Failed,
}

impl ImportStatus {
    pub const ALL: [ImportStatus; 4] = [
        ImportStatus::New,
        ImportStatus::Imported,
        ImportStatus::Conflict,
        ImportStatus::Failed,
    ];
    pub fn label(self) -> &'static str {
        match self {
            ImportStatus::New => "New",
            ImportStatus::Imported => "Imported",
            ImportStatus::Conflict => "Conflict",
            ImportStatus::Failed => "Failed",
        }
    }
}

/// Binding of a directory user to an M365 account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BindingState {
    /// No M365 account linked.
    Unbound,
    /// Linked, sign-in enabled.
    Bound,
    /// Linked, sign-in blocked (accountEnabled = false); the account is kept.
    Blocked,
}

impl BindingState {
    pub fn label(self) -> &'static str {
        match self {
            BindingState::Unbound => "Unbound",
            BindingState::Bound => "Bound",
            BindingState::Blocked => "Blocked",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryUser {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    /// Graph object id of the linked M365 account.
    pub tenant_user_id: Option<String>,
    pub binding: BindingState,
}

/// A directory user to add (CSV import, demo seed, import from the tenant).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewDirectoryUser {
    pub email: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
}

/// Why importing a tenant user failed, kept for the Errors tab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportFailure {
    pub tenant_user_id: String,
    pub user_principal_name: String,
    /// Stable kind, e.g. `email-exists`.
    pub kind: String,
    pub message: String,
    /// RFC 3339.
    pub at: String,
}

/// The outcome of importing one tenant user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    Imported {
        tenant_user_id: String,
        directory_id: i64,
    },
    AlreadyImported {
        tenant_user_id: String,
        directory_id: i64,
    },
    Failed(ImportFailure),
}

/// What classification needs of the directory, in memory: O(1) per tenant user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryIndex {
    /// lower-cased email -> (directory id, linked tenant id)
    pub by_email: HashMap<String, (i64, Option<String>)>,
    /// tenant user id -> directory id
    pub linked: HashMap<String, i64>,
    /// tenant user id -> last failure
    pub failed: HashMap<String, ImportFailure>,
}

impl DirectoryIndex {
    pub fn classify(&self, user: &User) -> ImportStatus {
        let _ = user;
        todo!("directory: classify")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("directory database {path}: {message}")]
    Open { path: String, message: String },
}

pub struct Directory {
    conn: rusqlite::Connection,
}

impl Directory {
    pub fn open(path: &Path) -> Result<Directory, DirectoryError> {
        let _ = path;
        todo!("directory: open")
    }
    pub fn open_in_memory() -> Result<Directory, DirectoryError> {
        todo!("directory: open_in_memory")
    }
    pub fn users(&self) -> Result<Vec<DirectoryUser>, DirectoryError> {
        let _ = &self.conn;
        todo!("directory: users")
    }
    pub fn index(&self) -> Result<DirectoryIndex, DirectoryError> {
        todo!("directory: index")
    }
    pub fn add_user(&mut self, user: &NewDirectoryUser) -> Result<i64, DirectoryError> {
        let _ = user;
        todo!("directory: add_user")
    }
    /// Import tenant users as directory users linked to them. A user whose email a directory
    /// user already has fails with `email-exists` (no duplicate is created).
    pub fn import(&mut self, users: &[User]) -> Result<Vec<ImportOutcome>, DirectoryError> {
        let _ = users;
        todo!("directory: import")
    }
    pub fn failures(&self) -> Result<Vec<ImportFailure>, DirectoryError> {
        todo!("directory: failures")
    }
}
