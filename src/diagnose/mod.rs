//! Failures and preflight findings -> a [`Diagnosis`]: a stable kind from the catalog
//! (`assets/errors.toml`), plain words (what happened, why), numbered fix steps, the one-key fix
//! actions, what it concerns, and the raw code, message, request-id and time for support.
//!
//! Classification goes by HTTP status, Graph `code` and `details[].target` first; the message
//! is only a fallback (Microsoft's docs say to branch on `code`).
//!
//! Wiring (for the engine and the Errors tab):
//! - a failed plan op: `diagnose_graph(&err, &Context::for_op(&op).with_body(body))`, plus
//!   `.with_password(pw)` for a password write (only its length is kept) and `.with_holder(..)`
//!   when the holder of a conflicting address is known;
//! - a token failure: `diagnose_auth(&err)`; an import failure: `diagnose_import(..)`;
//! - a preflight finding: `diagnose_issue(&issue, subject)`;
//! - `app::explain` can be replaced by these; the catalog covers every case it covers.
//!
//! `GraphError::Api` keeps no `error.details` yet, so [`Context::with_body`] parses them from
//! the raw body. Once `graph` keeps `details: Vec<ErrorDetail>` (code, message, target) in
//! `GraphError::Api` (from the envelope and from `$batch` items), `diagnose_graph` should read
//! them from the error and `with_body` becomes unnecessary.
pub mod catalog;
pub mod classify;

use serde::{Deserialize, Serialize};

pub use catalog::{Catalog, CatalogError, Entry, FixAction};
pub use classify::{
    diagnose_auth, diagnose_directory, diagnose_failure, diagnose_graph, diagnose_import,
    diagnose_issue, diagnose_recorded, diagnose_stalled, diagnose_undelivered, parse_details,
    Context, ErrorDetail, Operation,
};

/// What a diagnosis is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(tag = "type", content = "name", rename_all = "kebab-case")]
pub enum Subject {
    /// A user, by email or UPN.
    User(String),
    /// A group, by name.
    Group(String),
    /// An operation on no single object ("list users", "sign-in").
    Op(String),
    #[default]
    None,
}

impl Subject {
    /// As the texts name it: `user a@b.com`, `group Sales (EU)`, `list users`.
    pub fn label(&self) -> String {
        match self {
            Subject::User(u) => format!("user {u}"),
            Subject::Group(g) => format!("group \"{g}\""),
            Subject::Op(o) => o.clone(),
            Subject::None => "this object".into(),
        }
    }
    pub fn name(&self) -> &str {
        match self {
            Subject::User(s) | Subject::Group(s) | Subject::Op(s) => s,
            Subject::None => "",
        }
    }
}

/// What Microsoft sent, kept verbatim for support.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RawError {
    /// HTTP status (Graph); `None` for token errors and transport failures.
    pub status: Option<u16>,
    /// Graph `code` (`Request_BadRequest`), `AADSTS65001` for token errors, or ours
    /// (`Transport`, `preflight`).
    pub code: String,
    pub message: String,
    /// Graph `request-id`.
    pub request_id: Option<String>,
    /// Graph `innerError.date` / the token error's `timestamp`, as sent.
    pub date: Option<String>,
    /// The identity platform's `trace_id` (token errors).
    pub trace_id: Option<String>,
    /// `details[].target` when Graph named the property (`userPrincipalName`).
    pub target: Option<String>,
}

/// One failure or finding, explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// Stable catalog id (`upn-domain-unverified`).
    pub kind: String,
    pub title: String,
    /// What happened.
    pub what: String,
    /// Why.
    pub why: String,
    /// Fix steps, in order.
    pub steps: Vec<String>,
    /// The main one-key fix, if any.
    pub fix: Option<FixAction>,
    /// Further one-key fixes.
    pub also: Vec<FixAction>,
    pub subject: Subject,
    /// For a permission failure: the Graph permission the operation needs.
    pub permission: Option<String>,
    pub raw: Option<RawError>,
}

impl Diagnosis {
    /// The steps numbered as shown: `1. ...`.
    pub fn numbered_steps(&self) -> Vec<String> {
        self.steps
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{}. {s}", i + 1))
            .collect()
    }

    /// Every fix action offered, main one first.
    pub fn fixes(&self) -> Vec<FixAction> {
        self.fix
            .iter()
            .copied()
            .chain(self.also.iter().copied())
            .collect()
    }
}
