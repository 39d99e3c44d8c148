//! Sign-in with Microsoft's identity platform: OpenID discovery, device code, client
//! credentials, refresh; the per-tenant token cache (mode 0600).
//!
//! The OAuth exchanges go through the `oauth2` crate (see `oauth.rs` for the glue to our
//! reqwest client and Microsoft's extra fields); discovery and the token cache are ours.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use oauth2::{
    ClientId, ClientSecret, DeviceAuthorizationUrl, RefreshToken, Scope, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};

mod cache;
pub mod jwt;
pub mod oauth;
mod session;
pub use session::REFRESH_MARGIN_SECS;

use oauth::{Capture, MsClient, MsDeviceFields, MsErrorResponse, MsTokenResponse};

/// Delegated Graph permissions m365sync asks for in device-code sign-in.
pub const DELEGATED_SCOPES: &[&str] = &[
    "https://graph.microsoft.com/User.ReadWrite.All",
    "https://graph.microsoft.com/Domain.Read.All",
    "offline_access",
    "openid",
    "profile",
];
pub const APP_SCOPE: &str = "https://graph.microsoft.com/.default";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("sign-in was declined on the sign-in page")]
    Declined,
    #[error("the sign-in code expired before it was approved")]
    Expired,
    #[error("the identity platform did not recognise the sign-in code")]
    BadVerificationCode,
    /// Any other OAuth error body: `error`, `error_description` (AADSTS...), `error_codes`.
    #[error("{error}: {description}")]
    OAuth {
        error: String,
        description: String,
        codes: Vec<u32>,
        trace_id: Option<String>,
    },
    #[error("cannot reach the identity platform: {0}")]
    Transport(String),
    #[error("unexpected answer from the identity platform: {0}")]
    Malformed(String),
    #[error("not signed in to tenant {0}: run `m365sync login`")]
    NotSignedIn(String),
    #[error("{0}")]
    Config(String),
}

/// What the admin must see to approve a device-code sign-in.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceCodeStart {
    pub user_code: String,
    pub verification_uri: String,
    pub message: String,
    pub interval: Duration,
    pub expires_in: Duration,
    pub device_code: String,
}

impl std::fmt::Debug for DeviceCodeStart {
    // The device_code is a bearer secret until it expires: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCodeStart")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("interval", &self.interval)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Who is signed in, as shown in the status bar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Identity {
    /// `preferred_username` for delegated sign-in, `app:<client id>` for app-only.
    pub name: String,
    pub tenant_id: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSet {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
    pub scope: String,
    pub identity: Identity,
    /// `device_code` or `client_credentials`: how to get a new token when refresh is impossible.
    pub grant: String,
}

impl std::fmt::Debug for TokenSet {
    // Tokens never reach logs, even through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .field("identity", &self.identity)
            .field("grant", &self.grant)
            .finish_non_exhaustive()
    }
}

/// The token cache of one tenant: a JSON file with mode 0600.
pub struct TokenCache {
    pub path: PathBuf,
}

/// The endpoints found by OpenID discovery (validated: https, or http on loopback).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Endpoints {
    pub token_endpoint: String,
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    #[serde(default)]
    pub issuer: Option<String>,
}

/// How the device-code poll waits between polls. Tests inject a fast one.
pub type SleepFn = Arc<dyn Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync>;

/// Talks to one tenant's identity platform (endpoints from OpenID discovery).
#[derive(Clone)]
pub struct Authenticator {
    pub http: reqwest::Client,
    /// e.g. `https://login.microsoftonline.com` (no trailing slash).
    pub authority: String,
    pub tenant: String,
    pub client_id: String,
    /// OpenID discovery result, fetched once and shared by clones.
    discovery: Arc<tokio::sync::OnceCell<Endpoints>>,
    sleep: SleepFn,
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub const GRANT_DEVICE_CODE: &str = "device_code";
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";

impl Authenticator {
    pub fn new(http: reqwest::Client, authority: &str, tenant: &str, client_id: &str) -> Self {
        Authenticator {
            http,
            authority: authority.trim_end_matches('/').to_string(),
            tenant: tenant.to_string(),
            client_id: client_id.to_string(),
            discovery: Arc::new(tokio::sync::OnceCell::new()),
            sleep: Arc::new(|d| Box::pin(tokio::time::sleep(d))),
        }
    }

    /// Replace the sleep between device-code polls (tests: a fast or recording one).
    pub fn with_sleep(mut self, sleep: SleepFn) -> Self {
        self.sleep = sleep;
        self
    }

    /// `{authority}/{tenant}/v2.0/.well-known/openid-configuration`, as MSAL builds it.
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            self.authority, self.tenant
        )
    }

    /// The tenant's endpoints from OpenID discovery, fetched on first use and cached.
    pub async fn endpoints(&self) -> Result<Endpoints, AuthError> {
        self.discovery
            .get_or_try_init(|| self.discover())
            .await
            .cloned()
    }

    async fn discover(&self) -> Result<Endpoints, AuthError> {
        // The tenant goes into URL paths: a GUID, a domain, `organizations` or `common`.
        if self.tenant.is_empty()
            || !self
                .tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(AuthError::Config(format!(
                "`{}` is not a tenant id or domain name",
                self.tenant
            )));
        }
        let url = self.discovery_url();
        crate::config::check_endpoint_url(&url).map_err(|e| AuthError::Config(format!("{e:#}")))?;
        tracing::debug!(%url, "OpenID discovery");
        let resp = self
            .http
            .get(&url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| AuthError::Transport(crate::graph::client::error_chain(&e)))?;
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .bytes()
            .await
            .map_err(|e| AuthError::Transport(crate::graph::client::error_chain(&e)))?;
        if !(200..300).contains(&status) {
            // e.g. 400 {"error":"invalid_tenant","error_codes":[90002],...} for a wrong tenant.
            return Err(oauth::non_oauth_answer(&oauth::Captured {
                status,
                location,
                error_body: body.to_vec(),
            }));
        }
        let ep: Endpoints = serde_json::from_slice(&body)
            .map_err(|e| AuthError::Malformed(format!("OpenID configuration at {url}: {e}")))?;
        for (name, u) in [
            ("token_endpoint", Some(&ep.token_endpoint)),
            (
                "device_authorization_endpoint",
                ep.device_authorization_endpoint.as_ref(),
            ),
        ] {
            if let Some(u) = u {
                crate::config::check_endpoint_url(u).map_err(|e| {
                    AuthError::Config(format!("OpenID configuration at {url}: {name}: {e:#}"))
                })?;
            }
        }
        Ok(ep)
    }

    fn client(&self, ep: &Endpoints) -> Result<MsClient<oauth2::EndpointNotSet>, AuthError> {
        let token_url = TokenUrl::new(ep.token_endpoint.clone())
            .map_err(|e| AuthError::Config(format!("token_endpoint: {e}")))?;
        Ok(oauth2::Client::new(ClientId::new(self.client_id.clone()))
            // Microsoft wants client_id (and client_secret) in the POST body.
            .set_auth_type(oauth2::AuthType::RequestBody)
            .set_token_uri(token_url))
    }

    fn device_client(&self, ep: &Endpoints) -> Result<MsClient<oauth2::EndpointSet>, AuthError> {
        let dev = ep.device_authorization_endpoint.clone().ok_or_else(|| {
            AuthError::Config(format!(
                "the OpenID configuration at {} has no device_authorization_endpoint",
                self.discovery_url()
            ))
        })?;
        let dev = DeviceAuthorizationUrl::new(dev)
            .map_err(|e| AuthError::Config(format!("device_authorization_endpoint: {e}")))?;
        Ok(self.client(ep)?.set_device_authorization_url(dev))
    }

    fn http_fn(
        &self,
        capture: &Capture,
    ) -> impl Fn(oauth2::HttpRequest) -> BoxFuture<'static, Result<oauth2::HttpResponse, reqwest::Error>>
    {
        let http = self.http.clone();
        let capture = capture.clone();
        move |req| Box::pin(oauth::send(http.clone(), capture.clone(), req))
    }

    fn delegated_scopes() -> impl Iterator<Item = Scope> {
        DELEGATED_SCOPES.iter().map(|s| Scope::new(s.to_string()))
    }

    /// Ask for a device code: what the admin must open and type.
    pub async fn start_device_code(&self) -> Result<DeviceCodeStart, AuthError> {
        let ep = self.endpoints().await?;
        let client = self.device_client(&ep)?;
        let capture = Capture::default();
        let http = self.http_fn(&capture);
        let resp: oauth2::DeviceAuthorizationResponse<MsDeviceFields> = client
            .exchange_device_code()
            .add_scopes(Self::delegated_scopes())
            .request_async(&http)
            .await
            .map_err(|e| oauth::map_error(e, &capture, MsErrorResponse::into_auth_error))?;
        let verification_uri = resp.verification_uri().to_string();
        let user_code = resp.user_code().secret().clone();
        let message = resp.extra_fields().message.clone().unwrap_or_else(|| {
            format!(
                "To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."
            )
        });
        tracing::info!(%verification_uri, expires_in = resp.expires_in().as_secs(), "device code issued");
        Ok(DeviceCodeStart {
            user_code,
            verification_uri,
            message,
            // RFC 8628's default is 5 s; never poll in a tight loop on a 0.
            interval: resp.interval().max(Duration::from_secs(1)),
            expires_in: resp.expires_in(),
            device_code: resp.device_code().secret().clone(),
        })
    }

    /// Poll the token endpoint at the given interval (widened on `slow_down`) until the code
    /// is approved, declined or expired.
    pub async fn poll_device_code(&self, start: &DeviceCodeStart) -> Result<TokenSet, AuthError> {
        let ep = self.endpoints().await?;
        let client = self.device_client(&ep)?;
        // oauth2 polls from its own DeviceAuthorizationResponse, which has no public
        // constructor: rebuild it from what `start_device_code` returned (it is Deserialize).
        let resp: oauth2::DeviceAuthorizationResponse<MsDeviceFields> =
            serde_json::from_value(serde_json::json!({
                "device_code": start.device_code,
                "user_code": start.user_code,
                "verification_uri": start.verification_uri,
                "expires_in": start.expires_in.as_secs(),
                "interval": start.interval.as_secs().max(1),
            }))
            .map_err(|e| AuthError::Config(format!("device code: {e}")))?;
        let capture = Capture::default();
        let http = self.http_fn(&capture);
        let deadline = tokio::time::Instant::now() + start.expires_in;
        let sleep = self.sleep.clone();
        // oauth2 decides the interval (+5 s on slow_down, RFC 8628); we only make sure a
        // sleep never runs past the code's expiry.
        let sleep_fn = move |d: Duration| {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            sleep(d.min(left))
        };
        let poll = client.exchange_device_access_token(&resp).request_async(
            &http,
            sleep_fn,
            Some(start.expires_in),
        );
        // The outer timeout guarantees we never wait past expires_in, even if a request hangs.
        let result = match tokio::time::timeout_at(deadline, poll).await {
            Err(_) => return Err(AuthError::Expired),
            Ok(r) => r,
        };
        let tr = result.map_err(|e| {
            oauth::map_error(e, &capture, |dce| {
                // The device-token request is fixed by oauth2 to its standard error type,
                // which drops Microsoft's error_codes and trace_id: read them from the body
                // our HTTP closure kept, falling back to what oauth2 parsed.
                // (oauth2 also makes up `expired_token` itself when its deadline passes, so
                // the captured body is used only when it is the same error.)
                oauth::captured(&capture)
                    .and_then(|c| serde_json::from_slice::<MsErrorResponse>(&c.error_body).ok())
                    .filter(|m| m.error == dce.error().as_ref())
                    .unwrap_or_else(|| MsErrorResponse {
                        error: dce.error().as_ref().to_string(),
                        error_description: dce.error_description().cloned(),
                        ..Default::default()
                    })
                    .into_auth_error()
            })
        })?;
        let tokens = self.token_set(&tr, GRANT_DEVICE_CODE, None)?;
        tracing::info!(user = %tokens.identity.name, "device code sign-in complete");
        Ok(tokens)
    }

    /// App-only sign-in with a client secret (read from a file or env var by the caller).
    pub async fn client_credentials(&self, secret: &str) -> Result<TokenSet, AuthError> {
        let ep = self.endpoints().await?;
        let client = self
            .client(&ep)?
            .set_client_secret(ClientSecret::new(secret.to_string()));
        let capture = Capture::default();
        let http = self.http_fn(&capture);
        let tr = client
            .exchange_client_credentials()
            .add_scope(Scope::new(APP_SCOPE.to_string()))
            .request_async(&http)
            .await
            .map_err(|e| oauth::map_error(e, &capture, MsErrorResponse::into_auth_error))?;
        let tokens = self.token_set(&tr, GRANT_CLIENT_CREDENTIALS, None)?;
        tracing::info!(app = %tokens.identity.name, "client credentials sign-in complete");
        Ok(tokens)
    }

    /// A new token set from the refresh token. The identity platform rotates refresh
    /// tokens: the returned set holds the NEW one (the old one only if none came back).
    /// App-only token sets have no refresh token: `Session` gets a new client-credentials
    /// token for those.
    pub async fn refresh(&self, tokens: &TokenSet) -> Result<TokenSet, AuthError> {
        let Some(rt) = tokens.refresh_token.clone() else {
            return Err(AuthError::NotSignedIn(self.tenant.clone()));
        };
        let ep = self.endpoints().await?;
        let client = self.client(&ep)?;
        let capture = Capture::default();
        let http = self.http_fn(&capture);
        let rt = RefreshToken::new(rt);
        let tr = client
            .exchange_refresh_token(&rt)
            .add_scopes(Self::delegated_scopes())
            .request_async(&http)
            .await
            .map_err(|e| oauth::map_error(e, &capture, MsErrorResponse::into_auth_error))?;
        let new = self.token_set(&tr, &tokens.grant, Some(tokens))?;
        tracing::info!(user = %new.identity.name, "tokens refreshed");
        Ok(new)
    }

    /// Our TokenSet from a token response. `prev` supplies what a refresh may omit (the
    /// refresh token, the identity).
    fn token_set(
        &self,
        tr: &MsTokenResponse,
        grant: &str,
        prev: Option<&TokenSet>,
    ) -> Result<TokenSet, AuthError> {
        let access_token = tr.access_token().secret().clone();
        if access_token.is_empty() {
            return Err(AuthError::Malformed("empty access_token".into()));
        }
        let expires_in = tr.expires_in().map(|d| d.as_secs() as i64).unwrap_or(3599);
        let scope = match tr.scopes() {
            Some(s) if !s.is_empty() => s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "),
            _ if grant == GRANT_CLIENT_CREDENTIALS => APP_SCOPE.to_string(),
            _ => prev
                .map(|p| p.scope.clone())
                .unwrap_or_else(|| DELEGATED_SCOPES.join(" ")),
        };
        let access_claims = jwt::decode_claims(&access_token).ok();
        let identity = if grant == GRANT_CLIENT_CREDENTIALS {
            Identity {
                name: format!("app:{}", self.client_id),
                tenant_id: access_claims.and_then(|c| c.tid),
            }
        } else if let Some(id_token) = &tr.extra_fields().id_token {
            let c = jwt::decode_claims(id_token)
                .map_err(|e| AuthError::Malformed(format!("id_token: {e}")))?;
            Identity {
                name: c
                    .username()
                    .map(str::to_string)
                    .or_else(|| c.name.clone())
                    .unwrap_or_else(|| "unknown user".into()),
                tenant_id: c.tid,
            }
        } else if let Some(p) = prev {
            p.identity.clone()
        } else {
            let c = access_claims.unwrap_or_default();
            Identity {
                name: c.username().unwrap_or("unknown user").to_string(),
                tenant_id: c.tid,
            }
        };
        Ok(TokenSet {
            access_token,
            refresh_token: tr
                .refresh_token()
                .map(|r| r.secret().clone())
                .or_else(|| prev.and_then(|p| p.refresh_token.clone())),
            expires_at: now_unix() + expires_in,
            scope,
            identity,
            grant: grant.to_string(),
        })
    }
}

/// The signed-in session of one tenant: current tokens, refreshed before expiry and after a
/// 401, saved to the token cache on every change. Hands tokens to the Graph client.
pub struct Session {
    pub auth: Authenticator,
    pub cache: TokenCache,
    pub tokens: tokio::sync::Mutex<TokenSet>,
    /// Client secret for app-only sessions, kept in memory only (to get a new token).
    pub secret: Option<String>,
}

impl crate::graph::TokenSource for Session {
    fn token<'a>(
        &'a self,
        rejected: Option<&'a str>,
    ) -> futures::future::BoxFuture<'a, Result<String, crate::graph::GraphError>> {
        Box::pin(async move {
            match rejected {
                Some(rejected) => self.access_token_replacing(rejected).await,
                None => self.access_token(false).await,
            }
            .map_err(|e| crate::graph::GraphError::Auth(e.to_string()))
        })
    }
}
