//! The Microsoft identity platform side: discovery, device code, token, /devicelogin.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::{Request, State as AxState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Value};

use super::state::{AccessGrant, DeviceFlow, FlowStatus, Principal, RefreshGrant, State};
use super::tenant::User;
use super::util::{self, form_get, header_str, hv};

const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
const DEVICE_CODE_URN: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// What the console needs, granted to app tokens (`roles`) and consented for delegated `.default`.
const APP_ROLES: &[&str] = &[
    "User.ReadWrite.All",
    "Group.ReadWrite.All",
    "GroupMember.ReadWrite.All",
    "Domain.Read.All",
    "Directory.Read.All",
    "User.EnableDisableAccount.All",
];

/// Per-request facts the identity answers need.
pub struct Ctx {
    pub base: String,
    pub client_request_id: Option<String>,
    pub trace_id: String,
}

impl Ctx {
    pub fn new(st: &State, headers: &HeaderMap, uri: &axum::http::Uri) -> Ctx {
        let client_request_id = header_str(headers, "client-request-id")
            .map(str::to_owned)
            .or_else(|| {
                uri.query().and_then(|q| {
                    util::parse_form(q)
                        .into_iter()
                        .find(|(k, _)| k == "client-request-id")
                        .map(|(_, v)| v)
                })
            });
        Ctx {
            base: util::base_url(headers, uri, st.tls, &st.local_host),
            client_request_id,
            trace_id: util::new_guid(),
        }
    }

    fn json(&self, status: StatusCode, body: &Value) -> Response {
        let mut resp = (status, body.to_string()).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, hv("application/json; charset=utf-8"));
        h.insert(header::CACHE_CONTROL, hv("no-store, no-cache"));
        h.insert(header::PRAGMA, hv("no-cache"));
        h.insert("x-ms-request-id", hv(&self.trace_id));
        if let Some(c) = &self.client_request_id {
            h.insert("client-request-id", hv(c));
        }
        resp
    }

    /// Microsoft's token-endpoint error body.
    pub fn error(
        &self,
        status: StatusCode,
        error: &str,
        code: Option<u32>,
        text: &str,
    ) -> Response {
        let ts = util::aad_timestamp();
        let correlation = self
            .client_request_id
            .clone()
            .unwrap_or_else(util::new_guid);
        let prefix = code.map(|c| format!("AADSTS{c}: ")).unwrap_or_default();
        let desc = format!(
            "{prefix}{text}\r\nTrace ID: {}\r\nCorrelation ID: {correlation}\r\nTimestamp: {ts}",
            self.trace_id
        );
        let mut body = json!({
            "error": error,
            "error_description": desc,
            "error_codes": code.map(|c| vec![c]).unwrap_or_default(),
            "timestamp": ts,
            "trace_id": self.trace_id,
            "correlation_id": correlation,
        });
        if let Some(c) = code {
            body["error_uri"] = json!(format!("{}/error?code={c}", self.base));
        }
        self.json(status, &body)
    }

    fn tenant_not_found(&self, error: &str, tenant: &str) -> Response {
        self.error(
            StatusCode::BAD_REQUEST,
            error,
            Some(90002),
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are \
                 signing into the correct cloud. Check with your subscription administrator, this may \
                 happen if there are no active subscriptions for the tenant."
            ),
        )
    }

    fn missing(&self, param: &str) -> Response {
        self.error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some(900144),
            &format!("The request body must contain the following parameter: '{param}'."),
        )
    }
}

fn tenant_segment(path: &str) -> &str {
    path.trim_start_matches('/').split('/').next().unwrap_or("")
}

/// The segment used in advertised URLs: the GUID for a named tenant, or the alias as given.
fn advertised_tenant(st: &State, seg: &str) -> String {
    let s = seg.to_ascii_lowercase();
    if s == "organizations" || s == "common" {
        s
    } else {
        st.fixed.id.clone()
    }
}

pub async fn openid_configuration(AxState(st): AxState<Arc<State>>, req: Request) -> Response {
    let ctx = Ctx::new(&st, req.headers(), req.uri());
    let seg = tenant_segment(req.uri().path()).to_owned();
    if !st.fixed.is_addressed_by(&seg) {
        return ctx.tenant_not_found("invalid_tenant", &seg);
    }
    let t = advertised_tenant(&st, &seg);
    let b = &ctx.base;
    let issuer_tenant = if t == st.fixed.id {
        t.clone()
    } else {
        "{tenantid}".to_owned()
    };
    let host = b.split("://").nth(1).unwrap_or_default();
    let body = json!({
        "token_endpoint": format!("{b}/{t}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{b}/{t}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{b}/{issuer_tenant}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{b}/oidc/userinfo"),
        "authorization_endpoint": format!("{b}/{t}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{b}/{t}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{b}/{t}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
            "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid",
            "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": format!("{b}/{t}/kerberos"),
        "tenant_region_scope": st.fixed.country.clone().replace("US", "NA").replace("GB", "EU"),
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": host,
        "rbac_url": "https://pas.windows.net",
    });
    ctx.json(StatusCode::OK, &body)
}

pub async fn jwks(AxState(st): AxState<Arc<State>>, req: Request) -> Response {
    let ctx = Ctx::new(&st, req.headers(), req.uri());
    ctx.json(StatusCode::OK, &json!({ "keys": [] }))
}

/// MSAL's instance discovery. MSAL drops the port from the `authorization_endpoint` it sends,
/// so the tenant discovery endpoint is rebuilt from this request's Host.
pub async fn instance_discovery(AxState(st): AxState<Arc<State>>, req: Request) -> Response {
    let ctx = Ctx::new(&st, req.headers(), req.uri());
    let q = util::parse_form(req.uri().query().unwrap_or(""));
    let Some(auth_ep) = form_get(&q, "authorization_endpoint") else {
        return ctx.error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some(90014),
            "The required field 'authorization_endpoint' is missing from the credential. Ensure that you have all the necessary parameters for the login request.",
        );
    };
    let tenant = url::Url::parse(auth_ep)
        .ok()
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next().map(str::to_owned))
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "common".into());
    let host = ctx.base.split("://").nth(1).unwrap_or_default().to_owned();
    let bare = host
        .rsplit_once(':')
        .map(|(h, _)| h.to_owned())
        .unwrap_or(host.clone());
    let body = json!({
        "tenant_discovery_endpoint": format!("{}/{tenant}/v2.0/.well-known/openid-configuration", ctx.base),
        "api-version": "1.1",
        "metadata": [{
            "preferred_network": host,
            "preferred_cache": host,
            "aliases": [host, bare],
        }],
    });
    ctx.json(StatusCode::OK, &body)
}

/// GET on a POST-only endpoint.
pub async fn post_only(AxState(st): AxState<Arc<State>>, req: Request) -> Response {
    let ctx = Ctx::new(&st, req.headers(), req.uri());
    ctx.error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some(900561),
        &format!(
            "The endpoint only accepts POST, OPTIONS requests. Received a {} request.",
            req.method()
        ),
    )
}

async fn read_form(req: Request) -> (Vec<(String, String)>, HeaderMap) {
    let (parts, body) = req.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let mut form = util::parse_form(&String::from_utf8_lossy(&bytes));
    // msal-node puts client-request-id (and sometimes more) in the query string: body wins.
    for (k, v) in util::parse_form(parts.uri.query().unwrap_or("")) {
        if !form.iter().any(|(fk, _)| *fk == k) {
            form.push((k, v));
        }
    }
    (form, parts.headers)
}

fn app_not_found(ctx: &Ctx, st: &State, client_id: &str) -> Response {
    ctx.error(
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
        Some(700016),
        &format!(
            "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if \
             the application has not been installed by the administrator of the tenant or consented to by any \
             user in the tenant. You may have sent your authentication request to the wrong tenant.",
            st.fixed.display_name
        ),
    )
}

/// AADSTS65001: the app's permissions were never consented to in this tenant.
fn not_consented(ctx: &Ctx, app: &super::tenant::App) -> Response {
    ctx.error(
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        Some(65001),
        &format!(
            "The user or administrator has not consented to use the application with ID '{}' named '{}'. Send an \
             interactive authorization request for this user and resource.",
            app.client_id, app.display_name
        ),
    )
}

/// The application permissions an app token carries.
pub fn app_roles(app: &super::tenant::App) -> Vec<String> {
    app.permissions
        .clone()
        .unwrap_or_else(|| APP_ROLES.iter().map(|r| r.to_string()).collect())
}

/// Longest `scope` accepted: scopes are stored with device flows and refresh tokens, so a
/// megabyte of scope must not be. Entra's own bound is not documented; the code and text are
/// those of an invalid scope (AADSTS70011), the reason ours (UNVERIFIED).
const MAX_SCOPE_LEN: usize = 4096;

fn scope_too_long(ctx: &Ctx, scope: &str) -> Option<Response> {
    (scope.len() > MAX_SCOPE_LEN).then(|| {
        ctx.error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            Some(70011),
            &format!(
                "The provided value for the input parameter 'scope' is not valid. The scope is longer than {MAX_SCOPE_LEN} characters."
            ),
        )
    })
}

fn secret_required(ctx: &Ctx) -> Response {
    ctx.error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        Some(7000218),
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    )
}

pub async fn devicecode(AxState(st): AxState<Arc<State>>, req: Request) -> Response {
    let ctx = Ctx::new(&st, req.headers(), req.uri());
    let seg = tenant_segment(req.uri().path()).to_owned();
    let (form, _) = read_form(req).await;
    if !st.fixed.is_addressed_by(&seg) {
        return ctx.tenant_not_found("invalid_request", &seg);
    }
    let Some(client_id) = form_get(&form, "client_id").filter(|s| !s.is_empty()) else {
        return ctx.missing("client_id");
    };
    match st.fixed.app(client_id) {
        None => return app_not_found(&ctx, &st, client_id),
        Some(app) if !app.public_client => return secret_required(&ctx),
        Some(_) => {}
    }
    let Some(scope) = form_get(&form, "scope").filter(|s| !s.trim().is_empty()) else {
        return ctx.missing("scope");
    };
    if let Some(r) = scope_too_long(&ctx, scope) {
        return r;
    }
    let user_code = util::user_code();
    let device_code = format!("DAQABIQEAAAD{}", util::random_b64url(120));
    let lifetime = st.device_code_lifetime;
    st.auth().add_flow(
        device_code.clone(),
        DeviceFlow {
            user_code: user_code.clone(),
            client_id: client_id.to_owned(),
            scope: scope.to_owned(),
            expires: Instant::now() + lifetime,
            interval: st.device_code_interval,
            last_poll: None,
            status: FlowStatus::Pending,
        },
    );
    let verification_uri = format!("{}/devicelogin", ctx.base);
    let body = json!({
        "user_code": user_code,
        "device_code": device_code,
        "verification_uri": verification_uri,
        "expires_in": lifetime.as_secs(),
        "interval": st.device_code_interval,
        "message": format!(
            "To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."
        ),
    });
    ctx.json(StatusCode::OK, &body)
}

pub async fn token(AxState(st): AxState<Arc<State>>, req: Request) -> Response {
    let ctx = Ctx::new(&st, req.headers(), req.uri());
    let seg = tenant_segment(req.uri().path()).to_owned();
    let (form, headers) = read_form(req).await;
    if !st.fixed.is_addressed_by(&seg) {
        return ctx.tenant_not_found("invalid_request", &seg);
    }
    let Some(grant) = form_get(&form, "grant_type").filter(|s| !s.is_empty()) else {
        return ctx.missing("grant_type");
    };
    let basic = basic_credentials(&headers);
    let client_id = form_get(&form, "client_id")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()));
    let Some(client_id) = client_id else {
        return ctx.missing("client_id");
    };
    let Some(app) = st.fixed.app(&client_id).cloned() else {
        return app_not_found(&ctx, &st, &client_id);
    };
    match grant {
        DEVICE_CODE_URN | "device_code" => device_code_grant(&st, &ctx, &form, &client_id),
        "client_credentials" => {
            let secret = basic
                .map(|(_, s)| s)
                .or_else(|| form_get(&form, "client_secret").map(str::to_owned));
            client_credentials_grant(&st, &ctx, &form, &app, secret)
        }
        "refresh_token" => refresh_grant(&st, &ctx, &form, &client_id),
        "password" if st.password_grant => password_grant(&st, &ctx, &form, &app),
        other => ctx.error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            Some(70003),
            &format!("The app requested an unsupported grant type '{other}'."),
        ),
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = header_str(headers, "authorization")?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (id, secret) = raw.split_once(':')?;
    // RFC 6749 2.3.1: both parts are form-urlencoded before base64.
    Some((util::pct_decode(id), util::pct_decode(secret)))
}

fn device_code_grant(
    st: &State,
    ctx: &Ctx,
    form: &[(String, String)],
    client_id: &str,
) -> Response {
    let Some(dc) = form_get(form, "device_code").filter(|s| !s.is_empty()) else {
        return ctx.missing("device_code");
    };
    let bad_code = || {
        ctx.error(
            StatusCode::BAD_REQUEST,
            "bad_verification_code",
            Some(70018),
            "The provided value for the input parameter 'device_code' is not valid.",
        )
    };
    let now = Instant::now();
    let (user_id, scope) = {
        let mut auth = st.auth();
        let Some(flow) = auth.flows.get_mut(dc) else {
            return bad_code();
        };
        if !flow.client_id.eq_ignore_ascii_case(client_id) {
            return bad_code();
        }
        if now >= flow.expires && !matches!(flow.status, FlowStatus::Redeemed) {
            return ctx.error(
                StatusCode::BAD_REQUEST,
                "expired_token",
                Some(70019),
                "Verification code expired.",
            );
        }
        match flow.status.clone() {
            FlowStatus::Declined => {
                return ctx.error(
                    StatusCode::BAD_REQUEST,
                    "authorization_declined",
                    Some(65004),
                    "User declined to consent to access the app.",
                )
            }
            FlowStatus::Redeemed => {
                return ctx.error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    Some(54005),
                    "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
                )
            }
            FlowStatus::Pending => {
                let too_fast = flow.interval > 0
                    && flow.last_poll.is_some_and(|last| {
                        now.duration_since(last) + Duration::from_millis(250)
                            < Duration::from_secs(flow.interval)
                    });
                flow.last_poll = Some(now);
                if too_fast {
                    return ctx.error(
                        StatusCode::BAD_REQUEST,
                        "slow_down",
                        None,
                        &format!(
                            "The client is polling too frequently. Wait at least {} seconds between polls.",
                            flow.interval
                        ),
                    );
                }
                return ctx.error(
                    StatusCode::BAD_REQUEST,
                    "authorization_pending",
                    Some(70016),
                    "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                );
            }
            FlowStatus::Approved { .. }
                if st.fixed.app(client_id).is_some_and(|a| !a.admin_consent) =>
            {
                let app = st.fixed.app(client_id).cloned();
                return not_consented(ctx, app.as_ref().expect("checked above"));
            }
            FlowStatus::Approved { .. } if st.sign_in_policy.is_some() => {
                // The policy is evaluated at each redemption attempt; the flow stays approved.
                // The token endpoint reports both as `invalid_grant` (MSAL surfaces them as
                // "UI required"); `access_denied` is RFC 8628's "the user declined".
                return match st.sign_in_policy {
                    Some(super::SignInPolicy::RequireMfa) => ctx.error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        Some(50076),
                        &format!(
                            "Due to a configuration change made by your administrator, or because you moved to a \
                             new location, you must use multi-factor authentication to access '{GRAPH_APP_ID}'."
                        ),
                    ),
                    _ => ctx.error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        Some(53003),
                        "Access has been blocked by Conditional Access policies. The access policy does not allow \
                         token issuance.",
                    ),
                };
            }
            FlowStatus::Approved { user_id } => {
                flow.status = FlowStatus::Redeemed;
                (user_id, flow.scope.clone())
            }
        }
    };
    let found = st.tenant().user(&user_id).cloned();
    let Some(user) =
        found.or_else(|| (st.fixed.admin.id == user_id).then(|| st.fixed.admin.clone()))
    else {
        return bad_code();
    };
    delegated_response(st, ctx, client_id, &user, &scope)
}

/// Wrong passwords before Smart Lockout locks the account (Entra default 10), and for how long
/// (default 60 s).
const LOCKOUT_THRESHOLD: u32 = 10;
const LOCKOUT_DURATION: Duration = Duration::from_secs(60);

/// Resource owner password credentials (ROPC): `username` + `password` for a public client.
/// Graph-notes §9: AADSTS50034 (no such user here), AADSTS50126 (wrong password; a seeded user
/// has no password the simulator knows, so only users created with one can sign in),
/// AADSTS50053 (Smart Lockout after 10 failures, 60 s), AADSTS50055 (password must be changed
/// first), then the tenant's Conditional Access and the app's consent as for device code.
fn password_grant(
    st: &State,
    ctx: &Ctx,
    form: &[(String, String)],
    app: &super::tenant::App,
) -> Response {
    if !app.public_client {
        return secret_required(ctx);
    }
    let Some(username) = form_get(form, "username").filter(|s| !s.is_empty()) else {
        return ctx.missing("username");
    };
    let Some(password) = form_get(form, "password") else {
        return ctx.missing("password");
    };
    let Some(scope) = form_get(form, "scope").filter(|s| !s.trim().is_empty()) else {
        return ctx.missing("scope");
    };
    if let Some(r) = scope_too_long(ctx, scope) {
        return r;
    }
    let found = st.tenant().user(username).cloned();
    let user = found.or_else(|| {
        st.fixed
            .admin
            .user_principal_name
            .eq_ignore_ascii_case(username)
            .then(|| st.fixed.admin.clone())
    });
    let Some(user) = user else {
        return ctx.error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            Some(50034),
            &format!(
                "The user account {{EUII Hidden}} does not exist in the {} directory. To sign into this \
                 application, the account must be added to the directory.",
                st.fixed.id
            ),
        );
    };
    let key = user.id.to_ascii_lowercase();
    let now = Instant::now();
    let locked = || {
        ctx.error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            Some(50053),
            "The account is locked, you've tried to sign in too many times with an incorrect user ID or \
             password.",
        )
    };
    {
        let mut auth = st.auth();
        let entry = auth.failed_sign_ins.entry(key.clone()).or_default();
        if entry.1.is_some_and(|until| now < until) {
            return locked();
        }
        if user.password.as_deref() != Some(password) {
            entry.0 += 1;
            if entry.0 >= LOCKOUT_THRESHOLD {
                entry.0 = 0;
                entry.1 = Some(now + LOCKOUT_DURATION);
                return locked();
            }
            return ctx.error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                Some(50126),
                "Error validating credentials due to invalid username or password.",
            );
        }
        *entry = (0, None);
    }
    if user.force_change_password_next_sign_in {
        return ctx.error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            Some(50055),
            "The password is expired.",
        );
    }
    if !app.admin_consent {
        return not_consented(ctx, app);
    }
    match st.sign_in_policy {
        Some(super::SignInPolicy::RequireMfa) => ctx.error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            Some(50076),
            &format!(
                "Due to a configuration change made by your administrator, or because you moved to a new \
                 location, you must use multi-factor authentication to access '{GRAPH_APP_ID}'."
            ),
        ),
        Some(super::SignInPolicy::Block) => ctx.error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            Some(53003),
            "Access has been blocked by Conditional Access policies. The access policy does not allow \
             token issuance.",
        ),
        None => delegated_response(st, ctx, &app.client_id, &user, scope),
    }
}

fn scope_words(scope: &str) -> Vec<&str> {
    scope.split_whitespace().collect()
}

fn delegated_response(
    st: &State,
    ctx: &Ctx,
    client_id: &str,
    user: &User,
    scope: &str,
) -> Response {
    let words = scope_words(scope);
    let has = |w: &str| words.iter().any(|x| x.eq_ignore_ascii_case(w));
    let resource_scopes: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| {
            !["openid", "profile", "offline_access", "email"]
                .iter()
                .any(|r| r.eq_ignore_ascii_case(w))
        })
        .collect();
    let mut granted: Vec<String> = resource_scopes.iter().map(|s| s.to_string()).collect();
    if granted.is_empty() {
        granted.push("User.Read".into());
    }
    for r in ["openid", "profile", "email"] {
        if has(r) {
            granted.push(r.into());
        }
    }
    // The token carries the scopes asked for plus every delegated permission an admin has
    // consented to for the app (Entra puts all consented scopes of the resource in `scp`, not
    // only the requested ones); `.default` asks for exactly the consented set.
    let consented: Vec<String> = match st.fixed.app(client_id) {
        Some(app) if app.admin_consent => app_roles(app),
        _ => Vec::new(),
    };
    let mut scp: Vec<String> = Vec::new();
    for s in &resource_scopes {
        let short = s.rsplit('/').next().unwrap_or(s);
        if short == ".default" {
            scp.extend(consented.iter().cloned());
        } else {
            scp.push(short.to_owned());
        }
    }
    if scp.is_empty() {
        scp.push("User.Read".into());
    }
    for c in consented {
        if !scp.iter().any(|x| x.eq_ignore_ascii_case(&c)) {
            scp.push(c);
        }
    }
    let now = util::unix_now();
    let lifetime = st.token_lifetime.as_secs();
    let access_token = mint_access_token(
        st,
        json!({
            "aud": GRAPH_APP_ID,
            "iss": format!("https://sts.windows.net/{}/", st.fixed.id),
            "iat": now, "nbf": now, "exp": now + lifetime,
            "app_displayname": st.fixed.app(client_id).map(|a| a.display_name.clone()),
            "appid": client_id,
            "idtyp": "user",
            "name": user.display_name,
            "oid": user.id,
            "scp": scp.join(" "),
            "sub": util::random_b64url(32),
            "tid": st.fixed.id,
            "unique_name": user.user_principal_name,
            "upn": user.user_principal_name,
            "uti": util::random_b64url(16),
            "ver": "1.0",
        }),
        Principal::User {
            id: user.id.clone(),
        },
        scp,
    );
    let mut body = json!({
        "token_type": "Bearer",
        "scope": granted.join(" "),
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    });
    if has("offline_access") {
        let rt = format!("1.AQ{}", util::random_b64url(200));
        st.auth().add_refresh(
            rt.clone(),
            RefreshGrant {
                client_id: client_id.to_owned(),
                user_id: user.id.clone(),
                scope: scope.to_owned(),
                issued_ms: util::unique_now_ms(),
            },
        );
        body["refresh_token"] = json!(rt);
    }
    if has("openid") {
        let claims = json!({
            "aud": client_id,
            "iss": format!("{}/{}/v2.0", ctx.base, st.fixed.id),
            "iat": now, "nbf": now, "exp": now + 3600,
            "name": user.display_name,
            "oid": user.id,
            "preferred_username": user.user_principal_name,
            "sub": user.id.replace('-', ""),
            "tid": st.fixed.id,
            "ver": "2.0",
        });
        body["id_token"] = json!(util::jwt(
            &json!({"typ": "JWT", "alg": "none"}),
            &claims,
            ""
        ));
    }
    let client_info = json!({ "uid": user.id, "utid": st.fixed.id }).to_string();
    body["client_info"] = json!(util::b64url(client_info.as_bytes()));
    ctx.json(StatusCode::OK, &body)
}

fn mint_access_token(
    st: &State,
    claims: Value,
    principal: Principal,
    permissions: Vec<String>,
) -> String {
    let header = json!({
        "typ": "JWT",
        "nonce": util::random_b64url(32),
        "alg": "RS256",
        "x5t": "m365sync-sim",
        "kid": "m365sync-sim",
    });
    let token = util::jwt(&header, &claims, &util::random_b64url(64));
    let client_id = claims["appid"].as_str().unwrap_or_default().to_owned();
    st.auth().add_access(
        token.clone(),
        AccessGrant {
            expires: SystemTime::now() + st.token_lifetime,
            principal,
            client_id,
            permissions,
        },
    );
    token
}

fn client_credentials_grant(
    st: &State,
    ctx: &Ctx,
    form: &[(String, String)],
    app: &super::tenant::App,
    secret: Option<String>,
) -> Response {
    if app.public_client {
        return secret_required(ctx);
    }
    let Some(secret) = secret.filter(|s| !s.is_empty()) else {
        return secret_required(ctx);
    };
    if app.expired_secrets.contains(&secret) {
        return ctx.error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            Some(7000222),
            &format!(
                "The provided client secret keys for app '{}' are expired. Visit the Azure portal to create new \
                 keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for \
                 added security: https://aka.ms/certCreds.",
                app.client_id
            ),
        );
    }
    if !app.secrets.contains(&secret) {
        return ctx.error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            Some(7000215),
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret \
                 value, not the client secret ID, for a secret added to app '{}'.",
                app.client_id
            ),
        );
    }
    let Some(scope) = form_get(form, "scope").filter(|s| !s.trim().is_empty()) else {
        return ctx.missing("scope");
    };
    if let Some(r) = scope_too_long(ctx, scope) {
        return r;
    }
    let words = scope_words(scope);
    let resource = match words.as_slice() {
        [one] if one.ends_with("/.default") => one.trim_end_matches("/.default"),
        _ => {
            return ctx.error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                Some(1002012),
                &format!(
                    "The provided value for scope {scope} is not valid. Client credential flows must have a scope \
                     value with /.default suffixed to the resource identifier (application ID URI)."
                ),
            )
        }
    };
    let resource_ok = [
        "https://graph.microsoft.com",
        GRAPH_APP_ID,
        "https://graph.microsoft.com/",
    ]
    .iter()
    .any(|r| r.eq_ignore_ascii_case(resource));
    if !resource_ok {
        return ctx.error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            Some(500011),
            &format!(
                "The resource principal named {resource} was not found in the tenant named {}. This can happen if \
                 the application has not been installed by the administrator of the tenant or consented to by any \
                 user in the tenant. You might have sent your authentication request to the wrong tenant.",
                st.fixed.display_name
            ),
        );
    }
    let now = util::unix_now();
    let lifetime = st.token_lifetime.as_secs();
    let sp_id = service_principal_id(&app.client_id);
    let roles = if app.admin_consent {
        app_roles(app)
    } else {
        Vec::new()
    };
    let access_token = mint_access_token(
        st,
        json!({
            "aud": "https://graph.microsoft.com",
            "iss": format!("https://sts.windows.net/{}/", st.fixed.id),
            "iat": now, "nbf": now, "exp": now + lifetime,
            "app_displayname": app.display_name,
            "appid": app.client_id,
            "idtyp": "app",
            "oid": sp_id,
            // Without admin consent the identity platform still issues the token, with no roles.
            "roles": roles,
            "sub": sp_id,
            "tid": st.fixed.id,
            "uti": util::random_b64url(16),
            "ver": "1.0",
        }),
        Principal::App,
        roles,
    );
    ctx.json(
        StatusCode::OK,
        &json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access_token,
        }),
    )
}

/// A stable object id for an app's service principal.
fn service_principal_id(client_id: &str) -> String {
    let mut rng = util::SplitMix(
        client_id
            .bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)),
    );
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
    bytes[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// `2022-03-31T12:30:07.5130000Z` (7 fractional digits, as Entra writes instants).
fn iso_ms(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]0000Z"
    );
    t.format(&f).unwrap_or_default()
}

fn refresh_grant(st: &State, ctx: &Ctx, form: &[(String, String)], client_id: &str) -> Response {
    let Some(rt) = form_get(form, "refresh_token").filter(|s| !s.is_empty()) else {
        return ctx.missing("refresh_token");
    };
    let grant = {
        let mut auth = st.auth();
        if auth.spent_refresh.contains(rt) {
            return ctx.error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                Some(50173),
                "The provided grant has expired due to it being revoked, a fresh auth token is needed. The refresh \
                 token was already used and has been replaced by a newer one.",
            );
        }
        let Some(grant) = auth.refresh.get(rt).cloned() else {
            return ctx.error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                Some(9002313),
                "Invalid request. Request is malformed or invalid.",
            );
        };
        if !grant.client_id.eq_ignore_ascii_case(client_id) {
            return ctx.error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                Some(70000),
                "Provided grant is invalid or malformed.",
            );
        }
        auth.refresh.remove(rt);
        auth.spend_refresh(rt.to_owned());
        grant
    };
    let found = st.tenant().user(&grant.user_id).cloned();
    let Some(user) =
        found.or_else(|| (st.fixed.admin.id == grant.user_id).then(|| st.fixed.admin.clone()))
    else {
        return ctx.error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            Some(50173),
            "The provided grant has expired due to it being revoked, a fresh auth token is needed.",
        );
    };
    // Signed out everywhere (`revokeSignInSessions`) after this grant was issued (both stamps
    // come from one strictly increasing clock, so there is no tie). The text is AADSTS50173's
    // as widely quoted (UNVERIFIED in the notes, which cite only its first sentence).
    if let Some(valid_from) = user
        .ext
        .get()
        .sessions_valid_from_ms
        .filter(|v| grant.issued_ms <= *v)
    {
        return ctx.error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            Some(50173),
            &format!(
                "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user \
                 might have changed or reset their password. The grant was issued on '{}' and the TokensValidFrom \
                 date (before which tokens are not valid) for this user is '{}'.",
                iso_ms(grant.issued_ms),
                iso_ms(valid_from)
            ),
        );
    }
    // A refresh keeps offline access; the requested scope (if any) narrows the resource scopes.
    let mut scope = form_get(form, "scope")
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(&grant.scope)
        .to_owned();
    if let Some(r) = scope_too_long(ctx, &scope) {
        return r;
    }
    if !scope_words(&scope)
        .iter()
        .any(|w| w.eq_ignore_ascii_case("offline_access"))
    {
        scope.push_str(" offline_access");
    }
    delegated_response(st, ctx, client_id, &user, &scope)
}

const PAGE_STYLE: &str = "body{font-family:Segoe UI,Helvetica,Arial,sans-serif;max-width:28em;margin:4em auto;color:#1b1b1b}\
    input{font-size:1.4em;letter-spacing:.15em;padding:.3em;width:11em;text-transform:uppercase}\
    button{font-size:1em;padding:.5em 1.2em;margin:1em .5em 0 0}";

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>{PAGE_STYLE}</style>\
         </head><body><h1>{t}</h1>{body}</body></html>",
        t = util::html_escape(title)
    );
    let mut resp = (status, page).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, hv("text/html; charset=utf-8"));
    resp
}

pub async fn devicelogin_page(AxState(st): AxState<Arc<State>>) -> Response {
    html(
        StatusCode::OK,
        "Enter code",
        &format!(
            "<p>Enter the code displayed on your app or device to sign in to <b>{}</b> (simulated tenant). \
             You will be signed in as <b>{}</b>.</p>\
             <form method=\"post\" action=\"/devicelogin\"><input name=\"user_code\" autofocus autocomplete=\"off\" \
             maxlength=\"12\" placeholder=\"Code\"><br>\
             <button name=\"action\" value=\"approve\" type=\"submit\">Approve</button>\
             <button name=\"action\" value=\"decline\" type=\"submit\">Decline</button></form>",
            util::html_escape(&st.fixed.display_name),
            util::html_escape(&st.fixed.admin.user_principal_name)
        ),
    )
}

pub async fn devicelogin_submit(AxState(st): AxState<Arc<State>>, req: Request) -> Response {
    let (form, _) = read_form(req).await;
    let code = form_get(&form, "user_code").unwrap_or_default().to_owned();
    let approve = !form_get(&form, "action").is_some_and(|a| a.eq_ignore_ascii_case("decline"));
    match st.complete_device_flow(&code, approve) {
        Ok(()) if approve => html(
            StatusCode::OK,
            "You're signed in",
            &format!(
                "<p>You have signed in as <b>{}</b> on your device. You may now close this window.</p>",
                util::html_escape(&st.fixed.admin.user_principal_name)
            ),
        ),
        Ok(()) => html(
            StatusCode::OK,
            "Sign-in declined",
            "<p>You declined the sign-in request. You may now close this window.</p>",
        ),
        Err(why) => html(
            StatusCode::BAD_REQUEST,
            "Enter code",
            &format!(
                "<p>{}</p><p><a href=\"/devicelogin\">Try again</a></p>",
                util::html_escape(why)
            ),
        ),
    }
}

/// The body a `SlowDown` fault answers with (any route).
pub fn slow_down_fault(st: &State, headers: &HeaderMap, uri: &axum::http::Uri) -> Response {
    Ctx::new(st, headers, uri).error(
        StatusCode::BAD_REQUEST,
        "slow_down",
        None,
        "The client is polling too frequently. Slow down.",
    )
}

/// 429/503 on identity routes: an OAuth `temporarily_unavailable` body.
pub fn unavailable_fault(
    st: &State,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    status: StatusCode,
    retry_after: Option<u64>,
) -> Response {
    let mut resp = Ctx::new(st, headers, uri).error(
        status,
        "temporarily_unavailable",
        Some(90033),
        "A transient error has occurred. Please try again.",
    );
    if let Some(s) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, hv(&s.to_string()));
    }
    resp
}
