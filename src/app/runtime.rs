//! The loop: `select!` over terminal events, the action channel, a one-second tick and the
//! next draw. Each Effect runs on tokio (blocking SQLite work on `spawn_blocking`) and reports
//! back with Actions; the loop never awaits I/O itself. It draws only when `update` marked the
//! state dirty, at most once per 10 ms, after draining the actions already queued: bursts of
//! pages cost one frame, an idle screen costs nothing (this matters over SSH).
use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use ratatui::backend::Backend;
use ratatui::Terminal;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::auth::{AuthError, Authenticator, Session, TokenCache};
use crate::config::Settings;
use crate::directory::{Directory, DirectoryIndex, ImportStatus};
use crate::graph::{GraphClient, GraphError, User};

use crate::diagnose::{Operation, Subject};
use crate::failure::Failure;
use crate::graph::ListingEvent;
use crate::snapshot::{RefreshError, RefreshOptions, Snapshot, SnapshotError, SnapshotStore};
use crate::sync::apply::{ApplyEvent, ApplyOptions, EventSink, WriteBudget};
use crate::sync::pipeline::{Me, Pipeline, PlanView};
use crate::sync::plan::TenantSnapshot;

use super::action::{Action, DirectorySnapshot, RefreshNews};
use super::effect::{Effect, ExportFormat, Fix};
use super::explain::ErrorEntry;
use super::state::{AppState, SessionInfo};
use super::update::{key_action, update};

/// Shortest time between two frames.
const FRAME_GAP: Duration = Duration::from_millis(10);

/// The write budget the console plans and applies with (Graph's, `sync::apply`).
pub const BUDGET: WriteBudget = super::dialogs::preview::BUDGET;

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The parts of the pipeline an effect's task takes along.
struct PipelineSource {
    settings: Settings,
    http: Option<reqwest::Client>,
    session: Option<Arc<Session>>,
}

impl PipelineSource {
    /// The pipeline of the signed-in session (None: not signed in).
    async fn pipeline(self) -> Option<Pipeline> {
        let session = self.session?;
        let http = self.http?;
        let name = session.identity().await.name;
        Some(Pipeline {
            graph: GraphClient::new(http, &self.settings.graph_url, session),
            data_dir: self.settings.data_dir.clone(),
            db_path: self.settings.db_path(),
            tenant: self.settings.tenant.clone().unwrap_or_default(),
            me: Me::from_identity(&name, self.settings.service_account.as_deref()),
            budget: BUDGET,
        })
    }
}

fn not_signed_in() -> Failure {
    Failure::Auth(AuthError::Config("not signed in".into()))
}

/// The handles effects need. Owned by the loop, never by the state.
pub struct Services {
    settings: Settings,
    http: Option<reqwest::Client>,
    session: Arc<Mutex<Option<Arc<Session>>>>,
    tx: mpsc::UnboundedSender<Action>,
    load_task: Option<AbortHandle>,
    signin_task: Option<AbortHandle>,
    /// Cancels the running apply (stops sending new ops).
    apply_cancel: Option<CancellationToken>,
    /// Where OSC 52 sequences go: the terminal (stdout), or a buffer in tests.
    clipboard: Box<dyn Write + Send>,
    /// The tenant snapshot the rows on screen come from; held by a refresh (or the round
    /// before an apply) while it runs, so refreshes never overlap.
    snapshot: Arc<tokio::sync::Mutex<Option<Snapshot>>>,
    /// The generation of the last load asked for: the rows a round before an apply brings
    /// are of it.
    load_gen: Arc<AtomicU64>,
    /// The directory index of the last load asked for, and its version.
    index: Arc<Mutex<(Arc<DirectoryIndex>, u64)>>,
}

impl Services {
    pub fn new(
        settings: Settings,
        http: Option<reqwest::Client>,
        tx: mpsc::UnboundedSender<Action>,
    ) -> Self {
        Services {
            settings,
            http,
            session: Arc::new(Mutex::new(None)),
            tx,
            load_task: None,
            signin_task: None,
            apply_cancel: None,
            clipboard: Box::new(std::io::stdout()),
            snapshot: Arc::new(tokio::sync::Mutex::new(None)),
            load_gen: Arc::new(AtomicU64::new(0)),
            index: Arc::new(Mutex::new((Arc::new(DirectoryIndex::default()), 0))),
        }
    }

    /// Sends OSC 52 clipboard sequences to `w` instead of the terminal.
    pub fn with_clipboard(mut self, w: Box<dyn Write + Send>) -> Self {
        self.clipboard = w;
        self
    }

    fn graph(&self) -> Option<GraphClient> {
        match (self.http.clone(), self.session()) {
            (Some(http), Some(s)) => Some(GraphClient::new(http, &self.settings.graph_url, s)),
            _ => None,
        }
    }

    /// What an effect's task needs to build the pipeline of the signed-in session.
    fn pipeline_source(&self) -> PipelineSource {
        PipelineSource {
            settings: self.settings.clone(),
            http: self.http.clone(),
            session: self.session(),
        }
    }

    /// What a task needs to open this tenant's snapshot (opened off the UI thread).
    fn snapshot_source(&self) -> SnapshotSource {
        SnapshotSource {
            data_dir: self.settings.data_dir.clone(),
            tenant: self.settings.tenant.clone().unwrap_or_default(),
            slot: self.snapshot.clone(),
            load_gen: self.load_gen.clone(),
            index: self.index.clone(),
            tx: self.tx.clone(),
        }
    }

    fn authenticator(&self) -> Result<Authenticator, AuthError> {
        let http = self
            .http
            .clone()
            .ok_or_else(|| AuthError::Config("no HTTP client".into()))?;
        let tenant = self
            .settings
            .tenant()
            .map_err(|e| AuthError::Config(e.to_string()))?;
        let client = self
            .settings
            .client_id()
            .map_err(|e| AuthError::Config(e.to_string()))?;
        Ok(Authenticator::new(
            http,
            &self.settings.authority,
            tenant,
            client,
        ))
    }

    fn cache(&self) -> TokenCache {
        let tenant = self.settings.tenant.clone().unwrap_or_default();
        TokenCache::new(self.settings.token_cache_path(&tenant))
    }

    fn session(&self) -> Option<Arc<Session>> {
        self.session.lock().ok().and_then(|s| s.clone())
    }

    /// Spawns `fut` and sends its action; a panic in it becomes `on_panic`'s action instead of
    /// a screen stuck on "loading".
    fn spawn<F>(
        &self,
        fut: F,
        on_panic: impl FnOnce(Failure) -> Action + Send + 'static,
    ) -> AbortHandle
    where
        F: Future<Output = Action> + Send + 'static,
    {
        let tx = self.tx.clone();
        let handle = tokio::spawn(fut);
        let abort = handle.abort_handle();
        tokio::spawn(async move {
            match handle.await {
                Ok(a) => {
                    let _ = tx.send(a);
                }
                Err(e) if e.is_panic() => {
                    let _ = tx.send(on_panic(Failure::join(e)));
                }
                Err(_) => {} // aborted: a newer request replaced it
            }
        });
        abort
    }

    pub fn run(&mut self, effect: Effect) {
        match effect {
            Effect::ResumeSession { gen } => {
                let auth = self.authenticator();
                let cache = self.cache();
                let slot = self.session.clone();
                self.spawn(
                    async move {
                        let result = async {
                            let Some(s) = Session::resume(auth?, cache, None)? else {
                                return Ok(None);
                            };
                            s.access_token(false).await?;
                            let info = SessionInfo {
                                identity: s.identity().await,
                                expires_at: s.expires_at().await,
                            };
                            *slot.lock().expect("session slot") = Some(s);
                            Ok(Some(info))
                        }
                        .await;
                        Action::SessionResumed { gen, result }
                    },
                    move |m| Action::SessionResumed {
                        gen,
                        result: Err(AuthError::Malformed(m.to_string())),
                    },
                );
            }
            Effect::StartDeviceCode { gen } => {
                let auth = self.authenticator();
                if let Some(t) = self.signin_task.take() {
                    t.abort();
                }
                self.signin_task = Some(self.spawn(
                    async move {
                        let result = match auth {
                            Ok(a) => a.start_device_code().await,
                            Err(e) => Err(e),
                        };
                        Action::DeviceCode { gen, result }
                    },
                    move |m| Action::DeviceCode {
                        gen,
                        result: Err(AuthError::Malformed(m.to_string())),
                    },
                ));
            }
            Effect::PollDeviceCode { gen, start } => {
                let auth = self.authenticator();
                let cache = self.cache();
                let slot = self.session.clone();
                self.signin_task = Some(self.spawn(
                    async move {
                        let result = async {
                            let auth = auth?;
                            let tokens = auth.poll_device_code(&start).await?;
                            let s = Session::start(auth, cache, tokens, None)?;
                            let info = SessionInfo {
                                identity: s.identity().await,
                                expires_at: s.expires_at().await,
                            };
                            *slot.lock().expect("session slot") = Some(s);
                            Ok(info)
                        }
                        .await;
                        Action::SignedIn { gen, result }
                    },
                    move |m| Action::SignedIn {
                        gen,
                        result: Err(AuthError::Malformed(m.to_string())),
                    },
                ));
            }
            Effect::RefreshSessionInfo => {
                if let Some(s) = self.session() {
                    let tx = self.tx.clone();
                    tokio::spawn(async move {
                        let info = SessionInfo {
                            identity: s.identity().await,
                            expires_at: s.expires_at().await,
                        };
                        let _ = tx.send(Action::Session(info));
                    });
                }
            }
            Effect::LoadDirectory => {
                let path = self.settings.db_path();
                self.spawn(
                    async move {
                        let r = crate::failure::blocking("reading the directory", move || {
                            let d = Directory::open(&path)?;
                            Ok(DirectorySnapshot {
                                users: d.users()?,
                                index: Arc::new(d.index()?),
                                failures: d.failures()?,
                                groups: d.groups()?,
                                undelivered: d.passwords_undelivered()?,
                                journal_failures: crate::sync::pipeline::journal_failures(
                                    &d.journal_latest()?,
                                ),
                                upn_overrides: d.upn_overrides()?,
                            })
                        })
                        .await;
                        Action::DirectoryLoaded(r)
                    },
                    |m| Action::DirectoryLoaded(Err(m)),
                );
            }
            Effect::LoadUsers {
                gen,
                page_size,
                index,
                index_version,
                full,
            } => {
                if let Some(t) = self.load_task.take() {
                    t.abort(); // latest wins
                }
                self.load_gen.store(gen, Ordering::Relaxed);
                if let Ok(mut i) = self.index.lock() {
                    *i = (index.clone(), index_version);
                }
                let graph = self.graph();
                let source = self.snapshot_source();
                let tx = self.tx.clone();
                self.load_task = Some(self.spawn(
                    async move {
                        let Some(graph) = graph else {
                            return Action::UsersFailed {
                                gen,
                                error: GraphError::Auth("no session".into()),
                            };
                        };
                        let load = Load {
                            gen,
                            index,
                            index_version,
                        };
                        match source.open().await {
                            Ok(store) => refresh_users(&graph, &store, &source, load, full).await,
                            Err(e) => {
                                // A data dir this user cannot write: list without a copy.
                                tracing::warn!(error = %e, "no tenant snapshot: listing");
                                stream_users(&graph, page_size, load, &tx).await
                            }
                        }
                    },
                    move |m| Action::UsersFailed {
                        gen,
                        error: GraphError::Malformed(m.to_string()),
                    },
                ));
            }
            Effect::CancelLoad => {
                if let Some(t) = self.load_task.take() {
                    t.abort();
                }
            }
            Effect::Reclassify {
                gen,
                index_version,
                first_row,
                pages,
                index,
            } => {
                self.spawn(
                    async move {
                        let statuses = tokio::task::spawn_blocking(move || {
                            pages.iter().flat_map(|p| classify(&index, p)).collect()
                        })
                        .await
                        .unwrap_or_default();
                        Action::Reclassified {
                            gen,
                            index_version,
                            first_row,
                            statuses,
                        }
                    },
                    move |_| Action::Reclassified {
                        gen,
                        index_version,
                        first_row,
                        statuses: Vec::new(),
                    },
                );
            }
            Effect::SortRows {
                gen,
                key,
                pages,
                statuses,
            } => {
                self.spawn(
                    async move {
                        let order = tokio::task::spawn_blocking(move || {
                            super::tabs::import::sort_order(&pages, &statuses, key)
                        })
                        .await
                        .unwrap_or_default();
                        Action::RowsSorted { gen, key, order }
                    },
                    move |_| Action::RowsSorted {
                        gen,
                        key,
                        order: Vec::new(),
                    },
                );
            }
            Effect::Import { users } => {
                let path = self.settings.db_path();
                self.spawn(
                    async move {
                        let r = crate::failure::blocking("importing users", move || {
                            Directory::open(&path)?.import(&users)
                        })
                        .await;
                        Action::ImportDone(r)
                    },
                    |m| Action::ImportDone(Err(m)),
                );
            }
            Effect::SetWant { ids, bound } => {
                let path = self.settings.db_path();
                self.spawn(
                    async move {
                        let r =
                            crate::failure::blocking("recording the desired bindings", move || {
                                Directory::open(&path)?.set_want(&ids, bound)
                            })
                            .await;
                        Action::WantSaved(r)
                    },
                    |m| Action::WantSaved(Err(m)),
                );
            }
            Effect::SetGroupWant { ids, bound } => {
                let path = self.settings.db_path();
                self.spawn(
                    async move {
                        let r =
                            crate::failure::blocking("recording the desired bindings", move || {
                                Directory::open(&path)?.set_group_want(&ids, bound)
                            })
                            .await;
                        Action::WantSaved(r)
                    },
                    |m| Action::WantSaved(Err(m)),
                );
            }
            Effect::Plan {
                gen,
                pages,
                extras,
                now,
            } => {
                let services = self.pipeline_source();
                self.spawn(
                    async move {
                        let Some(pipeline) = services.pipeline().await else {
                            return Action::PlanReady {
                                gen,
                                result: Err(not_signed_in()),
                            };
                        };
                        // The live users are the pages on screen (shared, not copied), with
                        // the deleted users and domains of the same snapshot (read now for
                        // rows listed without one: a tenant always has a domain).
                        let result = async {
                            let tenant = if extras.domains.is_empty() {
                                crate::sync::pipeline::with_deleted_and_domains(
                                    &pipeline.graph,
                                    pages,
                                )
                                .await?
                            } else {
                                TenantSnapshot {
                                    pages,
                                    deleted: extras.deleted.clone(),
                                    domains: extras.domains.clone(),
                                }
                            };
                            pipeline.prepare(None, Some(tenant), now).await
                        }
                        .await
                        .map(Box::new);
                        Action::PlanReady { gen, result }
                    },
                    move |m| Action::PlanReady {
                        gen,
                        result: Err(m),
                    },
                );
            }
            Effect::Apply { view, confirm } => {
                let cancel = CancellationToken::new();
                self.apply_cancel = Some(cancel.clone());
                let tx = self.tx.clone();
                let services = self.pipeline_source();
                let source = self.snapshot_source();
                self.spawn(
                    async move {
                        let Some(pipeline) = services.pipeline().await else {
                            return Action::ApplyFinished(Err(not_signed_in()));
                        };
                        let lock = match pipeline.lock("console apply") {
                            Ok(l) => l,
                            Err(e) => return Action::ApplyFinished(Err(e)),
                        };
                        // A delta round first, under the lock: nothing is sent on stale data.
                        // When the tenant changed the plan, nothing is sent: the new plan
                        // goes back to the preview.
                        let view = match round_before_apply(&pipeline, &lock, &source, *view).await
                        {
                            Ok(Ok(view)) => Box::new(view),
                            Ok(Err((view, round))) => {
                                return Action::ApplyReplanned {
                                    view: Box::new(view),
                                    round,
                                }
                            }
                            Err(e) => return Action::ApplyFinished(Err(e)),
                        };
                        let (etx, mut erx) = mpsc::unbounded_channel::<ApplyEvent>();
                        let forward = tokio::spawn(async move {
                            while let Some(ev) = erx.recv().await {
                                let _ = tx.send(Action::Apply(ev.into()));
                            }
                        });
                        // Passwords go to the passwords view as each account is created.
                        let sink = Box::new(EventSink(etx.clone()));
                        let result = pipeline
                            .apply(
                                &lock,
                                &view,
                                &confirm,
                                ApplyOptions::default(),
                                sink,
                                etx,
                                cancel,
                            )
                            .await;
                        drop(lock);
                        // Every event is delivered before the run is said to be finished.
                        let _ = forward.await;
                        Action::ApplyFinished(result)
                    },
                    |m| Action::ApplyFinished(Err(m)),
                );
            }
            Effect::CheckJournal => {
                let services = self.pipeline_source();
                self.spawn(
                    async move {
                        let Some(pipeline) = services.pipeline().await else {
                            return Action::JournalChecked(Err(not_signed_in()));
                        };
                        // Under the lock: a live run's journal is not a dead one's. Another
                        // apply running: nothing to check now (its own run records it).
                        let lock = match pipeline.lock("console (checking the journal)") {
                            Ok(l) => l,
                            Err(Failure::Locked(_)) => {
                                return Action::JournalChecked(Ok(Vec::new()))
                            }
                            Err(e) => return Action::JournalChecked(Err(e)),
                        };
                        let r = crate::sync::reconcile::reconcile(
                            &pipeline.graph,
                            pipeline.db_path.clone(),
                            &pipeline.me.actor,
                        )
                        .await;
                        drop(lock);
                        Action::JournalChecked(r)
                    },
                    |m| Action::JournalChecked(Err(m)),
                );
            }
            Effect::CancelApply => {
                if let Some(c) = &self.apply_cancel {
                    c.cancel();
                }
            }
            Effect::SetPassword {
                directory_id: _,
                email,
                password,
                actor: _,
            } => {
                let services = self.pipeline_source();
                let who = email.clone();
                self.spawn(
                    async move {
                        let result = set_password(services, &email, password.0).await;
                        Action::PasswordSet { email, result }
                    },
                    move |m| Action::PasswordSet {
                        email: who,
                        result: Err(m),
                    },
                );
            }
            Effect::Osc52 { text } => {
                use base64::Engine as _;
                let b64 = base64::engine::general_purpose::STANDARD.encode(text.0.as_bytes());
                let _ = write!(self.clipboard, "\x1b]52;c;{b64}\x07");
                let _ = self.clipboard.flush();
            }
            Effect::WriteHandoff { passwords } => {
                let dir = self.settings.data_dir.clone();
                self.spawn(
                    async move {
                        let r = tokio::task::spawn_blocking(move || {
                            write_handoff(&dir, &passwords).map_err(|m| Failure::file(&dir, m))
                        })
                        .await
                        .map_err(Failure::join)
                        .and_then(|r| r);
                        Action::HandoffWritten(r)
                    },
                    |m| Action::HandoffWritten(Err(m)),
                );
            }
            Effect::Fix { fix, key } => {
                let services = self.pipeline_source();
                let db = self.settings.db_path();
                self.spawn(
                    async move {
                        let result = run_fix(fix, db, services.pipeline().await).await;
                        Action::FixDone { key, result }
                    },
                    |m| Action::FixDone {
                        key: None,
                        result: Err(m),
                    },
                );
            }
            Effect::ExportErrors { format, errors } => {
                let dir = self.settings.data_dir.clone();
                self.spawn(
                    async move {
                        let r = tokio::task::spawn_blocking(move || {
                            export_errors(&dir, format, &errors).map_err(|m| Failure::file(&dir, m))
                        })
                        .await
                        .map_err(Failure::join)
                        .and_then(|r| r);
                        Action::Exported(r)
                    },
                    |m| Action::Exported(Err(m)),
                );
            }
            Effect::LoadDomains { tenant } => {
                let db = self.settings.db_path();
                let graph = self.graph();
                self.spawn(
                    async move {
                        let Some(graph) = graph else {
                            return Action::DomainsLoaded(Err(not_signed_in()));
                        };
                        let domains = match graph.list_domains().await {
                            Ok(d) => d,
                            Err(e) => {
                                return Action::DomainsLoaded(Err(Failure::graph(
                                    Operation::ListDomains,
                                    Subject::None,
                                    e,
                                )))
                            }
                        };
                        let r =
                            crate::failure::blocking("reading the domain settings", move || {
                                Directory::open(&db)?.domain_settings(&tenant)
                            })
                            .await;
                        Action::DomainsLoaded(r.map(|s| (domains, s)))
                    },
                    |m| Action::DomainsLoaded(Err(m)),
                );
            }
            Effect::SaveDomains { tenant, settings } => {
                let db = self.settings.db_path();
                self.spawn(
                    async move {
                        let r = crate::failure::blocking("saving the domain settings", move || {
                            Directory::open(&db)?.set_domain_settings(&tenant, &settings)
                        })
                        .await;
                        Action::DomainsSaved(r)
                    },
                    |m| Action::DomainsSaved(Err(m)),
                );
            }
            Effect::Disconnect => {
                let db = self.settings.db_path();
                let data_dir = self.settings.data_dir.clone();
                let tenant = self.settings.tenant.clone().unwrap_or_default();
                let cache = self.cache();
                let slot = self.session.clone();
                if let Some(t) = self.load_task.take() {
                    t.abort();
                }
                self.spawn(
                    async move {
                        let r = tokio::task::spawn_blocking(move || -> Result<(), Failure> {
                            // Every wish and link forgotten: no later sync touches the tenant;
                            // the M365 accounts are left exactly as they are.
                            Directory::open(&db)
                                .and_then(|mut d| d.disconnect())
                                .map_err(|e| Failure::directory("disconnecting", e))?;
                            cache.clear().map_err(|e| Failure::file(&cache.path, e))?;
                            // The saved copy of the tenant's users goes too.
                            crate::snapshot::remove(&data_dir, &tenant).map_err(|e| {
                                Failure::file(&crate::snapshot::path_for(&data_dir, &tenant), e)
                            })?;
                            if let Ok(mut s) = slot.lock() {
                                *s = None;
                            }
                            Ok(())
                        })
                        .await
                        .map_err(Failure::join)
                        .and_then(|r| r);
                        Action::Disconnected(r)
                    },
                    |m| Action::Disconnected(Err(m)),
                );
            }
            Effect::LoadLicences => {
                let services = self.pipeline_source();
                self.spawn(
                    async move {
                        let Some(pipeline) = services.pipeline().await else {
                            return Action::LicencesLoaded(Err(not_signed_in()));
                        };
                        let now = time::OffsetDateTime::now_utc().unix_timestamp();
                        Action::LicencesLoaded(
                            pipeline.licence_report(now).await.map(|(r, _)| Box::new(r)),
                        )
                    },
                    |m| Action::LicencesLoaded(Err(m)),
                );
            }
            Effect::ChangeLicence {
                owner,
                name,
                change,
            } => {
                let db = self.settings.db_path();
                self.spawn(
                    async move {
                        Action::LicenceChanged(
                            crate::failure::blocking("recording the licence", move || {
                                Directory::open(&db)?.change_licence(owner, &name, &change)
                            })
                            .await,
                        )
                    },
                    |m| Action::LicenceChanged(Err(m)),
                );
            }
        }
    }
}

/// The console's password set: pushed at once to a bound account (under the apply lock),
/// recorded only for an unbound user.
async fn set_password(
    services: PipelineSource,
    email: &str,
    password: String,
) -> Result<super::action::PasswordOutcome, Failure> {
    use super::action::PasswordOutcome;
    use crate::sync::apply::SetPasswordOutcome;
    let Some(pipeline) = services.pipeline().await else {
        return Err(not_signed_in());
    };
    let _lock = pipeline.lock("console password set")?;
    match crate::sync::apply::set_password(
        pipeline.graph.clone(),
        pipeline.db_path.clone(),
        email,
        &password,
        &pipeline.me.actor,
    )
    .await?
    {
        SetPasswordOutcome::Pushed { re_enabled, .. } => Ok(PasswordOutcome::Pushed { re_enabled }),
        SetPasswordOutcome::RecordedOnly => Ok(PasswordOutcome::RecordedOnly),
        SetPasswordOutcome::Failed(e) => Err(Failure::graph(
            Operation::SetPassword,
            Subject::User(email.to_string()),
            e,
        )),
    }
}

/// A directory write of a fix, run on the blocking pool.
type DirectoryFix =
    Box<dyn FnOnce(&mut Directory) -> Result<String, crate::directory::DirectoryError> + Send>;

/// Carry out a one-key fix (what `Effect::Fix` runs); Ok = what changed, in words. A fix that
/// writes to the tenant (restore, purge) takes the apply lock.
pub async fn run_fix(
    fix: Fix,
    db: std::path::PathBuf,
    pipeline: Option<Pipeline>,
) -> Result<String, Failure> {
    let blocking = |f: DirectoryFix| {
        let db = db.clone();
        crate::failure::blocking("applying the fix", move || f(&mut Directory::open(&db)?))
    };
    match fix {
        Fix::SetEmail {
            directory_id,
            email,
        } => {
            blocking(Box::new(move |d| {
                d.set_email(directory_id, &email)?;
                Ok(format!("Email changed to {email}."))
            }))
            .await
        }
        Fix::UseDefaultDomain { directory_id, upn } => {
            blocking(Box::new(move |d| {
                d.set_upn_override(directory_id, Some(&upn))?;
                Ok(format!("The account will be created as {upn}."))
            }))
            .await
        }
        Fix::Link {
            directory_id,
            tenant_user_id,
        } => {
            let pipeline = pipeline.ok_or_else(not_signed_in)?;
            let user: User = pipeline
                .graph
                .get_user(&tenant_user_id)
                .await
                .map_err(|e| {
                    Failure::graph(
                        Operation::ListUsers,
                        Subject::User(tenant_user_id.clone()),
                        e,
                    )
                })?;
            blocking(Box::new(move |d| {
                d.link(directory_id, &user)?;
                Ok(format!("Linked {}.", user.user_principal_name))
            }))
            .await
        }
        Fix::RestoreDeleted { address } => {
            let pipeline = pipeline.ok_or_else(not_signed_in)?;
            let _lock = pipeline.lock("console fix (restore)")?;
            let id = deleted_id(&pipeline.graph, &address).await?;
            pipeline
                .graph
                .restore_deleted(&id)
                .await
                .map(drop)
                .map_err(|e| {
                    Failure::graph(Operation::RestoreUser, Subject::User(address.clone()), e)
                })?;
            Ok(format!("Restored the deleted account {address}."))
        }
        Fix::PurgeDeleted { address } => {
            let pipeline = pipeline.ok_or_else(not_signed_in)?;
            let _lock = pipeline.lock("console fix (purge)")?;
            let id = deleted_id(&pipeline.graph, &address).await?;
            pipeline.graph.purge_deleted(&id).await.map_err(|e| {
                Failure::graph(
                    Operation::PurgeDeletedUser,
                    Subject::User(address.clone()),
                    e,
                )
            })?;
            Ok(format!(
                "Permanently deleted {address}; the address is free."
            ))
        }
        Fix::SetGroupNickname { group_id, nickname } => {
            blocking(Box::new(move |d| {
                d.set_group_nickname(group_id, Some(&nickname))?;
                Ok(format!("The group will be provisioned as {nickname}."))
            }))
            .await
        }
        Fix::SetUsageLocation { directory_id, code } => {
            blocking(Box::new(move |d| {
                d.set_attributes(
                    directory_id,
                    &[("usageLocation".to_string(), Some(code.clone()))],
                )?;
                Ok(format!(
                    "Usage location set to {code}; the next sync sends it to the account."
                ))
            }))
            .await
        }
        Fix::SetGroupName { group_id, name } => {
            blocking(Box::new(move |d| {
                d.rename_group(group_id, &name)?;
                Ok(format!("The group is now named \"{name}\"."))
            }))
            .await
        }
    }
}

/// The id of the soft-deleted user whose UPN or mail is `address`.
async fn deleted_id(graph: &GraphClient, address: &str) -> Result<String, Failure> {
    let deleted = graph.list_deleted_users().await.map_err(|e| {
        Failure::graph(
            Operation::ListDeletedUsers,
            Subject::User(address.into()),
            e,
        )
    })?;
    deleted
        .into_iter()
        .map(|d| d.user)
        .find(|u| {
            u.user_principal_name.eq_ignore_ascii_case(address)
                || u.mail
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(address))
        })
        .map(|u| u.id)
        .ok_or_else(|| Failure::Invalid(format!("no soft-deleted user holds {address} any more")))
}

/// Write `errors` to `errors-<unix time>.csv|json` in `dir`, mode 0600; returns the path.
pub fn export_errors(
    dir: &std::path::Path,
    format: ExportFormat,
    errors: &[ErrorEntry],
) -> Result<String, String> {
    let ext = match format {
        ExportFormat::Csv => "csv",
        ExportFormat::Json => "json",
    };
    let (path, file) = create_private_file(dir, "errors", ext)?;
    let io = |e: String| format!("{}: {e}", path.display());
    match format {
        ExportFormat::Json => {
            let rows: Vec<serde_json::Value> = errors
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "source": e.source.label(),
                        "subject": e.subject,
                        "diagnosis": e.diag,
                    })
                })
                .collect();
            let mut f = std::io::BufWriter::new(file);
            serde_json::to_writer_pretty(&mut f, &rows).map_err(|e| io(e.to_string()))?;
            f.flush().map_err(|e| io(e.to_string()))?;
        }
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(file);
            // Every cell spreadsheet-safe: Graph's messages and the subjects are not ours.
            crate::csvsafe::write_row(
                &mut w,
                [
                    "kind",
                    "title",
                    "source",
                    "subject",
                    "what",
                    "why",
                    "steps",
                    "fixes",
                    "permission",
                    "status",
                    "code",
                    "message",
                    "request_id",
                    "trace_id",
                    "date",
                ],
            )
            .map_err(|e| io(e.to_string()))?;
            for e in errors {
                let d = &e.diag;
                let fixes: Vec<&str> = d.fixes().iter().map(|f| f.id()).collect();
                crate::csvsafe::write_row(
                    &mut w,
                    [
                        d.kind.as_str(),
                        &d.title,
                        e.source.label(),
                        d.subject.name(),
                        &d.what,
                        &d.why,
                        &d.numbered_steps().join("\n"),
                        &fixes.join(";"),
                        d.permission.as_deref().unwrap_or(""),
                        &e.status.map(|s| s.to_string()).unwrap_or_default(),
                        &e.code,
                        &e.message,
                        e.request_id.as_deref().unwrap_or(""),
                        e.trace_id.as_deref().unwrap_or(""),
                        e.at.as_deref().unwrap_or(""),
                    ],
                )
                .map_err(|e| io(e.to_string()))?;
            }
            w.flush().map_err(|e| io(e.to_string()))?;
        }
    }
    Ok(path.display().to_string())
}

pub fn write_handoff(
    dir: &std::path::Path,
    passwords: &[crate::sync::apply::IssuedPassword],
) -> Result<String, String> {
    let (path, file) = create_private_file(dir, "handoff", "csv")?;
    let mut w = csv::Writer::from_writer(file);
    let io = |e: csv::Error| format!("{}: {e}", path.display());
    // The same header and spreadsheet-safe cells as `sync --apply --handoff`.
    crate::csvsafe::write_row(&mut w, crate::handoff::HEADER).map_err(io)?;
    for p in passwords {
        crate::csvsafe::write_row(&mut w, [&p.email, &p.upn, &p.password]).map_err(io)?;
    }
    let file = w
        .into_inner()
        .map_err(|e| format!("{}: {}", path.display(), e.error()))?;
    file.sync_data()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path.display().to_string())
}

/// What a task needs of the tenant snapshot: where it is, the copy held, where news goes.
struct SnapshotSource {
    data_dir: std::path::PathBuf,
    tenant: String,
    slot: Arc<tokio::sync::Mutex<Option<Snapshot>>>,
    load_gen: Arc<AtomicU64>,
    /// The index (and its version) of the last load asked for.
    index: Arc<Mutex<(Arc<DirectoryIndex>, u64)>>,
    tx: mpsc::UnboundedSender<Action>,
}

impl SnapshotSource {
    /// The tenant's snapshot file, opened (created) on the blocking pool.
    async fn open(&self) -> Result<SnapshotStore, SnapshotError> {
        let (dir, tenant) = (self.data_dir.clone(), self.tenant.clone());
        tokio::task::spawn_blocking(move || SnapshotStore::open(&dir, &tenant))
            .await
            .unwrap_or_else(|e| {
                Err(SnapshotError::Io {
                    path: dir_of_snapshots(&self.data_dir),
                    source: std::io::Error::other(e.to_string()),
                })
            })
    }
}

fn dir_of_snapshots(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("snapshots")
}

/// The load a task serves: its generation and the index its rows are classified with.
struct Load {
    gen: u64,
    index: Arc<DirectoryIndex>,
    index_version: u64,
}

/// The rows of `snap` classified off the UI thread, as the action that swaps them in.
async fn rows_of(snap: &Snapshot, load: &Load, done: Option<String>) -> Action {
    let pages = snap.pages.clone();
    let index = load.index.clone();
    let (rows, upns) =
        tokio::task::spawn_blocking(move || super::state::TenantRows::classified(&pages, &index))
            .await
            .unwrap_or_default();
    let (extras, as_of) = extras_of(snap);
    Action::TenantLoaded {
        gen: load.gen,
        index_version: load.index_version,
        rows: Box::new(rows),
        upns,
        extras,
        as_of,
        done,
    }
}

/// "14:02:05": when a refresh's snapshot was current, in local time, as the console says it.
fn local_time(t: time::OffsetDateTime) -> String {
    let at = t.unix_timestamp();
    let offset = crate::format::local_offset_secs(at);
    let secs = (at + i64::from(offset)).rem_euclid(60);
    format!("{}:{secs:02}", crate::format::clock(at, offset))
}

/// The tenant users of load `load`: the saved copy first when none is held (its pages go to
/// the screen as they decode, while the delta round's requests are already in flight), then a
/// delta round, or a full listing (`full`, or when no round can be made, said why; its pages
/// stream to the screen while nothing else is there), saved; the rows of the result, or why
/// it failed.
async fn refresh_users(
    graph: &GraphClient,
    store: &SnapshotStore,
    source: &SnapshotSource,
    load: Load,
    full: bool,
) -> Action {
    use crate::snapshot::RefreshEvent;
    let tx = &source.tx;
    let mut held = source.slot.lock().await;
    // Rows on screen: a copy held (its rows went out when it was loaded or refreshed), or the
    // saved copy's first page.
    let shown = Arc::new(std::sync::atomic::AtomicBool::new(held.is_some()));
    let gen = load.gen;
    let news = |news| {
        let _ = tx.send(Action::Refreshing { gen, news });
    };
    let mut on_event = |e: RefreshEvent| match e {
        RefreshEvent::DeltaRound => news(RefreshNews::DeltaRound),
        RefreshEvent::FullListing(why) => news(RefreshNews::FullListing { why: why.plain() }),
        RefreshEvent::Listing(ListingEvent::Planned { expected, .. }) => {
            news(RefreshNews::Listed {
                listed: 0,
                expected,
            })
        }
        RefreshEvent::Listing(ListingEvent::Page {
            users,
            listed,
            expected,
        }) => {
            if !shown.load(Ordering::Relaxed) {
                // Nothing on screen yet: the first listing shows as it comes.
                let statuses = classify(&load.index, &users);
                let _ = tx.send(Action::UsersPage {
                    gen,
                    index_version: load.index_version,
                    users: users.as_ref().clone(),
                    statuses,
                });
            }
            news(RefreshNews::Listed { listed, expected });
        }
        RefreshEvent::Listing(ListingEvent::Restart { .. }) => news(RefreshNews::Restarted),
    };
    let r = match held.as_ref() {
        Some(copy) => {
            crate::snapshot::refresh_with(
                graph,
                store,
                Some(copy),
                full,
                &RefreshOptions::default(),
                &mut on_event,
            )
            .await
        }
        None => {
            let on_copy = copy_to_screen(
                (gen, load.index_version, load.index.clone()),
                tx.clone(),
                shown.clone(),
            );
            let (loaded, r) = crate::snapshot::load_and_refresh(
                graph,
                store,
                full,
                &RefreshOptions::default(),
                on_copy,
                &mut on_event,
            )
            .await;
            *held = loaded;
            r
        }
    };
    match r {
        Ok(r) => {
            let line = r.describe(local_time);
            let action = rows_of(&r.snapshot, &load, Some(line)).await;
            *held = Some(r.snapshot);
            action
        }
        Err(RefreshError::Graph(error)) => Action::UsersFailed { gen, error },
        Err(RefreshError::Store(e)) => Action::SnapshotFailed {
            gen,
            error: Failure::file(store.path(), e),
        },
    }
}

/// The saved copy to the screen as it loads (on the loader's thread) for load `gen`: each
/// page classified with `index` (of `index_version`) and sent as it decodes (the first
/// replaces the rows there; `shown` set), then the copy's deleted users, domains and time.
/// Public for the scale bench, which times the first row drawn through it.
pub fn copy_to_screen(
    (gen, index_version, index): (u64, u64, Arc<DirectoryIndex>),
    tx: mpsc::UnboundedSender<Action>,
    shown: Arc<std::sync::atomic::AtomicBool>,
) -> Box<dyn FnMut(crate::snapshot::CopyEvent<'_>) + Send> {
    use crate::snapshot::CopyEvent;
    let mut first = true;
    Box::new(move |e| match e {
        CopyEvent::Page(users) => {
            let statuses = classify(&index, users);
            let _ = tx.send(Action::CopyPage {
                gen,
                index_version,
                users: users.clone(),
                statuses,
                first: std::mem::take(&mut first),
            });
            shown.store(true, Ordering::Relaxed);
        }
        CopyEvent::Loaded(copy) => {
            let _ = tx.send(copy_loaded(gen, copy));
        }
    })
}

/// The saved copy's deleted users, domains and time (its rows went page by page).
fn copy_loaded(gen: u64, snap: &Snapshot) -> Action {
    let (extras, as_of) = extras_of(snap);
    Action::CopyLoaded { gen, extras, as_of }
}

/// A snapshot's soft-deleted users and domains, and when it was current, for the screen.
fn extras_of(snap: &Snapshot) -> (Arc<super::state::TenantExtras>, super::state::AsOf) {
    let at = snap.as_of().unix_timestamp();
    (
        Arc::new(super::state::TenantExtras {
            deleted: snap.deleted.iter().map(|d| d.user.clone()).collect(),
            domains: snap.domains.clone(),
        }),
        super::state::AsOf {
            at,
            offset: crate::format::local_offset_secs(at),
        },
    )
}

/// Every tenant user page by page, saved nowhere (no snapshot file can be written).
async fn stream_users(
    graph: &GraphClient,
    page_size: u32,
    load: Load,
    tx: &mpsc::UnboundedSender<Action>,
) -> Action {
    let gen = load.gen;
    let mut pages = graph.list_users(page_size);
    while let Some(page) = pages.next().await {
        match page {
            Ok(users) => {
                let statuses = classify(&load.index, &users);
                let page = Action::UsersPage {
                    gen,
                    index_version: load.index_version,
                    users,
                    statuses,
                };
                if tx.send(page).is_err() {
                    break;
                }
            }
            Err(error) => return Action::UsersFailed { gen, error },
        }
    }
    Action::UsersDone { gen }
}

/// Before an apply: a delta round (or a listing when no round can be made) brings the
/// snapshot up to date, the rows on screen follow, and the plan is made again on it. `Ok(Ok)`:
/// the same plan (made now: apply it); `Ok(Err)`: the round changed the plan (the new one,
/// and what the round did). Without a snapshot file the plan is applied as it is (its rows
/// were listed in full, not saved).
async fn round_before_apply(
    pipeline: &Pipeline,
    lock: &crate::lock::ApplyLock,
    source: &SnapshotSource,
    view: PlanView,
) -> Result<Result<PlanView, (PlanView, String)>, Failure> {
    let Ok(store) = source.open().await else {
        return Ok(Ok(view));
    };
    let mut held = source.slot.lock().await;
    let r = crate::snapshot::refresh(
        &pipeline.graph,
        &store,
        held.as_ref(),
        false,
        &RefreshOptions::default(),
        &mut |_| {},
    )
    .await
    .map_err(|e| match e {
        RefreshError::Graph(e) => Failure::graph(Operation::ListUsers, Subject::None, e),
        RefreshError::Store(e) => Failure::file(store.path(), e),
    })?;
    let line = r.describe(local_time);
    let (index, index_version) = source
        .index
        .lock()
        .map(|i| i.clone())
        .unwrap_or_else(|_| (Arc::new(DirectoryIndex::default()), u64::MAX));
    let load = Load {
        gen: source.load_gen.load(Ordering::Relaxed),
        index,
        index_version,
    };
    // The rows follow (classified again on arrival if the index changed meanwhile).
    let _ = source.tx.send(rows_of(&r.snapshot, &load, None).await);
    let tenant = r.snapshot.tenant();
    *held = Some(r.snapshot);
    drop(held);
    let fresh = pipeline
        .prepare(Some(lock), Some(tenant), unix_now())
        .await?;
    if fresh.ops() == view.ops() && fresh.held_count() == view.held_count() {
        Ok(Ok(fresh))
    } else {
        Ok(Err((fresh, line)))
    }
}

fn classify(index: &DirectoryIndex, users: &[User]) -> Vec<ImportStatus> {
    users.iter().map(|u| index.classify(u)).collect()
}

/// Runs the app until it quits or `events` ends, and hands back the final state.
/// `run_tui` passes crossterm's `EventStream`; tests pass a stream of key events and a
/// `TestBackend`. `initial` are the effects to start with (`update::init`).
pub async fn run<B, E>(
    terminal: &mut Terminal<B>,
    mut state: AppState,
    mut services: Services,
    mut rx: mpsc::UnboundedReceiver<Action>,
    mut events: E,
    initial: Vec<Effect>,
) -> anyhow::Result<AppState>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
    E: futures::Stream<Item = std::io::Result<Event>> + Unpin,
{
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let size = terminal.size()?;
    update(
        &mut state,
        Action::Resize {
            width: size.width,
            height: size.height,
        },
    );
    update(&mut state, Action::Tick { now: unix_now() });
    state.data.dirty = true;
    for e in initial {
        services.run(e);
    }
    let mut last_draw: Option<Instant> = None;

    let apply = |state: &mut AppState, services: &mut Services, a: Action| {
        for e in update(state, a) {
            services.run(e);
        }
    };

    loop {
        // Draw now when the last frame is old enough, else wake up when it is.
        let mut draw_at = None;
        if state.data.dirty {
            let now = Instant::now();
            match last_draw {
                Some(t) if now < t + FRAME_GAP => draw_at = Some(t + FRAME_GAP),
                _ => {
                    terminal.draw(|f| super::view::draw(f, &state))?;
                    state.data.dirty = false;
                    last_draw = Some(now);
                }
            }
        }
        tokio::select! {
            biased;
            _ = async { tokio::time::sleep_until(draw_at.expect("guarded")).await }, if draw_at.is_some() => {
                // The next turn of the loop draws.
            }
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) => {
                    if let Some(a) = key_action(&state, &k) {
                        apply(&mut state, &mut services, a);
                    }
                }
                Some(Ok(Event::Resize(width, height))) => {
                    apply(&mut state, &mut services, Action::Resize { width, height });
                }
                Some(Ok(Event::Paste(text))) => {
                    apply(&mut state, &mut services, Action::Paste(text));
                }
                Some(Ok(Event::Mouse(m))) => {
                    if let Some(m) = mouse(&m) {
                        apply(&mut state, &mut services, Action::Mouse(m));
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            Some(a) = rx.recv() => {
                apply(&mut state, &mut services, a);
                // Take what is already queued (e.g. a burst of pages) before drawing.
                let mut n = 0;
                while let Ok(a) = rx.try_recv() {
                    apply(&mut state, &mut services, a);
                    n += 1;
                    if n == 256 {
                        break;
                    }
                }
            }
            _ = tick.tick() => {
                apply(&mut state, &mut services, Action::Tick { now: unix_now() });
            }
        }
        if state.data.quit {
            break;
        }
    }
    if let Some(t) = services.load_task.take() {
        t.abort();
    }
    if let Some(t) = services.signin_task.take() {
        t.abort();
    }
    if let Some(c) = services.apply_cancel.take() {
        // Quitting mid-run: stop sending; the journal resumes the rest next time.
        c.cancel();
    }
    Ok(state)
}

/// The mouse events the console acts on: the wheel and a left click.
fn mouse(m: &crossterm::event::MouseEvent) -> Option<super::action::Mouse> {
    use super::action::Mouse;
    use crossterm::event::{MouseButton, MouseEventKind};
    match m.kind {
        MouseEventKind::ScrollDown => Some(Mouse::ScrollDown),
        MouseEventKind::ScrollUp => Some(Mouse::ScrollUp),
        MouseEventKind::Down(MouseButton::Left) => Some(Mouse::Click {
            column: m.column,
            row: m.row,
        }),
        _ => None,
    }
}

/// The event stream of the real terminal.
pub fn terminal_events() -> EventStream {
    EventStream::new()
}

/// A new file `<prefix>-<unix time>[-n].<ext>` in `dir`, readable by the owner only (mode 0600
/// from creation, before a byte is written). Never an existing file nor a symlink: an earlier
/// export or hand-off is never overwritten. `dir` is created 0700 when missing.
fn create_private_file(
    dir: &std::path::Path,
    prefix: &str,
    ext: &str,
) -> Result<(std::path::PathBuf, std::fs::File), String> {
    crate::config::create_private_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let stamp = unix_now();
    for n in 1..=100 {
        let name = if n == 1 {
            format!("{prefix}-{stamp}.{ext}")
        } else {
            format!("{prefix}-{stamp}-{n}.{ext}")
        };
        let path = dir.join(name);
        // The one safe open (O_EXCL, O_NOFOLLOW, 0600 whatever the umask), shared with the
        // hand-off file of `sync --apply --handoff`.
        match crate::config::create_new_private_file(&path) {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Err(format!(
        "{}: too many {prefix} files this second",
        dir.display()
    ))
}
