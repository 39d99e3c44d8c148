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
    (0..s.data.rows.len())
        .filter(|&r| {
            st.is_none_or(|x| s.data.rows.status[r] == x)
                && s.data.rows.hay.get(r).contains(&q.to_lowercase())
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
    assert_eq!(s.tabs.import.view.selected, 0, "k at the top stays");
    cmd(&mut s, Command::Down);
    cmd(&mut s, Command::Down);
    assert_eq!(s.tabs.import.view.selected, 2);
    cmd(&mut s, Command::Bottom);
    assert_eq!(s.tabs.import.view.selected, 99);
    assert_eq!(s.tabs.import.view.offset, 100 - rows);
    cmd(&mut s, Command::Down);
    assert_eq!(s.tabs.import.view.selected, 99, "j at the bottom stays");
    cmd(&mut s, Command::Top);
    assert_eq!(
        (s.tabs.import.view.selected, s.tabs.import.view.offset),
        (0, 0)
    );
    cmd(&mut s, Command::PageDown);
    assert_eq!(s.tabs.import.view.selected, rows);
    assert_eq!(s.tabs.import.view.offset, 1);
    cmd(&mut s, Command::HalfDown);
    assert_eq!(s.tabs.import.view.selected, rows + rows / 2);
    cmd(&mut s, Command::HalfUp);
    cmd(&mut s, Command::PageUp);
    assert_eq!(s.tabs.import.view.selected, 0);
    for _ in 0..10 {
        cmd(&mut s, Command::PageDown);
    }
    assert_eq!(
        s.tabs.import.view.selected, 99,
        "PgDn stops at the last row"
    );
    // A smaller terminal moves the window so the selection stays visible.
    update(
        &mut s,
        Action::Resize {
            width: 80,
            height: 10,
        },
    );
    assert!(s.tabs.import.view.offset + 5 > 99 && s.tabs.import.view.offset <= 99);
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
    assert_eq!(s.tabs.import.view.selected, 0);
    assert!(cmd(&mut s, Command::Import).is_empty());
}

#[test]
fn filter_narrows_as_the_query_grows_widens_on_backspace_and_esc_clears() {
    let mut s = fixtures::loaded_state(500);
    cmd(&mut s, Command::Filter);
    assert!(s.tabs.import.view.editing);
    type_str(&mut s, "Megan");
    assert_eq!(s.tabs.import.view.shown, brute(&s, "megan", None));
    assert!(!s.tabs.import.view.shown.is_empty() && s.tabs.import.view.shown.len() < 500);
    type_str(&mut s, " V");
    assert_eq!(s.tabs.import.view.query, "megan v");
    assert_eq!(s.tabs.import.view.shown, brute(&s, "megan v", None));
    update(&mut s, Action::FilterInput(InputRequest::DeletePrevChar));
    update(&mut s, Action::FilterInput(InputRequest::DeletePrevChar));
    assert_eq!(
        s.tabs.import.view.shown,
        brute(&s, "megan", None),
        "backspace widens again"
    );
    // Enter keeps the filter and leaves typing mode.
    cmd(&mut s, Command::FilterKeep);
    assert!(!s.tabs.import.view.editing);
    assert_eq!(s.tabs.import.view.input.value(), "Megan");
    assert_eq!(s.tabs.import.view.shown, brute(&s, "megan", None));
    // Esc in the list clears a kept filter.
    cmd(&mut s, Command::Back);
    assert_eq!(s.tabs.import.view.shown.len(), 500);
    // Esc while typing clears too.
    cmd(&mut s, Command::Filter);
    type_str(&mut s, "zzz-no-match");
    assert!(s.tabs.import.view.shown.is_empty());
    cmd(&mut s, Command::FilterClear);
    assert!(!s.tabs.import.view.editing);
    assert_eq!(s.tabs.import.view.shown.len(), 500);
}

#[test]
fn filter_matches_upn_and_mail_and_keeps_the_selected_row() {
    let mut s = fixtures::loaded_state(300);
    for _ in 0..17 {
        cmd(&mut s, Command::Down);
    }
    let row = s.tabs.import.view.selected_row().unwrap();
    let upn = s.data.rows.user(row).user_principal_name.clone();
    cmd(&mut s, Command::Filter);
    type_str(&mut s, "@CONTOSO.onmicrosoft");
    assert_eq!(s.tabs.import.view.shown.len(), 300);
    assert_eq!(
        s.tabs.import.view.selected_row(),
        Some(row),
        "selection follows the row"
    );
    type_str(&mut s, "");
    cmd(&mut s, Command::FilterClear);
    cmd(&mut s, Command::Filter);
    type_str(&mut s, &upn);
    assert_eq!(s.tabs.import.view.shown, vec![row]);
}

#[test]
fn pages_arriving_while_filtered_are_filtered_as_they_come() {
    let mut s = fixtures::loaded_state(0);
    s.data.load = Load::Loading { pages: 0 };
    cmd(&mut s, Command::Filter);
    type_str(&mut s, "joni");
    let users = fixtures::tenant_users(200);
    let statuses: Vec<_> = (0..200).map(fixtures::status_of).collect();
    let (gen, index_version) = (s.data.load_gen, s.data.index_version);
    update(
        &mut s,
        Action::UsersPage {
            gen,
            index_version,
            users,
            statuses,
        },
    );
    assert_eq!(s.data.rows.len(), 200);
    assert_eq!(s.tabs.import.view.shown, brute(&s, "joni", None));
    assert_eq!(
        s.data.rows.count(ImportStatus::New),
        (0..200)
            .filter(|&i| fixtures::status_of(i) == ImportStatus::New)
            .count()
    );
    assert_eq!(s.data.load, Load::Loading { pages: 1 });
}

#[test]
fn status_filter_cycles_all_new_imported_conflict_failed_guest() {
    let mut s = fixtures::loaded_state(100);
    let mut seen = vec![s.tabs.import.status];
    for _ in 0..6 {
        cmd(&mut s, Command::CycleStatus);
        seen.push(s.tabs.import.status);
        if let Some(st) = s.tabs.import.status {
            assert_eq!(s.tabs.import.view.shown, brute(&s, "", Some(st)));
            assert_eq!(s.tabs.import.view.shown.len(), s.data.rows.count(st));
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
            Some(ImportStatus::Guest),
            None
        ]
    );
    assert_eq!(s.tabs.import.view.shown.len(), 100);
    // Status and text filters combine.
    cmd(&mut s, Command::CycleStatus);
    cmd(&mut s, Command::Filter);
    type_str(&mut s, "adele");
    assert_eq!(
        s.tabs.import.view.shown,
        brute(&s, "adele", Some(ImportStatus::New))
    );
}

#[test]
fn marking_one_all_shown_and_none() {
    let mut s = fixtures::loaded_state(50);
    cmd(&mut s, Command::ToggleMark);
    assert!(s.tabs.import.marks.contains(0));
    assert_eq!(
        s.tabs.import.view.selected, 1,
        "space moves to the next row"
    );
    cmd(&mut s, Command::Up);
    cmd(&mut s, Command::ToggleMark);
    assert!(!s.tabs.import.marks.contains(0), "space again unmarks");
    cmd(&mut s, Command::CycleStatus); // New only
    cmd(&mut s, Command::MarkAll);
    assert_eq!(
        s.tabs.import.marks.len(),
        s.data.rows.count(ImportStatus::New)
    );
    assert!(s
        .tabs
        .import
        .marks
        .iter()
        .all(|r| s.data.rows.status[r as usize] == ImportStatus::New));
    cmd(&mut s, Command::UnmarkAll);
    assert!(s.tabs.import.marks.is_empty());
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
    assert_eq!(s.data.importing, Some(2));
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
    assert_eq!(s.data.importing, None);
    assert!(s.tabs.import.marks.is_empty());
    assert_eq!(s.data.errors.len(), 1);
    let e = &s.data.errors[0];
    assert_eq!(e.code, "email-exists");
    assert_eq!(e.subject, failure.user_principal_name);
    assert!(e.what.contains("duplicate"), "{}", e.what);
    assert!(s.data.message().unwrap().contains("1 failed"));

    // The reload brings the same failure from Directory::failures(): listed once.
    let version = s.data.index_version;
    let fx = update(
        &mut s,
        Action::DirectoryLoaded(Ok(fixtures::directory_snapshot(3, vec![failure]))),
    );
    assert_eq!(s.data.errors.len(), 1);
    assert_eq!(s.data.index_version, version + 1);
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
    let imported_before = s.data.rows.count(ImportStatus::Imported);
    update(
        &mut s,
        Action::Reclassified {
            gen: *gen,
            index_version: *index_version,
            first_row: 0,
            statuses,
        },
    );
    assert_eq!(s.data.rows.status[1], ImportStatus::Imported);
    assert_eq!(s.data.rows.status[3], ImportStatus::Failed);
    assert_eq!(
        s.data.rows.count(ImportStatus::Imported),
        imported_before + 1
    );
    assert_eq!(s.data.rows.counts.iter().sum::<usize>(), 20);
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
    update(&mut s, Action::ImportDone(Err(fixtures::db_busy())));
    assert_eq!(s.data.errors.last().unwrap().message, "database is locked");
    assert_eq!(s.data.errors.last().unwrap().source.label(), "directory");
    assert_eq!(s.data.errors.last().unwrap().kind(), "directory-busy");
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
    assert_eq!(s.data.phase, Phase::SignIn(SignIn::Requesting));
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
        s.data.phase,
        Phase::SignIn(SignIn::Waiting {
            start: code,
            expires_at: NOW + 900
        })
    );
    // The countdown redraws every second while waiting.
    s.data.dirty = false;
    update(&mut s, Action::Tick { now: NOW + 1 });
    assert!(s.data.dirty);
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
    assert_eq!(s.data.phase, Phase::Main);
    assert_eq!(s.data.session, Some(info.clone()));
    assert_eq!(
        fx,
        vec![Effect::LoadDirectory, Effect::CheckJournal],
        "the directory loads first; an interrupted run is checked against the tenant"
    );
    assert_eq!(s.data.load, Load::Waiting);
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
    assert_eq!(s.data.load, Load::Loading { pages: 0 });
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
    assert_eq!(fx[0], Effect::LoadDirectory);
    assert_eq!(s.data.phase, Phase::Main);
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
        .data
        .signin_note
        .as_deref()
        .unwrap()
        .contains("could not be refreshed"));
    assert_eq!(s.data.errors[0].code, "AADSTS700082");
    assert_eq!(s.data.errors[0].trace_id.as_deref(), Some("trace-1"));
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
        assert_eq!(s.data.phase, Phase::SignIn(SignIn::Failed(err.clone())));
        assert_eq!(s.data.errors.len(), 1);
        // `r` on the sign-in screen means a new code (not reload).
        let a = key_action(&s, &key(KeyCode::Char('r'))).unwrap();
        assert_eq!(a, Action::Command(Command::RetrySignIn));
        let fx = update(&mut s, a);
        assert_eq!(fx, vec![Effect::StartDeviceCode { gen: 1 }]);
        assert_eq!(s.data.phase, Phase::SignIn(SignIn::Requesting));
        // A late answer of the first attempt is dropped.
        s.data.dirty = false;
        let fx = update(
            &mut s,
            Action::SignedIn {
                gen: 0,
                result: Ok(SessionInfo::default()),
            },
        );
        assert!(fx.is_empty());
        assert_eq!(s.data.phase, Phase::SignIn(SignIn::Requesting));
        assert!(!s.data.dirty, "a stale result does not even redraw");
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
        s.data.phase,
        Phase::SignIn(SignIn::Failed(AuthError::OAuth { .. }))
    ));
    assert_eq!(s.data.errors[0].code, "AADSTS7000218");
    assert!(
        s.data.errors[0].todo.contains("public client"),
        "{}",
        s.data.errors[0].todo
    );
}

#[test]
fn a_newer_load_wins_and_stale_pages_are_dropped() {
    let mut s = fixtures::loaded_state(5);
    let old = s.data.load_gen;
    let fx = cmd(&mut s, Command::Refresh);
    let [Effect::LoadUsers { gen, .. }] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    assert_eq!(*gen, old + 1);
    // A reload keeps the rows of the last listing on screen until its first page arrives.
    assert_eq!(s.data.rows.len(), 5);
    assert!(s.data.reloading);
    assert!(!s.data.listed(), "no plan from the old listing");
    s.data.dirty = false;
    let page = |gen| Action::UsersPage {
        gen,
        index_version: 0,
        users: fixtures::tenant_users(3),
        statuses: vec![ImportStatus::New; 3],
    };
    update(&mut s, page(old));
    assert_eq!(
        s.data.rows.len(),
        5,
        "a page of the replaced load is dropped"
    );
    assert!(!s.data.dirty);
    update(&mut s, Action::UsersDone { gen: old });
    assert_eq!(s.data.load, Load::Loading { pages: 0 });
    let fx = update(&mut s, page(old + 1));
    assert_eq!(s.data.rows.len(), 3);
    assert!(fx.is_empty());
    update(&mut s, Action::UsersDone { gen: old + 1 });
    assert_eq!(s.data.load, Load::Done);
    assert_eq!(s.data.expected, Some(3));
    // Reclassification for an old generation or index is dropped too.
    let before = s.data.rows.status.clone();
    let v = s.data.index_version;
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
    assert_eq!(s.data.rows.status, before);
}

#[test]
fn a_page_classified_with_an_old_index_is_classified_again() {
    let mut s = fixtures::with_directory(fixtures::loaded_state(0), 2, vec![]);
    s.data.load = Load::Loading { pages: 0 };
    let (gen, v) = (s.data.load_gen, s.data.index_version);
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
    assert_eq!(*index_version, s.data.index_version);
}

#[test]
fn graph_errors_are_listed_with_code_status_and_request_id() {
    let mut s = fixtures::loaded_state(0);
    s.data.load = Load::Loading { pages: 2 };
    let gen = s.data.load_gen;
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
    assert!(matches!(s.data.load, Load::Failed { .. }));
    let e = &s.data.errors[0];
    assert_eq!(e.code, "Authorization_RequestDenied");
    assert_eq!(e.status, Some(403));
    assert_eq!(
        e.request_id.as_deref(),
        Some("9c2b7e1a-0000-4000-8000-000000000001")
    );
    // A catalog diagnosis that names the permission listing users needs.
    assert_eq!(e.kind(), "insufficient-privileges");
    assert_eq!(e.diag.permission.as_deref(), Some("User.Read.All"));
    assert_eq!(e.at.as_deref(), Some("2026-11-27T07:59:00"));
    // The Errors tab lists it and selects it.
    cmd(&mut s, Command::GoTab(3));
    assert_eq!(s.tab, Tab::Errors);
    assert_eq!(s.tabs.errors.view.selected_row(), Some(0));
}

/// Esc never cancels a listing (it clears the filter, then the marks, then nothing); `x` stops
/// it, and says so.
#[test]
fn x_stops_a_running_load_and_esc_never_does() {
    let mut s = fixtures::loaded_state(0);
    cmd(&mut s, Command::Refresh);
    let gen = s.data.load_gen;
    for tab in [1, 2, 3] {
        cmd(&mut s, Command::GoTab(tab));
        assert!(cmd(&mut s, Command::Back).is_empty());
        assert_eq!(s.data.load, Load::Loading { pages: 0 });
    }
    assert_eq!(
        key_action(&s, &key(KeyCode::Char('x'))),
        Some(Action::Command(Command::StopLoad))
    );
    let fx = cmd(&mut s, Command::StopLoad);
    assert_eq!(fx, vec![Effect::CancelLoad]);
    assert_eq!(s.data.load, Load::Cancelled);
    assert!(s.data.message().unwrap().contains("Stopped listing"));
    update(
        &mut s,
        Action::UsersPage {
            gen,
            index_version: 0,
            users: fixtures::tenant_users(1),
            statuses: vec![ImportStatus::New],
        },
    );
    assert!(s.data.rows.is_empty());
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
    // The help overlay: its scroll keys scroll it, any other key closes it.
    cmd(&mut s, Command::FilterKeep);
    cmd(&mut s, Command::Help);
    assert!(s.help.is_some());
    let a = key_action(&s, &key(KeyCode::Char('j'))).unwrap();
    assert_eq!(a, Action::Command(Command::Down));
    update(&mut s, a);
    assert!(s.help.is_some(), "j scrolls the help");
    let a = key_action(&s, &key(KeyCode::Char('G'))).unwrap();
    update(&mut s, a);
    assert!(s.help.is_none());
    assert_eq!(
        s.tabs.import.view.selected, 0,
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
    assert_eq!(s.tab, Tab::Licences);
    cmd(&mut s, Command::NextTab);
    assert_eq!(s.tab, Tab::Import);
    cmd(&mut s, Command::PrevTab);
    assert_eq!(s.tab, Tab::Licences);
}

#[test]
fn bindings_filter_by_text_and_state() {
    let mut s = fixtures::with_directory(fixtures::loaded_state(0), 40, vec![]);
    cmd(&mut s, Command::GoTab(2));
    assert_eq!(s.tabs.bindings.view.shown.len(), 40);
    cmd(&mut s, Command::CycleStatus);
    assert_eq!(s.tabs.bindings.view.shown.len(), 20, "Bound: i % 4 in 0..2");
    cmd(&mut s, Command::Filter);
    type_str(&mut s, "adele");
    assert!(s.tabs.bindings.view.shown.iter().all(|&r| {
        let u = &s.data.directory.users[r as usize];
        u.display_name.to_lowercase().contains("adele")
            && u.binding == m365sync::directory::BindingState::Bound
    }));
}

#[test]
fn idle_ticks_do_not_redraw() {
    let mut s = fixtures::loaded_state(10);
    s.data.dirty = false;
    // The token lifetime is shown in minutes: a tick inside the same minute changes nothing.
    update(&mut s, Action::Tick { now: NOW + 2 });
    assert!(!s.data.dirty);
    update(&mut s, Action::Tick { now: NOW + 70 });
    assert!(s.data.dirty);
}

#[test]
fn filtering_100k_rows_by_narrowing_matches_a_full_scan() {
    let mut s = fixtures::loaded_state(100_000);
    cmd(&mut s, Command::Filter);
    type_str(&mut s, "lidia");
    let n = s.tabs.import.view.shown.len();
    assert_eq!(n, brute(&s, "lidia", None).len());
    type_str(&mut s, " gu");
    assert_eq!(s.tabs.import.view.shown, brute(&s, "lidia gu", None));
    assert!(s.tabs.import.view.shown.len() < n);
}

#[test]
fn a_filter_that_hides_the_selected_row_starts_at_the_first_match() {
    let mut s = fixtures::loaded_state(1000);
    cmd(&mut s, Command::Bottom);
    cmd(&mut s, Command::Filter);
    type_str(&mut s, "megan");
    assert_eq!(s.tabs.import.view.selected, 0);
    assert_eq!(s.tabs.import.view.offset, 0);
    assert_eq!(s.tabs.import.view.selected_row(), Some(11));
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
        s.data.errors[0].what.contains("internal error"),
        "{}",
        s.data.errors[0].what
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
    let gen = s.data.load_gen;
    update(
        &mut s,
        Action::UsersFailed {
            gen,
            error: GraphError::Transport("connection reset".into()),
        },
    );
    cmd(&mut s, Command::GoTab(3));
    assert_eq!(s.tabs.errors.view.shown.len(), 4);
    cmd(&mut s, Command::Filter);
    type_str(&mut s, "transport");
    assert_eq!(s.tabs.errors.view.shown, vec![3]);
    update(
        &mut s,
        Action::ImportDone(Ok(vec![ImportOutcome::Failed(
            fixtures::email_exists_failure(9),
        )])),
    );
    assert_eq!(s.data.errors.len(), 5);
    assert_eq!(
        s.tabs.errors.view.shown,
        vec![3],
        "a new error that does not match stays hidden"
    );
    cmd(&mut s, Command::FilterClear);
    assert_eq!(s.tabs.errors.view.shown.len(), 5);
}

// ---- Bindings: wishes, marks, preview, apply, passwords, disconnect ----

use m365sync::app::action::ApplyNews;
use m365sync::app::dialogs::disconnect::Disconnect;
use m365sync::app::effect::Secret;
use m365sync::app::state::{Modal, PendingOp, PlanView, Planning, RowState, RunEnd, StateFilter};
use m365sync::sync::apply::{ApplyProgress, ApplySummary};
use m365sync::sync::plan::OpKind;

fn select_row(s: &mut AppState, row: u32) {
    cmd(s, Command::Top);
    while s.tabs.bindings.view.selected_row() != Some(row) {
        cmd(s, Command::Down);
    }
}

fn row_state(s: &AppState, row: usize) -> RowState {
    RowState::of(&s.data.directory.users[row], &s.data.row_failures)
}

#[test]
fn space_toggles_the_wish_of_one_row_and_only_records_it() {
    let mut s = fixtures::bindings_state();
    // Row 6: Unbound, not wanted.
    select_row(&mut s, 6);
    assert_eq!(row_state(&s, 6), RowState::Unbound);
    let before = s.data.directory.pending;
    let fx = cmd(&mut s, Command::ToggleWant);
    assert_eq!(
        fx,
        vec![Effect::SetWant {
            ids: vec![7],
            bound: true
        }]
    );
    assert_eq!(row_state(&s, 6), RowState::Pending(PendingOp::Create));
    assert_eq!(
        s.data.directory.pending[0],
        before[0] + 1,
        "pending creates counted"
    );
    // Saved: the directory is read again (nothing is sent to the tenant).
    assert_eq!(
        update(&mut s, Action::WantSaved(Ok(1))),
        vec![Effect::LoadDirectory]
    );
    // Space again takes the wish back.
    let fx = cmd(&mut s, Command::ToggleWant);
    assert_eq!(
        fx,
        vec![Effect::SetWant {
            ids: vec![7],
            bound: false
        }]
    );
    assert_eq!(row_state(&s, 6), RowState::Unbound);
    assert_eq!(s.data.directory.pending, before);
    // Two toggles in flight: the directory is read once, after the last is saved.
    select_row(&mut s, 10);
    cmd(&mut s, Command::ToggleWant);
    assert!(update(&mut s, Action::WantSaved(Ok(1))).is_empty());
    // A save that fails is listed and the directory read again (undoing the toggle).
    let fx = update(&mut s, Action::WantSaved(Err(fixtures::db_busy())));
    assert_eq!(fx, vec![Effect::LoadDirectory]);
    assert!(s
        .data
        .errors
        .iter()
        .any(|e| e.message.contains("database is locked")));
}

#[test]
fn space_on_marked_rows_binds_them_all_unless_all_are_bound_already() {
    let mut s = fixtures::bindings_state();
    select_row(&mut s, 0);
    // v marks and moves down: rows 0 (Bound, wanted), 1 (Bound, unbind wanted) and 2
    // (Unbound, bind wanted).
    cmd(&mut s, Command::MarkRow);
    cmd(&mut s, Command::MarkRow);
    cmd(&mut s, Command::MarkRow);
    assert_eq!(
        s.tabs.bindings.marks.iter().collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    // A mixed selection is bound (never half unbound by surprise); only changes are sent.
    let fx = cmd(&mut s, Command::ToggleWant);
    assert_eq!(
        fx,
        vec![Effect::SetWant {
            ids: vec![2],
            bound: true
        }]
    );
    assert!(s.tabs.bindings.marks.is_empty(), "marks are used up");
    // All wanted now: Space on the same rows unbinds them all.
    for r in [0, 1, 2] {
        s.tabs.bindings.marks.insert(r);
    }
    let fx = cmd(&mut s, Command::ToggleWant);
    assert_eq!(
        fx,
        vec![Effect::SetWant {
            ids: vec![1, 2, 3],
            bound: false
        }]
    );
    assert_eq!(row_state(&s, 0), RowState::Pending(PendingOp::Block));
    // - and + say it outright.
    s.tabs.bindings.marks.insert(0);
    assert_eq!(
        cmd(&mut s, Command::Bind),
        vec![Effect::SetWant {
            ids: vec![1],
            bound: true
        }]
    );
    s.tabs.bindings.marks.insert(0);
    assert!(cmd(&mut s, Command::Bind).is_empty(), "already wanted");
    assert!(s.data.message().unwrap().contains("Nothing changed"));
}

#[test]
fn marks_by_range_shift_arrows_all_none_and_invert() {
    let mut s = fixtures::bindings_state();
    select_row(&mut s, 2);
    cmd(&mut s, Command::MarkRow); // marks 2, moves to 3
    cmd(&mut s, Command::Down);
    cmd(&mut s, Command::Down);
    cmd(&mut s, Command::Down); // on 6
    cmd(&mut s, Command::MarkRange);
    assert_eq!(
        s.tabs.bindings.marks.iter().collect::<Vec<_>>(),
        vec![2, 3, 4, 5, 6]
    );
    // Shift-down marks as it moves.
    cmd(&mut s, Command::Down);
    cmd(&mut s, Command::Down); // on 8
    cmd(&mut s, Command::MarkDown);
    cmd(&mut s, Command::MarkDown);
    assert_eq!(
        s.tabs.bindings.marks.iter().collect::<Vec<_>>(),
        vec![2, 3, 4, 5, 6, 8, 9, 10]
    );
    // A range goes upward too, from the last mark.
    select_row(&mut s, 12);
    cmd(&mut s, Command::MarkRange);
    assert_eq!(
        s.tabs.bindings.marks.iter().collect::<Vec<_>>(),
        vec![2, 3, 4, 5, 6, 8, 9, 10, 11, 12],
        "from the last mark (10) to 12"
    );
    // Invert works on the rows shown.
    cmd(&mut s, Command::InvertMarks);
    assert_eq!(s.tabs.bindings.marks.len(), 40 - 10);
    assert!(!s.tabs.bindings.marks.contains(2) && s.tabs.bindings.marks.contains(0));
    cmd(&mut s, Command::UnmarkAll);
    assert!(s.tabs.bindings.marks.is_empty());
    // Esc drops the marks too.
    cmd(&mut s, Command::MarkAll);
    cmd(&mut s, Command::Back);
    assert!(s.tabs.bindings.marks.is_empty());
    // All shown respects the filter: the Pending state filter.
    while s.tabs.bindings.state != Some(StateFilter::Pending) {
        cmd(&mut s, Command::CycleStatus);
    }
    let pending = s.tabs.bindings.view.shown.len();
    assert_eq!(
        pending,
        s.data.directory.pending_total() - 1,
        "user 10 is an Error"
    );
    cmd(&mut s, Command::MarkAll);
    assert_eq!(s.tabs.bindings.marks.len(), pending);
    // Keys: v marks, Space toggles here; shift-down marks.
    assert_eq!(
        key_action(&s, &key(KeyCode::Char('v'))),
        Some(Action::Command(Command::MarkRow))
    );
    assert_eq!(
        key_action(&s, &key(KeyCode::Char(' '))),
        Some(Action::Command(Command::ToggleWant))
    );
    assert_eq!(
        key_action(&s, &KeyEvent::new(KeyCode::Down, KeyModifiers::SHIFT)),
        Some(Action::Command(Command::MarkDown))
    );
}

#[test]
fn state_filter_cycles_through_pending_and_error() {
    let mut s = fixtures::bindings_state();
    let mut seen = Vec::new();
    for _ in 0..6 {
        cmd(&mut s, Command::CycleStatus);
        seen.push((s.tabs.bindings.state, s.tabs.bindings.view.shown.len()));
    }
    let n = |f| seen.iter().find(|(x, _)| *x == Some(f)).unwrap().1;
    assert_eq!(n(StateFilter::Error), 1, "the failed create of user 10");
    assert_eq!(
        n(StateFilter::Pending),
        s.data.directory.pending_total() - 1,
        "user 10 shows as Error, not Pending"
    );
    assert_eq!(seen.last().unwrap(), &(None, 40));
    assert!(s
        .data
        .errors
        .iter()
        .any(|e| e.code == "Request_BadRequest" && e.subject.contains("create account")));
}

#[test]
fn bindings_filter_narrows_like_a_full_scan_on_many_users() {
    let mut s = fixtures::loaded_state(0);
    update(
        &mut s,
        Action::DirectoryLoaded(Ok(fixtures::directory_snapshot(20_000, vec![]))),
    );
    cmd(&mut s, Command::GoTab(2));
    cmd(&mut s, Command::Filter);
    let brute = |s: &AppState, q: &str| -> Vec<u32> {
        (0..s.data.directory.users.len())
            .filter(|&r| s.data.directory.hay.get(r).contains(q))
            .map(|r| r as u32)
            .collect()
    };
    type_str(&mut s, "megan");
    assert_eq!(s.tabs.bindings.view.shown, brute(&s, "megan"));
    type_str(&mut s, " l");
    assert_eq!(s.tabs.bindings.view.shown, brute(&s, "megan l"));
    update(&mut s, Action::FilterInput(InputRequest::DeletePrevChar));
    assert_eq!(s.tabs.bindings.view.shown, brute(&s, "megan "));
}

#[test]
fn p_plans_off_the_ui_thread_and_opens_the_preview() {
    let mut s = fixtures::bindings_state();
    let fx = cmd(&mut s, Command::Preview);
    let [Effect::Plan {
        gen, pages, now, ..
    }] = fx.as_slice()
    else {
        panic!("{fx:?}")
    };
    assert_eq!(
        pages.len(),
        s.data.rows.pages.len(),
        "the listed pages, shared"
    );
    assert!(std::sync::Arc::ptr_eq(&pages[0], &s.data.rows.pages[0]));
    assert_eq!(*now, NOW);
    assert_eq!(s.modal, Modal::Planning(Planning { gen: *gen }));
    // A stale result is dropped; the current one opens the preview.
    let gen = *gen;
    assert!(!update(
        &mut s,
        Action::PlanReady {
            gen: gen - 1,
            result: Ok(Box::new(fixtures::plan_view(1, 1, false)))
        }
    )
    .iter()
    .any(|_| true));
    assert_eq!(s.modal, Modal::Planning(Planning { gen }));
    update(
        &mut s,
        Action::PlanReady {
            gen,
            result: Ok(Box::new(fixtures::plan_view(3, 2, false))),
        },
    );
    let Modal::Preview(p) = &s.modal else {
        panic!("{:?}", s.modal)
    };
    assert_eq!(p.view.plan.ops.len(), 7);
    assert_eq!(
        p.view.counts,
        vec![
            (OpKind::Create, 3),
            (OpKind::Takeover, 1),
            (OpKind::ReEnable, 1),
            (OpKind::Block, 2)
        ]
    );
    // Esc goes back to the tab; nothing was sent.
    assert!(cmd(&mut s, Command::Back).is_empty());
    assert_eq!(s.modal, Modal::None);
    // An empty plan says so instead of opening.
    let fx = cmd(&mut s, Command::Preview);
    let Effect::Plan { gen, .. } = fx[0] else {
        panic!()
    };
    update(
        &mut s,
        Action::PlanReady {
            gen,
            result: Ok(Box::new(PlanView::default())),
        },
    );
    assert_eq!(s.modal, Modal::None);
    assert!(s.data.message().unwrap().contains("Nothing to do"));
    // A plan that fails (e.g. the engine panicked) is an error, not a stuck screen.
    let fx = cmd(&mut s, Command::Preview);
    let Effect::Plan { gen, .. } = fx[0] else {
        panic!()
    };
    update(
        &mut s,
        Action::PlanReady {
            gen,
            result: Err(m365sync::failure::Failure::Internal("task panicked".into())),
        },
    );
    assert_eq!(s.modal, Modal::None);
    assert!(s.data.errors.iter().any(|e| e.kind() == "internal-error"));
}

#[test]
fn no_plan_while_the_tenant_users_are_still_loading() {
    let mut s = fixtures::bindings_state();
    s.data.load = Load::Loading { pages: 2 };
    assert!(cmd(&mut s, Command::Preview).is_empty());
    assert_eq!(s.modal, Modal::None);
    assert!(s.data.message().unwrap().contains("every tenant user"));
}

#[test]
fn y_applies_the_plan() {
    let mut s = fixtures::preview_state(3, 2, false);
    assert_eq!(
        key_action(&s, &key(KeyCode::Char('y'))),
        Some(Action::Command(Command::Confirm))
    );
    // Enter does not apply: only y does.
    assert_eq!(
        key_action(&s, &key(KeyCode::Enter)),
        Some(Action::Command(Command::Submit))
    );
    assert!(cmd(&mut s, Command::Submit).is_empty());
    let fx = cmd(&mut s, Command::Confirm);
    let [Effect::Apply { view, confirm }] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    assert_eq!(view.plan.ops.len(), 7);
    assert_eq!(confirm.yes_block, None, "no guard to confirm");
    assert!(s.data.applying);
    let Modal::Run(run) = &s.modal else { panic!() };
    assert_eq!((run.total, run.progress.remaining), (7, 7));
    // Tabs do not move away from a running apply, and a second p is refused.
    cmd(&mut s, Command::GoTab(1));
    assert_eq!(s.tab, Tab::Bindings);
}

#[test]
fn the_guard_wants_the_exact_count_typed_before_y() {
    let mut s = fixtures::preview_state(3, 60, true);
    assert!(cmd(&mut s, Command::Confirm).is_empty(), "nothing typed");
    assert!(s.data.message().unwrap().contains("Type 60"));
    // Digits go to the box, other letters are keys.
    let six = key_action(&s, &key(KeyCode::Char('6'))).unwrap();
    assert_eq!(six, Action::DialogInput(InputRequest::InsertChar('6')));
    update(&mut s, six);
    assert!(cmd(&mut s, Command::Confirm).is_empty(), "6 is not 60");
    update(&mut s, Action::DialogInput(InputRequest::InsertChar('1')));
    assert!(cmd(&mut s, Command::Confirm).is_empty(), "61 is not 60");
    update(&mut s, Action::DialogInput(InputRequest::DeletePrevChar));
    update(&mut s, Action::DialogInput(InputRequest::InsertChar('0')));
    let fx = cmd(&mut s, Command::Confirm);
    assert!(matches!(
        fx.as_slice(),
        [Effect::Apply { view, confirm }] if view.plan.ops.len() == 65 && confirm.yes_block == Some(60)
    ));
    // Without a guard, digits are not input.
    let s = fixtures::preview_state(1, 1, false);
    assert_eq!(key_action(&s, &key(KeyCode::Char('6'))), None);
}

#[test]
fn progress_events_update_the_counts_errors_and_rows() {
    let mut s = fixtures::run_state();
    let Modal::Run(run) = &s.modal else { panic!() };
    assert_eq!(run.progress.done, 17);
    assert_eq!(run.progress.throttled, 3);
    assert_eq!(run.errors.len(), 2);
    assert_eq!(
        row_state(&s, 9),
        RowState::Error,
        "the failed block of user 9"
    );
    // A later success clears the row's error.
    let mut op = fixtures::op(OpKind::Block, 9);
    op.directory_id = 10;
    update(
        &mut s,
        Action::Apply(ApplyNews::OpDone {
            op: m365sync::sync::ops::AnyOp::User(op),
            tenant_id: "x".into(),
        }),
    );
    assert_ne!(row_state(&s, 9), RowState::Error);
    // The same progress twice does not redraw.
    let p = ApplyProgress {
        done: 18,
        failed: 2,
        not_sent: 0,
        remaining: 20,
        throttled: 3,
        rate: 7.0,
    };
    update(&mut s, Action::Apply(ApplyNews::Progress(p.clone())));
    s.data.dirty = false;
    update(&mut s, Action::Apply(ApplyNews::Progress(p)));
    assert!(!s.data.dirty);
    // The end reloads the directory, lists the tenant again (the next plan must see the new
    // accounts) and shows the summary.
    let gen = s.data.load_gen;
    let fx = update(
        &mut s,
        Action::ApplyFinished(Ok(ApplySummary {
            done: 38,
            failed: 2,
            cancelled: 0,
            passwords: vec![],
            passwords_lost: Vec::new(),
            ..ApplySummary::default()
        })),
    );
    assert_eq!(fx[0], Effect::LoadDirectory);
    assert!(
        matches!(fx[1], Effect::LoadUsers { gen: g, .. } if g == gen + 1),
        "{fx:?}"
    );
    assert!(!s.data.applying);
    let Modal::Run(run) = &s.modal else { panic!() };
    assert_eq!(
        run.finished,
        Some(RunEnd::Done {
            done: 38,
            failed: 2,
            cancelled: 0
        })
    );
    assert!(cmd(&mut s, Command::Back).is_empty());
    assert_eq!(s.modal, Modal::None);
    assert!(
        cmd(&mut s, Command::Preview).is_empty(),
        "no plan until the tenant is listed again"
    );
    // A run that wrote nothing does not list the tenant again.
    s.data.load = Load::Done;
    s.modal = Modal::Run(Box::default());
    let fx = update(
        &mut s,
        Action::ApplyFinished(Ok(ApplySummary {
            done: 0,
            failed: 1,
            cancelled: 0,
            passwords: vec![],
            passwords_lost: Vec::new(),
            ..ApplySummary::default()
        })),
    );
    assert_eq!(fx, vec![Effect::LoadDirectory]);
}

#[test]
fn esc_stops_sending_and_says_so() {
    let mut s = fixtures::run_state();
    assert_eq!(
        key_action(&s, &key(KeyCode::Esc)),
        Some(Action::Command(Command::Back))
    );
    assert_eq!(cmd(&mut s, Command::Back), vec![Effect::CancelApply]);
    let Modal::Run(run) = &s.modal else { panic!() };
    assert!(run.stopping);
    assert!(cmd(&mut s, Command::Back).is_empty(), "once is enough");
    assert!(
        matches!(s.modal, Modal::Run(_)),
        "the view stays until the end"
    );
    update(
        &mut s,
        Action::ApplyFinished(Ok(ApplySummary {
            done: 20,
            failed: 2,
            cancelled: 18,
            passwords: vec![],
            passwords_lost: Vec::new(),
            ..ApplySummary::default()
        })),
    );
    assert!(s.data.message().unwrap().contains("18 not sent"));
}

#[test]
fn passwords_are_shown_once_copied_by_osc52_and_dropped_on_close() {
    let mut s = fixtures::passwords_state();
    let Modal::Run(run) = &s.modal else { panic!() };
    assert_eq!(run.passwords.len(), 3);
    // Never in a debug print (logs), even while shown.
    assert!(!format!("{s:?}").contains("Kq7#"));
    assert_eq!(
        key_action(&s, &key(KeyCode::Char('c'))),
        Some(Action::Command(Command::CopyPassword))
    );
    let fx = cmd(&mut s, Command::CopyPassword);
    assert_eq!(
        fx,
        vec![Effect::Osc52 {
            text: Secret(fixtures::issued_password(2).password)
        }]
    );
    assert!(!format!("{fx:?}").contains("Kq7#"), "effects redact too");
    cmd(&mut s, Command::Down);
    let fx = cmd(&mut s, Command::CopyPassword);
    assert_eq!(
        fx,
        vec![Effect::Osc52 {
            text: Secret(fixtures::issued_password(10).password)
        }]
    );
    let fx = cmd(&mut s, Command::WriteHandoff);
    assert!(matches!(fx.as_slice(), [Effect::WriteHandoff { passwords }] if passwords.len() == 3));
    update(
        &mut s,
        Action::HandoffWritten(Ok("/data/handoff-1.csv".into())),
    );
    let Modal::Run(run) = &s.modal else { panic!() };
    assert_eq!(run.handoff.as_deref(), Some("/data/handoff-1.csv"));
    // Closing forgets them: nothing of them is left in the state.
    cmd(&mut s, Command::Back);
    assert_eq!(s.modal, Modal::None);
    let Modal::None = &s.modal else { panic!() };
    assert!(cmd(&mut s, Command::CopyPassword).is_empty());
}

#[test]
fn password_input_is_masked_checked_as_typed_and_dropped_when_sent() {
    let mut s = fixtures::password_input_state("short");
    let Modal::Password(p) = &s.modal else {
        panic!()
    };
    assert_eq!(p.email, s.data.directory.users[0].email);
    assert!(p.problem.as_deref().unwrap().contains("8 characters"));
    assert!(!format!("{s:?}").contains("short"), "Debug hides it");
    // Letters are text here, even q and j; Enter and Esc act.
    assert_eq!(
        key_action(&s, &key(KeyCode::Char('q'))),
        Some(Action::DialogInput(InputRequest::InsertChar('q')))
    );
    assert_eq!(
        key_action(&s, &key(KeyCode::Char('y'))),
        Some(Action::DialogInput(InputRequest::InsertChar('y')))
    );
    assert_eq!(
        key_action(&s, &key(KeyCode::Enter)),
        Some(Action::Command(Command::Submit))
    );
    // Refused before sending, with the rule.
    assert!(cmd(&mut s, Command::Submit).is_empty());
    for c in "Pass#1".chars() {
        update(&mut s, Action::DialogInput(InputRequest::InsertChar(c)));
    }
    let Modal::Password(p) = &s.modal else {
        panic!()
    };
    assert_eq!(p.problem, None, "shortPass#1 meets the rule");
    let fx = cmd(&mut s, Command::Submit);
    assert_eq!(
        fx,
        vec![Effect::SetPassword {
            directory_id: 1,
            email: s.data.directory.users[0].email.clone(),
            password: Secret("shortPass#1".into()),
            actor: "admin@contoso.onmicrosoft.com".into(),
        }]
    );
    assert_eq!(s.modal, Modal::None, "the plaintext left with the dialog");
    let fx = update(
        &mut s,
        Action::PasswordSet {
            email: "x@y".into(),
            result: Err(m365sync::failure::Failure::Invalid("not wired".into())),
        },
    );
    assert_eq!(fx, vec![Effect::LoadDirectory]);
    assert!(s.data.errors.iter().any(|e| e.message == "not wired"));
    // Esc cancels.
    let mut s = fixtures::password_input_state("abc");
    assert!(cmd(&mut s, Command::Back).is_empty());
    assert_eq!(s.modal, Modal::None);
}

#[test]
fn disconnect_asks_first_then_returns_to_sign_in() {
    let mut s = fixtures::bindings_state();
    assert_eq!(
        key_action(&s, &key(KeyCode::Char('D'))),
        Some(Action::Command(Command::Disconnect))
    );
    cmd(&mut s, Command::Disconnect);
    assert_eq!(s.modal, Modal::Disconnect(Disconnect { busy: false }));
    assert!(cmd(&mut s, Command::Back).is_empty());
    assert_eq!(s.modal, Modal::None);
    cmd(&mut s, Command::Disconnect);
    assert_eq!(cmd(&mut s, Command::Confirm), vec![Effect::Disconnect]);
    assert_eq!(s.modal, Modal::Disconnect(Disconnect { busy: true }));
    // A failure changes nothing and says so.
    update(
        &mut s,
        Action::Disconnected(Err(m365sync::failure::Failure::Invalid("not wired".into()))),
    );
    assert_eq!(s.modal, Modal::None);
    assert_eq!(s.data.phase, Phase::Main);
    cmd(&mut s, Command::Disconnect);
    cmd(&mut s, Command::Confirm);
    let gen = s.data.signin_gen;
    let fx = update(&mut s, Action::Disconnected(Ok(())));
    assert!(fx.contains(&Effect::StartDeviceCode { gen: gen + 1 }));
    assert!(fx.contains(&Effect::CancelLoad));
    assert_eq!(s.data.phase, Phase::SignIn(SignIn::Requesting));
    assert!(
        s.data.session.is_none() && s.data.rows.is_empty() && s.data.directory.users.is_empty()
    );
    assert!(s
        .data
        .signin_note
        .as_deref()
        .unwrap()
        .contains("left as they are"));
}

#[test]
fn a_directory_reload_keeps_marks_on_the_same_users() {
    let mut s = fixtures::bindings_state();
    s.tabs.bindings.marks.insert(5);
    s.tabs.bindings.marks.insert(7);
    // The reload holds a new user first: rows shift by one.
    let mut users = fixtures::directory_users_with_wishes(40);
    let mut extra = users[0].clone();
    extra.id = 999;
    users.insert(0, extra);
    update(
        &mut s,
        Action::DirectoryLoaded(Ok(m365sync::app::action::DirectorySnapshot {
            users,
            index: Default::default(),
            failures: vec![],
            groups: vec![],
            undelivered: vec![],
            journal_failures: vec![],
            ..Default::default()
        })),
    );
    assert_eq!(s.tabs.bindings.marks.iter().collect::<Vec<_>>(), vec![6, 8]);
}

#[test]
fn an_interrupted_run_is_checked_after_sign_in_and_sends_nothing() {
    use m365sync::sync::reconcile::{Found, Verification};
    let mut s = fixtures::bindings_state();
    s.tab = Tab::Import;
    s.data.phase = Phase::SignIn(SignIn::Requesting);
    let fx = update(
        &mut s,
        Action::SignedIn {
            gen: 0,
            result: Ok(SessionInfo::default()),
        },
    );
    assert!(fx.iter().any(|e| matches!(e, Effect::CheckJournal)));
    assert!(
        s.data.checking_journal,
        "no new plan while the journal is checked"
    );
    assert!(
        !s.data.applying,
        "checking sends nothing: the tabs stay usable"
    );
    cmd(&mut s, Command::GoTab(2));
    assert_eq!(s.tab, Tab::Bindings);
    assert!(cmd(&mut s, Command::Preview).is_empty());
    assert!(s.data.message().unwrap().contains("plan waits"));
    let op = m365sync::sync::ops::AnyOp::User(fixtures::op(OpKind::Create, 2));
    let fx = update(
        &mut s,
        Action::JournalChecked(Ok(vec![
            Verification {
                op: op.clone(),
                found: Found::Applied,
            },
            Verification {
                op,
                found: Found::NeverSent,
            },
        ])),
    );
    assert!(fx.contains(&Effect::LoadDirectory));
    assert!(!s.data.checking_journal);
    let m = s.data.message().unwrap();
    assert!(m.contains("1 applied, 1 dropped"), "{m}");
    assert_eq!(s.modal, Modal::None, "nothing to confirm: nothing was sent");
    // A clean journal says nothing.
    let mut s = fixtures::bindings_state();
    s.data.checking_journal = true;
    assert!(update(&mut s, Action::JournalChecked(Ok(vec![]))).is_empty());
    assert!(!s.data.checking_journal);
}

/// A plan that blocks the account m365sync acts for: `y` is refused until that UPN is typed
/// (every key goes to the box then, Enter applies); with a guard too, its count comes first.
#[test]
fn blocking_ones_own_account_needs_its_upn_typed() {
    use m365sync::sync::pipeline::SelfBlock;
    let me = "admin@contoso.onmicrosoft.com";
    let with_self = |guard: bool| {
        let mut s = fixtures::bindings_state();
        let mut v = fixtures::plan_view(1, if guard { 60 } else { 1 }, guard);
        v.self_block = Some(SelfBlock {
            upn: me.into(),
            message: format!("This plan blocks sign-in for {me}"),
        });
        s.data.plan_gen = 1;
        s.modal = Modal::Planning(Planning { gen: 1 });
        update(
            &mut s,
            Action::PlanReady {
                gen: 1,
                result: Ok(Box::new(v)),
            },
        );
        s
    };
    let type_keys = |s: &mut AppState, text: &str| {
        for c in text.chars() {
            let a = key_action(s, &key(KeyCode::Char(c))).expect("a key");
            assert_eq!(a, Action::DialogInput(InputRequest::InsertChar(c)), "{c}");
            update(s, a);
        }
    };
    let mut s = with_self(false);
    assert!(cmd(&mut s, Command::Confirm).is_empty());
    assert!(s.data.message().unwrap().contains(me));
    // `y` and `q` are letters of the UPN now, not commands.
    type_keys(&mut s, "admin@contoso.onmicrosoft.co");
    assert_eq!(
        key_action(&s, &key(KeyCode::Enter)),
        Some(Action::Command(Command::Confirm))
    );
    assert!(
        cmd(&mut s, Command::Confirm).is_empty(),
        "not the whole UPN"
    );
    type_keys(&mut s, "m");
    let fx = cmd(&mut s, Command::Confirm);
    let [Effect::Apply { confirm, .. }] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    assert_eq!(confirm.yes_block_self.as_deref(), Some(me));
    // Guard and self-block: the count first (digits), then the UPN in the same box.
    let mut s = with_self(true);
    type_keys(&mut s, "60");
    let Modal::Preview(p) = &s.modal else {
        panic!()
    };
    assert!(p.guard_ok && p.guard_input.value().is_empty());
    assert_eq!(p.expected().as_deref(), Some(me));
    type_keys(&mut s, me);
    let fx = cmd(&mut s, Command::Confirm);
    let [Effect::Apply { confirm, .. }] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    assert_eq!(
        (confirm.yes_block, confirm.yes_block_self.as_deref()),
        (Some(60), Some(me))
    );
}

// ---- Input as a person gives it: paste, Esc, g, mouse, quit ----

use m365sync::app::action::Mouse;
use m365sync::app::state::Question;

/// A paste is text for the focused field: its newline never presses Enter and its letters
/// never run commands; with no field focused it is refused, said, and nothing runs.
#[test]
fn a_paste_goes_into_the_focused_field_only() {
    let mut s = fixtures::loaded_state(50);
    let before = s.clone();
    let fx = update(&mut s, Action::Paste("Suzuki\nai".into()));
    assert!(fx.is_empty());
    assert!(s.tabs.import.marks.is_empty(), "a did not mark all");
    assert!(s.data.importing.is_none(), "i did not import");
    assert_eq!(s.tabs.import.view.shown, before.tabs.import.view.shown);
    assert!(s.data.message().unwrap().contains("/ starts a filter"));
    // In the filter: all of it is the filter's text, on one line; it stays open.
    cmd(&mut s, Command::Filter);
    let fx = update(&mut s, Action::Paste("Megan\nai\r\n".into()));
    assert!(fx.is_empty());
    assert_eq!(s.tabs.import.view.input.value(), "Megan ai");
    assert!(
        s.tabs.import.view.editing,
        "the newline did not keep the filter"
    );
    assert!(s.tabs.import.marks.is_empty() && s.data.importing.is_none());
    // A password input takes it; a guard box takes its digits only.
    let mut s = fixtures::password_input_state("");
    update(&mut s, Action::Paste("Tr0ub4dor&3\n".into()));
    let Modal::Password(p) = &s.modal else {
        panic!()
    };
    assert_eq!(p.input.value(), "Tr0ub4dor&3");
    let mut s = fixtures::preview_state(3, 60, true);
    update(&mut s, Action::Paste("6x0\n".into()));
    let Modal::Preview(p) = &s.modal else {
        panic!()
    };
    assert_eq!(p.guard_input.value(), "60");
}

/// `g` and Home are the first row on every tab (the groups toggle is `t`).
#[test]
fn g_and_home_go_to_the_first_row_on_every_tab() {
    let mut s = fixtures::preflight_errors_state();
    for tab in [1u8, 2, 3] {
        cmd(&mut s, Command::GoTab(tab));
        for k in [KeyCode::Char('g'), KeyCode::Home] {
            cmd(&mut s, Command::Bottom);
            let a = key_action(&s, &key(k)).unwrap();
            assert_eq!(a, Action::Command(Command::Top), "{k:?} on tab {tab}");
            update(&mut s, a);
            let v = match tab {
                1 => &s.tabs.import.view,
                2 => &s.tabs.bindings.view,
                _ => &s.tabs.errors.view,
            };
            assert_eq!((v.selected, v.offset), (0, 0), "tab {tab}");
        }
    }
    cmd(&mut s, Command::GoTab(2));
    assert_eq!(
        key_action(&s, &key(KeyCode::Char('t'))),
        Some(Action::Command(Command::ToggleGroups))
    );
}

/// Esc does the same on every tab: the filter first, then the marks, then nothing.
#[test]
fn esc_clears_the_filter_then_the_marks_then_nothing_on_every_tab() {
    let mut s = fixtures::preflight_errors_state();
    for tab in [1u8, 2] {
        cmd(&mut s, Command::GoTab(tab));
        cmd(&mut s, Command::MarkAll);
        cmd(&mut s, Command::Filter);
        update(&mut s, Action::FilterInput(InputRequest::InsertChar('a')));
        cmd(&mut s, Command::FilterKeep);
        let marks = |s: &AppState| match tab {
            1 => s.tabs.import.marks.len(),
            _ => s.tabs.bindings.marks.len(),
        };
        let filter = |s: &AppState| match tab {
            1 => s.tabs.import.view.input.value().to_string(),
            _ => s.tabs.bindings.view.input.value().to_string(),
        };
        assert!(marks(&s) > 0 && !filter(&s).is_empty());
        cmd(&mut s, Command::Back);
        assert!(filter(&s).is_empty() && marks(&s) > 0, "the filter first");
        cmd(&mut s, Command::Back);
        assert_eq!(marks(&s), 0, "then the marks");
        let before = s.clone();
        assert!(cmd(&mut s, Command::Back).is_empty());
        assert_eq!(s.tabs, before.tabs, "then nothing");
    }
}

/// `q` during an apply asks; yes stops sending and the console ends when the run has
/// stopped, unless it issued passwords nobody saved.
#[test]
fn q_during_an_apply_asks_and_a_confirmed_quit_waits_for_the_run() {
    let mut s = fixtures::run_state();
    assert!(cmd(&mut s, Command::Quit).is_empty());
    assert_eq!(s.question, Some(Question::QuitDuringApply));
    assert!(!s.data.quit);
    // No goes back: the run goes on.
    assert_eq!(
        key_action(&s, &key(KeyCode::Char('n'))),
        Some(Action::Command(Command::Back))
    );
    cmd(&mut s, Command::Back);
    assert_eq!(s.question, None);
    // Yes: stop sending, wait.
    cmd(&mut s, Command::Quit);
    assert_eq!(cmd(&mut s, Command::Confirm), vec![Effect::CancelApply]);
    assert!(s.data.quitting && !s.data.quit);
    let Modal::Run(r) = &s.modal else { panic!() };
    assert!(r.stopping);
    update(
        &mut s,
        Action::ApplyFinished(Ok(ApplySummary {
            done: 17,
            failed: 2,
            cancelled: 21,
            ..ApplySummary::default()
        })),
    );
    assert!(s.data.quit, "stopped cleanly: the console ends");
    // With passwords issued before the stop, it shows them instead of ending.
    let mut s = fixtures::run_state();
    cmd(&mut s, Command::Quit);
    cmd(&mut s, Command::Confirm);
    update(
        &mut s,
        Action::Apply(ApplyNews::PasswordIssued(fixtures::issued_password(2))),
    );
    update(
        &mut s,
        Action::ApplyFinished(Ok(ApplySummary {
            done: 1,
            ..ApplySummary::default()
        })),
    );
    assert!(!s.data.quit);
    assert!(s.data.message().unwrap().contains("copy or write them"));
    // And `q` then asks about them.
    cmd(&mut s, Command::Quit);
    assert_eq!(s.question, Some(Question::QuitWithPasswords { unsaved: 1 }));
    // A second Ctrl-C over a quit question means yes.
    let a = key_action(
        &s,
        &KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
    )
    .unwrap();
    update(&mut s, a);
    assert!(s.data.quit);
}

/// The wheel moves the selection; a click selects the row under it or the tab under it.
#[test]
fn the_mouse_scrolls_selects_rows_and_switches_tabs() {
    let mut s = fixtures::loaded_state(100);
    update(&mut s, Action::Mouse(Mouse::ScrollDown));
    assert_eq!(s.tabs.import.view.selected, 3);
    update(&mut s, Action::Mouse(Mouse::ScrollUp));
    assert_eq!(s.tabs.import.view.selected, 0);
    // Row 5 of the list: line 4 (header, status, toolbar, list header) + 5.
    update(&mut s, Action::Mouse(Mouse::Click { column: 10, row: 9 }));
    assert_eq!(s.tabs.import.view.selected, 5);
    // The Bindings tab's title in the header.
    let x = m365sync::app::view::header_tabs(&s)
        .into_iter()
        .find(|(t, _, _)| *t == Tab::Bindings)
        .map(|(_, x, _)| x)
        .unwrap();
    update(
        &mut s,
        Action::Mouse(Mouse::Click {
            column: x + 1,
            row: 0,
        }),
    );
    assert_eq!(s.tab, Tab::Bindings);
}

/// Keys pressed fast, with the list changing between them (the directory read again, a new
/// user ahead, the row no longer passing the filter), act on the user under the cursor.
#[test]
fn rapid_keys_act_on_the_user_under_the_cursor_though_the_list_changed() {
    let mut s = fixtures::bindings_state();
    while s.tabs.bindings.state != Some(StateFilter::Pending) {
        cmd(&mut s, Command::CycleStatus);
    }
    cmd(&mut s, Command::Down);
    let row = s.tabs.bindings.view.selected_row().unwrap();
    let id = s.data.directory.users[row as usize].id;
    let fx = cmd(&mut s, Command::ToggleWant);
    let [Effect::SetWant { ids, bound }] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    assert_eq!(ids, &vec![id]);
    let first = *bound;
    // The save lands and the directory is read again, with a new user first.
    update(&mut s, Action::WantSaved(Ok(1)));
    let mut users = s.data.directory.users.clone();
    let mut extra = users[0].clone();
    extra.id = 999;
    users.insert(0, extra);
    update(
        &mut s,
        Action::DirectoryLoaded(Ok(m365sync::app::action::DirectorySnapshot {
            users,
            ..Default::default()
        })),
    );
    let fx = cmd(&mut s, Command::ToggleWant);
    assert_eq!(
        fx,
        vec![Effect::SetWant {
            ids: vec![id],
            bound: !first
        }],
        "the second Space is on the same user, back as it was"
    );
    // `i` on Import keeps the cursor where it was.
    let mut s = fixtures::loaded_state(30);
    cmd(&mut s, Command::CycleStatus); // New
    for _ in 0..4 {
        cmd(&mut s, Command::Down);
    }
    let row = s.tabs.import.view.selected_row();
    cmd(&mut s, Command::Import);
    update(&mut s, Action::ImportDone(Ok(vec![])));
    let gen = s.data.load_gen;
    let v = s.data.index_version;
    let mut statuses: Vec<_> = (0..30).map(fixtures::status_of).collect();
    statuses[row.unwrap() as usize] = ImportStatus::Imported;
    update(
        &mut s,
        Action::Reclassified {
            gen,
            index_version: v,
            first_row: 0,
            statuses,
        },
    );
    assert_eq!(s.tabs.import.view.selected_row(), row, "i kept the cursor");
}

#[test]
fn a_saved_copy_shows_page_by_page_and_is_whole_when_loaded() {
    use m365sync::app::state::{AsOf, TenantExtras};
    use std::sync::Arc;
    // Rows of an earlier, interrupted load on screen: the copy's first page replaces them.
    let mut s = fixtures::loaded_state(5);
    s.data.complete_copy = true;
    cmd(&mut s, Command::Refresh);
    let gen = s.data.load_gen;
    let v = s.data.index_version;
    let page = |gen, n: usize, first| Action::CopyPage {
        gen,
        index_version: v,
        users: Arc::new(fixtures::tenant_users(n)),
        statuses: vec![ImportStatus::New; n],
        first,
    };
    update(&mut s, page(gen - 1, 2, true));
    assert_eq!(s.data.rows.len(), 5, "a page of an older load is dropped");
    let fx = update(&mut s, page(gen, 3, true));
    assert!(fx.is_empty());
    assert_eq!(s.data.rows.len(), 3, "the first page replaces the rows");
    assert!(
        !s.data.complete_copy,
        "part of a copy: nothing to plan on yet"
    );
    assert!(!s.data.listed());
    update(&mut s, page(gen, 4, false));
    assert_eq!(s.data.rows.len(), 7, "the next pages are appended");
    assert_eq!(
        s.data.load,
        Load::Loading { pages: 0 },
        "the refresh still runs"
    );
    let extras = Arc::new(TenantExtras {
        deleted: fixtures::tenant_users(1),
        domains: vec![],
    });
    let as_of = AsOf { at: NOW, offset: 0 };
    update(
        &mut s,
        Action::CopyLoaded {
            gen: gen - 1,
            extras: extras.clone(),
            as_of,
        },
    );
    assert!(
        !s.data.complete_copy,
        "an older load's copy changes nothing"
    );
    update(&mut s, Action::CopyLoaded { gen, extras, as_of });
    assert!(s.data.complete_copy, "a whole tenant: planned on at once");
    assert_eq!(s.data.as_of, Some(as_of));
    assert_eq!(s.data.tenant_extras.deleted.len(), 1);
    assert_eq!(s.data.rows.len(), 7);
    // A page classified with an older index is classified again, as a listing's is.
    let fx = update(
        &mut s,
        Action::CopyPage {
            gen,
            index_version: v.wrapping_sub(1),
            users: Arc::new(fixtures::tenant_users(1)),
            statuses: vec![ImportStatus::New],
            first: false,
        },
    );
    assert!(
        matches!(fx.as_slice(), [Effect::Reclassify { first_row: 7, .. }]),
        "{fx:?}"
    );
}
