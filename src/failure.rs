//! Failures that cross the effect boundary with their type: what went wrong (Graph with the
//! operation, the identity platform, the local directory, a file, the apply lock, a refusal
//! of the plan, bad input, a bug), so that one function (`diagnose::diagnose_failure`) can
//! explain each with its catalog kind, the missing permission and the request-id. Effects
//! report `Result<_, Failure>`; nothing on the way flattens it to a string.
use serde::{Deserialize, Serialize};

use crate::auth::AuthError;
use crate::diagnose::{Operation, Subject};
use crate::directory::DirectoryError;
use crate::graph::GraphError;

/// What was wrong with the local directory (SQLite).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DirectoryProblem {
    /// Another process held the database longer than m365sync waits.
    Busy,
    /// The disk (or the quota) is full.
    Full,
    /// The data directory or the database is read-only.
    ReadOnly,
    /// The data is invalid (a value refused, a newer schema, a missing row).
    Invalid,
    /// Anything else: missing, corrupt, not a database.
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    /// Graph refused or failed `operation` on `subject`.
    #[error("{}: {error}", operation.label())]
    Graph {
        operation: Operation,
        subject: Subject,
        error: Box<GraphError>,
    },
    /// Signing in or refreshing the token failed.
    #[error("sign-in: {0}")]
    Auth(AuthError),
    /// The local directory database, while `doing` something.
    #[error("the local directory ({doing}): {message}")]
    Directory {
        doing: String,
        problem: DirectoryProblem,
        message: String,
    },
    /// A file m365sync reads or writes (hand-off file, errors export, key map).
    #[error("{path}: {message}")]
    File { path: String, message: String },
    /// Another m365sync is applying changes to this tenant (the apply lock is held).
    #[error("{0}")]
    Locked(String),
    /// The plan is refused until the admin confirms or changes it (mass-change guard,
    /// blocking one's own account, a plan made on stale data).
    #[error("{0}")]
    Refused(String),
    /// Input m365sync cannot use (a password against the rules, an unknown email).
    #[error("{0}")]
    Invalid(String),
    /// A bug: an invariant broke, a task panicked.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Failure {
    pub fn graph(operation: Operation, subject: Subject, error: GraphError) -> Failure {
        Failure::Graph {
            operation,
            subject,
            error: Box::new(error),
        }
    }

    pub fn directory(doing: &str, e: DirectoryError) -> Failure {
        let problem = e.problem();
        Failure::Directory {
            doing: doing.to_string(),
            problem,
            message: e.to_string(),
        }
    }

    pub fn file(path: &std::path::Path, e: impl std::fmt::Display) -> Failure {
        Failure::File {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }

    /// A task that died (panicked or was aborted).
    pub fn join(e: tokio::task::JoinError) -> Failure {
        Failure::Internal(format!("a background task failed: {e}"))
    }
}

impl From<AuthError> for Failure {
    fn from(e: AuthError) -> Self {
        Failure::Auth(e)
    }
}

/// Run directory work on the blocking pool; a directory error becomes a typed failure.
pub async fn blocking<T, F>(doing: &'static str, f: F) -> Result<T, Failure>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, DirectoryError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(Failure::join)?
        .map_err(|e| Failure::directory(doing, e))
}
