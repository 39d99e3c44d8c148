//! The typed Graph error: everything support needs (status, code, message, request-id, date).
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// Graph answered with its error envelope (or a non-2xx status without one).
    #[error("{status} {code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
        date: Option<String>,
        retry_after: Option<Duration>,
    },
    /// The request never got an HTTP answer (connection refused or reset, TLS, timeout).
    #[error("network error: {0}")]
    Transport(String),
    /// A 2xx answer whose body is not what Graph sends, an answer too large to read, a
    /// `$batch` answer that does not match its requests, or a listing Graph would not let end
    /// (a next page link already followed, or more pages than the client's cap): see
    /// [`GraphError::is_listing_stopped`].
    #[error("malformed response from Graph: {0}")]
    Malformed(String),
    /// No usable token (not signed in, refresh failed).
    #[error("not signed in: {0}")]
    Auth(String),
}

/// The `code` the client gives a 404 that is not a Graph answer: a 404 whose body is not
/// Graph's error envelope, or a 404 on a collection that always exists (`/users`, `/domains`,
/// `/groups`, `/directory/deletedItems/microsoft.graph.user`). Either way the requests do not
/// reach Microsoft Graph's `/v1.0` root: the Graph URL is wrong.
pub const UNKNOWN_ENDPOINT: &str = "UnknownEndpoint";

/// How the message of a listing stopped by the client ends (see
/// [`GraphError::is_listing_stopped`]).
pub(crate) const LISTING_STOPPED: &str = "the listing was stopped";

impl GraphError {
    pub fn status(&self) -> Option<u16> {
        match self {
            GraphError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
    pub fn code(&self) -> &str {
        match self {
            GraphError::Api { code, .. } => code,
            GraphError::Transport(_) => "Transport",
            GraphError::Malformed(_) => "MalformedResponse",
            GraphError::Auth(_) => "NotSignedIn",
        }
    }
    pub fn request_id(&self) -> Option<&str> {
        match self {
            GraphError::Api { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }
}

/// Graph's error envelope: `{"error":{"code","message","innerError":{"request-id","date"}}}`.
#[derive(Debug, serde::Deserialize)]
struct Envelope {
    error: EnvelopeError,
}

#[derive(Debug, serde::Deserialize)]
struct EnvelopeError {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default, rename = "innerError", alias = "innererror")]
    inner_error: Option<InnerError>,
}

#[derive(Debug, serde::Deserialize)]
struct InnerError {
    #[serde(default, rename = "request-id")]
    request_id: Option<String>,
    #[serde(default)]
    date: Option<String>,
}

impl GraphError {
    /// The error for a non-2xx answer: from Graph's envelope when the body is one, else
    /// status, `HttpStatus{status}` and the start of the body. `request_id_header` and
    /// `retry_after` come from the response headers (or a batch item's headers).
    pub fn from_response(
        status: u16,
        body: &[u8],
        request_id_header: Option<&str>,
        retry_after: Option<Duration>,
    ) -> GraphError {
        match serde_json::from_slice::<Envelope>(body) {
            Ok(Envelope { error }) => {
                let inner = error.inner_error;
                GraphError::Api {
                    status,
                    code: error.code,
                    message: error.message,
                    request_id: inner
                        .as_ref()
                        .and_then(|i| i.request_id.clone())
                        .or_else(|| request_id_header.map(str::to_string)),
                    date: inner.and_then(|i| i.date),
                    retry_after,
                }
            }
            Err(_) => GraphError::Api {
                status,
                code: if status == 404 {
                    UNKNOWN_ENDPOINT.to_string()
                } else {
                    format!("HttpStatus{status}")
                },
                message: body_start(body, 300),
                request_id: request_id_header.map(str::to_string),
                date: None,
                retry_after,
            },
        }
    }

    /// A 404 that says the Graph URL is wrong rather than that an object is gone (code
    /// [`UNKNOWN_ENDPOINT`]).
    pub fn is_unknown_endpoint(&self) -> bool {
        matches!(self, GraphError::Api { status: 404, code, .. } if code == UNKNOWN_ENDPOINT)
    }

    /// The client stopped a listing because Graph sent a next page link it had already
    /// followed (a loop), or more pages than the client's cap
    /// ([`super::GraphClient::with_max_pages`]). The pages before it were good.
    pub fn is_listing_stopped(&self) -> bool {
        matches!(self, GraphError::Malformed(m) if m.ends_with(LISTING_STOPPED))
    }

    /// This error, if it is a 404, as [`UNKNOWN_ENDPOINT`]: for a request to a collection
    /// that exists in every tenant, any 404 means the URL is wrong. Graph's code and message
    /// are kept in the message.
    pub(crate) fn collection_not_found(self) -> GraphError {
        match self {
            GraphError::Api {
                status: 404,
                code,
                message,
                request_id,
                date,
                retry_after,
            } if code != UNKNOWN_ENDPOINT => GraphError::Api {
                status: 404,
                code: UNKNOWN_ENDPOINT.to_string(),
                message: format!("{code}: {message}"),
                request_id,
                date,
                retry_after,
            },
            e => e,
        }
    }

    /// The server asked to wait this long (429/503 `Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GraphError::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The first `max` characters of a body, for messages (lossy UTF-8, char-boundary safe).
pub(crate) fn body_start(body: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    if s.is_empty() {
        return "(empty body)".into();
    }
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_gives_code_message_request_id_and_date() {
        let body = br#"{"error":{"code":"Request_BadRequest","message":"Another object with the same value for property userPrincipalName already exists.","details":[{"code":"ObjectConflict","message":"x","target":"userPrincipalName"}],"innerError":{"date":"2024-08-20T04:25:57","request-id":"rid-1","client-request-id":"crid"}}}"#;
        let e = GraphError::from_response(400, body, Some("header-rid"), None);
        assert_eq!(
            e,
            GraphError::Api {
                status: 400,
                code: "Request_BadRequest".into(),
                message: "Another object with the same value for property userPrincipalName already exists.".into(),
                request_id: Some("rid-1".into()),
                date: Some("2024-08-20T04:25:57".into()),
                retry_after: None,
            }
        );
        assert_eq!(e.code(), "Request_BadRequest");
        assert_eq!(e.request_id(), Some("rid-1"));
    }

    #[test]
    fn envelope_without_inner_error_takes_the_header_request_id() {
        let body = br#"{"error":{"code":"TooManyRequests","message":"Too many requests."}}"#;
        let e = GraphError::from_response(429, body, Some("hdr"), Some(Duration::from_secs(7)));
        assert_eq!(e.request_id(), Some("hdr"));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(e.status(), Some(429));
    }

    #[test]
    fn non_envelope_body_keeps_status_and_body_start() {
        let e = GraphError::from_response(502, b"<html>Bad Gateway</html>", Some("r"), None);
        assert_eq!(e.code(), "HttpStatus502");
        assert!(
            matches!(&e, GraphError::Api { message, .. } if message == "<html>Bad Gateway</html>")
        );
        let long = "x".repeat(1000);
        let e = GraphError::from_response(500, long.as_bytes(), None, None);
        assert!(matches!(&e, GraphError::Api { message, .. } if message.len() == 303));
        let e = GraphError::from_response(503, b"", None, None);
        assert!(
            matches!(&e, GraphError::Api { message, code, .. } if message == "(empty body)" && code == "HttpStatus503")
        );
        // JSON but not an envelope
        let e = GraphError::from_response(400, br#"{"error":"invalid_request"}"#, None, None);
        assert_eq!(e.code(), "HttpStatus400");
    }

    #[test]
    fn a_404_without_graphs_envelope_is_an_unknown_endpoint() {
        let e = GraphError::from_response(404, b"Not Found", Some("r"), None);
        assert_eq!(e.code(), UNKNOWN_ENDPOINT);
        assert!(e.is_unknown_endpoint());
        assert!(matches!(&e, GraphError::Api { message, .. } if message == "Not Found"));
        // Graph's own 404 (an object that is gone) stays what it is...
        let body = br#"{"error":{"code":"Request_ResourceNotFound","message":"Resource 'x' does not exist or one of its queried reference-property objects are not present."}}"#;
        let e = GraphError::from_response(404, body, None, None);
        assert_eq!(e.code(), "Request_ResourceNotFound");
        assert!(!e.is_unknown_endpoint());
        // ...except on a collection that always exists.
        let e = e.collection_not_found();
        assert!(e.is_unknown_endpoint());
        assert!(
            matches!(&e, GraphError::Api { message, .. } if message.starts_with("Request_ResourceNotFound: Resource 'x'"))
        );
        let other = GraphError::from_response(400, body, None, None);
        assert_eq!(other.clone().collection_not_found(), other);
    }
}
