//! `update(&mut AppState, Action) -> Vec<Effect>`: the only place state changes. Pure: no
//! awaiting, no network, no disk, no clock (time comes in with `Action::Tick`).

use crossterm::event::{Event, KeyEvent};

use crate::directory::{BindingState, ImportOutcome, ImportStatus};
use crate::graph::User;
use crate::keymap::{is_press, Command, Context, Key};

use super::action::{Action, DirectorySnapshot};
use super::effect::Effect;
use super::explain::ErrorEntry;
use super::state::*;

/// Users per Graph page (Graph's maximum for /users).
pub const PAGE_SIZE: u32 = 999;

/// The effects to run at start: resume a cached session (or nothing when settings are missing).
pub fn init(s: &mut AppState) -> Vec<Effect> {
    s.dirty = true;
    match s.phase {
        Phase::Config { .. } => Vec::new(),
        _ => {
            s.phase = Phase::SignIn(SignIn::Resuming);
            vec![Effect::ResumeSession { gen: s.signin_gen }]
        }
    }
}

pub fn update(s: &mut AppState, action: Action) -> Vec<Effect> {
    let mut fx = Vec::new();
    if step(s, action, &mut fx) {
        s.dirty = true;
    }
    fx
}

/// Applies one action; true when something on screen may have changed.
fn step(s: &mut AppState, action: Action, fx: &mut Vec<Effect>) -> bool {
    match action {
        Action::Command(c) => command(s, c, fx),
        Action::FilterInput(req) => {
            let Some(v) = filter_view(s) else {
                return false;
            };
            v.editing = true;
            v.input.handle(req);
            apply_query(s);
            true
        }
        Action::Tick { now } => tick(s, now, fx),
        Action::Resize { width, height } => {
            s.width = width;
            s.height = height;
            follow_all(s);
            true
        }
        Action::SessionResumed { gen, result } => {
            if gen != s.signin_gen {
                return false;
            }
            match result {
                Ok(Some(info)) => signed_in(s, info, fx),
                Ok(None) => {
                    s.phase = Phase::SignIn(SignIn::Requesting);
                    fx.push(Effect::StartDeviceCode { gen });
                }
                Err(e) => {
                    s.signin_note = Some(format!(
                        "The cached sign-in could not be refreshed ({e}); sign in again."
                    ));
                    push_error(s, ErrorEntry::from_auth("refresh cached sign-in", &e));
                    s.phase = Phase::SignIn(SignIn::Requesting);
                    fx.push(Effect::StartDeviceCode { gen });
                }
            }
            true
        }
        Action::DeviceCode { gen, result } => {
            if gen != s.signin_gen || !matches!(s.phase, Phase::SignIn(_)) {
                return false;
            }
            match result {
                Ok(start) => {
                    let expires_at = s.now + start.expires_in.as_secs() as i64;
                    fx.push(Effect::PollDeviceCode {
                        gen,
                        start: start.clone(),
                    });
                    s.phase = Phase::SignIn(SignIn::Waiting { start, expires_at });
                }
                Err(e) => {
                    push_error(s, ErrorEntry::from_auth("device-code sign-in", &e));
                    s.phase = Phase::SignIn(SignIn::Failed(e));
                }
            }
            true
        }
        Action::SignedIn { gen, result } => {
            if gen != s.signin_gen || !matches!(s.phase, Phase::SignIn(_)) {
                return false;
            }
            match result {
                Ok(info) => signed_in(s, info, fx),
                Err(e) => {
                    push_error(s, ErrorEntry::from_auth("device-code sign-in", &e));
                    s.phase = Phase::SignIn(SignIn::Failed(e));
                }
            }
            true
        }
        Action::Session(info) => {
            let changed = s.session.as_ref() != Some(&info);
            s.session = Some(info);
            changed
        }
        Action::DirectoryLoaded(result) => {
            directory_loaded(s, result, fx);
            true
        }
        Action::ImportDone(result) => {
            import_done(s, result, fx);
            true
        }
        Action::UsersPage {
            gen,
            index_version,
            users,
            statuses,
        } => {
            if gen != s.load_gen {
                return false;
            }
            let first = apply_page(s, users, &statuses);
            if let Load::Loading { pages } = &mut s.load {
                *pages += 1;
            } else {
                s.load = Load::Loading { pages: 1 };
            }
            if index_version != s.index_version {
                // Classified with an index older than ours: classify that page again.
                fx.push(Effect::Reclassify {
                    gen,
                    index_version: s.index_version,
                    first_row: first,
                    pages: vec![s.rows.pages.last().expect("page just pushed").clone()],
                    index: s.index.clone(),
                });
            }
            true
        }
        Action::UsersDone { gen } => {
            if gen != s.load_gen {
                return false;
            }
            s.load = Load::Done;
            s.expected = Some(s.rows.len());
            true
        }
        Action::UsersFailed { gen, error } => {
            if gen != s.load_gen {
                return false;
            }
            s.load = Load::Failed {
                message: error.to_string(),
            };
            push_error(s, ErrorEntry::from_graph("list tenant users", &error));
            true
        }
        Action::Reclassified {
            gen,
            index_version,
            first_row,
            statuses,
        } => {
            if gen != s.load_gen || index_version != s.index_version {
                return false;
            }
            let mut changed = false;
            let end = (first_row as usize + statuses.len()).min(s.rows.len());
            for (row, st) in (first_row as usize..end).zip(statuses) {
                changed |= s.rows.set_status(row, st);
            }
            if changed && s.import.status.is_some() {
                rescan_import(s);
            }
            changed
        }
    }
}

fn signed_in(s: &mut AppState, info: SessionInfo, fx: &mut Vec<Effect>) {
    s.session = Some(info);
    s.phase = Phase::Main;
    s.signin_note = None;
    s.load = Load::Waiting;
    fx.push(Effect::LoadDirectory);
}

fn tick(s: &mut AppState, now: i64, fx: &mut Vec<Effect>) -> bool {
    let before = s.now;
    s.now = now;
    match &s.phase {
        Phase::SignIn(SignIn::Waiting { .. }) => before != now,
        Phase::Main => {
            if now / 30 != before / 30 {
                fx.push(Effect::RefreshSessionInfo);
            }
            // The status bar shows the token's lifetime in minutes.
            match &s.session {
                Some(si) => {
                    (si.expires_at - before).div_euclid(60) != (si.expires_at - now).div_euclid(60)
                }
                None => false,
            }
        }
        _ => false,
    }
}

fn command(s: &mut AppState, c: Command, fx: &mut Vec<Effect>) -> bool {
    if c == Command::Quit {
        s.quit = true;
        return true;
    }
    if c == Command::Help {
        s.help = !s.help;
        return true;
    }
    if s.help {
        // Any other key just closes the help.
        s.help = false;
        return true;
    }
    match &s.phase {
        Phase::Config { .. } => return false,
        Phase::SignIn(st) => {
            if c == Command::RetrySignIn && !matches!(st, SignIn::Resuming) {
                s.signin_gen += 1;
                s.phase = Phase::SignIn(SignIn::Requesting);
                fx.push(Effect::StartDeviceCode { gen: s.signin_gen });
                return true;
            }
            return false;
        }
        Phase::Main => {}
    }
    let rows = list_rows(s);
    match c {
        Command::NextTab => s.tab = s.tab.next(),
        Command::PrevTab => s.tab = s.tab.prev(),
        Command::TabImport => s.tab = Tab::Import,
        Command::TabBindings => s.tab = Tab::Bindings,
        Command::TabErrors => s.tab = Tab::Errors,
        Command::Down => nav(current_view(s), rows, |sel, _| sel.saturating_add(1)),
        Command::Up => nav(current_view(s), rows, |sel, _| sel.saturating_sub(1)),
        Command::Top => nav(current_view(s), rows, |_, _| 0),
        Command::Bottom => nav(current_view(s), rows, |_, len| len),
        Command::PageDown => nav(current_view(s), rows, |sel, _| sel + rows.max(1)),
        Command::PageUp => nav(current_view(s), rows, |sel, _| {
            sel.saturating_sub(rows.max(1))
        }),
        Command::HalfDown => nav(current_view(s), rows, |sel, _| sel + (rows / 2).max(1)),
        Command::HalfUp => nav(current_view(s), rows, |sel, _| {
            sel.saturating_sub((rows / 2).max(1))
        }),
        Command::Filter => match filter_view(s) {
            Some(v) => v.editing = true,
            None => return false,
        },
        Command::FilterKeep => match filter_view(s) {
            Some(v) => v.editing = false,
            None => return false,
        },
        Command::FilterClear => {
            let Some(v) = filter_view(s) else {
                return false;
            };
            v.editing = false;
            v.input.reset();
            apply_query(s);
        }
        Command::Back => {
            if let Some(v) = filter_view(s) {
                if !v.input.value().is_empty() {
                    v.input.reset();
                    v.editing = false;
                    apply_query(s);
                    return true;
                }
            }
            if matches!(s.load, Load::Loading { .. } | Load::Waiting) {
                s.load_gen += 1;
                s.load = Load::Cancelled;
                s.message = Some(format!(
                    "Stopped loading at {} users; press r to load again.",
                    fmt_count(s.rows.len())
                ));
                fx.push(Effect::CancelLoad);
            } else {
                return false;
            }
        }
        Command::CycleStatus => match s.tab {
            Tab::Import => {
                s.import.status = match s.import.status {
                    None => Some(ImportStatus::New),
                    Some(ImportStatus::New) => Some(ImportStatus::Imported),
                    Some(ImportStatus::Imported) => Some(ImportStatus::Conflict),
                    Some(ImportStatus::Conflict) => Some(ImportStatus::Failed),
                    Some(ImportStatus::Failed) => None,
                };
                rescan_import(s);
            }
            Tab::Bindings => {
                s.bindings.state = match s.bindings.state {
                    None => Some(BindingState::Bound),
                    Some(BindingState::Bound) => Some(BindingState::Unbound),
                    Some(BindingState::Unbound) => Some(BindingState::Blocked),
                    Some(BindingState::Blocked) => None,
                };
                rescan_bindings(s);
            }
            Tab::Errors => return false,
        },
        Command::ToggleMark => {
            if s.tab != Tab::Import {
                return false;
            }
            let Some(row) = s.import.view.selected_row() else {
                return false;
            };
            s.import.marks.toggle(row);
            nav(&mut s.import.view, rows, |sel, _| sel + 1);
        }
        Command::MarkAll => {
            if s.tab != Tab::Import {
                return false;
            }
            for &r in &s.import.view.shown {
                s.import.marks.insert(r);
            }
        }
        Command::UnmarkAll => {
            if s.tab != Tab::Import {
                return false;
            }
            s.import.marks.clear();
        }
        Command::Import => start_import(s, fx),
        Command::Refresh => refresh(s, fx),
        Command::RetrySignIn | Command::Quit | Command::Help => return false,
    }
    true
}

fn start_import(s: &mut AppState, fx: &mut Vec<Effect>) {
    if s.tab != Tab::Import {
        return;
    }
    if s.importing.is_some() {
        s.message = Some("An import is already running; wait for it to finish.".into());
        return;
    }
    let users: Vec<User> = if s.import.marks.is_empty() {
        match s.import.view.selected_row() {
            Some(r) => vec![s.rows.user(r).clone()],
            None => Vec::new(),
        }
    } else {
        s.import
            .marks
            .iter()
            .filter(|&r| (r as usize) < s.rows.len())
            .map(|r| s.rows.user(r).clone())
            .collect()
    };
    if users.is_empty() {
        s.message = Some("Nothing to import: no row is selected.".into());
        return;
    }
    s.importing = Some(users.len());
    s.message = Some(format!("Importing {} users…", fmt_count(users.len())));
    fx.push(Effect::Import { users });
}

fn import_done(s: &mut AppState, result: Result<Vec<ImportOutcome>, String>, fx: &mut Vec<Effect>) {
    s.importing = None;
    match result {
        Ok(outcomes) => {
            let (mut imported, mut already, mut failed) = (0usize, 0usize, 0usize);
            for o in &outcomes {
                match o {
                    ImportOutcome::Imported { .. } => imported += 1,
                    ImportOutcome::AlreadyImported { .. } => already += 1,
                    ImportOutcome::Failed(f) => {
                        failed += 1;
                        push_error(s, ErrorEntry::from_import(f));
                    }
                }
            }
            let mut msg = format!("Imported {}", fmt_count(imported));
            if already > 0 {
                msg.push_str(&format!(", {} already", fmt_count(already)));
            }
            if failed > 0 {
                msg.push_str(&format!(", {} failed (tab 3)", fmt_count(failed)));
            }
            s.message = Some(msg);
            s.import.marks.clear();
        }
        Err(e) => {
            push_error(s, ErrorEntry::from_directory("import", &e));
            s.message = Some("Import failed (tab 3)".into());
        }
    }
    // The directory changed: reload it, then reclassify.
    fx.push(Effect::LoadDirectory);
}

fn directory_loaded(
    s: &mut AppState,
    result: Result<DirectorySnapshot, String>,
    fx: &mut Vec<Effect>,
) {
    match result {
        Ok(snap) => {
            let d = &mut s.directory;
            d.hay.clear();
            d.counts = [0; 3];
            for u in &snap.users {
                d.hay.push(&[
                    &u.display_name,
                    &u.email,
                    u.tenant_user_id.as_deref().unwrap_or(""),
                ]);
                d.counts[binding_slot(u.binding)] += 1;
            }
            d.users = snap.users;
            for f in &snap.failures {
                push_error(s, ErrorEntry::from_import(f));
            }
            rescan_bindings(s);
            s.index = snap.index;
            s.index_version += 1;
            s.directory_loaded = true;
            if !s.rows.is_empty() {
                fx.push(Effect::Reclassify {
                    gen: s.load_gen,
                    index_version: s.index_version,
                    first_row: 0,
                    pages: s.rows.pages.clone(),
                    index: s.index.clone(),
                });
            }
        }
        Err(e) => push_error(s, ErrorEntry::from_directory("load the directory", &e)),
    }
    if s.load == Load::Waiting {
        start_load(s, fx);
    }
}

fn refresh(s: &mut AppState, fx: &mut Vec<Effect>) {
    if !s.directory_loaded {
        s.load = Load::Waiting;
        fx.push(Effect::LoadDirectory);
        return;
    }
    start_load(s, fx);
}

/// A new load: latest wins, pages of older generations are dropped.
fn start_load(s: &mut AppState, fx: &mut Vec<Effect>) {
    s.load_gen += 1;
    s.rows.clear();
    s.import.marks.clear();
    let v = &mut s.import.view;
    v.shown.clear();
    v.selected = 0;
    v.offset = 0;
    s.load = Load::Loading { pages: 0 };
    fx.push(Effect::LoadUsers {
        gen: s.load_gen,
        page_size: PAGE_SIZE,
        index: s.index.clone(),
        index_version: s.index_version,
    });
}

/// Appends one page of classified tenant users: O(page).
pub(crate) fn apply_page(s: &mut AppState, users: Vec<User>, statuses: &[ImportStatus]) -> u32 {
    let first = s.rows.push_page(users, statuses);
    let q = &s.import.view.query;
    let status = s.import.status;
    for r in first as usize..s.rows.len() {
        if import_matches(&s.rows, r, q, status) {
            s.import.view.shown.push(r as u32);
        }
    }
    first
}

fn import_matches(rows: &TenantRows, r: usize, q: &str, status: Option<ImportStatus>) -> bool {
    status.is_none_or(|st| rows.status[r] == st) && (q.is_empty() || rows.hay.get(r).contains(q))
}

fn push_error(s: &mut AppState, e: ErrorEntry) {
    if let Some(k) = &e.key {
        if s.errors.iter().any(|x| x.key.as_ref() == Some(k)) {
            return;
        }
    }
    let shown = error_matches(&e, &s.errors_tab.view.query);
    s.errors.push(e);
    if shown {
        s.errors_tab.view.shown.push((s.errors.len() - 1) as u32);
    }
}

/// The view the `/` filter applies to on this tab.
fn filter_view(s: &mut AppState) -> Option<&mut ListView> {
    match s.tab {
        Tab::Import => Some(&mut s.import.view),
        Tab::Bindings => Some(&mut s.bindings.view),
        Tab::Errors => Some(&mut s.errors_tab.view),
    }
}

fn current_view(s: &mut AppState) -> &mut ListView {
    match s.tab {
        Tab::Import => &mut s.import.view,
        Tab::Bindings => &mut s.bindings.view,
        Tab::Errors => &mut s.errors_tab.view,
    }
}

/// Rows of the current tab's list on screen.
pub fn list_rows(s: &AppState) -> usize {
    crate::ui::list_rows(s.tab, s.width, s.height)
}

fn nav(v: &mut ListView, rows: usize, to: impl FnOnce(usize, usize) -> usize) {
    let len = v.shown.len();
    if len == 0 {
        v.selected = 0;
        v.offset = 0;
        return;
    }
    v.selected = to(v.selected, len).min(len - 1);
    follow(v, rows);
}

/// Keeps the selection on screen and the screen full.
fn follow(v: &mut ListView, rows: usize) {
    let len = v.shown.len();
    let rows = rows.max(1);
    if v.selected >= len {
        v.selected = len.saturating_sub(1);
    }
    if v.selected < v.offset {
        v.offset = v.selected;
    } else if v.selected >= v.offset + rows {
        v.offset = v.selected + 1 - rows;
    }
    v.offset = v.offset.min(len.saturating_sub(rows));
}

fn follow_all(s: &mut AppState) {
    for tab in Tab::ALL {
        let rows = crate::ui::list_rows(tab, s.width, s.height);
        let v = match tab {
            Tab::Import => &mut s.import.view,
            Tab::Bindings => &mut s.bindings.view,
            Tab::Errors => &mut s.errors_tab.view,
        };
        follow(v, rows);
    }
}

/// After `shown` changed: keep the same row selected if it is still shown, else start at the
/// top (the first match, as in fzf or k9s).
fn reselect(v: &mut ListView, keep: Option<u32>, rows: usize) {
    v.selected = keep
        .and_then(|k| v.shown.binary_search(&k).ok())
        .unwrap_or(0);
    if v.selected < v.offset || v.selected >= v.offset + rows.max(1) {
        v.offset = v.selected.saturating_sub(rows.max(1) / 2);
    }
    follow(v, rows);
}

/// The filter text changed: narrow the shown rows when the query grew, else rescan.
fn apply_query(s: &mut AppState) {
    let rows = list_rows(s);
    match s.tab {
        Tab::Import => {
            let q = s.import.view.input.value().to_lowercase();
            let v = &mut s.import.view;
            if q == v.query {
                return;
            }
            let keep = v.selected_row();
            if q.contains(v.query.as_str()) {
                // Every row matching the longer query matched the shorter one: O(shown).
                let hay = &s.rows.hay;
                v.shown
                    .retain(|&r| hay.get(r as usize).contains(q.as_str()));
                v.query = q;
                reselect(v, keep, rows);
            } else {
                v.query = q;
                rescan_import(s);
            }
        }
        Tab::Bindings => {
            let q = s.bindings.view.input.value().to_lowercase();
            if q == s.bindings.view.query {
                return;
            }
            s.bindings.view.query = q;
            rescan_bindings(s);
        }
        Tab::Errors => {
            let q = s.errors_tab.view.input.value().to_lowercase();
            if q == s.errors_tab.view.query {
                return;
            }
            s.errors_tab.view.query = q;
            rescan_errors(s);
        }
    }
}

/// Errors are few (one per failure, not per user): a rescan is cheap.
fn error_matches(e: &ErrorEntry, q: &str) -> bool {
    q.is_empty()
        || [&e.code, &e.subject, &e.message, e.source.label()]
            .iter()
            .any(|f| f.to_lowercase().contains(q))
}

fn rescan_errors(s: &mut AppState) {
    let rows = crate::ui::list_rows(Tab::Errors, s.width, s.height);
    let v = &mut s.errors_tab.view;
    let keep = v.selected_row();
    v.shown = (0..s.errors.len())
        .filter(|&r| error_matches(&s.errors[r], &v.query))
        .map(|r| r as u32)
        .collect();
    reselect(v, keep, rows);
}

fn rescan_import(s: &mut AppState) {
    let rows = crate::ui::list_rows(Tab::Import, s.width, s.height);
    let v = &mut s.import.view;
    let keep = v.selected_row();
    let (q, st) = (v.query.as_str(), s.import.status);
    v.shown = (0..s.rows.len())
        .filter(|&r| import_matches(&s.rows, r, q, st))
        .map(|r| r as u32)
        .collect();
    reselect(v, keep, rows);
}

fn rescan_bindings(s: &mut AppState) {
    let rows = crate::ui::list_rows(Tab::Bindings, s.width, s.height);
    let v = &mut s.bindings.view;
    let keep = v.selected_row();
    let d = &s.directory;
    let (q, st) = (v.query.as_str(), s.bindings.state);
    v.shown = (0..d.users.len())
        .filter(|&r| {
            st.is_none_or(|b| d.users[r].binding == b) && (q.is_empty() || d.hay.get(r).contains(q))
        })
        .map(|r| r as u32)
        .collect();
    reselect(v, keep, rows);
}

/// The action a key press asks for in this state, or None. Pure: the runtime calls it for
/// each terminal key event, tests call it directly.
pub fn key_action(s: &AppState, ev: &KeyEvent) -> Option<Action> {
    if !is_press(ev) {
        return None;
    }
    let key = Key::from_event(ev);
    let km = &s.keymap;
    if key
        == (Key {
            code: crossterm::event::KeyCode::Char('c'),
            ctrl: true,
            alt: false,
        })
    {
        return Some(Action::Command(Command::Quit));
    }
    if s.help {
        // Any key closes the help; only Ctrl-c quits from it.
        return Some(Action::Command(Command::Help));
    }
    let cmd = match &s.phase {
        Phase::Config { .. } => km.lookup(&[Context::Global], key),
        Phase::SignIn(_) => km.lookup(&[Context::SignIn, Context::Global], key),
        Phase::Main => {
            let editing = match s.tab {
                Tab::Import => s.import.view.editing,
                Tab::Bindings => s.bindings.view.editing,
                Tab::Errors => s.errors_tab.view.editing,
            };
            if editing {
                if let Some(c) = km.lookup(&[Context::Filter], key) {
                    return Some(Action::Command(c));
                }
                return tui_input::backend::crossterm::to_input_request(&Event::Key(*ev))
                    .map(Action::FilterInput);
            }
            km.lookup(&contexts(s), key)
        }
    };
    cmd.map(Action::Command)
}

/// Keymap contexts in force, most specific first (also what the hint bar shows).
pub fn contexts(s: &AppState) -> Vec<Context> {
    match &s.phase {
        Phase::Config { .. } => vec![Context::Global],
        Phase::SignIn(_) => vec![Context::SignIn, Context::Global],
        Phase::Main => {
            let editing = match s.tab {
                Tab::Import => s.import.view.editing,
                Tab::Bindings => s.bindings.view.editing,
                Tab::Errors => s.errors_tab.view.editing,
            };
            if editing {
                return vec![Context::Filter];
            }
            let tab = match s.tab {
                Tab::Import => Context::Import,
                Tab::Bindings => Context::Bindings,
                Tab::Errors => Context::Errors,
            };
            vec![tab, Context::List, Context::Global]
        }
    }
}

/// 12345 -> "12,345".
pub fn fmt_count(n: usize) -> String {
    let d = n.to_string();
    let mut out = String::with_capacity(d.len() + d.len() / 3);
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
