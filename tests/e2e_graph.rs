//! The Graph client end to end against the simulator over real HTTP on 127.0.0.1.
mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use m365sync::graph::{GraphClient, GraphError};
use m365sync::sim::SimOptions;

fn client(env: &common::Env, session: std::sync::Arc<m365sync::auth::Session>) -> GraphClient {
    GraphClient::new(env.http(), &env.settings.graph_url, session)
}

#[tokio::test]
async fn a_token_expiring_mid_listing_is_refreshed_and_every_user_arrives_once() {
    let env = common::start(SimOptions {
        users: Some(2500),
        token_lifetime: Duration::from_secs(2),
        ..common::fast_options()
    })
    .await;
    let session = env.device_session().await;
    let graph = client(&env, session.clone());
    let mut pages = graph.list_users(999);
    let first = pages.next().await.unwrap().unwrap();
    assert_eq!(first.len(), 999);

    // The server-side token runs out while the client still believes it valid (clock skew,
    // a laptop that slept): Graph answers 401 and the client must refresh and go on.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    session.tokens.lock().await.expires_at =
        time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
    let before = session.tokens.lock().await.refresh_token.clone();

    let mut ids: HashSet<String> = first.into_iter().map(|u| u.id).collect();
    let mut sizes = vec![999];
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        sizes.push(page.len());
        for u in page {
            assert!(ids.insert(u.id), "a user arrived twice");
        }
    }
    assert_eq!(sizes, vec![999, 999, 502], "3 pages of at most 999");
    assert_eq!(ids.len(), 2500);
    assert_ne!(
        session.tokens.lock().await.refresh_token,
        before,
        "refreshed after the 401"
    );
}

#[tokio::test]
async fn every_listed_user_has_the_selected_fields() {
    let env = common::start(common::fast_options()).await;
    let graph = client(&env, env.app_session().await);
    let users: Vec<_> = graph.list_users(100).map(|p| p.unwrap()).concat().await;
    assert_eq!(users.len(), env.sim.user_count());
    assert!(
        users.iter().all(|u| u.account_enabled.is_some()),
        "accountEnabled selected"
    );
    assert!(
        users.iter().any(|u| u.account_enabled == Some(false)),
        "some disabled"
    );
    let domains = graph.list_domains().await.unwrap();
    assert_eq!(domains.iter().filter(|d| d.is_default).count(), 1);
    assert!(domains.iter().any(|d| !d.is_verified));
    let one = graph.get_user(&users[3].user_principal_name).await.unwrap();
    assert_eq!(one.id, users[3].id);
}

#[tokio::test]
async fn a_page_size_of_1000_is_graphs_typed_error() {
    let env = common::start(common::fast_options()).await;
    let graph = client(&env, env.app_session().await);
    let err = graph.list_users(1000).next().await.unwrap().unwrap_err();
    match err {
        GraphError::Api {
            status,
            code,
            message,
            request_id,
            ..
        } => {
            assert_eq!(status, 400);
            assert_eq!(code, "Request_UnsupportedQuery");
            assert_eq!(
                message,
                "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive."
            );
            assert!(request_id.is_some());
        }
        other => panic!("expected the Graph error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_user_is_not_found_with_its_request_id() {
    let env = common::start(common::fast_options()).await;
    let graph = client(&env, env.app_session().await);
    let err = graph.get_user("nobody@example.com").await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.code(), "Request_ResourceNotFound");
    assert!(err.request_id().is_some());
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out() {
    let env = common::start(SimOptions {
        users: Some(300),
        ..common::fast_options()
    })
    .await;
    let graph = client(&env, env.app_session().await);
    env.sim
        .faults()
        .add("GET /v1.0/users #2 429:2".parse().unwrap());
    let t = Instant::now();
    let users: Vec<_> = graph.list_users(100).map(|p| p.unwrap()).concat().await;
    assert_eq!(users.len(), 300);
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "Retry-After honoured"
    );
    assert_eq!(
        env.sim.request_count("GET", "/v1.0/users"),
        4,
        "3 pages + 1 retry"
    );
}

#[tokio::test]
async fn a_503_and_a_dropped_connection_are_retried() {
    let env = common::start(SimOptions {
        users: Some(300),
        ..common::fast_options()
    })
    .await;
    let graph = client(&env, env.app_session().await);
    env.sim
        .faults()
        .add("GET /v1.0/users #1 503".parse().unwrap());
    env.sim
        .faults()
        .add("GET /v1.0/users #3 reset".parse().unwrap());
    let users: Vec<_> = graph.list_users(100).map(|p| p.unwrap()).concat().await;
    assert_eq!(users.len(), 300);
}

#[tokio::test]
async fn listing_over_tls_with_the_ca_file() {
    let env = common::start(SimOptions {
        tls: true,
        users: Some(1200),
        ..common::fast_options()
    })
    .await;
    let graph = client(&env, env.app_session().await);
    let users: Vec<_> = graph.list_users(999).map(|p| p.unwrap()).concat().await;
    assert_eq!(users.len(), 1200);
}

#[tokio::test]
async fn the_simulators_base_url_without_v1_0_is_enough() {
    let env = common::start(SimOptions {
        users: Some(1200),
        ..common::fast_options()
    })
    .await;
    // As `m365sync sim` prints it: no path.
    let graph = GraphClient::new(env.http(), &env.sim.base_url, env.app_session().await);
    assert_eq!(graph.base(), format!("{}/v1.0", env.sim.base_url));
    let users: Vec<_> = graph.list_users(999).map(|p| p.unwrap()).concat().await;
    assert_eq!(users.len(), 1200);
    assert_eq!(graph.count_users().await.unwrap(), 1200);
}

#[tokio::test]
async fn a_graph_url_with_a_wrong_version_path_is_diagnosed_as_such() {
    let env = common::start(common::fast_options()).await;
    let graph = GraphClient::new(
        env.http(),
        &format!("{}/v2.0", env.sim.base_url),
        env.app_session().await,
    );
    let err = graph.list_users(999).next().await.unwrap().unwrap_err();
    assert!(err.is_unknown_endpoint(), "{err:?}");
    let d = m365sync::diagnose::diagnose_graph(
        &err,
        &m365sync::diagnose::Context::new(
            m365sync::diagnose::Operation::ListUsers,
            m365sync::diagnose::Subject::None,
        ),
    );
    assert_eq!(d.kind, "graph-url-wrong");
    // One request: a 404 is not retried.
    assert_eq!(env.sim.request_count("GET", "/v2.0/users"), 1);
}

#[tokio::test]
async fn typed_helpers_read_and_write_deleted_users_groups_and_members() {
    use m365sync::graph::{batch, requests};
    let env = common::start(SimOptions {
        users: Some(50),
        ..common::fast_options()
    })
    .await;
    let graph = client(&env, env.app_session().await);
    let domain = graph
        .list_domains()
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.is_default)
        .unwrap()
        .id;

    // A UPN with `'` and `#` (both allowed by Microsoft's UPN rules) through every path.
    let upn = format!("o'brien#1@{domain}");
    let create = requests::create_user(
        "1",
        &requests::NewUser::new(&upn, "Pat O'Brien", "obrien1", "Temp-Pa55word!x"),
    );
    let out = batch::send(&graph, &[create]).await.unwrap();
    let created: m365sync::graph::User = out[0].as_ref().expect("created").json().unwrap();
    assert_eq!(created.user_principal_name, upn);
    let out = batch::send(
        &graph,
        &[
            requests::set_account_enabled("a", &upn, false),
            requests::get_user("b", &created.id),
        ],
    )
    .await
    .unwrap();
    assert_eq!(out[0].as_ref().unwrap().status, 204);
    assert_eq!(
        out[1]
            .as_ref()
            .unwrap()
            .json::<m365sync::graph::User>()
            .unwrap()
            .id,
        created.id
    );
    assert_eq!(
        graph.get_user(&upn).await.unwrap().account_enabled,
        Some(false)
    );

    // Groups and members.
    let group = batch::send(
        &graph,
        &[requests::create_group(
            "g",
            &requests::NewGroup::security("Pat's team", "patsteam"),
        )],
    )
    .await
    .unwrap();
    let gid = group[0]
        .as_ref()
        .unwrap()
        .json::<m365sync::graph::Group>()
        .unwrap()
        .id;
    let add = batch::send(
        &graph,
        &[requests::add_member("m", graph.base(), &gid, &created.id)],
    )
    .await
    .unwrap();
    assert_eq!(add[0].as_ref().unwrap().status, 204);
    assert_eq!(
        graph.list_group_members(&gid).await.unwrap(),
        vec![created.id.clone()]
    );
    assert_eq!(
        graph
            .get_group(&gid)
            .await
            .unwrap()
            .mail_nickname
            .as_deref(),
        Some("patsteam")
    );
    assert!(graph
        .list_groups()
        .await
        .unwrap()
        .iter()
        .any(|g| g.id == gid));
    let rm = batch::send(&graph, &[requests::remove_member("r", &gid, &created.id)])
        .await
        .unwrap();
    assert_eq!(rm[0].as_ref().unwrap().status, 204);
    assert!(graph.list_group_members(&gid).await.unwrap().is_empty());

    // Deleted users: list, restore, purge.
    let before = graph.list_deleted_users().await.unwrap().len();
    assert!(env.sim.soft_delete(&upn));
    let other = graph.list_users(10).next().await.unwrap().unwrap()[0].clone();
    assert!(env.sim.soft_delete(&other.user_principal_name));
    let deleted = graph.list_deleted_users().await.unwrap();
    assert_eq!(deleted.len(), before + 2);
    let d = deleted.iter().find(|d| d.user.id == created.id).unwrap();
    assert!(d.deleted_date_time.is_some(), "deletedDateTime selected");
    assert_eq!(
        graph.restore_deleted(&created.id).await.unwrap().id,
        created.id
    );
    assert_eq!(
        graph
            .get_user(&created.id)
            .await
            .unwrap()
            .user_principal_name,
        upn
    );
    // Purging a user is delegated-only (graph-notes §16): app-only it is refused.
    let refused = graph.purge_deleted(&other.id).await.unwrap_err();
    assert_eq!(refused.status(), Some(403));
    let admin = GraphClient::new(
        env.http(),
        &env.settings.graph_url,
        env.device_session().await,
    );
    admin.purge_deleted(&other.id).await.unwrap();
    assert_eq!(graph.list_deleted_users().await.unwrap().len(), before);
    let gone = admin.purge_deleted(&other.id).await.unwrap_err();
    assert_eq!(gone.code(), "Request_ResourceNotFound");
}
