//! graph::GraphClient over real HTTP against a tiny Graph stub on 127.0.0.1:0 (until the
//! simulator lands): paging with an absolute nextLink, 429 + Retry-After, 503 backoff, typed
//! errors, malformed bodies, a connection reset, and the token never leaving Graph's origin.
//! Every loop and wait bounded: next page links that loop or never end, a body that drips,
//! 500/502 on reads retried (writes not), a Graph URL without /v1.0, and a 404 that is not
//! Graph's diagnosed as a wrong Graph URL.
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use m365sync::diagnose::{diagnose_graph, Context, Operation, Subject};
use m365sync::graph::{batch, requests};
use m365sync::graph::{GraphClient, GraphError, RetryPolicy, StaticToken, TokenSource};
use reqwest::Method;
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

/// `?p=self` links to itself; `?p=a` to `?p=b` and back.
async fn looping(State(st): State<St>, Query(q): Query<HashMap<String, String>>) -> Response {
    let p = q.get("p").cloned().unwrap_or_default();
    hit(&st, &format!("loop-{p}"));
    hit(&st, "loop");
    let base = st.lock().unwrap().base.clone();
    let next = match p.as_str() {
        "self" => "self",
        "a" => "b",
        _ => "a",
    };
    Json(json!({"value": [user(p.len())], "@odata.nextLink": format!("{base}/v1.0/loop?p={next}")}))
        .into_response()
}

/// A new next page link every time, forever.
async fn endless(State(st): State<St>, Query(q): Query<HashMap<String, String>>) -> Response {
    hit(&st, "endless");
    let n: usize = q.get("n").and_then(|n| n.parse().ok()).unwrap_or(0);
    let base = st.lock().unwrap().base.clone();
    Json(json!({"value": [user(n)], "@odata.nextLink": format!("{base}/v1.0/endless?n={}", n + 1)}))
        .into_response()
}

/// Two pages of two users; the first answer to page 1 is a bare 500, the first to page 2 a
/// 502 from a gateway.
async fn flaky_listing(State(st): State<St>, Query(q): Query<HashMap<String, String>>) -> Response {
    let base = st.lock().unwrap().base.clone();
    match q.get("page").map(String::as_str) {
        None => {
            if hit(&st, "flaky-1") == 1 {
                return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
                    .into_response();
            }
            Json(json!({"value": [user(1), user(2)], "@odata.nextLink": format!("{base}/v1.0/flaky?page=2")}))
                .into_response()
        }
        _ => {
            if hit(&st, "flaky-2") == 1 {
                return (
                    StatusCode::BAD_GATEWAY,
                    "<html><body>502 Bad Gateway</body></html>",
                )
                    .into_response();
            }
            Json(json!({"value": [user(3), user(4)]})).into_response()
        }
    }
}

/// A write that fails with 500: Graph may have acted on it.
async fn create_fails(State(st): State<St>) -> Response {
    hit(&st, "POST /users");
    envelope(
        StatusCode::INTERNAL_SERVER_ERROR,
        "generalException",
        "General error.",
        "r500",
    )
}

/// `/groups` answers Graph's 404 envelope: a collection that exists in every tenant cannot be
/// missing, so the URL is wrong (a proxy imitating Graph, a wrong tenant-specific path).
async fn groups_missing() -> Response {
    envelope(StatusCode::NOT_FOUND, "Request_ResourceNotFound", "Resource 'groups' does not exist or one of its queried reference-property objects are not present.", "rg")
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
        .route("/v1.0/users", get(users).post(create_fails))
        .route("/v1.0/loop", get(looping))
        .route("/v1.0/endless", get(endless))
        .route("/v1.0/flaky", get(flaky_listing))
        .route("/v1.0/groups", get(groups_missing))
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
    // A read answered 502 every time: tried max_attempts times, then the error.
    assert_eq!(st.lock().unwrap().hits["html502"], 4);
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

/// Collects a listing, failing the test (rather than hanging it) after `secs`.
async fn listing(
    g: &GraphClient,
    url: String,
    secs: u64,
) -> Vec<Result<Vec<m365sync::graph::User>, GraphError>> {
    tokio::time::timeout(Duration::from_secs(secs), g.pages(url).collect::<Vec<_>>())
        .await
        .expect("the listing ends by itself")
}

fn stopped(r: &Result<Vec<m365sync::graph::User>, GraphError>) -> String {
    match r {
        Err(e @ GraphError::Malformed(_)) if e.is_listing_stopped() => e.to_string(),
        other => panic!("expected the listing to be stopped, got {other:?}"),
    }
}

#[tokio::test]
async fn a_next_link_to_itself_or_a_cycle_stops_the_listing_at_once() {
    let (base, st) = serve().await;
    let g = client(&base);

    // A page whose next link is itself: one request, its page, then the typed error.
    let out = listing(&g, format!("{base}/v1.0/loop?p=self"), 5).await;
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0].as_ref().unwrap()[0].id, "id-4");
    let msg = stopped(&out[1]);
    assert!(
        msg.contains("Graph returned the same next page link twice")
            && msg.contains("/v1.0/loop?p=self")
            && msg.ends_with("the listing was stopped"),
        "{msg}"
    );
    assert_eq!(
        st.lock().unwrap().hits["loop"],
        1,
        "the loop is never followed"
    );

    // A -> B -> A: two requests, both pages, then the error.
    let out = listing(&g, format!("{base}/v1.0/loop?p=a"), 5).await;
    assert_eq!(out.len(), 3, "{out:?}");
    assert!(out[0].is_ok() && out[1].is_ok());
    assert!(stopped(&out[2]).contains("page 2 links back to a page already read"));
    let s = st.lock().unwrap();
    assert_eq!(s.hits["loop"], 3);
    assert_eq!((s.hits["loop-a"], s.hits["loop-b"]), (1, 1));
}

#[tokio::test]
async fn endless_distinct_next_links_stop_at_the_page_cap() {
    let (base, st) = serve().await;
    let g = client(&base).with_max_pages(50);
    let out = listing(&g, format!("{base}/v1.0/endless?n=0"), 20).await;
    assert_eq!(out.len(), 51, "50 pages, then the error");
    assert!(out[..50].iter().all(Result::is_ok));
    let msg = stopped(&out[50]);
    assert!(msg.contains("after 50 pages"), "{msg}");
    // The page after the cap was never requested.
    assert_eq!(st.lock().unwrap().hits["endless"], 50);
}

#[tokio::test]
async fn one_500_and_one_502_on_listing_pages_are_retried_and_every_user_arrives_once() {
    let (base, st) = serve().await;
    let g = client(&base);
    let out = listing(&g, format!("{base}/v1.0/flaky"), 10).await;
    let mut ids = HashSet::new();
    for page in out {
        for u in page.expect("retried, not failed") {
            assert!(ids.insert(u.id.clone()), "{} twice", u.id);
        }
    }
    assert_eq!(ids.len(), 4);
    let s = st.lock().unwrap();
    assert_eq!((s.hits["flaky-1"], s.hits["flaky-2"]), (2, 2));
}

#[tokio::test]
async fn a_write_answered_500_is_not_sent_again() {
    let (base, st) = serve().await;
    let g = client(&base);
    let e = g
        .request(
            Method::POST,
            "/users",
            Some(bytes::Bytes::from_static(b"{}")),
        )
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(500), "generalException"));
    assert_eq!(
        st.lock().unwrap().hits["POST /users"],
        1,
        "POST: Graph may have acted"
    );
}

#[tokio::test]
async fn a_base_url_without_a_version_path_means_v1_0() {
    let (base, st) = serve().await;
    for b in [base.clone(), format!("{base}/")] {
        let g = GraphClient::new(
            m365sync::config::http_client(None).unwrap(),
            &b,
            Arc::new(StaticToken("tok".into())),
        )
        .with_retry(fast());
        assert_eq!(g.base(), format!("{base}/v1.0"));
        assert_eq!(g.list_domains().await.unwrap().len(), 2);
        assert_eq!(
            g.get_user("ann@contoso.com").await.unwrap().id,
            "ann@contoso.com"
        );
    }
    assert_eq!(st.lock().unwrap().user_ids.len(), 2);
}

#[tokio::test]
async fn a_404_that_is_not_graphs_is_diagnosed_as_a_wrong_graph_url() {
    let (base, _st) = serve().await;
    // A version path the stub does not serve: axum's bare 404, as a web server answers.
    let g = GraphClient::new(
        m365sync::config::http_client(None).unwrap(),
        &format!("{base}/beta"),
        Arc::new(StaticToken("tok".into())),
    )
    .with_retry(fast());
    let e = g.list_users(999).next().await.unwrap().unwrap_err();
    assert!(e.is_unknown_endpoint(), "{e:?}");
    assert_eq!(
        (e.status(), e.code()),
        (Some(404), m365sync::graph::UNKNOWN_ENDPOINT)
    );
    assert!(e.to_string().contains("/beta/users answered 404"), "{e}");
    let d = diagnose_graph(&e, &Context::new(Operation::ListUsers, Subject::None));
    assert_eq!(d.kind, "graph-url-wrong");
    assert!(d.what.contains("The Graph URL seems wrong"), "{}", d.what);
    assert!(d
        .steps
        .iter()
        .any(|s| s.contains("M365SYNC_GRAPH_URL") && s.contains("--graph-url")));
    assert!(d.steps.iter().any(|s| s.contains("must end in /v1.0")));
    for e in [
        g.list_domains().await.unwrap_err(),
        g.list_deleted_users().await.unwrap_err(),
        g.count_users().await.unwrap_err(),
        g.get_user("ann@contoso.com").await.unwrap_err(),
    ] {
        assert!(e.is_unknown_endpoint(), "{e:?}");
    }

    // Graph's own 404 envelope on a collection every tenant has: the URL is wrong too...
    let g = client(&base);
    let e = g.list_groups().await.unwrap_err();
    assert!(e.is_unknown_endpoint(), "{e:?}");
    assert!(e.to_string().contains("Request_ResourceNotFound"), "{e}");
    let d = diagnose_graph(&e, &Context::new(Operation::ListGroups, Subject::None));
    assert_eq!(d.kind, "graph-url-wrong");
    // ...but on one object it means the object is gone.
    let e = g.get_user("missing").await.unwrap_err();
    let d = diagnose_graph(&e, &Context::new(Operation::UpdateUser, Subject::None));
    assert_eq!(d.kind, "object-not-found");
}

/// What a raw TCP server does with one connection.
#[derive(Clone)]
enum Step {
    /// Read the request, then reset the connection (no answer).
    Reset,
    /// Answer this status line + JSON body at once.
    Reply(&'static str, &'static str),
    /// Send the status line and headers of a 200 with this body, then the body one byte every
    /// `Duration`.
    Drip(&'static str, Duration),
}

/// A raw TCP server playing `steps`, one per connection (the last one repeats); counts the
/// connections.
async fn scripted_tcp(steps: Vec<Step>) -> (String, Arc<Mutex<usize>>) {
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
            let step = steps[(n - 1).min(steps.len() - 1)].clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let k = sock.read(&mut buf).await.unwrap_or(0);
                    if k == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..k]);
                }
                match step {
                    Step::Reset => {
                        #[allow(deprecated)]
                        let _ = sock.set_linger(Some(Duration::ZERO));
                        drop(sock);
                    }
                    Step::Reply(status, body) => {
                        let resp = format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = sock.write_all(resp.as_bytes()).await;
                    }
                    Step::Drip(body, every) => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        );
                        if sock.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        for b in body.bytes() {
                            if sock.write_all(&[b]).await.is_err() || sock.flush().await.is_err() {
                                return; // the client gave up
                            }
                            tokio::time::sleep(every).await;
                        }
                    }
                }
            });
        }
    });
    (base, count)
}

const U1: &str = r#"{"id":"u1","userPrincipalName":"u1@contoso.com"}"#;

fn with_deadline(base: &str, deadline: Duration, attempts: u32) -> GraphClient {
    GraphClient::new(
        m365sync::config::http_client(None).unwrap(),
        base,
        Arc::new(StaticToken("tok".into())),
    )
    .with_retry(RetryPolicy {
        max_attempts: attempts,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    })
    .with_timeout(deadline)
    .with_batch_timeout(deadline)
}

#[tokio::test]
async fn a_body_dripping_one_byte_a_second_ends_at_the_deadline_as_a_transport_error() {
    let drip = Step::Drip(U1, Duration::from_secs(1));
    let (base, count) = scripted_tcp(vec![drip]).await;
    let g = with_deadline(&base, Duration::from_millis(500), 1);
    let t0 = Instant::now();
    let e = tokio::time::timeout(Duration::from_secs(10), g.get_user("u1"))
        .await
        .expect("the deadline ends it, not the test's timeout")
        .unwrap_err();
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(
        matches!(&e, GraphError::Transport(m) if m.contains("no complete answer within 500 ms")),
        "{e:?}"
    );
    let d = diagnose_graph(&e, &Context::default());
    assert_eq!(d.kind, "network-unreachable");
    assert_eq!(*count.lock().unwrap(), 1);

    // A write (here a $batch) is not sent again: its outcome is unknown.
    let t0 = Instant::now();
    let reqs = vec![requests::set_account_enabled("1", "u1@contoso.com", false)];
    let e = tokio::time::timeout(
        Duration::from_secs(10),
        batch::send(&g.clone().with_retry(fast()), &reqs),
    )
    .await
    .expect("bounded")
    .unwrap_err();
    assert!(matches!(e, GraphError::Transport(_)), "{e:?}");
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert_eq!(*count.lock().unwrap(), 2, "one more connection, no retry");
}

#[tokio::test]
async fn a_get_cut_off_by_the_deadline_is_retried_and_succeeds() {
    let (base, count) = scripted_tcp(vec![
        Step::Drip(U1, Duration::from_secs(1)),
        Step::Reply("200 OK", U1),
    ])
    .await;
    let g = with_deadline(&base, Duration::from_millis(400), 3);
    let t0 = Instant::now();
    let u = tokio::time::timeout(Duration::from_secs(10), g.get_user("u1"))
        .await
        .expect("bounded")
        .unwrap();
    assert_eq!(u.id, "u1");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert_eq!(*count.lock().unwrap(), 2);
}

#[tokio::test]
async fn a_delete_answered_404_after_a_lost_answer_is_done() {
    const GONE: &str = r#"{"error":{"code":"Request_ResourceNotFound","message":"Resource 'd1' does not exist or one of its queried reference-property objects are not present."}}"#;
    let (base, count) = scripted_tcp(vec![Step::Reset, Step::Reply("404 Not Found", GONE)]).await;
    let g = client(&base);
    g.purge_deleted("d1")
        .await
        .expect("the first DELETE purged it");
    assert_eq!(*count.lock().unwrap(), 2);
    // Without a lost answer, a 404 is the error it is.
    let (base, _) = scripted_tcp(vec![Step::Reply("404 Not Found", GONE)]).await;
    let e = client(&base).purge_deleted("d1").await.unwrap_err();
    assert_eq!(e.code(), "Request_ResourceNotFound");
    // And an empty id is never sent (it would address the whole container).
    assert!(client(&base).purge_deleted(" ").await.is_err());
}

#[tokio::test]
async fn an_oversized_body_is_refused_not_read() {
    // Announces 65 MiB: refused from the headers, without reading it.
    m365sync::config::install_crypto_provider();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut sock, _) = l.accept().await.unwrap();
        let mut buf = vec![0u8; 8192];
        let _ = sock.read(&mut buf).await;
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{{",
            65 << 20
        );
        let _ = sock.write_all(head.as_bytes()).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let e = tokio::time::timeout(Duration::from_secs(10), client(&base).get_user("u1"))
        .await
        .expect("bounded")
        .unwrap_err();
    assert!(
        matches!(&e, GraphError::Malformed(m) if m.contains("over the 64 MiB")),
        "{e:?}"
    );
}
