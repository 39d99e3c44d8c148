//! The tenant snapshot against the simulator's `/users/delta`, through our client: after
//! users are created, updated (synced attributes too), soft-deleted, restored and purged
//! through Graph, one delta round leaves the snapshot equal to a fresh full listing (ids and
//! every selected property), on disk too; an expired delta token falls back to a full
//! listing that equals the tenant.
mod common;

use std::time::Duration;

use bytes::Bytes;
use m365sync::graph::requests::NewUser;
use m365sync::graph::{ColdListingOptions, GraphClient, User};
use m365sync::sim::SimOptions;
use m365sync::snapshot::{
    full_refresh, refresh, FullReason, RefreshKind, RefreshOptions, Snapshot, SnapshotStore,
};
use reqwest::Method;
use serde_json::json;

/// Every live user, as a fresh full listing gives them, sorted by id.
async fn fresh(graph: &GraphClient) -> Vec<User> {
    let l = graph
        .cold_listing(&ColdListingOptions::default(), &mut |_| {})
        .await
        .unwrap();
    let mut all: Vec<User> = l.pages.iter().flat_map(|p| p.iter().cloned()).collect();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    all
}

async fn deleted_ids(graph: &GraphClient) -> Vec<String> {
    let mut v: Vec<String> = graph
        .list_deleted_users()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.user.id)
        .collect();
    v.sort();
    v
}

fn snapshot_deleted_ids(s: &Snapshot) -> Vec<String> {
    s.deleted_by_id().into_iter().map(|d| d.user.id).collect()
}

/// The snapshot is the tenant: its users (ids and every selected property) and its
/// soft-deleted users, in memory and as loaded back from disk.
async fn assert_is_the_tenant(graph: &GraphClient, store: &SnapshotStore, s: &Snapshot) {
    let want = fresh(graph).await;
    assert_eq!(s.users_by_id(), want);
    assert_eq!(snapshot_deleted_ids(s), deleted_ids(graph).await);
    let back = store.load().unwrap().expect("saved");
    assert_eq!(back.users_by_id(), want, "as loaded back from disk");
    assert_eq!(back.head.delta_link, s.head.delta_link);
}

async fn send(graph: &GraphClient, method: Method, path: &str, body: serde_json::Value) {
    let url = format!("{}{path}", graph.base());
    let body = (!body.is_null()).then(|| Bytes::from(body.to_string()));
    graph
        .request(method.clone(), &url, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
}

/// Graph as the app, against `env`'s simulator.
async fn app_graph(env: &common::Env) -> GraphClient {
    GraphClient::new(env.http(), &env.settings.graph_url, env.app_session().await)
}

fn opts() -> RefreshOptions {
    RefreshOptions::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_after_graph_writes_equals_a_fresh_full_listing() {
    let env = common::start(SimOptions {
        users: Some(60),
        delta_page_size: 7, // a round of several pages
        ..common::fast_options()
    })
    .await;
    let graph = app_graph(&env).await;
    let users = fresh(&graph).await;
    // Two soft-deleted before the listing: one is restored, one purged after it.
    let (to_restore, to_purge) = (users[0].clone(), users[1].clone());
    assert!(env.sim.soft_delete(&to_restore.user_principal_name));
    assert!(env.sim.soft_delete(&to_purge.user_principal_name));

    let data = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(data.path(), "contoso").unwrap();
    let (s0, _) = full_refresh(&graph, &store, &opts().listing, &mut |_| {})
        .await
        .unwrap();
    assert!(
        s0.head.delta_link.is_some(),
        "a full listing keeps a delta link"
    );
    assert_is_the_tenant(&graph, &store, &s0).await;

    // The tenant changes, through Graph.
    let dom = env.sim.default_domain.clone();
    let mut new = NewUser::new(
        format!("delta.new@{dom}"),
        "Delta New",
        "delta.new",
        "Xy7!delta-password-1",
    );
    new.job_title = Some("Engineer".into());
    new.department = Some("Research".into());
    send(&graph, Method::POST, "/users", new.to_json()).await;
    let (a, b, c, d) = (&users[2], &users[3], &users[4], &users[5]);
    send(
        &graph,
        Method::PATCH,
        &format!("/users/{}", a.id),
        json!({"jobTitle": "Chief Tester", "department": "Quality"}),
    )
    .await;
    send(
        &graph,
        Method::PATCH,
        &format!("/users/{}", b.id),
        json!({"displayName": "Renamed Person", "accountEnabled": false}),
    )
    .await;
    // A property cleared: the round must clear it too.
    send(
        &graph,
        Method::PATCH,
        &format!("/users/{}", c.id),
        json!({"department": "Gone Soon"}),
    )
    .await;
    send(
        &graph,
        Method::PATCH,
        &format!("/users/{}", c.id),
        json!({"department": null}),
    )
    .await;
    send(
        &graph,
        Method::DELETE,
        &format!("/users/{}", d.id),
        serde_json::Value::Null,
    )
    .await;
    graph.restore_deleted(&to_restore.id).await.unwrap();
    // Purging is delegated-only: the admin signs in.
    let admin = GraphClient::new(
        env.http(),
        &env.settings.graph_url,
        env.device_session().await,
    );
    admin.purge_deleted(&to_purge.id).await.unwrap();
    // Soft-deleted and purged between two rounds.
    let e = &users[6];
    send(
        &graph,
        Method::DELETE,
        &format!("/users/{}", e.id),
        serde_json::Value::Null,
    )
    .await;
    admin.purge_deleted(&e.id).await.unwrap();

    let r = refresh(&graph, &store, Some(&s0), false, &opts(), &mut |_| {})
        .await
        .unwrap();
    let RefreshKind::Delta(summary) = r.kind else {
        panic!("a delta round, not {:?}", r.kind)
    };
    assert_eq!(summary.created, 1, "{summary:?}");
    assert_eq!(summary.restored, 1, "{summary:?}");
    assert!(summary.soft_deleted >= 1, "{summary:?}");
    assert!(summary.updated >= 3, "{summary:?}");
    let s1 = r.snapshot;
    assert_is_the_tenant(&graph, &store, &s1).await;
    // The synced attributes came with the round.
    let by_id = |id: &str| s1.users().find(|u| u.id == id).cloned().unwrap();
    let got = by_id(&a.id);
    assert_eq!(
        got.attr(m365sync::graph::UserAttr::JobTitle),
        Some("Chief Tester")
    );
    assert_eq!(
        got.attr(m365sync::graph::UserAttr::Department),
        Some("Quality")
    );
    assert_eq!(
        by_id(&c.id).attr(m365sync::graph::UserAttr::Department),
        None
    );
    assert_eq!(by_id(&b.id).account_enabled, Some(false));
    let created = s1
        .users()
        .find(|u| u.user_principal_name == format!("delta.new@{dom}"))
        .expect("the created user");
    assert_eq!(
        created.attr(m365sync::graph::UserAttr::Department),
        Some("Research")
    );
    assert!(s1.users().all(|u| u.id != d.id && u.id != e.id));
    assert!(s1.users().any(|u| u.id == to_restore.id));
    assert!(s1.as_of() >= s0.as_of());

    // A round with nothing new changes nothing.
    let r = refresh(&graph, &store, Some(&s1), false, &opts(), &mut |_| {})
        .await
        .unwrap();
    assert!(
        matches!(r.kind, RefreshKind::Delta(s) if s.changed() == 0),
        "{:?}",
        r.kind
    );
    assert_eq!(r.snapshot.users_by_id(), s1.users_by_id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_delta_token_falls_back_to_a_full_listing_equal_to_the_tenant() {
    let env = common::start(SimOptions {
        users: Some(30),
        delta_token_ttl: Duration::from_millis(800),
        ..common::fast_options()
    })
    .await;
    let graph = app_graph(&env).await;
    let data = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(data.path(), "contoso").unwrap();
    let (s0, _) = full_refresh(&graph, &store, &opts().listing, &mut |_| {})
        .await
        .unwrap();
    let victim = s0.users().next().unwrap().clone();
    send(
        &graph,
        Method::PATCH,
        &format!("/users/{}", victim.id),
        json!({"jobTitle": "Expired Token Tester"}),
    )
    .await;
    send(
        &graph,
        Method::DELETE,
        &format!("/users/{}", s0.users().nth(1).unwrap().id),
        serde_json::Value::Null,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut listed = 0;
    let r = refresh(&graph, &store, Some(&s0), false, &opts(), &mut |_| {
        listed += 1
    })
    .await
    .unwrap();
    let RefreshKind::Full {
        reason: FullReason::StartOver(why),
        ..
    } = &r.kind
    else {
        panic!("a full listing after the expired token, not {:?}", r.kind)
    };
    assert!(listed > 0, "the listing reported its progress");
    assert!(!why.plain().is_empty());
    let line = r.describe(m365sync::format::utc_stamp);
    assert!(line.starts_with("full listing ("), "{line}");
    assert_is_the_tenant(&graph, &store, &r.snapshot).await;
    assert!(r
        .snapshot
        .users()
        .any(|u| u.attr(m365sync::graph::UserAttr::JobTitle) == Some("Expired Token Tester")));
    // The new link works: the next refresh is a round again.
    let r2 = refresh(
        &graph,
        &store,
        Some(&r.snapshot),
        false,
        &opts(),
        &mut |_| {},
    )
    .await
    .unwrap();
    assert!(matches!(r2.kind, RefreshKind::Delta(_)), "{:?}", r2.kind);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_loads_the_copy_while_its_round_is_in_flight_and_applies_the_round_to_it() {
    let env = common::start(SimOptions {
        users: Some(80),
        delta_page_size: 3, // a round of several pages
        ..common::fast_options()
    })
    .await;
    let graph = app_graph(&env).await;
    let data = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(data.path(), "contoso").unwrap();
    let (s0, _) = full_refresh(&graph, &store, &opts().listing, &mut |_| {})
        .await
        .unwrap();
    let users = fresh(&graph).await;
    for u in users.iter().step_by(9) {
        send(
            &graph,
            Method::PATCH,
            &format!("/users/{}", u.id),
            json!({"jobTitle": "Moved", "displayName": "Moved Person"}),
        )
        .await;
    }
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = events.clone();
    let on_copy = Box::new(move |e: m365sync::snapshot::CopyEvent<'_>| {
        seen.lock().unwrap().push(match e {
            m365sync::snapshot::CopyEvent::Page(p) => Some(p.clone()),
            m365sync::snapshot::CopyEvent::Loaded(_) => None,
        })
    });
    let mut news = Vec::new();
    let (loaded, r) =
        m365sync::snapshot::load_and_refresh(&graph, &store, false, &opts(), on_copy, &mut |e| {
            news.push(format!("{e:?}"))
        })
        .await;
    let loaded = loaded.expect("the saved copy");
    assert_eq!(loaded.users_by_id(), s0.users_by_id());
    // Every page of the copy, in order, then the copy.
    let events = events.lock().unwrap().clone();
    let (last, pages) = events.split_last().unwrap();
    assert!(last.is_none(), "the copy comes after its pages");
    assert_eq!(pages.len(), loaded.pages.len());
    for (p, q) in pages.iter().zip(&loaded.pages) {
        assert!(std::sync::Arc::ptr_eq(p.as_ref().unwrap(), q));
    }
    assert!(
        news.len() == 1 && news[0].contains("DeltaRound"),
        "{news:?}"
    );
    let r = r.unwrap();
    let RefreshKind::Delta(summary) = r.kind else {
        panic!("a delta round, not {:?}", r.kind)
    };
    assert_eq!(
        summary.updated,
        users.iter().step_by(9).count(),
        "{summary:?}"
    );
    assert_is_the_tenant(&graph, &store, &r.snapshot).await;
}
