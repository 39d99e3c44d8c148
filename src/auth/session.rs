//! Session: the current tokens of one tenant, refreshed before expiry and after a 401.
use std::sync::Arc;

use super::{
    now_unix, AuthError, Authenticator, Session, TokenCache, TokenSet, GRANT_CLIENT_CREDENTIALS,
};

/// Refresh when the access token expires within this many seconds.
pub const REFRESH_MARGIN_SECS: i64 = 300;

impl Session {
    fn build(
        auth: Authenticator,
        cache: TokenCache,
        tokens: TokenSet,
        secret: Option<String>,
    ) -> Arc<Session> {
        Arc::new(Session {
            auth,
            cache,
            tokens: tokio::sync::Mutex::new(tokens),
            secret,
        })
    }

    /// A session from fresh tokens; saves them to the cache.
    pub fn start(
        auth: Authenticator,
        cache: TokenCache,
        tokens: TokenSet,
        secret: Option<String>,
    ) -> Result<Arc<Session>, AuthError> {
        cache.save(&tokens)?;
        Ok(Self::build(auth, cache, tokens, secret))
    }

    /// The cached session of this tenant, if any (it may be expired: `access_token` refreshes).
    pub fn resume(
        auth: Authenticator,
        cache: TokenCache,
        secret: Option<String>,
    ) -> Result<Option<Arc<Session>>, AuthError> {
        Ok(cache
            .load()?
            .map(|tokens| Self::build(auth, cache, tokens, secret)))
    }

    pub async fn identity(&self) -> super::Identity {
        self.tokens.lock().await.identity.clone()
    }

    pub async fn expires_at(&self) -> i64 {
        self.tokens.lock().await.expires_at
    }

    /// A valid access token: refreshed when it expires within 5 minutes, or when `force`
    /// (after Graph answered 401). Saves rotated tokens to the cache.
    ///
    /// The token lock is held across the refresh, so refreshes are serialized: callers that
    /// wait for it find the new token and do not refresh again.
    pub async fn access_token(&self, force: bool) -> Result<String, AuthError> {
        let mut tokens = self.tokens.lock().await;
        let fresh = tokens.expires_at - now_unix() > REFRESH_MARGIN_SECS;
        if fresh && !force {
            return Ok(tokens.access_token.clone());
        }
        self.refresh_locked(&mut tokens, force, fresh).await
    }

    /// After Graph rejected `rejected` (401): refresh, unless another caller already
    /// replaced that token while this one waited for the lock (many requests may get 401
    /// at once; one refresh serves them all).
    pub async fn access_token_replacing(&self, rejected: &str) -> Result<String, AuthError> {
        let mut tokens = self.tokens.lock().await;
        if tokens.access_token != rejected {
            return Ok(tokens.access_token.clone());
        }
        self.refresh_locked(&mut tokens, true, true).await
    }

    async fn refresh_locked(
        &self,
        tokens: &mut TokenSet,
        force: bool,
        fresh: bool,
    ) -> Result<String, AuthError> {
        tracing::debug!(force, fresh, "refreshing the access token");
        let new = if tokens.grant == GRANT_CLIENT_CREDENTIALS {
            let Some(secret) = self.secret.as_deref() else {
                return Err(AuthError::NotSignedIn(self.auth.tenant.clone()));
            };
            self.auth.client_credentials(secret).await?
        } else {
            self.auth.refresh(tokens).await?
        };
        if let Err(e) = self.cache.save(&new) {
            // The new token is valid: use it. The next start may need a sign-in.
            tracing::warn!(error = %e, "could not save refreshed tokens");
        }
        *tokens = new;
        Ok(tokens.access_token.clone())
    }
}
