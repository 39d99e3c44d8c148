//! Directory groups (issue 4, item 6): groups with members, the desired binding of each group,
//! the M365 group it is bound to, and the kind of group to provision (group ops are journaled with user ops: `journal.rs`).
//!
//! Unbinding a group only stops m365sync from syncing it: the M365 group and its members are
//! left as they are (m365sync never deletes M365 objects).
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};

use super::{now_rfc3339, Directory, DirectoryError};

/// What kind of M365 group a directory group is provisioned as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    /// A security group: `mailEnabled:false, securityEnabled:true, groupTypes:[]`.
    #[default]
    Security,
    /// A Microsoft 365 group: `groupTypes:["Unified"]`, mail-enabled, unique mailNickname.
    M365,
}

impl GroupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupKind::Security => "security",
            GroupKind::M365 => "m365",
        }
    }
    pub fn parse(s: &str) -> Option<GroupKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "security" => Some(GroupKind::Security),
            "m365" | "microsoft365" | "unified" => Some(GroupKind::M365),
            _ => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            GroupKind::Security => "security",
            GroupKind::M365 => "Microsoft 365",
        }
    }
}

/// Where a directory group is, as `m365sync groups` and a Groups view show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupState {
    /// Not wanted, never provisioned.
    Unbound,
    /// Wanted, not yet in the tenant: the next sync creates it.
    Pending,
    /// Wanted and bound to an M365 group: membership is kept in sync.
    Bound,
    /// Wanted, the last attempt to create it failed (see `last_error`).
    Failed,
    /// Not wanted any more but bound before: the M365 group is kept as it is, not synced.
    Kept,
}

impl GroupState {
    pub fn label(self) -> &'static str {
        match self {
            GroupState::Unbound => "Unbound",
            GroupState::Pending => "Pending",
            GroupState::Bound => "Bound",
            GroupState::Failed => "Failed",
            GroupState::Kept => "Kept (not synced)",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryGroup {
    pub id: i64,
    /// The name exactly as given (stray spaces included: preflight flags them).
    pub name: String,
    /// A mailNickname set by the admin, used instead of the one derived from the name.
    pub mail_nickname: Option<String>,
    pub kind: GroupKind,
    /// Graph object id of the M365 group it is bound to.
    pub tenant_group_id: Option<String>,
    /// What the admin asked for: a sync provisions it and keeps its membership.
    pub want_bound: bool,
    /// Why the last attempt to create it failed (Graph's code and message).
    pub last_error: Option<String>,
    /// Directory user ids of its members.
    pub members: Vec<i64>,
}

impl DirectoryGroup {
    pub fn state(&self) -> GroupState {
        match (self.want_bound, self.tenant_group_id.is_some()) {
            (false, false) => GroupState::Unbound,
            (false, true) => GroupState::Kept,
            (true, true) => GroupState::Bound,
            (true, false) if self.last_error.is_some() => GroupState::Failed,
            (true, false) => GroupState::Pending,
        }
    }
}

const GROUP_COLS: &str = "id, name, mail_nickname, kind, tenant_group_id, want_bound, last_error";

fn group_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DirectoryGroup> {
    Ok(DirectoryGroup {
        id: r.get(0)?,
        name: r.get(1)?,
        mail_nickname: r.get(2)?,
        kind: GroupKind::parse(&r.get::<_, String>(3)?).unwrap_or_default(),
        tenant_group_id: r.get(4)?,
        want_bound: r.get(5)?,
        last_error: r.get(6)?,
        members: Vec::new(),
    })
}

/// Adds the group named `name` (as given) inside a transaction if it is not there; its id.
pub(super) fn ensure_group(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    kind: GroupKind,
    now: &str,
) -> Result<(i64, bool), DirectoryError> {
    if name.trim().is_empty() {
        return Err(DirectoryError::Invalid("a group needs a name".into()));
    }
    if let Some(id) = tx
        .query_row(
            "SELECT id FROM groups WHERE name_lc = ?1",
            [name.to_lowercase()],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
    {
        return Ok((id, false));
    }
    tx.execute(
        "INSERT INTO groups (name, name_lc, kind, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        rusqlite::params![name, name.to_lowercase(), kind.as_str(), now],
    )?;
    Ok((tx.last_insert_rowid(), true))
}

/// Makes `user_id`'s groups exactly `groups` inside a transaction; memberships changed.
pub(super) fn set_user_groups(
    tx: &rusqlite::Transaction<'_>,
    user_id: i64,
    groups: &[i64],
) -> Result<usize, DirectoryError> {
    let current: Vec<i64> = {
        let mut st = tx.prepare("SELECT group_id FROM group_members WHERE user_id = ?1")?;
        let rows = st.query_map([user_id], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut changed = 0;
    for g in &current {
        if !groups.contains(g) {
            changed += tx.execute(
                "DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2",
                [g, &user_id],
            )?;
        }
    }
    for g in groups {
        if !current.contains(g) {
            changed += tx.execute(
                "INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?1, ?2)",
                [g, &user_id],
            )?;
        }
    }
    Ok(changed)
}

impl Directory {
    /// The kind new groups get (directory setting `group_kind`, default security).
    pub fn group_kind(&self) -> Result<GroupKind, DirectoryError> {
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM settings WHERE key = 'group_kind'",
                [],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .and_then(|v| GroupKind::parse(&v))
            .unwrap_or_default())
    }

    /// Sets the directory setting `group_kind`, and the kind of every group not yet in the
    /// tenant (a bound group keeps the kind it was created as).
    pub fn set_group_kind(&mut self, kind: GroupKind) -> Result<(), DirectoryError> {
        let tx = self.immediate()?;
        tx.execute(
            "INSERT INTO settings (key, value) VALUES ('group_kind', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [kind.as_str()],
        )?;
        tx.execute(
            "UPDATE groups SET kind = ?1, updated_at = ?2 WHERE tenant_group_id IS NULL",
            [kind.as_str(), &now_rfc3339()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Adds a group (name as given) of the configured kind, or returns the existing one's id.
    pub fn add_group(&mut self, name: &str) -> Result<i64, DirectoryError> {
        let kind = self.group_kind()?;
        let tx = self.immediate()?;
        let (id, _) = ensure_group(&tx, name, kind, &now_rfc3339())?;
        tx.commit()?;
        Ok(id)
    }

    fn with_members(&self, mut g: DirectoryGroup) -> Result<DirectoryGroup, DirectoryError> {
        g.members = self.group_member_ids(g.id)?;
        Ok(g)
    }

    pub fn group(&self, id: i64) -> Result<Option<DirectoryGroup>, DirectoryError> {
        let g = self
            .conn
            .query_row(
                &format!("SELECT {GROUP_COLS} FROM groups WHERE id = ?1"),
                [id],
                group_row,
            )
            .optional()?;
        g.map(|g| self.with_members(g)).transpose()
    }

    /// The group with this name (case-insensitive, exactly as given); failing that, the one
    /// group whose name equals it once stray spaces are ignored (`Engineering` finds
    /// `Engineering `).
    pub fn find_group(&self, name: &str) -> Result<Option<DirectoryGroup>, DirectoryError> {
        let exact = self
            .conn
            .query_row(
                &format!("SELECT {GROUP_COLS} FROM groups WHERE name_lc = ?1"),
                [name.to_lowercase()],
                group_row,
            )
            .optional()?;
        if let Some(g) = exact {
            return self.with_members(g).map(Some);
        }
        let squash = |s: &str| {
            s.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase()
        };
        let want = squash(name);
        let mut hits: Vec<DirectoryGroup> = self
            .groups()?
            .into_iter()
            .filter(|g| squash(&g.name) == want)
            .collect();
        Ok(if hits.len() == 1 { hits.pop() } else { None })
    }

    /// Every group with its members, by name.
    pub fn groups(&self) -> Result<Vec<DirectoryGroup>, DirectoryError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {GROUP_COLS} FROM groups ORDER BY name COLLATE NOCASE, id"
        ))?;
        let mut groups: Vec<DirectoryGroup> =
            st.query_map([], group_row)?.collect::<Result<_, _>>()?;
        let mut st = self
            .conn
            .prepare("SELECT group_id, user_id FROM group_members ORDER BY group_id, user_id")?;
        let mut members: std::collections::HashMap<i64, Vec<i64>> = Default::default();
        let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (g, u) = row?;
            members.entry(g).or_default().push(u);
        }
        for g in &mut groups {
            g.members = members.remove(&g.id).unwrap_or_default();
        }
        Ok(groups)
    }

    pub fn group_member_ids(&self, group_id: i64) -> Result<Vec<i64>, DirectoryError> {
        let mut st = self
            .conn
            .prepare("SELECT user_id FROM group_members WHERE group_id = ?1 ORDER BY user_id")?;
        let rows = st.query_map([group_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Makes the group's members exactly `user_ids`; how many memberships changed.
    pub fn set_group_members(
        &mut self,
        group_id: i64,
        user_ids: &[i64],
    ) -> Result<usize, DirectoryError> {
        let tx = self.immediate()?;
        let current: Vec<i64> = {
            let mut st = tx.prepare("SELECT user_id FROM group_members WHERE group_id = ?1")?;
            let rows = st.query_map([group_id], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut changed = 0;
        for u in &current {
            if !user_ids.contains(u) {
                changed += tx.execute(
                    "DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2",
                    [&group_id, u],
                )?;
            }
        }
        for u in user_ids {
            if !current.contains(u) {
                changed += tx.execute(
                    "INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?1, ?2)",
                    [&group_id, u],
                )?;
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    pub fn add_group_member(
        &mut self,
        group_id: i64,
        user_id: i64,
    ) -> Result<bool, DirectoryError> {
        let tx = self.immediate()?;
        let n = tx.execute(
            "INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?1, ?2)",
            [group_id, user_id],
        )?;
        tx.commit()?;
        Ok(n > 0)
    }

    pub fn remove_group_member(
        &mut self,
        group_id: i64,
        user_id: i64,
    ) -> Result<bool, DirectoryError> {
        let tx = self.immediate()?;
        let n = tx.execute(
            "DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2",
            [group_id, user_id],
        )?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// Records what the admin wants for these groups (bind = provision and keep membership in
    /// sync; unbind = stop syncing, the M365 group is left as it is). How many changed.
    pub fn set_group_want(&mut self, ids: &[i64], bound: bool) -> Result<usize, DirectoryError> {
        let now = now_rfc3339();
        let tx = self.immediate()?;
        let mut changed = 0;
        {
            let mut st = tx.prepare(
                "UPDATE groups SET want_bound = ?2, updated_at = ?3 WHERE id = ?1 AND want_bound <> ?2",
            )?;
            for id in ids {
                changed += st.execute(rusqlite::params![id, bound, now])?;
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// The outcome of creating (or linking) the group: its tenant id on success, Graph's
    /// error otherwise (kept until the next success).
    pub fn record_group_outcome(
        &mut self,
        group_id: i64,
        tenant_group_id: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), DirectoryError> {
        let tx = self.immediate()?;
        let now = now_rfc3339();
        if let Some(t) = tenant_group_id {
            // A stale link of another directory group to the same M365 group lets go of it.
            tx.execute(
                "UPDATE groups SET tenant_group_id = NULL, updated_at = ?3
                 WHERE tenant_group_id = ?2 AND id <> ?1",
                rusqlite::params![group_id, t, now],
            )?;
            tx.execute(
                "UPDATE groups SET tenant_group_id = ?2, last_error = NULL, updated_at = ?3
                 WHERE id = ?1",
                rusqlite::params![group_id, t, now],
            )?;
        } else {
            tx.execute(
                "UPDATE groups SET last_error = ?2, updated_at = ?3 WHERE id = ?1",
                rusqlite::params![group_id, error, now],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets (Some) or clears (None) the mailNickname override of a group.
    pub fn set_group_nickname(
        &mut self,
        group_id: i64,
        nickname: Option<&str>,
    ) -> Result<(), DirectoryError> {
        let tx = self.immediate()?;
        tx.execute(
            "UPDATE groups SET mail_nickname = ?2, last_error = NULL, updated_at = ?3 WHERE id = ?1",
            rusqlite::params![group_id, nickname.map(str::trim), now_rfc3339()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Renames a group (refused if another group has that name).
    pub fn rename_group(&mut self, group_id: i64, name: &str) -> Result<(), DirectoryError> {
        if name.trim().is_empty() {
            return Err(DirectoryError::Invalid("a group needs a name".into()));
        }
        let tx = self.immediate()?;
        let taken: Option<i64> = tx
            .query_row(
                "SELECT id FROM groups WHERE name_lc = ?1 AND id <> ?2",
                rusqlite::params![name.to_lowercase(), group_id],
                |r| r.get(0),
            )
            .optional()?;
        if taken.is_some() {
            return Err(DirectoryError::Invalid(format!(
                "another group is already named `{name}`"
            )));
        }
        tx.execute(
            "UPDATE groups SET name = ?2, name_lc = ?3, last_error = NULL, updated_at = ?4
             WHERE id = ?1",
            rusqlite::params![group_id, name, name.to_lowercase(), now_rfc3339()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Trims leading/trailing spaces and collapses runs of spaces in the group's name (the
    /// preflight's one-key fix); the new name.
    pub fn trim_group_name(&mut self, group_id: i64) -> Result<String, DirectoryError> {
        let g = self
            .group(group_id)?
            .ok_or_else(|| DirectoryError::Invalid(format!("no group {group_id}")))?;
        let name = g.name.split_whitespace().collect::<Vec<_>>().join(" ");
        if name != g.name {
            self.rename_group(group_id, &name)?;
        }
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_members_want_outcome_and_fixes() {
        let mut d = Directory::open_in_memory().unwrap();
        let a = d
            .add_user(&crate::directory::NewDirectoryUser {
                email: "a@contoso.com".into(),
                display_name: "A".into(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(d.group_kind().unwrap(), GroupKind::Security);
        let g = d.add_group("Engineering ").unwrap();
        assert_eq!(
            d.add_group("engineering ").unwrap(),
            g,
            "names are case-insensitive"
        );
        assert!(d.add_group("  ").is_err());
        assert_eq!(d.find_group("Engineering").unwrap().unwrap().id, g);
        assert!(d.add_group_member(g, a).unwrap());
        assert!(!d.add_group_member(g, a).unwrap());
        let got = d.group(g).unwrap().unwrap();
        assert_eq!(got.members, vec![a]);
        assert_eq!(got.state(), GroupState::Unbound);
        assert_eq!(d.set_group_want(&[g], true).unwrap(), 1);
        assert_eq!(d.set_group_want(&[g], true).unwrap(), 0);
        assert_eq!(d.group(g).unwrap().unwrap().state(), GroupState::Pending);
        d.record_group_outcome(g, None, Some("Request_BadRequest: no"))
            .unwrap();
        assert_eq!(d.group(g).unwrap().unwrap().state(), GroupState::Failed);
        d.record_group_outcome(g, Some("tg"), None).unwrap();
        let got = d.group(g).unwrap().unwrap();
        assert_eq!((got.state(), got.last_error), (GroupState::Bound, None));
        d.set_group_want(&[g], false).unwrap();
        assert_eq!(d.group(g).unwrap().unwrap().state(), GroupState::Kept);
        d.set_group_nickname(g, Some("eng")).unwrap();
        assert_eq!(
            d.group(g).unwrap().unwrap().mail_nickname.as_deref(),
            Some("eng")
        );
        assert_eq!(d.trim_group_name(g).unwrap(), "Engineering");
        assert_eq!(
            d.find_group("ENGINEERING").unwrap().unwrap().name,
            "Engineering"
        );
        let other = d.add_group("Ops").unwrap();
        assert!(d.rename_group(other, "engineering").is_err());
        assert_eq!(d.set_group_members(g, &[]).unwrap(), 1);
        assert!(d.groups().unwrap().iter().all(|g| g.members.is_empty()));
        d.set_group_kind(GroupKind::M365).unwrap();
        let ops = d.groups().unwrap();
        let kinds: Vec<_> = ops.iter().map(|g| (g.name.as_str(), g.kind)).collect();
        // A bound group keeps the kind it was created as.
        assert_eq!(
            kinds,
            vec![
                ("Engineering", GroupKind::Security),
                ("Ops", GroupKind::M365)
            ]
        );
    }

    #[test]
    fn csv_groups_column_creates_groups_and_sets_membership_idempotently() {
        let mut d = Directory::open_in_memory().unwrap();
        let csv = "email,displayName,groups\n\
                   a@contoso.com,A,Sales (EU); Finance\n\
                   b@contoso.com,B,Finance\n\
                   c@contoso.com,C,\n";
        let r = d.import_csv(csv.as_bytes()).unwrap();
        assert_eq!((r.added, r.groups_added, r.memberships_changed), (3, 2, 3));
        let r = d.import_csv(csv.as_bytes()).unwrap();
        assert_eq!(
            (r.unchanged, r.groups_added, r.memberships_changed),
            (3, 0, 0),
            "re-import changes nothing"
        );
        let fin = d.find_group("finance").unwrap().unwrap();
        assert_eq!(fin.members.len(), 2);
        // a leaves Finance; c joins Sales (EU).
        let csv2 = "email,displayName,groups\n\
                    a@contoso.com,A,Sales (EU)\n\
                    c@contoso.com,C,sales (eu)\n";
        let r = d.import_csv(csv2.as_bytes()).unwrap();
        assert_eq!((r.groups_added, r.memberships_changed), (0, 2));
        assert_eq!(d.find_group("Finance").unwrap().unwrap().members.len(), 1);
        assert_eq!(
            d.find_group("Sales (EU)").unwrap().unwrap().members.len(),
            2
        );
        // Without the column memberships are left alone.
        let r = d
            .import_csv("email,displayName\na@contoso.com,A\n".as_bytes())
            .unwrap();
        assert_eq!(r.memberships_changed, 0);
        assert_eq!(
            d.find_group("Sales (EU)").unwrap().unwrap().members.len(),
            2
        );
    }
}
