//! Microsoft Graph v1.0: bearer checks, users (paging, $select, $filter, $orderby, $count, $search),
//! domains, organization, and Graph-shaped errors for everything else.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Request, State as AxState};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::filter::{self, Filter};
use super::state::{Principal, State};
use super::tenant::{write_user, Prop, Tenant, User, DEFAULT_PROPS};
use super::util::{self, header_str, hv};
use super::writes;

const JSON_CT: &str =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";
const SKIPTOKEN_PREFIX: &str = "RFNwdAIAAQAAA";
/// Clauses joined by `or` the directory takes without the advanced-query mode.
const MAX_OR_CLAUSES: usize = 15;

/// Per-request facts for Graph answers.
pub struct GCtx {
    pub base: String,
    pub request_id: String,
    pub client_request_id: String,
}

impl GCtx {
    pub fn new(st: &State, headers: &HeaderMap, uri: &Uri) -> GCtx {
        let request_id = util::new_guid();
        GCtx {
            base: util::base_url(headers, uri, st.tls, &st.local_host),
            client_request_id: header_str(headers, "client-request-id")
                .map(str::to_owned)
                .unwrap_or_else(|| request_id.clone()),
            request_id,
        }
    }

    fn headers(&self, resp: &mut Response, content_type: &str) {
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, hv(content_type));
        h.insert(header::CACHE_CONTROL, hv("no-cache"));
        h.insert("request-id", hv(&self.request_id));
        h.insert("client-request-id", hv(&self.client_request_id));
        h.insert(
            "x-ms-ags-diagnostic",
            hv(r#"{"ServerInfo":{"DataCenter":"Local","Slice":"E","Ring":"5","ScaleUnit":"000","RoleInstance":"M365SYNC-SIM"}}"#),
        );
        h.insert("OData-Version", hv("4.0"));
        h.insert(header::STRICT_TRANSPORT_SECURITY, hv("max-age=31536000"));
    }

    pub fn raw(&self, status: StatusCode, body: Vec<u8>) -> Response {
        let mut resp = (status, body).into_response();
        self.headers(&mut resp, JSON_CT);
        resp
    }

    pub fn ok(&self, body: &serde_json::Value) -> Response {
        self.raw(StatusCode::OK, body.to_string().into_bytes())
    }

    pub fn no_content(&self) -> Response {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        self.headers(&mut resp, JSON_CT);
        resp.headers_mut().remove(header::CONTENT_TYPE);
        resp
    }

    /// The Graph error envelope.
    pub fn error(&self, status: StatusCode, code: &str, message: &str) -> Response {
        self.error_with_details(status, code, message, serde_json::Value::Null)
    }

    /// The Graph error envelope with `details` (omitted when null).
    pub fn error_with_details(
        &self,
        status: StatusCode,
        code: &str,
        message: &str,
        details: serde_json::Value,
    ) -> Response {
        let mut body = json!({
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": util::graph_date(),
                    "request-id": self.request_id,
                    "client-request-id": self.client_request_id,
                }
            }
        });
        if !details.is_null() {
            body["error"]["details"] = details;
        }
        let mut resp = self.raw(status, body.to_string().into_bytes());
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                hv(&format!(
                    "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
                    self.base
                )),
            );
        }
        resp
    }

    pub fn bad_request(&self, code: &str, message: &str) -> Response {
        self.error(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(&self, id: &str) -> Response {
        self.error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
        )
    }

    pub fn method_not_allowed(&self) -> Response {
        self.error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        )
    }

    fn not_implemented(&self, method: &Method, path: &str) -> Response {
        self.error(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            &format!("The m365sync simulator does not implement {method} {path} (it exists in Microsoft Graph)."),
        )
    }

    pub fn segment_not_found(&self, seg: &str) -> Response {
        self.bad_request(
            "BadRequest",
            &format!("Resource not found for the segment '{seg}'."),
        )
    }
}

const IDX14100: &str = "IDX14100: JWT is not well formed, there are no dots (.).\nThe token needs to be in JWS or JWE \
    Compact Serialization Format. (JWS): 'EncodedHeader.EndcodedPayload.EncodedSignature'. (JWE): \
    'EncodedProtectedHeader.EncodedEncryptedKey.EncodedInitializationVector.EncodedCiphertext.EncodedAuthenticationTag'.";

/// Checks the bearer token: missing, garbage, expired, or good.
pub fn check_bearer(st: &State, headers: &HeaderMap) -> Result<Caller, &'static str> {
    let empty = "Access token is empty.";
    let value = header_str(headers, "authorization").ok_or(empty)?;
    let token = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => {
            return Err(if value.trim().is_empty() {
                empty
            } else {
                IDX14100
            })
        }
    };
    if token.is_empty() {
        return Err(empty);
    }
    if let Some(grant) = st.auth().access.get(token) {
        if SystemTime::now() >= grant.expires {
            return Err("Lifetime validation failed, the token is expired.");
        }
        return Ok(Caller {
            principal: grant.principal.clone(),
            client_id: grant.client_id.clone(),
            permissions: grant.permissions.clone(),
        });
    }
    if !token.contains('.') {
        return Err(IDX14100);
    }
    // JWT-shaped but not one of ours (e.g. from an earlier run): expired if its exp says so.
    let exp = token
        .split('.')
        .nth(1)
        .and_then(util::b64url_decode)
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|c| c["exp"].as_u64());
    match exp {
        Some(exp) if exp <= util::unix_now() => {
            Err("Lifetime validation failed, the token is expired.")
        }
        _ => Err("CompactToken parsing failed with error code: 80049217"),
    }
}

/// Query options, keyed without the `$` and lower-cased (Graph accepts both spellings).
pub(super) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub(super) fn parse(uri: &Uri) -> Query {
        Query {
            pairs: util::parse_form(uri.query().unwrap_or("")),
        }
    }
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k.trim_start_matches('$').eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The query string for a nextLink: every option except the skiptoken, `$` kept literal.
    fn without_skiptoken(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.pairs {
            if k.trim_start_matches('$').eq_ignore_ascii_case("skiptoken") {
                continue;
            }
            s.push_str(&enc(k).replace("%24", "$"));
            s.push('=');
            s.push_str(&enc(v));
            s.push('&');
        }
        s
    }
}

pub(super) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

pub(super) fn encode_skiptoken(offset: usize) -> String {
    format!(
        "{SKIPTOKEN_PREFIX}{}",
        util::b64url(format!("o={offset}").as_bytes())
    )
}

pub(super) fn decode_skiptoken(tok: &str) -> Option<usize> {
    let rest = tok.strip_prefix(SKIPTOKEN_PREFIX)?;
    let raw = String::from_utf8(util::b64url_decode(rest)?).ok()?;
    raw.strip_prefix("o=")?.parse().ok()
}

fn advanced(headers: &HeaderMap, q: &Query) -> bool {
    header_str(headers, "consistencylevel").is_some_and(|v| v.eq_ignore_ascii_case("eventual"))
        && q.get("count")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Marks a response whose connection must be dropped instead of answered (an ambiguous write:
/// applied, but the client never hears so). The accept loop honours it.
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

/// One Graph request, direct or a `$batch` item: everything the dispatcher needs.
pub struct Call {
    pub method: Method,
    /// `/v1.0/...` with the query.
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl Call {
    pub fn is_write(&self) -> bool {
        is_write(&self.method)
    }
}

pub fn is_write(m: &Method) -> bool {
    *m == Method::POST || *m == Method::PATCH || *m == Method::PUT || *m == Method::DELETE
}

/// The caller, as the bearer token says: who, and the throttling scope (the app's client id).
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub client_id: String,
    /// What the token grants: an app token's `roles`, a delegated token's `scp`.
    pub permissions: Vec<String>,
}

pub async fn graph(AxState(st): AxState<Arc<State>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let g = GCtx::new(&st, &parts.headers, &parts.uri);
    // Already read whole, and bounded by `max_body_bytes`, by the accept loop.
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => return g.bad_request("BadRequest", "The request body is too large."),
    };
    let caller = match check_bearer(&st, &parts.headers) {
        Ok(c) => c,
        Err(msg) => return g.error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", msg),
    };
    let path = parts.uri.path();
    let rest = path.strip_prefix("/v1.0").unwrap_or(path);
    if rest.trim_matches('/').eq_ignore_ascii_case("$batch") {
        if parts.method != Method::POST {
            return g.method_not_allowed();
        }
        return super::batch::run(&st, &g, &caller, &parts.headers, &body).await;
    }
    let call = Call {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
    };
    let ambiguous = call.is_write() && st.chaos().ambiguous();
    let mut resp = execute(&st, &g, &caller, &call);
    if ambiguous && resp.status().is_success() {
        resp.extensions_mut().insert(DropConnection);
    }
    resp
}

/// Resource units a request costs (graph-notes §8): GET /users 2, other GETs 1, `$select` -1,
/// `$top` < 20 -1, writes 1; never below 1.
fn resource_units(call: &Call) -> u32 {
    if call.is_write() {
        return 1;
    }
    let path = call.uri.path();
    let rest = path.strip_prefix("/v1.0").unwrap_or(path).trim_matches('/');
    let segs: Vec<&str> = rest.split('/').collect();
    let mut ru: i32 = if rest.eq_ignore_ascii_case("users")
        || (segs.len() == 2
            && segs[0].eq_ignore_ascii_case("users")
            && super::delta::is_delta_segment(segs[1]))
    {
        // UNVERIFIED for delta: costed as the listing it replaces.
        2
    } else if segs.len() == 3
        && segs[0].eq_ignore_ascii_case("groups")
        && segs[2].eq_ignore_ascii_case("members")
    {
        return 3; // graph-notes §4: listing members costs 3 RU, whatever the options
    } else {
        1
    };
    let q = Query::parse(&call.uri);
    if q.get("select").is_some() {
        ru -= 1;
    }
    if q.get("top")
        .and_then(|t| t.trim().parse::<u32>().ok())
        .is_some_and(|t| t < 20)
    {
        ru -= 1;
    }
    ru.max(1) as u32
}

/// Runs one Graph request (direct or batch item) after the bearer check: budgets, random
/// errors, then the route. Every answer carries `x-ms-resource-unit`.
pub fn execute(st: &State, g: &GCtx, caller: &Caller, call: &Call) -> Response {
    let ru = resource_units(call);
    let charged = st.budgets().charge(&caller.client_id, ru, call.is_write());
    let usage = match charged {
        Ok(u) => u,
        Err(refusal) => return throttled(st, g, caller, refusal),
    };
    let injected = st.chaos().error();
    let mut resp = match injected {
        Some(true) => g.error(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "The service is temporarily unavailable. Please retry later.",
        ),
        Some(false) => g.error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "generalException",
            "General exception while processing.",
        ),
        None => refusal(st, g, caller, call).unwrap_or_else(|| route(st, g, caller, call)),
    };
    resp.headers_mut()
        .insert("x-ms-resource-unit", hv(&ru.to_string()));
    // Graph sends this only once a quota is at least 80% used (graph-notes §8).
    if usage >= 0.8 {
        resp.headers_mut().insert(
            "x-ms-throttle-limit-percentage",
            hv(&format!("{:.1}", usage.min(1.8))),
        );
    }
    resp
}

/// Refusals that come before the route: a token without a permission the request needs
/// (403, module `perms`), a read-only tenant, the directory object quota.
fn refusal(st: &State, g: &GCtx, caller: &Caller, call: &Call) -> Option<Response> {
    let path = call.uri.path();
    let segs: Vec<String> = path
        .strip_prefix("/v1.0")
        .unwrap_or(path)
        .split('/')
        .filter(|s| !s.is_empty())
        .map(util::pct_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let app_only = matches!(caller.principal, Principal::App);
    if !super::perms::need(&call.method, &segs, &call.body).allows(app_only, &caller.permissions) {
        return Some(g.error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ));
    }
    if !call.is_write() {
        return None;
    }
    if st.read_only_tenant {
        // UNVERIFIED: Microsoft documents no code or message for a tenant whose directory is
        // read-only (partner-managed, being migrated); this wording is a stand-in that says what
        // happened, and is what diagnose's tenant-not-supported heuristic recognises.
        return Some(g.error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "This operation is not supported: the directory of this tenant is read-only.",
        ));
    }
    let rest = path
        .strip_prefix("/v1.0")
        .unwrap_or(path)
        .trim_matches('/')
        .to_ascii_lowercase();
    if let Some(quota) = st.object_quota {
        let creates = call.method == Method::POST && (rest == "users" || rest == "groups");
        let held = {
            let t = st.tenant();
            t.users.len() + t.groups.len()
        };
        if creates && held >= quota {
            return Some(g.error(
                StatusCode::BAD_REQUEST,
                "Directory_QuotaExceeded",
                "The directory object quota limit for the Tenant has been exceeded. Please ask your \
                 administrator to increase the quota limit or delete objects to reduce the used quota.",
            ));
        }
    }
    None
}

/// `429 TooManyRequests` from the budgets, with Graph's throttling headers.
fn throttled(st: &State, g: &GCtx, caller: &Caller, refusal: super::budget::Refusal) -> Response {
    st.note_throttled();
    let tenant_id = &st.fixed.id;
    let mut resp = g.error(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        "Too many requests.",
    );
    let h = resp.headers_mut();
    h.insert(
        header::RETRY_AFTER,
        hv(&refusal.retry_after_secs.to_string()),
    );
    h.insert(
        "x-ms-throttle-scope",
        hv(&format!(
            "Tenant_Application/ReadWrite/{}/{}",
            caller.client_id, tenant_id
        )),
    );
    h.insert(
        "x-ms-throttle-information",
        hv(refusal.exceeded.information()),
    );
    resp
}

/// The Graph routes. Writes take the tenant's write lock themselves; reads share it.
fn route(st: &State, g: &GCtx, caller: &Caller, call: &Call) -> Response {
    let path = call.uri.path();
    let rest = path.strip_prefix("/v1.0").unwrap_or(path);
    let segs: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(util::pct_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = &call.method;
    let get = m == Method::GET;
    let q = Query::parse(&call.uri);
    let h = &call.headers;
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    match segs.as_slice() {
        [users] if eq(users, "users") && m == Method::POST => {
            return writes::create_user(st, g, &call.body)
        }
        [users, id] if eq(users, "users") && *id != "$count" && m == Method::PATCH => {
            return writes::update_user(st, g, id, &call.body)
        }
        [users, id] if eq(users, "users") && *id != "$count" && m == Method::DELETE => {
            return writes::delete_user(st, g, id)
        }
        [users, id, nav, r] if eq(users, "users") && eq(nav, "manager") && *r == "$ref" => {
            if m == Method::PUT {
                return writes::put_manager(st, g, id, &call.body);
            }
            if m == Method::DELETE {
                return writes::delete_manager(st, g, id);
            }
        }
        [users, id, action] if eq(users, "users") && is_action(action, "revokeSignInSessions") => {
            if m != Method::POST {
                return g.method_not_allowed();
            }
            return writes::revoke_sessions(st, g, id);
        }
        [me, action] if eq(me, "me") && is_action(action, "revokeSignInSessions") => {
            if m != Method::POST {
                return g.method_not_allowed();
            }
            let Principal::User { id } = &caller.principal else {
                return g.bad_request(
                    "BadRequest",
                    "/me request is only valid with delegated authentication flow.",
                );
            };
            return writes::revoke_sessions(st, g, id);
        }
        [skus, more @ ..] if eq(skus, "subscribedSkus") => {
            return super::licences::skus(st, g, m, &call.uri, more)
        }
        [users, id, action] if eq(users, "users") && is_action(action, "assignLicense") => {
            if m != Method::POST {
                return g.method_not_allowed();
            }
            return super::licences::assign_user(st, g, id, &call.body);
        }
        [groups, id, action] if eq(groups, "groups") && is_action(action, "assignLicense") => {
            if m != Method::POST {
                return g.method_not_allowed();
            }
            return super::licences::assign_group(st, g, id, &call.body);
        }
        [users, func] if eq(users, "users") && super::delta::is_delta_segment(func) => {
            if !get {
                return g.method_not_allowed();
            }
            return super::delta::handle(st, g, h, &q, func);
        }
        [dir, del, more @ ..] if eq(dir, "directory") && eq(del, "deletedItems") => {
            return deleted_items(st, g, h, m, &q, more, &call.body)
        }
        [groups, more @ ..] if eq(groups, "groups") => {
            return super::groups::route(st, g, m, &call.uri, more, &call.body)
        }
        [batch, ..] if eq(batch, "$batch") => {
            return g.bad_request("BadRequest", "Nested batch requests are not supported.")
        }
        _ => {}
    }
    let principal = caller.principal.clone();
    let t = st.tenant();
    let t = &*t;
    match segs.as_slice() {
        [] if get => g.ok(&json!({
            "@odata.context": format!("{}/v1.0/$metadata", g.base),
            "value": [
                {"name": "users", "kind": "EntitySet", "url": "users"},
                {"name": "domains", "kind": "EntitySet", "url": "domains"},
                {"name": "groups", "kind": "EntitySet", "url": "groups"},
                {"name": "organization", "kind": "EntitySet", "url": "organization"},
                {"name": "me", "kind": "Singleton", "url": "me"},
            ]
        })),
        [] => g.method_not_allowed(),
        [users] if users.eq_ignore_ascii_case("users") => {
            if get {
                list_users(t, g, h, &q)
            } else if m == Method::POST {
                g.not_implemented(m, path)
            } else {
                g.method_not_allowed()
            }
        }
        [users, count] if users.eq_ignore_ascii_case("users") && *count == "$count" => {
            if !get {
                return g.method_not_allowed();
            }
            count_users(t, g, h, &q)
        }
        [users, id] if users.eq_ignore_ascii_case("users") => {
            if get {
                match t.user(id) {
                    Some(u) => one_user(g, u, &q),
                    None => g.not_found(id),
                }
            } else if m == Method::PATCH || m == Method::DELETE {
                g.not_implemented(m, path)
            } else {
                g.method_not_allowed()
            }
        }
        [users, id, nav]
            if users.eq_ignore_ascii_case("users") && eq(nav, "licenseDetails") && get =>
        {
            match t.user(id) {
                Some(u) => super::licences::license_details(t, g, u),
                None => g.not_found(id),
            }
        }
        [users, id, nav] if users.eq_ignore_ascii_case("users") && eq(nav, "manager") && get => {
            match t.user(id) {
                Some(u) => get_manager(t, g, u, &q),
                None => g.not_found(id),
            }
        }
        [users, id, nav, ..] if users.eq_ignore_ascii_case("users") => {
            if t.user(id).is_none() {
                return g.not_found(id);
            }
            user_nav(g, m, path, nav)
        }
        [me, more @ ..] if me.eq_ignore_ascii_case("me") => {
            let Principal::User { id } = principal else {
                return g.bad_request(
                    "BadRequest",
                    "/me request is only valid with delegated authentication flow.",
                );
            };
            let Some(u) = t.user(&id).or((t.admin.id == id).then_some(&t.admin)) else {
                return g.not_found(&id);
            };
            match more {
                [] if get => one_user(g, u, &q),
                [] => g.method_not_allowed(),
                [nav] if get && eq(nav, "manager") => get_manager(t, g, u, &q),
                [nav, ..] => user_nav(g, m, path, nav),
            }
        }
        [domains] if domains.eq_ignore_ascii_case("domains") => {
            if get {
                g.ok(&json!({
                    "@odata.context": format!("{}/v1.0/$metadata#domains", g.base),
                    "value": t.domains,
                }))
            } else if m == Method::POST {
                g.not_implemented(m, path)
            } else {
                g.method_not_allowed()
            }
        }
        [domains, id] if domains.eq_ignore_ascii_case("domains") => {
            let Some(d) = t
                .domains
                .iter()
                .find(|d| d["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)))
            else {
                return g.not_found(id);
            };
            if get {
                let mut d = d.clone();
                if let Some(o) = d.as_object_mut() {
                    let mut with_ctx = serde_json::Map::new();
                    with_ctx.insert(
                        "@odata.context".into(),
                        json!(format!("{}/v1.0/$metadata#domains/$entity", g.base)),
                    );
                    with_ctx.extend(o.clone());
                    *o = with_ctx;
                }
                g.ok(&d)
            } else if m == Method::PATCH || m == Method::DELETE {
                g.not_implemented(m, path)
            } else {
                g.method_not_allowed()
            }
        }
        [org] if org.eq_ignore_ascii_case("organization") => {
            if !get {
                return g.method_not_allowed();
            }
            g.ok(&organization(t, g))
        }
        [first, ..]
            if [
                "directory",
                "directoryObjects",
                "applications",
                "servicePrincipals",
                "directoryRoles",
                "invitations",
            ]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(first)) =>
        {
            g.not_implemented(m, path)
        }
        [first, ..] => g.segment_not_found(first),
    }
}

/// `action` or its qualified form `microsoft.graph.{action}`.
fn is_action(seg: &str, action: &str) -> bool {
    seg.eq_ignore_ascii_case(action)
        || seg
            .strip_prefix("microsoft.graph.")
            .is_some_and(|s| s.eq_ignore_ascii_case(action))
}

/// `GET /users/{id}/manager`: the manager as a directoryObject (`@odata.type`), default or
/// selected properties; 404 with Graph's text when there is none (graph-notes §17).
fn get_manager(t: &Tenant, g: &GCtx, u: &User, q: &Query) -> Response {
    let Some(mgr) = writes::manager_of(t, u) else {
        return g.error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            writes::MANAGER_MISSING,
        );
    };
    let props = match selection(g, q) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"@odata.context\":");
    let ctx = format!("{}/v1.0/$metadata#directoryObjects/$entity", g.base);
    let _ = serde_json::to_writer(&mut out, &ctx);
    out.extend_from_slice(b",\"@odata.type\":\"#microsoft.graph.user\",");
    let mut obj = Vec::with_capacity(1024);
    write_user(&mut obj, mgr, props.as_deref().unwrap_or(DEFAULT_PROPS));
    out.extend_from_slice(&obj[1..]);
    g.raw(StatusCode::OK, out)
}

fn user_nav(g: &GCtx, m: &Method, path: &str, nav: &str) -> Response {
    const KNOWN: &[&str] = &[
        "memberOf",
        "transitiveMemberOf",
        "manager",
        "directReports",
        "ownedObjects",
        "licenseDetails",
        "photo",
        "assignLicense",
        "revokeSignInSessions",
        "authentication",
        "changePassword",
    ];
    if KNOWN.iter().any(|k| k.eq_ignore_ascii_case(nav)) {
        g.not_implemented(m, path)
    } else {
        g.segment_not_found(nav)
    }
}

fn organization(t: &Tenant, g: &GCtx) -> serde_json::Value {
    let verified: Vec<serde_json::Value> = t
        .domains
        .iter()
        .filter(|d| d["isVerified"] == true)
        .map(|d| {
            json!({
                "capabilities": d["supportedServices"].as_array().map(|a| a.iter().filter_map(|s| s.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default(),
                "isDefault": d["isDefault"],
                "isInitial": d["isInitial"],
                "name": d["id"],
                "type": d["authenticationType"],
            })
        })
        .collect();
    json!({
        "@odata.context": format!("{}/v1.0/$metadata#organization", g.base),
        "value": [{
            "id": t.id,
            "deletedDateTime": null,
            "displayName": t.display_name,
            "countryLetterCode": t.country,
            "createdDateTime": t.created,
            "tenantType": "AAD",
            "onPremisesSyncEnabled": null,
            "preferredLanguage": "en",
            "verifiedDomains": verified,
        }]
    })
}

/// Parses `$select`; `None` = the default property set.
pub(super) fn selection(g: &GCtx, q: &Query) -> Result<Option<Vec<Prop>>, Box<Response>> {
    match q.get("select").filter(|s| !s.trim().is_empty()) {
        None => Ok(None),
        Some(sel) => parse_select(g, sel).map(Some),
    }
}

/// The properties of a `$select` value, each once, in the order given.
pub(super) fn parse_select(g: &GCtx, sel: &str) -> Result<Vec<Prop>, Box<Response>> {
    let mut props = Vec::new();
    for name in sel.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some(p) = Prop::parse(name) else {
            return Err(Box::new(g.bad_request(
                "BadRequest",
                &format!(
                    "Could not find a property named '{name}' on type 'microsoft.graph.user'."
                ),
            )));
        };
        if !props.contains(&p) {
            props.push(p);
        }
    }
    Ok(props)
}

pub(super) fn projection(props: &Option<Vec<Prop>>) -> String {
    match props {
        None => String::new(),
        Some(p) => format!(
            "({})",
            p.iter().map(|p| p.name()).collect::<Vec<_>>().join(",")
        ),
    }
}

fn one_user(g: &GCtx, u: &User, q: &Query) -> Response {
    let props = match selection(g, q) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"@odata.context\":");
    let ctx = format!(
        "{}/v1.0/$metadata#users{}/$entity",
        g.base,
        projection(&props)
    );
    let _ = serde_json::to_writer(&mut out, &ctx);
    out.push(b',');
    let mut obj = Vec::with_capacity(1024);
    write_user(&mut obj, u, props.as_deref().unwrap_or(DEFAULT_PROPS));
    out.extend_from_slice(&obj[1..]);
    g.raw(StatusCode::OK, out)
}

/// The matching users in answer order.
enum Matches<'a> {
    All,
    Sorted(Vec<u32>),
    /// A prebuilt index, read forwards or backwards: no per-request copy.
    Index(&'a [u32], bool),
}

impl Matches<'_> {
    fn len(&self, t: &Tenant) -> usize {
        match self {
            Matches::All => t.users.len(),
            Matches::Sorted(v) => v.len(),
            Matches::Index(v, _) => v.len(),
        }
    }
    fn get(&self, pos: usize) -> usize {
        match self {
            Matches::All => pos,
            Matches::Sorted(v) => v[pos] as usize,
            Matches::Index(v, false) => v[pos] as usize,
            Matches::Index(v, true) => v[v.len() - 1 - pos] as usize,
        }
    }
}

fn matching_users<'t>(
    t: &'t Tenant,
    g: &GCtx,
    headers: &HeaderMap,
    q: &Query,
) -> Result<(Matches<'t>, bool), Box<Response>> {
    let adv = advanced(headers, q);
    let filter = parse_filter(g, headers, q)?;
    let search = match q.get("search").filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(s) => {
            if !header_str(headers, "consistencylevel")
                .is_some_and(|v| v.eq_ignore_ascii_case("eventual"))
            {
                return Err(Box::new(g.bad_request(
                    "Request_BadRequest",
                    "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
                )));
            }
            match filter::parse_search(s) {
                Ok(s) => Some(s),
                Err(msg) => return Err(Box::new(g.bad_request("Request_UnsupportedQuery", &msg))),
            }
        }
    };
    let order = match q.get("orderby").filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(o) => {
            let mut words = o.split_whitespace();
            let prop = words.next().unwrap_or_default();
            let desc = words.next().is_some_and(|w| w.eq_ignore_ascii_case("desc"));
            let key = if prop.eq_ignore_ascii_case("displayName") {
                Prop::DisplayName
            } else if prop.eq_ignore_ascii_case("userPrincipalName") {
                Prop::UserPrincipalName
            } else {
                return Err(Box::new(g.bad_request(
                    "Request_UnsupportedQuery",
                    &format!("Sorting not supported for '{prop}'."),
                )));
            };
            if (filter.is_some() || search.is_some()) && !adv {
                return Err(Box::new(g.bad_request(
                    "Request_UnsupportedQuery",
                    "Sorting not supported for current query.",
                )));
            }
            Some((key, desc))
        }
    };
    let mut list = match (&filter, &search) {
        (None, None) => None,
        _ => {
            let mut v = match &filter {
                Some(f) => filter::evaluate(t, f),
                None => (0..t.users.len() as u32).collect(),
            };
            if let Some(s) = &search {
                v.retain(|&i| filter::search_matches(&t.users[i as usize], s));
            }
            Some(v)
        }
    };
    if let Some((key, desc)) = order {
        let sorted = if key == Prop::DisplayName {
            t.sorted_display()
        } else {
            t.sorted_upn()
        };
        let mut v = match list.take() {
            None => return Ok((Matches::Index(sorted, desc), adv)),
            Some(mut v) => {
                let lc = |i: &u32| {
                    let u = &t.users[*i as usize];
                    if key == Prop::DisplayName {
                        u.display_name.to_lowercase()
                    } else {
                        u.user_principal_name.to_lowercase()
                    }
                };
                v.sort_by_cached_key(lc);
                v
            }
        };
        if desc {
            v.reverse();
        }
        list = Some(v);
    }
    Ok((list.map_or(Matches::All, Matches::Sorted), adv))
}

/// Parses `$filter` (Graph's errors for bad syntax, unknown or unfilterable properties, and
/// advanced operators without `ConsistencyLevel: eventual` + `$count=true`).
fn parse_filter(g: &GCtx, headers: &HeaderMap, q: &Query) -> Result<Option<Filter>, Box<Response>> {
    let adv = advanced(headers, q);
    let filter = match q.get("filter").filter(|f| !f.trim().is_empty()) {
        None => None,
        Some(f) => match filter::parse(f) {
            Ok(f) => Some(f),
            Err(filter::FilterError::Syntax(msg)) => {
                return Err(Box::new(g.bad_request("BadRequest", &format!("Invalid filter clause: {msg}"))))
            }
            Err(filter::FilterError::UnknownProperty(p)) => {
                return Err(Box::new(g.bad_request(
                    "BadRequest",
                    &format!("Could not find a property named '{p}' on type 'microsoft.graph.user'."),
                )))
            }
            Err(filter::FilterError::Unsupported(p)) => {
                return Err(Box::new(g.bad_request(
                    "Request_UnsupportedQuery",
                    &format!("Unsupported or invalid query filter clause specified for property '{p}' of resource 'User'."),
                )))
            }
            // Graph's wording for a filter nested too deeply (its own bound is far lower,
            // graph-notes: "excessive height: 4. Max allowed: 3"); ours is only a stack guard,
            // so the height is not counted past it.
            Err(filter::FilterError::TooDeep) => {
                return Err(Box::new(g.bad_request(
                    "Request_UnsupportedQuery",
                    &format!(
                        "Search filter expression has excessive height: more than {max}. Max allowed: {max}.",
                        max = filter::MAX_DEPTH
                    ),
                )))
            }
        },
    };
    if let Some(f) = &filter {
        // Outside the advanced-query mode the directory takes at most 15 clauses joined by
        // `or` (an `in` list counts its values). Wire text seen in microsoft-graph-docs-contrib
        // #1238 (2023); the code is UNVERIFIED (Request_UnsupportedQuery, as for other
        // query limits).
        let wide = f.widest_or();
        if wide > MAX_OR_CLAUSES && !adv {
            return Err(Box::new(g.bad_request(
                "Request_UnsupportedQuery",
                &format!(
                    "Too many child clauses specified in search filter expression containing 'OR' operators: {wide}. Max allowed: {MAX_OR_CLAUSES}"
                ),
            )));
        }
        if let Some(op) = f.advanced_operator() {
            if !adv {
                return Err(Box::new(g.bad_request(
                    "Request_UnsupportedQuery",
                    &format!(
                        "Operator '{op}' is not supported because the required parameters might be missing. Try adding \
                         $count=true query parameter and ConsistencyLevel:eventual header. Refer to \
                         https://aka.ms/graph-docs/advanced-queries for more information"
                    ),
                )));
            }
        }
    }
    Ok(filter)
}

fn count_users(t: &Tenant, g: &GCtx, headers: &HeaderMap, q: &Query) -> Response {
    if !header_str(headers, "consistencylevel").is_some_and(|v| v.eq_ignore_ascii_case("eventual"))
    {
        return g.bad_request("Request_BadRequest", "$count is not currently supported.");
    }
    // /users/$count implies the advanced-query mode.
    let mut pairs = q.pairs.clone();
    pairs.push(("$count".into(), "true".into()));
    let q2 = Query { pairs };
    let n = match matching_users(t, g, headers, &q2) {
        Ok((m, _)) => m.len(t),
        Err(r) => return *r,
    };
    let mut resp = (StatusCode::OK, n.to_string()).into_response();
    g.headers(&mut resp, "text/plain");
    resp
}

fn list_users(t: &Tenant, g: &GCtx, headers: &HeaderMap, q: &Query) -> Response {
    let top = match q.get("top") {
        None => 100,
        Some(raw) => match raw.trim().parse::<usize>() {
            Ok(n) if (1..=999).contains(&n) => n,
            _ => {
                return g.bad_request(
                    "Request_UnsupportedQuery",
                    &format!(
                    "Invalid page size specified: '{raw}'. Must be between 1 and 999 inclusive."
                ),
                )
            }
        },
    };
    let props = match selection(g, q) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let skiptoken = q.get("skiptoken");
    let offset = match skiptoken {
        None => 0,
        Some(tok) => match decode_skiptoken(tok) {
            Some(o) => o,
            None => {
                return g.bad_request(
                    "Directory_ExpiredPageToken",
                    "The specified page token value has expired and can no longer be included in your request.",
                )
            }
        },
    };
    let (matches, adv) = match matching_users(t, g, headers, q) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    let total = matches.len(t);
    let start = offset.min(total);
    let end = (start + top).min(total);
    let fields = props.as_deref().unwrap_or(DEFAULT_PROPS);
    let mut out = Vec::with_capacity(256 + (end - start) * 64 * fields.len());
    out.extend_from_slice(b"{\"@odata.context\":");
    let ctx = format!("{}/v1.0/$metadata#users{}", g.base, projection(&props));
    let _ = serde_json::to_writer(&mut out, &ctx);
    if adv && skiptoken.is_none() {
        out.extend_from_slice(format!(",\"@odata.count\":{total}").as_bytes());
    }
    if end < total {
        let next = format!(
            "{}/v1.0/users?{}$skiptoken={}",
            g.base,
            q.without_skiptoken(),
            encode_skiptoken(end)
        );
        out.extend_from_slice(b",\"@odata.nextLink\":");
        let _ = serde_json::to_writer(&mut out, &next);
    }
    out.extend_from_slice(b",\"value\":[");
    for (n, pos) in (start..end).enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write_user(&mut out, &t.users[matches.get(pos)], fields);
    }
    out.extend_from_slice(b"]}");
    g.raw(StatusCode::OK, out)
}

/// The Graph-shaped throttling/unavailable answers used by faults.
pub fn fault_response(
    st: &State,
    headers: &HeaderMap,
    uri: &Uri,
    status: StatusCode,
    retry_after: Option<u64>,
) -> Response {
    let g = GCtx::new(st, headers, uri);
    let mut resp = if status == StatusCode::TOO_MANY_REQUESTS {
        g.error(status, "TooManyRequests", "Too many requests.")
    } else {
        g.error(
            status,
            "serviceNotAvailable",
            "The service is temporarily unavailable. Please retry later.",
        )
    };
    if let Some(s) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, hv(&s.to_string()));
    }
    resp
}

impl Filter {
    /// The first operator that needs the advanced-query mode, if any.
    pub fn advanced_operator(&self) -> Option<&'static str> {
        match self {
            Filter::Not(_) => Some("not"),
            Filter::Cmp { negate: true, .. } => Some("ne"),
            Filter::EndsWith(..) => Some("endsWith"),
            Filter::And(all) | Filter::Or(all) => all.iter().find_map(Filter::advanced_operator),
            _ => None,
        }
    }
}

/// `/directory/deletedItems[...]`: the OData cast is mandatory for listing (graph-notes §2).
fn deleted_items(
    st: &State,
    g: &GCtx,
    headers: &HeaderMap,
    m: &Method,
    q: &Query,
    more: &[&str],
    body: &[u8],
) -> Response {
    let cast = |s: &str| s.to_ascii_lowercase().starts_with("microsoft.graph.");
    match more {
        // UNVERIFIED text: the notes only say the bare collection is unsupported.
        [] if *m == Method::GET => g.bad_request(
            "Request_BadRequest",
            "The OData type cast is required to list deleted items: use \
             /directory/deletedItems/microsoft.graph.user (or microsoft.graph.group, \
             microsoft.graph.application, microsoft.graph.servicePrincipal).",
        ),
        [] => g.method_not_allowed(),
        [c] if cast(c) => {
            if *m != Method::GET {
                return g.method_not_allowed();
            }
            if c.eq_ignore_ascii_case("microsoft.graph.user") {
                list_deleted_users(st, g, headers, q)
            } else if [
                "microsoft.graph.group",
                "microsoft.graph.application",
                "microsoft.graph.servicePrincipal",
                "microsoft.graph.administrativeUnit",
            ]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(c))
            {
                g.ok(&json!({
                    "@odata.context": format!("{}/v1.0/$metadata#directoryObjects", g.base),
                    "value": [],
                }))
            } else {
                g.bad_request(
                    "BadRequest",
                    &format!("Resource not found for the segment '{c}'."),
                )
            }
        }
        [id] => match *m {
            Method::GET => writes::get_deleted(st, g, id),
            Method::DELETE => writes::purge(st, g, id),
            _ => g.method_not_allowed(),
        },
        [id, action]
            if action.eq_ignore_ascii_case("restore")
                || action.eq_ignore_ascii_case("microsoft.graph.restore") =>
        {
            if *m != Method::POST {
                return g.method_not_allowed();
            }
            writes::restore(st, g, id, body)
        }
        [_, seg, ..] => g.segment_not_found(seg),
    }
}

/// `GET /directory/deletedItems/microsoft.graph.user`: paged like /users (default 100, `$top`
/// 1..=999, `$skiptoken`), `$filter` as on /users (e.g. `userPrincipalName eq '...'`), `$count`
/// with `ConsistencyLevel: eventual`; each item with `@odata.type` and `deletedDateTime`.
fn list_deleted_users(st: &State, g: &GCtx, headers: &HeaderMap, q: &Query) -> Response {
    let top = match q.get("top") {
        None => 100,
        Some(raw) => match raw.trim().parse::<usize>() {
            Ok(n) if (1..=999).contains(&n) => n,
            _ => {
                return g.bad_request(
                    "Request_UnsupportedQuery",
                    &format!(
                        "Invalid page size specified: '{raw}'. Must be between 1 and 999 inclusive."
                    ),
                )
            }
        },
    };
    let props = match selection(g, q) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let skiptoken = q.get("skiptoken");
    let offset = match skiptoken {
        None => 0,
        Some(tok) => match decode_skiptoken(tok) {
            Some(o) => o,
            None => {
                return g.bad_request(
                    "Directory_ExpiredPageToken",
                    "The specified page token value has expired and can no longer be included in your request.",
                )
            }
        },
    };
    let mut fields = props.clone().unwrap_or_else(|| DEFAULT_PROPS.to_vec());
    if !fields.contains(&Prop::DeletedDateTime) {
        fields.push(Prop::DeletedDateTime);
    }
    let filter = match parse_filter(g, headers, q) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let t = st.tenant();
    let matching: Vec<&User> = t
        .deleted
        .iter()
        .filter(|u| filter.as_ref().is_none_or(|f| filter::matches(u, f)))
        .collect();
    let total = matching.len();
    let start = offset.min(total);
    let end = (start + top).min(total);
    let mut out = Vec::with_capacity(256 + (end - start) * 512);
    out.extend_from_slice(b"{\"@odata.context\":");
    let ctx = format!(
        "{}/v1.0/$metadata#directory/deletedItems/microsoft.graph.user{}",
        g.base,
        projection(&props)
    );
    let _ = serde_json::to_writer(&mut out, &ctx);
    if advanced(headers, q) && skiptoken.is_none() {
        out.extend_from_slice(format!(",\"@odata.count\":{total}").as_bytes());
    }
    if end < total {
        let next = format!(
            "{}/v1.0/directory/deletedItems/microsoft.graph.user?{}$skiptoken={}",
            g.base,
            q.without_skiptoken(),
            encode_skiptoken(end)
        );
        out.extend_from_slice(b",\"@odata.nextLink\":");
        let _ = serde_json::to_writer(&mut out, &next);
    }
    out.extend_from_slice(b",\"value\":[");
    for (n, u) in matching[start..end].iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"@odata.type\":\"#microsoft.graph.user\",");
        let mut obj = Vec::new();
        write_user(&mut obj, u, &fields);
        out.extend_from_slice(&obj[1..]);
    }
    out.extend_from_slice(b"]}");
    g.raw(StatusCode::OK, out)
}
