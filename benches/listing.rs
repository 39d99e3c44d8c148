//! Listing a 100k-user tenant: raw paging versus m365sync's full listing, the Import tab's
//! draw and filter-keystroke cost, and memory per user. Figures are ratios against a baseline
//! measured in the same run, never wall-clock asserts.
//!
//! `cargo bench --bench listing` (optionally `-- --users N --rounds R`).
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use m365sync::app::{fixtures, update, Action, AppState};
use m365sync::auth::{Authenticator, Session, TokenCache};
use m365sync::directory::DirectoryIndex;
use m365sync::graph::{model::USER_SELECT, GraphClient};
use m365sync::keymap::Command as Key;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use tui_input::InputRequest;

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

/// The simulator in its own process, so its memory and CPU are not counted as the client's.
fn start_sim(users: usize, latency_ms: u64) -> SimProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_m365sync"))
        .args(["sim", "--users", &users.to_string()])
        .args(["--latency-ms", &latency_ms.to_string()])
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

/// (b) m365sync's listing as the Import tab does it: parse, classify, store in the state.
async fn full_listing(
    graph: &GraphClient,
    index: &DirectoryIndex,
) -> (AppState, Duration, Duration) {
    let mut state = AppState::new("bench");
    let mut pages = graph.list_users(999);
    let (mut tc, mut ts) = (Duration::ZERO, Duration::ZERO);
    while let Some(page) = pages.next().await {
        let users = page.unwrap();
        let t = Instant::now();
        let statuses = users.iter().map(|u| index.classify(u)).collect();
        tc += t.elapsed();
        let t = Instant::now();
        let page = Action::UsersPage {
            gen: state.data.load_gen,
            index_version: state.data.index_version,
            users,
            statuses,
        };
        update(&mut state, page);
        ts += t.elapsed();
    }
    (state, tc, ts)
}

async fn parse_only(graph: &GraphClient) -> usize {
    let mut pages = graph.list_users(999);
    let mut n = 0;
    while let Some(page) = pages.next().await {
        n += page.unwrap().len();
    }
    n
}

fn best_of(n: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..n).map(|_| f()).min().unwrap()
}

struct Listing {
    raw: Duration,
    parse: Duration,
    full: Duration,
    classify: Duration,
    store: Duration,
    bytes_per_user: f64,
}

/// One scenario: a simulator with `latency_ms` per request, `rounds` of (a) then (b).
fn listing(rt: &tokio::runtime::Runtime, users: usize, latency_ms: u64, rounds: usize) -> Listing {
    let sim = start_sim(users, latency_ms);
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
    // A directory of 5,000 users, as a real one next to the tenant would hold.
    let index = {
        let mut idx = DirectoryIndex::default();
        for i in 0..5_000i64 {
            idx.by_email
                .insert(format!("person{i}@example.com"), (i, None));
        }
        Arc::new(idx)
    };
    // Warm up connections and caches once.
    rt.block_on(raw_paging(&http, &sim.base, &token));

    let (mut raw, mut parse, mut full, mut cl, mut st) = (vec![], vec![], vec![], vec![], vec![]);
    let mut kept = None;
    let rss_before = rss_kib("VmRSS:");
    for _ in 0..rounds {
        let t = Instant::now();
        let (pages, bytes) = rt.block_on(raw_paging(&http, &sim.base, &token));
        raw.push(t.elapsed());
        assert!(pages > 0 && bytes > 0);
        let t = Instant::now();
        assert_eq!(rt.block_on(parse_only(&graph)), users);
        parse.push(t.elapsed());
        drop(kept.take());
        let t = Instant::now();
        let (state, c, s) = rt.block_on(full_listing(&graph, &index));
        full.push(t.elapsed());
        cl.push(c);
        st.push(s);
        assert_eq!(state.data.rows.len(), users);
        kept = Some(state);
    }
    let rss_after = rss_kib("VmRSS:");
    Listing {
        raw: median(raw),
        parse: median(parse),
        full: median(full),
        classify: median(cl),
        store: median(st),
        bytes_per_user: (rss_after.saturating_sub(rss_before) as f64 * 1024.0) / users as f64,
    }
}

fn main() {
    let mut users = 100_000usize;
    let mut rounds = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--users" => users = args.next().unwrap().parse().unwrap(),
            "--rounds" => rounds = args.next().unwrap().parse().unwrap(),
            _ => {} // cargo passes --bench
        }
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!("listing {users} users, pages of 999, median of {rounds} rounds");
    // 0 ms: a server as fast as loopback allows (client and simulator share 2 cores);
    // 5 ms: still far faster than Graph, which takes hundreds of ms for a page of 999.
    for latency in [0, 5] {
        let l = listing(&rt, users, latency, rounds);
        let ratio = |d: Duration| d.as_secs_f64() / l.raw.as_secs_f64();
        println!("\n== simulator latency {latency} ms per request");
        println!("(a) raw paging, bytes discarded:       {:>10.2?}", l.raw);
        println!(
            "    list_users (parse) only:            {:>10.2?}  {:.3}x (a)",
            l.parse,
            ratio(l.parse)
        );
        println!(
            "(b) list + classify + store:           {:>10.2?}  b/a = {:.3}  (goal <= 1.1)",
            l.full,
            ratio(l.full)
        );
        println!(
            "    of which classify {:.2?}, store {:.2?}",
            l.classify, l.store
        );
        if latency == 0 {
            // Only the first scenario starts from a fresh heap; later ones reuse freed pages.
            println!(
                "    memory: {:.0} bytes of RSS per user held in the state",
                l.bytes_per_user
            );
        }
    }
    let peak = rss_kib("VmHWM:");
    println!(
        "peak RSS of the bench process: {} MiB = {:.0} bytes per user",
        peak / 1024,
        peak as f64 * 1024.0 / users as f64
    );

    // The Import tab: one frame and one filter keystroke, 100k rows against 1k rows.
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let mut draw = |state: &AppState| {
        best_of(50, || {
            let t = Instant::now();
            term.draw(|f| m365sync::app::draw(f, state)).unwrap();
            t.elapsed()
        })
    };
    let small = fixtures::loaded_state(1_000);
    let big = fixtures::loaded_state(100_000);
    let (d_small, d_big) = (draw(&small), draw(&big));
    println!("\n== Import tab, 120x40 (best of 50)");
    println!("draw, 1k rows:    {d_small:>10.2?}");
    println!(
        "draw, 100k rows:  {d_big:>10.2?}   ({:.2}x the 1k frame; goal < 16 ms)",
        d_big.as_secs_f64() / d_small.as_secs_f64()
    );

    let keystroke = |state: &AppState, action: Action| {
        best_of(5, || {
            let mut s = state.clone();
            let t = Instant::now();
            update(&mut s, action.clone());
            t.elapsed()
        })
    };
    let mut typing = big.clone();
    update(&mut typing, Action::Command(Key::Filter));
    let mut worst = Duration::ZERO;
    println!("filter keystrokes typing \"megan v\" on 100k rows (best of 5 each):");
    for c in "megan v".chars() {
        let d = keystroke(&typing, Action::FilterInput(InputRequest::InsertChar(c)));
        update(
            &mut typing,
            Action::FilterInput(InputRequest::InsertChar(c)),
        );
        println!(
            "  {c:?}: {d:>10.2?} -> {} rows shown",
            typing.tabs.import.view.shown.len()
        );
        worst = worst.max(d);
    }
    let back = keystroke(&typing, Action::FilterInput(InputRequest::DeletePrevChar));
    println!("  backspace (widens: full rescan): {back:>10.2?}");
    worst = worst.max(back);
    println!(
        "worst keystroke: {worst:.2?} = {:.2}x a 100k-row frame (goal < 16 ms)",
        worst.as_secs_f64() / d_big.as_secs_f64()
    );
}
