//! Directory groups in the console: `g` on Bindings lists them, Space records a group's wish,
//! the preview carries group ops (sent after the users') and the held-back ones, whose
//! findings land in Errors with the group's id so `f` previews the right group fix.
use m365sync::app::effect::Fix;
use m365sync::app::explain::ErrorSource;
use m365sync::app::fixtures;
use m365sync::app::state::{Modal, Planning, Tab};
use m365sync::app::{update, Action, AppState, Effect};
use m365sync::diagnose::FixAction;
use m365sync::keymap::Command;

fn cmd(s: &mut AppState, c: Command) -> Vec<Effect> {
    update(s, Action::Command(c))
}

#[test]
fn g_switches_the_bindings_list_between_users_and_groups() {
    let mut s = fixtures::bindings_state();
    update(
        &mut s,
        Action::DirectoryLoaded(Ok(m365sync::app::action::DirectorySnapshot {
            users: fixtures::directory_users_with_wishes(40),
            groups: fixtures::directory_groups(),
            ..Default::default()
        })),
    );
    assert_eq!(s.tabs.bindings.view.shown.len(), 40);
    cmd(&mut s, Command::ToggleGroups);
    assert!(s.tabs.bindings.groups);
    assert_eq!(s.tabs.bindings.view.shown, vec![0, 1, 2, 3]);
    // Passwords are users': P does nothing on a group.
    assert!(cmd(&mut s, Command::SetPassword).is_empty());
    assert_eq!(s.modal, Modal::None);
    cmd(&mut s, Command::ToggleGroups);
    assert!(!s.tabs.bindings.groups);
    assert_eq!(s.tabs.bindings.view.shown.len(), 40);
}

#[test]
fn space_on_a_group_records_its_wish_then_reads_the_directory_again() {
    let mut s = fixtures::groups_state();
    s.tabs.bindings.view.selected = 3; // Sales (EU), wanted
    let fx = cmd(&mut s, Command::ToggleWant);
    assert_eq!(
        fx,
        vec![Effect::SetGroupWant {
            ids: vec![4],
            bound: false
        }]
    );
    assert!(!s.data.directory.groups[3].want_bound);
    s.tabs.bindings.view.selected = 0; // Engineering, not wanted
    let fx = cmd(&mut s, Command::Bind);
    assert_eq!(
        fx,
        vec![Effect::SetGroupWant {
            ids: vec![1],
            bound: true
        }]
    );
    assert!(update(&mut s, Action::WantSaved(Ok(1))).is_empty());
    assert_eq!(
        update(&mut s, Action::WantSaved(Ok(1))),
        vec![Effect::LoadDirectory]
    );
}

#[test]
fn the_group_filter_and_the_state_filter_apply_to_groups() {
    let mut s = fixtures::groups_state();
    for c in "sales".chars() {
        update(
            &mut s,
            Action::FilterInput(tui_input::InputRequest::InsertChar(c)),
        );
    }
    assert_eq!(s.tabs.bindings.view.shown, vec![3]);
    cmd(&mut s, Command::FilterClear);
    cmd(&mut s, Command::CycleStatus); // Bound
    assert_eq!(s.tabs.bindings.view.shown, vec![1]);
}

#[test]
fn y_sends_the_group_ops_and_never_the_held_back_ones() {
    let mut s = fixtures::groups_preview_state();
    let fx = cmd(&mut s, Command::Confirm);
    let [Effect::Apply { view, .. }] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    assert_eq!(view.plan.ops, fixtures::plan_view(1, 0, false).plan.ops);
    assert_eq!(view.group_ops.len(), 1);
    assert_eq!(view.group_ops[0].group_name, "Finance");
    // The run takes the ops to send only: none of the held-back ones.
    assert!(view
        .ops()
        .iter()
        .all(|o| o.group_id() != Some(view.group_held[0].0.group_id)));
}

#[test]
fn a_plan_with_only_group_ops_can_be_applied() {
    let mut s = fixtures::groups_state();
    let mut v = fixtures::plan_view_with_groups();
    v.plan.ops.clear();
    v.counts.clear();
    v.group_held.clear();
    s.data.plan_gen = 1;
    s.modal = Modal::Planning(Planning { gen: 1 });
    update(
        &mut s,
        Action::PlanReady {
            gen: 1,
            result: Ok(Box::new(v)),
        },
    );
    assert!(matches!(s.modal, Modal::Preview(_)), "{:?}", s.modal);
    let fx = cmd(&mut s, Command::Confirm);
    assert!(
        matches!(fx.as_slice(), [Effect::Apply { view, .. }] if view.plan.ops.is_empty() && view.group_ops.len() == 1),
        "{fx:?}"
    );
}

#[test]
fn held_back_group_findings_become_errors_with_the_group_id() {
    let s = fixtures::groups_preview_state();
    let groups: Vec<_> = s
        .data
        .errors
        .iter()
        .filter(|e| e.source == ErrorSource::Preflight && e.op.is_none())
        .collect();
    assert_eq!(groups.len(), 2, "{groups:?}");
    let sales = groups
        .iter()
        .find(|e| e.kind() == "mailnickname-forbidden-char")
        .unwrap();
    assert_eq!(sales.directory_id, Some(4));
    assert_eq!(sales.subject, "Sales (EU)");
    assert_eq!(sales.fixes().first(), Some(&FixAction::SanitizeNickname));
}

fn fix_of(kind: &str) -> Fix {
    let mut s = fixtures::groups_preview_state();
    cmd(&mut s, Command::Back);
    cmd(&mut s, Command::GoTab(3));
    assert_eq!(s.tab, Tab::Errors);
    let row = s
        .tabs
        .errors
        .view
        .shown
        .iter()
        .position(|&r| s.data.errors[r as usize].kind() == kind)
        .unwrap_or_else(|| panic!("no {kind} shown"));
    s.tabs.errors.view.selected = row;
    assert!(cmd(&mut s, Command::Fix).is_empty());
    let Modal::Fix(d) = &s.modal else {
        panic!("no fix dialog: {:?}", s.modal)
    };
    assert!(!d.change.is_empty());
    // A fix with a value to type (the nickname) is saved with Enter; the others with `y`.
    let key = if d.input.is_some() {
        Command::Submit
    } else {
        Command::Confirm
    };
    let fx = cmd(&mut s, key);
    let [Effect::Fix { fix, .. }] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    fix.clone()
}

#[test]
fn f_on_the_sales_eu_finding_sets_the_suggested_nickname() {
    assert_eq!(
        fix_of("mailnickname-forbidden-char"),
        Fix::SetGroupNickname {
            group_id: 4,
            nickname: "SalesEU".into()
        }
    );
}

#[test]
fn f_on_a_stray_space_finding_trims_the_group_name() {
    assert_eq!(
        fix_of("group-name-extra-space"),
        Fix::SetGroupName {
            group_id: 1,
            name: "Engineering".into()
        }
    );
}

#[test]
fn failed_group_ops_of_a_run_go_to_errors_with_their_kind() {
    use m365sync::sync::groups::{GroupOp, GroupOpKind};
    let mut s = fixtures::groups_state();
    let before = s.data.errors.len();
    let op = GroupOp {
        kind: GroupOpKind::CreateGroup,
        group_id: 1,
        group_name: "Sales (EU)".into(),
        mail_nickname: "SalesEU".into(),
        group_kind: Default::default(),
        tenant_group_id: None,
        member: None,
        reason: String::new(),
    };
    update(
        &mut s,
        Action::Apply(m365sync::app::action::ApplyNews::OpFailed {
            op: m365sync::sync::ops::AnyOp::Group(op),
            error: m365sync::graph::GraphError::Api {
                status: 403,
                code: "Authorization_RequestDenied".into(),
                message: "Insufficient privileges to complete the operation.".into(),
                request_id: Some("rq-1".into()),
                date: None,
                retry_after: None,
            },
        }),
    );
    assert_eq!(s.data.errors.len(), before + 1);
    let e = &s.data.errors[before];
    assert_eq!(e.subject, "create group Sales (EU)");
    // A Graph 403 on a group create keeps its type to the screen: the kind, the permission
    // the operation needs, and the request-id.
    assert_eq!(e.kind(), "insufficient-privileges");
    assert!(
        e.diag
            .permission
            .as_deref()
            .unwrap()
            .contains("Group.ReadWrite.All"),
        "{:?}",
        e.diag.permission
    );
    assert_eq!(e.request_id.as_deref(), Some("rq-1"));
}

#[test]
fn a_re_check_counts_held_back_groups() {
    let mut s = fixtures::groups_state();
    s.data.plan_gen = 5;
    s.data.check_gen = Some(5);
    update(
        &mut s,
        Action::PlanReady {
            gen: 5,
            result: Ok(Box::new(fixtures::plan_view_with_groups())),
        },
    );
    assert_eq!(
        s.data.message(),
        Some("Re-checked: 2 still held back (see Errors, key 3).")
    );
    assert_eq!(s.modal, Modal::None);
}

#[test]
fn the_suggested_nickname_can_be_edited_and_a_bad_one_is_refused() {
    use tui_input::InputRequest;
    let mut s = fixtures::groups_preview_state();
    cmd(&mut s, Command::Back);
    cmd(&mut s, Command::GoTab(3));
    let row = s
        .tabs
        .errors
        .view
        .shown
        .iter()
        .position(|&r| s.data.errors[r as usize].kind() == "mailnickname-forbidden-char")
        .unwrap();
    s.tabs.errors.view.selected = row;
    cmd(&mut s, Command::Fix);
    let typed = |s: &mut AppState, r: InputRequest| update(s, Action::DialogInput(r));
    // `y` is text here (the nickname is being edited), not "apply".
    assert!(cmd(&mut s, Command::Confirm).is_empty());
    // Edit "SalesEU" to "Sales-EU".
    typed(&mut s, InputRequest::GoToEnd);
    for _ in 0..2 {
        typed(&mut s, InputRequest::DeletePrevChar);
    }
    for c in "-EU".chars() {
        typed(&mut s, InputRequest::InsertChar(c));
    }
    let fx = cmd(&mut s, Command::Submit);
    assert_eq!(
        fx,
        vec![Effect::Fix {
            fix: Fix::SetGroupNickname {
                group_id: 4,
                nickname: "Sales-EU".into()
            },
            key: fx.first().and_then(|e| match e {
                Effect::Fix { key, .. } => key.clone(),
                _ => None,
            })
        }]
    );

    // A character Graph refuses is explained as it is typed, and nothing is sent.
    let mut s = fixtures::groups_preview_state();
    cmd(&mut s, Command::Back);
    cmd(&mut s, Command::GoTab(3));
    s.tabs.errors.view.selected = row;
    cmd(&mut s, Command::Fix);
    typed(&mut s, InputRequest::InsertChar('('));
    let Modal::Fix(d) = &s.modal else {
        panic!("{:?}", s.modal)
    };
    assert!(d.problem.is_some(), "{d:?}");
    assert!(cmd(&mut s, Command::Submit).is_empty());
    assert!(matches!(s.modal, Modal::Fix(_)), "the dialog stays up");
}
