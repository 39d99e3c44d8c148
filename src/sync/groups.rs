//! Groups (issue 4, item 6): binding a directory group provisions an M365 security group (or a
//! Microsoft 365 group when the directory's `group_kind` says so) with a valid mailNickname,
//! and keeps its membership in sync with `members/$ref` adds and removes, batched, journaled
//! (`group_journal`) and audited.
//!
//! Group ops run in the same engine as user ops (`sync::apply`): a member add waits for the
//! op of the same run that creates its member's account or its group.
//!
//! Unbinding a group stops syncing it; the M365 group and its members are left exactly as they
//! are (m365sync never deletes M365 objects). Members of an M365 group that are not directory
//! users (added by hand in Microsoft 365) are never removed.
//!
//! The mailNickname derivation lives here on purpose: the preflight rules (another branch)
//! offer `sanitize_mail_nickname`, but this module does not depend on them.
use crate::sync::preflight::Issue;
use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::directory::{DirectoryGroup, DirectoryUser, GroupKind};
use crate::graph::{GraphClient, GraphError};

/// Characters Graph refuses in a group's mailNickname (graph-notes §4), besides spaces and
/// anything outside ASCII 0-127.
const FORBIDDEN: &str = "@()\\[]\";:<>,";

/// Whether Graph accepts `n` as a group mailNickname: 1..=64 ASCII characters, none of
/// `@ ( ) \ [ ] " ; : < > ,`, no space, no control character.
pub fn group_nickname_valid(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_graphic() && !FORBIDDEN.contains(c))
}

/// The mailNickname derived from a group name: forbidden characters, spaces, control and
/// non-ASCII characters removed, no dot at either end, at most 64 characters.
/// `Sales (EU)` -> `SalesEU`, `R&D; Ops` -> `R&DOps`. May be empty (then the create fails
/// with a clear error instead of being sent).
pub fn group_mail_nickname(name: &str) -> String {
    // One derivation for the whole program: the one preflight suggests is the one sent.
    crate::sync::preflight::sanitize_mail_nickname(name)
}

/// The nickname a group is provisioned with: the admin's override, else derived.
pub fn nickname_for(g: &DirectoryGroup) -> String {
    match g.mail_nickname.as_deref().map(str::trim) {
        Some(o) if !o.is_empty() => o.to_string(),
        _ => group_mail_nickname(&g.name),
    }
}

/// One kind of group change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupOpKind {
    /// An M365 group with this name and nickname exists and no directory group holds it
    /// (e.g. a run was killed after creating it): link it instead of creating a duplicate.
    LinkGroup,
    /// POST /groups.
    CreateGroup,
    /// POST /groups/{id}/members/$ref.
    AddMember,
    /// DELETE /groups/{id}/members/{id}/$ref.
    RemoveMember,
}

impl GroupOpKind {
    pub const ALL: [GroupOpKind; 4] = [
        GroupOpKind::LinkGroup,
        GroupOpKind::CreateGroup,
        GroupOpKind::AddMember,
        GroupOpKind::RemoveMember,
    ];
    pub fn label(self) -> &'static str {
        match self {
            GroupOpKind::LinkGroup => "link existing group",
            GroupOpKind::CreateGroup => "create group",
            GroupOpKind::AddMember => "add group member",
            GroupOpKind::RemoveMember => "remove group member",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            GroupOpKind::LinkGroup => "link-group",
            GroupOpKind::CreateGroup => "create-group",
            GroupOpKind::AddMember => "add-member",
            GroupOpKind::RemoveMember => "remove-member",
        }
    }
    /// Graph writes this op costs.
    pub fn writes(self) -> u32 {
        match self {
            GroupOpKind::LinkGroup => 0,
            _ => 1,
        }
    }
}

/// The member an AddMember/RemoveMember op is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    pub directory_id: i64,
    pub email: String,
    /// Its account; None while the account does not exist yet (bound in this sync).
    pub tenant_user_id: Option<String>,
}

/// One planned group change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupOp {
    pub kind: GroupOpKind,
    /// The directory group.
    pub group_id: i64,
    pub group_name: String,
    pub mail_nickname: String,
    pub group_kind: GroupKind,
    /// The M365 group (None for a group created in this run).
    pub tenant_group_id: Option<String>,
    pub member: Option<GroupMember>,
    pub reason: String,
}

/// The tenant's groups, and the members (object ids) of the groups directory groups are
/// linked to.
#[derive(Debug, Clone, Default)]
pub struct GroupSnapshot {
    pub groups: Vec<crate::graph::Group>,
    pub members: HashMap<String, HashSet<String>>,
}

/// Reads what the group plan needs: every group (id, name, nickname), and the members of the
/// groups that `groups` are linked to and want synced.
pub async fn group_snapshot(
    graph: &GraphClient,
    groups: &[DirectoryGroup],
) -> Result<GroupSnapshot, GraphError> {
    let mut snap = GroupSnapshot {
        groups: graph.list_groups().await?,
        ..Default::default()
    };
    let live: HashSet<&str> = snap.groups.iter().map(|g| g.id.as_str()).collect();
    for g in groups.iter().filter(|g| g.want_bound) {
        let Some(id) = g.tenant_group_id.as_deref().filter(|id| live.contains(id)) else {
            continue;
        };
        let members = graph.list_group_members(id).await?;
        snap.members
            .insert(id.to_string(), members.into_iter().collect());
    }
    Ok(snap)
}

/// The group diff: what must change so the tenant's groups match the directory's bound groups.
/// Pure. Unbound groups are left alone (never deleted, membership no longer synced).
pub fn plan_groups(
    groups: &[DirectoryGroup],
    users: &[DirectoryUser],
    snap: &GroupSnapshot,
) -> Vec<GroupOp> {
    // No bound group: nothing to plan, and no index of every user to build.
    if !groups.iter().any(|g| g.want_bound) {
        return Vec::new();
    }
    let by_id: HashMap<i64, &DirectoryUser> = users.iter().map(|u| (u.id, u)).collect();
    let by_tenant: HashMap<&str, &DirectoryUser> = users
        .iter()
        .filter_map(|u| u.tenant_user_id.as_deref().map(|t| (t, u)))
        .collect();
    let live: HashMap<&str, &crate::graph::Group> =
        snap.groups.iter().map(|g| (g.id.as_str(), g)).collect();
    let linked: HashSet<&str> = groups
        .iter()
        .filter_map(|g| g.tenant_group_id.as_deref())
        .filter(|id| live.contains_key(id))
        .collect();
    let mut ops = Vec::new();
    for g in groups.iter().filter(|g| g.want_bound) {
        let nick = nickname_for(g);
        let op =
            |kind, tenant: Option<&str>, member: Option<GroupMember>, reason: String| GroupOp {
                kind,
                group_id: g.id,
                group_name: g.name.clone(),
                mail_nickname: nick.clone(),
                group_kind: g.kind,
                tenant_group_id: tenant.map(str::to_string),
                member,
                reason,
            };
        let existing = g
            .tenant_group_id
            .as_deref()
            .filter(|id| live.contains_key(id));
        let tenant_id: Option<&str> = match existing {
            Some(id) => Some(id),
            None => {
                let adopt = snap.groups.iter().find(|t| {
                    !linked.contains(t.id.as_str())
                        && t.display_name.as_deref() == Some(g.name.as_str())
                        && t.mail_nickname
                            .as_deref()
                            .is_some_and(|n| n.eq_ignore_ascii_case(&nick))
                });
                match adopt {
                    Some(t) => {
                        ops.push(op(
                            GroupOpKind::LinkGroup,
                            Some(&t.id),
                            None,
                            format!(
                                "bind requested; the M365 group {} ({}) already exists: link it",
                                g.name, nick
                            ),
                        ));
                        Some(t.id.as_str())
                    }
                    None => {
                        let why = if g.tenant_group_id.is_some() {
                            "bind requested; the linked M365 group no longer exists"
                        } else {
                            "bind requested; no M365 group yet"
                        };
                        ops.push(op(
                            GroupOpKind::CreateGroup,
                            None,
                            None,
                            format!("{why}: create a {} group", g.kind.label()),
                        ));
                        None
                    }
                }
            }
        };
        let current = tenant_id
            .and_then(|id| snap.members.get(id))
            .cloned()
            .unwrap_or_default();
        let mut wanted: HashSet<&str> = HashSet::new();
        for uid in &g.members {
            let Some(u) = by_id.get(uid) else { continue };
            if !u.wanted() {
                continue;
            }
            if let Some(t) = u.tenant_user_id.as_deref() {
                wanted.insert(t);
                if current.contains(t) {
                    continue;
                }
            }
            ops.push(op(
                GroupOpKind::AddMember,
                tenant_id,
                Some(GroupMember {
                    directory_id: u.id,
                    email: u.email.clone(),
                    tenant_user_id: u.tenant_user_id.clone(),
                }),
                if u.tenant_user_id.is_some() {
                    format!("{} is a member of {} in the directory", u.email, g.name)
                } else {
                    format!(
                        "{} is a member of {} in the directory; added once the account exists",
                        u.email, g.name
                    )
                },
            ));
        }
        let mut removals: Vec<&str> = current
            .iter()
            .map(String::as_str)
            .filter(|t| !wanted.contains(t))
            .collect();
        removals.sort_unstable();
        for t in removals {
            // Only members m365sync knows: someone added by hand in M365 is left alone.
            let Some(u) = by_tenant.get(t) else { continue };
            ops.push(op(
                GroupOpKind::RemoveMember,
                tenant_id,
                Some(GroupMember {
                    directory_id: u.id,
                    email: u.email.clone(),
                    tenant_user_id: Some(t.to_string()),
                }),
                if g.members.contains(&u.id) {
                    format!("{} is unbound: removed from {}", u.email, g.name)
                } else {
                    format!(
                        "{} is no longer a member of {} in the directory",
                        u.email, g.name
                    )
                },
            ));
        }
    }
    ops
}

/// Preflight for groups that are about to be created: a name with stray spaces, or a name
/// whose nickname would need characters Graph refuses and no nickname the admin accepted
/// (`Sales (EU)` must be confirmed as `SalesEU`, not renamed silently). Every op of such a
/// group is held back with the first error.
pub fn held_back(
    ops: Vec<GroupOp>,
    groups: &[DirectoryGroup],
) -> (Vec<GroupOp>, Vec<(GroupOp, Issue)>) {
    // Only a group about to be created sends its name and nickname; linking an existing
    // group or syncing members of a bound one sends neither.
    let creating: HashSet<i64> = ops
        .iter()
        .filter(|o| o.kind == GroupOpKind::CreateGroup)
        .map(|o| o.group_id)
        .collect();
    let mut refused: HashMap<i64, Issue> = HashMap::new();
    for g in groups.iter().filter(|g| creating.contains(&g.id)) {
        let issues =
            crate::sync::preflight::check_group_name(g.id, &g.name, g.mail_nickname.as_deref());
        if let Some(first) = issues
            .into_iter()
            .find(|i| i.severity == crate::sync::preflight::Severity::Error)
        {
            refused.insert(g.id, first);
        }
    }
    let (mut send, mut held) = (Vec::with_capacity(ops.len()), Vec::new());
    for op in ops {
        match refused.get(&op.group_id) {
            Some(issue) => held.push((op, issue.clone())),
            None => send.push(op),
        }
    }
    (send, held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::BindingState;
    use crate::graph::Group;

    #[test]
    fn nickname_derivation() {
        assert_eq!(group_mail_nickname("Sales (EU)"), "SalesEU");
        assert_eq!(group_mail_nickname("R&D; Ops"), "R&DOps");
        assert_eq!(group_mail_nickname("Engineering "), "Engineering");
        assert_eq!(group_mail_nickname("Finance"), "Finance");
        assert_eq!(group_mail_nickname("a@b[c]d\"e:f<g>h,i\\j"), "abcdefghij");
        assert_eq!(group_mail_nickname("Équipe Ventes"), "EquipeVentes");
        assert_eq!(group_mail_nickname(".hidden."), "hidden");
        assert_eq!(group_mail_nickname("()[];"), "");
        assert_eq!(group_mail_nickname("   "), "");
        assert_eq!(group_mail_nickname(&"x".repeat(64)).len(), 64);
        assert_eq!(group_mail_nickname(&"x y".repeat(40)).len(), 64);
        for n in [
            "Sales (EU)",
            "R&D; Ops",
            "Engineering ",
            "Ünïcødé name",
            &"z ".repeat(100),
        ] {
            let d = group_mail_nickname(n);
            assert!(group_nickname_valid(&d), "{n} -> {d}");
        }
        assert!(!group_nickname_valid(""));
        assert!(!group_nickname_valid("a b"));
        assert!(!group_nickname_valid(&"a".repeat(65)));
        assert!(group_nickname_valid(&"a".repeat(64)));
    }

    #[test]
    fn override_wins() {
        let mut g = group(1, "Sales (EU)", None, true, vec![]);
        assert_eq!(nickname_for(&g), "SalesEU");
        g.mail_nickname = Some("sales-eu".into());
        assert_eq!(nickname_for(&g), "sales-eu");
        g.mail_nickname = Some("  ".into());
        assert_eq!(nickname_for(&g), "SalesEU");
    }

    fn group(
        id: i64,
        name: &str,
        tenant: Option<&str>,
        want: bool,
        members: Vec<i64>,
    ) -> DirectoryGroup {
        DirectoryGroup {
            id,
            name: name.into(),
            mail_nickname: None,
            kind: GroupKind::Security,
            tenant_group_id: tenant.map(Into::into),
            want_bound: want,
            last_error: None,
            members,
        }
    }

    fn user(id: i64, tenant: Option<&str>, want: bool) -> DirectoryUser {
        DirectoryUser {
            id,
            email: format!("u{id}@contoso.com"),
            display_name: format!("U{id}"),
            given_name: None,
            surname: None,
            tenant_user_id: tenant.map(Into::into),
            binding: if tenant.is_some() {
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

    fn tgroup(id: &str, name: &str, nick: &str) -> Group {
        Group {
            id: id.into(),
            display_name: Some(name.into()),
            mail_nickname: Some(nick.into()),
            ..Default::default()
        }
    }

    fn kinds(ops: &[GroupOp]) -> Vec<(GroupOpKind, Option<i64>)> {
        ops.iter()
            .map(|o| (o.kind, o.member.as_ref().map(|m| m.directory_id)))
            .collect()
    }

    #[test]
    fn every_group_state_and_want() {
        let users = vec![user(1, Some("t1"), true), user(2, None, true)];
        let snap = GroupSnapshot {
            groups: vec![tgroup("g1", "Finance", "Finance")],
            members: HashMap::from([("g1".to_string(), HashSet::from(["t1".to_string()]))]),
        };
        // Unbound, never provisioned: nothing.
        assert!(plan_groups(&[group(1, "Ops", None, false, vec![1])], &users, &snap).is_empty());
        // Kept: unbound but linked: nothing (never deleted, not synced).
        assert!(plan_groups(
            &[group(1, "Finance", Some("g1"), false, vec![])],
            &users,
            &snap
        )
        .is_empty());
        // Pending: create, then add members (the one without an account waits for it).
        let ops = plan_groups(&[group(1, "Ops", None, true, vec![1, 2])], &users, &snap);
        assert_eq!(
            kinds(&ops),
            vec![
                (GroupOpKind::CreateGroup, None),
                (GroupOpKind::AddMember, Some(1)),
                (GroupOpKind::AddMember, Some(2))
            ]
        );
        assert_eq!(ops[0].mail_nickname, "Ops");
        assert_eq!(ops[1].tenant_group_id, None);
        assert_eq!(ops[2].member.as_ref().unwrap().tenant_user_id, None);
        // Bound and in sync: nothing.
        assert!(plan_groups(
            &[group(1, "Finance", Some("g1"), true, vec![1])],
            &users,
            &snap
        )
        .is_empty());
        // Bound, linked group deleted in M365: created again.
        let ops = plan_groups(
            &[group(1, "Ops", Some("gone"), true, vec![])],
            &users,
            &snap,
        );
        assert_eq!(kinds(&ops), vec![(GroupOpKind::CreateGroup, None)]);
        // Not linked but an unlinked M365 group has the name and nickname: link it.
        let ops = plan_groups(&[group(1, "Finance", None, true, vec![1])], &users, &snap);
        assert_eq!(kinds(&ops), vec![(GroupOpKind::LinkGroup, None)]);
        assert_eq!(ops[0].tenant_group_id.as_deref(), Some("g1"));
        // ... unless another directory group holds it.
        let ops = plan_groups(
            &[
                group(1, "Finance", Some("g1"), true, vec![1]),
                group(2, "Finance", None, true, vec![]),
            ],
            &users,
            &snap,
        );
        assert_eq!(kinds(&ops), vec![(GroupOpKind::CreateGroup, None)]);
        // Failed before: planned again.
        let mut failed = group(1, "Ops", None, true, vec![]);
        failed.last_error = Some("x".into());
        assert_eq!(failed.state(), crate::directory::GroupState::Failed);
        assert_eq!(
            kinds(&plan_groups(&[failed], &users, &snap)),
            vec![(GroupOpKind::CreateGroup, None)]
        );
    }

    #[test]
    fn membership_diffs() {
        let users = vec![
            user(1, Some("t1"), true),  // member, in the group: nothing
            user(2, Some("t2"), true),  // member, not in the group: add
            user(3, Some("t3"), false), // member but unbound, in the group: remove
            user(4, Some("t4"), true),  // no longer a member, in the group: remove
            user(5, None, false),       // member, unbound, no account: nothing
        ];
        let snap = GroupSnapshot {
            groups: vec![tgroup("g1", "Sales (EU)", "SalesEU")],
            members: HashMap::from([(
                "g1".to_string(),
                HashSet::from(["t1", "t3", "t4", "foreign"].map(String::from)),
            )]),
        };
        let ops = plan_groups(
            &[group(7, "Sales (EU)", Some("g1"), true, vec![1, 2, 3, 5])],
            &users,
            &snap,
        );
        assert_eq!(
            kinds(&ops),
            vec![
                (GroupOpKind::AddMember, Some(2)),
                (GroupOpKind::RemoveMember, Some(3)),
                (GroupOpKind::RemoveMember, Some(4)),
            ]
        );
        assert!(ops
            .iter()
            .all(|o| o.tenant_group_id.as_deref() == Some("g1")));
        assert!(ops.iter().all(|o| o.mail_nickname == "SalesEU"));
        // The foreign member (not a directory user) is never removed.
        assert!(!ops
            .iter()
            .any(|o| o.member.as_ref().unwrap().tenant_user_id.as_deref() == Some("foreign")));
    }

    #[test]
    fn refused_nicknames_are_never_sent() {
        use crate::sync::ops::create_group::{body as body_for, refuse_nickname};
        use serde_json::json;
        let mut g = group(1, "()", None, true, vec![]);
        let ops = plan_groups(std::slice::from_ref(&g), &[], &GroupSnapshot::default());
        assert_eq!(ops[0].mail_nickname, "");
        assert!(refuse_nickname(&ops[0])
            .unwrap()
            .contains("no valid mailNickname"));
        g.mail_nickname = Some("bad nick".into());
        let ops = plan_groups(&[g], &[], &GroupSnapshot::default());
        assert!(refuse_nickname(&ops[0]).unwrap().contains("refuses"));
        let ok = plan_groups(
            &[group(1, "Sales (EU)", None, true, vec![])],
            &[],
            &GroupSnapshot::default(),
        );
        assert_eq!(refuse_nickname(&ok[0]), None);
        assert_eq!(body_for(&ok[0])["mailNickname"], "SalesEU");
        assert_eq!(body_for(&ok[0])["securityEnabled"], true);
        let mut m = ok[0].clone();
        m.group_kind = GroupKind::M365;
        assert_eq!(body_for(&m)["groupTypes"], json!(["Unified"]));
        assert_eq!(body_for(&m)["mailEnabled"], true);
    }
}
