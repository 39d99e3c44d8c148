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
