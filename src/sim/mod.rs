//! The simulated tenant: an independent implementation of Microsoft's side (axum).
//!
//! A real HTTP(S) server that speaks the Microsoft identity platform (OpenID discovery, instance
//! discovery, device code, client credentials, refresh) and Microsoft Graph v1.0 (users, domains,
//! organization), with Microsoft's error bodies, paging, latency and fault injection. Microsoft's own
//! libraries (MSAL, azure-identity, msgraph-sdk) can be pointed at it; all our tests drive it.
//!
//! Routes (`{tenant}` = the tenant id, any verified domain, `organizations` or `common`):
//! - `GET /{tenant}/v2.0/.well-known/openid-configuration`, `GET /{tenant}/discovery/v2.0/keys`,
//!   `GET /common/discovery/instance` (MSAL instance discovery; the port is restored)
//! - `POST /{tenant}/oauth2/v2.0/devicecode`, `POST /{tenant}/oauth2/v2.0/token` (device code with the
//!   URN or `device_code`, client credentials via post or basic, refresh with rotation)
//! - `GET /devicelogin` (form) and `POST /devicelogin` (`user_code`, `action=approve|decline`); approval
//!   signs in as the seed's admin
//! - `GET /v1.0/users` (`$select $top $skiptoken $filter $orderby $count $search`), `GET /v1.0/users/$count`,
//!   `GET /v1.0/users/{id|upn}`, `GET /v1.0/me`, `GET /v1.0/domains[/{id}]`, `GET /v1.0/organization`
//! - `GET /v1.0/users/delta` (= `/users/microsoft.graph.delta`, module `delta`): rounds of
//!   `$skiptoken` pages ending in a `$deltatoken` link, `$select` and `$filter` by ids kept in
//!   the tokens, `@removed` annotations, `Prefer: return=minimal`, `$deltatoken=latest`, tokens
//!   that expire (`delta_token_ttl`) or outlive the change log (`delta_log_cap`)
//! - writes (module `writes`): `POST /v1.0/users` (required properties, UPN/domain/federation,
//!   mailNickname and password policies, UPN and proxy-address uniqueness — soft-deleted users keep
//!   their addresses until purged), `PATCH /v1.0/users/{id|upn}` (204), `DELETE /v1.0/users/{id|upn}`
//!   (204, to the deleted items); PATCH takes every attribute m365sync syncs (displayName,
//!   givenName, surname, jobTitle, department, officeLocation, mobilePhone, businessPhones,
//!   employeeId, companyName, city, state, country, postalCode, streetAddress, usageLocation,
//!   preferredLanguage, employeeType) with Graph's limits and formats, and users synced from
//!   on-premises AD (`onPremisesSyncEnabled`) refuse their on-premises-mastered ones
//! - `PUT|DELETE /v1.0/users/{id}/manager/$ref`, `GET /v1.0/users/{id}/manager`,
//!   `POST /v1.0/users/{id}/revokeSignInSessions` (and `/me/...`; later refresh tokens of that
//!   user get AADSTS50173)
//! - licences (module `licences`): `GET /v1.0/subscribedSkus[/{tenantId}_{skuId}]` (seeded SKUs,
//!   `consumedUnits` kept exact), `POST /v1.0/users/{id}/assignLicense` (and
//!   `/microsoft.graph.assignLicense`) with Graph's refusals, `POST /v1.0/groups/{id}/assignLicense`
//!   (members inherit; what does not fit is an error state on the member), `GET
//!   /v1.0/users/{id}/licenseDetails`; a soft delete frees seats, a restore takes them back
//! - `GET /v1.0/directory/deletedItems/microsoft.graph.user` (paged), `GET|DELETE
//!   /v1.0/directory/deletedItems/{id}`, `POST /v1.0/directory/deletedItems/{id}/restore`; the bare
//!   `/directory/deletedItems` answers 400
//! - groups (module `groups`): `POST /v1.0/groups` (security and Microsoft 365 groups, the
//!   mailNickname rules and messages, unique nicknames for Unified groups), `GET /v1.0/groups`
//!   (paged, `$select`, `$filter` displayName/mailNickname `eq`/`startswith`), `GET
//!   /v1.0/groups/{id}`, `GET /v1.0/groups/{id}/members` (paged, 3 RU), `POST
//!   /v1.0/groups/{id}/members/$ref`, `DELETE /v1.0/groups/{id}/members/{id}/$ref`
//! - `POST /v1.0/$batch` (module `batch`): up to 20 items through the same dispatcher, `dependsOn`
//!   with 424, responses in reverse order
//! - other writes Graph supports answer `501 NotImplemented`, other methods `405`, unknown segments `400`
//!
//! Every Graph request (batch items one by one) goes through `graph::execute`: throttling budgets
//! per app (module `budget`: resource units per 10 s, writes per window; 429 with `Retry-After`,
//! `x-ms-throttle-scope`, `x-ms-throttle-information`; `x-ms-resource-unit` on every answer), then
//! the random 5xx of `--error-rate` (never applied), then the permission check (module `perms`:
//! the token's `roles` or `scp` must hold one of the permissions Graph lists for the operation,
//! else `403 Authorization_RequestDenied`; purging a user is delegated-only), then the route. `--reset-rate` drops
//! connections before routing; `--ambiguous-rate` applies a write and then drops the connection
//! (module `fault`, `Chaos`).
//!
//! Requests are logged at `debug` level under the `m365sync::sim` target.
//!
//! Wall: this module never imports the client's code (`graph`, `auth`, `app`, `ui`, `directory`);
//! its rules are written again from graph-notes.md so tests compare two implementations.

mod batch;
mod budget;
mod delta;
mod fault;
mod filter;
mod graph;
mod groups;
mod identity;
mod licences;
mod perms;
mod server;
mod state;
mod tenant;
mod util;
mod writes;

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::{any, get, post};
use axum::Router;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use fault::{FaultKind, FaultPlan, FaultRule, FaultWhen};

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Address to bind; port 0 picks a free port. Default `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// The tenant holds exactly N users: the seed's first, then generated ones (deterministic).
    pub users: Option<usize>,
    /// A seed JSON file; default: the built-in `assets/demo-tenant.json`.
    pub seed: Option<PathBuf>,
    /// Serve https with a CA + certificate made at start (SANs 127.0.0.1 and localhost).
    pub tls: bool,
    /// Added to every request.
    pub latency: Duration,
    /// Access-token lifetime (default 3599 s).
    pub token_lifetime: Duration,
    /// `interval` in the devicecode response, seconds (default 5). Polls faster get `slow_down`.
    pub device_code_interval: u64,
    /// Device-code lifetime (default 900 s).
    pub device_code_lifetime: Duration,
    /// Faults active from the start.
    pub faults: Vec<FaultRule>,
    /// Writes allowed per client per write window (default 3,000, the "L" tenant quota).
    pub write_budget: Option<u32>,
    /// Resource units allowed per client per 10 s (default 8,000).
    pub ru_budget: Option<u32>,
    /// The write window (default 150 s); tests shrink it, e.g. 10 writes per 2 s.
    pub budget_window: Option<Duration>,
    /// Fraction (0..=1) of Graph requests, batch items included, answered 503
    /// `serviceNotAvailable` or 500 `generalException` without being applied.
    pub error_rate: f64,
    /// Fraction (0..=1) of Graph HTTP requests answered by dropping the connection (not applied).
    pub reset_rate: f64,
    /// Fraction (0..=1) of Graph HTTP requests carrying a write (direct, or a `$batch` with a
    /// write) that are applied and THEN answered by dropping the connection.
    pub ambiguous_rate: f64,
    /// Seed for the random faults above (default: from the clock).
    pub fault_seed: Option<u64>,
    /// Every Graph write is refused as by a tenant whose directory is read-only (e.g. managed
    /// by a partner, or being migrated). Default false.
    pub read_only_tenant: bool,
    /// Directory object quota: creating a user or group when the tenant already holds this many
    /// users + groups answers `400 Directory_QuotaExceeded`. Default none (Microsoft's default
    /// quota is 50,000 objects, 300,000 with a verified domain).
    pub object_quota: Option<usize>,
    /// Group licences of these SKUs (part number, error code) are recorded in error on every
    /// member with that code (`DependencyViolation`, `ProhibitedInUsageLocationViolation`,
    /// `UniquenessViolation`, `Other`, ...): errors of group-based licensing the simulator does
    /// not work out itself (graph-notes §14.3/14.4), to show how they are explained. Default
    /// none.
    pub licence_errors: Vec<(String, String)>,
    /// A Conditional Access policy applied when a delegated sign-in (device code, password) is
    /// redeemed (None: none).
    pub sign_in_policy: Option<SignInPolicy>,
    /// Serve the resource owner password grant (`grant_type=password`, ROPC) for public
    /// clients. Default false: answered `unsupported_grant_type` as before.
    pub password_grant: bool,
    /// A connection must bring its first complete request (TLS handshake, protocol preface and
    /// request head) within this long of being accepted, and a request's body must arrive
    /// within this long; else the connection is dropped. Default 30 s.
    pub header_timeout: Duration,
    /// A kept-alive connection that sends no new request for this long after the last answer
    /// is closed (gracefully: HTTP/2 gets a GOAWAY). Default 120 s.
    pub idle_timeout: Duration,
    /// Largest request body accepted; larger ones are answered 413. Default 4 MiB (Microsoft
    /// Graph takes at most 4 MB a request).
    pub max_body_bytes: usize,
    /// How long a `/users/delta` token stays valid; an older one answers `400
    /// syncStateNotFound`. Default 7 days (graph-notes §18); tests shrink it.
    pub delta_token_ttl: Duration,
    /// Items per `/users/delta` page (`$top` is ignored there). Default 200.
    pub delta_page_size: usize,
    /// Changes the tenant remembers for delta rounds; a token older than the oldest one kept
    /// answers `400 syncStateNotFound`. Default 100,000.
    pub delta_log_cap: usize,
}

/// Default of [`SimOptions::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of [`SimOptions::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Default of [`SimOptions::max_body_bytes`].
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 << 20;

/// What a tenant's Conditional Access asks of a delegated sign-in (graph-notes §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SignInPolicy {
    /// The user must complete MFA: `400 invalid_grant`, AADSTS50076.
    #[value(name = "mfa")]
    RequireMfa,
    /// The sign-in is blocked: `400 invalid_grant`, AADSTS53003.
    Block,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            users: None,
            seed: None,
            tls: false,
            latency: Duration::ZERO,
            token_lifetime: Duration::from_secs(3599),
            device_code_interval: 5,
            device_code_lifetime: Duration::from_secs(900),
            faults: Vec::new(),
            write_budget: None,
            ru_budget: None,
            budget_window: None,
            error_rate: 0.0,
            reset_rate: 0.0,
            ambiguous_rate: 0.0,
            fault_seed: None,
            read_only_tenant: false,
            object_quota: None,
            licence_errors: Vec::new(),
            sign_in_policy: None,
            password_grant: false,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            delta_token_ttl: delta::DEFAULT_TOKEN_TTL,
            delta_page_size: delta::DEFAULT_PAGE_SIZE,
            delta_log_cap: delta::DEFAULT_LOG_CAP,
        }
    }
}

/// A running simulator. Dropping it stops the server too; `shutdown` waits for it.
pub struct Sim {
    /// e.g. `http://127.0.0.1:PORT` (no trailing slash); `https://` with `tls`.
    pub base_url: String,
    /// With `tls`: a PEM file holding the CA certificate to trust.
    pub ca_cert_path: Option<PathBuf>,
    /// With `tls`: the CA certificate (PEM).
    pub ca_cert_pem: Option<String>,
    pub tenant_id: String,
    /// The `*.onmicrosoft.com` domain.
    pub initial_domain: String,
    /// The default (custom) domain, used for generated users.
    pub default_domain: String,
    /// The user a device-code approval signs in as.
    pub admin_upn: String,
    /// The app registration for the device-code flow.
    pub public_client_id: String,
    /// Confidential app registrations: (client id, secret).
    pub apps: Vec<(String, String)>,
    state: Arc<state::State>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Sim {
    /// Starts the simulator; it is bound and serving when this returns.
    pub async fn start(opts: SimOptions) -> anyhow::Result<Sim> {
        let seed_json = match &opts.seed {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("reading seed {}: {e}", p.display()))?,
            None => tenant::BUILTIN_SEED.to_owned(),
        };
        let users = opts.users;
        let mut tenant =
            tokio::task::spawn_blocking(move || tenant::Tenant::load(&seed_json, users)).await??;
        tenant.changes = delta::ChangeLog::new(opts.delta_log_cap, opts.delta_token_ttl);
        tenant.forced_licence_errors = licences::forced_errors(&tenant, &opts.licence_errors)?;
        let listener = tokio::net::TcpListener::bind(opts.listen).await?;
        let addr = listener.local_addr()?;
        let host = match addr.ip() {
            ip if ip.is_unspecified() && ip.is_ipv4() => format!("127.0.0.1:{}", addr.port()),
            ip if ip.is_unspecified() => format!("[::1]:{}", addr.port()),
            std::net::IpAddr::V6(ip) => format!("[{ip}]:{}", addr.port()),
            ip => format!("{ip}:{}", addr.port()),
        };
        let (acceptor, ca_cert_pem, ca_cert_path) = if opts.tls {
            let (acceptor, pem) = server::make_tls()?;
            let dir = std::env::temp_dir().join("m365sync-sim");
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(format!("ca-{}-{}.pem", std::process::id(), addr.port()));
            std::fs::write(&path, &pem)?;
            (Some(acceptor), Some(pem), Some(path))
        } else {
            (None, None, None)
        };
        let scheme = if opts.tls { "https" } else { "http" };
        let sim_info = (
            tenant.id.clone(),
            tenant.initial_domain.clone(),
            tenant.default_domain.clone(),
            tenant.admin.user_principal_name.clone(),
            tenant.public_client_id().to_owned(),
            tenant
                .apps
                .iter()
                .filter(|a| !a.public_client)
                .filter_map(|a| a.secrets.first().map(|s| (a.client_id.clone(), s.clone())))
                .collect::<Vec<_>>(),
        );
        let state = Arc::new(state::State {
            fixed: state::Fixed::of(&tenant),
            tenant: std::sync::RwLock::new(tenant),
            budgets: Mutex::new(budget::Budgets::new(
                opts.ru_budget,
                opts.write_budget,
                opts.budget_window,
            )),
            chaos: Mutex::new(fault::Chaos::new(
                opts.error_rate,
                opts.reset_rate,
                opts.ambiguous_rate,
                opts.fault_seed,
            )),
            writes_applied: std::sync::atomic::AtomicUsize::new(0),
            throttled: std::sync::atomic::AtomicUsize::new(0),
            tls: opts.tls,
            local_host: host.clone(),
            token_lifetime: opts.token_lifetime,
            device_code_interval: opts.device_code_interval,
            read_only_tenant: opts.read_only_tenant,
            object_quota: opts.object_quota,
            sign_in_policy: opts.sign_in_policy,
            password_grant: opts.password_grant,
            device_code_lifetime: opts.device_code_lifetime,
            latency: opts.latency,
            header_timeout: opts.header_timeout,
            idle_timeout: opts.idle_timeout,
            max_body_bytes: opts.max_body_bytes,
            faults: FaultPlan::with_rules(opts.faults.clone()),
            delta: delta::Settings {
                ttl: opts.delta_token_ttl,
                page_size: opts.delta_page_size.max(1),
                instance: rand::random(),
                started: Instant::now(),
            },
            auth: Mutex::new(state::AuthStore::default()),
            counts: Mutex::new(HashMap::new()),
        });
        let cancel = CancellationToken::new();
        let task = tokio::spawn(server::serve(
            listener,
            acceptor,
            router(state.clone()),
            state.clone(),
            cancel.clone(),
        ));
        let (tenant_id, initial_domain, default_domain, admin_upn, public_client_id, apps) =
            sim_info;
        Ok(Sim {
            base_url: format!("{scheme}://{host}"),
            ca_cert_path,
            ca_cert_pem,
            tenant_id,
            initial_domain,
            default_domain,
            admin_upn,
            public_client_id,
            apps,
            state,
            cancel,
            task: Some(task),
        })
    }

    /// A cheap clonable handle to add fault rules at run time.
    pub fn faults(&self) -> FaultPlan {
        self.state.faults.clone()
    }

    /// As if a person entered `user_code` on /devicelogin and approved (signs in as the admin).
    /// False if the code is unknown, expired or already used.
    pub fn approve(&self, user_code: &str) -> bool {
        self.state.complete_device_flow(user_code, true).is_ok()
    }

    /// As if a person declined the sign-in.
    pub fn decline(&self, user_code: &str) -> bool {
        self.state.complete_device_flow(user_code, false).is_ok()
    }

    /// Device codes waiting for a person (not expired, not yet approved or declined).
    pub fn pending_user_codes(&self) -> Vec<String> {
        self.state.pending_user_codes()
    }

    /// Live users.
    pub fn user_count(&self) -> usize {
        self.state.tenant().users.len()
    }

    /// The live user with this UPN (case-insensitive), every modeled property included
    /// (`accountEnabled`, `mailNickname`, `proxyAddresses`, ...), as Graph would write it.
    pub fn user_by_upn(&self, upn: &str) -> Option<serde_json::Value> {
        let t = self.state.tenant();
        let i = *t.by_upn.get(&upn.to_lowercase())?;
        let mut out = Vec::new();
        tenant::write_user(&mut out, &t.users[i as usize], &tenant::all_modeled_props());
        serde_json::from_slice(&out).ok()
    }

    /// How many users, live AND soft-deleted, have this UPN (case-insensitive): "exactly once".
    pub fn users_with_upn_count(&self, upn: &str) -> usize {
        let t = self.state.tenant();
        t.users
            .iter()
            .chain(&t.deleted)
            .filter(|u| u.user_principal_name.eq_ignore_ascii_case(upn))
            .count()
    }

    /// The group with this displayName (case-insensitive; the first created if several), as
    /// Graph returns it (default properties).
    pub fn group_by_name(&self, name: &str) -> Option<serde_json::Value> {
        let t = self.state.tenant();
        t.groups
            .iter()
            .find(|g| g.display_name.eq_ignore_ascii_case(name))
            .map(|g| g.to_json(None))
    }

    /// Adds a group as if made in Microsoft 365 by hand or by a run that was killed before it
    /// heard the answer (test seeding, not counted as a write). Its id.
    pub fn add_group(&self, display_name: &str, mail_nickname: &str, unified: bool) -> String {
        let mut t = self.state.tenant_mut();
        let g = groups::Group {
            id: util::new_guid(),
            display_name: display_name.to_string(),
            mail_nickname: mail_nickname.to_string(),
            mail_enabled: unified,
            security_enabled: !unified,
            group_types: if unified {
                vec!["Unified".into()]
            } else {
                Vec::new()
            },
            description: None,
            mail: unified.then(|| format!("{mail_nickname}@{}", t.initial_domain)),
            created_date_time: writes::now_iso(),
            members: Vec::new(),
            licences: Vec::new(),
        };
        let id = g.id.clone();
        t.groups.push(g);
        id
    }

    /// How many groups the tenant has.
    pub fn group_count(&self) -> usize {
        self.state.tenant().groups.len()
    }

    /// User principal names of the members of the group with this id (case-insensitive), in
    /// the order they were added; None if there is no such group.
    pub fn group_members(&self, group_id: &str) -> Option<Vec<String>> {
        let t = self.state.tenant();
        let g = t
            .groups
            .iter()
            .find(|g| g.id.eq_ignore_ascii_case(group_id))?;
        Some(
            g.members
                .iter()
                .filter_map(|m| t.user(m).map(|u| u.user_principal_name.clone()))
                .collect(),
        )
    }

    /// Soft-deleted users (restorable).
    pub fn deleted_count(&self) -> usize {
        self.state.tenant().deleted.len()
    }

    /// Writes applied (create, update, delete, restore, permanent delete), direct or batched.
    pub fn write_count(&self) -> usize {
        self.state
            .writes_applied
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Graph 429s sent: by the throttling budgets (direct requests and batch items) and by
    /// `429` fault rules.
    pub fn throttled_count(&self) -> usize {
        self.state
            .throttled
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Soft-deletes the live user with this UPN (test seeding); false if there is none.
    /// Not counted as a write.
    pub fn soft_delete(&self, upn: &str) -> bool {
        let mut t = self.state.tenant_mut();
        match t.by_upn.get(&upn.to_lowercase()) {
            Some(&i) => {
                writes::soft_delete_at(&mut t, i as usize);
                true
            }
            None => false,
        }
    }

    /// How many requests arrived whose method is `method` (`"*"` = any) and whose path starts
    /// with `path_prefix` (faulted requests included).
    pub fn request_count(&self, method: &str, path_prefix: &str) -> usize {
        self.state.request_count(method, path_prefix)
    }

    /// A Graph client signed in app-only as the first seeded app (client credentials), its
    /// tokens cached at `token_cache`: for benches and tests where sign-in is not under test.
    pub async fn app_client(
        &self,
        token_cache: PathBuf,
    ) -> anyhow::Result<crate::graph::GraphClient> {
        use crate::auth::{Authenticator, Session, TokenCache};
        let (id, secret) = self.apps[0].clone();
        let http = crate::config::http_client(None)?;
        let auth = Authenticator::new(http.clone(), &self.base_url, &self.tenant_id, &id);
        let tokens = auth.client_credentials(&secret).await?;
        let session = Session::start(auth, TokenCache::new(token_cache), tokens, Some(secret))?;
        Ok(crate::graph::GraphClient::new(
            http,
            &format!("{}/v1.0", self.base_url),
            session,
        ))
    }

    /// Stops accepting, closes connections, and waits for the server task.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(p) = &self.ca_cert_path {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn router(st: Arc<state::State>) -> Router {
    Router::new()
        .route(
            "/common/discovery/instance",
            get(identity::instance_discovery),
        )
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(identity::openid_configuration),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(identity::jwks))
        .route(
            "/{tenant}/oauth2/v2.0/devicecode",
            post(identity::devicecode).get(identity::post_only),
        )
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(identity::token).get(identity::post_only),
        )
        .route(
            "/devicelogin",
            get(identity::devicelogin_page).post(identity::devicelogin_submit),
        )
        .route("/v1.0", any(graph::graph))
        .route("/v1.0/{*rest}", any(graph::graph))
        .fallback(not_found)
        .with_state(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimArgs,
    }

    #[test]
    fn cli_arguments() {
        let cli = Cli::try_parse_from([
            "sim",
            "--listen",
            "127.0.0.1:8443",
            "--users",
            "100000",
            "--tls",
            "--latency-ms",
            "20",
            "--fault",
            "GET /v1.0/users #2 429:1",
            "--fault",
            "POST /organizations/oauth2/v2.0/token next3 slow_down",
        ])
        .unwrap();
        let o = cli.args.options();
        assert_eq!(o.listen.port(), 8443);
        assert_eq!(o.users, Some(100_000));
        assert!(o.tls);
        assert_eq!(o.latency, Duration::from_millis(20));
        assert_eq!(o.token_lifetime, Duration::from_secs(3599));
        assert_eq!(o.device_code_interval, 5);
        assert_eq!(o.faults.len(), 2);
        assert_eq!(o.faults[1].kind, FaultKind::SlowDown);
        assert!(Cli::try_parse_from(["sim", "--fault", "GET /x 418"]).is_err());
        assert_eq!(o.write_budget, None);
        assert_eq!(o.error_rate, 0.0);
        assert_eq!(o.header_timeout, Duration::from_secs(30));
        assert_eq!(o.idle_timeout, Duration::from_secs(120));
        assert_eq!(o.max_body_bytes, 4 << 20);
        assert_eq!(o.delta_token_ttl, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(o.delta_page_size, 200);

        let cli = Cli::try_parse_from([
            "sim",
            "--write-budget",
            "100",
            "--ru-budget",
            "500",
            "--budget-window-secs",
            "2",
            "--error-rate",
            "0.05",
            "--reset-rate",
            "0.01",
            "--ambiguous-rate",
            "0.02",
            "--fault-seed",
            "42",
            "--header-timeout-secs",
            "0.5",
            "--idle-timeout-secs",
            "2",
            "--max-body-bytes",
            "1024",
        ])
        .unwrap();
        let o = cli.args.options();
        assert_eq!(o.write_budget, Some(100));
        assert_eq!(o.ru_budget, Some(500));
        assert_eq!(o.budget_window, Some(Duration::from_secs(2)));
        assert_eq!(o.error_rate, 0.05);
        assert_eq!(o.reset_rate, 0.01);
        assert_eq!(o.ambiguous_rate, 0.02);
        assert_eq!(o.fault_seed, Some(42));
        assert_eq!(o.header_timeout, Duration::from_millis(500));
        assert_eq!(o.idle_timeout, Duration::from_secs(2));
        assert_eq!(o.max_body_bytes, 1024);
    }
}

async fn not_found() -> (axum::http::StatusCode, &'static str) {
    (axum::http::StatusCode::NOT_FOUND, "Not Found")
}

const FAULT_HELP: &str = "Inject a fault (repeatable). Syntax: `[METHOD] /path-prefix [WHEN] KIND`.
  METHOD  GET, POST, PATCH, ... or `*` (omitted = any method)
  WHEN    `#N` = only the N-th matching request; `nextK` = the next K matching requests;
          `always` = every matching request (omitted = next1). Counting starts at startup.
  KIND    `429` or `429:SECS` (Retry-After SECS, default 1), `503`, `slow_down` (token endpoint
          answers slow_down), `reset` (drop the connection without answering)
Examples: --fault 'GET /v1.0/users #2 429:1'  --fault 'POST /organizations/oauth2/v2.0/token next3 slow_down'";

/// `m365sync sim`: run the simulator until Ctrl-C.
#[derive(clap::Args, Debug, Clone)]
pub struct SimArgs {
    /// Address to listen on (port 0 = any free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Number of users in the tenant: the seed's first, then generated (deterministic).
    #[arg(long, value_name = "N")]
    pub users: Option<usize>,
    /// Tenant seed JSON (default: the built-in demo tenant, Northwind Traders).
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// Serve https with a self-signed CA (its PEM path is printed as `ca-cert <path>`).
    /// Needed by MSAL and azure-identity, which refuse http authorities.
    #[arg(long)]
    pub tls: bool,
    /// Latency added to every request, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency_ms: u64,
    /// Access-token lifetime in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3599)]
    pub token_lifetime_secs: u64,
    /// Device-code polling interval in seconds (faster polls get slow_down).
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub device_code_interval: u64,
    /// Device-code lifetime in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 900)]
    pub device_code_lifetime_secs: u64,
    #[arg(long = "fault", value_name = "RULE", help = "Inject a fault (repeatable), e.g. 'GET /v1.0/users #2 429:1'", long_help = FAULT_HELP)]
    pub faults: Vec<FaultRule>,
    /// Writes allowed per app per write window (default 3000; over it: 429 WriteLimitExceeded).
    #[arg(long, value_name = "N")]
    pub write_budget: Option<u32>,
    /// Resource units allowed per app per 10 s (default 8000; over it: 429 ResourceUnitLimitExceeded).
    #[arg(long, value_name = "N")]
    pub ru_budget: Option<u32>,
    /// Length of the write window in seconds (default 150), e.g. 2 for fast tests.
    #[arg(long, value_name = "S")]
    pub budget_window_secs: Option<f64>,
    /// Fraction 0..1 of Graph requests (batch items included) answered 503/500, not applied.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub error_rate: f64,
    /// Fraction 0..1 of Graph requests answered by dropping the connection (not applied).
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub reset_rate: f64,
    /// Fraction 0..1 of Graph write requests applied and then answered by dropping the connection.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub ambiguous_rate: f64,
    /// Seed of the random faults (--error-rate, --reset-rate, --ambiguous-rate).
    #[arg(long, value_name = "SEED")]
    pub fault_seed: Option<u64>,
    /// Record group licences of SKU PART in error on every member with ERROR (e.g.
    /// `SPE_E3=DependencyViolation`): group-licensing errors the simulator does not work out
    /// itself. Repeatable.
    #[arg(long = "licence-error", value_name = "PART=ERROR")]
    pub licence_errors: Vec<String>,
    /// Refuse every Graph write as a read-only (partner-managed, migrating) tenant would.
    #[arg(long)]
    pub read_only_tenant: bool,
    /// Directory object quota: creates beyond N users + groups answer Directory_QuotaExceeded.
    #[arg(long, value_name = "N")]
    pub object_quota: Option<usize>,
    /// Conditional Access on device-code sign-in: `mfa` (AADSTS50076) or `block` (AADSTS53003).
    #[arg(long, value_enum, value_name = "POLICY")]
    pub sign_in_policy: Option<SignInPolicy>,
    /// Serve the password grant (ROPC): AADSTS50126 wrong password, 50034 unknown user,
    /// 50053 Smart Lockout after 10 failures.
    #[arg(long)]
    pub password_grant: bool,
    /// Seconds a connection has to bring its first complete request (TLS handshake and head),
    /// and a request its body; slower connections are dropped.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_HEADER_TIMEOUT.as_secs_f64())]
    pub header_timeout_secs: f64,
    /// Seconds a kept-alive connection may stay without a new request before it is closed.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_IDLE_TIMEOUT.as_secs_f64())]
    pub idle_timeout_secs: f64,
    /// Largest request body accepted, in bytes (larger: 413).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Seconds a /users/delta token stays valid (older: 400 syncStateNotFound).
    #[arg(long, value_name = "SECS", default_value_t = delta::DEFAULT_TOKEN_TTL.as_secs_f64())]
    pub delta_token_ttl_secs: f64,
    /// Items per /users/delta page.
    #[arg(long, value_name = "N", default_value_t = delta::DEFAULT_PAGE_SIZE)]
    pub delta_page_size: usize,
    /// Changes remembered for delta rounds (a token older than the oldest kept is expired).
    #[arg(long, value_name = "N", default_value_t = delta::DEFAULT_LOG_CAP)]
    pub delta_log_cap: usize,
}

/// A positive, finite number of seconds, or the default.
fn secs(s: f64, default: Duration) -> Duration {
    if s.is_finite() && s > 0.0 {
        Duration::from_secs_f64(s)
    } else {
        default
    }
}

impl SimArgs {
    pub fn options(&self) -> SimOptions {
        SimOptions {
            listen: self.listen,
            users: self.users,
            seed: self.seed.clone(),
            tls: self.tls,
            latency: Duration::from_millis(self.latency_ms),
            token_lifetime: Duration::from_secs(self.token_lifetime_secs),
            device_code_interval: self.device_code_interval,
            device_code_lifetime: Duration::from_secs(self.device_code_lifetime_secs),
            faults: self.faults.clone(),
            write_budget: self.write_budget,
            ru_budget: self.ru_budget,
            budget_window: self
                .budget_window_secs
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(Duration::from_secs_f64),
            error_rate: self.error_rate,
            reset_rate: self.reset_rate,
            ambiguous_rate: self.ambiguous_rate,
            fault_seed: self.fault_seed,
            read_only_tenant: self.read_only_tenant,
            object_quota: self.object_quota,
            licence_errors: self
                .licence_errors
                .iter()
                .map(|x| match x.split_once('=') {
                    Some((p, e)) => (p.trim().to_string(), e.trim().to_string()),
                    None => (x.trim().to_string(), String::new()),
                })
                .collect(),
            sign_in_policy: self.sign_in_policy,
            password_grant: self.password_grant,
            header_timeout: secs(self.header_timeout_secs, DEFAULT_HEADER_TIMEOUT),
            idle_timeout: secs(self.idle_timeout_secs, DEFAULT_IDLE_TIMEOUT),
            max_body_bytes: self.max_body_bytes,
            delta_token_ttl: secs(self.delta_token_ttl_secs, delta::DEFAULT_TOKEN_TTL),
            delta_page_size: self.delta_page_size.max(1),
            delta_log_cap: self.delta_log_cap.max(1),
        }
    }
}

/// Starts the simulator, prints `listening on <base-url>`, then with `--tls` `ca-cert <path>`,
/// `tenant <id>`, `client <public-client-id>`, one `app <client-id> <secret>` per confidential
/// app, flushes stdout, and serves until Ctrl-C.
pub async fn run_cli(args: SimArgs) -> anyhow::Result<()> {
    let t0 = Instant::now();
    // The simulator's own log lines (accept trouble, and with M365SYNC_LOG=debug every
    // request) go to stderr; in-process (demo, tests) they follow the host's subscriber.
    let filter = tracing_subscriber::EnvFilter::try_from_env("M365SYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("m365sync::sim=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let sim = Sim::start(args.options()).await?;
    {
        // One write of the whole banner; a reader that stops reading after the lines it
        // wanted (a closed pipe) is no reason to stop serving.
        let mut banner = format!("listening on {}\n", sim.base_url);
        if let Some(p) = &sim.ca_cert_path {
            banner.push_str(&format!("ca-cert {}\n", p.display()));
        }
        banner.push_str(&format!("tenant {}\n", sim.tenant_id));
        banner.push_str(&format!("client {}\n", sim.public_client_id));
        for (id, secret) in &sim.apps {
            banner.push_str(&format!("app {id} {secret}\n"));
        }
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(banner.as_bytes()).and_then(|()| out.flush()) {
            tracing::warn!("the simulator's banner was not read to the end: {e}");
        }
    }
    let o = args.options();
    eprintln!(
        "throttling per app: {} RU / 10 s, {} writes / {} s; random faults: error {}, reset {}, \
         ambiguous {}{}; {} soft-deleted users",
        o.ru_budget.unwrap_or(budget::DEFAULT_RU_BUDGET),
        o.write_budget.unwrap_or(budget::DEFAULT_WRITE_BUDGET),
        o.budget_window
            .unwrap_or(budget::WRITE_WINDOW)
            .as_secs_f64(),
        o.error_rate,
        o.reset_rate,
        o.ambiguous_rate,
        o.fault_seed
            .map(|s| format!(" (seed {s})"))
            .unwrap_or_default(),
        sim.deleted_count(),
    );
    eprintln!(
        "m365sync simulator: {} users, domains {} (initial) / {} (default), sign-in page {}/devicelogin \
         (approves as {}); started in {} ms; Ctrl-C to stop",
        sim.user_count(),
        sim.initial_domain,
        sim.default_domain,
        sim.base_url,
        sim.admin_upn,
        t0.elapsed().as_millis()
    );
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
