//! graph::GraphClient over real HTTP against a tiny Graph stub on 127.0.0.1:0 (until the
//! simulator lands): paging with an absolute nextLink, 429 + Retry-After, 503 backoff, typed
//! errors, malformed bodies, a connection reset, and the token never leaving Graph's origin.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use m365sync::graph::{GraphClient, GraphError, RetryPolicy, StaticToken, TokenSource};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
struct Stub {
    base: String,
    hits: HashMap<String, usize>,
    queries: Vec<HashMap<String, String>>,
    auth: Vec<String>,
    user_ids: Vec<String>,
}
type St = Arc<Mutex<Stub>>;

fn hit(st: &St, key: &str) -> usize {
    let mut s = st.lock().unwrap();
    let n = s.hits.entry(key.to_string()).or_default();
    *n += 1;
    *n
}

fn envelope(status: StatusCode, code: &str, msg: &str, rid: &str) -> Response {
    (
        status,
        [("request-id", rid)],
        Json(json!({"error": {"code": code, "message": msg, "innerError": {"date": "2026-11-27T06:00:00", "request-id": rid, "client-request-id": rid}}})),
    )
        .into_response()
}

fn user(i: usize) -> serde_json::Value {
    json!({"id": format!("id-{i}"), "userPrincipalName": format!("u{i}@contoso.com"), "mail": null,
           "displayName": format!("User {i}"), "givenName": "U", "surname": format!("{i}"), "accountEnabled": i % 2 == 0})
}

async fn users(
    State(st): State<St>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    {
        let mut s = st.lock().unwrap();
        s.queries.push(q.clone());
        s.auth.push(
            headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default(),
        );
    }
    let base = st.lock().unwrap().base.clone();
    match q.get("$skiptoken").map(String::as_str) {
        None => Json(json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(id,userPrincipalName)",
            "value": [user(1), user(2)],
            "@odata.nextLink": format!("{base}/v1.0/users?$select=id,userPrincipalName&$top=2&$skiptoken=p2"),
        }))
        .into_response(),
        Some("p2") => {
            if hit(&st, "p2") == 1 {
                let mut r = envelope(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "Too many requests.", "r429");
                r.headers_mut().insert("retry-after", "1".parse().unwrap());
                return r;
            }
            Json(json!({"value": [user(3)]})).into_response()
        }
        Some("offsite") => Json(json!({"value": [user(9)], "@odata.nextLink": "http://127.0.0.2:9/v1.0/users?$skiptoken=x"})).into_response(),
        Some("garbage") => (StatusCode::OK, "{\"value\": [ {\"id\": 5").into_response(),
        Some(_) => envelope(StatusCode::BAD_REQUEST, "Request_BadRequest", "bad skiptoken", "rbad"),
    }
}

async fn one_user(State(st): State<St>, Path(id): Path<String>) -> Response {
    st.lock().unwrap().user_ids.push(id.clone());
    let n = hit(&st, &id);
    match id.as_str() {
        "missing" => envelope(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            "Resource 'missing' does not exist or one of its queried reference-property objects are not present.",
            "r404",
        ),
        "malformed" => (StatusCode::OK, [("content-type", "application/json")], "<html>").into_response(),
        "flaky503" if n <= 2 => (StatusCode::SERVICE_UNAVAILABLE, "").into_response(),
        "gateway504" if n <= 1 => (StatusCode::GATEWAY_TIMEOUT, "").into_response(),
        "always429" => {
            let mut r = envelope(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "Too many requests.", "r429");
            r.headers_mut().insert("retry-after", "0".parse().unwrap());
            r
        }
        "longwait" => {
            let mut r = envelope(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "Too many requests.", "rlong");
            r.headers_mut().insert("retry-after", "3600".parse().unwrap());
            r
        }
        "auth-then-throttle" if n == 1 => envelope(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token has expired or is not yet valid.",
            "r401",
        ),
        "auth-then-throttle" if n == 2 => {
            let mut r = envelope(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "Too many requests.", "r429");
            r.headers_mut().insert("retry-after", "0".parse().unwrap());
            r
        }
        "html502" => (StatusCode::BAD_GATEWAY, [("request-id", "rh")], "<html><body>Bad Gateway</body></html>").into_response(),
        _ => Json(json!({"id": id, "userPrincipalName": id, "accountEnabled": false})).into_response(),
    }
}

async fn domains() -> Response {
    Json(json!({"value": [
        {"id": "contoso.onmicrosoft.com", "authenticationType": "Managed", "isDefault": false, "isInitial": true, "isVerified": true, "supportedServices": ["Email"]},
        {"id": "contoso.com", "authenticationType": "Federated", "isDefault": true, "isInitial": false, "isVerified": true},
    ]}))
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
        .route("/v1.0/users", get(users))
        .route("/v1.0/users/{id}", get(one_user))
        .route("/v1.0/domains", get(domains))
        .with_state(st.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, st)
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(5),
    }
}

fn client(base: &str) -> GraphClient {
    GraphClient::new(
        m365sync::config::http_client(None).unwrap(),
        &format!("{base}/v1.0"),
        Arc::new(StaticToken("tok".into())),
    )
    .with_retry(fast())
}

#[tokio::test]
async fn list_users_follows_next_link_and_waits_out_a_429() {
    let (base, st) = serve().await;
    let g = client(&base);
    let t0 = Instant::now();
    let pages: Vec<_> = g.list_users(2).collect().await;
    let took = t0.elapsed();
    let pages: Vec<Vec<_>> = pages.into_iter().map(|p| p.unwrap()).collect();
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0].len(), 2);
    assert_eq!(pages[0][0].id, "id-1");
    assert_eq!(pages[0][0].user_principal_name, "u1@contoso.com");
    assert_eq!(pages[0][0].account_enabled, Some(false));
    assert_eq!(pages[0][1].account_enabled, Some(true));
    assert_eq!(pages[1][0].id, "id-3");
    // Retry-After: 1 was honoured.
    assert!(took >= Duration::from_secs(1), "{took:?}");
    let s = st.lock().unwrap();
    assert_eq!(s.queries.len(), 3);
    assert_eq!(
        s.queries[0]["$select"],
        m365sync::graph::model::USER_SELECT.join(",")
    );
    assert_eq!(s.queries[0]["$top"], "2");
    assert_eq!(s.queries[1]["$skiptoken"], "p2");
    assert!(s.auth.iter().all(|a| a == "Bearer tok"));
}

#[tokio::test]
async fn next_link_to_another_origin_stops_the_stream_without_sending_the_token() {
    let (base, _st) = serve().await;
    let g = client(&base);
    let pages: Vec<_> = g
        .pages::<m365sync::graph::User>(format!("{base}/v1.0/users?$skiptoken=offsite"))
        .collect()
        .await;
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0].as_ref().unwrap()[0].id, "id-9");
    assert!(
        matches!(&pages[1], Err(GraphError::Malformed(m)) if m.contains("127.0.0.2")),
        "{pages:?}"
    );
}

#[tokio::test]
async fn a_bad_2xx_body_is_malformed_not_a_panic() {
    let (base, _st) = serve().await;
    let g = client(&base);
    let pages: Vec<_> = g
        .pages::<m365sync::graph::User>(format!("{base}/v1.0/users?$skiptoken=garbage"))
        .collect()
        .await;
    assert_eq!(pages.len(), 1);
    assert!(
        matches!(&pages[0], Err(GraphError::Malformed(_))),
        "{pages:?}"
    );
    assert!(matches!(
        g.get_user("malformed").await,
        Err(GraphError::Malformed(_))
    ));
}

#[tokio::test]
async fn errors_are_typed_from_the_envelope_or_the_status() {
    let (base, st) = serve().await;
    let g = client(&base);
    assert_eq!(
        g.get_user("missing").await.unwrap_err(),
        GraphError::Api {
            status: 404,
            code: "Request_ResourceNotFound".into(),
            message: "Resource 'missing' does not exist or one of its queried reference-property objects are not present.".into(),
            request_id: Some("r404".into()),
            date: Some("2026-11-27T06:00:00".into()),
            retry_after: None,
        }
    );
    let e = g.get_user("html502").await.unwrap_err();
    assert_eq!(e.code(), "HttpStatus502");
    assert_eq!(e.request_id(), Some("rh"));
    assert!(matches!(&e, GraphError::Api { message, .. } if message.contains("Bad Gateway")));
    // 502 is not retried.
    assert_eq!(st.lock().unwrap().hits["html502"], 1);
}

#[tokio::test]
async fn retries_503_504_with_backoff_and_gives_up_on_endless_429() {
    let (base, st) = serve().await;
    let g = client(&base);
    assert_eq!(g.get_user("flaky503").await.unwrap().id, "flaky503");
    assert_eq!(g.get_user("gateway504").await.unwrap().id, "gateway504");
    let e = g.get_user("always429").await.unwrap_err();
    assert_eq!(e.status(), Some(429));
    assert_eq!(e.code(), "TooManyRequests");
    assert_eq!(e.retry_after(), Some(Duration::ZERO));
    {
        let s = st.lock().unwrap();
        assert_eq!(s.hits["flaky503"], 3);
        assert_eq!(s.hits["gateway504"], 2);
        assert_eq!(s.hits["always429"], 4, "max_attempts");
    }
    // Retry-After beyond max_delay: handed to the caller at once.
    let t0 = Instant::now();
    let e = g.get_user("longwait").await.unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_eq!(e.retry_after(), Some(Duration::from_secs(3600)));
    assert_eq!(st.lock().unwrap().hits["longwait"], 1);
}

#[tokio::test]
async fn user_ids_are_path_escaped() {
    let (base, st) = serve().await;
    let g = client(&base);
    let guest = "a_contoso.com#EXT#@fabrikam.onmicrosoft.com";
    assert_eq!(g.get_user(guest).await.unwrap().user_principal_name, guest);
    assert_eq!(st.lock().unwrap().user_ids, vec![guest.to_string()]);
}

#[tokio::test]
async fn list_domains_reads_flags() {
    let (base, _st) = serve().await;
    let d = client(&base).list_domains().await.unwrap();
    assert_eq!(d.len(), 2);
    assert!(d[0].is_initial && d[0].is_verified && !d[0].is_default);
    assert_eq!(d[1].authentication_type.as_deref(), Some("Federated"));
}

/// A raw TCP server: resets the first connection, answers the next ones.
async fn flaky_tcp(resets: usize) -> (String, Arc<Mutex<usize>>) {
    m365sync::config::install_crypto_provider();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let count = Arc::new(Mutex::new(0usize));
    let c = count.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = l.accept().await.unwrap();
            let n = {
                let mut c = c.lock().unwrap();
                *c += 1;
                *c
            };
            let mut buf = vec![0u8; 8192];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let k = sock.read(&mut buf).await.unwrap_or(0);
                if k == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..k]);
            }
            if n <= resets {
                // Linger 0 makes close send RST (and does not block: the timeout is zero).
                #[allow(deprecated)]
                let _ = sock.set_linger(Some(Duration::ZERO));
                drop(sock); // RST
                continue;
            }
            let body = r#"{"id":"u1","userPrincipalName":"u1@contoso.com"}"#;
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        }
    });
    (base, count)
}

#[tokio::test]
async fn connection_reset_is_retried_for_get() {
    let (base, count) = flaky_tcp(2).await;
    let g = client(&base);
    assert_eq!(g.get_user("u1").await.unwrap().id, "u1");
    assert_eq!(*count.lock().unwrap(), 3);

    let (base, _count) = flaky_tcp(100).await;
    let e = client(&base).get_user("u1").await.unwrap_err();
    assert!(matches!(e, GraphError::Transport(_)), "{e:?}");
}

#[tokio::test]
async fn a_failing_token_source_is_an_auth_error() {
    struct NoToken;
    impl TokenSource for NoToken {
        fn token<'a>(
            &'a self,
            _: Option<&'a str>,
        ) -> futures::future::BoxFuture<'a, Result<String, GraphError>> {
            Box::pin(async { Err(GraphError::Auth("not signed in to tenant contoso".into())) })
        }
    }
    let (base, st) = serve().await;
    let g = GraphClient::new(
        m365sync::config::http_client(None).unwrap(),
        &format!("{base}/v1.0"),
        Arc::new(NoToken),
    );
    assert!(matches!(g.get_user("x").await, Err(GraphError::Auth(_))));
    assert!(st.lock().unwrap().user_ids.is_empty());
}

#[tokio::test]
async fn a_401_forces_one_refresh_and_later_retries_use_the_cached_token() {
    struct Counting(Mutex<Vec<Option<String>>>);
    impl TokenSource for Counting {
        fn token<'a>(
            &'a self,
            rejected: Option<&'a str>,
        ) -> futures::future::BoxFuture<'a, Result<String, GraphError>> {
            self.0.lock().unwrap().push(rejected.map(str::to_string));
            Box::pin(async { Ok("t".to_string()) })
        }
    }
    let (base, _st) = serve().await;
    let src = Arc::new(Counting(Mutex::new(Vec::new())));
    let g = GraphClient::new(
        m365sync::config::http_client(None).unwrap(),
        &format!("{base}/v1.0"),
        src.clone(),
    )
    .with_retry(fast());
    assert_eq!(
        g.get_user("auth-then-throttle").await.unwrap().id,
        "auth-then-throttle"
    );
    assert_eq!(
        *src.0.lock().unwrap(),
        vec![None, Some("t".to_string()), None],
        "the 401 hands back the rejected token once; the 429 retry does not"
    );
}

#[tokio::test]
async fn transport_errors_say_why() {
    m365sync::config::install_crypto_provider();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let g = client(&format!("http://{addr}"));
    let e = g.get_user("x").await.unwrap_err();
    assert!(
        matches!(&e, GraphError::Transport(m) if m.to_lowercase().contains("refused")),
        "{e:?}"
    );
}
