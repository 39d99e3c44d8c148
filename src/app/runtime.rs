//! The loop: `select!` over terminal events, the action channel, a one-second tick and the
//! next draw. Each Effect runs on tokio (blocking SQLite work on `spawn_blocking`) and reports
//! back with Actions; the loop never awaits I/O itself. It draws only when `update` marked the
//! state dirty, at most once per 10 ms, after draining the actions already queued: bursts of
//! pages cost one frame, an idle screen costs nothing (this matters over SSH).
use std::future::Future;
use std::io::Write;
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

use crate::sync::apply::{ApplyEvent, ApplyOptions};
use crate::sync::plan::TenantSnapshot;

use super::action::{Action, DirectorySnapshot};
use super::effect::{Effect, ExportFormat, Fix};
use super::explain::ErrorEntry;
use super::state::{AppState, PlanView, SessionInfo};
use super::update::{key_action, update};

/// Shortest time between two frames.
const FRAME_GAP: Duration = Duration::from_millis(10);

/// Graph's write budget per app and tenant (graph-notes.md: 3,000 writes per 150 s): the
/// preview's ETA.
pub const WRITES_PER_WINDOW: u32 = 3000;
pub const WRITE_WINDOW: Duration = Duration::from_secs(150);

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
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
        on_panic: impl FnOnce(String) -> Action + Send + 'static,
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
                    let _ = tx.send(on_panic(format!("internal error: {e}")));
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
                        result: Err(AuthError::Malformed(m)),
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
                        result: Err(AuthError::Malformed(m)),
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
                        result: Err(AuthError::Malformed(m)),
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
                        let r = tokio::task::spawn_blocking(
                            move || -> Result<DirectorySnapshot, String> {
                                if let Some(dir) = path.parent() {
                                    std::fs::create_dir_all(dir)
                                        .map_err(|e| format!("{}: {e}", dir.display()))?;
                                }
                                let d = Directory::open(&path).map_err(|e| e.to_string())?;
                                Ok(DirectorySnapshot {
                                    users: d.users().map_err(|e| e.to_string())?,
                                    index: Arc::new(d.index().map_err(|e| e.to_string())?),
                                    failures: d.failures().map_err(|e| e.to_string())?,
                                    groups: d.groups().map_err(|e| e.to_string())?,
                                })
                            },
                        )
                        .await;
                        Action::DirectoryLoaded(
                            r.unwrap_or_else(|e| Err(format!("internal error: {e}"))),
                        )
                    },
                    |m| Action::DirectoryLoaded(Err(m)),
                );
            }
            Effect::LoadUsers {
                gen,
                page_size,
                index,
                index_version,
            } => {
                if let Some(t) = self.load_task.take() {
                    t.abort(); // latest wins
                }
                let graph = match (self.http.clone(), self.session()) {
                    (Some(http), Some(s)) => {
                        Some(GraphClient::new(http, &self.settings.graph_url, s))
                    }
                    _ => None,
                };
                let tx = self.tx.clone();
                self.load_task = Some(self.spawn(
                    async move {
                        let Some(graph) = graph else {
                            return Action::UsersFailed {
                                gen,
                                error: GraphError::Auth("no session".into()),
                            };
                        };
                        let mut pages = graph.list_users(page_size);
                        while let Some(page) = pages.next().await {
                            match page {
                                Ok(users) => {
                                    let statuses = classify(&index, &users);
                                    let page = Action::UsersPage {
                                        gen,
                                        index_version,
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
                    },
                    move |m| Action::UsersFailed {
                        gen,
                        error: GraphError::Malformed(m),
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
            Effect::Import { users } => {
                let path = self.settings.db_path();
                self.spawn(
                    async move {
                        let r = tokio::task::spawn_blocking(move || {
                            if let Some(dir) = path.parent() {
                                std::fs::create_dir_all(dir)
                                    .map_err(|e| format!("{}: {e}", dir.display()))?;
                            }
                            let mut d = Directory::open(&path).map_err(|e| e.to_string())?;
                            d.import(&users).map_err(|e| e.to_string())
                        })
                        .await;
                        Action::ImportDone(
                            r.unwrap_or_else(|e| Err(format!("internal error: {e}"))),
                        )
                    },
                    |m| Action::ImportDone(Err(m)),
                );
            }
            Effect::SetWant { ids, bound } => {
                let path = self.settings.db_path();
                self.spawn(
                    async move {
                        let r = tokio::task::spawn_blocking(move || {
                            let mut d = Directory::open(&path).map_err(|e| e.to_string())?;
                            d.set_want(&ids, bound).map_err(|e| e.to_string())
                        })
                        .await;
                        Action::WantSaved(r.unwrap_or_else(|e| Err(format!("internal error: {e}"))))
                    },
                    |m| Action::WantSaved(Err(m)),
                );
            }
            Effect::SetGroupWant { ids, bound } => {
                let path = self.settings.db_path();
                self.spawn(
                    async move {
                        let r = tokio::task::spawn_blocking(move || {
                            let mut d = Directory::open(&path).map_err(|e| e.to_string())?;
                            d.set_group_want(&ids, bound).map_err(|e| e.to_string())
                        })
                        .await;
                        Action::WantSaved(r.unwrap_or_else(|e| Err(format!("internal error: {e}"))))
                    },
                    |m| Action::WantSaved(Err(m)),
                );
            }
            Effect::Plan {
                gen,
                users,
                pages,
                now,
                tenant: tenant_name,
            } => {
                let graph = self.graph();
                let db = self.settings.db_path();
                self.spawn(
                    async move {
                        let Some(graph) = graph else {
                            return Action::PlanReady {
                                gen,
                                result: Err("not signed in".into()),
                            };
                        };
                        // The live users are the pages already listed (shared, not copied);
                        // soft-deleted users still hold their addresses, so they count too.
                        let (deleted, domains) =
                            match crate::sync::apply::deleted_and_domains(&graph).await {
                                Ok(x) => x,
                                Err(e) => {
                                    return Action::PlanReady {
                                        gen,
                                        result: Err(format!("reading the tenant: {e}")),
                                    }
                                }
                            };
                        let group_db = db.clone();
                        let r = tokio::task::spawn_blocking(move || {
                            let dir = crate::directory::Directory::open(&db)
                                .map_err(|e| format!("opening the directory: {e}"))?;
                            let (policy, guard_cfg) = dir
                                .policy()
                                .map_err(|e| format!("reading the directory policy: {e}"))?;
                            let domain_settings = dir
                                .domain_settings(&tenant_name)
                                .map_err(|e| format!("reading the domain settings: {e}"))?;
                            let upn_overrides = dir
                                .upn_overrides()
                                .map_err(|e| format!("reading the UPN overrides: {e}"))?;
                            drop(dir);
                            let tenant = TenantSnapshot {
                                pages,
                                deleted,
                                domains,
                            };
                            let plan = crate::sync::plan::plan(&users, &tenant, &policy, now);
                            let opts = crate::sync::preflight::PreflightOptions {
                                enabled_domains: domain_settings.enabled,
                                default_domain: domain_settings.default,
                                upn_overrides,
                                ..Default::default()
                            };
                            let (plan, held, issues) =
                                crate::sync::preflight::check_plan(plan, &users, &tenant, &opts);
                            // Findings about users the plan touches, each with its email.
                            let touched: std::collections::HashSet<i64> = plan
                                .ops
                                .iter()
                                .chain(held.iter().map(|(o, _)| o))
                                .map(|o| o.directory_id)
                                .collect();
                            let email: std::collections::HashMap<i64, &str> =
                                users.iter().map(|u| (u.id, u.email.as_str())).collect();
                            let issues = issues
                                .into_iter()
                                .filter(|i| touched.contains(&i.directory_id))
                                .map(|i| {
                                    let e = email.get(&i.directory_id).copied().unwrap_or("");
                                    (i, e.to_string())
                                })
                                .collect();
                            let eta = plan.eta(WRITES_PER_WINDOW, WRITE_WINDOW);
                            let guard = plan.guard(&guard_cfg);
                            let warnings = plan.warnings();
                            Ok(Box::new(
                                PlanView::new(plan, eta, guard, warnings)
                                    .with_preflight(held, issues),
                            ))
                        })
                        .await
                        .map_err(|e| format!("internal error: {e}"))
                        .and_then(|r| r);
                        // The groups' plan, after the users' (their members may be bound in
                        // the same run).
                        let r = match r {
                            Ok(mut view) => {
                                match crate::sync::groups::plan_from_directory(&graph, group_db)
                                    .await
                                {
                                    Ok((ops, held)) => {
                                        view.group_ops = ops;
                                        view.group_held = held;
                                        Ok(view)
                                    }
                                    Err(e) => Err(format!("planning the groups: {e:#}")),
                                }
                            }
                            Err(e) => Err(e),
                        };
                        Action::PlanReady { gen, result: r }
                    },
                    move |m| Action::PlanReady {
                        gen,
                        result: Err(m),
                    },
                );
            }
            Effect::Apply {
                plan,
                group_ops,
                actor,
            } => {
                let Some(graph) = self.graph() else {
                    let _ = self
                        .tx
                        .send(Action::ApplyFinished(Err("not signed in".into())));
                    return;
                };
                let cancel = CancellationToken::new();
                self.apply_cancel = Some(cancel.clone());
                let db = self.settings.db_path();
                let tx = self.tx.clone();
                let opts = ApplyOptions {
                    actor: actor.clone(),
                    ..ApplyOptions::default()
                };
                let group_db = db.clone();
                self.spawn(
                    async move {
                        let (etx, mut erx) = mpsc::unbounded_channel::<ApplyEvent>();
                        let engine = tokio::spawn(crate::sync::apply::apply(
                            graph.clone(),
                            db,
                            plan,
                            opts,
                            etx,
                            cancel,
                        ));
                        // Ends when the engine is done with its sender.
                        while let Some(ev) = erx.recv().await {
                            let _ = tx.send(Action::Apply(ev.into()));
                        }
                        let mut summary = match engine.await {
                            Ok(Ok(summary)) => summary,
                            Ok(Err(e)) => return Action::ApplyFinished(Err(format!("{e:#}"))),
                            Err(e) => {
                                return Action::ApplyFinished(Err(format!("internal error: {e}")))
                            }
                        };
                        // Then the groups (only the ops preflight let through): their
                        // members' accounts exist by now.
                        if !group_ops.is_empty() {
                            match crate::sync::groups::apply_groups(
                                &graph, group_db, group_ops, &actor,
                            )
                            .await
                            {
                                Ok(g) => {
                                    if !g.failures.is_empty() {
                                        let _ = tx.send(Action::GroupsFailed(
                                            g.failures
                                                .iter()
                                                .map(|(op, why)| {
                                                    (
                                                        format!(
                                                            "{} {}",
                                                            op.kind.label(),
                                                            op.group_name
                                                        ),
                                                        why.clone(),
                                                    )
                                                })
                                                .collect(),
                                        ));
                                    }
                                    summary.done += g.done;
                                    summary.failed += g.failed;
                                }
                                Err(e) => {
                                    return Action::ApplyFinished(Err(format!(
                                        "applying the groups: {e:#}"
                                    )))
                                }
                            }
                        }
                        Action::ApplyFinished(Ok(summary))
                    },
                    |m| Action::ApplyFinished(Err(m)),
                );
            }
            Effect::ResumeJournal { actor } => {
                let Some(graph) = self.graph() else {
                    let _ = self
                        .tx
                        .send(Action::ResumeFinished(Err("not signed in".into())));
                    return;
                };
                let cancel = CancellationToken::new();
                self.apply_cancel = Some(cancel.clone());
                let db = self.settings.db_path();
                let tx = self.tx.clone();
                let opts = ApplyOptions {
                    actor,
                    ..ApplyOptions::default()
                };
                self.spawn(
                    async move {
                        let (etx, mut erx) = mpsc::unbounded_channel::<ApplyEvent>();
                        let engine =
                            tokio::spawn(crate::sync::apply::resume(graph, db, opts, etx, cancel));
                        while let Some(ev) = erx.recv().await {
                            let _ = tx.send(Action::Apply(ev.into()));
                        }
                        Action::ResumeFinished(match engine.await {
                            Ok(Ok(summary)) => Ok(summary),
                            Ok(Err(e)) => Err(format!("{e:#}")),
                            Err(e) => Err(format!("internal error: {e}")),
                        })
                    },
                    |m| Action::ResumeFinished(Err(m)),
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
                actor,
            } => {
                let graph = self.graph();
                let db = self.settings.db_path();
                let who = email.clone();
                self.spawn(
                    async move {
                        let result = match graph {
                            Some(g) => {
                                super::engine::set_password(g, db, email.clone(), password.0, actor)
                                    .await
                                    .map_err(|e| format!("{e:#}"))
                            }
                            None => Err("not signed in".into()),
                        };
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
                        let r =
                            tokio::task::spawn_blocking(move || write_handoff(&dir, &passwords))
                                .await;
                        Action::HandoffWritten(
                            r.unwrap_or_else(|e| Err(format!("internal error: {e}"))),
                        )
                    },
                    |m| Action::HandoffWritten(Err(m)),
                );
            }
            Effect::Fix { fix, key } => {
                let db = self.settings.db_path();
                let graph = self.graph();
                self.spawn(
                    async move {
                        let result = run_fix(fix, db, graph).await;
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
                            export_errors(&dir, format, &errors)
                        })
                        .await;
                        Action::Exported(r.unwrap_or_else(|e| Err(format!("internal error: {e}"))))
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
                            return Action::DomainsLoaded(Err("not signed in".into()));
                        };
                        let domains = match graph.list_domains().await {
                            Ok(d) => d,
                            Err(e) => {
                                return Action::DomainsLoaded(Err(format!("GET /domains: {e}")))
                            }
                        };
                        let r = tokio::task::spawn_blocking(move || {
                            Directory::open(&db)
                                .and_then(|d| d.domain_settings(&tenant))
                                .map_err(|e| e.to_string())
                        })
                        .await
                        .map_err(|e| format!("internal error: {e}"))
                        .and_then(|r| r);
                        Action::DomainsLoaded(r.map(|s| (domains, s)))
                    },
                    |m| Action::DomainsLoaded(Err(m)),
                );
            }
            Effect::SaveDomains { tenant, settings } => {
                let db = self.settings.db_path();
                self.spawn(
                    async move {
                        let r = tokio::task::spawn_blocking(move || {
                            Directory::open(&db)
                                .and_then(|mut d| d.set_domain_settings(&tenant, &settings))
                                .map_err(|e| e.to_string())
                        })
                        .await;
                        Action::DomainsSaved(
                            r.unwrap_or_else(|e| Err(format!("internal error: {e}"))),
                        )
                    },
                    |m| Action::DomainsSaved(Err(m)),
                );
            }
            Effect::Disconnect => {
                let db = self.settings.db_path();
                let cache = self.cache();
                let slot = self.session.clone();
                if let Some(t) = self.load_task.take() {
                    t.abort();
                }
                self.spawn(
                    async move {
                        let r = tokio::task::spawn_blocking(move || -> Result<(), String> {
                            super::engine::disconnect(&db).map_err(|e| format!("{e:#}"))?;
                            cache.clear().map_err(|e| e.to_string())?;
                            *slot.lock().expect("session slot") = None;
                            Ok(())
                        })
                        .await;
                        Action::Disconnected(
                            r.unwrap_or_else(|e| Err(format!("internal error: {e}"))),
                        )
                    },
                    |m| Action::Disconnected(Err(m)),
                );
            }
        }
    }
}

/// Writes the generated passwords to a new CSV in `dir`, readable by its owner only; returns
/// its path.
/// A directory write of a fix, run on the blocking pool.
type DirectoryFix = Box<dyn FnOnce(&mut Directory) -> Result<String, String> + Send>;

/// Carry out a one-key fix (what `Effect::Fix` runs); Ok = what changed, in words.
pub async fn run_fix(
    fix: Fix,
    db: std::path::PathBuf,
    graph: Option<GraphClient>,
) -> Result<String, String> {
    let blocking = |f: DirectoryFix| {
        let db = db.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut d = Directory::open(&db).map_err(|e| e.to_string())?;
                f(&mut d)
            })
            .await
            .map_err(|e| format!("internal error: {e}"))
            .and_then(|r| r)
        }
    };
    match fix {
        Fix::SetEmail {
            directory_id,
            email,
        } => {
            blocking(Box::new(move |d| {
                d.set_email(directory_id, &email)
                    .map_err(|e| e.to_string())?;
                Ok(format!("Email changed to {email}."))
            }))
            .await
        }
        Fix::UseDefaultDomain { directory_id, upn } => {
            blocking(Box::new(move |d| {
                d.set_upn_override(directory_id, Some(&upn))
                    .map_err(|e| e.to_string())?;
                Ok(format!("The account will be created as {upn}."))
            }))
            .await
        }
        Fix::Link {
            directory_id,
            tenant_user_id,
        } => {
            let graph = graph.ok_or("not signed in")?;
            let user: User = graph
                .request(
                    reqwest::Method::GET,
                    &format!(
                        "{}/users/{tenant_user_id}?$select={}",
                        graph.base(),
                        crate::graph::model::USER_SELECT.join(",")
                    ),
                    None,
                )
                .await
                .and_then(|r| r.json())
                .map_err(|e| e.to_string())?;
            blocking(Box::new(move |d| {
                d.link(directory_id, &user).map_err(|e| e.to_string())?;
                Ok(format!("Linked {}.", user.user_principal_name))
            }))
            .await
        }
        Fix::RestoreDeleted { address } => {
            let graph = graph.ok_or("not signed in")?;
            let id = deleted_id(&graph, &address).await?;
            graph
                .request(
                    reqwest::Method::POST,
                    &format!("{}/directory/deletedItems/{id}/restore", graph.base()),
                    None,
                )
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!("Restored the deleted account {address}."))
        }
        Fix::PurgeDeleted { address } => {
            let graph = graph.ok_or("not signed in")?;
            let id = deleted_id(&graph, &address).await?;
            graph
                .request(
                    reqwest::Method::DELETE,
                    &format!("{}/directory/deletedItems/{id}", graph.base()),
                    None,
                )
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "Permanently deleted {address}; the address is free."
            ))
        }
        Fix::SetGroupNickname { group_id, nickname } => {
            blocking(Box::new(move |d| {
                d.set_group_nickname(group_id, Some(&nickname))
                    .map_err(|e| e.to_string())?;
                Ok(format!("The group will be provisioned as {nickname}."))
            }))
            .await
        }
        Fix::SetGroupName { group_id, name } => {
            blocking(Box::new(move |d| {
                d.rename_group(group_id, &name).map_err(|e| e.to_string())?;
                Ok(format!("The group is now named \"{name}\"."))
            }))
            .await
        }
    }
}

/// The id of the soft-deleted user whose UPN or mail is `address`.
async fn deleted_id(graph: &GraphClient, address: &str) -> Result<String, String> {
    let (deleted, _) = crate::sync::apply::deleted_and_domains(graph)
        .await
        .map_err(|e| e.to_string())?;
    deleted
        .into_iter()
        .find(|u| {
            u.user_principal_name.eq_ignore_ascii_case(address)
                || u.mail
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(address))
        })
        .map(|u| u.id)
        .ok_or_else(|| format!("no soft-deleted user holds {address} any more"))
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
    state.dirty = true;
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
        if state.dirty {
            let now = Instant::now();
            match last_draw {
                Some(t) if now < t + FRAME_GAP => draw_at = Some(t + FRAME_GAP),
                _ => {
                    terminal.draw(|f| crate::ui::draw(f, &state))?;
                    state.dirty = false;
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
        if state.quit {
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
