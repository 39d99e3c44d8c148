//! The Errors tab as a feature: every error source becomes a catalog Diagnosis, errors are
//! grouped by kind, preflight holds ops back from the apply, each one-key fix opens its
//! preview and emits the right Effect, the domain settings save, the export asks CSV or JSON.
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use m365sync::app::effect::{ExportFormat, Fix};
use m365sync::app::explain::{ErrorEntry, ErrorSource};
use m365sync::app::fixtures::{self};
use m365sync::app::state::{ErrorsTab, Modal, Phase, Planning, SignIn, Tab};
use m365sync::app::update::key_action;
use m365sync::app::{update, Action, AppState, Effect};
use m365sync::auth::AuthError;
use m365sync::diagnose::FixAction;
use m365sync::directory::DomainSettings;
use m365sync::graph::GraphError;
use m365sync::keymap::Command;
use m365sync::sync::plan::OpKind;
use tui_input::InputRequest;

fn cmd(s: &mut AppState, c: Command) -> Vec<Effect> {
    update(s, Action::Command(c))
}

fn select_kind(s: &mut AppState, kind: &str) {
    let row = s
        .tabs
        .errors
        .view
        .shown
        .iter()
        .position(|&r| s.data.errors[r as usize].kind() == kind)
        .unwrap_or_else(|| panic!("no {kind} shown"));
    s.tabs.errors.view.selected = row;
}

fn fix_dialog(s: &AppState) -> &m365sync::app::state::FixDialog {
    match &s.modal {
        Modal::Fix(d) => d,
        m => panic!("no fix dialog: {m:?}"),
    }
}

#[test]
fn every_error_source_becomes_a_diagnosis_of_its_kind() {
    let import = ErrorEntry::from_import(&fixtures::email_exists_failure(8));
    assert_eq!(
        (import.kind(), import.source),
        ("email-exists", ErrorSource::Import)
    );
    assert_eq!(import.fixes()[0], FixAction::LinkConflict);

    let graph = ErrorEntry::from_graph(
        "list tenant users",
        &GraphError::Api {
            status: 429,
            code: "TooManyRequests".into(),
            message: "Too many requests".into(),
            request_id: Some("r-1".into()),
            date: None,
            retry_after: Some(std::time::Duration::from_secs(30)),
        },
    );
    assert_eq!(graph.kind(), "throttled");
    assert_eq!(graph.request_id.as_deref(), Some("r-1"));

    let auth = ErrorEntry::from_auth(
        "device-code sign-in",
        &AuthError::OAuth {
            error: "invalid_grant".into(),
            description: "AADSTS700082: expired".into(),
            codes: vec![700082],
            trace_id: Some("t-1".into()),
        },
    );
    assert_eq!(auth.kind(), "token-expired");
    assert_eq!(auth.trace_id.as_deref(), Some("t-1"));
    assert_eq!(auth.fixes()[0], FixAction::SignInAgain);

    let dir = ErrorEntry::from_directory("load the directory", "disk I/O error");
    assert_eq!(dir.kind(), "directory-unavailable");
    let bug = ErrorEntry::from_directory("compute the plan", "internal error: boom");
    assert_eq!(bug.kind(), "internal-error");
    let lost = ErrorEntry::password_lost("a@contoso.com", "2026-12-01T10:00:00Z");
    assert_eq!(lost.kind(), "password-not-delivered");
    // A failure keeps its type across the effect boundary: a directory that stayed busy is
    // not "disk full", a 403 is not a directory failure.
    let busy = ErrorEntry::from_failure(&fixtures::db_busy());
    assert_eq!(busy.kind(), "directory-busy");
    let denied = ErrorEntry::from_failure(&m365sync::failure::Failure::graph(
        m365sync::diagnose::Operation::RestoreUser,
        m365sync::diagnose::Subject::User("a@contoso.com".into()),
        GraphError::Api {
            status: 403,
            code: "Authorization_RequestDenied".into(),
            message: "Insufficient privileges to complete the operation.".into(),
            request_id: Some("rq-9".into()),
            date: None,
            retry_after: None,
        },
    ));
    assert_eq!(denied.kind(), "insufficient-privileges");
    assert_eq!(denied.request_id.as_deref(), Some("rq-9"));
    assert!(denied.diag.permission.is_some());

    // An apply OpFailed keeps the op (retry re-sends it) and the directory user.
    let s = fixtures::bindings_state();
    let op_err = s
        .data
        .errors
        .iter()
        .find(|e| e.op.is_some())
        .expect("op failure");
    assert_eq!(op_err.kind(), "upn-exists");
    assert_eq!(op_err.directory_id, Some(11));
    assert_eq!(op_err.op.as_ref().map(|o| o.kind), Some(OpKind::Create));
}

#[test]
fn preflight_findings_go_to_errors_grouped_by_kind() {
    let s = fixtures::held_preview_state();
    let kinds = ErrorsTab::kinds(&s.data.errors);
    assert_eq!(
        kinds,
        vec![
            ("upn-exists", 1),
            ("upn-domain-unverified", 1),
            ("proxy-address-held", 1)
        ]
    );
    let pre: Vec<&ErrorEntry> = s
        .data
        .errors
        .iter()
        .filter(|e| e.source == ErrorSource::Preflight)
        .collect();
    assert_eq!(pre.len(), 2);
    assert!(pre.iter().all(|e| e.op.is_some() && e.issue.is_some()));
    // A second plan replaces the findings instead of adding to them.
    let mut s = s;
    cmd(&mut s, Command::Back);
    s.data.plan_gen = 2;
    s.modal = Modal::Planning(Planning { gen: 2 });
    update(
        &mut s,
        Action::PlanReady {
            gen: 2,
            result: Ok(Box::new(fixtures::plan_view_with_held())),
        },
    );
    assert_eq!(
        s.data
            .errors
            .iter()
            .filter(|e| e.source == ErrorSource::Preflight)
            .count(),
        2
    );
}

#[test]
fn held_back_ops_are_never_in_the_apply_effect() {
    let mut s = fixtures::held_preview_state();
    let fx = cmd(&mut s, Command::Confirm);
    let [Effect::Apply { view, .. }] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    assert_eq!(view.plan.ops.len(), 3);
    assert!(view
        .plan
        .ops
        .iter()
        .all(|o| o.directory_id != 3 && o.directory_id != 11));
}

#[test]
fn a_plan_with_only_held_back_ops_opens_the_preview_but_sends_nothing() {
    let mut s = fixtures::bindings_state();
    let mut v = fixtures::plan_view_with_held();
    v.plan.ops.clear();
    s.data.plan_gen = 1;
    s.modal = Modal::Planning(Planning { gen: 1 });
    update(
        &mut s,
        Action::PlanReady {
            gen: 1,
            result: Ok(Box::new(v)),
        },
    );
    assert!(matches!(s.modal, Modal::Preview(_)));
    assert!(cmd(&mut s, Command::Confirm).is_empty());
    assert!(matches!(s.modal, Modal::Preview(_)));
}

#[test]
fn kind_filter_cycles_through_the_kinds_present() {
    let mut s = fixtures::preflight_errors_state();
    assert_eq!(s.tabs.errors.view.shown.len(), 3);
    cmd(&mut s, Command::CycleStatus);
    assert_eq!(s.tabs.errors.kind.as_deref(), Some("upn-exists"));
    assert_eq!(s.tabs.errors.view.shown.len(), 1);
    cmd(&mut s, Command::CycleStatus);
    cmd(&mut s, Command::CycleStatus);
    assert_eq!(s.tabs.errors.kind.as_deref(), Some("proxy-address-held"));
    cmd(&mut s, Command::CycleStatus);
    assert_eq!(s.tabs.errors.kind, None);
    assert_eq!(s.tabs.errors.view.shown.len(), 3);
}

#[test]
fn use_default_domain_previews_the_upn_then_stores_the_override() {
    let mut s = fixtures::preflight_errors_state();
    assert!(cmd(&mut s, Command::Fix).is_empty());
    let d = fix_dialog(&s);
    assert_eq!(d.action, Some(FixAction::UseDefaultDomain));
    assert_eq!(d.value.as_deref(), Some("hiroshi.tanabe@contoso.com"));
    assert!(d.change.iter().any(|l| l.contains("Email stays")));
    let fx = cmd(&mut s, Command::Confirm);
    let [Effect::Fix { fix, key }] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    assert_eq!(
        fix,
        &Fix::UseDefaultDomain {
            directory_id: 3,
            upn: "hiroshi.tanabe@contoso.com".into()
        }
    );
    // Done: the error goes, the directory is read again, then the plan is re-checked.
    let fx = update(
        &mut s,
        Action::FixDone {
            key: key.clone(),
            result: Ok("ok.".into()),
        },
    );
    assert_eq!(fx, vec![Effect::LoadDirectory]);
    assert!(!s
        .data
        .errors
        .iter()
        .any(|e| e.kind() == "upn-domain-unverified"));
    let users = s.data.directory.users.clone();
    let fx = update(
        &mut s,
        Action::DirectoryLoaded(Ok(m365sync::app::action::DirectorySnapshot {
            users,
            ..Default::default()
        })),
    );
    let gen = fx
        .iter()
        .find_map(|e| match e {
            Effect::Plan { gen, .. } => Some(*gen),
            _ => None,
        })
        .expect("a re-check");
    assert_eq!(s.data.check_gen, Some(gen));
    // The re-check updates Errors and opens nothing.
    let mut v = fixtures::plan_view_with_held();
    v.held.retain(|(o, _)| o.directory_id != 3);
    v.issues.retain(|(i, _)| i.directory_id != 3);
    update(
        &mut s,
        Action::PlanReady {
            gen,
            result: Ok(Box::new(v)),
        },
    );
    assert_eq!(s.modal, Modal::None);
    assert_eq!(
        s.data
            .errors
            .iter()
            .filter(|e| e.source == ErrorSource::Preflight)
            .count(),
        1
    );
}

#[test]
fn edit_email_is_typed_in_place_validated_and_saved() {
    let mut s = fixtures::preflight_errors_state();
    cmd(&mut s, Command::Fix);
    cmd(&mut s, Command::NextFix);
    assert_eq!(fix_dialog(&s).action, Some(FixAction::EditEmail));
    // `y` is a character here: typed keys go to the input, not to Confirm.
    let y = KeyEvent::new(KeyCode::Char('y'), KeyModifiers::NONE);
    assert!(matches!(key_action(&s, &y), Some(Action::DialogInput(_))));
    // Unchanged is refused.
    assert!(cmd(&mut s, Command::Submit).is_empty());
    assert!(fix_dialog(&s).problem.is_some());
    for _ in 0..17 {
        update(&mut s, Action::DialogInput(InputRequest::DeletePrevChar));
    }
    for c in "contoso.com".chars() {
        update(&mut s, Action::DialogInput(InputRequest::InsertChar(c)));
    }
    assert_eq!(fix_dialog(&s).problem, None);
    let fx = cmd(&mut s, Command::Submit);
    assert!(matches!(
        fx.as_slice(),
        [Effect::Fix {
            fix: Fix::SetEmail { directory_id: 3, email },
            ..
        }] if email == "hiroshi.tanabe@contoso.com"
    ));
    assert_eq!(s.modal, Modal::None);
}

#[test]
fn restore_and_purge_name_the_deleted_holder_and_purge_says_irreversible() {
    let mut s = fixtures::preflight_errors_state();
    select_kind(&mut s, "proxy-address-held");
    cmd(&mut s, Command::Fix);
    assert_eq!(fix_dialog(&s).action, Some(FixAction::RestoreDeleted));
    assert!(!fix_dialog(&s).irreversible);
    cmd(&mut s, Command::NextFix);
    let d = fix_dialog(&s);
    assert_eq!(d.action, Some(FixAction::PurgeDeleted));
    assert!(d.irreversible);
    let addr = d.value.clone().unwrap();
    assert!(addr.ends_with("@contoso.onmicrosoft.com"), "{addr}");
    let fx = cmd(&mut s, Command::Confirm);
    assert_eq!(
        fx.iter()
            .map(|e| match e {
                Effect::Fix { fix, .. } => fix.clone(),
                e => panic!("{e:?}"),
            })
            .collect::<Vec<_>>(),
        vec![Fix::PurgeDeleted { address: addr }]
    );
    // Esc on a preview changes nothing.
    let mut s = fixtures::preflight_errors_state();
    select_kind(&mut s, "proxy-address-held");
    cmd(&mut s, Command::Fix);
    assert!(cmd(&mut s, Command::Back).is_empty());
    assert_eq!(s.modal, Modal::None);
}

#[test]
fn link_conflict_links_the_import_conflict_to_its_directory_user() {
    let mut s = fixtures::with_directory(
        fixtures::loaded_state(30),
        30,
        vec![fixtures::email_exists_failure(8)],
    );
    cmd(&mut s, Command::GoTab(3));
    select_kind(&mut s, "email-exists");
    cmd(&mut s, Command::Fix);
    assert_eq!(fix_dialog(&s).action, Some(FixAction::LinkConflict));
    let fx = cmd(&mut s, Command::Confirm);
    match fx.as_slice() {
        [Effect::Fix {
            fix:
                Fix::Link {
                    directory_id,
                    tenant_user_id,
                },
            ..
        }] => {
            assert_eq!(tenant_user_id, &fixtures::tenant_user(8).id);
            // Directory user 8 (id 9) has that email.
            assert_eq!(*directory_id, 9);
        }
        fx => panic!("{fx:?}"),
    }
}

#[test]
fn retry_plans_again_through_the_pipeline() {
    let mut s = fixtures::bindings_state();
    for i in [18, 26] {
        update(
            &mut s,
            Action::Apply(m365sync::app::action::ApplyNews::OpFailed {
                op: m365sync::sync::ops::AnyOp::User(fixtures::op(OpKind::Create, i)),
                error: GraphError::Api {
                    status: 503,
                    code: "serviceNotAvailable".into(),
                    message: "Service unavailable".into(),
                    request_id: None,
                    date: None,
                    retry_after: None,
                },
            }),
        );
    }
    cmd(&mut s, Command::GoTab(3));
    select_kind(&mut s, "service-unavailable");
    cmd(&mut s, Command::Fix);
    assert_eq!(fix_dialog(&s).action, Some(FixAction::Retry));
    assert!(fix_dialog(&s).change[0].contains("Preview the plan again"));
    let fx = cmd(&mut s, Command::Confirm);
    // Failed ops are planned again from the current wish: the preview, then y. Nothing is
    // sent from an old list.
    assert!(matches!(fx.as_slice(), [Effect::Plan { .. }]), "{fx:?}");
    assert!(matches!(s.modal, Modal::Planning(_)));
    assert!(!s
        .data
        .errors
        .iter()
        .any(|e| e.kind() == "service-unavailable"));
}

#[test]
fn sign_in_again_goes_back_to_the_sign_in_screen() {
    let mut s = fixtures::loaded_state(3);
    s.data.errors.push(ErrorEntry::from_auth(
        "refresh cached sign-in",
        &AuthError::OAuth {
            error: "invalid_grant".into(),
            description: "AADSTS700082".into(),
            codes: vec![700082],
            trace_id: None,
        },
    ));
    s.tabs.errors.view.shown.push(0);
    cmd(&mut s, Command::GoTab(3));
    cmd(&mut s, Command::Fix);
    assert_eq!(fix_dialog(&s).action, Some(FixAction::SignInAgain));
    let fx = cmd(&mut s, Command::Confirm);
    assert!(matches!(fx.as_slice(), [Effect::StartDeviceCode { .. }]));
    assert_eq!(s.data.phase, Phase::SignIn(SignIn::Requesting));
}

#[test]
fn domain_settings_toggle_and_default_emit_the_save_effect() {
    let mut s = fixtures::preflight_errors_state();
    let fx = cmd(&mut s, Command::Domains);
    assert_eq!(
        fx,
        vec![Effect::LoadDomains {
            tenant: "contoso.onmicrosoft.com".into()
        }]
    );
    update(
        &mut s,
        Action::DomainsLoaded(Ok((fixtures::domains(), DomainSettings::default()))),
    );
    // No list saved: every verified domain is allowed. Space on fabrikam.com disallows it.
    cmd(&mut s, Command::Down);
    cmd(&mut s, Command::Down);
    let fx = cmd(&mut s, Command::ToggleDomain);
    let [Effect::SaveDomains { settings, .. }] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    assert_eq!(
        settings.enabled,
        Some(vec![
            "contoso.onmicrosoft.com".to_string(),
            "contoso.com".to_string()
        ])
    );
    // An unverified domain cannot be the default.
    cmd(&mut s, Command::Down);
    assert!(cmd(&mut s, Command::DefaultDomain).is_empty());
    // contoso.onmicrosoft.com can.
    cmd(&mut s, Command::Top);
    for _ in 0..3 {
        cmd(&mut s, Command::Up);
    }
    let fx = cmd(&mut s, Command::DefaultDomain);
    let [Effect::SaveDomains { settings, .. }] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    assert_eq!(settings.default.as_deref(), Some("contoso.onmicrosoft.com"));
    assert_eq!(s.data.domain_settings, *settings);
    // Saved: preflight runs again with the new settings (a re-check, nothing opens).
    let fx = update(&mut s, Action::DomainsSaved(Ok(())));
    assert!(matches!(fx.as_slice(), [Effect::Plan { .. }]), "{fx:?}");
    assert!(s.data.check_gen.is_some());
    cmd(&mut s, Command::Back);
    assert_eq!(s.modal, Modal::None);
}

#[test]
fn export_asks_csv_or_json_and_exports_the_errors_shown() {
    let mut s = fixtures::preflight_errors_state();
    cmd(&mut s, Command::CycleStatus); // only upn-exists
    cmd(&mut s, Command::Export);
    assert!(matches!(s.modal, Modal::Export(_)));
    let c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE);
    assert_eq!(
        key_action(&s, &c),
        Some(Action::Command(Command::ExportCsv))
    );
    let fx = cmd(&mut s, Command::ExportJson);
    let [Effect::ExportErrors { format, errors }] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    assert_eq!(*format, ExportFormat::Json);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind(), "upn-exists");
    update(&mut s, Action::Exported(Ok("/data/errors-1.json".into())));
    assert!(s.data.message().unwrap().contains("/data/errors-1.json"));
}

#[test]
fn the_export_file_is_private_and_carries_the_diagnosis() {
    let dir = tempfile::tempdir().unwrap();
    let s = fixtures::preflight_errors_state();
    for format in [ExportFormat::Csv, ExportFormat::Json] {
        let path =
            m365sync::app::runtime::export_errors(dir.path(), format, &s.data.errors).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("upn-domain-unverified"), "{text}");
        assert!(text.contains("hiroshi.tanabe@northwind-labs.io"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

#[test]
fn the_errors_tab_offers_its_keys() {
    let s = fixtures::preflight_errors_state();
    assert_eq!(s.tab, Tab::Errors);
    for (ch, c) in [
        ('f', Command::Fix),
        ('e', Command::Export),
        ('d', Command::Domains),
        ('s', Command::CycleStatus),
    ] {
        let k = KeyEvent::new(KeyCode::Char(ch), KeyModifiers::NONE);
        assert_eq!(key_action(&s, &k), Some(Action::Command(c)), "{ch}");
    }
}

#[test]
fn a_fix_dialog_follows_its_error_when_a_re_check_reorders_the_list() {
    let mut s = fixtures::preflight_errors_state();
    select_kind(&mut s, "proxy-address-held");
    cmd(&mut s, Command::Fix);
    // A re-check lands: the findings are pushed again, after the others.
    s.data.plan_gen += 1;
    s.data.check_gen = Some(s.data.plan_gen);
    let mut v = fixtures::plan_view_with_held();
    v.issues.reverse();
    let gen = s.data.plan_gen;
    update(
        &mut s,
        Action::PlanReady {
            gen,
            result: Ok(Box::new(v)),
        },
    );
    let d = fix_dialog(&s);
    assert_eq!(s.data.errors[d.error].kind(), "proxy-address-held");
    // And a re-check that clears it closes the dialog.
    s.data.plan_gen += 1;
    s.data.check_gen = Some(s.data.plan_gen);
    let mut v = fixtures::plan_view_with_held();
    v.issues.retain(|(i, _)| i.kind != "proxy-address-held");
    v.held.retain(|(_, i)| i.kind != "proxy-address-held");
    let gen = s.data.plan_gen;
    update(
        &mut s,
        Action::PlanReady {
            gen,
            result: Ok(Box::new(v)),
        },
    );
    assert_eq!(s.modal, Modal::None);
}
