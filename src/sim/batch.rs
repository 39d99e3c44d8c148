//! `POST /v1.0/$batch` (graph-notes §6): up to 20 requests, each routed through the same
//! dispatcher as a direct request (budgets, random errors and all), `dependsOn` honoured, and the
//! responses returned in REVERSE request order so that clients must match them by `id`.
//!
//! Whole-batch refusals are `400` Graph errors with code `BadRequest`. The notes give no wire text
//! for them (UNVERIFIED); the messages chosen here are:
//! - body not JSON / no `requests` array / an item without `id`, `method` or `url`:
//!   `Invalid batch payload format.`
//! - more than 20 items: `The number of requests in the batch exceeds the maximum of 20.`
//! - duplicate ids (case-insensitive): `Batch request contains duplicate request id '{id}'.`
//! - `dependsOn` naming an unknown id or forming a cycle:
//!   `Request '{id}' depends on an unknown or circular request id '{dep}'.`
//!
//! Per-item answers (inside the `200` envelope):
//! - a body without a `Content-Type` header: `400 BadRequest`
//!   `A Content-Type header is required for a request with a body.` (UNVERIFIED text);
//! - a dependency that did not succeed (status not 2xx): `424` with code `FailedDependency`,
//!   message `The request depends on request '{dep}', which failed.` (UNVERIFIED text).

// A refusal IS the answer to send; carrying the Response in Err keeps each check a one-liner.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::graph::{execute, is_write, Call, Caller, DropConnection, GCtx};
use super::state::State;

pub const MAX_REQUESTS: usize = 20;

struct Item {
    id: String,
    method: Method,
    url: String,
    headers: HeaderMap,
    has_content_type: bool,
    body: Option<Value>,
    depends_on: Vec<String>,
}

fn payload_error(g: &GCtx) -> Response {
    g.bad_request("BadRequest", "Invalid batch payload format.")
}

fn parse_items(g: &GCtx, body: &[u8]) -> Result<Vec<Item>, Response> {
    let v: Value = serde_json::from_slice(body).map_err(|_| payload_error(g))?;
    let reqs = v
        .get("requests")
        .and_then(Value::as_array)
        .ok_or_else(|| payload_error(g))?;
    if reqs.len() > MAX_REQUESTS {
        return Err(g.bad_request(
            "BadRequest",
            "The number of requests in the batch exceeds the maximum of 20.",
        ));
    }
    let mut items = Vec::with_capacity(reqs.len());
    for r in reqs {
        let id = match r.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(payload_error(g)),
        };
        let method = r
            .get("method")
            .and_then(Value::as_str)
            .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
            .ok_or_else(|| payload_error(g))?;
        let url = r
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| payload_error(g))?
            .to_owned();
        let mut headers = HeaderMap::new();
        let mut has_content_type = false;
        if let Some(h) = r.get("headers").and_then(Value::as_object) {
            for (k, v) in h {
                let Some(v) = v.as_str() else { continue };
                if k.eq_ignore_ascii_case("content-type") {
                    has_content_type = true;
                }
                if let (Ok(n), Ok(val)) = (
                    HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(v),
                ) {
                    headers.insert(n, val);
                }
            }
        }
        let depends_on = match r.get("dependsOn") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| match x {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| payload_error(g))?,
            Some(_) => return Err(payload_error(g)),
        };
        items.push(Item {
            id,
            method,
            url,
            headers,
            has_content_type,
            body: r.get("body").filter(|b| !b.is_null()).cloned(),
            depends_on,
        });
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, it) in items.iter().enumerate() {
        if seen.insert(it.id.to_lowercase(), i).is_some() {
            return Err(g.bad_request(
                "BadRequest",
                &format!("Batch request contains duplicate request id '{}'.", it.id),
            ));
        }
    }
    // Unknown dependencies and cycles are refused up front.
    for it in &items {
        for d in &it.depends_on {
            if !seen.contains_key(&d.to_lowercase()) || d.eq_ignore_ascii_case(&it.id) {
                return Err(dep_error(g, &it.id, d));
            }
        }
    }
    if let Some((a, b)) = find_cycle(&items, &seen) {
        return Err(dep_error(g, &a, &b));
    }
    Ok(items)
}

fn dep_error(g: &GCtx, id: &str, dep: &str) -> Response {
    g.bad_request(
        "BadRequest",
        &format!("Request '{id}' depends on an unknown or circular request id '{dep}'."),
    )
}

fn find_cycle(items: &[Item], index: &HashMap<String, usize>) -> Option<(String, String)> {
    // 0 = unvisited, 1 = on the stack, 2 = done
    fn visit(
        i: usize,
        items: &[Item],
        index: &HashMap<String, usize>,
        mark: &mut [u8],
    ) -> Option<(String, String)> {
        mark[i] = 1;
        for d in &items[i].depends_on {
            let j = index[&d.to_lowercase()];
            match mark[j] {
                1 => return Some((items[i].id.clone(), d.clone())),
                0 => {
                    if let Some(c) = visit(j, items, index, mark) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        mark[i] = 2;
        None
    }
    let mut mark = vec![0u8; items.len()];
    (0..items.len()).find_map(|i| {
        if mark[i] == 0 {
            visit(i, items, index, &mut mark)
        } else {
            None
        }
    })
}

/// The `/v1.0/...` URI of a batch item's `url` (relative like `/users` or `users`, or absolute).
fn item_uri(url: &str) -> Option<Uri> {
    let rel = if let Some(pos) = url.find("/v1.0/") {
        if url.starts_with("http") {
            &url[pos + 5..]
        } else {
            url
        }
    } else {
        url
    };
    let rel = rel.strip_prefix("/v1.0").unwrap_or(rel);
    let rel = rel.trim_start_matches('/');
    format!("/v1.0/{rel}").parse().ok()
}

/// Headers worth echoing in a sub-response.
const ECHO: &[&str] = &[
    "content-type",
    "cache-control",
    "odata-version",
    "location",
    "retry-after",
    "x-ms-resource-unit",
    "x-ms-throttle-scope",
    "x-ms-throttle-information",
    "request-id",
    "client-request-id",
];

async fn sub_response(id: &str, resp: Response) -> Value {
    let status = resp.status().as_u16();
    let mut headers = Map::new();
    for name in ECHO {
        if let Some(v) = resp.headers().get(*name).and_then(|v| v.to_str().ok()) {
            let key = match *name {
                "content-type" => "Content-Type",
                "cache-control" => "Cache-Control",
                "odata-version" => "OData-Version",
                "location" => "Location",
                "retry-after" => "Retry-After",
                other => other,
            };
            headers.insert(key.to_owned(), json!(v));
        }
    }
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let mut out = json!({"id": id, "status": status, "headers": headers});
    if !bytes.is_empty() {
        out["body"] = serde_json::from_slice::<Value>(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    }
    out
}

fn item_error(g: &GCtx, status: StatusCode, code: &str, message: &str) -> Response {
    g.error(status, code, message)
}

pub async fn run(
    st: &State,
    g: &GCtx,
    caller: &Caller,
    outer_headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let items = match parse_items(g, body) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let ambiguous = items.iter().any(|i| is_write(&i.method)) && st.chaos().ambiguous();
    let index: HashMap<String, usize> = items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.id.to_lowercase(), i))
        .collect();
    // Run in request order, each item after its dependencies (no cycles, checked above).
    let mut status: Vec<Option<u16>> = vec![None; items.len()];
    let mut answers: Vec<Option<Value>> = vec![None; items.len()];
    let mut order = Vec::with_capacity(items.len());
    while order.len() < items.len() {
        let before = order.len();
        for (i, it) in items.iter().enumerate() {
            if status[i].is_some() || order.contains(&i) {
                continue;
            }
            if it
                .depends_on
                .iter()
                .all(|d| status[index[&d.to_lowercase()]].is_some())
            {
                order.push(i);
                let sub = run_item(st, g, caller, outer_headers, it, &index, &status);
                let v = sub_response(&it.id, sub).await;
                status[i] = v["status"].as_u64().map(|s| s as u16);
                answers[i] = Some(v);
            }
        }
        if order.len() == before {
            break; // unreachable: cycles are refused up front
        }
    }
    let applied_a_write = items
        .iter()
        .zip(&status)
        .any(|(it, s)| is_write(&it.method) && s.is_some_and(|s| (200..300).contains(&s)));
    let mut responses: Vec<Value> = answers.into_iter().flatten().collect();
    responses.reverse();
    let mut resp = g.ok(&json!({ "responses": responses }));
    if ambiguous && applied_a_write {
        resp.extensions_mut().insert(DropConnection);
    }
    resp
}

fn run_item(
    st: &State,
    outer: &GCtx,
    caller: &Caller,
    outer_headers: &HeaderMap,
    it: &Item,
    index: &HashMap<String, usize>,
    status: &[Option<u16>],
) -> Response {
    let Some(uri) = item_uri(&it.url) else {
        return item_error(
            outer,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Invalid request URI '{}'.", it.url),
        );
    };
    // The item's own headers, plus the envelope's Host (for links) — never its Authorization.
    let mut headers = it.headers.clone();
    if let Some(h) = outer_headers.get(header::HOST) {
        headers.insert(header::HOST, h.clone());
    }
    let g = GCtx::new(st, &headers, &uri);
    let g = GCtx {
        base: outer.base.clone(),
        ..g
    };
    if let Some(dep) = it
        .depends_on
        .iter()
        .find(|d| status[index[&d.to_lowercase()]].is_none_or(|s| !(200..300).contains(&s)))
    {
        return item_error(
            &g,
            StatusCode::FAILED_DEPENDENCY,
            "FailedDependency",
            &format!("The request depends on request '{dep}', which failed."),
        );
    }
    if it.body.is_some() && !it.has_content_type {
        return item_error(
            &g,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "A Content-Type header is required for a request with a body.",
        );
    }
    let body = match &it.body {
        None => bytes::Bytes::new(),
        Some(Value::String(s)) if is_base64_body(&it.headers) => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map(bytes::Bytes::from)
                .unwrap_or_default()
        }
        Some(v) => bytes::Bytes::from(v.to_string()),
    };
    let call = Call {
        method: it.method.clone(),
        uri,
        headers,
        body,
    };
    execute(st, &g, caller, &call)
}

fn is_base64_body(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| !ct.to_ascii_lowercase().contains("json"))
}
