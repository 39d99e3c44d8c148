//! End to end: real simulator refusals (Graph writes and the token endpoint), parsed by the
//! client's own `GraphError::from_response` / `MsErrorResponse`, classified by `diagnose`; and
//! preflight, run on the same input, predicts the same kind before anything is sent. The
//! simulator's rules are an independent implementation (DESIGN.md "Walls"), so each agreement
//! compares two implementations.
use std::collections::HashMap;
use std::time::Duration;

use m365sync::auth::oauth::MsErrorResponse;
use m365sync::diagnose::{diagnose_auth, diagnose_graph, Context, Diagnosis, Operation, Subject};
use m365sync::directory::{BindingState, DirectoryUser};
use m365sync::graph::{Domain, GraphError, User};
use m365sync::sim::{FaultKind, FaultRule, Sim, SimOptions};
use m365sync::sync::preflight::{preflight, PreflightOptions, TenantIndex};
use serde_json::{json, Value};

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn token_answer(
    c: &reqwest::Client,
    sim: &Sim,
    tenant: &str,
    id: &str,
    secret: &str,
) -> (u16, Vec<u8>) {
    let r = c
        .post(format!("{}/{tenant}/oauth2/v2.0/token", sim.base_url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

struct G {
    c: reqwest::Client,
    base: String,
    token: String,
}

impl G {
    /// POST /users; on failure the client's GraphError and the raw body.
    async fn create(&self, body: &Value) -> Result<Value, (GraphError, Vec<u8>)> {
        let r = self
            .c
            .post(format!("{}/users", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let rid = r
            .headers()
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let retry = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .map(Duration::from_secs);
        let bytes = r.bytes().await.unwrap().to_vec();
        if status < 300 {
            return Ok(serde_json::from_slice(&bytes).unwrap());
        }
        Err((
            GraphError::from_response(status, &bytes, rid.as_deref(), retry),
            bytes,
        ))
    }
}

fn new_user(upn: &str, password: &str) -> Value {
    json!({
        "accountEnabled": true,
        "displayName": format!("User {upn}"),
        "mailNickname": upn.split('@').next().unwrap(),
        "userPrincipalName": upn,
        "passwordProfile": {"password": password, "forceChangePasswordNextSignIn": true},
    })
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

const PW: &str = "Str0ng!Passw0rd";

async fn classify(g: &G, upn: &str, password: &str) -> Diagnosis {
    let (e, body) = g
        .create(&new_user(upn, password))
        .await
        .expect_err("the simulator must refuse");
    let ctx = Context::new(Operation::CreateUser, Subject::User(upn.into()))
        .with_body(&body)
        .with_value(upn)
        .with_password(password);
    let d = diagnose_graph(&e, &ctx);
    let raw = d.raw.as_ref().expect("raw kept");
    assert_eq!(
        raw.request_id.as_ref().map(String::len),
        Some(36),
        "{raw:?}"
    );
    assert_eq!(raw.date.as_ref().map(String::len), Some(19), "{raw:?}");
    d
}

#[tokio::test]
async fn simulator_refusals_classify_and_preflight_predicts_them() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let c = client();
    let (id, secret) = sim.apps[0].clone();
    let (s, b) = token_answer(&c, &sim, &sim.initial_domain, &id, &secret).await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_slice(&b).unwrap();
    let g = G {
        c: c.clone(),
        base: format!("{}/v1.0", sim.base_url),
        token: v["access_token"].as_str().unwrap().to_string(),
    };
    let domains: Vec<Domain> = {
        let r = c
            .get(format!("{}/domains", g.base))
            .bearer_auth(&g.token)
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        serde_json::from_value(v["value"].clone()).unwrap()
    };
    let live: Vec<User> = {
        let r = c
            .get(format!(
                "{}/users?$top=999&$select=id,userPrincipalName,mail",
                g.base
            ))
            .bearer_auth(&g.token)
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        serde_json::from_value(v["value"].clone()).unwrap()
    };
    let deleted: Vec<User> = {
        let r = c
            .get(format!(
                "{}/directory/deletedItems/microsoft.graph.user",
                g.base
            ))
            .bearer_auth(&g.token)
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        serde_json::from_value(v["value"].clone()).unwrap()
    };
    assert!(!deleted.is_empty());
    let existing = "irvin.sayers@northwindtraders.com";
    let held = deleted[0].user_principal_name.clone();

    // (email, password, expected kind)
    let cases: Vec<(String, &str, &str)> = vec![
        (
            "new.person@northwind-labs.io".into(),
            PW,
            "upn-domain-unverified",
        ),
        (
            "new.fed@corp.northwindtraders.com".into(),
            PW,
            "federated-domain-needs-immutable-id",
        ),
        ("ren\u{e9}e@northwindtraders.com".into(), PW, "upn-invalid"),
        (
            "weak.pw@northwindtraders.com".into(),
            "alllowercase",
            "password-complexity",
        ),
        (
            "short.pw@northwindtraders.com".into(),
            "Ab1!",
            "password-length",
        ),
        (held.clone(), PW, "proxy-address-held"),
        (existing.into(), PW, "upn-exists"),
    ];
    let users: Vec<DirectoryUser> = cases
        .iter()
        .enumerate()
        .map(|(i, (e, _, _))| dir_user(i as i64 + 1, e))
        .collect();
    // The existing account is linked to another directory user, so it is a conflict, not a takeover.
    let mut owner = dir_user(99, "irvin.s@northwindtraders.com");
    owner.tenant_user_id = live
        .iter()
        .find(|u| u.user_principal_name == existing)
        .map(|u| u.id.clone());
    assert!(owner.tenant_user_id.is_some());
    let mut all = users.clone();
    all.push(owner);
    let opts = PreflightOptions {
        passwords: cases
            .iter()
            .enumerate()
            .map(|(i, (_, pw, _))| (i as i64 + 1, pw.to_string()))
            .collect::<HashMap<_, _>>(),
        ..PreflightOptions::default()
    };
    let idx = TenantIndex::new(&live, &deleted);
    let issues = preflight(&all, &domains, Some(&idx), &opts);

    for (i, (email, pw, want)) in cases.iter().enumerate() {
        let d = classify(&g, email, pw).await;
        assert_eq!(d.kind, *want, "{email}: {d:?}");
        let predicted: Vec<&str> = issues
            .iter()
            .filter(|x| x.directory_id == i as i64 + 1)
            .map(|x| x.kind.as_str())
            .collect();
        assert!(
            predicted.contains(want),
            "preflight for {email}: {predicted:?}"
        );
    }
    // A soft-deleted holder: restore or purge offered.
    let d = classify(&g, &held, PW).await;
    assert!(d
        .fixes()
        .contains(&m365sync::diagnose::FixAction::PurgeDeleted));

    // 429 with Retry-After.
    sim.faults().add(FaultRule::next(
        "POST",
        "/v1.0/users",
        1,
        FaultKind::Throttle {
            retry_after_secs: 3,
        },
    ));
    let (e, body) = g
        .create(&new_user("t429@northwindtraders.com", PW))
        .await
        .unwrap_err();
    let d = diagnose_graph(
        &e,
        &Context::new(Operation::CreateUser, Subject::None).with_body(&body),
    );
    assert_eq!(d.kind, "throttled");
    assert!(d.why.contains("Retry-After 3 s"), "{}", d.why);

    // 503 from the simulator's fault injection.
    sim.faults().add(FaultRule::next(
        "POST",
        "/v1.0/users",
        1,
        FaultKind::Unavailable,
    ));
    let (e, _) = g
        .create(&new_user("t503@northwindtraders.com", PW))
        .await
        .unwrap_err();
    assert_eq!(
        diagnose_graph(&e, &Context::default()).kind,
        "service-unavailable"
    );

    // The valid one is created: no false alarm.
    assert!(g
        .create(&new_user("fine.person@northwindtraders.com", PW))
        .await
        .is_ok());

    // Token endpoint refusals through the client's own error mapping.
    for (tenant, cid, sec, want) in [
        (
            sim.initial_domain.clone(),
            id.clone(),
            "wrong-secret".to_string(),
            "client-secret-invalid",
        ),
        (
            "nosuchtenant.onmicrosoft.com".to_string(),
            id.clone(),
            secret.clone(),
            "tenant-not-found",
        ),
        (
            sim.initial_domain.clone(),
            "00000000-0000-0000-0000-000000000000".to_string(),
            secret.clone(),
            "app-not-in-tenant",
        ),
    ] {
        let (s, b) = token_answer(&c, &sim, &tenant, &cid, &sec).await;
        assert!(s >= 400, "{tenant} {cid}");
        let err: MsErrorResponse = serde_json::from_slice(&b).unwrap();
        let d = diagnose_auth(&err.into_auth_error());
        assert_eq!(d.kind, want, "{}", String::from_utf8_lossy(&b));
        assert!(d.raw.unwrap().code.starts_with("AADSTS"));
    }
    sim.shutdown().await;
}
