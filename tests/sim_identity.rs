//! The simulator's identity-platform side over real HTTP: discovery, device code, client
//! credentials, refresh rotation, error bodies.

use std::time::Duration;

use base64::Engine as _;
use m365sync::sim::{FaultKind, FaultRule, Sim, SimOptions};
use serde_json::Value;

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn tls_client(sim: &Sim) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(sim.ca_cert_pem.as_ref().unwrap().as_bytes()).unwrap();
    reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([ca])
        .build()
        .unwrap()
}

async fn start(opts: SimOptions) -> Sim {
    Sim::start(opts).await.unwrap()
}

fn fast() -> SimOptions {
    SimOptions {
        device_code_interval: 0,
        ..SimOptions::default()
    }
}

async fn form(c: &reqwest::Client, url: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
    let r = c.post(url).form(pairs).send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    (status, r.json().await.unwrap())
}

fn token_url(sim: &Sim) -> String {
    format!("{}/organizations/oauth2/v2.0/token", sim.base_url)
}

fn assert_aad_error(body: &Value, error: &str, code: Option<u64>) {
    assert_eq!(body["error"], error, "{body}");
    let desc = body["error_description"].as_str().unwrap();
    if let Some(code) = code {
        assert!(desc.starts_with(&format!("AADSTS{code}: ")), "{desc}");
        assert_eq!(body["error_codes"][0], code);
        assert!(body["error_uri"]
            .as_str()
            .unwrap()
            .ends_with(&format!("error?code={code}")));
    }
    assert!(desc.contains("\r\nTrace ID: "), "{desc}");
    assert!(desc.contains("\r\nCorrelation ID: "), "{desc}");
    assert!(desc.contains("\r\nTimestamp: "), "{desc}");
    let ts = body["timestamp"].as_str().unwrap();
    // YYYY-MM-DD HH:MM:SSZ
    assert_eq!(ts.len(), 20, "{ts}");
    assert_eq!(&ts[10..11], " ");
    assert!(ts.ends_with('Z'));
    assert!(body["trace_id"].as_str().unwrap().len() == 36);
    assert!(body["correlation_id"].as_str().unwrap().len() == 36);
}

async fn device_code(c: &reqwest::Client, sim: &Sim, tenant: &str, scope: &str) -> Value {
    let (s, body) = form(
        c,
        &format!("{}/{tenant}/oauth2/v2.0/devicecode", sim.base_url),
        &[("client_id", &sim.public_client_id), ("scope", scope)],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    body
}

fn jwt_claims(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn discovery_keeps_the_port_and_every_tenant_alias() {
    let sim = start(SimOptions::default()).await;
    let c = client();
    for tenant in [
        sim.tenant_id.clone(),
        sim.initial_domain.clone(),
        "organizations".into(),
    ] {
        let url = format!(
            "{}/{tenant}/v2.0/.well-known/openid-configuration",
            sim.base_url
        );
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let d: Value = r.json().await.unwrap();
        for key in [
            "token_endpoint",
            "device_authorization_endpoint",
            "authorization_endpoint",
            "jwks_uri",
            "end_session_endpoint",
        ] {
            assert!(
                d[key].as_str().unwrap().starts_with(&sim.base_url),
                "{key}: {}",
                d[key]
            );
        }
        assert!(d["token_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/oauth2/v2.0/token"));
        assert!(d["issuer"].as_str().unwrap().ends_with("/v2.0"));
        for key in ["tenant_region_scope", "cloud_instance_name", "msgraph_host"] {
            assert!(d[key].is_string(), "{key}");
        }
        assert!(
            d["token_endpoint_auth_methods_supported"]
                .as_array()
                .unwrap()
                .len()
                >= 2
        );
    }
    let r = c
        .get(format!(
            "{}/not-a-tenant.example/v2.0/.well-known/openid-configuration",
            sim.base_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_aad_error(&r.json().await.unwrap(), "invalid_tenant", Some(90002));
    // Outside the known routes: a plain 404.
    let r = c
        .get(format!("{}/nothing/here", sim.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn discovery_is_https_under_tls_and_instance_discovery_restores_the_port() {
    let sim = start(SimOptions {
        tls: true,
        ..SimOptions::default()
    })
    .await;
    assert!(sim.base_url.starts_with("https://127.0.0.1:"));
    let pem_path = sim.ca_cert_path.clone().unwrap();
    assert_eq!(
        std::fs::read_to_string(&pem_path).unwrap(),
        *sim.ca_cert_pem.as_ref().unwrap()
    );
    let c = tls_client(&sim);
    let d: Value = c
        .get(format!(
            "{}/organizations/v2.0/.well-known/openid-configuration",
            sim.base_url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(d["token_endpoint"]
        .as_str()
        .unwrap()
        .starts_with(&sim.base_url));
    assert!(d["device_authorization_endpoint"]
        .as_str()
        .unwrap()
        .starts_with("https://"));
    // localhost is in the certificate too.
    let port = sim.base_url.rsplit(':').next().unwrap();
    let r = c
        .get(format!(
            "https://localhost:{port}/{}/v2.0/.well-known/openid-configuration",
            sim.initial_domain
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // MSAL drops the port from authorization_endpoint; the answer puts it back.
    let d: Value = c
        .get(format!("{}/common/discovery/instance", sim.base_url))
        .query(&[
            ("api-version", "1.1"),
            (
                "authorization_endpoint",
                &format!("https://127.0.0.1/{}/oauth2/v2.0/authorize", sim.tenant_id),
            ),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        d["tenant_discovery_endpoint"],
        format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            sim.base_url, sim.tenant_id
        )
    );
    assert_eq!(d["api-version"], "1.1");
    sim.shutdown().await;
    assert!(!pem_path.exists());
}

#[tokio::test]
async fn device_code_pending_then_approved_with_both_grant_type_spellings() {
    let sim = start(fast()).await;
    let c = client();
    for grant in [
        "urn:ietf:params:oauth:grant-type:device_code",
        "device_code",
    ] {
        let dc = device_code(
            &c,
            &sim,
            &sim.tenant_id,
            "User.ReadWrite.All offline_access openid profile",
        )
        .await;
        let user_code = dc["user_code"].as_str().unwrap();
        assert_eq!(user_code.len(), 9);
        assert!(user_code
            .chars()
            .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit()));
        assert_eq!(
            dc["verification_uri"],
            format!("{}/devicelogin", sim.base_url)
        );
        assert_eq!(dc["interval"], 0);
        assert_eq!(dc["expires_in"], 900);
        assert_eq!(
            dc["message"],
            format!(
                "To sign in, use a web browser to open the page {}/devicelogin and enter the code {user_code} to authenticate.",
                sim.base_url
            )
        );
        assert!(sim.pending_user_codes().contains(&user_code.to_owned()));
        let device_code = dc["device_code"].as_str().unwrap();
        // What MSAL sends on a poll, extra fields included.
        let poll = [
            ("grant_type", grant),
            ("client_id", sim.public_client_id.as_str()),
            ("device_code", device_code),
            ("code", device_code),
            ("client_info", "1"),
            (
                "claims",
                r#"{"access_token":{"xms_cc":{"values":["CP1"]}}}"#,
            ),
            ("x-client-sku", "MSAL.Python"),
            ("scope", "User.ReadWrite.All offline_access openid profile"),
        ];
        let (s, body) = form(&c, &token_url(&sim), &poll).await;
        assert_eq!(s, 400);
        assert_aad_error(&body, "authorization_pending", Some(70016));
        assert!(sim.approve(user_code));
        assert!(!sim.approve(user_code), "a code is approved once");
        let (s, body) = form(&c, &token_url(&sim), &poll).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3599);
        assert!(body["ext_expires_in"].is_number());
        assert!(body["scope"]
            .as_str()
            .unwrap()
            .contains("User.ReadWrite.All"));
        assert!(body["access_token"].as_str().unwrap().split('.').count() == 3);
        assert!(body["refresh_token"].is_string());
        let info = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body["client_info"].as_str().unwrap())
            .unwrap();
        let info: Value = serde_json::from_slice(&info).unwrap();
        assert_eq!(info["utid"], sim.tenant_id);
        let id = jwt_claims(body["id_token"].as_str().unwrap());
        assert_eq!(id["aud"], sim.public_client_id);
        assert_eq!(id["tid"], sim.tenant_id);
        assert_eq!(id["preferred_username"], sim.admin_upn);
        assert_eq!(id["oid"], info["uid"]);
        for claim in ["iss", "iat", "exp", "nbf", "sub", "name"] {
            assert!(!id[claim].is_null(), "{claim}");
        }
        // Redeemed: no second token.
        let (s, body) = form(&c, &token_url(&sim), &poll).await;
        assert_eq!(s, 400);
        assert_eq!(body["error"], "invalid_grant");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn device_code_without_offline_access_or_openid_gets_neither() {
    let sim = start(fast()).await;
    let c = client();
    let dc = device_code(
        &c,
        &sim,
        "organizations",
        "https://graph.microsoft.com/User.Read.All",
    )
    .await;
    assert!(sim.approve(dc["user_code"].as_str().unwrap()));
    let (s, body) = form(
        &c,
        &token_url(&sim),
        &[
            ("grant_type", "device_code"),
            ("client_id", &sim.public_client_id),
            ("device_code", dc["device_code"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(s, 200);
    assert!(body.get("refresh_token").is_none());
    assert!(body.get("id_token").is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn device_code_declined_via_the_devicelogin_form() {
    let sim = start(fast()).await;
    let c = client();
    let page = c
        .get(format!("{}/devicelogin", sim.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"user_code\""));
    assert!(html.contains("value=\"approve\"") && html.contains("value=\"decline\""));

    let dc = device_code(&c, &sim, &sim.initial_domain, "User.Read offline_access").await;
    let user_code = dc["user_code"].as_str().unwrap().to_lowercase();
    let r = c
        .post(format!("{}/devicelogin", sim.base_url))
        .form(&[("user_code", user_code.as_str()), ("action", "decline")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("declined"));
    let (s, body) = form(
        &c,
        &token_url(&sim),
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", &sim.public_client_id),
            ("device_code", dc["device_code"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_aad_error(&body, "authorization_declined", None);
    // Unknown code on the form.
    let r = c
        .post(format!("{}/devicelogin", sim.base_url))
        .form(&[("user_code", "NOPE12345"), ("action", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(!sim.decline("NOPE12345"));
    sim.shutdown().await;
}

#[tokio::test]
async fn device_code_approved_via_the_form_and_bad_codes() {
    let sim = start(fast()).await;
    let c = client();
    let dc = device_code(&c, &sim, "organizations", "User.Read offline_access openid").await;
    let r = c
        .post(format!("{}/devicelogin", sim.base_url))
        .form(&[
            ("user_code", dc["user_code"].as_str().unwrap()),
            ("action", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains(&sim.admin_upn));
    assert!(sim.pending_user_codes().is_empty());
    let (s, _) = form(
        &c,
        &token_url(&sim),
        &[
            ("grant_type", "device_code"),
            ("client_id", &sim.public_client_id),
            ("device_code", dc["device_code"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(s, 200);
    let (s, body) = form(
        &c,
        &token_url(&sim),
        &[
            ("grant_type", "device_code"),
            ("client_id", &sim.public_client_id),
            ("device_code", "garbage"),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_aad_error(&body, "bad_verification_code", Some(70018));
    sim.shutdown().await;
}

#[tokio::test]
async fn device_code_expires() {
    let sim = start(SimOptions {
        device_code_interval: 0,
        device_code_lifetime: Duration::from_millis(300),
        ..SimOptions::default()
    })
    .await;
    let c = client();
    let dc = device_code(&c, &sim, "organizations", "User.Read").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(sim.pending_user_codes().is_empty());
    assert!(!sim.approve(dc["user_code"].as_str().unwrap()));
    let (s, body) = form(
        &c,
        &token_url(&sim),
        &[
            ("grant_type", "device_code"),
            ("client_id", &sim.public_client_id),
            ("device_code", dc["device_code"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_aad_error(&body, "expired_token", Some(70019));
    sim.shutdown().await;
}

#[tokio::test]
async fn device_code_polled_faster_than_interval_gets_slow_down() {
    let sim = start(SimOptions {
        device_code_interval: 2,
        ..SimOptions::default()
    })
    .await;
    let c = client();
    let dc = device_code(&c, &sim, "organizations", "User.Read").await;
    assert_eq!(dc["interval"], 2);
    let poll = [
        ("grant_type", "device_code"),
        ("client_id", sim.public_client_id.as_str()),
        ("device_code", dc["device_code"].as_str().unwrap()),
    ];
    let (_, body) = form(&c, &token_url(&sim), &poll).await;
    assert_eq!(body["error"], "authorization_pending");
    let (s, body) = form(&c, &token_url(&sim), &poll).await;
    assert_eq!(s, 400);
    assert_aad_error(&body, "slow_down", None);
    // A fault rule can force slow_down too, even on a well-behaved client.
    sim.faults().add(FaultRule::next(
        "POST",
        "/organizations/oauth2/v2.0/token",
        1,
        FaultKind::SlowDown,
    ));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let (_, body) = form(&c, &token_url(&sim), &poll).await;
    assert_eq!(body["error"], "slow_down");
    sim.shutdown().await;
}

#[tokio::test]
async fn device_code_rejects_unknown_and_confidential_clients() {
    let sim = start(fast()).await;
    let c = client();
    let url = format!("{}/organizations/oauth2/v2.0/devicecode", sim.base_url);
    let (s, body) = form(
        &c,
        &url,
        &[
            ("client_id", "11111111-2222-3333-4444-555555555555"),
            ("scope", "User.Read"),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_aad_error(&body, "unauthorized_client", Some(700016));
    let (s, body) = form(
        &c,
        &url,
        &[("client_id", &sim.apps[0].0), ("scope", "User.Read")],
    )
    .await;
    assert_eq!(s, 401);
    assert_aad_error(&body, "invalid_client", Some(7000218));
    let (s, body) = form(&c, &url, &[("client_id", &sim.public_client_id)]).await;
    assert_eq!(s, 400);
    assert_aad_error(&body, "invalid_request", Some(900144));
    // GET on a POST-only endpoint.
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_aad_error(&r.json().await.unwrap(), "invalid_request", Some(900561));
    sim.shutdown().await;
}

#[tokio::test]
async fn client_credentials_post_basic_and_bad_secret() {
    let sim = start(SimOptions::default()).await;
    let c = client();
    let (id, secret) = sim.apps[0].clone();
    let scope = "https://graph.microsoft.com/.default";
    let (s, body) = form(
        &c,
        &format!("{}/{}/oauth2/v2.0/token", sim.base_url, sim.tenant_id),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", scope),
            ("client_info", "1"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("refresh_token").is_none());
    assert!(body.get("id_token").is_none());
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["appid"], id);
    assert_eq!(claims["idtyp"], "app");

    // client_secret_basic
    let r = c
        .post(token_url(&sim))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body["access_token"].is_string());

    // Bad secret, post and basic.
    let (s, body) = form(
        &c,
        &token_url(&sim),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", "wrong"),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(s, 401);
    assert_aad_error(&body, "invalid_client", Some(7000215));
    let r = c
        .post(token_url(&sim))
        .basic_auth(&id, Some("wrong"))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Scope without /.default.
    let (s, body) = form(
        &c,
        &token_url(&sim),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", "User.Read.All"),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_aad_error(&body, "invalid_scope", Some(1002012));
    // The public client has no secret.
    let (s, body) = form(
        &c,
        &token_url(&sim),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &sim.public_client_id),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(s, 401);
    assert_aad_error(&body, "invalid_client", Some(7000218));
    // Unknown grant type.
    let (s, body) = form(
        &c,
        &token_url(&sim),
        &[("grant_type", "password"), ("client_id", &id)],
    )
    .await;
    assert_eq!(s, 400);
    assert_aad_error(&body, "unsupported_grant_type", Some(70003));
    sim.shutdown().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_the_old_one_stops_working() {
    let sim = start(fast()).await;
    let c = client();
    let dc = device_code(
        &c,
        &sim,
        "organizations",
        "User.ReadWrite.All offline_access openid profile",
    )
    .await;
    assert!(sim.approve(dc["user_code"].as_str().unwrap()));
    let (_, first) = form(
        &c,
        &token_url(&sim),
        &[
            ("grant_type", "device_code"),
            ("client_id", &sim.public_client_id),
            ("device_code", dc["device_code"].as_str().unwrap()),
        ],
    )
    .await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |rt: String| {
        let c = c.clone();
        let url = token_url(&sim);
        let client_id = sim.public_client_id.clone();
        async move {
            form(
                &c,
                &url,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", &client_id),
                    ("refresh_token", &rt),
                    ("client_info", "1"),
                    ("scope", "User.ReadWrite.All offline_access openid profile"),
                    ("claims", r#"{"id_token":{"auth_time":{"essential":true}}}"#),
                ],
            )
            .await
        }
    };
    let (s, second) = refresh(rt1.clone()).await;
    assert_eq!(s, 200, "{second}");
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    assert_ne!(first["access_token"], second["access_token"]);
    assert_eq!(
        jwt_claims(second["id_token"].as_str().unwrap())["aud"],
        sim.public_client_id
    );
    let (s, body) = refresh(rt1).await;
    assert_eq!(s, 400);
    assert_aad_error(&body, "invalid_grant", Some(50173));
    let (s, _) = refresh(rt2).await;
    assert_eq!(s, 200);
    let (s, body) = refresh("not-a-refresh-token".into()).await;
    assert_eq!(s, 400);
    assert_aad_error(&body, "invalid_grant", Some(9002313));
    sim.shutdown().await;
}

#[tokio::test]
async fn identity_faults_throttle_unavailable_and_reset_over_tls() {
    let sim = start(SimOptions {
        tls: true,
        faults: vec![
            "POST /organizations/oauth2/v2.0/token #1 429:3"
                .parse()
                .unwrap(),
            "POST /organizations/oauth2/v2.0/token #2 503"
                .parse()
                .unwrap(),
            "POST /organizations/oauth2/v2.0/token #3 reset"
                .parse()
                .unwrap(),
        ],
        ..SimOptions::default()
    })
    .await;
    let c = tls_client(&sim);
    let (id, secret) = sim.apps[0].clone();
    let req = || {
        c.post(token_url(&sim)).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
    };
    let r = req().send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "3");
    assert_aad_error(
        &r.json().await.unwrap(),
        "temporarily_unavailable",
        Some(90033),
    );
    let r = req().send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_aad_error(
        &r.json().await.unwrap(),
        "temporarily_unavailable",
        Some(90033),
    );
    // Over TLS (HTTP/2 by ALPN) a reset fails the request without an answer.
    let err = req().send().await.unwrap_err();
    assert!(!err.is_status(), "{err}");
    let r = req().send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(
        sim.request_count("POST", "/organizations/oauth2/v2.0/token"),
        4
    );
    assert_eq!(sim.request_count("*", "/"), 4);
    sim.shutdown().await;
}
