//! The apply engine end to end: the real client against the simulator over HTTP, with its
//! write budget scaled down, faults injected, soft-deleted users.
mod common;

use std::time::Duration;

use m365sync::directory::{Directory, JournalState, NewDirectoryUser};
use m365sync::graph::{GraphClient, User};
use m365sync::sim::SimOptions;
use m365sync::sync::apply::{
    self, ApplyOptions, ApplySummary, EventSink, SetPasswordOutcome, WriteBudget,
};
use m365sync::sync::ops::AnyOp;
use m365sync::sync::pipeline::{self, DirectoryState};
use m365sync::sync::plan::{self, OpKind, Plan, Policy, TenantSnapshot};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

async fn graph(env: &common::Env) -> GraphClient {
    GraphClient::new(env.http(), &env.settings.graph_url, env.app_session().await)
}

/// The tenant's users, deleted users and domains, as the pipeline reads them.
async fn snapshot(g: &GraphClient) -> TenantSnapshot {
    pipeline::read_tenant(g, None, &DirectoryState::default())
        .await
        .unwrap()
        .users
}

/// The user ops the pipeline plans for the directory as it is.
async fn make_plan(env: &common::Env, g: &GraphClient) -> Plan {
    let dir = DirectoryState::load(&Directory::open(&env.settings.db_path()).unwrap(), "").unwrap();
    let tenant = pipeline::read_tenant(g, None, &dir).await.unwrap();
    pipeline::make_plan(&dir, &tenant, &Default::default(), 0, WriteBudget::GRAPH).plan
}

fn user_ops(p: Plan) -> Vec<AnyOp> {
    p.ops.into_iter().map(AnyOp::User).collect()
}

async fn run(env: &common::Env, g: &GraphClient, p: Plan, opts: ApplyOptions) -> ApplySummary {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let s = apply::apply(
        g.clone(),
        env.settings.db_path(),
        user_ops(p),
        opts,
        Box::new(EventSink(tx.clone())),
        tx,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    drain.await.unwrap();
    s
}

fn add_wanted(env: &common::Env, emails: &[String]) {
    let mut d = Directory::open(&env.settings.db_path()).unwrap();
    let mut ids = Vec::new();
    for e in emails {
        ids.push(
            d.add_user(&NewDirectoryUser {
                email: e.clone(),
                display_name: format!("User {e}"),
                given_name: Some("Given".into()),
                surname: Some("Sur".into()),
            })
            .unwrap(),
        );
    }
    d.set_want(&ids, true).unwrap();
}

fn assert_journal_all_done(env: &common::Env) {
    let d = Directory::open(&env.settings.db_path()).unwrap();
    let j = d.journal_list(None).unwrap();
    let not_done: Vec<_> = j.iter().filter(|e| e.state != JournalState::Done).collect();
    assert!(
        not_done.is_empty(),
        "{} not done: {:?}",
        not_done.len(),
        not_done.first()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bulk_bind_of_1000_users_under_a_scaled_write_budget() {
    let env = common::start(SimOptions {
        users: Some(20),
        write_budget: Some(250),
        budget_window: Some(Duration::from_secs(2)),
        ..common::fast_options()
    })
    .await;
    let g = graph(&env).await;
    let emails: Vec<String> = (0..1000)
        .map(|i| format!("bulk{i}@{}", env.sim.default_domain))
        .collect();
    add_wanted(&env, &emails);
    let p = make_plan(&env, &g).await;
    assert_eq!(p.count(OpKind::Create), 1000);
    // The client believes in a larger budget than the tenant grants: 429s must happen.
    let opts = ApplyOptions {
        budget: WriteBudget {
            writes: 400,
            window: Duration::from_secs(2),
        },
        actor: "test".into(),
        ..Default::default()
    };
    let s = run(&env, &g, p, opts).await;
    assert_eq!((s.done, s.failed), (1000, 0));
    assert_eq!(s.passwords.len(), 1000);
    assert!(
        env.sim.throttled_count() > 0,
        "the budget throttled some items"
    );
    for e in &emails {
        assert_eq!(env.sim.users_with_upn_count(e), 1, "{e}");
    }
    assert_journal_all_done(&env);
    let d = Directory::open(&env.settings.db_path()).unwrap();
    assert!(d.users().unwrap().iter().all(
        |u| u.tenant_user_id.is_some() && u.binding == m365sync::directory::BindingState::Bound
    ));
    assert_eq!(d.audit_list().unwrap().len(), 1000);
    // A second sync has nothing to do.
    assert!(make_plan(&env, &g).await.ops.is_empty());
}

async fn set_enabled(g: &GraphClient, id: &str, enabled: bool) {
    g.request(
        reqwest::Method::PATCH,
        &format!("/users/{id}"),
        Some(
            serde_json::to_vec(&serde_json::json!({"accountEnabled": enabled}))
                .unwrap()
                .into(),
        ),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_plan_create_reenable_block_takeover_and_password() {
    let env = common::start(SimOptions {
        users: Some(30),
        ..common::fast_options()
    })
    .await;
    let g = graph(&env).await;
    let snap = snapshot(&g).await;
    let live: Vec<User> = snap.pages.iter().flat_map(|p| p.iter().cloned()).collect();
    let (a, b, c) = (&live[3], &live[4], &live[5]);
    // a: linked + enabled, unbind -> block. b: linked + disabled, bind -> re-enable.
    // c: unlinked, same address -> takeover. new: create.
    set_enabled(&g, &b.id, false).await;
    let mut b2 = b.clone();
    b2.account_enabled = Some(false);
    let mut d = Directory::open(&env.settings.db_path()).unwrap();
    d.import(&[a.clone(), b2]).unwrap();
    let bid = d.find_by_email(b.email()).unwrap().unwrap().id;
    let aid = d.find_by_email(a.email()).unwrap().unwrap().id;
    d.set_want(&[bid], true).unwrap();
    d.set_want(&[aid], false).unwrap();
    drop(d);
    let new = format!("newbie@{}", env.sim.default_domain);
    add_wanted(&env, &[c.email().to_uppercase(), new.clone()]);
    let p = make_plan(&env, &g).await;
    let mut kinds: Vec<OpKind> = p.ops.iter().map(|o| o.kind).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            OpKind::Create,
            OpKind::Takeover,
            OpKind::ReEnable,
            OpKind::Block
        ],
        "{:#?}",
        p.ops
    );
    let before = env.sim.user_count();
    let s = run(&env, &g, p, ApplyOptions::default()).await;
    assert_eq!((s.done, s.failed), (4, 0));
    assert_eq!(
        env.sim.user_count(),
        before + 1,
        "only the new user is created"
    );
    let get = |upn: &str| env.sim.user_by_upn(upn).unwrap();
    assert_eq!(get(&a.user_principal_name)["accountEnabled"], false);
    assert_eq!(get(&b.user_principal_name)["accountEnabled"], true);
    assert_eq!(get(&c.user_principal_name)["accountEnabled"], true);
    assert_eq!(get(&new)["accountEnabled"], true);
    assert_eq!(get(&new)["givenName"], "Given");
    let d = Directory::open(&env.settings.db_path()).unwrap();
    let cu = d.find_by_email(c.email()).unwrap().unwrap();
    assert_eq!(
        cu.tenant_user_id.as_deref(),
        Some(c.id.as_str()),
        "takeover links"
    );
    drop(d);
    // Password: refused before sending when outside the rules, pushed when good.
    let writes = env.sim.write_count();
    let bad = apply::set_password(g.clone(), env.settings.db_path(), c.email(), "short", "t").await;
    assert!(bad.unwrap_err().to_string().contains("8 to 256"));
    assert_eq!(env.sim.write_count(), writes, "nothing sent");
    let ok = apply::set_password(
        g.clone(),
        env.settings.db_path(),
        c.email(),
        "Correct horse 9",
        "t",
    )
    .await
    .unwrap();
    assert_eq!(ok, SetPasswordOutcome::Pushed { re_enabled: false });
    assert_eq!(env.sim.write_count(), writes + 1);
    let d = Directory::open(&env.settings.db_path()).unwrap();
    assert!(d
        .find_by_email(c.email())
        .unwrap()
        .unwrap()
        .password_set_at
        .is_some());
    assert!(d
        .audit_list()
        .unwrap()
        .iter()
        .any(|a| a.action == "set-password" && a.outcome == "done"));
    assert_journal_all_done(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_upn_held_by_a_soft_deleted_user_is_restored_not_duplicated() {
    let env = common::start(SimOptions {
        users: Some(30),
        ..common::fast_options()
    })
    .await;
    let g = graph(&env).await;
    let snap = snapshot(&g).await;
    let victim = snap.pages[0][7].clone();
    assert!(env.sim.soft_delete(&victim.user_principal_name));
    add_wanted(&env, std::slice::from_ref(&victim.user_principal_name));
    let p = make_plan(&env, &g).await;
    assert_eq!(p.ops.len(), 1);
    assert_eq!(p.ops[0].kind, OpKind::Restore);
    let s = run(&env, &g, p, ApplyOptions::default()).await;
    assert_eq!((s.done, s.failed), (1, 0));
    assert_eq!(env.sim.users_with_upn_count(&victim.user_principal_name), 1);
    let u = env
        .sim
        .user_by_upn(&victim.user_principal_name)
        .expect("live again");
    assert_eq!(u["accountEnabled"], true);
    assert_eq!(u["id"], victim.id.as_str());
    assert_journal_all_done(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_5xx_resets_and_ambiguous_writes_lose_nothing_and_double_nothing() {
    let env = common::start(SimOptions {
        users: Some(200),
        error_rate: 0.10,
        reset_rate: 0.05,
        ambiguous_rate: 0.08,
        fault_seed: Some(7),
        ..common::fast_options()
    })
    .await;
    let g = graph(&env).await.with_retry(m365sync::graph::RetryPolicy {
        max_attempts: 10,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(500),
    });
    let snap = snapshot(&g).await;
    let live: Vec<User> = snap.pages.iter().flat_map(|p| p.iter().cloned()).collect();
    // 100 linked users to block, 300 to create.
    let mut d = Directory::open(&env.settings.db_path()).unwrap();
    let to_block: Vec<User> = live
        .iter()
        .filter(|u| u.account_enabled == Some(true))
        .skip(1)
        .take(100)
        .cloned()
        .collect();
    let ids: Vec<i64> = d
        .import(&to_block)
        .unwrap()
        .into_iter()
        .map(|o| match o {
            m365sync::directory::ImportOutcome::Imported { directory_id, .. } => directory_id,
            other => panic!("import: {other:?}"),
        })
        .collect();
    // Imported as they are (wanted bound); the admin then unbinds them.
    d.set_want(&ids, false).unwrap();
    drop(d);
    let emails: Vec<String> = (0..300)
        .map(|i| format!("chaos{i}@{}", env.sim.default_domain))
        .collect();
    add_wanted(&env, &emails);
    let p = make_plan(&env, &g).await;
    assert_eq!(p.count(OpKind::Create), 300);
    assert_eq!(p.count(OpKind::Block), to_block.len());
    let s = run(
        &env,
        &g,
        p,
        ApplyOptions {
            max_attempts: 30,
            ..Default::default()
        },
    )
    .await;
    assert_eq!((s.done, s.failed), (300 + to_block.len(), 0), "{s:?}");
    for e in &emails {
        assert_eq!(env.sim.users_with_upn_count(e), 1, "{e}");
    }
    for u in &to_block {
        assert_eq!(
            env.sim.user_by_upn(&u.user_principal_name).unwrap()["accountEnabled"],
            false
        );
    }
    assert_journal_all_done(&env);
    assert!(
        env.sim.request_count("*", "/v1.0/users/") > 0,
        "creates whose answer was lost were checked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_stops_sending_and_resume_finishes() {
    let env = common::start(SimOptions {
        users: Some(10),
        write_budget: Some(40),
        budget_window: Some(Duration::from_secs(1)),
        ..common::fast_options()
    })
    .await;
    let g = graph(&env).await;
    let emails: Vec<String> = (0..200)
        .map(|i| format!("c{i}@{}", env.sim.default_domain))
        .collect();
    add_wanted(&env, &emails);
    let p = make_plan(&env, &g).await;
    let cancel = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            if let apply::ApplyEvent::Progress(p) = ev {
                if p.done >= 40 {
                    c2.cancel();
                }
            }
        }
    });
    let opts = ApplyOptions {
        budget: WriteBudget {
            writes: 40,
            window: Duration::from_secs(1),
        },
        ..Default::default()
    };
    let s = apply::apply(
        g.clone(),
        env.settings.db_path(),
        user_ops(p),
        opts.clone(),
        Box::new(EventSink(tx.clone())),
        tx,
        cancel,
    )
    .await
    .unwrap();
    assert!(
        s.cancelled > 0 && s.done + s.failed + s.cancelled == 200,
        "{s:?}"
    );
    assert_eq!(env.sim.user_count(), 10 + s.done);
    // The next sync plans the rest again.
    let p2 = make_plan(&env, &g).await;
    assert_eq!(p2.count(OpKind::Create), 200 - s.done);
    let s2 = run(&env, &g, p2, opts).await;
    assert_eq!(s2.done, 200 - s.done);
    for e in &emails {
        assert_eq!(env.sim.users_with_upn_count(e), 1, "{e}");
    }
}

/// What a run killed between sending and recording leaves: ops `sent` whose creates were
/// applied (and one that never arrived). Reconciling checks the tenant first and records what
/// it finds (the applied ones linked, their passwords reported lost, the missing one dropped);
/// nothing is sent from the journal. The next plan creates only the missing one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconcile_checks_sent_creates_against_the_tenant_and_sends_nothing() {
    use m365sync::sync::reconcile::{self, Found};
    let env = common::start(SimOptions {
        users: Some(10),
        ..common::fast_options()
    })
    .await;
    let g = graph(&env).await;
    let emails: Vec<String> = (0..5)
        .map(|i| format!("half{i}@{}", env.sim.default_domain))
        .collect();
    add_wanted(&env, &emails);
    let p = make_plan(&env, &g).await;
    assert_eq!(p.count(OpKind::Create), 5);
    // The "killed" run: journaled, marked sent, and the first four applied by the tenant.
    let mut d = Directory::open(&env.settings.db_path()).unwrap();
    let ids = d
        .journal_insert("killed-run", &user_ops(p.clone()))
        .unwrap();
    d.journal_mark(&ids, JournalState::Sent).unwrap();
    drop(d);
    for op in p.ops.iter().filter(|o| o.email != emails[4]) {
        let body = serde_json::json!({
            "accountEnabled": true, "displayName": op.display_name,
            "mailNickname": plan::mail_nickname(&op.upn), "userPrincipalName": op.upn,
            "givenName": "Given", "surname": "Sur",
            "passwordProfile": {"password": "Killed-run-pw-1", "forceChangePasswordNextSignIn": true}});
        g.request(
            reqwest::Method::POST,
            "/users",
            Some(serde_json::to_vec(&body).unwrap().into()),
        )
        .await
        .unwrap();
    }
    let writes = env.sim.write_count();
    let found = reconcile::reconcile(&g, env.settings.db_path(), "t")
        .await
        .unwrap();
    assert_eq!(env.sim.write_count(), writes, "checking writes nothing");
    let applied = found.iter().filter(|v| v.found == Found::Applied).count();
    let not = found
        .iter()
        .filter(|v| v.found == Found::NotApplied)
        .count();
    assert_eq!((applied, not), (4, 1), "{found:?}");
    let d = Directory::open(&env.settings.db_path()).unwrap();
    assert!(d.journal_unfinished().unwrap().is_empty());
    assert_eq!(
        d.passwords_undelivered().unwrap().len(),
        4,
        "the killed run's passwords are reported lost"
    );
    assert_eq!(
        d.users()
            .unwrap()
            .iter()
            .filter(|u| u.tenant_user_id.is_some())
            .count(),
        4
    );
    drop(d);
    // The plan makes only the missing account, from the current wish.
    let p = make_plan(&env, &g).await;
    assert_eq!(p.count(OpKind::Create), 1);
    let s = run(&env, &g, p, ApplyOptions::default()).await;
    assert_eq!((s.done, s.failed), (1, 0), "{s:?}");
    assert_eq!(s.passwords.len(), 1);
    assert_eq!(env.sim.write_count(), writes + 1, "one create");
    for e in &emails {
        assert_eq!(env.sim.users_with_upn_count(e), 1, "{e}");
    }
    assert!(make_plan(&env, &g).await.ops.is_empty());
}

/// The directory's password policy: a bound user whose password expired is blocked at the next
/// sync; setting a new password pushes it and re-enables the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_password_blocks_and_a_new_password_re_enables() {
    let env = common::start(SimOptions {
        users: Some(10),
        ..common::fast_options()
    })
    .await;
    let g = graph(&env).await;
    let snap = snapshot(&g).await;
    let acc = snap.pages[0]
        .iter()
        .find(|u| u.account_enabled == Some(true) && u.mail.is_some())
        .unwrap()
        .clone();
    let mut d = Directory::open(&env.settings.db_path()).unwrap();
    d.import(std::slice::from_ref(&acc)).unwrap();
    let u = d.find_by_email(acc.email()).unwrap().unwrap();
    d.set_want(&[u.id], true).unwrap();
    d.set_password_set_at(u.id, "2020-01-01T00:00:00Z").unwrap();
    let policy = Policy {
        password_max_age_days: Some(90),
        ..Default::default()
    };
    d.set_policy(&policy, &Default::default()).unwrap();
    let users = d.users().unwrap();
    drop(d);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let p = plan::plan(&users, &snap, &policy, now);
    assert_eq!(p.ops.len(), 1);
    assert_eq!(p.ops[0].kind, OpKind::Block);
    let s = run(&env, &g, p, ApplyOptions::default()).await;
    assert_eq!(s.done, 1);
    assert_eq!(
        env.sim.user_by_upn(&acc.user_principal_name).unwrap()["accountEnabled"],
        false
    );
    let out = apply::set_password(
        g.clone(),
        env.settings.db_path(),
        acc.email(),
        "Fresh-Passw0rd",
        "t",
    )
    .await
    .unwrap();
    assert_eq!(out, SetPasswordOutcome::Pushed { re_enabled: true });
    assert_eq!(
        env.sim.user_by_upn(&acc.user_principal_name).unwrap()["accountEnabled"],
        true
    );
    let d = Directory::open(&env.settings.db_path()).unwrap();
    let u = d.find_by_email(acc.email()).unwrap().unwrap();
    assert_eq!(u.binding, m365sync::directory::BindingState::Bound);
    let users = d.users().unwrap();
    let snap = snapshot(&g).await;
    assert!(
        plan::plan(&users, &snap, &policy, now).ops.is_empty(),
        "fresh password: nothing to do"
    );
}

/// `graph::batch::execute`: items the budget refuses (429 inside a 200 batch) are sent again,
/// only them, after their Retry-After, until every item is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_execute_retries_only_the_throttled_items() {
    use m365sync::graph::batch::{self, BatchRequest};
    let env = common::start(SimOptions {
        users: Some(30),
        write_budget: Some(8),
        budget_window: Some(Duration::from_secs(1)),
        ..common::fast_options()
    })
    .await;
    let g = graph(&env).await;
    let snap = snapshot(&g).await;
    let targets: Vec<User> = snap.pages[0].iter().skip(1).take(20).cloned().collect();
    let reqs: Vec<BatchRequest> = targets
        .iter()
        .enumerate()
        .map(|(i, u)| {
            BatchRequest::new(
                i.to_string(),
                reqwest::Method::PATCH,
                format!("/users/{}", u.id),
            )
            .with_body(serde_json::json!({"jobTitle": format!("Title {i}")}))
        })
        .collect();
    let out = batch::execute(&g, &reqs, &m365sync::graph::RetryPolicy::default())
        .await
        .unwrap();
    assert!(out.iter().all(|r| r.is_ok()), "{out:?}");
    assert!(
        env.sim.throttled_count() >= 12,
        "{}",
        env.sim.throttled_count()
    );
    assert_eq!(env.sim.write_count(), 20, "each item applied once");
    for (i, u) in targets.iter().enumerate() {
        assert_eq!(
            env.sim.user_by_upn(&u.user_principal_name).unwrap()["jobTitle"],
            format!("Title {i}")
        );
    }
}
