//! Failures as the Errors tab shows them: what happened in plain words, what to do, and the raw
//! code, message and ids support asks for.
use crate::auth::AuthError;
use crate::directory::ImportFailure;
use crate::graph::GraphError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorSource {
    Import,
    Graph,
    SignIn,
    Directory,
}

impl ErrorSource {
    pub fn label(self) -> &'static str {
        match self {
            ErrorSource::Import => "import",
            ErrorSource::Graph => "graph",
            ErrorSource::SignIn => "sign-in",
            ErrorSource::Directory => "directory",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorEntry {
    pub source: ErrorSource,
    /// Stable kind or raw code: `email-exists`, `Authorization_RequestDenied`, `AADSTS70016`.
    pub code: String,
    /// What it was about (a UPN, "list users", "sign-in").
    pub subject: String,
    /// The raw message.
    pub message: String,
    pub status: Option<u16>,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    /// When, as text (RFC 3339 from the directory) if known.
    pub at: Option<String>,
    /// Plain words: what happened.
    pub what: String,
    /// Plain words: what to do.
    pub todo: String,
    /// Identity of an import failure, to list each one once.
    pub key: Option<String>,
}

impl ErrorEntry {
    pub fn from_import(f: &ImportFailure) -> ErrorEntry {
        let (what, todo) = match f.kind.as_str() {
            "email-exists" => (
                "A directory user already has this email address, so importing this tenant user \
                 would have created a duplicate. Nothing was created."
                    .to_string(),
                "Check that the directory user and the tenant user are the same person; if so, \
                 link them; if not, change the email of one of them, then import again."
                    .to_string(),
            ),
            "missing-email" | "no-email" => (
                "The tenant user has neither a mail address nor a usable UPN to match on.".into(),
                "Give the account a mail address in Microsoft 365, then import again.".into(),
            ),
            _ => (
                format!("The directory refused to import this user ({}).", f.kind),
                "Read the message below; fix the cause in the directory or the tenant, then \
                 import again."
                    .into(),
            ),
        };
        ErrorEntry {
            source: ErrorSource::Import,
            code: f.kind.clone(),
            subject: f.user_principal_name.clone(),
            message: f.message.clone(),
            status: None,
            request_id: None,
            trace_id: None,
            at: Some(f.at.clone()),
            what,
            todo,
            key: Some(format!("{}|{}|{}", f.tenant_user_id, f.kind, f.at)),
        }
    }

    pub fn from_graph(subject: &str, e: &GraphError) -> ErrorEntry {
        let (what, todo) = explain_graph(e);
        let (message, at) = match e {
            GraphError::Api { message, date, .. } => (message.clone(), date.clone()),
            other => (other.to_string(), None),
        };
        ErrorEntry {
            source: ErrorSource::Graph,
            code: e.code().to_string(),
            subject: subject.to_string(),
            message,
            status: e.status(),
            request_id: e.request_id().map(str::to_string),
            trace_id: None,
            at,
            what,
            todo,
            key: None,
        }
    }

    pub fn from_auth(subject: &str, e: &AuthError) -> ErrorEntry {
        let (what, todo) = explain_auth(e);
        let (code, trace_id) = match e {
            AuthError::OAuth {
                error,
                codes,
                trace_id,
                ..
            } => (
                codes
                    .first()
                    .map(|c| format!("AADSTS{c}"))
                    .unwrap_or_else(|| error.clone()),
                trace_id.clone(),
            ),
            AuthError::Declined => ("authorization_declined".into(), None),
            AuthError::Expired => ("expired_token".into(), None),
            AuthError::BadVerificationCode => ("bad_verification_code".into(), None),
            AuthError::Transport(_) => ("Transport".into(), None),
            AuthError::Malformed(_) => ("MalformedResponse".into(), None),
            AuthError::NotSignedIn(_) => ("NotSignedIn".into(), None),
            AuthError::Config(_) => ("Config".into(), None),
        };
        ErrorEntry {
            source: ErrorSource::SignIn,
            code,
            subject: subject.to_string(),
            message: e.to_string(),
            status: None,
            request_id: None,
            trace_id,
            at: None,
            what,
            todo,
            key: None,
        }
    }

    /// An account an interrupted run created: it exists, but the temporary password it was
    /// given died with that run, so nobody can sign in to it yet.
    pub fn password_lost(email: &str) -> ErrorEntry {
        ErrorEntry {
            what: format!(
                "The account of {email} was created by a run that was interrupted before its \
                 temporary password could be shown, so nobody knows that password."
            ),
            todo: "On the Bindings tab, select the user and press P to set a new password; it \
                   is pushed to the account at once."
                .into(),
            code: "password-lost".into(),
            key: Some(format!("password-lost:{email}")),
            ..ErrorEntry::from_directory_io(&format!("create account of {email}"), "")
        }
    }

    pub fn from_directory(subject: &str, message: &str) -> ErrorEntry {
        if let Some((what, todo)) = internal(message) {
            return ErrorEntry {
                what,
                todo,
                ..ErrorEntry::from_directory_io(subject, message)
            };
        }
        ErrorEntry::from_directory_io(subject, message)
    }

    fn from_directory_io(subject: &str, message: &str) -> ErrorEntry {
        ErrorEntry {
            source: ErrorSource::Directory,
            code: "directory".into(),
            subject: subject.to_string(),
            message: message.to_string(),
            status: None,
            request_id: None,
            trace_id: None,
            at: None,
            what: "The local directory database could not be read or written.".into(),
            todo: "Check that the data directory exists and is writable and that the disk is not \
                   full; another m365sync may be migrating it. Then press r."
                .into(),
            key: None,
        }
    }
}

/// What to say about a panic of m365sync's own code, caught and reported as an error.
fn internal(message: &str) -> Option<(String, String)> {
    message.contains("internal error:").then(|| {
        (
            "m365sync hit an internal error (a bug, not a problem of the tenant).".to_string(),
            "Press r to try again; if it happens again, report it with the detail below."
                .to_string(),
        )
    })
}

pub fn explain_graph(e: &GraphError) -> (String, String) {
    if let GraphError::Malformed(m) = e {
        if let Some(x) = internal(m) {
            return x;
        }
    }
    match e {
        GraphError::Transport(_) => (
            "Microsoft Graph could not be reached: the request got no answer.".into(),
            "Check the network, proxy or VPN of this machine, then press r to load again.".into(),
        ),
        GraphError::Malformed(_) => (
            "Graph answered with something that is not a Graph response (a proxy or captive \
             portal may be in the way)."
                .into(),
            "Check the Graph URL in the settings and any proxy in between, then press r.".into(),
        ),
        GraphError::Auth(_) => (
            "There is no valid token for Graph: the sign-in expired or its refresh failed.".into(),
            "Quit and start m365sync again to sign in (or run `m365sync login`).".into(),
        ),
        GraphError::Api { status, code, .. } => match (status, code.as_str()) {
            (403, _) | (_, "Authorization_RequestDenied") => (
                "The signed-in account or app lacks the permission for this request.".into(),
                "Grant User.ReadWrite.All (admin consent) to the app, or sign in as an admin \
                 with the User Administrator role."
                    .into(),
            ),
            (401, _) | (_, "InvalidAuthenticationToken") => (
                "Graph rejected the access token (expired, revoked or for another tenant).".into(),
                "Sign in again: quit and restart m365sync, or run `m365sync login`.".into(),
            ),
            (429, _) => (
                "Graph is throttling this tenant: too many requests in a short time.".into(),
                "Wait a minute and press r; m365sync already waited as Graph asked before giving \
                 up."
                .into(),
            ),
            (404, _) | (_, "Request_ResourceNotFound") => (
                "Graph does not know the object asked for (deleted, or another tenant).".into(),
                "Reload the users with r.".into(),
            ),
            (s, _) if *s >= 500 => (
                "Microsoft Graph had an internal problem and could not answer.".into(),
                "Try again in a few minutes with r; if it lasts, give the request-id below to \
                 Microsoft support."
                    .into(),
            ),
            _ => (
                "Graph refused the request.".into(),
                "Read the message below; if it is unclear, give the request-id to Microsoft \
                 support."
                    .into(),
            ),
        },
    }
}

pub fn explain_auth(e: &AuthError) -> (String, String) {
    if let AuthError::Malformed(m) = e {
        if let Some(x) = internal(m) {
            return x;
        }
    }
    match e {
        AuthError::Declined => (
            "The sign-in was declined on the Microsoft sign-in page.".into(),
            "Press r for a new code if that was a mistake.".into(),
        ),
        AuthError::Expired => (
            "The code expired before anyone approved it.".into(),
            "Press r for a new code and enter it within the time shown.".into(),
        ),
        AuthError::BadVerificationCode => (
            "The identity platform did not recognise the sign-in code.".into(),
            "Press r for a new code.".into(),
        ),
        AuthError::Transport(_) => (
            "The identity platform (login.microsoftonline.com) could not be reached.".into(),
            "Check the network, proxy or VPN of this machine, then press r.".into(),
        ),
        AuthError::Malformed(_) => (
            "The identity platform answered with something unexpected.".into(),
            "Check the authority URL in the settings, then press r.".into(),
        ),
        AuthError::NotSignedIn(_) => (
            "Nobody is signed in to this tenant.".into(),
            "Sign in with the device code.".into(),
        ),
        AuthError::Config(_) => (
            "The sign-in settings are incomplete or wrong.".into(),
            "Set the tenant and client id (flags, environment or config.toml).".into(),
        ),
        AuthError::OAuth { codes, error, .. } => {
            let code = codes.first().copied().unwrap_or(0);
            let what = match code {
                50076 | 50079 => {
                    "The tenant requires multi-factor authentication for this sign-in."
                }
                50126 => "The user name or password was wrong.",
                50020 | 50034 => "The account does not exist in this tenant.",
                50053 => "The account is locked after too many failed sign-ins.",
                53003 => "A Conditional Access policy blocked this sign-in.",
                65001 => "Nobody has consented to the app's permissions in this tenant yet.",
                70016 => "The code has not been approved yet.",
                90002 | 90072 => {
                    "The tenant was not found, or the account belongs to another tenant."
                }
                700016 => "The app (client id) is not registered in this tenant.",
                7000218 => "The app registration does not allow public client flows (device code).",
                _ if error == "invalid_client" => "The identity platform did not accept the app.",
                _ if error == "invalid_scope" => {
                    "The app asked for a permission the tenant does not offer."
                }
                _ => "Microsoft refused the sign-in.",
            };
            let todo = match code {
                50076 | 50079 => "Approve the sign-in with the second factor on the device page, then press r.",
                65001 => "Ask a Global Administrator to grant admin consent to the app, then press r.",
                90002 | 90072 => "Check the tenant setting (domain or tenant id) and the account, then press r.",
                700016 => "Check the client id setting and that the app is registered in this tenant.",
                7000218 => "In the app registration, turn on 'Allow public client flows', then press r.",
                53003 => "Sign in from a device and place the policy allows, or ask an admin.",
                _ => "Read the AADSTS code below (Microsoft documents each one), fix the cause, then press r.",
            };
            (what.to_string(), todo.to_string())
        }
    }
}
