//! The simulator's groups over real HTTP: create (security and Microsoft 365 groups) with Graph's
//! exact mailNickname errors, list with paging/$select/$filter, members add/list/remove with the
//! real errors, inside $batch too, and the members list's throttling cost; and the group
//! permissions: writes refused with 403 for an app that may only manage users.

use m365sync::sim::{Sim, SimOptions};
use serde_json::{json, Value};

mod sim_common;
use sim_common::*;

fn security(name: &str, nick: &str) -> Value {
    json!({"displayName": name, "mailEnabled": false, "mailNickname": nick, "securityEnabled": true, "groupTypes": []})
}

fn unified(name: &str, nick: &str) -> Value {
    json!({"displayName": name, "mailEnabled": true, "mailNickname": nick, "securityEnabled": false, "groupTypes": ["Unified"]})
}

const INVALID: &str = "Invalid value specified for property 'mailNickname' of resource 'Group'.";

async fn user_ids(g: &Graph, n: usize) -> Vec<(String, String)> {
    let (s, _, b) = g
        .get(&format!("/users?$top={n}&$select=id,userPrincipalName"))
        .await;
    assert_eq!(s, 200);
    b["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["id"].as_str().unwrap().to_string(),
                u["userPrincipalName"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn odata_id(id: &str) -> Value {
    json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}")})
}

#[tokio::test]
async fn create_security_and_m365_groups_with_graphs_rules() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let g = Graph::new(&sim).await;

    let (s, h, b) = g.post("/groups", &security("Sales (EU)", "SalesEU")).await;
    assert_eq!(s, 201, "{b}");
    assert!(h.get("location").is_some());
    assert_eq!(b["displayName"], "Sales (EU)");
    assert_eq!(b["mailNickname"], "SalesEU");
    assert_eq!(b["securityEnabled"], true);
    assert_eq!(b["groupTypes"], json!([]));
    assert!(b["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("#groups/$entity"));
    let by_name = sim.group_by_name("sales (eu)").unwrap();
    assert_eq!(by_name["id"], b["id"]);

    // Forbidden characters and spaces, one by one, and the length limit.
    for bad in [
        "Sales EU",
        "Sales(EU)",
        "a)b",
        "a@b",
        "a\\b",
        "a[b",
        "a]b",
        "a\"b",
        "a;b",
        "a:b",
        "a<b",
        "a>b",
        "a,b",
        "é",
    ] {
        let (s, _, b) = g.post("/groups", &security("X", bad)).await;
        assert_eq!(s, 400, "{bad}");
        assert_eq!(b["error"]["code"], "Request_BadRequest");
        assert_eq!(b["error"]["message"], INVALID, "{bad}");
    }
    let (s, _, b) = g.post("/groups", &security("X", &"n".repeat(65))).await;
    assert_eq!((s, b["error"]["message"].as_str().unwrap()), (400, INVALID));
    let (s, _, _) = g.post("/groups", &security("Long", &"n".repeat(64))).await;
    assert_eq!(s, 201);
    let (s, _, _) = g.post("/groups", &security("R&D; Ops", "R&DOps")).await;
    assert_eq!(s, 201, "& is allowed in a group mailNickname");

    // Missing nickname.
    let (s, _, b) = g
        .post(
            "/groups",
            &json!({"displayName": "X", "mailEnabled": false, "securityEnabled": true}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        b["error"]["message"],
        "A value is required for property 'mailNickname' of resource 'Group'."
    );
    // Display name too long, missing.
    let (s, _, _) = g.post("/groups", &security(&"d".repeat(257), "d")).await;
    assert_eq!(s, 400);
    let (s, _, _) = g.post("/groups", &security(&"d".repeat(256), "d256")).await;
    assert_eq!(s, 201);

    // Mail-enabled security group / distribution list.
    let (s, _, b) = g
        .post("/groups", &json!({"displayName": "DL", "mailEnabled": true, "mailNickname": "dl", "securityEnabled": true, "groupTypes": []}))
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        b["error"]["message"],
        "Cannot Create a mail-enabled security groups and or distribution list."
    );

    // Microsoft 365 groups: unique nickname with ObjectConflict details; security groups may share.
    let (s, _, b) = g.post("/groups", &unified("Finance", "Finance")).await;
    assert_eq!(s, 201);
    assert_eq!(b["groupTypes"], json!(["Unified"]));
    assert!(b["mail"].as_str().unwrap().starts_with("Finance@"));
    let (s, _, b) = g.post("/groups", &unified("Finance 2", "finance")).await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["code"], "Request_BadRequest");
    assert_eq!(
        b["error"]["message"],
        "Another object with the same value for property mailNickname already exists."
    );
    assert_eq!(b["error"]["details"][0]["code"], "ObjectConflict");
    assert_eq!(b["error"]["details"][0]["target"], "mailNickname");
    let (s, _, _) = g.post("/groups", &security("Finance sec", "Finance")).await;
    assert_eq!(s, 201);
    sim.shutdown().await;
}

#[tokio::test]
async fn list_groups_paged_selected_and_filtered() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let g = Graph::new(&sim).await;
    for i in 0..5 {
        let (s, _, _) = g
            .post(
                "/groups",
                &security(&format!("Team {i}"), &format!("team{i}")),
            )
            .await;
        assert_eq!(s, 201);
    }
    g.post("/groups", &security("Sales (EU)", "SalesEU")).await;
    let (s, _, b) = g.get("/groups?$top=2&$select=id,displayName").await;
    assert_eq!(s, 200);
    assert_eq!(b["value"].as_array().unwrap().len(), 2);
    assert!(b["value"][0].get("mailNickname").is_none());
    let mut names = Vec::new();
    let mut next = b["@odata.nextLink"].as_str().map(str::to_string);
    names.extend(
        b["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["displayName"].clone()),
    );
    while let Some(url) = next {
        let (s, _, b) = g.get(&url).await;
        assert_eq!(s, 200);
        assert!(
            b["value"][0].get("mailNickname").is_none(),
            "$select kept across pages"
        );
        names.extend(
            b["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["displayName"].clone()),
        );
        next = b["@odata.nextLink"].as_str().map(str::to_string);
    }
    assert_eq!(names.len(), 6);

    let (s, _, b) = g
        .get("/groups?$filter=displayName%20eq%20%27sales%20(eu)%27")
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["value"].as_array().unwrap().len(), 1);
    assert_eq!(b["value"][0]["mailNickname"], "SalesEU");
    let (s, _, b) = g
        .get("/groups?$filter=startswith(mailNickname,%27team%27)")
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["value"].as_array().unwrap().len(), 5);
    let (s, _, b) = g
        .get("/groups?$filter=mailNickname%20eq%20%27team3%27")
        .await;
    assert_eq!(
        (s, b["value"][0]["displayName"].as_str()),
        (200, Some("Team 3"))
    );
    let id = b["value"][0]["id"].as_str().unwrap().to_string();
    let (s, _, b) = g.get(&format!("/groups/{id}")).await;
    assert_eq!((s, b["displayName"].as_str()), (200, Some("Team 3")));
    let (s, _, b) = g.get("/groups/00000000-0000-0000-0000-000000000000").await;
    assert_eq!(s, 404);
    assert_eq!(b["error"]["code"], "Request_ResourceNotFound");
    let (s, _, _) = g.get("/groups?$top=1000").await;
    assert_eq!(s, 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn members_add_list_remove_with_the_real_errors() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let g = Graph::new(&sim).await;
    let (_, _, b) = g.post("/groups", &security("Finance", "Finance")).await;
    let gid = b["id"].as_str().unwrap().to_string();
    let users = user_ids(&g, 3).await;
    for (id, _) in &users {
        let (s, _, b) = g
            .post(&format!("/groups/{gid}/members/$ref"), &odata_id(id))
            .await;
        assert_eq!(s, 204, "{b}");
    }
    let (s, _, b) = g
        .post(
            &format!("/groups/{gid}/members/$ref"),
            &odata_id(&users[0].0),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["code"], "Request_BadRequest");
    assert_eq!(
        b["error"]["message"],
        "One or more added object references already exist for the following modified properties: 'members'."
    );
    let missing = "11111111-2222-3333-4444-555555555555";
    let (s, _, b) = g
        .post(&format!("/groups/{gid}/members/$ref"), &odata_id(missing))
        .await;
    assert_eq!(s, 404);
    assert_eq!(b["error"]["code"], "Request_ResourceNotFound");
    let (s, _, _) = g
        .post(
            &format!("/groups/{missing}/members/$ref"),
            &odata_id(&users[0].0),
        )
        .await;
    assert_eq!(s, 404);

    assert_eq!(
        sim.group_members(&gid).unwrap(),
        users.iter().map(|u| u.1.clone()).collect::<Vec<_>>()
    );
    let (s, h, b) = g.get(&format!("/groups/{gid}/members?$top=2")).await;
    assert_eq!(s, 200);
    assert_eq!(h["x-ms-resource-unit"], "3");
    assert_eq!(b["value"][0]["@odata.type"], "#microsoft.graph.user");
    assert_eq!(b["value"].as_array().unwrap().len(), 2);
    let next = b["@odata.nextLink"].as_str().unwrap().to_string();
    let (s, _, b) = g.get(&next).await;
    assert_eq!(s, 200);
    assert_eq!(b["value"].as_array().unwrap().len(), 1);
    assert!(b.get("@odata.nextLink").is_none());

    let (s, _, _) = g
        .delete(&format!("/groups/{gid}/members/{}/$ref", users[1].0))
        .await;
    assert_eq!(s, 204);
    let (s, _, b) = g
        .delete(&format!("/groups/{gid}/members/{}/$ref", users[1].0))
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        b["error"]["message"],
        "One or more removed object references do not exist for the following modified properties: 'members'."
    );
    assert_eq!(sim.group_members(&gid).unwrap().len(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn group_writes_inside_batch_and_throttled_by_the_write_budget() {
    let sim = Sim::start(SimOptions {
        write_budget: Some(3),
        budget_window: Some(std::time::Duration::from_secs(30)),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let g = Graph::new(&sim).await;
    let users = user_ids(&g, 3).await;
    let (s, _, b) = g
        .batch(vec![
            json!({"id": "1", "method": "POST", "url": "/groups", "headers": {"Content-Type": "application/json"}, "body": security("Ops", "Ops")}),
            json!({"id": "2", "method": "POST", "url": "/groups", "headers": {"Content-Type": "application/json"}, "body": security("Bad", "Bad Nick")}),
        ])
        .await;
    assert_eq!(s, 200);
    let by_id = |b: &Value, id: &str| {
        b["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id(&b, "1")["status"], 201);
    assert_eq!(by_id(&b, "2")["status"], 400);
    assert_eq!(by_id(&b, "2")["body"]["error"]["message"], INVALID);
    let gid = by_id(&b, "1")["body"]["id"].as_str().unwrap().to_string();
    let reqs: Vec<Value> = users
        .iter()
        .enumerate()
        .map(|(i, (id, _))| {
            json!({"id": format!("m{i}"), "method": "POST", "url": format!("/groups/{gid}/members/$ref"),
                   "headers": {"Content-Type": "application/json"}, "body": odata_id(id)})
        })
        .collect();
    let (s, _, b) = g.batch(reqs).await;
    assert_eq!(s, 200);
    let statuses: Vec<i64> = (0..3)
        .map(|i| by_id(&b, &format!("m{i}"))["status"].as_i64().unwrap())
        .collect();
    // The budget of 3 writes: the create, the refused create (writes count when tried), then one member.
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(sim.throttled_count() >= 1);
    let added = statuses.iter().filter(|s| **s == 204).count();
    assert_eq!(sim.group_members(&gid).unwrap().len(), added);
    sim.shutdown().await;
}

fn assert_denied(b: &Value) {
    assert_graph_error(
        b,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    );
}

/// An app with user permissions but no group permission (the seed's "users only" app) is
/// refused every group write and read with Graph's 403, directly and item by item inside
/// $batch, while the full-permission app goes on working; the read-only app reads groups but
/// cannot write them.
#[tokio::test]
async fn group_writes_need_a_group_permission() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let full = Graph::new(&sim).await;
    let users_only = Graph::as_app(&sim, USERS_ONLY_APP).await;
    let (uid, _) = user_ids(&full, 1).await.remove(0);

    // Users: granted.
    let (s, _, b) = users_only.get("/users?$top=1").await;
    assert_eq!(s, 200, "{b}");
    // Groups: POST refused, nothing created, nothing counted as applied.
    let (s, _, b) = users_only.post("/groups", &security("Ops", "Ops")).await;
    assert_eq!(s, 403);
    assert_denied(&b);
    assert_eq!(sim.group_count(), 0);
    assert_eq!(sim.write_count(), 0);
    let (s, _, b) = users_only.get("/groups").await;
    assert_eq!(s, 403);
    assert_denied(&b);

    // The full app creates the group and a member; the users-only app may not change members.
    let (s, _, b) = full.post("/groups", &security("Ops", "Ops")).await;
    assert_eq!(s, 201, "{b}");
    let gid = b["id"].as_str().unwrap().to_string();
    let (s, _, b) = users_only
        .post(&format!("/groups/{gid}/members/$ref"), &odata_id(&uid))
        .await;
    assert_eq!(s, 403);
    assert_denied(&b);
    assert_eq!(sim.group_members(&gid).unwrap().len(), 0);
    let (s, _, _) = full
        .post(&format!("/groups/{gid}/members/$ref"), &odata_id(&uid))
        .await;
    assert_eq!(s, 204);
    let (s, _, b) = users_only
        .delete(&format!("/groups/{gid}/members/{uid}/$ref"))
        .await;
    assert_eq!(s, 403);
    assert_denied(&b);
    assert_eq!(sim.group_members(&gid).unwrap().len(), 1);
    for (s, b) in [
        {
            let (s, _, b) = users_only
                .patch(&format!("/groups/{gid}"), &json!({"description": "x"}))
                .await;
            (s, b)
        },
        {
            let (s, _, b) = users_only.delete(&format!("/groups/{gid}")).await;
            (s, b)
        },
    ] {
        assert_eq!(s, 403);
        assert_denied(&b);
    }

    // Inside $batch each item is checked on its own: the group items get their own 403, the
    // user read next to them succeeds.
    let (s, _, b) = users_only
        .batch(vec![
            json!({"id": "create", "method": "POST", "url": "/groups", "headers": {"Content-Type": "application/json"}, "body": security("Ops2", "Ops2")}),
            json!({"id": "add", "method": "POST", "url": format!("/groups/{gid}/members/$ref"), "headers": {"Content-Type": "application/json"}, "body": odata_id(&uid)}),
            json!({"id": "remove", "method": "DELETE", "url": format!("/groups/{gid}/members/{uid}/$ref")}),
            json!({"id": "read", "method": "GET", "url": "/users?$top=1"}),
        ])
        .await;
    assert_eq!(s, 200);
    let item = |id: &str| {
        b["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()
            .clone()
    };
    for id in ["create", "add", "remove"] {
        assert_eq!(item(id)["status"], 403, "{id}: {b}");
        assert_denied(&item(id)["body"]);
    }
    assert_eq!(item("read")["status"], 200);
    assert_eq!(sim.group_count(), 1);
    assert_eq!(sim.group_members(&gid).unwrap().len(), 1);

    // The full-permission app, in a batch too.
    let (s, _, b) = full
        .batch(vec![
            json!({"id": "create", "method": "POST", "url": "/groups", "headers": {"Content-Type": "application/json"}, "body": security("Ops2", "Ops2")}),
            json!({"id": "remove", "method": "DELETE", "url": format!("/groups/{gid}/members/{uid}/$ref")}),
        ])
        .await;
    assert_eq!(s, 200);
    let statuses: Vec<_> = b["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_i64().unwrap())
        .collect();
    assert!(statuses.contains(&201) && statuses.contains(&204), "{b}");
    assert_eq!(sim.group_count(), 2);
    assert_eq!(sim.group_members(&gid).unwrap().len(), 0);

    // The read-only app (Group.Read.All) reads groups and is refused writes.
    let ro = Graph::as_app(&sim, READ_ONLY_APP).await;
    assert_eq!(ro.get("/groups").await.0, 200);
    let (s, _, b) = ro.post("/groups", &security("Ops3", "Ops3")).await;
    assert_eq!(s, 403);
    assert_denied(&b);
    sim.shutdown().await;
}

/// A delegated token carries the scopes asked for plus what an admin consented to for the app
/// (the console's defaults include Group.ReadWrite.All), so a signed-in admin creates groups
/// even when the sign-in asked only for user scopes.
#[tokio::test]
async fn delegated_tokens_carry_the_consented_group_scopes() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let admin = Graph::delegated(
        &sim,
        "https://graph.microsoft.com/User.ReadWrite.All offline_access",
    )
    .await;
    let (s, _, b) = admin
        .post("/groups", &security("Delegated", "Delegated"))
        .await;
    assert_eq!(s, 201, "{b}");
    sim.shutdown().await;
}
