//! The Licences tab at update level and as snapshots (TestBackend + insta, 80x24 and 120x40):
//! it reads the report when first shown, lists the SKUs with their seats, what m365sync
//! assigns and the users with licence errors; a user past the free seats is held back with
//! the count in the tab and in the preview; `a` assigns the selected SKU to a group through
//! a small dialog, which records it and reads the licences again.
use std::collections::HashMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use m365sync::app::dialogs::Modal;
use m365sync::app::effect::Effect;
use m365sync::app::fixtures::{self, op};
use m365sync::app::state::PlanView;
use m365sync::app::update::key_action;
use m365sync::app::{update, Action, AppState};
use m365sync::directory::{
    DirectoryGroup, LicenceChange, LicenceDefaults, LicenceOwner, LicencePick,
};
use m365sync::graph::licences::{
    LicenceState, PrepaidUnits, ServicePlan, SubscribedSku, UserLicences,
};
use m365sync::keymap::Command;
use m365sync::sync::licences::{recorded_errors, report, LicenceAdd, LicenceDiff, LicenceReport};
use m365sync::sync::plan::OpKind;
use m365sync::sync::preflight::{Issue, Severity};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn sku(part: &str, id: &str, enabled: i64, consumed: i64) -> SubscribedSku {
    SubscribedSku {
        sku_id: id.into(),
        sku_part_number: part.into(),
        capability_status: "Enabled".into(),
        applies_to: "User".into(),
        prepaid_units: PrepaidUnits {
            enabled,
            ..Default::default()
        },
        consumed_units: consumed,
        service_plans: match part {
            "SPE_E3" => [
                "EXCHANGE_S_ENTERPRISE",
                "TEAMS1",
                "INTUNE_A",
                "OFFICESUBSCRIPTION",
            ]
            .iter()
            .enumerate()
            .map(|(i, p)| ServicePlan {
                service_plan_id: format!("plan-{i}"),
                service_plan_name: p.to_string(),
                provisioning_status: None,
                applies_to: Some("User".into()),
            })
            .collect(),
            _ => Vec::new(),
        },
    }
}

/// The tenant's SKUs of these tests.
fn skus() -> Vec<SubscribedSku> {
    vec![
        sku("SPE_E3", "e3", 250, 200),
        sku("POWER_BI_PRO", "pbi", 25, 24),
        sku("EXCHANGESTANDARD", "exo", 10, 2),
    ]
}

/// One user past Power BI's last seat: 2 need it, 1 free.
fn seats_issue(i: usize) -> Issue {
    Issue {
        directory_id: i as i64 + 1,
        kind: "licence-no-seats".into(),
        field: "licence".into(),
        value: "POWER_BI_PRO".into(),
        message: "The plan needs 2 POWER_BI_PRO, 1 free: the user waits for a seat (buy more \
                  POWER_BI_PRO licences or free some, then sync again)."
            .into(),
        suggestion: None,
        severity: Severity::Error,
        holder: None,
    }
}

fn licence_op(i: usize) -> m365sync::sync::plan::Op {
    let mut o = op(OpKind::AssignLicense, i);
    o.licences = Some(Box::new(LicenceDiff {
        add: vec![LicenceAdd {
            sku_id: "pbi".into(),
            sku: "POWER_BI_PRO".into(),
            disabled_plans: vec![],
            disabled_names: vec![],
        }],
        remove: vec![],
    }));
    o.reason = "licences: +POWER_BI_PRO".into();
    o
}

/// The plan: user 2 gets the last Power BI seat, user 10 is held back with the count.
fn view() -> PlanView {
    let held = licence_op(10);
    let issue = seats_issue(10);
    let mut v = fixtures::plan_view(0, 0, false);
    v.plan.ops = vec![licence_op(2)];
    let v = PlanView::new(v.plan, v.eta, None, v.warnings);
    v.with_preflight(
        vec![(held.clone(), issue.clone())],
        vec![(issue, held.email)],
    )
}

/// The directory group the licence goes to.
fn sales() -> DirectoryGroup {
    DirectoryGroup {
        id: 7,
        name: "Sales".into(),
        mail_nickname: None,
        kind: Default::default(),
        tenant_group_id: None,
        want_bound: true,
        last_error: None,
        members: vec![3, 11],
    }
}

fn the_report(s: &AppState) -> LicenceReport {
    let groups = vec![sales()];
    let mut defaults = LicenceDefaults::default();
    defaults
        .groups
        .insert(7, vec![LicencePick::parse("POWER_BI_PRO").unwrap()]);
    let v = view();
    report(
        &s.data.directory.users,
        &groups,
        &defaults,
        &skus(),
        &HashMap::new(),
        &v.plan.ops,
        &v.held,
        &v.issues,
    )
}

/// The Bindings fixture with a directory group, on the Licences tab with its report.
fn licences_state() -> (AppState, Vec<Effect>) {
    let mut s = fixtures::bindings_state();
    let mut snap = m365sync::app::action::DirectorySnapshot {
        users: s.data.directory.users.clone(),
        ..Default::default()
    };
    snap.groups = vec![sales()];
    update(&mut s, Action::DirectoryLoaded(Ok(snap)));
    let fx = update(&mut s, Action::Command(Command::GoTab(4)));
    let r = the_report(&s);
    update(&mut s, Action::LicencesLoaded(Ok(Box::new(r))));
    s.data.dirty = false;
    (s, fx)
}

fn text(s: &AppState, w: u16, h: u16) -> String {
    let mut s = s.clone();
    update(
        &mut s,
        Action::Resize {
            width: w,
            height: h,
        },
    );
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| m365sync::app::draw(f, &s)).unwrap();
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        let line: String = (0..w).map(|x| buf[(x, y)].symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[test]
fn the_tab_reads_its_report_when_first_shown_and_shows_the_seats() {
    let (s, fx) = licences_state();
    assert!(fx.contains(&Effect::LoadLicences), "{fx:?}");
    let t = text(&s, 120, 40);
    assert!(
        t.contains("Licences (1)"),
        "the badge counts licence errors:\n{t}"
    );
    assert!(t.contains("POWER_BI_PRO"), "{t}");
    assert!(t.contains("1 held back: no seat"), "{t}");
    assert!(t.contains("group Sales: POWER_BI_PRO"), "{t}");
    assert!(t.contains("needs 2 POWER_BI_PRO, 1 free"), "{t}");
    for (w, h) in [(80, 24), (120, 40)] {
        insta::assert_snapshot!(format!("licences_tab_{w}x{h}"), text(&s, w, h));
    }
}

#[test]
fn one_past_the_free_seats_is_held_back_with_the_count_in_the_preview() {
    let (mut s, _) = licences_state();
    let fx = update(&mut s, Action::Command(Command::Preview));
    assert!(
        fx.iter().any(|e| matches!(e, Effect::Plan { .. })),
        "p previews from the Licences tab: {fx:?}"
    );
    let gen = s.data.plan_gen;
    update(
        &mut s,
        Action::PlanReady {
            gen,
            result: Ok(Box::new(view())),
        },
    );
    assert!(matches!(s.modal, Modal::Preview(_)), "{:?}", s.modal);
    let t = text(&s, 120, 40);
    assert!(t.contains("assign licences"), "{t}");
    assert!(
        t.contains("licences: +POWER_BI_PRO"),
        "the preview shows what each licence op adds and removes:\n{t}"
    );
    assert!(t.contains("needs 2 POWER_BI_PRO, 1 free"), "{t}");
}

#[test]
fn a_assigns_the_selected_sku_to_a_group_and_reads_the_licences_again() {
    let (mut s, _) = licences_state();
    update(&mut s, Action::Command(Command::Down));
    update(&mut s, Action::Command(Command::AssignLicence));
    let Modal::AssignLicence(d) = &s.modal else {
        panic!("{:?}", s.modal)
    };
    assert_eq!(d.sku, "POWER_BI_PRO");
    insta::assert_snapshot!("licences_assign_dialog_80x24", text(&s, 80, 24));
    // The group first; Enter goes to its plans, Enter again records it.
    update(&mut s, Action::Command(Command::Submit));
    let fx = update(&mut s, Action::Command(Command::Submit));
    assert_eq!(
        fx,
        vec![Effect::ChangeLicence {
            owner: LicenceOwner::Group(7),
            name: "group \"Sales\"".into(),
            change: LicenceChange::Assign(LicencePick::parse("POWER_BI_PRO").unwrap()),
        }]
    );
    assert!(!s.modal.is_open());
    let fx = update(
        &mut s,
        Action::LicenceChanged(Ok("assigned to group \"Sales\": POWER_BI_PRO".into())),
    );
    assert!(fx.contains(&Effect::LoadDirectory), "{fx:?}");
    assert!(fx.contains(&Effect::LoadLicences), "{fx:?}");
    let t = text(&s, 120, 40);
    assert!(
        t.contains("Assigned to group \"Sales\": POWER_BI_PRO. p previews"),
        "{t}"
    );
    // After an apply, seats are read again.
    let r = the_report(&s);
    update(&mut s, Action::LicencesLoaded(Ok(Box::new(r))));
    let fx = update(&mut s, Action::ApplyFinished(Ok(Default::default())));
    assert!(fx.contains(&Effect::LoadLicences), "{fx:?}");
}

fn keys(s: &mut AppState, keys: &[KeyCode]) -> Vec<Effect> {
    let mut fx = Vec::new();
    for k in keys {
        let ev = KeyEvent::new(*k, KeyModifiers::NONE);
        if let Some(a) = key_action(s, &ev) {
            fx.extend(update(s, a));
        }
    }
    fx
}

/// `a` on SPE_E3, a user found by typing, TEAMS1 turned off with Space: the user's own
/// default SKU, recorded as the CLI's `--sku SPE_E3,-TEAMS1` would; the dialog's keys and
/// hints come from its keymap sections.
#[test]
fn a_user_gets_a_sku_with_a_plan_turned_off_through_the_keys() {
    let (mut s, _) = licences_state();
    let who = s.data.directory.users[4].clone();
    let find = who.email.split('@').next().unwrap().to_string();
    let mut typed: Vec<KeyCode> = vec![KeyCode::Char('a')];
    typed.extend(find.chars().map(KeyCode::Char));
    keys(&mut s, &typed);
    let Modal::AssignLicence(d) = &s.modal else {
        panic!("{:?}", s.modal)
    };
    assert_eq!(d.sku, "SPE_E3");
    assert_eq!(d.find, find, "j, k and every letter type while finding");
    assert_eq!(d.chosen().map(|t| t.name.clone()), Some(who.email.clone()));
    keys(
        &mut s,
        &[KeyCode::Enter, KeyCode::Char('j'), KeyCode::Char(' ')],
    );
    let t = text(&s, 80, 24);
    assert!(t.contains("[ ] TEAMS1"), "{t}");
    assert!(t.contains("SPE_E3,-TEAMS1"), "{t}");
    assert!(
        t.contains("Space on/off"),
        "the hints come from licence_plans:\n{t}"
    );
    insta::assert_snapshot!("licence_plans_dialog_80x24", t);
    insta::assert_snapshot!("licence_plans_dialog_120x40", text(&s, 120, 40));
    let fx = keys(&mut s, &[KeyCode::Enter]);
    assert_eq!(
        fx,
        vec![Effect::ChangeLicence {
            owner: LicenceOwner::User(who.id),
            name: who.email.clone(),
            change: LicenceChange::Assign(LicencePick::parse("SPE_E3,-TEAMS1").unwrap()),
        }]
    );
    // The tab's list of what m365sync assigns names users too.
    let mut defaults = LicenceDefaults::default();
    defaults
        .users
        .insert(who.id, vec![LicencePick::parse("SPE_E3,-TEAMS1").unwrap()]);
    let r = report(
        &s.data.directory.users,
        &[sales()],
        &defaults,
        &skus(),
        &HashMap::new(),
        &[],
        &[],
        &[],
    );
    update(&mut s, Action::LicencesLoaded(Ok(Box::new(r))));
    let t = text(&s, 120, 40);
    assert!(
        t.contains(&format!("user {}: SPE_E3,-TEAMS1", who.email)),
        "{t}"
    );
}

/// A licence error Microsoft recorded on an account (group licensing without a seat) is in
/// the Errors tab with its catalog kind, the account and the SKU, from the plan's findings.
#[test]
fn a_licence_error_recorded_on_an_account_is_in_the_errors_tab() {
    let (mut s, _) = licences_state();
    let who = s.data.directory.users[4].clone();
    let mut users = s.data.directory.users.clone();
    users[4].tenant_user_id = Some("acc-4".into());
    let accounts = HashMap::from([(
        "acc-4".to_string(),
        UserLicences {
            assigned_licenses: vec![],
            license_assignment_states: vec![LicenceState {
                sku_id: "pbi".into(),
                assigned_by_group: Some("grp-1".into()),
                disabled_plans: vec![],
                state: Some("Error".into()),
                error: Some("CountViolation".into()),
            }],
        },
    )]);
    let mut v = view();
    v.recorded = recorded_errors(&users, &skus(), &accounts);
    update(&mut s, Action::Command(Command::Preview));
    let gen = s.data.plan_gen;
    update(
        &mut s,
        Action::PlanReady {
            gen,
            result: Ok(Box::new(v)),
        },
    );
    let e = s
        .data
        .errors
        .iter()
        .find(|e| e.kind() == "licence-state-no-seats")
        .unwrap_or_else(|| panic!("{:?}", s.data.errors));
    assert_eq!(e.subject, who.email);
    assert_eq!(e.code, "CountViolation");
    assert_eq!(e.directory_id, Some(who.id));
    update(&mut s, Action::Command(Command::Back));
    update(&mut s, Action::Command(Command::GoTab(3)));
    let n = s
        .data
        .errors
        .iter()
        .position(|e| e.kind() == "licence-state-no-seats")
        .unwrap();
    for _ in 0..n {
        update(&mut s, Action::Command(Command::Down));
    }
    let t = text(&s, 120, 40);
    assert!(
        t.contains("Licence not given: no free seat of POWER_BI_PRO"),
        "{t}"
    );
    assert!(t.contains("CountViolation"), "{t}");
    insta::assert_snapshot!("errors_tab_licence_state_80x24", text(&s, 80, 24));
    insta::assert_snapshot!("errors_tab_licence_state_120x40", t);
}
