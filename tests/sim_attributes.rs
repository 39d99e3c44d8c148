//! The simulator's side of attribute sync (issue 10): PATCH of every synced property with
//! Graph's limits and messages, the manager reference, revokeSignInSessions, users synced from
//! on-premises AD that refuse edits, guests; each also inside `$batch`. Plain HTTP.

use m365sync::sim::{Sim, SimOptions};
use serde_json::{json, Value};

mod sim_common;
use sim_common::*;

/// Seed users synced from on-premises AD: Rosa manages Tobias.
const ROSA: &str = "3c6f0e1a-92b4-4d7e-a5c8-1f2e3d4c5b6a";
const TOBIAS: &str = "8b2d4f6a-0c1e-4a3b-9d5f-7e6a8c0b2d4f";
const ON_PREM: &str = "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.";
const NO_MANAGER: &str = "Resource 'manager' does not exist or one of its queried reference-property objects are not present.";

fn invalid(prop: &str) -> String {
    format!("Invalid value specified for property '{prop}' of resource 'User'.")
}

/// graph-notes §17 (officeLocation from the B2C table; employeeType's bound is a stand-in).
const LIMITS: &[(&str, usize)] = &[
    ("displayName", 256),
    ("givenName", 64),
    ("surname", 64),
    ("jobTitle", 128),
    ("department", 64),
    ("officeLocation", 128),
    ("mobilePhone", 64),
    ("employeeId", 16),
    ("companyName", 64),
    ("city", 128),
    ("state", 128),
    ("country", 128),
    ("postalCode", 40),
    ("streetAddress", 1024),
    ("employeeType", 64),
];

async fn sim() -> (Sim, Graph) {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let g = Graph::new(&sim).await;
    (sim, g)
}

/// A plain cloud member of the seed (not the admin, not synced, not a guest).
async fn member(g: &Graph, n: usize) -> String {
    let (_, _, body) = g
        .get("/users?$filter=userType eq 'Member'&$select=id,userPrincipalName&$top=20")
        .await;
    body["value"].as_array().unwrap()[2 + n]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn prop(g: &Graph, id: &str, name: &str) -> Value {
    let (s, _, body) = g.get(&format!("/users/{id}?$select=id,{name}")).await;
    assert_eq!(s, 200, "{body}");
    body[name].clone()
}

#[tokio::test]
async fn patch_takes_each_property_at_its_limit_and_refuses_one_past() {
    let (sim, g) = sim().await;
    let id = member(&g, 0).await;
    for &(name, max) in LIMITS {
        let at = "x".repeat(max);
        let (s, _, b) = g.patch(&format!("/users/{id}"), &json!({ name: at })).await;
        assert_eq!(s, 204, "{name} at {max}: {b}");
        assert_eq!(prop(&g, &id, name).await, at, "{name}");
        let past = "y".repeat(max + 1);
        let (s, _, e) = g
            .patch(&format!("/users/{id}"), &json!({ name: past }))
            .await;
        assert_eq!(s, 400, "{name} at {}", max + 1);
        assert_graph_error(&e, "Request_BadRequest", &invalid(name));
        assert_eq!(
            prop(&g, &id, name).await,
            at,
            "{name} unchanged after a refusal"
        );
    }
    // Counted in characters, not bytes.
    let (s, _, _) = g
        .patch(
            &format!("/users/{id}"),
            &json!({"employeeId": "é".repeat(16)}),
        )
        .await;
    assert_eq!(s, 204);

    // The same through $batch: the one at the limit applied, the one past refused.
    let (s, _, b) = g
        .batch(vec![
            json!({"id": "at", "method": "PATCH", "url": format!("/users/{id}"),
                   "headers": {"Content-Type": "application/json"},
                   "body": {"postalCode": "9".repeat(40)}}),
            json!({"id": "past", "method": "PATCH", "url": format!("/users/{id}"),
                   "headers": {"Content-Type": "application/json"},
                   "body": {"jobTitle": "t".repeat(129)}}),
        ])
        .await;
    assert_eq!(s, 200);
    let by = |i: &str| {
        b["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == i)
            .unwrap()
            .clone()
    };
    assert_eq!(by("at")["status"], 204, "{b}");
    assert_eq!(by("past")["status"], 400);
    assert_eq!(by("past")["body"]["error"]["message"], invalid("jobTitle"));
    assert_eq!(prop(&g, &id, "postalCode").await, "9".repeat(40));
    sim.shutdown().await;
}

#[tokio::test]
async fn formats_usage_location_language_phones_and_display_name() {
    let (sim, g) = sim().await;
    let id = member(&g, 1).await;
    let url = format!("/users/{id}");
    for (body, ok) in [
        (json!({"usageLocation": "GB"}), true),
        (json!({"usageLocation": "JP"}), true),
        (json!({"usageLocation": "XX"}), false),
        (json!({"usageLocation": "USA"}), false),
        (json!({"usageLocation": "U1"}), false),
        (json!({"preferredLanguage": "de-DE"}), true),
        (json!({"preferredLanguage": "en"}), true),
        (json!({"preferredLanguage": "zh-Hans-CN"}), true),
        (json!({"preferredLanguage": "english"}), false),
        (json!({"preferredLanguage": "en_US"}), false),
        (json!({"businessPhones": ["+44 20 7946 0000"]}), true),
        (
            json!({"businessPhones": ["+1 425 555 0100", "+1 425 555 0101"]}),
            false,
        ),
        (json!({"businessPhones": ["9".repeat(65)]}), false),
        (json!({"displayName": ""}), false),
        (json!({"displayName": null}), false),
        (json!({"jobTitle": 7}), false),
    ] {
        let (s, _, e) = g.patch(&url, &body).await;
        let prop = body.as_object().unwrap().keys().next().unwrap().clone();
        if ok {
            assert_eq!(s, 204, "{body}: {e}");
        } else {
            assert_eq!(s, 400, "{body}");
            assert_graph_error(&e, "Request_BadRequest", &invalid(&prop));
        }
    }
    assert_eq!(prop(&g, &id, "usageLocation").await, "JP");
    assert_eq!(prop(&g, &id, "preferredLanguage").await, "zh-Hans-CN");
    assert_eq!(
        prop(&g, &id, "businessPhones").await,
        json!(["+44 20 7946 0000"])
    );
    // Clearing: null for a string, [] for the phones; the display name stays.
    let (s, _, _) = g
        .patch(
            &url,
            &json!({"jobTitle": null, "usageLocation": null, "businessPhones": [], "city": "Leeds"}),
        )
        .await;
    assert_eq!(s, 204);
    assert!(prop(&g, &id, "jobTitle").await.is_null());
    assert!(prop(&g, &id, "usageLocation").await.is_null());
    assert_eq!(prop(&g, &id, "businessPhones").await, json!([]));
    assert_eq!(prop(&g, &id, "city").await, "Leeds");
    assert!(prop(&g, &id, "displayName").await.is_string());
    // Read-only properties are refused, all or nothing.
    for ro in [
        "creationType",
        "onPremisesSyncEnabled",
        "signInSessionsValidFromDateTime",
    ] {
        let (s, _, e) = g.patch(&url, &json!({ ro: null, "city": "York" })).await;
        assert_eq!(s, 400, "{ro}");
        assert_graph_error(
            &e,
            "Request_BadRequest",
            &format!("Property '{ro}' is read-only and cannot be set."),
        );
    }
    assert_eq!(prop(&g, &id, "city").await, "Leeds");
    // A create takes the same properties with the same rules.
    let mut new = json!({
        "accountEnabled": true, "displayName": "Attr Person", "mailNickname": "attr.person",
        "userPrincipalName": format!("attr.person@{}", sim.default_domain),
        "passwordProfile": {"password": "Xq7!pLm2#vR9"},
        "city": "Oslo", "country": "Norway", "employeeType": "Contractor", "usageLocation": "NO",
    });
    let (s, _, u) = g.post("/users", &new).await;
    assert_eq!(s, 201, "{u}");
    let nid = u["id"].as_str().unwrap();
    assert!(u.get("city").is_none(), "not a default property");
    let (_, _, full) = g
        .get(&format!(
            "/users/{nid}?$select=city,country,employeeType,usageLocation,state"
        ))
        .await;
    assert_eq!(full["city"], "Oslo");
    assert_eq!(full["employeeType"], "Contractor");
    assert!(full["state"].is_null());
    new["userPrincipalName"] = json!(format!("attr.two@{}", sim.default_domain));
    new["mailNickname"] = json!("attr.two");
    new["postalCode"] = json!("1".repeat(41));
    let (s, _, e) = g.post("/users", &new).await;
    assert_eq!(s, 400);
    assert_graph_error(&e, "Request_BadRequest", &invalid("postalCode"));
    sim.shutdown().await;
}

#[tokio::test]
async fn manager_put_get_delete_and_in_batch() {
    let (sim, g) = sim().await;
    let (report, boss) = (member(&g, 2).await, member(&g, 3).await);
    let mgr = format!("/users/{report}/manager");
    let (s, _, e) = g.get(&mgr).await;
    assert_eq!(s, 404);
    assert_graph_error(&e, "Request_ResourceNotFound", NO_MANAGER);
    let (s, _, e) = g.delete(&format!("{mgr}/$ref")).await;
    assert_eq!(s, 404);
    assert_graph_error(&e, "Request_ResourceNotFound", NO_MANAGER);

    let put = |target: String| {
        g.c.put(g.url(&format!("{mgr}/$ref")))
            .bearer_auth(&g.token)
            .json(&json!({"@odata.id": target}))
    };
    let (s, _, b) = g
        .send(put(format!(
            "https://graph.microsoft.com/v1.0/users/{boss}"
        )))
        .await;
    assert_eq!(s, 204, "{b}");
    let (s, _, m) = g.get(&mgr).await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["id"], boss);
    assert_eq!(m["@odata.type"], "#microsoft.graph.user");
    assert_eq!(
        m["@odata.context"],
        format!("{}/v1.0/$metadata#directoryObjects/$entity", sim.base_url)
    );
    assert!(m["displayName"].is_string() && m.get("accountEnabled").is_none());
    let (_, _, m) = g.get(&format!("{mgr}?$select=id,accountEnabled")).await;
    assert_eq!(m["accountEnabled"], true);
    assert!(m.get("displayName").is_none());
    // directoryObjects form, unknown target, missing @odata.id, bad JSON.
    let (s, _, _) = g
        .send(put(format!(
            "https://graph.microsoft.com/v1.0/directoryObjects/{boss}"
        )))
        .await;
    assert_eq!(s, 204);
    let ghost = "00000000-0000-0000-0000-0000000000aa";
    let (s, _, e) = g
        .send(put(format!(
            "https://graph.microsoft.com/v1.0/users/{ghost}"
        )))
        .await;
    assert_eq!(s, 404);
    assert_graph_error(
        &e,
        "Request_ResourceNotFound",
        &format!("Resource '{ghost}' does not exist or one of its queried reference-property objects are not present."),
    );
    let (s, _, _) = g
        .send(
            g.c.put(g.url(&format!("{mgr}/$ref")))
                .bearer_auth(&g.token)
                .json(&json!({"id": boss})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _, e) = g
        .send(
            g.c.put(g.url(&format!("/users/{ghost}/manager/$ref")))
                .bearer_auth(&g.token)
                .json(
                    &json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{boss}")}),
                ),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("Request_ResourceNotFound"))
    );

    // A soft-deleted manager is not present; restored, it is again.
    assert_eq!(g.delete(&format!("/users/{boss}")).await.0, 204);
    assert_eq!(g.get(&mgr).await.0, 404);
    let (s, _, _) = g
        .post(
            &format!("/directory/deletedItems/{boss}/restore"),
            &json!({}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(g.get(&mgr).await.2["id"], boss);

    let (s, _, _) = g.delete(&format!("{mgr}/$ref")).await;
    assert_eq!(s, 204);
    assert_eq!(g.get(&mgr).await.0, 404);

    // In $batch: set, then read back (dependsOn), then remove.
    let (s, _, b) = g
        .batch(vec![
            json!({"id": "1", "method": "PUT", "url": format!("{mgr}/$ref"),
                   "headers": {"Content-Type": "application/json"},
                   "body": {"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{boss}")}}),
            json!({"id": "2", "method": "GET", "url": format!("{mgr}?$select=id"), "dependsOn": ["1"]}),
            json!({"id": "3", "method": "DELETE", "url": format!("{mgr}/$ref"), "dependsOn": ["2"]}),
            json!({"id": "4", "method": "GET", "url": mgr.clone(), "dependsOn": ["3"]}),
        ])
        .await;
    assert_eq!(s, 200);
    let status: Vec<(String, u64)> = {
        let mut v: Vec<(String, u64)> = b["responses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_owned(),
                    r["status"].as_u64().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        status,
        vec![
            ("1".into(), 204),
            ("2".into(), 200),
            ("3".into(), 204),
            ("4".into(), 404)
        ],
        "{b}"
    );

    // Permissions: reading needs a user read permission, writing User.ReadWrite.All or above.
    let ro = Graph::as_app(&sim, READ_ONLY_APP).await;
    let (s, _, _) = ro
        .send(
            ro.c.put(ro.url(&format!("{mgr}/$ref")))
                .bearer_auth(&ro.token)
                .json(
                    &json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{boss}")}),
                ),
        )
        .await;
    assert_eq!(s, 403);
    assert_eq!(
        ro.get(&format!("/users/{TOBIAS}/manager")).await.2["id"],
        ROSA
    );
    assert_eq!(
        ro.delete(&format!("/users/{TOBIAS}/manager/$ref")).await.0,
        403
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn manager_changes_show_in_delta_as_manager_delta() {
    let (sim, g) = sim().await;
    let (report, boss) = (member(&g, 4).await, member(&g, 5).await);
    let (s, _, first) = g
        .get(&format!(
            "/users/delta?$select=displayName,manager&$filter=id eq '{report}' or id eq '{TOBIAS}'"
        ))
        .await;
    assert_eq!(s, 200, "{first}");
    let items = first["value"].as_array().unwrap();
    let tobias = items.iter().find(|i| i["id"] == TOBIAS).unwrap();
    assert_eq!(
        tobias["manager@delta"],
        json!([{"@odata.type": "#microsoft.graph.user", "id": ROSA}])
    );
    let plain = items.iter().find(|i| i["id"] == report.as_str()).unwrap();
    assert!(plain.get("manager@delta").is_none(), "no manager: omitted");
    let link = first["@odata.deltaLink"].as_str().unwrap().to_owned();

    let (s, _, _) = g
        .send(
            g.c.put(g.url(&format!("/users/{report}/manager/$ref")))
                .bearer_auth(&g.token)
                .json(
                    &json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{boss}")}),
                ),
        )
        .await;
    assert_eq!(s, 204);
    let (_, _, second) = g.get(&link).await;
    assert_eq!(
        second["value"],
        json!([{"displayName": plain["displayName"], "id": report,
                "manager@delta": [{"@odata.type": "#microsoft.graph.user", "id": boss}]}])
    );
    let link = second["@odata.deltaLink"].as_str().unwrap().to_owned();
    assert_eq!(
        g.delete(&format!("/users/{report}/manager/$ref")).await.0,
        204
    );
    let (_, _, third) = g
        .send(
            g.c.get(&link)
                .bearer_auth(&g.token)
                .header("Prefer", "return=minimal"),
        )
        .await;
    assert_eq!(
        third["value"],
        json!([{"id": report, "manager@delta": [
            {"@odata.type": "#microsoft.graph.user", "id": boss, "@removed": {"reason": "deleted"}}
        ]}])
    );
    // Not selected: a manager change does not make the user appear.
    let (_, _, latest) = g
        .get("/users/delta?$deltatoken=latest&$select=displayName")
        .await;
    let link = latest["@odata.deltaLink"].as_str().unwrap().to_owned();
    g.send(
        g.c.put(g.url(&format!("/users/{report}/manager/$ref")))
            .bearer_auth(&g.token)
            .json(&json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{boss}")})),
    )
    .await;
    assert_eq!(g.get(&link).await.2["value"], json!([]));
    sim.shutdown().await;
}

/// The seed's admin signs in through the device code: (access token, refresh token).
async fn sign_in(c: &reqwest::Client, sim: &Sim) -> (String, String) {
    let dc: Value = c
        .post(format!(
            "{}/organizations/oauth2/v2.0/devicecode",
            sim.base_url
        ))
        .form(&[
            ("client_id", sim.public_client_id.as_str()),
            ("scope", "User.ReadWrite.All offline_access"),
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
    (
        tok["access_token"].as_str().unwrap().to_owned(),
        tok["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn redeem(c: &reqwest::Client, sim: &Sim, refresh: &str) -> (u16, Value) {
    let r = c
        .post(format!("{}/organizations/oauth2/v2.0/token", sim.base_url))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", sim.public_client_id.as_str()),
            ("refresh_token", refresh),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn revoke_sign_in_sessions_answers_true_and_signs_the_user_out() {
    let (sim, g) = sim().await;
    let id = member(&g, 6).await;
    assert!(prop(&g, &id, "signInSessionsValidFromDateTime")
        .await
        .is_null());
    let (s, _, body) = g
        .post(&format!("/users/{id}/revokeSignInSessions"), &json!({}))
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        body,
        json!({"@odata.context": format!("{}/v1.0/$metadata#Edm.Boolean", sim.base_url), "value": true})
    );
    let at = prop(&g, &id, "signInSessionsValidFromDateTime").await;
    let at = at.as_str().unwrap();
    assert!(at.ends_with('Z') && at.len() == 20, "{at}");
    // The qualified form, a guest and a synced user answer the same; an unknown user 404.
    let (_, _, guests) = g.get("/users?$filter=userType eq 'Guest'&$select=id").await;
    let guest = guests["value"][0]["id"].as_str().unwrap().to_owned();
    for who in [&id, &guest, &ROSA.to_owned()] {
        let (s, _, b) = g
            .post(
                &format!("/users/{who}/microsoft.graph.revokeSignInSessions"),
                &json!({}),
            )
            .await;
        assert_eq!((s, &b["value"]), (200, &json!(true)), "{who}: {b}");
    }
    let (s, _, _) = g
        .post(
            "/users/00000000-0000-0000-0000-0000000000ab/revokeSignInSessions",
            &json!({}),
        )
        .await;
    assert_eq!(s, 404);
    assert_eq!(
        g.get(&format!("/users/{id}/revokeSignInSessions")).await.0,
        405
    );
    // Permission: a read-only app may not.
    let ro = Graph::as_app(&sim, READ_ONLY_APP).await;
    let (s, _, e) = ro
        .post(&format!("/users/{id}/revokeSignInSessions"), &json!({}))
        .await;
    assert_eq!(s, 403);
    assert_eq!(e["error"]["code"], "Authorization_RequestDenied");
    // In $batch.
    let (_, _, b) = g
        .batch(vec![json!({"id": "r", "method": "POST", "url": format!("/users/{id}/revokeSignInSessions")})])
        .await;
    assert_eq!(b["responses"][0]["status"], 200, "{b}");
    assert_eq!(b["responses"][0]["body"]["value"], true);

    // The signed-in admin revokes their own sessions: their refresh token is refused after;
    // a new sign-in works.
    let c = client();
    let (access, refresh) = sign_in(&c, &sim).await;
    let me = Graph::with_token(&sim, c.clone(), access);
    let (s, _, b) = me.post("/me/revokeSignInSessions", &json!({})).await;
    assert_eq!((s, &b["value"]), (200, &json!(true)));
    let (status, e) = redeem(&c, &sim, &refresh).await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"], "invalid_grant");
    assert_eq!(e["error_codes"], json!([50173]));
    assert!(e["error_description"]
        .as_str()
        .unwrap()
        .starts_with("AADSTS50173: The provided grant has expired due to it being revoked"));
    let (_, again) = sign_in(&c, &sim).await;
    assert_eq!(
        redeem(&c, &sim, &again).await.0,
        200,
        "a new sign-in is not revoked"
    );
    // An app token cannot use /me.
    assert_eq!(g.post("/me/revokeSignInSessions", &json!({})).await.0, 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn users_synced_from_on_premises_refuse_mastered_edits() {
    let (sim, g) = sim().await;
    let (s, _, body) = g
        .get("/users?$filter=onPremisesSyncEnabled eq true&$select=id,userPrincipalName,onPremisesSyncEnabled,onPremisesSamAccountName,onPremisesDistinguishedName,onPremisesImmutableId,onPremisesLastSyncDateTime,city,employeeType")
        .await;
    assert_eq!(s, 200, "{body}");
    let synced = body["value"].as_array().unwrap();
    assert_eq!(synced.len(), 3);
    let rosa = synced.iter().find(|u| u["id"] == ROSA).unwrap();
    assert_eq!(rosa["onPremisesSyncEnabled"], true);
    assert_eq!(rosa["onPremisesSamAccountName"], "rdelgado");
    assert!(rosa["onPremisesDistinguishedName"]
        .as_str()
        .unwrap()
        .starts_with("CN=Rosa Delgado,"));
    assert!(rosa["onPremisesImmutableId"].is_string());
    assert_eq!(rosa["city"], "Tacoma");
    assert_eq!(rosa["employeeType"], "Employee");

    let url = format!("/users/{ROSA}");
    for body in [
        json!({"jobTitle": "Director"}),
        json!({"displayName": "Rosa D."}),
        json!({"accountEnabled": false}),
        json!({"city": "Seattle"}),
        json!({"usageLocation": "CA", "department": "Sales"}),
        json!({"passwordProfile": {"password": "Xq7!pLm2#vR9"}}),
    ] {
        let (s, _, e) = g.patch(&url, &body).await;
        assert_eq!(s, 400, "{body}");
        assert_graph_error(&e, "Request_BadRequest", ON_PREM);
    }
    assert_eq!(
        prop(&g, ROSA, "usageLocation").await,
        "US",
        "all or nothing"
    );
    assert_eq!(prop(&g, ROSA, "jobTitle").await, "Plant Manager");
    // Cloud-side properties still change.
    let (s, _, _) = g.patch(&url, &json!({"usageLocation": "CA"})).await;
    assert_eq!(s, 204);
    assert_eq!(prop(&g, ROSA, "usageLocation").await, "CA");
    // The manager is mastered on-premises too.
    let (s, _, e) = g
        .send(
            g.c.put(g.url(&format!("/users/{TOBIAS}/manager/$ref")))
                .bearer_auth(&g.token)
                .json(&json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{}", member(&g, 0).await)})),
        )
        .await;
    assert_eq!(s, 400);
    assert_graph_error(&e, "Request_BadRequest", ON_PREM);
    let (s, _, e) = g.delete(&format!("/users/{TOBIAS}/manager/$ref")).await;
    assert_eq!(s, 400);
    assert_graph_error(&e, "Request_BadRequest", ON_PREM);
    assert_eq!(
        g.get(&format!("/users/{TOBIAS}/manager")).await.2["id"],
        ROSA
    );
    // In $batch the same refusal, item by item.
    let (_, _, b) = g
        .batch(vec![
            json!({"id": "a", "method": "PATCH", "url": url.clone(),
                   "headers": {"Content-Type": "application/json"}, "body": {"department": "Sales"}}),
            json!({"id": "b", "method": "PATCH", "url": url.clone(),
                   "headers": {"Content-Type": "application/json"}, "body": {"usageLocation": "US"}}),
        ])
        .await;
    for r in b["responses"].as_array().unwrap() {
        match r["id"].as_str().unwrap() {
            "a" => {
                assert_eq!(r["status"], 400);
                assert_eq!(r["body"]["error"]["message"], ON_PREM);
            }
            _ => assert_eq!(r["status"], 204, "{r}"),
        }
    }
    // Cloud users answer null.
    let id = member(&g, 0).await;
    assert!(prop(&g, &id, "onPremisesSyncEnabled").await.is_null());
    sim.shutdown().await;
}

#[tokio::test]
async fn guests_are_listed_with_their_properties() {
    let (sim, g) = sim().await;
    let (s, _, body) = g
        .get("/users?$filter=userType eq 'Guest'&$select=id,userPrincipalName,mail,userType,creationType,externalUserState,externalUserStateChangeDateTime,usageLocation")
        .await;
    assert_eq!(s, 200, "{body}");
    let guests = body["value"].as_array().unwrap();
    assert_eq!(guests.len(), 3);
    for u in guests {
        let upn = u["userPrincipalName"].as_str().unwrap();
        assert!(
            upn.contains("#EXT#@") && upn.ends_with(&format!("@{}", sim.initial_domain)),
            "{upn}"
        );
        assert_eq!(u["userType"], "Guest");
        assert_eq!(u["creationType"], "Invitation");
        assert!(
            u["usageLocation"].is_null(),
            "guests have no usage location"
        );
        assert!(u["externalUserStateChangeDateTime"].is_string());
        let mail = u["mail"].as_str().unwrap();
        assert!(!mail.ends_with(&sim.initial_domain), "{mail}");
    }
    let states: Vec<&str> = guests
        .iter()
        .map(|u| u["externalUserState"].as_str().unwrap())
        .collect();
    assert!(states.contains(&"Accepted") && states.contains(&"PendingAcceptance"));
    // By UPN, with the #EXT# escaped in the path.
    let upn = guests[0]["userPrincipalName"]
        .as_str()
        .unwrap()
        .replace('#', "%23");
    let (s, _, one) = g
        .get(&format!("/users/{upn}?$select=id,externalUserState"))
        .await;
    assert_eq!(s, 200, "{one}");
    assert_eq!(one["id"], guests[0]["id"]);
    // Members are not guests; their guest properties are null.
    let (_, _, members) = g
        .get("/users?$filter=userType eq 'Member'&$select=creationType,externalUserState&$top=5")
        .await;
    for u in members["value"].as_array().unwrap() {
        assert!(u["creationType"].is_null() && u["externalUserState"].is_null());
    }
    sim.shutdown().await;
}
