//! The typed Graph error: everything support needs (status, code, message, request-id, date).
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// Graph answered with its error envelope (or a non-2xx status without one).
    #[error("{status} {code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
        date: Option<String>,
        retry_after: Option<Duration>,
    },
    /// The request never got an HTTP answer (connection refused or reset, TLS, timeout).
    #[error("network error: {0}")]
    Transport(String),
    /// A 2xx answer whose body is not what Graph sends.
    #[error("malformed response from Graph: {0}")]
    Malformed(String),
    /// No usable token (not signed in, refresh failed).
    #[error("not signed in: {0}")]
    Auth(String),
}

impl GraphError {
    pub fn status(&self) -> Option<u16> {
        match self {
            GraphError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
    pub fn code(&self) -> &str {
        match self {
            GraphError::Api { code, .. } => code,
            GraphError::Transport(_) => "Transport",
            GraphError::Malformed(_) => "MalformedResponse",
            GraphError::Auth(_) => "NotSignedIn",
        }
    }
    pub fn request_id(&self) -> Option<&str> {
        match self {
            GraphError::Api { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }
}
