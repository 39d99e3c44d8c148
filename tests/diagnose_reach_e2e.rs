//! Every catalog kind, reached end to end: from a real simulator answer over HTTP parsed by
//! m365sync's own client (`GraphClient`, `Authenticator`, or `MsErrorResponse` for grants the
//! Authenticator does not speak), from a real preflight finding over directory users and the
//! simulator's domains, from the real directory (SQLite), or from a real transport condition
//! (connection refused, a reset, a body that is not JSON). The set of kinds reached must equal
//! the catalog: a kind that stops being reachable fails this test.
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use m365sync::auth::oauth::MsErrorResponse;
use m365sync::auth::{AuthError, Authenticator, DeviceCodeStart, TokenCache};
use m365sync::diagnose::{
    diagnose_auth, diagnose_directory, diagnose_graph, diagnose_import, diagnose_issue, Catalog,
    Context, Diagnosis, Operation, Subject,
};
use m365sync::directory::{
    BindingState, Directory, DirectoryUser, ImportOutcome, NewDirectoryUser,
};
use m365sync::graph::{Domain, GraphClient, GraphError, RetryPolicy, StaticToken, User};
use m365sync::sim::{FaultKind, FaultRule, SignInPolicy, Sim, SimOptions};
use m365sync::sync::preflight::{check_group_name, preflight, PreflightOptions, TenantIndex};
use reqwest::Method;
use serde_json::{json, Value};

const PW: &str = "Str0ng!Passw0rd";
const READ_ONLY_APP: (&str, &str) = (
    "5b1f7a0e-3c2d-4e8f-9a61-7d4c2b9e0f13",
    "Rpt8Q~Vh3kLmN2pQrS5tUvW7xYz9AbCdEfGhIjKl",
);
const UNCONSENTED_PUBLIC_APP: &str = "8e4d2c6a-1f3b-4a5c-b7d9-0e2f4a6c8b1d";
const ROTATED_APP: (&str, &str) = (
    "c3a9e1f5-7b2d-4c6e-8a0f-1d3b5c7e9a24",
    "Old8Q~Pl0Ok9Ij8Uh7Yg6Tf5Rd4Es3Wa2Qz1XcVb",
);

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[derive(Default)]
struct Reached(BTreeSet<String>);

impl Reached {
    fn hit(&mut self, want: &str, how: &str, d: Diagnosis) {
        assert_eq!(d.kind, want, "{how}: {d:?}");
        self.0.insert(d.kind);
    }
}

fn authn(sim: &Sim, tenant: &str, client_id: &str) -> Authenticator {
    Authenticator::new(http(), &sim.base_url, tenant, client_id).with_sleep(Arc::new(|_| {
        Box::pin(tokio::time::sleep(Duration::from_millis(20)))
    }))
}

async fn app_token(sim: &Sim, id: &str, secret: &str) -> Result<String, AuthError> {
    authn(sim, &sim.tenant_id, id)
        .client_credentials(secret)
        .await
        .map(|t| t.access_token)
}

fn graph(sim: &Sim, token: &str) -> GraphClient {
    GraphClient::new(
        http(),
        &format!("{}/v1.0", sim.base_url),
        Arc::new(StaticToken(token.to_string())),
    )
    .with_retry(RetryPolicy {
        max_attempts: 1,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(1),
    })
}

async fn send(g: &GraphClient, method: Method, url: &str, body: Option<Value>) -> GraphError {
    g.request(method, url, body.map(|b| Bytes::from(b.to_string())))
        .await
        .expect_err("the simulator must refuse")
}

async fn ok(g: &GraphClient, method: Method, url: &str, body: Option<Value>) -> Value {
    let r = g
        .request(method, url, body.map(|b| Bytes::from(b.to_string())))
        .await
        .expect("accepted");
    if r.body.is_empty() {
        Value::Null
    } else {
        r.json().unwrap()
    }
}

fn new_user(upn: &str, password: &str) -> Value {
    json!({
        "accountEnabled": true,
        "displayName": format!("User {upn}"),
        "mailNickname": upn.split('@').next().unwrap(),
        "userPrincipalName": upn,
        "passwordProfile": {"password": password, "forceChangePasswordNextSignIn": false},
    })
}

fn new_group(name: &str, nick: &str) -> Value {
    json!({
        "displayName": name,
        "mailEnabled": false,
        "mailNickname": nick,
        "securityEnabled": true,
    })
}

/// A raw token-endpoint answer, parsed by the client's own error type.
async fn token_form(sim: &Sim, form: &[(&str, &str)]) -> AuthError {
    let r = http()
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            sim.base_url, sim.tenant_id
        ))
        .form(form)
        .send()
        .await
        .unwrap();
    assert!(r.status().as_u16() >= 400);
    let b = r.bytes().await.unwrap();
    serde_json::from_slice::<MsErrorResponse>(&b)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&b)))
        .into_auth_error()
}

fn dir_user(id: i64, email: &str) -> DirectoryUser {
    DirectoryUser {
        id,
        email: email.into(),
        display_name: email.into(),
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

/// Graph refusals through GraphClient, from the default simulator.
async fn graph_kinds(r: &mut Reached) {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let (id, secret) = sim.apps[0].clone();
    let token = app_token(&sim, &id, &secret).await.unwrap();
    let g = graph(&sim, &token);
    let deleted: Value = ok(
        &g,
        Method::GET,
        "/directory/deletedItems/microsoft.graph.user",
        None,
    )
    .await;
    let held = deleted["value"][0]["userPrincipalName"]
        .as_str()
        .unwrap()
        .to_string();

    for (upn, pw, want) in [
        ("new.person@northwind-labs.io", PW, "upn-domain-unverified"),
        (
            "new.fed@corp.northwindtraders.com",
            PW,
            "federated-domain-needs-immutable-id",
        ),
        ("ren\u{e9}e@northwindtraders.com", PW, "upn-invalid"),
        (
            "weak.pw@northwindtraders.com",
            "alllowercase",
            "password-complexity",
        ),
        ("short.pw@northwindtraders.com", "Ab1!", "password-length"),
        (held.as_str(), PW, "proxy-address-held"),
        ("irvin.sayers@northwindtraders.com", PW, "upn-exists"),
    ] {
        let e = send(&g, Method::POST, "/users", Some(new_user(upn, pw))).await;
        let ctx = Context::new(Operation::CreateUser, Subject::User(upn.into()))
            .with_value(upn)
            .with_password(pw);
        r.hit(
            want,
            &format!("POST /users {upn}"),
            diagnose_graph(&e, &ctx),
        );
    }

    // Groups: nickname rules, nickname conflict, group type, membership.
    let group = ok(
        &g,
        Method::POST,
        "/groups",
        Some(new_group("Reach Team", "reachteam")),
    )
    .await;
    let gid = group["id"].as_str().unwrap().to_string();
    let long = "n".repeat(65);
    for (nick, want) in [
        ("reach(team)", "mailnickname-forbidden-char"),
        (long.as_str(), "mailnickname-length"),
    ] {
        let e = send(
            &g,
            Method::POST,
            "/groups",
            Some(new_group("Reach Other", nick)),
        )
        .await;
        let ctx = Context::new(Operation::CreateGroup, Subject::Group("Reach Other".into()))
            .with_value(nick);
        r.hit(
            want,
            &format!("POST /groups {nick}"),
            diagnose_graph(&e, &ctx),
        );
    }
    // Microsoft 365 groups share the mail namespace: a second one with the same alias is refused.
    let m365 = |name: &str| {
        json!({"displayName": name, "mailEnabled": true, "mailNickname": "reachm365",
               "securityEnabled": false, "groupTypes": ["Unified"]})
    };
    ok(&g, Method::POST, "/groups", Some(m365("Reach 365"))).await;
    let e = send(&g, Method::POST, "/groups", Some(m365("Reach 365 again"))).await;
    r.hit(
        "mailnickname-exists",
        "a second Microsoft 365 group with the same alias",
        diagnose_graph(
            &e,
            &Context::new(
                Operation::CreateGroup,
                Subject::Group("Reach 365 again".into()),
            )
            .with_value("reachm365"),
        ),
    );
    let e = send(
        &g,
        Method::POST,
        "/groups",
        Some(
            json!({"displayName": "Mail Sec", "mailEnabled": true, "mailNickname": "mailsec",
                    "securityEnabled": true, "groupTypes": []}),
        ),
    )
    .await;
    r.hit(
        "group-type-unsupported",
        "mail-enabled security group",
        diagnose_graph(
            &e,
            &Context::new(Operation::CreateGroup, Subject::Group("Mail Sec".into())),
        ),
    );
    let member: Value = ok(
        &g,
        Method::GET,
        "/users/irvin.sayers@northwindtraders.com",
        None,
    )
    .await;
    let uid = member["id"].as_str().unwrap().to_string();
    let add =
        json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{uid}")});
    let url = format!("/groups/{gid}/members/$ref");
    ok(&g, Method::POST, &url, Some(add.clone())).await;
    let e = send(&g, Method::POST, &url, Some(add)).await;
    let gctx = |op| Context::new(op, Subject::Group("Reach Team".into()));
    r.hit(
        "member-already-added",
        "add twice",
        diagnose_graph(&e, &gctx(Operation::AddMember)),
    );
    let other: Value = ok(&g, Method::GET, "/users?$top=2&$select=id", None).await;
    let not_member = other["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_string())
        .find(|i| *i != uid)
        .unwrap();
    let e = send(
        &g,
        Method::DELETE,
        &format!("/groups/{gid}/members/{not_member}/$ref"),
        None,
    )
    .await;
    r.hit(
        "member-not-present",
        "remove a non-member",
        diagnose_graph(&e, &gctx(Operation::RemoveMember)),
    );

    // Reads: not found, a query Graph refuses; a body Graph refuses for a reason no kind names.
    let e = send(
        &g,
        Method::GET,
        "/users/nobody.here@northwindtraders.com",
        None,
    )
    .await;
    r.hit(
        "object-not-found",
        "GET a missing user",
        diagnose_graph(&e, &Context::new(Operation::UpdateUser, Subject::None)),
    );
    let e = send(&g, Method::GET, "/users?$top=1000", None).await;
    r.hit(
        "invalid-request",
        "$top=1000",
        diagnose_graph(&e, &Context::new(Operation::ListUsers, Subject::None)),
    );
    let e = send(
        &g,
        Method::POST,
        "/users",
        Some(json!({"accountEnabled": true, "userPrincipalName": "partial@northwindtraders.com"})),
    )
    .await;
    r.hit(
        "unknown",
        "a create missing required properties",
        diagnose_graph(&e, &Context::new(Operation::CreateUser, Subject::None)),
    );

    // Faults: 429 with Retry-After, 503, a dropped connection.
    for (kind, want) in [
        (
            FaultKind::Throttle {
                retry_after_secs: 2,
            },
            "throttled",
        ),
        (FaultKind::Unavailable, "service-unavailable"),
        (FaultKind::Reset, "network-unreachable"),
    ] {
        sim.faults()
            .add(FaultRule::next("GET", "/v1.0/domains", 1, kind));
        let e = g.list_domains().await.expect_err("fault");
        r.hit(
            want,
            "fault on GET /domains",
            diagnose_graph(&e, &Context::new(Operation::ListDomains, Subject::None)),
        );
    }
    // A 200 whose body is not JSON (the sign-in page, same origin).
    let resp = g
        .get(&format!("{}/devicelogin", sim.base_url))
        .await
        .unwrap();
    let e = resp.json::<Value>().expect_err("HTML is not JSON");
    r.hit(
        "malformed-response",
        "HTML answer",
        diagnose_graph(&e, &Context::default()),
    );
    // A token Graph does not accept.
    let e = send(&graph(&sim, "not-a-token"), Method::GET, "/users", None).await;
    r.hit(
        "token-expired",
        "a bad bearer token",
        diagnose_graph(&e, &Context::new(Operation::ListUsers, Subject::None)),
    );
    // The read-only app: reads fine, writes refused.
    let ro = app_token(&sim, READ_ONLY_APP.0, READ_ONLY_APP.1)
        .await
        .unwrap();
    let gro = graph(&sim, &ro);
    gro.list_domains().await.expect("reads are granted");
    let e = send(
        &gro,
        Method::POST,
        "/users",
        Some(new_user("ro.write@northwindtraders.com", PW)),
    )
    .await;
    let d = diagnose_graph(&e, &Context::new(Operation::CreateUser, Subject::None));
    assert_eq!(d.permission.as_deref(), Some("User.ReadWrite.All"));
    r.hit("insufficient-privileges", "read-only app writes", d);
    // Connection refused: a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = GraphClient::new(
        http(),
        &format!("http://127.0.0.1:{port}/v1.0"),
        Arc::new(StaticToken(token.clone())),
    )
    .with_retry(RetryPolicy {
        max_attempts: 1,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(1),
    });
    let e = dead.list_domains().await.expect_err("refused");
    r.hit(
        "network-unreachable",
        "connection refused",
        diagnose_graph(&e, &Context::default()),
    );
    // A Graph URL with a wrong version path: the simulator's plain 404, not Graph's.
    let wrong = GraphClient::new(
        http(),
        &format!("{}/v2.0", sim.base_url),
        Arc::new(StaticToken(token.clone())),
    );
    let e = wrong.list_domains().await.expect_err("no Graph there");
    r.hit(
        "graph-url-wrong",
        "a Graph URL ending in /v2.0",
        diagnose_graph(&e, &Context::new(Operation::ListDomains, Subject::None)),
    );
    sim.shutdown().await;

    // A read-only tenant; a directory at its object quota.
    for (opts, want) in [
        (
            SimOptions {
                read_only_tenant: true,
                ..SimOptions::default()
            },
            "tenant-not-supported",
        ),
        (
            SimOptions {
                object_quota: Some(5),
                ..SimOptions::default()
            },
            "directory-quota-exceeded",
        ),
    ] {
        let sim = Sim::start(opts).await.unwrap();
        let (id, secret) = sim.apps[0].clone();
        let g = graph(&sim, &app_token(&sim, &id, &secret).await.unwrap());
        let e = send(
            &g,
            Method::POST,
            "/users",
            Some(new_user("one.more@northwindtraders.com", PW)),
        )
        .await;
        r.hit(
            want,
            "POST /users",
            diagnose_graph(&e, &Context::new(Operation::CreateUser, Subject::None)),
        );
        sim.shutdown().await;
    }
}

/// Token-endpoint refusals: through the Authenticator where it speaks the grant.
async fn auth_kinds(r: &mut Reached) {
    let sim = Sim::start(SimOptions {
        device_code_interval: 0,
        password_grant: true,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let (id, secret) = sim.apps[0].clone();
    let au = |d: AuthError| diagnose_auth(&d);

    let e = app_token(&sim, &id, "wrong-secret").await.unwrap_err();
    r.hit("client-secret-invalid", "wrong secret", au(e));
    let e = app_token(&sim, ROTATED_APP.0, ROTATED_APP.1)
        .await
        .unwrap_err();
    let d = au(e);
    assert_eq!(d.raw.as_ref().unwrap().code, "AADSTS7000222");
    r.hit("client-secret-invalid", "expired secret", d);
    let e = app_token(&sim, "00000000-0000-0000-0000-000000000000", &secret)
        .await
        .unwrap_err();
    r.hit("app-not-in-tenant", "unknown client id", au(e));
    let e = authn(&sim, "nosuchtenant.onmicrosoft.com", &id)
        .client_credentials(&secret)
        .await
        .unwrap_err();
    r.hit("tenant-not-found", "unknown tenant", au(e));
    let e = authn(&sim, &sim.tenant_id, &id)
        .start_device_code()
        .await
        .unwrap_err();
    r.hit(
        "public-client-disabled",
        "device code for a confidential app",
        au(e),
    );
    let e = token_form(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", "User.Read"),
        ],
    )
    .await;
    r.hit(
        "invalid-scope",
        "client credentials without /.default",
        au(e),
    );
    // App tokens carry no refresh token: refreshing says sign in again.
    let tokens = authn(&sim, &sim.tenant_id, &id)
        .client_credentials(&secret)
        .await
        .unwrap();
    let e = authn(&sim, &sim.tenant_id, &id)
        .refresh(&tokens)
        .await
        .unwrap_err();
    r.hit("not-signed-in", "refresh without a refresh token", au(e));

    // Device code: pending (one raw poll), declined, invalid code, consent missing.
    let public = sim.public_client_id.clone();
    let a = authn(&sim, &sim.tenant_id, &public);
    let start = a.start_device_code().await.unwrap();
    let e = token_form(
        &sim,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", &public),
            ("device_code", &start.device_code),
        ],
    )
    .await;
    r.hit("sign-in-pending", "a poll before approval", au(e));
    assert!(sim.decline(&start.user_code));
    let e = a.poll_device_code(&start).await.unwrap_err();
    r.hit("sign-in-declined", "declined", au(e));
    let bogus = DeviceCodeStart {
        device_code: "DAQABIQEAAAD-not-a-code".into(),
        ..start.clone()
    };
    let e = a.poll_device_code(&bogus).await.unwrap_err();
    r.hit("sign-in-code-invalid", "a device code never issued", au(e));
    let a2 = authn(&sim, &sim.tenant_id, UNCONSENTED_PUBLIC_APP);
    let start = a2.start_device_code().await.unwrap();
    assert!(sim.approve(&start.user_code));
    let e = a2.poll_device_code(&start).await.unwrap_err();
    r.hit("consent-missing", "an app nobody consented to", au(e));

    // Password sign-in (ROPC): a user Graph created with a password.
    let g = graph(&sim, &app_token(&sim, &id, &secret).await.unwrap());
    ok(
        &g,
        Method::POST,
        "/users",
        Some(new_user("ropc.user@northwindtraders.com", PW)),
    )
    .await;
    let ropc = |user: &'static str, pw: &'static str| {
        let public = public.clone();
        let sim = &sim;
        async move {
            token_form(
                sim,
                &[
                    ("grant_type", "password"),
                    ("client_id", &public),
                    ("username", user),
                    ("password", pw),
                    ("scope", "https://graph.microsoft.com/.default"),
                ],
            )
            .await
        }
    };
    let e = ropc("no.such.user@northwindtraders.com", PW).await;
    r.hit("account-not-in-tenant", "ROPC unknown user", au(e));
    let e = ropc("ropc.user@northwindtraders.com", "Wrong!Passw0rd").await;
    r.hit("wrong-password", "ROPC wrong password", au(e));
    let mut last = None;
    for _ in 0..9 {
        last = Some(ropc("ropc.user@northwindtraders.com", "Wrong!Passw0rd").await);
    }
    r.hit("account-locked", "ROPC tenth failure", au(last.unwrap()));
    sim.shutdown().await;

    // Device code that expires before anyone approves it.
    let sim = Sim::start(SimOptions {
        device_code_interval: 0,
        device_code_lifetime: Duration::from_secs(1),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let public = sim.public_client_id.clone();
    let a = authn(&sim, &sim.tenant_id, &public);
    let start = a.start_device_code().await.unwrap();
    let e = a.poll_device_code(&start).await.unwrap_err();
    r.hit("sign-in-code-expired", "nobody approved in time", au(e));
    sim.shutdown().await;

    // Conditional Access on the device-code redemption.
    for (policy, want) in [
        (SignInPolicy::RequireMfa, "mfa-required"),
        (SignInPolicy::Block, "conditional-access-blocked"),
    ] {
        let sim = Sim::start(SimOptions {
            device_code_interval: 0,
            sign_in_policy: Some(policy),
            ..SimOptions::default()
        })
        .await
        .unwrap();
        let public = sim.public_client_id.clone();
        let a = authn(&sim, &sim.tenant_id, &public);
        let start = a.start_device_code().await.unwrap();
        assert!(sim.approve(&start.user_code));
        let e = a.poll_device_code(&start).await.unwrap_err();
        r.hit(want, "device code under Conditional Access", au(e));
        sim.shutdown().await;
    }

    // A token cache file that is not one.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    std::fs::write(&path, b"{ not a token cache").unwrap();
    let e = TokenCache::new(path).load().unwrap_err();
    r.hit("sign-in-settings", "a corrupt token cache", au(e));
}

/// Attribute sync: the directory's values checked by preflight as the pipeline runs it, and
/// an account mastered on-premises (a real listing's `onPremisesSyncEnabled`) that the plan
/// never edits.
async fn attribute_kinds(r: &mut Reached) {
    use m365sync::graph::model::UserAttr;
    use m365sync::sync::pipeline::{make_plan, DirectoryState, TenantState};
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let (id, secret) = sim.apps[0].clone();
    let g = graph(&sim, &app_token(&sim, &id, &secret).await.unwrap());
    let mut tenant = m365sync::sync::pipeline::read_tenant(&g, None, &Default::default())
        .await
        .unwrap();
    let mut users = Vec::new();
    let mut add = |id: i64, attr: &str, value: &str, link: Option<&User>| {
        let mut u = DirectoryUser {
            id,
            email: format!("attr{id}@northwindtraders.com"),
            display_name: format!("Attr {id}"),
            want_bound: true,
            ..Default::default()
        };
        if let Some(acc) = link {
            u.email = acc.email().to_string();
            u.tenant_user_id = Some(acc.id.clone());
            u.binding = BindingState::Bound;
        }
        u.attributes.insert(attr.into(), value.into());
        users.push(u);
    };
    add(1, "employeeId", &"9".repeat(17), None);
    add(2, "city", "Par\u{7}is", None);
    add(3, "usageLocation", "XX", None);
    add(4, "preferredLanguage", "english", None);
    // A live account mastered on-premises, whose department the directory holds otherwise.
    let pages = std::mem::take(&mut tenant.users.pages);
    let mut live: Vec<User> = pages.iter().flat_map(|p| p.iter().cloned()).collect();
    let acc = live
        .iter_mut()
        .find(|u| u.account_enabled == Some(true) && u.mail.is_some())
        .unwrap();
    acc.on_premises_sync_enabled = true;
    acc.set_attr(UserAttr::Department, Some("Sales"));
    let acc = acc.clone();
    tenant.users.pages = vec![Arc::new(live)];
    add(5, "department", "Finance", Some(&acc));
    // Managers: unknown, not bound, in a loop.
    add(6, "manager", "nobody@northwindtraders.com", None);
    add(7, "manager", "attr10@northwindtraders.com", None);
    add(8, "manager", "attr9@northwindtraders.com", None);
    add(9, "manager", "attr8@northwindtraders.com", None);
    add(10, "jobTitle", "Not bound", None);
    users.last_mut().unwrap().want_bound = false;
    let dir = DirectoryState {
        users,
        ..Default::default()
    };
    let view = make_plan(
        &dir,
        &TenantState {
            users: tenant.users,
            groups: Default::default(),
            managers: Default::default(),
            ..Default::default()
        },
        &Default::default(),
        0,
        Default::default(),
    );
    let by_user = |id: i64| {
        view.issues
            .iter()
            .find(|(i, _)| i.directory_id == id)
            .map(|(i, email)| diagnose_issue(i, Subject::User(email.clone())))
            .unwrap_or_else(|| panic!("no finding for {id}: {:?}", view.issues))
    };
    r.hit("attribute-too-long", "an employeeId of 17", by_user(1));
    r.hit(
        "attribute-invalid",
        "a city with a control character",
        by_user(2),
    );
    r.hit("usage-location-invalid", "usageLocation XX", by_user(3));
    r.hit(
        "preferred-language-invalid",
        "preferredLanguage english",
        by_user(4),
    );
    r.hit(
        "synced-from-on-premises",
        "an on-premises account",
        by_user(5),
    );
    r.hit(
        "manager-unknown",
        "a manager no directory user has",
        by_user(6),
    );
    r.hit(
        "manager-not-bound",
        "a manager who is not bound",
        by_user(7),
    );
    r.hit("manager-loop", "two managers of each other", by_user(8));
    assert!(
        !view.plan.ops.iter().any(|o| o.directory_id == 5),
        "an on-premises account is never edited"
    );
    assert!(
        view.held
            .iter()
            .filter(|(o, _)| o.directory_id <= 4)
            .count()
            == 4,
        "the creates with bad values are held back"
    );
    sim.shutdown().await;
}

/// Preflight over directory users and the simulator's real domains and users.
async fn preflight_kinds(r: &mut Reached) {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let (id, secret) = sim.apps[0].clone();
    let g = graph(&sim, &app_token(&sim, &id, &secret).await.unwrap());
    let domains = g.list_domains().await.unwrap();
    let live: Value = ok(
        &g,
        Method::GET,
        "/users?$top=999&$select=id,userPrincipalName,mail,proxyAddresses,mailNickname,userType",
        None,
    )
    .await;
    let live: Vec<User> = serde_json::from_value(live["value"].clone()).unwrap();
    let deleted: Value = ok(
        &g,
        Method::GET,
        "/directory/deletedItems/microsoft.graph.user",
        None,
    )
    .await;
    let deleted: Vec<User> = serde_json::from_value(deleted["value"].clone()).unwrap();
    let held = deleted[0].user_principal_name.clone();
    let existing = "irvin.sayers@northwindtraders.com";

    let long_local = format!("{}@northwindtraders.com", "l".repeat(70));
    let cases: Vec<(String, &str, &str)> = vec![
        (
            "a.person@northwind-labs.io".into(),
            PW,
            "upn-domain-unverified",
        ),
        (
            "b.person@nwtraders.co.uk".into(),
            PW,
            "upn-domain-not-enabled",
        ),
        (
            "c.fed@corp.northwindtraders.com".into(),
            PW,
            "federated-domain-needs-immutable-id",
        ),
        (
            "ren\u{e9}e.p@northwindtraders.com".into(),
            PW,
            "upn-invalid",
        ),
        (
            "weak.p@northwindtraders.com".into(),
            "alllowercase",
            "password-complexity",
        ),
        (
            "short.p@northwindtraders.com".into(),
            "Ab1!",
            "password-length",
        ),
        (held.clone(), PW, "proxy-address-held"),
        // The mail of one of the seed's guests.
        ("lena@fabrikam.com".into(), PW, "guest-as-member"),
        (existing.into(), PW, "upn-exists"),
        (
            "dup.person@northwindtraders.com".into(),
            PW,
            "email-duplicate",
        ),
        (
            "DUP.person@northwindtraders.com".into(),
            PW,
            "email-duplicate",
        ),
        (
            "same.nick@northwindtraders.com".into(),
            PW,
            "mailnickname-duplicate",
        ),
        (
            "same.nick@northwindtraders.onmicrosoft.com".into(),
            PW,
            "mailnickname-duplicate",
        ),
        (
            "bad,nick@northwindtraders.com".into(),
            PW,
            "mailnickname-forbidden-char",
        ),
        (long_local, PW, "mailnickname-length"),
        (
            "trailing.@northwindtraders.com".into(),
            PW,
            "mailnickname-leading-or-trailing-space-or-dot",
        ),
    ];
    let mut users: Vec<DirectoryUser> = cases
        .iter()
        .enumerate()
        .map(|(i, (e, _, _))| dir_user(i as i64 + 1, e))
        .collect();
    // The existing account is linked to another directory user: a conflict, not a takeover.
    let mut owner = dir_user(99, "irvin.s@northwindtraders.com");
    owner.tenant_user_id = live
        .iter()
        .find(|u| u.user_principal_name == existing)
        .map(|u| u.id.clone());
    users.push(owner);
    let enabled: Vec<String> = domains
        .iter()
        .map(|d: &Domain| d.id.clone())
        .filter(|d| d != "nwtraders.co.uk")
        .collect();
    let opts = PreflightOptions {
        enabled_domains: Some(enabled),
        passwords: cases
            .iter()
            .enumerate()
            .map(|(i, (_, pw, _))| (i as i64 + 1, pw.to_string()))
            .collect(),
        ..PreflightOptions::default()
    };
    let idx = TenantIndex::new(&live, &deleted);
    let issues = preflight(&users, &domains, Some(&idx), &opts);
    for (i, (email, _, want)) in cases.iter().enumerate() {
        let issue = issues
            .iter()
            .find(|x| x.directory_id == i as i64 + 1 && x.kind == *want)
            .unwrap_or_else(|| {
                let got: Vec<_> = issues
                    .iter()
                    .filter(|x| x.directory_id == i as i64 + 1)
                    .map(|x| x.kind.as_str())
                    .collect();
                panic!("preflight for {email}: want {want}, got {got:?}")
            });
        r.hit(
            want,
            &format!("preflight {email}"),
            diagnose_issue(issue, Subject::User(email.clone())),
        );
    }
    // A group name with a doubled space, as the directory's groups go through preflight.
    let issues = check_group_name(1, "Reach  Team", Some("reachteam"));
    let issue = issues
        .iter()
        .find(|i| i.kind == "group-name-extra-space")
        .expect("extra space found");
    r.hit(
        "group-name-extra-space",
        "preflight group name",
        diagnose_issue(issue, Subject::Group("Reach  Team".into())),
    );

    // The directory: importing tenant users.
    let mut dir = Directory::open_in_memory().unwrap();
    dir.add_user(&NewDirectoryUser {
        email: existing.into(),
        display_name: "Irvin".into(),
        given_name: None,
        surname: None,
    })
    .unwrap();
    let irvin = live
        .iter()
        .find(|u| u.user_principal_name == existing)
        .unwrap()
        .clone();
    // No tenant user lacks a usable address in a real tenant (the UPN stands in for a missing
    // mail): this one is a real simulator user with its addresses blanked, as a foreign tenant
    // export might carry it.
    let mut blank = live
        .iter()
        .find(|u| u.user_principal_name != existing)
        .unwrap()
        .clone();
    blank.mail = Some(" ".into());
    blank.user_principal_name = " ".into();
    let out = dir.import(&[irvin, blank]).unwrap();
    for o in &out {
        let ImportOutcome::Failed(f) = o else {
            panic!("expected failures: {out:?}")
        };
        let want = if f.kind == "email-exists" {
            "email-exists"
        } else {
            "import-missing-email"
        };
        r.hit(
            want,
            "directory import",
            diagnose_import(&f.kind, &f.user_principal_name, &f.message, Some(&f.at)),
        );
    }
    // A directory that cannot be opened.
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let bad_path = blocker.path().join("directory.db");
    let e = Directory::open(&bad_path)
        .err()
        .expect("a file is not a folder");
    r.hit(
        "directory-unavailable",
        "open under a file",
        diagnose_directory("open the directory", &e.to_string()),
    );
    // A panic in a task, caught by the runtime the way app::runtime reports it.
    let join = tokio::spawn(async { panic!("reach: simulated bug") }).await;
    let e = join.expect_err("panicked");
    assert!(e.is_panic());
    r.hit(
        "internal-error",
        "a panicking task",
        diagnose_directory("load", &format!("internal error: {e}")),
    );
    sim.shutdown().await;
}

/// The engine's own failures from real conditions: a busy, full or read-only database, a
/// hand-off file that exists, the apply lock held, an unconfirmed guard, a password against
/// the rules, an op whose group does not exist, a password write whose answer was lost, a
/// create whose password never reached a sink, a run throttled without end.
async fn engine_kinds(r: &mut Reached) {
    use m365sync::diagnose::{diagnose_failure, diagnose_stalled, diagnose_undelivered};
    use m365sync::directory::JournalState;
    use m365sync::failure::Failure;
    use m365sync::sync::apply::{self, ApplyOptions, EventSink, Outcome, Stopped};
    use m365sync::sync::groups::{GroupMember, GroupOp, GroupOpKind};
    use m365sync::sync::ops::AnyOp;
    use m365sync::sync::plan::{Op, OpKind};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("directory.sqlite3");
    // Busy: another connection holds the write lock longer than SQLite waits.
    let mut d = Directory::open(&db).unwrap();
    d.set_busy_timeout(Duration::from_millis(20)).unwrap();
    let other = rusqlite::Connection::open(&db).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let e = d.set_want(&[1], true).expect_err("busy");
    r.hit(
        "directory-busy",
        "a write while another holds the lock",
        diagnose_failure(&Failure::directory("recording the bindings", e)),
    );
    other.execute_batch("ROLLBACK").unwrap();
    // Full: a database that may not grow.
    let full = dir.path().join("full.sqlite3");
    let mut f = Directory::open(&full).unwrap();
    let c = rusqlite::Connection::open(&full).unwrap();
    let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    drop(c);
    let mut err = None;
    for i in 0..10_000 {
        if i == 0 {
            let c = rusqlite::Connection::open(&full).unwrap();
            c.execute_batch(&format!("PRAGMA max_page_count = {}", pages + 1))
                .unwrap();
            // The limit is per connection: set it on the directory's own one.
            drop(c);
            f.set_max_page_count(pages + 1).unwrap();
        }
        if let Err(e) = f.add_user(&NewDirectoryUser {
            email: format!("filler{i}@contoso.com"),
            display_name: "x".repeat(500),
            ..Default::default()
        }) {
            err = Some(e);
            break;
        }
    }
    r.hit(
        "disk-full",
        "a database at its size limit",
        diagnose_failure(&Failure::directory("importing", err.expect("full"))),
    );
    // Read-only: a write through a read-only open.
    drop(d);
    let mut ro = Directory::open_read_only(&db).unwrap();
    let e = ro.set_want(&[1], true).expect_err("read-only");
    r.hit(
        "directory-read-only",
        "a write to a read-only directory",
        diagnose_failure(&Failure::directory("recording the bindings", e)),
    );
    // A hand-off file that exists is refused before anything is sent.
    let existing = dir.path().join("pw.csv");
    std::fs::write(&existing, "x").unwrap();
    let e = m365sync::handoff::HandoffFile::create(&existing)
        .err()
        .unwrap();
    r.hit(
        "file-unwritable",
        "an existing hand-off file",
        diagnose_failure(&Failure::file(&existing, e)),
    );
    // The apply lock, held.
    let _held = m365sync::sync::pipeline::lock(dir.path(), "test").unwrap();
    let e = m365sync::sync::pipeline::lock(dir.path(), "second")
        .err()
        .unwrap();
    r.hit("apply-locked", "a second apply", diagnose_failure(&e));
    // A guard not confirmed.
    let view = m365sync::sync::pipeline::PlanView {
        guard: Some(m365sync::sync::plan::GuardTrip {
            blocks: 60,
            bound: 100,
            message: "This plan blocks sign-in for 60 users".into(),
        }),
        ..Default::default()
    };
    let e = m365sync::sync::pipeline::check_confirmed(&view, &Default::default()).unwrap_err();
    r.hit("plan-refused", "an unconfirmed guard", diagnose_failure(&e));

    // Against the simulator: the engine's runs.
    let sim = Sim::start(SimOptions {
        users: Some(5),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let (id, secret) = sim.apps[0].clone();
    let token = app_token(&sim, &id, &secret).await.unwrap();
    let g = graph(&sim, &token);
    let e = apply::set_password(g.clone(), db.clone(), "nobody@contoso.com", "short", "t")
        .await
        .unwrap_err();
    r.hit(
        "invalid-input",
        "a password against the rules",
        diagnose_failure(&e),
    );
    let mut d = Directory::open(&db).unwrap();
    let ann = d
        .add_user(&NewDirectoryUser {
            email: format!("ann@{}", sim.default_domain),
            display_name: "Ann".into(),
            ..Default::default()
        })
        .unwrap();
    drop(d);
    let run = |ops: Vec<AnyOp>, opts: ApplyOptions| {
        let g = g.clone();
        let db = db.clone();
        async move {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(async move { while rx.recv().await.is_some() {} });
            apply::apply(
                g,
                db,
                ops,
                opts,
                Box::new(EventSink(tx.clone())),
                tx,
                Default::default(),
            )
            .await
            .unwrap()
        }
    };
    // A member add to a group that does not exist: not sent.
    let add = AnyOp::Group(GroupOp {
        kind: GroupOpKind::AddMember,
        group_id: 99,
        group_name: "Nowhere".into(),
        mail_nickname: "Nowhere".into(),
        group_kind: Default::default(),
        tenant_group_id: None,
        member: Some(GroupMember {
            directory_id: ann,
            email: "ann".into(),
            tenant_user_id: Some("t-ann".into()),
        }),
        reason: String::new(),
    });
    let s = run(vec![add.clone()], ApplyOptions::default()).await;
    let Outcome::Failed(e) = &s.results[0].outcome else {
        panic!("{s:?}")
    };
    r.hit(
        "not-sent",
        "a member add to no group",
        diagnose_graph(e, &Context::for_any_op(&add)),
    );
    // A password write the run sent but never heard back from: unknowable.
    let user_op = |kind| Op {
        kind,
        directory_id: ann,
        email: format!("ann@{}", sim.default_domain),
        display_name: "Ann".into(),
        upn: format!("ann@{}", sim.default_domain),
        tenant_user_id: None,
        reason: String::new(),
        changes: Vec::new(),
        manager_id: None,
        deprovision: Default::default(),
        licences: None,
    };
    let mut d = Directory::open(&db).unwrap();
    let ids = d
        .journal_insert(
            "killed",
            &[
                AnyOp::User(user_op(OpKind::SetPassword)),
                AnyOp::User(user_op(OpKind::Create)),
            ],
        )
        .unwrap();
    d.journal_mark(&ids, JournalState::Sent).unwrap();
    drop(d);
    // The create happened before the kill: its password died with the run.
    g.request(
        Method::POST,
        "/users",
        Some(Bytes::from(
            json!({"accountEnabled": true, "displayName": "Ann", "mailNickname": "ann",
                "userPrincipalName": format!("ann@{}", sim.default_domain),
                "passwordProfile": {"password": PW, "forceChangePasswordNextSignIn": true}})
            .to_string(),
        )),
    )
    .await
    .expect("created");
    m365sync::sync::reconcile::reconcile(&g, db.clone(), "t")
        .await
        .unwrap();
    let d = Directory::open(&db).unwrap();
    let failures = m365sync::sync::pipeline::journal_failures(&d.journal_latest().unwrap());
    let (_, unknowable) = failures
        .iter()
        .find(|(op, _)| op.kind() == m365sync::sync::ops::Kind::User(OpKind::SetPassword))
        .expect("the password write is a failure now");
    r.hit(
        "outcome-unknown",
        "a lost password write",
        unknowable.clone(),
    );
    let lost = d.passwords_undelivered().unwrap();
    r.hit(
        "password-not-delivered",
        "a killed create",
        diagnose_undelivered(&lost[0].email, &lost[0].at),
    );
    drop(d);
    // A tenant that throttles every batch: the run stops by itself.
    sim.faults().add(
        "POST /v1.0/$batch always 429:1"
            .parse::<FaultRule>()
            .unwrap(),
    );
    let block = AnyOp::User(Op {
        tenant_user_id: Some("t-ann".into()),
        ..user_op(OpKind::Block)
    });
    let s = run(
        vec![block],
        ApplyOptions {
            stall_limit: Duration::from_millis(800),
            ..Default::default()
        },
    )
    .await;
    let Some(Stopped::Stalled { after, throttled }) = &s.stopped else {
        panic!("{s:?}")
    };
    assert!(*throttled > 0);
    r.hit(
        "run-stalled",
        "a run throttled without end",
        diagnose_stalled(&format!(
            "no change finished for {after:?} (throttled {throttled} times)"
        )),
    );
    sim.shutdown().await;
}

/// Licences: each `assignLicense` refusal of the simulator (graph-notes §14.2), a 403 without
/// the licence permissions, and the preflight's SKU checks over the simulator's
/// `subscribedSkus`.
async fn licence_kinds(r: &mut Reached) {
    const E3: &str = "05e9a617-0261-4cee-bb44-138d3ef5d965";
    const PBI: &str = "f8a1db68-be16-40ed-86d5-cb42ce701560";
    const EXO1: &str = "4b9405b0-7788-4568-add1-99614e613b69";
    const EXO_P2: &str = "efb87545-963c-4e0d-99df-69c6916d9eb0";
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let (id, secret) = sim.apps[0].clone();
    let g = graph(&sim, &app_token(&sim, &id, &secret).await.unwrap());
    let dom = sim.default_domain.clone();
    let mut ids = Vec::new();
    for (nick, usage) in [
        ("nowhere", None),
        ("lic.ann", Some("US")),
        ("lic.ben", Some("US")),
        ("lic.cy", Some("US")),
    ] {
        let mut body = new_user(&format!("{nick}@{dom}"), PW);
        body["usageLocation"] = json!(usage);
        ids.push(
            ok(&g, Method::POST, "/users", Some(body)).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let add = |sku: &str| json!({"addLicenses": [{"skuId": sku, "disabledPlans": []}], "removeLicenses": []});
    let ctx = |u: &str| Context::new(Operation::AssignLicense, Subject::User(u.into()));
    let assign = |u: &str| format!("/users/{u}/assignLicense");
    let (nowhere, ann, ben, cy) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let e = send(&g, Method::POST, &assign(nowhere), Some(add(E3))).await;
    r.hit(
        "licence-usage-location",
        "no usage location",
        diagnose_graph(&e, &ctx(nowhere)),
    );
    let e = send(
        &g,
        Method::POST,
        &assign(ann),
        Some(add("11111111-2222-3333-4444-555555555555")),
    )
    .await;
    r.hit(
        "licence-sku-unknown",
        "a SKU not in the tenant",
        diagnose_graph(&e, &ctx(ann)),
    );
    ok(&g, Method::POST, &assign(ann), Some(add(PBI))).await;
    let e = send(&g, Method::POST, &assign(ben), Some(add(PBI))).await;
    r.hit(
        "licence-no-seats",
        "Power BI's last seat taken",
        diagnose_graph(&e, &ctx(ben)),
    );
    ok(&g, Method::POST, &assign(ben), Some(add(E3))).await;
    let e = send(&g, Method::POST, &assign(ben), Some(add(EXO1))).await;
    r.hit(
        "licence-plan-conflict",
        "two mailbox plans",
        diagnose_graph(&e, &ctx(ben)),
    );
    // E3 with its mailbox plan off: its Bookings and Planner need one.
    let e = send(
        &g,
        Method::POST,
        &assign(cy),
        Some(json!({"addLicenses": [{"skuId": E3, "disabledPlans": [EXO_P2]}], "removeLicenses": []})),
    )
    .await;
    r.hit(
        "licence-plan-dependency",
        "a plan whose mailbox plan is turned off",
        diagnose_graph(&e, &ctx(cy)),
    );
    let gid = ok(
        &g,
        Method::POST,
        "/groups",
        Some(new_group("Licensed", "licensed")),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        &g,
        Method::POST,
        &format!("/groups/{gid}/members/$ref"),
        Some(json!({"@odata.id": format!("{}/v1.0/directoryObjects/{ann}", sim.base_url)})),
    )
    .await;
    ok(
        &g,
        Method::POST,
        &format!("/groups/{gid}/assignLicense"),
        Some(add(E3)),
    )
    .await;
    let e = send(
        &g,
        Method::POST,
        &assign(ann),
        Some(json!({"addLicenses": [], "removeLicenses": [E3]})),
    )
    .await;
    r.hit(
        "licence-from-group",
        "a licence from a group",
        diagnose_graph(&e, &ctx(ann)),
    );
    let ro = graph(
        &sim,
        &app_token(&sim, READ_ONLY_APP.0, READ_ONLY_APP.1)
            .await
            .unwrap(),
    );
    let e = send(&ro, Method::POST, &assign(ann), Some(add(PBI))).await;
    r.hit(
        "licence-permission-missing",
        "a read-only app",
        diagnose_graph(&e, &ctx(ann)),
    );
    // A SKU users cannot hold, as the tenant's SKU data says: held back by the plan.
    let mut skus = g.subscribed_skus().await.unwrap();
    skus.iter_mut()
        .filter(|s| s.sku_part_number == "STANDARDPACK")
        .for_each(|s| s.applies_to = "Company".into());
    let u = DirectoryUser {
        want_bound: true,
        ..dir_user(1, &format!("co@{dom}"))
    };
    let mut defaults = m365sync::directory::LicenceDefaults::default();
    defaults.users.insert(
        1,
        vec![m365sync::directory::LicencePick::parse("STANDARDPACK").unwrap()],
    );
    let policy = m365sync::sync::plan::Policy {
        usage_location: Some("US".into()),
        ..Default::default()
    };
    let mut plan =
        m365sync::sync::plan::plan(std::slice::from_ref(&u), &Default::default(), &policy, 0);
    let issues = m365sync::sync::licences::plan_licences(
        &m365sync::sync::licences::Inputs {
            users: std::slice::from_ref(&u),
            groups: &[],
            policy: &policy,
            defaults: &defaults,
            applied: &Default::default(),
            skus: &skus,
            accounts: &Default::default(),
            live: &Default::default(),
        },
        &mut plan,
        &mut Vec::new(),
    );
    r.hit(
        "licence-sku-not-assignable",
        "a Company SKU in subscribedSkus",
        diagnose_issue(&issues[0], Subject::User(u.email.clone())),
    );
    sim.shutdown().await;
}

/// Deprovisioning failures (issue 11 item 4), from the simulator's answers: a missing
/// permission names the step's own, an account deleted meanwhile, a licence that comes from
/// a group.
async fn deprovision_kinds(r: &mut Reached) {
    const E1: &str = "18181a46-0d4e-45cd-891e-60aabd171b4e";
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let (id, secret) = sim.apps[0].clone();
    let g = graph(&sim, &app_token(&sim, &id, &secret).await.unwrap());
    let ro = graph(
        &sim,
        &app_token(&sim, READ_ONLY_APP.0, READ_ONLY_APP.1)
            .await
            .unwrap(),
    );
    let users: Value = ok(
        &g,
        Method::GET,
        "/users?$select=id,userPrincipalName,assignedLicenses,userType&$top=999",
        None,
    )
    .await;
    let bare = users["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| {
            u["assignedLicenses"]
                .as_array()
                .is_some_and(|a| a.is_empty())
                && u["userType"] == "Member"
        })
        .expect("a member without licences")
        .clone();
    let uid = bare["id"].as_str().unwrap().to_string();
    let who = || Subject::User(bare["userPrincipalName"].as_str().unwrap().to_string());
    for (op, method, url, perm) in [
        (
            Operation::RevokeSessions,
            Method::POST,
            format!("/users/{uid}/revokeSignInSessions"),
            "User.RevokeSessions.All",
        ),
        (
            Operation::DeleteUser,
            Method::DELETE,
            format!("/users/{uid}"),
            "User.ReadWrite.All",
        ),
        (
            Operation::RemoveLicenses,
            Method::POST,
            format!("/users/{uid}/assignLicense"),
            "LicenseAssignment.ReadWrite.All",
        ),
    ] {
        let body = (op == Operation::RemoveLicenses)
            .then(|| json!({"addLicenses": [], "removeLicenses": [E1]}));
        let e = send(&ro, method.clone(), &url, body).await;
        let d = diagnose_graph(&e, &Context::new(op, who()));
        assert!(d.title.contains(perm), "{op:?}: {}", d.title);
        r.hit(
            "insufficient-privileges",
            "a deprovisioning step without its permission",
            d,
        );
    }
    let gone = "0b7e1c2d-3f4a-4b5c-8d6e-7f8091a2b3c4";
    for (op, method, url) in [
        (
            Operation::RevokeSessions,
            Method::POST,
            format!("/users/{gone}/revokeSignInSessions"),
        ),
        (
            Operation::DeleteUser,
            Method::DELETE,
            format!("/users/{gone}"),
        ),
    ] {
        let e = send(&g, method, &url, None).await;
        r.hit(
            "deprovision-account-gone",
            "a deprovisioning step on an account deleted meanwhile",
            diagnose_graph(&e, &Context::new(op, who())),
        );
    }
    let grp: Value = ok(
        &g,
        Method::POST,
        "/groups",
        Some(json!({"displayName": "E1 by group", "mailEnabled": false,
                    "mailNickname": "e1bygroup", "securityEnabled": true})),
    )
    .await;
    let gid = grp["id"].as_str().unwrap().to_string();
    ok(
        &g,
        Method::POST,
        &format!("/groups/{gid}/assignLicense"),
        Some(json!({"addLicenses": [{"skuId": E1, "disabledPlans": []}], "removeLicenses": []})),
    )
    .await;
    ok(
        &g,
        Method::POST,
        &format!("/groups/{gid}/members/$ref"),
        Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{uid}")})),
    )
    .await;
    let e = send(
        &g,
        Method::POST,
        &format!("/users/{uid}/assignLicense"),
        Some(json!({"addLicenses": [], "removeLicenses": [E1]})),
    )
    .await;
    r.hit(
        "licence-from-group",
        "removing a licence a group gives",
        diagnose_graph(&e, &Context::new(Operation::RemoveLicenses, who())),
    );
    sim.shutdown().await;
}

/// Licence errors group-based licensing records on accounts (`licenseAssignmentStates`),
/// read by the client's licence reader and found as the plan finds them: no free seat and
/// plans in conflict as the simulator works them out, the others as it is told to record them
/// (`SimOptions::licence_errors`).
async fn recorded_licence_kinds(r: &mut Reached) {
    const E3: &str = "05e9a617-0261-4cee-bb44-138d3ef5d965";
    const PBI: &str = "f8a1db68-be16-40ed-86d5-cb42ce701560";
    const EXO1: &str = "4b9405b0-7788-4568-add1-99614e613b69";
    const K1: &str = "18181a46-0d4e-45cd-891e-60aabd171b4e";
    let forced = [
        ("SPE_E3", "DependencyViolation"),
        ("STANDARDPACK", "ProhibitedInUsageLocationViolation"),
        ("EXCHANGESTANDARD", "UniquenessViolation"),
        ("POWER_BI_PRO", "Other"),
    ];
    for (opts, skus, want) in [
        (
            SimOptions::default(),
            vec![PBI, EXO1],
            vec!["licence-state-no-seats", "licence-state-exclusive"],
        ),
        (
            SimOptions {
                licence_errors: forced
                    .iter()
                    .map(|(p, e)| (p.to_string(), e.to_string()))
                    .collect(),
                ..SimOptions::default()
            },
            vec![E3, K1, EXO1, PBI],
            vec![
                "licence-state-dependency",
                "licence-state-usage-location",
                "licence-state-uniqueness",
                "licence-state-other",
            ],
        ),
    ] {
        let sim = Sim::start(opts).await.unwrap();
        let (id, secret) = sim.apps[0].clone();
        let g = graph(&sim, &app_token(&sim, &id, &secret).await.unwrap());
        let dom = sim.default_domain.clone();
        // Two members; the first holds SPE_E3 directly (its mailbox plan clashes with
        // Exchange Online Plan 1), Power BI has one free seat for two.
        let mut users = Vec::new();
        for nick in ["state.ann", "state.ben"] {
            let mut body = new_user(&format!("{nick}@{dom}"), PW);
            body["usageLocation"] = json!("US");
            users.push(
                ok(&g, Method::POST, "/users", Some(body)).await["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        let add = |skus: &[&str]| {
            json!({"addLicenses": skus.iter().map(|s| json!({"skuId": s, "disabledPlans": []})).collect::<Vec<_>>(),
                   "removeLicenses": []})
        };
        if want.contains(&"licence-state-exclusive") {
            ok(
                &g,
                Method::POST,
                &format!("/users/{}/assignLicense", users[0]),
                Some(add(&[E3])),
            )
            .await;
        }
        let grp = ok(
            &g,
            Method::POST,
            "/groups",
            Some(new_group("Licensed", "licensed")),
        )
        .await;
        let gid = grp["id"].as_str().unwrap().to_string();
        for u in &users {
            ok(
                &g,
                Method::POST,
                &format!("/groups/{gid}/members/$ref"),
                Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{u}")})),
            )
            .await;
        }
        ok(
            &g,
            Method::POST,
            &format!("/groups/{gid}/assignLicense"),
            Some(add(&skus)),
        )
        .await;
        let accounts = g.user_licences(&users).await.unwrap();
        let dir: Vec<DirectoryUser> = users
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut d = dir_user(i as i64 + 1, &format!("state{i}@{dom}"));
                d.tenant_user_id = Some(t.clone());
                d
            })
            .collect();
        let skus = g.subscribed_skus().await.unwrap();
        let found = m365sync::sync::licences::recorded_errors(&dir, &skus, &accounts);
        for kind in want {
            let (issue, email) = found
                .iter()
                .find(|(i, _)| i.kind == kind)
                .unwrap_or_else(|| panic!("{kind} in {found:?}"));
            r.hit(
                kind,
                &format!("recorded {}", issue.suggestion.as_deref().unwrap_or("")),
                m365sync::diagnose::diagnose_recorded(issue, Subject::User(email.clone())),
            );
        }
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_catalog_kind_is_reached_end_to_end() {
    let mut r = Reached::default();
    graph_kinds(&mut r).await;
    auth_kinds(&mut r).await;
    preflight_kinds(&mut r).await;
    attribute_kinds(&mut r).await;
    engine_kinds(&mut r).await;
    licence_kinds(&mut r).await;
    recorded_licence_kinds(&mut r).await;
    deprovision_kinds(&mut r).await;
    let catalog: BTreeSet<String> = Catalog::builtin().kinds().map(str::to_string).collect();
    let missing: Vec<&String> = catalog.difference(&r.0).collect();
    let extra: Vec<&String> = r.0.difference(&catalog).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "catalog kinds not reached end to end: {missing:?}; reached but not in the catalog: {extra:?}"
    );
    assert_eq!(r.0, catalog);
}
