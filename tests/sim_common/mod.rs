//! Shared by the simulator's own wire tests: a plain HTTP client with an app-only token, so
//! each test speaks to the simulator exactly as an outside script would (no m365sync client).
#![allow(dead_code)]
use m365sync::sim::Sim;
use serde_json::{json, Value};

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// The seed's app that may manage users but holds no group permission.
pub const USERS_ONLY_APP: (&str, &str) = (
    "7d2f4b9c-5e1a-4c3d-8f6b-2a9e0c4d6b18",
    "Usr8Q~Kp4Lm7Nq2Rs5Tv8Wx1Yz3Ab6Cd9Ef2GhJm",
);
/// The seed's read-only app (User.Read.All, Group.Read.All, Domain.Read.All).
pub const READ_ONLY_APP: (&str, &str) = (
    "5b1f7a0e-3c2d-4e8f-9a61-7d4c2b9e0f13",
    "Rpt8Q~Vh3kLmN2pQrS5tUvW7xYz9AbCdEfGhIjKl",
);

/// An app-only token from the client-credentials grant (the full-permission app).
pub async fn app_token(c: &reqwest::Client, sim: &Sim) -> String {
    let (id, secret) = &sim.apps[0];
    app_token_of(c, sim, id, secret).await
}

/// A delegated token for the seed's admin: device code, approved at once, redeemed.
pub async fn delegated_token(c: &reqwest::Client, sim: &Sim, scope: &str) -> String {
    let dc: Value = c
        .post(format!(
            "{}/organizations/oauth2/v2.0/devicecode",
            sim.base_url
        ))
        .form(&[
            ("client_id", sim.public_client_id.as_str()),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(sim.approve(dc["user_code"].as_str().unwrap()), "{dc}");
    let r = c
        .post(format!("{}/organizations/oauth2/v2.0/token", sim.base_url))
        .form(&[
            ("grant_type", "device_code"),
            ("client_id", sim.public_client_id.as_str()),
            ("device_code", dc["device_code"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

/// An app-only token for the app `id` with `secret`.
pub async fn app_token_of(c: &reqwest::Client, sim: &Sim, id: &str, secret: &str) -> String {
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
        Graph::with_token(sim, c, token)
    }
    /// As the app `(client id, secret)` (app-only).
    pub async fn as_app(sim: &Sim, app: (&str, &str)) -> Graph {
        let c = client();
        let token = app_token_of(&c, sim, app.0, app.1).await;
        Graph::with_token(sim, c, token)
    }
    /// As the seed's admin, signed in through the device code (delegated).
    pub async fn delegated(sim: &Sim, scope: &str) -> Graph {
        let c = client();
        let token = delegated_token(&c, sim, scope).await;
        Graph::with_token(sim, c, token)
    }
    pub fn with_token(sim: &Sim, c: reqwest::Client, token: String) -> Graph {
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
