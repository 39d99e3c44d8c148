//! The console's licences against the simulator, through `update` and the real effects
//! (`runtime::Services`): a SKU with a service plan turned off is assigned to a directory
//! user in the licence dialog, previewed and applied, and the account holds it with that plan
//! disabled (read back with Graph); a licence error group-based licensing records on an
//! account (no free seat: `CountViolation`) is in the Errors tab and in `errors --json` with
//! its catalog kind.
mod common;

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use m365sync::app::dialogs::Modal;
use m365sync::app::runtime::Services;
use m365sync::app::update::key_action;
use m365sync::app::{update, Action, AppState, Effect};
use m365sync::graph::GraphClient;
use m365sync::keymap::Command;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

const E3: &str = "05e9a617-0261-4cee-bb44-138d3ef5d965";
const PBI: &str = "f8a1db68-be16-40ed-86d5-cb42ce701560";
const TEAMS1: &str = "57ff2da0-773e-42df-b2af-ffb7a2317929";

/// The console: its state, the effects' runner and the actions they send back.
struct Console {
    s: AppState,
    services: Services,
    rx: UnboundedReceiver<Action>,
}

impl Console {
    /// Signed in with the cached token, the tenant listed and the directory read.
    async fn start(env: &common::Env) -> Console {
        let mut settings = env.settings.clone();
        settings.client_id = Some(env.sim.apps[0].0.clone());
        let tenant = settings.tenant.clone().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut c = Console {
            s: AppState::new(&tenant),
            services: Services::new(settings, Some(env.http()), tx),
            rx,
        };
        let fx = m365sync::app::update::init(&mut c.s);
        c.run(fx);
        c.until("signed in, listed and read", |s, _| {
            s.data.session.is_some() && s.data.complete_copy && s.data.directory_loaded
        })
        .await;
        c
    }

    fn run(&mut self, fx: Vec<Effect>) {
        for e in fx {
            self.services.run(e);
        }
    }

    /// Feeds the actions the effects send back to `update` until `done` (checked after each,
    /// with the action it followed); within 60 s.
    async fn until(&mut self, what: &str, mut done: impl FnMut(&AppState, &Action) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let a = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("waiting for: {what}"))
                .expect("the channel stays open");
            let fx = update(&mut self.s, a.clone());
            self.run(fx);
            if done(&self.s, &a) {
                return;
            }
        }
    }

    fn command(&mut self, c: Command) {
        let fx = update(&mut self.s, Action::Command(c));
        self.run(fx);
    }

    /// Key presses as the terminal sends them, through the keymap.
    fn keys(&mut self, keys: &[KeyCode]) {
        for k in keys {
            let ev = KeyEvent::new(*k, KeyModifiers::NONE);
            let a = key_action(&self.s, &ev).unwrap_or_else(|| panic!("{k:?} does nothing"));
            let fx = update(&mut self.s, a);
            self.run(fx);
        }
    }

    fn type_text(&mut self, text: &str) {
        let keys: Vec<KeyCode> = text.chars().map(KeyCode::Char).collect();
        self.keys(&keys);
    }

    /// The Licences tab with its report read.
    async fn licences(&mut self) {
        self.command(Command::GoTab(4));
        self.until("the licences", |s, a| {
            matches!(a, Action::LicencesLoaded(_)) && s.data.licences.report.is_some()
        })
        .await;
    }

    /// `p`: the plan, in the preview.
    async fn preview(&mut self) {
        self.keys(&[KeyCode::Char('p')]);
        self.until("the plan", |_, a| matches!(a, Action::PlanReady { .. }))
            .await;
    }
}

async fn graph(env: &common::Env) -> GraphClient {
    GraphClient::new(env.http(), &env.settings.graph_url, env.app_session().await)
}

async fn post(g: &GraphClient, path: &str, body: Value) -> Value {
    let r = g
        .request(
            reqwest::Method::POST,
            &format!("{}{path}", g.base()),
            Some(bytes::Bytes::from(body.to_string())),
        )
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_gets_a_sku_with_a_plan_off_from_the_console_and_the_account_holds_it() {
    let env = common::start(common::fast_options()).await;
    let dom = env.sim.default_domain.clone();
    let email = format!("lia.console@{dom}");
    env.import_people(&format!(
        "email,givenName,surname,displayName\n{email},Lia,Console,Lia Console\n"
    ))
    .await;
    env.ok(&["bind", &email]).await;
    env.ok(&["directory", "policy", "--usage-location", "US"])
        .await;
    env.ok(&["login"]).await;
    let mut c = Console::start(&env).await;
    c.licences().await;

    // `a` on SPE_E3, Lia found by typing, Enter; TEAMS1 off with Space; Enter records it.
    let skus = &c.s.data.licences.report.as_ref().unwrap().skus;
    let row = skus.iter().position(|s| s.sku == "SPE_E3").unwrap();
    let teams = skus[row]
        .service_plans
        .iter()
        .position(|p| p == "TEAMS1")
        .unwrap();
    for _ in 0..row {
        c.command(Command::Down);
    }
    c.keys(&[KeyCode::Char('a')]);
    c.type_text("lia.console");
    c.keys(&[KeyCode::Enter]);
    c.keys(&vec![KeyCode::Char('j'); teams]);
    c.keys(&[KeyCode::Char(' '), KeyCode::Enter]);
    assert!(!c.s.modal.is_open(), "{:?}", c.s.modal);
    c.until("the licence recorded and read again", |s, a| {
        matches!(a, Action::LicencesLoaded(_)) && s.data.licences.report.is_some()
    })
    .await;
    let r = c.s.data.licences.report.as_ref().unwrap();
    assert!(
        r.assignments
            .iter()
            .any(|a| a.owner == "user" && a.name == email && a.licences == ["SPE_E3,-TEAMS1"]),
        "the Licences tab lists the user's assignment: {:?}",
        r.assignments
    );
    // The same data the CLI writes: `licences` shows it.
    let out = env.ok(&["licences"]).await;
    assert!(
        out.contains(&format!("user {email}: SPE_E3,-TEAMS1")),
        "{out}"
    );

    // `p` previews: the account and its licence; `y` applies.
    c.command(Command::GoTab(2));
    c.preview().await;
    let Modal::Preview(p) = &c.s.modal else {
        panic!("{:?}", c.s.modal)
    };
    let reasons: Vec<String> = p.view.plan.ops.iter().map(|o| o.reason.clone()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("+SPE_E3 (off: TEAMS1)")),
        "{reasons:?}"
    );
    c.keys(&[KeyCode::Char('y')]);
    c.until("the run", |_, a| matches!(a, Action::ApplyFinished(_)))
        .await;

    let g = graph(&env).await;
    let id = env.sim.user_by_upn(&email).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let held = g.user_licences(std::slice::from_ref(&id)).await.unwrap();
    let e3 = held[&id].assigned(E3).expect("the account holds SPE_E3");
    assert_eq!(e3.disabled_plans, vec![TEAMS1.to_string()], "TEAMS1 is off");
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_licence_without_a_seat_is_in_the_errors_tab_and_errors_json() {
    let env = common::start(common::fast_options()).await;
    let dom = env.sim.default_domain.clone();
    let (ann, ben) = (format!("ann.seat@{dom}"), format!("ben.seat@{dom}"));
    env.import_people(&format!(
        "email,givenName,surname,displayName,usageLocation,licences\n\
         {ann},Ann,Seat,Ann Seat,US,SPE_E3\n{ben},Ben,Seat,Ben Seat,US,SPE_E3\n"
    ))
    .await;
    env.ok(&["bind", &ann, &ben]).await;
    env.ok(&["login"]).await;
    let out = env.ok(&["sync", "--apply"]).await;
    assert!(out.contains("0 failed"), "{out}");

    // A group in Microsoft 365 gives both Power BI, which has one free seat: one of them gets
    // it, the other has CountViolation recorded on the account.
    let g = graph(&env).await;
    let grp = post(
        &g,
        "/groups",
        json!({"displayName": "BI readers", "mailEnabled": false, "mailNickname": "bireaders",
               "securityEnabled": true}),
    )
    .await;
    let gid = grp["id"].as_str().unwrap().to_string();
    for who in [&ann, &ben] {
        let uid = env.sim.user_by_upn(who).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        post(
            &g,
            &format!("/groups/{gid}/members/$ref"),
            json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{uid}")}),
        )
        .await;
    }
    post(
        &g,
        &format!("/groups/{gid}/assignLicense"),
        json!({"addLicenses": [{"skuId": PBI, "disabledPlans": []}], "removeLicenses": []}),
    )
    .await;
    let short: Vec<&String> = [&ann, &ben]
        .into_iter()
        .filter(|u| {
            env.sim.user_by_upn(u).unwrap()["licenseAssignmentStates"]
                .as_array()
                .is_some_and(|a| a.iter().any(|s| s["error"] == "CountViolation"))
        })
        .collect();
    assert_eq!(short.len(), 1, "one seat for two");
    let short = short[0].clone();

    // `errors --json`: the kind, the account, the SKU, Microsoft's code, source tenant.
    let out = env.ok(&["errors", "--json"]).await;
    let line: Value = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["kind"] == "licence-state-no-seats")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(line["source"], "tenant");
    assert_eq!(line["subject"]["name"], short.as_str());
    assert_eq!(line["raw"]["code"], "CountViolation");
    assert!(
        line["title"].as_str().unwrap().contains("POWER_BI_PRO"),
        "{line}"
    );

    // The console: the same finding from the same plan, in the Errors tab.
    let mut c = Console::start(&env).await;
    c.command(Command::GoTab(2));
    c.preview().await;
    let e =
        c.s.data
            .errors
            .iter()
            .find(|e| e.kind() == "licence-state-no-seats")
            .unwrap_or_else(|| panic!("{:?}", c.s.data.errors));
    assert_eq!(e.subject, short);
    assert_eq!(e.code, "CountViolation");
    assert_eq!(e.diag.title, line["title"].as_str().unwrap());
    env.sim.shutdown().await;
}

/// A user without a usage location is held back with its licence (`licence-usage-location`);
/// the one-key fix types the country into the directory, and the next sync sends it, then the
/// licence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usage_location_fix_lets_the_licence_through() {
    use m365sync::app::effect::Fix;
    let env = common::start(common::fast_options()).await;
    let dom = env.sim.default_domain.clone();
    let email = format!("uma.where@{dom}");
    env.import_people(&format!(
        "email,givenName,surname,displayName,licences\n{email},Uma,Where,Uma Where,SPE_E3\n"
    ))
    .await;
    env.ok(&["bind", &email]).await;
    env.ok(&["login"]).await;
    let out = env.ok(&["errors", "--json"]).await;
    let line: Value = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["kind"] == "licence-usage-location")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(line["fix"], "set-usage-location");
    let id = m365sync::directory::Directory::open(&env.settings.db_path())
        .unwrap()
        .find_by_email(&email)
        .unwrap()
        .unwrap()
        .id;
    let done = m365sync::app::runtime::run_fix(
        Fix::SetUsageLocation {
            directory_id: id,
            code: "DE".into(),
        },
        env.settings.db_path(),
        None,
    )
    .await
    .unwrap();
    assert!(done.contains("DE"), "{done}");
    let out = env.ok(&["sync", "--apply"]).await;
    assert!(out.contains("0 failed"), "{out}");
    let u = env.sim.user_by_upn(&email).unwrap();
    assert_eq!(u["usageLocation"], "DE", "{u}");
    assert!(
        u["assignedLicenses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["skuId"] == E3),
        "{u}"
    );
    env.sim.shutdown().await;
}
