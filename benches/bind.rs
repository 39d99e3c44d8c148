//! Bulk bind of 10,000 users in 50 bound groups against the simulator with a scaled write
//! budget: one plan through the pipeline (user creates, group creates, member adds), one run
//! of the engine; writes per second achieved as a ratio of the budget (goal >= 0.95, zero
//! failed), against a naive client (one POST /users at a time, waiting out 429s) in the same
//! run.
//!
//! `cargo bench --bench bind` (optionally `-- --users N --groups G --budget B --latency-ms L
//! --naive N --licence 1`; `--groups 0` binds users only; `--licence 1` gives every bound group
//! (or user) a default SKU and the directory a default usage location: each account is created
//! with its usage location and licensed with one assignLicense, in a tenant seeded with seats
//! enough).
use std::time::{Duration, Instant};

use m365sync::directory::{Directory, LicenceOwner, LicencePick, NewDirectoryUser};
use m365sync::graph::{GraphClient, GraphError};
use m365sync::sim::{Sim, SimOptions};
use m365sync::sync::apply::{self, ApplyOptions, EventSink, WriteBudget};
use m365sync::sync::pipeline::{self, DirectoryState};
use reqwest::Method;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Args {
    users: usize,
    groups: usize,
    budget: u32,
    latency_ms: u64,
    naive: usize,
    /// Every account gets a licence (SPE_E3) with its bind.
    licence: bool,
}

fn args() -> Args {
    let mut a = Args {
        users: 10_000,
        groups: 50,
        budget: 500,
        latency_ms: 50,
        naive: 300,
        licence: false,
    };
    let v: Vec<String> = std::env::args().collect();
    for w in v.windows(2) {
        let n = || w[1].parse().expect("a number");
        match w[0].as_str() {
            "--users" => a.users = n(),
            "--groups" => a.groups = n(),
            "--budget" => a.budget = n() as u32,
            "--latency-ms" => a.latency_ms = n() as u64,
            "--naive" => a.naive = n(),
            "--licence" => a.licence = n() != 0,
            _ => {}
        }
    }
    a
}

/// The built-in seed with `seats` more enabled seats of SPE_E3 (the bench binds more users
/// than the demo tenant has licences for).
fn seed_with_seats(dir: &std::path::Path, seats: usize) -> std::path::PathBuf {
    let mut seed: serde_json::Value =
        serde_json::from_str(include_str!("../assets/demo-tenant.json")).unwrap();
    for s in seed["subscribedSkus"].as_array_mut().unwrap() {
        if s["skuPartNumber"] == "SPE_E3" {
            let n = s["prepaidUnits"]["enabled"].as_u64().unwrap() + seats as u64;
            s["prepaidUnits"]["enabled"] = n.into();
        }
    }
    let p = dir.join("seed.json");
    std::fs::write(&p, serde_json::to_vec(&seed).unwrap()).unwrap();
    p
}

async fn setup(a: &Args, window: Duration) -> (Sim, GraphClient, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let seed = a.licence.then(|| seed_with_seats(data.path(), a.users));
    let sim = Sim::start(SimOptions {
        seed,
        users: Some(10),
        write_budget: Some(a.budget),
        budget_window: Some(window),
        latency: Duration::from_millis(a.latency_ms),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let graph = sim.app_client(data.path().join("t.json")).await.unwrap();
    (sim, graph, data)
}

/// The apply engine: returns (seconds, done, failed, throttled items).
async fn engine(a: &Args, window: Duration, client_budget: u32) -> (f64, usize, usize, usize) {
    let (sim, graph, data) = setup(a, window).await;
    let db = data.path().join("d.sqlite3");
    {
        let mut d = Directory::open(&db).unwrap();
        let e3 = LicencePick::parse("SPE_E3").unwrap();
        let mut ids = Vec::new();
        for i in 0..a.users {
            ids.push(
                d.add_user(&NewDirectoryUser {
                    email: format!("bench{i}@{}", sim.default_domain),
                    display_name: format!("Bench {i}"),
                    given_name: Some("Bench".into()),
                    surname: Some(format!("N{i}")),
                })
                .unwrap(),
            );
        }
        d.set_want(&ids, true).unwrap();
        // Every user in one of the bound groups.
        for g in 0..a.groups {
            let gid = d.add_group(&format!("Bench group {g}")).unwrap();
            let members: Vec<i64> = ids.iter().copied().skip(g).step_by(a.groups).collect();
            d.set_group_members(gid, &members).unwrap();
            d.set_group_want(&[gid], true).unwrap();
            if a.licence {
                d.assign_licence(LicenceOwner::Group(gid), &e3).unwrap();
            }
        }
        if a.licence {
            if a.groups == 0 {
                for &id in &ids {
                    d.assign_licence(LicenceOwner::User(id), &e3).unwrap();
                }
            }
            let (mut policy, guard) = d.policy().unwrap();
            policy.usage_location = Some("US".into());
            d.set_policy(&policy, &guard).unwrap();
        }
    }
    let dir = DirectoryState::load(&Directory::open(&db).unwrap(), "").unwrap();
    let tenant = pipeline::read_tenant(&graph, None, &dir).await.unwrap();
    let view = pipeline::make_plan(&dir, &tenant, &Default::default(), 0, WriteBudget::GRAPH);
    let ops = view.ops();
    assert_eq!(ops.len(), writes_of(a), "{} held back", view.held.len());
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let opts = ApplyOptions {
        budget: WriteBudget {
            writes: client_budget,
            window,
        },
        max_concurrency: 8,
        actor: "bench".into(),
        ..Default::default()
    };
    let t = Instant::now();
    let s = apply::apply(
        graph,
        db,
        ops,
        opts,
        Box::new(EventSink(tx.clone())),
        tx,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(sim.write_count(), s.done, "each write exactly once");
    let throttled = sim.throttled_count();
    sim.shutdown().await;
    (secs, s.done, s.failed, throttled)
}

/// Writes (= ops) of the bind: creates, group creates, member adds, assignLicenses.
fn writes_of(a: &Args) -> usize {
    a.users
        + a.groups
        + if a.groups > 0 { a.users } else { 0 }
        + if a.licence { a.users } else { 0 }
}

/// One POST /users at a time; a 429 is waited out (Retry-After) and sent again.
async fn naive(a: &Args, window: Duration) -> (f64, usize, usize) {
    let (sim, graph, _data) = setup(a, window).await;
    let graph = graph.with_retry(m365sync::graph::RetryPolicy {
        max_attempts: 1,
        ..Default::default()
    });
    let t = Instant::now();
    let mut done = 0;
    let mut throttled = 0;
    for i in 0..a.naive {
        let upn = format!("naive{i}@{}", sim.default_domain);
        let body = serde_json::json!({
            "accountEnabled": true, "displayName": format!("Naive {i}"),
            "mailNickname": format!("naive{i}"), "userPrincipalName": upn,
            "passwordProfile": {"password": m365sync::sync::password::generate(),
                                "forceChangePasswordNextSignIn": true}});
        let bytes = bytes::Bytes::from(serde_json::to_vec(&body).unwrap());
        loop {
            match graph
                .request(Method::POST, "/users", Some(bytes.clone()))
                .await
            {
                Ok(_) => {
                    done += 1;
                    break;
                }
                Err(e @ GraphError::Api { status: 429, .. }) => {
                    throttled += 1;
                    tokio::time::sleep(e.retry_after().unwrap_or(Duration::from_secs(1))).await;
                }
                Err(e) => panic!("naive create: {e}"),
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    sim.shutdown().await;
    (secs, done, throttled)
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let window = Duration::from_secs(1);
    let rate = f64::from(a.budget) / window.as_secs_f64();
    let writes = writes_of(&a);
    println!(
        "bulk bind of {} users in {} bound groups ({writes} writes: creates, group creates, \
         member adds{}); simulator write budget {} writes per {:?} ({rate:.0} writes/s), {} ms \
         latency per request",
        a.users,
        a.groups,
        if a.licence {
            ", one assignLicense each"
        } else {
            ""
        },
        a.budget,
        window,
        a.latency_ms
    );

    // The first window's budget goes out at once: the ideal run takes (N - B) / rate.
    let ideal = (writes as f64 - f64::from(a.budget)).max(0.0) / rate;
    for (label, client_budget) in [
        ("engine, told the budget", a.budget),
        ("engine, told 2x the budget (429-driven)", a.budget * 2),
    ] {
        let (secs, done, failed, throttled) = rt.block_on(engine(&a, window, client_budget));
        let achieved = done as f64 / secs;
        println!(
            "{label:<42} {done} done, {failed} failed, {throttled} items throttled, {secs:.1} s, \
             {achieved:.0} writes/s = {:.3} of the budget (ideal-time ratio {:.3})",
            achieved / rate,
            ideal / secs
        );
        assert_eq!(failed, 0);
        if a.licence {
            // Every write the simulator took, less the group creates and member adds.
            let group_writes = a.groups + if a.groups > 0 { a.users } else { 0 };
            println!(
                "{:<42} {:.2} writes per account (create + assignLicense)",
                "",
                (done - group_writes) as f64 / a.users as f64
            );
        }
    }
    let (secs, done, throttled) = rt.block_on(naive(&a, window));
    let achieved = done as f64 / secs;
    println!(
        "{:<42} {done} done, {throttled} throttled, {secs:.1} s, {achieved:.0} writes/s = {:.3} \
         of the budget",
        "naive: one POST /users at a time",
        achieved / rate
    );
}
