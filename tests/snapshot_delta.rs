//! Delta rounds against a stub that speaks graph-notes §18 (the simulator has no
//! `/users/delta` yet): a full listing takes the first link with `$deltatoken=latest`; after
//! created, updated (a property cleared, others omitted), soft-deleted, restored and purged
//! users, one round leaves the snapshot equal to a fresh listing of the tenant, on disk too;
//! an expired token (400 syncStateNotFound) and a reset (410 Gone with Location) are the typed
//! "start over" and the refresh lists again, saying why.
mod graph_stub;

use graph_stub::{props, DeltaFail};
use m365sync::graph::{DeltaError, GraphClient, ListingMode, User};
use m365sync::snapshot::{
    full_refresh, refresh, FullReason, RefreshKind, RefreshOptions, Snapshot, SnapshotStore,
};
use serde_json::json;

/// What a fresh listing of the stub gives, sorted by id.
async fn fresh(graph: &GraphClient) -> Vec<User> {
    use futures::StreamExt;
    let mut all = Vec::new();
    let mut pages = graph.list_users(999);
    while let Some(p) = pages.next().await {
        all.extend(p.unwrap());
    }
    all.sort_by(|a, b| a.id.cmp(&b.id));
    all
}

fn deleted_ids(s: &Snapshot) -> Vec<String> {
    s.deleted_by_id().into_iter().map(|d| d.user.id).collect()
}

fn opts() -> RefreshOptions {
    let mut o = RefreshOptions::default();
    o.listing.min_users_to_shard = u64::MAX; // sequential: the stub's shards are tested elsewhere
    o
}

#[tokio::test]
async fn a_round_brings_the_snapshot_to_what_a_fresh_listing_gives() {
    let st = graph_stub::start().await;
    let graph = graph_stub::client(&st);
    let (ids, old_deleted, to_purge) = {
        let mut t = st.lock().unwrap();
        t.replay = true; // Graph may send a user twice in a round
        let ids: Vec<String> = (0..20)
            .map(|i| t.create(&format!("u{i}@contoso.com"), props(i)))
            .collect();
        // Two soft-deleted before the listing: one to restore, one to purge.
        let a = t.create("gone-a@contoso.com", props(100));
        let b = t.create("gone-b@contoso.com", props(101));
        t.soft_delete(&a);
        t.soft_delete(&b);
        (ids, a, b)
    };
    let data = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(data.path(), "contoso").unwrap();
    let mut events = 0;
    let (s0, mode) = full_refresh(&graph, &store, &opts().listing, &mut |_| events += 1)
        .await
        .unwrap();
    assert!(matches!(mode, ListingMode::Sequential { .. }));
    assert!(events > 0);
    assert_eq!(s0.users_by_id(), fresh(&graph).await);
    assert_eq!(deleted_ids(&s0), st.lock().unwrap().deleted_ids());
    let link = s0
        .head
        .delta_link
        .clone()
        .expect("a link from $deltatoken=latest");
    assert!(link.contains("$deltatoken=v"), "{link}");
    {
        let t = st.lock().unwrap();
        let latest = t
            .log
            .iter()
            .position(|l| l.contains("deltatoken=latest"))
            .expect("asked for latest");
        let first_page = t
            .log
            .iter()
            .position(|l| l.starts_with("GET /v1.0/users?"))
            .unwrap();
        assert!(latest < first_page, "the link is taken before the listing");
    }

    // The tenant changes.
    {
        let mut t = st.lock().unwrap();
        // created, with givenName never set (omitted from the round)
        let mut p = props(50);
        p.remove("surname");
        t.create("new@contoso.com", p);
        // updated: a cleared property (null) and a changed one; the others come back as they were
        t.update(&ids[1], json!({"mail": null, "displayName": "Renamed"}));
        t.update(&ids[2], json!({"accountEnabled": false}));
        // givenName set for the first time
        t.update(&ids[3], json!({"givenName": "Gina"}));
        t.soft_delete(&ids[4]);
        t.restore(&old_deleted);
        t.purge(&to_purge);
        // soft-deleted then purged between two rounds
        t.soft_delete(&ids[5]);
        t.purge(&ids[5]);
        // soft-deleted then restored between two rounds
        t.soft_delete(&ids[6]);
        t.restore(&ids[6]);
    }
    let r = refresh(&graph, &store, Some(&s0), false, &opts(), &mut |_| {})
        .await
        .unwrap();
    let RefreshKind::Delta(summary) = r.kind else {
        panic!("a delta round, not {:?}", r.kind)
    };
    assert_eq!(summary.created, 1);
    assert_eq!(summary.restored, 1);
    assert_eq!(summary.soft_deleted, 1);
    assert_eq!(summary.purged, 2);
    assert!(summary.updated >= 3, "{summary:?}");
    let s1 = r.snapshot;
    let want = fresh(&graph).await;
    assert_eq!(s1.users_by_id(), want);
    assert_eq!(deleted_ids(&s1), st.lock().unwrap().deleted_ids());
    let renamed = want.iter().find(|u| u.id == ids[1]).unwrap();
    assert_eq!(renamed.mail, None);
    assert_eq!(renamed.display_name.as_deref(), Some("Renamed"));
    assert_eq!(
        s1.users().find(|u| u.id == ids[2]).unwrap().display_name,
        Some("User 2".into()),
        "kept"
    );
    // On disk the same, and the next round starts at the new link.
    let loaded = store.load().unwrap().unwrap();
    assert_eq!(loaded.users_by_id(), want);
    assert_eq!(loaded.head.delta_link, s1.head.delta_link);
    assert_ne!(loaded.head.delta_link.as_deref(), Some(link.as_str()));
    assert!(loaded.as_of() >= s0.as_of());

    // Nothing changed: an empty round.
    let r2 = refresh(&graph, &store, Some(&loaded), false, &opts(), &mut |_| {})
        .await
        .unwrap();
    assert!(matches!(r2.kind, RefreshKind::Delta(s) if s.changed() == 0));
    assert_eq!(r2.snapshot.users_by_id(), want);
}

#[tokio::test]
async fn the_round_alone_moves_users_to_and_from_the_deleted_users() {
    let st = graph_stub::start().await;
    let graph = graph_stub::client(&st);
    let (ids, gone) = {
        let mut t = st.lock().unwrap();
        let ids: Vec<String> = (0..6)
            .map(|i| t.create(&format!("u{i}@contoso.com"), props(i)))
            .collect();
        let g = t.create("g@contoso.com", props(9));
        t.soft_delete(&g);
        (ids, g)
    };
    let data = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(data.path(), "contoso").unwrap();
    let (s0, _) = full_refresh(&graph, &store, &opts().listing, &mut |_| {})
        .await
        .unwrap();
    {
        let mut t = st.lock().unwrap();
        t.soft_delete(&ids[0]);
        t.restore(&gone);
    }
    let mut o = opts();
    o.relist_deleted_and_domains = false;
    let r = refresh(&graph, &store, Some(&s0), false, &o, &mut |_| {})
        .await
        .unwrap();
    assert!(matches!(r.kind, RefreshKind::Delta(_)));
    assert_eq!(deleted_ids(&r.snapshot), vec![ids[0].clone()]);
    let moved = &r.snapshot.deleted[0].user;
    assert_eq!(
        moved.user_principal_name, "u0@contoso.com",
        "kept its properties"
    );
    assert_eq!(r.snapshot.users_by_id(), fresh(&graph).await);
    assert_eq!(
        store.load().unwrap().unwrap().users_by_id(),
        fresh(&graph).await
    );
}

async fn start_over(fail: DeltaFail) {
    let st = graph_stub::start().await;
    let graph = graph_stub::client(&st);
    {
        let mut t = st.lock().unwrap();
        for i in 0..5 {
            t.create(&format!("u{i}@contoso.com"), props(i));
        }
    }
    let data = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(data.path(), "contoso").unwrap();
    let (s0, _) = full_refresh(&graph, &store, &opts().listing, &mut |_| {})
        .await
        .unwrap();
    let link = s0.head.delta_link.clone().unwrap();
    {
        let mut t = st.lock().unwrap();
        t.create("late@contoso.com", props(7));
        t.delta_fail = Some(fail.clone());
    }
    // The client's typed outcome.
    let err = graph.users_delta_round(&link).await.unwrap_err();
    let DeltaError::StartOver(s) = &err else {
        panic!("start over, not {err:?}")
    };
    match fail {
        DeltaFail::Expired => {
            assert_eq!((s.status, s.code.as_str()), (400, "syncStateNotFound"));
            assert!(s.plain().contains("expired"), "{}", s.plain());
        }
        DeltaFail::Gone => {
            assert_eq!(s.status, 410);
            assert!(
                s.location
                    .as_deref()
                    .is_some_and(|l| l.contains("/users/delta")),
                "{:?}",
                s.location
            );
        }
    }
    // The refresh lists again and says why (the stub still gives a new `latest` link).
    let mut restarted_listing = false;
    let r = refresh(&graph, &store, Some(&s0), false, &opts(), &mut |_| {
        restarted_listing = true
    })
    .await
    .unwrap();
    let RefreshKind::Full { reason, .. } = &r.kind else {
        panic!("a full listing, not {:?}", r.kind)
    };
    let FullReason::StartOver(s2) = reason else {
        panic!("{reason:?}")
    };
    assert_eq!(s2.status, s.status);
    assert!(!reason.plain().is_empty());
    assert!(restarted_listing);
    assert_eq!(r.snapshot.users_by_id(), fresh(&graph).await);
    assert_eq!(r.snapshot.head.users, 6);
    assert_eq!(
        store.load().unwrap().unwrap().users_by_id(),
        fresh(&graph).await
    );
    assert!(
        r.snapshot.head.delta_link.is_some(),
        "a new link to continue from"
    );
}

#[tokio::test]
async fn an_expired_token_is_a_typed_start_over_and_the_refresh_lists_again() {
    start_over(DeltaFail::Expired).await;
}

#[tokio::test]
async fn a_410_with_location_is_a_typed_start_over_and_the_refresh_lists_again() {
    start_over(DeltaFail::Gone).await;
}

#[tokio::test]
async fn no_snapshot_forced_and_another_graph_are_full_listings_with_their_reason() {
    let st = graph_stub::start().await;
    let graph = graph_stub::client(&st);
    st.lock().unwrap().create("a@contoso.com", props(1));
    let data = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(data.path(), "contoso").unwrap();
    let r = refresh(&graph, &store, None, false, &opts(), &mut |_| {})
        .await
        .unwrap();
    assert!(matches!(
        r.kind,
        RefreshKind::Full {
            reason: FullReason::NoSnapshot,
            ..
        }
    ));
    let r = refresh(
        &graph,
        &store,
        Some(&r.snapshot),
        true,
        &opts(),
        &mut |_| {},
    )
    .await
    .unwrap();
    assert!(matches!(
        r.kind,
        RefreshKind::Full {
            reason: FullReason::Forced,
            ..
        }
    ));
    let other = graph_stub::start().await;
    other.lock().unwrap().create("b@contoso.com", props(2));
    let r = refresh(
        &graph_stub::client(&other),
        &store,
        Some(&r.snapshot),
        false,
        &opts(),
        &mut |_| {},
    )
    .await
    .unwrap();
    let RefreshKind::Full {
        reason: FullReason::Unfit(why),
        ..
    } = &r.kind
    else {
        panic!("{:?}", r.kind)
    };
    assert!(why.contains("listed from"), "{why}");
    assert_eq!(r.snapshot.head.users, 1);
}
