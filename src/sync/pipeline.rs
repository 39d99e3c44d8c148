//! The one pipeline: the only path from (directory, tenant, domain settings, UPN overrides,
//! policy) to a plan view, and from a plan view to a run. The console's preview, its Errors
//! tab, `sync --dry-run`, `sync --apply` and `m365sync errors` all go through it, so they
//! show the same ops, the same held-back findings, the same guard and the same ETA.
//!
//! ```text
//! prepare:  [lock?] reconcile the journal -> read the tenant -> make_plan (pure) -> PlanView
//! apply:    lock -> still current? -> guard and self-block confirmed? -> run (sync::apply)
//! ```
//!
//! Writing to the tenant needs the apply lock (one apply at a time per data dir);
//! planning does not, but it checks the journal of an interrupted run only when no other
//! apply is running (a live run's journal is not a dead one's).
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::apply::{self, ApplyEvent, ApplyOptions, ApplySummary, PasswordSink, WriteBudget};
use super::groups::{self, GroupOp, GroupOpKind, GroupSnapshot};
use super::ops::{AnyOp, Kind};
use super::plan::{self, GuardConfig, GuardTrip, Op, OpKind, Plan, Policy, TenantSnapshot};
use super::preflight::{self, Issue, PreflightOptions};
use super::reconcile::{self, Verification};
use crate::diagnose::{Operation, Subject};
use crate::directory::{Directory, DirectoryGroup, DirectoryUser, DomainSettings};
use crate::failure::Failure;
use crate::graph::{GraphClient, User};
use crate::lock::{ApplyLock, LockError};

/// Who runs the pipeline: the actor of the audit log and the accounts a plan must not block
/// without a typed confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Me {
    /// As the audit log names it (`admin@contoso.com`, `app:<client id>`).
    pub actor: String,
    /// UPNs never blocked without confirmation: the signed-in admin (delegated sign-in) and
    /// the service account of an app-only run when configured.
    pub protected: Vec<String>,
}

impl Me {
    /// From the signed-in identity: a delegated sign-in protects its own UPN.
    pub fn from_identity(name: &str, service_account: Option<&str>) -> Me {
        let mut protected = Vec::new();
        if !name.starts_with("app:") && name.contains('@') {
            protected.push(name.to_string());
        }
        protected.extend(service_account.map(str::to_string));
        Me {
            actor: name.to_string(),
            protected,
        }
    }
}

/// Everything of the directory the plan is made of, read in one go.
#[derive(Debug, Clone, Default)]
pub struct DirectoryState {
    pub users: Vec<DirectoryUser>,
    pub groups: Vec<DirectoryGroup>,
    pub policy: Policy,
    pub guard: GuardConfig,
    pub domains: DomainSettings,
    pub upn_overrides: HashMap<i64, String>,
    /// The newest run of the journal when this was read: an apply refuses a view made
    /// before another run.
    pub last_run: Option<String>,
    /// Deprovisioning steps earlier blocks scheduled, and the groups with their own policy.
    pub pending_steps: Vec<super::deprovision::PendingStep>,
    pub group_policies: Vec<super::deprovision::GroupPolicy>,
    /// The policy each leaver's kept steps come from, and when the directory's policy last
    /// changed (unix s).
    pub leavers: Vec<super::deprovision::Leaver>,
    pub policy_at: Option<i64>,
    /// When each group's own policy was last set or cleared (unix s), by group name.
    pub group_policy_at: HashMap<String, i64>,
    /// The default SKU sets of groups and users.
    pub licences: crate::directory::LicenceDefaults,
    /// The licences m365sync assigned, by directory user id.
    pub applied: HashMap<i64, Vec<crate::directory::AppliedLicence>>,
}

impl DirectoryState {
    pub fn load(
        db: &Directory,
        tenant: &str,
    ) -> Result<DirectoryState, crate::directory::DirectoryError> {
        let (policy, guard) = db.policy()?;
        let groups = db.groups()?;
        let group_policies = db
            .group_deprovision_policies()?
            .into_iter()
            .filter_map(|(id, policy)| {
                let g = groups.iter().find(|g| g.id == id)?;
                Some(super::deprovision::GroupPolicy {
                    group_id: id,
                    name: g.name.clone(),
                    tenant_group_id: g.tenant_group_id.clone(),
                    members: g.members.iter().copied().collect(),
                    policy,
                })
            })
            .collect();
        let group_policy_at = db
            .group_deprovision_changes()?
            .into_iter()
            .filter_map(|(id, at)| Some((groups.iter().find(|g| g.id == id)?.name.clone(), at)))
            .collect();
        Ok(DirectoryState {
            pending_steps: db.deprovision_steps()?,
            group_policies,
            leavers: db.deprovision_leavers()?,
            policy_at: db.deprovision_policy_at()?,
            group_policy_at,
            users: db.users()?,
            groups,
            policy,
            guard,
            domains: db.domain_settings(tenant)?,
            upn_overrides: db.upn_overrides()?,
            last_run: db.journal_last_run()?,
            licences: db.licence_defaults()?,
            applied: db.applied_licences()?,
        })
    }
}

/// The tenant as the plan needs it.
#[derive(Debug, Clone, Default)]
pub struct TenantState {
    /// Live users (pages as listed, shared), soft-deleted users, domains.
    pub users: TenantSnapshot,
    /// Every group, and the members of the groups bound groups are linked to.
    pub groups: GroupSnapshot,
    /// The managers of the bound accounts whose manager the directory manages, by the
    /// account's object id (None: no manager).
    pub managers: HashMap<String, Option<String>>,
    /// The licences a deprovisioning would remove, by account object id: read only for the
    /// accounts of unbound users a licence removal may be planned for.
    pub unlicense: HashMap<String, Vec<String>>,
    /// The tenant's licences (read when the directory assigns any).
    pub skus: Vec<crate::graph::licences::SubscribedSku>,
    /// The licences of the accounts the directory assigns licences to, by object id.
    pub licences: HashMap<String, crate::graph::licences::UserLicences>,
}

/// The blocking of an account the admin must confirm by typing its UPN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfBlock {
    pub upn: String,
    pub message: String,
}

/// What the admin confirmed for this apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confirm {
    /// The number typed for the mass-change guard (`--yes-block N`).
    pub yes_block: Option<usize>,
    /// The UPN typed to block one's own account (`--yes-block-self` confirms any).
    pub yes_block_self: Option<String>,
    pub yes_block_self_any: bool,
    /// The number typed for the delete guard (`--yes-delete N`).
    pub yes_delete: Option<usize>,
}

/// The plan as everyone shows it, and the only thing an apply takes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlanView {
    /// User ops to send (preflight let them through).
    pub plan: Plan,
    /// Ops per user kind, in `OpKind::ALL` order, kinds with none left out.
    pub counts: Vec<(OpKind, usize)>,
    /// Group ops to send, after the user ops they need.
    pub group_ops: Vec<GroupOp>,
    /// Graph writes of the whole plan, and the time they take at the write budget.
    pub writes: u64,
    pub eta: Duration,
    pub guard: Option<GuardTrip>,
    /// More account deletes than the delete guard's limit: confirmed on their own.
    pub delete_guard: Option<GuardTrip>,
    /// Deprovisioning steps scheduled (with their dates) and cancelled, in words.
    pub deprovision: super::deprovision::Planned,
    pub self_block: Option<SelfBlock>,
    pub warnings: Vec<String>,
    /// User ops preflight holds back, with the issue that holds each: shown, never sent.
    pub held: Vec<(Op, Issue)>,
    /// Group ops held back: the group's own issue (its `directory_id` is the group's).
    pub group_held: Vec<(GroupOp, Issue)>,
    /// Member adds held back with their member, whose op is held (the issue is the user's).
    pub member_held: Vec<(GroupOp, Issue)>,
    /// Every preflight finding about a user the plan touches, with the user's email.
    pub issues: Vec<(Issue, String)>,
    /// Licence errors Microsoft recorded on the accounts read (`licenseAssignmentStates`:
    /// no seat for a group licence, plans in conflict, ...), with the account's email: not
    /// held back by the plan, but failures to explain ([`super::licences::recorded_errors`]).
    pub recorded: Vec<(Issue, String)>,
    /// What checking an interrupted run's journal found.
    pub verified: Vec<Verification>,
    /// Another apply is running (who): its unfinished ops were not checked.
    pub running: Option<String>,
    /// Ops an interrupted run left that this view did not check (a read-only plan).
    pub unchecked: usize,
    /// The journal's newest run when this view was made.
    pub last_run: Option<String>,
    /// Why each user the plan touches is (or is no longer) wanted bound: what
    /// [`super::causes::by_cause`] groups the changes by.
    pub why: std::collections::BTreeMap<i64, super::causes::Why>,
}

impl PlanView {
    /// The view of user ops only (`plan` already preflighted) with its counts; the rest as
    /// given. For fixtures and tests; the pipeline builds views with [`make_plan`].
    pub fn new(
        plan: Plan,
        eta: Duration,
        guard: Option<GuardTrip>,
        warnings: Vec<String>,
    ) -> PlanView {
        let by_kind = plan.counts();
        let counts = OpKind::ALL
            .iter()
            .filter_map(|k| by_kind.get(k).map(|&n| (*k, n)))
            .collect();
        let writes = plan
            .ops
            .iter()
            .map(|o| u64::from(Kind::User(o.kind).writes()))
            .sum();
        PlanView {
            plan,
            counts,
            writes,
            eta,
            guard,
            warnings,
            ..PlanView::default()
        }
    }

    /// The same view with preflight's findings: `plan` must already be the ops to send.
    pub fn with_preflight(mut self, held: Vec<(Op, Issue)>, issues: Vec<(Issue, String)>) -> Self {
        self.held = held;
        self.issues = issues;
        self
    }

    fn with_writes(mut self, writes: u64) -> Self {
        self.writes = writes;
        self
    }

    /// Nothing to send.
    pub fn is_empty(&self) -> bool {
        self.plan.ops.is_empty() && self.group_ops.is_empty()
    }
    /// Held back: ops Graph would refuse, never sent.
    pub fn held_count(&self) -> usize {
        self.held.len() + self.group_held.len() + self.member_held.len()
    }
    /// The tenant matches the directory: nothing to send and nothing held back.
    pub fn in_sync(&self) -> bool {
        self.is_empty() && self.held_count() == 0
    }
    /// Every op to send, user ops first, in the order the engine runs them.
    pub fn ops(&self) -> Vec<AnyOp> {
        self.plan
            .ops
            .iter()
            .cloned()
            .map(AnyOp::User)
            .chain(self.group_ops.iter().cloned().map(AnyOp::Group))
            .collect()
    }
    /// Ops of `kind` to send.
    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::User(k) => self.plan.count(k),
            Kind::Group(k) => self.group_ops.iter().filter(|o| o.kind == k).count(),
        }
    }
    /// The subjects held back, as the Errors list names them: `user a@x`, `group "Sales"`.
    pub fn held_subjects(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .held
            .iter()
            .map(|(op, _)| Subject::User(op.email.clone()).label())
            .chain(
                self.group_held
                    .iter()
                    .map(|(op, _)| Subject::Group(op.group_name.clone()).label()),
            )
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// `a` on this thread and `b` on a scoped one, both results; if no thread can be started,
/// one after the other. A panic in `b` goes on in the caller, as it would have inline.
fn beside<A: Send, B: Send>(a: impl FnOnce() -> A, b: impl FnOnce() -> B + Send) -> (A, B) {
    let b = std::sync::Mutex::new(Some(b));
    let run_b = || {
        let f = b.lock().unwrap_or_else(|p| p.into_inner()).take();
        f.map(|f| f())
    };
    std::thread::scope(|s| {
        match std::thread::Builder::new()
            .name("m365sync-preflight".into())
            .spawn_scoped(s, run_b)
        {
            Ok(h) => {
                let ra = a();
                let rb = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                (ra, rb.expect("b runs once, on its thread"))
            }
            Err(_) => (a(), run_b().expect("b did not start on a thread")),
        }
    })
}

/// The plan of the directory against the tenant: pure, the same for every caller.
pub fn make_plan(
    dir: &DirectoryState,
    tenant: &TenantState,
    me: &Me,
    now: i64,
    budget: WriteBudget,
) -> PlanView {
    // Live accounts by id (for the default usage location and the licences).
    let live_by_id: HashMap<&str, &User> = if dir.policy.usage_location.is_some()
        || super::licences::Inputs::active(&dir.licences, &dir.applied)
    {
        tenant
            .users
            .pages
            .iter()
            .flat_map(|p| p.iter().map(|u| (u.id.as_str(), u)))
            .collect()
    } else {
        HashMap::new()
    };
    let users = super::licences::with_default_usage_location(&dir.users, &dir.policy, &live_by_id);
    let users: &[DirectoryUser] = &users;
    let opts = PreflightOptions {
        enabled_domains: dir.domains.enabled.clone(),
        default_domain: dir.domains.default.clone(),
        upn_overrides: dir.upn_overrides.clone(),
        attributes: dir.policy.attributes.clone(),
        ..Default::default()
    };
    // The diff and preflight's rules read the same inputs and not each other: at 100,000
    // users each is a good share of the plan, so they run side by side.
    let (users_plan, findings) = beside(
        || plan::plan(users, &tenant.users, &dir.policy, now),
        || preflight::check_users(users, &tenant.users, &opts),
    );
    let synced = users_plan.synced.clone();
    let (mut user_plan, held, mut issues) = preflight::hold_back(users_plan, findings, &opts);
    // An attribute Graph would refuse is taken out of a takeover or a re-enable: the account
    // is enabled, that value left as it is (the finding says why).
    let bad_attr: HashSet<(i64, &str)> = issues
        .iter()
        .filter(|i| i.severity == preflight::Severity::Error)
        .filter(|i| preflight::ATTRIBUTE_KINDS.contains(&i.kind.as_str()))
        .map(|i| (i.directory_id, i.field.as_str()))
        .collect();
    for op in &mut user_plan.ops {
        op.changes
            .retain(|c| !bad_attr.contains(&(op.directory_id, c.attr.wire())));
    }
    // Accounts mastered on-premises are never edited: said, not sent.
    for (id, upn, n) in synced {
        issues.push(Issue {
            directory_id: id,
            kind: "synced-from-on-premises".into(),
            field: "onPremisesSyncEnabled".into(),
            value: upn.clone(),
            message: format!(
                "The account {upn} is synced from on-premises Active Directory: {} the \
                 directory holds other values for cannot be changed in Microsoft 365 (Graph \
                 refuses); change them in Active Directory.",
                crate::format::count(n, "attribute", None)
            ),
            suggestion: None,
            severity: preflight::Severity::Warning,
            holder: None,
        });
    }
    // Licences: one assignLicense per account, after the op that binds it; what preflight
    // refuses is held back (a create with it).
    let mut held = held;
    issues.extend(super::licences::plan_licences(
        &super::licences::Inputs {
            users,
            groups: &dir.groups,
            policy: &dir.policy,
            defaults: &dir.licences,
            applied: &dir.applied,
            skus: &tenant.skus,
            accounts: &tenant.licences,
            live: &live_by_id,
        },
        &mut user_plan,
        &mut held,
    ));
    // Managers: after the accounts they need (the engine orders them by dependency).
    {
        let live: foldhash::HashSet<&str> = tenant
            .users
            .pages
            .iter()
            .flat_map(|p| p.iter().map(|u| u.id.as_str()))
            .collect();
        let new_accounts: HashSet<i64> = user_plan
            .ops
            .iter()
            .filter(|o| matches!(o.kind, OpKind::Create | OpKind::Restore | OpKind::Takeover))
            .map(|o| o.directory_id)
            .collect();
        let (manager_ops, manager_issues) = super::attributes::plan_managers(
            &dir.users,
            &live,
            &new_accounts,
            &tenant.managers,
            &dir.policy.attributes,
        );
        let held_issue: HashMap<i64, Issue> = held
            .iter()
            .map(|(o, i)| (o.directory_id, i.clone()))
            .collect();
        for op in manager_ops {
            // A manager reference of a user (or to a manager) whose account is held back
            // waits with it.
            match [Some(op.directory_id), op.manager_id]
                .into_iter()
                .flatten()
                .find_map(|id| held_issue.get(&id))
            {
                Some(issue) => held.push((op, issue.clone())),
                None => user_plan.ops.push(op),
            }
        }
        for i in manager_issues {
            // The user's op is held back with the finding (if any).
            issues.push(i);
        }
    }
    // Deprovisioning: the steps blocks schedule, and the steps whose day has come.
    let deprovision = {
        let live: HashMap<&str, &str> = tenant
            .users
            .pages
            .iter()
            .flat_map(|p| {
                p.iter()
                    .map(|u| (u.id.as_str(), u.user_principal_name.as_str()))
            })
            .collect();
        let licensed: HashSet<i64> = dir
            .applied
            .iter()
            .filter(|(_, a)| !a.is_empty())
            .map(|(id, _)| *id)
            .collect();
        super::deprovision::plan_steps(
            &mut user_plan.ops,
            &super::deprovision::Inputs {
                users: &dir.users,
                default: dir.policy.deprovision,
                groups: &dir.group_policies,
                tenant_members: &tenant.groups.members,
                pending: &dir.pending_steps,
                live: &live,
                licences: &tenant.unlicense,
                licensed: &licensed,
                leavers: &dir.leavers,
                policy_at: dir.policy_at,
                group_policy_at: &dir.group_policy_at,
                now,
            },
        )
    };
    // Findings about users the plan touches, each with its email.
    let touched: HashSet<i64> = user_plan
        .ops
        .iter()
        .chain(held.iter().map(|(o, _)| o))
        .map(|o| o.directory_id)
        .collect();
    let why = super::causes::why_of(&dir.users, &touched);
    let email: HashMap<i64, &str> = dir.users.iter().map(|u| (u.id, u.email.as_str())).collect();
    let issues: Vec<(Issue, String)> = issues
        .into_iter()
        .filter(|i| {
            touched.contains(&i.directory_id)
                || i.kind == "synced-from-on-premises"
                || i.kind.starts_with("manager-")
        })
        .map(|i| {
            let e = email
                .get(&i.directory_id)
                .copied()
                .unwrap_or("")
                .to_string();
            (i, e)
        })
        .collect();

    // Groups: the group's own preflight, then member adds that need a held-back member.
    let group_plan = groups::plan_groups(&dir.groups, &dir.users, &tenant.groups);
    let (group_plan, group_held) = groups::held_back(group_plan, &dir.groups);
    let held_user: HashMap<i64, &Issue> = held.iter().map(|(o, i)| (o.directory_id, i)).collect();
    // Users whose account this plan (re)creates: their member adds wait for that op and use
    // the id it returns, never a stale one.
    let new_account: HashSet<i64> = user_plan
        .ops
        .iter()
        .filter(|o| matches!(o.kind, OpKind::Create | OpKind::Restore | OpKind::Takeover))
        .map(|o| o.directory_id)
        .collect();
    let mut group_ops = Vec::with_capacity(group_plan.len());
    let mut member_held = Vec::new();
    for mut op in group_plan {
        if op.kind == GroupOpKind::AddMember {
            if let Some(m) = op.member.as_mut() {
                if let Some(issue) = held_user.get(&m.directory_id) {
                    member_held.push((op, (*issue).clone()));
                    continue;
                }
                if new_account.contains(&m.directory_id) {
                    m.tenant_user_id = None;
                }
            }
        }
        group_ops.push(op);
    }

    let writes: u64 = user_plan
        .ops
        .iter()
        .map(|o| u64::from(Kind::User(o.kind).writes()))
        .chain(
            group_ops
                .iter()
                .map(|o| u64::from(Kind::Group(o.kind).writes())),
        )
        .sum();
    let guard = guard(&user_plan, &group_ops, &dir.guard);
    let delete_guard = delete_guard(&user_plan, &dir.guard);
    let self_block = self_block(&user_plan, me);
    let mut warnings = user_plan.warnings();
    let removes = group_ops
        .iter()
        .filter(|o| o.kind == GroupOpKind::RemoveMember)
        .count();
    if removes > 0 {
        warnings.push(format!(
            "{} removed from their groups in Microsoft 365; the groups themselves are kept.",
            crate::format::count(removes, "membership is", Some("memberships are"))
        ));
    }
    let recorded = super::licences::recorded_errors(&dir.users, &tenant.skus, &tenant.licences);
    PlanView {
        group_ops,
        recorded,
        delete_guard,
        deprovision,
        self_block,
        group_held,
        member_held,
        last_run: dir.last_run.clone(),
        why,
        ..PlanView::new(user_plan, budget.eta(writes), guard, warnings).with_preflight(held, issues)
    }
    .with_writes(writes)
}

/// The mass-change guard over user and group ops: blocking sign-in and removing memberships
/// count; more than the limit (or share of bound users) needs the exact count typed.
pub fn guard(user_plan: &Plan, group_ops: &[GroupOp], cfg: &GuardConfig) -> Option<GuardTrip> {
    let blocked: HashSet<i64> = user_plan
        .ops
        .iter()
        .filter(|o| Kind::User(o.kind).destructive())
        .map(|o| o.directory_id)
        .collect();
    let removed: Vec<&GroupOp> = group_ops
        .iter()
        .filter(|o| Kind::Group(o.kind).destructive())
        .collect();
    // The users a plan takes something from: a blocked user also removed from its groups
    // counts once.
    let mut affected = blocked.clone();
    affected.extend(
        removed
            .iter()
            .filter_map(|o| o.member.as_ref().map(|m| m.directory_id)),
    );
    let total = affected.len();
    let bound = user_plan.bound_before;
    let over_count = total > cfg.max_blocks;
    let over_share = bound > 0 && total as f64 > cfg.max_share * bound as f64;
    if total == 0 || !(over_count || over_share) {
        return None;
    }
    use crate::format::count;
    let why = match (over_count, over_share) {
        (true, true) => format!(
            "more than {} and more than {:.0}% of the {bound} bound users",
            cfg.max_blocks,
            cfg.max_share * 100.0
        ),
        (true, false) => format!("more than the limit of {}", cfg.max_blocks),
        _ => format!(
            "more than {:.0}% of the {bound} bound users",
            cfg.max_share * 100.0
        ),
    };
    // Deprovisioning steps (sign-out, licences, deletes) count as what they take.
    let takes = if user_plan
        .ops
        .iter()
        .any(|o| Kind::User(o.kind).destructive() && o.kind != OpKind::Block)
    {
        "blocks sign-in or deprovisions"
    } else {
        "blocks sign-in for"
    };
    let what = match (blocked.len(), removed.len()) {
        (b, 0) => format!("{takes} {}", count(b, "user", None)),
        (0, r) => format!("removes {} from groups", count(r, "membership", None)),
        (b, r) => format!(
            "{takes} {} and removes {} from groups",
            count(b, "user", None),
            count(r, "membership", None)
        ),
    };
    Some(GuardTrip {
        blocks: total,
        bound,
        message: format!(
            "This plan {what}: {} affected, {why}. If that is what you want, confirm by typing \
             the number {total} (headless: --yes-block {total}).",
            count(total, "user", None)
        ),
    })
}

/// The delete guard: deleting more accounts than its limit in one plan needs the number of
/// deletes typed (`--yes-delete N`), whatever the mass-change guard says.
pub fn delete_guard(user_plan: &Plan, cfg: &GuardConfig) -> Option<GuardTrip> {
    let deletes: HashSet<i64> = user_plan
        .ops
        .iter()
        .filter(|o| o.kind == OpKind::DeleteUser)
        .map(|o| o.directory_id)
        .collect();
    let n = deletes.len();
    if n <= cfg.max_deletes {
        return None;
    }
    use crate::format::count;
    Some(GuardTrip {
        blocks: n,
        bound: user_plan.bound_before,
        message: format!(
            "This plan deletes {} (more than the delete limit of {}); they go to deleted \
             items, restorable for 30 days. If that is what you want, confirm by typing the \
             number {n} (headless: --yes-delete {n}).",
            count(n, "account", None),
            cfg.max_deletes
        ),
    })
}

/// A plan that blocks a protected account (the signed-in admin, the app's service account).
pub fn self_block(user_plan: &Plan, me: &Me) -> Option<SelfBlock> {
    let op = user_plan.ops.iter().find(|o| {
        o.kind == OpKind::Block
            && me
                .protected
                .iter()
                .any(|p| p.eq_ignore_ascii_case(&o.upn) || p.eq_ignore_ascii_case(&o.email))
    })?;
    Some(SelfBlock {
        upn: op.upn.clone(),
        message: format!(
            "This plan blocks sign-in for {}, the account m365sync is signed in with (or its \
             service account): once applied, you may be locked out of the tenant. To go on, \
             type that UPN (headless: --yes-block-self).",
            op.upn
        ),
    })
}

/// The live users `pages` with the tenant's soft-deleted users and domains, read now.
pub async fn with_deleted_and_domains(
    graph: &GraphClient,
    pages: Vec<Arc<Vec<User>>>,
) -> Result<TenantSnapshot, Failure> {
    let (deleted, domains) = tokio::join!(graph.list_deleted_users(), graph.list_domains());
    Ok(TenantSnapshot {
        pages,
        deleted: deleted
            .map_err(|e| Failure::graph(Operation::ListDeletedUsers, Subject::None, e))?
            .into_iter()
            .map(|d| d.user)
            .collect(),
        domains: domains.map_err(|e| Failure::graph(Operation::ListDomains, Subject::None, e))?,
    })
}

/// Read the tenant: the live users, the soft-deleted users and the domains (`listed`: as the
/// caller already has them, e.g. the tenant snapshot; else listed now), and the groups when
/// any directory group is bound.
pub async fn read_tenant(
    graph: &GraphClient,
    listed: Option<TenantSnapshot>,
    dir: &DirectoryState,
) -> Result<TenantState, Failure> {
    use futures::StreamExt;
    let TenantSnapshot {
        pages,
        deleted,
        domains,
    } = match listed {
        Some(t) => t,
        None => {
            let mut pages = Vec::new();
            let mut stream = graph.list_users(999);
            while let Some(p) = stream.next().await {
                let p = p.map_err(|e| Failure::graph(Operation::ListUsers, Subject::None, e))?;
                pages.push(Arc::new(p));
            }
            with_deleted_and_domains(graph, pages).await?
        }
    };
    let groups = if dir.groups.iter().any(|g| g.want_bound) {
        groups::group_snapshot(graph, &dir.groups)
            .await
            .map_err(|e| Failure::graph(Operation::ListGroups, Subject::None, e))?
    } else {
        GroupSnapshot::default()
    };
    // Managers are a relationship, not on the listed user: read for the bound accounts whose
    // manager the directory manages (20 to a $batch).
    let managers = if dir
        .policy
        .attributes
        .syncs(super::attributes::Attr::Manager)
    {
        let live: HashSet<&str> = pages
            .iter()
            .flat_map(|p| p.iter().map(|u| u.id.as_str()))
            .collect();
        let ids: Vec<String> = dir
            .users
            .iter()
            .filter(|u| u.wanted() && u.attributes.contains_key("manager"))
            .filter_map(|u| u.tenant_user_id.clone())
            .filter(|t| live.contains(t.as_str()))
            .collect();
        if ids.is_empty() {
            HashMap::new()
        } else {
            graph
                .managers(&ids)
                .await
                .map_err(|e| Failure::graph(Operation::ListUsers, Subject::None, e))?
        }
    } else {
        HashMap::new()
    };
    let unlicense = {
        let ids = licence_reads(dir, &pages);
        if ids.is_empty() {
            HashMap::new()
        } else {
            let user_of: HashMap<&str, i64> = dir
                .users
                .iter()
                .filter_map(|u| u.tenant_user_id.as_deref().map(|t| (t, u.id)))
                .collect();
            graph
                .user_licences(&ids)
                .await
                .map_err(|e| Failure::graph(Operation::ListUsers, Subject::None, e))?
                .into_iter()
                .map(|(id, v)| {
                    let ours: Vec<&str> = user_of
                        .get(id.as_str())
                        .and_then(|u| dir.applied.get(u))
                        .map(|a| a.iter().map(|l| l.sku_id.as_str()).collect())
                        .unwrap_or_default();
                    let remove = super::deprovision::licences_to_remove(&v, &ours);
                    (id, remove)
                })
                .collect()
        }
    };
    let (skus, licences) = read_licences(graph, &pages, dir).await?;
    Ok(TenantState {
        users: TenantSnapshot {
            pages,
            deleted,
            domains,
        },
        groups,
        managers,
        skus,
        licences,
        unlicense,
    })
}

/// The live accounts whose licences a plan may remove: of unbound users with a licence
/// removal kept in the directory, or, when a policy removes licences at all, every leaver's
/// (about to be blocked, or blocked before the policy was set: its removal may be due now).
/// Only leavers m365sync recorded assigning licences to are read.
fn licence_reads(dir: &DirectoryState, pages: &[Arc<Vec<User>>]) -> Vec<String> {
    use super::deprovision::Step;
    let any_policy = dir.policy.deprovision.unlicense_after.is_some()
        || dir
            .group_policies
            .iter()
            .any(|g| g.policy.unlicense_after.is_some());
    let kept: HashSet<&str> = dir
        .pending_steps
        .iter()
        .filter(|p| p.step == Step::Unlicense)
        .map(|p| p.tenant_user_id.as_str())
        .collect();
    if !any_policy && kept.is_empty() {
        return Vec::new();
    }
    let enabled: HashMap<&str, bool> = pages
        .iter()
        .flat_map(|p| {
            p.iter()
                .map(|u| (u.id.as_str(), u.account_enabled != Some(false)))
        })
        .collect();
    dir.users
        .iter()
        .filter(|u| !u.wanted())
        // Only the licences m365sync assigned are ever removed.
        .filter(|u| dir.applied.get(&u.id).is_some_and(|a| !a.is_empty()))
        .filter_map(|u| u.tenant_user_id.as_deref())
        .filter(|t| enabled.contains_key(t) && (kept.contains(t) || any_policy))
        .map(str::to_string)
        .collect()
}

/// The tenant's licences and those of the accounts the directory assigns licences to (or
/// m365sync assigned some), 20 to a `$batch`; nothing is read when the directory manages no
/// licence.
pub async fn read_licences(
    graph: &GraphClient,
    pages: &[Arc<Vec<User>>],
    dir: &DirectoryState,
) -> Result<
    (
        Vec<crate::graph::licences::SubscribedSku>,
        HashMap<String, crate::graph::licences::UserLicences>,
    ),
    Failure,
> {
    if !super::licences::Inputs::active(&dir.licences, &dir.applied) {
        return Ok(Default::default());
    }
    let skus = graph
        .subscribed_skus()
        .await
        .map_err(|e| Failure::graph(Operation::ListLicences, Subject::None, e))?;
    let group_ids: HashMap<&str, i64> =
        dir.groups.iter().map(|g| (g.name.as_str(), g.id)).collect();
    let interested: Vec<&DirectoryUser> = dir
        .users
        .iter()
        .filter(|u| u.wanted())
        .filter(|u| {
            dir.applied.get(&u.id).is_some_and(|a| !a.is_empty())
                || !dir.licences.for_user(u, &group_ids).is_empty()
        })
        .collect();
    if interested.is_empty() {
        return Ok((skus, HashMap::new()));
    }
    // Linked accounts, and for unlinked users the account a takeover would link (by address).
    let mut by_addr: HashMap<String, &str> = HashMap::new();
    if interested.iter().any(|u| u.tenant_user_id.is_none()) {
        for u in pages.iter().flat_map(|p| p.iter()) {
            if let Some(m) = u.mail.as_deref().filter(|m| !m.is_empty()) {
                by_addr.entry(m.to_lowercase()).or_insert(&u.id);
            }
            by_addr
                .entry(u.user_principal_name.to_lowercase())
                .or_insert(&u.id);
        }
    }
    let live: HashSet<&str> = pages
        .iter()
        .flat_map(|p| p.iter().map(|u| u.id.as_str()))
        .collect();
    let mut ids: Vec<String> = interested
        .iter()
        .filter_map(|u| match u.tenant_user_id.as_deref() {
            Some(t) => live.contains(t).then_some(t),
            None => by_addr.get(&u.email.trim().to_lowercase()).copied(),
        })
        .map(str::to_string)
        .collect();
    ids.sort();
    ids.dedup();
    let licences = graph
        .user_licences(&ids)
        .await
        .map_err(|e| Failure::graph(Operation::ListUsers, Subject::None, e))?;
    Ok((skus, licences))
}

/// The pipeline of one tenant and data dir.
#[derive(Clone)]
pub struct Pipeline {
    pub graph: GraphClient,
    pub data_dir: PathBuf,
    pub db_path: PathBuf,
    /// The tenant as configured (its domain settings are kept under this name).
    pub tenant: String,
    pub me: Me,
    pub budget: WriteBudget,
}

impl Pipeline {
    /// Take the apply lock for `command` (one apply at a time per data dir).
    pub fn lock(&self, command: &str) -> Result<ApplyLock, Failure> {
        lock(&self.data_dir, command)
    }

    /// Check the journal of an interrupted run (when no other apply is running; with
    /// `lock`, under it), read the tenant (`listed`: the users, deleted users and domains the
    /// caller already has, e.g. the tenant snapshot), and plan.
    pub async fn prepare(
        &self,
        lock: Option<&ApplyLock>,
        listed: Option<TenantSnapshot>,
        now: i64,
    ) -> Result<PlanView, Failure> {
        let mut running = None;
        let verified = match lock {
            Some(_) => {
                reconcile::reconcile(&self.graph, self.db_path.clone(), &self.me.actor).await?
            }
            None => match ApplyLock::acquire(&self.data_dir, "plan (checking the journal)") {
                Ok(_held) => {
                    reconcile::reconcile(&self.graph, self.db_path.clone(), &self.me.actor).await?
                }
                Err(held @ LockError::Held(_)) => {
                    running = Some(held.to_string());
                    Vec::new()
                }
                // A data dir this user cannot write (read-only): plan without checking.
                Err(LockError::Io { .. }) => return self.plan_only(listed, now).await,
            },
        };
        let dir = self.directory_state().await?;
        let tenant = read_tenant(&self.graph, listed, &dir).await?;
        let mut view = make_plan(&dir, &tenant, &self.me, now, self.budget);
        view.verified = verified;
        view.running = running;
        Ok(view)
    }

    /// The plan without touching the journal (for commands that only read): ops an
    /// interrupted run left are counted, not checked.
    pub async fn plan_only(
        &self,
        listed: Option<TenantSnapshot>,
        now: i64,
    ) -> Result<PlanView, Failure> {
        let db = self.db_path.clone();
        let tenant = self.tenant.clone();
        // Read-only: this works on a read-only data dir and never upgrades the database.
        let (unchecked, dir) = crate::failure::blocking("reading the directory", move || {
            let d = Directory::open_read_only(&db)?;
            Ok((
                d.journal_unfinished()?.len(),
                DirectoryState::load(&d, &tenant)?,
            ))
        })
        .await?;
        let tenant = read_tenant(&self.graph, listed, &dir).await?;
        let mut view = make_plan(&dir, &tenant, &self.me, now, self.budget);
        view.unchecked = unchecked;
        if let Ok(Some(h)) = ApplyLock::holder(&self.data_dir) {
            view.running = Some(LockError::Held(h).to_string());
        }
        Ok(view)
    }

    /// The Licences view (`m365sync licences`, the Licences tab): the tenant's SKUs with
    /// their seats, what the directory assigns, and the users with licence errors, from the
    /// same plan as everyone (read-only: the journal is not touched).
    pub async fn licence_report(
        &self,
        now: i64,
    ) -> Result<(super::licences::LicenceReport, PlanView), Failure> {
        let db = self.db_path.clone();
        let tenant = self.tenant.clone();
        let dir = crate::failure::blocking("reading the directory", move || {
            DirectoryState::load(&Directory::open_read_only(&db)?, &tenant)
        })
        .await?;
        let mut t = read_tenant(&self.graph, None, &dir).await?;
        if t.skus.is_empty() {
            t.skus = self
                .graph
                .subscribed_skus()
                .await
                .map_err(|e| Failure::graph(Operation::ListLicences, Subject::None, e))?;
        }
        let view = make_plan(&dir, &t, &self.me, now, self.budget);
        let report = super::licences::report(
            &dir.users,
            &dir.groups,
            &dir.licences,
            &t.skus,
            &t.licences,
            &view.plan.ops,
            &view.held,
            &view.issues,
        );
        Ok((report, view))
    }

    pub async fn directory_state(&self) -> Result<DirectoryState, Failure> {
        let db = self.db_path.clone();
        let tenant = self.tenant.clone();
        crate::failure::blocking("reading the directory", move || {
            DirectoryState::load(&Directory::open(&db)?, &tenant)
        })
        .await
    }

    /// Apply `view` under `lock`: refused when another run wrote the journal since the view
    /// was made, when the guard trips or the plan blocks a protected account without the
    /// confirmation. Generated passwords go to `sink` as each account is created.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply(
        &self,
        _lock: &ApplyLock,
        view: &PlanView,
        confirm: &Confirm,
        opts: ApplyOptions,
        sink: Box<dyn PasswordSink>,
        events: mpsc::UnboundedSender<ApplyEvent>,
        cancel: CancellationToken,
    ) -> Result<ApplySummary, Failure> {
        check_confirmed(view, confirm)?;
        let db = self.db_path.clone();
        let (last_run, open) = crate::failure::blocking("reading the journal", move || {
            let d = Directory::open(&db)?;
            Ok((d.journal_last_run()?, d.journal_unfinished()?.len()))
        })
        .await?;
        if last_run != view.last_run || open > 0 {
            return Err(Failure::Refused(
                "another run changed the tenant since this plan was made: preview it again".into(),
            ));
        }
        let opts = ApplyOptions {
            actor: self.me.actor.clone(),
            budget: self.budget,
            ..opts
        };
        apply::apply(
            self.graph.clone(),
            self.db_path.clone(),
            view.ops(),
            opts,
            sink,
            events,
            cancel,
        )
        .await
    }
}

/// The guard and the self-block, each confirmed as it asks.
pub fn check_confirmed(view: &PlanView, confirm: &Confirm) -> Result<(), Failure> {
    if let Some(t) = &view.guard {
        if confirm.yes_block != Some(t.blocks) {
            return Err(Failure::Refused(format!(
                "refused: {} Run again with --yes-block {} if that is what you want.",
                t.message, t.blocks
            )));
        }
    }
    if let Some(t) = &view.delete_guard {
        if confirm.yes_delete != Some(t.blocks) {
            return Err(Failure::Refused(format!(
                "refused: {} Run again with --yes-delete {} if that is what you want.",
                t.message, t.blocks
            )));
        }
    }
    if let Some(s) = &view.self_block {
        let typed = confirm
            .yes_block_self
            .as_deref()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(&s.upn));
        if !(typed || confirm.yes_block_self_any) {
            return Err(Failure::Refused(format!("refused: {}", s.message)));
        }
    }
    Ok(())
}

/// Take the apply lock of `data_dir` for `command`.
pub fn lock(data_dir: &std::path::Path, command: &str) -> Result<ApplyLock, Failure> {
    ApplyLock::acquire(data_dir, command).map_err(lock_failure)
}

fn lock_failure(e: LockError) -> Failure {
    match e {
        held @ LockError::Held(_) => Failure::Locked(held.to_string()),
        LockError::Io { path, source } => Failure::file(&path, source),
    }
}

/// Where a finding of a view comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingSource {
    /// Preflight: the op it names is held back (or the finding is a warning); nothing sent.
    Preflight,
    /// Microsoft recorded it on the account (a licence error of group-based licensing).
    Tenant,
}

impl FindingSource {
    /// As `m365sync errors` names it.
    pub fn label(self) -> &'static str {
        match self {
            FindingSource::Preflight => "preflight",
            FindingSource::Tenant => "tenant",
        }
    }
}

/// One finding of a view: the issue, whom it is about, the op it holds back, where from.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub issue: Issue,
    pub subject: Subject,
    pub op: Option<AnyOp>,
    pub source: FindingSource,
}

impl Finding {
    /// Explained from the catalog: a preflight finding, or an error recorded on an account
    /// (Microsoft's error code as the raw code).
    pub fn diagnose(&self) -> crate::diagnose::Diagnosis {
        match self.source {
            FindingSource::Preflight => {
                crate::diagnose::diagnose_issue(&self.issue, self.subject.clone())
            }
            FindingSource::Tenant => {
                crate::diagnose::diagnose_recorded(&self.issue, self.subject.clone())
            }
        }
    }
}

/// Findings of a view as the Errors list and `m365sync errors` show them: every held-back
/// op (users and groups), every other finding about a user the plan touches, and the licence
/// errors Microsoft recorded on the accounts read.
pub fn findings(view: &PlanView) -> Vec<Finding> {
    let mut out = Vec::new();
    for (issue, email) in &view.issues {
        let held = view
            .held
            .iter()
            .find(|(_, i)| i == issue)
            .map(|(op, _)| AnyOp::User(op.clone()));
        out.push(Finding {
            issue: issue.clone(),
            subject: Subject::User(email.clone()),
            op: held,
            source: FindingSource::Preflight,
        });
    }
    let mut seen_groups = HashSet::new();
    for (op, issue) in &view.group_held {
        if seen_groups.insert((op.group_id, issue.kind.clone())) {
            out.push(Finding {
                issue: issue.clone(),
                subject: Subject::Group(op.group_name.clone()),
                op: Some(AnyOp::Group(op.clone())),
                source: FindingSource::Preflight,
            });
        }
    }
    for (issue, email) in &view.recorded {
        out.push(Finding {
            issue: issue.clone(),
            subject: Subject::User(email.clone()),
            op: None,
            source: FindingSource::Tenant,
        });
    }
    out
}

/// The last outcome of each change in the journal that failed, explained: what the Errors
/// tab and `m365sync errors` list (a failure a later run fixed is gone).
pub fn journal_failures(
    latest: &[crate::directory::JournalEntry],
) -> Vec<(AnyOp, crate::diagnose::Diagnosis)> {
    use crate::directory::JournalState;
    latest
        .iter()
        .filter(|e| e.state == JournalState::Failed)
        .map(|e| {
            let code = e.error_code.clone().unwrap_or_else(|| "unknown".into());
            let err = crate::graph::GraphError::Api {
                status: status_of_code(&code),
                code,
                message: e.error_message.clone().unwrap_or_default(),
                request_id: e.request_id.clone(),
                date: Some(e.updated_at.clone()),
                retry_after: None,
            };
            let d =
                crate::diagnose::diagnose_graph(&err, &crate::diagnose::Context::for_any_op(&e.op));
            (e.op.clone(), d)
        })
        .collect()
}

/// The status a journal's failed op most likely had, from Graph's code (the journal keeps the
/// code, message and request-id, not the status).
fn status_of_code(code: &str) -> u16 {
    match code {
        "InvalidAuthenticationToken" => 401,
        "Authorization_RequestDenied" => 403,
        "Request_ResourceNotFound" => 404,
        "TooManyRequests" | "Request_ThrottledTemporarily" => 429,
        "serviceNotAvailable" | "Service_InternalServerError" => 503,
        "generalException" => 500,
        "not-sent" | "outcome-unknown" => 0,
        _ => 400,
    }
}

#[cfg(test)]
mod tests {
    use super::beside;

    #[test]
    fn beside_returns_both_results_and_runs_each_once() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let (a, b) = beside(
            || {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                std::thread::current().id()
            },
            || {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                std::thread::current().id()
            },
        );
        assert_eq!(calls.into_inner(), 2);
        assert_ne!(a, b, "b ran on its own thread");
        assert_eq!(a, std::thread::current().id(), "a ran on the caller's");
    }

    #[test]
    fn a_panic_beside_goes_on_in_the_caller() {
        let r = std::panic::catch_unwind(|| beside(|| 1, || -> u32 { panic!("rule broke") }));
        let p = r.expect_err("the panic reaches the caller");
        assert_eq!(p.downcast_ref::<&str>(), Some(&"rule broke"));
    }
}
