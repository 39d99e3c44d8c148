//! The accept loop: plain TCP or TLS, HTTP/1.1 and HTTP/2, with latency, fault injection and
//! request counting in front of the axum router.
//!
//! Bounded against hostile or broken clients:
//! - accept errors (out of file descriptors: EMFILE/ENFILE, or out of memory) pause accepting
//!   for 50 ms, doubling to 1 s while they last, logged once per episode ([`AcceptBackoff`]);
//!   finished connections keep being reaped meanwhile, which frees descriptors;
//! - a connection must bring its first request (TLS handshake, protocol preface and request
//!   head) within `header_timeout` of being accepted, and each later request within
//!   `idle_timeout` of the previous answer, else it is closed ([`ConnClock`]). This covers a
//!   client that connects and sends nothing, one that sends its head a byte at a time, a
//!   silent TLS handshake and an idle HTTP/2 connection, which hyper's own
//!   `header_read_timeout` does not: it starts only after the auto builder has sniffed the
//!   protocol, and that sniffing waits for bytes forever;
//! - a request body is read whole before routing, at most `max_body_bytes` (else `413`) and
//!   within `header_timeout` (else the connection is dropped).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Notify;
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
    let (parts, body) = req.into_parts();
    let body = match read_body(&st, &parts, body).await {
        Ok(b) => b,
        Err(BodyRefusal::TooLarge) => {
            tracing::debug!(target: "m365sync::sim", "{method} {path} -> 413 (body over {} bytes)", st.max_body_bytes);
            return Ok(too_large(&st, &parts));
        }
        Err(BodyRefusal::Broken) => {
            tracing::debug!(target: "m365sync::sim", "{method} {path} -> body too slow or broken, dropped");
            return Err(ResetFault);
        }
    };
    let req = hyper::Request::from_parts(parts, Body::from(body));
    let resp = router.oneshot(req).await;
    let resp = resp.unwrap_or_else(|never| match never {});
    if resp.extensions().get::<graph::DropConnection>().is_some() {
        tracing::debug!(target: "m365sync::sim", "{method} {path} -> applied, then reset (ambiguous)");
        return Err(ResetFault);
    }
    tracing::debug!(target: "m365sync::sim", "{method} {path} -> {}", resp.status().as_u16());
    Ok(resp)
}

enum BodyRefusal {
    TooLarge,
    /// The body did not arrive whole within `header_timeout`, or the stream broke.
    Broken,
}

/// Reads the whole request body: at most `max_body_bytes`, within `header_timeout`.
async fn read_body(
    st: &State,
    parts: &hyper::http::request::Parts,
    body: Incoming,
) -> Result<bytes::Bytes, BodyRefusal> {
    use futures::StreamExt as _;
    let limit = st.max_body_bytes;
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut stream = Body::new(body).into_data_stream();
    let collect = async {
        let mut buf = bytes::BytesMut::new();
        let mut seen = 0usize;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| BodyRefusal::Broken)?;
            seen = seen.saturating_add(chunk.len());
            if seen > limit {
                // Too large, but read on (discarding, up to a cap) so the client, still
                // sending, can read the 413 instead of meeting a reset.
                if seen > limit.saturating_mul(DRAIN_FACTOR) {
                    return Err(BodyRefusal::TooLarge);
                }
                buf.clear();
                continue;
            }
            buf.extend_from_slice(&chunk);
        }
        if seen > limit {
            Err(BodyRefusal::TooLarge)
        } else {
            Ok(buf.freeze())
        }
    };
    let declared_too_large = declared.is_some_and(|n| n > limit as u64);
    if declared.is_some_and(|n| n > limit.saturating_mul(DRAIN_FACTOR) as u64) {
        return Err(BodyRefusal::TooLarge);
    }
    match tokio::time::timeout(st.header_timeout, collect).await {
        Ok(r) => r,
        Err(_) if declared_too_large => Err(BodyRefusal::TooLarge),
        Err(_) => Err(BodyRefusal::Broken),
    }
}

/// A body over the limit is read on and discarded up to this many times the limit before the
/// 413, so a client still sending sees the answer rather than a reset.
const DRAIN_FACTOR: usize = 4;

/// `413` for a body over the limit: Graph's envelope on Graph routes. Microsoft Graph takes at
/// most 4 MB a request; the answer seen for more is `413 Request Entity Too Large`, and an
/// older body `{"code": "BadRequest", "message": "Maximum request length exceeded."}` (graph
/// docs issue #85); the two together are UNVERIFIED.
fn too_large(st: &State, parts: &hyper::http::request::Parts) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    if parts.uri.path().starts_with("/v1.0") {
        graph::GCtx::new(st, &parts.headers, &parts.uri).error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BadRequest",
            "Maximum request length exceeded.",
        )
    } else {
        (StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large").into_response()
    }
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

/// Per connection: requests in flight, and when the connection must have brought its next
/// request (`header_timeout` after the accept for the first, `idle_timeout` after the last
/// answer for the next ones). Nothing runs out while a request is in flight.
pub(crate) struct ConnClock {
    state: Mutex<ClockState>,
    changed: Notify,
    idle_timeout: Duration,
}

struct ClockState {
    in_flight: usize,
    deadline: Instant,
    served: bool,
}

/// Why a connection ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// No complete first request within `header_timeout`: dropped at once.
    FirstRequest,
    /// Kept alive with no new request for `idle_timeout`: closed gracefully (HTTP/2 GOAWAY).
    Idle,
}

impl ConnClock {
    pub fn new(header_timeout: Duration, idle_timeout: Duration) -> ConnClock {
        ConnClock {
            state: Mutex::new(ClockState {
                in_flight: 0,
                deadline: Instant::now() + header_timeout,
                served: false,
            }),
            changed: Notify::new(),
            idle_timeout,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request reached the service; the returned guard marks it answered when dropped.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.lock().in_flight += 1;
        self.changed.notify_one();
        InFlight(self.clone())
    }

    /// Resolves when the connection has run out of time (never while a request is in flight).
    pub async fn expired(&self) -> Expiry {
        loop {
            let (deadline, served) = {
                let s = self.lock();
                ((s.in_flight == 0).then_some(s.deadline), s.served)
            };
            match deadline {
                None => self.changed.notified().await,
                Some(d) if Instant::now() >= d => {
                    return if served {
                        Expiry::Idle
                    } else {
                        Expiry::FirstRequest
                    };
                }
                Some(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(d) => {}
                        _ = self.changed.notified() => {}
                    }
                }
            }
        }
    }
}

/// A request in flight on a connection; dropping it (answered, or cancelled) starts the idle
/// clock once none is left.
pub(crate) struct InFlight(Arc<ConnClock>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let clock = &self.0;
        {
            let mut s = clock.lock();
            s.in_flight = s.in_flight.saturating_sub(1);
            s.served = true;
            if s.in_flight == 0 {
                s.deadline = Instant::now() + clock.idle_timeout;
            }
        }
        clock.changed.notify_one();
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
                conns.spawn(connection(stream, tls.clone(), router.clone(), st.clone()));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

/// One accepted connection: TLS (if any), then HTTP/1.1 or HTTP/2, under its [`ConnClock`].
async fn connection(
    stream: tokio::net::TcpStream,
    tls: Option<TlsAcceptor>,
    router: Router,
    st: Arc<State>,
) {
    let clock = Arc::new(ConnClock::new(st.header_timeout, st.idle_timeout));
    match tls {
        Some(acceptor) => {
            let handshake = tokio::select! {
                r = acceptor.accept(stream) => r,
                _ = clock.expired() => {
                    tracing::debug!(target: "m365sync::sim", "TLS handshake not done within {:?}: dropped", st.header_timeout);
                    return;
                }
            };
            if let Ok(s) = handshake {
                drive(TokioIo::new(s), clock, router, st).await;
            }
        }
        None => drive(TokioIo::new(stream), clock, router, st).await,
    }
}

async fn drive<I>(io: I, clock: Arc<ConnClock>, router: Router, st: Arc<State>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = {
        let clock = clock.clone();
        let st = st.clone();
        hyper::service::service_fn(move |req| {
            let in_flight = clock.start();
            let fut = handle(st.clone(), router.clone(), req);
            async move {
                let r = fut.await;
                drop(in_flight);
                r
            }
        })
    };
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        why = clock.expired() => match why {
            Expiry::FirstRequest => {
                tracing::debug!(target: "m365sync::sim", "no complete request within {:?}: connection dropped", st.header_timeout);
            }
            Expiry::Idle => {
                tracing::debug!(target: "m365sync::sim", "idle for {:?}: connection closed", st.idle_timeout);
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(Duration::from_secs(1), conn.as_mut()).await;
            }
        },
    }
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

    #[tokio::test]
    async fn conn_clock_bounds_the_first_request_and_idleness_never_a_request() {
        let ms = Duration::from_millis;
        let clock = Arc::new(ConnClock::new(ms(100), ms(300)));
        let t0 = Instant::now();
        assert_eq!(clock.expired().await, Expiry::FirstRequest);
        let took = t0.elapsed();
        assert!(took >= ms(100) && took < ms(1000), "{took:?}");

        let clock = Arc::new(ConnClock::new(ms(100), ms(300)));
        let req = clock.start();
        // In flight: no deadline, however long it takes (here 5x the first-request bound).
        assert!(tokio::time::timeout(ms(500), clock.expired())
            .await
            .is_err());
        let t1 = Instant::now();
        drop(req);
        assert_eq!(clock.expired().await, Expiry::Idle);
        let took = t1.elapsed();
        assert!(took >= ms(300) && took < ms(1500), "{took:?}");
    }
}
