//! The one-key fixes' runtime arm against the simulator: restore and purge of a soft-deleted
//! user (`/directory/deletedItems/{id}`) and the re-sync that then creates the account, the
//! directory writes (email, UPN override, group nickname and name), and linking a conflict
//! (after which a re-sync has nothing to do for that user).
mod common;

use m365sync::app::effect::Fix;
use m365sync::app::runtime::run_fix;
use m365sync::directory::{Directory, NewDirectoryUser};
use m365sync::graph::GraphClient;
use m365sync::sim::SimOptions;
use m365sync::sync::apply::WriteBudget;
use m365sync::sync::pipeline::Pipeline;

async fn graph(env: &common::Env) -> GraphClient {
    GraphClient::new(env.http(), &env.settings.graph_url, env.app_session().await)
}

/// The pipeline a fix runs with (the console builds it from the session).
fn pipe(env: &common::Env, g: &GraphClient) -> Option<Pipeline> {
    Some(Pipeline {
        graph: g.clone(),
        data_dir: env.settings.data_dir.clone(),
        db_path: env.settings.db_path(),
        tenant: String::new(),
        me: Default::default(),
        budget: WriteBudget::GRAPH,
    })
}

async fn deleted_upns(g: &GraphClient) -> Vec<String> {
    g.list_deleted_users()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.user.user_principal_name)
        .collect()
}

async fn snapshot(g: &GraphClient) -> m365sync::sync::plan::TenantSnapshot {
    m365sync::sync::pipeline::read_tenant(g, None, &Default::default())
        .await
        .unwrap()
        .users
}

/// Apply user ops as the pipeline would.
async fn apply(
    g: &GraphClient,
    db: &std::path::Path,
    plan: m365sync::sync::plan::Plan,
) -> m365sync::sync::apply::ApplySummary {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    m365sync::sync::apply::apply(
        g.clone(),
        db.to_path_buf(),
        plan.ops
            .into_iter()
            .map(m365sync::sync::ops::AnyOp::User)
            .collect(),
        Default::default(),
        Box::new(m365sync::sync::apply::EventSink(tx.clone())),
        tx,
        Default::default(),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_and_purge_free_the_addresses_of_soft_deleted_users() {
    let env = common::start(SimOptions::default()).await;
    let g = graph(&env).await;
    let db = env.settings.db_path();
    Directory::open(&db).unwrap();
    let before = deleted_upns(&g).await;
    assert!(before
        .iter()
        .any(|u| u == "farid.haddad@northwindtraders.com"));

    let done = run_fix(
        Fix::RestoreDeleted {
            address: "Farid.Haddad@northwindtraders.com".into(),
        },
        db.clone(),
        pipe(&env, &g),
    )
    .await
    .unwrap();
    assert!(done.contains("Restored"), "{done}");
    // Purging a user has no application permission (graph-notes §16): app-only it is
    // refused, and the Errors tab says which permission (delegated) it needs.
    let refused = run_fix(
        Fix::PurgeDeleted {
            address: "olga.petrov@northwindtraders.com".into(),
        },
        db.clone(),
        pipe(&env, &g),
    )
    .await
    .unwrap_err();
    let d = m365sync::diagnose::diagnose_failure(&refused);
    assert_eq!(d.kind, "insufficient-privileges", "{d:?}");
    assert!(d.permission.is_some());
    // Signed in as an admin (device code), the purge goes through.
    let admin = GraphClient::new(
        env.http(),
        &env.settings.graph_url,
        env.device_session().await,
    );
    let done = run_fix(
        Fix::PurgeDeleted {
            address: "olga.petrov@northwindtraders.com".into(),
        },
        db.clone(),
        pipe(&env, &admin),
    )
    .await
    .unwrap();
    assert!(done.contains("Permanently deleted"), "{done}");
    let after = deleted_upns(&g).await;
    assert!(
        !after.iter().any(|u| u.starts_with("farid.haddad@")),
        "{after:?}"
    );
    assert!(
        !after.iter().any(|u| u.starts_with("olga.petrov@")),
        "{after:?}"
    );
    // Farid is live again; Olga is gone for good.
    let live = g
        .get(&format!(
            "{}/users/farid.haddad@northwindtraders.com",
            g.base()
        ))
        .await;
    assert!(live.is_ok(), "{live:?}");
    // A second purge finds nobody and says so.
    let again = run_fix(
        Fix::PurgeDeleted {
            address: "olga.petrov@northwindtraders.com".into(),
        },
        db.clone(),
        pipe(&env, &admin),
    )
    .await;
    assert!(again
        .unwrap_err()
        .to_string()
        .contains("no soft-deleted user"));

    // The address is free: a directory user with it is bound by a re-sync, as a new account.
    let olga = {
        let mut d = Directory::open(&db).unwrap();
        let id = d
            .add_user(&NewDirectoryUser {
                email: "olga.petrov@northwindtraders.com".into(),
                display_name: "Olga Petrov".into(),
                ..Default::default()
            })
            .unwrap();
        d.set_want(&[id], true).unwrap();
        d.users().unwrap()
    };
    let snap = snapshot(&g).await;
    let plan = m365sync::sync::plan::plan(&olga, &snap, &Default::default(), 0);
    assert_eq!(plan.ops.len(), 1);
    assert_eq!(plan.ops[0].kind, m365sync::sync::plan::OpKind::Create);
    let sum = apply(&g, &db, plan).await;
    assert_eq!((sum.done, sum.failed), (1, 0), "{sum:?}");
    assert_eq!(
        env.sim
            .users_with_upn_count("olga.petrov@northwindtraders.com"),
        1
    );
}

#[tokio::test]
async fn directory_fixes_write_the_email_and_the_upn_override() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("directory.db");
    let id = {
        let mut d = Directory::open(&db).unwrap();
        d.add_user(&NewDirectoryUser {
            email: "hiroshi.tanabe@northwind-labs.io".into(),
            display_name: "Hiroshi Tanabe".into(),
            ..Default::default()
        })
        .unwrap()
    };
    run_fix(
        Fix::UseDefaultDomain {
            directory_id: id,
            upn: "hiroshi.tanabe@contoso.com".into(),
        },
        db.clone(),
        None,
    )
    .await
    .unwrap();
    run_fix(
        Fix::SetEmail {
            directory_id: id,
            email: "hiroshi@contoso.com".into(),
        },
        db.clone(),
        None,
    )
    .await
    .unwrap();
    let d = Directory::open(&db).unwrap();
    assert_eq!(
        d.upn_overrides().unwrap()[&id],
        "hiroshi.tanabe@contoso.com"
    );
    assert_eq!(d.user(id).unwrap().unwrap().email, "hiroshi@contoso.com");
    drop(d);
    // The group fixes: accept the suggested nickname, and give the group a clean name.
    let sales = Directory::open(&db)
        .unwrap()
        .add_group("Sales (EU)")
        .unwrap();
    run_fix(
        Fix::SetGroupNickname {
            group_id: sales,
            nickname: "SalesEU".into(),
        },
        db.clone(),
        None,
    )
    .await
    .unwrap();
    run_fix(
        Fix::SetGroupName {
            group_id: sales,
            name: "Sales EU".into(),
        },
        db.clone(),
        None,
    )
    .await
    .unwrap();
    let g = Directory::open(&db).unwrap().group(sales).unwrap().unwrap();
    assert_eq!(g.mail_nickname.as_deref(), Some("SalesEU"));
    assert_eq!(g.name, "Sales EU");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_conflict_links_the_directory_user_to_the_existing_account() {
    let env = common::start(SimOptions {
        users: Some(5),
        ..SimOptions::default()
    })
    .await;
    let g = graph(&env).await;
    let db = env.settings.db_path();
    let first = {
        use futures::StreamExt;
        let mut pages = g.list_users(999);
        pages.next().await.unwrap().unwrap().remove(0)
    };
    let id = Directory::open(&db)
        .unwrap()
        .add_user(&NewDirectoryUser {
            email: first.user_principal_name.clone(),
            // The same person, with the same name: the directory has nothing to change.
            display_name: first.display_name.clone().unwrap_or_default(),
            ..Default::default()
        })
        .unwrap();
    let done = run_fix(
        Fix::Link {
            directory_id: id,
            tenant_user_id: first.id.clone(),
        },
        db.clone(),
        pipe(&env, &g),
    )
    .await
    .unwrap();
    assert!(done.contains("Linked"), "{done}");
    let u = Directory::open(&db).unwrap().user(id).unwrap().unwrap();
    assert_eq!(u.tenant_user_id.as_deref(), Some(first.id.as_str()));
    // A re-sync has nothing to do for them: no duplicate account, no change.
    let users = Directory::open(&db).unwrap().users().unwrap();
    let snap = snapshot(&g).await;
    let plan = m365sync::sync::plan::plan(&users, &snap, &Default::default(), 0);
    assert!(
        plan.ops.iter().all(|o| o.directory_id != id),
        "{:?}",
        plan.ops
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_email_then_the_re_sync_creates_the_account() {
    let env = common::start(SimOptions {
        users: Some(5),
        ..SimOptions::default()
    })
    .await;
    let g = graph(&env).await;
    let db = env.settings.db_path();
    let id = {
        let mut d = Directory::open(&db).unwrap();
        let id = d
            .add_user(&NewDirectoryUser {
                email: "hiro@northwind-labs.io".into(),
                display_name: "Hiro T".into(),
                ..Default::default()
            })
            .unwrap();
        d.set_want(&[id], true).unwrap();
        id
    };
    let check = |users: &[m365sync::directory::DirectoryUser],
                 snap: &m365sync::sync::plan::TenantSnapshot| {
        let plan = m365sync::sync::plan::plan(users, snap, &Default::default(), 0);
        m365sync::sync::preflight::check_plan(plan, users, snap, &Default::default())
    };
    // Shown: the domain is not verified, so the create is held back.
    let snap = snapshot(&g).await;
    let users = Directory::open(&db).unwrap().users().unwrap();
    let (plan, held, _) = check(&users, &snap);
    assert!(plan.ops.is_empty());
    assert_eq!(held[0].1.kind, "upn-domain-unverified");

    // Fixed: the email is edited to one on a verified domain.
    let new = format!("hiro@{}", env.sim.default_domain);
    run_fix(
        Fix::SetEmail {
            directory_id: id,
            email: new.clone(),
        },
        db.clone(),
        pipe(&env, &g),
    )
    .await
    .unwrap();

    // Re-synced: nothing held back, the account is created once.
    let users = Directory::open(&db).unwrap().users().unwrap();
    let (plan, held, _) = check(&users, &snap);
    assert!(held.is_empty(), "{held:?}");
    let sum = apply(&g, &db, plan).await;
    assert_eq!((sum.done, sum.failed), (1, 0));
    assert_eq!(env.sim.users_with_upn_count(&new), 1);
}
