//! The operation journal: every op of a run (user and group ops alike) written as `planned`
//! before anything is sent, then `sent` with its batch, then `done` / `failed` with Graph's
//! request-id, or `unknown` when its answer was lost and `cancelled` when it was never sent.
//! The outcome of an op (journal state, what it changes in the directory, its audit line, and
//! for a create whether its temporary password was delivered) is recorded in one transaction.
//!
//! The journal keeps intentions, never wishes: a run that ends unfinished is reconciled before
//! the next plan (`sync::reconcile`): ops never sent are dropped, ops whose outcome is unknown
//! are checked against the tenant and recorded. It never holds a password.
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};

use super::bindings::{insert_audit, set_binding};
use super::{now_rfc3339, AuditEntry, BindingState, Directory, DirectoryError};
use crate::sync::ops::AnyOp;
use crate::sync::plan::Op;

/// Where an op of the journal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JournalState {
    /// Written before anything is sent.
    Planned,
    /// In a batch on the wire: the outcome is not known until the answer is recorded.
    Sent,
    Done,
    Failed,
    /// The answer was lost (connection dropped after sending): checked against the tenant
    /// before anything is planned again.
    Unknown,
    /// Never sent (the run stopped first, or a newer plan replaced it): planned again from
    /// the current wish if still needed.
    Cancelled,
}

impl JournalState {
    pub fn as_str(self) -> &'static str {
        match self {
            JournalState::Planned => "planned",
            JournalState::Sent => "sent",
            JournalState::Done => "done",
            JournalState::Failed => "failed",
            JournalState::Unknown => "unknown",
            JournalState::Cancelled => "cancelled",
        }
    }
    fn parse(s: &str) -> JournalState {
        match s {
            "planned" => JournalState::Planned,
            "sent" => JournalState::Sent,
            "done" => JournalState::Done,
            "failed" => JournalState::Failed,
            "cancelled" => JournalState::Cancelled,
            _ => JournalState::Unknown,
        }
    }
    /// Still open: a run may be sending it, or died while it was.
    pub fn unfinished(self) -> bool {
        matches!(
            self,
            JournalState::Planned | JournalState::Sent | JournalState::Unknown
        )
    }
}

/// One op of the journal (never a password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub id: i64,
    pub run_id: String,
    pub seq: i64,
    pub state: JournalState,
    pub op: AnyOp,
    pub request_id: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// A create's generated password: `Some(true)` once written to the hand-off sink.
    pub delivered: Option<bool>,
    /// What reconciling found ("applied by an interrupted run", "not applied").
    pub note: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// What an applied op changes in the directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Change {
    #[default]
    None,
    /// Link the directory user to the account, with this binding.
    User {
        directory_id: i64,
        tenant_user_id: String,
        binding: BindingState,
    },
    /// Link the directory group to the M365 group (its last error cleared).
    Group {
        group_id: i64,
        tenant_group_id: String,
    },
    /// The group could not be created: keep why for the Groups list.
    GroupFailed { group_id: i64, error: String },
    /// A block of the deprovisioning policy: link the account as blocked and keep the steps
    /// it schedules (a step already kept keeps its date) and the policy they come from.
    Deprovisioned {
        directory_id: i64,
        tenant_user_id: String,
        steps: Vec<crate::sync::deprovision::Scheduled>,
        source: String,
        policy: String,
    },
    /// Deprovisioning steps recorded without a write to the tenant: a leaver blocked before
    /// its policy was set (or changed) gets the policy's steps (`keep`: they replace its
    /// pending ones); steps with nothing left to do are closed as done.
    StepsRecorded {
        directory_id: i64,
        keep: Option<Box<crate::sync::deprovision::Kept>>,
        closed: Vec<crate::sync::deprovision::Step>,
    },
    /// A deprovisioning step was applied: it is no longer pending (a delete ends them all).
    StepDone {
        directory_id: i64,
        step: crate::sync::deprovision::Step,
    },
    /// Licences m365sync assigned to (or removed from) the user's account.
    Licences {
        directory_id: i64,
        added: Vec<super::AppliedLicence>,
        removed: Vec<String>,
    },
}

/// The outcome of one op, recorded in one transaction: journal state, the directory change,
/// the audit line, and whether a create's password reached the hand-off sink.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OpOutcome {
    pub journal_id: i64,
    pub state: Option<JournalState>,
    pub change: Change,
    pub request_id: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub delivered: Option<bool>,
    pub note: Option<String>,
    /// None: no audit line (a state change with no write behind it).
    pub audit: Option<AuditEntry>,
}

/// A create whose generated password never reached a hand-off sink: nobody knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndeliveredPassword {
    pub directory_id: i64,
    pub email: String,
    pub upn: String,
    /// When the account was created (the journal entry's last update).
    pub at: String,
}

const JOURNAL_COLS: &str = "id, run_id, seq, state, op, request_id, error_code, error_message, \
                            delivered, note, created_at, updated_at";

fn journal_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JournalEntry> {
    let text: String = r.get(4)?;
    // Rows written before group ops joined the journal hold a bare user op.
    let op = serde_json::from_str::<AnyOp>(&text)
        .or_else(|_| serde_json::from_str::<Op>(&text).map(AnyOp::User))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
        })?;
    Ok(JournalEntry {
        id: r.get(0)?,
        run_id: r.get(1)?,
        seq: r.get(2)?,
        state: JournalState::parse(&r.get::<_, String>(3)?),
        op,
        request_id: r.get(5)?,
        error_code: r.get(6)?,
        error_message: r.get(7)?,
        delivered: r.get(8)?,
        note: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
    })
}

impl Directory {
    /// Journal the ops of a run as `planned` before anything is sent; their ids in the order
    /// of `ops`.
    pub fn journal_insert(
        &mut self,
        run_id: &str,
        ops: &[AnyOp],
    ) -> Result<Vec<i64>, DirectoryError> {
        let now = now_rfc3339();
        let tx = self.immediate()?;
        let mut ids = Vec::with_capacity(ops.len());
        {
            let mut st = tx.prepare(
                "INSERT INTO journal (run_id, seq, kind, directory_id, group_id, upn,
                                      tenant_user_id, state, op, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'planned', ?8, ?9, ?9)",
            )?;
            for (seq, op) in ops.iter().enumerate() {
                let json = serde_json::to_string(op)
                    .map_err(|e| DirectoryError::Invalid(format!("journal: {e}")))?;
                st.execute(rusqlite::params![
                    run_id,
                    seq as i64,
                    op.kind().audit_name(),
                    op.user_id().unwrap_or(0),
                    op.group_id(),
                    op.target(),
                    op.user().and_then(|o| o.tenant_user_id.clone()),
                    json,
                    now
                ])?;
                ids.push(tx.last_insert_rowid());
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Move ops to `state` (e.g. `sent` with their batch).
    pub fn journal_mark(&mut self, ids: &[i64], state: JournalState) -> Result<(), DirectoryError> {
        if ids.is_empty() {
            return Ok(());
        }
        let now = now_rfc3339();
        let tx = self.immediate()?;
        {
            let mut st =
                tx.prepare("UPDATE journal SET state = ?2, updated_at = ?3 WHERE id = ?1")?;
            for id in ids {
                st.execute(rusqlite::params![id, state.as_str(), now])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Record outcomes (journal, directory change, audit) in one transaction.
    pub fn record_outcomes(&mut self, outcomes: &[OpOutcome]) -> Result<(), DirectoryError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let now = now_rfc3339();
        let tx = self.immediate()?;
        {
            let mut mark = tx.prepare(
                "UPDATE journal SET state = COALESCE(?2, state),
                        request_id = COALESCE(?3, request_id),
                        error_code = COALESCE(?4, error_code),
                        error_message = COALESCE(?5, error_message),
                        tenant_user_id = COALESCE(?6, tenant_user_id),
                        delivered = COALESCE(?7, delivered), note = COALESCE(?8, note),
                        updated_at = ?9
                 WHERE id = ?1",
            )?;
            for o in outcomes {
                let linked = match &o.change {
                    Change::User { tenant_user_id, .. }
                    | Change::Deprovisioned { tenant_user_id, .. } => Some(tenant_user_id.as_str()),
                    _ => None,
                };
                mark.execute(rusqlite::params![
                    o.journal_id,
                    o.state.map(JournalState::as_str),
                    o.request_id,
                    o.error_code,
                    o.error_message,
                    linked,
                    o.delivered,
                    o.note,
                    now
                ])?;
                apply_change(&tx, &o.change, &now)?;
                if let Some(a) = &o.audit {
                    insert_audit(&tx, a)?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Ops a run left open (planned, sent, unknown), oldest first.
    pub fn journal_unfinished(&self) -> Result<Vec<JournalEntry>, DirectoryError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {JOURNAL_COLS} FROM journal WHERE state IN ('planned', 'sent', 'unknown')
             ORDER BY id"
        ))?;
        let rows = st.query_map([], journal_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The journal, oldest first (of one run, or all).
    pub fn journal_list(&self, run_id: Option<&str>) -> Result<Vec<JournalEntry>, DirectoryError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {JOURNAL_COLS} FROM journal WHERE ?1 IS NULL OR run_id = ?1 ORDER BY id"
        ))?;
        let rows = st.query_map([run_id], journal_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The last journal entry of each (subject, kind), oldest first: what the Errors tab and
    /// `m365sync errors` read (a failure a later run fixed is gone).
    pub fn journal_latest(&self) -> Result<Vec<JournalEntry>, DirectoryError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {JOURNAL_COLS} FROM journal WHERE id IN (
                 SELECT MAX(id) FROM journal GROUP BY kind, directory_id, COALESCE(group_id, -1))
             ORDER BY id"
        ))?;
        let rows = st.query_map([], journal_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Accounts created whose generated password never reached a hand-off sink, unless a
    /// password was set for the user since.
    pub fn passwords_undelivered(&self) -> Result<Vec<UndeliveredPassword>, DirectoryError> {
        let mut st = self.conn.prepare(
            "SELECT j.directory_id, u.email, j.upn, j.updated_at FROM journal j
             JOIN users u ON u.id = j.directory_id
             WHERE j.kind = 'create' AND j.state = 'done' AND COALESCE(j.delivered, 0) = 0
               AND (u.password_set_at IS NULL OR u.password_set_at < j.updated_at)
             ORDER BY j.id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(UndeliveredPassword {
                directory_id: r.get(0)?,
                email: r.get(1)?,
                upn: r.get(2)?,
                at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The run id of the newest journal entry, if any.
    pub fn journal_last_run(&self) -> Result<Option<String>, DirectoryError> {
        Ok(self
            .conn
            .query_row(
                "SELECT run_id FROM journal ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }
}

/// A deprovisioning step done: no longer pending (a delete ends them all).
fn close_step(
    tx: &rusqlite::Transaction<'_>,
    directory_id: i64,
    step: crate::sync::deprovision::Step,
) -> Result<(), DirectoryError> {
    if step == crate::sync::deprovision::Step::Delete {
        tx.execute(
            "DELETE FROM deprovision_steps WHERE user_id = ?1",
            [directory_id],
        )?;
    } else {
        tx.execute(
            "DELETE FROM deprovision_steps WHERE user_id = ?1 AND step = ?2",
            rusqlite::params![directory_id, step.as_str()],
        )?;
    }
    Ok(())
}

/// The policy a leaver's kept steps come from.
fn keep_leaver(
    tx: &rusqlite::Transaction<'_>,
    directory_id: i64,
    tenant_user_id: &str,
    policy: &str,
    source: &str,
) -> Result<(), DirectoryError> {
    tx.execute(
        "INSERT INTO deprovision_leavers (user_id, tenant_user_id, policy, source)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(user_id) DO UPDATE SET tenant_user_id = excluded.tenant_user_id,
             policy = excluded.policy, source = excluded.source",
        rusqlite::params![directory_id, tenant_user_id, policy, source],
    )?;
    Ok(())
}

fn apply_change(
    tx: &rusqlite::Transaction<'_>,
    change: &Change,
    now: &str,
) -> Result<(), DirectoryError> {
    match change {
        Change::None => {}
        Change::User {
            directory_id,
            tenant_user_id,
            binding,
        } => {
            if !tenant_user_id.is_empty() {
                set_binding(tx, *directory_id, tenant_user_id, *binding, now)?;
            }
            // Bound again: what the deprovisioning policy had scheduled is cancelled.
            if *binding == BindingState::Bound {
                tx.execute(
                    "DELETE FROM deprovision_steps WHERE user_id = ?1",
                    [directory_id],
                )?;
                tx.execute(
                    "DELETE FROM deprovision_leavers WHERE user_id = ?1",
                    [directory_id],
                )?;
            }
        }
        Change::Deprovisioned {
            directory_id,
            tenant_user_id,
            steps,
            source,
            policy,
        } => {
            keep_leaver(tx, *directory_id, tenant_user_id, policy, source)?;
            if !tenant_user_id.is_empty() {
                set_binding(
                    tx,
                    *directory_id,
                    tenant_user_id,
                    BindingState::Blocked,
                    now,
                )?;
            }
            let mut st = tx.prepare(
                "INSERT OR IGNORE INTO deprovision_steps
                     (user_id, step, due_at, tenant_user_id, source, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for s in steps {
                st.execute(rusqlite::params![
                    directory_id,
                    s.step.as_str(),
                    s.due,
                    tenant_user_id,
                    source,
                    now
                ])?;
            }
        }
        Change::StepsRecorded {
            directory_id,
            keep,
            closed,
        } => {
            if let Some(k) = keep {
                tx.execute(
                    "DELETE FROM deprovision_steps WHERE user_id = ?1",
                    [directory_id],
                )?;
                let mut st = tx.prepare(
                    "INSERT INTO deprovision_steps
                         (user_id, step, due_at, tenant_user_id, source, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for s in k.schedule.iter().filter(|s| !closed.contains(&s.step)) {
                    st.execute(rusqlite::params![
                        directory_id,
                        s.step.as_str(),
                        s.due,
                        k.tenant_user_id,
                        k.source,
                        now
                    ])?;
                }
                keep_leaver(tx, *directory_id, &k.tenant_user_id, &k.policy, &k.source)?;
            }
            for step in closed {
                close_step(tx, *directory_id, *step)?;
            }
        }
        Change::StepDone { directory_id, step } => close_step(tx, *directory_id, *step)?,
        Change::Group {
            group_id,
            tenant_group_id,
        } => {
            // A stale link of another directory group to the same M365 group lets go of it.
            tx.execute(
                "UPDATE groups SET tenant_group_id = NULL, updated_at = ?3
                 WHERE tenant_group_id = ?2 AND id <> ?1",
                rusqlite::params![group_id, tenant_group_id, now],
            )?;
            tx.execute(
                "UPDATE groups SET tenant_group_id = ?2, last_error = NULL, updated_at = ?3
                 WHERE id = ?1",
                rusqlite::params![group_id, tenant_group_id, now],
            )?;
        }
        Change::Licences {
            directory_id,
            added,
            removed,
        } => super::licences::record_applied(tx, *directory_id, added, removed)?,
        Change::GroupFailed { group_id, error } => {
            tx.execute(
                "UPDATE groups SET last_error = ?2, updated_at = ?3 WHERE id = ?1",
                rusqlite::params![group_id, error, now],
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::plan::OpKind;

    fn create(id: i64, email: &str) -> AnyOp {
        AnyOp::User(Op {
            kind: OpKind::Create,
            directory_id: id,
            email: email.into(),
            display_name: "A".into(),
            upn: email.into(),
            tenant_user_id: None,
            reason: "r".into(),
            changes: Vec::new(),
            manager_id: None,
            deprovision: Default::default(),
            licences: None,
        })
    }

    #[test]
    fn journal_round_trip_and_audit_is_append_only() {
        let mut d = Directory::open_in_memory().unwrap();
        let a = d
            .add_user(&crate::directory::NewDirectoryUser {
                email: "a@example.com".into(),
                display_name: "A".into(),
                ..Default::default()
            })
            .unwrap();
        let op = create(a, "a@example.com");
        let ids = d.journal_insert("run1", &[op.clone(), op.clone()]).unwrap();
        d.journal_mark(&ids[..1], JournalState::Sent).unwrap();
        let un = d.journal_unfinished().unwrap();
        assert_eq!(un.len(), 2);
        assert_eq!(un[0].state, JournalState::Sent);
        assert_eq!(un[0].op, op);
        d.record_outcomes(&[OpOutcome {
            journal_id: ids[0],
            state: Some(JournalState::Done),
            change: Change::User {
                directory_id: a,
                tenant_user_id: "t-a".into(),
                binding: BindingState::Bound,
            },
            request_id: Some("rq".into()),
            delivered: Some(false),
            audit: Some(AuditEntry {
                actor: "me".into(),
                action: "create".into(),
                target: "a@example.com".into(),
                outcome: "done".into(),
                ..Default::default()
            }),
            ..Default::default()
        }])
        .unwrap();
        assert_eq!(d.journal_unfinished().unwrap().len(), 1);
        let all = d.journal_list(Some("run1")).unwrap();
        assert_eq!(all[0].request_id.as_deref(), Some("rq"));
        assert_eq!(
            d.user(a).unwrap().unwrap().tenant_user_id.as_deref(),
            Some("t-a")
        );
        // The password never reached a sink: reported until a new one is set.
        let lost = d.passwords_undelivered().unwrap();
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].email, "a@example.com");
        d.set_password_set_at(a, "9999-01-01T00:00:00Z").unwrap();
        assert!(d.passwords_undelivered().unwrap().is_empty());
        assert_eq!(d.audit_list().unwrap().len(), 1);
        let upd = d.conn.execute("UPDATE audit SET outcome = 'x'", []);
        assert!(upd.unwrap_err().to_string().contains("append-only"));
        let del = d.conn.execute("DELETE FROM audit", []);
        assert!(del.unwrap_err().to_string().contains("append-only"));
        assert_eq!(d.audit_list().unwrap()[0].outcome, "done");
        // The journal never holds a password column.
        let cols: Vec<String> = d
            .conn
            .prepare("SELECT name FROM pragma_table_info('journal')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(!cols.iter().any(|c| c.contains("password")), "{cols:?}");
    }

    #[test]
    fn rows_of_older_versions_read_as_user_ops() {
        let d = Directory::open_in_memory().unwrap();
        let op = create(1, "a@example.com");
        let AnyOp::User(user_op) = &op else {
            unreachable!()
        };
        d.conn
            .execute(
                "INSERT INTO journal (run_id, seq, kind, directory_id, upn, state, op,
                                      created_at, updated_at)
                 VALUES ('old', 0, 'create', 1, 'a@example.com', 'sent', ?1, '', '')",
                [serde_json::to_string(user_op).unwrap()],
            )
            .unwrap();
        assert_eq!(d.journal_unfinished().unwrap()[0].op, op);
    }

    #[test]
    fn creates_of_runs_before_the_delivery_column_are_not_reported_lost() {
        let mut d = Directory::open_in_memory().unwrap();
        let a = d
            .add_user(&crate::directory::NewDirectoryUser {
                email: "a@example.com".into(),
                display_name: "A".into(),
                ..Default::default()
            })
            .unwrap();
        // Back to schema 3, with a create an older version recorded as done.
        d.conn
            .execute_batch(
                "DROP TABLE licence_defaults; DROP TABLE licences_applied;
                 ALTER TABLE users DROP COLUMN attributes;
                 DROP INDEX journal_subject;
                 ALTER TABLE journal DROP COLUMN group_id;
                 ALTER TABLE journal DROP COLUMN delivered;
                 ALTER TABLE journal DROP COLUMN note;
                 PRAGMA user_version = 3;",
            )
            .unwrap();
        let AnyOp::User(op) = create(a, "a@example.com") else {
            unreachable!()
        };
        d.conn
            .execute(
                "INSERT INTO journal (run_id, seq, kind, directory_id, upn, state, op,
                                      created_at, updated_at)
                 VALUES ('old', 0, 'create', ?1, 'a@example.com', 'done', ?2, '', '')",
                rusqlite::params![a, serde_json::to_string(&op).unwrap()],
            )
            .unwrap();
        d.migrate().unwrap();
        assert!(d.passwords_undelivered().unwrap().is_empty());
    }
}
