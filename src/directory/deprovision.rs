//! Deprovisioning in the directory (migration 7): a directory group's own policy, and the
//! steps blocks scheduled (written by the journal as ops succeed, read by the plan).
use super::{Directory, DirectoryError};
use crate::sync::deprovision::{Deprovision, PendingStep, Step};

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

    /// Sets (Some) or clears (None: the directory's applies) the policy of the group `name`.
    pub fn set_group_deprovision(
        &mut self,
        name: &str,
        policy: Option<Deprovision>,
    ) -> Result<(), DirectoryError> {
        let Some(id) = self.find_group(name)?.map(|g| g.id) else {
            return Err(DirectoryError::Invalid(format!(
                "no directory group is named `{name}`"
            )));
        };
        let tx = self.immediate()?;
        match policy {
            Some(p) => tx.execute(
                "INSERT INTO group_deprovision (group_id, policy) VALUES (?1, ?2)
                 ON CONFLICT(group_id) DO UPDATE SET policy = excluded.policy",
                rusqlite::params![id, p.to_string()],
            )?,
            None => tx.execute("DELETE FROM group_deprovision WHERE group_id = ?1", [id])?,
        };
        tx.commit()?;
        Ok(())
    }
}
