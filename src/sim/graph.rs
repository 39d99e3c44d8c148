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

const JSON_CT: &str =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";
const SKIPTOKEN_PREFIX: &str = "RFNwdAIAAQAAA";

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

    /// The Graph error envelope.
    pub fn error(&self, status: StatusCode, code: &str, message: &str) -> Response {
        let body = json!({
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

    fn bad_request(&self, code: &str, message: &str) -> Response {
        self.error(StatusCode::BAD_REQUEST, code, message)
    }

    fn not_found(&self, id: &str) -> Response {
        self.error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
        )
    }

    fn method_not_allowed(&self) -> Response {
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

    fn segment_not_found(&self, seg: &str) -> Response {
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
fn check_bearer(st: &State, headers: &HeaderMap) -> Result<Principal, &'static str> {
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
        return Ok(grant.principal.clone());
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
struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    fn parse(uri: &Uri) -> Query {
        Query {
            pairs: util::parse_form(uri.query().unwrap_or("")),
        }
    }
    fn get(&self, name: &str) -> Option<&str> {
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

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn encode_skiptoken(offset: usize) -> String {
    format!(
        "{SKIPTOKEN_PREFIX}{}",
        util::b64url(format!("o={offset}").as_bytes())
    )
}

fn decode_skiptoken(tok: &str) -> Option<usize> {
    let rest = tok.strip_prefix(SKIPTOKEN_PREFIX)?;
    let raw = String::from_utf8(util::b64url_decode(rest)?).ok()?;
    raw.strip_prefix("o=")?.parse().ok()
}

fn advanced(headers: &HeaderMap, q: &Query) -> bool {
    header_str(headers, "consistencylevel").is_some_and(|v| v.eq_ignore_ascii_case("eventual"))
        && q.get("count")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

pub async fn graph(AxState(st): AxState<Arc<State>>, req: Request) -> Response {
    let (parts, _body) = req.into_parts();
    let g = GCtx::new(&st, &parts.headers, &parts.uri);
    let principal = match check_bearer(&st, &parts.headers) {
        Ok(p) => p,
        Err(msg) => return g.error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", msg),
    };
    let path = parts.uri.path();
    let rest = path.strip_prefix("/v1.0").unwrap_or(path);
    let segs: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(util::pct_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = &parts.method;
    let get = m == Method::GET;
    let q = Query::parse(&parts.uri);
    let h = &parts.headers;
    let t = &st.tenant;
    match segs.as_slice() {
        [] if get => g.ok(&json!({
            "@odata.context": format!("{}/v1.0/$metadata", g.base),
            "value": [
                {"name": "users", "kind": "EntitySet", "url": "users"},
                {"name": "domains", "kind": "EntitySet", "url": "domains"},
                {"name": "organization", "kind": "EntitySet", "url": "organization"},
                {"name": "me", "kind": "Singleton", "url": "me"},
            ]
        })),
        [] => g.method_not_allowed(),
        [users] if users.eq_ignore_ascii_case("users") => {
            if get {
                list_users(t, &g, h, &q)
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
            count_users(t, &g, h, &q)
        }
        [users, id] if users.eq_ignore_ascii_case("users") => {
            if get {
                match t.user(id) {
                    Some(u) => one_user(&g, u, &q),
                    None => g.not_found(id),
                }
            } else if m == Method::PATCH || m == Method::DELETE {
                g.not_implemented(m, path)
            } else {
                g.method_not_allowed()
            }
        }
        [users, id, nav, ..] if users.eq_ignore_ascii_case("users") => {
            if t.user(id).is_none() {
                return g.not_found(id);
            }
            user_nav(&g, m, path, nav)
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
                [] if get => one_user(&g, u, &q),
                [] => g.method_not_allowed(),
                [nav, ..] => user_nav(&g, m, path, nav),
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
            g.ok(&organization(t, &g))
        }
        [first, ..]
            if [
                "groups",
                "$batch",
                "directory",
                "directoryObjects",
                "applications",
                "servicePrincipals",
                "subscribedSkus",
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
fn selection(g: &GCtx, q: &Query) -> Result<Option<Vec<Prop>>, Box<Response>> {
    let Some(sel) = q.get("select").filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
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
    Ok(Some(props))
}

fn projection(props: &Option<Vec<Prop>>) -> String {
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
        },
    };
    if let Some(f) = &filter {
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
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.advanced_operator().or_else(|| b.advanced_operator())
            }
            _ => None,
        }
    }
}
