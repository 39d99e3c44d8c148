//! The sharded cold listing equals the sequential listing (same ids, none twice) for UPNs
//! starting with every allowed first character in both cases: against the simulator
//! (case-insensitive `startswith`, `$count`), and against stubs whose `startswith` is
//! case-insensitive and case-sensitive. A shard Graph refuses (400) and a tenant whose count
//! the shards cannot reach (a UPN starting with something else) fall back to a sequential
//! listing that is complete. Progress counts users.
mod common;
mod graph_stub;

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use graph_stub::{props, Case};
use m365sync::graph::listing::UPN_FIRST_CHARS;
use m365sync::graph::{
    CaseRule, ColdListing, ColdListingOptions, GraphClient, ListingEvent, ListingMode,
};
use m365sync::sim::SimOptions;
use reqwest::Method;
use serde_json::json;

async fn sequential_ids(graph: &GraphClient) -> Vec<String> {
    let mut ids = Vec::new();
    let mut pages = graph.list_users(999);
    while let Some(p) = pages.next().await {
        ids.extend(p.unwrap().into_iter().map(|u| u.id));
    }
    ids.sort();
    ids
}

/// Runs a cold listing; checks that no user is there twice and that the events add up.
async fn cold(
    graph: &GraphClient,
    opts: &ColdListingOptions,
) -> (ColdListing, Vec<String>, Vec<String>) {
    let mut listed = 0u64;
    let mut restarts = Vec::new();
    let mut on_event = |e: ListingEvent| match e {
        ListingEvent::Planned { .. } => {}
        ListingEvent::Page {
            users,
            listed: so_far,
            ..
        } => {
            listed += users.len() as u64;
            assert_eq!(so_far, listed, "progress counts users");
        }
        ListingEvent::Restart { reason } => {
            listed = 0;
            restarts.push(reason);
        }
    };
    let l = graph.cold_listing(opts, &mut on_event).await.unwrap();
    let mut ids: Vec<String> = l
        .pages
        .iter()
        .flat_map(|p| p.iter().map(|u| u.id.clone()))
        .collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no user twice");
    assert_eq!(l.users, ids.len() as u64);
    assert_eq!(listed, l.users, "the events brought every user");
    ids.sort();
    (l, ids, restarts)
}

fn small_shards() -> ColdListingOptions {
    ColdListingOptions {
        page_size: 5,
        concurrency: 4,
        ru_per_10s: 100_000,
        min_users_to_shard: 0,
        max_prefix_len: 2,
        expected_users: None,
    }
}

/// Upper and lower case of every letter, every digit and sign (`.` too: the stubs accept it).
fn first_char_upns() -> Vec<String> {
    let mut v = Vec::new();
    for (i, c) in UPN_FIRST_CHARS.chars().enumerate() {
        for k in 0..3 {
            v.push(format!("{c}first{i}x{k}@contoso.com"));
        }
    }
    // A crowd behind one letter, in both cases: its shard is split by the second character.
    for k in 0..150 {
        v.push(format!("mary{k}@contoso.com"));
        v.push(format!("Mike{k}@contoso.com"));
        // A one-character local part: the `m@` shard.
        v.push(format!("m@d{k}.contoso.com"));
    }
    v
}

async fn stub_with(case: Case) -> (graph_stub::Shared, GraphClient) {
    let st = graph_stub::start().await;
    {
        let mut t = st.lock().unwrap();
        t.case = case;
        t.page = 5;
        for (i, upn) in first_char_upns().iter().enumerate() {
            t.create(upn, props(i));
        }
    }
    let g = graph_stub::client(&st);
    (st, g)
}

#[tokio::test]
async fn sharded_equals_sequential_with_a_case_insensitive_startswith() {
    let (st, graph) = stub_with(Case::Insensitive).await;
    let (l, ids, restarts) = cold(&graph, &small_shards()).await;
    assert!(restarts.is_empty(), "{restarts:?}");
    let ListingMode::Sharded { shards, case_rule } = l.mode else {
        panic!("{:?}", l.mode)
    };
    assert_eq!(case_rule, CaseRule::Insensitive);
    assert!(shards > 43, "the `m` shard was split: {shards}");
    assert_eq!(ids, sequential_ids(&graph).await);
    assert_eq!(ids.len(), UPN_FIRST_CHARS.len() * 3 + 450);
    assert!(l.delta_link.is_some(), "taken before the shards");
    // The size known beforehand: the prefix counts go out with the first requests.
    let hinted = ColdListingOptions {
        expected_users: Some(ids.len() as u64),
        ..small_shards()
    };
    let (l2, ids2, _) = cold(&graph, &hinted).await;
    assert!(
        matches!(l2.mode, ListingMode::Sharded { .. }),
        "{:?}",
        l2.mode
    );
    assert_eq!(ids2, ids);
    let t = st.lock().unwrap();
    let latest = t
        .log
        .iter()
        .position(|l| l.contains("deltatoken=latest"))
        .unwrap();
    let first_shard = t
        .log
        .iter()
        .position(|l| l.starts_with("GET /v1.0/users?") && l.contains("filter=startswith"))
        .unwrap();
    assert!(latest < first_shard);
}

#[tokio::test]
async fn sharded_equals_sequential_with_a_case_sensitive_startswith() {
    let (_st, graph) = stub_with(Case::Sensitive).await;
    let (l, ids, restarts) = cold(&graph, &small_shards()).await;
    assert!(restarts.is_empty(), "{restarts:?}");
    let ListingMode::Sharded { shards, case_rule } = l.mode else {
        panic!("{:?}", l.mode)
    };
    assert_eq!(case_rule, CaseRule::Sensitive);
    assert!(
        shards > 69,
        "upper and lower case, `m` and `M` split: {shards}"
    );
    assert_eq!(ids, sequential_ids(&graph).await);
    assert_eq!(ids.len(), UPN_FIRST_CHARS.len() * 3 + 450);
}

#[tokio::test]
async fn counts_that_do_not_add_up_list_both_cases_and_keep_each_user_once() {
    // The count of `z` lags: neither case rule adds up, so every prefix is listed in both
    // cases; the server ignores case, so every letter's users come twice, and are kept once.
    let (st, graph) = stub_with(Case::Insensitive).await;
    st.lock().unwrap().count_skew.insert("z".into(), 2);
    let (l, ids, restarts) = cold(&graph, &small_shards()).await;
    assert!(restarts.is_empty(), "{restarts:?}");
    let ListingMode::Sharded { shards, case_rule } = l.mode else {
        panic!("{:?}", l.mode)
    };
    assert_eq!(case_rule, CaseRule::Unknown);
    assert!(shards >= 69, "{shards}");
    assert_eq!(ids, sequential_ids(&graph).await);
}

#[tokio::test]
async fn a_429_on_one_shard_pauses_every_shard_for_its_retry_after() {
    let (st, _) = stub_with(Case::Insensitive).await;
    {
        let mut t = st.lock().unwrap();
        // A shard that runs early (a child of the big `m`), on a Graph slow enough that the
        // other shards still have work then.
        t.throttle_once.insert("ma".into());
        t.delay = Duration::from_millis(10);
    }
    // The default retry policy (it would wait out a 1 s Retry-After by itself).
    let graph = GraphClient::new(
        m365sync::config::http_client(None).unwrap(),
        &format!("{}/v1.0", st.lock().unwrap().base),
        std::sync::Arc::new(m365sync::graph::StaticToken("t".into())),
    );
    let (l, ids, restarts) = cold(&graph, &small_shards()).await;
    assert!(restarts.is_empty(), "{restarts:?}");
    assert!(
        matches!(l.mode, ListingMode::Sharded { .. }),
        "{:?}",
        l.mode
    );
    assert_eq!(ids, sequential_ids(&graph).await);
    let t = st.lock().unwrap();
    let (at, _) = t
        .times
        .iter()
        .find(|(_, q)| {
            q.contains("filter=startswith%28userPrincipalName%2C%27ma%27%29")
                && !q.contains("skiptoken")
        })
        .expect("the throttled request");
    // Requests already on the wire may land just after the 429; then nothing for the
    // Retry-After (1 s), from any shard.
    let quiet = t
        .times
        .iter()
        .filter(|(when, _)| {
            *when > *at + Duration::from_millis(150) && *when < *at + Duration::from_millis(900)
        })
        .count();
    assert_eq!(quiet, 0, "every shard waited out the Retry-After");
    assert!(t.times.last().unwrap().0 >= *at + Duration::from_millis(950));
}

#[tokio::test]
async fn a_shard_graph_refuses_falls_back_to_a_complete_sequential_listing() {
    let (st, graph) = stub_with(Case::Insensitive).await;
    st.lock().unwrap().refuse.insert("'".into());
    let (l, ids, restarts) = cold(&graph, &small_shards()).await;
    let ListingMode::Sequential { reason } = &l.mode else {
        panic!("{:?}", l.mode)
    };
    assert!(
        reason.contains("refused") && reason.contains('\''),
        "{reason}"
    );
    assert_eq!(restarts.len(), 1, "the UI is told to drop what it showed");
    assert_eq!(ids, sequential_ids(&graph).await);
}

#[tokio::test]
async fn users_the_shards_cannot_reach_make_the_count_differ_and_the_listing_complete() {
    let (st, graph) = stub_with(Case::Insensitive).await;
    // Not an allowed first character: no shard lists it.
    st.lock().unwrap().create("élan@contoso.com", props(1));
    let (l, ids, restarts) = cold(&graph, &small_shards()).await;
    let ListingMode::Sequential { reason } = &l.mode else {
        panic!("{:?}", l.mode)
    };
    assert!(reason.contains("counts"), "{reason}");
    assert_eq!(restarts.len(), 1);
    assert_eq!(ids, sequential_ids(&graph).await);
    assert_eq!(ids.len(), UPN_FIRST_CHARS.len() * 3 + 451);
}

#[tokio::test]
async fn a_small_tenant_is_listed_sequentially() {
    let (_st, graph) = stub_with(Case::Insensitive).await;
    let (l, ids, _) = cold(&graph, &ColdListingOptions::default()).await;
    assert!(
        matches!(&l.mode, ListingMode::Sequential { reason } if reason.contains("fewer than")),
        "{:?}",
        l.mode
    );
    assert_eq!(ids, sequential_ids(&graph).await);
}

#[tokio::test]
async fn sharded_equals_sequential_against_the_simulator() {
    let env = common::start(SimOptions {
        users: Some(2_000),
        ..common::fast_options()
    })
    .await;
    let session = env.app_session().await;
    let graph = GraphClient::new(env.http(), &env.settings.graph_url, session);
    // Every allowed first character in both cases (the simulator, as Graph, refuses a UPN
    // whose local part starts with `.`).
    let domain = env.sim.default_domain.clone();
    let mut created = 0;
    for (i, c) in UPN_FIRST_CHARS.chars().enumerate() {
        if c == '.' {
            continue;
        }
        let upn = format!("{c}first{i}@{domain}");
        let body = json!({
            "accountEnabled": true,
            "displayName": format!("First {i}"),
            "mailNickname": format!("first{i}"),
            "userPrincipalName": upn,
            "passwordProfile": {"password": "Str0ng!Passw0rd", "forceChangePasswordNextSignIn": true},
        });
        graph
            .request(
                Method::POST,
                "/users",
                Some(serde_json::to_vec(&body).unwrap().into()),
            )
            .await
            .unwrap_or_else(|e| panic!("create {upn}: {e}"));
        created += 1;
    }
    let total = env.sim.user_count();
    assert_eq!(total, 2_000 + created);
    let opts = ColdListingOptions {
        page_size: 40,
        concurrency: 6,
        ru_per_10s: 8_000,
        min_users_to_shard: 0,
        max_prefix_len: 2,
        expected_users: None,
    };
    let (l, ids, restarts) = cold(&graph, &opts).await;
    assert!(restarts.is_empty(), "{restarts:?}");
    let ListingMode::Sharded { shards, case_rule } = l.mode else {
        panic!("{:?}", l.mode)
    };
    assert_eq!(
        case_rule,
        CaseRule::Insensitive,
        "the simulator's startswith ignores case"
    );
    assert!(shards > 43, "big first letters were split: {shards}");
    assert_eq!(ids, sequential_ids(&graph).await);
    assert_eq!(ids.len(), total);
    // Every created UPN is there, upper and lower case alike.
    let upns: HashSet<String> = l
        .pages
        .iter()
        .flat_map(|p| p.iter().map(|u| u.user_principal_name.clone()))
        .collect();
    for (i, c) in UPN_FIRST_CHARS.chars().enumerate() {
        if c != '.' {
            assert!(upns.contains(&format!("{c}first{i}@{domain}")), "{c}");
        }
    }
}
