//! The apply engine: user and group ops alike through `POST /$batch` (20 a batch) with
//! bounded, adaptive concurrency; every op journaled before it is sent (planned -> sent ->
//! done | failed); every write in the audit log. What each op sends, what its success changes
//! in the directory and how a lost answer is checked is its spec's business (`sync::ops`):
//! this module only schedules.
//!
//! Throttling: a client-side write limiter never lets more writes out than the budget allows
//! in any window (writes still on the wire count; answered writes are timed at their answer,
//! which is later than the server saw them, so the server's window always frees first). A
//! per-item 429 pauses all sending until its `Retry-After`, halves the batches in flight
//! (AIMD) and re-queues only that item; clean batches grow the window back by one. A 429 also
//! teaches the limiter the real budget: the writes the tenant accepted in the last window
//! (never below a tenth of the configured budget). A run that finishes no op for
//! `stall_limit` (a tenant that answers 429 forever) stops by itself and says so.
//!
//! Order: an op that needs another op of the run (adding a member whose account this run
//! creates, or to a group this run creates) waits for it; if that one fails, it is not sent.
//!
//! Ambiguity: when a write may have been applied without us seeing the answer (connection
//! dropped, 5xx, 504), idempotent writes are sent again and the others (create, restore,
//! create group) are first checked against the tenant: nothing is created twice.
//!
//! Passwords: a create's generated password is delivered to the run's [`PasswordSink`] (a
//! hand-off file written and flushed at once, stdout, or the console's passwords view) before
//! its success is recorded, and the journal says whether it was; if the sink fails, the run
//! stops sending.
//!
//! Cancel: no new batch leaves; batches on the wire finish and are recorded. Ops never sent
//! are marked `cancelled` (the next plan makes them again if still wanted); ops whose outcome
//! is unknown stay `unknown`, and are checked before the next plan.
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::ops::{Answer, AnyOp, Check, Ctx, Found, Verdict};
use super::plan::{Op, OpKind};
use crate::directory::{
    AuditEntry, BindingState, Change, Directory, DirectoryError, DirectoryUser, JournalState,
    OpOutcome,
};
use crate::failure::Failure;
use crate::graph::batch::{self, BatchRequest, ItemResult};
use crate::graph::{GraphClient, GraphError};

/// The tenant's write budget: Graph allows 3,000 writes per 150 s per app and tenant
/// (graph-notes §8). Defined once; the CLI's flags and the console start from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteBudget {
    pub writes: u32,
    pub window: Duration,
}

impl WriteBudget {
    pub const GRAPH: WriteBudget = WriteBudget {
        writes: 3_000,
        window: Duration::from_secs(150),
    };
    /// Time to send `writes` at this budget.
    pub fn eta(self, writes: u64) -> Duration {
        if writes == 0 || self.writes == 0 {
            return Duration::ZERO;
        }
        self.window.mul_f64(writes as f64 / f64::from(self.writes))
    }
}

impl Default for WriteBudget {
    fn default() -> Self {
        WriteBudget::GRAPH
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApplyOptions {
    pub batch_size: usize,
    pub max_concurrency: usize,
    /// Who applies (the signed-in identity), for the audit log.
    pub actor: String,
    pub budget: WriteBudget,
    /// Attempts per op before it is failed on 5xx or network errors.
    pub max_attempts: u32,
    /// A run that finishes no op for this long (throttled without end, a stalled tenant)
    /// stops sending and says so.
    pub stall_limit: Duration,
    /// How long a journal write waits out a busy database (another process writing) before
    /// the run gives up.
    pub busy_limit: Duration,
    /// SQLite's own wait for a busy database on each statement (`None`: the directory's).
    pub busy_timeout: Option<Duration>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            batch_size: 20,
            max_concurrency: 4,
            actor: String::new(),
            budget: WriteBudget::GRAPH,
            max_attempts: 10,
            stall_limit: Duration::from_secs(15 * 60),
            busy_limit: Duration::from_secs(120),
            busy_timeout: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApplyProgress {
    pub done: usize,
    pub failed: usize,
    /// Not sent: the run stopped first, or an op it needed failed.
    pub not_sent: usize,
    pub remaining: usize,
    pub throttled: usize,
    /// Ops per second over the last few seconds.
    pub rate: f64,
}

/// A password generated for a new account: delivered once to the run's sink.
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

/// Where generated passwords go, each as soon as its account exists. Opened before the
/// first write, so a sink that cannot work is found out before anything is created.
pub trait PasswordSink: Send {
    /// Deliver one password (written and flushed, or shown); Err: why not.
    fn deliver(&mut self, p: &IssuedPassword) -> Result<(), String>;
    /// Where they go, in words ("the hand-off file /x.csv").
    fn describe(&self) -> String;
}

/// The console's sink: each password goes to the passwords view with the run's events.
pub struct EventSink(pub mpsc::UnboundedSender<ApplyEvent>);

impl PasswordSink for EventSink {
    fn deliver(&mut self, p: &IssuedPassword) -> Result<(), String> {
        self.0
            .send(ApplyEvent::PasswordIssued(p.clone()))
            .map_err(|_| "the console is gone".to_string())
    }
    fn describe(&self) -> String {
        "the passwords view".into()
    }
}

#[derive(Debug, Clone)]
pub enum ApplyEvent {
    Progress(ApplyProgress),
    OpDone {
        op: AnyOp,
        tenant_id: String,
    },
    OpFailed {
        op: AnyOp,
        error: GraphError,
    },
    /// Never sent: why.
    OpNotSent {
        op: AnyOp,
        why: String,
    },
    PasswordIssued(IssuedPassword),
}

/// How one op of a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    Failed(GraphError),
    /// Never sent: why (the run stopped, an op it needed failed).
    NotSent(String),
    /// Sent, but the run stopped before its answer: checked before the next plan.
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OpResult {
    pub op: AnyOp,
    pub outcome: Outcome,
}

/// Why a run stopped before it was through.
#[derive(Debug, Clone, PartialEq)]
pub enum Stopped {
    /// The admin stopped it (Esc, Ctrl-C, SIGTERM, SIGHUP).
    Cancelled,
    /// No op finished for this long; the tenant throttled this many times.
    Stalled { after: Duration, throttled: usize },
    /// The password sink failed: no further account is created.
    SinkFailed(String),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApplySummary {
    pub done: usize,
    pub failed: usize,
    /// Never sent (the run stopped, an op it needed failed) or sent with no answer.
    pub cancelled: usize,
    pub throttled: usize,
    /// Every op of the run and how it ended, in the run's order.
    pub results: Vec<OpResult>,
    /// Passwords delivered to the sink, in the order the accounts were created.
    pub passwords: Vec<IssuedPassword>,
    /// Accounts created whose password did not reach the sink (set one with `password set`).
    pub passwords_lost: Vec<String>,
    pub stopped: Option<Stopped>,
}

/// Apply `ops` (in order; an op waits for the ops of the run it needs): journal, send,
/// record outcomes in the directory at `db_path`, deliver generated passwords to `sink`,
/// stream events. Cancelling stops sending new ops; ops already sent finish and are recorded.
pub async fn apply(
    graph: GraphClient,
    db_path: PathBuf,
    ops: Vec<AnyOp>,
    opts: ApplyOptions,
    sink: Box<dyn PasswordSink>,
    events: mpsc::UnboundedSender<ApplyEvent>,
    cancel: CancellationToken,
) -> Result<ApplySummary, Failure> {
    let passwords = vec![None; ops.len()];
    run(graph, db_path, ops, passwords, opts, sink, events, cancel).await
}

/// Set the password of the directory user with `email`: checked against the rules, pushed at
/// once to its account when bound (forceChangePasswordNextSignIn false), and re-enables an
/// account blocked by an expired password. Records password_set_at; never stores the password.
/// The caller holds the apply lock when the user is bound (`sync::pipeline` does).
pub async fn set_password(
    graph: GraphClient,
    db_path: PathBuf,
    email: &str,
    password: &str,
    actor: &str,
) -> Result<SetPasswordOutcome, Failure> {
    super::password::check(password).map_err(|e| Failure::Invalid(e.to_string()))?;
    let email_owned = email.to_string();
    let db = db_path.clone();
    let user = crate::failure::blocking("reading the directory", move || {
        Directory::open(&db)?
            .find_by_email(&email_owned)?
            .ok_or_else(|| {
                DirectoryError::Invalid(format!("no directory user has the email {email_owned}"))
            })
    })
    .await?;
    let now = crate::directory::now_rfc3339();
    let Some(tenant_id) = user.tenant_user_id.clone().filter(|_| user.wanted()) else {
        let db = db_path.clone();
        let actor = actor.to_string();
        crate::failure::blocking("recording the password", move || {
            let mut d = Directory::open(&db)?;
            d.set_password_set_at(user.id, &now)?;
            d.audit_append(&AuditEntry {
                actor,
                action: "set-password".into(),
                target: user.email.clone(),
                outcome: "recorded".into(),
                detail: Some("not bound: recorded in the directory only".into()),
                ..Default::default()
            })
        })
        .await?;
        return Ok(SetPasswordOutcome::RecordedOnly);
    };
    let set = Op {
        kind: OpKind::SetPassword,
        directory_id: user.id,
        email: user.email.clone(),
        display_name: user.display_name.clone(),
        upn: user.email.clone(),
        tenant_user_id: Some(tenant_id),
        reason: "the admin set a new password".into(),
        changes: Vec::new(),
        manager_id: None,
        deprovision: Default::default(),
        licences: None,
    };
    let opts = ApplyOptions {
        actor: actor.into(),
        max_concurrency: 1,
        ..Default::default()
    };
    let (tx, _rx) = mpsc::unbounded_channel();
    // SetPassword first: re-enable only once the new password is in place.
    let s1 = run(
        graph.clone(),
        db_path.clone(),
        vec![AnyOp::User(set.clone())],
        vec![Some(password.to_string())],
        opts.clone(),
        Box::new(EventSink(tx.clone())),
        tx.clone(),
        CancellationToken::new(),
    )
    .await?;
    if let Some(e) = first_error(&s1) {
        return Ok(SetPasswordOutcome::Failed(e));
    }
    let db = db_path.clone();
    let id = user.id;
    let keep_sessions = crate::failure::blocking("recording the password", move || {
        let mut d = Directory::open(&db)?;
        d.set_password_set_at(id, &now)?;
        Ok(d.policy()?.0.keep_sessions_on_password)
    })
    .await?;
    let mut re_enabled = false;
    if user.binding == BindingState::Blocked {
        let enable = Op {
            kind: OpKind::ReEnable,
            reason: "a new password re-enables an account blocked by an expired one".into(),
            ..set.clone()
        };
        let s2 = run(
            graph.clone(),
            db_path.clone(),
            vec![AnyOp::User(enable)],
            vec![None],
            opts.clone(),
            Box::new(EventSink(tx.clone())),
            tx.clone(),
            CancellationToken::new(),
        )
        .await?;
        if let Some(e) = first_error(&s2) {
            return Ok(SetPasswordOutcome::Failed(e));
        }
        re_enabled = true;
    }
    // The directory's password replaces the one in Microsoft 365: sessions opened with the
    // old one end (issue 10 item 4), unless the policy says otherwise.
    if keep_sessions {
        return Ok(SetPasswordOutcome::Pushed {
            re_enabled,
            signed_out: SignOut::NotAsked,
        });
    }
    let revoke = Op {
        kind: OpKind::RevokeSessions,
        reason: "a pushed password signs the user out everywhere".into(),
        ..set
    };
    let target = revoke.upn.clone();
    let s3 = run(
        graph,
        db_path.clone(),
        vec![AnyOp::User(revoke)],
        vec![None],
        opts,
        Box::new(EventSink(tx.clone())),
        tx,
        CancellationToken::new(),
    )
    .await?;
    let signed_out = match first_error(&s3) {
        Some(e) => SignOut::Failed(e),
        None => SignOut::Done,
    };
    let actor = actor.to_string();
    let detail = match &signed_out {
        SignOut::Done => "password set; signed out everywhere".to_string(),
        SignOut::Failed(e) => format!("password set; signing out everywhere failed: {e}"),
        SignOut::NotAsked => "password set".to_string(),
    };
    crate::failure::blocking("writing the audit log", move || {
        Directory::open(&db_path)?.audit_append(&AuditEntry {
            actor,
            action: "set-password".into(),
            target,
            outcome: "pushed".into(),
            detail: Some(detail),
            ..Default::default()
        })
    })
    .await?;
    Ok(SetPasswordOutcome::Pushed {
        re_enabled,
        signed_out,
    })
}

/// Whether a password push signed the user out everywhere (`revokeSignInSessions`).
#[derive(Debug, Clone, PartialEq)]
pub enum SignOut {
    /// The policy keeps sessions (`directory policy --revoke-on-password off`).
    NotAsked,
    Done,
    /// The password is set; signing out failed (the Errors tab explains the failure).
    Failed(GraphError),
}

fn first_error(s: &ApplySummary) -> Option<GraphError> {
    s.results.iter().find_map(|r| match &r.outcome {
        Outcome::Done => None,
        Outcome::Failed(e) => Some(e.clone()),
        Outcome::NotSent(why) => Some(local_error("not-sent", why)),
        Outcome::Unknown => Some(local_error(
            "outcome-unknown",
            "the run stopped before Graph answered",
        )),
    })
}

#[derive(Debug, Clone, PartialEq)]
pub enum SetPasswordOutcome {
    /// Pushed to the bound account (and the account re-enabled if it was blocked; the user
    /// signed out everywhere unless the policy keeps sessions).
    Pushed {
        re_enabled: bool,
        signed_out: SignOut,
    },
    /// No bound account: the directory records when it was set.
    RecordedOnly,
    Failed(GraphError),
}

#[allow(clippy::too_many_arguments)]
async fn run(
    graph: GraphClient,
    db_path: PathBuf,
    ops: Vec<AnyOp>,
    passwords: Vec<Option<String>>,
    opts: ApplyOptions,
    sink: Box<dyn PasswordSink>,
    events: mpsc::UnboundedSender<ApplyEvent>,
    cancel: CancellationToken,
) -> Result<ApplySummary, Failure> {
    let mut db = Directory::open(&db_path).map_err(|e| Failure::directory("opening", e))?;
    if let Some(t) = opts.busy_timeout {
        db.set_busy_timeout(t)
            .map_err(|e| Failure::directory("opening", e))?;
    }
    let run_id = uuid::Uuid::new_v4().to_string();
    let jids = db
        .journal_insert(&run_id, &ops)
        .map_err(|e| Failure::directory("journaling the run", e))?;
    let mut engine = Engine::new(graph, db, opts, sink, events, cancel)?;
    engine.run(ops, jids, passwords).await
}

/// Where an op of the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Send step `n`.
    Step(u32),
    /// Check the tenant before sending step `n` again (its outcome is unknown).
    Verify(u32),
}

struct Work {
    idx: usize,
    jid: i64,
    op: AnyOp,
    phase: Phase,
    password: Option<String>,
    attempts: u32,
    /// Sent, and it may have been applied without us knowing (an answer lost, a 5xx): if
    /// the run stops now it stays `unknown` and is checked before the next plan.
    uncertain: bool,
    /// Step requests sent so far (0: never on the wire).
    sent: u32,
    not_before: Instant,
}

/// Writes allowed in any window: in flight + answered within the window.
struct Limiter {
    budget: u32,
    window: Duration,
    answered: VecDeque<(Instant, u32)>,
    answered_sum: u32,
    in_flight: u32,
}

impl Limiter {
    fn expire(&mut self, now: Instant) {
        while let Some(&(t, n)) = self.answered.front() {
            if now.duration_since(t) >= self.window {
                self.answered.pop_front();
                self.answered_sum -= n;
            } else {
                break;
            }
        }
    }
    fn available(&mut self, now: Instant) -> u32 {
        self.expire(now);
        self.budget
            .saturating_sub(self.answered_sum + self.in_flight)
    }
    /// When the next write slot frees (None: only an answer can free one).
    fn next_free(&self) -> Option<Instant> {
        self.answered.front().map(|&(t, _)| t + self.window)
    }
    fn answer(&mut self, sent: u32, consumed: u32, at: Instant) {
        self.in_flight = self.in_flight.saturating_sub(sent);
        if consumed > 0 {
            self.answered.push_back((at, consumed));
            self.answered_sum += consumed;
        }
    }
}

type BatchOutcome = (Vec<Work>, Result<Vec<ItemResult>, GraphError>);
type CheckOutcome = (Work, Result<Found, GraphError>);

struct Engine {
    graph: GraphClient,
    db: Directory,
    opts: ApplyOptions,
    sink: Box<dyn PasswordSink>,
    events: mpsc::UnboundedSender<ApplyEvent>,
    cancel: CancellationToken,
    directory: HashMap<i64, DirectoryUser>,
    /// Directory user -> account, directory group -> M365 group: from the directory, then
    /// from the ops of this run that succeeded.
    user_ids: HashMap<i64, String>,
    group_ids: HashMap<i64, String>,
    /// The ops each op of the run waits for (count), and who waits for it.
    waiting_on: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    parked: HashMap<usize, Work>,
    /// Ops whose last dependency just succeeded: queued at the next round.
    released: Vec<Work>,
    results: Vec<Option<Outcome>>,
    ops: Vec<AnyOp>,
    limiter: Limiter,
    cwnd: f64,
    hold_until: Instant,
    summary: ApplySummary,
    remaining: usize,
    started: Instant,
    last_progress: Instant,
    recent: VecDeque<(Instant, usize)>,
    stop: Option<Stopped>,
}

impl Engine {
    fn new(
        graph: GraphClient,
        db: Directory,
        opts: ApplyOptions,
        sink: Box<dyn PasswordSink>,
        events: mpsc::UnboundedSender<ApplyEvent>,
        cancel: CancellationToken,
    ) -> Result<Engine, Failure> {
        let users = db
            .users()
            .map_err(|e| Failure::directory("reading the directory", e))?;
        let groups = db
            .groups()
            .map_err(|e| Failure::directory("reading the directory", e))?;
        let user_ids = users
            .iter()
            .filter_map(|u| u.tenant_user_id.clone().map(|t| (u.id, t)))
            .collect();
        let group_ids = groups
            .iter()
            .filter_map(|g| g.tenant_group_id.clone().map(|t| (g.id, t)))
            .collect();
        let now = Instant::now();
        Ok(Engine {
            graph,
            db,
            limiter: Limiter {
                budget: opts.budget.writes.max(1),
                window: opts.budget.window,
                answered: VecDeque::new(),
                answered_sum: 0,
                in_flight: 0,
            },
            cwnd: opts.max_concurrency.max(1) as f64,
            opts,
            sink,
            events,
            cancel,
            directory: users.into_iter().map(|u| (u.id, u)).collect(),
            user_ids,
            group_ids,
            waiting_on: Vec::new(),
            dependents: Vec::new(),
            parked: HashMap::new(),
            released: Vec::new(),
            results: Vec::new(),
            ops: Vec::new(),
            hold_until: now,
            summary: ApplySummary::default(),
            remaining: 0,
            started: now,
            last_progress: now,
            recent: VecDeque::new(),
            stop: None,
        })
    }

    /// Which op of the run each op needs first: a member op needs the op that gives its
    /// member an account and the op that makes its group.
    fn dependencies(ops: &[AnyOp]) -> Vec<Vec<usize>> {
        use super::groups::GroupOpKind;
        let mut account_of: HashMap<i64, usize> = HashMap::new();
        let mut group_of: HashMap<i64, usize> = HashMap::new();
        // Deprovisioning steps go after the block of the same account and after the steps
        // recorded for it (a step's done must not come before its record), a delete after
        // the other steps.
        let mut before_steps: HashMap<i64, Vec<usize>> = HashMap::new();
        // Ops that set a user's usage location: a licence waits for them.
        let mut usage_of: HashMap<i64, usize> = HashMap::new();
        for (i, op) in ops.iter().enumerate() {
            match op {
                AnyOp::User(o) => {
                    if o.kind == OpKind::UpdateAttributes
                        && o.changes.iter().any(|c| c.attr.wire() == "usageLocation")
                    {
                        usage_of.entry(o.directory_id).or_insert(i);
                    }
                    if matches!(
                        o.kind,
                        OpKind::Block
                            | OpKind::RevokeSessions
                            | OpKind::RemoveLicenses
                            | OpKind::RecordSteps
                    ) {
                        before_steps.entry(o.directory_id).or_default().push(i);
                    }
                    if matches!(
                        o.kind,
                        OpKind::Create | OpKind::Takeover | OpKind::Restore | OpKind::ReEnable
                    ) {
                        account_of.entry(o.directory_id).or_insert(i);
                    }
                }
                AnyOp::Group(o) => {
                    if matches!(o.kind, GroupOpKind::CreateGroup | GroupOpKind::LinkGroup) {
                        group_of.entry(o.group_id).or_insert(i);
                    }
                }
            }
        }
        ops.iter()
            .enumerate()
            .map(|(i, op)| match op {
                AnyOp::User(o)
                    if matches!(
                        o.kind,
                        OpKind::RevokeSessions
                            | OpKind::RemoveLicenses
                            | OpKind::DeleteUser
                            | OpKind::RecordSteps
                    ) =>
                {
                    before_steps
                        .get(&o.directory_id)
                        .into_iter()
                        .flatten()
                        .copied()
                        .filter(|&j| {
                            j != i
                                && match &ops[j] {
                                    AnyOp::User(b) => {
                                        b.kind == OpKind::Block
                                            || o.kind == OpKind::DeleteUser
                                            || (b.kind == OpKind::RecordSteps
                                                && o.kind != OpKind::RecordSteps)
                                    }
                                    AnyOp::Group(_) => false,
                                }
                        })
                        .collect()
                }
                // A manager reference needs both accounts.
                AnyOp::User(o) if o.kind == OpKind::SetManager => {
                    [Some(o.directory_id), o.manager_id]
                        .into_iter()
                        .flatten()
                        .filter_map(|id| account_of.get(&id).copied())
                        .collect()
                }
                // A licence needs the account and its usage location.
                AnyOp::User(o) if o.kind == OpKind::AssignLicense => [&account_of, &usage_of]
                    .into_iter()
                    .filter_map(|m| m.get(&o.directory_id).copied())
                    .collect(),
                AnyOp::Group(o) if o.member.is_some() => {
                    let mut d = Vec::new();
                    if let Some(&g) = group_of.get(&o.group_id) {
                        d.push(g);
                    }
                    if o.kind == GroupOpKind::AddMember {
                        if let Some(&u) = o
                            .member
                            .as_ref()
                            .and_then(|m| account_of.get(&m.directory_id))
                        {
                            d.push(u);
                        }
                    }
                    d
                }
                _ => Vec::new(),
            })
            .collect()
    }

    async fn run(
        &mut self,
        ops: Vec<AnyOp>,
        jids: Vec<i64>,
        passwords: Vec<Option<String>>,
    ) -> Result<ApplySummary, Failure> {
        let deps = Self::dependencies(&ops);
        let n = ops.len();
        self.remaining = n;
        self.results = vec![None; n];
        self.waiting_on = deps.iter().map(Vec::len).collect();
        self.dependents = vec![Vec::new(); n];
        for (i, d) in deps.iter().enumerate() {
            for &j in d {
                self.dependents[j].push(i);
            }
        }
        self.ops = ops.clone();
        let mut queue: VecDeque<Work> = VecDeque::new();
        let mut verify: VecDeque<Work> = VecDeque::new();
        let now = Instant::now();
        for (idx, ((op, jid), password)) in ops.into_iter().zip(jids).zip(passwords).enumerate() {
            let w = Work {
                idx,
                jid,
                op,
                phase: Phase::Step(0),
                password,
                attempts: 0,
                uncertain: false,
                sent: 0,
                not_before: now,
            };
            if self.waiting_on[idx] > 0 {
                self.parked.insert(idx, w);
            } else {
                queue.push_back(w);
            }
        }
        self.progress();
        let mut batches: JoinSet<BatchOutcome> = JoinSet::new();
        let mut checks: JoinSet<CheckOutcome> = JoinSet::new();
        loop {
            queue.extend(self.released.drain(..));
            let now = Instant::now();
            if self.stop.is_none() && self.cancel.is_cancelled() {
                self.stop = Some(Stopped::Cancelled);
            }
            if self.stop.is_none()
                && self.remaining > 0
                && now.duration_since(self.last_progress) >= self.opts.stall_limit
            {
                self.stop = Some(Stopped::Stalled {
                    after: self.opts.stall_limit,
                    throttled: self.summary.throttled,
                });
            }
            let stopping = self.stop.is_some();
            // Ops that send nothing (linking a group) are done as soon as they are ready.
            if !stopping {
                let mut rest = VecDeque::with_capacity(queue.len());
                while let Some(w) = queue.pop_front() {
                    if w.op.steps() == 0 {
                        let answer = w.op.answered(0, &Value::Null, &self.ctx(None));
                        self.answered(w, answer, None, &mut rest)?;
                    } else {
                        rest.push_back(w);
                    }
                }
                queue = rest;
            }
            // Checks cost no write: a few at a time.
            while !stopping && checks.len() < 8 {
                let Some(w) = verify.pop_front() else { break };
                let check = w.op.verify(&self.ctx(None));
                let graph = self.graph.clone();
                checks.spawn(async move {
                    let r = run_check(&graph, &check).await;
                    (w, r)
                });
            }
            let mut wake: Option<Instant> = None;
            if !stopping {
                while (batches.len() as f64) < self.cwnd.floor().max(1.0) {
                    if now < self.hold_until {
                        wake = Some(self.hold_until);
                        break;
                    }
                    let allowed = self.limiter.available(now) as usize;
                    if allowed == 0 {
                        wake = self.limiter.next_free().map(|t| t.max(now));
                        break;
                    }
                    let take = allowed.min(self.opts.batch_size.clamp(1, batch::MAX_BATCH));
                    let mut picked = Vec::new();
                    let mut later = VecDeque::new();
                    while picked.len() < take {
                        let Some(w) = queue.pop_front() else { break };
                        if w.not_before <= now {
                            picked.push(w);
                        } else {
                            wake =
                                Some(wake.map_or(w.not_before, |x: Instant| x.min(w.not_before)));
                            later.push_back(w);
                        }
                    }
                    while let Some(w) = later.pop_back() {
                        queue.push_front(w);
                    }
                    if picked.is_empty() {
                        break;
                    }
                    let mut requests = Vec::with_capacity(picked.len());
                    let mut sending = Vec::with_capacity(picked.len());
                    for mut w in picked {
                        let Phase::Step(step) = w.phase else {
                            verify.push_back(w);
                            continue;
                        };
                        if w.op.kind() == super::ops::Kind::User(OpKind::Create)
                            && w.password.is_none()
                        {
                            w.password = Some(super::password::generate());
                        }
                        match w.op.request(step, &self.ctx(w.password.as_deref())) {
                            Ok(r) => {
                                let mut b = BatchRequest::new(
                                    (requests.len() + 1).to_string(),
                                    r.method,
                                    r.url,
                                );
                                b.body = r.body;
                                requests.push(b);
                                w.attempts += 1;
                                w.sent += 1;
                                sending.push(w);
                            }
                            Err(why) => {
                                let o = self.failure(&w, local_error("not-sent", &why.0));
                                self.finish(w.idx, o)?;
                            }
                        }
                    }
                    if sending.is_empty() {
                        continue;
                    }
                    let jids: Vec<i64> = sending.iter().map(|w| w.jid).collect();
                    self.db_write(|d| d.journal_mark(&jids, JournalState::Sent))?;
                    self.limiter.in_flight += sending.len() as u32;
                    let graph = self.graph.clone();
                    batches.spawn(async move {
                        let r = batch::send(&graph, &requests).await;
                        (sending, r)
                    });
                }
            }
            if batches.is_empty() && checks.is_empty() {
                // Ops released by one that sent nothing (steps recorded, a group linked)
                // go round again, not out of the run.
                if !stopping && !self.released.is_empty() {
                    continue;
                }
                if stopping || (queue.is_empty() && verify.is_empty()) {
                    break;
                }
                if wake.is_none() && verify.is_empty() {
                    // Nothing ready and nothing to wait for: should not happen; avoid a spin.
                    wake = Some(now + Duration::from_millis(50));
                }
            }
            let stall_at = self.last_progress + self.opts.stall_limit;
            let sleep_until = wake.map_or(stall_at, |w| w.min(stall_at));
            tokio::select! {
                Some(r) = batches.join_next(), if !batches.is_empty() => {
                    let (sent, result) = r.map_err(|e| Failure::Internal(format!("a batch task failed: {e}")))?;
                    self.on_batch(sent, result, &mut queue, &mut verify)?;
                }
                Some(r) = checks.join_next(), if !checks.is_empty() => {
                    let (w, result) = r.map_err(|e| Failure::Internal(format!("a check task failed: {e}")))?;
                    self.on_check(w, result, &mut queue, &mut verify)?;
                }
                _ = tokio::time::sleep_until(sleep_until.into()) => {}
                _ = self.cancel.cancelled(), if self.stop.is_none() => {}
            }
        }
        // Stopped or through: what was never sent is cancelled; what may have been applied
        // stays unknown (checked before the next plan).
        let why = match &self.stop {
            Some(Stopped::Cancelled) | None => "the run was stopped before it was sent".to_string(),
            Some(Stopped::Stalled { after, throttled }) => format!(
                "the run stopped: no op finished for {} (throttled {throttled} times)",
                crate::format::duration(*after)
            ),
            Some(Stopped::SinkFailed(e)) => {
                format!("the run stopped: the passwords could not be delivered ({e})")
            }
        };
        let mut left: Vec<Work> = queue
            .into_iter()
            .chain(verify)
            .chain(self.released.drain(..))
            .collect();
        let mut parked: Vec<Work> = self.parked.drain().map(|(_, w)| w).collect();
        parked.sort_by_key(|w| w.idx);
        left.extend(parked);
        for w in left {
            // Sent with no answer, or half done (a restore not yet enabled): checked later.
            let half_done = w.sent > 0 && matches!(w.phase, Phase::Step(s) if s > 0);
            if !(w.uncertain || half_done) {
                self.not_sent(w.idx, w.jid, &why)?;
            } else {
                self.db_write(|d| d.journal_mark(&[w.jid], JournalState::Unknown))?;
                self.results[w.idx] = Some(Outcome::Unknown);
                self.summary.cancelled += 1;
            }
        }
        self.remaining = 0;
        self.summary.stopped = self.stop.clone();
        self.progress();
        let mut summary = std::mem::take(&mut self.summary);
        summary.results = std::mem::take(&mut self.ops)
            .into_iter()
            .zip(std::mem::take(&mut self.results))
            .map(|(op, outcome)| OpResult {
                op,
                outcome: outcome.unwrap_or(Outcome::Unknown),
            })
            .collect();
        Ok(summary)
    }

    fn ctx<'a>(&'a self, password: Option<&'a str>) -> Ctx<'a> {
        Ctx {
            users: &self.user_ids,
            groups: &self.group_ids,
            directory: &self.directory,
            password,
            base: self.graph.base(),
        }
    }

    /// A journal write that waits out a busy database (a concurrent import) within
    /// `busy_limit` instead of failing the run.
    fn db_write<T>(
        &mut self,
        mut f: impl FnMut(&mut Directory) -> Result<T, DirectoryError>,
    ) -> Result<T, Failure> {
        let deadline = Instant::now() + self.opts.busy_limit;
        let mut pause = Duration::from_millis(20);
        loop {
            match f(&mut self.db) {
                Ok(v) => return Ok(v),
                Err(e) if e.is_busy() && Instant::now() < deadline => {
                    tracing::warn!(error = %e, "journal write: the database is busy, waiting");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(e) => return Err(Failure::directory("writing the journal", e)),
            }
        }
    }

    fn on_batch(
        &mut self,
        sent: Vec<Work>,
        result: Result<Vec<ItemResult>, GraphError>,
        queue: &mut VecDeque<Work>,
        verify: &mut VecDeque<Work>,
    ) -> Result<(), Failure> {
        let now = Instant::now();
        let n = sent.len() as u32;
        let items = match result {
            Ok(items) if items.len() == sent.len() => items,
            other => {
                // The whole batch: nothing known about any item.
                let e = match other {
                    Err(e) => e,
                    Ok(items) => GraphError::Malformed(format!(
                        "$batch answered {} items for {} requests",
                        items.len(),
                        sent.len()
                    )),
                };
                let throttled = e.status() == Some(429);
                self.limiter.answer(n, if throttled { 0 } else { n }, now);
                if throttled {
                    self.throttle(e.retry_after(), now);
                } else {
                    self.cwnd = (self.cwnd / 2.0).max(1.0);
                }
                for w in sent {
                    self.retry_or_fail(w, &e, queue, verify)?;
                }
                return Ok(());
            }
        };
        let mut consumed = 0;
        let mut clean = true;
        for (w, item) in sent.into_iter().zip(items) {
            let Phase::Step(step) = w.phase else {
                continue;
            };
            match item {
                Ok(item) => {
                    consumed += 1;
                    let answer = w.op.answered(step, &item.body, &self.ctx(None));
                    self.answered(w, answer, item.request_id, queue)?;
                }
                Err(e) if w.op.already(&e) => {
                    consumed += 1;
                    let answer = w.op.answered(step, &Value::Null, &self.ctx(None));
                    let rid = e.request_id().map(str::to_string);
                    self.answered(w, answer, rid, queue)?;
                }
                Err(e) => {
                    if e.status() == Some(429) {
                        clean = false;
                        self.throttle(e.retry_after(), now);
                    } else {
                        consumed += 1;
                        if batch::is_retryable(&e) || e.status().is_some_and(|s| s >= 500) {
                            clean = false;
                        }
                    }
                    self.retry_or_fail(w, &e, queue, verify)?;
                }
            }
        }
        self.limiter.answer(n, consumed, now);
        if clean {
            let max = self.opts.max_concurrency.max(1) as f64;
            self.cwnd = (self.cwnd + 1.0).min(max);
        }
        Ok(())
    }

    /// A step succeeded: go on with the next step, or the op is done.
    fn answered(
        &mut self,
        mut w: Work,
        answer: Answer,
        rid: Option<String>,
        queue: &mut VecDeque<Work>,
    ) -> Result<(), Failure> {
        match answer {
            Answer::Next => {
                let Phase::Step(step) = w.phase else {
                    return Ok(());
                };
                if step == 0 {
                    self.audit_step(&w, rid);
                }
                w.phase = Phase::Step(step + 1);
                w.attempts = 0;
                queue.push_front(w);
            }
            Answer::Done { tenant_id, change } => {
                let o = self.success(&w, tenant_id, change, rid);
                self.finish(w.idx, o)?;
            }
        }
        Ok(())
    }

    fn throttle(&mut self, retry_after: Option<Duration>, now: Instant) {
        self.summary.throttled += 1;
        self.cwnd = (self.cwnd / 2.0).max(1.0);
        // The tenant grants less than we were told: what it accepted in the last window is
        // its budget (a floor keeps a transient 429 from starving the run).
        self.limiter.expire(now);
        let accepted = self.limiter.answered_sum;
        let floor = (self.opts.budget.writes / 10).max(1);
        if accepted >= floor && accepted < self.limiter.budget {
            self.limiter.budget = accepted;
        }
        let wait = retry_after
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(300));
        self.hold_until = self.hold_until.max(now + wait);
    }

    /// Send again, check first, or give up.
    fn retry_or_fail(
        &mut self,
        mut w: Work,
        e: &GraphError,
        queue: &mut VecDeque<Work>,
        verify: &mut VecDeque<Work>,
    ) -> Result<(), Failure> {
        let Phase::Step(step) = w.phase else {
            return Ok(());
        };
        let status = e.status();
        let throttled = status == Some(429);
        // Could the write have been applied although we got no success?
        let maybe_applied = match e {
            GraphError::Transport(_) | GraphError::Malformed(_) => true,
            GraphError::Api { status, .. } => *status >= 500,
            GraphError::Auth(_) => false,
        };
        let retryable = throttled || maybe_applied || status == Some(503);
        // A refusal (429, 503) says this attempt was not applied; a lost answer does not say
        // (and an earlier lost answer stays a doubt).
        w.uncertain |= maybe_applied;
        // A create answered "already exists" after an earlier attempt whose outcome is
        // unknown: it may have been ours.
        let conflict_after_unknown = w.op.check_before_resend(step)
            && w.attempts > 1
            && status == Some(400)
            && e.to_string().contains("already exist");
        if conflict_after_unknown {
            w.phase = Phase::Verify(step);
            verify.push_back(w);
            return Ok(());
        }
        if !retryable || (!throttled && w.attempts >= self.opts.max_attempts) {
            let o = self.failure(&w, e.clone());
            return self.finish(w.idx, o);
        }
        if throttled {
            w.attempts = w.attempts.saturating_sub(1);
            w.not_before = self.hold_until;
            queue.push_front(w);
            return Ok(());
        }
        let backoff = self.graph.retry.backoff(w.attempts);
        w.not_before = Instant::now() + backoff.min(Duration::from_secs(10));
        if maybe_applied && w.op.check_before_resend(step) {
            // Journaled as unknown: if this process dies now, the next plan checks it first.
            self.db_write(|d| d.journal_mark(&[w.jid], JournalState::Unknown))?;
            w.phase = Phase::Verify(step);
            verify.push_back(w);
        } else {
            queue.push_back(w);
        }
        Ok(())
    }

    fn on_check(
        &mut self,
        mut w: Work,
        result: Result<Found, GraphError>,
        queue: &mut VecDeque<Work>,
        verify: &mut VecDeque<Work>,
    ) -> Result<(), Failure> {
        let Phase::Verify(step) = w.phase else {
            return Ok(());
        };
        let found = match result {
            Ok(found) => found,
            Err(e) => {
                w.attempts += 1;
                if w.attempts >= self.opts.max_attempts * 2 {
                    let o = self.failure(&w, e);
                    return self.finish(w.idx, o);
                }
                w.not_before = Instant::now() + self.graph.retry.backoff(w.attempts);
                verify.push_back(w);
                return Ok(());
            }
        };
        match w.op.verdict(&found) {
            Verdict::Applied { tenant_id, change } => {
                // Our earlier attempt did it (with the password this run generated).
                let o = self.success(&w, tenant_id, change, None);
                self.finish(w.idx, o)?;
            }
            Verdict::Partly { step, .. } => {
                w.phase = Phase::Step(step);
                w.attempts = 0;
                queue.push_back(w);
            }
            Verdict::NotApplied => {
                w.phase = Phase::Step(step);
                queue.push_back(w);
            }
            Verdict::Unknowable(why) => {
                let o = self.failure(&w, local_error("outcome-unknown", why));
                self.finish(w.idx, o)?;
            }
        }
        Ok(())
    }

    fn audit_step(&mut self, w: &Work, rid: Option<String>) {
        let entry = AuditEntry {
            actor: self.opts.actor.clone(),
            action: w.op.kind().audit_name().into(),
            target: w.op.target(),
            request_id: rid,
            outcome: "step done".into(),
            detail: w.op.user().and_then(|o| o.tenant_user_id.clone()),
            ..Default::default()
        };
        if let Err(e) = self.db_write(|d| d.audit_append(&entry)) {
            tracing::error!(error = %e, "writing the audit log");
        }
    }

    fn success(
        &mut self,
        w: &Work,
        tenant_id: String,
        change: Change,
        rid: Option<String>,
    ) -> OpOutcome {
        self.summary.done += 1;
        match &change {
            Change::User {
                directory_id,
                tenant_user_id,
                ..
            } if !tenant_user_id.is_empty() => {
                self.user_ids.insert(*directory_id, tenant_user_id.clone());
            }
            Change::Group {
                group_id,
                tenant_group_id,
            } => {
                self.group_ids.insert(*group_id, tenant_group_id.clone());
            }
            _ => {}
        }
        let mut delivered = None;
        if let (AnyOp::User(op), Some(p)) = (&w.op, &w.password) {
            if op.kind == OpKind::Create {
                let issued = IssuedPassword {
                    email: op.email.clone(),
                    upn: op.upn.clone(),
                    password: p.clone(),
                };
                match self.sink.deliver(&issued) {
                    Ok(()) => {
                        delivered = Some(true);
                        self.summary.passwords.push(issued);
                    }
                    Err(e) => {
                        delivered = Some(false);
                        self.summary.passwords_lost.push(op.email.clone());
                        if self.stop.is_none() {
                            tracing::error!(error = %e, sink = %self.sink.describe(), "password sink failed: stopping the run");
                            self.stop = Some(Stopped::SinkFailed(format!(
                                "{}: {e}",
                                self.sink.describe()
                            )));
                        }
                    }
                }
            }
        }
        let _ = self.events.send(ApplyEvent::OpDone {
            op: w.op.clone(),
            tenant_id: tenant_id.clone(),
        });
        self.results[w.idx] = Some(Outcome::Done);
        OpOutcome {
            journal_id: w.jid,
            state: Some(JournalState::Done),
            change,
            request_id: rid.clone(),
            delivered,
            audit: Some(AuditEntry {
                actor: self.opts.actor.clone(),
                action: w.op.kind().audit_name().into(),
                target: w.op.target(),
                request_id: rid,
                outcome: "done".into(),
                // An op that sends nothing says what it recorded and why.
                detail: if w.op.steps() == 0 && !w.op.reason().is_empty() {
                    Some(w.op.reason().to_string())
                } else {
                    (!tenant_id.is_empty()).then(|| format!("object {tenant_id}"))
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn failure(&mut self, w: &Work, e: GraphError) -> OpOutcome {
        self.summary.failed += 1;
        let _ = self.events.send(ApplyEvent::OpFailed {
            op: w.op.clone(),
            error: e.clone(),
        });
        self.results[w.idx] = Some(Outcome::Failed(e.clone()));
        let text = match &e {
            GraphError::Api { code, message, .. } => format!("{code}: {message}"),
            other => other.to_string(),
        };
        OpOutcome {
            journal_id: w.jid,
            state: Some(JournalState::Failed),
            change: w.op.on_failure(&text),
            request_id: e.request_id().map(str::to_string),
            error_code: Some(e.code().to_string()),
            error_message: Some(e.to_string()),
            // A create that never happened delivers nothing, loses nothing.
            delivered: None,
            note: None,
            audit: Some(AuditEntry {
                actor: self.opts.actor.clone(),
                action: w.op.kind().audit_name().into(),
                target: w.op.target(),
                request_id: e.request_id().map(str::to_string),
                outcome: "failed".into(),
                detail: Some(text),
                ..Default::default()
            }),
        }
    }

    /// Record an op that was never sent (cancelled in the journal: planned again if still
    /// wanted).
    fn not_sent(&mut self, idx: usize, jid: i64, why: &str) -> Result<(), Failure> {
        self.summary.cancelled += 1;
        let _ = self.events.send(ApplyEvent::OpNotSent {
            op: self.ops[idx].clone(),
            why: why.to_string(),
        });
        self.results[idx] = Some(Outcome::NotSent(why.to_string()));
        self.db_write(|d| {
            d.record_outcomes(&[OpOutcome {
                journal_id: jid,
                state: Some(JournalState::Cancelled),
                note: Some(why.to_string()),
                ..Default::default()
            }])
        })?;
        self.remaining = self.remaining.saturating_sub(1);
        self.mark_progress();
        Ok(())
    }

    /// Record the outcome of op `idx` and release (or give up) the ops that wait for it.
    fn finish(&mut self, idx: usize, o: OpOutcome) -> Result<(), Failure> {
        let ok = o.state == Some(JournalState::Done);
        self.db_write(|d| d.record_outcomes(std::slice::from_ref(&o)))?;
        self.remaining = self.remaining.saturating_sub(1);
        self.mark_progress();
        let mut stack: Vec<(usize, bool)> = vec![(idx, ok)];
        while let Some((i, ok)) = stack.pop() {
            for d in std::mem::take(&mut self.dependents[i]) {
                if ok {
                    self.waiting_on[d] = self.waiting_on[d].saturating_sub(1);
                    if self.waiting_on[d] == 0 {
                        if let Some(w) = self.parked.remove(&d) {
                            // Into the queue at the start of the next round.
                            self.released.push(w);
                        }
                    }
                } else if let Some(w) = self.parked.remove(&d) {
                    let why = format!(
                        "not sent: {} {} did not succeed",
                        self.ops[i].kind().label(),
                        self.ops[i].target()
                    );
                    self.not_sent(w.idx, w.jid, &why)?;
                    stack.push((d, false));
                }
            }
        }
        Ok(())
    }

    fn mark_progress(&mut self) {
        let now = Instant::now();
        self.last_progress = now;
        self.recent.push_back((now, 1));
        while self
            .recent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(5))
        {
            self.recent.pop_front();
        }
        self.progress();
    }

    fn progress(&self) {
        let span = self
            .recent
            .front()
            .map(|(t, _)| Instant::now().duration_since(*t))
            .unwrap_or_default()
            .max(Duration::from_secs(1))
            .min(
                Instant::now()
                    .duration_since(self.started)
                    .max(Duration::from_millis(100)),
            );
        let n: usize = self.recent.iter().map(|(_, n)| n).sum();
        let _ = self.events.send(ApplyEvent::Progress(ApplyProgress {
            done: self.summary.done,
            failed: self.summary.failed,
            not_sent: self.summary.cancelled,
            remaining: self.remaining,
            throttled: self.summary.throttled,
            rate: n as f64 / span.as_secs_f64(),
        }));
    }
}

/// Run a check against the tenant.
pub(crate) async fn run_check(graph: &GraphClient, check: &Check) -> Result<Found, GraphError> {
    match check {
        Check::User(key) => match graph.get_user(key).await {
            Ok(u) => Ok(Found::User(Some(u))),
            Err(e) if e.status() == Some(404) => Ok(Found::User(None)),
            Err(e) => Err(e),
        },
        Check::Group { name, nickname } => {
            let groups = graph.find_groups_by_nickname(nickname).await?;
            Ok(Found::Group(groups.into_iter().find(|g| {
                g.display_name.as_deref() == Some(name.as_str())
            })))
        }
        Check::Member { group, member } => match graph.list_group_members(group).await {
            Ok(ids) => Ok(Found::Member(ids.iter().any(|id| id == member))),
            Err(e) if e.status() == Some(404) => Ok(Found::Member(false)),
            Err(e) => Err(e),
        },
        Check::Manager(user) => graph.manager_of(user).await.map(Found::Manager),
        Check::Licences(user) => match graph.licences_of(user).await {
            Ok(l) => Ok(Found::Licences(Some(l))),
            Err(e) if e.status() == Some(404) => Ok(Found::Licences(None)),
            Err(e) => Err(e),
        },
        Check::Impossible(_) | Check::NeverSent => Ok(Found::Nothing),
    }
}

pub(crate) fn local_error(code: &str, message: &str) -> GraphError {
    GraphError::Api {
        status: 0,
        code: code.into(),
        message: message.into(),
        request_id: None,
        date: None,
        retry_after: None,
    }
}
