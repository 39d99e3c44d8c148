//! Classification: a Graph error, a token error, an import failure or a preflight issue -> the
//! catalog kind, filled in for this case.
use serde::{Deserialize, Serialize};

use super::catalog::{fill, Catalog, FixAction};
use super::{Diagnosis, RawError, Subject};
use crate::auth::AuthError;
use crate::graph::GraphError;
use crate::sync::plan::{Op, OpKind};
use crate::sync::preflight::{self, Issue};

/// The Graph operation that failed: decides which permission a 403 is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    ListUsers,
    ListDeletedUsers,
    ListDomains,
    CreateUser,
    UpdateUser,
    /// PATCH accountEnabled = true (re-enable, takeover).
    EnableUser,
    /// PATCH accountEnabled = false (block sign-in).
    DisableUser,
    /// PATCH passwordProfile.
    SetPassword,
    /// POST /directory/deletedItems/{id}/restore.
    RestoreUser,
    /// DELETE /directory/deletedItems/{id}.
    PurgeDeletedUser,
    /// POST /users/{id}/revokeSignInSessions.
    RevokeSessions,
    /// DELETE /users/{id} (soft delete).
    DeleteUser,
    /// POST /users/{id}/assignLicense removing licences.
    RemoveLicenses,
    ListGroups,
    CreateGroup,
    AddMember,
    RemoveMember,
    /// POST /users/{id}/assignLicense.
    AssignLicense,
    /// GET /subscribedSkus.
    ListLicences,
    #[default]
    Other,
}

impl Operation {
    /// The least-privileged Graph permission (graph-notes §2, §3, §4, §9).
    pub fn permission(self) -> &'static str {
        match self {
            Operation::ListUsers | Operation::ListDeletedUsers => "User.Read.All",
            Operation::ListDomains => "Domain.Read.All",
            Operation::CreateUser | Operation::UpdateUser => "User.ReadWrite.All",
            Operation::EnableUser | Operation::DisableUser => {
                "User.EnableDisableAccount.All (with User.Read.All)"
            }
            Operation::SetPassword => {
                "User-PasswordProfile.ReadWrite.All (app-only: plus the User Administrator role)"
            }
            Operation::RestoreUser => "User.DeleteRestore.All (or User.ReadWrite.All)",
            // graph-notes §16: no application permission purges a user.
            Operation::PurgeDeletedUser => {
                "User.ReadWrite.All, delegated only: sign in as a User Administrator (an \
                 app-only session cannot purge users)"
            }
            Operation::RevokeSessions => "User.RevokeSessions.All (or User.ReadWrite.All)",
            Operation::DeleteUser => "User.ReadWrite.All (newer: User.DeleteRestore.All)",
            Operation::RemoveLicenses => "LicenseAssignment.ReadWrite.All (or User.ReadWrite.All)",
            Operation::ListGroups => "Group.Read.All",
            Operation::CreateGroup => "Group.ReadWrite.All (or Group.Create)",
            Operation::AddMember | Operation::RemoveMember => "GroupMember.ReadWrite.All",
            Operation::AssignLicense => "LicenseAssignment.ReadWrite.All",
            Operation::ListLicences => "Organization.Read.All",
            Operation::Other => "User.ReadWrite.All",
        }
    }

    /// As a sentence fragment: "Graph refused to {label}".
    pub fn label(self) -> &'static str {
        match self {
            Operation::ListUsers => "list users",
            Operation::ListDeletedUsers => "list deleted users",
            Operation::ListDomains => "list domains",
            Operation::CreateUser => "create the user",
            Operation::UpdateUser => "update the user",
            Operation::EnableUser => "enable sign-in",
            Operation::DisableUser => "block sign-in",
            Operation::SetPassword => "set the password",
            Operation::RestoreUser => "restore the deleted user",
            Operation::PurgeDeletedUser => "permanently delete the user",
            Operation::RevokeSessions => "sign the user out everywhere",
            Operation::DeleteUser => "delete the account",
            Operation::RemoveLicenses => "remove the user's licences",
            Operation::ListGroups => "list groups",
            Operation::CreateGroup => "create the group",
            Operation::AddMember => "add the member",
            Operation::RemoveMember => "remove the member",
            Operation::AssignLicense => "assign the licences",
            Operation::ListLicences => "read the tenant's licences",
            Operation::Other => "complete the request",
        }
    }

    /// The operation of any op kind, user or group.
    pub fn for_kind(kind: crate::sync::ops::Kind) -> Operation {
        use crate::sync::groups::GroupOpKind;
        use crate::sync::ops::Kind;
        match kind {
            Kind::User(k) => Operation::for_op(k),
            Kind::Group(GroupOpKind::CreateGroup) => Operation::CreateGroup,
            Kind::Group(GroupOpKind::LinkGroup) => Operation::ListGroups,
            Kind::Group(GroupOpKind::AddMember) => Operation::AddMember,
            Kind::Group(GroupOpKind::RemoveMember) => Operation::RemoveMember,
        }
    }

    pub fn for_op(kind: OpKind) -> Operation {
        match kind {
            OpKind::Create => Operation::CreateUser,
            OpKind::Takeover | OpKind::ReEnable => Operation::EnableUser,
            OpKind::Restore => Operation::RestoreUser,
            // Recording steps sends nothing: it is part of blocking a leaver.
            OpKind::Block | OpKind::RecordSteps => Operation::DisableUser,
            OpKind::SetPassword => Operation::SetPassword,
            OpKind::RevokeSessions => Operation::RevokeSessions,
            OpKind::DeleteUser => Operation::DeleteUser,
            OpKind::RemoveLicenses => Operation::RemoveLicenses,
            OpKind::UpdateAttributes | OpKind::SetManager => Operation::UpdateUser,
            OpKind::AssignLicense => Operation::AssignLicense,
        }
    }
}

/// One entry of Graph's `error.details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ErrorDetail {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub target: String,
}

/// `error.details` of a Graph error body (empty when absent or not an envelope).
/// `GraphError::Api` does not keep them yet: callers with the body pass it here.
pub fn parse_details(body: &[u8]) -> Vec<ErrorDetail> {
    #[derive(Deserialize)]
    struct Env {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(default)]
        details: Vec<ErrorDetail>,
    }
    serde_json::from_slice::<Env>(body)
        .map(|e| e.error.details)
        .unwrap_or_default()
}

/// What was being done when the error came: the operation, what it concerns, and anything the
/// error itself does not carry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Context {
    pub op: Operation,
    pub subject: Subject,
    /// The value sent that the error is probably about (the UPN, the mailNickname).
    pub value: Option<String>,
    /// Graph's `error.details` (from [`parse_details`] until `GraphError` keeps them).
    pub details: Vec<ErrorDetail>,
    /// Who holds a conflicting address, if the caller looked it up ("soft-deleted user x").
    pub holder: Option<String>,
    /// Length in characters of the password sent (the password itself is never kept).
    pub password_len: Option<usize>,
}

impl Context {
    pub fn new(op: Operation, subject: Subject) -> Context {
        Context {
            op,
            subject,
            ..Context::default()
        }
    }
    /// The context of a plan op: its operation, the user, and the UPN as value.
    pub fn for_op(op: &Op) -> Context {
        Context {
            op: Operation::for_op(op.kind),
            subject: Subject::User(op.email.clone()),
            value: Some(op.upn.clone()),
            ..Context::default()
        }
    }
    /// The context of any op: its operation, its subject (the user, or the group), and the
    /// value it sends that an error is most likely about.
    pub fn for_any_op(op: &crate::sync::ops::AnyOp) -> Context {
        use crate::sync::ops::AnyOp;
        match op {
            AnyOp::User(o) => Context::for_op(o),
            AnyOp::Group(g) => Context {
                op: Operation::for_kind(op.kind()),
                subject: op.subject(),
                value: Some(match &g.member {
                    Some(m) => m.email.clone(),
                    None => g.mail_nickname.clone(),
                }),
                ..Context::default()
            },
        }
    }

    pub fn with_value(mut self, v: impl Into<String>) -> Context {
        self.value = Some(v.into());
        self
    }
    /// Takes `details` from the raw error body.
    pub fn with_body(mut self, body: &[u8]) -> Context {
        self.details = parse_details(body);
        self
    }
    pub fn with_details(mut self, d: Vec<ErrorDetail>) -> Context {
        self.details = d;
        self
    }
    /// Keeps only the length of the password sent: it tells password-length from
    /// password-complexity, and is all a diagnosis may show.
    pub fn with_password(mut self, password: &str) -> Context {
        self.password_len = Some(password.chars().count());
        self
    }
    pub fn with_holder(mut self, h: impl Into<String>) -> Context {
        self.holder = Some(h.into());
        self
    }
}

/// Values for the catalog's placeholders.
#[derive(Default)]
struct Vars<'a> {
    subject: Option<String>,
    value: Option<&'a str>,
    permission: Option<&'a str>,
    domain: Option<String>,
    holder: Option<&'a str>,
    status: Option<u16>,
    code: Option<&'a str>,
    message: Option<&'a str>,
    retry_after: Option<String>,
}

fn build(kind: &str, subject: Subject, vars: Vars<'_>, raw: Option<RawError>) -> Diagnosis {
    let cat = Catalog::builtin();
    let e = cat.get_or_unknown(kind);
    let subject_label = vars.subject.clone().unwrap_or_else(|| subject.label());
    let get = |name: &str| -> Option<String> {
        match name {
            "subject" => Some(subject_label.clone()),
            "value" => vars.value.map(str::to_string),
            "permission" => vars.permission.map(str::to_string),
            "domain" => vars.domain.clone(),
            "holder" => vars.holder.map(|h| format!(" ({h})")),
            "status" => vars.status.map(|s| s.to_string()),
            "code" => vars.code.map(str::to_string),
            "message" => vars.message.map(str::to_string),
            "retry_after" => vars.retry_after.clone(),
            _ => None,
        }
    };
    // A user's alias comes from the email: the fix is editing the email, not the alias.
    let (fix, also) = match (&subject, e.fix) {
        (Subject::User(_), Some(FixAction::SanitizeNickname))
            if e.also.contains(&FixAction::EditEmail) =>
        {
            (Some(FixAction::EditEmail), Vec::new())
        }
        _ => (e.fix, e.also.clone()),
    };
    Diagnosis {
        kind: e.id.clone(),
        title: fill(&e.title, &get),
        what: fill(&e.what, &get),
        why: fill(&e.why, &get),
        steps: e.steps.iter().map(|s| fill(s, &get)).collect(),
        fix,
        also,
        subject,
        permission: vars.permission.map(str::to_string),
        raw,
    }
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.to_ascii_lowercase()
        .contains(&needle.to_ascii_lowercase())
}

/// The property named in `Another object with the same value for property X already exists.`
fn conflict_property(message: &str) -> Option<&str> {
    let rest = message.split("same value for property ").nth(1)?;
    rest.split([' ', '.']).next()
}

fn conflict_kind(target: &str) -> &'static str {
    match target.to_ascii_lowercase().as_str() {
        "userprincipalname" => "upn-exists",
        "proxyaddresses" | "mail" | "othermails" => "proxy-address-held",
        "mailnickname" => "mailnickname-exists",
        _ => "unknown",
    }
}

/// Which mailNickname kind applies to the value sent (forbidden char when unknown).
fn nickname_kind(value: Option<&str>) -> &'static str {
    value
        .and_then(|v| preflight::check_mail_nickname(v).into_iter().next())
        .map(|p| p.kind)
        .unwrap_or("mailnickname-forbidden-char")
}

/// By status, code and details target; the message only as a fallback.
fn classify_api(
    status: u16,
    code: &str,
    message: &str,
    ctx: &Context,
) -> (&'static str, Option<String>) {
    // 1. details: ObjectConflict names the property.
    for d in &ctx.details {
        if d.code.eq_ignore_ascii_case("ObjectConflict") && !d.target.is_empty() {
            let k = conflict_kind(&d.target);
            if k != "unknown" {
                return (k, Some(d.target.clone()));
            }
        }
    }
    let target = ctx
        .details
        .iter()
        .find(|d| !d.target.is_empty())
        .map(|d| d.target.clone());
    // 2. status and code (m365sync's own codes for ops it did not send first).
    let kind = match (status, code) {
        (_, "not-sent") => "not-sent",
        (_, "outcome-unknown" | "password-not-kept") => "outcome-unknown",
        (429, _)
        | (_, "TooManyRequests" | "activityLimitReached" | "Request_ThrottledTemporarily") => {
            "throttled"
        }
        (_, "Request_ThrottledPermanently") => "throttled",
        (_, "Authorization_IdentityNotFound") => "app-not-in-tenant",
        (401, _) | (_, "InvalidAuthenticationToken" | "unauthenticated") => "token-expired",
        (_, "Directory_QuotaExceeded" | "quotaLimitReached") => "directory-quota-exceeded",
        (_, "notSupported" | "Request_NotSupported") => "tenant-not-supported",
        (403, _) | (_, "Authorization_RequestDenied" | "accessDenied")
            if matches!(ctx.op, Operation::AssignLicense | Operation::ListLicences)
                && !tenant_refuses(message) =>
        {
            "licence-permission-missing"
        }
        (403, _) | (_, "Authorization_RequestDenied" | "accessDenied") => {
            if tenant_refuses(message) {
                "tenant-not-supported"
            } else {
                "insufficient-privileges"
            }
        }
        // Set by the client: a 404 that is not Graph's (or one on a collection that always
        // exists). The object is not gone: the requests do not reach Graph.
        (404, crate::graph::UNKNOWN_ENDPOINT) => "graph-url-wrong",
        (404, _) | (_, "Request_ResourceNotFound" | "itemNotFound" | "ResourceNotFound")
            if matches!(
                ctx.op,
                Operation::RevokeSessions | Operation::DeleteUser | Operation::RemoveLicenses
            ) =>
        {
            "deprovision-account-gone"
        }
        (404, _) | (_, "Request_ResourceNotFound" | "itemNotFound" | "ResourceNotFound") => {
            "object-not-found"
        }
        (500..=599, _)
        | (
            _,
            "generalException"
            | "serviceNotAvailable"
            | "Service_InternalServerError"
            | "ServiceUnavailable"
            | "UnknownError",
        ) => "service-unavailable",
        (405, _) | (_, "Request_UnsupportedQuery" | "invalidRequest") => "invalid-request",
        _ => by_message(message, ctx),
    };
    (kind, target)
}

/// A tenant-wide refusal (partner-managed, read-only, migrating), from the message. Microsoft
/// documents no code for it; these phrasings are heuristics.
fn tenant_refuses(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    (m.contains("tenant") || m.contains("directory") || m.contains("organization"))
        && (m.contains("not supported")
            || m.contains("read-only")
            || m.contains("read only")
            || m.contains("is not allowed for this")
            || m.contains("partner"))
}

/// `assignLicense` refusals (graph-notes §14.2 exact strings; the conflict's wording in two
/// forms, the missing dependency's as the audit log and a real 400 word it).
fn licence_kind(m: &str) -> Option<&'static str> {
    Some(
        if contains_ci(
            m,
            "License assignment cannot be done for user with invalid usage location",
        ) {
            "licence-usage-location"
        } else if contains_ci(m, "does not correspond to a valid company License") {
            "licence-sku-unknown"
        } else if contains_ci(m, "does not have any available licenses") {
            "licence-no-seats"
        } else if contains_ci(m, "are mutually exclusive")
            || (contains_ci(m, "License assignment failed") && contains_ci(m, "conflicts with"))
        {
            "licence-plan-conflict"
        } else if contains_ci(m, "License assignment failed because service plan")
            && contains_ci(m, "depends on the service plan")
        {
            "licence-plan-dependency"
        } else if contains_ci(m, "inherited from a group membership") {
            "licence-from-group"
        } else if contains_ci(m, "cannot be assigned to a user") {
            "licence-sku-not-assignable"
        } else {
            return None;
        },
    )
}

/// Message fallbacks (graph-notes §4, §5 exact strings).
fn by_message(message: &str, ctx: &Context) -> &'static str {
    let m = message;
    if let Some(k) = licence_kind(m) {
        k
    } else if contains_ci(m, "domain portion of the userPrincipalName") {
        "upn-domain-unverified"
    } else if contains_ci(m, "Property userPrincipalName is invalid") {
        "upn-invalid"
    } else if let Some(p) = conflict_property(m) {
        match conflict_kind(p) {
            "unknown" => "unknown",
            k => k,
        }
    } else if contains_ci(
        m,
        "conflicting object with one or more of the specified property values",
    ) {
        "proxy-address-held"
    } else if contains_ci(m, "password does not comply") {
        if ctx
            .password_len
            .is_some_and(|n| !(preflight::PASSWORD_MIN..=preflight::PASSWORD_MAX).contains(&n))
        {
            "password-length"
        } else {
            "password-complexity"
        }
    } else if contains_ci(m, "property 'mailNickname'") {
        nickname_kind(ctx.value.as_deref())
    } else if contains_ci(m, "on-premises mastered") {
        "synced-from-on-premises"
    } else if contains_ci(m, "Invalid value specified for property 'usageLocation'") {
        "usage-location-invalid"
    } else if contains_ci(
        m,
        "Invalid value specified for property 'preferredLanguage'",
    ) {
        "preferred-language-invalid"
    } else if contains_ci(m, "Invalid value specified for property '") {
        "attribute-invalid"
    } else if contains_ci(m, "onPremisesImmutableId") && contains_ci(m, "required") {
        "federated-domain-needs-immutable-id"
    } else if contains_ci(m, "mail-enabled security group") {
        "group-type-unsupported"
    } else if contains_ci(m, "added object references already exist") {
        "member-already-added"
    } else if contains_ci(m, "removed object references do not exist") {
        "member-not-present"
    } else if contains_ci(m, "HTTP method is not allowed") || contains_ci(m, "Invalid page size") {
        "invalid-request"
    } else if contains_ci(m, "throttled") {
        "throttled"
    } else if tenant_refuses(m) {
        "tenant-not-supported"
    } else {
        "unknown"
    }
}

/// A Graph failure, explained for `ctx`.
pub fn diagnose_graph(err: &GraphError, ctx: &Context) -> Diagnosis {
    let subject = ctx.subject.clone();
    let op_subject = Some(match &ctx.subject {
        Subject::None => ctx.op.label().to_string(),
        s => s.label(),
    });
    match err {
        GraphError::Transport(m) => build(
            "network-unreachable",
            subject,
            Vars::default(),
            Some(RawError {
                code: "Transport".into(),
                message: m.clone(),
                ..RawError::default()
            }),
        ),
        GraphError::Malformed(m) => build(
            if m.contains("internal error:") {
                "internal-error"
            } else {
                "malformed-response"
            },
            subject,
            Vars::default(),
            Some(RawError {
                code: "MalformedResponse".into(),
                message: m.clone(),
                ..RawError::default()
            }),
        ),
        GraphError::Auth(m) => build(
            "not-signed-in",
            subject,
            Vars::default(),
            Some(RawError {
                code: "NotSignedIn".into(),
                message: m.clone(),
                ..RawError::default()
            }),
        ),
        GraphError::Api {
            status,
            code,
            message,
            request_id,
            date,
            retry_after,
        } => {
            let (kind, target) = classify_api(*status, code, message, ctx);
            // A password sent is never shown; its length is.
            let len = ctx.password_len.map(|n| n.to_string());
            let value = if kind.starts_with("password") {
                len.as_deref()
            } else {
                ctx.value.as_deref()
            };
            let vars = Vars {
                subject: match kind {
                    "insufficient-privileges"
                    | "tenant-not-supported"
                    | "licence-permission-missing" => Some(ctx.op.label().to_string()),
                    _ => op_subject,
                },
                value,
                permission: matches!(
                    kind,
                    "insufficient-privileges" | "licence-permission-missing"
                )
                .then(|| ctx.op.permission()),
                domain: ctx
                    .value
                    .as_deref()
                    .and_then(|v| v.rsplit_once('@'))
                    .map(|(_, d)| d.to_string()),
                holder: ctx.holder.as_deref(),
                status: Some(*status),
                code: Some(code),
                message: Some(message),
                retry_after: retry_after.map(|d| format!("{} s", d.as_secs())),
            };
            build(
                kind,
                subject,
                vars,
                Some(RawError {
                    status: Some(*status),
                    code: code.clone(),
                    message: message.clone(),
                    request_id: request_id.clone(),
                    date: date.clone(),
                    trace_id: None,
                    target,
                }),
            )
        }
    }
}

/// The AADSTS number of a token error: `codes[0]`, else parsed from the description.
fn aadsts(codes: &[u32], description: &str) -> Option<u32> {
    codes.first().copied().or_else(|| {
        let rest = description.split("AADSTS").nth(1)?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

fn auth_kind_by_code(code: u32) -> Option<&'static str> {
    Some(match code {
        65001 => "consent-missing",
        700082 | 70008 | 50173 | 50133 | 70043 | 700084 => "token-expired",
        7000215 | 7000222 | 7000229 => "client-secret-invalid",
        7000218 => "public-client-disabled",
        90002 | 90072 => "tenant-not-found",
        700016 => "app-not-in-tenant",
        50076 | 50079 => "mfa-required",
        53003 => "conditional-access-blocked",
        50126 => "wrong-password",
        50020 | 50034 => "account-not-in-tenant",
        50053 => "account-locked",
        70016 => "sign-in-pending",
        70019 => "sign-in-code-expired",
        70018 => "sign-in-code-invalid",
        70011 => "invalid-scope",
        _ => return None,
    })
}

fn auth_kind_by_error(error: &str) -> &'static str {
    match error {
        "invalid_grant" => "token-expired",
        "consent_required" => "consent-missing",
        "invalid_client" | "unauthorized_client" => "client-secret-invalid",
        "invalid_scope" | "invalid_resource" => "invalid-scope",
        "interaction_required" => "mfa-required",
        "authorization_pending" | "slow_down" => "sign-in-pending",
        "authorization_declined" => "sign-in-declined",
        "expired_token" => "sign-in-code-expired",
        "bad_verification_code" => "sign-in-code-invalid",
        "temporarily_unavailable" => "service-unavailable",
        _ => "unknown",
    }
}

/// The `Timestamp: ...` line of an AADSTS description, if any.
fn timestamp(description: &str) -> Option<String> {
    description
        .lines()
        .find_map(|l| l.trim().strip_prefix("Timestamp: "))
        .map(|s| s.trim().to_string())
}

/// A token (sign-in, refresh) failure, explained.
pub fn diagnose_auth(err: &AuthError) -> Diagnosis {
    let subject = Subject::Op("sign-in".into());
    let simple = |kind: &str, code: &str, msg: String| {
        build(
            kind,
            subject.clone(),
            Vars::default(),
            Some(RawError {
                code: code.into(),
                message: msg,
                ..RawError::default()
            }),
        )
    };
    match err {
        AuthError::Declined => simple(
            "sign-in-declined",
            "authorization_declined",
            err.to_string(),
        ),
        AuthError::Expired => simple("sign-in-code-expired", "expired_token", err.to_string()),
        AuthError::BadVerificationCode => simple(
            "sign-in-code-invalid",
            "bad_verification_code",
            err.to_string(),
        ),
        AuthError::Transport(m) => simple("network-unreachable", "Transport", m.clone()),
        AuthError::Malformed(m) => simple(
            if m.contains("internal error:") {
                "internal-error"
            } else {
                "malformed-response"
            },
            "MalformedResponse",
            m.clone(),
        ),
        AuthError::NotSignedIn(m) => simple("not-signed-in", "NotSignedIn", m.clone()),
        AuthError::Config(m) => simple("sign-in-settings", "Config", m.clone()),
        AuthError::OAuth {
            error,
            description,
            codes,
            trace_id,
        } => {
            let n = aadsts(codes, description);
            let kind = n
                .and_then(auth_kind_by_code)
                .unwrap_or_else(|| auth_kind_by_error(error));
            let code = n
                .map(|c| format!("AADSTS{c}"))
                .unwrap_or_else(|| error.clone());
            let first_line = description.lines().next().unwrap_or("").trim().to_string();
            build(
                kind,
                subject,
                Vars {
                    code: Some(&code),
                    message: Some(&first_line),
                    ..Vars::default()
                },
                Some(RawError {
                    status: None,
                    code: code.clone(),
                    message: description.clone(),
                    request_id: None,
                    date: timestamp(description),
                    trace_id: trace_id.clone(),
                    target: None,
                }),
            )
        }
    }
}

/// An import failure recorded by the directory (`email-exists`, `missing-email`, ...).
pub fn diagnose_import(kind: &str, upn: &str, message: &str, at: Option<&str>) -> Diagnosis {
    let k = match kind {
        // `email-invalid` is what `Directory::import` records for an account without a usable
        // address.
        "missing-email" | "no-email" | "email-invalid" => "import-missing-email",
        k if Catalog::builtin().get(k).is_some() => k,
        _ => "unknown",
    };
    build(
        k,
        Subject::User(upn.to_string()),
        Vars {
            value: Some(upn),
            code: Some(kind),
            message: Some(message),
            ..Vars::default()
        },
        Some(RawError {
            code: kind.to_string(),
            message: message.to_string(),
            date: at.map(str::to_string),
            ..RawError::default()
        }),
    )
}

/// A local directory (SQLite) failure, or a caught panic (`internal error:`).
pub fn diagnose_directory(subject: &str, message: &str) -> Diagnosis {
    let kind = if message.contains("internal error:") {
        "internal-error"
    } else {
        "directory-unavailable"
    };
    build(
        kind,
        Subject::Op(subject.to_string()),
        Vars::default(),
        Some(RawError {
            code: "directory".into(),
            message: message.to_string(),
            ..RawError::default()
        }),
    )
}

/// A preflight finding as the Errors tab shows it: the catalog's texts, the issue's own
/// message first among the steps' context, and its suggestion.
pub fn diagnose_issue(issue: &Issue, subject: Subject) -> Diagnosis {
    let domain = issue.value.rsplit_once('@').map(|(_, d)| d.to_string());
    build(
        &issue.kind,
        subject,
        Vars {
            value: Some(&issue.value),
            domain,
            holder: issue.holder.as_deref(),
            ..Vars::default()
        },
        Some(RawError {
            code: "preflight".into(),
            message: issue.message.clone(),
            target: Some(issue.field.clone()),
            ..RawError::default()
        }),
    )
}

/// A licence error Microsoft recorded on an account (`licenseAssignmentStates`), found with
/// the plan (`sync::licences::recorded_errors`): the catalog's texts, Microsoft's error code
/// (the issue's `suggestion`, such as `CountViolation`) as the raw code.
pub fn diagnose_recorded(issue: &Issue, subject: Subject) -> Diagnosis {
    build(
        &issue.kind,
        subject,
        Vars {
            value: Some(&issue.value),
            ..Vars::default()
        },
        Some(RawError {
            code: issue
                .suggestion
                .clone()
                .unwrap_or_else(|| "licenseAssignmentStates".into()),
            message: issue.message.clone(),
            target: Some(issue.field.clone()),
            ..RawError::default()
        }),
    )
}

/// A typed failure of an effect, explained: the one place every failure of the engine, the
/// directory, a file, the apply lock or sign-in becomes a diagnosis.
pub fn diagnose_failure(f: &crate::failure::Failure) -> Diagnosis {
    use crate::failure::{DirectoryProblem, Failure};
    let local = |kind: &str, subject: Subject, code: &str, message: &str| {
        build(
            kind,
            subject,
            Vars {
                message: Some(message),
                ..Vars::default()
            },
            Some(RawError {
                code: code.into(),
                message: message.to_string(),
                ..RawError::default()
            }),
        )
    };
    match f {
        Failure::Graph {
            operation,
            subject,
            error,
        } => diagnose_graph(error, &Context::new(*operation, subject.clone())),
        Failure::Auth(e) => diagnose_auth(e),
        Failure::Directory {
            doing,
            problem,
            message,
        } => local(
            match problem {
                DirectoryProblem::Busy => "directory-busy",
                DirectoryProblem::Full => "disk-full",
                DirectoryProblem::ReadOnly => "directory-read-only",
                DirectoryProblem::Invalid => "invalid-input",
                DirectoryProblem::Unavailable => "directory-unavailable",
            },
            Subject::Op(doing.clone()),
            "directory",
            message,
        ),
        Failure::File { path, message } => local(
            "file-unwritable",
            Subject::Op(path.clone()),
            "file",
            message,
        ),
        Failure::Locked(m) => local("apply-locked", Subject::Op("apply".into()), "locked", m),
        Failure::Refused(m) => local("plan-refused", Subject::Op("apply".into()), "refused", m),
        Failure::Invalid(m) => local("invalid-input", Subject::None, "invalid", m),
        Failure::Internal(m) => local(
            "internal-error",
            Subject::None,
            "internal",
            &format!("internal error: {m}"),
        ),
    }
}

/// A created account whose generated password was never delivered.
pub fn diagnose_undelivered(email: &str, at: &str) -> Diagnosis {
    build(
        "password-not-delivered",
        Subject::User(email.to_string()),
        Vars::default(),
        Some(RawError {
            code: "password-not-delivered".into(),
            message: format!(
                "the account of {email} was created at {at}; its password was not delivered"
            ),
            date: Some(at.to_string()),
            ..RawError::default()
        }),
    )
}

/// A run that stopped by itself because no op finished for too long.
pub fn diagnose_stalled(message: &str) -> Diagnosis {
    build(
        "run-stalled",
        Subject::Op("apply".into()),
        Vars {
            message: Some(message),
            ..Vars::default()
        },
        Some(RawError {
            code: "stalled".into(),
            message: message.to_string(),
            ..RawError::default()
        }),
    )
}
