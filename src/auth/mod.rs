//! Sign-in with Microsoft's identity platform: OpenID discovery, device code, client
//! credentials, refresh; the per-tenant token cache (mode 0600).
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCodeStart {
    pub user_code: String,
    pub verification_uri: String,
    pub message: String,
    pub interval: Duration,
    pub expires_in: Duration,
    pub device_code: String,
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

/// Talks to one tenant's identity platform (endpoints from OpenID discovery).
#[derive(Clone)]
pub struct Authenticator {
    pub http: reqwest::Client,
    /// e.g. `https://login.microsoftonline.com` (no trailing slash).
    pub authority: String,
    pub tenant: String,
    pub client_id: String,
}

impl Authenticator {
    pub fn new(http: reqwest::Client, authority: &str, tenant: &str, client_id: &str) -> Self {
        Authenticator {
            http,
            authority: authority.trim_end_matches('/').to_string(),
            tenant: tenant.to_string(),
            client_id: client_id.to_string(),
        }
    }

    /// Ask for a device code: what the admin must open and type.
    pub async fn start_device_code(&self) -> Result<DeviceCodeStart, AuthError> {
        todo!("auth: start_device_code")
    }

    /// Poll the token endpoint at the given interval (widened on `slow_down`) until the code
    /// is approved, declined or expired.
    pub async fn poll_device_code(&self, start: &DeviceCodeStart) -> Result<TokenSet, AuthError> {
        let _ = start;
        todo!("auth: poll_device_code")
    }

    /// App-only sign-in with a client secret (read from a file or env var by the caller).
    pub async fn client_credentials(&self, secret: &str) -> Result<TokenSet, AuthError> {
        let _ = secret;
        todo!("auth: client_credentials")
    }

    pub async fn refresh(&self, tokens: &TokenSet) -> Result<TokenSet, AuthError> {
        let _ = tokens;
        todo!("auth: refresh")
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

impl TokenCache {
    pub fn new(path: PathBuf) -> Self {
        TokenCache { path }
    }
    pub fn load(&self) -> Result<Option<TokenSet>, AuthError> {
        todo!("auth: TokenCache::load")
    }
    /// Written atomically with mode 0600 (the directory 0700).
    pub fn save(&self, tokens: &TokenSet) -> Result<(), AuthError> {
        let _ = tokens;
        todo!("auth: TokenCache::save")
    }
    pub fn clear(&self) -> Result<(), AuthError> {
        todo!("auth: TokenCache::clear")
    }
}

impl Session {
    /// A session from fresh tokens; saves them to the cache.
    pub fn start(
        auth: Authenticator,
        cache: TokenCache,
        tokens: TokenSet,
        secret: Option<String>,
    ) -> Result<std::sync::Arc<Session>, AuthError> {
        let _ = (auth, cache, tokens, secret);
        todo!("auth: Session::start")
    }
    /// The cached session of this tenant, if any (it may be expired: `access_token` refreshes).
    pub fn resume(
        auth: Authenticator,
        cache: TokenCache,
        secret: Option<String>,
    ) -> Result<Option<std::sync::Arc<Session>>, AuthError> {
        let _ = (auth, cache, secret);
        todo!("auth: Session::resume")
    }
    pub async fn identity(&self) -> Identity {
        self.tokens.lock().await.identity.clone()
    }
    pub async fn expires_at(&self) -> i64 {
        self.tokens.lock().await.expires_at
    }
    /// A valid access token: refreshed when it expires within 5 minutes, or when `force`
    /// (after Graph answered 401). Saves rotated tokens to the cache.
    pub async fn access_token(&self, force: bool) -> Result<String, AuthError> {
        let _ = force;
        todo!("auth: Session::access_token")
    }
}

impl crate::graph::TokenSource for Session {
    fn token(
        &self,
        force_refresh: bool,
    ) -> futures::future::BoxFuture<'_, Result<String, crate::graph::GraphError>> {
        Box::pin(async move {
            self.access_token(force_refresh)
                .await
                .map_err(|e| crate::graph::GraphError::Auth(e.to_string()))
        })
    }
}
