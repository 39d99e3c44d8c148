//! A cold listing of every user, in parallel: the tenant split into disjoint shards by the
//! first characters of the UPN (`$filter=startswith(userPrincipalName,'x')`, supported by
//! default: graph-notes §19), paged concurrently within a read budget, and proven complete
//! against the tenant's count (`/users/$count`), else listed again sequentially.
//!
//! How the shards are chosen, whatever Graph's case rule for `startswith` is (UNVERIFIED,
//! graph-notes §19):
//! 1. One count per allowed first character of a UPN (`A-Z a-z 0-9 ' . - _ ! # ^ ~`, 69
//!    prefixes). If every letter counts the same in both cases and the lower-case letters,
//!    digits and signs add up to the tenant's count, `startswith` is case-insensitive: 43
//!    shards (`a` lists `a…` and `A…`). If all 69 add up to the count, it is case-sensitive:
//!    69 shards. Otherwise (counts lagging, UPNs starting with something else): 69 shards.
//! 2. A prefix with more pages than its share of the work is split by the second character
//!    (the same alphabet, plus `@` for a one-character local part).
//! 3. Every user is kept once, by object id, whatever shard brought it.
//! 4. Complete only when the users found equal the tenant's count (taken before, or again
//!    after the shards). Otherwise, or when Graph refuses a shard (400), or when the count is
//!    not available, the tenant is listed again sequentially and that listing is the result.
//!
//! The first delta link (`$deltatoken=latest`) is taken before anything is listed, so the
//! delta rounds after this listing miss nothing.
//!
//! Reads are paced (a token bucket of resource units, graph-notes §8: a `$select`ed page of
//! users costs 1 RU, a count 1 RU), slowed down when Graph says a quota is 80% used
//! (`x-ms-throttle-limit-percentage`) and paused for `Retry-After` on a 429.
use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::HeaderMap;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::client::PageFetch;
use super::delta::DeltaError;
use super::model::{Page, User, USER_SELECT};
use super::{paths, GraphClient, GraphError};

/// Every character a UPN may start with (graph-notes §1): the letters in both cases.
pub const UPN_FIRST_CHARS: &str =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'.-_!#^~";

/// How a cold listing runs.
#[derive(Debug, Clone)]
pub struct ColdListingOptions {
    /// `$top` of every page (1..=999).
    pub page_size: u32,
    /// Shards in flight at once; each has at most one request on the wire. The read budget
    /// (`ru_per_10s`) is what protects the tenant's quota; this bounds the connections. 24:
    /// on a 100k-user tenant the shards' fixed cost (a request per shard, most of them short)
    /// needs about that many to make the listing 7-8 times faster than paging through it.
    pub concurrency: usize,
    /// Resource units the listing may spend per 10 s (Graph's quota for a large tenant is
    /// 8,000 per app and tenant: the default takes half, leaving room for everything else).
    pub ru_per_10s: u32,
    /// Below this many users the listing is sequential (counting the shards costs more than
    /// it saves).
    pub min_users_to_shard: u64,
    /// The longest prefix a shard is split to (1 = never split).
    pub max_prefix_len: usize,
    /// The users the tenant had last time (the snapshot's count), if known: when it is worth
    /// sharding, the prefix counts go out with the first requests (one round trip less).
    pub expected_users: Option<u64>,
}

impl Default for ColdListingOptions {
    fn default() -> Self {
        ColdListingOptions {
            page_size: 999,
            concurrency: 24,
            ru_per_10s: 4_000,
            min_users_to_shard: 10_000,
            max_prefix_len: 2,
            expected_users: None,
        }
    }
}

/// What a listing reports while it runs (for the Import tab's gauge and rows).
#[derive(Debug, Clone)]
pub enum ListingEvent {
    /// The plan: how many users the tenant counts (if known) and how many shards run (1 for a
    /// sequential listing).
    Planned {
        expected: Option<u64>,
        shards: usize,
    },
    /// Users no earlier page of this listing had; `listed` counts every user so far.
    Page {
        users: Arc<Vec<User>>,
        listed: u64,
        expected: Option<u64>,
    },
    /// The pages reported so far are void: the tenant is listed again sequentially, because
    /// `reason`.
    Restart { reason: String },
}

/// How `startswith` on the UPN behaved, as the counts showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseRule {
    /// `startswith(userPrincipalName,'a')` also finds `Ann@…` (as Graph is believed to).
    Insensitive,
    /// Upper and lower case are different shards.
    Sensitive,
    /// The counts did not add up either way: every prefix in both cases, users kept once.
    Unknown,
}

/// How the listing ended up being done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListingMode {
    /// In shards, proven complete against the tenant's count.
    Sharded { shards: usize, case_rule: CaseRule },
    /// Sequentially, with why (small tenant, no count, a shard refused, counts not adding up).
    Sequential { reason: String },
}

/// Every user of the tenant, each once.
#[derive(Debug, Clone)]
pub struct ColdListing {
    /// As listed (not in any order), shared: the console and the plan hold these Arcs.
    pub pages: Vec<Arc<Vec<User>>>,
    /// Users in `pages`.
    pub users: u64,
    /// The delta link taken before listing (`$deltatoken=latest`): the next round starts
    /// there. `None` when Graph would not give one (see `delta_error`).
    pub delta_link: Option<String>,
    pub delta_error: Option<DeltaError>,
    /// When the listing started: every change before it is in the pages.
    pub started_at: OffsetDateTime,
    pub mode: ListingMode,
    /// Graph requests sent (counts, pages, the delta link), retries not counted.
    pub requests: u64,
}

/// The users' key for "seen already": the object id as a number (a GUID) or a 128-bit hash
/// of it; a collision (never seen, 2^-64 odds) would drop a user, and the count check would
/// catch it and list again.
struct Seen {
    keys: HashSet<u128>,
    h1: RandomState,
    h2: RandomState,
}

impl Seen {
    fn new() -> Seen {
        Seen {
            keys: HashSet::new(),
            h1: RandomState::new(),
            h2: RandomState::new(),
        }
    }
    fn key(&self, id: &str) -> u128 {
        match uuid::Uuid::try_parse(id) {
            Ok(u) => u.as_u128(),
            Err(_) => (u128::from(self.h1.hash_one(id)) << 64) | u128::from(self.h2.hash_one(id)),
        }
    }
    /// True the first time `id` is seen.
    fn insert(&mut self, id: &str) -> bool {
        self.keys.insert(self.key(id))
    }
    fn len(&self) -> u64 {
        self.keys.len() as u64
    }
}

/// A token bucket of resource units shared by every request of a listing.
pub(crate) struct Pacer {
    state: Mutex<PacerState>,
}

struct PacerState {
    /// RU per second now, and at most.
    rate: f64,
    max_rate: f64,
    tokens: f64,
    burst: f64,
    last: Instant,
    paused_until: Option<Instant>,
}

impl Pacer {
    pub(crate) fn new(ru_per_10s: u32) -> Pacer {
        let max_rate = (f64::from(ru_per_10s) / 10.0).max(0.1);
        Pacer {
            state: Mutex::new(PacerState {
                rate: max_rate,
                max_rate,
                tokens: max_rate.max(1.0),
                burst: max_rate.max(1.0),
                last: Instant::now(),
                paused_until: None,
            }),
        }
    }

    /// Waits until `cost` RU may be spent (and spends them).
    pub(crate) async fn acquire(&self, cost: f64) {
        loop {
            let wait = {
                let mut s = self.state.lock().unwrap();
                let now = Instant::now();
                let elapsed = now.duration_since(s.last).as_secs_f64();
                s.tokens = (s.tokens + elapsed * s.rate).min(s.burst);
                s.last = now;
                match s.paused_until {
                    Some(until) if until > now => until - now,
                    _ if s.tokens >= cost => {
                        s.tokens -= cost;
                        return;
                    }
                    _ => Duration::from_secs_f64(((cost - s.tokens) / s.rate).min(60.0)),
                }
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    /// Learns from an answer's headers: its real cost (`x-ms-resource-unit`), and slows down
    /// while Graph says a quota is 90% used or more (`x-ms-throttle-limit-percentage`, sent
    /// from 80%); speeds up again, a little per answer, when it no longer says so.
    pub(crate) fn observe(&self, headers: &HeaderMap) {
        let num = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        let mut s = self.state.lock().unwrap();
        if let Some(ru) = num("x-ms-resource-unit") {
            // 1 RU was taken before sending.
            s.tokens -= (ru - 1.0).clamp(0.0, 100.0);
        }
        match num("x-ms-throttle-limit-percentage") {
            Some(p) if p >= 0.9 => s.rate = (s.rate * 0.7).max(s.max_rate * 0.05),
            _ => s.rate = (s.rate + s.max_rate * 0.02).min(s.max_rate),
        }
    }

    /// A 429: nobody sends before `wait` has passed, and the rate halves.
    pub(crate) fn pause(&self, wait: Duration) {
        let mut s = self.state.lock().unwrap();
        let until = Instant::now() + wait;
        s.paused_until = Some(s.paused_until.map_or(until, |u| u.max(until)));
        s.rate = (s.rate * 0.5).max(s.max_rate * 0.05);
    }
}

/// At most this many times a request answered 429 (after the client's own retries) is sent
/// again by a listing.
const MAX_THROTTLED: u32 = 8;

/// `startswith(userPrincipalName,'<prefix>')`, the quote doubled as OData wants.
pub fn upn_prefix_filter(prefix: &str) -> String {
    format!(
        "startswith(userPrincipalName,'{}')",
        prefix.replace('\'', "''")
    )
}

struct Shard {
    prefix: String,
    /// Estimated users (the count of its prefix, or a share of its parent's).
    estimate: u64,
}

/// The shards' plan.
struct Plan {
    shards: Vec<Shard>,
    case_rule: CaseRule,
}

/// Why a sharded listing gave up for a sequential one.
struct Fallback(String);

impl GraphClient {
    /// A request paced by `pacer`. The client hands a 429 back at once (not waited out for
    /// this request alone): every request of the listing pauses for its `Retry-After` (or a
    /// backoff without one), then this one is sent again; at most [`MAX_THROTTLED`] times.
    async fn paced<T, F, Fut>(&self, pacer: &Pacer, send: F) -> Result<T, GraphError>
    where
        F: Fn(GraphClient) -> Fut,
        Fut: std::future::Future<Output = Result<T, GraphError>>,
    {
        let mut client = self.clone();
        client.throttling_to_caller = true;
        let mut throttled = 0u32;
        loop {
            pacer.acquire(1.0).await;
            match send(client.clone()).await {
                Err(e) if e.status() == Some(429) && throttled < MAX_THROTTLED => {
                    throttled += 1;
                    let wait = e
                        .retry_after()
                        .unwrap_or_else(|| self.retry_policy().backoff(throttled));
                    tracing::warn!(
                        ?wait,
                        throttled,
                        "listing throttled (429): every shard waits"
                    );
                    pacer.pause(wait);
                }
                r => return r,
            }
        }
    }

    async fn paced_get(
        &self,
        pacer: &Pacer,
        url: &str,
    ) -> Result<super::GraphResponse, GraphError> {
        let r = self
            .paced(pacer, |c| async move { c.get(url).await })
            .await?;
        pacer.observe(&r.headers);
        Ok(r)
    }

    async fn paced_count(&self, pacer: &Pacer, filter: &str) -> Result<u64, GraphError> {
        self.paced(
            pacer,
            |c| async move { c.count_users_where(Some(filter)).await },
        )
        .await
    }

    fn users_url(&self, filter: Option<&str>, page_size: u32) -> String {
        let filter = filter
            .map(|f| format!("$filter={}&", paths::query_value(f)))
            .unwrap_or_default();
        format!(
            "{}{}?{filter}$select={}&$top={page_size}",
            self.base(),
            paths::USERS,
            USER_SELECT.join(",")
        )
    }

    /// Every user, each once, as fast as the read budget allows: the first delta link, the
    /// count, then shards in parallel proven complete against the count, or a sequential
    /// listing (see the module's doc). `on_event` hears the plan, every page of new users, and
    /// a restart (the pages heard so far are void). Permission: `User.Read.All`.
    ///
    /// Errors: a Graph failure that is not a refusal of a shard (network, 401/403, throttled
    /// beyond the bounds) ends the listing.
    pub async fn cold_listing(
        &self,
        opts: &ColdListingOptions,
        on_event: &mut (dyn FnMut(ListingEvent) + Send),
    ) -> Result<ColdListing, GraphError> {
        let started_at = OffsetDateTime::now_utc();
        let pacer = Arc::new(Pacer::new(opts.ru_per_10s));
        let mut requests = 2u64;
        // The link first ("from now"), with the count beside it: both before any page.
        let early = opts.concurrency > 1
            && opts
                .expected_users
                .is_some_and(|n| n >= opts.min_users_to_shard);
        let (delta, count, early_counts) =
            tokio::join!(self.users_delta_latest(), self.count_users(), async {
                if early {
                    Some(self.prefix_counts(&pacer).await)
                } else {
                    None
                }
            });
        if let Some(c) = &early_counts {
            requests += c.len() as u64;
        }
        let (delta_link, delta_error) = match delta {
            Ok(l) => (Some(l), None),
            Err(e) => {
                tracing::warn!(error = %e, "no delta link before the listing");
                (None, Some(e))
            }
        };
        let done = |pages, users, mode, requests| ColdListing {
            pages,
            users,
            delta_link: delta_link.clone(),
            delta_error: delta_error.clone(),
            started_at,
            mode,
            requests,
        };
        let total = match count {
            Ok(n) => n,
            Err(e) => {
                let reason = format!("the tenant's user count is not available ({e})");
                let (pages, users, r) = self.sequential(opts, None, on_event).await?;
                return Ok(done(
                    pages,
                    users,
                    ListingMode::Sequential { reason },
                    requests + r,
                ));
            }
        };
        if total < opts.min_users_to_shard || opts.concurrency <= 1 {
            let reason = format!(
                "{total} users: fewer than the {} worth listing in shards",
                opts.min_users_to_shard
            );
            let (pages, users, r) = self.sequential(opts, Some(total), on_event).await?;
            return Ok(done(
                pages,
                users,
                ListingMode::Sequential { reason },
                requests + r,
            ));
        }
        let sharded = self
            .sharded(opts, &pacer, total, early_counts, &mut requests, on_event)
            .await?;
        match sharded {
            Ok((pages, users, plan_len, case_rule)) => Ok(done(
                pages,
                users,
                ListingMode::Sharded {
                    shards: plan_len,
                    case_rule,
                },
                requests,
            )),
            Err(Fallback(reason)) => {
                tracing::warn!(%reason, "sharded listing falls back to a sequential one");
                on_event(ListingEvent::Restart {
                    reason: reason.clone(),
                });
                let (pages, users, r) = self.sequential(opts, Some(total), on_event).await?;
                Ok(done(
                    pages,
                    users,
                    ListingMode::Sequential { reason },
                    requests + r,
                ))
            }
        }
    }

    /// Every user through `/users` pages, each once. (pages, users, requests)
    async fn sequential(
        &self,
        opts: &ColdListingOptions,
        expected: Option<u64>,
        on_event: &mut (dyn FnMut(ListingEvent) + Send),
    ) -> Result<(Vec<Arc<Vec<User>>>, u64, u64), GraphError> {
        on_event(ListingEvent::Planned {
            expected,
            shards: 1,
        });
        let mut seen = Seen::new();
        let mut pages = Vec::new();
        let mut requests = 0u64;
        let mut stream = self.list_users(opts.page_size);
        while let Some(page) = stream.next().await {
            requests += 1;
            let mut users = page?;
            users.retain(|u| seen.insert(&u.id));
            if users.is_empty() {
                continue;
            }
            let users = Arc::new(users);
            pages.push(users.clone());
            on_event(ListingEvent::Page {
                users,
                listed: seen.len(),
                expected,
            });
        }
        Ok((pages, seen.len(), requests))
    }

    /// The counts, the plan, the shards. `Ok(Err(..))`: fall back to a sequential listing.
    #[allow(clippy::type_complexity)]
    async fn sharded(
        &self,
        opts: &ColdListingOptions,
        pacer: &Arc<Pacer>,
        total: u64,
        counts: Option<PrefixCounts>,
        requests: &mut u64,
        on_event: &mut (dyn FnMut(ListingEvent) + Send),
    ) -> Result<Result<(Vec<Arc<Vec<User>>>, u64, usize, CaseRule), Fallback>, GraphError> {
        let counts = match counts {
            Some(c) => c,
            None => {
                let c = self.prefix_counts(pacer).await;
                *requests += c.len() as u64;
                c
            }
        };
        let plan = match plan(opts, total, counts)? {
            Ok(p) => p,
            Err(f) => return Ok(Err(f)),
        };
        on_event(ListingEvent::Planned {
            expected: Some(total),
            shards: plan.shards.len(),
        });
        let n_shards = plan.shards.len();
        let client = self.clone();
        let fetch: PageFetch<GraphError> = {
            let pacer = pacer.clone();
            Arc::new(move |url: String| {
                let client = client.clone();
                let pacer = pacer.clone();
                Box::pin(async move { client.paced_get(&pacer, &url).await })
            })
        };
        let streams = plan.shards.into_iter().map(|s| {
            let url = self.users_url(Some(&upn_prefix_filter(&s.prefix)), opts.page_size);
            let prefix = s.prefix;
            self.page_stream::<Page<User>, GraphError>(url, fetch.clone())
                .map(move |p| (prefix.clone(), p))
        });
        let mut pages_in =
            futures::stream::iter(streams).flatten_unordered(opts.concurrency.max(1));
        let mut seen = Seen::new();
        let mut pages = Vec::new();
        while let Some((prefix, page)) = pages_in.next().await {
            *requests += 1;
            let mut users = match page {
                Ok(p) => p.value,
                Err(e) if e.status() == Some(400) => {
                    return Ok(Err(Fallback(format!(
                        "Graph refused the shard of UPNs starting with `{prefix}` ({e})"
                    ))));
                }
                Err(e) => return Err(e),
            };
            users.retain(|u| seen.insert(&u.id));
            if users.is_empty() {
                continue;
            }
            let users = Arc::new(users);
            pages.push(users.clone());
            on_event(ListingEvent::Page {
                users,
                listed: seen.len(),
                expected: Some(total),
            });
        }
        drop(pages_in);
        let found = seen.len();
        if found != total {
            // The tenant may have changed while listing: one more count, after.
            *requests += 1;
            let again = self.count_users().await?;
            if found != again {
                return Ok(Err(Fallback(format!(
                    "the shards found {found} users, the tenant counts {total} before and \
                     {again} after"
                ))));
            }
        }
        Ok(Ok((pages, found, n_shards, plan.case_rule)))
    }

    /// The users of every allowed first character (69 counts, one cheap request each: all in
    /// one wave, within the pacing).
    async fn prefix_counts(&self, pacer: &Arc<Pacer>) -> PrefixCounts {
        futures::stream::iter(UPN_FIRST_CHARS.chars())
            .map(|c| {
                let pacer = pacer.clone();
                async move {
                    let n = self
                        .paced_count(&pacer, &upn_prefix_filter(&c.to_string()))
                        .await;
                    (c, n)
                }
            })
            .buffered(UPN_FIRST_CHARS.len())
            .collect()
            .await
    }
}

type PrefixCounts = Vec<(char, Result<u64, GraphError>)>;

/// From the counts of every first character: the case rule and the shards (the big prefixes
/// split), or why to list sequentially.
fn plan(
    opts: &ColdListingOptions,
    total: u64,
    counts: PrefixCounts,
) -> Result<Result<Plan, Fallback>, GraphError> {
    let firsts: Vec<char> = UPN_FIRST_CHARS.chars().collect();
    let mut count = std::collections::HashMap::new();
    for (c, n) in counts {
        match n {
            Ok(n) => {
                count.insert(c, n);
            }
            Err(e) if e.status() == Some(400) => {
                return Ok(Err(Fallback(format!(
                    "Graph refused to count the UPNs starting with `{c}` ({e})"
                ))));
            }
            Err(e) => return Err(e),
        }
    }
    let is_upper = |c: &char| c.is_ascii_uppercase();
    let merged: u64 = firsts
        .iter()
        .filter(|c| !is_upper(c))
        .map(|c| count[c])
        .sum();
    let all: u64 = firsts.iter().map(|c| count[c]).sum();
    let letters_alike = ('a'..='z').all(|c| count[&c] == count[&c.to_ascii_uppercase()]);
    let case_rule = if letters_alike && merged == total {
        CaseRule::Insensitive
    } else if all == total {
        CaseRule::Sensitive
    } else {
        CaseRule::Unknown
    };
    let alphabet: Vec<char> = match case_rule {
        CaseRule::Insensitive => firsts.iter().copied().filter(|c| !is_upper(c)).collect(),
        _ => firsts.clone(),
    };
    // Second characters: the alphabet, and `@` (a one-character local part).
    let mut seconds = alphabet.clone();
    seconds.push('@');
    let level1 = alphabet
        .iter()
        .map(|c| Shard {
            prefix: c.to_string(),
            estimate: count[c],
        })
        .collect();
    let shards = split_shards(
        level1,
        &seconds,
        u64::from(opts.page_size.max(1)),
        opts.concurrency.max(1) as u64,
        opts.max_prefix_len,
    );
    tracing::info!(
        shards = shards.len(),
        ?case_rule,
        total,
        merged,
        all,
        "sharded listing planned"
    );
    Ok(Ok(Plan { shards, case_rule }))
}

/// Requests a shard of `estimate` users costs (an empty one still costs one).
fn requests_of(estimate: u64, page: u64) -> u64 {
    estimate.div_ceil(page).max(1)
}

/// Splits shards by one more character while it pays. With `concurrency` shards in flight the
/// listing takes about `max(requests / concurrency, pages of the longest shard)` round trips:
/// the longest shard is split (into one child per character of `seconds`, each an equal
/// share of it) while it is longer than the work per slot, and the split itself (a request
/// per child, most of them small) is counted. The result, longest first, so the last shards
/// to finish are short ones.
fn split_shards(
    mut shards: Vec<Shard>,
    seconds: &[char],
    page: u64,
    concurrency: u64,
    max_prefix_len: usize,
) -> Vec<Shard> {
    let mut requests: u64 = shards.iter().map(|s| requests_of(s.estimate, page)).sum();
    loop {
        let biggest = shards
            .iter()
            .enumerate()
            .filter(|(_, s)| s.prefix.chars().count() < max_prefix_len)
            .max_by_key(|(_, s)| s.estimate)
            .map(|(i, s)| (i, requests_of(s.estimate, page)));
        let Some((i, pages)) = biggest else { break };
        if pages <= requests.div_ceil(concurrency) {
            break;
        }
        let parent = shards.swap_remove(i);
        let each = parent.estimate.div_ceil(seconds.len() as u64);
        requests -= pages;
        for c in seconds {
            requests += requests_of(each, page);
            shards.push(Shard {
                prefix: format!("{}{c}", parent.prefix),
                estimate: each,
            });
        }
    }
    shards.sort_by(|a, b| b.estimate.cmp(&a.estimate).then(a.prefix.cmp(&b.prefix)));
    shards
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alphabet_is_every_allowed_first_character_once() {
        let set: HashSet<char> = UPN_FIRST_CHARS.chars().collect();
        assert_eq!(set.len(), UPN_FIRST_CHARS.chars().count());
        assert_eq!(set.len(), 26 * 2 + 10 + 8);
        for c in "'.-_!#^~".chars() {
            assert!(set.contains(&c));
        }
    }

    #[test]
    fn only_shards_longer_than_the_work_per_slot_are_split() {
        let seconds: Vec<char> = "ab@".chars().collect();
        let shard = |p: &str, n: u64| Shard {
            prefix: p.into(),
            estimate: n,
        };
        // 10 pages of `a` against 1 + 1 pages: with 4 in flight, `a` is the whole listing.
        let out = split_shards(
            vec![shard("a", 1000), shard("b", 100), shard("c", 100)],
            &seconds,
            100,
            4,
            2,
        );
        let prefixes: Vec<&str> = out.iter().map(|s| s.prefix.as_str()).collect();
        assert_eq!(prefixes, vec!["a@", "aa", "ab", "b", "c"]);
        // One in flight: splitting never pays.
        let out = split_shards(vec![shard("a", 1000), shard("b", 100)], &seconds, 100, 1, 2);
        assert_eq!(out.len(), 2);
        // Never beyond the longest prefix.
        let out = split_shards(vec![shard("a", 100_000)], &seconds, 100, 64, 1);
        assert_eq!(out.len(), 1);
        // Balanced shards stay as they are.
        let even: Vec<Shard> = (0..20).map(|i| shard(&i.to_string(), 500)).collect();
        assert_eq!(split_shards(even, &seconds, 100, 8, 2).len(), 20);
    }

    #[test]
    fn prefix_filters_double_the_quote() {
        assert_eq!(upn_prefix_filter("a"), "startswith(userPrincipalName,'a')");
        assert_eq!(upn_prefix_filter("'"), "startswith(userPrincipalName,'''')");
        assert_eq!(
            paths::query_value(&upn_prefix_filter("#")),
            "startswith%28userPrincipalName%2C%27%23%27%29"
        );
    }

    #[test]
    fn seen_keys_guids_by_value_and_other_ids_by_hash() {
        let mut s = Seen::new();
        assert!(s.insert("0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert!(!s.insert("0F8FAD5B-D9CB-469F-A165-70867728950E"));
        assert!(s.insert("id-1"));
        assert!(!s.insert("id-1"));
        assert!(s.insert("id-2"));
        assert_eq!(s.len(), 3);
    }

    #[tokio::test]
    async fn the_pacer_keeps_to_its_rate_and_pauses_on_429() {
        let p = Pacer::new(1_000); // 100 RU/s, a burst of 100
        let t = Instant::now();
        for _ in 0..130 {
            p.acquire(1.0).await;
        }
        // 100 at once, then 30 at 100 per second.
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(280), "{took:?}");
        assert!(took <= Duration::from_millis(900), "{took:?}");
        p.pause(Duration::from_millis(300));
        let t = Instant::now();
        p.acquire(1.0).await;
        assert!(t.elapsed() >= Duration::from_millis(300));
        // Graph says the quota is 95% used: slower.
        let mut h = HeaderMap::new();
        h.insert("x-ms-throttle-limit-percentage", "0.95".parse().unwrap());
        let before = p.state.lock().unwrap().rate;
        p.observe(&h);
        assert!(p.state.lock().unwrap().rate < before);
    }
}
