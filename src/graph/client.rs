//! Graph client: base URL, bearer token, retry of 429/503/504 (Retry-After honoured, jittered
//! exponential backoff when absent), page streams following `@odata.nextLink`.
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::StreamExt;
use reqwest::header::{HeaderMap, AUTHORIZATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tokio_util::task::AbortOnDropHandle;

use super::error::GraphError;
use super::model::{Domain, Page, User, USER_SELECT};

/// Where the client gets its bearer token. After a 401 the client passes the token Graph
/// `rejected`: the source refreshes unless another request already replaced that token (many
/// requests may get 401 at once; one refresh serves them all).
pub trait TokenSource: Send + Sync {
    fn token<'a>(&'a self, rejected: Option<&'a str>) -> BoxFuture<'a, Result<String, GraphError>>;
}

/// A fixed token (tests, benches, a token handed over by another tool).
#[derive(Clone)]
pub struct StaticToken(pub String);

impl TokenSource for StaticToken {
    fn token<'a>(
        &'a self,
        _rejected: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, GraphError>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (1 = first retry) when the server gave no
    /// Retry-After: exponential (`base * 2^(attempt-1)`, capped at `max_delay`) with "equal
    /// jitter", i.e. uniformly in `[d/2, d]`, so clients throttled together spread out.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(31)));
        let d = exp.min(self.max_delay);
        let half = d / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// `Retry-After` as seconds (Graph's form) or an HTTP date; `None` when absent or unreadable.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(86_400.0)));
        }
        return None;
    }
    let when =
        time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let delta = when - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(delta).unwrap_or(Duration::ZERO))
}

/// An error and its sources ("error sending request: ...: Connection refused"): reqwest's
/// own Display stops at the outermost layer.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        src = s.source();
    }
    out
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

fn request_id(headers: &HeaderMap) -> Option<&str> {
    headers.get("request-id").and_then(|v| v.to_str().ok())
}

/// A successful (2xx) Graph answer.
#[derive(Debug, Clone)]
pub struct GraphResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl GraphResponse {
    /// The body as `T`; a body that is not `T` is `GraphError::Malformed`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, GraphError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| GraphError::Malformed(format!("{e} (in a {} byte body)", self.body.len())))
    }
}

#[derive(Clone)]
pub struct GraphClient {
    pub(crate) http: reqwest::Client,
    /// e.g. `https://graph.microsoft.com/v1.0` (no trailing slash).
    pub(crate) base: String,
    pub(crate) tokens: Arc<dyn TokenSource>,
    pub(crate) retry: RetryPolicy,
}

impl GraphClient {
    /// `tokens` is usually the `Arc<auth::Session>` (it implements TokenSource):
    /// `GraphClient::new(http, &settings.graph_url, session.clone())`.
    pub fn new(http: reqwest::Client, base: &str, tokens: Arc<dyn TokenSource>) -> Self {
        GraphClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            tokens,
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Every tenant user, one item per page, `$select`ing [`super::model::USER_SELECT`].
    /// `page_size` is Graph's `$top` (1..=999; clamped).
    pub fn list_users(&self, page_size: u32) -> BoxStream<'static, Result<Vec<User>, GraphError>> {
        // Not clamped: Graph's own answer to an out-of-range size (400 Request_UnsupportedQuery)
        // is the clearest error for a caller that asked for one.
        let first = format!(
            "{}/users?$select={}&$top={}",
            self.base,
            USER_SELECT.join(","),
            page_size
        );
        self.pages(first)
    }

    /// The pages of any collection: GET `first_url`, then each absolute `@odata.nextLink`
    /// as-is until there is none. Each page is parsed straight from the response bytes.
    /// The stream ends after the first error.
    ///
    /// One page is always in flight ahead of the caller: the next page is requested, and
    /// parsed on another worker, while the caller handles this one, so a large listing costs
    /// about what the network costs. Dropping the stream aborts the page in flight.
    pub fn pages<T>(&self, first_url: String) -> BoxStream<'static, Result<Vec<T>, GraphError>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        type Fetch = AbortOnDropHandle<Result<GraphResponse, GraphError>>;
        enum Next {
            Start(String),
            InFlight(Fetch),
            Done,
        }
        /// Only the link: skimming a page for it is several times cheaper than parsing it,
        /// so the next request leaves before this page is parsed.
        #[derive(serde::Deserialize)]
        struct Link {
            #[serde(rename = "@odata.nextLink", default)]
            next_link: Option<String>,
        }
        let client = self.clone();
        let fetch = move |url: String| -> Fetch {
            let client = client.clone();
            AbortOnDropHandle::new(tokio::spawn(async move { client.get(&url).await }))
        };
        futures::stream::unfold(Next::Start(first_url), move |next| {
            let fetch = fetch.clone();
            async move {
                let handle = match next {
                    Next::Done => return None,
                    Next::Start(url) => fetch(url),
                    Next::InFlight(handle) => handle,
                };
                let page = handle.await.map(|r| {
                    r.and_then(|resp| {
                        let link: Link = resp.json()?;
                        let next = link.next_link.map(&fetch);
                        Ok((resp, next))
                    })
                });
                let page = page
                    .map(|r| r.and_then(|(resp, next)| Ok((resp.json::<Page<T>>()?.value, next))));
                match page {
                    Ok(Ok((value, next))) => {
                        Some((Ok(value), next.map_or(Next::Done, Next::InFlight)))
                    }
                    Ok(Err(e)) => Some((Err(e), Next::Done)),
                    Err(e) => Some((
                        Err(GraphError::Malformed(format!("reading a page failed: {e}"))),
                        Next::Done,
                    )),
                }
            }
        })
        .boxed()
    }

    pub async fn get_user(&self, id_or_upn: &str) -> Result<User, GraphError> {
        let mut url = url::Url::parse(&self.base)
            .map_err(|e| GraphError::Malformed(format!("graph base url: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| GraphError::Malformed("graph base url cannot have a path".into()))?
            .push("users")
            .push(id_or_upn);
        url.set_query(Some(&format!("$select={}", USER_SELECT.join(","))));
        self.get(url.as_str()).await?.json()
    }

    pub async fn list_domains(&self) -> Result<Vec<Domain>, GraphError> {
        let mut all = Vec::new();
        let mut pages = self.pages::<Domain>(format!("{}/domains", self.base));
        while let Some(page) = pages.next().await {
            all.extend(page?);
        }
        Ok(all)
    }

    /// GET with bearer, 401-refresh and retry. `url` is absolute (under the base URL's
    /// origin) or a path relative to the base (`/users/...`).
    pub async fn get(&self, url: &str) -> Result<GraphResponse, GraphError> {
        self.request(Method::GET, url, None).await
    }

    /// Any Graph request with an optional JSON body. Same token and retry rules as GET,
    /// except that a request that is not idempotent (POST, PATCH) is retried only on answers
    /// that say "not processed, come back later" (429, 503), never after a transport error or
    /// a 504, where Graph may have acted on it.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        json_body: Option<Bytes>,
    ) -> Result<GraphResponse, GraphError> {
        let url = self.resolve(url)?;
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        let mut attempt: u32 = 0;
        let mut refreshed = false;
        let mut rejected: Option<String> = None;
        loop {
            attempt += 1;
            let token = self.tokens.token(rejected.take().as_deref()).await?;
            let mut req = self
                .http
                .request(method.clone(), url.as_str())
                .header(AUTHORIZATION, format!("Bearer {token}"))
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(body) = &json_body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            let outcome = match req.send().await {
                Ok(mut resp) => {
                    let status = resp.status();
                    let headers = std::mem::take(resp.headers_mut());
                    match resp.bytes().await {
                        Ok(body) => Ok((status, headers, body)),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            let (status, headers, body) = match outcome {
                Ok(x) => x,
                Err(e) => {
                    let err = GraphError::Transport(error_chain(&e.without_url()));
                    if idempotent && attempt < self.retry.max_attempts {
                        let wait = self.retry.backoff(attempt);
                        tracing::warn!(%method, %url, attempt, ?wait, error = %err, "Graph transport error, retrying");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(err);
                }
            };
            tracing::debug!(%method, %url, status = status.as_u16(), attempt, "Graph answer");
            if status.is_success() {
                return Ok(GraphResponse {
                    status: status.as_u16(),
                    headers,
                    body,
                });
            }
            let ra = retry_after(&headers);
            let err = GraphError::from_response(status.as_u16(), &body, request_id(&headers), ra);
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                // The token was rejected (expired early, revoked): refresh once and retry;
                // this retry does not count as an attempt.
                tracing::info!(%method, %url, "Graph answered 401, refreshing the token");
                refreshed = true;
                rejected = Some(token);
                attempt -= 1;
                continue;
            }
            let retryable = match status.as_u16() {
                429 | 503 => true,
                504 => idempotent,
                _ => false,
            };
            if !retryable || attempt >= self.retry.max_attempts {
                return Err(err);
            }
            let wait = match ra {
                // Waiting longer than we are prepared to: hand the wait to the caller.
                Some(d) if d > self.retry.max_delay => return Err(err),
                Some(d) => d,
                None => self.retry.backoff(attempt),
            };
            tracing::warn!(%method, %url, status = status.as_u16(), attempt, ?wait, code = err.code(), "Graph throttled or unavailable, retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// An absolute URL under the base URL's origin (never send the bearer token elsewhere),
    /// or a path relative to the base.
    fn resolve(&self, url: &str) -> Result<String, GraphError> {
        if url.starts_with("https://") || url.starts_with("http://") {
            let u = url::Url::parse(url)
                .map_err(|e| GraphError::Malformed(format!("bad URL from Graph `{url}`: {e}")))?;
            let base = url::Url::parse(&self.base)
                .map_err(|e| GraphError::Malformed(format!("graph base url: {e}")))?;
            if u.origin() != base.origin() {
                return Err(GraphError::Malformed(format!(
                    "refusing to send the token to `{}`: not the Graph base `{}`",
                    u.origin().ascii_serialization(),
                    base.origin().ascii_serialization()
                )));
            }
            Ok(url.to_string())
        } else {
            Ok(format!("{}/{}", self.base, url.trim_start_matches('/')))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_dates_and_garbage() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("-3"), None);
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after(""), None);
        // A date in the past means "now".
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        let future = time::OffsetDateTime::now_utc() + time::Duration::seconds(120);
        let s = future
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap();
        let d = parse_retry_after(&s).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
    }

    #[test]
    fn backoff_grows_exponentially_with_jitter_within_bounds() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        };
        for _ in 0..200 {
            for (attempt, full) in [
                (1, 100),
                (2, 200),
                (3, 400),
                (4, 800),
                (5, 1600),
                (6, 2000),
                (30, 2000),
                (u32::MAX, 2000),
            ] {
                let d = p.backoff(attempt);
                let full = Duration::from_millis(full);
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
            }
        }
        // Jitter: not always the same value.
        let v: std::collections::HashSet<_> = (0..50).map(|_| p.backoff(3)).collect();
        assert!(v.len() > 1);
    }

    #[test]
    fn next_links_to_another_origin_are_refused() {
        let c = GraphClient::new(
            crate::config::http_client(None).unwrap(),
            "https://graph.microsoft.com/v1.0/",
            Arc::new(StaticToken("t".into())),
        );
        assert_eq!(c.base(), "https://graph.microsoft.com/v1.0");
        assert_eq!(
            c.resolve("https://graph.microsoft.com/v1.0/users?$skiptoken=X")
                .unwrap(),
            "https://graph.microsoft.com/v1.0/users?$skiptoken=X"
        );
        assert_eq!(
            c.resolve("/users").unwrap(),
            "https://graph.microsoft.com/v1.0/users"
        );
        assert!(c.resolve("https://evil.example/v1.0/users").is_err());
        assert!(c.resolve("http://graph.microsoft.com/v1.0/users").is_err());
    }
}
