//! Groups end to end: the real binary against the simulator. CSV import with the `groups`
//! column (idempotent), bind --group, sync --dry-run / --apply creating the M365 group with the
//! derived mailNickname and adding the members, membership changes in the directory reaching
//! the tenant, unbinding (users and the group), and nicknames Graph refuses surfacing as failed
//! ops with Graph's message.
mod common;

use std::process::{Command, Output, Stdio};

use m365sync::sim::SimOptions;
use serde_json::Value;

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

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn ok(env: &common::Env, args: &[&str]) -> String {
    let o = run(env, args).await;
    assert!(
        o.status.success(),
        "{args:?}: {}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

async fn groups_json(env: &common::Env) -> Vec<Value> {
    ok(env, &["groups", "--json"])
        .await
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn group<'a>(gs: &'a [Value], name: &str) -> &'a Value {
    gs.iter().find(|g| g["name"] == name).unwrap()
}

fn members(env: &common::Env, name: &str) -> Vec<String> {
    let g = env
        .sim
        .group_by_name(name)
        .expect("the group exists in the tenant");
    let mut m = env.sim.group_members(g["id"].as_str().unwrap()).unwrap();
    m.sort();
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_a_group_sync_membership_and_unbind() {
    let env = common::start(SimOptions {
        users: Some(10),
        ..common::fast_options()
    })
    .await;
    ok(&env, &["login"]).await;
    let dom = env.sim.default_domain.clone();
    let csv = env.data.path().join("people.csv");
    let write_csv = |cat_groups: &str| {
        std::fs::write(
            &csv,
            format!(
                "email,givenName,surname,displayName,groups\n\
                 ann@{dom},Ann,Lee,Ann Lee,Sales (EU); Finance\n\
                 ben@{dom},Ben,Ode,Ben Ode,Sales (EU)\n\
                 cat@{dom},Cat,Roy,Cat Roy,{cat_groups}\n"
            ),
        )
        .unwrap();
    };
    write_csv("Sales (EU)");
    let csv_s = csv.to_str().unwrap();
    let out = ok(&env, &["directory", "import", csv_s]).await;
    assert!(out.contains("3 added"), "{out}");
    assert!(
        out.contains("groups: 2 added, 4 memberships changed"),
        "{out}"
    );
    // Importing the same file again changes nothing.
    let out = ok(&env, &["directory", "import", csv_s]).await;
    assert!(out.contains("3 unchanged"), "{out}");
    assert!(!out.contains("groups:"), "{out}");

    let gs = groups_json(&env).await;
    assert_eq!(gs.len(), 2);
    let sales = group(&gs, "Sales (EU)");
    assert_eq!(sales["mailNickname"], "SalesEU");
    assert_eq!(sales["state"], "unbound");
    assert_eq!(sales["members"], 3);
    assert_eq!(sales["kind"], "security");

    let ann = format!("ann@{dom}");
    let ben = format!("ben@{dom}");
    let cat = format!("cat@{dom}");
    ok(&env, &["bind", &ann, &ben, &cat]).await;
    let out = ok(&env, &["bind", "--group", "Sales (EU)"]).await;
    assert!(out.contains("1 group marked to bind"), "{out}");
    let o = run(&env, &["bind", "--group", "Nope"]).await;
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("no directory group is named `Nope`"));

    // `Sales (EU)` cannot be a nickname as it is: preflight holds the group back and suggests
    // one, which the admin accepts (the Errors tab's one-key fix, headless).
    let o = run(&env, &["sync", "--dry-run"]).await;
    let held = text(&o.stdout);
    assert!(
        held.contains("held back: create group \"Sales (EU)\"") && held.contains("use \"SalesEU\""),
        "{held}"
    );
    let out = ok(&env, &["group", "nickname", "Sales (EU)", "SalesEU"]).await;
    assert!(out.contains("mailNickname SalesEU"), "{out}");
    let bad = run(&env, &["group", "nickname", "Sales (EU)", "Sales EU"]).await;
    assert!(!bad.status.success(), "a nickname with a space is refused");

    let out = ok(&env, &["sync", "--dry-run"]).await;
    assert!(!out.contains("held back"), "{out}");
    assert!(out.contains("create group"), "{out}");
    assert!(out.contains("Sales (EU) (SalesEU)"), "{out}");
    assert!(out.contains("add group member"), "{out}");
    assert!(
        out.contains("7 ops: 3 create account, 1 create group, 3 add group member"),
        "{out}"
    );
    assert!(
        env.sim.group_by_name("Sales (EU)").is_none(),
        "a dry run sends nothing"
    );

    let out = ok(&env, &["sync", "--apply"]).await;
    // One run: the accounts, the group, then the members (each add waits for its account).
    assert!(out.contains("7 done, 0 failed, 0 not sent"), "{out}");
    let g = env.sim.group_by_name("Sales (EU)").unwrap();
    assert_eq!(g["mailNickname"], "SalesEU");
    assert_eq!(g["securityEnabled"], true);
    assert_eq!(g["mailEnabled"], false);
    assert_eq!(
        members(&env, "Sales (EU)"),
        vec![ann.clone(), ben.clone(), cat.clone()]
    );
    assert!(
        env.sim.group_by_name("Finance").is_none(),
        "Finance is not bound"
    );
    let gs = groups_json(&env).await;
    let sales = group(&gs, "Sales (EU)");
    assert_eq!(sales["state"], "bound");
    assert_eq!(sales["tenantGroupId"], g["id"]);
    // In sync: nothing more to do.
    let out = ok(&env, &["sync", "--dry-run"]).await;
    assert!(out.contains("Nothing to do"), "{out}");

    // Cat leaves the group in the directory: removed in the tenant.
    write_csv("");
    let out = ok(&env, &["directory", "import", csv_s]).await;
    assert!(
        out.contains("groups: 0 added, 1 membership changed"),
        "{out}"
    );
    // Removing members is guarded like blocking: 1 of 3 bound users is over 10%.
    let refused = run(&env, &["sync", "--apply"]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("--yes-block 1"));
    let out = ok(&env, &["sync", "--apply", "--yes-block", "1"]).await;
    assert!(out.contains("remove group member"), "{out}");
    assert_eq!(members(&env, "Sales (EU)"), vec![ann.clone(), ben.clone()]);

    // Ben is unbound directly, but he is a member of the bound group: still bound through it.
    ok(&env, &["unbind", &ben]).await;
    let out = ok(&env, &["sync", "--apply"]).await;
    assert!(out.contains("Nothing to do"), "{out}");
    assert_eq!(members(&env, "Sales (EU)"), vec![ann.clone(), ben.clone()]);

    // Unbinding the group stops syncing it and leaves the M365 group as it is; Ben has no
    // other reason to be bound any more: blocked (through the guard), kept in the group.
    let out = ok(&env, &["unbind", "--group", "sales (eu)"]).await;
    assert!(out.contains("1 group marked to unbind"), "{out}");
    assert!(out.contains("1 member has no other reason"), "{out}");
    let out = ok(&env, &["sync", "--apply", "--yes-block", "1"]).await;
    assert!(out.contains("1 done, 0 failed"), "{out}");
    assert!(!out.contains("group member"), "{out}");
    assert_eq!(env.sim.user_by_upn(&ben).unwrap()["accountEnabled"], false);
    assert_eq!(members(&env, "Sales (EU)"), vec![ann.clone(), ben.clone()]);
    assert_eq!(env.sim.group_count(), 1);
    let gs = groups_json(&env).await;
    assert_eq!(group(&gs, "Sales (EU)")["state"], "kept");

    // Every group write is in the audit log.
    let audit = ok(&env, &["audit"]).await;
    assert!(audit.contains("create-group"), "{audit}");
    assert!(audit.contains("add-member"), "{audit}");
    assert!(audit.contains("remove-member"), "{audit}");
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nicknames_graph_refuses_surface_as_failed_ops() {
    let env = common::start(SimOptions {
        users: Some(5),
        ..common::fast_options()
    })
    .await;
    ok(&env, &["login"]).await;
    let dom = env.sim.default_domain.clone();
    let csv = env.data.path().join("people.csv");
    // `Finance` and `Finance:` derive the same nickname; `()` derives none.
    std::fs::write(
        &csv,
        format!(
            "email,displayName,groups\n\
             ann@{dom},Ann Lee,Finance; Finance:; ()\n"
        ),
    )
    .unwrap();
    let out = ok(&env, &["directory", "policy", "--group-kind", "m365"]).await;
    assert!(out.contains("group kind: m365"), "{out}");
    ok(&env, &["directory", "import", csv.to_str().unwrap()]).await;
    ok(&env, &["bind", &format!("ann@{dom}")]).await;
    ok(
        &env,
        &[
            "bind", "--group", "Finance", "--group", "Finance:", "--group", "()",
        ],
    )
    .await;
    // The admin gives `Finance:` the nickname `Finance`, which another Microsoft 365 group
    // will hold: only Graph can refuse that. `()` has no valid nickname and stays held back.
    ok(&env, &["group", "nickname", "Finance:", "Finance"]).await;
    let o = run(&env, &["sync", "--apply"]).await;
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("held back: create group \"()\""),
        "{stdout}"
    );
    // Microsoft 365 groups need a unique nickname: Graph refuses the second one.
    assert!(
        stderr.contains(
            "Request_BadRequest: Another object with the same value for property mailNickname already exists."
        ),
        "{stderr}"
    );
    // A name that leaves no valid nickname is never sent.
    assert_eq!(env.sim.group_count(), 1);
    let g = env.sim.group_by_name("Finance").unwrap();
    assert_eq!(g["groupTypes"], serde_json::json!(["Unified"]));
    assert_eq!(
        env.sim.group_members(g["id"].as_str().unwrap()).unwrap(),
        vec![format!("ann@{dom}")]
    );
    let gs = groups_json(&env).await;
    let failed = group(&gs, "Finance:");
    assert_eq!(failed["state"], "failed");
    assert!(failed["lastError"]
        .as_str()
        .unwrap()
        .contains("already exists"));
    assert_eq!(
        group(&gs, "()")["state"],
        "pending",
        "held back, still wanted"
    );
    assert_eq!(group(&gs, "()")["mailNickname"], "");
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_goes_through_batches_under_a_small_write_budget() {
    let env = common::start(SimOptions {
        users: Some(5),
        write_budget: Some(8),
        budget_window: Some(std::time::Duration::from_secs(1)),
        ..common::fast_options()
    })
    .await;
    ok(&env, &["login"]).await;
    let dom = env.sim.default_domain.clone();
    let csv = env.data.path().join("people.csv");
    let mut rows = String::from("email,displayName,groups\n");
    for i in 0..25 {
        rows.push_str(&format!("p{i}@{dom},P {i},Finance\n"));
    }
    std::fs::write(&csv, rows).unwrap();
    ok(&env, &["directory", "import", csv.to_str().unwrap()]).await;
    ok(&env, &["bind", "--all"]).await;
    ok(&env, &["bind", "--group", "Finance"]).await;
    let out = ok(
        &env,
        &[
            "sync",
            "--apply",
            "--write-budget",
            "8",
            "--budget-window-secs",
            "1",
        ],
    )
    .await;
    // 25 accounts, the group and its 25 members in one run under the budget: items refused
    // with 429 are sent again alone.
    assert!(out.contains("51 done, 0 failed"), "{out}");
    assert_eq!(members(&env, "Finance").len(), 25);
    // The engine keeps to the budget it is told (the simulator's): member adds are writes
    // like any other, limited, batched and journaled with the rest.
    let out = ok(&env, &["sync", "--dry-run"]).await;
    assert!(out.contains("Nothing to do"), "{out}");
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_a_killed_run_created_is_linked_not_duplicated() {
    let env = common::start(SimOptions {
        users: Some(5),
        ..common::fast_options()
    })
    .await;
    ok(&env, &["login"]).await;
    let dom = env.sim.default_domain.clone();
    // The tenant already has the group (created by a run killed before it heard the answer).
    let existing = env.sim.add_group("R&D; Ops", "R&DOps", false);
    let csv = env.data.path().join("people.csv");
    std::fs::write(
        &csv,
        format!("email,displayName,groups\nann@{dom},Ann,\"R&D: Ops\"\n"),
    )
    .unwrap();
    ok(&env, &["directory", "import", csv.to_str().unwrap()]).await;
    // The CSV cannot carry a `;` inside a name: rename through the directory API.
    {
        let mut d = m365sync::directory::Directory::open(&env.settings.db_path()).unwrap();
        let g = d.find_group("R&D: Ops").unwrap().unwrap();
        d.rename_group(g.id, "R&D; Ops").unwrap();
    }
    ok(&env, &["bind", &format!("ann@{dom}")]).await;
    ok(&env, &["bind", "--group", "R&D; Ops"]).await;
    let out = ok(&env, &["sync", "--dry-run"]).await;
    assert!(out.contains("link existing group"), "{out}");
    assert!(!out.contains("create group"), "{out}");
    let out = ok(&env, &["sync", "--apply"]).await;
    assert!(out.contains("3 done, 0 failed"), "{out}");
    assert_eq!(env.sim.group_count(), 1, "no duplicate");
    assert_eq!(
        env.sim.group_members(&existing).unwrap(),
        vec![format!("ann@{dom}")]
    );
    let gs = groups_json(&env).await;
    assert_eq!(group(&gs, "R&D; Ops")["tenantGroupId"], existing.as_str());
    assert_eq!(group(&gs, "R&D; Ops")["mailNickname"], "R&DOps");
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_with_stray_spaces_is_held_back_until_trimmed_then_created() {
    let env = common::start(SimOptions {
        users: Some(5),
        ..common::fast_options()
    })
    .await;
    ok(&env, &["login"]).await;
    let dom = env.sim.default_domain.clone();
    let csv = env.data.path().join("people.csv");
    std::fs::write(&csv, format!("email,displayName\nann@{dom},Ann Lee\n")).unwrap();
    ok(&env, &["directory", "import", csv.to_str().unwrap()]).await;
    // A name as another directory tool wrote it, trailing space included (the CSV import
    // trims fields, so it is written here directly, as the demo seed does).
    {
        let mut d = m365sync::directory::Directory::open(&env.settings.db_path()).unwrap();
        let g = d.add_group("Engineering ").unwrap();
        let ann = d.find_by_email(&format!("ann@{dom}")).unwrap().unwrap();
        d.add_group_member(g, ann.id).unwrap();
    }
    ok(&env, &["bind", &format!("ann@{dom}")]).await;
    ok(&env, &["bind", "--group", "Engineering "]).await;
    // Shown: held back, with the trimmed name as the fix.
    let o = run(&env, &["sync", "--apply"]).await;
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("held back: create group \"Engineering \"")
            && out.contains("use \"Engineering\""),
        "{out}"
    );
    assert!(env.sim.group_by_name("Engineering").is_none());
    // Fixed, then re-synced: created once, with its member.
    let fixed = ok(&env, &["group", "trim", "Engineering "]).await;
    assert!(fixed.contains("is now \"Engineering\""), "{fixed}");
    let out = ok(&env, &["sync", "--apply"]).await;
    assert!(!out.contains("held back"), "{out}");
    let g = env.sim.group_by_name("Engineering").expect("created");
    assert_eq!(
        env.sim.group_members(g["id"].as_str().unwrap()).unwrap(),
        vec![format!("ann@{dom}")]
    );
}
