//! Shared simulator state: the tenant, issued tokens, device flows, counters.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime};

use super::budget::Budgets;
use super::fault::{Chaos, FaultPlan};
use super::tenant::{App, Tenant, User};

/// What never changes after start: read without the tenant lock (the identity side uses only
/// this, so token minting never waits for a Graph write).
pub struct Fixed {
    pub id: String,
    pub display_name: String,
    pub country: String,
    pub domains: Vec<serde_json::Value>,
    pub apps: Vec<App>,
    pub admin: User,
}

impl Fixed {
    pub fn of(t: &Tenant) -> Fixed {
        Fixed {
            id: t.id.clone(),
            display_name: t.display_name.clone(),
            country: t.country.clone(),
            domains: t.domains.clone(),
            apps: t.apps.clone(),
            admin: t.admin.clone(),
        }
    }

    pub fn app(&self, client_id: &str) -> Option<&App> {
        self.apps
            .iter()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }

    /// Does `segment` (a URL path segment) name this tenant?
    pub fn is_addressed_by(&self, segment: &str) -> bool {
        let s = segment.to_ascii_lowercase();
        s == "organizations"
            || s == "common"
            || s == self.id.to_ascii_lowercase()
            || self.domains.iter().any(|d| {
                d["isVerified"] == true
                    && d["id"]
                        .as_str()
                        .is_some_and(|id| id.eq_ignore_ascii_case(&s))
            })
    }
}

pub struct State {
    pub fixed: Fixed,
    /// Read-mostly; writes (create, update, delete, restore) take the write lock briefly and never
    /// across an await.
    pub tenant: RwLock<Tenant>,
    /// Per-client throttling (resource units and writes, graph-notes §8).
    pub budgets: Mutex<Budgets>,
    /// Random faults (`--error-rate`, `--reset-rate`, `--ambiguous-rate`), seeded.
    pub chaos: Mutex<Chaos>,
    /// Writes applied to the tenant (create, update, delete, restore, permanent delete).
    pub writes_applied: AtomicUsize,
    /// Graph 429s sent (budgets, direct or batch items, and `429` fault rules).
    pub throttled: AtomicUsize,
    pub tls: bool,
    /// `127.0.0.1:PORT`, used when a request carries no Host.
    pub local_host: String,
    pub token_lifetime: Duration,
    pub device_code_interval: u64,
    pub read_only_tenant: bool,
    pub object_quota: Option<usize>,
    pub sign_in_policy: Option<super::SignInPolicy>,
    pub password_grant: bool,
    pub device_code_lifetime: Duration,
    pub latency: Duration,
    /// A connection's first request (TLS handshake and head included), and any request's
    /// body, must arrive within this (`SimOptions::header_timeout`).
    pub header_timeout: Duration,
    /// A kept-alive connection with no new request for this long is closed.
    pub idle_timeout: Duration,
    /// Request bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
    pub faults: FaultPlan,
    /// `/users/delta` settings (token lifetime, page size, this run's identity).
    pub delta: super::delta::Settings,
    pub auth: Mutex<AuthStore>,
    pub counts: Mutex<HashMap<(String, String), usize>>,
}

impl State {
    pub fn tenant(&self) -> RwLockReadGuard<'_, Tenant> {
        self.tenant.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn tenant_mut(&self) -> RwLockWriteGuard<'_, Tenant> {
        self.tenant.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn budgets(&self) -> std::sync::MutexGuard<'_, Budgets> {
        self.budgets.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn chaos(&self) -> std::sync::MutexGuard<'_, Chaos> {
        self.chaos.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn note_write(&self) {
        self.writes_applied.fetch_add(1, Ordering::Relaxed);
    }

    pub fn note_throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn auth(&self) -> std::sync::MutexGuard<'_, AuthStore> {
        self.auth.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a request by method and path. Bounded: paths are cut to 256 bytes, and past
    /// 10,000 distinct (method, path) pairs new ones are counted under the path `…` (a
    /// client sending random paths cannot grow this without limit).
    pub fn count(&self, method: &str, path: &str) {
        const MAX_KEYS: usize = 10_000;
        const MAX_PATH: usize = 256;
        let mut cut = path.len().min(MAX_PATH);
        while !path.is_char_boundary(cut) {
            cut -= 1;
        }
        let method = if method.len() > 16 { "…" } else { method };
        let mut key = (method.to_owned(), path[..cut].to_owned());
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if c.len() >= MAX_KEYS && !c.contains_key(&key) {
            key.1 = "…".to_owned();
        }
        *c.entry(key).or_insert(0) += 1;
    }

    /// Requests counted whose method is `method` (`*` = any) and path starts with `prefix`.
    pub fn request_count(&self, method: &str, prefix: &str) -> usize {
        let c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.iter()
            .filter(|((m, p), _)| {
                (method == "*" || m.eq_ignore_ascii_case(method)) && p.starts_with(prefix)
            })
            .map(|(_, n)| *n)
            .sum()
    }

    /// Completes a pending device flow as if a person approved (signed in as the admin) or declined.
    pub fn complete_device_flow(&self, user_code: &str, approve: bool) -> Result<(), &'static str> {
        let code = normalize_user_code(user_code);
        let admin_id = self.fixed.admin.id.clone();
        let mut auth = self.auth();
        let Some(dc) = auth.by_user_code.get(&code).cloned() else {
            return Err("That code wasn't recognised.");
        };
        let Some(flow) = auth.flows.get_mut(&dc) else {
            return Err("That code wasn't recognised.");
        };
        if Instant::now() >= flow.expires {
            return Err("That code has expired. Start the sign-in again to get a new code.");
        }
        if !matches!(flow.status, FlowStatus::Pending) {
            return Err("That code has already been used.");
        }
        flow.status = if approve {
            FlowStatus::Approved { user_id: admin_id }
        } else {
            FlowStatus::Declined
        };
        Ok(())
    }

    pub fn pending_user_codes(&self) -> Vec<String> {
        let now = Instant::now();
        self.auth()
            .flows
            .values()
            .filter(|f| matches!(f.status, FlowStatus::Pending) && now < f.expires)
            .map(|f| f.user_code.clone())
            .collect()
    }
}

pub fn normalize_user_code(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[derive(Debug, Clone)]
pub enum Principal {
    User { id: String },
    App,
}

#[derive(Debug, Clone)]
pub struct AccessGrant {
    pub expires: SystemTime,
    pub principal: Principal,
    /// The app the token was issued to (`appid`): the throttling scope is (app, tenant).
    pub client_id: String,
    /// What the token grants Graph: an app token's `roles`, a delegated token's `scp`.
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    /// When it was issued (ms since the Unix epoch): `revokeSignInSessions` after it revokes it.
    pub issued_ms: u64,
}

#[derive(Debug, Clone)]
pub enum FlowStatus {
    Pending,
    Approved { user_id: String },
    Declined,
    Redeemed,
}

#[derive(Debug, Clone)]
pub struct DeviceFlow {
    pub user_code: String,
    pub client_id: String,
    pub scope: String,
    pub expires: Instant,
    pub interval: u64,
    pub last_poll: Option<Instant>,
    pub status: FlowStatus,
}

/// Issued tokens and device flows. Anyone may ask for tokens and device codes in a loop, so
/// each collection is bounded: at its cap, what has expired goes first, then the entries that
/// expire soonest (refresh tokens, which do not expire here, are dropped in no order), a
/// tenth of the cap at a time. Far above what a test or a demo holds.
#[derive(Debug, Default)]
pub struct AuthStore {
    pub access: HashMap<String, AccessGrant>,
    pub refresh: HashMap<String, RefreshGrant>,
    pub spent_refresh: HashSet<String>,
    pub flows: HashMap<String, DeviceFlow>,
    pub by_user_code: HashMap<String, String>,
    /// Failed password sign-ins (ROPC) by lower-case user id: count, and locked until when.
    pub failed_sign_ins: HashMap<String, (u32, Option<Instant>)>,
}

pub const MAX_ACCESS_TOKENS: usize = 100_000;
pub const MAX_REFRESH_TOKENS: usize = 100_000;
pub const MAX_DEVICE_FLOWS: usize = 10_000;

/// The keys of the `cap / 10` entries with the smallest `key_of` (e.g. the soonest expiry).
fn soonest<K: Clone, V, T: Ord + Copy>(
    m: &HashMap<K, V>,
    cap: usize,
    key_of: impl Fn(&V) -> T,
) -> Vec<K> {
    let mut all: Vec<(T, &K)> = m.iter().map(|(k, v)| (key_of(v), k)).collect();
    let n = (cap / 10).clamp(1, all.len().max(1));
    if all.len() > n {
        all.select_nth_unstable_by_key(n, |(t, _)| *t);
        all.truncate(n);
    }
    all.into_iter().map(|(_, k)| k.clone()).collect()
}

impl AuthStore {
    pub fn add_access(&mut self, token: String, grant: AccessGrant) {
        if self.access.len() >= MAX_ACCESS_TOKENS {
            let now = SystemTime::now();
            self.access.retain(|_, g| g.expires > now);
            if self.access.len() >= MAX_ACCESS_TOKENS {
                for k in soonest(&self.access, MAX_ACCESS_TOKENS, |g| g.expires) {
                    self.access.remove(&k);
                }
            }
        }
        self.access.insert(token, grant);
    }

    pub fn add_refresh(&mut self, token: String, grant: RefreshGrant) {
        if self.refresh.len() >= MAX_REFRESH_TOKENS {
            let drop: Vec<String> = self
                .refresh
                .keys()
                .take(MAX_REFRESH_TOKENS / 10)
                .cloned()
                .collect();
            for k in drop {
                self.refresh.remove(&k);
            }
        }
        self.refresh.insert(token, grant);
    }

    /// Remembers a refresh token that was redeemed (a second use is refused as revoked).
    pub fn spend_refresh(&mut self, token: String) {
        if self.spent_refresh.len() >= MAX_REFRESH_TOKENS {
            let drop: Vec<String> = self
                .spent_refresh
                .iter()
                .take(MAX_REFRESH_TOKENS / 10)
                .cloned()
                .collect();
            for k in drop {
                self.spent_refresh.remove(&k);
            }
        }
        self.spent_refresh.insert(token);
    }

    pub fn add_flow(&mut self, device_code: String, flow: DeviceFlow) {
        if self.flows.len() >= MAX_DEVICE_FLOWS {
            let now = Instant::now();
            let expired: Vec<String> = self
                .flows
                .iter()
                .filter(|(_, f)| f.expires <= now)
                .map(|(k, _)| k.clone())
                .collect();
            let drop = if self.flows.len() - expired.len() >= MAX_DEVICE_FLOWS {
                soonest(&self.flows, MAX_DEVICE_FLOWS, |f| f.expires)
            } else {
                expired
            };
            for k in drop {
                if let Some(f) = self.flows.remove(&k) {
                    self.by_user_code.remove(&f.user_code);
                }
            }
        }
        self.by_user_code
            .insert(flow.user_code.clone(), device_code.clone());
        self.flows.insert(device_code, flow);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(expires: SystemTime) -> AccessGrant {
        AccessGrant {
            expires,
            principal: Principal::App,
            client_id: "c".into(),
            permissions: Vec::new(),
        }
    }

    #[test]
    fn token_stores_are_bounded_expired_first() {
        let mut a = AuthStore::default();
        let now = SystemTime::now();
        let past = now - Duration::from_secs(10);
        let later = now + Duration::from_secs(3600);
        for i in 0..MAX_ACCESS_TOKENS {
            a.add_access(
                format!("old{i}"),
                grant(if i % 2 == 0 { past } else { later }),
            );
        }
        assert_eq!(a.access.len(), MAX_ACCESS_TOKENS);
        a.add_access("new".into(), grant(later));
        assert_eq!(
            a.access.len(),
            MAX_ACCESS_TOKENS / 2 + 1,
            "the expired half went"
        );
        for i in 0..MAX_ACCESS_TOKENS {
            a.add_access(
                format!("more{i}"),
                grant(later + Duration::from_secs(i as u64)),
            );
        }
        assert!(a.access.len() <= MAX_ACCESS_TOKENS);
        assert!(a
            .access
            .contains_key(&format!("more{}", MAX_ACCESS_TOKENS - 1)));

        for i in 0..MAX_REFRESH_TOKENS + 10 {
            a.add_refresh(
                format!("rt{i}"),
                RefreshGrant {
                    client_id: "c".into(),
                    user_id: "u".into(),
                    scope: "s".into(),
                    issued_ms: 0,
                },
            );
            a.spend_refresh(format!("spent{i}"));
        }
        assert!(a.refresh.len() <= MAX_REFRESH_TOKENS);
        assert!(a.spent_refresh.len() <= MAX_REFRESH_TOKENS);

        for i in 0..MAX_DEVICE_FLOWS * 2 {
            a.add_flow(
                format!("dc{i}"),
                DeviceFlow {
                    user_code: format!("UC{i}"),
                    client_id: "c".into(),
                    scope: "s".into(),
                    expires: Instant::now() + Duration::from_secs(900),
                    interval: 5,
                    last_poll: None,
                    status: FlowStatus::Pending,
                },
            );
        }
        assert!(a.flows.len() <= MAX_DEVICE_FLOWS);
        assert_eq!(a.flows.len(), a.by_user_code.len());
        assert!(a
            .by_user_code
            .contains_key(&format!("UC{}", MAX_DEVICE_FLOWS * 2 - 1)));
    }
}
