//! auth over real HTTP against a tiny identity-platform stub on 127.0.0.1:0 (until the
//! simulator lands): discovery, device code (pending / slow_down / declined / expired),
//! client credentials, refresh with rotation, Session refresh rules, and a Graph 401 that
//! makes the Session refresh.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use m365sync::auth::{
    AuthError, Authenticator, DeviceCodeStart, Identity, Session, TokenCache, TokenSet,
};
use m365sync::graph::{GraphClient, GraphError};
use serde_json::json;

const CLIENT: &str = "client-1";
const SECRET: &str = "s3cret";

#[derive(Default)]
struct Stub {
    base: String,
    discovery_calls: usize,
    devicecode_forms: Vec<HashMap<String, String>>,
    /// device_code -> scripted answers (the last one repeats).
    scripts: HashMap<String, Vec<&'static str>>,
    polls: HashMap<String, usize>,
    refresh_calls: usize,
    cc_calls: usize,
    cc_forms: Vec<(Option<String>, HashMap<String, String>)>,
    graph_tokens: Vec<String>,
    /// Discovery answers with endpoints on a non-loopback http host.
    evil_discovery: bool,
    /// Discovery answers with a redirect.
    redirect_discovery: bool,
}

type St = Arc<Mutex<Stub>>;

fn jwt(claims: serde_json::Value) -> String {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        e.encode(r#"{"alg":"none","typ":"JWT"}"#),
        e.encode(claims.to_string())
    )
}

fn oauth_error(status: StatusCode, error: &str, code: u32) -> Response {
    (
        status,
        Json(json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {error} happened.\r\nTrace ID: tr-{code}\r\nCorrelation ID: c\r\nTimestamp: 2026-11-27 06:00:00Z"),
            "error_codes": [code],
            "timestamp": "2026-11-27 06:00:00Z",
            "trace_id": format!("tr-{code}"),
            "correlation_id": "c",
        })),
    )
        .into_response()
}

fn token_ok(access: &str, refresh: Option<&str>, id_token: bool) -> Response {
    let mut body = json!({
        "token_type": "Bearer",
        "scope": "https://graph.microsoft.com/User.ReadWrite.All https://graph.microsoft.com/Domain.Read.All openid profile",
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": access,
        "client_info": "eyJ1aWQiOiJ1IiwidXRpZCI6InQifQ",
    });
    if let Some(r) = refresh {
        body["refresh_token"] = json!(r);
    }
    if id_token {
        body["id_token"] = json!(jwt(json!({
            "aud": CLIENT, "iss": "https://login.microsoftonline.com/tid-1/v2.0",
            "preferred_username": "admin@contoso.onmicrosoft.com", "tid": "tid-1", "oid": "o", "sub": "s"
        })));
    }
    Json(body).into_response()
}

async fn discovery(State(st): State<St>, Path(tenant): Path<String>) -> Response {
    let mut s = st.lock().unwrap();
    s.discovery_calls += 1;
    if tenant == "bad-tenant" {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_tenant", 90002);
    }
    if s.redirect_discovery {
        return (
            StatusCode::MOVED_PERMANENTLY,
            [("location", "https://login.evil.example/x")],
        )
            .into_response();
    }
    let base = if s.evil_discovery {
        "http://login.example.com".to_string()
    } else {
        s.base.clone()
    };
    Json(json!({
        "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
        "device_authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/devicecode"),
        "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
        "issuer": format!("https://login.microsoftonline.com/{tenant}/v2.0"),
        "msgraph_host": "graph.microsoft.com",
    }))
    .into_response()
}

async fn devicecode(State(st): State<St>, Form(f): Form<HashMap<String, String>>) -> Response {
    st.lock().unwrap().devicecode_forms.push(f);
    Json(json!({
        "user_code": "ABCD-EFGH",
        "device_code": "dc-ok",
        "verification_uri": "https://microsoft.com/devicelogin",
        "expires_in": 900,
        "interval": 1,
        "message": "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code ABCD-EFGH to authenticate.",
    }))
    .into_response()
}

async fn token(
    State(st): State<St>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let grant = f.get("grant_type").cloned().unwrap_or_default();
    match grant.as_str() {
        "urn:ietf:params:oauth:grant-type:device_code" | "device_code" => {
            let dc = f.get("device_code").cloned().unwrap_or_default();
            let answer = {
                let mut s = st.lock().unwrap();
                let n = {
                    let p = s.polls.entry(dc.clone()).or_default();
                    *p += 1;
                    *p
                };
                match s.scripts.get(&dc) {
                    Some(script) => script[(n - 1).min(script.len() - 1)],
                    None => "bad_verification_code",
                }
            };
            match answer {
                "ok" => token_ok("at-dev", Some("rt-1"), true),
                "authorization_pending" => oauth_error(StatusCode::BAD_REQUEST, answer, 70016),
                "slow_down" => oauth_error(StatusCode::BAD_REQUEST, answer, 70016),
                "authorization_declined" => oauth_error(StatusCode::BAD_REQUEST, answer, 70016),
                "expired_token" => oauth_error(StatusCode::BAD_REQUEST, answer, 70019),
                "bad_verification_code" => oauth_error(StatusCode::BAD_REQUEST, answer, 70018),
                "redirect" => (
                    StatusCode::FOUND,
                    [("location", "https://evil.example/token")],
                )
                    .into_response(),
                "html" => (StatusCode::BAD_GATEWAY, "<html>bad gateway</html>").into_response(),
                other => oauth_error(StatusCode::BAD_REQUEST, other, 50000),
            }
        }
        "client_credentials" => {
            let basic = headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_string());
            let ok = f.get("client_secret").map(String::as_str) == Some(SECRET)
                && f.get("scope").map(String::as_str)
                    == Some("https://graph.microsoft.com/.default");
            let mut s = st.lock().unwrap();
            s.cc_calls += 1;
            let n = s.cc_calls;
            s.cc_forms.push((basic, f));
            if !ok {
                return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", 7000215);
            }
            let at = jwt(json!({"tid": "tid-app", "appid": CLIENT, "n": n}));
            Json(json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": at}))
                .into_response()
        }
        "refresh_token" => {
            let rt = f.get("refresh_token").cloned().unwrap_or_default();
            // Slow, so concurrent callers pile up behind one refresh.
            tokio::time::sleep(Duration::from_millis(150)).await;
            let Some(n) = rt.strip_prefix("rt-").and_then(|n| n.parse::<u32>().ok()) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", 70008);
            };
            st.lock().unwrap().refresh_calls += 1;
            // Rotation; no id_token on refresh, so the identity must be kept.
            token_ok(
                &format!("at-{}", n + 1),
                Some(&format!("rt-{}", n + 1)),
                false,
            )
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", 70003),
    }
}

/// A Graph route accepting only the token `at-2`.
async fn graph_user(State(st): State<St>, headers: HeaderMap) -> Response {
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    st.lock().unwrap().graph_tokens.push(auth.clone());
    if auth != "Bearer at-2" {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"code": "InvalidAuthenticationToken", "message": "Lifetime validation failed, the token is expired.", "innerError": {"request-id": "r401", "date": "2026-11-27T06:00:00"}}})),
        )
            .into_response();
    }
    Json(json!({"id": "u1", "userPrincipalName": "a@contoso.com", "accountEnabled": true}))
        .into_response()
}

async fn serve() -> (String, St) {
    m365sync::config::install_crypto_provider();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let st: St = Arc::new(Mutex::new(Stub {
        base: base.clone(),
        ..Default::default()
    }));
    let app = Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/{tenant}/oauth2/v2.0/devicecode", post(devicecode))
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/v1.0/users/{id}", get(graph_user))
        .with_state(st.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, st)
}

fn http() -> reqwest::Client {
    m365sync::config::http_client(None).unwrap()
}

/// A sleep that records the asked intervals and waits only a moment.
fn recording_sleep() -> (m365sync::auth::SleepFn, Arc<Mutex<Vec<Duration>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let f: m365sync::auth::SleepFn = Arc::new(move |d| {
        l.lock().unwrap().push(d);
        Box::pin(tokio::time::sleep(Duration::from_millis(5)))
    });
    (f, log)
}

fn start_for(device_code: &str, expires_in: u64) -> DeviceCodeStart {
    DeviceCodeStart {
        user_code: "ABCD-EFGH".into(),
        verification_uri: "https://microsoft.com/devicelogin".into(),
        message: String::new(),
        interval: Duration::from_secs(1),
        expires_in: Duration::from_secs(expires_in),
        device_code: device_code.into(),
    }
}

#[tokio::test]
async fn device_code_flow_pending_slow_down_then_success() {
    let (base, st) = serve().await;
    st.lock().unwrap().scripts.insert(
        "dc-ok".into(),
        vec![
            "authorization_pending",
            "slow_down",
            "authorization_pending",
            "ok",
        ],
    );
    let (sleep, log) = recording_sleep();
    let auth = Authenticator::new(http(), &base, "contoso", CLIENT).with_sleep(sleep);

    let start = auth.start_device_code().await.unwrap();
    assert_eq!(start.user_code, "ABCD-EFGH");
    assert_eq!(start.verification_uri, "https://microsoft.com/devicelogin");
    assert!(start.message.contains("ABCD-EFGH"));
    assert_eq!(start.interval, Duration::from_secs(1));
    assert_eq!(start.expires_in, Duration::from_secs(900));
    assert!(
        !format!("{start:?}").contains("dc-ok"),
        "device_code must not be printed"
    );
    {
        let s = st.lock().unwrap();
        let form = &s.devicecode_forms[0];
        assert_eq!(form["client_id"], CLIENT);
        for scope in m365sync::auth::DELEGATED_SCOPES {
            assert!(form["scope"].split(' ').any(|s| s == *scope), "{scope}");
        }
    }

    let tokens = auth.poll_device_code(&start).await.unwrap();
    assert_eq!(tokens.access_token, "at-dev");
    assert_eq!(tokens.refresh_token.as_deref(), Some("rt-1"));
    assert_eq!(tokens.grant, "device_code");
    assert_eq!(
        tokens.identity,
        Identity {
            name: "admin@contoso.onmicrosoft.com".into(),
            tenant_id: Some("tid-1".into())
        }
    );
    let now = m365sync::auth::now_unix();
    assert!((now + 3500..=now + 3600).contains(&tokens.expires_at));
    // interval 1 s, +5 s after slow_down (RFC 8628), kept afterwards.
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            Duration::from_secs(1),
            Duration::from_secs(6),
            Duration::from_secs(6)
        ]
    );
    let s = st.lock().unwrap();
    assert_eq!(s.polls["dc-ok"], 4);
    // Discovery ran once for both calls.
    assert_eq!(s.discovery_calls, 1);
}

#[tokio::test]
async fn device_code_terminal_errors() {
    let (base, st) = serve().await;
    {
        let mut s = st.lock().unwrap();
        s.scripts.insert(
            "dc-declined".into(),
            vec!["authorization_pending", "authorization_declined"],
        );
        s.scripts.insert("dc-expired".into(), vec!["expired_token"]);
        s.scripts.insert("dc-client".into(), vec!["invalid_client"]);
        s.scripts.insert("dc-redirect".into(), vec!["redirect"]);
        s.scripts.insert("dc-html".into(), vec!["html"]);
    }
    let (sleep, _) = recording_sleep();
    let auth = Authenticator::new(http(), &base, "contoso", CLIENT).with_sleep(sleep);
    let poll = |dc: &'static str| {
        let auth = auth.clone();
        async move {
            auth.poll_device_code(&start_for(dc, 900))
                .await
                .unwrap_err()
        }
    };
    assert_eq!(poll("dc-declined").await, AuthError::Declined);
    assert_eq!(poll("dc-expired").await, AuthError::Expired);
    assert_eq!(poll("dc-unknown").await, AuthError::BadVerificationCode);
    assert_eq!(
        poll("dc-client").await,
        AuthError::OAuth {
            error: "invalid_client".into(),
            description: "AADSTS50000: invalid_client happened.".into(),
            codes: vec![50000],
            trace_id: Some("tr-50000".into()),
        }
    );
    let e = poll("dc-redirect").await;
    assert!(
        matches!(&e, AuthError::Malformed(m) if m.contains("302") && m.contains("evil.example")),
        "{e:?}"
    );
    let e = poll("dc-html").await;
    assert!(
        matches!(&e, AuthError::Malformed(m) if m.contains("502") && m.contains("bad gateway")),
        "{e:?}"
    );
}

#[tokio::test]
async fn device_code_poll_never_outlives_expires_in() {
    let (base, st) = serve().await;
    st.lock()
        .unwrap()
        .scripts
        .insert("dc-pending".into(), vec!["authorization_pending"]);
    // Real sleeps: interval 1 s, code valid 2 s.
    let auth = Authenticator::new(http(), &base, "contoso", CLIENT);
    let t0 = std::time::Instant::now();
    let e = auth
        .poll_device_code(&start_for("dc-pending", 2))
        .await
        .unwrap_err();
    let took = t0.elapsed();
    assert_eq!(e, AuthError::Expired);
    assert!(took < Duration::from_millis(2600), "{took:?}");
    assert!(took >= Duration::from_millis(1900), "{took:?}");
}

#[tokio::test]
async fn client_credentials_posts_the_secret_in_the_body() {
    let (base, st) = serve().await;
    let auth = Authenticator::new(http(), &base, "contoso", CLIENT);
    let t = auth.client_credentials(SECRET).await.unwrap();
    assert_eq!(t.grant, "client_credentials");
    assert_eq!(t.refresh_token, None);
    assert_eq!(t.scope, "https://graph.microsoft.com/.default");
    assert_eq!(
        t.identity,
        Identity {
            name: format!("app:{CLIENT}"),
            tenant_id: Some("tid-app".into())
        }
    );
    {
        let s = st.lock().unwrap();
        let (basic, form) = &s.cc_forms[0];
        assert_eq!(basic, &None, "secret must not go in a Basic header");
        assert_eq!(form["client_id"], CLIENT);
        assert_eq!(form["client_secret"], SECRET);
    }
    let e = auth.client_credentials("wrong").await.unwrap_err();
    assert!(
        matches!(&e, AuthError::OAuth { error, codes, trace_id, .. } if error == "invalid_client" && codes == &[7000215] && trace_id.as_deref() == Some("tr-7000215")),
        "{e:?}"
    );
    // The secret never appears in the error text.
    assert!(!e.to_string().contains(SECRET));
}

#[tokio::test]
async fn refresh_keeps_the_rotated_refresh_token_and_the_identity() {
    let (base, _st) = serve().await;
    let auth = Authenticator::new(http(), &base, "contoso", CLIENT);
    let old = tokens("at-1", "rt-1", 10);
    let new = auth.refresh(&old).await.unwrap();
    assert_eq!(new.access_token, "at-2");
    assert_eq!(new.refresh_token.as_deref(), Some("rt-2"));
    assert_eq!(new.identity, old.identity);
    assert_eq!(new.grant, "device_code");
    let e = auth
        .refresh(&tokens("at-1", "garbage", 10))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AuthError::OAuth { error, codes, .. } if error == "invalid_grant" && codes == &[70008]),
        "{e:?}"
    );
}

#[tokio::test]
async fn discovery_endpoints_must_be_https_or_loopback() {
    let (base, st) = serve().await;
    st.lock().unwrap().evil_discovery = true;
    let auth = Authenticator::new(http(), &base, "contoso", CLIENT);
    let e = auth.start_device_code().await.unwrap_err();
    assert!(
        matches!(&e, AuthError::Config(m) if m.contains("token_endpoint")),
        "{e:?}"
    );
    // A failed discovery is not cached.
    st.lock().unwrap().evil_discovery = false;
    assert!(auth.start_device_code().await.is_ok());
}

#[tokio::test]
async fn unreachable_identity_platform_is_a_transport_error() {
    m365sync::config::install_crypto_provider();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let auth = Authenticator::new(http(), &format!("http://{addr}"), "contoso", CLIENT);
    assert!(matches!(
        auth.start_device_code().await,
        Err(AuthError::Transport(_))
    ));
}

fn tokens(at: &str, rt: &str, expires_in: i64) -> TokenSet {
    TokenSet {
        access_token: at.into(),
        refresh_token: Some(rt.into()),
        expires_at: m365sync::auth::now_unix() + expires_in,
        scope: "https://graph.microsoft.com/User.ReadWrite.All".into(),
        identity: Identity {
            name: "admin@contoso.onmicrosoft.com".into(),
            tenant_id: Some("tid-1".into()),
        },
        grant: "device_code".into(),
    }
}

fn session(base: &str, dir: &std::path::Path, t: TokenSet, secret: Option<&str>) -> Arc<Session> {
    let auth = Authenticator::new(http(), base, "contoso", CLIENT);
    let cache = TokenCache::new(dir.join("tokens/contoso.json"));
    Session::start(auth, cache, t, secret.map(str::to_string)).unwrap()
}

#[tokio::test]
async fn session_refreshes_only_near_expiry_and_saves_rotated_tokens() {
    let (base, st) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    // Valid for an hour: no refresh.
    let s = session(&base, dir.path(), tokens("at-1", "rt-1", 3600), None);
    assert_eq!(s.access_token(false).await.unwrap(), "at-1");
    assert_eq!(st.lock().unwrap().refresh_calls, 0);

    // Expires in 4 minutes (< 5): refreshed, rotated tokens saved.
    let s = session(&base, dir.path(), tokens("at-1", "rt-1", 240), None);
    assert_eq!(s.access_token(false).await.unwrap(), "at-2");
    assert_eq!(s.access_token(false).await.unwrap(), "at-2");
    assert_eq!(st.lock().unwrap().refresh_calls, 1);
    let cached = TokenCache::new(dir.path().join("tokens/contoso.json"))
        .load()
        .unwrap()
        .unwrap();
    assert_eq!(cached.access_token, "at-2");
    assert_eq!(cached.refresh_token.as_deref(), Some("rt-2"));
    assert_eq!(s.identity().await.name, "admin@contoso.onmicrosoft.com");

    // Resume from the cache.
    let auth = Authenticator::new(http(), &base, "contoso", CLIENT);
    let r = Session::resume(
        auth,
        TokenCache::new(dir.path().join("tokens/contoso.json")),
        None,
    )
    .unwrap()
    .unwrap();
    assert_eq!(r.access_token(false).await.unwrap(), "at-2");
    let auth = Authenticator::new(http(), &base, "contoso", CLIENT);
    assert!(
        Session::resume(auth, TokenCache::new(dir.path().join("none.json")), None)
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn concurrent_callers_share_one_refresh() {
    let (base, st) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let s = session(&base, dir.path(), tokens("at-1", "rt-1", 10), None);
    let got = futures::future::join_all((0..10).map(|_| {
        let s = s.clone();
        tokio::spawn(async move { s.access_token(false).await.unwrap() })
    }))
    .await;
    assert!(got.iter().all(|t| t.as_ref().unwrap() == "at-2"), "{got:?}");
    assert_eq!(st.lock().unwrap().refresh_calls, 1);

    // Ten requests that all got 401 for the same token at once: still one refresh.
    let s = session(&base, dir.path(), tokens("at-1", "rt-1", 3600), None);
    let got = futures::future::join_all((0..10).map(|_| {
        let s = s.clone();
        tokio::spawn(async move {
            use m365sync::graph::TokenSource;
            s.token(Some("at-1")).await.unwrap()
        })
    }))
    .await;
    assert!(got.iter().all(|t| t.as_ref().unwrap() == "at-2"), "{got:?}");
    assert_eq!(st.lock().unwrap().refresh_calls, 2);
}

#[tokio::test]
async fn app_only_session_gets_a_new_client_credentials_token() {
    let (base, st) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let auth = Authenticator::new(http(), &base, "contoso", CLIENT);
    let t = auth.client_credentials(SECRET).await.unwrap();
    let first = t.access_token.clone();
    let s = session(&base, dir.path(), t.clone(), Some(SECRET));
    let second = s.access_token(true).await.unwrap();
    assert_ne!(first, second);
    assert_eq!(st.lock().unwrap().cc_calls, 2);
    assert_eq!(st.lock().unwrap().refresh_calls, 0);
    // Without the secret (resumed from the cache), app-only cannot renew.
    let s = session(&base, dir.path(), TokenSet { expires_at: 0, ..t }, None);
    assert!(matches!(
        s.access_token(false).await,
        Err(AuthError::NotSignedIn(_))
    ));
}

#[tokio::test]
async fn graph_401_makes_the_session_refresh_once() {
    let (base, st) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let s = session(&base, dir.path(), tokens("at-1", "rt-1", 3600), None);
    let g = GraphClient::new(http(), &format!("{base}/v1.0"), s.clone());
    let u = g.get_user("u1").await.unwrap();
    assert_eq!(u.id, "u1");
    assert_eq!(u.account_enabled, Some(true));
    assert_eq!(
        st.lock().unwrap().graph_tokens,
        vec!["Bearer at-1".to_string(), "Bearer at-2".to_string()]
    );
    // A token Graph keeps rejecting: one refresh, then the typed 401.
    let s = session(&base, dir.path(), tokens("at-5", "rt-5", 3600), None);
    let g = GraphClient::new(http(), &format!("{base}/v1.0"), s);
    let e = g.get_user("u1").await.unwrap_err();
    assert!(
        matches!(&e, GraphError::Api { status: 401, code, request_id, .. } if code == "InvalidAuthenticationToken" && request_id.as_deref() == Some("r401")),
        "{e:?}"
    );
}

#[tokio::test]
async fn redirects_are_never_followed() {
    let (base, st) = serve().await;
    st.lock().unwrap().redirect_discovery = true;
    let auth = Authenticator::new(http(), &base, "contoso", CLIENT);
    let e = auth.client_credentials(SECRET).await.unwrap_err();
    assert!(
        matches!(&e, AuthError::Malformed(m) if m.contains("301") && m.contains("login.evil.example")),
        "{e:?}"
    );
}

#[tokio::test]
async fn wrong_tenant_discovery_error_keeps_the_aadsts_code() {
    let (base, _st) = serve().await;
    let auth = Authenticator::new(http(), &base, "bad-tenant", CLIENT);
    let e = auth.start_device_code().await.unwrap_err();
    assert!(
        matches!(&e, AuthError::OAuth { error, codes, .. } if error == "invalid_tenant" && codes == &[90002]),
        "{e:?}"
    );
    // Not an OAuth body at all (wrong authority path): status and body start.
    let auth = Authenticator::new(http(), &format!("{base}/nope"), "contoso", CLIENT);
    let e = auth.start_device_code().await.unwrap_err();
    assert!(
        matches!(&e, AuthError::Malformed(m) if m.contains("404")),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_tenant_that_is_not_a_name_is_refused_before_any_request() {
    let (base, st) = serve().await;
    let auth = Authenticator::new(http(), &base, "contoso/../x?", CLIENT);
    assert!(matches!(
        auth.start_device_code().await,
        Err(AuthError::Config(_))
    ));
    assert_eq!(st.lock().unwrap().discovery_calls, 0);
}
