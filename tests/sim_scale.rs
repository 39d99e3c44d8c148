//! The simulator's side of listing a big tenant (issue 9): `/users/delta` rounds with their
//! tokens and annotations, `$deltatoken=latest`, expiry, malformed tokens, the query options
//! delta takes and refuses; `startswith` case-insensitive; `/users/$count` and `$count=true`
//! with and without `ConsistencyLevel: eventual`. Plain HTTP, no m365sync client.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use m365sync::sim::{Sim, SimOptions};
use serde_json::{json, Map, Value};

mod sim_common;
use sim_common::*;

/// The seed's soft-deleted Olga Petrov (restorable).
const OLGA: &str = "9a3e6b42-17cd-4f58-a0b9-6c1e2d3f4a57";
const SELECT: &str = "displayName,jobTitle,mobilePhone,accountEnabled,userPrincipalName";
const SELECTED: [&str; 5] = [
    "displayName",
    "jobTitle",
    "mobilePhone",
    "accountEnabled",
    "userPrincipalName",
];

struct Round {
    items: Vec<Value>,
    delta_link: String,
    pages: Vec<Value>,
}

/// Follows a delta round from `url` to its deltaLink; every page has exactly one link, and
/// the links carry nothing but their token.
async fn round(g: &Graph, url: &str, minimal: bool) -> Round {
    let mut url = url.to_owned();
    let mut out = Round {
        items: Vec::new(),
        delta_link: String::new(),
        pages: Vec::new(),
    };
    for _ in 0..10_000 {
        let mut rb = g.c.get(g.url(&url)).bearer_auth(&g.token);
        if minimal {
            rb = rb.header("Prefer", "return=minimal");
        }
        let (s, h, body) = g.send(rb).await;
        assert_eq!(s, 200, "{url}: {body}");
        assert_eq!(h["preference-applied"], "odata.track-changes");
        let next = body["@odata.nextLink"].as_str().map(str::to_owned);
        let delta = body["@odata.deltaLink"].as_str().map(str::to_owned);
        assert!(
            next.is_some() != delta.is_some(),
            "a page has exactly one link: {body}"
        );
        out.items
            .extend(body["value"].as_array().unwrap().iter().cloned());
        out.pages.push(body);
        match (next, delta) {
            (Some(n), _) => {
                let q = n.split_once('?').unwrap().1;
                assert!(q.starts_with("$skiptoken=") && !q.contains('&'), "{n}");
                url = n;
            }
            (_, Some(d)) => {
                let q = d.split_once('?').unwrap().1;
                assert!(q.starts_with("$deltatoken=") && !q.contains('&'), "{d}");
                out.delta_link = d;
                return out;
            }
            _ => unreachable!(),
        }
    }
    panic!("the round never ended");
}

/// Applies delta items to a local copy (id -> properties), as a client must: `@removed` goes,
/// anything else is merged property by property.
fn apply(copy: &mut HashMap<String, Map<String, Value>>, items: &[Value]) {
    for it in items {
        let id = it["id"].as_str().unwrap().to_owned();
        if it.get("@removed").is_some() {
            copy.remove(&id);
            continue;
        }
        let entry = copy.entry(id).or_default();
        for (k, v) in it.as_object().unwrap() {
            entry.insert(k.clone(), v.clone());
        }
    }
}

/// The tenant as a fresh listing shows it, with absent = null on both sides.
async fn listing(g: &Graph) -> HashMap<String, Map<String, Value>> {
    let mut out = HashMap::new();
    let mut url = format!("/users?$select=id,{SELECT}&$top=999");
    loop {
        let (s, _, body) = g.get(&url).await;
        assert_eq!(s, 200, "{body}");
        for u in body["value"].as_array().unwrap() {
            let mut m = Map::new();
            for p in SELECTED {
                if !u[p].is_null() {
                    m.insert(p.to_owned(), u[p].clone());
                }
            }
            out.insert(u["id"].as_str().unwrap().to_owned(), m);
        }
        match body["@odata.nextLink"].as_str() {
            Some(n) => url = n.to_owned(),
            None => return out,
        }
    }
}

fn normalized(copy: &HashMap<String, Map<String, Value>>) -> HashMap<String, Map<String, Value>> {
    copy.iter()
        .map(|(id, m)| {
            let m = m
                .iter()
                .filter(|(k, v)| *k != "id" && !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (id.clone(), m)
        })
        .collect()
}

fn by_id<'a>(items: &'a [Value], id: &str) -> Vec<&'a Value> {
    items.iter().filter(|i| i["id"] == id).collect()
}

fn keys(v: &Value) -> HashSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn set(names: &[&str]) -> HashSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

async fn create(g: &Graph, nick: &str, domain: &str, extra: Value) -> String {
    let mut body = json!({
        "accountEnabled": true,
        "displayName": format!("{nick} Person"),
        "mailNickname": nick,
        "userPrincipalName": format!("{nick}@{domain}"),
        "passwordProfile": {"password": "Xq7!pLm2#vR9", "forceChangePasswordNextSignIn": true},
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (s, _, u) = g.post("/users", &body).await;
    assert_eq!(s, 201, "{u}");
    u["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn delta_rounds_replay_every_kind_of_change_and_end_equal_to_a_fresh_listing() {
    let sim = Sim::start(SimOptions {
        users: Some(500),
        delta_page_size: 50,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let g = Graph::new(&sim).await;
    let admin = Graph::delegated(&sim, "User.ReadWrite.All").await;

    // The initial round: every live user once, in pages of 50, the $select kept in the tokens.
    let first = round(&g, &format!("/users/delta?$select={SELECT}"), false).await;
    assert_eq!(first.pages.len(), 10);
    assert_eq!(
        first.pages[0]["@odata.context"],
        format!("{}/v1.0/$metadata#users({SELECT})", sim.base_url)
    );
    assert_eq!(
        first.pages[1]["@odata.context"],
        format!("{}/v1.0/$metadata#users", sim.base_url)
    );
    let mut copy = HashMap::new();
    apply(&mut copy, &first.items);
    assert_eq!(first.items.len(), 500);
    assert_eq!(copy.len(), 500, "no user twice");
    let allowed: HashSet<String> = SELECTED
        .iter()
        .map(|s| s.to_string())
        .chain(["id".to_string()])
        .collect();
    for it in &first.items {
        assert!(keys(it).is_subset(&allowed), "only what was selected: {it}");
        assert!(
            it.as_object().unwrap().values().all(|v| !v.is_null()),
            "never-set properties are omitted: {it}"
        );
        assert!(it.get("@removed").is_none());
    }
    let fresh = listing(&g).await;
    assert_eq!(normalized(&copy), fresh, "the initial round is the tenant");

    // Changes of every kind.
    let users: Vec<Value> = first.items.clone();
    let with_phone = users
        .iter()
        .filter(|u| u["mobilePhone"].is_string())
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    let plain: Vec<String> = users
        .iter()
        .filter(|u| u["userPrincipalName"] != sim.admin_upn.as_str())
        .filter(|u| u["mobilePhone"].is_null())
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    let (retitled, unphoned, untracked, deleted, purged) = (
        plain[0].clone(),
        with_phone[1].clone(),
        plain[1].clone(),
        plain[2].clone(),
        plain[3].clone(),
    );
    let created = create(
        &g,
        "delta.created",
        &sim.default_domain,
        json!({"jobTitle": "Analyst"}),
    )
    .await;
    let fleeting = create(&g, "delta.fleeting", &sim.default_domain, json!({})).await;
    for (id, body) in [
        (&retitled, json!({"jobTitle": "Head of Delta"})),
        (&unphoned, json!({"mobilePhone": null})),
        (&untracked, json!({"department": "Not Selected"})),
    ] {
        let (s, _, b) = g.patch(&format!("/users/{id}"), &body).await;
        assert_eq!(s, 204, "{b}");
    }
    for id in [&deleted, &purged, &fleeting] {
        assert_eq!(g.delete(&format!("/users/{id}")).await.0, 204);
    }
    assert_eq!(
        admin
            .delete(&format!("/directory/deletedItems/{purged}"))
            .await
            .0,
        204
    );
    let (s, _, b) = g
        .post(
            &format!("/directory/deletedItems/{OLGA}/restore"),
            &json!({}),
        )
        .await;
    assert_eq!(s, 200, "{b}");

    let second = round(&g, &first.delta_link, false).await;
    let items = &second.items;
    let one = |id: &str| {
        let v = by_id(items, id);
        assert_eq!(v.len(), 1, "{id} once in {items:?}");
        v[0].clone()
    };
    let c = one(&created);
    assert!(c.get("@removed").is_none());
    assert_eq!(c["jobTitle"], "Analyst");
    assert_eq!(c["displayName"], "delta.created Person");
    assert!(c.get("mobilePhone").is_none(), "never set: omitted");
    let r = one(&retitled);
    assert_eq!(r["jobTitle"], "Head of Delta");
    assert!(r["displayName"].is_string(), "unchanged, with its value");
    assert_eq!(r["accountEnabled"], true);
    assert!(r.get("mobilePhone").is_none(), "never set: omitted");
    let p = one(&unphoned);
    assert!(p.get("mobilePhone").is_some_and(Value::is_null), "{p}");
    assert!(
        by_id(items, &untracked).is_empty(),
        "an unselected change is not tracked"
    );
    assert_eq!(one(&deleted)["@removed"], json!({"reason": "changed"}));
    assert_eq!(keys(&one(&deleted)), set(&["id", "@removed"]));
    assert_eq!(one(&purged)["@removed"], json!({"reason": "deleted"}));
    assert_eq!(one(&fleeting)["@removed"], json!({"reason": "changed"}));
    let o = one(OLGA);
    assert!(o.get("@removed").is_none(), "restored: no annotation");
    assert_eq!(o["displayName"], "Olga Petrov");
    assert_eq!(items.len(), 7, "{items:#?}");

    apply(&mut copy, items);
    assert_eq!(
        normalized(&copy),
        listing(&g).await,
        "snapshot = fresh listing"
    );

    // Nothing changed since: an empty page with a deltaLink.
    let third = round(&g, &second.delta_link, false).await;
    assert_eq!(third.pages.len(), 1);
    assert!(third.items.is_empty());
    // The same link may be followed again (tokens hold their state).
    let again = round(&g, &first.delta_link, false).await;
    assert_eq!(again.items.len(), 7);
    sim.shutdown().await;
}

#[tokio::test]
async fn updates_carry_selected_properties_or_only_changed_ones_with_return_minimal() {
    let sim = Sim::start(SimOptions {
        users: Some(30),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let g = Graph::new(&sim).await;
    let titleless = create(
        &g,
        "no.title",
        &sim.default_domain,
        json!({"department": "Ops"}),
    )
    .await;
    let first = round(
        &g,
        "/users/delta?$select=displayName,jobTitle,department",
        false,
    )
    .await;
    assert_eq!(first.items.len(), 31);
    let t = by_id(&first.items, &titleless)[0];
    assert_eq!(keys(t), set(&["displayName", "department", "id"]));
    let ids: Vec<String> = first.items[..3]
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .filter(|id| *id != titleless)
        .collect();
    let (a, b) = (&ids[0], &ids[1]);
    g.patch(
        &format!("/users/{a}"),
        &json!({"jobTitle": "Chief Delta Officer"}),
    )
    .await;
    g.patch(&format!("/users/{b}"), &json!({"department": null}))
        .await;
    g.patch(
        &format!("/users/{titleless}"),
        &json!({"displayName": "Renamed"}),
    )
    .await;

    let minimal = round(&g, &first.delta_link, true).await;
    assert_eq!(minimal.items.len(), 3);
    let ia = by_id(&minimal.items, a)[0];
    assert_eq!(keys(ia), set(&["id", "jobTitle"]));
    assert_eq!(ia["jobTitle"], "Chief Delta Officer");
    let ib = by_id(&minimal.items, b)[0];
    assert_eq!(keys(ib), set(&["id", "department"]));
    assert!(ib["department"].is_null());
    assert_eq!(
        keys(by_id(&minimal.items, &titleless)[0]),
        set(&["id", "displayName"])
    );

    let full = round(&g, &first.delta_link, false).await;
    let fa = by_id(&full.items, a)[0];
    assert_eq!(
        keys(fa),
        set(&["id", "jobTitle", "displayName", "department"])
    );
    let fb = by_id(&full.items, b)[0];
    assert!(fb["department"].is_null(), "changed to null: sent as null");
    assert!(fb["displayName"].is_string());
    let ft = by_id(&full.items, &titleless)[0];
    assert_eq!(ft["displayName"], "Renamed");
    assert!(ft.get("jobTitle").is_none(), "never set: omitted");
    assert_eq!(ft["department"], "Ops");
    sim.shutdown().await;
}

#[tokio::test]
async fn deltatoken_latest_starts_from_now_with_only_a_delta_link() {
    let sim = Sim::start(SimOptions {
        users: Some(400),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let g = Graph::new(&sim).await;
    let (s, _, body) = g
        .get("/users/delta?$deltatoken=latest&$select=displayName")
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["value"], json!([]));
    assert!(body.get("@odata.nextLink").is_none());
    let link = body["@odata.deltaLink"].as_str().unwrap().to_owned();
    let r = round(&g, &link, false).await;
    assert!(r.items.is_empty(), "nothing changed since");
    let (_, _, some) = g.get("/users?$top=3&$select=id").await;
    let id = some["value"][2]["id"].as_str().unwrap().to_owned();
    g.patch(
        &format!("/users/{id}"),
        &json!({"displayName": "Latest Person"}),
    )
    .await;
    g.patch(
        &format!("/users/{id}"),
        &json!({"jobTitle": "not selected"}),
    )
    .await;
    let r = round(&g, &link, false).await;
    assert_eq!(
        r.items,
        vec![json!({"displayName": "Latest Person", "id": id})]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn tokens_expire_after_their_lifetime_and_when_the_log_moved_past_them() {
    let sim = Sim::start(SimOptions {
        users: Some(300),
        delta_token_ttl: Duration::from_millis(800),
        delta_log_cap: 3,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let g = Graph::new(&sim).await;
    let (_, _, body) = g.get("/users/delta?$deltatoken=latest").await;
    let link = body["@odata.deltaLink"].as_str().unwrap().to_owned();
    let (_, _, page) = g.get("/users/delta?$select=id").await;
    let next = page["@odata.nextLink"].as_str().unwrap().to_owned();
    assert_eq!(g.get(&link).await.0, 200, "still fresh");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for url in [&link, &next] {
        let (s, _, e) = g.get(url).await;
        assert_eq!(s, 400, "{e}");
        assert_graph_error(
            &e,
            "syncStateNotFound",
            "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
        );
    }

    // The log keeps 3 changes: a token from before 4 changes is expired, a newer one is not.
    let (_, _, body) = g.get("/users/delta?$deltatoken=latest").await;
    let old = body["@odata.deltaLink"].as_str().unwrap().to_owned();
    let (_, _, some) = g.get("/users?$top=5&$select=id").await;
    for (n, u) in some["value"].as_array().unwrap()[1..].iter().enumerate() {
        let id = u["id"].as_str().unwrap();
        g.patch(
            &format!("/users/{id}"),
            &json!({"displayName": format!("Cap {n}")}),
        )
        .await;
    }
    let (s, _, e) = g.get(&old).await;
    assert_eq!(s, 400);
    assert_eq!(e["error"]["code"], "syncStateNotFound");
    let (_, _, body) = g.get("/users/delta?$deltatoken=latest").await;
    let fresh = body["@odata.deltaLink"].as_str().unwrap().to_owned();
    assert_eq!(g.get(&fresh).await.0, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_altered_and_foreign_tokens_are_refused() {
    let sim = Sim::start(SimOptions {
        users: Some(50),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let g = Graph::new(&sim).await;
    for url in [
        "/users/delta?$deltatoken=garbage",
        "/users/delta?$skiptoken=garbage",
        "/users/delta?$deltatoken=",
    ] {
        let (s, _, e) = g.get(url).await;
        assert_eq!(s, 400, "{url}: {e}");
        assert_eq!(e["error"]["code"], "Request_BadRequest", "{e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("malformed"),
            "{e}"
        );
    }
    let (_, _, body) = g.get("/users/delta?$deltatoken=latest").await;
    let link = body["@odata.deltaLink"].as_str().unwrap().to_owned();
    let (head, tok) = link.split_once("$deltatoken=").unwrap();
    let mut altered: Vec<char> = tok.chars().collect();
    altered[5] = if altered[5] == 'A' { 'B' } else { 'A' };
    let altered: String = altered.into_iter().collect();
    let (s, _, e) = g.get(&format!("{head}$deltatoken={altered}")).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (400, Some("Request_BadRequest"))
    );
    // A deltatoken given as a skiptoken is not one.
    let (s, _, _) = g.get(&format!("{head}$skiptoken={tok}")).await;
    assert_eq!(s, 400);

    // A token of another simulator run: its change log is gone, so it is expired.
    let other = Sim::start(SimOptions {
        users: Some(50),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let g2 = Graph::new(&other).await;
    let (s, _, e) = g2.get(&format!("/users/delta?$deltatoken={tok}")).await;
    assert_eq!(s, 400);
    assert_eq!(e["error"]["code"], "syncStateNotFound");
    other.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn delta_query_options_top_ignored_orderby_expand_refused_filter_by_ids() {
    let sim = Sim::start(SimOptions {
        users: Some(450),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let g = Graph::new(&sim).await;
    // $top is ignored: the page is the delta page (200).
    let (s, _, body) = g.get("/users/delta?$top=5&$select=id").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 200);
    for (url, code) in [
        (
            "/users/delta?$orderby=displayName",
            "Request_UnsupportedQuery",
        ),
        ("/users/delta?$expand=manager", "Request_UnsupportedQuery"),
        (
            "/users/delta?$filter=displayName eq 'x'",
            "Request_UnsupportedQuery",
        ),
        (
            "/users/delta?$filter=startswith(userPrincipalName,'a')",
            "Request_UnsupportedQuery",
        ),
        ("/users/delta?$select=nonsense", "BadRequest"),
    ] {
        let (s, _, e) = g.get(url).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (400, Some(code)),
            "{url}: {e}"
        );
    }
    let (_, _, e) = g.get("/users/delta?$filter=displayName eq 'x'").await;
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("'displayName'"));
    let (s, _, _) = g
        .send(
            g.c.post(g.url("/users/delta"))
                .bearer_auth(&g.token)
                .json(&json!({})),
        )
        .await;
    assert_eq!(s, 405);

    // $filter by ids: only those users, now and in later rounds; at most 50 ids.
    let (_, _, some) = g.get("/users?$top=4&$select=id").await;
    let ids: Vec<String> = some["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    let filter = format!(
        "id eq '{}' or id eq '{}' or id eq '00000000-0000-0000-0000-00000000dead'",
        ids[0],
        ids[1].to_uppercase()
    );
    let r = round(
        &g,
        &format!("/users/microsoft.graph.delta?$filter={filter}&$select=displayName"),
        false,
    )
    .await;
    let got: HashSet<String> = r
        .items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_lowercase())
        .collect();
    assert_eq!(got, set(&[&ids[0].to_lowercase(), &ids[1].to_lowercase()]));
    assert!(
        r.delta_link
            .contains("/users/microsoft.graph.delta?$deltatoken="),
        "links keep the form asked: {}",
        r.delta_link
    );
    for id in [&ids[1], &ids[2], &ids[3]] {
        g.patch(&format!("/users/{id}"), &json!({"displayName": "Filtered"}))
            .await;
    }
    let later = round(&g, &r.delta_link, false).await;
    assert_eq!(
        later.items,
        vec![json!({"displayName": "Filtered", "id": ids[1]})]
    );
    let many = (0..51)
        .map(|i| format!("id eq '00000000-0000-0000-0000-{i:012}'"))
        .collect::<Vec<_>>()
        .join(" or ");
    let (s, _, e) = g.get(&format!("/users/delta?$filter={many}")).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (400, Some("Request_UnsupportedQuery"))
    );
    let fifty = (0..50)
        .map(|i| format!("id eq '00000000-0000-0000-0000-{i:012}'"))
        .collect::<Vec<_>>()
        .join(" or ");
    let (s, _, body) = g.get(&format!("/users/delta?$filter={fifty}")).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["value"], json!([]));

    // Default selection: the §1 default set, id last.
    let text =
        g.c.get(g.url("/users/delta"))
            .bearer_auth(&g.token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    let first = &body["value"][0];
    let raw_first = &text[text.find("\"value\":[{").unwrap()..];
    let raw_first = &raw_first[..raw_first.find('}').unwrap()];
    assert!(
        raw_first.ends_with(&format!("\"id\":\"{}\"", first["id"].as_str().unwrap())),
        "id last: {raw_first}"
    );
    assert!(first.get("accountEnabled").is_none());
    assert!(first["userPrincipalName"].is_string());

    // Through $batch too.
    let (s, _, b) = g
        .batch(vec![
            json!({"id": "1", "method": "GET", "url": "/users/delta?$deltatoken=latest"}),
        ])
        .await;
    assert_eq!(s, 200);
    let item = &b["responses"][0];
    assert_eq!(item["status"], 200, "{b}");
    assert!(item["body"]["@odata.deltaLink"].is_string());
    sim.shutdown().await;
}

#[tokio::test]
async fn startswith_on_upn_and_display_name_ignores_case() {
    let sim = Sim::start(SimOptions {
        users: Some(800),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let g = Graph::new(&sim).await;
    create(&g, "QuinnUpper.Case", &sim.default_domain, json!({})).await;
    let ids = |body: &Value| -> HashSet<String> {
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut last = None;
    for prefix in ["quinnupper", "QUINNUPPER", "QuinnUpper.c"] {
        let (s, _, body) = g
            .get(&format!(
                "/users?$filter=startswith(userPrincipalName,'{prefix}')&$select=id,userPrincipalName"
            ))
            .await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(
            body["value"][0]["userPrincipalName"],
            format!("QuinnUpper.Case@{}", sim.default_domain)
        );
        let got = ids(&body);
        assert_eq!(got.len(), 1);
        if let Some(prev) = last.replace(got.clone()) {
            assert_eq!(prev, got);
        }
    }
    for (lower, upper) in [("a", "A"), ("m", "M")] {
        let (_, _, lo) = g
            .get(&format!(
                "/users?$filter=startswith(userPrincipalName,'{lower}')&$select=id&$top=999"
            ))
            .await;
        let (_, _, up) = g
            .get(&format!(
                "/users?$filter=startswith(userPrincipalName,'{upper}')&$select=id&$top=999"
            ))
            .await;
        assert!(!ids(&lo).is_empty());
        assert_eq!(ids(&lo), ids(&up), "startswith '{lower}' = '{upper}'");
    }
    let (_, _, lo) = g
        .get("/users?$filter=startswith(displayName,'northwind')&$select=displayName")
        .await;
    assert_eq!(lo["value"][0]["displayName"], "Northwind Admin");
    sim.shutdown().await;
}

#[tokio::test]
async fn count_needs_consistency_level_and_count_true_alone_is_ignored() {
    let sim = Sim::start(SimOptions {
        users: Some(321),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let g = Graph::new(&sim).await;
    let (s, _, e) = g.get("/users/$count").await;
    assert_eq!(s, 400);
    assert_graph_error(
        &e,
        "Request_BadRequest",
        "$count is not currently supported.",
    );
    let (s, _, body) = g.get("/users?$count=true&$select=id").await;
    assert_eq!(s, 200, "{body}");
    assert!(body.get("@odata.count").is_none(), "silently ignored");
    let r =
        g.c.get(g.url("/users/$count"))
            .bearer_auth(&g.token)
            .header("ConsistencyLevel", "eventual")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(r.text().await.unwrap(), "321");
    let r =
        g.c.get(g.url("/users/$count?$filter=startswith(userPrincipalName,'A')"))
            .bearer_auth(&g.token)
            .header("ConsistencyLevel", "eventual")
            .send()
            .await
            .unwrap();
    let shard: usize = r.text().await.unwrap().parse().unwrap();
    let (_, _, body) = g
        .get("/users?$filter=startswith(userPrincipalName,'a')&$select=id&$top=999")
        .await;
    assert_eq!(shard, body["value"].as_array().unwrap().len());
    sim.shutdown().await;
}
