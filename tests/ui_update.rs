//! `update` is pure: every path, failures included, is tested by feeding it actions.
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use m365sync::app::fixtures::{self, NOW};
use m365sync::app::state::{Load, Phase, SessionInfo, SignIn, Tab};
use m365sync::app::update::{init, key_action};
use m365sync::app::{update, Action, AppState, Effect};
use m365sync::auth::{AuthError, Identity};
use m365sync::directory::{ImportOutcome, ImportStatus};
use m365sync::graph::GraphError;
use m365sync::keymap::Command;
use tui_input::InputRequest;

fn cmd(s: &mut AppState, c: Command) -> Vec<Effect> {
    update(s, Action::Command(c))
}

fn type_str(s: &mut AppState, text: &str) {
    for c in text.chars() {
        update(s, Action::FilterInput(InputRequest::InsertChar(c)));
    }
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// What a full scan would show: the reference narrowing must agree with.
fn brute(s: &AppState, q: &str, st: Option<ImportStatus>) -> Vec<u32> {
    (0..s.rows.len())
        .filter(|&r| {
            st.is_none_or(|x| s.rows.status[r] == x)
                && s.rows.hay.get(r).contains(&q.to_lowercase())
        })
        .map(|r| r as u32)
        .collect()
}

#[test]
fn navigation_stays_in_bounds_and_keeps_the_selection_on_screen() {
    let mut s = fixtures::loaded_state(100);
    let rows = 19; // 24 lines minus header, status, toolbar, list header, hint bar
    assert_eq!(m365sync::app::update::list_rows(&s), rows);
    cmd(&mut s, Command::Up);
    assert_eq!(s.import.view.selected, 0, "k at the top stays");
    cmd(&mut s, Command::Down);
    cmd(&mut s, Command::Down);
    assert_eq!(s.import.view.selected, 2);
    cmd(&mut s, Command::Bottom);
    assert_eq!(s.import.view.selected, 99);
    assert_eq!(s.import.view.offset, 100 - rows);
    cmd(&mut s, Command::Down);
    assert_eq!(s.import.view.selected, 99, "j at the bottom stays");
    cmd(&mut s, Command::Top);
    assert_eq!((s.import.view.selected, s.import.view.offset), (0, 0));
    cmd(&mut s, Command::PageDown);
    assert_eq!(s.import.view.selected, rows);
    assert_eq!(s.import.view.offset, 1);
    cmd(&mut s, Command::HalfDown);
    assert_eq!(s.import.view.selected, rows + rows / 2);
    cmd(&mut s, Command::HalfUp);
    cmd(&mut s, Command::PageUp);
    assert_eq!(s.import.view.selected, 0);
    for _ in 0..10 {
        cmd(&mut s, Command::PageDown);
    }
    assert_eq!(s.import.view.selected, 99, "PgDn stops at the last row");
    // A smaller terminal moves the window so the selection stays visible.
    update(
        &mut s,
        Action::Resize {
            width: 80,
            height: 10,
        },
    );
    assert!(s.import.view.offset + 5 > 99 && s.import.view.offset <= 99);
}

#[test]
fn empty_list_navigation_is_harmless() {
    let mut s = fixtures::loaded_state(0);
    for c in [
        Command::Down,
        Command::Bottom,
        Command::PageDown,
        Command::Up,
        Command::ToggleMark,
    ] {
        cmd(&mut s, c);
    }
    assert_eq!(s.import.view.selected, 0);
    assert!(cmd(&mut s, Command::Import).is_empty());
}

#[test]
fn filter_narrows_as_the_query_grows_widens_on_backspace_and_esc_clears() {
    let mut s = fixtures::loaded_state(500);
    cmd(&mut s, Command::Filter);
    assert!(s.import.view.editing);
    type_str(&mut s, "Megan");
    assert_eq!(s.import.view.shown, brute(&s, "megan", None));
    assert!(!s.import.view.shown.is_empty() && s.import.view.shown.len() < 500);
    type_str(&mut s, " V");
    assert_eq!(s.import.view.query, "megan v");
    assert_eq!(s.import.view.shown, brute(&s, "megan v", None));
    update(&mut s, Action::FilterInput(InputRequest::DeletePrevChar));
    update(&mut s, Action::FilterInput(InputRequest::DeletePrevChar));
    assert_eq!(
        s.import.view.shown,
        brute(&s, "megan", None),
        "backspace widens again"
    );
    // Enter keeps the filter and leaves typing mode.
    cmd(&mut s, Command::FilterKeep);
    assert!(!s.import.view.editing);
    assert_eq!(s.import.view.input.value(), "Megan");
    assert_eq!(s.import.view.shown, brute(&s, "megan", None));
    // Esc in the list clears a kept filter.
    cmd(&mut s, Command::Back);
    assert_eq!(s.import.view.shown.len(), 500);
    // Esc while typing clears too.
    cmd(&mut s, Command::Filter);
    type_str(&mut s, "zzz-no-match");
    assert!(s.import.view.shown.is_empty());
    cmd(&mut s, Command::FilterClear);
    assert!(!s.import.view.editing);
    assert_eq!(s.import.view.shown.len(), 500);
}

#[test]
fn filter_matches_upn_and_mail_and_keeps_the_selected_row() {
    let mut s = fixtures::loaded_state(300);
    for _ in 0..17 {
        cmd(&mut s, Command::Down);
    }
    let row = s.import.view.selected_row().unwrap();
    let upn = s.rows.user(row).user_principal_name.clone();
    cmd(&mut s, Command::Filter);
    type_str(&mut s, "@CONTOSO.onmicrosoft");
    assert_eq!(s.import.view.shown.len(), 300);
    assert_eq!(
        s.import.view.selected_row(),
        Some(row),
        "selection follows the row"
    );
    type_str(&mut s, "");
    cmd(&mut s, Command::FilterClear);
    cmd(&mut s, Command::Filter);
    type_str(&mut s, &upn);
    assert_eq!(s.import.view.shown, vec![row]);
}

#[test]
fn pages_arriving_while_filtered_are_filtered_as_they_come() {
    let mut s = fixtures::loaded_state(0);
    s.load = Load::Loading { pages: 0 };
    cmd(&mut s, Command::Filter);
    type_str(&mut s, "joni");
    let users = fixtures::tenant_users(200);
    let statuses: Vec<_> = (0..200).map(fixtures::status_of).collect();
    let (gen, index_version) = (s.load_gen, s.index_version);
    update(
        &mut s,
        Action::UsersPage {
            gen,
            index_version,
            users,
            statuses,
        },
    );
    assert_eq!(s.rows.len(), 200);
    assert_eq!(s.import.view.shown, brute(&s, "joni", None));
    assert_eq!(
        s.rows.count(ImportStatus::New),
        (0..200)
            .filter(|&i| fixtures::status_of(i) == ImportStatus::New)
            .count()
    );
    assert_eq!(s.load, Load::Loading { pages: 1 });
}

#[test]
fn status_filter_cycles_all_new_imported_conflict_failed() {
    let mut s = fixtures::loaded_state(100);
    let mut seen = vec![s.import.status];
    for _ in 0..5 {
        cmd(&mut s, Command::CycleStatus);
        seen.push(s.import.status);
        if let Some(st) = s.import.status {
            assert_eq!(s.import.view.shown, brute(&s, "", Some(st)));
            assert_eq!(s.import.view.shown.len(), s.rows.count(st));
        }
    }
    assert_eq!(
        seen,
        vec![
            None,
            Some(ImportStatus::New),
            Some(ImportStatus::Imported),
            Some(ImportStatus::Conflict),
            Some(ImportStatus::Failed),
            None
        ]
    );
    assert_eq!(s.import.view.shown.len(), 100);
    // Status and text filters combine.
    cmd(&mut s, Command::CycleStatus);
    cmd(&mut s, Command::Filter);
    type_str(&mut s, "adele");
    assert_eq!(
        s.import.view.shown,
        brute(&s, "adele", Some(ImportStatus::New))
    );
}

#[test]
fn marking_one_all_shown_and_none() {
    let mut s = fixtures::loaded_state(50);
    cmd(&mut s, Command::ToggleMark);
    assert!(s.import.marks.contains(0));
    assert_eq!(s.import.view.selected, 1, "space moves to the next row");
    cmd(&mut s, Command::Up);
    cmd(&mut s, Command::ToggleMark);
    assert!(!s.import.marks.contains(0), "space again unmarks");
    cmd(&mut s, Command::CycleStatus); // New only
    cmd(&mut s, Command::MarkAll);
    assert_eq!(s.import.marks.len(), s.rows.count(ImportStatus::New));
    assert!(s
        .import
        .marks
        .iter()
        .all(|r| s.rows.status[r as usize] == ImportStatus::New));
    cmd(&mut s, Command::UnmarkAll);
    assert!(s.import.marks.is_empty());
}

#[test]
fn import_sends_the_marked_users_and_lists_failures_in_errors() {
    let mut s = fixtures::loaded_state(20);
    cmd(&mut s, Command::Down);
    cmd(&mut s, Command::ToggleMark); // row 1
    cmd(&mut s, Command::Down); // row 3
    cmd(&mut s, Command::ToggleMark);
    let fx = cmd(&mut s, Command::Import);
    let [Effect::Import { users }] = fx.as_slice() else {
        panic!("expected one Import effect, got {fx:?}");
    };
    assert_eq!(
        users,
        &vec![fixtures::tenant_user(1), fixtures::tenant_user(3)]
    );
    assert_eq!(s.importing, Some(2));
    assert!(
        cmd(&mut s, Command::Import).is_empty(),
        "no second import while one runs"
    );

    // Row 8 is a Conflict: the directory refuses it with email-exists.
    let failure = fixtures::email_exists_failure(3);
    let fx = update(
        &mut s,
        Action::ImportDone(Ok(vec![
            ImportOutcome::Imported {
                tenant_user_id: fixtures::tenant_user(1).id,
                directory_id: 7,
            },
            ImportOutcome::Failed(failure.clone()),
        ])),
    );
    assert_eq!(
        fx,
        vec![Effect::LoadDirectory],
        "the directory is reloaded after an import"
    );
    assert_eq!(s.importing, None);
    assert!(s.import.marks.is_empty());
    assert_eq!(s.errors.len(), 1);
    let e = &s.errors[0];
    assert_eq!(e.code, "email-exists");
    assert_eq!(e.subject, failure.user_principal_name);
    assert!(e.what.contains("duplicate"), "{}", e.what);
    assert!(s.message.as_deref().unwrap().contains("1 failed"));

    // The reload brings the same failure from Directory::failures(): listed once.
    let version = s.index_version;
    let fx = update(
        &mut s,
        Action::DirectoryLoaded(Ok(fixtures::directory_snapshot(3, vec![failure]))),
    );
    assert_eq!(s.errors.len(), 1);
    assert_eq!(s.index_version, version + 1);
    let Some(Effect::Reclassify {
        gen,
        index_version,
        first_row: 0,
        pages,
        ..
    }) = fx.first()
    else {
        panic!("expected a Reclassify of every row, got {fx:?}");
    };
    assert_eq!(pages.iter().map(|p| p.len()).sum::<usize>(), 20);
    // The background classification comes back: statuses and counts follow.
    let mut statuses: Vec<_> = (0..20).map(fixtures::status_of).collect();
    statuses[1] = ImportStatus::Imported;
    statuses[3] = ImportStatus::Failed;
    let imported_before = s.rows.count(ImportStatus::Imported);
    update(
        &mut s,
        Action::Reclassified {
            gen: *gen,
            index_version: *index_version,
            first_row: 0,
            statuses,
        },
    );
    assert_eq!(s.rows.status[1], ImportStatus::Imported);
    assert_eq!(s.rows.status[3], ImportStatus::Failed);
    assert_eq!(s.rows.count(ImportStatus::Imported), imported_before + 1);
    assert_eq!(s.rows.counts.iter().sum::<usize>(), 20);
}

#[test]
fn import_without_marks_takes_the_current_row_and_a_directory_error_is_listed() {
    let mut s = fixtures::loaded_state(10);
    cmd(&mut s, Command::Bottom);
    let fx = cmd(&mut s, Command::Import);
    assert_eq!(
        fx,
        vec![Effect::Import {
            users: vec![fixtures::tenant_user(9)]
        }]
    );
    update(&mut s, Action::ImportDone(Err("database is locked".into())));
    assert_eq!(s.errors.last().unwrap().message, "database is locked");
    assert_eq!(s.errors.last().unwrap().source.label(), "directory");
}

#[test]
fn sign_in_device_code_approved_then_loading() {
    let mut s = AppState::new("contoso.onmicrosoft.com");
    update(&mut s, Action::Tick { now: NOW });
    assert_eq!(init(&mut s), vec![Effect::ResumeSession { gen: 0 }]);
    let fx = update(
        &mut s,
        Action::SessionResumed {
            gen: 0,
            result: Ok(None),
        },
    );
    assert_eq!(fx, vec![Effect::StartDeviceCode { gen: 0 }]);
    assert_eq!(s.phase, Phase::SignIn(SignIn::Requesting));
    let code = fixtures::device_code();
    let fx = update(
        &mut s,
        Action::DeviceCode {
            gen: 0,
            result: Ok(code.clone()),
        },
    );
    assert_eq!(
        fx,
        vec![Effect::PollDeviceCode {
            gen: 0,
            start: code.clone()
        }]
    );
    assert_eq!(
        s.phase,
        Phase::SignIn(SignIn::Waiting {
            start: code,
            expires_at: NOW + 900
        })
    );
    // The countdown redraws every second while waiting.
    s.dirty = false;
    update(&mut s, Action::Tick { now: NOW + 1 });
    assert!(s.dirty);
    let info = SessionInfo {
        identity: Identity {
            name: "admin@contoso.onmicrosoft.com".into(),
            tenant_id: None,
        },
        expires_at: NOW + 3600,
    };
    let fx = update(
        &mut s,
        Action::SignedIn {
            gen: 0,
            result: Ok(info.clone()),
        },
    );
    assert_eq!(s.phase, Phase::Main);
    assert_eq!(s.session, Some(info));
    assert_eq!(fx, vec![Effect::LoadDirectory], "the directory loads first");
    assert_eq!(s.load, Load::Waiting);
    let fx = update(
        &mut s,
        Action::DirectoryLoaded(Ok(fixtures::directory_snapshot(2, vec![]))),
    );
    let [Effect::LoadUsers {
        gen: 1,
        page_size: 999,
        index_version: 1,
        ..
    }] = fx.as_slice()
    else {
        panic!("expected LoadUsers, got {fx:?}");
    };
    assert_eq!(s.load, Load::Loading { pages: 0 });
}

#[test]
fn a_cached_session_skips_the_device_code() {
    let mut s = AppState::new("contoso.onmicrosoft.com");
    init(&mut s);
    let fx = update(
        &mut s,
        Action::SessionResumed {
            gen: 0,
            result: Ok(Some(SessionInfo::default())),
        },
    );
    assert_eq!(fx, vec![Effect::LoadDirectory]);
    assert_eq!(s.phase, Phase::Main);
}

#[test]
fn a_failed_refresh_of_the_cached_session_falls_back_to_the_device_code() {
    let mut s = AppState::new("contoso.onmicrosoft.com");
    init(&mut s);
    let err = AuthError::OAuth {
        error: "invalid_grant".into(),
        description: "AADSTS700082: The refresh token has expired due to inactivity.".into(),
        codes: vec![700082],
        trace_id: Some("trace-1".into()),
    };
    let fx = update(
        &mut s,
        Action::SessionResumed {
            gen: 0,
            result: Err(err),
        },
    );
    assert_eq!(fx, vec![Effect::StartDeviceCode { gen: 0 }]);
    assert!(s
        .signin_note
        .as_deref()
        .unwrap()
        .contains("could not be refreshed"));
    assert_eq!(s.errors[0].code, "AADSTS700082");
    assert_eq!(s.errors[0].trace_id.as_deref(), Some("trace-1"));
}

#[test]
fn declined_and_expired_are_stated_and_r_asks_for_a_new_code() {
    for err in [AuthError::Declined, AuthError::Expired] {
        let mut s = AppState::new("contoso.onmicrosoft.com");
        init(&mut s);
        update(
            &mut s,
            Action::SessionResumed {
                gen: 0,
                result: Ok(None),
            },
        );
        update(
            &mut s,
            Action::DeviceCode {
                gen: 0,
                result: Ok(fixtures::device_code()),
            },
        );
        update(
            &mut s,
            Action::SignedIn {
                gen: 0,
                result: Err(err.clone()),
            },
        );
        assert_eq!(s.phase, Phase::SignIn(SignIn::Failed(err.clone())));
        assert_eq!(s.errors.len(), 1);
        // `r` on the sign-in screen means a new code (not reload).
        let a = key_action(&s, &key(KeyCode::Char('r'))).unwrap();
        assert_eq!(a, Action::Command(Command::RetrySignIn));
        let fx = update(&mut s, a);
        assert_eq!(fx, vec![Effect::StartDeviceCode { gen: 1 }]);
        assert_eq!(s.phase, Phase::SignIn(SignIn::Requesting));
        // A late answer of the first attempt is dropped.
        s.dirty = false;
        let fx = update(
            &mut s,
            Action::SignedIn {
                gen: 0,
                result: Ok(SessionInfo::default()),
            },
        );
        assert!(fx.is_empty());
        assert_eq!(s.phase, Phase::SignIn(SignIn::Requesting));
        assert!(!s.dirty, "a stale result does not even redraw");
    }
}

#[test]
fn aadsts_errors_keep_their_code() {
    let mut s = AppState::new("contoso.onmicrosoft.com");
    init(&mut s);
    update(
        &mut s,
        Action::SessionResumed {
            gen: 0,
            result: Ok(None),
        },
    );
    let err = AuthError::OAuth {
        error: "invalid_client".into(),
        description:
            "AADSTS7000218: The request body must contain client_assertion or client_secret.".into(),
        codes: vec![7000218],
        trace_id: Some("0f1e2d3c".into()),
    };
    update(
        &mut s,
        Action::DeviceCode {
            gen: 0,
            result: Err(err),
        },
    );
    assert!(matches!(
        s.phase,
        Phase::SignIn(SignIn::Failed(AuthError::OAuth { .. }))
    ));
    assert_eq!(s.errors[0].code, "AADSTS7000218");
    assert!(
        s.errors[0].todo.contains("public client"),
        "{}",
        s.errors[0].todo
    );
}

#[test]
fn a_newer_load_wins_and_stale_pages_are_dropped() {
    let mut s = fixtures::loaded_state(5);
    let old = s.load_gen;
    let fx = cmd(&mut s, Command::Refresh);
    let [Effect::LoadUsers { gen, .. }] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    assert_eq!(*gen, old + 1);
    assert!(s.rows.is_empty());
    s.dirty = false;
    let page = |gen| Action::UsersPage {
        gen,
        index_version: 0,
        users: fixtures::tenant_users(3),
        statuses: vec![ImportStatus::New; 3],
    };
    update(&mut s, page(old));
    assert!(s.rows.is_empty(), "a page of the replaced load is dropped");
    assert!(!s.dirty);
    update(&mut s, Action::UsersDone { gen: old });
    assert_eq!(s.load, Load::Loading { pages: 0 });
    let fx = update(&mut s, page(old + 1));
    assert_eq!(s.rows.len(), 3);
    assert!(fx.is_empty());
    update(&mut s, Action::UsersDone { gen: old + 1 });
    assert_eq!(s.load, Load::Done);
    assert_eq!(s.expected, Some(3));
    // Reclassification for an old generation or index is dropped too.
    let before = s.rows.status.clone();
    let v = s.index_version;
    update(
        &mut s,
        Action::Reclassified {
            gen: old,
            index_version: v,
            first_row: 0,
            statuses: vec![ImportStatus::Failed; 3],
        },
    );
    update(
        &mut s,
        Action::Reclassified {
            gen: old + 1,
            index_version: v + 7,
            first_row: 0,
            statuses: vec![ImportStatus::Failed; 3],
        },
    );
    assert_eq!(s.rows.status, before);
}

#[test]
fn a_page_classified_with_an_old_index_is_classified_again() {
    let mut s = fixtures::with_directory(fixtures::loaded_state(0), 2, vec![]);
    s.load = Load::Loading { pages: 0 };
    let (gen, v) = (s.load_gen, s.index_version);
    let fx = update(
        &mut s,
        Action::UsersPage {
            gen,
            index_version: v - 1,
            users: fixtures::tenant_users(4),
            statuses: vec![ImportStatus::New; 4],
        },
    );
    let [Effect::Reclassify {
        first_row: 0,
        pages,
        index_version,
        ..
    }] = fx.as_slice()
    else {
        panic!("{fx:?}")
    };
    assert_eq!(pages[0].len(), 4);
    assert_eq!(*index_version, s.index_version);
}

#[test]
fn graph_errors_are_listed_with_code_status_and_request_id() {
    let mut s = fixtures::loaded_state(0);
    s.load = Load::Loading { pages: 2 };
    let gen = s.load_gen;
    update(
        &mut s,
        Action::UsersFailed {
            gen,
            error: GraphError::Api {
                status: 403,
                code: "Authorization_RequestDenied".into(),
                message: "Insufficient privileges to complete the operation.".into(),
                request_id: Some("9c2b7e1a-0000-4000-8000-000000000001".into()),
                date: Some("2026-11-27T07:59:00".into()),
                retry_after: None,
            },
        },
    );
    assert!(matches!(s.load, Load::Failed { .. }));
    let e = &s.errors[0];
    assert_eq!(e.code, "Authorization_RequestDenied");
    assert_eq!(e.status, Some(403));
    assert_eq!(
        e.request_id.as_deref(),
        Some("9c2b7e1a-0000-4000-8000-000000000001")
    );
    assert!(e.todo.contains("User.ReadWrite.All"));
    // The Errors tab lists it and selects it.
    cmd(&mut s, Command::TabErrors);
    assert_eq!(s.tab, Tab::Errors);
    assert_eq!(s.errors_tab.view.selected_row(), Some(0));
}

#[test]
fn esc_stops_a_running_load() {
    let mut s = fixtures::loaded_state(3);
    cmd(&mut s, Command::Refresh);
    let gen = s.load_gen;
    let fx = cmd(&mut s, Command::Back);
    assert_eq!(fx, vec![Effect::CancelLoad]);
    assert_eq!(s.load, Load::Cancelled);
    update(
        &mut s,
        Action::UsersPage {
            gen,
            index_version: 0,
            users: fixtures::tenant_users(1),
            statuses: vec![ImportStatus::New],
        },
    );
    assert!(s.rows.is_empty());
}

#[test]
fn keys_resolve_by_mode() {
    let mut s = fixtures::loaded_state(10);
    assert_eq!(
        key_action(&s, &key(KeyCode::Char('j'))),
        Some(Action::Command(Command::Down))
    );
    assert_eq!(
        key_action(&s, &key(KeyCode::Char('q'))),
        Some(Action::Command(Command::Quit))
    );
    assert_eq!(
        key_action(&s, &KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT)),
        Some(Action::Command(Command::Bottom))
    );
    assert_eq!(
        key_action(
            &s,
            &KeyEvent::new(KeyCode::Char('d'), KeyModifiers::CONTROL)
        ),
        Some(Action::Command(Command::HalfDown))
    );
    assert_eq!(
        key_action(&s, &key(KeyCode::BackTab)),
        Some(Action::Command(Command::PrevTab))
    );
    cmd(&mut s, Command::Filter);
    // While typing a filter, letters are text, not commands.
    assert_eq!(
        key_action(&s, &key(KeyCode::Char('q'))),
        Some(Action::FilterInput(InputRequest::InsertChar('q')))
    );
    assert_eq!(
        key_action(&s, &key(KeyCode::Enter)),
        Some(Action::Command(Command::FilterKeep))
    );
    assert_eq!(
        key_action(&s, &key(KeyCode::Esc)),
        Some(Action::Command(Command::FilterClear))
    );
    assert_eq!(
        key_action(
            &s,
            &KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)
        ),
        Some(Action::Command(Command::Quit))
    );
    // The help overlay: any key closes it.
    cmd(&mut s, Command::FilterKeep);
    cmd(&mut s, Command::Help);
    assert!(s.help);
    let a = key_action(&s, &key(KeyCode::Char('j'))).unwrap();
    update(&mut s, a);
    assert!(!s.help);
    assert_eq!(
        s.import.view.selected, 0,
        "the key that closed the help did nothing else"
    );
}

#[test]
fn tabs_cycle_both_ways() {
    let mut s = fixtures::loaded_state(1);
    cmd(&mut s, Command::NextTab);
    assert_eq!(s.tab, Tab::Bindings);
    cmd(&mut s, Command::NextTab);
    cmd(&mut s, Command::NextTab);
    assert_eq!(s.tab, Tab::Import);
    cmd(&mut s, Command::PrevTab);
    assert_eq!(s.tab, Tab::Errors);
}

#[test]
fn bindings_filter_by_text_and_state() {
    let mut s = fixtures::with_directory(fixtures::loaded_state(0), 40, vec![]);
    cmd(&mut s, Command::TabBindings);
    assert_eq!(s.bindings.view.shown.len(), 40);
    cmd(&mut s, Command::CycleStatus);
    assert_eq!(s.bindings.view.shown.len(), 20, "Bound: i % 4 in 0..2");
    cmd(&mut s, Command::Filter);
    type_str(&mut s, "adele");
    assert!(s.bindings.view.shown.iter().all(|&r| {
        let u = &s.directory.users[r as usize];
        u.display_name.to_lowercase().contains("adele")
            && u.binding == m365sync::directory::BindingState::Bound
    }));
}

#[test]
fn idle_ticks_do_not_redraw() {
    let mut s = fixtures::loaded_state(10);
    s.dirty = false;
    // The token lifetime is shown in minutes: a tick inside the same minute changes nothing.
    update(&mut s, Action::Tick { now: NOW + 2 });
    assert!(!s.dirty);
    update(&mut s, Action::Tick { now: NOW + 70 });
    assert!(s.dirty);
}

#[test]
fn filtering_100k_rows_by_narrowing_matches_a_full_scan() {
    let mut s = fixtures::loaded_state(100_000);
    cmd(&mut s, Command::Filter);
    type_str(&mut s, "lidia");
    let n = s.import.view.shown.len();
    assert_eq!(n, brute(&s, "lidia", None).len());
    type_str(&mut s, " gu");
    assert_eq!(s.import.view.shown, brute(&s, "lidia gu", None));
    assert!(s.import.view.shown.len() < n);
}

#[test]
fn a_filter_that_hides_the_selected_row_starts_at_the_first_match() {
    let mut s = fixtures::loaded_state(1000);
    cmd(&mut s, Command::Bottom);
    cmd(&mut s, Command::Filter);
    type_str(&mut s, "megan");
    assert_eq!(s.import.view.selected, 0);
    assert_eq!(s.import.view.offset, 0);
    assert_eq!(s.import.view.selected_row(), Some(11));
}

#[test]
fn internal_errors_are_called_bugs_not_tenant_problems() {
    let mut s = AppState::new("contoso.onmicrosoft.com");
    init(&mut s);
    update(
        &mut s,
        Action::SessionResumed {
            gen: 0,
            result: Ok(None),
        },
    );
    update(
        &mut s,
        Action::DeviceCode {
            gen: 0,
            result: Err(AuthError::Malformed(
                "internal error: task 5 panicked".into(),
            )),
        },
    );
    assert!(
        s.errors[0].what.contains("internal error"),
        "{}",
        s.errors[0].what
    );
}

#[test]
fn errors_can_be_filtered_and_new_ones_respect_the_filter() {
    let mut s = fixtures::loaded_state(0);
    for i in 0..3 {
        update(
            &mut s,
            Action::ImportDone(Ok(vec![ImportOutcome::Failed(
                fixtures::email_exists_failure(i),
            )])),
        );
    }
    let gen = s.load_gen;
    update(
        &mut s,
        Action::UsersFailed {
            gen,
            error: GraphError::Transport("connection reset".into()),
        },
    );
    cmd(&mut s, Command::TabErrors);
    assert_eq!(s.errors_tab.view.shown.len(), 4);
    cmd(&mut s, Command::Filter);
    type_str(&mut s, "transport");
    assert_eq!(s.errors_tab.view.shown, vec![3]);
    update(
        &mut s,
        Action::ImportDone(Ok(vec![ImportOutcome::Failed(
            fixtures::email_exists_failure(9),
        )])),
    );
    assert_eq!(s.errors.len(), 5);
    assert_eq!(
        s.errors_tab.view.shown,
        vec![3],
        "a new error that does not match stays hidden"
    );
    cmd(&mut s, Command::FilterClear);
    assert_eq!(s.errors_tab.view.shown.len(), 5);
}
