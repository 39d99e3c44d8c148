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
    snap_all("import_reloading", &s);
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
    snap_all("errors_empty", &s);
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
    snap_all("dialog_help", &s);
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
    snap_all("preview_guard_typed", &s);
}

#[test]
fn progress_view() {
    let s = fixtures::run_state();
    snap_all("progress", &s);
    let mut s = s;
    cmd(&mut s, Command::Back);
    snap_all("progress_stopping", &s);
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
    snap_all("passwords_handoff", &s);
    // The outcomes of every op, after the passwords: the end of the list.
    cmd(&mut s, Command::Bottom);
    snap_all("result_outcomes", &s);
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
    snap_all("summary", &s);
}

#[test]
fn password_input() {
    snap_all("password_input", &fixtures::password_input_state("hunter2"));
    snap_all(
        "password_input_ok",
        &fixtures::password_input_state("Tr0ub4dor&3"),
    );
    // A user with no bound account: nothing is sent, the password is not kept.
    let mut s = fixtures::bindings_state();
    s.data.password_rule = m365sync::app::state::PasswordRule(fixtures::password_rule);
    while s.tabs.bindings.view.selected_row() != Some(6) {
        cmd(&mut s, Command::Down);
    }
    cmd(&mut s, Command::SetPassword);
    snap_all("password_input_unbound", &s);
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
    snap_all("fix_edit_email", &s);
    // restore / purge of the soft-deleted holder.
    let mut s = fixtures::preflight_errors_state();
    cmd(&mut s, Command::Down);
    cmd(&mut s, Command::Fix);
    snap_all("fix_restore_deleted", &s);
    cmd(&mut s, Command::NextFix);
    snap_all("fix_purge_deleted", &s);
}

#[test]
fn export_dialog_and_domain_settings() {
    let mut s = fixtures::preflight_errors_state();
    cmd(&mut s, Command::Export);
    snap_all("export_dialog", &s);
    let mut s = fixtures::preflight_errors_state();
    cmd(&mut s, Command::Domains);
    snap_all("domains_loading", &s);
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
    // Ticking the unverified domain warns; making it the default is refused, with why.
    cmd(&mut s, Command::Bottom);
    cmd(&mut s, Command::ToggleDomain);
    snap_all("domains_unverified_ticked", &s);
    cmd(&mut s, Command::DefaultDomain);
    snap_all("domains_default_refused", &s);
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
    insta::assert_snapshot!("errors_help_120x40", text(&draw(&s, 120, 40)));
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
    snap_all("preview_groups", &s);
}

// ---- Dialogs and details added with the components ----

#[test]
fn planning_and_the_self_block_question() {
    let mut s = fixtures::bindings_state();
    cmd(&mut s, Command::Preview);
    snap_all("planning", &s);
    // A plan that blocks the signed-in admin: the UPN is typed in the preview.
    let mut s = fixtures::bindings_state();
    let mut v = fixtures::plan_view(1, 1, false);
    v.self_block = Some(m365sync::sync::pipeline::SelfBlock {
        upn: "admin@contoso.onmicrosoft.com".into(),
        message: "This plan blocks sign-in for admin@contoso.onmicrosoft.com, the account \
                  m365sync is signed in with: type its UPN to go on."
            .into(),
    });
    s.data.plan_gen = 1;
    s.modal = m365sync::app::state::Modal::Planning(m365sync::app::state::Planning { gen: 1 });
    update(
        &mut s,
        Action::PlanReady {
            gen: 1,
            result: Ok(Box::new(v)),
        },
    );
    for c in "admin@con".chars() {
        update(&mut s, Action::DialogInput(InputRequest::InsertChar(c)));
    }
    snap_all("preview_self_block", &s);
}

#[test]
fn fix_of_a_group_nickname() {
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
    for _ in 0..row {
        cmd(&mut s, Command::Down);
    }
    cmd(&mut s, Command::Fix);
    snap_all("fix_sanitize_nickname", &s);
}

#[test]
fn detail_views() {
    // A Conflict: who holds its address, and Enter links it.
    let mut s = fixtures::bindings_state();
    let mut idx = m365sync::directory::DirectoryIndex::default();
    let u = s.data.rows.user(8).clone();
    idx.by_email.insert(u.email().to_lowercase(), (9, None));
    s.data.index = std::sync::Arc::new(idx);
    cmd(&mut s, Command::GoTab(1));
    for _ in 0..8 {
        cmd(&mut s, Command::Down);
    }
    cmd(&mut s, Command::Open);
    snap_all("detail_conflict", &s);
    // A directory user with a failed create.
    let mut s = fixtures::bindings_state();
    while s.tabs.bindings.view.selected_row() != Some(10) {
        cmd(&mut s, Command::Down);
    }
    cmd(&mut s, Command::Open);
    snap_all("detail_directory_user", &s);
    // A group and its members.
    let mut s = fixtures::groups_state();
    cmd(&mut s, Command::Open);
    snap_all("detail_group", &s);
    // An error, whole.
    let mut s = fixtures::preflight_errors_state();
    cmd(&mut s, Command::Open);
    snap_all("detail_error", &s);
}

#[test]
fn questions_before_losing_something() {
    let mut s = fixtures::run_state();
    cmd(&mut s, Command::Quit);
    snap_all("question_quit_during_apply", &s);
    let mut s = fixtures::passwords_state();
    cmd(&mut s, Command::Back);
    snap_all("question_close_passwords", &s);
}

/// Names and emails are hostile input: no escape sequence, bell, NUL, bidi override or
/// zero-width character reaches a cell, and the columns after such a name stay aligned.
#[test]
fn hostile_names_never_reach_the_terminal_and_columns_stay_aligned() {
    use m365sync::ui::text::{treat, Treat};
    let mut states = vec![fixtures::hostile_state()];
    let mut b = fixtures::hostile_state();
    cmd(&mut b, Command::GoTab(2));
    states.push(b.clone());
    cmd(&mut b, Command::Open);
    states.push(b);
    let mut e = fixtures::hostile_state();
    cmd(&mut e, Command::GoTab(3));
    states.push(e.clone());
    cmd(&mut e, Command::Open);
    states.push(e);
    for s in &states {
        for (w, h) in SIZES {
            let buf = draw(s, w, h);
            for y in 0..h {
                for x in 0..w {
                    let sym = buf[(x, y)].symbol();
                    assert!(
                        sym.chars().all(|c| treat(c) == Treat::Keep),
                        "{sym:?} at {x},{y} ({w}x{h})"
                    );
                }
            }
        }
    }
    // The Import list: the Enabled column (yes/no) is at the same column on every row.
    let buf = draw(&states[0], 80, 24);
    let col: Vec<u16> = (4..23)
        .filter_map(|y| {
            let line: String = (0..80).map(|x| buf[(x, y)].symbol().to_string()).collect();
            let at = line.rfind(" yes").or_else(|| line.rfind(" no"))?;
            Some(line[..at].chars().count() as u16)
        })
        .collect();
    assert!(col.len() > 10, "{col:?}");
    assert!(col.windows(2).all(|w| w[0] == w[1]), "misaligned: {col:?}");
    snap_all("hostile_import", &states[0]);
    snap_all("hostile_bindings", &states[1]);
    snap_all("hostile_errors", &states[3]);
}

/// The Bindings tab says why each user is bound: direct, via a group, both, several groups
/// elided to the column.
#[test]
fn bindings_why_bound() {
    let s = fixtures::bindings_why_state();
    for (w, h) in SIZES {
        let t = text(&draw(&s, w, h));
        assert!(t.contains("Why bound"), "{t}");
        assert!(t.contains("direct, via Fi"), "{t}");
        assert!(t.contains("via Field Team"), "{t}");
    }
    snap_all("bindings_why", &s);
}

/// The preview groups the changes by cause, with counts, and shows the attribute diff.
#[test]
fn preview_grouped_by_cause() {
    let s = fixtures::preview_by_cause_state();
    let t = text(&draw(&s, 120, 40));
    for heading in [
        "Bound directly: 1 change",
        "Through group Field Team (bound now): 5 changes",
        "Left group Sales (EU): 2 changes",
        "Attribute changes: 1 change",
        "Manager changes: 1 change",
        "jobTitle: \"Engineer\" -> \"Field Lead\"",
    ] {
        assert!(t.contains(heading), "{heading}: {t}");
    }
    snap_all("preview_by_cause", &s);
}
