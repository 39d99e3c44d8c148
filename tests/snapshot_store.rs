//! The tenant snapshot store on disk: a full listing round-trips exactly; a listing that never
//! commits (dropped, or its process killed with an open write) leaves the previous snapshot
//! loadable and equal; a delta round's changes are saved in one transaction and load back as
//! applied; a stale snapshot cannot overwrite a newer one; big rounds compact; private modes.
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use m365sync::graph::{DeletedUser, DeltaChange, DeltaRound, Domain, User, UserAttr, UserDelta};
use m365sync::snapshot::{
    path_for, Fresh, FullListingEnd, Snapshot, SnapshotError, SnapshotStore, PAGE_USERS,
};
use time::OffsetDateTime;

fn user(i: usize) -> User {
    User {
        id: format!("{:08x}-1111-4222-8333-{:012x}", i, i),
        user_principal_name: format!("user{i}@contoso.com"),
        mail: (i % 4 != 0).then(|| format!("user{i}@contoso.com")),
        display_name: Some(format!("User {i}")),
        given_name: (i % 5 != 0).then(|| "Given".to_string()),
        surname: Some(format!("S{i}")),
        account_enabled: Some(i % 7 != 0),
        attrs: if i % 3 == 0 {
            [
                (UserAttr::JobTitle, format!("Title {i}")),
                (UserAttr::City, "Oslo".into()),
            ]
            .into_iter()
            .collect()
        } else {
            Default::default()
        },
        on_premises_sync_enabled: i % 11 == 0,
        guest: i % 13 == 0,
    }
}

fn pages(range: std::ops::Range<usize>, per: usize) -> Vec<Arc<Vec<User>>> {
    range
        .collect::<Vec<_>>()
        .chunks(per)
        .map(|c| Arc::new(c.iter().map(|&i| user(i)).collect()))
        .collect()
}

fn end(tag: &str) -> FullListingEnd {
    FullListingEnd {
        graph_base: "https://graph.microsoft.com/v1.0".into(),
        as_of: OffsetDateTime::parse(
            "2026-11-27T14:02:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap(),
        delta_link: Some(format!(
            "https://graph.microsoft.com/v1.0/users/delta?$deltatoken={tag}"
        )),
        deleted: vec![DeletedUser {
            user: user(900_000),
            deleted_date_time: Some("2026-11-20T10:00:00Z".into()),
        }],
        domains: vec![Domain {
            id: "contoso.com".into(),
            authentication_type: Some("Managed".into()),
            is_default: true,
            is_initial: false,
            is_verified: true,
        }],
    }
}

fn write_full(store: &SnapshotStore, p: &[Arc<Vec<User>>], e: FullListingEnd) {
    let mut w = store.begin_full().unwrap();
    for page in p {
        w.write_page(page).unwrap();
    }
    w.commit(e).unwrap();
}

fn same(a: &Snapshot, b: &Snapshot) {
    assert_eq!(a.users_by_id(), b.users_by_id());
    assert_eq!(a.deleted_by_id(), b.deleted_by_id());
    assert_eq!(a.domains, b.domains);
    assert_eq!(a.head, b.head);
}

#[test]
fn a_full_listing_round_trips_exactly_in_a_private_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path(), "Contoso.onmicrosoft.com").unwrap();
    assert_eq!(
        store.path(),
        dir.path().join("snapshots/contoso.onmicrosoft.com.sqlite3")
    );
    assert_eq!(
        store.path(),
        path_for(dir.path(), "Contoso.onmicrosoft.com")
    );
    assert!(store.load().unwrap().is_none(), "nothing yet");
    assert!(store.head().unwrap().is_none());
    // 2,500 users in pages of 999 (the last one short), as a listing brings them.
    let p = pages(0..2_500, 999);
    write_full(&store, &p, end("A"));
    let snap = store.load().unwrap().unwrap();
    assert_eq!(snap.pages, p, "same pages, same order, same users");
    assert_eq!(snap.head.users, 2_500);
    assert_eq!(snap.deleted, end("A").deleted);
    assert_eq!(snap.domains, end("A").domains);
    assert_eq!(snap.head.delta_link, end("A").delta_link);
    assert_eq!(snap.as_of(), end("A").as_of);
    assert_eq!(snap.head.listed_at, end("A").as_of);
    assert!(snap.age().as_secs() > 0);
    assert_eq!(
        snap.head.unfit_for("https://graph.microsoft.com/v1.0/"),
        None
    );
    assert!(snap.head.unfit_for("http://127.0.0.1:9/v1.0").is_some());
    assert_eq!(store.head().unwrap().unwrap(), snap.head);
    // Private: the folder 0700, the file and its WAL 0600.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("snapshots")), 0o700);
    assert_eq!(mode(store.path()), 0o600);
    let wal = format!("{}-wal", store.path().display());
    if std::path::Path::new(&wal).exists() {
        assert_eq!(mode(std::path::Path::new(&wal)), 0o600);
    }
    // A second listing replaces the first whole.
    let p2 = pages(5_000..5_010, 4);
    write_full(&store, &p2, end("B"));
    let snap2 = store.load().unwrap().unwrap();
    assert_eq!(snap2.pages, p2);
    assert_eq!(snap2.head.delta_link, end("B").delta_link);
    // Read-only, as `--offline` in a read-only data dir opens it.
    let ro = SnapshotStore::open_read_only(dir.path(), "Contoso.onmicrosoft.com")
        .unwrap()
        .unwrap();
    same(&ro.load().unwrap().unwrap(), &snap2);
    assert!(SnapshotStore::open_read_only(dir.path(), "other")
        .unwrap()
        .is_none());
}

#[test]
fn an_existing_file_with_wide_modes_is_tightened() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_for(dir.path(), "t");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _ = SnapshotStore::open(dir.path(), "t").unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn a_listing_dropped_before_its_commit_leaves_the_previous_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path(), "t").unwrap();
    write_full(&store, &pages(0..1_500, 999), end("A"));
    let before = store.load().unwrap().unwrap();
    {
        let mut w = store.begin_full().unwrap();
        // More pages than one write transaction: some are committed, some are not.
        for p in pages(10_000..10_000 + 150 * 10, 10) {
            w.write_page(&p).unwrap();
        }
        // Dropped here: no commit.
    }
    let after = store.load().unwrap().unwrap();
    same(&before, &after);
    assert_eq!(after.pages, before.pages);
    // What the dropped listing wrote is gone.
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM pages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2);
}

/// The child of the kill test: writes a listing and dies (abort: no destructor, no rollback,
/// a write transaction open) half-way.
#[test]
fn kill_child_dies_mid_listing() {
    let Ok(dir) = std::env::var("M365SYNC_SNAPSHOT_KILL_DIR") else {
        return; // only runs as the kill test's child
    };
    let store = SnapshotStore::open(std::path::Path::new(&dir), "t").unwrap();
    let mut w = store.begin_full().unwrap();
    for p in pages(10_000..10_000 + 100 * 10, 10) {
        w.write_page(&p).unwrap(); // 64 committed, 36 in the open transaction
    }
    std::process::abort();
}

#[test]
fn a_process_killed_mid_listing_leaves_the_previous_snapshot_and_the_next_listing_works() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path(), "t").unwrap();
    write_full(&store, &pages(0..1_500, 999), end("A"));
    let before = store.load().unwrap().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill_child_dies_mid_listing",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("M365SYNC_SNAPSHOT_KILL_DIR", dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child died");
    let after = store.load().unwrap().unwrap();
    same(&before, &after);
    // The next listing commits, and the killed listing's pages are dropped with the old ones.
    let p = pages(20_000..20_100, 50);
    write_full(&store, &p, end("C"));
    assert_eq!(store.load().unwrap().unwrap().pages, p);
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM pages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2, "only the new listing's pages are left");
}

fn at(s: &str) -> OffsetDateTime {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
}

fn upsert(u: &User) -> DeltaChange {
    DeltaChange::Upsert(UserDelta {
        id: u.id.clone(),
        user_principal_name: Some(u.user_principal_name.clone()),
        mail: Some(u.mail.clone()),
        display_name: Some(u.display_name.clone()),
        given_name: u.given_name.clone().map(Some),
        surname: Some(u.surname.clone()),
        account_enabled: Some(u.account_enabled),
        attrs: UserAttr::ALL
            .iter()
            .map(|&a| (a, u.attr(a).map(str::to_string)))
            .collect(),
        on_premises_sync_enabled: Some(u.on_premises_sync_enabled),
        guest: Some(u.guest),
    })
}

#[test]
fn a_delta_round_is_applied_saved_and_loads_back_as_applied() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path(), "t").unwrap();
    let mut e = end("A");
    // Two soft-deleted users before the round: one to restore, one to purge.
    e.deleted = vec![
        DeletedUser {
            user: user(900_800),
            deleted_date_time: Some("2026-11-01T00:00:00Z".into()),
        },
        DeletedUser {
            user: user(900_801),
            deleted_date_time: Some("2026-11-02T00:00:00Z".into()),
        },
    ];
    write_full(&store, &pages(0..3_000, 999), e);
    let s0 = store.load().unwrap().unwrap();
    let mut renamed = user(5);
    renamed.display_name = Some("Renamed".into());
    renamed.mail = None;
    let round = DeltaRound {
        changes: vec![
            // created (never-set givenName omitted)
            DeltaChange::Upsert(UserDelta {
                id: user(5_000).id,
                user_principal_name: Some("new@contoso.com".into()),
                mail: Some(Some("new@contoso.com".into())),
                display_name: Some(Some("New".into())),
                given_name: None,
                surname: None,
                account_enabled: Some(Some(true)),
                attrs: vec![(UserAttr::Department, Some("Sales".into()))],
                ..UserDelta::default()
            }),
            // updated: only some properties sent, the rest kept
            DeltaChange::Upsert(UserDelta {
                id: user(5).id,
                display_name: Some(Some("Renamed".into())),
                mail: Some(None),
                ..UserDelta::default()
            }),
            // unchanged (a replay)
            upsert(&user(6)),
            DeltaChange::SoftDeleted { id: user(7).id },
            DeltaChange::Purged { id: user(8).id },
            // restored: a full object, no annotation
            upsert(&user(900_800)),
            DeltaChange::Purged {
                id: user(900_801).id,
            },
            // soft-deleted then purged in one round
            DeltaChange::SoftDeleted { id: user(9).id },
            DeltaChange::Purged { id: user(9).id },
        ],
        delta_link: "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=B".into(),
        started_at: at("2026-11-27T15:00:00Z"),
        pages: 2,
    };
    let (s1, summary) = store.apply_round(&s0, &round, Fresh::default()).unwrap();
    assert_eq!(summary.created, 1);
    assert_eq!(summary.updated, 1);
    assert_eq!(summary.unchanged, 1);
    assert_eq!(summary.soft_deleted, 1, "user 7");
    assert_eq!(summary.restored, 1);
    assert_eq!(
        summary.purged, 3,
        "8 (live), 900_801 (deleted), 9 (soft-deleted and purged in the round)"
    );
    assert!(!summary.compacted);
    // Expected: the tenant as a fresh listing would give it.
    let mut expected: Vec<User> = (0..3_000)
        .filter(|i| ![7, 8, 9].contains(i))
        .map(|i| if i == 5 { renamed.clone() } else { user(i) })
        .collect();
    expected.push(User {
        id: user(5_000).id,
        user_principal_name: "new@contoso.com".into(),
        mail: Some("new@contoso.com".into()),
        display_name: Some("New".into()),
        given_name: None,
        surname: None,
        account_enabled: Some(true),
        attrs: [(UserAttr::Department, "Sales")].into_iter().collect(),
        ..User::default()
    });
    expected.push(user(900_800));
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(s1.users_by_id(), expected);
    assert_eq!(s1.head.users, expected.len() as u64);
    let deleted: Vec<String> = s1.deleted_by_id().into_iter().map(|d| d.user.id).collect();
    assert_eq!(deleted, vec![user(7).id], "7 moved to the deleted users");
    assert_eq!(s1.deleted[0].user, user(7), "with its properties");
    assert_eq!(s1.as_of(), round.started_at);
    assert_eq!(
        s1.head.delta_link.as_deref(),
        Some(round.delta_link.as_str())
    );
    // Pages the round did not touch are the same allocation.
    assert!(Arc::ptr_eq(&s0.pages[2], &s1.pages[2]));
    assert!(!Arc::ptr_eq(&s0.pages[0], &s1.pages[0]));
    // On disk: the same.
    let loaded = store.load().unwrap().unwrap();
    same(&loaded, &s1);
    // In place: user 5 stays in its page.
    assert!(loaded.pages[0].iter().any(|u| u == &renamed));

    // A second round on the loaded snapshot; then the first snapshot is stale.
    let round2 = DeltaRound {
        changes: vec![DeltaChange::SoftDeleted { id: user(5_000).id }],
        delta_link: "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=C".into(),
        started_at: at("2026-11-27T16:00:00Z"),
        pages: 1,
    };
    let (s2, _) = store
        .apply_round(&loaded, &round2, Fresh::default())
        .unwrap();
    same(&store.load().unwrap().unwrap(), &s2);
    assert!(matches!(
        store.apply_round(&s1, &round2, Fresh::default()),
        Err(SnapshotError::Changed)
    ));
    // Fresh deleted users and domains replace the snapshot's.
    let fresh = Fresh {
        deleted: Some(vec![]),
        domains: Some(vec![]),
    };
    let round3 = DeltaRound {
        changes: vec![],
        delta_link: "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=D".into(),
        started_at: at("2026-11-27T17:00:00Z"),
        pages: 1,
    };
    let (s3, summary) = store.apply_round(&s2, &round3, fresh).unwrap();
    assert_eq!(summary.changed(), 0);
    assert!(s3.deleted.is_empty() && s3.domains.is_empty());
    same(&store.load().unwrap().unwrap(), &s3);
}

#[test]
fn a_round_with_many_changes_compacts_into_a_new_generation() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path(), "t").unwrap();
    write_full(&store, &pages(0..30_000, 999), end("A"));
    let s0 = store.load().unwrap().unwrap();
    // 12,000 created: more than max(10,000, users / 10) changes.
    let round = DeltaRound {
        changes: (100_000..112_000).map(|i| upsert(&user(i))).collect(),
        delta_link: "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=B".into(),
        started_at: at("2026-11-27T15:00:00Z"),
        pages: 12,
    };
    let (s1, summary) = store.apply_round(&s0, &round, Fresh::default()).unwrap();
    assert!(summary.compacted);
    assert_eq!(summary.created, 12_000);
    let loaded = store.load().unwrap().unwrap();
    same(&loaded, &s1);
    assert_eq!(loaded.head.users, 42_000);
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let changes: i64 = conn
        .query_row("SELECT COUNT(*) FROM changes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(changes, 0, "the changes are in the pages now");
    let pages: i64 = conn
        .query_row("SELECT COUNT(*) FROM pages", [], |r| r.get(0))
        .unwrap();
    assert!(
        pages as usize <= 42_000usize.div_ceil(PAGE_USERS) + 1,
        "{pages} pages: small ones merged"
    );
}

#[test]
fn many_pages_with_changes_load_back_in_order_as_applied() {
    // 300 pages: the load decodes them on several threads; changes in many of them.
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path(), "t").unwrap();
    let listed = pages(0..3_000, 10);
    write_full(&store, &listed, end("A"));
    let s0 = store.load().unwrap().unwrap();
    assert_eq!(s0.pages, listed, "in order");
    let mut changes = Vec::new();
    for i in (0..3_000).step_by(37) {
        let mut u = user(i);
        u.display_name = Some(format!("Changed {i}"));
        changes.push(upsert(&u));
    }
    for i in (5..3_000).step_by(101) {
        changes.push(DeltaChange::SoftDeleted { id: user(i).id });
    }
    let round = DeltaRound {
        changes,
        delta_link: "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=B".into(),
        started_at: at("2026-11-27T15:00:00Z"),
        pages: 3,
    };
    let (s1, summary) = store.apply_round(&s0, &round, Fresh::default()).unwrap();
    assert!(!summary.compacted);
    let loaded = store.load().unwrap().unwrap();
    same(&loaded, &s1);
    // Changed users stay where they were: the same pages, in the same order.
    assert_eq!(loaded.pages, s1.pages);
}

#[test]
fn a_streamed_load_hands_every_page_in_order_and_equals_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path(), "t").unwrap();
    let listed = pages(0..3_000, 10);
    write_full(&store, &listed, end("A"));
    // A round with a change, a removal and a created user: the overlay applies as it streams.
    let s0 = store.load().unwrap().unwrap();
    let mut changed = user(42);
    changed.display_name = Some("Changed".into());
    let round = DeltaRound {
        changes: vec![
            upsert(&changed),
            DeltaChange::Purged { id: user(7).id },
            upsert(&user(800_001)),
        ],
        delta_link: "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=B".into(),
        started_at: at("2026-11-27T15:00:00Z"),
        pages: 1,
    };
    let (s1, _) = store.apply_round(&s0, &round, Fresh::default()).unwrap();
    let mut seen: Vec<Arc<Vec<User>>> = Vec::new();
    let streamed = store
        .load_streaming(&mut |p| seen.push(p.clone()))
        .unwrap()
        .unwrap();
    same(&streamed, &s1);
    assert_eq!(seen.len(), streamed.pages.len());
    for (a, b) in seen.iter().zip(&streamed.pages) {
        assert!(Arc::ptr_eq(a, b), "the snapshot's own pages, in its order");
    }
    assert_eq!(
        seen.last().unwrap()[0].id,
        user(800_001).id,
        "the created user's page comes last"
    );
}

#[test]
fn a_damaged_page_mid_file_fails_the_streamed_load_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path(), "t").unwrap();
    write_full(&store, &pages(0..2_000, 10), end("A"));
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    conn.execute(
        "UPDATE pages SET data = x'02ff' WHERE seq = (SELECT MAX(seq) / 2 FROM pages)",
        [],
    )
    .unwrap();
    drop(conn);
    let mut seen = 0usize;
    let err = store.load_streaming(&mut |_| seen += 1).unwrap_err();
    assert!(matches!(err, SnapshotError::Corrupt(_)), "{err}");
    assert!(seen < 200, "no page after the damaged one is handed on");
}

#[test]
fn a_round_applied_over_pages_copied_beforehand_equals_the_plain_apply() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        SnapshotStore::open(dir.path(), "a").unwrap(),
        SnapshotStore::open(dir.path(), "b").unwrap(),
    );
    let listed = pages(0..2_000, 10);
    write_full(&a, &listed, end("A"));
    write_full(&b, &listed, end("A"));
    let (sa, sb) = (a.load().unwrap().unwrap(), b.load().unwrap().unwrap());
    let mut changes = Vec::new();
    for i in (0..2_000).step_by(13) {
        let mut u = user(i);
        u.set_attr(UserAttr::Department, Some("Moved"));
        changes.push(upsert(&u));
    }
    changes.push(DeltaChange::Purged { id: user(26).id });
    changes.push(DeltaChange::SoftDeleted { id: user(1_300).id });
    changes.push(upsert(&user(800_002)));
    let round = DeltaRound {
        changes,
        delta_link: "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=B".into(),
        started_at: at("2026-11-27T15:00:00Z"),
        pages: 2,
    };
    let (plain, plain_summary) = a.apply_round(&sa, &round, Fresh::default()).unwrap();
    // Pages copied for the first half of the changes only: the rest are copied in the apply.
    let mut copies = m365sync::snapshot::PageCopies::default();
    copies.copy_pages_of(
        &sb,
        round.changes[..round.changes.len() / 2]
            .iter()
            .map(DeltaChange::id),
    );
    assert!(!copies.is_empty());
    let (copied, summary) = b
        .apply_round_with(&sb, &round, Fresh::default(), copies)
        .unwrap();
    assert_eq!(summary, plain_summary);
    same(&copied, &plain);
    assert_eq!(
        copied.pages, plain.pages,
        "the same pages in the same order"
    );
    same(&b.load().unwrap().unwrap(), &plain);
}
