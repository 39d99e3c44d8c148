//! Inputs that must produce each catalog kind: real Graph bodies and AADSTS descriptions from
//! graph-notes (§2-§5, §9; exact strings), and preflight inputs. Shared by the catalog
//! reachability test and the classification tests.
#![allow(dead_code)]

use m365sync::auth::AuthError;
use m365sync::diagnose::{
    diagnose_auth, diagnose_directory, diagnose_failure, diagnose_graph, diagnose_import,
    diagnose_stalled, diagnose_undelivered, Context, Diagnosis, Operation, Subject,
};
use m365sync::directory::{BindingState, DirectoryUser};
use m365sync::failure::{DirectoryProblem, Failure};
use m365sync::graph::{Domain, GraphError};
use m365sync::sync::preflight::{check_group_name, preflight, PreflightOptions};

pub const INNER: &str = r#""innerError":{"date":"2024-08-20T04:25:57","request-id":"rid-1","client-request-id":"crid"}"#;

/// A Graph envelope with `code`, `message` and optional details, as Graph sends it.
pub fn body(code: &str, message: &str, details: Option<(&str, &str)>) -> String {
    let det = details
        .map(|(c, t)| {
            format!(
                r#","details":[{{"code":"{c}","message":{},"target":"{t}"}}]"#,
                serde_json::to_string(message).unwrap()
            )
        })
        .unwrap_or_default();
    format!(
        r#"{{"error":{{"code":"{code}","message":{}{det},{INNER}}}}}"#,
        serde_json::to_string(message).unwrap()
    )
}

/// The manager finding of Ann, whose manager is `manager`; Ben (bound when `ben_bound`) has
/// Ann as manager.
pub fn manager_issue(manager: &str, ben_bound: bool) -> Diagnosis {
    let mk = |id: i64, email: &str, manager: &str, bound: bool| {
        let mut u = DirectoryUser {
            id,
            email: email.into(),
            display_name: email.into(),
            want_bound: bound,
            tenant_user_id: Some(format!("t{id}")),
            ..Default::default()
        };
        u.attributes.insert("manager".into(), manager.into());
        u
    };
    let users = vec![
        mk(1, "ann@contoso.com", manager, true),
        mk(2, "ben@contoso.com", "ann@contoso.com", ben_bound),
    ];
    let live = std::collections::HashSet::from(["t1", "t2"]);
    let (_, issues) = m365sync::sync::attributes::plan_managers(
        &users,
        &live,
        &Default::default(),
        &Default::default(),
        &Default::default(),
    );
    let i = issues
        .iter()
        .find(|i| i.directory_id == 1)
        .unwrap_or_else(|| panic!("{issues:?}"));
    m365sync::diagnose::diagnose_issue(i, Subject::User("ann@contoso.com".into()))
}

/// The preflight finding of a directory user holding `value` for `attr`.
pub fn attr_issue(attr: &str, value: &str) -> Diagnosis {
    let mut u = DirectoryUser {
        id: 1,
        email: "ann@contoso.com".into(),
        display_name: "Ann".into(),
        want_bound: true,
        ..Default::default()
    };
    u.attributes.insert(attr.into(), value.into());
    let issues = preflight(&[u], &[], None, &PreflightOptions::default());
    let i = issues
        .iter()
        .find(|i| i.field == attr)
        .unwrap_or_else(|| panic!("{issues:?}"));
    m365sync::diagnose::diagnose_issue(i, Subject::User("ann@contoso.com".into()))
}

pub fn dir_failure(problem: DirectoryProblem, message: &str) -> Diagnosis {
    diagnose_failure(&Failure::Directory {
        doing: "writing the journal".into(),
        problem,
        message: message.into(),
    })
}

pub fn graph(status: u16, body: &str, op: Operation, value: Option<&str>) -> Diagnosis {
    let e = GraphError::from_response(status, body.as_bytes(), Some("hdr-rid"), None);
    let mut ctx =
        Context::new(op, Subject::User("ann@contoso.com".into())).with_body(body.as_bytes());
    if let Some(v) = value {
        ctx = if body.contains("password") {
            ctx.with_password(v)
        } else {
            ctx.with_value(v)
        };
    }
    diagnose_graph(&e, &ctx)
}

pub fn oauth(error: &str, code: Option<u32>, description: &str) -> Diagnosis {
    diagnose_auth(&AuthError::OAuth {
        error: error.into(),
        description: description.into(),
        codes: code.into_iter().collect(),
        trace_id: Some("trace-1".into()),
    })
}

pub fn dir_user(id: i64, email: &str) -> DirectoryUser {
    DirectoryUser {
        id,
        email: email.into(),
        display_name: format!("User {id}"),
        given_name: None,
        surname: None,
        tenant_user_id: None,
        binding: BindingState::Unbound,
        want_bound: true,
        job_title: None,
        department: None,
        password_set_at: None,
        bound_via: Vec::new(),
        attributes: Default::default(),
    }
}

pub fn pre(emails: &[&str], enabled: Option<&[&str]>) -> Vec<String> {
    let users: Vec<DirectoryUser> = emails
        .iter()
        .enumerate()
        .map(|(i, e)| dir_user(i as i64 + 1, e))
        .collect();
    let domains = vec![
        Domain {
            id: "contoso.com".into(),
            authentication_type: Some("Managed".into()),
            is_default: true,
            is_initial: false,
            is_verified: true,
        },
        Domain {
            id: "contoso.onmicrosoft.com".into(),
            authentication_type: Some("Managed".into()),
            is_default: false,
            is_initial: true,
            is_verified: true,
        },
    ];
    let opts = PreflightOptions {
        enabled_domains: enabled.map(|e| e.iter().map(|s| s.to_string()).collect()),
        ..PreflightOptions::default()
    };
    preflight(&users, &domains, None, &opts)
        .into_iter()
        .map(|i| i.kind)
        .collect()
}

const UPN_DOMAIN: &str = "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.";
const PW: &str = "The specified password does not comply with password complexity requirements. Please provide a different password.";

/// (expected kind, label, what the input produces).
pub type Case = (&'static str, &'static str, Box<dyn Fn() -> Vec<String>>);

pub fn cases() -> Vec<Case> {
    fn g(d: Diagnosis) -> Vec<String> {
        vec![d.kind]
    }
    vec![
        (
            "upn-domain-unverified",
            "graph 400 domain portion",
            Box::new(|| {
                g(graph(
                    400,
                    &body("Request_BadRequest", UPN_DOMAIN, None),
                    Operation::CreateUser,
                    Some("ann@fabrikam.com"),
                ))
            }),
        ),
        (
            "upn-domain-unverified",
            "preflight unverified domain",
            Box::new(|| pre(&["ann@fabrikam.com"], None)),
        ),
        (
            "upn-domain-not-enabled",
            "preflight domain not enabled",
            Box::new(|| pre(&["ann@contoso.onmicrosoft.com"], Some(&["contoso.com"]))),
        ),
        (
            "upn-invalid",
            "graph 400 Property userPrincipalName is invalid.",
            Box::new(|| {
                g(graph(
                    400,
                    &body(
                        "Request_BadRequest",
                        "Property userPrincipalName is invalid.",
                        None,
                    ),
                    Operation::CreateUser,
                    None,
                ))
            }),
        ),
        (
            "upn-invalid",
            "preflight unicode",
            Box::new(|| pre(&["ren\u{e9}e@contoso.com"], None)),
        ),
        (
            "upn-exists",
            "graph ObjectConflict target userPrincipalName",
            Box::new(|| {
                g(graph(400, &body("Request_BadRequest", "Another object with the same value for property userPrincipalName already exists.", Some(("ObjectConflict", "userPrincipalName"))), Operation::CreateUser, None))
            }),
        ),
        (
            "upn-exists",
            "graph upn conflict message only",
            Box::new(|| {
                g(graph(400, &body("Request_BadRequest", "Another object with the same value for property userPrincipalName already exists.", None), Operation::CreateUser, None))
            }),
        ),
        (
            "email-exists",
            "import email-exists",
            Box::new(|| {
                g(diagnose_import(
                    "email-exists",
                    "ann@contoso.com",
                    "A directory user already has this email",
                    Some("2026-11-27T07:00:00Z"),
                ))
            }),
        ),
        (
            "email-duplicate",
            "preflight duplicate email",
            Box::new(|| pre(&["ann@contoso.com", "ANN@contoso.com"], None)),
        ),
        (
            "proxy-address-held",
            "graph ObjectConflict target proxyAddresses",
            Box::new(|| {
                g(graph(400, &body("Request_BadRequest", "Another object with the same value for property proxyAddresses already exists.", Some(("ObjectConflict", "proxyAddresses"))), Operation::CreateUser, None))
            }),
        ),
        (
            "proxy-address-held",
            "graph proxyAddresses message only",
            Box::new(|| {
                g(graph(400, &body("Request_BadRequest", "Another object with the same value for property proxyAddresses already exists.", None), Operation::CreateUser, None))
            }),
        ),
        (
            "proxy-address-held",
            "graph generic conflict",
            Box::new(|| {
                g(graph(400, &body("Request_BadRequest", "A conflicting object with one or more of the specified property values is present in the directory.", None), Operation::CreateUser, None))
            }),
        ),
        (
            "federated-domain-needs-immutable-id",
            "graph immutable id required",
            Box::new(|| {
                g(graph(400, &body("Request_BadRequest", "A value is required for property 'onPremisesImmutableId' of resource 'User'.", None), Operation::CreateUser, Some("ann@corp.contoso.com")))
            }),
        ),
        (
            "mailnickname-forbidden-char",
            "graph group mailNickname invalid",
            Box::new(|| {
                g(graph(
                    400,
                    &body(
                        "Request_BadRequest",
                        "Invalid value specified for property 'mailNickname' of resource 'Group'.",
                        None,
                    ),
                    Operation::CreateGroup,
                    Some("Sales(EU)"),
                ))
            }),
        ),
        (
            "mailnickname-forbidden-char",
            "graph user mailNickname invalid, value unknown",
            Box::new(|| {
                g(graph(
                    400,
                    &body(
                        "Request_BadRequest",
                        "Invalid value specified for property 'mailNickname' of resource 'User'.",
                        None,
                    ),
                    Operation::CreateUser,
                    None,
                ))
            }),
        ),
        (
            "mailnickname-length",
            "graph mailNickname invalid, 65 chars",
            Box::new(|| {
                g(graph(
                    400,
                    &body(
                        "Request_BadRequest",
                        "Invalid value specified for property 'mailNickname' of resource 'User'.",
                        None,
                    ),
                    Operation::CreateUser,
                    Some(&"n".repeat(65)),
                ))
            }),
        ),
        (
            "mailnickname-leading-or-trailing-space-or-dot",
            "graph mailNickname invalid, trailing dot",
            Box::new(|| {
                g(graph(
                    400,
                    &body(
                        "Request_BadRequest",
                        "Invalid value specified for property 'mailNickname' of resource 'User'.",
                        None,
                    ),
                    Operation::CreateUser,
                    Some("ann."),
                ))
            }),
        ),
        (
            "mailnickname-duplicate",
            "preflight same alias in two domains",
            Box::new(|| pre(&["ann@contoso.com", "ann@contoso.onmicrosoft.com"], None)),
        ),
        (
            "mailnickname-exists",
            "graph group mailNickname ObjectConflict",
            Box::new(|| {
                g(graph(400, &body("Request_BadRequest", "Another object with the same value for property mailNickname already exists.", Some(("ObjectConflict", "mailNickname"))), Operation::CreateGroup, None))
            }),
        ),
        (
            "group-name-extra-space",
            "group `Engineering `",
            Box::new(|| {
                check_group_name(1, "Engineering ", None)
                    .into_iter()
                    .map(|i| i.kind)
                    .collect()
            }),
        ),
        (
            "group-type-unsupported",
            "graph mail-enabled security group",
            Box::new(|| {
                g(graph(
                    400,
                    &body(
                        "Request_BadRequest",
                        "Cannot Create a mail-enabled security groups and or distribution list.",
                        None,
                    ),
                    Operation::CreateGroup,
                    None,
                ))
            }),
        ),
        (
            "member-already-added",
            "graph member exists",
            Box::new(|| {
                g(graph(400, &body("Request_BadRequest", "One or more added object references already exist for the following modified properties: 'members'.", None), Operation::AddMember, None))
            }),
        ),
        (
            "member-not-present",
            "graph member missing",
            Box::new(|| {
                g(graph(400, &body("Request_BadRequest", "One or more removed object references do not exist for the following modified properties: 'members'.", None), Operation::RemoveMember, None))
            }),
        ),
        (
            "password-length",
            "graph weak password, short value",
            Box::new(|| {
                g(graph(
                    400,
                    &body("Request_BadRequest", PW, None),
                    Operation::SetPassword,
                    Some("Ab1!"),
                ))
            }),
        ),
        (
            "password-complexity",
            "graph weak password",
            Box::new(|| {
                g(graph(
                    400,
                    &body("Request_BadRequest", PW, None),
                    Operation::CreateUser,
                    Some("alllowercase"),
                ))
            }),
        ),
        (
            "insufficient-privileges",
            "graph 403 Authorization_RequestDenied",
            Box::new(|| {
                g(graph(
                    403,
                    &body(
                        "Authorization_RequestDenied",
                        "Insufficient privileges to complete the operation.",
                        None,
                    ),
                    Operation::DisableUser,
                    None,
                ))
            }),
        ),
        (
            "token-expired",
            "graph 401 lifetime",
            Box::new(|| {
                g(graph(
                    401,
                    &body(
                        "InvalidAuthenticationToken",
                        "Lifetime validation failed, the token is expired.",
                        None,
                    ),
                    Operation::ListUsers,
                    None,
                ))
            }),
        ),
        (
            "token-expired",
            "graph 401 older",
            Box::new(|| {
                g(graph(
                    401,
                    &body(
                        "InvalidAuthenticationToken",
                        "Access token has expired or is not yet valid.",
                        None,
                    ),
                    Operation::ListUsers,
                    None,
                ))
            }),
        ),
        (
            "token-expired",
            "AADSTS700082",
            Box::new(|| {
                g(oauth("invalid_grant", Some(700082), "AADSTS700082: The refresh token has expired due to inactivity. The token was issued on 2026-05-01T10:00:00Z and was inactive for 90.00:00:00.\r\nTrace ID: t\r\nCorrelation ID: c\r\nTimestamp: 2026-11-27 07:00:00Z"))
            }),
        ),
        (
            "token-expired",
            "AADSTS50173",
            Box::new(|| {
                g(oauth("invalid_grant", Some(50173), "AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token is needed."))
            }),
        ),
        (
            "token-expired",
            "invalid_grant without codes",
            Box::new(|| g(oauth("invalid_grant", None, "refresh token rejected"))),
        ),
        (
            "consent-missing",
            "AADSTS65001",
            Box::new(|| {
                g(oauth("invalid_grant", Some(65001), "AADSTS65001: The user or administrator has not consented to use the application with ID 'x' named 'm365sync'. Send an interactive authorization request for this user and resource."))
            }),
        ),
        (
            "consent-missing",
            "AADSTS65001 parsed from description",
            Box::new(|| {
                g(oauth("invalid_grant", None, "AADSTS65001: The user or administrator has not consented to use the application."))
            }),
        ),
        (
            "client-secret-invalid",
            "AADSTS7000215",
            Box::new(|| {
                g(oauth("invalid_client", Some(7000215), "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app 'x'."))
            }),
        ),
        (
            "client-secret-invalid",
            "AADSTS7000222",
            Box::new(|| {
                g(oauth(
                    "invalid_client",
                    Some(7000222),
                    "AADSTS7000222: The provided client secret keys for app 'x' are expired.",
                ))
            }),
        ),
        (
            "public-client-disabled",
            "AADSTS7000218",
            Box::new(|| {
                g(oauth("invalid_client", Some(7000218), "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'."))
            }),
        ),
        (
            "mfa-required",
            "AADSTS50076",
            Box::new(|| {
                g(oauth("invalid_grant", Some(50076), "AADSTS50076: Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access 'x'."))
            }),
        ),
        (
            "conditional-access-blocked",
            "AADSTS53003",
            Box::new(|| {
                g(oauth("invalid_grant", Some(53003), "AADSTS53003: Access has been blocked by Conditional Access policies. The access policy does not allow token issuance."))
            }),
        ),
        (
            "wrong-password",
            "AADSTS50126",
            Box::new(|| {
                g(oauth("invalid_grant", Some(50126), "AADSTS50126: Error validating credentials due to invalid username or password."))
            }),
        ),
        (
            "account-not-in-tenant",
            "AADSTS50034",
            Box::new(|| {
                g(oauth(
                    "invalid_grant",
                    Some(50034),
                    "AADSTS50034: The user account does not exist in the contoso.com directory.",
                ))
            }),
        ),
        (
            "account-locked",
            "AADSTS50053",
            Box::new(|| {
                g(oauth("invalid_grant", Some(50053), "AADSTS50053: The account is locked, you've tried to sign in too many times with an incorrect user ID or password."))
            }),
        ),
        (
            "tenant-not-found",
            "AADSTS90002",
            Box::new(|| {
                g(oauth("invalid_request", Some(90002), "AADSTS90002: Tenant 'contoso.onmicrosft.com' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."))
            }),
        ),
        (
            "app-not-in-tenant",
            "AADSTS700016",
            Box::new(|| {
                g(oauth("unauthorized_client", Some(700016), "AADSTS700016: Application with identifier 'x' was not found in the directory 'Contoso'."))
            }),
        ),
        (
            "app-not-in-tenant",
            "graph Authorization_IdentityNotFound",
            Box::new(|| {
                g(graph(
                    401,
                    &body(
                        "Authorization_IdentityNotFound",
                        "The identity of the calling application could not be established.",
                        None,
                    ),
                    Operation::ListUsers,
                    None,
                ))
            }),
        ),
        (
            "invalid-scope",
            "AADSTS70011",
            Box::new(|| {
                g(oauth("invalid_scope", Some(70011), "AADSTS70011: The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid."))
            }),
        ),
        (
            "sign-in-declined",
            "AuthError::Declined",
            Box::new(|| g(diagnose_auth(&AuthError::Declined))),
        ),
        (
            "sign-in-code-expired",
            "AuthError::Expired",
            Box::new(|| g(diagnose_auth(&AuthError::Expired))),
        ),
        (
            "sign-in-code-expired",
            "AADSTS70019",
            Box::new(|| {
                g(oauth(
                    "expired_token",
                    Some(70019),
                    "AADSTS70019: Verification code expired.",
                ))
            }),
        ),
        (
            "sign-in-code-invalid",
            "AuthError::BadVerificationCode",
            Box::new(|| g(diagnose_auth(&AuthError::BadVerificationCode))),
        ),
        (
            "sign-in-pending",
            "AADSTS70016",
            Box::new(|| {
                g(oauth("authorization_pending", Some(70016), "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending. Continue polling."))
            }),
        ),
        (
            "not-signed-in",
            "AuthError::NotSignedIn",
            Box::new(|| g(diagnose_auth(&AuthError::NotSignedIn("contoso".into())))),
        ),
        (
            "not-signed-in",
            "GraphError::Auth",
            Box::new(|| {
                g(diagnose_graph(
                    &GraphError::Auth("no token".into()),
                    &Context::default(),
                ))
            }),
        ),
        (
            "sign-in-settings",
            "AuthError::Config",
            Box::new(|| g(diagnose_auth(&AuthError::Config("no client id".into())))),
        ),
        (
            "throttled",
            "graph 429 TooManyRequests",
            Box::new(|| {
                g(graph(
                    429,
                    r#"{"error":{"code":"TooManyRequests","message":"Too many requests.","innerError":{"date":"2024-08-20T04:25:57","request-id":"rid-1"}}}"#,
                    Operation::CreateUser,
                    None,
                ))
            }),
        ),
        (
            "throttled",
            "legacy Request_ThrottledTemporarily",
            Box::new(|| {
                g(graph(
                    400,
                    &body(
                        "Request_ThrottledTemporarily",
                        "Your request is throttled temporarily. Please try after 5 seconds.",
                        None,
                    ),
                    Operation::CreateUser,
                    None,
                ))
            }),
        ),
        (
            "service-unavailable",
            "graph 503 serviceNotAvailable",
            Box::new(|| {
                g(graph(
                    503,
                    &body("serviceNotAvailable", "Service unavailable.", None),
                    Operation::ListUsers,
                    None,
                ))
            }),
        ),
        (
            "service-unavailable",
            "graph 500 generalException",
            Box::new(|| {
                g(graph(
                    500,
                    &body(
                        "generalException",
                        "General exception while processing.",
                        None,
                    ),
                    Operation::ListUsers,
                    None,
                ))
            }),
        ),
        (
            "service-unavailable",
            "graph 504 html",
            Box::new(|| {
                g(graph(
                    504,
                    "<html>Gateway Timeout</html>",
                    Operation::ListUsers,
                    None,
                ))
            }),
        ),
        (
            "service-unavailable",
            "token temporarily_unavailable",
            Box::new(|| {
                g(oauth(
                    "temporarily_unavailable",
                    None,
                    "The server is temporarily unavailable.",
                ))
            }),
        ),
        (
            "network-unreachable",
            "GraphError::Transport",
            Box::new(|| {
                g(diagnose_graph(
                    &GraphError::Transport("connection refused".into()),
                    &Context::default(),
                ))
            }),
        ),
        (
            "network-unreachable",
            "AuthError::Transport",
            Box::new(|| g(diagnose_auth(&AuthError::Transport("dns".into())))),
        ),
        (
            "malformed-response",
            "GraphError::Malformed",
            Box::new(|| {
                g(diagnose_graph(
                    &GraphError::Malformed("expected value at line 1".into()),
                    &Context::default(),
                ))
            }),
        ),
        (
            "internal-error",
            "caught panic",
            Box::new(|| {
                g(diagnose_graph(
                    &GraphError::Malformed("internal error: index out of bounds".into()),
                    &Context::default(),
                ))
            }),
        ),
        (
            "tenant-not-supported",
            "generic notSupported code",
            Box::new(|| {
                g(graph(
                    400,
                    &body(
                        "notSupported",
                        "This operation is not supported for this tenant.",
                        None,
                    ),
                    Operation::CreateUser,
                    None,
                ))
            }),
        ),
        (
            "tenant-not-supported",
            "403 tenant read-only (heuristic message)",
            Box::new(|| {
                g(graph(403, &body("Authorization_RequestDenied", "The tenant is read-only: write operations are not allowed for this organization.", None), Operation::CreateUser, None))
            }),
        ),
        (
            "directory-quota-exceeded",
            "Directory_QuotaExceeded",
            Box::new(|| {
                g(graph(400, &body("Directory_QuotaExceeded", "The directory object quota limit for the Principal has been exceeded. Please ask your administrator to increase the quota limit or delete objects to reduce the used quota.", None), Operation::CreateUser, None))
            }),
        ),
        (
            "deprovision-account-gone",
            "graph 404 on a deprovisioning step",
            Box::new(|| {
                g(graph(404, &body("Request_ResourceNotFound", "Resource 'abc' does not exist or one of its queried reference-property objects are not present.", None), Operation::DeleteUser, None))
            }),
        ),
        (
            "licence-from-group",
            "graph licence removal of a group licence",
            Box::new(|| {
                g(graph(400, &body("Request_BadRequest", "User license is inherited from a group membership and it cannot be removed directly from the user.", None), Operation::RemoveLicenses, None))
            }),
        ),
        (
            "object-not-found",
            "graph 404",
            Box::new(|| {
                g(graph(404, &body("Request_ResourceNotFound", "Resource 'abc' does not exist or one of its queried reference-property objects are not present.", None), Operation::DisableUser, None))
            }),
        ),
        (
            "graph-url-wrong",
            "404 with a body that is not Graph's (a Graph URL without /v1.0)",
            Box::new(|| {
                g(graph(
                    404,
                    "<html><body>404 page not found</body></html>",
                    Operation::ListUsers,
                    None,
                ))
            }),
        ),
        (
            "invalid-request",
            "bad $top",
            Box::new(|| {
                g(graph(
                    400,
                    &body(
                        "Request_UnsupportedQuery",
                        "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive.",
                        None,
                    ),
                    Operation::ListUsers,
                    None,
                ))
            }),
        ),
        (
            "invalid-request",
            "405",
            Box::new(|| {
                g(graph(
                    405,
                    &body(
                        "Request_BadRequest",
                        "Specified HTTP method is not allowed for the request target.",
                        None,
                    ),
                    Operation::ListUsers,
                    None,
                ))
            }),
        ),
        (
            "import-missing-email",
            "import missing-email",
            Box::new(|| {
                g(diagnose_import(
                    "missing-email",
                    "x@contoso.com",
                    "no mail",
                    None,
                ))
            }),
        ),
        (
            "attribute-too-long",
            "an employeeId of 17 in the directory",
            Box::new(|| g(attr_issue("employeeId", &"9".repeat(17)))),
        ),
        (
            "attribute-invalid",
            "graph 400 invalid value for jobTitle",
            Box::new(|| {
                g(graph(
                    400,
                    &body(
                        "Request_BadRequest",
                        "Invalid value specified for property 'jobTitle' of resource 'User'.",
                        None,
                    ),
                    Operation::UpdateUser,
                    None,
                ))
            }),
        ),
        (
            "usage-location-invalid",
            "usageLocation XX in the directory",
            Box::new(|| g(attr_issue("usageLocation", "XX"))),
        ),
        (
            "preferred-language-invalid",
            "preferredLanguage english in the directory",
            Box::new(|| g(attr_issue("preferredLanguage", "english"))),
        ),
        (
            "synced-from-on-premises",
            "graph 400 on-premises mastered",
            Box::new(|| {
                g(graph(
                    400,
                    &body(
                        "Request_BadRequest",
                        "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.",
                        None,
                    ),
                    Operation::UpdateUser,
                    None,
                ))
            }),
        ),
        (
            "manager-unknown",
            "a manager who is not a directory user",
            Box::new(|| g(manager_issue("nobody@contoso.com", true))),
        ),
        (
            "manager-not-bound",
            "a manager who is not bound",
            Box::new(|| g(manager_issue("ben@contoso.com", false))),
        ),
        (
            "guest-as-member",
            "preflight #EXT# address",
            Box::new(|| pre(&["ann_fabrikam.com#EXT#@contoso.com"], None)),
        ),
        (
            "guest-as-member",
            "preflight address of a tenant guest",
            Box::new(|| {
                let guest = m365sync::graph::User {
                    id: "g1".into(),
                    user_principal_name: "ann_fabrikam.com#EXT#@contoso.onmicrosoft.com".into(),
                    mail: Some("ann@fabrikam.com".into()),
                    guest: true,
                    ..Default::default()
                };
                let index = m365sync::sync::preflight::TenantIndex::new([&guest], &[]);
                let u = DirectoryUser {
                    id: 1,
                    email: "ann@fabrikam.com".into(),
                    display_name: "Ann".into(),
                    want_bound: true,
                    ..Default::default()
                };
                preflight(&[u], &[], Some(&index), &PreflightOptions::default())
                    .into_iter()
                    .map(|i| i.kind)
                    .collect()
            }),
        ),
        (
            "manager-loop",
            "managers that loop",
            Box::new(|| g(manager_issue("ben@contoso.com", true))),
        ),
        (
            "directory-busy",
            "a directory another process held too long",
            Box::new(|| g(dir_failure(DirectoryProblem::Busy, "database is locked"))),
        ),
        (
            "disk-full",
            "a full disk",
            Box::new(|| {
                g(dir_failure(
                    DirectoryProblem::Full,
                    "database or disk is full",
                ))
            }),
        ),
        (
            "directory-read-only",
            "a read-only data dir",
            Box::new(|| {
                g(dir_failure(
                    DirectoryProblem::ReadOnly,
                    "attempt to write a readonly database",
                ))
            }),
        ),
        (
            "file-unwritable",
            "a hand-off file that exists",
            Box::new(|| {
                g(diagnose_failure(&Failure::File {
                    path: "/tmp/pw.csv".into(),
                    message: "it already exists".into(),
                }))
            }),
        ),
        (
            "apply-locked",
            "the apply lock held",
            Box::new(|| {
                g(diagnose_failure(&Failure::Locked(
                    "another m365sync is applying changes to this tenant: pid 7".into(),
                )))
            }),
        ),
        (
            "plan-refused",
            "the guard not confirmed",
            Box::new(|| {
                g(diagnose_failure(&Failure::Refused(
                    "refused: type 60".into(),
                )))
            }),
        ),
        (
            "invalid-input",
            "a password against the rules",
            Box::new(|| {
                g(diagnose_failure(&Failure::Invalid(
                    "8 to 256 characters".into(),
                )))
            }),
        ),
        (
            "not-sent",
            "an op whose dependency failed",
            Box::new(|| {
                g(graph(
                    0,
                    &body(
                        "not-sent",
                        "the group Sales does not exist in Microsoft 365",
                        None,
                    ),
                    Operation::AddMember,
                    None,
                ))
            }),
        ),
        (
            "outcome-unknown",
            "a password write whose answer was lost",
            Box::new(|| {
                g(graph(
                    0,
                    &body("outcome-unknown", "set it again", None),
                    Operation::SetPassword,
                    None,
                ))
            }),
        ),
        (
            "password-not-delivered",
            "a create whose password never reached a sink",
            Box::new(|| {
                g(diagnose_undelivered(
                    "ann@contoso.com",
                    "2026-12-01T10:00:00Z",
                ))
            }),
        ),
        (
            "run-stalled",
            "a run throttled without end",
            Box::new(|| g(diagnose_stalled("no change finished for 15 min"))),
        ),
        (
            "directory-unavailable",
            "sqlite error",
            Box::new(|| g(diagnose_directory("save", "database is locked"))),
        ),
        (
            "unknown",
            "unknown code",
            Box::new(|| {
                g(graph(
                    400,
                    &body("Request_SomethingNew", "Something new happened.", None),
                    Operation::CreateUser,
                    None,
                ))
            }),
        ),
        (
            "unknown",
            "unknown oauth error",
            Box::new(|| {
                g(oauth(
                    "server_error",
                    Some(9999999),
                    "AADSTS9999999: Something new.",
                ))
            }),
        ),
        // Licences (graph-notes §14.2, exact strings).
        (
            "licence-usage-location",
            "graph 400 invalid usage location",
            Box::new(|| {
                g(graph(
                    400,
                    &body(
                        "Request_BadRequest",
                        "License assignment cannot be done for user with invalid usage location.",
                        None,
                    ),
                    Operation::AssignLicense,
                    None,
                ))
            }),
        ),
        (
            "licence-sku-unknown",
            "graph 400 not a valid company license",
            Box::new(|| {
                g(graph(
                    400,
                    &body(
                        "Request_BadRequest",
                        "License 11111111-2222-3333-4444-555555555555 does not correspond to a valid company License.",
                        None,
                    ),
                    Operation::AssignLicense,
                    None,
                ))
            }),
        ),
        (
            "licence-no-seats",
            "graph 400 no available licenses",
            Box::new(|| {
                g(graph(
                    400,
                    &body(
                        "Request_BadRequest",
                        "Subscription with SKU f8a1db68-be16-40ed-86d5-cb42ce701560 does not have any available licenses.",
                        None,
                    ),
                    Operation::AssignLicense,
                    None,
                ))
            }),
        ),
        (
            "licence-plan-conflict",
            "graph 400 mutually exclusive plans",
            Box::new(|| {
                g(graph(
                    400,
                    &body(
                        "Request_BadRequest",
                        "License assignment failed because service plans 9aaf7827-d63c-4b61-89c3-182f06f82e5c, efb87545-963c-4e0d-99df-69c6916d9eb0 are mutually exclusive.",
                        None,
                    ),
                    Operation::AssignLicense,
                    None,
                ))
            }),
        ),
        (
            "licence-plan-dependency",
            "graph 400 a plan depends on a plan turned off",
            Box::new(|| {
                g(graph(
                    400,
                    &body(
                        "Request_BadRequest",
                        "License assignment failed because service plan 199a5c09-e0ca-4e37-8f7c-b05d533e1ea2 depends on the service plan(s) efb87545-963c-4e0d-99df-69c6916d9eb0, 9aaf7827-d63c-4b61-89c3-182f06f82e5c",
                        None,
                    ),
                    Operation::AssignLicense,
                    None,
                ))
            }),
        ),
        (
            "licence-from-group",
            "graph 400 inherited licence",
            Box::new(|| {
                g(graph(
                    400,
                    &body(
                        "Request_BadRequest",
                        "User license is inherited from a group membership and it cannot be removed directly from the user.",
                        None,
                    ),
                    Operation::AssignLicense,
                    None,
                ))
            }),
        ),
        (
            "licence-sku-not-assignable",
            "graph 400 licence for companies",
            Box::new(|| {
                g(graph(
                    400,
                    &body(
                        "Request_BadRequest",
                        "License 8c098270-9dd4-4350-9b30-ba4703f3b36b cannot be assigned to a user.",
                        None,
                    ),
                    Operation::AssignLicense,
                    None,
                ))
            }),
        ),
        (
            "licence-permission-missing",
            "graph 403 on assignLicense",
            Box::new(|| {
                g(graph(
                    403,
                    &body(
                        "Authorization_RequestDenied",
                        "Insufficient privileges to complete the operation.",
                        None,
                    ),
                    Operation::AssignLicense,
                    None,
                ))
            }),
        ),
        (
            "licence-permission-missing",
            "graph 403 on subscribedSkus",
            Box::new(|| {
                g(graph(
                    403,
                    &body(
                        "Authorization_RequestDenied",
                        "Insufficient privileges to complete the operation.",
                        None,
                    ),
                    Operation::ListLicences,
                    None,
                ))
            }),
        ),
    ]
}

/// Licence errors Microsoft records on accounts (`licenseAssignmentStates`, graph-notes
/// §14.3): each error code, found as the plan finds them, explained by its own kind.
pub fn recorded_licence_cases() -> Vec<Case> {
    fn recorded(error: &'static str, state: &'static str) -> Vec<String> {
        use m365sync::graph::licences::{LicenceState, UserLicences};
        let mut u = dir_user(1, "ann@contoso.com");
        u.tenant_user_id = Some("acc-1".into());
        let accounts = std::collections::HashMap::from([(
            "acc-1".to_string(),
            UserLicences {
                assigned_licenses: vec![],
                license_assignment_states: vec![LicenceState {
                    sku_id: "e3".into(),
                    assigned_by_group: Some("grp".into()),
                    disabled_plans: vec![],
                    state: Some(state.into()),
                    error: Some(error.into()),
                }],
            },
        )]);
        m365sync::sync::licences::recorded_errors(&[u], &[], &accounts)
            .into_iter()
            .map(|(i, email)| m365sync::diagnose::diagnose_recorded(&i, Subject::User(email)).kind)
            .collect()
    }
    vec![
        (
            "licence-state-no-seats",
            "recorded CountViolation",
            Box::new(|| recorded("CountViolation", "Error")),
        ),
        (
            "licence-state-exclusive",
            "recorded MutuallyExclusiveViolation",
            Box::new(|| recorded("MutuallyExclusiveViolation", "Error")),
        ),
        (
            "licence-state-dependency",
            "recorded DependencyViolation",
            Box::new(|| recorded("DependencyViolation", "ActiveWithError")),
        ),
        (
            "licence-state-usage-location",
            "recorded ProhibitedInUsageLocationViolation",
            Box::new(|| recorded("ProhibitedInUsageLocationViolation", "Error")),
        ),
        (
            "licence-state-uniqueness",
            "recorded UniquenessViolation",
            Box::new(|| recorded("UniquenessViolation", "Error")),
        ),
        (
            "licence-state-other",
            "recorded Other",
            Box::new(|| recorded("Other", "Error")),
        ),
        (
            "licence-state-other",
            "state Error without an error code",
            Box::new(|| recorded("None", "Error")),
        ),
    ]
}
