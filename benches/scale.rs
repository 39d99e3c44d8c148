//! A big tenant at a realistic latency: (a) sequential raw paging, (b) m365sync's cold listing
//! in shards (then saved as the snapshot), (c) warm: the snapshot loaded plus one delta round
//! with 1% of the users changed (when the simulator serves `/users/delta`), as the console
//! starts (`snapshot::load_and_refresh`: the copy loads while the round's requests are in
//! flight), (d) the time to the first row drawn from a warm start (in a fresh process, the
//! console's own path: `snapshot::load_copy` with the runtime's `copy_to_screen`, each action
//! through `update`, a frame), (e) the snapshot's load time (in a fresh process, as a start
//! is) and size on disk, (f) RSS per loaded user (and per user of the cold listing). Ratios
//! against (a) measured in the same run; never wall-clock asserts.
//!
//! `cargo bench --bench scale -- --users 100000 --latency-ms 100 [--concurrency 16]
//!  [--loads 3]`; `cargo bench --bench scale -- --synthetic 1000000`: only (e) and (f), for a
//! snapshot of that many made-up users (no simulator).
use m365sync::graph::UserAttr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use m365sync::auth::{Authenticator, Session, TokenCache};
use m365sync::graph::{model::USER_SELECT, paths, ColdListingOptions, GraphClient, ListingMode};
use m365sync::snapshot::{self, FullListingEnd, RefreshOptions, SnapshotStore};
use reqwest::Method;

struct SimProcess {
    child: Child,
    base: String,
    tenant: String,
    app: (String, String),
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The simulator in its own process, so its memory and CPU are not the client's.
fn start_sim(users: usize, latency_ms: u64) -> SimProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_m365sync"))
        .args(["sim", "--users", &users.to_string()])
        .args(["--latency-ms", &latency_ms.to_string()])
        // The large-tenant read quota (8,000 RU / 10 s, the default) and room for the 1%
        // of changes of (c).
        .args(["--write-budget", "10000000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the simulator");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut base, mut tenant, mut app) = (String::new(), String::new(), None);
    while app.is_none() {
        let line = lines.next().expect("simulator output").unwrap();
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("listening"), Some("on"), Some(url)) => base = url.to_string(),
            (Some("tenant"), Some(t), _) => tenant = t.to_string(),
            (Some("app"), Some(id), Some(secret)) => app = Some((id.into(), secret.into())),
            _ => {}
        }
    }
    // Keep reading: a closed pipe would kill the simulator at its next line (EPIPE).
    std::thread::spawn(move || for _ in lines {});
    SimProcess {
        child,
        base,
        tenant,
        app: app.unwrap(),
    }
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// (a) Every page fetched and its bytes discarded: only what following the nextLink needs.
async fn raw_paging(http: &reqwest::Client, base: &str, token: &str) -> (usize, usize) {
    let marker = "\"@odata.nextLink\":\"";
    let mut next = Some(format!(
        "{base}/v1.0/users?$select={}&$top=999",
        USER_SELECT.join(",")
    ));
    let (mut pages, mut bytes) = (0, 0);
    while let Some(url) = next.take() {
        let body = http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        pages += 1;
        bytes += body.len();
        let text = std::str::from_utf8(&body).unwrap();
        if let Some(at) = text.rfind(marker) {
            let rest = &text[at + marker.len()..];
            next = Some(rest[..rest.find('"').unwrap()].to_string());
        }
    }
    (pages, bytes)
}

/// CPU time (user + system) of this process so far.
fn cpu_time() -> Duration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The child: loads the snapshot at `path` in a fresh process and prints what it cost.
fn load_only(path: &str) {
    let store = SnapshotStore::open_path(std::path::Path::new(path)).unwrap();
    let before = rss_kib("VmRSS:");
    let cpu = cpu_time();
    let t = Instant::now();
    let snap = store.load().unwrap().unwrap();
    let took = t.elapsed();
    let cpu = cpu_time() - cpu;
    let after = rss_kib("VmRSS:");
    let users = snap.users().count();
    println!(
        "LOAD users={users} secs={} cpu={} rss_kib={}",
        took.as_secs_f64(),
        cpu.as_secs_f64(),
        after.saturating_sub(before),
    );
    std::mem::forget(snap); // exit without the drop
}

/// The child for (d): the console's start from the snapshot at `path`, timed to its first row
/// drawn. What `Effect::LoadUsers` runs before any Graph answer is in (the head read, then
/// `snapshot::load_copy` with the runtime's `copy_to_screen`: each page classified and sent
/// as it decodes), and what the run loop does with each action (`update`, then a frame of
/// the Import tab, 120x40), on a tokio runtime as the console's. The time is that of the
/// first frame in which the first user's row is drawn; the load goes on to the end.
fn first_row_only(path: &str) {
    use m365sync::app::state::{Load, Phase};
    use m365sync::app::{update, Action, AppState};
    use ratatui::{backend::TestBackend, Terminal};
    let store = SnapshotStore::open_path(std::path::Path::new(path)).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut s = AppState::new("bench.onmicrosoft.com");
    s.data.phase = Phase::Main;
    s.data.directory_loaded = true;
    s.data.load_gen = 1;
    s.data.load = Load::Loading { pages: 0 };
    let index = std::sync::Arc::new(m365sync::directory::DirectoryIndex::default());
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let t = Instant::now();
    let (first_row, users) = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let head = {
            let s = store.clone();
            tokio::task::spawn_blocking(move || s.head())
                .await
                .unwrap()
                .unwrap()
                .unwrap()
        };
        let on_copy = m365sync::app::runtime::copy_to_screen(
            (1, s.data.index_version, index),
            tx,
            Default::default(),
        );
        let loading = snapshot::load_copy(&store, head.graph_base.clone(), true, on_copy);
        let screen = async {
            let mut first_row = None;
            while let Some(a) = rx.recv().await {
                let done = matches!(a, Action::CopyLoaded { .. });
                update(&mut s, a);
                if first_row.is_none() {
                    term.draw(|f| m365sync::app::draw(f, &s)).unwrap();
                    if !s.data.rows.is_empty() {
                        let buf = term.backend().buffer();
                        let screen: String = buf.content().iter().map(|c| c.symbol()).collect();
                        let upn: String = s
                            .data
                            .rows
                            .user(0)
                            .user_principal_name
                            .chars()
                            .take(12)
                            .collect();
                        if screen.contains(&upn) {
                            first_row = Some(t.elapsed());
                        }
                    }
                }
                if done {
                    break;
                }
            }
            (
                first_row.expect("the first row is drawn"),
                s.data.rows.len(),
            )
        };
        let (loaded, shown) = tokio::join!(loading, screen);
        loaded.unwrap().unwrap();
        shown
    });
    println!(
        "FIRST users={users} first_row_secs={} all_rows_secs={}",
        first_row.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
}

/// Loads of the snapshot at `path` in fresh processes: (median wall time, median CPU time,
/// RSS KiB of the last, median time to the first row on screen, median time to every row).
fn loads_in_children(
    path: &std::path::Path,
    users: usize,
    loads: usize,
) -> (Duration, Duration, u64, Duration, Duration) {
    let child = |arg: &str, tag: &str| {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([arg, path.to_str().unwrap()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.starts_with(tag))
            .unwrap_or_else(|| {
                panic!(
                    "child output: {text} {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
            .to_string();
        move |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .unwrap()
                .to_string()
        }
    };
    let secs = |v: String| Duration::from_secs_f64(v.parse().unwrap());
    let (mut times, mut cpus, mut firsts, mut alls) = (vec![], vec![], vec![], vec![]);
    let mut rss = 0u64;
    for _ in 0..loads.max(1) {
        let field = child("--load-only", "LOAD");
        assert_eq!(field("users=").parse::<usize>().unwrap(), users);
        times.push(secs(field("secs=")));
        cpus.push(secs(field("cpu=")));
        rss = field("rss_kib=").parse().unwrap();
        let field = child("--first-row-only", "FIRST");
        assert_eq!(field("users=").parse::<usize>().unwrap(), users);
        firsts.push(secs(field("first_row_secs=")));
        alls.push(secs(field("all_rows_secs=")));
    }
    (
        median(times),
        median(cpus),
        rss,
        median(firsts),
        median(alls),
    )
}

/// `--synthetic N`: a snapshot of N Graph-like users written and loaded, no simulator.
fn synthetic(users: usize, loads: usize) {
    let data = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(data.path(), "synthetic").unwrap();
    let t = Instant::now();
    let mut w = store.begin_full().unwrap();
    let mut page = Vec::with_capacity(999);
    for i in 0..users {
        let upn = format!("given{}.surname{i}@contoso.onmicrosoft.com", i % 977);
        page.push(m365sync::graph::User {
            id: uuid::Uuid::new_v4().to_string(),
            mail: (i % 10 != 0).then(|| upn.clone()),
            user_principal_name: upn,
            display_name: Some(format!("Given{} Surname{i}", i % 977)),
            given_name: Some(format!("Given{}", i % 977)),
            surname: Some(format!("Surname{i}")),
            account_enabled: Some(i % 13 != 0),
            // What a real tenant's users typically carry.
            attrs: [
                (UserAttr::JobTitle, format!("Title {}", i % 50)),
                (UserAttr::Department, format!("Dept {}", i % 20)),
                (UserAttr::UsageLocation, "US".into()),
            ]
            .into_iter()
            .collect(),
            ..m365sync::graph::User::default()
        });
        if page.len() == 999 {
            w.write_page(&page).unwrap();
            page.clear();
        }
    }
    w.write_page(&page).unwrap();
    w.commit(FullListingEnd {
        graph_base: "https://graph.microsoft.com/v1.0".into(),
        as_of: time::OffsetDateTime::now_utc(),
        delta_link: Some("https://graph.microsoft.com/v1.0/users/delta?$deltatoken=x".into()),
        deleted: vec![],
        domains: vec![],
    })
    .unwrap();
    let save = t.elapsed();
    let (load, cpu, rss, first_row, all_rows) = loads_in_children(store.path(), users, loads);
    let size = store.size_on_disk();
    println!(
        "synthetic snapshot of {users} users: written in {save:.2?}; load (fresh process, \
         median of {loads}) {load:.2?} ({cpu:.2?} CPU); {:.1} MiB on disk ({:.0} bytes per user); RSS {:.0} \
         bytes per user; (d) first row drawn {first_row:.2?} (every row on screen {all_rows:.2?})",
        size as f64 / (1 << 20) as f64,
        size as f64 / users as f64,
        rss as f64 * 1024.0 / users as f64
    );
}

fn main() {
    let mut users = 100_000usize;
    let mut latency = 100u64;
    let mut concurrency = ColdListingOptions::default().concurrency;
    let mut loads = 3usize;
    let mut max_prefix_len = ColdListingOptions::default().max_prefix_len;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--users" => users = args.next().unwrap().parse().unwrap(),
            "--latency-ms" => latency = args.next().unwrap().parse().unwrap(),
            "--concurrency" => concurrency = args.next().unwrap().parse().unwrap(),
            "--loads" => loads = args.next().unwrap().parse().unwrap(),
            "--max-prefix-len" => max_prefix_len = args.next().unwrap().parse().unwrap(),
            "--load-only" => return load_only(&args.next().unwrap()),
            "--first-row-only" => return first_row_only(&args.next().unwrap()),
            "--synthetic" => {
                let n = args.next().unwrap().parse().unwrap();
                let loads = std::env::args()
                    .skip_while(|a| a != "--loads")
                    .nth(1)
                    .map_or(3, |v| v.parse().unwrap());
                return synthetic(n, loads);
            }
            _ => {} // cargo passes --bench
        }
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!(
        "scale: {users} users, simulator latency {latency} ms per request, {concurrency} \
         shards in flight"
    );
    let sim = start_sim(users, latency);
    let data = tempfile::tempdir().unwrap();
    let http = m365sync::config::http_client(None).unwrap();
    let (graph, token) = rt.block_on(async {
        let auth = Authenticator::new(http.clone(), &sim.base, &sim.tenant, &sim.app.0);
        let tokens = auth.client_credentials(&sim.app.1).await.unwrap();
        let token = tokens.access_token.clone();
        let session = Session::start(
            auth,
            TokenCache::new(data.path().join("t.json")),
            tokens,
            Some(sim.app.1.clone()),
        )
        .unwrap();
        let graph = GraphClient::new(http.clone(), &format!("{}/v1.0", sim.base), session);
        (graph, token)
    });
    // Warm the connection once.
    rt.block_on(async {
        graph
            .get(&format!("{}/v1.0/users?$top=1", sim.base))
            .await
            .unwrap()
    });

    // (a)
    let t = Instant::now();
    let (pages, bytes) = rt.block_on(raw_paging(&http, &sim.base, &token));
    let a = t.elapsed();
    println!(
        "(a) sequential raw paging:              {a:>10.2?}  ({pages} pages, {} MiB)",
        bytes >> 20
    );

    // (b)
    let opts = ColdListingOptions {
        concurrency,
        max_prefix_len,
        ..ColdListingOptions::default()
    };
    let mut gauge = 0u64;
    let (mut planned, mut first, mut last) = (None, None, Duration::ZERO);
    let rss_before = rss_kib("VmRSS:");
    let t = Instant::now();
    let listing = rt
        .block_on(graph.cold_listing(&opts, &mut |e| match e {
            m365sync::graph::ListingEvent::Page { listed, .. } => {
                gauge = listed;
                first.get_or_insert(t.elapsed());
                last = t.elapsed();
            }
            m365sync::graph::ListingEvent::Planned { .. } => planned = Some(t.elapsed()),
            m365sync::graph::ListingEvent::Restart { .. } => {}
        }))
        .unwrap();
    let b = t.elapsed();
    let rss_listing = rss_kib("VmRSS:").saturating_sub(rss_before);
    assert_eq!(listing.users as usize, users, "complete");
    assert_eq!(gauge, listing.users);
    let how = match &listing.mode {
        ListingMode::Sharded { shards, case_rule } => {
            format!("{shards} shards, startswith {case_rule:?}")
        }
        ListingMode::Sequential { reason } => format!("sequential: {reason}"),
    };
    println!(
        "(b) cold listing:                       {b:>10.2?}  a/b = {:.1}x faster  ({how}; {} \
         requests for {pages} pages of data)",
        a.as_secs_f64() / b.as_secs_f64(),
        listing.requests
    );
    println!(
        "    planned after {:.2?} (link, count, prefix counts), first users at {:.2?}, last \
         page at {last:.2?}",
        planned.unwrap_or_default(),
        first.unwrap_or_default()
    );
    // Again, knowing the tenant's size (as a listing after an expired link does).
    let t = Instant::now();
    let again = rt
        .block_on(graph.cold_listing(
            &ColdListingOptions {
                expected_users: Some(users as u64),
                ..opts.clone()
            },
            &mut |_| {},
        ))
        .unwrap();
    let b2 = t.elapsed();
    assert_eq!(again.users as usize, users);
    println!(
        "    again, the size known beforehand:   {b2:>10.2?}  a/b = {:.1}x faster  ({} requests)",
        a.as_secs_f64() / b2.as_secs_f64(),
        again.requests
    );
    drop(again);
    let delta_ok = listing.delta_link.is_some();
    if let Some(e) = &listing.delta_error {
        println!("    no delta link from the simulator: {e}");
    }
    // Saved as the snapshot (with the deleted users and domains, as full_refresh does).
    let store = SnapshotStore::open(data.path(), &sim.tenant).unwrap();
    let (deleted, domains) = rt.block_on(async {
        let (d, m) = tokio::join!(graph.list_deleted_users(), graph.list_domains());
        (d.unwrap(), m.unwrap())
    });
    let t = Instant::now();
    let mut w = store.begin_full().unwrap();
    for p in &listing.pages {
        w.write_page(p).unwrap();
    }
    w.commit(FullListingEnd {
        graph_base: graph.base().to_string(),
        as_of: listing.started_at,
        delta_link: listing.delta_link.clone(),
        deleted,
        domains,
    })
    .unwrap();
    let save = t.elapsed();
    println!("    saving it as the snapshot:          {save:>10.2?}");
    drop(listing);

    // (e) + (f): loads in fresh processes, as a start is.
    let (load, cpu, rss, first_row, all_rows) = loads_in_children(store.path(), users, loads);
    let size = store.size_on_disk();
    println!(
        "(e) snapshot load (fresh process):      {load:>10.2?}  load/a = {:.4}  (median of \
         {loads}, {cpu:.2?} CPU; {:.1} MiB on disk, {:.0} bytes per user)",
        load.as_secs_f64() / a.as_secs_f64(),
        size as f64 / (1 << 20) as f64,
        size as f64 / users as f64
    );
    println!(
        "(f) RSS of the loaded snapshot:         {:.0} bytes per user  (the cold listing's pages: \
         {:.0} bytes per user, this process's RSS growth over (b))",
        rss as f64 * 1024.0 / users as f64,
        rss_listing as f64 * 1024.0 / users as f64
    );
    println!(
        "(d) first row drawn, warm start:        {first_row:>10.2?}  (fresh process, the \
         console's path: pages sent as they decode, update, a frame; median of {loads}; every \
         row on screen at {all_rows:.2?})"
    );

    // (c)
    if !delta_ok {
        println!(
            "(c) warm = snapshot load + one delta round: NOT MEASURED: the simulator has no \
             /users/delta yet; the warm start's known part is (e), {load:.2?} = {:.4} of (a)",
            load.as_secs_f64() / a.as_secs_f64()
        );
        return;
    }
    // 1% of the users change their display name.
    let snap = store.load().unwrap().unwrap();
    // Not users mastered on-premises: Graph refuses to change those (the simulator seeds some,
    // and the listing's page order varies from run to run).
    let ids: Vec<String> = snap
        .users()
        .filter(|u| !u.on_premises_sync_enabled)
        .step_by(100)
        .map(|u| u.id.clone())
        .collect();
    drop(snap);
    let t = Instant::now();
    rt.block_on(
        futures::stream::iter(ids.iter())
            .map(|id| {
                let graph = graph.clone();
                async move {
                    graph
                        .request(
                            Method::PATCH,
                            &paths::user(id),
                            Some(br#"{"displayName":"Changed"}"#.to_vec().into()),
                        )
                        .await
                        .unwrap();
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<_>>(),
    );
    println!(
        "    ({} users changed through Graph in {:.2?})",
        ids.len(),
        t.elapsed()
    );
    // The console's warm start: the round's requests leave at once, the copy loads meanwhile.
    let t = Instant::now();
    let (loaded, refreshed) = rt.block_on(snapshot::load_and_refresh(
        &graph,
        &store,
        false,
        &RefreshOptions::default(),
        Box::new(|_| {}),
        &mut |_| {},
    ));
    let c = t.elapsed();
    assert!(loaded.is_some());
    let refreshed = refreshed.unwrap();
    let snapshot::RefreshKind::Delta(summary) = refreshed.kind else {
        panic!("a delta round, not {:?}", refreshed.kind)
    };
    let after = refreshed.snapshot;
    assert_eq!(
        after
            .users()
            .filter(|u| u.display_name.as_deref() == Some("Changed"))
            .count(),
        ids.len()
    );
    println!(
        "(c) warm = snapshot load + delta round: {c:>10.2?}  c/a = {:.4}  (the load while the \
         round's requests are in flight; round: {} changed)",
        c.as_secs_f64() / a.as_secs_f64(),
        summary.changed()
    );
}
