//! SIGKILL the real binary in the middle of `sync --apply` of 1,000 ops, restart it, and check
//! that the simulator (which outlives the client, in this process) holds every account exactly
//! once and that the journal shows every op done.
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

fn sync_apply(env: &common::Env) -> Command {
    let mut c = bin(env);
    c.args([
        "sync",
        "--apply",
        "--write-budget",
        "250",
        "--budget-window-secs",
        "1",
    ]);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

async fn output(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_random_points_then_resume_creates_every_account_exactly_once() {
    let started = Instant::now();
    let mut rng = rand::rng();
    let mut interrupted = 0;
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

        // Kill twice at random points, then let it finish.
        let mut kills = 0;
        for _ in 0..2 {
            let mut child = sync_apply(&env).spawn().unwrap();
            let after = Duration::from_millis(rng.random_range(150..1800));
            tokio::time::sleep(after).await;
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap(); // SIGKILL
                kills += 1;
            }
            let _ = child.wait();
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
        for _ in 0..3 {
            let out = output(sync_apply(&env)).await;
            if out.status.code() == Some(0) {
                finished = true;
                break;
            }
            eprintln!("rerun: {}", String::from_utf8_lossy(&out.stderr));
        }
        assert!(finished, "trial {trial}: sync --apply ends with exit 0");
        for e in &emails {
            assert_eq!(env.sim.users_with_upn_count(e), 1, "trial {trial}: {e}");
        }
        let d = Directory::open(&env.settings.db_path()).unwrap();
        let journal = d.journal_list(None).unwrap();
        assert!(!journal.is_empty());
        let mut done_emails = std::collections::HashSet::new();
        for e in &journal {
            assert!(
                matches!(e.state, JournalState::Done),
                "trial {trial}: journal op {} {} is {:?}",
                e.id,
                e.op.email,
                e.state
            );
            done_emails.insert(e.op.email.clone());
        }
        assert_eq!(done_emails.len(), N, "trial {trial}");
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
}
