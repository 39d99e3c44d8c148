//! The headless commands and the tenant snapshot, as scripts use them (the real binary
//! against the simulator): the first `users` lists in full and saves the copy, the next one
//! is a delta round, `--fresh` lists in full, `--offline` reads no user from Graph and says
//! how old the copy is, `--offline` without a copy exits 66, `sync --offline` plans on the
//! copy (and refuses --apply), stdout keeps its format; a binary killed during a full listing
//! leaves the previous copy usable.
mod common;

use std::time::Duration;

use m365sync::sim::SimOptions;

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().skip(1).map(str::to_string).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_sync_and_errors_use_the_copy_fresh_and_offline() {
    let env = common::start(SimOptions {
        users: Some(40),
        ..common::fast_options()
    })
    .await;
    let text = common::text;
    env.ok(&["login"]).await;

    // --offline before any copy: a clear error, its own exit code, nothing on stdout.
    let o = env.run(&["users", "--offline"]).await;
    assert_eq!(o.status.code(), Some(66), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty());
    assert!(
        text(&o.stderr).contains("no saved copy") && text(&o.stderr).contains("without --offline"),
        "{}",
        text(&o.stderr)
    );

    // The first run lists in full and says why, on stderr.
    let o = env.run(&["users", "--csv"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("full listing (No saved copy of this tenant yet"),
        "{err}"
    );
    let first = text(&o.stdout);
    assert!(first.starts_with("id,userPrincipalName,"), "{first}");
    assert_eq!(first.lines().count(), 41, "a header and 40 users");
    assert!(env
        .data
        .path()
        .join("snapshots")
        .read_dir()
        .unwrap()
        .any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".sqlite3")));

    // A user soft-deleted meanwhile: the next run is a delta round that sees it.
    let gone = first
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .to_string();
    assert!(env.sim.soft_delete(&gone));
    let o = env.run(&["users", "--csv"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("delta round: 1 changed, as of 20"),
        "one line saying what the round did: {err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let second = text(&o.stdout);
    assert_eq!(second.lines().count(), 40);
    assert!(!second.contains(&gone));

    // --offline: the copy as it is, its age on stderr, the same stdout, no user read.
    let before = env.sim.request_count("GET", "/v1.0/users");
    let o = env.run(&["users", "--csv", "--offline"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(env.sim.request_count("GET", "/v1.0/users"), before);
    let err = text(&o.stderr);
    assert!(
        err.contains("offline: the saved copy of the tenant as of ") && err.contains(" old)"),
        "{err}"
    );
    assert_eq!(sorted_lines(&text(&o.stdout)), sorted_lines(&second));
    // The text format too, unchanged.
    let o = env.run(&["users", "--offline"]).await;
    assert!(text(&o.stdout).starts_with("STATUS"), "{}", text(&o.stdout));

    // --fresh: a full listing, said as asked.
    let o = env.run(&["users", "--json", "--fresh"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("full listing (Listing every user again, as asked)"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        text(&o.stdout).lines().count(),
        39,
        "one JSON line per live user"
    );
    let o = env.run(&["users", "--fresh", "--offline"]).await;
    assert_eq!(o.status.code(), Some(64), "--fresh and --offline conflict");

    // sync --dry-run --offline plans on the copy; --apply never goes with it.
    let o = env.run(&["sync", "--dry-run", "--offline"]).await;
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        text(&o.stdout).contains("Nothing to do"),
        "{}",
        text(&o.stdout)
    );
    assert!(text(&o.stderr).contains("offline: the saved copy"));
    let o = env.run(&["sync", "--apply", "--offline"]).await;
    assert_eq!(o.status.code(), Some(64), "{}", text(&o.stderr));
    let o = env.run(&["sync", "--dry-run"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("delta round: 0 changed"),
        "{}",
        text(&o.stderr)
    );
    let o = env.run(&["sync", "--dry-run", "--fresh"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("full listing ("));

    // errors: the same choices.
    let o = env.run(&["errors", "--offline"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("offline: the saved copy"));
    let o = env.run(&["errors"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("delta round: "),
        "{}",
        text(&o.stderr)
    );
}

/// A binary killed in the middle of a full listing, or of a delta round, leaves the previous
/// copy: `--offline` still reads it, and the next run brings it up to date with a round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_killed_mid_listing_or_mid_round_leaves_the_previous_copy_usable() {
    let env = common::start(SimOptions {
        users: Some(3000),
        latency: Duration::from_millis(150),
        delta_page_size: 5,
        ..common::fast_options()
    })
    .await;
    let text = common::text;
    env.ok(&["login"]).await;
    let o = env.run(&["users", "--csv"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let saved = sorted_lines(&text(&o.stdout));
    assert_eq!(saved.len(), 3000);

    // A full listing of 4 pages at 150 ms each, killed once its first requests are out.
    let mut c = env.bin();
    c.args(["users", "--csv", "--fresh"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let before = env.sim.request_count("GET", "/v1.0/users");
    let mut child = c.spawn().unwrap();
    let started = std::time::Instant::now();
    while env.sim.request_count("GET", "/v1.0/users") < before + 2
        && started.elapsed() < Duration::from_secs(20)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        env.sim.request_count("GET", "/v1.0/users") >= before + 2,
        "the listing had started"
    );
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed before it ended");

    let o = env.run(&["users", "--csv", "--offline"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(sorted_lines(&text(&o.stdout)), saved);
    let o = env.run(&["users", "--csv"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("delta round: 0 changed"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(sorted_lines(&text(&o.stdout)), saved);

    // 20 users soft-deleted: a round of several pages, killed after its first two.
    let gone: Vec<String> = saved
        .iter()
        .take(20)
        .map(|l| l.split(',').nth(1).unwrap().to_string())
        .collect();
    for upn in &gone {
        assert!(env.sim.soft_delete(upn));
    }
    let before = env.sim.request_count("GET", "/v1.0/users/delta");
    let mut c = env.bin();
    c.args(["users", "--csv"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let started = std::time::Instant::now();
    while env.sim.request_count("GET", "/v1.0/users/delta") < before + 2
        && started.elapsed() < Duration::from_secs(20)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success(), "killed mid-round");
    // The copy is the one before the round; the next run's round brings all 20.
    let o = env.run(&["users", "--csv", "--offline"]).await;
    assert_eq!(sorted_lines(&text(&o.stdout)), saved);
    let o = env.run(&["users", "--csv"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("delta round: 20 changed"),
        "{}",
        text(&o.stderr)
    );
    let now = sorted_lines(&text(&o.stdout));
    assert_eq!(now.len(), 2980);
    assert!(gone
        .iter()
        .all(|g| now.iter().all(|l| !l.contains(g.as_str()))));
}
