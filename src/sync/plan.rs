//! The plan: a pure function of the directory and a tenant snapshot. No I/O.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::directory::DirectoryUser;
use crate::graph::{Domain, User};

/// One kind of change to the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpKind {
    /// POST /users: a new account (Microsoft sends its welcome email).
    Create,
    /// An account with the directory user's address exists but is not linked: link it
    /// (and enable it) instead of creating a duplicate.
    Takeover,
    /// A soft-deleted account holds the address: restore it and link it.
    Restore,
    /// PATCH accountEnabled = true on a linked, blocked account.
    ReEnable,
    /// PATCH accountEnabled = false: unbind blocks sign-in, never deletes.
    Block,
    /// PATCH passwordProfile with a password the admin just set.
    SetPassword,
}

impl OpKind {
    pub const ALL: [OpKind; 6] = [
        OpKind::Create,
        OpKind::Takeover,
        OpKind::Restore,
        OpKind::ReEnable,
        OpKind::Block,
        OpKind::SetPassword,
    ];
    /// As the preview lists it: "create account", "block sign-in", ...
    pub fn label(self) -> &'static str {
        match self {
            OpKind::Create => "create account",
            OpKind::Takeover => "take over existing account",
            OpKind::Restore => "restore deleted user",
            OpKind::ReEnable => "re-enable",
            OpKind::Block => "block sign-in",
            OpKind::SetPassword => "set password",
        }
    }
    /// Graph writes this op costs (for the ETA against the write budget).
    pub fn writes(self) -> u32 {
        match self {
            OpKind::Restore => 2, // restore, then enable
            _ => 1,
        }
    }
}

/// One planned change, with everything the preview shows and the engine needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub kind: OpKind,
    pub directory_id: i64,
    pub email: String,
    pub display_name: String,
    /// The UPN the account has or will have.
    pub upn: String,
    /// The existing account (takeover, restore, re-enable, block, set password).
    pub tenant_user_id: Option<String>,
    /// Why, in plain words ("bind requested; no account has this address").
    pub reason: String,
}

/// The tenant as the plan sees it: pages as they were listed (shared, not copied), the
/// soft-deleted users, the domains.
#[derive(Debug, Clone, Default)]
pub struct TenantSnapshot {
    pub pages: Vec<Arc<Vec<User>>>,
    pub deleted: Vec<User>,
    pub domains: Vec<Domain>,
}

/// Directory rules that shape the plan.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Policy {
    /// A bound user whose directory password is older than this is blocked at the next sync.
    pub password_max_age_days: Option<u32>,
}

/// Refuse, unless confirmed, a plan that blocks many bound users at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardConfig {
    pub max_blocks: usize,
    pub max_share: f64,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            max_blocks: 50,
            max_share: 0.10,
        }
    }
}

/// The guard tripped: the admin must type `blocks` to go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardTrip {
    pub blocks: usize,
    pub bound: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub ops: Vec<Op>,
    /// Bound users before the plan (the guard's denominator).
    pub bound_before: usize,
}

impl Plan {
    pub fn counts(&self) -> BTreeMap<OpKind, usize> {
        let mut c = BTreeMap::new();
        for op in &self.ops {
            *c.entry(op.kind).or_insert(0) += 1;
        }
        c
    }
    pub fn count(&self, kind: OpKind) -> usize {
        self.ops.iter().filter(|o| o.kind == kind).count()
    }
    /// Time to apply at the tenant's write budget (writes per 150 s window).
    pub fn eta(&self, writes_per_window: u32, window: Duration) -> Duration {
        let _ = (writes_per_window, window);
        todo!("sync: Plan::eta")
    }
    pub fn guard(&self, cfg: &GuardConfig) -> Option<GuardTrip> {
        let _ = cfg;
        todo!("sync: Plan::guard")
    }
    /// The warnings the preview must show (welcome email on create, block deletes nothing).
    pub fn warnings(&self) -> Vec<String> {
        todo!("sync: Plan::warnings")
    }
}

/// The diff: what must change in the tenant so that it matches what the directory wants.
pub fn plan(
    directory: &[DirectoryUser],
    tenant: &TenantSnapshot,
    policy: &Policy,
    now: i64,
) -> Plan {
    let _ = (directory, tenant, policy, now);
    todo!("sync: plan")
}
