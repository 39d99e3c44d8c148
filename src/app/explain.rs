//! Failures as the Errors tab shows them: each one a catalog [`Diagnosis`] (from
//! `diagnose::diagnose_*`), plus what the one-key fixes need to act on it (the directory user,
//! the op that failed, the preflight issue).
use serde::Serialize;

use crate::auth::AuthError;
use crate::diagnose::{
    diagnose_auth, diagnose_directory, diagnose_failure, diagnose_graph, diagnose_import,
    diagnose_issue, diagnose_recorded, diagnose_undelivered, Context, Diagnosis, FixAction,
    Operation, Subject,
};
use crate::directory::ImportFailure;
use crate::failure::Failure;
use crate::graph::GraphError;
use crate::sync::ops::AnyOp;
use crate::sync::plan::Op;
use crate::sync::preflight::Issue;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorSource {
    Import,
    Graph,
    SignIn,
    Directory,
    /// A preflight finding: the op was held back, nothing was sent.
    Preflight,
    /// An error Microsoft recorded on an account (a licence group-based licensing could not
    /// give), read with the plan.
    Tenant,
}

impl ErrorSource {
    pub fn label(self) -> &'static str {
        match self {
            ErrorSource::Import => "import",
            ErrorSource::Graph => "graph",
            ErrorSource::SignIn => "sign-in",
            ErrorSource::Directory => "directory",
            ErrorSource::Preflight => "preflight",
            ErrorSource::Tenant => "tenant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorEntry {
    pub source: ErrorSource,
    /// The raw code: `Request_BadRequest`, `AADSTS70016`, `email-exists`, `preflight`.
    pub code: String,
    /// What it was about (a UPN, "list users", "sign-in").
    pub subject: String,
    /// The raw message.
    pub message: String,
    pub status: Option<u16>,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    /// When, as sent (Graph `innerError.date`, the import time).
    pub at: Option<String>,
    /// Plain words: what happened (the diagnosis').
    pub what: String,
    /// Plain words: what to do (the diagnosis' steps, numbered, on one line).
    pub todo: String,
    /// Identity, to list each failure once.
    pub key: Option<String>,
    /// The catalog's explanation.
    pub diag: Diagnosis,
    /// The directory user it concerns, when known (the fixes act on it).
    pub directory_id: Option<i64>,
    /// The op that failed or was held back (retry re-sends it).
    pub op: Option<Op>,
    /// The preflight finding (its suggestion, who holds the address).
    pub issue: Option<Issue>,
    /// The tenant user of an import failure (import again, link).
    pub tenant_user_id: Option<String>,
}

impl ErrorEntry {
    fn new(source: ErrorSource, subject: &str, diag: Diagnosis) -> ErrorEntry {
        let raw = diag.raw.clone().unwrap_or_default();
        ErrorEntry {
            source,
            code: raw.code,
            subject: subject.to_string(),
            message: raw.message,
            status: raw.status,
            request_id: raw.request_id,
            trace_id: raw.trace_id,
            at: raw.date,
            what: diag.what.clone(),
            todo: diag.numbered_steps().join(" "),
            key: None,
            diag,
            directory_id: None,
            op: None,
            issue: None,
            tenant_user_id: None,
        }
    }

    /// Any diagnosis as an entry of the Errors tab.
    pub fn from_diagnosis(source: ErrorSource, subject: &str, d: Diagnosis) -> ErrorEntry {
        ErrorEntry::new(source, subject, d)
    }

    /// The catalog kind (`upn-domain-unverified`).
    pub fn kind(&self) -> &str {
        &self.diag.kind
    }

    /// Every one-key fix this entry offers, main one first.
    pub fn fixes(&self) -> Vec<FixAction> {
        self.diag.fixes()
    }

    pub fn from_import(f: &ImportFailure) -> ErrorEntry {
        let d = diagnose_import(&f.kind, &f.user_principal_name, &f.message, Some(&f.at));
        let mut e = ErrorEntry::new(ErrorSource::Import, &f.user_principal_name, d);
        e.key = Some(format!("{}|{}|{}", f.tenant_user_id, f.kind, f.at));
        e.tenant_user_id = Some(f.tenant_user_id.clone());
        e
    }

    pub fn from_graph(subject: &str, e: &GraphError) -> ErrorEntry {
        let op = match subject {
            "list tenant users" => Operation::ListUsers,
            _ => Operation::Other,
        };
        let d = diagnose_graph(e, &Context::new(op, Subject::Op(subject.to_string())));
        ErrorEntry::new(ErrorSource::Graph, subject, d)
    }

    /// An op the apply engine reported failed.
    pub fn from_op(op: &AnyOp, e: &GraphError) -> ErrorEntry {
        ErrorEntry::from_op_diagnosis(op, diagnose_graph(e, &Context::for_any_op(op)))
    }

    /// A failed op, explained (from a run, or from the journal of an earlier one).
    pub fn from_op_diagnosis(op: &AnyOp, d: Diagnosis) -> ErrorEntry {
        let mut x = ErrorEntry::new(
            ErrorSource::Graph,
            &format!("{} {}", op.kind().label(), op.target()),
            d,
        );
        x.directory_id = op.user().map(|o| o.directory_id);
        x.op = op.user().cloned();
        x.key = Some(format!(
            "op:{}:{}:{:?}:{}",
            op.user_id().unwrap_or(0),
            op.group_id().unwrap_or(0),
            op.kind(),
            x.code
        ));
        x
    }

    /// A failure an effect reported, with its type: the catalog kind, the permission and the
    /// request-id come through.
    pub fn from_failure(f: &Failure) -> ErrorEntry {
        let d = diagnose_failure(f);
        let source = match f {
            Failure::Graph { .. } => ErrorSource::Graph,
            Failure::Auth(_) => ErrorSource::SignIn,
            _ => ErrorSource::Directory,
        };
        let subject = match &d.subject {
            Subject::None => d.title.clone(),
            s => s.name().to_string(),
        };
        ErrorEntry::new(source, &subject, d)
    }

    /// A preflight finding; `op` is the op it holds back, if any.
    pub fn from_issue(issue: &Issue, email: &str, op: Option<&Op>) -> ErrorEntry {
        let subject = if issue.field == "displayName" && op.is_none() {
            Subject::Group(issue.value.clone())
        } else {
            Subject::User(email.to_string())
        };
        let d = diagnose_issue(issue, subject);
        let mut x = ErrorEntry::new(ErrorSource::Preflight, email, d);
        x.directory_id = Some(issue.directory_id);
        x.op = op.cloned();
        x.issue = Some(issue.clone());
        x.key = Some(format!(
            "preflight:{}:{}:{}",
            issue.directory_id, issue.kind, issue.value
        ));
        x
    }

    /// A preflight finding about the directory group `name` (the issue's `directory_id` is
    /// the group's id, which the group fixes use).
    pub fn from_group_issue(issue: &Issue, name: &str) -> ErrorEntry {
        let d = diagnose_issue(issue, Subject::Group(name.to_string()));
        let mut x = ErrorEntry::new(ErrorSource::Preflight, name, d);
        x.directory_id = Some(issue.directory_id);
        x.issue = Some(issue.clone());
        x.key = Some(format!(
            "preflight-group:{}:{}:{}",
            issue.directory_id, issue.kind, issue.value
        ));
        x
    }

    /// A licence error Microsoft recorded on the account of `email` (the issue's
    /// `directory_id` is the directory user's, 0 when no directory user is linked to it).
    pub fn from_recorded(issue: &Issue, email: &str) -> ErrorEntry {
        let d = diagnose_recorded(issue, Subject::User(email.to_string()));
        let mut x = ErrorEntry::new(ErrorSource::Tenant, email, d);
        x.directory_id = (issue.directory_id != 0).then_some(issue.directory_id);
        x.issue = Some(issue.clone());
        x.key = Some(format!(
            "tenant:{email}:{}:{}",
            issue.kind,
            issue.value.to_ascii_lowercase()
        ));
        x
    }

    pub fn from_auth(subject: &str, e: &AuthError) -> ErrorEntry {
        ErrorEntry::new(ErrorSource::SignIn, subject, diagnose_auth(e))
    }

    /// An account created whose generated password was never delivered (a killed run, a
    /// hand-off file that failed): nobody knows it.
    pub fn password_lost(email: &str, at: &str) -> ErrorEntry {
        let mut x = ErrorEntry::new(
            ErrorSource::Directory,
            &format!("create account of {email}"),
            diagnose_undelivered(email, at),
        );
        x.key = Some(format!("password-lost:{email}"));
        x
    }

    pub fn from_directory(subject: &str, message: &str) -> ErrorEntry {
        ErrorEntry::new(
            ErrorSource::Directory,
            subject,
            diagnose_directory(subject, message),
        )
    }
}
