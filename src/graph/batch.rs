//! JSON batching (graph-notes §6): `POST {base}/$batch` with up to 20 requests, per-item
//! status, headers and body; answers may come back in any order.
//!
//! [`send`] is one round trip (the apply engine schedules retries itself, to adapt its
//! concurrency to the throttling signals); [`execute`] retries on its own: a per-item 429 is
//! sent again alone after its `Retry-After`, a 503/504 (of the batch or of an item) after a
//! jittered backoff.
use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::client::{parse_retry_after, GraphClient, RetryPolicy};
use super::error::GraphError;

/// Graph's limit of requests in one batch.
pub const MAX_BATCH: usize = 20;

/// One request of a batch. `url` is relative to the version root (`/users/{id}`).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRequest {
    pub id: String,
    pub method: Method,
    pub url: String,
    pub body: Option<Value>,
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

#[derive(Deserialize)]
struct WireResponse {
    id: String,
    status: u16,
    #[serde(default)]
    headers: HashMap<String, Value>,
    #[serde(default)]
    body: Value,
}

/// The JSON body of a `$batch` request.
pub fn encode(requests: &[BatchRequest]) -> Result<Bytes, GraphError> {
    if requests.len() > MAX_BATCH {
        return Err(GraphError::Malformed(format!(
            "a batch holds at most {MAX_BATCH} requests, not {}",
            requests.len()
        )));
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
pub fn decode(
    requests: &[BatchRequest],
    body: &[u8],
    outer_request_id: Option<&str>,
) -> Result<Vec<ItemResult>, GraphError> {
    let parsed: WireResponses = serde_json::from_slice(body)
        .map_err(|e| GraphError::Malformed(format!("batch answer: {e}")))?;
    let mut by_id: HashMap<String, WireResponse> = parsed
        .responses
        .into_iter()
        .map(|r| (r.id.to_ascii_lowercase(), r))
        .collect();
    Ok(requests
        .iter()
        .map(|req| {
            let Some(r) = by_id.remove(&req.id.to_ascii_lowercase()) else {
                return Err(GraphError::Malformed(format!(
                    "the batch answer has no response for item {}",
                    req.id
                )));
            };
            let headers: HashMap<String, String> = r
                .headers
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k.to_ascii_lowercase(), v)
                })
                .collect();
            let request_id = headers
                .get("request-id")
                .cloned()
                .or_else(|| outer_request_id.map(str::to_string));
            if (200..300).contains(&r.status) {
                Ok(BatchItem {
                    status: r.status,
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
                    r.status,
                    &body,
                    request_id.as_deref(),
                    ra,
                ))
            }
        })
        .collect())
}

/// One round trip: POST `{base}/$batch` (through [`GraphClient::request`]: token, 401 refresh,
/// and its retry of a 429/503 batch), per-item results in the order of `requests`.
pub async fn send(
    graph: &GraphClient,
    requests: &[BatchRequest],
) -> Result<Vec<ItemResult>, GraphError> {
    let body = encode(requests)?;
    let resp = graph.request(Method::POST, "/$batch", Some(body)).await?;
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
}
