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

    pub fn count(&self, method: &str, path: &str) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *c.entry((method.to_owned(), path.to_owned())).or_insert(0) += 1;
    }

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
