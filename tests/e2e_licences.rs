//! Licences end to end, through the real binary and the simulator: a group with a default SKU
//! is bound, each account is created with the directory's default usage location and gets its
//! licence in one `assignLicense`; seats consumed grow by exactly the users; a SKU with fewer
//! free seats than the plan needs holds back the users past them, with the numbers, in the
//! dry run; later changes are planned as add/remove diffs. And every licence refusal of the
//! simulator is explained by its catalog kind.
mod common;

use m365sync::diagnose::{diagnose_graph, Context, Operation, Subject};
use m365sync::graph::GraphClient;
use serde_json::{json, Value};

const E3: &str = "05e9a617-0261-4cee-bb44-138d3ef5d965";
const PBI: &str = "f8a1db68-be16-40ed-86d5-cb42ce701560";
const EXO1: &str = "4b9405b0-7788-4568-add1-99614e613b69";

/// `m365sync licences --json`: the SKU line of `part`.
async fn sku(env: &common::Env, part: &str) -> Value {
    let out = env.ok(&["licences", "--json"]).await;
    let v: Value = serde_json::from_str(&out).unwrap();
    v["skus"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sku"] == part)
        .unwrap_or_else(|| panic!("{part} in {out}"))
        .clone()
}

/// `sync --dry-run`, held-back changes (exit 2) included.
async fn dry(env: &common::Env) -> String {
    let o = env.run(&["sync", "--dry-run"]).await;
    assert!(matches!(o.status.code(), Some(0 | 2)), "{o:?}");
    common::text(&o.stdout)
}

fn skus_of(u: &Value) -> Vec<String> {
    u["assignedLicenses"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|l| l["skuId"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bound_group_with_a_default_sku_licenses_its_accounts_and_counts_seats() {
    let env = common::start(common::fast_options()).await;
    let dom = env.sim.default_domain.clone();
    let csv = env.data.path().join("people.csv");
    // Dan has his own usage location (it wins over the default); Eve also gets Power BI from
    // the CSV's licences column.
    std::fs::write(
        &csv,
        format!(
            "email,displayName,groups,usageLocation,licences\n\
             ann.lic@{dom},Ann Lic,Sales,,\n\
             ben.lic@{dom},Ben Lic,Sales,,\n\
             dan.lic@{dom},Dan Lic,Sales,GB,\n\
             eve.lic@{dom},Eve Lic,Sales,,POWER_BI_PRO\n"
        ),
    )
    .unwrap();
    env.ok(&["directory", "import", csv.to_str().unwrap()])
        .await;
    env.ok(&["login"]).await;
    let out = env
        .ok(&[
            "licence",
            "assign",
            "--group",
            "Sales",
            "--sku",
            "SPE_E3,-TEAMS1",
        ])
        .await;
    assert!(
        out.contains("assigned to group \"Sales\": SPE_E3,-TEAMS1"),
        "{out}"
    );
    env.ok(&["bind", "--group", "Sales"]).await;
    let e3_before = sku(&env, "SPE_E3").await;
    let pbi_before = sku(&env, "POWER_BI_PRO").await;
    assert_eq!(pbi_before["free"], 1, "the seed's Power BI: 25, 24 used");

    // No usage location yet for Ann, Ben, Eve: held back (the create with its licence), said
    // plainly; Dan has his own.
    let d = dry(&env).await;
    assert!(
        d.contains("held back: create account ann.lic@")
            && d.contains("ann.lic@northwindtraders.com has no usage location"),
        "{d}"
    );
    assert!(d.contains("assign licences             dan.lic@"), "{d}");

    env.ok(&["directory", "policy", "--usage-location", "US"])
        .await;
    let dry_out = env.ok(&["sync", "--dry-run"]).await;
    assert!(dry_out.contains("assign licences"), "{dry_out}");
    assert!(
        dry_out.contains("+SPE_E3 (off: TEAMS1)"),
        "the diff is shown: {dry_out}"
    );
    assert!(dry_out.contains("+POWER_BI_PRO"), "{dry_out}");
    let writes = env.sim.write_count();
    let out = env.ok(&["sync", "--apply"]).await;
    assert!(out.contains("13 done, 0 failed"), "{out}");
    assert_eq!(
        env.sim.write_count() - writes,
        4 * 2 + 1 + 4,
        "2 writes per account (create + one assignLicense), the group and its 4 members"
    );
    let teams1 = "57ff2da0-773e-42df-b2af-ffb7a2317929";
    for n in ["ann", "ben", "dan", "eve"] {
        let u = env.sim.user_by_upn(&format!("{n}.lic@{dom}")).unwrap();
        let want = if n == "dan" { "GB" } else { "US" };
        assert_eq!(u["usageLocation"], want, "{u}");
        assert!(skus_of(&u).contains(&E3.to_string()), "{u}");
        let e3 = u["assignedLicenses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["skuId"] == E3)
            .unwrap();
        let off: Vec<&str> = e3["disabledPlans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(off, vec![teams1], "TEAMS1 turned off: {e3}");
    }
    let e3_after = sku(&env, "SPE_E3").await;
    assert_eq!(
        e3_after["consumed"].as_i64().unwrap() - e3_before["consumed"].as_i64().unwrap(),
        4,
        "seats consumed grow by the users"
    );
    let pbi_after = sku(&env, "POWER_BI_PRO").await;
    assert_eq!(pbi_after["free"], 0);
    let dry_out = env.ok(&["sync", "--dry-run"]).await;
    assert!(dry_out.contains("Nothing to do"), "{dry_out}");

    // Power BI for the whole group: 3 more needed, none free: held back with the numbers.
    env.ok(&[
        "licence",
        "assign",
        "--group",
        "Sales",
        "--sku",
        "POWER_BI_PRO",
    ])
    .await;
    let d = dry(&env).await;
    assert!(d.contains("needs 3 POWER_BI_PRO, 0 free"), "{d}");
    let lic = env.ok(&["licences"]).await;
    assert!(lic.contains("3 held back: no seat"), "{lic}");
    assert!(
        lic.contains("group Sales: POWER_BI_PRO; SPE_E3,-TEAMS1 (4 users)"),
        "{lic}"
    );
    assert!(lic.contains("licence-no-seats"), "{lic}");

    // Unassigning E3 from the group removes it from the 4 accounts (one op each, a diff).
    env.ok(&[
        "licence",
        "unassign",
        "--group",
        "Sales",
        "--sku",
        "POWER_BI_PRO",
    ])
    .await;
    env.ok(&["licence", "unassign", "--group", "Sales", "--sku", "SPE_E3"])
        .await;
    let dry_out = env.ok(&["sync", "--dry-run"]).await;
    assert!(dry_out.contains("4 assign licences"), "{dry_out}");
    assert!(dry_out.contains("licences: -SPE_E3"), "{dry_out}");
    env.ok(&["sync", "--apply"]).await;
    let u = env.sim.user_by_upn(&format!("ann.lic@{dom}")).unwrap();
    assert!(!skus_of(&u).contains(&E3.to_string()), "{u}");
    let eve = env.sim.user_by_upn(&format!("eve.lic@{dom}")).unwrap();
    assert_eq!(
        skus_of(&eve),
        vec![PBI.to_string()],
        "her own licence stays"
    );
    assert_eq!(
        sku(&env, "SPE_E3").await["consumed"],
        e3_before["consumed"],
        "the seats are free again"
    );
    env.sim.shutdown().await;
}

/// Sends `body` to `/users/{id}/assignLicense` and returns the catalog kind of the refusal.
async fn refusal(g: &GraphClient, user: &str, body: Value) -> String {
    let e = g
        .request(
            reqwest::Method::POST,
            &format!("/users/{user}/assignLicense"),
            Some(serde_json::to_vec(&body).unwrap().into()),
        )
        .await
        .expect_err("refused");
    diagnose_graph(
        &e,
        &Context::new(Operation::AssignLicense, Subject::User(user.into())),
    )
    .kind
}

fn add(sku: &str) -> Value {
    json!({"addLicenses": [{"skuId": sku, "disabledPlans": []}], "removeLicenses": []})
}

async fn new_user(g: &GraphClient, dom: &str, nick: &str, usage: Option<&str>) -> String {
    let r = g
        .request(
            reqwest::Method::POST,
            "/users",
            Some(
                serde_json::to_vec(&json!({
                    "accountEnabled": true, "displayName": nick, "mailNickname": nick,
                    "userPrincipalName": format!("{nick}@{dom}"),
                    "passwordProfile": {"password": "Xq7!pLm2#vR9"},
                    "usageLocation": usage,
                }))
                .unwrap()
                .into(),
            ),
        )
        .await
        .unwrap();
    r.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_licence_refusal_of_the_simulator_has_its_kind() {
    let env = common::start(common::fast_options()).await;
    let dom = env.sim.default_domain.clone();
    let g = GraphClient::new(env.http(), &env.settings.graph_url, env.app_session().await);
    let nowhere = new_user(&g, &dom, "nowhere", None).await;
    let ann = new_user(&g, &dom, "lic.ann", Some("US")).await;
    let ben = new_user(&g, &dom, "lic.ben", Some("US")).await;
    let cat = new_user(&g, &dom, "lic.cat", Some("US")).await;
    assert_eq!(
        refusal(&g, &nowhere, add(E3)).await,
        "licence-usage-location"
    );
    assert_eq!(
        refusal(&g, &ann, add("11111111-2222-3333-4444-555555555555")).await,
        "licence-sku-unknown"
    );
    // Power BI: one seat left; Ann takes it, Ben finds none.
    g.request(
        reqwest::Method::POST,
        &format!("/users/{ann}/assignLicense"),
        Some(serde_json::to_vec(&add(PBI)).unwrap().into()),
    )
    .await
    .unwrap();
    assert_eq!(refusal(&g, &ben, add(PBI)).await, "licence-no-seats");
    // Exchange Online Plan 1's mailbox plan excludes E3's.
    g.request(
        reqwest::Method::POST,
        &format!("/users/{cat}/assignLicense"),
        Some(serde_json::to_vec(&add(E3)).unwrap().into()),
    )
    .await
    .unwrap();
    assert_eq!(refusal(&g, &cat, add(EXO1)).await, "licence-plan-conflict");
    // A licence from a group cannot be removed from the user.
    let gid = env.sim.add_group("Licensed", "licensed", false);
    g.request(
        reqwest::Method::POST,
        &format!("/groups/{gid}/members/$ref"),
        Some(
            serde_json::to_vec(&json!({
                "@odata.id": format!("{}/directoryObjects/{ben}", env.settings.graph_url)
            }))
            .unwrap()
            .into(),
        ),
    )
    .await
    .unwrap();
    g.request(
        reqwest::Method::POST,
        &format!("/groups/{gid}/assignLicense"),
        Some(serde_json::to_vec(&add(E3)).unwrap().into()),
    )
    .await
    .unwrap();
    assert_eq!(
        refusal(&g, &ben, json!({"addLicenses": [], "removeLicenses": [E3]})).await,
        "licence-from-group"
    );
    // Permissions: an app that may read users but not assign licences, nor read the SKUs.
    let sim_apps = env.sim.apps.clone();
    let mut kinds = Vec::new();
    for (id, secret) in sim_apps {
        let (auth, _) = (
            m365sync::auth::Authenticator::new(
                env.http(),
                &env.settings.authority,
                env.settings.tenant.as_deref().unwrap(),
                &id,
            ),
            (),
        );
        let tokens = match auth.client_credentials(&secret).await {
            Ok(t) => t,
            Err(_) => continue,
        };
        let s = m365sync::auth::Session::start(
            auth,
            m365sync::auth::TokenCache::new(env.data.path().join(format!("c-{id}.json"))),
            tokens,
            None,
        )
        .unwrap();
        let ga = GraphClient::new(env.http(), &env.settings.graph_url, s);
        if let Err(e) = ga.subscribed_skus().await {
            let d = diagnose_graph(&e, &Context::new(Operation::ListLicences, Subject::None));
            assert_eq!(d.permission.as_deref(), Some("Organization.Read.All"));
            kinds.push(d.kind);
        }
        let r = ga
            .request(
                reqwest::Method::POST,
                &format!("/users/{cat}/assignLicense"),
                Some(serde_json::to_vec(&add(PBI)).unwrap().into()),
            )
            .await;
        if let Err(e) = r {
            let d = diagnose_graph(
                &e,
                &Context::new(Operation::AssignLicense, Subject::User(cat.clone())),
            );
            if e.status() == Some(403) {
                assert_eq!(
                    d.permission.as_deref(),
                    Some("LicenseAssignment.ReadWrite.All")
                );
                kinds.push(d.kind);
            }
        }
    }
    assert!(
        kinds.len() >= 2 && kinds.iter().all(|k| k == "licence-permission-missing"),
        "{kinds:?}"
    );
    env.sim.shutdown().await;
}

/// The licence preflight from the simulator's SKU data (`GET /subscribedSkus`): a SKU users
/// cannot hold, one the tenant does not have, and two Exchange mailbox plans at once are held
/// back with their kinds, in the dry run and in `licences --json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_preflight_reads_the_tenants_sku_data() {
    // The demo seed with STANDARDPACK (Office 365 E1) made a tenant-wide (Company) SKU.
    let dir = tempfile::tempdir().unwrap();
    let mut seed: Value = serde_json::from_str(include_str!("../assets/demo-tenant.json")).unwrap();
    for s in seed["subscribedSkus"].as_array_mut().unwrap() {
        if s["skuPartNumber"] == "STANDARDPACK" {
            s["appliesTo"] = "Company".into();
        }
    }
    let path = dir.path().join("seed.json");
    std::fs::write(&path, serde_json::to_vec(&seed).unwrap()).unwrap();
    let env = common::start(m365sync::sim::SimOptions {
        seed: Some(path),
        ..common::fast_options()
    })
    .await;
    let dom = env.sim.default_domain.clone();
    let csv = env.data.path().join("p.csv");
    std::fs::write(
        &csv,
        format!(
            "email,displayName,usageLocation,licences\n\
             co.lic@{dom},Co,US,STANDARDPACK\n\
             no.lic@{dom},No,US,NOPE_SKU\n\
             two.lic@{dom},Two,US,SPE_E3;EXCHANGESTANDARD\n\
             ok.lic@{dom},Ok,US,\"SPE_E3,-EXCHANGE_S_ENTERPRISE;EXCHANGESTANDARD\"\n\
             dep.lic@{dom},Dep,US,\"SPE_E3,-EXCHANGE_S_ENTERPRISE\"\n"
        ),
    )
    .unwrap();
    env.ok(&["directory", "import", csv.to_str().unwrap()])
        .await;
    env.ok(&["bind", "--all"]).await;
    env.ok(&["login"]).await;
    let d = dry(&env).await;
    for (who, kind) in [
        ("co.lic", "cannot be assigned to users"),
        ("no.lic", "the tenant has no such licence"),
        ("two.lic", "mutually exclusive"),
        (
            "dep.lic",
            "PROJECTWORKMANAGEMENT (from SPE_E3) without EXCHANGE_S_ENTERPRISE",
        ),
    ] {
        assert!(
            d.contains(&format!("held back: create account {who}@")) && d.contains(kind),
            "{who}: {d}"
        );
    }
    assert!(
        d.contains("assign licences             ok.lic@"),
        "E3 without its mailbox plan stacks with Exchange Plan 1: {d}"
    );
    let v: Value = serde_json::from_str(&env.ok(&["licences", "--json"]).await).unwrap();
    let kinds: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "licence-sku-not-assignable",
            "licence-plan-dependency",
            "licence-sku-unknown",
            "licence-plan-conflict"
        ]
    );
    env.sim.shutdown().await;
}
