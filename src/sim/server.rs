//! The accept loop: plain TCP or TLS, HTTP/1.1 and HTTP/2, with latency, fault injection and
//! request counting in front of the axum router.
//!
//! Accept errors (out of file descriptors: EMFILE/ENFILE, or out of memory) pause accepting
//! for 50 ms, doubling to 1 s while they last, logged once per episode ([`AcceptBackoff`]);
//! finished connections keep being reaped meanwhile, which frees descriptors.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use super::fault::FaultKind;
use super::state::State;
use super::{graph, identity};

/// Returned by the service to make hyper drop the connection without answering.
#[derive(Debug)]
struct ResetFault;

impl std::fmt::Display for ResetFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fault injection: connection reset")
    }
}

impl std::error::Error for ResetFault {}

async fn handle(
    st: Arc<State>,
    router: Router,
    req: hyper::Request<Incoming>,
) -> Result<axum::response::Response, ResetFault> {
    if !st.latency.is_zero() {
        tokio::time::sleep(st.latency).await;
    }
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    st.count(&method, &path);
    if let Some(kind) = st.faults.check(&method, &path) {
        tracing::debug!(target: "m365sync::sim", "{method} {path} -> fault {kind:?}");
        let graph_route = path.starts_with("/v1.0");
        let (h, u) = (req.headers(), req.uri());
        return match kind {
            FaultKind::Reset => Err(ResetFault),
            FaultKind::SlowDown => Ok(identity::slow_down_fault(&st, h, u)),
            FaultKind::Throttle { retry_after_secs } if graph_route => {
                st.note_throttled();
                Ok(graph::fault_response(
                    &st,
                    h,
                    u,
                    StatusCode::TOO_MANY_REQUESTS,
                    Some(retry_after_secs),
                ))
            }
            FaultKind::Throttle { retry_after_secs } => Ok(identity::unavailable_fault(
                &st,
                h,
                u,
                StatusCode::TOO_MANY_REQUESTS,
                Some(retry_after_secs),
            )),
            FaultKind::Unavailable if graph_route => Ok(graph::fault_response(
                &st,
                h,
                u,
                StatusCode::SERVICE_UNAVAILABLE,
                None,
            )),
            FaultKind::Unavailable => Ok(identity::unavailable_fault(
                &st,
                h,
                u,
                StatusCode::SERVICE_UNAVAILABLE,
                None,
            )),
        };
    }
    if path.starts_with("/v1.0") && st.chaos().reset() {
        tracing::debug!(target: "m365sync::sim", "{method} {path} -> random reset");
        return Err(ResetFault);
    }
    let resp = router.oneshot(req.map(Body::new)).await;
    let resp = resp.unwrap_or_else(|never| match never {});
    if resp.extensions().get::<graph::DropConnection>().is_some() {
        tracing::debug!(target: "m365sync::sim", "{method} {path} -> applied, then reset (ambiguous)");
        return Err(ResetFault);
    }
    tracing::debug!(target: "m365sync::sim", "{method} {path} -> {}", resp.status().as_u16());
    Ok(resp)
}

/// When to stop accepting for a while: accept errors that are about this server (out of file
/// descriptors, buffers or memory) would come back at once, so the loop sleeps 50 ms, doubling
/// to 1 s while they last; an error about one connection (aborted, reset, refused before it
/// was accepted) is skipped at once. Pure, so the policy is unit-tested.
#[derive(Debug, Default)]
pub(crate) struct AcceptBackoff {
    /// The pause after the last failure; zero while accepting works.
    delay: Duration,
    /// Failures in the current episode.
    failures: u64,
}

impl AcceptBackoff {
    pub const FIRST: Duration = Duration::from_millis(50);
    pub const MAX: Duration = Duration::from_secs(1);

    /// After a failed accept: how long to pause (None: try again at once), and whether this
    /// failure starts an episode (the one to log).
    pub fn failed(&mut self, e: &std::io::Error) -> (Option<Duration>, bool) {
        use std::io::ErrorKind::*;
        if matches!(
            e.kind(),
            ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
        ) {
            return (None, false);
        }
        let first = self.failures == 0;
        self.failures += 1;
        self.delay = if first {
            Self::FIRST
        } else {
            (self.delay * 2).min(Self::MAX)
        };
        (Some(self.delay), first)
    }

    /// After a successful accept: the failures of the episode that just ended (0 if none).
    pub fn succeeded(&mut self) -> u64 {
        let n = self.failures;
        *self = AcceptBackoff::default();
        n
    }
}

pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    st: Arc<State>,
    cancel: CancellationToken,
) {
    let mut conns = JoinSet::new();
    let mut backoff = AcceptBackoff::default();
    let mut paused_until: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(paused_until.unwrap_or_else(Instant::now)), if paused_until.is_some() => {
                paused_until = None;
            }
            accepted = listener.accept(), if paused_until.is_none() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => {
                        let failures = backoff.succeeded();
                        if failures > 0 {
                            tracing::warn!(target: "m365sync::sim", "accepting connections again after {failures} failed accepts");
                        }
                        stream
                    }
                    Err(e) => {
                        let (pause, first) = backoff.failed(&e);
                        if first {
                            tracing::warn!(target: "m365sync::sim", "accept failed: {e}; pausing accepts ({} ms, doubling up to {} ms) until it succeeds", AcceptBackoff::FIRST.as_millis(), AcceptBackoff::MAX.as_millis());
                        }
                        paused_until = pause.map(|d| Instant::now() + d);
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let st = st.clone();
                let router = router.clone();
                let tls = tls.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(st.clone(), router.clone(), req));
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(stream).await {
                                let _ = builder.serve_connection_with_upgrades(TokioIo::new(s), svc).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).await;
                        }
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

/// A fresh CA and a server certificate it signed (SANs 127.0.0.1 and localhost).
/// Returns the acceptor and the CA certificate PEM that clients should trust.
pub fn make_tls() -> anyhow::Result<(TlsAcceptor, String)> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "m365sync simulator CA");
    ca.distinguished_name
        .push(DnType::OrganizationName, "m365sync");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let leaf_key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;

    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![leaf_cert.der().clone(), ca_cert.der().clone()], key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), ca_cert.pem()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn accept_backoff_doubles_to_a_cap_logs_once_and_resets() {
        let mut b = AcceptBackoff::default();
        let emfile = Error::from_raw_os_error(24); // EMFILE: too many open files
        let (d, first) = b.failed(&emfile);
        assert_eq!((d, first), (Some(Duration::from_millis(50)), true));
        let pauses: Vec<_> = (0..8).map(|_| b.failed(&emfile)).collect();
        assert!(
            pauses.iter().all(|(_, first)| !first),
            "logged once per episode"
        );
        let ms: Vec<u128> = pauses.iter().map(|(d, _)| d.unwrap().as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000, 1000, 1000]);
        assert_eq!(b.succeeded(), 9);
        assert_eq!(b.succeeded(), 0);
        // A new episode starts from the beginning, and is logged again.
        assert_eq!(
            b.failed(&Error::from_raw_os_error(23)),
            (Some(Duration::from_millis(50)), true)
        );
        // One connection's own trouble is not a reason to stop accepting.
        let mut b = AcceptBackoff::default();
        for kind in [ErrorKind::ConnectionAborted, ErrorKind::ConnectionReset] {
            assert_eq!(b.failed(&Error::from(kind)), (None, false));
        }
        assert_eq!(b.succeeded(), 0);
    }
}
