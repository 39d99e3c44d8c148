//! The simulator's Graph writes over real HTTP: create/update/delete users with Graph's exact
//! validation errors, deleted items and restore, JSON batching, throttling budgets, and the
//! random faults (5xx never applied; ambiguous writes applied once, then the connection drops).

use std::time::{Duration, Instant};

use m365sync::sim::{Sim, SimOptions};
use serde_json::{json, Value};

mod sim_common;
use sim_common::*;

const PW: &str = "Str0ng!Passw0rd";

fn new_user(upn: &str) -> Value {
    let nick = upn.split('@').next().unwrap();
    json!({
        "accountEnabled": true,
        "displayName": format!("User {nick}"),
        "mailNickname": nick,
        "userPrincipalName": upn,
        "passwordProfile": {"password": PW, "forceChangePasswordNextSignIn": true},
    })
}

fn with(mut v: Value, key: &str, val: Value) -> Value {
    v[key] = val;
    v
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

const DOMAIN: &str = "northwindtraders.com";
const FEDERATED: &str = "corp.northwindtraders.com";

async fn start(opts: SimOptions) -> (Sim, Graph) {
    let sim = Sim::start(opts).await.unwrap();
    let g = Graph::new(&sim).await;
    (sim, g)
}

#[tokio::test]
async fn create_user_answers_201_with_default_properties_and_location() {
    let (sim, g) = start(SimOptions::default()).await;
    let before = sim.user_count();
    let upn = format!("new.hire@{DOMAIN}");
    let body = with(new_user(&upn), "givenName", json!("New"));
    let (s, h, u) = g.post("/users", &body).await;
    assert_eq!(s, 201, "{u}");
    assert!(u["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("/v1.0/$metadata#users/$entity"));
    assert_eq!(u["userPrincipalName"], upn);
    assert_eq!(u["givenName"], "New");
    let id = u["id"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    assert!(
        u.get("accountEnabled").is_none(),
        "only default properties: {u}"
    );
    assert!(h["location"].to_str().unwrap().contains(id));
    assert!(h.contains_key("request-id"));
    assert_eq!(h["x-ms-resource-unit"], "1");
    assert_eq!(sim.user_count(), before + 1);
    assert_eq!(sim.write_count(), 1);
    let full = sim.user_by_upn(&upn.to_uppercase()).unwrap();
    assert_eq!(full["accountEnabled"], true);
    assert_eq!(full["mailNickname"], "new.hire");
    assert_eq!(full["proxyAddresses"], json!([format!("SMTP:{upn}")]));
    assert_eq!(full["userType"], "Member");
    assert!(full["createdDateTime"].as_str().unwrap().ends_with('Z'));
    // Readable right away, by id and by UPN, with $select.
    let (s, _, got) = g
        .get(&format!("/users/{id}?$select=accountEnabled,mailNickname"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(got["accountEnabled"], true);
    let (s, _, got) = g
        .get(&format!(
            "/users?$filter=userPrincipalName eq '{upn}'&$select=id"
        ))
        .await;
    assert_eq!(s, 200);
    assert_eq!(got["value"][0]["id"], id);
    // A federated domain with an immutable id is fine; mail becomes the primary SMTP address.
    let fed = with(
        with(
            new_user(&format!("fed.user@{FEDERATED}")),
            "onPremisesImmutableId",
            json!("ZmVkLXVzZXI="),
        ),
        "mail",
        json!(format!("fed.user@{DOMAIN}")),
    );
    let (s, _, u) = g.post("/users", &fed).await;
    assert_eq!(s, 201, "{u}");
    let full = sim.user_by_upn(&format!("fed.user@{FEDERATED}")).unwrap();
    assert_eq!(
        full["proxyAddresses"],
        json!([format!("SMTP:fed.user@{DOMAIN}")])
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn create_user_validation_errors_carry_graphs_exact_messages() {
    let (sim, g) = start(SimOptions::default()).await;
    let upn = format!("valid.one@{DOMAIN}");
    let base = new_user(&upn);
    let mut cases: Vec<(Value, &str, String)> = Vec::new();
    for req in [
        "accountEnabled",
        "displayName",
        "mailNickname",
        "userPrincipalName",
        "passwordProfile",
    ] {
        cases.push((
            without(base.clone(), req),
            "Request_BadRequest",
            format!("A value is required for property '{req}' of resource 'User'."),
        ));
    }
    let upn_invalid = "Property userPrincipalName is invalid.".to_owned();
    let long_local = format!("{}@{DOMAIN}", "a".repeat(65));
    let long_total = format!("{}@{}.{DOMAIN}", "a".repeat(64), "b".repeat(40));
    for bad in [
        "no-at-sign",
        "a@b@northwindtraders.com",
        "trailing.@northwindtraders.com",
        "space here@northwindtraders.com",
        "percent%@northwindtraders.com",
        "josé@northwindtraders.com",
        long_local.as_str(),
        long_total.as_str(),
        "",
    ] {
        cases.push((
            with(base.clone(), "userPrincipalName", json!(bad)),
            "Request_BadRequest",
            upn_invalid.clone(),
        ));
    }
    let domain_msg = "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.".to_owned();
    for bad in ["x@example.org", "x@unverified-not-ours.net"] {
        cases.push((
            with(base.clone(), "userPrincipalName", json!(bad)),
            "Request_BadRequest",
            domain_msg.clone(),
        ));
    }
    cases.push((
        with(
            base.clone(),
            "userPrincipalName",
            json!(format!("fed@{FEDERATED}")),
        ),
        "Request_BadRequest",
        "A value is required for property 'onPremisesImmutableId' of resource 'User'.".into(),
    ));
    for bad in [
        "has space",
        "a@b",
        "paren(",
        "back\\slash",
        "quote\"",
        "semi;",
        "colon:",
        "lt<",
        "comma,",
        "brack[",
    ] {
        cases.push((
            with(base.clone(), "mailNickname", json!(bad)),
            "Request_BadRequest",
            "Invalid value specified for property 'mailNickname' of resource 'User'.".into(),
        ));
    }
    cases.push((
        with(base.clone(), "mailNickname", json!("n".repeat(65))),
        "Request_BadRequest",
        "Invalid value specified for property 'mailNickname' of resource 'User'.".into(),
    ));
    let pw_msg = "The specified password does not comply with password complexity requirements. Please provide a different password.".to_owned();
    for bad in [
        "Sh0rt!",
        "alllowercase1",
        "ALLUPPER123",
        "NoDigitsOrSymbols",
        "Pässw0rd!x",
    ] {
        cases.push((
            with(
                base.clone(),
                "passwordProfile",
                json!({"password": bad, "forceChangePasswordNextSignIn": true}),
            ),
            "Request_BadRequest",
            pw_msg.clone(),
        ));
    }
    cases.push((
        with(base.clone(), "favouriteColour", json!("blue")),
        "BadRequest",
        "The property 'favouriteColour' does not exist on type 'microsoft.graph.user'. Make sure to only use property names that are defined by the type or mark the type as open type.".into(),
    ));
    for (body, code, msg) in &cases {
        let (s, h, e) = g.post("/users", body).await;
        assert_eq!(s, 400, "{body} -> {e}");
        assert_graph_error(&e, code, msg);
        assert!(h.contains_key("request-id"));
    }
    // 64 before @ is allowed; DisableStrongPassword relaxes the classes, not the length.
    let ok = with(
        base.clone(),
        "userPrincipalName",
        json!(format!("{}@{DOMAIN}", "b".repeat(64))),
    );
    assert_eq!(g.post("/users", &ok).await.0, 201);
    let relaxed = with(
        with(
            new_user(&format!("relaxed@{DOMAIN}")),
            "passwordPolicies",
            json!("DisableStrongPassword"),
        ),
        "passwordProfile",
        json!({"password": "alllowercase", "forceChangePasswordNextSignIn": false}),
    );
    assert_eq!(g.post("/users", &relaxed).await.0, 201);
    // Not JSON.
    let (s, _, e) = g
        .send(
            g.c.post(g.url("/users"))
                .bearer_auth(&g.token)
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(e["error"]["code"], "BadRequest");
    assert_eq!(sim.write_count(), 2, "no failed create was applied");
    sim.shutdown().await;
}

#[tokio::test]
async fn duplicate_upn_is_an_object_conflict() {
    let (sim, g) = start(SimOptions::default()).await;
    let upn = format!("twice@{DOMAIN}");
    assert_eq!(g.post("/users", &new_user(&upn)).await.0, 201);
    let (s, _, e) = g.post("/users", &new_user(&upn.to_uppercase())).await;
    assert_eq!(s, 400);
    assert_graph_error(
        &e,
        "Request_BadRequest",
        "Another object with the same value for property userPrincipalName already exists.",
    );
    assert_eq!(e["error"]["details"][0]["code"], "ObjectConflict");
    assert_eq!(e["error"]["details"][0]["target"], "userPrincipalName");
    // Another user whose mail is that address collides on proxyAddresses.
    let other = with(
        new_user(&format!("other@{DOMAIN}")),
        "mail",
        json!(upn.clone()),
    );
    let (s, _, e) = g.post("/users", &other).await;
    assert_eq!(s, 400);
    assert_graph_error(
        &e,
        "Request_BadRequest",
        "Another object with the same value for property proxyAddresses already exists.",
    );
    assert_eq!(sim.users_with_upn_count(&upn), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_soft_deleted_users_address_blocks_create_until_restore_or_purge() {
    let (sim, g) = start(SimOptions::default()).await;
    // The seed's former employee.
    let farid = format!("farid.haddad@{DOMAIN}");
    assert_eq!(sim.deleted_count(), 2);
    assert!(sim.user_by_upn(&farid).is_none());
    assert_eq!(sim.users_with_upn_count(&farid), 1);
    let proxy_msg =
        "Another object with the same value for property proxyAddresses already exists.";
    let (s, _, e) = g.post("/users", &new_user(&farid)).await;
    assert_eq!(s, 400);
    assert_graph_error(&e, "Request_BadRequest", proxy_msg);
    // Restore him: now the UPN itself is taken by a live user.
    let (s, _, list) = g
        .get("/directory/deletedItems/microsoft.graph.user?$select=id,userPrincipalName")
        .await;
    assert_eq!(s, 200);
    let id = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["userPrincipalName"] == farid.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _, r) = g
        .post(&format!("/directory/deletedItems/{id}/restore"), &json!({}))
        .await;
    assert_eq!(s, 200, "{r}");
    let (s, _, e) = g.post("/users", &new_user(&farid)).await;
    assert_eq!(s, 400);
    assert_graph_error(
        &e,
        "Request_BadRequest",
        "Another object with the same value for property userPrincipalName already exists.",
    );
    // Delete and purge: the address is free at once.
    assert_eq!(g.delete(&format!("/users/{farid}")).await.0, 204);
    assert_eq!(
        g.post("/users", &new_user(&farid)).await.2["error"]["message"],
        proxy_msg
    );
    // Purging a user has no application permission (graph-notes §16): a signed-in admin does it.
    let (s, _, e) = g.delete(&format!("/directory/deletedItems/{id}")).await;
    assert_eq!(s, 403);
    assert_graph_error(
        &e,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    );
    let admin = Graph::delegated(&sim, "User.ReadWrite.All").await;
    assert_eq!(
        admin
            .delete(&format!("/directory/deletedItems/{id}"))
            .await
            .0,
        204
    );
    assert_eq!(g.get(&format!("/directory/deletedItems/{id}")).await.0, 404);
    let (s, _, u) = g.post("/users", &new_user(&farid)).await;
    assert_eq!(s, 201, "{u}");
    assert_eq!(sim.users_with_upn_count(&farid), 1);
    // soft_delete seeds the same situation for any live user.
    let irvin = format!("irvin.sayers@{DOMAIN}");
    assert!(sim.soft_delete(&irvin));
    assert!(!sim.soft_delete(&irvin));
    assert_eq!(
        g.post("/users", &new_user(&irvin)).await.2["error"]["message"],
        proxy_msg
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn patch_enables_disables_and_sets_passwords() {
    let (sim, g) = start(SimOptions::default()).await;
    let upn = format!("patchy@{DOMAIN}");
    let (_, _, u) = g.post("/users", &new_user(&upn)).await;
    let id = u["id"].as_str().unwrap().to_owned();
    let (s, h, b) = g
        .patch(&format!("/users/{id}"), &json!({"accountEnabled": false}))
        .await;
    assert_eq!(s, 204);
    assert!(b.is_null());
    assert!(h.contains_key("request-id"));
    assert_eq!(sim.user_by_upn(&upn).unwrap()["accountEnabled"], false);
    let (s, _, _) = g
        .patch(
            &format!("/users/{upn}"),
            &json!({"accountEnabled": true, "displayName": "Patchy McPatch", "jobTitle": null}),
        )
        .await;
    assert_eq!(s, 204);
    let full = sim.user_by_upn(&upn).unwrap();
    assert_eq!(full["accountEnabled"], true);
    assert_eq!(full["displayName"], "Patchy McPatch");
    let (s, _, _) = g
        .patch(
            &format!("/users/{id}"),
            &json!({"passwordProfile": {"password": "An0ther!Secret", "forceChangePasswordNextSignIn": false}}),
        )
        .await;
    assert_eq!(s, 204);
    let (s, _, e) = g
        .patch(
            &format!("/users/{id}"),
            &json!({"passwordProfile": {"password": "weak"}}),
        )
        .await;
    assert_eq!(s, 400);
    assert_graph_error(&e, "Request_BadRequest", "The specified password does not comply with password complexity requirements. Please provide a different password.");
    let (s, _, e) = g
        .patch(&format!("/users/{id}"), &json!({"shoeSize": 44}))
        .await;
    assert_eq!(s, 400);
    assert_graph_error(&e, "BadRequest", "The property 'shoeSize' does not exist on type 'microsoft.graph.user'. Make sure to only use property names that are defined by the type or mark the type as open type.");
    let (s, _, e) = g
        .patch(&format!("/users/{id}"), &json!({"accountEnabled": "yes"}))
        .await;
    assert_eq!(s, 400);
    assert_graph_error(
        &e,
        "Request_BadRequest",
        "Invalid value specified for property 'accountEnabled' of resource 'User'.",
    );
    // Renaming: found under the new UPN at once; the usual UPN and address rules apply.
    let renamed = format!("patchy.renamed@{DOMAIN}");
    let (s, _, _) = g
        .patch(
            &format!("/users/{id}"),
            &json!({"userPrincipalName": renamed, "mail": renamed}),
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(g.get(&format!("/users/{renamed}")).await.0, 200);
    assert_eq!(g.get(&format!("/users/{upn}")).await.0, 404);
    let full = sim.user_by_upn(&renamed).unwrap();
    assert_eq!(full["proxyAddresses"][0], format!("SMTP:{renamed}"));
    let (s, _, got) = g
        .get(&format!("/users?$filter=mail eq '{renamed}'&$select=id"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(got["value"][0]["id"], id.as_str());
    let (s, _, e) = g
        .patch(
            &format!("/users/{id}"),
            &json!({"mail": format!("irvin.sayers@{DOMAIN}")}),
        )
        .await;
    assert_eq!(s, 400);
    assert_graph_error(
        &e,
        "Request_BadRequest",
        "Another object with the same value for property proxyAddresses already exists.",
    );
    let (s, _, e) = g
        .patch(
            &format!("/users/{id}"),
            &json!({"userPrincipalName": "someone@example.org"}),
        )
        .await;
    assert_eq!(s, 400);
    assert_graph_error(&e, "Request_BadRequest", "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.");
    let missing = "00000000-0000-4000-8000-000000000000";
    let (s, _, e) = g
        .patch(
            &format!("/users/{missing}"),
            &json!({"accountEnabled": false}),
        )
        .await;
    assert_eq!(s, 404);
    assert_graph_error(&e, "Request_ResourceNotFound", &format!("Resource '{missing}' does not exist or one of its queried reference-property objects are not present."));
    assert_eq!(sim.write_count(), 5);
    sim.shutdown().await;
}

#[tokio::test]
async fn delete_goes_to_deleted_items_and_restore_brings_it_back() {
    let (sim, g) = start(SimOptions::default()).await;
    let upn = format!("leaver@{DOMAIN}");
    let (_, _, u) = g.post("/users", &new_user(&upn)).await;
    let id = u["id"].as_str().unwrap().to_owned();
    let (s, _, b) = g.delete(&format!("/users/{upn}")).await;
    assert_eq!(s, 204);
    assert!(b.is_null());
    assert_eq!(g.get(&format!("/users/{id}")).await.0, 404);
    assert_eq!(g.delete(&format!("/users/{id}")).await.0, 404);
    assert_eq!(sim.deleted_count(), 3);
    assert_eq!(sim.users_with_upn_count(&upn), 1);

    // The cast is mandatory.
    let (s, _, e) = g.get("/directory/deletedItems").await;
    assert_eq!(s, 400);
    assert_eq!(e["error"]["code"], "Request_BadRequest");
    // Paged like /users.
    let (s, _, page) = g
        .get("/directory/deletedItems/microsoft.graph.user?$top=2")
        .await;
    assert_eq!(s, 200);
    assert_eq!(page["value"].as_array().unwrap().len(), 2);
    let next = page["@odata.nextLink"].as_str().unwrap();
    let r = g.get(next).await;
    assert_eq!(r.0, 200);
    let last = &r.2["value"][0];
    assert!(r.2.get("@odata.nextLink").is_none());
    assert_eq!(last["@odata.type"], "#microsoft.graph.user");
    assert_eq!(last["id"], id.as_str());
    assert!(last["deletedDateTime"].as_str().unwrap().ends_with('Z'));
    // Found by UPN with $filter, as on /users.
    let (s, _, found) = g
        .get(&format!(
            "/directory/deletedItems/microsoft.graph.user?$filter=userPrincipalName eq '{upn}'"
        ))
        .await;
    assert_eq!(s, 200, "{found}");
    assert_eq!(found["value"].as_array().unwrap().len(), 1);
    assert_eq!(found["value"][0]["id"], id.as_str());
    assert_eq!(
        g.get("/directory/deletedItems/microsoft.graph.user?$filter=nonsense eq 'x'")
            .await
            .0,
        400
    );
    assert_eq!(
        g.get("/directory/deletedItems/microsoft.graph.user?$top=1000")
            .await
            .0,
        400
    );

    // A new live user takes the UPN (allowed: its mail differs, so no proxy clash) ...
    let taker = with(new_user(&upn), "mail", json!(format!("taker@{DOMAIN}")));
    assert_eq!(g.post("/users", &taker).await.0, 201);
    // ... so restoring conflicts, unless a new UPN is given.
    let restore = format!("/directory/deletedItems/{id}/restore");
    let (s, _, e) = g.post(&restore, &json!({})).await;
    assert_eq!(s, 400);
    assert_graph_error(
        &e,
        "Request_BadRequest",
        "Another object with the same value for property userPrincipalName already exists.",
    );
    let renamed = format!("leaver2@{DOMAIN}");
    let (s, _, r) = g
        .post(
            &restore,
            &json!({"newUserPrincipalName": renamed, "autoReconcileProxyConflict": true}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert!(r["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("$metadata#directoryObjects/$entity"));
    assert_eq!(r["@odata.type"], "#microsoft.graph.user");
    assert_eq!(r["id"], id.as_str());
    assert_eq!(r["userPrincipalName"], renamed);
    assert_eq!(g.get(&format!("/users/{id}")).await.0, 200);
    assert_eq!(sim.deleted_count(), 2);
    assert_eq!(g.post(&restore, &json!({})).await.0, 404);
    sim.shutdown().await;
}

fn by_id(responses: &Value) -> std::collections::HashMap<String, Value> {
    responses["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

fn json_item(id: &str, method: &str, url: &str, body: Value) -> Value {
    json!({"id": id, "method": method, "url": url,
           "headers": {"Content-Type": "application/json"}, "body": body})
}

#[tokio::test]
async fn batch_of_20_mixed_ops_with_depends_on_and_a_424() {
    let (sim, g) = start(SimOptions::default()).await;
    let mut reqs = Vec::new();
    // 1..=12: creates; 13: a create that fails (bad domain); 14 depends on 13 -> 424;
    // 15: disable user 1 after it exists; 16: get user 2; 17: delete user 3; 18: list;
    // 19: patch a missing user (404); 20: depends on 19 -> 424.
    for i in 1..=12 {
        reqs.push(json_item(
            &i.to_string(),
            "POST",
            "/users",
            new_user(&format!("batch{i}@{DOMAIN}")),
        ));
    }
    reqs.push(json_item(
        "13",
        "POST",
        "/users",
        new_user("bad@example.org"),
    ));
    let mut r14 = json_item(
        "14",
        "PATCH",
        "/users/bad@example.org",
        json!({"accountEnabled": false}),
    );
    r14["dependsOn"] = json!(["13"]);
    reqs.push(r14);
    let mut r15 = json_item(
        "15",
        "PATCH",
        &format!("/users/batch1@{DOMAIN}"),
        json!({"accountEnabled": false}),
    );
    r15["dependsOn"] = json!(["1"]);
    reqs.push(r15);
    reqs.push(json!({"id": "16", "method": "GET", "url": format!("/users/batch2@{DOMAIN}?$select=id,accountEnabled"), "dependsOn": ["2"]}));
    reqs.push(json!({"id": "17", "method": "DELETE", "url": format!("users/batch3@{DOMAIN}"), "dependsOn": ["3"]}));
    reqs.push(json!({"id": "18", "method": "GET", "url": "/users?$top=5"}));
    reqs.push(json_item(
        "19",
        "PATCH",
        "/users/nobody@northwindtraders.com",
        json!({"accountEnabled": false}),
    ));
    let mut r20 = json_item(
        "20",
        "DELETE",
        "/users/batch4@northwindtraders.com",
        Value::Null,
    );
    r20.as_object_mut().unwrap().remove("body");
    r20["dependsOn"] = json!(["19"]);
    reqs.push(r20);
    assert_eq!(reqs.len(), 20);
    let (s, _, body) = g.batch(reqs).await;
    assert_eq!(s, 200, "{body}");
    let ids: Vec<&str> = body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 20);
    assert_ne!(ids[0], "1", "responses come back out of order: {ids:?}");
    let r = by_id(&body);
    for i in 1..=12 {
        let x = &r[&i.to_string()];
        assert_eq!(x["status"], 201, "{x}");
        assert!(x["headers"]["Content-Type"]
            .as_str()
            .unwrap()
            .starts_with("application/json"));
        assert_eq!(x["body"]["userPrincipalName"], format!("batch{i}@{DOMAIN}"));
    }
    assert_eq!(r["13"]["status"], 400);
    assert_eq!(
        r["13"]["body"]["error"]["message"],
        "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization."
    );
    assert_eq!(r["14"]["status"], 424);
    assert_eq!(r["15"]["status"], 204);
    assert!(r["15"].get("body").is_none(), "{}", r["15"]);
    assert_eq!(r["16"]["status"], 200);
    assert_eq!(r["16"]["body"]["accountEnabled"], true);
    assert_eq!(r["17"]["status"], 204);
    assert_eq!(r["18"]["status"], 200);
    assert_eq!(r["18"]["body"]["value"].as_array().unwrap().len(), 5);
    // GET /users is 2 RU, $top < 20 takes one off.
    assert_eq!(r["18"]["headers"]["x-ms-resource-unit"], "1");
    assert_eq!(r["19"]["status"], 404);
    assert_eq!(r["20"]["status"], 424);
    assert_eq!(
        sim.user_by_upn(&format!("batch1@{DOMAIN}")).unwrap()["accountEnabled"],
        false
    );
    assert!(sim.user_by_upn(&format!("batch3@{DOMAIN}")).is_none());
    assert!(sim.user_by_upn(&format!("batch4@{DOMAIN}")).is_some());
    assert_eq!(sim.write_count(), 14);
    sim.shutdown().await;
}

#[tokio::test]
async fn batch_refuses_more_than_20_duplicate_ids_and_bodies_without_content_type() {
    let (sim, g) = start(SimOptions::default()).await;
    let many: Vec<Value> = (1..=21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/domains"}))
        .collect();
    let (s, _, e) = g.batch(many).await;
    assert_eq!(s, 400);
    assert_graph_error(
        &e,
        "BadRequest",
        "The number of requests in the batch exceeds the maximum of 20.",
    );
    let dup = vec![
        json!({"id": "a", "method": "GET", "url": "/domains"}),
        json!({"id": "A", "method": "GET", "url": "/organization"}),
    ];
    let (s, _, e) = g.batch(dup).await;
    assert_eq!(s, 400);
    assert_graph_error(
        &e,
        "BadRequest",
        "Batch request contains duplicate request id 'A'.",
    );
    let (s, _, e) = g
        .batch(vec![
            json!({"id": "1", "method": "GET", "url": "/domains", "dependsOn": ["9"]}),
        ])
        .await;
    assert_eq!(s, 400);
    assert_eq!(e["error"]["code"], "BadRequest");
    let (s, _, e) = g
        .send(
            g.c.post(g.url("/$batch"))
                .bearer_auth(&g.token)
                .header("content-type", "application/json")
                .body("[]"),
        )
        .await;
    assert_eq!(s, 400);
    assert_graph_error(&e, "BadRequest", "Invalid batch payload format.");
    // A body without Content-Type: that item alone is refused, nothing applied.
    let (s, _, body) = g
        .batch(vec![
            json!({"id": "1", "method": "POST", "url": "/users", "body": new_user(&format!("noct@{DOMAIN}"))}),
            json!({"id": "2", "method": "GET", "url": "/organization"}),
        ])
        .await;
    assert_eq!(s, 200);
    let r = by_id(&body);
    assert_eq!(r["1"]["status"], 400);
    assert_eq!(r["1"]["body"]["error"]["code"], "BadRequest");
    assert_eq!(r["2"]["status"], 200);
    assert_eq!(sim.write_count(), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn write_budget_throttles_the_11th_write_of_a_batch_per_item() {
    let (sim, g) = start(SimOptions {
        write_budget: Some(10),
        budget_window: Some(Duration::from_secs(2)),
        ..SimOptions::default()
    })
    .await;
    let reqs: Vec<Value> = (1..=11)
        .map(|i| {
            json_item(
                &format!("w{i}"),
                "POST",
                "/users",
                new_user(&format!("budget{i}@{DOMAIN}")),
            )
        })
        .collect();
    let t0 = Instant::now();
    let (s, _, body) = g.batch(reqs.clone()).await;
    assert_eq!(s, 200);
    let r = by_id(&body);
    for i in 1..=10 {
        assert_eq!(r[&format!("w{i}")]["status"], 201);
    }
    let t = &r["w11"];
    assert_eq!(t["status"], 429, "{t}");
    let retry: u64 = t["headers"]["Retry-After"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(
        t["headers"]["x-ms-throttle-information"],
        "WriteLimitExceeded"
    );
    assert!(t["headers"]["x-ms-throttle-scope"]
        .as_str()
        .unwrap()
        .starts_with("Tenant_Application/ReadWrite/"));
    assert_eq!(t["body"]["error"]["code"], "TooManyRequests");
    assert_eq!(sim.throttled_count(), 1);
    assert!(sim.user_by_upn(&format!("budget11@{DOMAIN}")).is_none());
    // Reads are not writes: still served.
    assert_eq!(g.get("/domains").await.0, 200);
    // A direct write is throttled too, with the headers on the answer.
    let (s, h, _) = g
        .post("/users", &new_user(&format!("direct@{DOMAIN}")))
        .await;
    if t0.elapsed() < Duration::from_millis(1500) {
        assert_eq!(s, 429);
        assert!(h.contains_key("retry-after"));
        assert_eq!(h["x-ms-throttle-information"], "WriteLimitExceeded");
    }
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let (s, _, body) = g.batch(vec![reqs[10].clone()]).await;
    assert_eq!(s, 200);
    assert_eq!(body["responses"][0]["status"], 201, "{body}");
    assert_eq!(sim.users_with_upn_count(&format!("budget11@{DOMAIN}")), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn resource_unit_budget_throttles_reads() {
    let (sim, g) = start(SimOptions {
        ru_budget: Some(5),
        ..SimOptions::default()
    })
    .await;
    let (s, h, _) = g.get("/users").await; // 2 RU
    assert_eq!(s, 200);
    assert!(
        !h.contains_key("x-ms-throttle-limit-percentage"),
        "40% used"
    );
    let (s, h, _) = g.get("/users?$select=id").await; // 1 RU
    assert_eq!(s, 200);
    assert_eq!(h["x-ms-resource-unit"], "1");
    let (s, h, _) = g.get("/users").await; // 2 RU: 5 used
    assert_eq!(s, 200);
    assert_eq!(h["x-ms-throttle-limit-percentage"], "1.0");
    let (s, h, e) = g.get("/domains").await;
    assert_eq!(s, 429);
    assert_eq!(h["x-ms-throttle-information"], "ResourceUnitLimitExceeded");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry));
    assert_graph_error(&e, "TooManyRequests", "Too many requests.");
    sim.shutdown().await;
}

#[tokio::test]
async fn injected_5xx_never_apply_the_write() {
    let (sim, g) = start(SimOptions {
        error_rate: 1.0,
        fault_seed: Some(7),
        ..SimOptions::default()
    })
    .await;
    let upn = format!("never@{DOMAIN}");
    for _ in 0..4 {
        let (s, _, e) = g.post("/users", &new_user(&upn)).await;
        assert!(s == 503 || s == 500, "{s}");
        let code = e["error"]["code"].as_str().unwrap();
        assert!(
            (s == 503 && code == "serviceNotAvailable") || (s == 500 && code == "generalException"),
            "{s} {code}"
        );
    }
    let (s, _, body) = g
        .batch(vec![
            json_item("1", "POST", "/users", new_user(&upn)),
            json!({"id": "2", "method": "GET", "url": "/domains"}),
        ])
        .await;
    assert_eq!(s, 200, "the envelope itself is not faulted");
    for r in body["responses"].as_array().unwrap() {
        let st = r["status"].as_u64().unwrap();
        assert!(st == 500 || st == 503, "{r}");
    }
    assert_eq!(sim.users_with_upn_count(&upn), 0);
    assert_eq!(sim.write_count(), 0);
    sim.shutdown().await;

    // A partial rate with a seed is reproducible.
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (sim, g) = start(SimOptions {
            error_rate: 0.5,
            fault_seed: Some(42),
            ..SimOptions::default()
        })
        .await;
        let mut statuses = Vec::new();
        for _ in 0..16 {
            statuses.push(g.get("/domains").await.0);
        }
        assert!(statuses.contains(&200) && statuses.iter().any(|s| *s >= 500));
        runs.push(statuses);
        sim.shutdown().await;
    }
    assert_eq!(runs[0], runs[1]);
}

#[tokio::test]
async fn an_ambiguous_write_is_applied_exactly_once_and_the_connection_drops() {
    let (sim, g) = start(SimOptions {
        ambiguous_rate: 1.0,
        fault_seed: Some(1),
        ..SimOptions::default()
    })
    .await;
    let upn = format!("maybe@{DOMAIN}");
    let err =
        g.c.post(g.url("/users"))
            .bearer_auth(&g.token)
            .json(&new_user(&upn))
            .send()
            .await
            .unwrap_err();
    assert!(!err.is_status(), "{err}");
    assert_eq!(sim.users_with_upn_count(&upn), 1);
    assert_eq!(sim.write_count(), 1);
    // The client's blind retry is refused as a duplicate (a failed write is answered normally).
    let (s, _, e) = g.post("/users", &new_user(&upn)).await;
    assert_eq!(s, 400);
    assert_eq!(
        e["error"]["message"],
        "Another object with the same value for property userPrincipalName already exists."
    );
    // Reads are never ambiguous.
    assert_eq!(g.get("/domains").await.0, 200);
    // A batch with a write: applied, then dropped.
    let upn2 = format!("maybe2@{DOMAIN}");
    let err =
        g.c.post(g.url("/$batch"))
            .bearer_auth(&g.token)
            .json(&json!({"requests": [json_item("1", "POST", "/users", new_user(&upn2))]}))
            .send()
            .await
            .unwrap_err();
    assert!(!err.is_status(), "{err}");
    assert_eq!(sim.users_with_upn_count(&upn2), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn reset_rate_drops_graph_requests_without_applying() {
    let (sim, g) = start(SimOptions {
        reset_rate: 1.0,
        fault_seed: Some(3),
        ..SimOptions::default()
    })
    .await;
    let upn = format!("dropped@{DOMAIN}");
    let err =
        g.c.post(g.url("/users"))
            .bearer_auth(&g.token)
            .json(&new_user(&upn))
            .send()
            .await
            .unwrap_err();
    assert!(!err.is_status(), "{err}");
    assert_eq!(sim.users_with_upn_count(&upn), 0);
    assert_eq!(sim.write_count(), 0);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_creates_of_one_upn_succeed_exactly_once() {
    let (sim, g) = start(SimOptions::default()).await;
    let g = std::sync::Arc::new(g);
    let upn = format!("race@{DOMAIN}");
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let g = g.clone();
        let body = new_user(&upn);
        tasks.push(tokio::spawn(async move { g.post("/users", &body).await.0 }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        11,
        "{statuses:?}"
    );
    assert_eq!(sim.users_with_upn_count(&upn), 1);
    assert_eq!(sim.write_count(), 1);
    sim.shutdown().await;
}

/// Restore needs a user write permission (User.ReadWrite.All, User.DeleteRestore.All or
/// Directory.ReadWrite.All); purge has no application permission at all, only delegated;
/// listing deleted users needs a user read permission.
#[tokio::test]
async fn restore_needs_a_write_permission_and_purge_a_signed_in_user() {
    const OLGA: &str = "9a3e6b42-17cd-4f58-a0b9-6c1e2d3f4a57";
    const FARID: &str = "5f0c7d1e-8b2a-4c3f-9e61-2a7d4b8c9e10";
    let (sim, full) = start(SimOptions::default()).await;
    let denied = |e: &Value| {
        assert_graph_error(
            e,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    };
    let ro = Graph::as_app(&sim, READ_ONLY_APP).await;
    let (s, _, list) = ro.get("/directory/deletedItems/microsoft.graph.user").await;
    assert_eq!(s, 200, "User.Read.All lists deleted users: {list}");
    let (s, _, e) = ro
        .post(
            &format!("/directory/deletedItems/{OLGA}/restore"),
            &json!({}),
        )
        .await;
    assert_eq!(s, 403);
    denied(&e);
    // Also inside a batch, item by item.
    let (s, _, b) = ro
        .batch(vec![json!({"id": "r", "method": "POST", "url": format!("/directory/deletedItems/{OLGA}/restore")})])
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["responses"][0]["status"], 403);
    denied(&b["responses"][0]["body"]);
    assert_eq!(sim.deleted_count(), 2);
    assert_eq!(sim.write_count(), 0);
    // No app token purges, whatever it holds; the full app still restores.
    let (s, _, e) = full
        .delete(&format!("/directory/deletedItems/{OLGA}"))
        .await;
    assert_eq!(s, 403);
    denied(&e);
    let users_only = Graph::as_app(&sim, USERS_ONLY_APP).await;
    assert_eq!(
        users_only
            .delete(&format!("/directory/deletedItems/{OLGA}"))
            .await
            .0,
        403
    );
    assert_eq!(sim.deleted_count(), 2);
    let (s, _, r) = users_only
        .post(
            &format!("/directory/deletedItems/{FARID}/restore"),
            &json!({}),
        )
        .await;
    assert_eq!(s, 200, "User.ReadWrite.All restores: {r}");
    // A signed-in admin purges.
    let admin = Graph::delegated(&sim, "User.ReadWrite.All").await;
    assert_eq!(
        admin
            .delete(&format!("/directory/deletedItems/{OLGA}"))
            .await
            .0,
        204
    );
    assert_eq!(sim.deleted_count(), 0);
    sim.shutdown().await;
}
