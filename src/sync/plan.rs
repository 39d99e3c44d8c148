//! The plan: a pure function of the directory and a tenant snapshot. No I/O.
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

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
    /// PATCH the attributes of a bound account that differ from the directory.
    UpdateAttributes,
    /// PUT (or DELETE) the account's manager reference, as the directory says.
    SetManager,
    /// POST assignLicense: the licences the directory assigns added, the ones it no longer
    /// assigns removed (one per account).
    AssignLicense,
    /// POST revokeSignInSessions: the deprovisioning policy (or a pushed password) signs the
    /// user out everywhere.
    RevokeSessions,
    /// POST assignLicense removing the licences m365sync assigned (deprovisioning policy).
    RemoveLicenses,
    /// DELETE the account (soft delete, restorable for 30 days; never a purge).
    DeleteUser,
    /// No request: deprovisioning steps recorded in the directory (a leaver blocked before
    /// its policy gets the policy's steps; due steps with nothing left to do are closed).
    RecordSteps,
}

impl OpKind {
    pub const ALL: [OpKind; 13] = [
        OpKind::Create,
        OpKind::Takeover,
        OpKind::Restore,
        OpKind::ReEnable,
        OpKind::UpdateAttributes,
        OpKind::SetManager,
        OpKind::AssignLicense,
        OpKind::Block,
        OpKind::RevokeSessions,
        OpKind::RemoveLicenses,
        OpKind::DeleteUser,
        OpKind::RecordSteps,
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
            OpKind::UpdateAttributes => "update attributes",
            OpKind::SetManager => "set manager",
            OpKind::RevokeSessions => "sign out everywhere",
            OpKind::RemoveLicenses => "remove licences",
            OpKind::DeleteUser => "delete account",
            OpKind::RecordSteps => "record deprovisioning steps",
            OpKind::AssignLicense => "assign licences",
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
    /// The attributes this op sets on the account, field by field (an update; the
    /// attributes a takeover or a re-enable aligns in the same request).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<super::attributes::AttrChange>,
    /// A set-manager op: the directory user who is the manager (None: remove the manager).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_id: Option<i64>,
    /// Deprovisioning: the steps a block schedules, the licences a removal takes away.
    #[serde(
        default,
        skip_serializing_if = "super::deprovision::OpDeprovision::is_empty"
    )]
    pub deprovision: super::deprovision::OpDeprovision,
    /// An assign-licence op: the licences it adds and removes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licences: Option<Box<super::licences::LicenceDiff>>,
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
    /// Which attributes flow from the directory to the accounts.
    #[serde(default)]
    pub attributes: super::attributes::AttributePolicy,
    /// What happens to the account of a user unbound (block, then the steps it adds).
    #[serde(default)]
    pub deprovision: super::deprovision::Deprovision,
    /// A password pushed to an account does NOT sign the user out (default: it does,
    /// `directory policy --revoke-on-password off` sets this).
    #[serde(default)]
    pub keep_sessions_on_password: bool,
    /// The usage location (ISO 3166 alpha-2) an account gets on bind when the directory user
    /// has none of its own (`directory policy --usage-location CC`): licences need one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_location: Option<String>,
}

/// Refuse, unless confirmed, a plan that blocks many bound users at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardConfig {
    pub max_blocks: usize,
    pub max_share: f64,
    /// Deleting more accounts than this in one plan needs its own confirmation.
    #[serde(default = "default_max_deletes")]
    pub max_deletes: usize,
}

fn default_max_deletes() -> usize {
    10
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            max_blocks: 50,
            max_share: 0.10,
            max_deletes: default_max_deletes(),
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
    /// Bound accounts synced from on-premises AD whose attributes differ from the directory:
    /// never edited (Graph refuses), shown with the reason: (directory id, UPN, fields).
    pub synced: Vec<(i64, String, usize)>,
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
    /// The warnings the preview must show (welcome email on create, block deletes nothing).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        let created = self.count(OpKind::Create);
        if created > 0 {
            w.push(format!(
                "Creating {created} account{} makes Microsoft send {} welcome email.",
                if created == 1 { "" } else { "s" },
                if created == 1 { "its" } else { "their" }
            ));
        }
        let blocks = self.count(OpKind::Block);
        // Blocks whose deprovisioning policy deletes the account later.
        let deleted_later = self
            .ops
            .iter()
            .filter(|o| o.kind == OpKind::Block)
            .filter(|o| {
                o.deprovision
                    .schedule
                    .iter()
                    .any(|s| s.step == super::deprovision::Step::Delete)
            })
            .count();
        if blocks > 0 && deleted_later == 0 {
            w.push(format!(
                "Unbinding {blocks} user{} blocks sign-in and deletes nothing: the accounts, \
                 mailboxes and files are kept.",
                if blocks == 1 { "" } else { "s" }
            ));
        } else if blocks > 0 {
            w.push(format!(
                "Unbinding {blocks} user{} blocks sign-in; the deprovisioning policy deletes \
                 {deleted_later} of the accounts later (see the scheduled steps): deleted \
                 accounts stay restorable for 30 days.",
                if blocks == 1 { "" } else { "s" }
            ));
        }
        let deletes = self.count(OpKind::DeleteUser);
        if deletes > 0 {
            w.push(format!(
                "Deleting {deletes} account{} (deprovisioning policy): {} go to deleted items, \
                 restorable for 30 days; m365sync never purges.",
                if deletes == 1 { "" } else { "s" },
                if deletes == 1 { "it goes" } else { "they go" }
            ));
        }
        w
    }
}

/// mailNickname from the local part of an address: the characters Exchange forbids
/// (`@ ( ) \ [ ] " ; : < > ,`, spaces, anything not ASCII) removed, no dot at either end,
/// at most 64 characters; `user` if nothing is left.
pub fn mail_nickname(email: &str) -> String {
    let local = email.rsplit_once('@').map_or(email, |(l, _)| l);
    let kept: String = local
        .chars()
        .filter(|c| c.is_ascii_graphic() && !"@()\\[]\";:<>,".contains(*c))
        .collect();
    let trimmed: String = kept.trim_matches('.').chars().take(64).collect();
    let trimmed = trimmed.trim_end_matches('.').to_string();
    if trimmed.is_empty() {
        "user".into()
    } else {
        trimmed
    }
}

/// Whether the directory password of `u` is older than the policy allows at `now` (unix s).
pub fn password_expired(u: &DirectoryUser, policy: &Policy, now: i64) -> bool {
    let (Some(days), Some(at)) = (policy.password_max_age_days, u.password_set_at.as_deref())
    else {
        return false;
    };
    match time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339) {
        Ok(t) => now - t.unix_timestamp() > i64::from(days) * 86_400,
        Err(_) => false,
    }
}

fn lc(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// The snapshot indexed once: O(tenant) to build, O(1) per directory user.
/// (foldhash: these maps hold every listed account, and hashing their ids was a large share
/// of a 100,000-user plan with the standard hasher.)
struct Index<'a> {
    live_by_id: foldhash::HashMap<&'a str, &'a User>,
    live_by_addr: foldhash::HashMap<Cow<'a, str>, &'a User>,
    deleted_by_id: foldhash::HashMap<&'a str, &'a User>,
    deleted_by_addr: foldhash::HashMap<Cow<'a, str>, &'a User>,
}

impl<'a> Index<'a> {
    fn new(tenant: &'a TenantSnapshot, linked: &foldhash::HashSet<&str>) -> Index<'a> {
        let n: usize = tenant.pages.iter().map(|p| p.len()).sum();
        let mut ix = Index {
            live_by_id: foldhash::HashMap::with_capacity_and_hasher(n, Default::default()),
            live_by_addr: foldhash::HashMap::with_capacity_and_hasher(
                n.saturating_sub(linked.len()),
                Default::default(),
            ),
            deleted_by_id: Default::default(),
            deleted_by_addr: Default::default(),
        };
        for u in tenant.pages.iter().flat_map(|p| p.iter()) {
            ix.live_by_id.insert(&u.id, u);
            // Only accounts no directory user is linked to can be taken over.
            if !linked.contains(u.id.as_str()) {
                if let Some(m) = u.mail.as_deref().filter(|m| !m.is_empty()) {
                    ix.live_by_addr.entry(lc(m)).or_insert(u);
                }
                ix.live_by_addr
                    .entry(lc(&u.user_principal_name))
                    .or_insert(u);
            }
        }
        for u in &tenant.deleted {
            ix.deleted_by_id.insert(&u.id, u);
            if let Some(m) = u.mail.as_deref().filter(|m| !m.is_empty()) {
                ix.deleted_by_addr.entry(lc(m)).or_insert(u);
            }
            ix.deleted_by_addr
                .entry(lc(&u.user_principal_name))
                .or_insert(u);
        }
        ix
    }
}

/// The diff: what must change in the tenant so that it matches what the directory wants.
pub fn plan(
    directory: &[DirectoryUser],
    tenant: &TenantSnapshot,
    policy: &Policy,
    now: i64,
) -> Plan {
    let linked: foldhash::HashSet<&str> = directory
        .iter()
        .filter_map(|d| d.tenant_user_id.as_deref())
        .collect();
    let ix = Index::new(tenant, &linked);
    let mut out = Plan::default();
    let mut out_synced = Vec::new();
    for d in directory {
        let op = |kind: OpKind, upn: &str, id: Option<&str>, reason: String| Op {
            kind,
            directory_id: d.id,
            email: d.email.clone(),
            display_name: d.display_name.clone(),
            upn: upn.to_string(),
            tenant_user_id: id.map(str::to_string),
            reason,
            changes: Vec::new(),
            manager_id: None,
            deprovision: Default::default(),
            licences: None,
        };
        // The attribute diff of a linked account (none for one mastered on-premises: Graph
        // refuses to edit it; it is noted instead).
        let mut changes_of = |acc: &User| {
            let c = super::attributes::diff(d, acc, &policy.attributes);
            if acc.on_premises_sync_enabled {
                if !c.is_empty() {
                    out_synced.push((d.id, acc.user_principal_name.clone(), c.len()));
                }
                return Vec::new();
            }
            c
        };
        let live = d
            .tenant_user_id
            .as_deref()
            .and_then(|id| ix.live_by_id.get(id).copied());
        if let Some(acc) = live {
            if acc.account_enabled != Some(false) {
                out.bound_before += 1;
            }
        }
        let expired = password_expired(d, policy, now);
        // Why it is wanted: asked for directly, or through a bound group.
        // (Worded only for a user that gets an op: not for every user in sync.)
        let bind = || {
            if d.bound_via.is_empty() {
                "bind requested".to_string()
            } else if d.want_bound {
                format!("bind requested (also via {})", d.bound_via.join(", "))
            } else {
                format!("bound via {}", d.bound_via.join(", "))
            }
        };
        if !d.wanted() {
            if let Some(acc) = live {
                if acc.account_enabled != Some(false) {
                    out.ops.push(op(
                        OpKind::Block,
                        &acc.user_principal_name,
                        Some(&acc.id),
                        "unbind requested (not bound directly nor through a bound group); the account \
                         is kept with sign-in blocked"
                            .into(),
                    ));
                }
            }
            continue;
        }
        if let Some(acc) = live {
            let enabled = acc.account_enabled != Some(false);
            match (enabled, expired) {
                (true, true) => out.ops.push(op(
                    OpKind::Block,
                    &acc.user_principal_name,
                    Some(&acc.id),
                    format!(
                        "the directory password is older than the policy's {} days; setting a new \
                         password re-enables the account",
                        policy.password_max_age_days.unwrap_or(0)
                    ),
                )),
                (false, false) => out.ops.push(Op {
                    changes: changes_of(acc),
                    ..op(
                        OpKind::ReEnable,
                        &acc.user_principal_name,
                        Some(&acc.id),
                        format!("{}; the linked account has sign-in blocked", bind()),
                    )
                }),
                (true, false) => {
                    let changes = changes_of(acc);
                    if !changes.is_empty() {
                        out.ops.push(Op {
                            changes,
                            ..op(
                                OpKind::UpdateAttributes,
                                &acc.user_principal_name,
                                Some(&acc.id),
                                "the directory holds other values for these attributes".into(),
                            )
                        });
                    }
                }
                (false, true) => {}
            }
            continue;
        }
        if let Some(del) = d
            .tenant_user_id
            .as_deref()
            .and_then(|id| ix.deleted_by_id.get(id).copied())
        {
            out.ops.push(op(
                OpKind::Restore,
                &del.user_principal_name,
                Some(&del.id),
                format!(
                    "{}; the linked account was deleted and can be restored",
                    bind()
                ),
            ));
            continue;
        }
        let email = lc(&d.email);
        if let Some(acc) = ix.live_by_addr.get(email.as_ref()) {
            out.ops.push(Op {
                changes: changes_of(acc),
                ..op(
                    OpKind::Takeover,
                    &acc.user_principal_name,
                    Some(&acc.id),
                    format!(
                        "{}; the account {} already has this address: link it instead of \
                         creating a duplicate",
                        bind(),
                        acc.user_principal_name
                    ),
                )
            });
        } else if let Some(del) = ix.deleted_by_addr.get(email.as_ref()) {
            out.ops.push(op(
                OpKind::Restore,
                &del.user_principal_name,
                Some(&del.id),
                format!(
                    "{}; a deleted account holds this address: restore it",
                    bind()
                ),
            ));
        } else {
            out.ops.push(Op {
                changes: super::attributes::create_values(d, &policy.attributes)
                    .into_iter()
                    .map(|(attr, v)| super::attributes::AttrChange {
                        attr,
                        old: None,
                        new: Some(v),
                    })
                    .collect(),
                ..op(
                    OpKind::Create,
                    d.email.trim(),
                    None,
                    format!("{}; no account has this address", bind()),
                )
            });
        }
    }
    out.synced = out_synced;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::BindingState;

    fn dir(id: i64, email: &str, link: Option<&str>, want: bool) -> DirectoryUser {
        DirectoryUser {
            id,
            email: email.into(),
            display_name: email.into(),
            given_name: None,
            surname: None,
            tenant_user_id: link.map(Into::into),
            binding: if link.is_some() {
                BindingState::Bound
            } else {
                BindingState::Unbound
            },
            want_bound: want,
            job_title: None,
            department: None,
            password_set_at: None,
            bound_via: Vec::new(),
            attributes: Default::default(),
        }
    }

    fn acc(id: &str, upn: &str, mail: Option<&str>, enabled: bool) -> User {
        User {
            id: id.into(),
            user_principal_name: upn.into(),
            mail: mail.map(Into::into),
            account_enabled: Some(enabled),
            ..Default::default()
        }
    }

    fn snap(live: Vec<User>, deleted: Vec<User>) -> TenantSnapshot {
        TenantSnapshot {
            pages: vec![Arc::new(live)],
            deleted,
            domains: vec![],
        }
    }

    /// A policy that syncs no attribute: these tests are about bindings.
    fn pol() -> Policy {
        let mut p = Policy::default();
        p.attributes.ignore = crate::sync::attributes::Attr::all().collect();
        p
    }

    fn kinds(p: &Plan) -> Vec<OpKind> {
        p.ops.iter().map(|o| o.kind).collect()
    }

    /// Every current state (tenant side) x desired state.
    #[test]
    fn every_state_times_desired_state() {
        use OpKind::*;
        // (name, directory link, live accounts, deleted accounts, want bound, want unbound)
        type Case = (
            &'static str,
            Option<&'static str>,
            Vec<User>,
            Vec<User>,
            Vec<OpKind>,
            Vec<OpKind>,
        );
        let e = "a@x.com";
        let cases: Vec<Case> = vec![
            (
                "linked+enabled",
                Some("t"),
                vec![acc("t", e, Some(e), true)],
                vec![],
                vec![],
                vec![Block],
            ),
            (
                "linked+disabled",
                Some("t"),
                vec![acc("t", e, Some(e), false)],
                vec![],
                vec![ReEnable],
                vec![],
            ),
            (
                "linked, soft-deleted",
                Some("t"),
                vec![],
                vec![acc("t", e, Some(e), true)],
                vec![Restore],
                vec![],
            ),
            (
                "linked, gone; nothing holds it",
                Some("t"),
                vec![],
                vec![],
                vec![Create],
                vec![],
            ),
            (
                "unlinked, live by mail",
                None,
                vec![acc("t", "other@x.com", Some("A@X.com"), true)],
                vec![],
                vec![Takeover],
                vec![],
            ),
            (
                "unlinked, live by upn",
                None,
                vec![acc("t", "A@x.COM", None, false)],
                vec![],
                vec![Takeover],
                vec![],
            ),
            (
                "unlinked, soft-deleted holder",
                None,
                vec![],
                vec![acc("t", e, None, true)],
                vec![Restore],
                vec![],
            ),
            (
                "unlinked, nothing",
                None,
                vec![acc("z", "z@x.com", None, true)],
                vec![],
                vec![Create],
                vec![],
            ),
        ];
        for (name, link, live, deleted, want_bound, want_unbound) in cases {
            let s = snap(live, deleted);
            let p = plan(&[dir(1, e, link, true)], &s, &pol(), 0);
            assert_eq!(kinds(&p), want_bound, "{name}, want bound");
            let p = plan(&[dir(1, e, link, false)], &s, &pol(), 0);
            assert_eq!(kinds(&p), want_unbound, "{name}, want unbound");
        }
    }

    #[test]
    fn takeover_links_the_existing_account_never_a_duplicate() {
        let s = snap(
            vec![acc("t9", "ada@x.com", Some("ada@x.com"), true)],
            vec![],
        );
        let p = plan(&[dir(1, "Ada@X.com", None, true)], &s, &pol(), 0);
        assert_eq!(p.ops.len(), 1);
        assert_eq!(p.ops[0].kind, OpKind::Takeover);
        assert_eq!(p.ops[0].tenant_user_id.as_deref(), Some("t9"));
        assert_eq!(p.ops[0].upn, "ada@x.com");
        // An account already linked to another directory user is not taken over.
        let p = plan(
            &[
                dir(1, "ada@x.com", None, true),
                dir(2, "b@x.com", Some("t9"), true),
            ],
            &s,
            &pol(),
            0,
        );
        assert_eq!(kinds(&p), vec![OpKind::Create]);
    }

    #[test]
    fn restore_of_a_soft_deleted_holder_uses_its_id() {
        let s = snap(vec![], vec![acc("d1", "Gone@x.com", None, true)]);
        let p = plan(&[dir(1, "gone@x.com", None, true)], &s, &pol(), 0);
        assert_eq!(p.ops[0].kind, OpKind::Restore);
        assert_eq!(p.ops[0].tenant_user_id.as_deref(), Some("d1"));
        assert_eq!(p.ops[0].upn, "Gone@x.com");
    }

    #[test]
    fn expired_password_blocks_a_bound_user() {
        let now = 1_800_000_000;
        let at = |days_ago: i64| {
            time::OffsetDateTime::from_unix_timestamp(now - days_ago * 86_400)
                .unwrap()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        let policy = Policy {
            password_max_age_days: Some(90),
            attributes: pol().attributes,
            usage_location: None,
            ..Policy::default()
        };
        let s = snap(vec![acc("t", "a@x.com", None, true)], vec![]);
        let mut u = dir(1, "a@x.com", Some("t"), true);
        u.password_set_at = Some(at(91));
        let p = plan(std::slice::from_ref(&u), &s, &policy, now);
        assert_eq!(kinds(&p), vec![OpKind::Block]);
        assert!(p.ops[0].reason.contains("90 days"), "{}", p.ops[0].reason);
        u.password_set_at = Some(at(90));
        assert!(plan(std::slice::from_ref(&u), &s, &policy, now)
            .ops
            .is_empty());
        // No policy: never expires. Expired and already blocked: stays blocked.
        u.password_set_at = Some(at(1000));
        assert!(plan(std::slice::from_ref(&u), &s, &pol(), now)
            .ops
            .is_empty());
        let s2 = snap(vec![acc("t", "a@x.com", None, false)], vec![]);
        assert!(plan(std::slice::from_ref(&u), &s2, &policy, now)
            .ops
            .is_empty());
        u.password_set_at = Some(at(1));
        assert_eq!(
            kinds(&plan(&[u], &s2, &policy, now)),
            vec![OpKind::ReEnable]
        );
    }

    #[test]
    fn create_uses_the_email_as_upn_and_a_clean_nickname() {
        let p = plan(
            &[dir(1, "J.Doe@x.com", None, true)],
            &snap(vec![], vec![]),
            &pol(),
            0,
        );
        assert_eq!(p.ops[0].upn, "J.Doe@x.com");
        assert_eq!(mail_nickname("j(o)hn [x], \"y\";z:<w>@x.com"), "johnxyzw");
        assert_eq!(mail_nickname(".a.b.@x.com"), "a.b");
        assert_eq!(mail_nickname("é@x.com"), "user");
        assert_eq!(
            mail_nickname(&format!("{}@x.com", "a".repeat(80))).len(),
            64
        );
    }

    #[test]
    fn warnings() {
        let c = plan(
            &[dir(1, "n@x.com", None, true)],
            &snap(vec![], vec![]),
            &pol(),
            0,
        );
        assert!(c.warnings().iter().any(|w| w.contains("welcome email")));
        let b = plan(
            &[dir(1, "a@x.com", Some("t"), false)],
            &snap(vec![acc("t", "a@x.com", None, true)], vec![]),
            &pol(),
            0,
        );
        assert!(b.warnings().iter().any(|w| w.contains("deletes nothing")));
    }

    /// A large tenant plans right (its speed is measured in the benches, as ratios; never
    /// asserted here as a time).
    #[test]
    fn a_large_tenant_plans_every_user() {
        let live: Vec<User> = (0..200_000)
            .map(|i| acc(&format!("t{i}"), &format!("u{i}@x.com"), None, true))
            .collect();
        let s = snap(live, vec![]);
        let dirs: Vec<DirectoryUser> = (0..50_000)
            .map(|i| dir(i, &format!("u{}@x.com", i * 5), None, true))
            .collect();
        let p = plan(&dirs, &s, &pol(), 0);
        assert_eq!(p.count(OpKind::Takeover), 40_000);
        assert_eq!(p.count(OpKind::Create), 10_000);
    }
}
