//! Kill the real binary (SIGTERM and SIGKILL) in the middle of `sync --apply` of 1,000 ops,
//! restart it, and check that the simulator (which outlives the client, in this process) holds
//! every account exactly once, that the journal holds nothing unfinished, and that the
//! temporary password of every account created is either in a hand-off file or reported lost
//! (counting both).
mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use m365sync::directory::{Directory, JournalState};
use m365sync::sim::SimOptions;
use rand::Rng;

const N: usize = 1000;

fn bin(env: &common::Env) -> Command {
    let (app_id, secret) = env.sim.apps[0].clone();
    let mut c = Command::new(env!("CARGO_BIN_EXE_m365sync"));
    c.arg("--authority")
        .arg(&env.settings.authority)
        .arg("--graph-url")
        .arg(&env.settings.graph_url)
        .arg("--tenant")
        .arg(env.settings.tenant.as_deref().unwrap())
        .arg("--client-id")
        .arg(app_id)
        .arg("--data-dir")
        .arg(&env.settings.data_dir)
        .env("M365SYNC_CLIENT_SECRET", secret)
        .stdin(Stdio::null());
    c
}

/// `sync --apply` writing its passwords to the new hand-off file `handoff`.
fn sync_apply(env: &common::Env, handoff: &std::path::Path) -> Command {
    let mut c = bin(env);
    c.args([
        "sync",
        "--apply",
        "--write-budget",
        "250",
        "--budget-window-secs",
        "1",
        "--handoff",
    ])
    .arg(handoff);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

/// The UPNs of the hand-off files written so far (each row: email, UPN, password).
fn handed_off(files: &[std::path::PathBuf]) -> std::collections::HashMap<String, usize> {
    let mut seen = std::collections::HashMap::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cells: Vec<&str> = line.split(',').collect();
            if cells.len() == 3 && !cells[2].is_empty() {
                *seen.entry(cells[1].to_lowercase()).or_insert(0) += 1;
            }
        }
    }
    seen
}

async fn output(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_and_sigkill_at_random_points_lose_no_account_and_no_password_silently() {
    let started = Instant::now();
    let mut rng = rand::rng();
    let mut interrupted = 0;
    let (mut total_delivered, mut total_lost) = (0, 0);
    for trial in 0..4 {
        let env = common::start(SimOptions {
            users: Some(10),
            write_budget: Some(250),
            budget_window: Some(Duration::from_secs(1)),
            // Batches stay on the wire longer: kills land while some are in flight.
            latency: Duration::from_millis(40),
            ..common::fast_options()
        })
        .await;
        // The directory through the CLI: CSV import, bind --all.
        let csv = env.data.path().join("people.csv");
        let mut f = std::fs::File::create(&csv).unwrap();
        writeln!(f, "email,givenName,surname,displayName,jobTitle").unwrap();
        let emails: Vec<String> = (0..N)
            .map(|i| format!("k{trial}-{i}@{}", env.sim.default_domain))
            .collect();
        for (i, e) in emails.iter().enumerate() {
            writeln!(f, "{e},Kay,Number{i},Kay {i},Tester").unwrap();
        }
        drop(f);
        let mut c = bin(&env);
        c.args(["directory", "import"]).arg(&csv);
        let out = output(c).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let mut c = bin(&env);
        c.args(["bind", "--all"]);
        assert!(output(c).await.status.success());
        let mut c = bin(&env);
        c.args(["login"]);
        assert!(output(c).await.status.success());

        // Stop it twice at random points (a SIGTERM, then a SIGKILL), then let it finish.
        let mut kills = 0;
        let mut files = Vec::new();
        for (round, signal) in ["TERM", "KILL"].into_iter().enumerate() {
            let handoff = env.data.path().join(format!("handoff-{round}.csv"));
            files.push(handoff.clone());
            // Nobody reads a killed run's output: a full pipe must not block a SIGTERMed run.
            let mut child = sync_apply(&env, &handoff)
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let after = Duration::from_millis(rng.random_range(150..1800));
            tokio::time::sleep(after).await;
            if child.try_wait().unwrap().is_none() {
                let ok = Command::new("kill")
                    .arg(format!("-{signal}"))
                    .arg(child.id().to_string())
                    .status()
                    .unwrap();
                assert!(ok.success());
                kills += 1;
            }
            let status = child.wait().unwrap();
            if signal == "TERM" && kills > 0 {
                // A SIGTERM stops the run as Ctrl-C does: in-flight writes finish and are
                // recorded, the exit code says it was interrupted.
                assert!(
                    matches!(status.code(), Some(130) | Some(0)),
                    "trial {trial}: SIGTERM exit {status:?}"
                );
            }
            let d = Directory::open(&env.settings.db_path()).unwrap();
            let unfinished = d.journal_unfinished().unwrap().len();
            let all = d.journal_list(None).unwrap().len();
            if unfinished > 0 {
                interrupted += 1;
            }
            eprintln!(
                "trial {trial}: killed after {after:?}: {unfinished} of {all} ops unfinished"
            );
        }
        let mut finished = false;
        for rerun in 0..3 {
            let handoff = env.data.path().join(format!("handoff-last-{rerun}.csv"));
            files.push(handoff.clone());
            let out = output(sync_apply(&env, &handoff)).await;
            // 2: done, but some passwords of killed runs are reported lost.
            if matches!(out.status.code(), Some(0) | Some(2)) {
                finished = true;
                break;
            }
            eprintln!("rerun: {}", String::from_utf8_lossy(&out.stderr));
        }
        assert!(finished, "trial {trial}: sync --apply finishes");
        for e in &emails {
            assert_eq!(env.sim.users_with_upn_count(e), 1, "trial {trial}: {e}");
        }
        let d = Directory::open(&env.settings.db_path()).unwrap();
        let journal = d.journal_list(None).unwrap();
        assert!(!journal.is_empty());
        let mut done_emails = std::collections::HashSet::new();
        for e in &journal {
            assert!(
                matches!(e.state, JournalState::Done | JournalState::Cancelled),
                "trial {trial}: journal op {} {} is {:?}",
                e.id,
                e.op.target(),
                e.state
            );
            if e.state == JournalState::Done {
                done_emails.insert(e.op.target().to_lowercase());
            }
        }
        assert_eq!(done_emails.len(), N, "trial {trial}");
        // Every password: in a hand-off file, or reported lost; never both unknown.
        let delivered = handed_off(&files);
        let lost: std::collections::HashSet<String> = d
            .passwords_undelivered()
            .unwrap()
            .into_iter()
            .map(|u| u.upn.to_lowercase())
            .collect();
        for e in &emails {
            let e = e.to_lowercase();
            assert!(
                delivered.get(&e).copied().unwrap_or(0) > 0 || lost.contains(&e),
                "trial {trial}: the password of {e} is neither handed off nor reported lost"
            );
            assert!(
                delivered.get(&e).copied().unwrap_or(0) <= 1,
                "{e} handed off twice"
            );
        }
        eprintln!(
            "trial {trial}: {} passwords handed off, {} reported lost",
            delivered.len(),
            lost.len()
        );
        total_delivered += delivered.len();
        total_lost += lost.len();
        assert!(d
            .users()
            .unwrap()
            .iter()
            .all(|u| u.tenant_user_id.is_some()));
        eprintln!(
            "trial {trial}: {kills} kills, {} journal entries, {} writes",
            journal.len(),
            env.sim.write_count()
        );
        env.sim.shutdown().await;
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "bounded in time"
        );
    }
    assert!(
        interrupted > 0,
        "at least one kill left ops unfinished in the journal"
    );
    eprintln!("in all: {total_delivered} passwords handed off, {total_lost} reported lost");
    // An account whose password reached the file just before a SIGKILL, but not the journal,
    // is counted in both: reported lost although the file has it.
    assert!(total_delivered + total_lost >= 4 * N);
}

/// A SIGTERM while `sync --apply` is still reading the tenant and planning (a slow Graph)
/// stops it cleanly: exit 130, said on stderr, nothing sent. (Before, the signal's default
/// action killed it there: no exit code.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_planning_exits_130_with_nothing_sent() {
    // Every Graph answer takes 1.5 s: the run is still planning when the signal comes.
    let env = common::start(SimOptions {
        users: Some(5),
        latency: Duration::from_millis(1500),
        ..common::fast_options()
    })
    .await;
    let csv = env.data.path().join("people.csv");
    std::fs::write(
        &csv,
        format!(
            "email,displayName\nslow1@{d},Slow One\nslow2@{d},Slow Two\n",
            d = env.sim.default_domain
        ),
    )
    .unwrap();
    for args in [
        vec!["directory", "import", csv.to_str().unwrap()],
        vec!["bind", "--all"],
        vec!["login"],
    ] {
        let mut c = bin(&env);
        c.args(&args);
        assert!(output(c).await.status.success(), "{args:?}");
    }
    let writes = env.sim.write_count();
    let handoff = env.data.path().join("handoff.csv");
    let child = sync_apply(&env, &handoff)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The hand-off file is made just before the handlers are set: wait for it, then a little.
    for _ in 0..200 {
        if handoff.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(handoff.exists(), "sync --apply never started");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ok = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(ok.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{:?}: {err}", out.status);
    assert!(err.contains("nothing was sent"), "{err}");
    assert_eq!(env.sim.write_count(), writes, "no write reached the tenant");
}
