//! Groups (issue 4, item 6): binding a directory group provisions an M365 security group (or a
//! Microsoft 365 group when the directory's `group_kind` says so) with a valid mailNickname,
//! and keeps its membership in sync with `members/$ref` adds and removes, batched, journaled
//! (`group_journal`) and audited.
//!
//! Group ops run after the user ops of a sync (a second phase): a member's account must exist
//! before it can be added, so the CLI plans the groups again once the users are applied.
//!
//! Unbinding a group stops syncing it; the M365 group and its members are left exactly as they
//! are (m365sync never deletes M365 objects). Members of an M365 group that are not directory
//! users (added by hand in Microsoft 365) are never removed.
//!
//! The mailNickname derivation lives here on purpose: the preflight rules (another branch)
//! offer `sanitize_mail_nickname`, but this module does not depend on them.
use crate::sync::preflight::Issue;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::directory::{
    AuditEntry, Directory, DirectoryGroup, DirectoryUser, GroupKind, JournalState,
};
use crate::graph::batch::{self, BatchRequest};
use crate::graph::{GraphClient, GraphError, RetryPolicy};

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
    use futures::StreamExt;
    let mut snap = GroupSnapshot::default();
    let mut pages = graph.pages::<crate::graph::Group>(format!(
        "{}/groups?$select={}&$top=999",
        graph.base(),
        crate::graph::model::GROUP_SELECT.join(",")
    ));
    while let Some(p) = pages.next().await {
        snap.groups.extend(p?);
    }
    let live: HashSet<&str> = snap.groups.iter().map(|g| g.id.as_str()).collect();
    for g in groups.iter().filter(|g| g.want_bound) {
        let Some(id) = g.tenant_group_id.as_deref().filter(|id| live.contains(id)) else {
            continue;
        };
        let mut members = HashSet::new();
        let mut pages = graph.pages::<crate::graph::DirectoryObject>(format!(
            "{}/groups/{id}/members?$select=id&$top=999",
            graph.base()
        ));
        while let Some(p) = pages.next().await {
            members.extend(p?.into_iter().map(|o| o.id));
        }
        snap.members.insert(id.to_string(), members);
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
            if !u.want_bound {
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

/// The group plan against the tenant as it is now, from the directory at `db_path`: what a
/// preview shows. Empty (and no Graph call) when no group is bound. Ops of a group whose name
/// or nickname preflight refuses come back in the second list and must not be sent.
pub async fn plan_from_directory(
    graph: &GraphClient,
    db_path: PathBuf,
) -> anyhow::Result<(Vec<GroupOp>, Vec<(GroupOp, Issue)>)> {
    let (users, groups) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let d = Directory::open(&db_path)?;
        Ok((d.users()?, d.groups()?))
    })
    .await??;
    if !groups.iter().any(|g| g.want_bound) {
        return Ok((Vec::new(), Vec::new()));
    }
    let snap = group_snapshot(graph, &groups).await?;
    Ok(held_back(plan_groups(&groups, &users, &snap), &groups))
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

/// The second phase of a sync, after the user ops: plan the groups again (the accounts bound
/// in this sync now exist) and apply. Returns the ops applied and their outcome.
pub async fn sync_groups(
    graph: &GraphClient,
    db_path: PathBuf,
    actor: &str,
) -> anyhow::Result<(Vec<GroupOp>, GroupSummary)> {
    let (ops, _held) = plan_from_directory(graph, db_path.clone()).await?;
    let summary = apply_groups(graph, db_path, ops.clone(), actor).await?;
    Ok((ops, summary))
}

/// The outcome of applying group ops.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupSummary {
    pub done: usize,
    pub failed: usize,
    /// Each failed op with the error (Graph's code and message, or why it was not sent).
    pub failures: Vec<(GroupOp, String)>,
}

fn body_for(op: &GroupOp) -> serde_json::Value {
    match op.group_kind {
        GroupKind::Security => json!({
            "displayName": op.group_name,
            "mailEnabled": false,
            "mailNickname": op.mail_nickname,
            "securityEnabled": true,
            "groupTypes": [],
        }),
        GroupKind::M365 => json!({
            "displayName": op.group_name,
            "mailEnabled": true,
            "mailNickname": op.mail_nickname,
            "securityEnabled": false,
            "groupTypes": ["Unified"],
        }),
    }
}

fn graph_error_text(e: &GraphError) -> String {
    match e {
        GraphError::Api { code, message, .. } => format!("{code}: {message}"),
        other => other.to_string(),
    }
}

/// Why a create is not sent, if it must not be: a nickname Graph would refuse.
fn refuse_nickname(op: &GroupOp) -> Option<String> {
    if op.mail_nickname.is_empty() {
        return Some(format!(
            "the group name `{}` leaves no valid mailNickname once the characters Graph refuses \
             are removed; set a mailNickname for the group",
            op.group_name
        ));
    }
    if !group_nickname_valid(&op.mail_nickname) {
        return Some(format!(
            "the mailNickname `{}` of group `{}` has characters Graph refuses (@ ( ) \\ [ ] \" ; : \
             < > , space, non-ASCII) or is longer than 64",
            op.mail_nickname, op.group_name
        ));
    }
    None
}

/// Applies group ops: creates (and links) groups first, then the membership changes in
/// batches of 20, every op journaled and every write audited.
pub async fn apply_groups(
    graph: &GraphClient,
    db_path: PathBuf,
    ops: Vec<GroupOp>,
    actor: &str,
) -> anyhow::Result<GroupSummary> {
    let mut summary = GroupSummary::default();
    if ops.is_empty() {
        return Ok(summary);
    }
    let db_path2 = db_path.clone();
    let ops2 = ops.clone();
    let run_id = uuid::Uuid::new_v4().to_string();
    let run = run_id.clone();
    let ids = tokio::task::spawn_blocking(move || {
        let mut d = Directory::open(&db_path2)?;
        let ids = d.group_journal_insert(&run, &ops2)?;
        d.group_journal_supersede(&run)?;
        Ok::<_, crate::directory::DirectoryError>(ids)
    })
    .await??;
    let mut db = Directory::open(&db_path)?;
    let retry = RetryPolicy::default();
    let audit =
        |op: &GroupOp, action: &str, outcome: &str, rid: Option<&str>, detail: Option<String>| {
            AuditEntry {
                at: String::new(),
                actor: actor.to_string(),
                action: action.to_string(),
                target: match &op.member {
                    Some(m) => format!("group {}: {}", op.group_name, m.email),
                    None => format!("group {}", op.group_name),
                },
                request_id: rid.map(str::to_string),
                outcome: outcome.to_string(),
                detail,
            }
        };
    let mut work: Vec<(i64, GroupOp)> = ids.into_iter().zip(ops).collect();
    // Phase 1: groups.
    let mut created: HashMap<i64, String> = HashMap::new();
    let mut failed_groups: HashSet<i64> = HashSet::new();
    let (group_ops, member_ops): (Vec<_>, Vec<_>) = work
        .drain(..)
        .partition(|(_, o)| matches!(o.kind, GroupOpKind::LinkGroup | GroupOpKind::CreateGroup));
    let mut to_create = Vec::new();
    for (jid, op) in group_ops {
        match op.kind {
            GroupOpKind::LinkGroup => {
                let tid = op.tenant_group_id.clone().unwrap_or_default();
                db.record_group_outcome(op.group_id, Some(&tid), None)?;
                db.group_journal_record(jid, JournalState::Done, None, None)?;
                db.audit_append(&audit(&op, "link group", "done", None, Some(tid.clone())))?;
                created.insert(op.group_id, tid);
                summary.done += 1;
            }
            _ => match refuse_nickname(&op) {
                Some(why) => {
                    db.record_group_outcome(op.group_id, None, Some(&why))?;
                    db.group_journal_record(
                        jid,
                        JournalState::Failed,
                        None,
                        Some(("InvalidMailNickname", &why)),
                    )?;
                    failed_groups.insert(op.group_id);
                    summary.failed += 1;
                    summary.failures.push((op, why));
                }
                None => to_create.push((jid, op)),
            },
        }
    }
    for chunk in to_create.chunks(batch::MAX_BATCH) {
        let reqs: Vec<BatchRequest> = chunk
            .iter()
            .map(|(jid, op)| {
                BatchRequest::new(jid.to_string(), Method::POST, "/groups").with_body(body_for(op))
            })
            .collect();
        let jids: Vec<i64> = chunk.iter().map(|(j, _)| *j).collect();
        db.group_journal_mark(&jids, JournalState::Sent)?;
        let answers = match batch::execute(graph, &reqs, &retry).await {
            Ok(a) => a,
            Err(e) => chunk.iter().map(|_| Err(e.clone())).collect(),
        };
        for ((jid, op), answer) in chunk.iter().zip(answers) {
            match answer.and_then(|item| {
                let g: crate::graph::Group = item.json()?;
                Ok((g.id, item.request_id))
            }) {
                Ok((tid, rid)) => {
                    db.record_group_outcome(op.group_id, Some(&tid), None)?;
                    db.group_journal_record(*jid, JournalState::Done, rid.as_deref(), None)?;
                    db.audit_append(&audit(
                        op,
                        "create group",
                        "done",
                        rid.as_deref(),
                        Some(format!("{} {}", op.mail_nickname, tid)),
                    ))?;
                    created.insert(op.group_id, tid);
                    summary.done += 1;
                }
                Err(e) => {
                    let text = graph_error_text(&e);
                    db.record_group_outcome(op.group_id, None, Some(&text))?;
                    db.group_journal_record(
                        *jid,
                        JournalState::Failed,
                        e.request_id(),
                        Some((e.code(), &e.to_string())),
                    )?;
                    db.audit_append(&audit(
                        op,
                        "create group",
                        "failed",
                        e.request_id(),
                        Some(text.clone()),
                    ))?;
                    failed_groups.insert(op.group_id);
                    summary.failed += 1;
                    summary.failures.push((op.clone(), text));
                }
            }
        }
    }
    // Phase 2: members, once their group and account exist.
    let mut sendable = Vec::new();
    for (jid, mut op) in member_ops {
        if op.tenant_group_id.is_none() {
            op.tenant_group_id = created.get(&op.group_id).cloned();
        }
        let member_id = op.member.as_ref().and_then(|m| m.tenant_user_id.clone());
        let why = if op.tenant_group_id.is_none() {
            Some(if failed_groups.contains(&op.group_id) {
                format!("the group {} could not be created", op.group_name)
            } else {
                format!(
                    "the group {} does not exist in Microsoft 365",
                    op.group_name
                )
            })
        } else if member_id.is_none() {
            Some(format!(
                "{} has no Microsoft 365 account yet (its bind has not succeeded)",
                op.member.as_ref().map(|m| m.email.as_str()).unwrap_or("?")
            ))
        } else {
            None
        };
        match why {
            Some(why) => {
                db.group_journal_record(jid, JournalState::Failed, None, Some(("NotSent", &why)))?;
                summary.failed += 1;
                summary.failures.push((op, why));
            }
            None => sendable.push((jid, op)),
        }
    }
    for chunk in sendable.chunks(batch::MAX_BATCH) {
        let reqs: Vec<BatchRequest> = chunk
            .iter()
            .map(|(jid, op)| {
                let gid = op.tenant_group_id.as_deref().unwrap_or_default();
                let uid = op
                    .member
                    .as_ref()
                    .and_then(|m| m.tenant_user_id.as_deref())
                    .unwrap_or_default();
                match op.kind {
                    GroupOpKind::RemoveMember => BatchRequest::new(
                        jid.to_string(),
                        Method::DELETE,
                        format!("/groups/{gid}/members/{uid}/$ref"),
                    ),
                    _ => BatchRequest::new(
                        jid.to_string(),
                        Method::POST,
                        format!("/groups/{gid}/members/$ref"),
                    )
                    .with_body(json!({
                        "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{uid}")
                    })),
                }
            })
            .collect();
        let jids: Vec<i64> = chunk.iter().map(|(j, _)| *j).collect();
        db.group_journal_mark(&jids, JournalState::Sent)?;
        let answers = match batch::execute(graph, &reqs, &retry).await {
            Ok(a) => a,
            Err(e) => chunk.iter().map(|_| Err(e.clone())).collect(),
        };
        for ((jid, op), answer) in chunk.iter().zip(answers) {
            let action = if op.kind == GroupOpKind::RemoveMember {
                "remove group member"
            } else {
                "add group member"
            };
            // Already as wanted (e.g. a resumed run): done, nothing changed.
            let already = |e: &GraphError| match e {
                GraphError::Api {
                    status: 400,
                    message,
                    ..
                } => {
                    (op.kind == GroupOpKind::AddMember && message.contains("already exist"))
                        || (op.kind == GroupOpKind::RemoveMember
                            && message.contains("do not exist"))
                }
                _ => false,
            };
            match answer {
                Ok(item) => {
                    let rid = item.request_id.as_deref();
                    db.group_journal_record(*jid, JournalState::Done, rid, None)?;
                    db.audit_append(&audit(op, action, "done", rid, None))?;
                    summary.done += 1;
                }
                Err(e) if already(&e) => {
                    db.group_journal_record(*jid, JournalState::Done, e.request_id(), None)?;
                    summary.done += 1;
                }
                Err(e) => {
                    let text = graph_error_text(&e);
                    db.group_journal_record(
                        *jid,
                        JournalState::Failed,
                        e.request_id(),
                        Some((e.code(), &e.to_string())),
                    )?;
                    db.audit_append(&audit(
                        op,
                        action,
                        "failed",
                        e.request_id(),
                        Some(text.clone()),
                    ))?;
                    summary.failed += 1;
                    summary.failures.push((op.clone(), text));
                }
            }
        }
    }
    Ok(summary)
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
