//! Sign-in end to end: the real client against the simulator over real HTTP on 127.0.0.1.
mod common;

use std::time::{Duration, Instant};

use m365sync::auth::{AuthError, Session};
use m365sync::sim::SimOptions;

#[tokio::test]
async fn device_code_pending_then_approved_gives_a_cached_token() {
    let env = common::start(common::fast_options()).await;
    let auth = env.auth();
    let start = auth.start_device_code().await.unwrap();
    assert!(
        start.message.contains(&start.user_code),
        "{}",
        start.message
    );
    assert!(start.verification_uri.ends_with("/devicelogin"));
    assert_eq!(start.interval, Duration::from_secs(1));

    let poll = {
        let (auth, start) = (auth.clone(), start.clone());
        tokio::spawn(async move { auth.poll_device_code(&start).await })
    };
    // Still pending after a few polls: nobody approved yet.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        !poll.is_finished(),
        "must keep polling while authorization is pending"
    );
    env.person(&start.user_code, "approve").await;
    let tokens = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .expect("approval ends the poll")
        .unwrap()
        .unwrap();
    assert!(
        tokens.refresh_token.is_some(),
        "offline_access gives a refresh token"
    );
    assert!(tokens.identity.name.contains('@'), "{:?}", tokens.identity);

    let session = Session::start(auth.clone(), env.cache(), tokens, None).unwrap();
    assert!(!session.access_token(false).await.unwrap().is_empty());

    // The cache file is private to the user and holds no secret in logs; it resumes.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.cache_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let resumed = Session::resume(auth, env.cache(), None).unwrap().unwrap();
    assert_eq!(resumed.identity().await, session.identity().await);
}

#[tokio::test]
async fn a_declined_code_says_so() {
    let env = common::start(common::fast_options()).await;
    let auth = env.auth();
    let start = auth.start_device_code().await.unwrap();
    let poll = {
        let (auth, start) = (auth.clone(), start.clone());
        tokio::spawn(async move { auth.poll_device_code(&start).await })
    };
    env.person(&start.user_code, "decline").await;
    let err = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(err, AuthError::Declined);
}

#[tokio::test]
async fn an_expired_code_stops_polling() {
    let env = common::start(SimOptions {
        device_code_lifetime: Duration::from_secs(2),
        ..common::fast_options()
    })
    .await;
    let auth = env.auth();
    let start = auth.start_device_code().await.unwrap();
    let t = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(15), auth.poll_device_code(&start))
        .await
        .expect("never hangs past expiry")
        .unwrap_err();
    assert_eq!(err, AuthError::Expired);
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn slow_down_widens_the_interval() {
    let env = common::start(common::fast_options()).await;
    let auth = env.auth();
    let start = auth.start_device_code().await.unwrap();
    let token_path = format!("/{}/oauth2/v2.0/token", env.sim.tenant_id);
    env.sim.faults().add(
        format!("POST {token_path} next1 slow_down")
            .parse()
            .unwrap(),
    );
    let poll = {
        let (auth, start) = (auth.clone(), start.clone());
        tokio::spawn(async move { auth.poll_device_code(&start).await })
    };
    // First poll at ~1 s gets slow_down; the next must wait 1 + 5 s (RFC 8628), so at 4 s
    // there has been exactly one poll.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        env.sim.request_count("POST", &token_path),
        1,
        "widened interval"
    );
    env.person(&start.user_code, "approve").await;
    let tokens = tokio::time::timeout(Duration::from_secs(15), poll)
        .await
        .unwrap()
        .unwrap();
    assert!(tokens.is_ok(), "{tokens:?}");
}

#[tokio::test]
async fn client_credentials_and_a_wrong_secret() {
    let env = common::start(common::fast_options()).await;
    let (auth, secret) = env.app_auth();
    let tokens = auth.client_credentials(&secret).await.unwrap();
    assert!(tokens.refresh_token.is_none());
    assert!(
        tokens.identity.name.starts_with("app:"),
        "{:?}",
        tokens.identity
    );
    match auth.client_credentials("not-the-secret").await.unwrap_err() {
        AuthError::OAuth { error, codes, .. } => {
            assert_eq!(error, "invalid_client");
            assert!(codes.contains(&7000215), "{codes:?}");
        }
        other => panic!("expected invalid_client, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_client_id_is_explained() {
    let env = common::start(common::fast_options()).await;
    let auth = m365sync::auth::Authenticator::new(
        env.http(),
        &env.settings.authority,
        &env.sim.tenant_id,
        "00000000-0000-0000-0000-00000000dead",
    );
    let err = auth.start_device_code().await.unwrap_err();
    assert!(
        matches!(&err, AuthError::OAuth { codes, .. } if codes.contains(&700016)),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_same_sign_in_works_over_tls_with_the_ca_file() {
    let env = common::start(SimOptions {
        tls: true,
        ..common::fast_options()
    })
    .await;
    assert!(env.sim.base_url.starts_with("https://127.0.0.1:"));
    assert!(env.settings.ca_file.is_some());
    let session = env.device_session().await;
    assert!(!session.access_token(false).await.unwrap().is_empty());

    // Without the CA file the certificate is not trusted: a clear transport error.
    let untrusting = m365sync::auth::Authenticator::new(
        m365sync::config::http_client(None).unwrap(),
        &env.settings.authority,
        &env.sim.tenant_id,
        &env.sim.public_client_id,
    );
    let err = untrusting.start_device_code().await.unwrap_err();
    assert!(matches!(err, AuthError::Transport(_)), "{err:?}");
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token() {
    let env = common::start(common::fast_options()).await;
    let session = env.device_session().await;
    let first = session.tokens.lock().await.clone();
    let fresh = session.access_token(true).await.unwrap();
    let second = session.tokens.lock().await.clone();
    assert_ne!(fresh, first.access_token);
    assert_ne!(second.refresh_token, first.refresh_token, "rotated");
    // The cache holds the rotated tokens.
    assert_eq!(env.cache().load().unwrap().unwrap(), second);
    // The old refresh token no longer works.
    let err = env.auth().refresh(&first).await.unwrap_err();
    assert!(
        matches!(&err, AuthError::OAuth { error, .. } if error == "invalid_grant"),
        "{err:?}"
    );
}
