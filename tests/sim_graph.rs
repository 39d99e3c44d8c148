//! The simulator's Graph v1.0 side over real HTTP: bearer checks, users paging/$select/$filter,
//! error envelopes, faults, and a large tenant.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use m365sync::sim::{FaultKind, FaultRule, Sim, SimOptions};
use serde_json::Value;

mod sim_common;
use sim_common::*;

#[tokio::test]
async fn graph_rejects_missing_garbage_and_expired_tokens() {
    let sim = Sim::start(SimOptions {
        token_lifetime: Duration::from_secs(1),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let g = Graph::new(&sim).await;
    let url = format!("{}/users", g.base);
    let (s, h, body) = g.send(g.c.get(&url)).await;
    assert_eq!(s, 401);
    assert!(h.contains_key("www-authenticate"));
    assert_graph_error(
        &body,
        "InvalidAuthenticationToken",
        "Access token is empty.",
    );
    let (s, _, body) = g.send(g.c.get(&url).bearer_auth("garbage")).await;
    assert_eq!(s, 401);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("IDX14100: JWT is not well formed"));
    let (s, _, body) = g.send(g.c.get(&url).bearer_auth("abc.def.ghi")).await;
    assert_eq!(s, 401);
    assert_graph_error(
        &body,
        "InvalidAuthenticationToken",
        "CompactToken parsing failed with error code: 80049217",
    );
    // Good now, expired later.
    let (s, _, _) = g.get("/users?$top=1").await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, _, body) = g.get("/users?$top=1").await;
    assert_eq!(s, 401);
    assert_graph_error(
        &body,
        "InvalidAuthenticationToken",
        "Lifetime validation failed, the token is expired.",
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn paging_2500_users_with_top_999_gives_3_pages_and_every_user_once() {
    let sim = Sim::start(SimOptions {
        users: Some(2500),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    assert_eq!(sim.user_count(), 2500);
    let g = Graph::new(&sim).await;
    let mut url = "/users?$select=id,userPrincipalName,accountEnabled&$top=999".to_owned();
    let mut pages = 0;
    let mut ids = HashSet::new();
    let mut upns = HashSet::new();
    loop {
        let (s, h, body) = g.get(&url).await;
        assert_eq!(s, 200, "{body}");
        assert!(h.contains_key("request-id"));
        pages += 1;
        assert_eq!(
            body["@odata.context"],
            format!(
                "{}/$metadata#users(id,userPrincipalName,accountEnabled)",
                g.base
            )
        );
        for u in body["value"].as_array().unwrap() {
            assert!(ids.insert(u["id"].as_str().unwrap().to_owned()));
            assert!(upns.insert(u["userPrincipalName"].as_str().unwrap().to_lowercase()));
            assert!(u["accountEnabled"].is_boolean());
            assert!(u.get("displayName").is_none());
        }
        match body["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&g.base), "absolute nextLink: {next}");
                assert!(next.contains("$skiptoken="));
                assert!(next.contains("$top=999"));
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(ids.len(), 2500);
    // Default page size is 100.
    let (_, _, body) = g.get("/users").await;
    assert_eq!(body["value"].as_array().unwrap().len(), 100);
    assert!(sim.request_count("GET", "/v1.0/users") >= 4);
    sim.shutdown().await;
}

#[tokio::test]
async fn top_1000_is_refused_with_graphs_exact_error() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let g = Graph::new(&sim).await;
    let (s, _, body) = g.get("/users?$top=1000").await;
    assert_eq!(s, 400);
    assert_graph_error(
        &body,
        "Request_UnsupportedQuery",
        "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive.",
    );
    let r =
        g.c.get(format!("{}/users?$top=0", g.base))
            .bearer_auth(&g.token)
            .header("client-request-id", "11111111-1111-1111-1111-111111111111")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.headers()["client-request-id"],
        "11111111-1111-1111-1111-111111111111"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["error"]["innerError"]["client-request-id"],
        "11111111-1111-1111-1111-111111111111"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn select_default_versus_selected_properties() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let g = Graph::new(&sim).await;
    let (s, _, body) = g.get("/users?$top=5").await;
    assert_eq!(s, 200);
    assert_eq!(
        body["@odata.context"],
        format!("{}/$metadata#users", g.base)
    );
    let u = &body["value"][0];
    let mut keys: Vec<&str> = u.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "businessPhones",
            "displayName",
            "givenName",
            "id",
            "jobTitle",
            "mail",
            "mobilePhone",
            "officeLocation",
            "preferredLanguage",
            "surname",
            "userPrincipalName"
        ]
    );
    let (_, _, body) = g
        .get("/users?$select=id,accountEnabled,mailNickname,USERTYPE&$top=5")
        .await;
    let u = body["value"][0].as_object().unwrap();
    assert_eq!(u.len(), 4);
    assert!(u["accountEnabled"].is_boolean());
    assert!(u["userType"].is_string());
    assert_eq!(
        body["@odata.context"],
        format!(
            "{}/$metadata#users(id,accountEnabled,mailNickname,userType)",
            g.base
        )
    );
    let (s, _, body) = g.get("/users?$select=id,bogus").await;
    assert_eq!(s, 400);
    assert_graph_error(
        &body,
        "BadRequest",
        "Could not find a property named 'bogus' on type 'microsoft.graph.user'.",
    );
    // About 15 disabled accounts in the seed.
    let mut disabled = 0;
    let (_, _, body) = g.get("/users?$select=accountEnabled&$top=999").await;
    for u in body["value"].as_array().unwrap() {
        if u["accountEnabled"] == false {
            disabled += 1;
        }
    }
    assert!((10..=20).contains(&disabled), "{disabled}");
    sim.shutdown().await;
}

#[tokio::test]
async fn filter_eq_and_startswith() {
    let sim = Sim::start(SimOptions {
        users: Some(3000),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let g = Graph::new(&sim).await;
    let admin = sim.admin_upn.clone();
    let (s, _, body) = g
        .get(&format!(
            "/users?$filter=userPrincipalName eq '{}'",
            admin.to_uppercase()
        ))
        .await;
    assert_eq!(s, 200, "{body}");
    let v = body["value"].as_array().unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["userPrincipalName"], admin);
    let (_, _, body) = g.get("/users?$filter=mail eq 'nobody@example.com'").await;
    assert!(body["value"].as_array().unwrap().is_empty());

    // startswith, paged, every result matches, none lost.
    let mut url =
        "/users?$filter=startswith(userPrincipalName,'a')&$select=userPrincipalName&$top=50"
            .to_owned();
    let mut seen = HashSet::new();
    loop {
        let (s, _, body) = g.get(&url).await;
        assert_eq!(s, 200, "{body}");
        for u in body["value"].as_array().unwrap() {
            let upn = u["userPrincipalName"].as_str().unwrap();
            assert!(upn.to_lowercase().starts_with('a'), "{upn}");
            assert!(seen.insert(upn.to_owned()));
        }
        match body["@odata.nextLink"].as_str() {
            Some(n) => {
                assert!(n.contains("$filter="));
                url = n.to_owned()
            }
            None => break,
        }
    }
    assert!(seen.len() > 50, "{}", seen.len());
    let (_, _, body) = g
        .get("/users?$filter=startswith(displayName,'Northwind')&$select=displayName")
        .await;
    assert_eq!(body["value"][0]["displayName"], "Northwind Admin");
    let (_, _, body) = g
        .get("/users?$filter=accountEnabled eq false and startswith(mail,'a')&$select=mail,accountEnabled&$top=999")
        .await;
    for u in body["value"].as_array().unwrap() {
        assert_eq!(u["accountEnabled"], false);
    }
    // Unsupported: endswith without the advanced-query headers, unknown property, bad syntax.
    let (s, _, body) = g.get("/users?$filter=endswith(mail,'.com')").await;
    assert_eq!(s, 400);
    assert_eq!(body["error"]["code"], "Request_UnsupportedQuery");
    let (s, _, body) = g
        .send(
            g.c.get(format!(
                "{}/users?$filter=endswith(mail,'.co.uk')&$count=true",
                g.base
            ))
            .bearer_auth(&g.token)
            .header("ConsistencyLevel", "eventual"),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(body["@odata.count"].as_u64().unwrap() > 0);
    let (s, _, body) = g.get("/users?$filter=businessPhones eq '1'").await;
    assert_eq!(s, 400);
    assert_eq!(body["error"]["code"], "Request_UnsupportedQuery");
    let (s, _, body) = g.get("/users?$filter=mail eq").await;
    assert_eq!(s, 400);
    assert_eq!(body["error"]["code"], "BadRequest");
    sim.shutdown().await;
}

#[tokio::test]
async fn single_user_domains_and_graph_errors() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let g = Graph::new(&sim).await;
    let (_, _, body) = g
        .get("/users?$top=999&$select=id,userPrincipalName,userType")
        .await;
    let users = body["value"].as_array().unwrap();
    let guest = users.iter().find(|u| u["userType"] == "Guest").unwrap();
    let upn = guest["userPrincipalName"].as_str().unwrap();
    assert!(upn.contains("#EXT#"));
    let enc = upn.replace('#', "%23");
    let (s, _, body) = g.get(&format!("/users/{enc}")).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["id"], guest["id"]);
    assert_eq!(
        body["@odata.context"],
        format!("{}/$metadata#users/$entity", g.base)
    );
    let id = users[3]["id"].as_str().unwrap();
    let (s, _, body) = g
        .get(&format!("/users/{id}?$select=id,accountEnabled"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        body["@odata.context"],
        format!("{}/$metadata#users(id,accountEnabled)/$entity", g.base)
    );
    assert!(body["accountEnabled"].is_boolean());
    let missing = "00000000-0000-0000-0000-000000000001";
    let (s, _, body) = g.get(&format!("/users/{missing}")).await;
    assert_eq!(s, 404);
    assert_graph_error(
        &body,
        "Request_ResourceNotFound",
        &format!("Resource '{missing}' does not exist or one of its queried reference-property objects are not present."),
    );

    let (s, _, body) = g.get("/domains").await;
    assert_eq!(s, 200);
    let domains = body["value"].as_array().unwrap();
    assert_eq!(domains.iter().filter(|d| d["isDefault"] == true).count(), 1);
    assert_eq!(domains.iter().filter(|d| d["isInitial"] == true).count(), 1);
    assert!(domains.iter().any(|d| d["isVerified"] == false));
    assert!(domains
        .iter()
        .any(|d| d["authenticationType"] == "Federated"));
    let initial = domains.iter().find(|d| d["isInitial"] == true).unwrap();
    assert_eq!(initial["id"], sim.initial_domain);
    let (s, _, body) = g.get(&format!("/domains/{}", sim.initial_domain)).await;
    assert_eq!(s, 200);
    assert_eq!(body["isInitial"], true);

    let (s, _, body) = g
        .send(g.c.put(format!("{}/users", g.base)).bearer_auth(&g.token))
        .await;
    assert_eq!(s, 405);
    assert_graph_error(
        &body,
        "Request_BadRequest",
        "Specified HTTP method is not allowed for the request target.",
    );
    let (s, _, body) = g.get("/nonsense").await;
    assert_eq!(s, 400);
    assert_graph_error(
        &body,
        "BadRequest",
        "Resource not found for the segment 'nonsense'.",
    );
    // App tokens have no /me.
    let (s, _, _) = g.get("/me").await;
    assert_eq!(s, 400);
    let (s, _, body) = g.get("/organization").await;
    assert_eq!(s, 200);
    assert_eq!(body["value"][0]["id"], sim.tenant_id);
    sim.shutdown().await;
}

#[tokio::test]
async fn delegated_token_reads_me() {
    let sim = Sim::start(SimOptions {
        device_code_interval: 0,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let c = client();
    let dc: Value = c
        .post(format!(
            "{}/organizations/oauth2/v2.0/devicecode",
            sim.base_url
        ))
        .form(&[
            ("client_id", sim.public_client_id.as_str()),
            ("scope", "User.Read.All"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(sim.approve(dc["user_code"].as_str().unwrap()));
    let tok: Value = c
        .post(format!("{}/organizations/oauth2/v2.0/token", sim.base_url))
        .form(&[
            ("grant_type", "device_code"),
            ("client_id", sim.public_client_id.as_str()),
            ("device_code", dc["device_code"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let me: Value = c
        .get(format!("{}/v1.0/me", sim.base_url))
        .bearer_auth(tok["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["userPrincipalName"], sim.admin_upn);
    sim.shutdown().await;
}

#[tokio::test]
async fn count_with_consistency_level() {
    let sim = Sim::start(SimOptions {
        users: Some(1234),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let g = Graph::new(&sim).await;
    let (s, _, body) = g
        .send(
            g.c.get(format!("{}/users?$count=true&$top=10", g.base))
                .bearer_auth(&g.token)
                .header("ConsistencyLevel", "eventual"),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(body["@odata.count"], 1234);
    let next = body["@odata.nextLink"].as_str().unwrap().to_owned();
    let (_, _, body) = g
        .send(
            g.c.get(next)
                .bearer_auth(&g.token)
                .header("ConsistencyLevel", "eventual"),
        )
        .await;
    assert!(
        body.get("@odata.count").is_none(),
        "count only on the first page"
    );
    let r =
        g.c.get(format!("{}/users/$count", g.base))
            .bearer_auth(&g.token)
            .header("ConsistencyLevel", "eventual")
            .send()
            .await
            .unwrap();
    assert_eq!(r.text().await.unwrap(), "1234");
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_throttle_unavailable_and_reset() {
    let sim = Sim::start(SimOptions {
        faults: vec!["GET /v1.0/users #2 429:7".parse().unwrap()],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let g = Graph::new(&sim).await;
    let (s, _, _) = g.get("/users?$top=1").await;
    assert_eq!(s, 200);
    let (s, h, body) = g.get("/users?$top=1").await;
    assert_eq!(s, 429);
    assert_eq!(h["retry-after"], "7");
    assert_graph_error(&body, "TooManyRequests", "Too many requests.");
    assert_eq!(sim.throttled_count(), 1);
    let (s, _, _) = g.get("/users?$top=1").await;
    assert_eq!(s, 200);

    sim.faults().add(FaultRule::next(
        "GET",
        "/v1.0/domains",
        2,
        FaultKind::Unavailable,
    ));
    for _ in 0..2 {
        let (s, _, body) = g.get("/domains").await;
        assert_eq!(s, 503);
        assert_eq!(body["error"]["code"], "serviceNotAvailable");
    }
    let (s, _, _) = g.get("/domains").await;
    assert_eq!(s, 200);

    sim.faults()
        .add("GET /v1.0/users next1 reset".parse().unwrap());
    let err =
        g.c.get(format!("{}/users", g.base))
            .bearer_auth(&g.token)
            .send()
            .await
            .unwrap_err();
    assert!(!err.is_status(), "{err}");
    let (s, _, _) = g.get("/users?$top=1").await;
    assert_eq!(s, 200);
    assert_eq!(sim.request_count("GET", "/v1.0/users"), 5);
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_is_added_to_every_request() {
    let sim = Sim::start(SimOptions {
        latency: Duration::from_millis(150),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let c = client();
    let t0 = Instant::now();
    let r = c
        .get(format!("{}/devicelogin", sim.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(t0.elapsed() >= Duration::from_millis(150));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_100k_user_tenant_starts_fast_and_pages_fast() {
    let t0 = Instant::now();
    let sim = Sim::start(SimOptions {
        users: Some(100_000),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let started = t0.elapsed();
    assert_eq!(sim.user_count(), 100_000);
    let g = Graph::new(&sim).await;
    let t1 = Instant::now();
    let mut url =
        "/users?$select=id,userPrincipalName,mail,displayName,accountEnabled&$top=999".to_owned();
    let mut n = 0;
    let mut pages = 0;
    loop {
        let (s, _, body) = g.get(&url).await;
        assert_eq!(s, 200);
        n += body["value"].as_array().unwrap().len();
        pages += 1;
        match body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(n, 100_000);
    assert_eq!(pages, 101);
    println!(
        "100k users: sim started in {} ms; paged {n} users in {pages} pages in {} ms (debug build)",
        started.as_millis(),
        t1.elapsed().as_millis()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn orderby_and_search() {
    let sim = Sim::start(SimOptions {
        users: Some(1500),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let g = Graph::new(&sim).await;
    let mut url = "/users?$orderby=displayName&$select=displayName&$top=400".to_owned();
    let mut names = Vec::new();
    loop {
        let (s, _, body) = g.get(&url).await;
        assert_eq!(s, 200, "{body}");
        for u in body["value"].as_array().unwrap() {
            names.push(u["displayName"].as_str().unwrap().to_lowercase());
        }
        match body["@odata.nextLink"].as_str() {
            Some(n) => url = n.to_owned(),
            None => break,
        }
    }
    assert_eq!(names.len(), 1500);
    assert!(names.windows(2).all(|w| w[0] <= w[1]));
    let (_, _, body) = g
        .get("/users?$orderby=userPrincipalName desc&$top=2&$select=userPrincipalName")
        .await;
    let v = body["value"].as_array().unwrap();
    assert!(
        v[0]["userPrincipalName"].as_str().unwrap().to_lowercase()
            >= v[1]["userPrincipalName"].as_str().unwrap().to_lowercase()
    );
    // Sorting a filtered list needs the advanced-query mode.
    let (s, _, body) = g
        .get("/users?$orderby=displayName&$filter=accountEnabled eq true")
        .await;
    assert_eq!(s, 400);
    assert_eq!(body["error"]["code"], "Request_UnsupportedQuery");
    // $search needs ConsistencyLevel.
    let (s, _, body) = g.get("/users?$search=\"displayName:northwind\"").await;
    assert_eq!(s, 400);
    assert_eq!(body["error"]["code"], "Request_BadRequest");
    let (s, _, body) = g
        .send(
            g.c.get(format!(
                "{}/users?$search=\"displayName:northwind\"&$select=displayName",
                g.base
            ))
            .bearer_auth(&g.token)
            .header("ConsistencyLevel", "eventual"),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["value"][0]["displayName"], "Northwind Admin");
    sim.shutdown().await;
}
