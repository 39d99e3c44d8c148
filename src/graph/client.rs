//! Graph client: base URL, bearer token, retry (Retry-After honoured, jittered exponential
//! backoff when absent), page streams following `@odata.nextLink`, and the typed reads and
//! deleted-item writes m365sync sends outside `$batch`.
//!
//! Every loop and wait is bounded: each attempt of a request has a deadline that covers the
//! whole body ([`GraphClient::with_timeout`]); attempts and waits are capped by the
//! [`RetryPolicy`] ([`GraphClient::max_request_time`]); a listing stops at a next page link it
//! already followed or after [`GraphClient::with_max_pages`] pages; bodies are read up to
//! [`MAX_BODY_BYTES`].
use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
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

use super::error::{GraphError, LISTING_STOPPED};
use super::model::{
    DeletedUser, DirectoryObject, Domain, Group, Page, User, GROUP_SELECT, USER_SELECT,
};
use super::paths;

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

    /// The longest the waits between the attempts of one request add up to: every wait is
    /// capped at `max_delay` (a longer `Retry-After` is not waited out but handed back).
    pub fn max_total_wait(&self) -> Duration {
        self.max_delay
            .saturating_mul(self.max_attempts.saturating_sub(1))
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

/// The deadline of one request (send, answer and the whole body), per attempt.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The deadline of one `$batch` round trip: up to 20 writes, each answered before the batch.
pub const DEFAULT_BATCH_TIMEOUT: Duration = Duration::from_secs(120);
/// At most this many pages in one listing (999 users a page: about 100 million users).
pub const DEFAULT_MAX_PAGES: usize = 100_000;
/// The largest answer body read (a 999-user page is well under 1 MiB).
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// `60 s`, `250 ms`.
fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// At most `max` characters of `s`, for messages.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// An empty id would turn `/users/{id}` into `/users/` (the whole collection), or
/// `/directory/deletedItems/{id}` into the container: refuse it before sending.
fn object_id(id: &str) -> Result<&str, GraphError> {
    if id.trim().is_empty() {
        return Err(GraphError::Malformed(
            "internal error: an empty object id or user name was about to be sent to Graph".into(),
        ));
    }
    Ok(id)
}

/// `https://host:port` or `https://host:port/` (no path, as `m365sync sim` prints its base)
/// means `https://host:port/v1.0`; a base with a path (`/v1.0`, `/beta`, a proxy prefix) is
/// kept as it is. No trailing slash.
pub fn normalize_base(base: &str) -> String {
    let b = base.trim().trim_end_matches('/');
    match url::Url::parse(b) {
        Ok(u)
            if (u.path().is_empty() || u.path() == "/")
                && u.query().is_none()
                && u.fragment().is_none()
                && !u.cannot_be_a_base() =>
        {
            format!("{b}/v1.0")
        }
        _ => b.to_string(),
    }
}

/// Why one attempt got no usable answer.
enum Failure {
    /// reqwest: connect, TLS, reset, or reqwest's own timeout.
    Http(reqwest::Error),
    /// Our deadline passed before the whole body arrived.
    Deadline,
    /// The body is larger than [`MAX_BODY_BYTES`].
    TooLarge(u64),
}

/// The body, at most `cap` bytes.
async fn read_body(resp: &mut reqwest::Response, cap: usize) -> Result<Bytes, Failure> {
    if let Some(len) = resp.content_length() {
        if len > cap as u64 {
            return Err(Failure::TooLarge(len));
        }
    }
    let mut first: Option<Bytes> = None;
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(Failure::Http)? {
        let total = first.as_ref().map_or(0, Bytes::len) + buf.len() + chunk.len();
        if total > cap {
            return Err(Failure::TooLarge(total as u64));
        }
        // The usual case is one chunk: keep it as is, copy only when there are more.
        match first.take() {
            None if buf.is_empty() => first = Some(chunk),
            None => buf.extend_from_slice(&chunk),
            Some(f) => {
                buf.reserve(resp.content_length().unwrap_or(0) as usize);
                buf.extend_from_slice(&f);
                buf.extend_from_slice(&chunk);
            }
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(buf)))
}

/// One request as the retry loop sends it.
struct Call<'a> {
    method: Method,
    url: &'a str,
    body: Option<Bytes>,
    accept: &'static str,
    headers: &'a [(&'static str, &'static str)],
    deadline: Duration,
}

/// A request that failed, with the headers of Graph's answer when there was one.
pub(crate) struct CallFailure {
    pub(crate) error: GraphError,
    pub(crate) headers: Option<HeaderMap>,
}

impl CallFailure {
    fn bare(error: GraphError) -> CallFailure {
        CallFailure {
            error,
            headers: None,
        }
    }
}

/// How a page stream fetches one page: [`GraphClient::get`] for plain listings; delta rounds
/// and shards bring their own (to keep a 410's headers, to pace requests).
pub(crate) type PageFetch<E> =
    Arc<dyn Fn(String) -> BoxFuture<'static, Result<GraphResponse, E>> + Send + Sync>;

#[derive(Clone)]
pub struct GraphClient {
    pub(crate) http: reqwest::Client,
    /// e.g. `https://graph.microsoft.com/v1.0` (no trailing slash).
    pub(crate) base: String,
    pub(crate) tokens: Arc<dyn TokenSource>,
    pub(crate) retry: RetryPolicy,
    /// Deadline of one attempt of a request (send + whole body).
    pub(crate) timeout: Duration,
    /// Deadline of one attempt of a `$batch` POST.
    pub(crate) batch_timeout: Duration,
    /// Pages one listing may have.
    pub(crate) max_pages: usize,
    /// A 429 is handed to the caller at once instead of waited out here: a sharded listing
    /// pauses every shard for the `Retry-After` (see `graph::listing`).
    pub(crate) throttling_to_caller: bool,
}

impl GraphClient {
    /// `tokens` is usually the `Arc<auth::Session>` (it implements TokenSource):
    /// `GraphClient::new(http, &settings.graph_url, session.clone())`. A base without a path
    /// (`https://host:port`) means `https://host:port/v1.0` (see [`normalize_base`]).
    pub fn new(http: reqwest::Client, base: &str, tokens: Arc<dyn TokenSource>) -> Self {
        GraphClient {
            http,
            base: normalize_base(base),
            tokens,
            retry: RetryPolicy::default(),
            timeout: DEFAULT_TIMEOUT,
            batch_timeout: DEFAULT_BATCH_TIMEOUT,
            max_pages: DEFAULT_MAX_PAGES,
            throttling_to_caller: false,
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The deadline of one attempt of a request: sending it, the answer and its whole body
    /// (default [`DEFAULT_TIMEOUT`]). Missing it is a [`GraphError::Transport`] error: a read
    /// is tried again, a write's outcome is unknown.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The deadline of one `$batch` round trip (default [`DEFAULT_BATCH_TIMEOUT`]).
    pub fn with_batch_timeout(mut self, timeout: Duration) -> Self {
        self.batch_timeout = timeout;
        self
    }

    /// How many pages one listing may have (default [`DEFAULT_MAX_PAGES`]; at least 1):
    /// a server that makes up endless next page links is stopped there.
    pub fn with_max_pages(mut self, max_pages: usize) -> Self {
        self.max_pages = max_pages.max(1);
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn batch_timeout(&self) -> Duration {
        self.batch_timeout
    }

    /// The longest one call of [`GraphClient::request`] can take with deadline `per_attempt`:
    /// every attempt (plus the one after a token refresh) to its deadline, and every wait
    /// between them at `max_delay` (a longer `Retry-After` is handed to the caller at once).
    pub fn max_request_time(&self, per_attempt: Duration) -> Duration {
        let attempts = self.retry.max_attempts.max(1);
        // + 1: the retry after a 401 does not count as an attempt; + 1 for getting the token.
        per_attempt.saturating_mul(attempts + 2) + self.retry.max_total_wait()
    }

    /// Every tenant user, one item per page, `$select`ing [`super::model::USER_SELECT`].
    /// `page_size` is Graph's `$top` (1..=999). Permission: `User.Read.All`.
    pub fn list_users(&self, page_size: u32) -> BoxStream<'static, Result<Vec<User>, GraphError>> {
        // Not clamped: Graph's own answer to an out-of-range size (400 Request_UnsupportedQuery)
        // is the clearest error for a caller that asked for one.
        let first = format!(
            "{}{}?$select={}&$top={}",
            self.base,
            paths::USERS,
            USER_SELECT.join(","),
            page_size
        );
        self.collection(first)
    }

    /// The pages of any collection: GET `first_url`, then each absolute `@odata.nextLink`
    /// as-is until there is none. Each page is parsed straight from the response bytes.
    /// The stream ends after the first error.
    ///
    /// Bounded: a next page link already followed in this listing (a loop) or a page beyond
    /// the client's cap ([`GraphClient::with_max_pages`]) ends the stream with a
    /// [`GraphError::Malformed`] error for which [`GraphError::is_listing_stopped`] holds,
    /// after the pages read before it.
    ///
    /// One page is always in flight ahead of the caller: the next page is requested, and
    /// parsed on another worker, while the caller handles this one, so a large listing costs
    /// about what the network costs. Dropping the stream aborts the page in flight.
    pub fn pages<T>(&self, first_url: String) -> BoxStream<'static, Result<Vec<T>, GraphError>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let client = self.clone();
        let fetch: PageFetch<GraphError> = Arc::new(move |url: String| {
            let client = client.clone();
            Box::pin(async move { client.get(&url).await })
        });
        self.page_stream::<Page<T>, GraphError>(first_url, fetch)
            .map(|page| page.map(|p| p.value))
            .boxed()
    }

    /// The loop behind [`GraphClient::pages`], for any page shape `P` (a delta page keeps its
    /// `@odata.deltaLink`) and any way of fetching a page (`fetch`): follows
    /// `@odata.nextLink` with the same bounds (a link already followed, the page cap), one
    /// page in flight ahead of the caller.
    pub(crate) fn page_stream<P, E>(
        &self,
        first_url: String,
        fetch: PageFetch<E>,
    ) -> BoxStream<'static, Result<P, E>>
    where
        P: DeserializeOwned + Send + 'static,
        E: From<GraphError> + Send + 'static,
    {
        type Fetch<E> = AbortOnDropHandle<Result<GraphResponse, E>>;
        enum Next<E> {
            Start(String),
            InFlight(Fetch<E>),
            Fail(GraphError),
            Done,
        }
        struct Listing<E> {
            next: Next<E>,
            /// Hashes of the links followed (the first URL too), with this listing's keys.
            seen: HashSet<u64>,
            hasher: RandomState,
            /// Pages requested so far.
            requested: usize,
        }
        /// Only the link: skimming a page for it is several times cheaper than parsing it,
        /// so the next request leaves before this page is parsed.
        #[derive(serde::Deserialize)]
        struct Link {
            #[serde(rename = "@odata.nextLink", default)]
            next_link: Option<String>,
        }
        let max_pages = self.max_pages;
        let spawn =
            move |url: String| -> Fetch<E> { AbortOnDropHandle::new(tokio::spawn(fetch(url))) };
        let start = Listing {
            next: Next::Start(first_url),
            seen: HashSet::new(),
            hasher: RandomState::new(),
            requested: 0,
        };
        futures::stream::unfold(start, move |mut st| {
            let spawn = spawn.clone();
            async move {
                let handle = match std::mem::replace(&mut st.next, Next::Done) {
                    Next::Done => return None,
                    Next::Fail(e) => return Some((Err(e.into()), st)),
                    Next::Start(url) => {
                        st.seen.insert(st.hasher.hash_one(&url));
                        st.requested = 1;
                        spawn(url)
                    }
                    Next::InFlight(handle) => handle,
                };
                let resp = match handle.await {
                    Ok(Ok(resp)) => resp,
                    Ok(Err(e)) => return Some((Err(e), st)),
                    Err(e) => {
                        let e = GraphError::Malformed(format!("reading a page failed: {e}"));
                        return Some((Err(e.into()), st));
                    }
                };
                let link: Link = match resp.json() {
                    Ok(l) => l,
                    Err(e) => return Some((Err(e.into()), st)),
                };
                if let Some(link) = link.next_link {
                    st.next = if !st.seen.insert(st.hasher.hash_one(&link)) {
                        Next::Fail(GraphError::Malformed(format!(
                            "Graph returned the same next page link twice (page {} links back to \
                             a page already read: {}): {LISTING_STOPPED}",
                            st.requested,
                            clip(&link, 200)
                        )))
                    } else if st.requested >= max_pages {
                        Next::Fail(GraphError::Malformed(format!(
                            "Graph still had a next page link after {} pages, the most m365sync \
                             reads in one listing: {LISTING_STOPPED}",
                            st.requested
                        )))
                    } else {
                        st.requested += 1;
                        Next::InFlight(spawn(link))
                    };
                }
                match resp.json::<P>() {
                    Ok(page) => Some((Ok(page), st)),
                    Err(e) => {
                        // Drops (aborts) the next page in flight.
                        st.next = Next::Done;
                        Some((Err(e.into()), st))
                    }
                }
            }
        })
        .boxed()
    }

    /// [`GraphClient::pages`] of a collection that exists in every tenant: a 404 there means
    /// the Graph URL is wrong ([`GraphError::is_unknown_endpoint`]).
    fn collection<T>(&self, first_url: String) -> BoxStream<'static, Result<Vec<T>, GraphError>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.pages(first_url)
            .map(|page| page.map_err(GraphError::collection_not_found))
            .boxed()
    }

    /// Every page of a collection that exists in every tenant, in one Vec.
    async fn collect_all<T>(&self, first_url: String) -> Result<Vec<T>, GraphError>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let mut all = Vec::new();
        let mut pages = self.collection::<T>(first_url);
        while let Some(page) = pages.next().await {
            all.extend(page?);
        }
        Ok(all)
    }

    /// One user by object id or UPN, `$select`ing [`USER_SELECT`]. A 404
    /// (`Request_ResourceNotFound`) means there is no such user. Permission: `User.Read.All`.
    pub async fn get_user(&self, id_or_upn: &str) -> Result<User, GraphError> {
        let url = format!(
            "{}{}?$select={}",
            self.base,
            paths::user(object_id(id_or_upn)?),
            USER_SELECT.join(",")
        );
        self.get(&url).await?.json()
    }

    /// Every domain of the tenant. Permission: `Domain.Read.All`.
    pub async fn list_domains(&self) -> Result<Vec<Domain>, GraphError> {
        self.collect_all(format!("{}{}", self.base, paths::DOMAINS))
            .await
    }

    /// Every soft-deleted user (`GET /directory/deletedItems/microsoft.graph.user`, 999 a
    /// page, `$select`ing [`USER_SELECT`] and `deletedDateTime`): restorable for 30 days, and
    /// still holding their addresses. Permission: `User.Read.All`.
    pub async fn list_deleted_users(&self) -> Result<Vec<DeletedUser>, GraphError> {
        self.collect_all(format!(
            "{}{}?$select={},deletedDateTime&$top=999",
            self.base,
            paths::DELETED_USERS,
            USER_SELECT.join(",")
        ))
        .await
    }

    /// Restores a soft-deleted user (or Microsoft 365 group) by object id
    /// (`POST /directory/deletedItems/{id}/restore`): the restored object. Not retried after a
    /// lost answer (it is a POST). Permission: `User.ReadWrite.All` (newer least-privileged:
    /// `User.DeleteRestore.All`).
    pub async fn restore_deleted(&self, id: &str) -> Result<DirectoryObject, GraphError> {
        self.request(Method::POST, &paths::restore(object_id(id)?), None)
            .await?
            .json()
    }

    /// Permanently deletes a soft-deleted object by object id
    /// (`DELETE /directory/deletedItems/{id}`); it cannot be restored afterwards. A 404
    /// after an attempt whose answer was lost counts as done. Permission: delegated
    /// `User.ReadWrite.All` with the User Administrator role; Microsoft documents no
    /// application permission for users (graph-notes §16).
    pub async fn purge_deleted(&self, id: &str) -> Result<(), GraphError> {
        self.request(Method::DELETE, &paths::deleted_item(object_id(id)?), None)
            .await
            .map(|_| ())
    }

    /// Every group, `$select`ing [`GROUP_SELECT`], 999 a page. Permission: `Group.Read.All`.
    pub async fn list_groups(&self) -> Result<Vec<Group>, GraphError> {
        self.collect_all(format!(
            "{}{}?$select={}&$top=999",
            self.base,
            paths::GROUPS,
            GROUP_SELECT.join(",")
        ))
        .await
    }

    /// One group by object id, `$select`ing [`GROUP_SELECT`]. Permission: `Group.Read.All`.
    pub async fn get_group(&self, id: &str) -> Result<Group, GraphError> {
        let url = format!(
            "{}{}?$select={}",
            self.base,
            paths::group(object_id(id)?),
            GROUP_SELECT.join(",")
        );
        self.get(&url).await?.json()
    }

    /// The object ids of a group's direct members (users, groups, devices...), 999 a page.
    /// A 404 (`Request_ResourceNotFound`) means the group is gone. Permission:
    /// `GroupMember.Read.All` (or `Group.Read.All`).
    pub async fn list_group_members(&self, group_id: &str) -> Result<Vec<String>, GraphError> {
        let mut ids = Vec::new();
        let mut pages = self.pages::<DirectoryObject>(format!(
            "{}{}?$select=id&$top=999",
            self.base,
            paths::members(object_id(group_id)?)
        ));
        while let Some(page) = pages.next().await {
            ids.extend(page?.into_iter().map(|o| o.id));
        }
        Ok(ids)
    }

    /// The number of users (`GET /users/$count` with `ConsistencyLevel: eventual`, a
    /// `text/plain` answer); eventually consistent, so recent changes may be missing.
    /// Permission: `User.Read.All`.
    pub async fn count_users(&self) -> Result<u64, GraphError> {
        self.count_users_where(None).await
    }

    /// The number of users matching an OData `$filter` (`None`: every user), as
    /// [`GraphClient::count_users`] (the filter is percent-encoded here).
    pub async fn count_users_where(&self, filter: Option<&str>) -> Result<u64, GraphError> {
        let url = match filter {
            None => format!("{}{}/$count", self.base, paths::USERS),
            Some(f) => format!(
                "{}{}/$count?$filter={}",
                self.base,
                paths::USERS,
                paths::query_value(f)
            ),
        };
        let resp = self
            .call(Call {
                method: Method::GET,
                url: &url,
                body: None,
                accept: "text/plain",
                headers: &[("ConsistencyLevel", "eventual")],
                deadline: self.timeout,
            })
            .await
            .map_err(GraphError::collection_not_found)?;
        let text = String::from_utf8_lossy(&resp.body);
        // Graph answers `893`; a UTF-8 byte order mark has been seen in front of it.
        text.trim()
            .trim_start_matches('\u{feff}')
            .parse()
            .map_err(|_| {
                GraphError::Malformed(format!(
                    "GET /users/$count answered `{}`, not a number",
                    clip(text.trim(), 80)
                ))
            })
    }

    /// [`GraphClient::get`], keeping the headers of an error answer (a 410's `Location`).
    pub(crate) async fn get_keeping_headers(
        &self,
        url: &str,
    ) -> Result<GraphResponse, CallFailure> {
        self.call_full(Call {
            method: Method::GET,
            url,
            body: None,
            accept: "application/json",
            headers: &[],
            deadline: self.timeout,
        })
        .await
    }

    /// GET with bearer, 401-refresh and retry. `url` is absolute (under the base URL's
    /// origin) or a path relative to the base (`/users/...`).
    pub async fn get(&self, url: &str) -> Result<GraphResponse, GraphError> {
        self.request(Method::GET, url, None).await
    }

    /// Any Graph request with an optional JSON body, within the client's deadline
    /// ([`GraphClient::with_timeout`]) per attempt.
    ///
    /// Retries, up to the retry policy's attempts, with jittered backoff or the server's
    /// `Retry-After` (one longer than `max_delay` is handed to the caller at once):
    /// - 429 and 503 ("not processed, come back later"): every method;
    /// - a transport error (connection refused or reset, deadline passed) and 504: idempotent
    ///   methods (GET, HEAD, PUT, DELETE, OPTIONS). A POST or PATCH is not sent again: Graph
    ///   may have acted on it, so its outcome is unknown and the caller decides;
    /// - 500 and 502: reads (GET, HEAD, OPTIONS).
    ///
    /// A 401 refreshes the token once. A DELETE answered 404 after an attempt whose answer
    /// was lost is done (the first attempt deleted it).
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        json_body: Option<Bytes>,
    ) -> Result<GraphResponse, GraphError> {
        self.request_within(method, url, json_body, self.timeout)
            .await
    }

    /// [`GraphClient::request`] with its own deadline per attempt (`$batch` uses the client's
    /// batch timeout).
    pub async fn request_within(
        &self,
        method: Method,
        url: &str,
        json_body: Option<Bytes>,
        deadline: Duration,
    ) -> Result<GraphResponse, GraphError> {
        self.call(Call {
            method,
            url,
            body: json_body,
            accept: "application/json",
            headers: &[],
            deadline,
        })
        .await
    }

    async fn call(&self, c: Call<'_>) -> Result<GraphResponse, GraphError> {
        self.call_full(c).await.map_err(|f| f.error)
    }

    /// [`GraphClient::call`], keeping the headers of an error answer (a 410's `Location`).
    async fn call_full(&self, c: Call<'_>) -> Result<GraphResponse, CallFailure> {
        let Call {
            method,
            url,
            body: json_body,
            accept,
            headers: extra,
            deadline,
        } = c;
        let url = self.resolve(url).map_err(CallFailure::bare)?;
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        let read = matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
        let mut attempt: u32 = 0;
        let mut refreshed = false;
        let mut rejected: Option<String> = None;
        // An earlier attempt got no answer: Graph may have acted on it.
        let mut lost_answer = false;
        loop {
            attempt += 1;
            let token =
                match tokio::time::timeout(deadline, self.tokens.token(rejected.take().as_deref()))
                    .await
                {
                    Ok(t) => t.map_err(CallFailure::bare)?,
                    Err(_) => {
                        return Err(CallFailure::bare(GraphError::Transport(format!(
                            "no access token within {}: the sign-in service did not answer",
                            human(deadline)
                        ))))
                    }
                };
            let mut req = self
                .http
                .request(method.clone(), url.as_str())
                // Replaces the HTTP client's own overall timeout for this request.
                .timeout(deadline)
                .header(AUTHORIZATION, format!("Bearer {token}"))
                .header(reqwest::header::ACCEPT, accept);
            for (k, v) in extra {
                req = req.header(*k, *v);
            }
            if let Some(body) = &json_body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            let exchange = async {
                let mut resp = req.send().await.map_err(Failure::Http)?;
                let status = resp.status();
                let headers = std::mem::take(resp.headers_mut());
                let body = read_body(&mut resp, MAX_BODY_BYTES).await?;
                Ok::<_, Failure>((status, headers, body))
            };
            let outcome = tokio::time::timeout(deadline, exchange)
                .await
                .unwrap_or(Err(Failure::Deadline));
            let (status, headers, body) = match outcome {
                Ok(x) => x,
                Err(Failure::TooLarge(n)) => {
                    return Err(CallFailure::bare(GraphError::Malformed(format!(
                        "the answer to {method} {} is {n} bytes or more, over the {} MiB m365sync \
                         reads",
                        path_of(&url),
                        MAX_BODY_BYTES >> 20
                    ))))
                }
                Err(f) => {
                    let err = GraphError::Transport(match f {
                        Failure::Http(e) if !e.is_timeout() => error_chain(&e.without_url()),
                        _ => format!(
                            "no complete answer within {} (the deadline of one request): \
                             the request was abandoned",
                            human(deadline)
                        ),
                    });
                    lost_answer = true;
                    if idempotent && attempt < self.retry.max_attempts {
                        let wait = self.retry.backoff(attempt);
                        tracing::warn!(%method, %url, attempt, ?wait, error = %err, "Graph transport error, retrying");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(CallFailure::bare(err));
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
            let mut err =
                GraphError::from_response(status.as_u16(), &body, request_id(&headers), ra);
            if err.is_unknown_endpoint() {
                // Not Graph's envelope: say which URL, the user has to correct it.
                if let GraphError::Api { message, .. } = &mut err {
                    *message = format!(
                        "{method} {} answered 404 without a Microsoft Graph error ({message})",
                        path_of(&url)
                    );
                }
            }
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                // The token was rejected (expired early, revoked): refresh once and retry;
                // this retry does not count as an attempt.
                tracing::info!(%method, %url, "Graph answered 401, refreshing the token");
                refreshed = true;
                rejected = Some(token);
                attempt -= 1;
                continue;
            }
            if method == Method::DELETE
                && lost_answer
                && status == StatusCode::NOT_FOUND
                && !err.is_unknown_endpoint()
            {
                tracing::info!(%method, %url, "404 after a lost answer: the earlier DELETE did it");
                return Ok(GraphResponse {
                    status: StatusCode::NO_CONTENT.as_u16(),
                    headers,
                    body: Bytes::new(),
                });
            }
            let retryable = match status.as_u16() {
                429 => !self.throttling_to_caller,
                503 => true,
                504 => idempotent,
                500 | 502 => read,
                _ => false,
            };
            if !retryable || attempt >= self.retry.max_attempts {
                return Err(CallFailure {
                    error: err,
                    headers: Some(headers),
                });
            }
            let wait = match ra {
                // Waiting longer than we are prepared to: hand the wait to the caller.
                Some(d) if d > self.retry.max_delay => {
                    return Err(CallFailure {
                        error: err,
                        headers: Some(headers),
                    })
                }
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

/// The URL without its query, for messages (`http://host/v1.0/users`).
fn path_of(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
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
    fn a_base_without_a_path_means_v1_0_and_a_path_is_kept() {
        for (given, base) in [
            (
                "https://graph.microsoft.com",
                "https://graph.microsoft.com/v1.0",
            ),
            (
                "https://graph.microsoft.com/",
                "https://graph.microsoft.com/v1.0",
            ),
            ("http://127.0.0.1:8443", "http://127.0.0.1:8443/v1.0"),
            (" http://127.0.0.1:8443/ ", "http://127.0.0.1:8443/v1.0"),
            (
                "https://graph.microsoft.com/v1.0",
                "https://graph.microsoft.com/v1.0",
            ),
            (
                "https://graph.microsoft.com/v1.0/",
                "https://graph.microsoft.com/v1.0",
            ),
            (
                "https://graph.microsoft.com/beta",
                "https://graph.microsoft.com/beta",
            ),
            (
                "https://proxy.example/graph/v1.0",
                "https://proxy.example/graph/v1.0",
            ),
            // Not a URL: kept, the first request says why.
            ("graph.microsoft.com", "graph.microsoft.com"),
        ] {
            assert_eq!(normalize_base(given), base, "{given}");
            let c = GraphClient::new(
                crate::config::http_client(None).unwrap(),
                given,
                Arc::new(StaticToken("t".into())),
            );
            assert_eq!(c.base(), base, "{given}");
        }
    }

    #[test]
    fn one_request_has_a_bounded_worst_case() {
        let c = GraphClient::new(
            crate::config::http_client(None).unwrap(),
            "https://graph.microsoft.com",
            Arc::new(StaticToken("t".into())),
        );
        assert_eq!(c.timeout(), DEFAULT_TIMEOUT);
        assert_eq!(c.batch_timeout(), DEFAULT_BATCH_TIMEOUT);
        // 6 attempts + 401 retry + token, 60 s each; 5 waits of at most 60 s.
        assert_eq!(
            c.max_request_time(c.timeout()),
            Duration::from_secs(8 * 60 + 5 * 60)
        );
        let c = c
            .with_retry(RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_secs(1),
            })
            .with_timeout(Duration::from_secs(2))
            .with_max_pages(0);
        assert_eq!(c.retry_policy().max_total_wait(), Duration::from_secs(2));
        assert_eq!(
            c.max_request_time(c.timeout()),
            Duration::from_secs(5 * 2 + 2)
        );
        assert_eq!(c.max_pages, 1, "at least one page");
        let never = RetryPolicy {
            max_attempts: u32::MAX,
            base_delay: Duration::MAX,
            max_delay: Duration::MAX,
        };
        assert_eq!(
            never.max_total_wait(),
            Duration::MAX,
            "saturates, never overflows"
        );
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
