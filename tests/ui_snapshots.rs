//! Whole-screen snapshots (ratatui TestBackend + insta) of every tab, the sign-in screens and
//! the help overlay, at 80x24 and 120x40. States are built from fixed data at a fixed "now".
use m365sync::app::explain::ErrorEntry;
use m365sync::app::fixtures::{self, NOW};
use m365sync::app::state::{Load, Phase, SignIn};
use m365sync::app::{update, Action, AppState};
use m365sync::auth::AuthError;
use m365sync::graph::GraphError;
use m365sync::keymap::Command;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;
use tui_input::InputRequest;

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

fn draw(state: &AppState, w: u16, h: u16) -> Buffer {
    let mut s = state.clone();
    update(
        &mut s,
        Action::Resize {
            width: w,
            height: h,
        },
    );
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| m365sync::app::draw(f, &s)).unwrap();
    t.backend().buffer().clone()
}

fn text(buf: &Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in 0..area.height {
        let line: String = (0..area.width).map(|x| buf[(x, y)].symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn snap_all(name: &str, state: &AppState) {
    for (w, h) in SIZES {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), text(&draw(state, w, h)));
    }
}

fn cmd(s: &mut AppState, c: Command) {
    update(s, Action::Command(c));
}

fn signin(si: SignIn) -> AppState {
    let mut s = AppState::new("contoso.onmicrosoft.com");
    s.data.now = NOW;
    s.data.phase = Phase::SignIn(si);
    s
}

#[test]
fn signin_waiting_for_the_code() {
    let s = signin(SignIn::Waiting {
        start: fixtures::device_code(),
        expires_at: NOW + 14 * 60 + 32,
    });
    snap_all("signin_waiting", &s);
}

#[test]
fn signin_failed_with_an_aadsts_code() {
    let s = signin(SignIn::Failed(AuthError::OAuth {
        error: "invalid_client".into(),
        description: "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".into(),
        codes: vec![7000218],
        trace_id: Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into()),
    }));
    snap_all("signin_failed_aadsts", &s);
}

#[test]
fn signin_declined_and_expired() {
    insta::assert_snapshot!(
        "signin_declined_80x24",
        text(&draw(&signin(SignIn::Failed(AuthError::Declined)), 80, 24))
    );
    insta::assert_snapshot!(
        "signin_expired_80x24",
        text(&draw(&signin(SignIn::Failed(AuthError::Expired)), 80, 24))
    );
}

#[test]
fn not_set_up() {
    let mut s = AppState::new("");
    s.data.phase = Phase::Config {
        message: "no tenant configured: pass --tenant, set M365SYNC_TENANT, or add `tenant = \"...\"` to config.toml".into(),
    };
    insta::assert_snapshot!("config_missing_80x24", text(&draw(&s, 80, 24)));
}

fn loaded() -> AppState {
    let mut s = fixtures::with_directory(fixtures::loaded_state(1000), 40, vec![]);
    s.data.banner = Some("DEMO — simulated tenant".into());
    cmd(&mut s, Command::Down);
    cmd(&mut s, Command::ToggleMark);
    cmd(&mut s, Command::ToggleMark);
    cmd(&mut s, Command::Down);
    s
}

#[test]
fn import_loading() {
    let mut s = fixtures::loaded_state(2997);
    s.data.load = Load::Loading { pages: 3 };
    s.data.expected = None;
    snap_all("import_loading", &s);
    // A reload of a tenant whose size is known shows a real ratio.
    s.data.expected = Some(12_000);
    insta::assert_snapshot!("import_reloading_80x24", text(&draw(&s, 80, 24)));
}

#[test]
fn import_waiting_for_the_first_page() {
    let mut s = fixtures::loaded_state(0);
    s.data.load = Load::Loading { pages: 0 };
    insta::assert_snapshot!("import_first_page_80x24", text(&draw(&s, 80, 24)));
}

#[test]
fn import_loaded() {
    snap_all("import_loaded", &loaded());
}

#[test]
fn import_filtered_while_typing() {
    let mut s = loaded();
    cmd(&mut s, Command::CycleStatus);
    cmd(&mut s, Command::Filter);
    for c in "megan".chars() {
        update(&mut s, Action::FilterInput(InputRequest::InsertChar(c)));
    }
    snap_all("import_filtered", &s);
}

#[test]
fn bindings_tab() {
    let mut s = loaded();
    cmd(&mut s, Command::GoTab(2));
    cmd(&mut s, Command::Down);
    snap_all("bindings", &s);
}

fn with_errors() -> AppState {
    let mut s = fixtures::with_directory(
        fixtures::loaded_state(30),
        5,
        vec![fixtures::email_exists_failure(8)],
    );
    s.data.errors.push(ErrorEntry::from_graph(
        "list tenant users",
        &GraphError::Api {
            status: 403,
            code: "Authorization_RequestDenied".into(),
            message: "Insufficient privileges to complete the operation.".into(),
            request_id: Some("9c2b7e1a-5d3f-4e21-9a0b-7f6e5d4c3b2a".into()),
            date: Some("Fri, 27 Nov 2026 07:59:00 GMT".into()),
            retry_after: None,
        },
    ));
    s.tabs.errors.view.shown.push(1);
    s.data.errors.push(ErrorEntry::from_auth(
        "refresh cached sign-in",
        &AuthError::OAuth {
            error: "invalid_grant".into(),
            description: "AADSTS700082: The refresh token has expired due to inactivity.".into(),
            codes: vec![700082],
            trace_id: Some("5e6f7a8b-0000-4000-8000-000000000099".into()),
        },
    ));
    s.tabs.errors.view.shown.push(2);
    cmd(&mut s, Command::GoTab(3));
    s
}

#[test]
fn errors_tab_with_detail() {
    let mut s = with_errors();
    snap_all("errors_import_failure", &s);
    cmd(&mut s, Command::Down);
    snap_all("errors_graph_403", &s);
}

#[test]
fn errors_tab_empty() {
    let mut s = fixtures::loaded_state(3);
    cmd(&mut s, Command::GoTab(3));
    insta::assert_snapshot!("errors_empty_80x24", text(&draw(&s, 80, 24)));
}

#[test]
fn help_overlay() {
    let mut s = loaded();
    cmd(&mut s, Command::Help);
    snap_all("help", &s);
}

/// Colour carries the status and the selection: snapshot the styled buffer once, and once
/// under NO_COLOR, where the selection must stay visible by reverse video.
#[test]
fn import_styles_with_and_without_colour() {
    let s = loaded();
    insta::assert_debug_snapshot!("import_loaded_styles_80x24", draw(&s, 80, 24));
    let mut s = loaded();
    s.data.no_color = true;
    let buf = draw(&s, 80, 24);
    // The selected row (row 4 of the list, screen line 8) is reversed, nothing is coloured.
    for y in 0..24 {
        for x in 0..80 {
            let c = &buf[(x, y)];
            assert_eq!(c.fg, ratatui::style::Color::Reset, "colour at {x},{y}");
            assert_eq!(c.bg, ratatui::style::Color::Reset, "colour at {x},{y}");
        }
    }
    assert!(buf[(10, 8)]
        .modifier
        .contains(ratatui::style::Modifier::REVERSED));
    insta::assert_debug_snapshot!("import_loaded_no_color_80x24", buf);
}

#[test]
fn signin_requesting_after_a_failed_refresh() {
    let mut s = signin(SignIn::Requesting);
    s.data.signin_note = Some(
        "The cached sign-in could not be refreshed (invalid_grant: AADSTS700082: The refresh token has expired due to inactivity.); sign in again.".into(),
    );
    insta::assert_snapshot!("signin_requesting_80x24", text(&draw(&s, 80, 24)));
}

#[test]
fn import_after_an_import_with_a_failure_and_a_failed_load() {
    let mut s = loaded();
    update(
        &mut s,
        Action::ImportDone(Ok(vec![
            m365sync::directory::ImportOutcome::Imported {
                tenant_user_id: fixtures::tenant_user(1).id,
                directory_id: 41,
            },
            m365sync::directory::ImportOutcome::Failed(fixtures::email_exists_failure(8)),
        ])),
    );
    insta::assert_snapshot!("import_after_import_80x24", text(&draw(&s, 80, 24)));
    let mut s = fixtures::loaded_state(0);
    s.data.load = Load::Loading { pages: 0 };
    let gen = s.data.load_gen;
    update(
        &mut s,
        Action::UsersFailed {
            gen,
            error: GraphError::Transport("connection reset by peer".into()),
        },
    );
    insta::assert_snapshot!("import_load_failed_80x24", text(&draw(&s, 80, 24)));
}

// ---- Bindings: pending and error rows, preview, progress, passwords, dialogs ----

fn bindings_marked() -> AppState {
    let mut s = fixtures::bindings_state();
    s.data.banner = Some("DEMO — simulated tenant".into());
    cmd(&mut s, Command::Down);
    cmd(&mut s, Command::MarkRow);
    cmd(&mut s, Command::MarkRow);
    for _ in 0..7 {
        cmd(&mut s, Command::Down);
    }
    s
}

#[test]
fn bindings_with_pending_and_error_rows() {
    snap_all("bindings_pending", &bindings_marked());
}

/// Pending and error rows carry colour: the styled buffer once.
#[test]
fn bindings_pending_styles() {
    insta::assert_debug_snapshot!(
        "bindings_pending_styles_80x24",
        draw(&bindings_marked(), 80, 24)
    );
}

#[test]
fn bindings_help_and_dialog_help() {
    let mut s = bindings_marked();
    cmd(&mut s, Command::Help);
    snap_all("bindings_help", &s);
    let mut s = fixtures::preview_state(3, 2, false);
    cmd(&mut s, Command::Help);
    insta::assert_snapshot!("dialog_help_80x24", text(&draw(&s, 80, 24)));
}

#[test]
fn preview_without_guard() {
    snap_all("preview", &fixtures::preview_state(3, 2, false));
}

#[test]
fn preview_with_guard() {
    let mut s = fixtures::preview_state(3, 60, true);
    update(&mut s, Action::DialogInput(InputRequest::InsertChar('6')));
    snap_all("preview_guard", &s);
    update(&mut s, Action::DialogInput(InputRequest::InsertChar('0')));
    insta::assert_snapshot!("preview_guard_typed_80x24", text(&draw(&s, 80, 24)));
}

#[test]
fn progress_view() {
    let s = fixtures::run_state();
    snap_all("progress", &s);
    let mut s = s;
    cmd(&mut s, Command::Back);
    insta::assert_snapshot!("progress_stopping_80x24", text(&draw(&s, 80, 24)));
}

#[test]
fn summary_with_passwords() {
    let mut s = fixtures::passwords_state();
    cmd(&mut s, Command::Down);
    snap_all("passwords", &s);
    update(
        &mut s,
        Action::HandoffWritten(Ok(
            "/home/admin/.local/share/m365sync/handoff-1795766400.csv".into(),
        )),
    );
    insta::assert_snapshot!("passwords_handoff_80x24", text(&draw(&s, 80, 24)));
}

#[test]
fn summary_without_passwords() {
    let mut s = fixtures::run_state();
    update(
        &mut s,
        Action::ApplyFinished(Ok(m365sync::sync::apply::ApplySummary {
            done: 20,
            failed: 2,
            cancelled: 18,
            passwords: vec![],
            passwords_lost: Vec::new(),
            ..Default::default()
        })),
    );
    insta::assert_snapshot!("summary_80x24", text(&draw(&s, 80, 24)));
}

#[test]
fn password_input() {
    snap_all("password_input", &fixtures::password_input_state("hunter2"));
    insta::assert_snapshot!(
        "password_input_ok_80x24",
        text(&draw(
            &fixtures::password_input_state("Tr0ub4dor&3"),
            80,
            24
        ))
    );
}

#[test]
fn disconnect_confirmation() {
    let mut s = fixtures::bindings_state();
    cmd(&mut s, Command::Disconnect);
    snap_all("disconnect", &s);
}

/// Every dialog on terminals far too small for it: drawn cut, never a panic.
#[test]
fn dialogs_survive_tiny_terminals() {
    let mut states = vec![
        fixtures::bindings_state(),
        fixtures::preview_state(3, 60, true),
        fixtures::run_state(),
        fixtures::passwords_state(),
        fixtures::password_input_state("abc"),
    ];
    let mut d = fixtures::bindings_state();
    cmd(&mut d, Command::Disconnect);
    states.push(d);
    for s in &states {
        for (w, h) in [(1, 1), (10, 3), (20, 5), (40, 10), (60, 15)] {
            let mut s = s.clone();
            cmd(&mut s, Command::Down);
            draw(&s, w, h);
        }
    }
}

#[test]
fn preview_with_held_back_ops() {
    let s = fixtures::held_preview_state();
    snap_all("preview_held_back", &s);
}

#[test]
fn errors_tab_with_kinds_and_preflight_detail() {
    let mut s = fixtures::preflight_errors_state();
    snap_all("errors_preflight", &s);
    // `s` narrows to one kind.
    cmd(&mut s, Command::CycleStatus);
    cmd(&mut s, Command::CycleStatus);
    insta::assert_snapshot!("errors_kind_filter_80x24", text(&draw(&s, 80, 24)));
}

#[test]
fn fix_previews() {
    // use-default-domain: the UPN it will get, the email kept.
    let mut s = fixtures::preflight_errors_state();
    cmd(&mut s, Command::Fix);
    snap_all("fix_use_default_domain", &s);
    // Tab offers the other fix: edit the email in place.
    cmd(&mut s, Command::NextFix);
    for _ in 0..17 {
        update(&mut s, Action::DialogInput(InputRequest::DeletePrevChar));
    }
    for c in "contoso.com".chars() {
        update(&mut s, Action::DialogInput(InputRequest::InsertChar(c)));
    }
    insta::assert_snapshot!("fix_edit_email_80x24", text(&draw(&s, 80, 24)));
    // restore / purge of the soft-deleted holder.
    let mut s = fixtures::preflight_errors_state();
    cmd(&mut s, Command::Down);
    cmd(&mut s, Command::Fix);
    insta::assert_snapshot!("fix_restore_deleted_80x24", text(&draw(&s, 80, 24)));
    cmd(&mut s, Command::NextFix);
    insta::assert_snapshot!("fix_purge_deleted_80x24", text(&draw(&s, 80, 24)));
}

#[test]
fn export_dialog_and_domain_settings() {
    let mut s = fixtures::preflight_errors_state();
    cmd(&mut s, Command::Export);
    insta::assert_snapshot!("export_dialog_80x24", text(&draw(&s, 80, 24)));
    let mut s = fixtures::preflight_errors_state();
    cmd(&mut s, Command::Domains);
    insta::assert_snapshot!("domains_loading_80x24", text(&draw(&s, 80, 24)));
    update(
        &mut s,
        Action::DomainsLoaded(Ok((
            fixtures::domains(),
            m365sync::directory::DomainSettings {
                enabled: Some(vec!["contoso.com".into(), "contoso.onmicrosoft.com".into()]),
                default: Some("contoso.com".into()),
            },
        ))),
    );
    cmd(&mut s, Command::Down);
    snap_all("domains", &s);
}

#[test]
fn errors_preflight_no_color_keeps_the_selection() {
    let mut s = fixtures::preflight_errors_state();
    s.data.no_color = true;
    let buf = draw(&s, 80, 24);
    for y in 0..24 {
        for x in 0..80 {
            let c = &buf[(x, y)];
            assert_eq!(c.fg, ratatui::style::Color::Reset, "colour at {x},{y}");
        }
    }
    let reversed = (0..24).any(|y| {
        (0..80).all(|x| {
            x > 40
                || buf[(x, y)]
                    .modifier
                    .contains(ratatui::style::Modifier::REVERSED)
        })
    });
    assert!(reversed, "the selected error row is reversed");
}

#[test]
fn errors_help_lists_the_fix_export_and_domain_keys() {
    let mut s = fixtures::preflight_errors_state();
    cmd(&mut s, Command::Help);
    let t = text(&draw(&s, 80, 24));
    for k in ["fix", "export", "domain settings", "kind filter"] {
        assert!(t.contains(k), "{k}:\n{t}");
    }
    insta::assert_snapshot!("errors_help_80x24", t);
}

#[test]
fn bindings_groups_list() {
    let mut s = fixtures::groups_state();
    cmd(&mut s, Command::Down);
    snap_all("bindings_groups", &s);
}

#[test]
fn preview_with_group_ops_and_held_back_groups() {
    let s = fixtures::groups_preview_state();
    insta::assert_snapshot!("preview_groups_80x24", text(&draw(&s, 80, 24)));
}
