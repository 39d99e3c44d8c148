//! Shared by the simulator's own wire tests: a plain HTTP client with an app-only token, so
//! each test speaks to the simulator exactly as an outside script would (no m365sync client).
#![allow(dead_code)]
use m365sync::sim::Sim;
use serde_json::{json, Value};

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// An app-only token from the client-credentials grant.
pub async fn app_token(c: &reqwest::Client, sim: &Sim) -> String {
    let (id, secret) = &sim.apps[0];
    let r = c
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            sim.base_url, sim.initial_domain
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

pub type Answer = (u16, reqwest::header::HeaderMap, Value);

pub struct Graph {
    pub c: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Graph {
    pub async fn new(sim: &Sim) -> Graph {
        let c = client();
        let token = app_token(&c, sim).await;
        Graph {
            c,
            base: format!("{}/v1.0", sim.base_url),
            token,
        }
    }
    /// A path under /v1.0, or an absolute URL (a nextLink).
    pub fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{}", self.base, path_or_url)
        }
    }
    /// Sends as built (no token added: tests of the bearer check build their own). Every
    /// answer with a body must say it is JSON; a 204 has none (`Value::Null`).
    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Answer {
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            let ct = headers["content-type"].to_str().unwrap();
            assert!(ct.starts_with("application/json"), "{ct}");
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, headers, body)
    }
    pub async fn get(&self, path_or_url: &str) -> Answer {
        self.send(self.c.get(self.url(path_or_url)).bearer_auth(&self.token))
            .await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(
            self.c
                .post(self.url(path))
                .bearer_auth(&self.token)
                .json(body),
        )
        .await
    }
    pub async fn patch(&self, path: &str, body: &Value) -> Answer {
        self.send(
            self.c
                .patch(self.url(path))
                .bearer_auth(&self.token)
                .json(body),
        )
        .await
    }
    pub async fn delete(&self, path: &str) -> Answer {
        self.send(self.c.delete(self.url(path)).bearer_auth(&self.token))
            .await
    }
    pub async fn batch(&self, requests: Vec<Value>) -> Answer {
        self.post("/$batch", &json!({ "requests": requests })).await
    }
}

/// Graph's error envelope, with the exact code and message.
pub fn assert_graph_error(body: &Value, code: &str, message: &str) {
    let e = &body["error"];
    assert_eq!(e["code"], code, "{body}");
    assert_eq!(e["message"], message, "{body}");
    let inner = &e["innerError"];
    let date = inner["date"].as_str().unwrap();
    assert_eq!(date.len(), 19, "{date}");
    assert!(!date.ends_with('Z'));
    assert_eq!(inner["request-id"].as_str().unwrap().len(), 36, "{body}");
    assert!(inner["client-request-id"].is_string(), "{body}");
}
