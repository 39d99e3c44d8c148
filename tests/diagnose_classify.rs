//! Classification details: the raw code, message, request-id, date and target are kept; the
//! missing permission is named per operation; passwords never appear; texts are filled.
#[path = "diagnose_common/cases.rs"]
mod cases;

use std::time::Duration;

use cases::{body, graph, oauth};
use m365sync::diagnose::{
    diagnose_graph, diagnose_issue, parse_details, Context, FixAction, Operation, RawError, Subject,
};
use m365sync::graph::GraphError;
use m365sync::sync::plan::{Op, OpKind};
use m365sync::sync::preflight::check_group_name;

#[test]
fn raw_error_is_kept_for_support() {
    let b = body(
        "Request_BadRequest",
        "Another object with the same value for property userPrincipalName already exists.",
        Some(("ObjectConflict", "userPrincipalName")),
    );
    let d = graph(400, &b, Operation::CreateUser, Some("ann@contoso.com"));
    assert_eq!(d.kind, "upn-exists");
    assert_eq!(
        d.raw,
        Some(RawError {
            status: Some(400),
            code: "Request_BadRequest".into(),
            message:
                "Another object with the same value for property userPrincipalName already exists."
                    .into(),
            request_id: Some("rid-1".into()),
            date: Some("2024-08-20T04:25:57".into()),
            trace_id: None,
            target: Some("userPrincipalName".into()),
        })
    );
    assert_eq!(d.subject, Subject::User("ann@contoso.com".into()));
    assert_eq!(d.fix, Some(FixAction::LinkConflict));
    assert!(d.what.contains("ann@contoso.com"), "{}", d.what);
    assert!(d.numbered_steps()[0].starts_with("1. "));
}

#[test]
fn details_target_wins_over_the_message() {
    // The message names userPrincipalName but the details say proxyAddresses: target first.
    let b = body(
        "Request_BadRequest",
        "Another object with the same value for property userPrincipalName already exists.",
        Some(("ObjectConflict", "proxyAddresses")),
    );
    assert_eq!(
        graph(400, &b, Operation::CreateUser, None).kind,
        "proxy-address-held"
    );
    assert_eq!(parse_details(b.as_bytes())[0].target, "proxyAddresses");
    assert!(parse_details(b"not json").is_empty());
}

#[test]
fn insufficient_privileges_names_the_permission_per_operation() {
    let b = body(
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
        None,
    );
    for (op, perm) in [
        (Operation::DisableUser, "User.EnableDisableAccount.All"),
        (Operation::EnableUser, "User.EnableDisableAccount.All"),
        (Operation::SetPassword, "User-PasswordProfile.ReadWrite.All"),
        (Operation::CreateUser, "User.ReadWrite.All"),
        (Operation::ListDomains, "Domain.Read.All"),
        (Operation::CreateGroup, "Group.ReadWrite.All"),
        (Operation::AddMember, "GroupMember.ReadWrite.All"),
        (Operation::RestoreUser, "User.DeleteRestore.All"),
    ] {
        let d = graph(403, &b, op, None);
        assert_eq!(d.kind, "insufficient-privileges");
        assert!(d.permission.as_deref().unwrap().contains(perm), "{op:?}");
        assert!(d.title.contains(perm), "{}", d.title);
        assert!(d.steps.iter().any(|s| s.contains(perm)), "{op:?}");
        assert!(d.what.contains(op.label()), "{}", d.what);
    }
    // A plan op maps to its operation.
    let op = Op {
        kind: OpKind::Block,
        directory_id: 1,
        email: "ann@contoso.com".into(),
        display_name: "Ann".into(),
        upn: "ann@contoso.com".into(),
        tenant_user_id: Some("t".into()),
        reason: String::new(),
        changes: Vec::new(),
        manager_id: None,
        deprovision: Default::default(),
        licences: None,
    };
    let e = GraphError::from_response(403, b.as_bytes(), None, None);
    let d = diagnose_graph(&e, &Context::for_op(&op));
    assert!(d
        .permission
        .unwrap()
        .starts_with("User.EnableDisableAccount.All"));
}

#[test]
fn password_values_never_appear() {
    let b = body(
        "Request_BadRequest",
        "The specified password does not comply with password complexity requirements. Please provide a different password.",
        None,
    );
    let d = graph(400, &b, Operation::SetPassword, Some("Secr3tish"));
    let all = format!("{} {} {} {}", d.title, d.what, d.why, d.steps.join(" "));
    assert!(!all.contains("Secr3tish"), "{all}");
    let d = graph(400, &b, Operation::SetPassword, Some("Ab1!"));
    assert_eq!(d.kind, "password-length");
    assert!(d.what.contains("is 4 characters long"), "{}", d.what);
}

#[test]
fn throttled_and_unknown_keep_what_microsoft_sent() {
    let e = GraphError::from_response(
        429,
        br#"{"error":{"code":"TooManyRequests","message":"Too many requests."}}"#,
        Some("hdr-rid"),
        Some(Duration::from_secs(7)),
    );
    let d = diagnose_graph(
        &e,
        &Context::new(Operation::CreateUser, Subject::User("a@b.com".into())),
    );
    assert_eq!(d.kind, "throttled");
    assert!(d.why.contains("Retry-After 7 s"), "{}", d.why);
    assert_eq!(
        d.raw.as_ref().unwrap().request_id.as_deref(),
        Some("hdr-rid")
    );
    assert_eq!(d.fix, Some(FixAction::Retry));

    let d = graph(
        400,
        &body("Request_SomethingNew", "Something new happened.", None),
        Operation::CreateUser,
        None,
    );
    assert_eq!(d.kind, "unknown");
    assert!(d.title.contains("Request_SomethingNew"));
    assert!(d.what.contains("Something new happened."));
    let raw = d.raw.unwrap();
    assert_eq!(
        (
            raw.code.as_str(),
            raw.request_id.as_deref(),
            raw.date.as_deref()
        ),
        (
            "Request_SomethingNew",
            Some("rid-1"),
            Some("2024-08-20T04:25:57")
        )
    );
}

#[test]
fn token_errors_keep_code_trace_and_timestamp() {
    let d = oauth(
        "invalid_grant",
        Some(700082),
        "AADSTS700082: The refresh token has expired due to inactivity.\r\nTrace ID: t\r\nCorrelation ID: c\r\nTimestamp: 2026-11-27 07:00:00Z",
    );
    assert_eq!(d.kind, "token-expired");
    assert_eq!(d.fix, Some(FixAction::SignInAgain));
    let raw = d.raw.unwrap();
    assert_eq!(raw.code, "AADSTS700082");
    assert_eq!(raw.trace_id.as_deref(), Some("trace-1"));
    assert_eq!(raw.date.as_deref(), Some("2026-11-27 07:00:00Z"));
    assert_eq!(raw.status, None);
}

#[test]
fn proxy_held_by_a_deleted_user_offers_restore_and_purge() {
    let b = body(
        "Request_BadRequest",
        "Another object with the same value for property proxyAddresses already exists.",
        Some(("ObjectConflict", "proxyAddresses")),
    );
    let e = GraphError::from_response(400, b.as_bytes(), None, None);
    let ctx = Context::new(
        Operation::CreateUser,
        Subject::User("farid.haddad@northwindtraders.com".into()),
    )
    .with_body(b.as_bytes())
    .with_value("farid.haddad@northwindtraders.com")
    .with_holder("soft-deleted user farid.haddad@northwindtraders.com");
    let d = diagnose_graph(&e, &ctx);
    assert_eq!(d.kind, "proxy-address-held");
    assert_eq!(
        d.fixes(),
        vec![
            FixAction::RestoreDeleted,
            FixAction::PurgeDeleted,
            FixAction::EditEmail
        ]
    );
    assert!(
        d.what
            .contains("(soft-deleted user farid.haddad@northwindtraders.com)"),
        "{}",
        d.what
    );
}

#[test]
fn preflight_issue_becomes_a_diagnosis() {
    let i = &check_group_name(3, "Sales (EU)", None)[0];
    let d = diagnose_issue(i, Subject::Group("Sales (EU)".into()));
    assert_eq!(d.kind, "mailnickname-forbidden-char");
    assert_eq!(d.fix, Some(FixAction::SanitizeNickname));
    assert!(d.what.contains("group \"Sales (EU)\""), "{}", d.what);
    assert_eq!(d.raw.as_ref().unwrap().code, "preflight");
    // For a user the alias comes from the email: the fix is editing the email.
    let d = diagnose_issue(i, Subject::User("ann lee@contoso.com".into()));
    assert_eq!(d.fixes(), vec![FixAction::EditEmail]);
    assert_eq!(
        d.raw.as_ref().unwrap().target.as_deref(),
        Some("mailNickname")
    );
}
