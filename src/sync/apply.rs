//! The apply engine: ops through `POST /$batch` (20 a batch) with bounded, adaptive
//! concurrency; every op journaled before it is sent (planned -> sent -> done | failed);
//! resumable after a crash; every write in the audit log.
//!
//! Throttling: a client-side write limiter never lets more writes out than the budget allows
//! in any window (writes still on the wire count; answered writes are timed at their answer,
//! which is later than the server saw them, so the server's window always frees first). A
//! per-item 429 pauses all sending until its `Retry-After`, halves the batches in flight
//! (AIMD) and re-queues only that item; clean batches grow the window back by one. A 429 also
//! teaches the limiter the real budget: the writes the tenant accepted in the last window
//! (never below a tenth of the configured budget).
//!
//! Ambiguity: when a batch (or an item) may have been applied without us seeing the answer
//! (connection dropped, 5xx, 504), PATCH ops are simply sent again (idempotent) and creates or
//! restores are first checked against the tenant (GET by UPN or id): an account is never
//! created twice.
//!
//! Cancel: no new batch leaves; batches on the wire finish and are recorded. Ops never sent
//! are marked `cancelled` in the journal (a later sync plans them again if still needed);
//! ops whose outcome is unknown stay `unknown`, so the next `resume` checks them first.
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::plan::{mail_nickname, Op, OpKind, Plan};
use crate::directory::{
    AuditEntry, BindingState, Directory, DirectoryUser, JournalState, OpOutcome,
};
use crate::graph::batch::{self, BatchRequest, ItemResult};
use crate::graph::{GraphClient, GraphError, User};

#[derive(Debug, Clone, PartialEq)]
pub struct ApplyOptions {
    pub batch_size: usize,
    pub max_concurrency: usize,
    /// Who applies (the signed-in identity), for the audit log.
    pub actor: String,
    /// The tenant's write budget: writes allowed per `budget_window` (Graph: 3,000 / 150 s).
    pub write_budget: u32,
    pub budget_window: Duration,
    /// Attempts per op before it is failed on 5xx or network errors.
    pub max_attempts: u32,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            batch_size: 20,
            max_concurrency: 4,
            actor: String::new(),
            write_budget: 3_000,
            budget_window: Duration::from_secs(150),
            max_attempts: 10,
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
    /// Accounts a killed run created whose generated password was lost with it: set one with
    /// `m365sync password set`.
    pub passwords_lost: Vec<String>,
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
    let mut db = Directory::open(&db_path)?;
    let run_id = uuid::Uuid::new_v4().to_string();
    let ids = db.journal_insert(&run_id, &plan.ops)?;
    let work = plan
        .ops
        .into_iter()
        .zip(ids)
        .map(|(op, jid)| Work::new(jid, op, false))
        .collect();
    Engine::new(graph, db, opts, events, cancel)?
        .run(work)
        .await
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
    let db = Directory::open(&db_path)?;
    let work = db
        .journal_unfinished()?
        .into_iter()
        .map(|e| Work::new(e.id, e.op, e.state != JournalState::Planned))
        .collect();
    Engine::new(graph, db, opts, events, cancel)?
        .run(work)
        .await
}

/// Set the password of the directory user with `email`: checked against the rules, pushed at
/// once to its account when bound (forceChangePasswordNextSignIn false), and re-enables an
/// account blocked by an expired password. Records password_set_at; never stores the password.
pub async fn set_password(
    graph: GraphClient,
    db_path: PathBuf,
    email: &str,
    password: &str,
    actor: &str,
) -> anyhow::Result<SetPasswordOutcome> {
    super::password::check(password)?;
    let mut db = Directory::open(&db_path)?;
    let user = db
        .find_by_email(email)?
        .ok_or_else(|| anyhow::anyhow!("no directory user has the email {email}"))?;
    let now = crate::directory::now_rfc3339();
    let Some(tenant_id) = user.tenant_user_id.clone().filter(|_| user.want_bound) else {
        db.set_password_set_at(user.id, &now)?;
        db.audit_append(&AuditEntry {
            actor: actor.into(),
            action: "set-password".into(),
            target: user.email.clone(),
            outcome: "recorded".into(),
            detail: Some("not bound: recorded in the directory only".into()),
            ..Default::default()
        })?;
        return Ok(SetPasswordOutcome::RecordedOnly);
    };
    let mut ops = vec![Op {
        kind: OpKind::SetPassword,
        directory_id: user.id,
        email: user.email.clone(),
        display_name: user.display_name.clone(),
        upn: user.email.clone(),
        tenant_user_id: Some(tenant_id.clone()),
        reason: "the admin set a new password".into(),
    }];
    if user.binding == BindingState::Blocked {
        ops.push(Op {
            kind: OpKind::ReEnable,
            reason: "a new password re-enables an account blocked by an expired one".into(),
            ..ops[0].clone()
        });
    }
    let run_id = uuid::Uuid::new_v4().to_string();
    let ids = db.journal_insert(&run_id, &ops)?;
    let mut work: VecDeque<Work> = ops
        .into_iter()
        .zip(ids)
        .map(|(op, jid)| Work::new(jid, op, false))
        .collect();
    work[0].password = Some(password.to_string());
    let (tx, _rx) = mpsc::unbounded_channel();
    let opts = ApplyOptions {
        actor: actor.into(),
        max_concurrency: 1,
        ..Default::default()
    };
    let mut engine = Engine::new(graph, db, opts, tx, CancellationToken::new())?;
    // SetPassword first: re-enable only once the new password is in place.
    let first = work.pop_front().into_iter().collect();
    let s1 = engine.run_keep(first).await?;
    if s1.failed > 0 {
        return Ok(SetPasswordOutcome::Failed(engine.last_error.take()));
    }
    engine.db.set_password_set_at(user.id, &now)?;
    let s2 = engine.run_keep(work).await?;
    if s2.failed > 0 {
        return Ok(SetPasswordOutcome::Failed(engine.last_error.take()));
    }
    Ok(SetPasswordOutcome::Pushed {
        re_enabled: s2.done > 0,
    })
}

#[derive(Debug, Clone, PartialEq)]
pub enum SetPasswordOutcome {
    /// Pushed to the bound account (and the account re-enabled if it was blocked).
    Pushed {
        re_enabled: bool,
    },
    /// No bound account: the directory records when it was set.
    RecordedOnly,
    Failed(Option<GraphError>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The op's (first) write.
    Main,
    /// Restore's second write: enable the restored account.
    Enable,
    /// Check the tenant before sending again (outcome unknown).
    Verify,
}

struct Work {
    jid: i64,
    op: Op,
    step: Step,
    password: Option<String>,
    attempts: u32,
    not_before: Instant,
    /// The password is not the one a killed run used.
    from_resume: bool,
}

impl Work {
    fn new(jid: i64, op: Op, unknown: bool) -> Work {
        let step = match (unknown, op.kind) {
            (true, OpKind::Create | OpKind::Restore) => Step::Verify,
            _ => Step::Main,
        };
        Work {
            jid,
            op,
            step,
            password: None,
            attempts: 0,
            not_before: Instant::now(),
            from_resume: unknown,
        }
    }
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
        self.in_flight -= sent;
        if consumed > 0 {
            self.answered.push_back((at, consumed));
            self.answered_sum += consumed;
        }
    }
}

type BatchOutcome = (Vec<Work>, Result<Vec<ItemResult>, GraphError>);
type VerifyOutcome = (Work, Result<Option<User>, GraphError>);

struct Engine {
    graph: GraphClient,
    db: Directory,
    opts: ApplyOptions,
    events: mpsc::UnboundedSender<ApplyEvent>,
    cancel: CancellationToken,
    users: HashMap<i64, DirectoryUser>,
    limiter: Limiter,
    cwnd: f64,
    hold_until: Instant,
    summary: ApplySummary,
    throttled: usize,
    remaining: usize,
    started: Instant,
    recent: VecDeque<(Instant, usize)>,
    last_error: Option<GraphError>,
}

impl Engine {
    fn new(
        graph: GraphClient,
        db: Directory,
        opts: ApplyOptions,
        events: mpsc::UnboundedSender<ApplyEvent>,
        cancel: CancellationToken,
    ) -> anyhow::Result<Engine> {
        let users = db.users()?.into_iter().map(|u| (u.id, u)).collect();
        let now = Instant::now();
        Ok(Engine {
            graph,
            db,
            limiter: Limiter {
                budget: opts.write_budget.max(1),
                window: opts.budget_window,
                answered: VecDeque::new(),
                answered_sum: 0,
                in_flight: 0,
            },
            cwnd: opts.max_concurrency.max(1) as f64,
            opts,
            events,
            cancel,
            users,
            hold_until: now,
            summary: ApplySummary::default(),
            throttled: 0,
            remaining: 0,
            started: now,
            recent: VecDeque::new(),
            last_error: None,
        })
    }

    async fn run(mut self, work: VecDeque<Work>) -> anyhow::Result<ApplySummary> {
        self.run_keep(work).await?;
        Ok(std::mem::take(&mut self.summary))
    }

    async fn run_keep(&mut self, work: VecDeque<Work>) -> anyhow::Result<ApplySummary> {
        self.summary = ApplySummary::default();
        self.remaining = work.len();
        let mut queue = VecDeque::new();
        let mut verify = VecDeque::new();
        for w in work {
            if w.from_resume && w.op.kind == OpKind::SetPassword {
                // The plaintext lived only in the killed process's memory.
                let err = local_error(
                    "password-not-kept",
                    "the run that was setting this password stopped before it finished; the \
                     password is never stored, so set it again",
                );
                let o = self.failure(&w, err);
                self.finish(vec![o]);
                continue;
            }
            if w.step == Step::Verify {
                verify.push_back(w);
            } else {
                queue.push_back(w);
            }
        }
        self.progress();
        let mut batches: JoinSet<BatchOutcome> = JoinSet::new();
        let mut checks: JoinSet<VerifyOutcome> = JoinSet::new();
        let mut cancelled = false;
        loop {
            if !cancelled && self.cancel.is_cancelled() {
                cancelled = true;
            }
            let now = Instant::now();
            // Checks cost no write: a few at a time.
            while !cancelled && checks.len() < 8 {
                let Some(w) = verify.pop_front() else { break };
                let graph = self.graph.clone();
                checks.spawn(async move {
                    let key = match w.op.kind {
                        OpKind::Create => w.op.upn.clone(),
                        _ => w.op.tenant_user_id.clone().unwrap_or_default(),
                    };
                    let r = match graph.get_user(&key).await {
                        Ok(u) => Ok(Some(u)),
                        Err(e) if e.status() == Some(404) => Ok(None),
                        Err(e) => Err(e),
                    };
                    (w, r)
                });
            }
            let mut wake: Option<Instant> = None;
            if !cancelled {
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
                    for w in &mut picked {
                        if w.op.kind == OpKind::Create && w.password.is_none() {
                            w.password = Some(super::password::generate());
                        }
                        w.attempts += 1;
                    }
                    let jids: Vec<i64> = picked.iter().map(|w| w.jid).collect();
                    self.db.journal_mark(&jids, JournalState::Sent)?;
                    let requests: Vec<BatchRequest> = picked
                        .iter()
                        .enumerate()
                        .map(|(i, w)| self.request(i, w))
                        .collect();
                    self.limiter.in_flight += picked.len() as u32;
                    let graph = self.graph.clone();
                    batches.spawn(async move {
                        let r = batch::send(&graph, &requests).await;
                        (picked, r)
                    });
                }
            }
            if batches.is_empty() && checks.is_empty() {
                if cancelled || (queue.is_empty() && verify.is_empty()) {
                    break;
                }
                if wake.is_none() && verify.is_empty() {
                    // Nothing ready and nothing to wait for: should not happen; avoid a spin.
                    wake = Some(now + Duration::from_millis(50));
                }
            }
            let sleep_until = wake.unwrap_or(now + Duration::from_secs(3600));
            tokio::select! {
                Some(r) = batches.join_next(), if !batches.is_empty() => {
                    let (sent, result) = r?;
                    self.on_batch(sent, result, &mut queue, &mut verify)?;
                }
                Some(r) = checks.join_next(), if !checks.is_empty() => {
                    let (w, result) = r?;
                    self.on_check(w, result, &mut queue, &mut verify)?;
                }
                _ = tokio::time::sleep_until(sleep_until.into()) => {}
                _ = self.cancel.cancelled(), if !cancelled => {}
            }
        }
        // Stopped: what was never sent is cancelled; what may have been applied stays unknown.
        let mut cancelled_ids = Vec::new();
        let mut unknown_ids = Vec::new();
        for w in queue.into_iter().chain(verify) {
            if w.attempts == 0 && w.step != Step::Verify {
                cancelled_ids.push(w.jid);
            } else {
                unknown_ids.push(w.jid);
            }
        }
        self.db
            .journal_mark(&cancelled_ids, JournalState::Cancelled)?;
        self.db.journal_mark(&unknown_ids, JournalState::Unknown)?;
        self.summary.cancelled = cancelled_ids.len() + unknown_ids.len();
        self.remaining = 0;
        self.progress();
        Ok(self.summary.clone())
    }

    fn request(&self, i: usize, w: &Work) -> BatchRequest {
        let id = (i + 1).to_string();
        let target =
            w.op.tenant_user_id
                .clone()
                .unwrap_or_else(|| w.op.upn.clone());
        let user_url = format!("/users/{}", urlencode(&target));
        match (w.op.kind, w.step) {
            (OpKind::Create, _) => {
                let d = self.users.get(&w.op.directory_id);
                let mut body = json!({
                    "accountEnabled": true,
                    "displayName": w.op.display_name,
                    "mailNickname": mail_nickname(&w.op.upn),
                    "userPrincipalName": w.op.upn,
                    "passwordProfile": {
                        "password": w.password.as_deref().unwrap_or_default(),
                        "forceChangePasswordNextSignIn": true,
                    },
                });
                if let Some(d) = d {
                    for (k, v) in [
                        ("givenName", &d.given_name),
                        ("surname", &d.surname),
                        ("jobTitle", &d.job_title),
                        ("department", &d.department),
                    ] {
                        if let Some(v) = v {
                            body[k] = json!(v);
                        }
                    }
                }
                BatchRequest::new(id, Method::POST, "/users").with_body(body)
            }
            (OpKind::Restore, Step::Main) => BatchRequest::new(
                id,
                Method::POST,
                format!("/directory/deletedItems/{}/restore", urlencode(&target)),
            ),
            (OpKind::Block, _) => BatchRequest::new(id, Method::PATCH, user_url)
                .with_body(json!({"accountEnabled": false})),
            (OpKind::SetPassword, _) => BatchRequest::new(id, Method::PATCH, user_url).with_body(
                json!({"passwordProfile": {
                    "password": w.password.as_deref().unwrap_or_default(),
                    "forceChangePasswordNextSignIn": false,
                }}),
            ),
            // Takeover, ReEnable, and Restore's second write.
            _ => BatchRequest::new(id, Method::PATCH, user_url)
                .with_body(json!({"accountEnabled": true})),
        }
    }

    fn on_batch(
        &mut self,
        sent: Vec<Work>,
        result: Result<Vec<ItemResult>, GraphError>,
        queue: &mut VecDeque<Work>,
        verify: &mut VecDeque<Work>,
    ) -> anyhow::Result<()> {
        let now = Instant::now();
        let n = sent.len() as u32;
        let items = match result {
            Ok(items) => items,
            Err(e) => {
                // The whole batch: nothing known about any item.
                let consumed = if e.status() == Some(429) { 0 } else { n };
                self.limiter.answer(n, consumed, now);
                if e.status() == Some(429) {
                    self.throttle(e.retry_after(), now);
                } else {
                    self.cwnd = (self.cwnd / 2.0).max(1.0);
                }
                let mut outcomes = Vec::new();
                for w in sent {
                    if let Some(o) = self.retry_or_fail(w, &e, queue, verify) {
                        outcomes.push(o);
                    }
                }
                self.finish(outcomes);
                return Ok(());
            }
        };
        let mut consumed = 0;
        let mut clean = true;
        let mut outcomes = Vec::new();
        for (mut w, item) in sent.into_iter().zip(items) {
            match item {
                Ok(item) => {
                    consumed += 1;
                    let rid = item.request_id.clone();
                    match (w.op.kind, w.step) {
                        (OpKind::Create, _) => {
                            let id = item
                                .body
                                .get("id")
                                .and_then(|v| v.as_str())
                                .unwrap_or_default()
                                .to_string();
                            outcomes.push(self.success(&w, id, BindingState::Bound, rid));
                        }
                        (OpKind::Restore, Step::Main) => {
                            self.audit_only(&w, "restore", rid, "done");
                            w.step = Step::Enable;
                            w.attempts = 0;
                            queue.push_front(w);
                        }
                        (kind, _) => {
                            let binding = if kind == OpKind::Block {
                                BindingState::Blocked
                            } else {
                                BindingState::Bound
                            };
                            let id = w.op.tenant_user_id.clone().unwrap_or_default();
                            outcomes.push(self.success(&w, id, binding, rid));
                        }
                    }
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
                    if let Some(o) = self.retry_or_fail(w, &e, queue, verify) {
                        outcomes.push(o);
                    }
                }
            }
        }
        self.limiter.answer(n, consumed, now);
        if clean {
            let max = self.opts.max_concurrency.max(1) as f64;
            self.cwnd = (self.cwnd + 1.0).min(max);
        }
        self.finish(outcomes);
        Ok(())
    }

    fn throttle(&mut self, retry_after: Option<Duration>, now: Instant) {
        self.throttled += 1;
        self.cwnd = (self.cwnd / 2.0).max(1.0);
        // The tenant grants less than we were told: what it accepted in the last window is
        // its budget (a floor keeps a transient 429 from starving the run).
        self.limiter.expire(now);
        let accepted = self.limiter.answered_sum;
        let floor = (self.opts.write_budget / 10).max(1);
        if accepted >= floor && accepted < self.limiter.budget {
            self.limiter.budget = accepted;
        }
        let wait = retry_after.unwrap_or(Duration::from_secs(1));
        self.hold_until = self.hold_until.max(now + wait);
    }

    /// Send again, check first, or give up.
    fn retry_or_fail(
        &mut self,
        mut w: Work,
        e: &GraphError,
        queue: &mut VecDeque<Work>,
        verify: &mut VecDeque<Work>,
    ) -> Option<OpOutcome> {
        let status = e.status();
        let throttled = status == Some(429);
        // Could the write have been applied although we got no success?
        let maybe_applied = match e {
            GraphError::Transport(_) | GraphError::Malformed(_) => true,
            GraphError::Api { status, .. } => *status >= 500,
            GraphError::Auth(_) => false,
        };
        let retryable = throttled || maybe_applied || status == Some(503);
        // A create answered "already exists" after an earlier attempt whose outcome is
        // unknown: it was ours.
        let conflict_after_unknown = w.op.kind == OpKind::Create
            && w.attempts > 1
            && status == Some(400)
            && e.to_string().contains("already exists");
        if conflict_after_unknown {
            w.step = Step::Verify;
            verify.push_back(w);
            return None;
        }
        if !retryable || (!throttled && w.attempts >= self.opts.max_attempts) {
            return Some(self.failure(&w, e.clone()));
        }
        if throttled {
            w.attempts = w.attempts.saturating_sub(1);
            w.not_before = self.hold_until;
            queue.push_front(w);
            return None;
        }
        let creates = matches!(
            (w.op.kind, w.step),
            (OpKind::Create, _) | (OpKind::Restore, Step::Main)
        );
        let backoff = self.graph.retry.backoff(w.attempts);
        w.not_before = Instant::now() + backoff.min(Duration::from_secs(10));
        if creates && maybe_applied {
            // Journaled as unknown: if this process dies now, resume checks it first.
            if let Err(e) = self.db.journal_mark(&[w.jid], JournalState::Unknown) {
                tracing::error!(error = %e, "journal");
            }
            w.step = Step::Verify;
            verify.push_back(w);
        } else {
            queue.push_back(w);
        }
        None
    }

    fn on_check(
        &mut self,
        mut w: Work,
        result: Result<Option<User>, GraphError>,
        queue: &mut VecDeque<Work>,
        verify: &mut VecDeque<Work>,
    ) -> anyhow::Result<()> {
        match (w.op.kind, result) {
            (OpKind::Create, Ok(Some(u))) => {
                // It exists: our earlier attempt created it.
                if w.from_resume || w.password.is_none() {
                    self.summary.passwords_lost.push(w.op.email.clone());
                    w.password = None;
                }
                let o = self.success(&w, u.id, BindingState::Bound, None);
                self.finish(vec![o]);
            }
            (OpKind::Create, Ok(None)) => {
                w.step = Step::Main;
                queue.push_back(w);
            }
            (_, Ok(Some(u))) => {
                // Restored (live again): enable it.
                if u.account_enabled == Some(true) {
                    let id = u.id;
                    let o = self.success(&w, id, BindingState::Bound, None);
                    self.finish(vec![o]);
                } else {
                    w.step = Step::Enable;
                    queue.push_back(w);
                }
            }
            (_, Ok(None)) => {
                w.step = Step::Main;
                queue.push_back(w);
            }
            (_, Err(e)) => {
                w.attempts += 1;
                if w.attempts >= self.opts.max_attempts * 2 {
                    let o = self.failure(&w, e);
                    self.finish(vec![o]);
                } else {
                    verify.push_back(w);
                }
            }
        }
        Ok(())
    }

    fn audit_only(&mut self, w: &Work, action: &str, rid: Option<String>, outcome: &str) {
        let entry = AuditEntry {
            actor: self.opts.actor.clone(),
            action: action.into(),
            target: w.op.upn.clone(),
            request_id: rid,
            outcome: outcome.into(),
            detail: w.op.tenant_user_id.clone(),
            ..Default::default()
        };
        if let Err(e) = self.db.audit_append(&entry) {
            tracing::error!(error = %e, "writing the audit log");
        }
    }

    fn success(
        &mut self,
        w: &Work,
        tenant_id: String,
        binding: BindingState,
        rid: Option<String>,
    ) -> OpOutcome {
        self.summary.done += 1;
        let _ = self.events.send(ApplyEvent::OpDone {
            op: w.op.clone(),
            tenant_user_id: tenant_id.clone(),
        });
        if w.op.kind == OpKind::Create {
            if let Some(p) = &w.password {
                let issued = IssuedPassword {
                    email: w.op.email.clone(),
                    upn: w.op.upn.clone(),
                    password: p.clone(),
                };
                let _ = self.events.send(ApplyEvent::PasswordIssued(issued.clone()));
                self.summary.passwords.push(issued);
            }
        }
        OpOutcome {
            journal_id: w.jid,
            state: JournalState::Done,
            directory_id: w.op.directory_id,
            link: (!tenant_id.is_empty()).then(|| (tenant_id.clone(), binding)),
            request_id: rid.clone(),
            error_code: None,
            error_message: None,
            audit: Some(AuditEntry {
                actor: self.opts.actor.clone(),
                action: action_name(w.op.kind).into(),
                target: w.op.upn.clone(),
                request_id: rid,
                outcome: "done".into(),
                detail: Some(format!("account {tenant_id}")),
                ..Default::default()
            }),
        }
    }

    fn failure(&mut self, w: &Work, e: GraphError) -> OpOutcome {
        self.summary.failed += 1;
        self.last_error = Some(e.clone());
        let _ = self.events.send(ApplyEvent::OpFailed {
            op: w.op.clone(),
            error: e.clone(),
        });
        OpOutcome {
            journal_id: w.jid,
            state: JournalState::Failed,
            directory_id: w.op.directory_id,
            link: None,
            request_id: e.request_id().map(str::to_string),
            error_code: Some(e.code().to_string()),
            error_message: Some(e.to_string()),
            audit: Some(AuditEntry {
                actor: self.opts.actor.clone(),
                action: action_name(w.op.kind).into(),
                target: w.op.upn.clone(),
                request_id: e.request_id().map(str::to_string),
                outcome: "failed".into(),
                detail: Some(e.to_string()),
                ..Default::default()
            }),
        }
    }

    fn finish(&mut self, outcomes: Vec<OpOutcome>) {
        if outcomes.is_empty() {
            return;
        }
        self.remaining = self.remaining.saturating_sub(outcomes.len());
        if let Err(e) = self.db.record_outcomes(&outcomes) {
            tracing::error!(error = %e, "recording outcomes");
        }
        let now = Instant::now();
        self.recent.push_back((now, outcomes.len()));
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
            remaining: self.remaining,
            throttled: self.throttled,
            rate: n as f64 / span.as_secs_f64(),
        }));
    }
}

fn action_name(kind: OpKind) -> &'static str {
    match kind {
        OpKind::Create => "create",
        OpKind::Takeover => "takeover",
        OpKind::Restore => "restore",
        OpKind::ReEnable => "re-enable",
        OpKind::Block => "block",
        OpKind::SetPassword => "set-password",
    }
}

fn local_error(code: &str, message: &str) -> GraphError {
    GraphError::Api {
        status: 0,
        code: code.into(),
        message: message.into(),
        request_id: None,
        date: None,
        retry_after: None,
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The tenant as the plan needs it: every user, the soft-deleted users, the domains.
pub async fn snapshot(graph: &GraphClient) -> Result<super::plan::TenantSnapshot, GraphError> {
    use futures::StreamExt;
    let mut snap = super::plan::TenantSnapshot::default();
    let mut pages = graph.list_users(999);
    while let Some(p) = pages.next().await {
        snap.pages.push(std::sync::Arc::new(p?));
    }
    (snap.deleted, snap.domains) = deleted_and_domains(graph).await?;
    Ok(snap)
}

/// What a snapshot needs besides the live users (which the TUI has already listed): the
/// soft-deleted users (their addresses are still held) and the domains.
pub async fn deleted_and_domains(
    graph: &GraphClient,
) -> Result<(Vec<crate::graph::User>, Vec<crate::graph::Domain>), GraphError> {
    use futures::StreamExt;
    let mut deleted_users = Vec::new();
    let mut deleted = graph.pages::<crate::graph::DeletedUser>(format!(
        "{}/directory/deletedItems/microsoft.graph.user?$select={}&$top=999",
        graph.base(),
        crate::graph::model::USER_SELECT.join(",")
    ));
    while let Some(p) = deleted.next().await {
        deleted_users.extend(p?.into_iter().map(|d| d.user));
    }
    Ok((deleted_users, graph.list_domains().await?))
}
