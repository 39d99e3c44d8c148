//! The headless commands as scripts and cron use them: the real binary against the simulator.
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn m365sync(env: &common::Env) -> Command {
    m365sync_as(env, env.settings.client_id.as_deref().unwrap())
}

fn m365sync_as(env: &common::Env, client_id: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_m365sync"));
    c.arg("--authority")
        .arg(&env.settings.authority)
        .arg("--graph-url")
        .arg(&env.settings.graph_url)
        .arg("--tenant")
        .arg(env.settings.tenant.as_deref().unwrap())
        .arg("--client-id")
        .arg(client_id)
        .arg("--data-dir")
        .arg(&env.settings.data_dir)
        .env_remove("M365SYNC_CLIENT_SECRET")
        .stdin(Stdio::null());
    if let Some(ca) = &env.settings.ca_file {
        c.arg("--ca-file").arg(ca);
    }
    c
}

async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Headless device-code login: print Microsoft's message, a person approves, exit 0.
async fn login(env: &common::Env) {
    let mut child = m365sync(env)
        .arg("login")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().unwrap().unwrap();
        let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
        (first, rest)
    });
    // Wait for the message to be printed: the simulator knows the pending code.
    let mut code = None;
    for _ in 0..100 {
        if let Some(c) = env.sim.pending_user_codes().first() {
            code = Some(c.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let code = code.expect("login asked for a device code");
    env.person(&code, "approve").await;
    let (first, rest) = first.await.unwrap();
    assert!(
        first.contains("/devicelogin") && first.contains(&code),
        "{first}"
    );
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "login exit status {status:?}");
    let rest = rest.join("\n");
    assert!(rest.contains("Signed in"), "{rest}");
    assert!(!rest.contains("eyJ"), "no token printed: {rest}");
}

#[tokio::test]
async fn login_status_users_logout() {
    let env = common::start(common::fast_options()).await;

    // Not signed in yet: a clear error and a non-zero exit.
    let out = output({
        let mut c = m365sync(&env);
        c.arg("users");
        c
    })
    .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("m365sync login"),
        "{}",
        text(&out.stderr)
    );

    login(&env).await;

    let out = output({
        let mut c = m365sync(&env);
        c.arg("status");
        c
    })
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("expires in"),
        "{}",
        text(&out.stdout)
    );

    let out = output({
        let mut c = m365sync(&env);
        c.args(["users", "--json"]);
        c
    })
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), env.sim.user_count());
    // An empty directory: every user is new, but the guests, which are `guest`.
    assert!(
        lines.iter().all(|l| {
            let guest = l["userPrincipalName"]
                .as_str()
                .is_some_and(|u| u.contains("#EXT#"));
            l["importStatus"] == if guest { "guest" } else { "new" }
        }),
        "empty directory"
    );
    assert!(lines.iter().all(|l| l["userPrincipalName"].is_string()));

    // Import status comes from the directory: seed it as the demo does, then filter.
    {
        let mut dir = m365sync::directory::Directory::open(&env.settings.db_path()).unwrap();
        m365sync::demo::seed_directory(&mut dir).unwrap();
    }
    let out = output({
        let mut c = m365sync(&env);
        // The word as printed, in any case.
        c.args(["users", "--status", "Imported", "--csv"]);
        c
    })
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = text(&out.stdout);
    let mut rows = csv.lines();
    assert_eq!(
        rows.next().unwrap(),
        "id,userPrincipalName,mail,displayName,givenName,surname,accountEnabled,importStatus"
    );
    let rows: Vec<&str> = rows.collect();
    // The demo imports 40 users and the 3 synced from on-premises.
    assert_eq!(rows.len(), 43);
    assert!(
        rows.iter().all(|r| r.ends_with(",imported")),
        "the same word as --json"
    );

    let out = output({
        let mut c = m365sync(&env);
        c.arg("logout");
        c
    })
    .await;
    assert!(out.status.success());
    assert!(!env.cache_path().exists());
    let out = output({
        let mut c = m365sync(&env);
        c.arg("status");
        c
    })
    .await;
    assert_eq!(out.status.code(), Some(1), "not signed in");
}

#[tokio::test]
async fn app_only_login_reads_the_secret_from_the_environment() {
    let env = common::start(common::fast_options()).await;
    let (app_id, secret) = env.sim.apps[0].clone();
    let mut c = m365sync_as(&env, &app_id);
    c.arg("login").env("M365SYNC_CLIENT_SECRET", &secret);
    let out = output(c).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stdout).contains(&secret),
        "the secret is never printed"
    );

    // A secret file works too, and a wrong secret fails with the identity platform's reason.
    let file = env.data.path().join("secret");
    std::fs::write(&file, "wrong").unwrap();
    let mut c = m365sync_as(&env, &app_id);
    c.args(["login", "--client-secret-file"]).arg(&file);
    let out = output(c).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("AADSTS7000215"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn plain_http_to_a_real_host_is_refused() {
    let env = common::start(common::fast_options()).await;
    let mut c = Command::new(env!("CARGO_BIN_EXE_m365sync"));
    c.args([
        "--authority",
        "http://login.example.com",
        "--tenant",
        "t",
        "status",
    ])
    .arg("--data-dir")
    .arg(env.data.path());
    let out = output(c).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("plain http"),
        "{}",
        text(&out.stderr)
    );
}
