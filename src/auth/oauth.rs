//! Glue between the `oauth2` crate and Microsoft's identity platform: Microsoft's extra token
//! and error fields, an HTTP closure over our reqwest 0.13 client, and error mapping.
use std::sync::{Arc, Mutex};

use oauth2::basic::{
    BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    EndpointNotSet, EndpointSet, ErrorResponse, ExtraDeviceAuthorizationFields, ExtraTokenFields,
    HttpRequest, HttpResponse, RequestTokenError, StandardRevocableToken, StandardTokenResponse,
};
use serde::{Deserialize, Serialize};

use super::AuthError;

/// Microsoft's token error body: the OAuth fields plus `error_codes` (AADSTS numbers),
/// `trace_id`, `correlation_id` and `timestamp`. Used as the oauth2 client's error type so
/// nothing Microsoft sends for support is thrown away.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsErrorResponse {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_codes: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

impl std::fmt::Display for MsErrorResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.error)?;
        if let Some(d) = &self.error_description {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}
impl ErrorResponse for MsErrorResponse {}

impl MsErrorResponse {
    /// The AuthError a token-endpoint error body stands for.
    pub fn into_auth_error(self) -> AuthError {
        let has = |c: u32| self.error_codes.contains(&c);
        match self.error.as_str() {
            "authorization_declined" | "access_denied" => AuthError::Declined,
            "expired_token" | "code_expired" => AuthError::Expired,
            "bad_verification_code" => AuthError::BadVerificationCode,
            _ if has(70019) => AuthError::Expired,
            _ if has(70018) => AuthError::BadVerificationCode,
            _ => AuthError::OAuth {
                description: self
                    .error_description
                    .as_deref()
                    .map(first_line)
                    .unwrap_or_default(),
                error: self.error,
                codes: self.error_codes,
                trace_id: self.trace_id,
            },
        }
    }
}

/// Microsoft's description carries "Trace ID: ..., Correlation ID: ..., Timestamp: ..." on
/// further lines; the first line is the message (`AADSTS70000: ...`).
fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// Microsoft's extra token response fields.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct MsTokenFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext_expires_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_info: Option<String>,
}
impl std::fmt::Debug for MsTokenFields {
    // The id_token holds personal data: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsTokenFields")
            .field("id_token", &self.id_token.as_ref().map(|_| "[redacted]"))
            .field("ext_expires_in", &self.ext_expires_in)
            .finish_non_exhaustive()
    }
}
impl ExtraTokenFields for MsTokenFields {}

/// Microsoft's device-code response carries `message` (the sign-in instruction to show).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MsDeviceFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
impl ExtraDeviceAuthorizationFields for MsDeviceFields {}

pub type MsTokenResponse = StandardTokenResponse<MsTokenFields, BasicTokenType>;

/// The oauth2 client for Microsoft's token endpoint (and, when `D = EndpointSet`, the
/// device authorization endpoint).
pub type MsClient<D> = oauth2::Client<
    MsErrorResponse,
    MsTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    D,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// What the last answer of the identity platform was, for error reports. Bodies of 2xx answers
/// are never kept (they hold tokens).
#[derive(Debug, Clone, Default)]
pub struct Captured {
    pub status: u16,
    pub location: Option<String>,
    pub error_body: Vec<u8>,
}

pub type Capture = Arc<Mutex<Option<Captured>>>;

/// One HTTP exchange for oauth2, over our reqwest client (which never follows redirects).
pub async fn send(
    http: reqwest::Client,
    capture: Capture,
    req: HttpRequest,
) -> Result<HttpResponse, reqwest::Error> {
    let req = reqwest::Request::try_from(req)?;
    tracing::debug!(url = %req.url(), "identity platform request");
    let resp = http.execute(req).await.inspect_err(|e| {
        // oauth2 keeps polling through transport errors (with backoff): say why it waits.
        tracing::warn!(error = %crate::graph::client::error_chain(e), "identity platform unreachable");
    })?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await?;
    tracing::debug!(status = status.as_u16(), "identity platform answer");
    let captured = Captured {
        status: status.as_u16(),
        location: headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        error_body: if status.is_success() {
            Vec::new()
        } else {
            body.to_vec()
        },
    };
    if let Ok(mut c) = capture.lock() {
        *c = Some(captured);
    }
    let mut out = http::Response::new(body.to_vec());
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

pub fn captured(capture: &Capture) -> Option<Captured> {
    capture.lock().ok().and_then(|c| c.clone())
}

/// Map an oauth2 failure to an AuthError. `server` turns the crate's parsed error body into
/// ours. Never puts a 2xx body (tokens) into a message.
pub fn map_error<T: ErrorResponse + 'static>(
    err: RequestTokenError<reqwest::Error, T>,
    capture: &Capture,
    server: impl FnOnce(T) -> AuthError,
) -> AuthError {
    let last = captured(capture);
    match err {
        RequestTokenError::ServerResponse(e) => server(e),
        RequestTokenError::Request(e) => {
            AuthError::Transport(crate::graph::client::error_chain(&e.without_url()))
        }
        RequestTokenError::Parse(e, _body) => match last {
            Some(c) if !(200..300).contains(&c.status) => non_oauth_answer(&c),
            _ => AuthError::Malformed(format!(
                "token response has a missing or invalid field at `{}`",
                e.path()
            )),
        },
        RequestTokenError::Other(msg) => match last {
            Some(c) if !(200..300).contains(&c.status) => non_oauth_answer(&c),
            _ => AuthError::Malformed(msg),
        },
    }
}

/// A non-2xx answer that is not an OAuth error body (a redirect, an HTML error page, ...).
pub fn non_oauth_answer(c: &Captured) -> AuthError {
    if (300..400).contains(&c.status) {
        return AuthError::Malformed(format!(
            "HTTP {} redirect to {}: redirects are never followed",
            c.status,
            c.location.as_deref().unwrap_or("(no location)")
        ));
    }
    if let Ok(e) = serde_json::from_slice::<MsErrorResponse>(&c.error_body) {
        return e.into_auth_error();
    }
    AuthError::Malformed(format!(
        "HTTP {}: {}",
        c.status,
        body_start(&c.error_body, 200)
    ))
}

/// The first `max` characters of a body, for messages.
pub fn body_start(body: &[u8], max: usize) -> String {
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
    fn microsoft_pending_body_parses_with_codes_and_trace() {
        let body = r#"{"error":"authorization_pending","error_description":"AADSTS70016: OAuth 2.0 device flow error. Authorization is pending. Continue polling.\r\nTrace ID: 5a0f\r\nCorrelation ID: c1\r\nTimestamp: 2020-03-26 22:54:14Z","error_codes":[70016],"timestamp":"2020-03-26 22:54:14Z","trace_id":"5a0f","correlation_id":"c1","error_uri":"https://login.microsoftonline.com/error?code=70016"}"#;
        let e: MsErrorResponse = serde_json::from_str(body).unwrap();
        assert_eq!(e.error, "authorization_pending");
        assert_eq!(e.error_codes, vec![70016]);
        assert_eq!(e.trace_id.as_deref(), Some("5a0f"));
        match e.into_auth_error() {
            AuthError::OAuth {
                error,
                description,
                codes,
                trace_id,
            } => {
                assert_eq!(error, "authorization_pending");
                assert_eq!(
                    description,
                    "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending. Continue polling."
                );
                assert_eq!(codes, vec![70016]);
                assert_eq!(trace_id.as_deref(), Some("5a0f"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn device_flow_terminal_errors_map_to_their_variants() {
        let e = |s: &str| {
            serde_json::from_str::<MsErrorResponse>(s)
                .unwrap()
                .into_auth_error()
        };
        assert_eq!(
            e(r#"{"error":"authorization_declined"}"#),
            AuthError::Declined
        );
        assert_eq!(e(r#"{"error":"access_denied"}"#), AuthError::Declined);
        assert_eq!(
            e(r#"{"error":"expired_token","error_codes":[70019]}"#),
            AuthError::Expired
        );
        assert_eq!(
            e(r#"{"error":"invalid_grant","error_codes":[70019]}"#),
            AuthError::Expired
        );
        assert_eq!(
            e(r#"{"error":"bad_verification_code"}"#),
            AuthError::BadVerificationCode
        );
        assert!(matches!(
            e(r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#),
            AuthError::OAuth { ref codes, .. } if codes == &[7000215]
        ));
    }

    #[test]
    fn token_response_accepts_microsoft_extra_fields() {
        let body = r#"{"token_type":"Bearer","scope":"https://graph.microsoft.com/User.ReadWrite.All openid profile","expires_in":3599,"ext_expires_in":3599,"access_token":"AT","refresh_token":"RT","id_token":"a.b.c","client_info":"eyJ1aWQiOiIxIn0"}"#;
        let t: MsTokenResponse = serde_json::from_str(body).unwrap();
        use oauth2::TokenResponse;
        assert_eq!(t.access_token().secret(), "AT");
        assert_eq!(t.extra_fields().id_token.as_deref(), Some("a.b.c"));
        assert_eq!(t.extra_fields().ext_expires_in, Some(3599));
        let dbg = format!("{t:?}");
        assert!(!dbg.contains("a.b.c") && !dbg.contains("\"AT\""), "{dbg}");
    }

    #[test]
    fn non_oauth_answers_keep_status_and_body_start() {
        let c = Captured {
            status: 302,
            location: Some("https://evil.example/".into()),
            error_body: vec![],
        };
        assert!(
            matches!(non_oauth_answer(&c), AuthError::Malformed(m) if m.contains("redirect") && m.contains("evil.example"))
        );
        let c = Captured {
            status: 502,
            location: None,
            error_body: b"<html>Bad gateway</html>".to_vec(),
        };
        assert!(
            matches!(non_oauth_answer(&c), AuthError::Malformed(m) if m.contains("502") && m.contains("Bad gateway"))
        );
        assert_eq!(body_start("héllo wörld".as_bytes(), 4), "héll...");
    }
}
