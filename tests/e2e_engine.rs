//! The one engine, end to end against the simulator: the journal follows the current wish
//! after a killed run, the dry run, `errors` and the console's plan name the same held-back
//! subjects, one apply at a time per data dir, a run throttled without end stops by itself,
//! blocking one's own account needs its own confirmation, a busy database is waited out.
mod common;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::text;
use m365sync::directory::{Directory, JournalState, NewDirectoryUser};
use m365sync::graph::{GraphClient, User};
use m365sync::sim::SimOptions;
use m365sync::sync::pipeline::{Me, Pipeline};

async fn graph(env: &common::Env) -> GraphClient {
    GraphClient::new(env.http(), &env.settings.graph_url, env.app_session().await)
}

async fn live_users(g: &GraphClient) -> Vec<User> {
    m365sync::sync::pipeline::read_tenant(g, None, &Default::default())
        .await
        .unwrap()
        .users
        .pages
        .iter()
        .flat_map(|p| p.iter().cloned())
        .collect()
}

/// Import every enabled tenant user but the admin: linked and wanted bound.
async fn import_tenant(env: &common::Env, g: &GraphClient) -> Vec<User> {
    let users: Vec<User> = live_users(g)
        .await
        .into_iter()
        .filter(|u| u.account_enabled == Some(true) && u.mail.is_some())
        .collect();
    let mut d = Directory::open(&env.settings.db_path()).unwrap();
    d.import(&users).unwrap();
    users
}

/// `n` directory users `{local}{i}@<default domain>` named `{name} {i}`, wanted bound.
fn want_new_users(env: &common::Env, n: usize, local: &str, name: &str) {
    let dom = &env.sim.default_domain;
    let mut d = Directory::open(&env.settings.db_path()).unwrap();
    let ids: Vec<i64> = (0..n)
        .map(|i| {
            d.add_user(&NewDirectoryUser {
                email: format!("{local}{i}@{dom}"),
                display_name: format!("{name} {i}"),
                ..Default::default()
            })
            .unwrap()
        })
        .collect();
    d.set_want(&ids, true).unwrap();
}

fn unfinished(env: &common::Env) -> usize {
    Directory::open(&env.settings.db_path())
        .unwrap()
        .journal_unfinished()
        .unwrap()
        .len()
}

/// Start `sync --apply` and SIGKILL it once the simulator has taken `writes` more writes
/// (or it ended by itself). Whether it was killed.
async fn kill_mid_apply(env: &common::Env, args: &[&str], writes: usize) -> bool {
    let before = env.sim.write_count();
    let mut c = env.bin();
    c.args(args).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let t = Instant::now();
    while env.sim.write_count() < before + writes && t.elapsed() < Duration::from_secs(60) {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    killed
}

/// The scenario: an unbind of everyone is killed mid-apply; the admin binds everyone
/// again. The next dry run and apply block nobody and need no confirmation: the journal's
/// stale blocks are checked and dropped, never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_unbind_all_then_bind_all_blocks_nobody() {
    let env = common::start(SimOptions {
        users: Some(120),
        write_budget: Some(20),
        budget_window: Some(Duration::from_secs(1)),
        latency: Duration::from_millis(20),
        ..common::fast_options()
    })
    .await;
    let g = graph(&env).await;
    let users = import_tenant(&env, &g).await;
    env.ok(&["login"]).await;
    let n = users.len();
    assert!(n > 60, "{n}");
    env.ok(&["unbind", "--all"]).await;
    let yes = n.to_string();
    let killed = kill_mid_apply(
        &env,
        &[
            "sync",
            "--apply",
            "--yes-block",
            &yes,
            "--write-budget",
            "20",
            "--budget-window-secs",
            "1",
        ],
        10,
    )
    .await;
    assert!(killed, "the run was still going");
    assert!(
        unfinished(&env) > 0,
        "the killed run left ops in the journal"
    );
    // Batches on the wire at the kill still land in the tenant.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let blocked = live_users(&g)
        .await
        .iter()
        .filter(|u| u.account_enabled == Some(false) && users.iter().any(|x| x.id == u.id))
        .count();
    assert!(blocked >= 10, "{blocked}");

    env.ok(&["bind", "--all"]).await;
    let writes = env.sim.write_count();
    let dry = env.ok(&["sync", "--dry-run"]).await;
    assert_eq!(env.sim.write_count(), writes, "a dry run writes nothing");
    assert!(
        !dry.lines().any(|l| l.starts_with("block sign-in")),
        "{dry}"
    );
    assert!(!dry.contains("guard:"), "no confirmation needed: {dry}");
    assert!(
        dry.contains("checked:") && dry.contains("dropped"),
        "the dry run says what checking the journal found: {dry}"
    );
    assert!(dry.contains("re-enable"), "{dry}");
    assert_eq!(unfinished(&env), 0, "checked and recorded");
    // Applying needs no --yes-block: nothing is blocked.
    let out = env.ok(&["sync", "--apply"]).await;
    assert!(
        out.contains(&format!("{blocked} done, 0 failed")),
        "blocked {blocked}: {out}"
    );
    assert!(
        live_users(&g)
            .await
            .iter()
            .filter(|u| users.iter().any(|x| x.id == u.id))
            .all(|u| u.account_enabled == Some(true)),
        "everyone bound is enabled again"
    );
    let dry = env.ok(&["sync", "--dry-run"]).await;
    assert!(dry.contains("Nothing to do"), "{dry}");
    env.sim.shutdown().await;
}

/// The reverse: a bind of new users is killed mid-apply; the admin unbinds them. Nothing is
/// created after that (the accounts the killed run made are kept, and blocked as wished).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_bind_then_unbind_creates_nothing_more() {
    let env = common::start(SimOptions {
        users: Some(5),
        write_budget: Some(20),
        budget_window: Some(Duration::from_secs(1)),
        latency: Duration::from_millis(20),
        ..common::fast_options()
    })
    .await;
    want_new_users(&env, 80, "new", "New");
    env.ok(&["login"]).await;
    let before = env.sim.user_count();
    let killed = kill_mid_apply(
        &env,
        &[
            "sync",
            "--apply",
            "--write-budget",
            "20",
            "--budget-window-secs",
            "1",
        ],
        10,
    )
    .await;
    assert!(killed);
    let created = env.sim.user_count() - before;
    assert!((10..80).contains(&created), "{created}");
    env.ok(&["unbind", "--all"]).await;
    let dry = env.run(&["sync", "--dry-run"]).await;
    // Creates on the wire at the kill are found applied; their passwords are reported lost
    // (exit 2). A kill between two batches leaves none.
    let lost = Directory::open(&env.settings.db_path())
        .unwrap()
        .passwords_undelivered()
        .unwrap()
        .len();
    assert_eq!(
        dry.status.code(),
        Some(if lost > 0 { 2 } else { 0 }),
        "{}",
        text(&dry.stderr)
    );
    let dry = text(&dry.stdout);
    assert_eq!(
        dry.contains("temporary password was never delivered"),
        lost > 0,
        "{dry}"
    );
    assert!(
        !dry.lines().any(|l| l.starts_with("create account")),
        "{dry}"
    );
    assert!(dry.contains("checked:"), "{dry}");
    // What the killed run created is blocked now (the guard asks for that count).
    let o = env.run(&["sync", "--apply"]).await;
    let err = text(&o.stderr);
    let count = err
        .split("--yes-block ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .unwrap_or("0")
        .to_string();
    let o = env.run(&["sync", "--apply", "--yes-block", &count]).await;
    // Exit 2: the killed run's passwords are reported lost.
    assert!(
        matches!(o.status.code(), Some(0) | Some(2)),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        env.sim.user_count() - before,
        created,
        "nothing created after the kill"
    );
    assert!(lost <= created);
    env.sim.shutdown().await;
}

/// A directory with a user on an unverified domain, a group whose name leaves a nickname
/// Graph refuses, and a bound group with the held-back user in it: `sync --dry-run`,
/// `errors --json` and the console's plan name the same held-back subjects; the member add
/// of the held-back user is held back with it, never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dry_run_errors_and_the_console_name_the_same_held_back_subjects() {
    use m365sync::app::{action::Action, explain::ErrorSource, update, AppState};
    let env = common::start(SimOptions {
        users: Some(10),
        ..common::fast_options()
    })
    .await;
    let dom = env.sim.default_domain.clone();
    let csv = env.data.path().join("people.csv");
    std::fs::write(
        &csv,
        format!(
            "email,displayName,groups\n\
             ok.person@{dom},Ok Person,Field Team\n\
             hiro@northwind-labs.io,Hiro T,Field Team\n\
             ada@{dom},Ada,Sales (EU)\n"
        ),
    )
    .unwrap();
    env.ok(&["directory", "import", csv.to_str().unwrap()])
        .await;
    env.ok(&["bind", "--all"]).await;
    env.ok(&["bind", "--group", "Field Team"]).await;
    env.ok(&["bind", "--group", "Sales (EU)"]).await;
    env.ok(&["login"]).await;

    let dry = env.run(&["sync", "--dry-run"]).await;
    assert_eq!(
        dry.status.code(),
        Some(2),
        "held back: {}",
        text(&dry.stderr)
    );
    let dry = text(&dry.stdout);
    assert!(!dry.contains("Nothing to do"), "{dry}");
    assert!(
        dry.contains("held back: add group member Field Team: hiro@northwind-labs.io"),
        "the member add waits for its held-back member: {dry}"
    );
    let dry_subjects: BTreeSet<String> = dry
        .lines()
        .filter_map(|l| l.strip_prefix("held back: "))
        .filter(|l| !l.starts_with("add group member"))
        .map(|l| {
            if let Some(rest) = l.strip_prefix("create group ") {
                format!("group {}", rest.split(':').next().unwrap())
            } else {
                let target = l.split(": ").next().unwrap();
                format!("user {}", target.rsplit(' ').next().unwrap())
            }
        })
        .collect();

    let errs = env.ok(&["errors", "--json"]).await;
    let errors_subjects: BTreeSet<String> = errs
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["source"] == "preflight" && v["kind"] != "mailnickname-duplicate")
        .map(|v| {
            let name = v["subject"]["name"].as_str().unwrap().to_string();
            match v["subject"]["type"].as_str().unwrap() {
                "group" => format!("group \"{name}\""),
                _ => format!("user {name}"),
            }
        })
        .collect();

    // The console: the same pipeline call its Plan effect makes, then what update lists.
    let g = graph(&env).await;
    let pipeline = Pipeline {
        graph: g.clone(),
        data_dir: env.settings.data_dir.clone(),
        db_path: env.settings.db_path(),
        tenant: env.settings.tenant.clone().unwrap(),
        me: Me::default(),
        budget: Default::default(),
    };
    let view = pipeline.prepare(None, None, 0).await.unwrap();
    let mut s = AppState::new("t");
    s.data.plan_gen = 1;
    s.data.check_gen = Some(1);
    update(
        &mut s,
        Action::PlanReady {
            gen: 1,
            result: Ok(Box::new(view.clone())),
        },
    );
    let console_subjects: BTreeSet<String> = s
        .data
        .errors
        .iter()
        .filter(|e| e.source == ErrorSource::Preflight)
        .filter(|e| {
            e.op.is_some() || matches!(e.diag.subject, m365sync::diagnose::Subject::Group(_))
        })
        .map(|e| e.diag.subject.label())
        .collect();
    let expected: BTreeSet<String> = [
        "user hiro@northwind-labs.io".to_string(),
        "group \"Sales (EU)\"".to_string(),
    ]
    .into();
    assert_eq!(dry_subjects, expected, "{dry}");
    assert_eq!(
        errors_subjects
            .intersection(&expected)
            .cloned()
            .collect::<BTreeSet<_>>(),
        expected,
        "{errs}"
    );
    assert_eq!(console_subjects, expected);
    assert_eq!(
        view.held_subjects().into_iter().collect::<BTreeSet<_>>(),
        expected
    );
    assert_eq!(view.member_held.len(), 1);

    // Applying sends nothing held back: no failure for hiro's member add.
    let out = env.run(&["sync", "--apply"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    assert!(o.contains(" done, 0 failed"), "{o}");
    assert!(
        !text(&out.stderr).contains("failed:"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(env.sim.users_with_upn_count("hiro@northwind-labs.io"), 0);
    env.sim.shutdown().await;
}

/// Two `sync --apply` started together on one data dir: one applies, the other says who holds
/// the lock and exits 75; no group twice, no false failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_applies_at_once_one_waits_its_turn() {
    let env = common::start(SimOptions {
        users: Some(5),
        write_budget: Some(30),
        budget_window: Some(Duration::from_secs(1)),
        latency: Duration::from_millis(60),
        ..common::fast_options()
    })
    .await;
    let dom = env.sim.default_domain.clone();
    let csv = env.data.path().join("people.csv");
    let mut rows = String::from("email,displayName,groups\n");
    for i in 0..40 {
        rows.push_str(&format!("p{i}@{dom},P {i},Team {}\n", i % 3));
    }
    std::fs::write(&csv, rows).unwrap();
    env.ok(&["directory", "import", csv.to_str().unwrap()])
        .await;
    env.ok(&["bind", "--all"]).await;
    for t in 0..3 {
        env.ok(&["bind", "--group", &format!("Team {t}")]).await;
    }
    env.ok(&["login"]).await;
    let spawn = |n: usize| {
        let mut c = env.bin();
        c.args(["sync", "--apply", "--handoff"])
            .arg(env.data.path().join(format!("pw{n}.csv")))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.spawn().unwrap()
    };
    let (a, b) = (spawn(1), spawn(2));
    let (a, b) = tokio::task::spawn_blocking(move || {
        (a.wait_with_output().unwrap(), b.wait_with_output().unwrap())
    })
    .await
    .unwrap();
    let codes = [a.status.code(), b.status.code()];
    let (winner, loser) = if codes[0] == Some(75) {
        (&b, &a)
    } else {
        (&a, &b)
    };
    assert_eq!(loser.status.code(), Some(75), "{codes:?}");
    let why = text(&loser.stderr);
    assert!(
        why.contains("another m365sync is applying") && why.contains("pid "),
        "{why}"
    );
    assert_eq!(winner.status.code(), Some(0), "{}", text(&winner.stderr));
    assert!(
        text(&winner.stdout).contains("83 done, 0 failed"),
        "{}",
        text(&winner.stdout)
    );
    assert_eq!(env.sim.group_count(), 3, "no group twice");
    for i in 0..40 {
        assert_eq!(env.sim.users_with_upn_count(&format!("p{i}@{dom}")), 1);
    }
    let dry = env.ok(&["sync", "--dry-run"]).await;
    assert!(dry.contains("Nothing to do"), "{dry}");
    env.sim.shutdown().await;
}

/// A tenant that answers 429 to every batch: the run ends by itself after the stall limit,
/// says how often it was throttled, and sends nothing more; the ops are planned again later.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_throttled_without_end_stops_by_itself() {
    use m365sync::sim::FaultRule;
    let env = common::start(SimOptions {
        users: Some(5),
        ..common::fast_options()
    })
    .await;
    want_new_users(&env, 5, "t", "T");
    env.ok(&["login"]).await;
    env.sim.faults().add(
        "POST /v1.0/$batch always 429:1"
            .parse::<FaultRule>()
            .unwrap(),
    );
    let t = Instant::now();
    let o = env.run(&["sync", "--apply", "--stall-secs", "3"]).await;
    assert!(t.elapsed() < Duration::from_secs(60), "bounded");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("stopped: no change finished for 3 s"), "{out}");
    assert!(out.contains("throttled"), "{out}");
    assert_eq!(env.sim.user_count(), 5, "nothing created");
    // Nothing is left open: throttled writes were refused, so they are not sent (planned
    // again next time), not unknown.
    let d = Directory::open(&env.settings.db_path()).unwrap();
    assert!(d.journal_unfinished().unwrap().is_empty());
    assert!(d
        .journal_list(None)
        .unwrap()
        .iter()
        .all(|e| e.state == JournalState::Cancelled));
    drop(d);
    env.sim.faults().clear();
    let out = env.ok(&["sync", "--apply"]).await;
    assert!(out.contains("5 done, 0 failed"), "{out}");
    env.sim.shutdown().await;
}

/// Blocking the account m365sync acts for needs its own confirmation (--yes-block-self),
/// besides the guard's count.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blocking_the_service_account_needs_yes_block_self() {
    let env = common::start(SimOptions {
        users: Some(30),
        ..common::fast_options()
    })
    .await;
    let g = graph(&env).await;
    let users = import_tenant(&env, &g).await;
    let me = users[0].user_principal_name.clone();
    let email = users[0].mail.clone().unwrap();
    env.ok(&["login"]).await;
    env.ok(&["unbind", &email]).await;
    let run = |extra: &'static [&'static str]| {
        let mut c = env.bin();
        c.env("M365SYNC_SERVICE_ACCOUNT", &me)
            .args(["sync", "--apply", "--yes-block", "1"])
            .args(extra);
        tokio::task::spawn_blocking(move || c.output().unwrap())
    };
    let o = run(&[]).await.unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("--yes-block-self") && err.contains(&me),
        "{err}"
    );
    assert_eq!(env.sim.user_by_upn(&me).unwrap()["accountEnabled"], true);
    let o = run(&["--yes-block-self"]).await.unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(env.sim.user_by_upn(&me).unwrap()["accountEnabled"], false);
    env.sim.shutdown().await;
}

/// A journal write that meets a busy database (another process importing) waits it out
/// instead of aborting the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_busy_database_is_waited_out_not_fatal() {
    use m365sync::sync::apply::{self, ApplyOptions, EventSink};
    use m365sync::sync::ops::AnyOp;
    let env = common::start(SimOptions {
        users: Some(5),
        latency: Duration::from_millis(30),
        ..common::fast_options()
    })
    .await;
    let g = graph(&env).await;
    want_new_users(&env, 40, "b", "B");
    let dir = m365sync::sync::pipeline::DirectoryState::load(
        &Directory::open(&env.settings.db_path()).unwrap(),
        "",
    )
    .unwrap();
    let tenant = m365sync::sync::pipeline::read_tenant(&g, None, &dir)
        .await
        .unwrap();
    let view =
        m365sync::sync::pipeline::make_plan(&dir, &tenant, &Me::default(), 0, Default::default());
    let ops: Vec<AnyOp> = view.ops();
    assert_eq!(ops.len(), 40);
    // Another connection holds the write lock for 1.5 s once the run has started.
    let db = env.settings.db_path();
    let holder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("BEGIN IMMEDIATE").unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        c.execute_batch("COMMIT").unwrap();
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let s = apply::apply(
        g,
        env.settings.db_path(),
        ops,
        ApplyOptions {
            max_concurrency: 1,
            batch_size: 2,
            // SQLite alone gives up after 50 ms: only the engine's retry gets past 1.5 s.
            busy_timeout: Some(Duration::from_millis(50)),
            ..Default::default()
        },
        Box::new(EventSink(tx.clone())),
        tx,
        Default::default(),
    )
    .await
    .expect("the run waits the busy database out");
    holder.join().unwrap();
    assert_eq!((s.done, s.failed), (40, 0));
    env.sim.shutdown().await;
}

/// A client signed in app-only as the seeded app `(id, secret)`.
async fn app_graph(env: &common::Env, (id, secret): (&str, &str)) -> GraphClient {
    let auth = m365sync::auth::Authenticator::new(
        env.http(),
        &env.settings.authority,
        env.settings.tenant.as_deref().unwrap(),
        id,
    );
    let tokens = auth.client_credentials(secret).await.unwrap();
    let session =
        m365sync::auth::Session::start(auth, env.cache(), tokens, Some(secret.to_string()))
            .unwrap();
    GraphClient::new(env.http(), &env.settings.graph_url, session)
}

/// A signed-in app without group permissions: its group create is refused by Graph with 403,
/// and the failure keeps its type to the Errors list: insufficient privileges, naming the
/// permission the operation needs, with the request-id. A restore refused to an app that may
/// only read is diagnosed the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_403_is_diagnosed_as_the_missing_permission() {
    use m365sync::app::explain::ErrorEntry;
    use m365sync::sync::apply::{self, ApplyOptions, EventSink, Outcome};
    use m365sync::sync::groups::{GroupOp, GroupOpKind};
    use m365sync::sync::ops::AnyOp;
    const USERS_ONLY: (&str, &str) = (
        "7d2f4b9c-5e1a-4c3d-8f6b-2a9e0c4d6b18",
        "Usr8Q~Kp4Lm7Nq2Rs5Tv8Wx1Yz3Ab6Cd9Ef2GhJm",
    );
    const READ_ONLY: (&str, &str) = (
        "5b1f7a0e-3c2d-4e8f-9a61-7d4c2b9e0f13",
        "Rpt8Q~Vh3kLmN2pQrS5tUvW7xYz9AbCdEfGhIjKl",
    );
    let env = common::start(SimOptions {
        users: Some(5),
        ..common::fast_options()
    })
    .await;
    let g = app_graph(&env, USERS_ONLY).await;
    let create = AnyOp::Group(GroupOp {
        kind: GroupOpKind::CreateGroup,
        group_id: 1,
        group_name: "Field Team".into(),
        mail_nickname: "FieldTeam".into(),
        group_kind: Default::default(),
        tenant_group_id: None,
        member: None,
        reason: String::new(),
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    Directory::open(&env.settings.db_path()).unwrap();
    let s = apply::apply(
        g,
        env.settings.db_path(),
        vec![create.clone()],
        ApplyOptions::default(),
        Box::new(EventSink(tx.clone())),
        tx,
        Default::default(),
    )
    .await
    .unwrap();
    let Outcome::Failed(e) = &s.results[0].outcome else {
        panic!("{s:?}")
    };
    let entry = ErrorEntry::from_op(&create, e);
    assert_eq!(entry.kind(), "insufficient-privileges");
    assert!(
        entry
            .diag
            .permission
            .as_deref()
            .unwrap()
            .contains("Group.ReadWrite.All")
            || entry
                .diag
                .permission
                .as_deref()
                .unwrap()
                .contains("Group.Create"),
        "{:?}",
        entry.diag.permission
    );
    assert!(entry.request_id.is_some(), "the request-id for support");
    assert_eq!(env.sim.group_count(), 0);
    // The same through the journal, as `m365sync errors` and the console read it later.
    let d = Directory::open(&env.settings.db_path()).unwrap();
    let failures = m365sync::sync::pipeline::journal_failures(&d.journal_latest().unwrap());
    assert_eq!(failures[0].1.kind, "insufficient-privileges");
    assert!(failures[0].1.permission.is_some());
    drop(d);

    // A restore refused to an app that may only read.
    let deleted = live_users(&app_graph(&env, USERS_ONLY).await).await[1].clone();
    assert!(env.sim.soft_delete(&deleted.user_principal_name));
    let ro = app_graph(&env, READ_ONLY).await;
    let pipeline = Pipeline {
        graph: ro,
        data_dir: env.settings.data_dir.clone(),
        db_path: env.settings.db_path(),
        tenant: String::new(),
        me: Me::default(),
        budget: Default::default(),
    };
    let e = m365sync::app::runtime::run_fix(
        m365sync::app::effect::Fix::RestoreDeleted {
            address: deleted.user_principal_name.clone(),
        },
        env.settings.db_path(),
        Some(pipeline),
    )
    .await
    .unwrap_err();
    let entry = ErrorEntry::from_failure(&e);
    assert_eq!(entry.kind(), "insufficient-privileges", "{e}");
    assert!(entry
        .diag
        .permission
        .as_deref()
        .unwrap()
        .contains("User.DeleteRestore.All"));
    assert!(entry.request_id.is_some());
    env.sim.shutdown().await;
}
