//! Deprovisioning in the directory (migrations 7, 8): a directory group's own policy (and when
//! it was set), the steps blocks scheduled, and the policy each leaver's steps come from
//! (written by the journal as ops succeed, read by the plan).
use super::{Directory, DirectoryError};
use crate::sync::deprovision::{Deprovision, Leaver, PendingStep, Step};

impl Directory {
    /// Every pending step, by due date.
    pub fn deprovision_steps(&self) -> Result<Vec<PendingStep>, DirectoryError> {
        let mut st = self.conn.prepare(
            "SELECT user_id, step, due_at, tenant_user_id, source FROM deprovision_steps
             ORDER BY due_at, user_id, step",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (directory_id, step, due, tenant_user_id, source) = row?;
            // The CHECK constraint allows only known steps.
            let Some(step) = Step::parse(&step) else {
                continue;
            };
            out.push(PendingStep {
                directory_id,
                step,
                due,
                tenant_user_id,
                source,
            });
        }
        Ok(out)
    }

    /// The policies of directory groups that have their own: (group id, policy).
    pub fn group_deprovision_policies(&self) -> Result<Vec<(i64, Deprovision)>, DirectoryError> {
        let mut st = self
            .conn
            .prepare("SELECT group_id, policy FROM group_deprovision ORDER BY group_id")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, text) = row?;
            let p = Deprovision::parse(&text).map_err(DirectoryError::Invalid)?;
            out.push((id, p));
        }
        Ok(out)
    }

    /// When each group's own policy was last set or cleared: (group id, unix s).
    pub fn group_deprovision_changes(&self) -> Result<Vec<(i64, i64)>, DirectoryError> {
        let mut st = self
            .conn
            .prepare("SELECT group_id, set_at FROM group_deprovision_at ORDER BY group_id")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When the directory's deprovisioning policy last changed (unix s).
    pub fn deprovision_policy_at(&self) -> Result<Option<i64>, DirectoryError> {
        Ok(self
            .setting("deprovision_policy_at")?
            .and_then(|v| v.parse().ok()))
    }

    /// The policy each leaver's kept steps come from.
    pub fn deprovision_leavers(&self) -> Result<Vec<Leaver>, DirectoryError> {
        let mut st = self.conn.prepare(
            "SELECT user_id, tenant_user_id, policy, source FROM deprovision_leavers
             ORDER BY user_id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(Leaver {
                directory_id: r.get(0)?,
                tenant_user_id: r.get(1)?,
                policy: r.get(2)?,
                source: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Sets (Some) or clears (None: the directory's applies) the policy of the group `name`,
    /// now (the wall clock).
    pub fn set_group_deprovision(
        &mut self,
        name: &str,
        policy: Option<Deprovision>,
    ) -> Result<(), DirectoryError> {
        self.set_group_deprovision_at(name, policy, super::unix_now())
    }

    /// [`Self::set_group_deprovision`] at `at` (unix s): a changed policy keeps when it
    /// changed, which dates the steps of leavers blocked before.
    pub fn set_group_deprovision_at(
        &mut self,
        name: &str,
        policy: Option<Deprovision>,
        at: i64,
    ) -> Result<(), DirectoryError> {
        let Some(id) = self.find_group(name)?.map(|g| g.id) else {
            return Err(DirectoryError::Invalid(format!(
                "no directory group is named `{name}`"
            )));
        };
        let tx = self.immediate()?;
        let changed = match policy {
            Some(p) => {
                let text = p.to_string();
                tx.execute(
                    "INSERT INTO group_deprovision (group_id, policy) VALUES (?1, ?2)
                     ON CONFLICT(group_id) DO UPDATE SET policy = excluded.policy
                     WHERE policy <> excluded.policy",
                    rusqlite::params![id, text],
                )?
            }
            None => tx.execute("DELETE FROM group_deprovision WHERE group_id = ?1", [id])?,
        };
        // Set, changed or cleared: when, for the leavers blocked before.
        if changed > 0 {
            tx.execute(
                "INSERT INTO group_deprovision_at (group_id, set_at) VALUES (?1, ?2)
                 ON CONFLICT(group_id) DO UPDATE SET set_at = excluded.set_at",
                rusqlite::params![id, at],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::plan::GuardConfig;

    #[test]
    fn a_policy_keeps_when_it_changed_not_when_it_was_saved_again() {
        let mut d = Directory::open_in_memory().unwrap();
        assert_eq!(d.deprovision_policy_at().unwrap(), None);
        let (mut pol, guard) = d.policy().unwrap();
        // Saving the default (block) is no change.
        d.set_policy_at(&pol, &guard, 100).unwrap();
        assert_eq!(d.deprovision_policy_at().unwrap(), None);
        pol.deprovision = Deprovision::parse("block+delete:30").unwrap();
        d.set_policy_at(&pol, &guard, 200).unwrap();
        assert_eq!(d.deprovision_policy_at().unwrap(), Some(200));
        // Another setting saved later: the policy's time stays.
        d.set_policy_at(&pol, &GuardConfig::default(), 300).unwrap();
        assert_eq!(d.deprovision_policy_at().unwrap(), Some(200));
        // A group's own: set, saved again, cleared.
        d.add_group("Contractors").unwrap();
        let p = Deprovision::parse("block+revoke").unwrap();
        d.set_group_deprovision_at("Contractors", Some(p), 400)
            .unwrap();
        d.set_group_deprovision_at("Contractors", Some(p), 500)
            .unwrap();
        let id = d.find_group("Contractors").unwrap().unwrap().id;
        assert_eq!(d.group_deprovision_changes().unwrap(), vec![(id, 400)]);
        d.set_group_deprovision_at("Contractors", None, 600)
            .unwrap();
        assert_eq!(d.group_deprovision_changes().unwrap(), vec![(id, 600)]);
        assert!(d.group_deprovision_policies().unwrap().is_empty());
    }

    #[test]
    fn migration_eight_adopts_steps_kept_before_it_under_their_policy() {
        let mut d = Directory::open_in_memory().unwrap();
        let (mut pol, guard) = d.policy().unwrap();
        pol.deprovision = Deprovision::parse("block+delete:30").unwrap();
        d.set_policy(&pol, &guard).unwrap();
        d.conn
            .execute_batch(
                "INSERT INTO users (email, email_lc, display_name, tenant_user_id, binding, created_at, updated_at)
                 VALUES ('a@x.com', 'a@x.com', 'A', 't1', 'blocked', '', '');
                 INSERT INTO deprovision_steps (user_id, step, due_at, tenant_user_id, source, created_at)
                 VALUES (1, 'delete', 99, 't1', 'directory', '');",
            )
            .unwrap();
        assert!(d.deprovision_leavers().unwrap().is_empty());
        d.conn.execute_batch(super::super::MIGRATIONS[7]).unwrap();
        assert_eq!(
            d.deprovision_leavers().unwrap(),
            vec![Leaver {
                directory_id: 1,
                tenant_user_id: "t1".into(),
                policy: "block+delete:30d".into(),
                source: "directory".into(),
            }]
        );
    }
}
