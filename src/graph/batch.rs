//! JSON batching (graph-notes §6): `POST {base}/$batch` with up to 20 requests, per-item
//! status, headers and body; answers may come back in any order.
//!
//! [`send`] is one round trip (the apply engine schedules retries itself, to adapt its
//! concurrency to the throttling signals); [`execute`] retries on its own: a per-item 429 is
//! sent again alone after its `Retry-After`, a 503/504 (of the batch or of an item) after a
//! jittered backoff.
//!
//! An answer that does not match its requests (an item answered twice, not at all, or under
//! an id never sent) never panics and never drops an item silently: each such item gets a
//! [`GraphError::Malformed`] error of its own (its outcome is unknown), the other items their
//! answers.
use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::client::{parse_retry_after, GraphClient, RetryPolicy};
use super::error::GraphError;
use super::paths;

/// Graph's limit of requests in one batch.
pub const MAX_BATCH: usize = 20;

/// One request of a batch. `url` is relative to the version root (`/users/{id}`); build it
/// with [`super::requests`] (or [`super::paths`]), which percent-encode ids and UPNs.
/// `Debug` shows every `password` value of the body as its length only (`passwordProfile`
/// of a create or a password reset), so logging a request never logs a password.
#[derive(Clone, PartialEq)]
pub struct BatchRequest {
    pub id: String,
    pub method: Method,
    pub url: String,
    pub body: Option<Value>,
}

/// `v` with every string under a `password` key replaced by `(N chars)`.
fn redacted(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) if k.eq_ignore_ascii_case("password") => {
                            Value::String(format!("({} chars)", s.chars().count()))
                        }
                        other => redacted(other),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redacted).collect()),
        other => other.clone(),
    }
}

impl std::fmt::Debug for BatchRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchRequest")
            .field("id", &self.id)
            .field("method", &self.method)
            .field("url", &self.url)
            .field("body", &self.body.as_ref().map(redacted))
            .finish()
    }
}

impl BatchRequest {
    pub fn new(id: impl Into<String>, method: Method, url: impl Into<String>) -> Self {
        BatchRequest {
            id: id.into(),
            method,
            url: url.into(),
            body: None,
        }
    }
    pub fn with_body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

/// A successful (2xx) item.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchItem {
    pub status: u16,
    pub request_id: Option<String>,
    pub headers: HashMap<String, String>,
    /// `Value::Null` when the item has no body (204).
    pub body: Value,
}

impl BatchItem {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, GraphError> {
        serde_json::from_value(self.body.clone())
            .map_err(|e| GraphError::Malformed(format!("batch item body: {e}")))
    }
}

pub type ItemResult = Result<BatchItem, GraphError>;

#[derive(Serialize)]
struct WireRequest<'a> {
    id: &'a str,
    method: &'a str,
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<HashMap<&'static str, &'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a Value>,
}

#[derive(Deserialize)]
struct WireResponses {
    responses: Vec<WireResponse>,
}

/// One answer, read leniently: what is missing or mistyped makes that item's error, not the
/// whole batch's.
#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    id: Value,
    #[serde(default)]
    status: Value,
    #[serde(default)]
    headers: Value,
    #[serde(default)]
    body: Value,
}

impl WireResponse {
    /// The id as sent (a number is read as its digits); `None` when absent or not a scalar.
    fn id(&self) -> Option<String> {
        match &self.id {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
    fn status(&self) -> Option<u16> {
        let n = match &self.status {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }?;
        (100..=599).contains(&n).then_some(n as u16)
    }
}

/// The JSON body of a `$batch` request.
pub fn encode(requests: &[BatchRequest]) -> Result<Bytes, GraphError> {
    if requests.len() > MAX_BATCH {
        return Err(GraphError::Malformed(format!(
            "a batch holds at most {MAX_BATCH} requests, not {}",
            requests.len()
        )));
    }
    // Graph refuses the whole batch for a duplicate id (case-insensitive); answers could not
    // be matched either.
    let mut ids = std::collections::HashSet::new();
    for r in requests {
        if r.id.is_empty() || !ids.insert(r.id.to_ascii_lowercase()) {
            return Err(GraphError::Malformed(format!(
                "internal error: batch item id `{}` is empty or used twice",
                r.id
            )));
        }
    }
    let wire: Vec<WireRequest<'_>> = requests
        .iter()
        .map(|r| WireRequest {
            id: &r.id,
            method: r.method.as_str(),
            url: &r.url,
            headers: r
                .body
                .as_ref()
                .map(|_| HashMap::from([("Content-Type", "application/json")])),
            body: r.body.as_ref(),
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "requests": wire }))
        .map(Bytes::from)
        .map_err(|e| GraphError::Malformed(format!("encoding a batch: {e}")))
}

/// Per-item results in the order of `requests`, from a `$batch` answer body.
///
/// The whole answer is an error only when it is not `{"responses": [...]}`. An item answered
/// more than once, not at all, or with no valid status is an item error
/// ([`GraphError::Malformed`]: its outcome is unknown); answers under ids never sent are
/// named in those errors and logged.
pub fn decode(
    requests: &[BatchRequest],
    body: &[u8],
    outer_request_id: Option<&str>,
) -> Result<Vec<ItemResult>, GraphError> {
    let parsed: WireResponses = serde_json::from_slice(body)
        .map_err(|e| GraphError::Malformed(format!("batch answer: {e}")))?;
    let index: HashMap<String, usize> = requests
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.to_ascii_lowercase(), i))
        .collect();
    let mut answers: Vec<Option<WireResponse>> = requests.iter().map(|_| None).collect();
    let mut answered = vec![0usize; requests.len()];
    let mut strays: Vec<String> = Vec::new();
    for r in parsed.responses {
        match r
            .id()
            .and_then(|id| index.get(&id.to_ascii_lowercase()).copied())
        {
            Some(i) => {
                answered[i] += 1;
                if answers[i].is_none() {
                    answers[i] = Some(r);
                }
            }
            None => strays.push(r.id().unwrap_or_else(|| "(no id)".into())),
        }
    }
    let strays_note = if strays.is_empty() {
        String::new()
    } else {
        strays.truncate(5);
        format!(
            "; it holds answers to ids never sent: {}",
            strays.join(", ")
        )
    };
    if !strays.is_empty() {
        tracing::warn!(?strays, "the $batch answer holds answers to ids never sent");
    }
    Ok(requests
        .iter()
        .zip(answers)
        .zip(answered)
        .map(|((req, answer), count)| {
            let r = match answer {
                None => {
                    return Err(GraphError::Malformed(format!(
                        "the batch answer has no response for item {}{strays_note}: its outcome \
                         is unknown",
                        req.id
                    )))
                }
                Some(_) if count > 1 => {
                    return Err(GraphError::Malformed(format!(
                        "the batch answer has {count} responses for item {}: its outcome is \
                         unknown",
                        req.id
                    )))
                }
                Some(r) => r,
            };
            let Some(status) = r.status() else {
                return Err(GraphError::Malformed(format!(
                    "the batch answer's response for item {} has no valid status ({}): its \
                     outcome is unknown",
                    req.id, r.status
                )));
            };
            let headers: HashMap<String, String> = match r.headers {
                Value::Object(m) => m
                    .into_iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        (k.to_ascii_lowercase(), v)
                    })
                    .collect(),
                _ => HashMap::new(),
            };
            let request_id = headers
                .get("request-id")
                .cloned()
                .or_else(|| outer_request_id.map(str::to_string));
            if (200..300).contains(&status) {
                Ok(BatchItem {
                    status,
                    request_id,
                    headers,
                    body: r.body,
                })
            } else {
                let body = match &r.body {
                    Value::Null => Vec::new(),
                    v => serde_json::to_vec(v).unwrap_or_default(),
                };
                let ra = headers
                    .get("retry-after")
                    .and_then(|v| parse_retry_after(v));
                Err(GraphError::from_response(
                    status,
                    &body,
                    request_id.as_deref(),
                    ra,
                ))
            }
        })
        .collect())
}

/// One round trip: POST `{base}/$batch` (through [`GraphClient::request_within`] with the
/// client's batch timeout: token, 401 refresh, and its retry of a 429/503 batch), per-item
/// results in the order of `requests`. A transport error (deadline passed, reset) leaves the
/// outcome of every item unknown. No requests: no round trip.
pub async fn send(
    graph: &GraphClient,
    requests: &[BatchRequest],
) -> Result<Vec<ItemResult>, GraphError> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let body = encode(requests)?;
    let resp = graph
        .request_within(
            Method::POST,
            paths::BATCH,
            Some(body),
            graph.batch_timeout(),
        )
        .await?;
    let rid = resp
        .headers
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    decode(requests, &resp.body, rid.as_deref())
}

/// Whether an item or batch failure is "come back later".
pub fn is_retryable(e: &GraphError) -> bool {
    matches!(e.status(), Some(429 | 503 | 504))
}

/// [`send`] with retries: items answered 429 are sent again (only them) after their
/// `Retry-After`; 503/504 items, or the whole batch failing with 503/504, after a backoff;
/// up to `retry.max_attempts` rounds.
pub async fn execute(
    graph: &GraphClient,
    requests: &[BatchRequest],
    retry: &RetryPolicy,
) -> Result<Vec<ItemResult>, GraphError> {
    let mut results: Vec<Option<ItemResult>> = vec![None; requests.len()];
    let mut pending: Vec<usize> = (0..requests.len()).collect();
    let mut attempt = 0u32;
    while !pending.is_empty() {
        attempt += 1;
        let round: Vec<BatchRequest> = pending.iter().map(|&i| requests[i].clone()).collect();
        let answers = match send(graph, &round).await {
            Ok(a) => a,
            Err(e) if is_retryable(&e) && attempt < retry.max_attempts => {
                let wait = e.retry_after().unwrap_or_else(|| retry.backoff(attempt));
                tokio::time::sleep(wait.min(retry.max_delay)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut again = Vec::new();
        let mut wait = Duration::ZERO;
        for (&i, answer) in pending.iter().zip(answers) {
            match &answer {
                Err(e) if is_retryable(e) && attempt < retry.max_attempts => {
                    let w = match e.status() {
                        Some(429) => e.retry_after().unwrap_or_else(|| retry.backoff(attempt)),
                        _ => e.retry_after().unwrap_or_else(|| retry.backoff(attempt)),
                    };
                    wait = wait.max(w.min(retry.max_delay));
                    again.push(i);
                }
                _ => results[i] = Some(answer),
            }
        }
        pending = again;
        if !pending.is_empty() {
            tokio::time::sleep(wait).await;
        }
    }
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(GraphError::Malformed("no answer".into()))))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_adds_content_type_only_with_a_body() {
        let reqs = vec![
            BatchRequest::new("1", Method::PATCH, "/users/a")
                .with_body(serde_json::json!({"accountEnabled": false})),
            BatchRequest::new("2", Method::GET, "/users/b"),
        ];
        let v: Value = serde_json::from_slice(&encode(&reqs).unwrap()).unwrap();
        let r = &v["requests"];
        assert_eq!(r[0]["method"], "PATCH");
        assert_eq!(r[0]["headers"]["Content-Type"], "application/json");
        assert_eq!(r[0]["body"]["accountEnabled"], false);
        assert!(r[1].get("headers").is_none() && r[1].get("body").is_none());
        let too_many: Vec<_> = (0..21)
            .map(|i| BatchRequest::new(i.to_string(), Method::GET, "/users"))
            .collect();
        assert!(encode(&too_many).is_err());
    }

    #[test]
    fn decode_matches_out_of_order_answers_and_types_failures() {
        let reqs = vec![
            BatchRequest::new("1", Method::POST, "/users"),
            BatchRequest::new("2", Method::PATCH, "/users/x"),
            BatchRequest::new("3", Method::PATCH, "/users/y"),
        ];
        let body = serde_json::json!({"responses": [
            {"id": "3", "status": 429, "headers": {"Retry-After": "7"},
             "body": {"error": {"code": "TooManyRequests", "message": "Too many requests."}}},
            {"id": "2", "status": 204, "headers": {"request-id": "r2"}},
            {"id": "1", "status": 201, "headers": {},
             "body": {"id": "new", "userPrincipalName": "a@x.com"}},
        ]});
        let out = decode(&reqs, &serde_json::to_vec(&body).unwrap(), Some("outer")).unwrap();
        let one = out[0].as_ref().unwrap();
        assert_eq!(one.status, 201);
        assert_eq!(one.request_id.as_deref(), Some("outer"));
        assert_eq!(one.json::<crate::graph::User>().unwrap().id, "new");
        assert_eq!(out[1].as_ref().unwrap().request_id.as_deref(), Some("r2"));
        let e = out[2].as_ref().unwrap_err();
        assert_eq!(e.status(), Some(429));
        assert_eq!(e.code(), "TooManyRequests");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        // A missing answer is an error for that item only.
        let partial = serde_json::json!({"responses": [{"id": "1", "status": 204}]});
        let out = decode(&reqs, &serde_json::to_vec(&partial).unwrap(), None).unwrap();
        assert!(out[0].is_ok() && out[1].is_err() && out[2].is_err());
    }

    fn malformed(r: &ItemResult) -> &str {
        match r {
            Err(GraphError::Malformed(m)) => m,
            other => panic!("expected a Malformed item error, got {other:?}"),
        }
    }

    #[test]
    fn answers_that_do_not_match_the_requests_are_item_errors_never_dropped() {
        let reqs: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|id| BatchRequest::new(*id, Method::PATCH, "/users/x"))
            .collect();
        let body = serde_json::json!({"responses": [
            // a: twice (the outcome is ambiguous even when both agree)
            {"id": "a", "status": 204}, {"id": "A", "status": 204},
            // b: once, fine; c: never; d: no usable status
            {"id": "b", "status": 204},
            {"id": "d", "status": "soon"},
            // ids never sent, and no id at all
            {"id": "zz", "status": 204}, {"status": 204}, {"id": 7, "status": 204},
        ]});
        let out = decode(&reqs, &serde_json::to_vec(&body).unwrap(), None).unwrap();
        assert_eq!(out.len(), 4, "one result per request");
        assert!(malformed(&out[0]).contains("2 responses for item a"));
        assert_eq!(out[1].as_ref().unwrap().status, 204);
        let c = malformed(&out[2]);
        assert!(c.contains("no response for item c"), "{c}");
        assert!(c.contains("zz, (no id), 7"), "strays named: {c}");
        assert!(malformed(&out[3]).contains("no valid status"));
        // More answers than requests, fewer, none: never a panic.
        let none = serde_json::json!({"responses": []});
        let out = decode(&reqs, &serde_json::to_vec(&none).unwrap(), None).unwrap();
        assert!(out
            .iter()
            .all(|r| matches!(r, Err(GraphError::Malformed(_)))));
        for bad in [&b"{}"[..], b"[]", b"{\"responses\": 3}", b"", b"<html>"] {
            assert!(matches!(
                decode(&reqs, bad, None),
                Err(GraphError::Malformed(_))
            ));
        }
        // Numeric ids and headers that are not an object are read as well as can be.
        let reqs = vec![BatchRequest::new("1", Method::GET, "/users/x")];
        let odd = serde_json::json!({"responses": [{"id": 1, "status": 200, "headers": null, "body": {"id": "x"}}]});
        let out = decode(&reqs, &serde_json::to_vec(&odd).unwrap(), None).unwrap();
        assert_eq!(out[0].as_ref().unwrap().body["id"], "x");
    }

    #[test]
    fn debug_never_shows_a_password() {
        let r =
            crate::graph::requests::set_password("1", "ann@contoso.com", "Hunter2-secret!", true);
        let d = format!("{r:?}");
        assert!(!d.contains("Hunter2-secret!"), "{d}");
        assert!(
            d.contains("(15 chars)") && d.contains("/users/ann@contoso.com"),
            "{d}"
        );
        // The body sent is untouched.
        assert_eq!(
            r.body.unwrap()["passwordProfile"]["password"],
            "Hunter2-secret!"
        );
    }

    #[test]
    fn encode_refuses_duplicate_or_empty_ids() {
        let dup = vec![
            BatchRequest::new("x", Method::GET, "/users/a"),
            BatchRequest::new("X", Method::GET, "/users/b"),
        ];
        assert!(matches!(encode(&dup), Err(GraphError::Malformed(m)) if m.contains("`X`")));
        let empty = vec![BatchRequest::new("", Method::GET, "/users/a")];
        assert!(encode(&empty).is_err());
        assert!(encode(&[]).is_ok());
    }
}
