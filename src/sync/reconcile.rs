//! The journal follows the wish (as Entra Connect treats pending exports). When a run ended
//! unfinished (killed, stopped, crashed), before any plan is computed:
//! - ops it never sent are dropped (`cancelled`): the next plan makes them again from the
//!   current directory if they are still wanted, and only then;
//! - ops it sent whose outcome is unknown are checked against the tenant (GET by id or UPN,
//!   as each op's spec says) and their outcome recorded: applied (with what it changed in the
//!   directory), not applied, or unknowable (a password can't be read back).
//!
//! Nothing is ever sent from the journal: what the tenant needs is planned anew. The caller
//! must hold the apply lock, so a live run's journal is never taken for a dead one's.
use std::collections::HashMap;
use std::path::PathBuf;

use futures::StreamExt;
use serde::Serialize;

use super::apply::run_check;
use super::ops::{AnyOp, Ctx, Verdict};
use crate::diagnose::Operation;
use crate::directory::{AuditEntry, Change, Directory, JournalEntry, JournalState, OpOutcome};
use crate::failure::Failure;
use crate::graph::GraphClient;

/// What reconciling found for one op of an interrupted run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "found")]
pub enum Found {
    /// The run never sent it: dropped, planned again from the current wish if still wanted.
    NeverSent,
    /// It happened: recorded as done.
    Applied,
    /// Its first write happened (a restore whose account is still disabled).
    PartlyApplied,
    /// It did not happen.
    NotApplied,
    /// Nothing can tell: why (recorded as failed, shown in Errors).
    Unknowable { why: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub op: AnyOp,
    pub found: Found,
}

impl Verification {
    /// One line for the preview and the dry run.
    pub fn describe(&self) -> String {
        let what = format!("{} {}", self.op.kind().label(), self.op.target());
        match &self.found {
            Found::NeverSent => format!("{what}: never sent by the interrupted run; dropped"),
            Found::Applied => format!("{what}: applied by the interrupted run (checked)"),
            Found::PartlyApplied => {
                format!("{what}: partly applied by the interrupted run (checked)")
            }
            Found::NotApplied => format!("{what}: not applied (checked); dropped"),
            Found::Unknowable { why } => format!("{what}: unknown: {why}"),
        }
    }
}

/// Reconcile what runs left unfinished in the journal at `db_path`. The caller holds the
/// apply lock. Returns what was found, oldest op first.
pub async fn reconcile(
    graph: &GraphClient,
    db_path: PathBuf,
    actor: &str,
) -> Result<Vec<Verification>, Failure> {
    let db = db_path.clone();
    let (open, users, groups) = crate::failure::blocking("reading the journal", move || {
        let d = Directory::open(&db)?;
        Ok((d.journal_unfinished()?, d.users()?, d.groups()?))
    })
    .await?;
    if open.is_empty() {
        return Ok(Vec::new());
    }
    let user_ids: HashMap<i64, String> = users
        .iter()
        .filter_map(|u| u.tenant_user_id.clone().map(|t| (u.id, t)))
        .collect();
    let group_ids: HashMap<i64, String> = groups
        .iter()
        .filter_map(|g| g.tenant_group_id.clone().map(|t| (g.id, t)))
        .collect();
    let directory = users.into_iter().map(|u| (u.id, u)).collect();
    let ctx = Ctx {
        users: &user_ids,
        groups: &group_ids,
        directory: &directory,
        password: None,
        base: graph.base(),
    };
    let (never, sent): (Vec<JournalEntry>, Vec<JournalEntry>) = open
        .into_iter()
        .partition(|e| e.state == JournalState::Planned);
    // The checks: a few at a time, each bounded by the Graph client's retries and deadline.
    let checks: Vec<_> = sent.iter().map(|e| (e.id, e.op.verify(&ctx))).collect();
    let found: Vec<(i64, Result<super::ops::Found, _>)> = futures::stream::iter(checks)
        .map(|(id, check)| async move { (id, run_check(graph, &check).await) })
        .buffered(8)
        .collect()
        .await;
    let mut outcomes = Vec::new();
    let mut report = Vec::new();
    for e in &never {
        outcomes.push(OpOutcome {
            journal_id: e.id,
            state: Some(JournalState::Cancelled),
            note: Some("never sent by an interrupted run: dropped".into()),
            ..Default::default()
        });
        report.push(Verification {
            op: e.op.clone(),
            found: Found::NeverSent,
        });
    }
    for (e, (_, result)) in sent.iter().zip(found) {
        let found = result.map_err(|err| Failure::graph(Operation::Other, e.op.subject(), err))?;
        let verdict = e.op.verdict(&found);
        let audit = |outcome: &str, detail: String| AuditEntry {
            actor: actor.to_string(),
            action: format!("verify {}", e.op.kind().audit_name()),
            target: e.op.target(),
            outcome: outcome.into(),
            detail: Some(detail),
            ..Default::default()
        };
        let (state, change, note, found, audit_line) = match verdict {
            Verdict::Applied { tenant_id, change } => (
                JournalState::Done,
                change,
                "applied by an interrupted run (checked against the tenant)".to_string(),
                Found::Applied,
                Some(audit("applied", format!("object {tenant_id}"))),
            ),
            Verdict::Partly {
                tenant_id, change, ..
            } => (
                JournalState::Done,
                change,
                "partly applied by an interrupted run (checked against the tenant)".to_string(),
                Found::PartlyApplied,
                Some(audit("partly applied", format!("object {tenant_id}"))),
            ),
            Verdict::NotApplied => (
                JournalState::Cancelled,
                Change::None,
                "not applied by the interrupted run (checked against the tenant): dropped"
                    .to_string(),
                Found::NotApplied,
                None,
            ),
            Verdict::Unknowable(why) => (
                JournalState::Failed,
                Change::None,
                why.to_string(),
                Found::Unknowable {
                    why: why.to_string(),
                },
                Some(audit("unknown", why.to_string())),
            ),
        };
        let unknowable = matches!(found, Found::Unknowable { .. });
        outcomes.push(OpOutcome {
            journal_id: e.id,
            state: Some(state),
            change,
            error_code: unknowable.then(|| "outcome-unknown".to_string()),
            error_message: unknowable.then(|| note.clone()),
            note: Some(note),
            audit: audit_line,
            ..Default::default()
        });
        report.push(Verification {
            op: e.op.clone(),
            found,
        });
    }
    crate::failure::blocking("recording what the checks found", move || {
        Directory::open(&db_path)?.record_outcomes(&outcomes)
    })
    .await?;
    Ok(report)
}
