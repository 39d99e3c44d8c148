//! Shared simulator state: the tenant, issued tokens, device flows, counters.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use super::fault::FaultPlan;
use super::tenant::Tenant;

pub struct State {
    pub tenant: Tenant,
    pub tls: bool,
    /// `127.0.0.1:PORT`, used when a request carries no Host.
    pub local_host: String,
    pub token_lifetime: Duration,
    pub device_code_interval: u64,
    pub device_code_lifetime: Duration,
    pub latency: Duration,
    pub faults: FaultPlan,
    pub auth: Mutex<AuthStore>,
    pub counts: Mutex<HashMap<(String, String), usize>>,
}

impl State {
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
        let admin_id = self.tenant.admin.id.clone();
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
}
