//! Attribute sync end to end: the directory's attributes flow to the bound accounts through
//! the real binary and the simulator, one PATCH per changed account and none for the others;
//! a change made by hand in Microsoft 365 is reverted for a `sync` attribute and kept for an
//! `ignore` one; a takeover shows and applies its diff in its one request.
mod common;

use m365sync::sim::SimOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attribute_changes_are_planned_as_field_diffs_applied_and_then_in_sync() {
    let env = common::start(SimOptions {
        users: Some(5),
        ..common::fast_options()
    })
    .await;
    let dom = env.sim.default_domain.clone();
    let csv = env.data.path().join("people.csv");
    let write = |ann_title: &str, ben_city: &str| {
        std::fs::write(
            &csv,
            format!(
                "email,displayName,jobTitle,department,officeLocation,city,usageLocation\n\
                 ann@{dom},Ann Lee,{ann_title},Sales,HQ,Paris,FR\n\
                 ben@{dom},Ben Ode,Engineer,R&D,HQ,{ben_city},DE\n\
                 cat@{dom},Cat Roy,Clerk,Ops,Annex,Oslo,NO\n"
            ),
        )
        .unwrap();
    };
    write("Manager", "Berlin");
    let csv_s = csv.to_str().unwrap();
    env.ok(&["directory", "import", csv_s]).await;
    env.ok(&["bind", "--all"]).await;
    env.ok(&["login"]).await;
    env.ok(&["sync", "--apply"]).await;
    let user = |n: &str| env.sim.user_by_upn(&format!("{n}@{dom}")).unwrap();
    assert_eq!(user("ann")["jobTitle"], "Manager");
    assert_eq!(user("ann")["officeLocation"], "HQ");
    assert_eq!(user("ben")["usageLocation"], "DE");
    let dry = env.ok(&["sync", "--dry-run"]).await;
    assert!(
        dry.contains("Nothing to do"),
        "created with their attributes: {dry}"
    );

    // A CSV re-import changes Ann's job title and clears Ben's city.
    write("Director", "");
    env.ok(&["directory", "import", csv_s]).await;
    let dry = env.ok(&["sync", "--dry-run"]).await;
    assert!(dry.contains("2 ops: 2 update attributes"), "{dry}");
    assert!(
        dry.contains("jobTitle: \"Manager\" -> \"Director\""),
        "a field-level diff: {dry}"
    );
    assert!(dry.contains("city: \"Berlin\" -> (none)"), "{dry}");
    let writes = env.sim.write_count();
    let out = env.ok(&["sync", "--apply"]).await;
    assert!(out.contains("2 done, 0 failed"), "{out}");
    assert_eq!(
        env.sim.write_count(),
        writes + 2,
        "exactly one PATCH per changed account, none for Cat"
    );
    assert_eq!(user("ann")["jobTitle"], "Director");
    assert!(user("ben")["city"].is_null(), "{}", user("ben"));
    let dry = env.ok(&["sync", "--dry-run"]).await;
    assert!(dry.contains("Nothing to do"), "{dry}");

    // Changed by hand in Microsoft 365: reverted for `sync`, kept for `ignore`.
    let g = m365sync::graph::GraphClient::new(
        env.http(),
        &env.settings.graph_url,
        env.app_session().await,
    );
    let cat = user("cat")["id"].as_str().unwrap().to_string();
    g.request(
        reqwest::Method::PATCH,
        &format!("/users/{cat}"),
        Some(
            serde_json::to_vec(&serde_json::json!({"jobTitle": "Boss", "department": "Board"}))
                .unwrap()
                .into(),
        ),
    )
    .await
    .unwrap();
    env.ok(&["directory", "policy", "--attributes", "department=ignore"])
        .await;
    let dry = env.ok(&["sync", "--dry-run"]).await;
    assert!(
        dry.contains("jobTitle: \"Boss\" -> \"Clerk\""),
        "reverted: {dry}"
    );
    assert!(!dry.contains("department:"), "ignored: {dry}");
    env.ok(&["sync", "--apply"]).await;
    assert_eq!(user("cat")["jobTitle"], "Clerk");
    assert_eq!(user("cat")["department"], "Board");
    let policy = env.ok(&["directory", "policy"]).await;
    assert!(
        policy.contains("department=ignore") && policy.contains("jobTitle=sync"),
        "{policy}"
    );
    env.sim.shutdown().await;
}

/// A takeover of an existing account applies the directory's attributes in the same request,
/// and the dry run shows that diff.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_takeover_shows_and_applies_its_diff() {
    let env = common::start(SimOptions {
        users: Some(10),
        ..common::fast_options()
    })
    .await;
    let g = m365sync::graph::GraphClient::new(
        env.http(),
        &env.settings.graph_url,
        env.app_session().await,
    );
    let live = m365sync::sync::pipeline::read_tenant(&g, None, &Default::default())
        .await
        .unwrap()
        .users;
    let acc = live.pages[0]
        .iter()
        .find(|u| u.mail.is_some() && u.account_enabled == Some(true))
        .unwrap()
        .clone();
    let email = acc.mail.clone().unwrap();
    let csv = env.data.path().join("p.csv");
    std::fs::write(
        &csv,
        format!(
            "email,displayName,jobTitle\n{email},{},Head of Takeovers\n",
            acc.display_name.clone().unwrap_or_default()
        ),
    )
    .unwrap();
    env.ok(&["directory", "import", csv.to_str().unwrap()])
        .await;
    env.ok(&["bind", &email]).await;
    env.ok(&["login"]).await;
    let dry = env.ok(&["sync", "--dry-run"]).await;
    assert!(dry.contains("take over existing account"), "{dry}");
    assert!(dry.contains("-> \"Head of Takeovers\""), "{dry}");
    let writes = env.sim.write_count();
    let out = env.ok(&["sync", "--apply"]).await;
    assert!(out.contains("1 done, 0 failed"), "{out}");
    assert_eq!(env.sim.write_count(), writes + 1, "one request");
    assert_eq!(
        env.sim.user_by_upn(&acc.user_principal_name).unwrap()["jobTitle"],
        "Head of Takeovers"
    );
    env.sim.shutdown().await;
}

/// Managers from the directory's `manager` column (the manager's email): set after the
/// accounts they need, changed, and removed by an empty cell; the next plan is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn managers_follow_the_directory() {
    let env = common::start(SimOptions {
        users: Some(5),
        ..common::fast_options()
    })
    .await;
    let dom = env.sim.default_domain.clone();
    let csv = env.data.path().join("people.csv");
    let write = |ann_mgr: &str, cat_mgr: &str| {
        std::fs::write(
            &csv,
            format!(
                "email,displayName,manager\n\
                 ann@{dom},Ann,{ann_mgr}\n\
                 ben@{dom},Ben,\n\
                 cat@{dom},Cat,{cat_mgr}\n"
            ),
        )
        .unwrap();
    };
    write(&format!("ben@{dom}"), &format!("ann@{dom}"));
    let csv_s = csv.to_str().unwrap();
    env.ok(&["directory", "import", csv_s]).await;
    env.ok(&["bind", "--all"]).await;
    env.ok(&["login"]).await;
    let dry = env.ok(&["sync", "--dry-run"]).await;
    assert!(dry.contains("2 set manager"), "{dry}");
    let out = env.ok(&["sync", "--apply"]).await;
    assert!(
        out.contains("5 done, 0 failed"),
        "3 creates, 2 managers: {out}"
    );
    let g = m365sync::graph::GraphClient::new(
        env.http(),
        &env.settings.graph_url,
        env.app_session().await,
    );
    let id = |n: &str| {
        env.sim.user_by_upn(&format!("{n}@{dom}")).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(g.manager_of(&id("ann")).await.unwrap(), Some(id("ben")));
    assert_eq!(g.manager_of(&id("cat")).await.unwrap(), Some(id("ann")));
    assert_eq!(g.manager_of(&id("ben")).await.unwrap(), None);
    let dry = env.ok(&["sync", "--dry-run"]).await;
    assert!(dry.contains("Nothing to do"), "{dry}");

    // Cat now reports to Ben; Ann's manager is cleared.
    write("", &format!("ben@{dom}"));
    env.ok(&["directory", "import", csv_s]).await;
    let dry = env.ok(&["sync", "--dry-run"]).await;
    assert!(
        dry.contains(&format!("manager: \"ann@{dom}\" -> \"ben@{dom}\"")),
        "{dry}"
    );
    assert!(
        dry.contains(&format!("manager: \"ben@{dom}\" -> (none)")),
        "{dry}"
    );
    env.ok(&["sync", "--apply"]).await;
    assert_eq!(g.manager_of(&id("cat")).await.unwrap(), Some(id("ben")));
    assert_eq!(g.manager_of(&id("ann")).await.unwrap(), None);
    let dry = env.ok(&["sync", "--dry-run"]).await;
    assert!(dry.contains("Nothing to do"), "{dry}");
    env.sim.shutdown().await;
}
