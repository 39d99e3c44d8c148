//! Group-driven binding, end to end through the real binary and the simulator: a user is
//! wanted bound directly or as a member of a bound group; binding a group provisions its
//! members, joining later provisions, leaving blocks (unless bound directly) and removes,
//! through the guard; unbinding the group keeps the members bound for another reason.
mod common;

use common::text;
use m365sync::sim::SimOptions;

fn enabled(env: &common::Env, upn: &str) -> bool {
    env.sim.user_by_upn(upn).expect(upn)["accountEnabled"] == true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn binding_a_group_provisions_its_members_and_keeps_them_current() {
    let env = common::start(SimOptions {
        users: Some(5),
        ..common::fast_options()
    })
    .await;
    let dom = env.sim.default_domain.clone();
    let [a, b, c, d] = ["ana", "ben", "cat", "dan"].map(|n| format!("{n}@{dom}"));
    let csv = env.data.path().join("people.csv");
    let write = |rows: &[(&str, &str)]| {
        let mut s = String::from("email,displayName,groups\n");
        for (e, g) in rows {
            s.push_str(&format!("{e},{e},{g}\n"));
        }
        std::fs::write(&csv, s).unwrap();
    };
    write(&[
        (&a, "Field Team"),
        (&b, "Field Team"),
        (&c, "Field Team"),
        (&d, ""),
    ]);
    let csv_s = csv.to_str().unwrap();
    env.ok(&["directory", "import", csv_s]).await;
    env.ok(&["login"]).await;
    let out = env.ok(&["bind", "--group", "Field Team"]).await;
    assert!(out.contains("3 members are bound through it"), "{out}");

    let dry = env.ok(&["sync", "--dry-run"]).await;
    assert!(
        dry.contains("7 ops: 3 create account, 1 create group, 3 add group member"),
        "{dry}"
    );
    assert!(
        dry.contains("bound via Field Team; no account has this address"),
        "{dry}"
    );
    assert!(!dry.contains(&d), "dan is in no bound group: {dry}");
    // Grouped by cause, as the console's preview is (`sync::causes`).
    assert!(
        dry.contains("== Through group Field Team (bound now): 7 changes =="),
        "{dry}"
    );
    let out = env.ok(&["sync", "--apply"]).await;
    assert!(out.contains("7 done, 0 failed"), "{out}");
    let g = env.sim.group_by_name("Field Team").unwrap();
    let gid = g["id"].as_str().unwrap().to_string();
    let members = |env: &common::Env| {
        let mut m = env.sim.group_members(&gid).unwrap();
        m.sort();
        m
    };
    assert_eq!(members(&env), vec![a.clone(), b.clone(), c.clone()]);
    let list = env.ok(&["directory", "list"]).await;
    assert!(
        list.lines()
            .any(|l| l.contains(&a) && l.contains("via Field Team")),
        "{list}"
    );

    // Dan joins the group in the directory: provisioned and added at the next sync.
    write(&[
        (&a, "Field Team"),
        (&b, "Field Team"),
        (&c, "Field Team"),
        (&d, "Field Team"),
    ]);
    env.ok(&["directory", "import", csv_s]).await;
    let out = env.ok(&["sync", "--apply"]).await;
    assert!(out.contains("2 done, 0 failed"), "create and add: {out}");
    assert!(enabled(&env, &d));
    assert_eq!(members(&env).len(), 4);

    // Cat leaves: blocked (no other reason to be bound) and removed, through the guard.
    write(&[
        (&a, "Field Team"),
        (&b, "Field Team"),
        (&c, ""),
        (&d, "Field Team"),
    ]);
    env.ok(&["directory", "import", csv_s]).await;
    let dry = env.ok(&["sync", "--dry-run"]).await;
    assert!(
        dry.contains("block sign-in") && dry.contains("remove group member"),
        "{dry}"
    );
    assert!(
        dry.contains("== Left group Field Team: 2 changes =="),
        "{dry}"
    );
    let refused = env.run(&["sync", "--apply"]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("--yes-block 1"));
    env.ok(&["sync", "--apply", "--yes-block", "1"]).await;
    assert!(!enabled(&env, &c));
    assert_eq!(members(&env), vec![a.clone(), b.clone(), d.clone()]);

    // Ana is also bound directly; unbinding the group keeps her and blocks the others.
    env.ok(&["bind", &a]).await;
    let out = env.ok(&["unbind", "--group", "Field Team"]).await;
    assert!(out.contains("2 members have no other reason"), "{out}");
    let dry = env.ok(&["sync", "--dry-run"]).await;
    assert!(
        !dry.contains(&format!("block sign-in                {a}")),
        "{dry}"
    );
    let blocks: Vec<&str> = dry
        .lines()
        .filter(|l| l.starts_with("block sign-in"))
        .collect();
    assert_eq!(blocks.len(), 2, "{dry}");
    assert!(blocks.iter().all(|l| !l.contains(&a)), "{dry}");
    env.ok(&["sync", "--apply", "--yes-block", "2"]).await;
    assert!(enabled(&env, &a));
    assert!(!enabled(&env, &b) && !enabled(&env, &d));
    // The M365 group is kept as it is: no longer synced.
    assert_eq!(members(&env), vec![a.clone(), b.clone(), d.clone()]);
    let dry = env.ok(&["sync", "--dry-run"]).await;
    assert!(dry.contains("Nothing to do"), "{dry}");
    env.sim.shutdown().await;
}
