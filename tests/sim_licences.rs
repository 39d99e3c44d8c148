//! The simulator's side of licences (issue 11): `subscribedSkus` with exact seats,
//! `assignLicense` with each of Graph's refusals, group-based licences, seats freed by a soft
//! delete and taken back by a restore, permissions, `$batch`. Plain HTTP.

use std::collections::HashMap;

use m365sync::sim::{Sim, SimOptions};
use serde_json::{json, Value};

mod sim_common;
use sim_common::*;

const E3: &str = "05e9a617-0261-4cee-bb44-138d3ef5d965";
const PBI: &str = "f8a1db68-be16-40ed-86d5-cb42ce701560";
const EXO1: &str = "4b9405b0-7788-4568-add1-99614e613b69";
const E1: &str = "18181a46-0d4e-45cd-891e-60aabd171b4e";
/// Exchange Online Plan 1 and Plan 2 (mutually exclusive in the seed).
const EXO_P1: &str = "9aaf7827-d63c-4b61-89c3-182f06f82e5c";
const EXO_P2: &str = "efb87545-963c-4e0d-99df-69c6916d9eb0";
const LICENSING_APP: (&str, &str) = (
    "2f6e8a1c-4b3d-4e5f-9a7b-6c8d0e2f4a61",
    "Lic8Q~Mn3Bv5Cx7Zl9Kj2Hg4Fd6Sa8Qw0ErTyUi",
);

async fn sim() -> (Sim, Graph) {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let g = Graph::new(&sim).await;
    (sim, g)
}

/// `consumedUnits` per SKU as `/subscribedSkus` says.
async fn consumed(g: &Graph) -> HashMap<String, u64> {
    let (s, _, body) = g.get("/subscribedSkus").await;
    assert_eq!(s, 200, "{body}");
    body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["skuId"].as_str().unwrap().to_owned(),
                k["consumedUnits"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Seats as the live users' `assignedLicenses` show them: must equal `consumedUnits`.
async fn assert_exact(g: &Graph) -> HashMap<String, u64> {
    let mut held: HashMap<String, u64> = HashMap::new();
    let mut url = "/users?$select=id,assignedLicenses&$top=999".to_owned();
    loop {
        let (_, _, body) = g.get(&url).await;
        for u in body["value"].as_array().unwrap() {
            for l in u["assignedLicenses"].as_array().unwrap() {
                *held
                    .entry(l["skuId"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
        match body["@odata.nextLink"].as_str() {
            Some(n) => url = n.to_owned(),
            None => break,
        }
    }
    let c = consumed(g).await;
    for (sku, n) in &c {
        assert_eq!(
            held.get(sku).copied().unwrap_or(0),
            *n,
            "consumedUnits of {sku}"
        );
    }
    c
}

async fn new_user(g: &Graph, sim: &Sim, nick: &str, usage: Option<&str>) -> String {
    let (s, _, u) = g
        .post(
            "/users",
            &json!({
                "accountEnabled": true, "displayName": nick, "mailNickname": nick,
                "userPrincipalName": format!("{nick}@{}", sim.default_domain),
                "passwordProfile": {"password": "Xq7!pLm2#vR9"},
                "usageLocation": usage,
            }),
        )
        .await;
    assert_eq!(s, 201, "{u}");
    u["id"].as_str().unwrap().to_owned()
}

async fn assign(g: &Graph, id: &str, body: Value) -> (u16, Value) {
    let (s, _, b) = g.post(&format!("/users/{id}/assignLicense"), &body).await;
    (s, b)
}

fn add(sku: &str) -> Value {
    json!({"addLicenses": [{"skuId": sku, "disabledPlans": []}], "removeLicenses": []})
}

fn remove(sku: &str) -> Value {
    json!({"addLicenses": [], "removeLicenses": [sku]})
}

async fn states(g: &Graph, id: &str) -> Value {
    let (_, _, u) = g
        .get(&format!(
            "/users/{id}?$select=assignedLicenses,licenseAssignmentStates"
        ))
        .await;
    u
}

#[tokio::test]
async fn subscribed_skus_have_graphs_shape_and_exact_seats() {
    let (sim, g) = sim().await;
    let (s, _, body) = g.get("/subscribedSkus").await;
    assert_eq!(s, 200);
    assert_eq!(
        body["@odata.context"],
        format!("{}/v1.0/$metadata#subscribedSkus", sim.base_url)
    );
    let e3 = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["skuId"] == E3)
        .unwrap()
        .clone();
    let mut keys: Vec<&String> = e3.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "accountId",
            "accountName",
            "appliesTo",
            "capabilityStatus",
            "consumedUnits",
            "id",
            "prepaidUnits",
            "servicePlans",
            "skuId",
            "skuPartNumber",
            "subscriptionIds"
        ]
    );
    assert_eq!(e3["id"], format!("{}_{E3}", sim.tenant_id));
    assert_eq!(e3["accountId"], sim.tenant_id);
    assert_eq!(e3["skuPartNumber"], "SPE_E3");
    assert_eq!(e3["appliesTo"], "User");
    assert_eq!(e3["capabilityStatus"], "Enabled");
    assert_eq!(
        e3["prepaidUnits"],
        json!({"enabled": 250, "lockedOut": 0, "suspended": 0, "warning": 0})
    );
    let plan = &e3["servicePlans"][0];
    assert_eq!(
        plan,
        &json!({"servicePlanId": EXO_P2, "servicePlanName": "EXCHANGE_S_ENTERPRISE",
                "provisioningStatus": "Success", "appliesTo": "User"})
    );
    let c = assert_exact(&g).await;
    assert_eq!(
        (c[E3], c[PBI], c[EXO1], c[E1]),
        (200, 24, 2, 0),
        "one nearly full"
    );

    let (s, _, one) = g
        .get(&format!(
            "/subscribedSkus/{}_{PBI}?$select=skuId,consumedUnits",
            sim.tenant_id
        ))
        .await;
    assert_eq!(s, 200, "{one}");
    assert_eq!(one["consumedUnits"], 24);
    assert!(one.get("servicePlans").is_none());
    let (s, _, e) = g.get("/subscribedSkus/not-an-id").await;
    assert_eq!(s, 400);
    assert_graph_error(
        &e,
        "Request_BadRequest",
        "Invalid object identifier. It must be a string in the form of [Guid]_[Guid].",
    );
    let ghost = format!("{}_00000000-0000-0000-0000-000000000001", sim.tenant_id);
    assert_eq!(g.get(&format!("/subscribedSkus/{ghost}")).await.0, 404);
    assert_eq!(g.post("/subscribedSkus", &json!({})).await.0, 405);
    let (s, _, e) = g
        .get("/subscribedSkus?$filter=skuPartNumber eq 'SPE_E3'")
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (400, Some("Request_UnsupportedQuery"))
    );

    // Organization.Read.All or a directory read permission; a user permission is not enough.
    assert_eq!(
        Graph::as_app(&sim, READ_ONLY_APP)
            .await
            .get("/subscribedSkus")
            .await
            .0,
        403
    );
    assert_eq!(
        Graph::as_app(&sim, USERS_ONLY_APP)
            .await
            .get("/subscribedSkus")
            .await
            .0,
        403
    );
    assert_eq!(
        Graph::as_app(&sim, LICENSING_APP)
            .await
            .get("/subscribedSkus")
            .await
            .0,
        200
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn assign_and_remove_keep_seats_exact_and_show_on_the_user() {
    let (sim, g) = sim().await;
    let id = new_user(&g, &sim, "lic.one", Some("US")).await;
    let before = assert_exact(&g).await;
    let (s, u) = assign(&g, &id, add(E1)).await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["id"], id);
    assert_eq!(
        u["assignedLicenses"],
        json!([{"disabledPlans": [], "skuId": E1}])
    );
    assert_eq!(assert_exact(&g).await[E1], before[E1] + 1);
    let st = states(&g, &id).await;
    let s0 = &st["licenseAssignmentStates"][0];
    assert_eq!(s0["assignedByGroup"], Value::Null);
    assert_eq!(s0["state"], "Active");
    assert_eq!(s0["error"], "None");
    assert_eq!(s0["skuId"], E1);
    assert!(s0["lastUpdatedDateTime"].as_str().unwrap().ends_with('Z'));
    let (_, _, d) = g.get(&format!("/users/{id}/licenseDetails")).await;
    assert_eq!(d["value"][0]["skuPartNumber"], "STANDARDPACK");
    // Not a default property.
    let (_, _, plain) = g.get(&format!("/users/{id}")).await;
    assert!(plain.get("assignedLicenses").is_none());

    // Same SKU again with a plan disabled: no new seat; the qualified path works too.
    let (s, u) = {
        let (s, _, b) = g
            .post(
                &format!("/users/{id}/microsoft.graph.assignLicense"),
                &json!({"addLicenses": [{"skuId": E1, "disabledPlans": [EXO_P1]}], "removeLicenses": []}),
            )
            .await;
        (s, b)
    };
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["assignedLicenses"][0]["disabledPlans"], json!([EXO_P1]));
    assert_eq!(assert_exact(&g).await[E1], before[E1] + 1);
    let (_, _, d) = g.get(&format!("/users/{id}/licenseDetails")).await;
    let off = d["value"][0]["servicePlans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["servicePlanId"] == EXO_P1)
        .unwrap()
        .clone();
    assert_eq!(off["provisioningStatus"], "Disabled");

    let (s, u) = assign(&g, &id, remove(E1)).await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["assignedLicenses"], json!([]));
    assert_eq!(assert_exact(&g).await, before);
    sim.shutdown().await;
}

#[tokio::test]
async fn assign_license_refuses_as_graph_does() {
    let (sim, g) = sim().await;
    let id = new_user(&g, &sim, "lic.two", Some("GB")).await;
    let nowhere = new_user(&g, &sim, "lic.nowhere", None).await;
    let before = consumed(&g).await;
    let missing = |p: &str| {
        format!("One or more parameters of the operation 'assignLicense' are missing from the request payload. The missing parameters are: {p}.")
    };
    let guid_msg = "Cannot convert a primitive value to the expected type 'Edm.Guid'. See the inner exception for more details";
    let ghost = "00000000-0000-0000-0000-0000000000cc";
    for (body, message) in [
        (json!({"removeLicenses": []}), missing("addLicenses")),
        (
            json!({"addLicenses": [{"skuId": E1}]}),
            missing("removeLicenses"),
        ),
        (json!({}), missing("addLicenses, removeLicenses")),
        (
            json!({"addLicenses": [], "removeLicenses": []}),
            "No license changes provided. At least one license to add or remove must be specified."
                .into(),
        ),
        (
            json!({"addLicenses": [{"skuId": "E3"}], "removeLicenses": []}),
            guid_msg.into(),
        ),
        (
            json!({"addLicenses": [{"skuId": E1, "disabledPlans": ["x"]}], "removeLicenses": []}),
            guid_msg.into(),
        ),
        (
            json!({"addLicenses": [], "removeLicenses": ["nope"]}),
            guid_msg.into(),
        ),
        (
            add(ghost),
            format!("License {ghost} does not correspond to a valid company License."),
        ),
        (
            remove(E3),
            "User does not have a corresponding license.".into(),
        ),
    ] {
        let (s, e) = assign(&g, &id, body.clone()).await;
        assert_eq!(s, 400, "{body}: {e}");
        assert_graph_error(&e, "Request_BadRequest", &message);
    }
    // Key names are case-sensitive.
    let (s, e) = assign(
        &g,
        &id,
        json!({"addLicenses": [{"SkuId": E1}], "removeLicenses": []}),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    // No usage location: adding is refused, removing is not the question.
    let (s, e) = assign(&g, &nowhere, add(E1)).await;
    assert_eq!(s, 400);
    assert_graph_error(
        &e,
        "Request_BadRequest",
        "License assignment cannot be done for user with invalid usage location.",
    );
    assert_eq!(
        assign(&g, "00000000-0000-0000-0000-0000000000dd", add(E1))
            .await
            .0,
        404
    );

    // Seats: Power BI Pro has one left.
    let other = new_user(&g, &sim, "lic.three", Some("US")).await;
    assert_eq!(assign(&g, &id, add(PBI)).await.0, 200);
    let (s, e) = assign(&g, &other, add(PBI)).await;
    assert_eq!(s, 400);
    assert_graph_error(
        &e,
        "Request_BadRequest",
        &format!("Subscription with SKU {PBI} does not have any available licenses."),
    );
    // Conflicting plans: Exchange Online Plan 1 next to E3's Plan 2, unless it is disabled.
    let (_, _, holders) = g.get("/users?$select=id,assignedLicenses&$top=5").await;
    let e3_user = holders["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| {
            u["assignedLicenses"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["skuId"] == E3)
        })
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, e) = assign(&g, &e3_user, add(EXO1)).await;
    assert_eq!(s, 400, "{e}");
    assert_graph_error(
        &e,
        "Request_BadRequest",
        &format!("License assignment failed because service plans {EXO_P1}, {EXO_P2} are mutually exclusive."),
    );
    let (s, e) = assign(
        &g,
        &e3_user,
        json!({"addLicenses": [{"skuId": EXO1, "disabledPlans": [EXO_P1]}], "removeLicenses": []}),
    )
    .await;
    assert_eq!(s, 200, "{e}");
    let after = assert_exact(&g).await;
    assert_eq!(after[PBI], before[PBI] + 1);
    assert_eq!(after[EXO1], before[EXO1] + 1);
    assert_eq!(after[E1], before[E1], "nothing refused took a seat");

    // Inside $batch: each item answered on its own.
    let (_, _, b) = g
        .batch(vec![
            json!({"id": "ok", "method": "POST", "url": format!("/users/{other}/assignLicense"),
                   "headers": {"Content-Type": "application/json"}, "body": add(E1)}),
            json!({"id": "full", "method": "POST", "url": format!("/users/{other}/assignLicense"),
                   "headers": {"Content-Type": "application/json"}, "body": add(PBI)}),
            json!({"id": "skus", "method": "GET", "url": "/subscribedSkus?$select=skuId,consumedUnits"}),
        ])
        .await;
    let by = |i: &str| {
        b["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == i)
            .unwrap()
            .clone()
    };
    assert_eq!(by("ok")["status"], 200, "{b}");
    assert_eq!(by("full")["status"], 400);
    assert_eq!(
        by("full")["body"]["error"]["message"],
        format!("Subscription with SKU {PBI} does not have any available licenses.")
    );
    assert_eq!(by("skus")["status"], 200);
    assert_eq!(assert_exact(&g).await[E1], before[E1] + 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn group_licences_are_inherited_counted_once_and_not_removable_directly() {
    let (sim, g) = sim().await;
    let a = new_user(&g, &sim, "grp.a", Some("US")).await;
    let b = new_user(&g, &sim, "grp.b", Some("US")).await;
    let (_, _, grp) = g
        .post(
            "/groups",
            &json!({"displayName": "E1 users", "mailEnabled": false, "mailNickname": "e1users",
                    "securityEnabled": true}),
        )
        .await;
    let gid = grp["id"].as_str().unwrap().to_owned();
    let before = consumed(&g).await;
    // a holds E1 directly too: one seat whatever the sources.
    assert_eq!(assign(&g, &a, add(E1)).await.0, 200);
    let (s, h, body) = g
        .post(&format!("/groups/{gid}/assignLicense"), &add(E1))
        .await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(body["id"], gid);
    assert!(h["location"].to_str().unwrap().contains(&gid));
    for u in [&a, &b] {
        let (s, _, _) = g
            .post(
                &format!("/groups/{gid}/members/$ref"),
                &json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{u}")}),
            )
            .await;
        assert_eq!(s, 204);
    }
    let c = assert_exact(&g).await;
    assert_eq!(c[E1], before[E1] + 2, "a and b, once each");
    let sb = states(&g, &b).await;
    assert_eq!(
        sb["assignedLicenses"],
        json!([{"disabledPlans": [], "skuId": E1}])
    );
    assert_eq!(sb["licenseAssignmentStates"][0]["assignedByGroup"], gid);
    assert_eq!(sb["licenseAssignmentStates"][0]["state"], "Active");
    let sa = states(&g, &a).await;
    assert_eq!(sa["licenseAssignmentStates"].as_array().unwrap().len(), 2);
    assert_eq!(sa["assignedLicenses"].as_array().unwrap().len(), 1);

    // b's only comes from the group: not removable directly; a's direct one is.
    let (s, e) = assign(&g, &b, remove(E1)).await;
    assert_eq!(s, 400);
    assert_graph_error(
        &e,
        "Request_BadRequest",
        "User license is inherited from a group membership and it cannot be removed directly from the user.",
    );
    assert_eq!(assign(&g, &a, remove(E1)).await.0, 200);
    assert_eq!(
        assert_exact(&g).await[E1],
        before[E1] + 2,
        "a still has it from the group"
    );
    // Leaving the group frees the seat.
    assert_eq!(
        g.delete(&format!("/groups/{gid}/members/{b}/$ref")).await.0,
        204
    );
    assert_eq!(assert_exact(&g).await[E1], before[E1] + 1);
    assert_eq!(states(&g, &b).await["assignedLicenses"], json!([]));

    // A group licence without a free seat is an error on the member, not an answer.
    let c = new_user(&g, &sim, "grp.c", Some("US")).await;
    assert_eq!(assign(&g, &c, add(PBI)).await.0, 200); // the last Power BI seat
    let (s, _, _) = g
        .post(&format!("/groups/{gid}/assignLicense"), &add(PBI))
        .await;
    assert_eq!(s, 202);
    let sa = states(&g, &a).await;
    let pbi = sa["licenseAssignmentStates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["skuId"] == PBI)
        .unwrap()
        .clone();
    assert_eq!(
        (pbi["state"].as_str(), pbi["error"].as_str()),
        (Some("Error"), Some("CountViolation"))
    );
    assert!(!sa["assignedLicenses"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["skuId"] == PBI));
    assert_eq!(assert_exact(&g).await[PBI], 25);
    // Permissions: a group licence needs a group or licence permission.
    let users_only = Graph::as_app(&sim, USERS_ONLY_APP).await;
    assert_eq!(
        users_only
            .post(&format!("/groups/{gid}/assignLicense"), &add(E1))
            .await
            .0,
        403
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_soft_delete_frees_seats_and_a_restore_takes_them_back() {
    let (sim, g) = sim().await;
    let id = new_user(&g, &sim, "lic.leaver", Some("US")).await;
    let before = consumed(&g).await;
    assert_eq!(assign(&g, &id, add(E1)).await.0, 200);
    assert_eq!(assert_exact(&g).await[E1], before[E1] + 1);
    assert_eq!(g.delete(&format!("/users/{id}")).await.0, 204);
    assert_eq!(g.get(&format!("/users/{id}")).await.0, 404);
    let (_, _, d) = g.get(&format!("/directory/deletedItems/{id}")).await;
    assert_eq!(d["id"], id, "in the deleted items");
    let (_, _, list) = g
        .get("/directory/deletedItems/microsoft.graph.user?$select=id,assignedLicenses")
        .await;
    let kept = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        kept["assignedLicenses"],
        json!([{"disabledPlans": [], "skuId": E1}])
    );
    assert_eq!(assert_exact(&g).await[E1], before[E1], "the seat is free");
    let (s, _, _) = g
        .post(&format!("/directory/deletedItems/{id}/restore"), &json!({}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(assert_exact(&g).await[E1], before[E1] + 1, "taken back");
    sim.shutdown().await;
}

#[tokio::test]
async fn licence_permissions_and_delta() {
    let (sim, g) = sim().await;
    let id = new_user(&g, &sim, "lic.perm", Some("US")).await;
    let ro = Graph::as_app(&sim, READ_ONLY_APP).await;
    let (s, e) = assign(&ro, &id, add(E1)).await;
    assert_eq!(s, 403);
    assert_eq!(e["error"]["code"], "Authorization_RequestDenied");
    let lic = Graph::as_app(&sim, LICENSING_APP).await;
    // The least-privileged app assigns licences but does not edit users.
    let (_, _, latest) = g
        .get("/users/delta?$deltatoken=latest&$select=displayName,assignedLicenses")
        .await;
    let link = latest["@odata.deltaLink"].as_str().unwrap().to_owned();
    assert_eq!(assign(&lic, &id, add(E1)).await.0, 200);
    assert_eq!(
        lic.patch(&format!("/users/{id}"), &json!({"jobTitle": "x"}))
            .await
            .0,
        403
    );
    let users_only = Graph::as_app(&sim, USERS_ONLY_APP).await;
    assert_eq!(assign(&users_only, &id, remove(E1)).await.0, 200);
    // Both changes show in delta when assignedLicenses is selected.
    let (_, _, round) = g
        .send(
            g.c.get(&link)
                .bearer_auth(&g.token)
                .header("Prefer", "return=minimal"),
        )
        .await;
    assert_eq!(round["value"], json!([{"id": id, "assignedLicenses": []}]));
    sim.shutdown().await;
}

/// Planner and Bookings (in SPE_E3) need an Exchange Online mailbox plan (the seed's
/// `planDependencies`): an E3 without its mailbox plan is refused with Graph's wording,
/// directly and in `$batch`, unless another licence brings a mailbox plan; through a group it
/// is a `DependencyViolation` on the member.
#[tokio::test]
async fn a_plan_without_the_plan_it_depends_on_is_refused() {
    const PLANNER: &str = "b737dad2-2f6c-4c65-90e3-ca563267e8b9";
    const TEAMS1: &str = "57ff2da0-773e-42df-b2af-ffb7a2317929";
    let (sim, g) = sim().await;
    let want = format!(
        "License assignment failed because service plan {PLANNER} depends on the service plan(s) {EXO_P2}, {EXO_P1}"
    );
    let no_mailbox = |sku: &str, off: &[&str]| json!({"addLicenses": [{"skuId": sku, "disabledPlans": off}], "removeLicenses": []});
    let a = new_user(&g, &sim, "dep.a", Some("US")).await;
    let before = consumed(&g).await;
    let (s, e) = assign(&g, &a, no_mailbox(E3, &[EXO_P2])).await;
    assert_eq!(s, 400, "{e}");
    assert_graph_error(&e, "Request_BadRequest", &want);
    assert_eq!(
        consumed(&g).await[E3],
        before[E3],
        "a refusal takes no seat"
    );
    // Turning the dependent plans off too, or another mailbox plan, satisfies it.
    let b = new_user(&g, &sim, "dep.b", Some("US")).await;
    assert_eq!(assign(&g, &b, add(EXO1)).await.0, 200);
    assert_eq!(assign(&g, &b, no_mailbox(E3, &[EXO_P2])).await.0, 200);
    // Turning off a plan nothing depends on is fine (`SPE_E3,-TEAMS1`).
    assert_eq!(assign(&g, &a, no_mailbox(E3, &[TEAMS1])).await.0, 200);

    // In $batch, the same answer.
    let c = new_user(&g, &sim, "dep.c", Some("US")).await;
    let (_, _, bt) = g
        .batch(vec![json!({"id": "1", "method": "POST",
            "url": format!("/users/{c}/assignLicense"),
            "headers": {"Content-Type": "application/json"}, "body": no_mailbox(E3, &[EXO_P2])})])
        .await;
    let r = &bt["responses"][0];
    assert_eq!(r["status"], 400, "{bt}");
    assert_eq!(r["body"]["error"]["code"], "Request_BadRequest");
    assert_eq!(r["body"]["error"]["message"], want.as_str());

    // Through a group: recorded on the member.
    let (_, _, grp) = g
        .post(
            "/groups",
            &json!({"displayName": "E3 no mailbox", "mailEnabled": false,
                    "mailNickname": "e3nomailbox", "securityEnabled": true}),
        )
        .await;
    let gid = grp["id"].as_str().unwrap().to_owned();
    let (s, _, _) = g
        .post(
            &format!("/groups/{gid}/members/$ref"),
            &json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{c}")}),
        )
        .await;
    assert_eq!(s, 204);
    let (s, _, _) = g
        .post(
            &format!("/groups/{gid}/assignLicense"),
            &no_mailbox(E3, &[EXO_P2]),
        )
        .await;
    assert_eq!(s, 202);
    let sc = states(&g, &c).await;
    let st = &sc["licenseAssignmentStates"][0];
    assert_eq!(
        (st["state"].as_str(), st["error"].as_str()),
        (Some("Error"), Some("DependencyViolation")),
        "{sc}"
    );
    assert_eq!(sc["assignedLicenses"], json!([]));
    sim.shutdown().await;
}
