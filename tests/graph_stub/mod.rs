//! A small Graph stub on 127.0.0.1:0 for the snapshot, delta and sharded-listing tests:
//! `/users` (paged, `$filter=startswith(userPrincipalName,'x')` case-insensitive or
//! case-sensitive, shards that can be refused), `/users/$count` (with the filter and the
//! `ConsistencyLevel` header), `/users/delta` as graph-notes §18 describes it (nextLink /
//! deltaLink pages, full objects with never-set properties omitted and cleared ones `null`,
//! `@removed` changed / deleted, `$deltatoken=latest`, an expired token as `400
//! syncStateNotFound`, a reset as `410 Gone` with `Location`), the soft-deleted users and the
//! domains. Written from graph-notes, not from the client.
#![allow(dead_code)]
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

pub const SELECT: &[&str] = &[
    "id",
    "userPrincipalName",
    "mail",
    "displayName",
    "givenName",
    "surname",
    "accountEnabled",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Insensitive,
    Sensitive,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Life {
    Live,
    SoftDeleted(String),
    Purged,
}

#[derive(Debug, Clone)]
pub struct StubUser {
    pub id: String,
    /// Properties as set (a cleared one is `null`); never-set ones are absent.
    pub props: Map<String, Value>,
    pub life: Life,
    /// The tenant's version when it last changed.
    pub version: u64,
}

/// What the next delta request answers instead of changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaFail {
    Expired,
    Gone,
}

pub struct Tenant {
    pub base: String,
    pub users: Vec<StubUser>,
    pub version: u64,
    pub case: Case,
    /// Listing pages of these prefixes answer 400 (their counts work).
    pub refuse: HashSet<String>,
    /// The next listing page of these prefixes answers 429 with `Retry-After: 1` (once).
    pub throttle_once: HashSet<String>,
    /// Every answer waits this long (a slower Graph).
    pub delay: std::time::Duration,
    /// When each request arrived.
    pub times: Vec<(std::time::Instant, String)>,
    /// Added to the count of a prefix (an eventually consistent count lagging).
    pub count_skew: std::collections::HashMap<String, i64>,
    pub delta_fail: Option<DeltaFail>,
    /// Users per page (`$top` is honoured below it).
    pub page: usize,
    /// Users per delta page.
    pub delta_page: usize,
    /// Every request: method, path and query.
    pub log: Vec<String>,
    /// Repeat the first item of every delta round at its end (Graph may replay).
    pub replay: bool,
    next_id: u64,
}

pub type Shared = Arc<Mutex<Tenant>>;

impl Tenant {
    fn bump(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    /// A new live user; `props` may leave properties out (never set).
    pub fn create(&mut self, upn: &str, mut props: Map<String, Value>) -> String {
        self.next_id += 1;
        let id = format!("{:08x}-0000-4000-8000-{:012x}", self.next_id, self.next_id);
        props.insert("userPrincipalName".into(), json!(upn));
        let version = self.bump();
        self.users.push(StubUser {
            id: id.clone(),
            props,
            life: Life::Live,
            version,
        });
        id
    }

    fn find(&mut self, id: &str) -> &mut StubUser {
        self.users
            .iter_mut()
            .find(|u| u.id == id)
            .expect("stub user")
    }

    /// Sets (or, with `null`, clears) properties.
    pub fn update(&mut self, id: &str, props: Value) {
        let v = self.bump();
        let u = self.find(id);
        for (k, val) in props.as_object().unwrap() {
            u.props.insert(k.clone(), val.clone());
        }
        u.version = v;
    }

    pub fn soft_delete(&mut self, id: &str) {
        let v = self.bump();
        let u = self.find(id);
        assert_eq!(u.life, Life::Live);
        u.life = Life::SoftDeleted(format!("2026-11-{:02}T10:00:00Z", 1 + v % 27));
        u.version = v;
    }

    pub fn restore(&mut self, id: &str) {
        let v = self.bump();
        let u = self.find(id);
        assert!(matches!(u.life, Life::SoftDeleted(_)));
        u.life = Life::Live;
        u.version = v;
    }

    pub fn purge(&mut self, id: &str) {
        let v = self.bump();
        let u = self.find(id);
        assert!(matches!(u.life, Life::SoftDeleted(_)));
        u.life = Life::Purged;
        u.version = v;
    }

    /// The live users as `/users` returns them (every selected property, unset = null).
    pub fn live_json(&self) -> Vec<Value> {
        self.users
            .iter()
            .filter(|u| u.life == Life::Live)
            .map(full_object)
            .collect()
    }

    pub fn deleted_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .users
            .iter()
            .filter(|u| matches!(u.life, Life::SoftDeleted(_)))
            .map(|u| u.id.clone())
            .collect();
        v.sort();
        v
    }

    pub fn count(&self, what: &str) -> usize {
        self.log.iter().filter(|l| l.contains(what)).count()
    }
}

/// Every selected property, null when not set (a listing's shape).
fn full_object(u: &StubUser) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(u.id));
    for p in &SELECT[1..] {
        o.insert((*p).into(), u.props.get(*p).cloned().unwrap_or(Value::Null));
    }
    Value::Object(o)
}

/// A delta object: the selected properties ever set (a cleared one as null); never-set ones
/// omitted (graph-notes §18).
fn delta_object(u: &StubUser) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(u.id));
    for p in &SELECT[1..] {
        if let Some(v) = u.props.get(*p) {
            o.insert((*p).into(), v.clone());
        }
    }
    Value::Object(o)
}

fn envelope(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message,
            "innerError": {"date": "2026-11-27T06:00:00", "request-id": "stub-rid", "client-request-id": "stub-rid"}}})),
    )
        .into_response()
}

fn query_pairs(q: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn get<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter()
        .find(|(n, _)| n.trim_start_matches('$').eq_ignore_ascii_case(k))
        .map(|(_, v)| v.as_str())
}

/// `startswith(userPrincipalName,'x')` -> `x`.
fn prefix_of(filter: &str) -> Option<String> {
    let rest = filter
        .trim()
        .strip_prefix("startswith(userPrincipalName,'")?;
    let lit = rest.strip_suffix("')")?;
    Some(lit.replace("''", "'"))
}

fn upn_matches(case: Case, upn: &str, prefix: &str) -> bool {
    match case {
        Case::Sensitive => upn.starts_with(prefix),
        Case::Insensitive => upn.to_lowercase().starts_with(&prefix.to_lowercase()),
    }
}

#[allow(clippy::result_large_err)] // an axum Response as the refusal, as the handlers return it
fn matching<'a>(t: &'a Tenant, filter: Option<&str>) -> Result<Vec<&'a StubUser>, Response> {
    let prefix = match filter {
        None => None,
        Some(f) => Some(prefix_of(f).ok_or_else(|| {
            envelope(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Invalid filter clause",
            )
        })?),
    };
    Ok(t.users
        .iter()
        .filter(|u| u.life == Life::Live)
        .filter(|u| match &prefix {
            None => true,
            Some(p) => upn_matches(
                t.case,
                u.props["userPrincipalName"].as_str().unwrap_or_default(),
                p,
            ),
        })
        .collect())
}

fn list_users(t: &mut Tenant, q: &[(String, String)]) -> Response {
    let filter = get(q, "filter");
    if let Some(p) = filter.and_then(prefix_of) {
        if t.throttle_once.remove(&p) {
            let mut r = envelope(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many requests.",
            );
            let h = r.headers_mut();
            h.insert("retry-after", "1".parse().unwrap());
            h.insert(
                "x-ms-throttle-information",
                "ResourceUnitLimitExceeded".parse().unwrap(),
            );
            h.insert(
                "x-ms-throttle-scope",
                "Tenant_Application/ReadWrite/app/tenant".parse().unwrap(),
            );
            return r;
        }
    }
    if let Some(p) = filter.and_then(prefix_of) {
        if t.refuse.contains(&p) {
            return envelope(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                "Unsupported or invalid query filter clause specified for property 'userPrincipalName' of resource 'User'.",
            );
        }
    }
    let users = match matching(t, filter) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let top = get(q, "top")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(100)
        .min(t.page);
    let offset = get(q, "skiptoken")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let end = (offset + top).min(users.len());
    let value: Vec<Value> = users[offset.min(end)..end]
        .iter()
        .map(|u| full_object(u))
        .collect();
    let mut body =
        json!({"@odata.context": format!("{}/v1.0/$metadata#users", t.base), "value": value});
    if end < users.len() {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in q {
            if !k.trim_start_matches('$').eq_ignore_ascii_case("skiptoken") {
                ser.append_pair(k, v);
            }
        }
        ser.append_pair("$skiptoken", &end.to_string());
        body["@odata.nextLink"] = json!(format!("{}/v1.0/users?{}", t.base, ser.finish()));
    }
    Json(body).into_response()
}

fn count_users(t: &Tenant, headers: &HeaderMap, q: &[(String, String)]) -> Response {
    if !headers
        .get("consistencylevel")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("eventual"))
    {
        return envelope(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "$count is not currently supported.",
        );
    }
    let skew = get(q, "filter")
        .and_then(prefix_of)
        .and_then(|p| t.count_skew.get(&p).copied())
        .unwrap_or(0);
    match matching(t, get(q, "filter")) {
        Ok(u) => (
            StatusCode::OK,
            [("content-type", "text/plain")],
            (u.len() as i64 + skew).to_string(),
        )
            .into_response(),
        Err(r) => r,
    }
}

fn delta(t: &mut Tenant, q: &[(String, String)]) -> Response {
    let link = |t: &Tenant, token: &str| format!("{}/v1.0/users/delta?$deltatoken={token}", t.base);
    if let Some(fail) = &t.delta_fail {
        // Only saved tokens are refused: a new `latest` link still works.
        if get(q, "deltatoken").is_some_and(|d| d != "latest") || get(q, "skiptoken").is_some() {
            return match fail {
                DeltaFail::Expired => envelope(
                    StatusCode::BAD_REQUEST,
                    "syncStateNotFound",
                    "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
                ),
                DeltaFail::Gone => {
                    let mut r = envelope(StatusCode::GONE, "Gone", "The sync was reset.");
                    r.headers_mut().insert(
                        "location",
                        link(t, "").replace("$deltatoken=", "$deltaToken=").parse().unwrap(),
                    );
                    r
                }
            };
        }
    }
    // The first call must carry the $select (it is encoded in the tokens).
    if get(q, "deltatoken").is_none() && get(q, "skiptoken").is_none()
        || get(q, "deltatoken") == Some("latest")
    {
        let sel = get(q, "select").unwrap_or_default();
        let got: HashSet<&str> = sel.split(',').collect();
        if SELECT.iter().any(|p| !got.contains(p)) {
            return envelope(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "stub: the first delta call must $select every property",
            );
        }
    }
    if get(q, "deltatoken") == Some("latest") {
        return Json(json!({"@odata.context": format!("{}/v1.0/$metadata#users", t.base), "value": [], "@odata.deltaLink": link(t, &format!("v{}", t.version))})).into_response();
    }
    // (since, round end, offset): from a deltatoken `vN`, a skiptoken `N.E.O`, or nothing.
    let (since, end, offset) = if let Some(s) = get(q, "skiptoken") {
        let p: Vec<u64> = s.split('.').map(|x| x.parse().unwrap()).collect();
        (p[0], p[1], p[2] as usize)
    } else if let Some(d) = get(q, "deltatoken") {
        match d.strip_prefix('v').and_then(|n| n.parse::<u64>().ok()) {
            Some(n) => (n, t.version, 0),
            None => return envelope(StatusCode::BAD_REQUEST, "syncStateNotFound", "The sync state generation is not found. The delta token is expired and data must be synchronized again."),
        }
    } else {
        (0, t.version, 0)
    };
    let mut changed: Vec<&StubUser> = t
        .users
        .iter()
        .filter(|u| u.version > since && u.version <= end)
        .filter(|u| since > 0 || u.life == Life::Live)
        .collect();
    changed.sort_by_key(|u| u.version);
    let mut items: Vec<Value> = changed
        .iter()
        .map(|u| match &u.life {
            Life::Live => delta_object(u),
            Life::SoftDeleted(_) => json!({"id": u.id, "@removed": {"reason": "changed"}}),
            Life::Purged => json!({"id": u.id, "@removed": {"reason": "deleted"}}),
        })
        .collect();
    if t.replay && !items.is_empty() {
        items.push(items[0].clone());
    }
    let stop = (offset + t.delta_page).min(items.len());
    let value = items[offset.min(stop)..stop].to_vec();
    let mut body =
        json!({"@odata.context": format!("{}/v1.0/$metadata#users", t.base), "value": value});
    if stop < items.len() {
        body["@odata.nextLink"] = json!(format!(
            "{}/v1.0/users/delta?$skiptoken={since}.{end}.{stop}",
            t.base
        ));
    } else {
        body["@odata.deltaLink"] = json!(link(t, &format!("v{end}")));
    }
    Json(body).into_response()
}

fn deleted_items(t: &Tenant) -> Response {
    let value: Vec<Value> = t
        .users
        .iter()
        .filter_map(|u| match &u.life {
            Life::SoftDeleted(at) => {
                let mut o = full_object(u);
                o["deletedDateTime"] = json!(at);
                Some(o)
            }
            _ => None,
        })
        .collect();
    Json(json!({"value": value})).into_response()
}

async fn handle(State(st): State<Shared>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let raw = req.uri().query().unwrap_or("").to_string();
    let q = query_pairs(&raw);
    let headers = req.headers().clone();
    let delay = st.lock().unwrap().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut t = st.lock().unwrap();
    t.log.push(format!("{} {path}?{raw}", req.method()));
    t.times.push((std::time::Instant::now(), raw.clone()));
    match path.trim_start_matches("/v1.0") {
        "/users" => list_users(&mut t, &q),
        "/users/$count" => count_users(&t, &headers, &q),
        "/users/delta" | "/users/microsoft.graph.delta" => delta(&mut t, &q),
        "/directory/deletedItems/microsoft.graph.user" => deleted_items(&t),
        "/domains" => Json(json!({"value": [{"id": "contoso.com", "authenticationType": "Managed", "isDefault": true, "isInitial": false, "isVerified": true}]})).into_response(),
        _ => (StatusCode::NOT_FOUND, "no such stub route").into_response(),
    }
}

/// Starts a stub; the tenant is empty, case-insensitive, 999 users a page.
pub async fn start() -> Shared {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let st: Shared = Arc::new(Mutex::new(Tenant {
        base,
        users: Vec::new(),
        version: 0,
        case: Case::Insensitive,
        refuse: HashSet::new(),
        count_skew: Default::default(),
        throttle_once: HashSet::new(),
        delay: std::time::Duration::ZERO,
        times: Vec::new(),
        delta_fail: None,
        page: 999,
        delta_page: 3,
        log: Vec::new(),
        replay: false,
        next_id: 0,
    }));
    let app = Router::new()
        .route("/v1.0/{*rest}", any(handle))
        .with_state(st.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    st
}

pub fn client(st: &Shared) -> m365sync::graph::GraphClient {
    let base = format!("{}/v1.0", st.lock().unwrap().base);
    m365sync::graph::GraphClient::new(
        m365sync::config::http_client(None).unwrap(),
        &base,
        Arc::new(m365sync::graph::StaticToken("stub-token".into())),
    )
    .with_retry(m365sync::graph::RetryPolicy {
        max_attempts: 2,
        base_delay: std::time::Duration::from_millis(10),
        max_delay: std::time::Duration::from_millis(100),
    })
}

/// A user's set properties: everything but `givenName` (never set, so a delta omits it).
pub fn props(i: usize) -> Map<String, Value> {
    let v = json!({"mail": format!("m{i}@contoso.com"), "displayName": format!("User {i}"),
                   "surname": format!("S{i}"), "accountEnabled": i % 3 != 0});
    v.as_object().unwrap().clone()
}
