//! `update(&mut AppState, Action) -> Vec<Effect>`: the only place state changes. Pure: no
//! awaiting, no network, no disk, no clock (time comes in with `Action::Tick`).

use crossterm::event::{Event, KeyEvent};

use crate::directory::{ImportOutcome, ImportStatus};
use crate::failure::Failure;
use crate::graph::User;
use crate::keymap::{is_press, Command, Context, Key};
use crate::sync::apply::ApplySummary;

use super::action::{Action, ApplyNews, DirectorySnapshot};
use super::effect::{Effect, ExportFormat, Fix, Secret};
use super::explain::{ErrorEntry, ErrorSource};
use super::state::*;
use crate::diagnose::FixAction;

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
        Action::DialogInput(req) => dialog_input(s, req),
        Action::WantSaved(result) => {
            if let Err(e) = result {
                push_error(s, ErrorEntry::from_failure(&e));
                s.message = Some("Could not record the bindings (tab 3).".into());
            }
            // The directory is the truth: read it again (a failed save undoes the toggle), once
            // every toggle sent is saved.
            s.wants_in_flight = s.wants_in_flight.saturating_sub(1);
            if s.wants_in_flight == 0 {
                fx.push(Effect::LoadDirectory);
            }
            true
        }
        Action::PlanReady { gen, result } => plan_ready(s, gen, result),
        Action::FixDone { key, result } => fix_done(s, key, result, fx),
        Action::Exported(result) => {
            match result {
                Ok(path) => s.message = Some(format!("Errors exported: {path}")),
                Err(e) => {
                    push_error(s, ErrorEntry::from_failure(&e));
                    s.message = Some("Exporting the errors failed (tab 3).".into());
                }
            }
            true
        }
        Action::DomainsLoaded(result) => {
            match result {
                Ok((domains, settings)) => {
                    s.domain_settings = settings.clone();
                    if let Modal::Domains(v) = &mut s.modal {
                        v.domains = Some(domains);
                        v.settings = settings;
                        v.error = None;
                    }
                }
                Err(e) => {
                    if let Modal::Domains(v) = &mut s.modal {
                        v.error = Some(e.to_string());
                    }
                    push_error(s, ErrorEntry::from_failure(&e));
                }
            }
            true
        }
        Action::DomainsSaved(result) => {
            if let Err(e) = result {
                push_error(s, ErrorEntry::from_failure(&e));
                s.message = Some("Saving the domain settings failed (tab 3).".into());
            } else {
                s.message = Some("Domain settings saved; re-checking the plan with them…".into());
                // Preflight reads the settings: findings they clear (or add) show at once.
                if !matches!(s.modal, Modal::Planning { .. }) {
                    start_check(s, fx);
                }
            }
            true
        }
        Action::Apply(news) => apply_news(s, news),
        Action::ApplyFinished(result) => {
            apply_finished(s, result, fx);
            true
        }
        Action::JournalChecked(result) => journal_checked(s, result, fx),
        Action::PasswordSet { email, result } => {
            match result {
                Ok(()) => s.message = Some(format!("Password of {email} set.")),
                Err(e) => {
                    push_error(s, ErrorEntry::from_failure(&e));
                    s.message = Some(format!("Setting the password of {email} failed (tab 3)."));
                }
            }
            fx.push(Effect::LoadDirectory);
            true
        }
        Action::HandoffWritten(result) => {
            match result {
                Ok(path) => {
                    s.message = Some(format!("Hand-off CSV written: {path}"));
                    if let Modal::Run(run) = &mut s.modal {
                        run.handoff = Some(path);
                    }
                }
                Err(e) => {
                    push_error(s, ErrorEntry::from_failure(&e));
                    s.message = Some("Writing the hand-off CSV failed (tab 3).".into());
                }
            }
            true
        }
        Action::Disconnected(result) => {
            disconnected(s, result, fx);
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
    // What a killed run left in the journal is checked against the tenant (nothing is sent:
    // the next plan makes what is still wanted). Plans wait for it.
    s.checking_journal = true;
    fx.push(Effect::CheckJournal);
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
    if s.modal.is_open() {
        return dialog_command(s, c, fx);
    }
    let rows = list_rows(s);
    if s.tab == Tab::Bindings && s.bindings.groups && group_refuses(c) {
        // Group rows are toggled one at a time; passwords are users'.
        return false;
    }
    match c {
        Command::ToggleGroups => {
            if s.tab != Tab::Bindings {
                return false;
            }
            let t = &mut s.bindings;
            t.groups = !t.groups;
            t.marks.clear();
            t.anchor = None;
            t.view.selected = 0;
            t.view.offset = 0;
            rescan_bindings(s);
        }
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
            if s.tab == Tab::Bindings && !s.bindings.marks.is_empty() {
                s.bindings.marks.clear();
                s.bindings.anchor = None;
                return true;
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
                s.bindings.state = StateFilter::cycle(s.bindings.state);
                rescan_bindings(s);
            }
            Tab::Errors => {
                let kinds: Vec<String> = ErrorsTab::kinds(&s.errors)
                    .into_iter()
                    .map(|(k, _)| k.to_string())
                    .collect();
                let next = match &s.errors_tab.kind {
                    None => kinds.first().cloned(),
                    Some(k) => kinds
                        .iter()
                        .position(|x| x == k)
                        .and_then(|i| kinds.get(i + 1).cloned()),
                };
                s.errors_tab.kind = next;
                rescan_errors(s);
            }
        },
        Command::Fix => return open_fix(s, None),
        Command::Export => {
            if s.tab != Tab::Errors || s.errors_tab.view.shown.is_empty() {
                return false;
            }
            s.modal = Modal::Export;
        }
        Command::Domains => {
            s.modal = Modal::Domains(Box::default());
            fx.push(Effect::LoadDomains {
                tenant: s.tenant.clone(),
            });
        }
        Command::NextFix
        | Command::ExportCsv
        | Command::ExportJson
        | Command::ToggleDomain
        | Command::DefaultDomain => return false,
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
        Command::MarkAll => match s.tab {
            Tab::Import => {
                for &r in &s.import.view.shown {
                    s.import.marks.insert(r);
                }
            }
            Tab::Bindings => {
                for &r in &s.bindings.view.shown {
                    s.bindings.marks.insert(r);
                }
            }
            Tab::Errors => return false,
        },
        Command::UnmarkAll => match s.tab {
            Tab::Import => s.import.marks.clear(),
            Tab::Bindings => {
                s.bindings.marks.clear();
                s.bindings.anchor = None;
            }
            Tab::Errors => return false,
        },
        Command::ToggleWant | Command::Bind | Command::Unbind => {
            if s.tab != Tab::Bindings {
                return false;
            }
            let want = match c {
                Command::Bind => Some(true),
                Command::Unbind => Some(false),
                _ => None,
            };
            set_want(s, want, fx);
        }
        Command::MarkRow => {
            if s.tab != Tab::Bindings {
                return false;
            }
            let t = &mut s.bindings;
            let Some(row) = t.view.selected_row() else {
                return false;
            };
            t.marks.toggle(row);
            if t.marks.contains(row) {
                t.anchor = Some(row);
            }
            nav(&mut t.view, rows, |sel, _| sel + 1);
        }
        Command::MarkDown | Command::MarkUp => {
            if s.tab != Tab::Bindings {
                return false;
            }
            let t = &mut s.bindings;
            let Some(row) = t.view.selected_row() else {
                return false;
            };
            t.marks.insert(row);
            if c == Command::MarkDown {
                nav(&mut t.view, rows, |sel, _| sel + 1);
            } else {
                nav(&mut t.view, rows, |sel, _| sel.saturating_sub(1));
            }
            if let Some(next) = t.view.selected_row() {
                t.marks.insert(next);
                t.anchor = Some(next);
            }
        }
        Command::MarkRange => {
            if s.tab != Tab::Bindings {
                return false;
            }
            let t = &mut s.bindings;
            let Some(row) = t.view.selected_row() else {
                return false;
            };
            let from = match t.anchor {
                // The anchor may be filtered out: start where it would be.
                Some(a) => t.view.shown.binary_search(&a).unwrap_or_else(|p| p),
                None => t.view.selected,
            };
            let (lo, hi) = if from <= t.view.selected {
                (from, t.view.selected)
            } else {
                (t.view.selected, from.min(t.view.shown.len() - 1))
            };
            for &r in &t.view.shown[lo..=hi] {
                t.marks.insert(r);
            }
            t.anchor = Some(row);
        }
        Command::InvertMarks => {
            if s.tab != Tab::Bindings {
                return false;
            }
            let t = &mut s.bindings;
            for &r in &t.view.shown {
                t.marks.toggle(r);
            }
            t.anchor = None;
        }
        Command::Preview => {
            if s.tab != Tab::Bindings {
                return false;
            }
            start_plan(s, fx);
        }
        Command::SetPassword => {
            if s.tab != Tab::Bindings {
                return false;
            }
            let Some(row) = s.bindings.view.selected_row() else {
                return false;
            };
            let u = &s.directory.users[row as usize];
            let mut p = PasswordInput {
                directory_id: u.id,
                email: u.email.clone(),
                ..PasswordInput::default()
            };
            p.problem = (s.password_rule.0)("").err().map(|e| e.to_string());
            s.modal = Modal::Password(p);
        }
        Command::Disconnect => {
            if s.tab != Tab::Bindings {
                return false;
            }
            if s.applying {
                s.message = Some("An apply is running: wait for it to end first.".into());
            } else {
                s.modal = Modal::Disconnect;
            }
        }
        Command::Confirm | Command::Submit | Command::CopyPassword | Command::WriteHandoff => {
            return false
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

fn import_done(
    s: &mut AppState,
    result: Result<Vec<ImportOutcome>, Failure>,
    fx: &mut Vec<Effect>,
) {
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
            push_error(s, ErrorEntry::from_failure(&e));
            s.message = Some("Import failed (tab 3)".into());
        }
    }
    // The directory changed: reload it, then reclassify.
    fx.push(Effect::LoadDirectory);
}

fn directory_loaded(
    s: &mut AppState,
    result: Result<DirectorySnapshot, Failure>,
    fx: &mut Vec<Effect>,
) {
    match result {
        Ok(snap) => {
            // Marks are rows: keep them on the same users if rows moved.
            let marked: Vec<i64> = s
                .bindings
                .marks
                .iter()
                .filter_map(|r| s.directory.users.get(r as usize).map(|u| u.id))
                .collect();
            let anchor = s
                .bindings
                .anchor
                .and_then(|r| s.directory.users.get(r as usize).map(|u| u.id));
            let d = &mut s.directory;
            d.hay.clear();
            d.counts = [0; 3];
            d.pending = [0; 3];
            for u in &snap.users {
                d.hay.push(&[
                    &u.display_name,
                    &u.email,
                    u.tenant_user_id.as_deref().unwrap_or(""),
                ]);
                d.counts[binding_slot(u.binding)] += 1;
                if let Some(p) = PendingOp::of(u) {
                    d.pending[p.slot()] += 1;
                }
            }
            d.users = snap.users;
            d.groups = snap.groups;
            if !marked.is_empty() || anchor.is_some() {
                let row_of: std::collections::HashMap<i64, u32> = d
                    .users
                    .iter()
                    .enumerate()
                    .map(|(r, u)| (u.id, r as u32))
                    .collect();
                s.bindings.marks.clear();
                for id in marked {
                    if let Some(&r) = row_of.get(&id) {
                        s.bindings.marks.insert(r);
                    }
                }
                s.bindings.anchor = anchor.and_then(|id| row_of.get(&id).copied());
            }
            for f in &snap.failures {
                push_error(s, ErrorEntry::from_import(f));
            }
            for (op, d) in &snap.journal_failures {
                push_error(s, ErrorEntry::from_op_diagnosis(op, d.clone()));
            }
            // Passwords never delivered stay in Errors until a new one is set.
            s.errors.retain(|e| e.kind() != "password-not-delivered");
            for u in &snap.undelivered {
                push_error(s, ErrorEntry::password_lost(&u.email, &u.at));
            }
            rescan_errors(s);
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
        Err(e) => push_error(s, ErrorEntry::from_failure(&e)),
    }
    if std::mem::take(&mut s.recheck_after_load) {
        start_check(s, fx);
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
    let shown = error_matches(&e, &s.errors_tab.view.query, s.errors_tab.kind.as_deref());
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
            let v = &mut s.bindings.view;
            if q == v.query {
                return;
            }
            let keep = v.selected_row();
            if s.bindings.groups {
                // Groups are few: rescan.
                v.query = q;
                rescan_bindings(s);
            } else if q.contains(v.query.as_str()) {
                // As on Import: a longer query only narrows what is shown, O(shown).
                let hay = &s.directory.hay;
                v.shown
                    .retain(|&r| hay.get(r as usize).contains(q.as_str()));
                v.query = q;
                reselect(v, keep, rows);
            } else {
                v.query = q;
                rescan_bindings(s);
            }
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
fn error_matches(e: &ErrorEntry, q: &str, kind: Option<&str>) -> bool {
    kind.is_none_or(|k| e.kind() == k)
        && (q.is_empty()
            || [
                e.code.as_str(),
                e.kind(),
                e.subject.as_str(),
                e.message.as_str(),
                e.source.label(),
            ]
            .iter()
            .any(|f| f.to_lowercase().contains(q)))
}

fn rescan_errors(s: &mut AppState) {
    // A fix dialog points into the list: follow its error, or close if it is gone.
    if let Modal::Fix(d) = &mut s.modal {
        let at = d
            .target
            .as_deref()
            .and_then(|t| s.errors.iter().position(|e| e == t));
        match at {
            Some(i) => d.error = i,
            None => {
                s.modal = Modal::None;
                s.message = Some("That error is gone (re-checked); nothing changed.".into());
            }
        }
    }
    let rows = crate::ui::list_rows(Tab::Errors, s.width, s.height);
    let v = &mut s.errors_tab.view;
    let keep = v.selected_row();
    v.shown = (0..s.errors.len())
        .filter(|&r| error_matches(&s.errors[r], &v.query, s.errors_tab.kind.as_deref()))
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
    let failures = &s.bindings.failures;
    let (q, st) = (v.query.as_str(), s.bindings.state);
    if s.bindings.groups {
        v.shown = (0..d.groups.len())
            .filter(|&r| {
                let g = &d.groups[r];
                st.is_none_or(|f| group_filter(g.state()) == f)
                    && (q.is_empty() || g.name.to_lowercase().contains(q))
            })
            .map(|r| r as u32)
            .collect();
        reselect(v, keep, rows);
        return;
    }
    v.shown = (0..d.users.len())
        .filter(|&r| {
            st.is_none_or(|f| RowState::of(&d.users[r], failures).filter() == f)
                && (q.is_empty() || d.hay.get(r).contains(q))
        })
        .map(|r| r as u32)
        .collect();
    reselect(v, keep, rows);
}

/// Records the desired binding of the marked rows (else the selected row): `want` None
/// toggles, binding all of them unless every one already wants to be bound, so a mixed
/// selection is never half unbound by surprise. Only the wish changes (optimistically here,
/// for real by the effect); nothing is sent.
/// Commands the group list ignores: group rows are toggled one at a time; passwords are
/// users'.
fn group_refuses(c: Command) -> bool {
    matches!(
        c,
        Command::MarkRow
            | Command::MarkRange
            | Command::MarkDown
            | Command::MarkUp
            | Command::MarkAll
            | Command::InvertMarks
            | Command::SetPassword
    )
}

/// The state filter a group's state falls under.
pub fn group_filter(g: crate::directory::GroupState) -> StateFilter {
    use crate::directory::GroupState as G;
    match g {
        G::Unbound => StateFilter::Unbound,
        G::Pending => StateFilter::Pending,
        G::Bound => StateFilter::Bound,
        G::Failed => StateFilter::Error,
        G::Kept => StateFilter::Blocked,
    }
}

/// The group list's `set_want`: the selected group's wish (toggled, or `want`); nothing is
/// sent.
fn set_group_want(s: &mut AppState, want: Option<bool>, fx: &mut Vec<Effect>) {
    let Some(g) = s
        .bindings
        .view
        .selected_row()
        .and_then(|r| s.directory.groups.get_mut(r as usize))
    else {
        s.message = Some("Nothing to toggle: no group is selected.".into());
        return;
    };
    let bound = want.unwrap_or(!g.want_bound);
    if g.want_bound == bound {
        s.message = Some(format!(
            "Nothing changed: already {}.",
            if bound {
                "wanted bound"
            } else {
                "wanted unbound"
            }
        ));
        return;
    }
    g.want_bound = bound;
    s.message = Some(format!(
        "{} group {}: p previews the changes.",
        if bound { "Bind" } else { "Unbind" },
        g.name.trim()
    ));
    let ids = vec![g.id];
    s.wants_in_flight += 1;
    fx.push(Effect::SetGroupWant { ids, bound });
}

fn set_want(s: &mut AppState, want: Option<bool>, fx: &mut Vec<Effect>) {
    if s.bindings.groups {
        set_group_want(s, want, fx);
        return;
    }
    let t = &s.bindings;
    let n = s.directory.users.len();
    let rows: Vec<u32> = if t.marks.is_empty() {
        t.view.selected_row().into_iter().collect()
    } else {
        t.marks.iter().filter(|&r| (r as usize) < n).collect()
    };
    if rows.is_empty() {
        s.message = Some("Nothing to toggle: no row is selected.".into());
        return;
    }
    let users = &mut s.directory.users;
    let bound = want.unwrap_or_else(|| rows.iter().any(|&r| !users[r as usize].want_bound));
    let mut ids = Vec::new();
    for r in rows {
        let u = &mut users[r as usize];
        if u.want_bound == bound {
            continue;
        }
        if let Some(p) = PendingOp::of(u) {
            s.directory.pending[p.slot()] -= 1;
        }
        u.want_bound = bound;
        if let Some(p) = PendingOp::of(u) {
            s.directory.pending[p.slot()] += 1;
        }
        // A new wish replaces the last failure.
        s.bindings.failures.remove(&u.id);
        ids.push(u.id);
    }
    s.bindings.marks.clear();
    s.bindings.anchor = None;
    if ids.is_empty() {
        s.message = Some(format!(
            "Nothing changed: already {}.",
            if bound {
                "wanted bound"
            } else {
                "wanted unbound"
            }
        ));
        return;
    }
    // A member of a bound group stays bound through it, whatever its direct wish.
    let via = if bound {
        0
    } else {
        s.directory
            .users
            .iter()
            .filter(|u| ids.contains(&u.id) && !u.bound_via.is_empty())
            .count()
    };
    s.message = Some(format!(
        "{} {}: p previews the changes.{}",
        if bound { "Bind" } else { "Unbind" },
        crate::format::count(ids.len(), "user", None),
        if via > 0 {
            format!(
                " {} bound through a bound group.",
                crate::format::count(via, "stays", Some("stay")).replacen(' ', " of them ", 1)
            )
        } else {
            String::new()
        }
    ));
    s.wants_in_flight += 1;
    fx.push(Effect::SetWant { ids, bound });
}

fn start_plan(s: &mut AppState, fx: &mut Vec<Effect>) {
    if s.applying {
        s.message = Some("An apply is running: wait for it to end.".into());
        return;
    }
    if s.checking_journal {
        s.message = Some(
            "Checking what an interrupted run left against the tenant: the plan waits for it."
                .into(),
        );
        return;
    }
    if !s.directory_loaded {
        s.message = Some("The directory is not loaded yet.".into());
        return;
    }
    if s.load != Load::Done {
        // Without every tenant user the plan would create accounts that exist.
        s.message = Some(
            "The plan needs every tenant user: wait for the listing to finish (r reloads).".into(),
        );
        return;
    }
    s.plan_gen += 1;
    s.modal = Modal::Planning { gen: s.plan_gen };
    fx.push(Effect::Plan {
        gen: s.plan_gen,
        pages: s.rows.pages.clone(),
        now: s.now,
    });
}

/// After a fix: compute the plan again only for its preflight findings (Errors is updated,
/// nothing opens). Skipped when the tenant users are not all listed.
fn start_check(s: &mut AppState, fx: &mut Vec<Effect>) {
    if s.load != Load::Done || !s.directory_loaded {
        return;
    }
    s.plan_gen += 1;
    s.check_gen = Some(s.plan_gen);
    fx.push(Effect::Plan {
        gen: s.plan_gen,
        pages: s.rows.pages.clone(),
        now: s.now,
    });
}

/// Replace the preflight findings in Errors by those of the latest plan.
fn set_preflight_errors(s: &mut AppState, view: &PlanView) {
    s.errors.retain(|e| e.source != ErrorSource::Preflight);
    // The same findings as `m365sync errors` and the dry run: one function makes them.
    for (issue, subject, op) in crate::sync::pipeline::findings(view) {
        let entry = match (&subject, &op) {
            (crate::diagnose::Subject::Group(name), _) => {
                ErrorEntry::from_group_issue(&issue, name)
            }
            (subject, op) => {
                ErrorEntry::from_issue(&issue, subject.name(), op.as_ref().and_then(|o| o.user()))
            }
        };
        s.errors.push(entry);
    }
    if let Some(k) = &s.errors_tab.kind {
        if !s.errors.iter().any(|e| e.kind() == k) {
            s.errors_tab.kind = None;
        }
    }
    rescan_errors(s);
}

fn plan_ready(s: &mut AppState, gen: u64, result: Result<Box<PlanView>, Failure>) -> bool {
    if s.check_gen == Some(gen) {
        s.check_gen = None;
        match result {
            Ok(view) => {
                set_preflight_errors(s, &view);
                s.message = Some(match view.held_count() {
                    0 => "Re-checked: nothing is held back now; p previews the plan.".into(),
                    n => format!("Re-checked: {n} still held back (tab 3)."),
                });
            }
            Err(e) => push_error(s, ErrorEntry::from_failure(&e)),
        }
        return true;
    }
    if s.modal != (Modal::Planning { gen }) {
        return false; // the admin went back, or a newer plan was asked for
    }
    if let Ok(view) = &result {
        set_preflight_errors(s, view);
    }
    match result {
        Ok(view) if view.in_sync() && view.verified.is_empty() => {
            s.modal = Modal::None;
            s.message = Some("Nothing to do: the tenant already matches the directory.".into());
        }
        Ok(view) => {
            s.modal = Modal::Preview(Box::new(Preview {
                view: *view,
                ..Preview::default()
            }));
        }
        Err(e) => {
            s.modal = Modal::None;
            push_error(s, ErrorEntry::from_failure(&e));
            s.message = Some("The plan could not be computed (tab 3).".into());
        }
    }
    true
}

/// Lines of the preview's op list and of the password panel on this terminal.
pub fn dialog_rows(s: &AppState) -> usize {
    crate::ui::dialog::list_rows(s)
}

/// Keys of a dialog. Everything else is ignored while it is up (the tab under it keeps its
/// state).
fn dialog_command(s: &mut AppState, c: Command, fx: &mut Vec<Effect>) -> bool {
    let rows = dialog_rows(s);
    match &mut s.modal {
        Modal::None => false,
        Modal::Planning { .. } => {
            if c == Command::Back {
                s.modal = Modal::None;
                return true;
            }
            false
        }
        Modal::Preview(p) => match c {
            Command::Back => {
                s.modal = Modal::None;
                true
            }
            Command::Down | Command::Up | Command::PageDown | Command::PageUp => {
                let len = p.view.plan.ops.len();
                scroll(&mut p.selected, &mut p.offset, len, rows, c);
                true
            }
            Command::Confirm => {
                if p.view.is_empty() {
                    s.message =
                        Some("Nothing to send: every change is held back (see tab 3).".into());
                    return true;
                }
                if !p.confirmed() {
                    let want = p.expected().unwrap_or_default();
                    s.message = Some(format!("Type {want} in the box to confirm, then y."));
                    return true;
                }
                let confirm = p.confirm();
                let view = Box::new(std::mem::take(&mut p.view));
                let total = view.plan.ops.len() + view.group_ops.len();
                s.modal = Modal::Run(Box::new(Run {
                    total,
                    progress: crate::sync::apply::ApplyProgress {
                        remaining: total,
                        ..Default::default()
                    },
                    ..Run::default()
                }));
                s.applying = true;
                s.message = None;
                fx.push(Effect::Apply { view, confirm });
                true
            }
            _ => false,
        },
        Modal::Run(run) => {
            if run.finished.is_none() {
                if c == Command::Back && !run.stopping {
                    run.stopping = true;
                    fx.push(Effect::CancelApply);
                    return true;
                }
                return false;
            }
            match c {
                Command::Back | Command::Submit => {
                    // The passwords were shown once; they go with the panel.
                    s.modal = Modal::None;
                    true
                }
                Command::Down | Command::Up | Command::PageDown | Command::PageUp => {
                    let len = run.passwords.len();
                    let mut offset = 0;
                    scroll(&mut run.selected, &mut offset, len, rows, c);
                    true
                }
                Command::CopyPassword => {
                    let Some(p) = run.passwords.get(run.selected) else {
                        return false;
                    };
                    let text = Secret(p.password.clone());
                    let upn = p.upn.clone();
                    fx.push(Effect::Osc52 { text });
                    s.message = Some(format!(
                        "Password of {upn} sent to your terminal's clipboard (OSC 52)."
                    ));
                    true
                }
                Command::WriteHandoff => {
                    if run.passwords.is_empty() {
                        return false;
                    }
                    fx.push(Effect::WriteHandoff {
                        passwords: run.passwords.clone(),
                    });
                    true
                }
                _ => false,
            }
        }
        Modal::Password(p) => match c {
            Command::Back => {
                s.modal = Modal::None;
                s.message = Some("Password not changed.".into());
                true
            }
            Command::Submit => {
                if let Err(e) = (s.password_rule.0)(p.input.value()) {
                    p.problem = Some(e.to_string());
                    return true;
                }
                let (directory_id, email) = (p.directory_id, p.email.clone());
                let password = Secret(p.input.value().to_string());
                // The plaintext leaves the state with the dialog; only the effect holds it.
                s.modal = Modal::None;
                s.message = Some(format!("Setting the password of {email}…"));
                let actor = s
                    .session
                    .as_ref()
                    .map(|si| si.identity.name.clone())
                    .unwrap_or_default();
                fx.push(Effect::SetPassword {
                    directory_id,
                    email,
                    password,
                    actor,
                });
                true
            }
            _ => false,
        },
        Modal::Disconnect => match c {
            Command::Back => {
                s.modal = Modal::None;
                true
            }
            Command::Confirm => {
                s.modal = Modal::Disconnecting;
                fx.push(Effect::Disconnect);
                true
            }
            _ => false,
        },
        Modal::Disconnecting => false,
        Modal::Fix(_) => fix_command(s, c, fx),
        Modal::Export => {
            let format = match c {
                Command::ExportCsv => ExportFormat::Csv,
                Command::ExportJson => ExportFormat::Json,
                Command::Back => {
                    s.modal = Modal::None;
                    return true;
                }
                _ => return false,
            };
            s.modal = Modal::None;
            let errors = s
                .errors_tab
                .view
                .shown
                .iter()
                .filter_map(|&r| s.errors.get(r as usize).cloned())
                .collect();
            fx.push(Effect::ExportErrors { format, errors });
            true
        }
        Modal::Domains(v) => {
            let len = v.domains.as_ref().map_or(0, |d| d.len());
            match c {
                Command::Back | Command::Submit => {
                    s.modal = Modal::None;
                    true
                }
                Command::Down | Command::Up | Command::PageDown | Command::PageUp => {
                    let mut offset = 0;
                    scroll(&mut v.selected, &mut offset, len, rows, c);
                    true
                }
                Command::ToggleDomain | Command::DefaultDomain => {
                    let Some(d) = v.domains.as_ref().and_then(|d| d.get(v.selected)).cloned()
                    else {
                        return false;
                    };
                    let all = v.domains.clone().unwrap_or_default();
                    if c == Command::ToggleDomain {
                        let mut on: Vec<String> = all
                            .iter()
                            .filter(|x| v.enabled(x))
                            .map(|x| x.id.clone())
                            .collect();
                        if v.enabled(&d) {
                            on.retain(|x| !x.eq_ignore_ascii_case(&d.id));
                        } else {
                            on.push(d.id.clone());
                        }
                        v.settings.enabled = Some(on);
                    } else {
                        if !d.is_verified {
                            s.message = Some(format!(
                                "{} is not verified: it cannot be the default.",
                                d.id
                            ));
                            return true;
                        }
                        v.settings.default = Some(d.id.clone());
                        // The default domain is one m365sync may provision into.
                        if !v.enabled(&d) {
                            let mut on: Vec<String> = all
                                .iter()
                                .filter(|x| v.enabled(x))
                                .map(|x| x.id.clone())
                                .collect();
                            on.push(d.id.clone());
                            v.settings.enabled = Some(on);
                        }
                    }
                    let settings = v.settings.clone();
                    s.domain_settings = settings.clone();
                    fx.push(Effect::SaveDomains {
                        tenant: s.tenant.clone(),
                        settings,
                    });
                    true
                }
                _ => false,
            }
        }
    }
}

/// Open the preview of a fix of the selected error: `which` = that fix, else the main one.
fn open_fix(s: &mut AppState, which: Option<FixAction>) -> bool {
    if s.tab != Tab::Errors {
        return false;
    }
    let Some(r) = s.errors_tab.view.selected_row() else {
        return false;
    };
    let Some(e) = s.errors.get(r as usize) else {
        return false;
    };
    let fixes = e.fixes();
    let Some(action) = which.or_else(|| fixes.first().copied()) else {
        s.message = Some(format!(
            "No one-key fix for {}: follow the steps shown.",
            e.kind()
        ));
        return true;
    };
    let d = fix_preview(s, r as usize, action);
    s.modal = Modal::Fix(Box::new(d));
    true
}

/// What a fix will change, for its preview.
fn fix_preview(s: &AppState, error: usize, action: FixAction) -> FixDialog {
    let e = &s.errors[error];
    let user = e
        .directory_id
        .and_then(|id| s.directory.users.iter().find(|u| u.id == id));
    let email = user
        .map(|u| u.email.clone())
        .unwrap_or_else(|| e.diag.subject.name().to_string());
    let mut d = FixDialog {
        action: Some(action),
        error,
        target: Some(Box::new(e.clone())),
        ..FixDialog::default()
    };
    let holder = e
        .issue
        .as_ref()
        .and_then(|i| i.holder.clone())
        .unwrap_or_default();
    let deleted_addr = holder
        .strip_prefix("soft-deleted user ")
        .map(str::to_string)
        .or_else(|| e.op.as_ref().map(|o| o.upn.clone()));
    match action {
        FixAction::EditEmail => {
            d.input = Some(tui_input::Input::new(email.clone()));
            d.change =
                vec![
                format!("Directory user: {}", user.map_or("?", |u| u.display_name.as_str())),
                format!("Email now: {email}"),
                "Type the new email; Enter saves it to the directory, then the plan is re-checked."
                    .into(),
            ];
            d.problem = check_email(&email, &email);
        }
        FixAction::UseDefaultDomain => {
            // Preflight's suggestion was made with the domain settings the plan read; the
            // settings last shown are the fallback.
            let default = e
                .issue
                .as_ref()
                .and_then(|i| i.suggestion.as_deref())
                .and_then(|x| x.rsplit_once('@'))
                .map(|(_, d)| d.to_string())
                .or_else(|| s.domain_settings.default.clone());
            let local = email.split_once('@').map_or(email.as_str(), |(l, _)| l);
            match default {
                Some(dom) => {
                    let upn = format!("{local}@{dom}");
                    d.change = vec![
                        format!("User: {email}"),
                        format!("Account UPN will be: {upn}"),
                        format!("Email stays: {email}"),
                        "Stored as a UPN override in the directory; the plan is re-checked.".into(),
                    ];
                    d.value = Some(upn);
                }
                None => {
                    d.change = vec![
                        "No default domain is set for this integration.".into(),
                        "Press d on the Errors tab to pick one in the domain settings.".into(),
                    ];
                }
            }
        }
        FixAction::SanitizeNickname => {
            let v = e
                .issue
                .as_ref()
                .map(|i| i.value.clone())
                .unwrap_or_default();
            let nick = e
                .issue
                .as_ref()
                .and_then(|i| i.suggestion.clone())
                .unwrap_or_else(|| crate::sync::preflight::sanitize_mail_nickname(&v));
            d.change = vec![
                format!("Group: {}", e.diag.subject.name()),
                format!("mailNickname: {v} -> {nick}"),
                "Enter accepts it, or edit it first; then the plan is re-checked.".into(),
            ];
            d.problem = nickname_problem(&nick);
            d.input = Some(tui_input::Input::new(nick.clone()));
            d.value = Some(nick);
        }
        FixAction::TrimGroupName => {
            let v = e
                .issue
                .as_ref()
                .map(|i| i.value.clone())
                .unwrap_or_default();
            let name = crate::sync::preflight::trim_group_name(&v);
            d.change = vec![format!("Group name: \"{v}\" -> \"{name}\"")];
            d.value = Some(name);
        }
        FixAction::RestoreDeleted => {
            let a = deleted_addr.unwrap_or_default();
            d.change = vec![
                format!("Restore the soft-deleted account {a} (with its mailbox and licences)."),
                "It comes back blocked as it was; the directory user can then take it over.".into(),
            ];
            d.value = Some(a);
        }
        FixAction::PurgeDeleted => {
            let a = deleted_addr.unwrap_or_default();
            d.change = vec![
                format!("Permanently delete the soft-deleted account {a}."),
                "Its mailbox, files and licences are gone for good: this cannot be undone.".into(),
                "The address is free at once for the new account.".into(),
            ];
            d.irreversible = true;
            d.value = Some(a);
        }
        FixAction::LinkConflict => {
            let holder = e
                .tenant_user_id
                .as_ref()
                .and_then(|t| {
                    (0..s.rows.len() as u32)
                        .map(|r| s.rows.user(r))
                        .find(|u| &u.id == t)
                })
                .and_then(|u| {
                    s.index.holder_of(u).or_else(|| {
                        // The directory user with the tenant user's mail or UPN.
                        let addr = [u.mail.as_deref(), Some(u.user_principal_name.as_str())];
                        s.directory
                            .users
                            .iter()
                            .find(|d| {
                                addr.iter()
                                    .flatten()
                                    .any(|a| a.eq_ignore_ascii_case(&d.email))
                            })
                            .map(|d| d.id)
                    })
                })
                .map(|id| id.to_string());
            d.change = vec![
                format!(
                    "Link tenant user {} to the directory user with that email.",
                    e.subject
                ),
                "No account is created; the directory user is bound to the existing one.".into(),
            ];
            d.value = holder;
        }
        FixAction::Retry => {
            let n = retry_targets(s);
            d.change = vec![match e.source {
                ErrorSource::Import => format!("Import {} again.", e.subject),
                _ if n > 0 => format!(
                    "Preview the plan again: the {n} failed change(s) of this kind are in it if \
                     the directory still wants them; y sends them."
                ),
                _ => "Reload the tenant users (r).".into(),
            }];
        }
        FixAction::SignInAgain => {
            d.change = vec!["Back to the sign-in screen: a new device code is asked for.".into()];
        }
    }
    d
}

/// How many failed ops of the selected error's kind the plan would make again.
fn retry_targets(s: &AppState) -> usize {
    let Some(e) = s
        .errors_tab
        .view
        .selected_row()
        .and_then(|r| s.errors.get(r as usize))
    else {
        return 0;
    };
    s.errors
        .iter()
        .filter(|x| x.source == ErrorSource::Graph && x.kind() == e.kind() && x.op.is_some())
        .count()
}

/// Why `email` cannot be saved (None = fine).
/// A typed value (email, nickname) Graph would refuse: keep the dialog up and say why.
fn refuse_typed(s: &mut AppState, problem: String) -> bool {
    if let Modal::Fix(d) = &mut s.modal {
        d.problem = Some(problem);
    }
    true
}

/// Why a typed group nickname would be refused by Graph, in plain words (None = fine).
fn nickname_problem(nick: &str) -> Option<String> {
    let nick = nick.trim();
    if nick.is_empty() {
        return Some("A mailNickname cannot be empty.".into());
    }
    crate::sync::preflight::check_mail_nickname(nick)
        .into_iter()
        .next()
        .map(|p| p.message)
}

fn check_email(email: &str, old: &str) -> Option<String> {
    let t = email.trim();
    let Some((l, d)) = t.split_once('@') else {
        return Some("An email needs an @.".into());
    };
    if l.is_empty() || !d.contains('.') || d.contains('@') {
        return Some("Not an email address (name@domain.tld).".into());
    }
    if t.eq_ignore_ascii_case(old) {
        return Some("Unchanged.".into());
    }
    crate::sync::preflight::check_upn(t).map(|p| p.message)
}

fn fix_command(s: &mut AppState, c: Command, fx: &mut Vec<Effect>) -> bool {
    let Modal::Fix(d) = &mut s.modal else {
        return false;
    };
    match c {
        Command::Back => {
            s.modal = Modal::None;
            s.message = Some("Nothing changed.".into());
            true
        }
        Command::NextFix => {
            let (error, action) = (d.error, d.action);
            let fixes = s.errors.get(error).map(|e| e.fixes()).unwrap_or_default();
            if fixes.len() < 2 {
                return false;
            }
            let i = fixes.iter().position(|f| Some(*f) == action).unwrap_or(0);
            let next = fixes[(i + 1) % fixes.len()];
            let nd = fix_preview(s, error, next);
            s.modal = Modal::Fix(Box::new(nd));
            true
        }
        Command::Confirm | Command::Submit => {
            let d = (**d).clone();
            if d.input.is_some() && c == Command::Confirm {
                return false; // `y` is a character of the email
            }
            let Some(e) = s.errors.get(d.error).cloned() else {
                s.modal = Modal::None;
                return true;
            };
            let key = e.key.clone();
            let fix = match d.action {
                Some(FixAction::EditEmail) => {
                    let new = d.input.as_ref().map(|i| i.value().trim().to_string());
                    let old = e
                        .directory_id
                        .and_then(|id| s.directory.users.iter().find(|u| u.id == id))
                        .map(|u| u.email.clone())
                        .unwrap_or_default();
                    let (Some(new), Some(id)) = (new, e.directory_id) else {
                        return false;
                    };
                    if let Some(p) = check_email(&new, &old) {
                        return refuse_typed(s, p);
                    }
                    Fix::SetEmail {
                        directory_id: id,
                        email: new,
                    }
                }
                Some(FixAction::UseDefaultDomain) => {
                    let (Some(upn), Some(id)) = (d.value.clone(), e.directory_id) else {
                        return false;
                    };
                    Fix::UseDefaultDomain {
                        directory_id: id,
                        upn,
                    }
                }
                Some(FixAction::SanitizeNickname) => {
                    let typed = d.input.as_ref().map(|i| i.value().trim().to_string());
                    let (Some(n), Some(id)) = (typed.or(d.value.clone()), e.directory_id) else {
                        return false;
                    };
                    if let Some(p) = nickname_problem(&n) {
                        return refuse_typed(s, p);
                    }
                    Fix::SetGroupNickname {
                        group_id: id,
                        nickname: n,
                    }
                }
                Some(FixAction::TrimGroupName) => {
                    let (Some(n), Some(id)) = (d.value.clone(), e.directory_id) else {
                        return false;
                    };
                    Fix::SetGroupName {
                        group_id: id,
                        name: n,
                    }
                }
                Some(FixAction::RestoreDeleted) => {
                    let Some(a) = d.value.clone().filter(|a| !a.is_empty()) else {
                        return false;
                    };
                    Fix::RestoreDeleted { address: a }
                }
                Some(FixAction::PurgeDeleted) => {
                    let Some(a) = d.value.clone().filter(|a| !a.is_empty()) else {
                        return false;
                    };
                    Fix::PurgeDeleted { address: a }
                }
                Some(FixAction::LinkConflict) => {
                    let (Some(id), Some(t)) = (
                        d.value.as_ref().and_then(|v| v.parse::<i64>().ok()),
                        e.tenant_user_id.clone(),
                    ) else {
                        s.message = Some("The directory user to link was not found.".into());
                        return true;
                    };
                    Fix::Link {
                        directory_id: id,
                        tenant_user_id: t,
                    }
                }
                Some(FixAction::Retry) => {
                    s.modal = Modal::None;
                    return retry(s, &e, fx);
                }
                Some(FixAction::SignInAgain) => {
                    s.modal = Modal::None;
                    s.session = None;
                    s.signin_gen += 1;
                    s.phase = Phase::SignIn(SignIn::Requesting);
                    fx.push(Effect::StartDeviceCode { gen: s.signin_gen });
                    return true;
                }
                None => return false,
            };
            s.modal = Modal::None;
            s.message = Some("Applying the fix…".into());
            fx.push(Effect::Fix { fix, key });
            true
        }
        _ => false,
    }
}

/// The retry fix: import again, re-send the failed ops of this kind, or reload.
fn retry(s: &mut AppState, e: &ErrorEntry, fx: &mut Vec<Effect>) -> bool {
    if e.source == ErrorSource::Import {
        let user = e.tenant_user_id.as_ref().and_then(|t| {
            (0..s.rows.len() as u32)
                .map(|r| s.rows.user(r))
                .find(|u| &u.id == t)
                .cloned()
        });
        return match user {
            Some(u) => {
                s.importing = Some(1);
                fx.push(Effect::Import { users: vec![u] });
                true
            }
            None => {
                s.message = Some("That tenant user is not listed: press r to reload.".into());
                true
            }
        };
    }
    // Failed ops are planned again from the current wish: the preview shows them, y sends
    // them (through the one pipeline, guard and lock included).
    if retry_targets(s) == 0 || s.applying {
        refresh(s, fx);
        return true;
    }
    let kind = e.kind().to_string();
    s.errors
        .retain(|x| !(x.source == ErrorSource::Graph && x.kind() == kind && x.op.is_some()));
    rescan_errors(s);
    start_plan(s, fx);
    true
}

fn fix_done(
    s: &mut AppState,
    key: Option<String>,
    result: Result<String, Failure>,
    fx: &mut Vec<Effect>,
) -> bool {
    match result {
        Ok(what) => {
            if let Some(k) = &key {
                s.errors.retain(|e| e.key.as_ref() != Some(k));
                rescan_errors(s);
            }
            s.message = Some(format!("{what} Re-checking…"));
            s.recheck_after_load = true;
            fx.push(Effect::LoadDirectory);
        }
        Err(e) => {
            push_error(s, ErrorEntry::from_failure(&e));
            s.message = Some("The fix failed (tab 3); nothing else changed.".into());
        }
    }
    true
}

/// Whether the open dialog does something with `c` (the hint bar offers only those).
pub fn dialog_accepts(s: &AppState, c: Command) -> bool {
    if matches!(c, Command::Help | Command::Quit) {
        return true;
    }
    let moves = matches!(
        c,
        Command::Down | Command::Up | Command::PageDown | Command::PageUp
    );
    match &s.modal {
        // The group list has no marks and no passwords.
        Modal::None => !(s.tab == Tab::Bindings && s.bindings.groups && group_refuses(c)),
        Modal::Planning { .. } => c == Command::Back,
        Modal::Preview(p) => {
            c == Command::Back
                || (c == Command::Confirm
                    && !(p.view.plan.ops.is_empty() && p.view.group_ops.is_empty()))
                || moves
        }
        Modal::Run(run) => match &run.finished {
            None => c == Command::Back && !run.stopping,
            Some(_) if run.passwords.is_empty() => matches!(c, Command::Back | Command::Submit),
            Some(_) => {
                moves
                    || matches!(
                        c,
                        Command::Back
                            | Command::Submit
                            | Command::CopyPassword
                            | Command::WriteHandoff
                    )
            }
        },
        Modal::Password(_) => matches!(c, Command::Back | Command::Submit),
        Modal::Disconnect => matches!(c, Command::Back | Command::Confirm),
        Modal::Disconnecting => false,
        Modal::Fix(d) => {
            let many = s.errors.get(d.error).is_some_and(|e| e.fixes().len() > 1);
            match c {
                Command::Back => true,
                Command::NextFix => many,
                Command::Submit => d.input.is_some(),
                Command::Confirm => d.input.is_none(),
                _ => false,
            }
        }
        Modal::Export => matches!(c, Command::Back | Command::ExportCsv | Command::ExportJson),
        Modal::Domains(_) => {
            moves
                || matches!(
                    c,
                    Command::Back | Command::ToggleDomain | Command::DefaultDomain
                )
        }
    }
}

fn scroll(selected: &mut usize, offset: &mut usize, len: usize, rows: usize, c: Command) {
    if len == 0 {
        return;
    }
    let rows = rows.max(1);
    *selected = match c {
        Command::Down => *selected + 1,
        Command::Up => selected.saturating_sub(1),
        Command::PageDown => *selected + rows,
        _ => selected.saturating_sub(rows),
    }
    .min(len - 1);
    if *selected < *offset {
        *offset = *selected;
    } else if *selected >= *offset + rows {
        *offset = *selected + 1 - rows;
    }
}

fn dialog_input(s: &mut AppState, req: tui_input::InputRequest) -> bool {
    match &mut s.modal {
        Modal::Preview(p) if p.expected().is_some() => {
            p.guard_input.handle(req);
            // The guard's count typed: a self-block asks for the UPN next, in the same box.
            if !p.guard_ok && p.view.self_block.is_some() {
                if let Some(g) = &p.view.guard {
                    if p.guard_input.value().trim() == g.blocks.to_string() {
                        p.guard_ok = true;
                        p.guard_input.reset();
                    }
                }
            }
            true
        }
        Modal::Fix(d) if d.input.is_some() => {
            let Some(input) = d.input.as_mut() else {
                return false;
            };
            input.handle(req);
            if d.action == Some(FixAction::SanitizeNickname) {
                d.problem = nickname_problem(input.value());
                return true;
            }
            let old = s
                .errors
                .get(d.error)
                .and_then(|e| e.directory_id)
                .and_then(|id| {
                    s.directory
                        .users
                        .iter()
                        .find(|u| u.id == id)
                        .map(|u| u.email.clone())
                });
            d.problem = check_email(input.value(), old.as_deref().unwrap_or(""));
            true
        }
        Modal::Password(p) => {
            p.input.handle(req);
            p.problem = (s.password_rule.0)(p.input.value())
                .err()
                .map(|e| e.to_string());
            true
        }
        _ => false,
    }
}

fn apply_news(s: &mut AppState, news: ApplyNews) -> bool {
    let run = match &mut s.modal {
        Modal::Run(run) => Some(run),
        _ => None,
    };
    match news {
        ApplyNews::Progress(p) => match run {
            Some(run) if run.progress != p => {
                run.progress = p;
                true
            }
            _ => false,
        },
        ApplyNews::OpDone { op, .. } => op
            .user()
            .is_some_and(|o| s.bindings.failures.remove(&o.directory_id).is_some()),
        ApplyNews::OpFailed { op, error } => {
            if let Some(run) = run {
                run.errors.push(RunError {
                    upn: op.target(),
                    kind: op.kind(),
                    message: match &error {
                        crate::graph::GraphError::Api { message, .. } => message.clone(),
                        e => e.to_string(),
                    },
                });
                if run.errors.len() > Run::KEEP_ERRORS {
                    run.errors.remove(0);
                }
            }
            let entry = ErrorEntry::from_op(&op, &error);
            if let Some(o) = op.user() {
                s.bindings.failures.insert(
                    o.directory_id,
                    RowFailure {
                        kind: o.kind,
                        code: error.code().to_string(),
                        message: entry.message.clone(),
                    },
                );
            }
            push_error(s, entry);
            true
        }
        ApplyNews::OpNotSent { op, why } => {
            if let Some(run) = run {
                run.errors.push(RunError {
                    upn: op.target(),
                    kind: op.kind(),
                    message: why,
                });
                if run.errors.len() > Run::KEEP_ERRORS {
                    run.errors.remove(0);
                }
                return true;
            }
            false
        }
        ApplyNews::PasswordIssued(p) => {
            if let Some(run) = run {
                run.passwords.push(p);
            }
            true
        }
    }
}

fn apply_finished(s: &mut AppState, result: Result<ApplySummary, Failure>, fx: &mut Vec<Effect>) {
    s.applying = false;
    if !matches!(s.modal, Modal::Run(_)) {
        // Never expected (the run view stays up while applying), but passwords must be shown.
        s.modal = Modal::Run(Box::default());
    }
    let Modal::Run(run) = &mut s.modal else {
        unreachable!("set just above");
    };
    match result {
        Ok(sum) => {
            for p in sum.passwords {
                if !run.passwords.iter().any(|q| q.upn == p.upn) {
                    run.passwords.push(p);
                }
            }
            let stalled = match &sum.stopped {
                Some(crate::sync::apply::Stopped::Stalled { after, throttled }) => Some(format!(
                    "no change finished for {} (throttled {throttled} times); what was not \
                     sent is planned again by the next preview",
                    crate::format::duration(*after)
                )),
                Some(crate::sync::apply::Stopped::SinkFailed(e)) => Some(e.clone()),
                _ => None,
            };
            let lost = sum.passwords_lost.clone();
            run.progress.done = sum.done;
            run.progress.failed = sum.failed;
            run.progress.remaining = 0;
            run.finished = Some(RunEnd::Done {
                done: sum.done,
                failed: sum.failed,
                cancelled: sum.cancelled,
            });
            let mut msg = format!("Applied: {} done", fmt_count(sum.done));
            if sum.failed > 0 {
                msg.push_str(&format!(", {} failed (tab 3)", fmt_count(sum.failed)));
            }
            if sum.cancelled > 0 {
                msg.push_str(&format!(", {} not sent", fmt_count(sum.cancelled)));
            }
            s.message = Some(msg);
            if let Some(why) = stalled {
                push_error(
                    s,
                    ErrorEntry::from_diagnosis(
                        ErrorSource::Graph,
                        "apply",
                        crate::diagnose::diagnose_stalled(&why),
                    ),
                );
            }
            for email in lost {
                push_error(s, ErrorEntry::password_lost(&email, "this run"));
            }
        }
        Err(e) => {
            run.finished = Some(RunEnd::Failed(e.to_string()));
            push_error(s, ErrorEntry::from_failure(&e));
            s.message = Some("The apply did not start or stopped with an error (tab 3).".into());
        }
    }
    after_writes(s, fx);
}

/// After a run: read the directory again (bindings changed) and, when something was written,
/// list the tenant again, so the next plan compares with the accounts as they are now (new
/// accounts included).
fn after_writes(s: &mut AppState, fx: &mut Vec<Effect>) {
    fx.push(Effect::LoadDirectory);
    let wrote = match &s.modal {
        Modal::Run(r) => r.progress.done > 0,
        _ => false,
    };
    if wrote && s.directory_loaded && !matches!(s.load, Load::Waiting) {
        start_load(s, fx);
    }
}

/// What checking the journal of an interrupted run found: said in one line; what could not be
/// known goes to Errors with the next read of the directory.
fn journal_checked(
    s: &mut AppState,
    result: Result<Vec<crate::sync::reconcile::Verification>, Failure>,
    fx: &mut Vec<Effect>,
) -> bool {
    use crate::sync::reconcile::Found;
    s.checking_journal = false;
    match result {
        Ok(found) if found.is_empty() => return false,
        Ok(found) => {
            let n = |f: fn(&Found) -> bool| found.iter().filter(|v| f(&v.found)).count();
            let applied = n(|f| matches!(f, Found::Applied | Found::PartlyApplied));
            let dropped = n(|f| matches!(f, Found::NotApplied | Found::NeverSent));
            let unknown = n(|f| matches!(f, Found::Unknowable { .. }));
            let mut msg = format!(
                "Checked an interrupted run: {} applied, {} dropped",
                fmt_count(applied),
                fmt_count(dropped)
            );
            if unknown > 0 {
                msg.push_str(&format!(", {} unknown (tab 3)", fmt_count(unknown)));
            }
            msg.push_str("; p plans what the directory still wants.");
            s.message = Some(msg);
            fx.push(Effect::LoadDirectory);
            // The listing may have started before the journal was checked: list again.
            if applied > 0 && s.directory_loaded && !matches!(s.load, Load::Waiting) {
                start_load(s, fx);
            }
        }
        Err(e) => {
            push_error(s, ErrorEntry::from_failure(&e));
            s.message = Some("Checking the interrupted run failed (tab 3).".into());
        }
    }
    true
}

fn disconnected(s: &mut AppState, result: Result<(), Failure>, fx: &mut Vec<Effect>) {
    match result {
        Ok(()) => {
            s.modal = Modal::None;
            s.session = None;
            s.load_gen += 1;
            fx.push(Effect::CancelLoad);
            s.load = Load::Idle;
            s.expected = None;
            s.rows.clear();
            s.import = ImportTab::default();
            s.bindings = BindingsTab::default();
            s.directory = DirectoryRows::default();
            s.directory_loaded = false;
            s.tab = Tab::Import;
            s.message = None;
            s.signin_note = Some(
                "Disconnected: every binding was un-selected and the sign-in forgotten; the                  M365 accounts were left as they are. Sign in to connect again."
                    .into(),
            );
            s.signin_gen += 1;
            s.phase = Phase::SignIn(SignIn::Requesting);
            fx.push(Effect::StartDeviceCode { gen: s.signin_gen });
        }
        Err(e) => {
            s.modal = Modal::None;
            push_error(s, ErrorEntry::from_failure(&e));
            s.message = Some("Disconnecting failed (tab 3); nothing was changed.".into());
        }
    }
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
            shift: false,
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
        Phase::Main if s.modal.is_open() => {
            let text =
                matches!(key.code, crossterm::event::KeyCode::Char(_)) && !key.ctrl && !key.alt;
            match &s.modal {
                // Every character is part of the password; Enter and Esc act.
                Modal::Password(_) => {
                    if text {
                        return tui_input::backend::crossterm::to_input_request(&Event::Key(*ev))
                            .map(Action::DialogInput);
                    }
                    if let Some(c) = km.lookup(&[Context::Dialog], key) {
                        if matches!(c, Command::Back | Command::Submit) {
                            return Some(Action::Command(c));
                        }
                    }
                    return tui_input::backend::crossterm::to_input_request(&Event::Key(*ev))
                        .map(Action::DialogInput);
                }
                // The email being typed: every character is text; Enter, Esc and Tab act.
                Modal::Fix(d) if d.input.is_some() => {
                    if !text {
                        if let Some(c) = km.lookup(&[Context::Dialog], key) {
                            if matches!(c, Command::Back | Command::Submit | Command::NextFix) {
                                return Some(Action::Command(c));
                            }
                        }
                    }
                    return tui_input::backend::crossterm::to_input_request(&Event::Key(*ev))
                        .map(Action::DialogInput);
                }
                Modal::Export => {
                    km.lookup(&[Context::Export, Context::Dialog, Context::Global], key)
                }
                // Typing a UPN to confirm blocking one's own account: every character goes to
                // the box, Enter applies, Esc goes back.
                Modal::Preview(p)
                    if p.view.self_block.is_some() && (p.view.guard.is_none() || p.guard_ok) =>
                {
                    use crossterm::event::KeyCode;
                    match key.code {
                        KeyCode::Enter => return Some(Action::Command(Command::Confirm)),
                        KeyCode::Esc => return Some(Action::Command(Command::Back)),
                        _ if text || key.code == KeyCode::Backspace => {
                            return tui_input::backend::crossterm::to_input_request(&Event::Key(
                                *ev,
                            ))
                            .map(Action::DialogInput);
                        }
                        _ => km.lookup(&[Context::Dialog, Context::Global], key),
                    }
                }
                // The guard box takes the count; the other keys act.
                Modal::Preview(p) if p.view.guard.is_some() => {
                    let digit = matches!(key.code, crossterm::event::KeyCode::Char(c) if c.is_ascii_digit());
                    if (text && digit) || key.code == crossterm::event::KeyCode::Backspace {
                        return tui_input::backend::crossterm::to_input_request(&Event::Key(*ev))
                            .map(Action::DialogInput);
                    }
                    km.lookup(&[Context::Dialog, Context::Global], key)
                }
                _ => km.lookup(&[Context::Dialog, Context::Global], key),
            }
        }
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
        Phase::Main if s.modal == Modal::Export => {
            vec![Context::Export, Context::Dialog, Context::Global]
        }
        Phase::Main if s.modal.is_open() => vec![Context::Dialog, Context::Global],
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
