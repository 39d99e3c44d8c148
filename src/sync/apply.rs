//! The apply engine: ops through `POST /$batch` (20 a batch) with bounded, adaptive
//! concurrency; every op journaled before it is sent (planned -> sent -> done | failed);
//! resumable after a crash; every write in the audit log.
use std::path::PathBuf;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::plan::{Op, Plan};
use crate::graph::{GraphClient, GraphError};

#[derive(Debug, Clone, PartialEq)]
pub struct ApplyOptions {
    pub batch_size: usize,
    pub max_concurrency: usize,
    /// Who applies (the signed-in identity), for the audit log.
    pub actor: String,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            batch_size: 20,
            max_concurrency: 4,
            actor: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApplyProgress {
    pub done: usize,
    pub failed: usize,
    pub remaining: usize,
    pub throttled: usize,
    /// Ops per second over the last few seconds.
    pub rate: f64,
}

/// A password generated for a new account: shown once, optionally written to a hand-off file.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedPassword {
    pub email: String,
    pub upn: String,
    pub password: String,
}

impl std::fmt::Debug for IssuedPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedPassword")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub enum ApplyEvent {
    Progress(ApplyProgress),
    OpDone { op: Op, tenant_user_id: String },
    OpFailed { op: Op, error: GraphError },
    PasswordIssued(IssuedPassword),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApplySummary {
    pub done: usize,
    pub failed: usize,
    /// Not sent because the admin stopped the run.
    pub cancelled: usize,
    pub passwords: Vec<IssuedPassword>,
}

/// Apply `plan`: journal, send, record outcomes in the directory at `db_path`, stream
/// events. Cancelling stops sending new ops; ops already sent finish and are recorded.
pub async fn apply(
    graph: GraphClient,
    db_path: PathBuf,
    plan: Plan,
    opts: ApplyOptions,
    events: mpsc::UnboundedSender<ApplyEvent>,
    cancel: CancellationToken,
) -> anyhow::Result<ApplySummary> {
    let _ = (graph, db_path, plan, opts, events, cancel);
    todo!("sync: apply")
}

/// Finish what a killed run left in the journal: an op whose outcome is unknown is checked
/// against the tenant (GET by UPN or id) before it is sent again, so nothing is done twice.
pub async fn resume(
    graph: GraphClient,
    db_path: PathBuf,
    opts: ApplyOptions,
    events: mpsc::UnboundedSender<ApplyEvent>,
    cancel: CancellationToken,
) -> anyhow::Result<ApplySummary> {
    let _ = (graph, db_path, opts, events, cancel);
    todo!("sync: resume")
}
