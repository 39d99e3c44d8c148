//! `update(&mut AppState, Action) -> Vec<Effect>`: the only place state changes. Pure: no
//! awaiting, no network, no disk, no clock (time comes in with `Action::Tick`).
//!
//! This is the root. It handles the global keys (quit, help, tabs), the phase (sign-in), the
//! shared data (the session, the listing of tenant users, the directory, the journal check),
//! and hands everything else to the focused layer, one layer at a time: the help, else a
//! question, else the dialog, else the tab. Each tab and dialog handles its own keys and the
//! results of its own effects (see `tabs/` and `dialogs/`); what it returns (`Outcome`) tells
//! the root what to open or close.

use crossterm::event::{Event, KeyCode, KeyEvent};
use tui_input::InputRequest;

use crate::directory::ImportStatus;
use crate::failure::Failure;
use crate::format::thousands;
use crate::graph::User;
use crate::keymap::{is_press, section, Command, Key};
use std::sync::Arc;

use super::action::{Action, DirectorySnapshot, Mouse};
use super::component::{Component, Outcome, Section, TextMode};
use super::dialogs::help::{Help, HelpSection};
use super::dialogs::{disconnect, domains, export, fix, password, preview, run, Question};
use super::effect::Effect;
use super::explain::ErrorEntry;
use super::layout;
use super::list;
use super::signin::{ConfigScreen, SignInScreen};
use super::state::*;
use super::tabs::{bindings, import};

/// Users per Graph page (Graph's maximum for /users).
pub const PAGE_SIZE: u32 = 999;

/// The effects to run at start: resume a cached session (or nothing when settings are missing).
pub fn init(s: &mut AppState) -> Vec<Effect> {
    s.data.dirty = true;
    match s.data.phase {
        Phase::Config { .. } => Vec::new(),
        _ => {
            s.data.phase = Phase::SignIn(SignIn::Resuming);
            vec![Effect::ResumeSession {
                gen: s.data.signin_gen,
            }]
        }
    }
}

pub fn update(s: &mut AppState, action: Action) -> Vec<Effect> {
    let mut fx = Vec::new();
    let changed = step(s, action, &mut fx);
    let followed = sync(s);
    if changed || followed {
        s.data.dirty = true;
    }
    fx
}

/// The layer that has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Help,
    Question,
    Config,
    SignIn,
    Dialog,
    Tab,
}

/// The focused component and its layer.
pub fn focus(s: &AppState) -> (&dyn Component, Layer) {
    if let Some(h) = &s.help {
        return (h, Layer::Help);
    }
    if let Some(q) = &s.question {
        return (q, Layer::Question);
    }
    match &s.data.phase {
        Phase::Config { .. } => return (&ConfigScreen, Layer::Config),
        Phase::SignIn(_) => return (&SignInScreen, Layer::SignIn),
        Phase::Main => {}
    }
    match s.modal.get() {
        Some(d) => (d, Layer::Dialog),
        None => (s.tabs.get(s.tab), Layer::Tab),
    }
}

/// The sections in force for the focused layer, most specific first: its own, then `global`
/// where global keys work (never while a field takes text, never in the help or a question).
pub fn sections(s: &AppState) -> Vec<&'static str> {
    let (c, layer) = focus(s);
    let mut v: Vec<&'static str> = c.sections(&s.data).iter().map(|x| x.name).collect();
    let text = c.text_mode(&s.data) == TextMode::All;
    if !text && !matches!(layer, Layer::Help | Layer::Question) {
        v.push(section::GLOBAL);
    }
    v
}

/// Whether the focused layer does something with `c` now: what the hint bar and the help
/// offer. The global keys are the root's.
pub fn offered(s: &AppState) -> impl Fn(Command) -> bool + '_ {
    let (c, layer) = focus(s);
    let own = c.commands(&s.data);
    let text = c.text_mode(&s.data) == TextMode::All;
    move |x| {
        own.contains(&x)
            || (!text
                && !matches!(layer, Layer::Help | Layer::Question)
                && matches!(x, Command::Quit | Command::Help))
            || (layer == Layer::Tab
                && matches!(x, Command::NextTab | Command::PrevTab | Command::GoTab(_)))
    }
}

/// The action a key press asks for in this state, or None. Pure: the runtime calls it for
/// each terminal key event, tests call it directly.
pub fn key_action(s: &AppState, ev: &KeyEvent) -> Option<Action> {
    if !is_press(ev) {
        return None;
    }
    let key = Key::from_event(ev);
    let km = &s.data.keymap;
    if key
        == (Key {
            code: KeyCode::Char('c'),
            ctrl: true,
            alt: false,
            shift: false,
        })
    {
        return Some(Action::Command(Command::Quit));
    }
    let (c, layer) = focus(s);
    let names = sections(s);
    if layer == Layer::Help {
        // Its scroll keys scroll; any other key closes it.
        return Some(Action::Command(
            km.lookup(&names, key).unwrap_or(Command::Help),
        ));
    }
    let text = |req: InputRequest| match layer {
        Layer::Tab => Action::FilterInput(req),
        _ => Action::DialogInput(req),
    };
    let plain = !key.ctrl && !key.alt;
    match c.text_mode(&s.data) {
        TextMode::All => {
            // Every character is text; only the field's own rows (Enter, Esc, Tab) act.
            if matches!(key.code, KeyCode::Char(_)) && plain {
                return tui_input::backend::crossterm::to_input_request(&Event::Key(*ev)).map(text);
            }
            if let Some(c) = km.lookup(&names, key) {
                return Some(Action::Command(c));
            }
            return tui_input::backend::crossterm::to_input_request(&Event::Key(*ev)).map(text);
        }
        TextMode::Digits => {
            let digit = matches!(key.code, KeyCode::Char(c) if c.is_ascii_digit()) && plain;
            if digit || key.code == KeyCode::Backspace {
                return tui_input::backend::crossterm::to_input_request(&Event::Key(*ev)).map(text);
            }
        }
        TextMode::None => {}
    }
    km.lookup(&names, key).map(Action::Command)
}

/// Rows of `tab`'s list on this screen.
pub fn tab_rows(s: &AppState, tab: Tab) -> usize {
    let body = layout::screen_of(&s.data).body;
    layout::list_rows(s.tabs.get(tab).list_area(&s.data, body))
}

/// Rows of the current tab's list on screen.
pub fn list_rows(s: &AppState) -> usize {
    tab_rows(s, s.tab)
}

/// After every action: the tabs and the dialog follow the shared data; the current list keeps
/// its selection on screen. True when the dialog changed.
fn sync(s: &mut AppState) -> bool {
    for t in Tab::ALL {
        s.tabs.get_mut(*t).sync(&s.data);
    }
    let mut changed = false;
    if let Some(d) = s.modal.get_mut() {
        match d.sync(&mut s.data) {
            Outcome::Close => {
                s.modal = Modal::None;
                changed = true;
            }
            Outcome::Ignored => {}
            _ => changed = true,
        }
    }
    let rows = list_rows(s);
    s.tabs.get_mut(s.tab).list_mut().follow(rows);
    changed
}

/// Applies one action; true when something on screen may have changed.
fn step(s: &mut AppState, action: Action, fx: &mut Vec<Effect>) -> bool {
    match action {
        Action::Command(c) => command(s, c, fx),
        Action::FilterInput(req) => {
            if s.data.phase != Phase::Main {
                return false;
            }
            let tab = s.tabs.get_mut(s.tab);
            let v = tab.list_mut();
            v.editing = true;
            v.input.handle(req);
            tab.filter_changed(&s.data);
            true
        }
        Action::DialogInput(req) => match s.modal.get_mut() {
            Some(d) if s.question.is_none() && s.help.is_none() => d.input(&mut s.data, req),
            _ => false,
        },
        Action::Paste(text) => paste(s, &text),
        Action::Mouse(m) => mouse(s, m, fx),
        Action::Tick { now } => tick(s, now, fx),
        Action::Resize { width, height } => {
            s.data.width = width;
            s.data.height = height;
            for t in Tab::ALL {
                let rows = tab_rows(s, *t);
                s.tabs.get_mut(*t).list_mut().follow(rows);
            }
            true
        }
        Action::SessionResumed { gen, result } => {
            let d = &mut s.data;
            if gen != d.signin_gen {
                return false;
            }
            match result {
                Ok(Some(info)) => signed_in(d, info, fx),
                Ok(None) => {
                    d.phase = Phase::SignIn(SignIn::Requesting);
                    fx.push(Effect::StartDeviceCode { gen });
                }
                Err(e) => {
                    d.signin_note = Some(format!(
                        "The cached sign-in could not be refreshed ({e}); sign in again."
                    ));
                    d.push_error(ErrorEntry::from_auth("refresh cached sign-in", &e));
                    d.phase = Phase::SignIn(SignIn::Requesting);
                    fx.push(Effect::StartDeviceCode { gen });
                }
            }
            true
        }
        Action::DeviceCode { gen, result } => {
            let d = &mut s.data;
            if gen != d.signin_gen || !matches!(d.phase, Phase::SignIn(_)) {
                return false;
            }
            match result {
                Ok(start) => {
                    let expires_at = d.now + start.expires_in.as_secs() as i64;
                    fx.push(Effect::PollDeviceCode {
                        gen,
                        start: start.clone(),
                    });
                    d.phase = Phase::SignIn(SignIn::Waiting { start, expires_at });
                }
                Err(e) => {
                    d.push_error(ErrorEntry::from_auth("device-code sign-in", &e));
                    d.phase = Phase::SignIn(SignIn::Failed(e));
                }
            }
            true
        }
        Action::SignedIn { gen, result } => {
            let d = &mut s.data;
            if gen != d.signin_gen || !matches!(d.phase, Phase::SignIn(_)) {
                return false;
            }
            match result {
                Ok(info) => signed_in(d, info, fx),
                Err(e) => {
                    d.push_error(ErrorEntry::from_auth("device-code sign-in", &e));
                    d.phase = Phase::SignIn(SignIn::Failed(e));
                }
            }
            true
        }
        Action::Session(info) => {
            let changed = s.data.session.as_ref() != Some(&info);
            s.data.session = Some(info);
            changed
        }
        Action::DirectoryLoaded(result) => {
            directory_loaded(s, result, fx);
            true
        }
        Action::ImportDone(result) => {
            import::import_done(&mut s.data, &mut s.tabs.import, result, fx);
            true
        }
        Action::UsersPage {
            gen,
            index_version,
            users,
            statuses,
        } => {
            if gen != s.data.load_gen {
                return false;
            }
            page_arrived(s, index_version, Arc::new(users), &statuses, false, fx);
            let d = &mut s.data;
            if let Load::Loading { pages } = &mut d.load {
                *pages += 1;
            } else {
                d.load = Load::Loading { pages: 1 };
            }
            true
        }
        Action::CopyPage {
            gen,
            index_version,
            users,
            statuses,
            first,
        } => {
            if gen != s.data.load_gen {
                return false;
            }
            page_arrived(s, index_version, users, &statuses, first, fx);
            true
        }
        Action::CopyLoaded { gen, extras, as_of } => {
            let d = &mut s.data;
            if gen != d.load_gen {
                return false;
            }
            d.tenant_extras = extras;
            d.as_of = Some(as_of);
            d.complete_copy = true;
            d.reloading = false;
            true
        }
        Action::UsersDone { gen } => {
            if gen != s.data.load_gen {
                return false;
            }
            if s.data.reloading {
                // The tenant has no users now.
                s.data.rows.clear();
                s.data.account_upns.clear();
                s.data.reloading = false;
                s.tabs.import.rows_replaced();
            }
            listing_complete(s, fx);
            true
        }
        Action::UsersFailed { gen, error } => {
            let d = &mut s.data;
            if gen != d.load_gen {
                return false;
            }
            d.push_error(ErrorEntry::from_graph("list tenant users", &error));
            load_failed(d, error.to_string());
            true
        }
        Action::SnapshotFailed { gen, error } => {
            let d = &mut s.data;
            if gen != d.load_gen {
                return false;
            }
            d.push_error(ErrorEntry::from_failure(&error));
            load_failed(d, error.to_string());
            true
        }
        Action::TenantLoaded {
            gen,
            index_version,
            rows,
            upns,
            extras,
            as_of,
            done,
        } => tenant_loaded(
            s,
            gen,
            index_version,
            (*rows, upns, extras),
            as_of,
            done,
            fx,
        ),
        Action::Refreshing { gen, news } => refreshing(&mut s.data, gen, news),
        Action::ApplyReplanned { view, round } => {
            apply_replanned(s, view, round);
            true
        }
        Action::RowsSorted { gen, key, order } => s.tabs.import.sorted(&s.data, gen, key, order),
        Action::Reclassified {
            gen,
            index_version,
            first_row,
            statuses,
        } => {
            let d = &mut s.data;
            if gen != d.load_gen || index_version != d.index_version {
                return false;
            }
            let mut changed = false;
            let end = (first_row as usize + statuses.len()).min(d.rows.len());
            for (row, st) in (first_row as usize..end).zip(statuses) {
                changed |= d.rows.set_status(row, st);
                if st == ImportStatus::Imported {
                    let u = d.rows.user(row as u32);
                    if !d.account_upns.contains_key(&u.id) {
                        let (id, upn) = (u.id.clone(), u.user_principal_name.clone());
                        d.account_upns.insert(id, upn);
                    }
                }
            }
            if changed {
                s.tabs.import.statuses_changed();
            }
            changed
        }
        Action::WantSaved(result) => {
            bindings::want_saved(&mut s.data, result, fx);
            true
        }
        Action::PlanReady { gen, result } => {
            preview::plan_ready(&mut s.data, &mut s.modal, gen, result)
        }
        Action::Apply(news) => run::news(&mut s.data, &mut s.modal, news),
        Action::ApplyFinished(result) => {
            apply_finished(s, result, fx);
            // Seats changed: the Licences tab reads them again once it has been shown.
            if s.data.licences.report.is_some() {
                super::tabs::licences::load(&mut s.data, fx);
            }
            true
        }
        Action::JournalChecked(result) => journal_checked(&mut s.data, result, fx),
        Action::PasswordSet { email, result } => {
            password::password_set(&mut s.data, email, result, fx);
            true
        }
        Action::HandoffWritten(result) => {
            run::handoff_written(&mut s.data, &mut s.modal, result);
            true
        }
        Action::FixDone { key, result } => {
            fix::done(&mut s.data, key, result, fx);
            true
        }
        Action::Exported(result) => {
            export::exported(&mut s.data, result);
            true
        }
        Action::DomainsLoaded(result) => {
            domains::loaded(&mut s.data, &mut s.modal, result);
            true
        }
        Action::DomainsSaved(result) => {
            domains::saved(&mut s.data, &s.modal, result, fx);
            true
        }
        Action::Disconnected(result) => {
            disconnect::disconnected(s, result, fx);
            true
        }
        Action::LicencesLoaded(result) => {
            let l = &mut s.data.licences;
            l.loading = false;
            match result {
                Ok(r) => {
                    l.report = Some(r);
                    l.error = None;
                }
                Err(e) => l.error = Some(format!("the licences could not be read: {e}")),
            }
            l.gen += 1;
            true
        }
        Action::LicenceChanged(result) => {
            super::dialogs::licence::changed(&mut s.data, result, fx);
            true
        }
    }
}

fn signed_in(d: &mut Data, info: SessionInfo, fx: &mut Vec<Effect>) {
    d.session = Some(info);
    d.phase = Phase::Main;
    d.signin_note = None;
    d.load = Load::Waiting;
    fx.push(Effect::LoadDirectory);
    // What a killed run left in the journal is checked against the tenant (nothing is sent:
    // the next plan makes what is still wanted). Plans wait for it.
    d.checking_journal = true;
    fx.push(Effect::CheckJournal);
}

fn tick(s: &mut AppState, now: i64, fx: &mut Vec<Effect>) -> bool {
    let d = &mut s.data;
    let before = d.now;
    d.now = now;
    match &d.phase {
        Phase::SignIn(SignIn::Waiting { .. }) => before != now,
        Phase::Main => {
            if now / 30 != before / 30 {
                fx.push(Effect::RefreshSessionInfo);
            }
            // The status bar shows the token's lifetime in minutes.
            match &d.session {
                Some(si) => {
                    (si.expires_at - before).div_euclid(60) != (si.expires_at - now).div_euclid(60)
                }
                None => false,
            }
        }
        _ => false,
    }
}

/// A command, to the focused layer (global keys first).
fn command(s: &mut AppState, c: Command, fx: &mut Vec<Effect>) -> bool {
    if c == Command::Quit {
        return quit(s, fx);
    }
    if c == Command::Help {
        if s.help.take().is_none() {
            s.help = Some(help_for(s));
        }
        return true;
    }
    if let Some(h) = &mut s.help {
        if h.command(&mut s.data, c, fx) == Outcome::Close {
            s.help = None;
        }
        return true;
    }
    if let Some(q) = s.question {
        let mut q2 = q;
        return match q2.command(&mut s.data, c, fx) {
            Outcome::Yes => {
                s.question = None;
                answer(s, q, fx)
            }
            Outcome::Close => {
                s.question = None;
                true
            }
            _ => false,
        };
    }
    match &s.data.phase {
        Phase::Config { .. } => return false,
        Phase::SignIn(_) => {
            let o = SignInScreen.command(&mut s.data, c, fx);
            return o != Outcome::Ignored;
        }
        Phase::Main => {}
    }
    if let Some(d) = s.modal.get_mut() {
        let o = d.command(&mut s.data, c, fx);
        return apply_outcome(s, o, true);
    }
    // A tab has the focus: tabs, reload and stop are the root's, the list keys are every
    // list's, the rest is the tab's.
    match c {
        Command::NextTab => {
            s.tab = s.tab.next();
            entered(s, fx);
            return true;
        }
        Command::PrevTab => {
            s.tab = s.tab.prev();
            entered(s, fx);
            return true;
        }
        Command::GoTab(n) => {
            return match Tab::nth(n) {
                Some(t) => {
                    s.tab = t;
                    entered(s, fx);
                    true
                }
                None => false,
            }
        }
        Command::Refresh => {
            // `r` while a refresh runs: list every user instead.
            let again = matches!(s.data.load, Load::Loading { .. });
            refresh(s, again, fx);
            return true;
        }
        Command::ListAgain => {
            refresh(s, true, fx);
            return true;
        }
        Command::StopLoad => return stop_load(&mut s.data, fx),
        _ => {}
    }
    let rows = list_rows(s);
    let tab = s.tabs.get_mut(s.tab);
    if let Some(done) = list::command(tab, &mut s.data, c, rows) {
        return done;
    }
    let o = tab.command(&mut s.data, c, fx);
    apply_outcome(s, o, false)
}

/// Carries out what a component asked for.
fn apply_outcome(s: &mut AppState, o: Outcome, from_dialog: bool) -> bool {
    match o {
        Outcome::Ignored => false,
        Outcome::Done | Outcome::Yes => true,
        Outcome::Close => {
            if from_dialog {
                s.modal = Modal::None;
            }
            true
        }
        Outcome::Open(m) => {
            s.modal = m;
            true
        }
        Outcome::Ask(q) => {
            s.question = Some(q);
            true
        }
    }
}

/// `q`/Ctrl-C: quits, or asks when that would lose something (an apply running, passwords
/// not saved). A second Ctrl-C over that question answers yes.
fn quit(s: &mut AppState, fx: &mut Vec<Effect>) -> bool {
    if let Some(q) = s.question {
        if q.is_quit() {
            s.question = None;
            return answer(s, q, fx);
        }
    }
    if s.data.quitting {
        s.data.say(
            Topic::Apply,
            "Stopping: the console closes once the changes in flight are recorded.",
        );
        return true;
    }
    if s.data.applying {
        s.question = Some(Question::QuitDuringApply);
        return true;
    }
    let unsaved = match &s.modal {
        Modal::Run(r) => r.unsaved(),
        _ => 0,
    };
    if unsaved > 0 {
        s.question = Some(Question::QuitWithPasswords { unsaved });
        return true;
    }
    s.data.quit = true;
    true
}

/// A question answered yes.
fn answer(s: &mut AppState, q: Question, fx: &mut Vec<Effect>) -> bool {
    match q {
        Question::QuitDuringApply => {
            if !s.data.applying {
                // The run ended meanwhile: quit as `q` would now.
                return quit(s, fx);
            }
            s.data.quitting = true;
            if let Modal::Run(r) = &mut s.modal {
                r.stopping = true;
            }
            fx.push(Effect::CancelApply);
            s.data.say(
                Topic::Apply,
                "Stopping: nothing new is sent; the console closes once the changes in flight \
                 are recorded.",
            );
        }
        Question::QuitWithPasswords { .. } => s.data.quit = true,
        Question::ImportGuests { .. } => {
            let o = s.tabs.import.import_with_guests(&mut s.data, fx);
            return apply_outcome(s, o, false);
        }
        Question::ClosePasswords { unsaved } => {
            s.modal = Modal::None;
            s.data.tell(
                Topic::Apply,
                Tone::Warn,
                format!(
                    "{} forgotten without being saved: {} a new password ({} on {}).",
                    crate::format::count(unsaved, "password", None),
                    if unsaved == 1 {
                        "that account needs"
                    } else {
                        "those accounts need"
                    },
                    s.data
                        .tab_key(super::tabs::bindings::SECTION.name, Command::SetPassword),
                    Tab::Bindings.title()
                ),
            );
        }
    }
    true
}

fn apply_finished(
    s: &mut AppState,
    result: Result<crate::sync::apply::ApplySummary, Failure>,
    fx: &mut Vec<Effect>,
) {
    run::finished(&mut s.data, &mut s.modal, result);
    if std::mem::take(&mut s.data.quitting) {
        let unsaved = match &s.modal {
            Modal::Run(r) => r.unsaved(),
            _ => 0,
        };
        if unsaved == 0 {
            s.data.quit = true;
        } else {
            s.data.tell(
                Topic::Apply,
                Tone::Warn,
                format!(
                    "Stopped. {} issued before the stop: copy or write them, then quit.",
                    crate::format::count(
                        unsaved,
                        "temporary password was",
                        Some("temporary passwords were")
                    )
                ),
            );
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
    if wrote && s.data.directory_loaded && !matches!(s.data.load, Load::Waiting) && !s.data.quit {
        start_load(&mut s.data, fx);
    }
}

/// What checking the journal of an interrupted run found: said in one line; what could not be
/// known goes to Errors with the next read of the directory.
fn journal_checked(
    d: &mut Data,
    result: Result<Vec<crate::sync::reconcile::Verification>, Failure>,
    fx: &mut Vec<Effect>,
) -> bool {
    use crate::sync::reconcile::Found;
    d.checking_journal = false;
    match result {
        Ok(found) if found.is_empty() => return false,
        Ok(found) => {
            let n = |f: fn(&Found) -> bool| found.iter().filter(|v| f(&v.found)).count();
            let applied = n(|f| matches!(f, Found::Applied | Found::PartlyApplied));
            let dropped = n(|f| matches!(f, Found::NotApplied | Found::NeverSent));
            let unknown = n(|f| matches!(f, Found::Unknowable { .. }));
            let mut msg = format!(
                "Checked an interrupted run: {} applied, {} dropped",
                thousands(applied),
                thousands(dropped)
            );
            if unknown > 0 {
                msg.push_str(&format!(
                    ", {} unknown ({})",
                    thousands(unknown),
                    d.see_errors()
                ));
            }
            msg.push_str("; p plans what the directory still wants.");
            d.say(Topic::Journal, msg);
            fx.push(Effect::LoadDirectory);
            // The listing may have started before the journal was checked: list again.
            if applied > 0 && d.directory_loaded && !matches!(d.load, Load::Waiting) {
                start_load(d, fx);
            }
        }
        Err(e) => {
            d.push_error(ErrorEntry::from_failure(&e));
            d.tell(
                Topic::Journal,
                Tone::Bad,
                format!("Checking the interrupted run failed ({}).", d.see_errors()),
            );
        }
    }
    true
}

fn directory_loaded(
    s: &mut AppState,
    result: Result<DirectorySnapshot, Failure>,
    fx: &mut Vec<Effect>,
) {
    let data = &mut s.data;
    match result {
        Ok(snap) => {
            let d = &mut data.directory;
            d.hay.clear();
            d.flags.clear();
            d.counts = [0; 3];
            d.pending = [0; 3];
            for u in &snap.users {
                d.flags.push(pack(u.wanted(), u.binding));
                d.hay.push(&[&u.display_name, &u.email]);
                d.counts[binding_slot(u.binding)] += 1;
                if let Some(p) = PendingOp::of(u) {
                    d.pending[p.slot()] += 1;
                }
            }
            d.users = snap.users;
            d.groups = snap.groups;
            d.upn_overrides = snap.upn_overrides;
            data.directory_gen += 1;
            for f in &snap.failures {
                data.push_error(ErrorEntry::from_import(f));
            }
            for (op, diag) in &snap.journal_failures {
                data.push_error(ErrorEntry::from_op_diagnosis(op, diag.clone()));
            }
            // Passwords never delivered stay in Errors until a new one is set.
            data.retain_errors(|e| e.kind() != "password-not-delivered");
            for u in &snap.undelivered {
                data.push_error(ErrorEntry::password_lost(&u.email, &u.at));
            }
            data.index = snap.index;
            data.index_version += 1;
            data.directory_loaded = true;
            if !data.rows.is_empty() {
                fx.push(Effect::Reclassify {
                    gen: data.load_gen,
                    index_version: data.index_version,
                    first_row: 0,
                    pages: data.rows.pages.clone(),
                    index: data.index.clone(),
                });
            }
        }
        Err(e) => data.push_error(ErrorEntry::from_failure(&e)),
    }
    if std::mem::take(&mut data.recheck_after_load) {
        preview::start_check(data, fx);
    }
    if data.load == Load::Waiting {
        start_load(data, fx);
    }
}

/// A tab was switched to: the Licences tab reads the licences the first time.
fn entered(s: &mut AppState, fx: &mut Vec<Effect>) {
    if s.tab == Tab::Licences && s.data.licences.report.is_none() {
        super::tabs::licences::load(&mut s.data, fx);
    }
}

/// `r`: bring the tenant users up to date with a delta round (`full`: list them all again);
/// the rows shown stay until the new ones arrive; the rows kept on screen after they stopped
/// passing a filter go.
fn refresh(s: &mut AppState, full: bool, fx: &mut Vec<Effect>) {
    for t in Tab::ALL {
        s.tabs.get_mut(*t).refresh(&s.data);
    }
    if s.tab == Tab::Licences {
        super::tabs::licences::load(&mut s.data, fx);
    }
    let d = &mut s.data;
    if !d.directory_loaded {
        d.load = Load::Waiting;
        fx.push(Effect::LoadDirectory);
        return;
    }
    start_load_with(d, full, fx);
}

/// A new refresh of the tenant users, a delta round when one can be made: latest wins, news
/// of older generations is dropped. The rows on screen stay until new ones arrive.
pub fn start_load(d: &mut Data, fx: &mut Vec<Effect>) {
    start_load_with(d, false, fx)
}

/// A new refresh; `full`: a full listing, not a delta round.
pub fn start_load_with(d: &mut Data, full: bool, fx: &mut Vec<Effect>) {
    d.load_gen += 1;
    // A whole copy of the tenant stays (and can be planned on) until the refreshed one
    // replaces it; a partial listing goes with the first page of the new one.
    d.reloading = !d.rows.is_empty() && !d.complete_copy;
    d.load = Load::Loading { pages: 0 };
    d.refreshing = None;
    d.unsay(Topic::Load);
    fx.push(Effect::LoadUsers {
        gen: d.load_gen,
        page_size: PAGE_SIZE,
        index: d.index.clone(),
        index_version: d.index_version,
        full,
    });
}

/// Every tenant user is on screen: the gauge ends, a sort asked for is made, a preview asked
/// for during the listing opens.
fn listing_complete(s: &mut AppState, fx: &mut Vec<Effect>) {
    s.data.load = Load::Done;
    s.data.refreshing = None;
    s.data.expected = Some(s.data.rows.len());
    s.tabs.import.listing_done(&s.data, fx);
    if std::mem::take(&mut s.data.preview_after_listing) {
        if s.modal.is_open() || s.question.is_some() {
            let p = s
                .data
                .tab_key(super::tabs::bindings::SECTION.name, Command::Preview);
            s.data.say(
                Topic::Plan,
                format!("Every tenant user is listed: {p} previews the plan."),
            );
        } else {
            let o = preview::start_plan(&mut s.data, fx);
            apply_outcome(s, o, false);
        }
    }
}

/// The load failed: said, with the rows shown kept (a saved copy can still be planned on).
fn load_failed(d: &mut Data, message: String) {
    d.load = Load::Failed { message };
    d.refreshing = None;
    if std::mem::take(&mut d.preview_after_listing) {
        d.tell(
            Topic::Plan,
            Tone::Bad,
            format!(
                "Listing the tenant users failed ({}): the preview cannot open.",
                d.see_errors()
            ),
        );
    } else if d.complete_copy {
        let when = d.as_of.map(|a| a.label()).unwrap_or_default();
        d.tell(
            Topic::Load,
            Tone::Warn,
            format!(
                "Bringing the tenant users up to date failed ({}): the saved copy {when} is \
                 shown.",
                d.see_errors()
            ),
        );
    }
}

/// The rows replaced at once by the tenant snapshot's (built off the UI thread).
fn tenant_loaded(
    s: &mut AppState,
    gen: u64,
    index_version: u64,
    (rows, upns, extras): (
        TenantRows,
        std::collections::HashMap<String, String>,
        std::sync::Arc<TenantExtras>,
    ),
    as_of: AsOf,
    done: Option<String>,
    fx: &mut Vec<Effect>,
) -> bool {
    if gen != s.data.load_gen {
        return false;
    }
    let d = &mut s.data;
    d.rows = rows;
    d.account_upns = upns;
    d.tenant_extras = extras;
    d.as_of = Some(as_of);
    d.complete_copy = true;
    d.reloading = false;
    s.tabs.import.rows_replaced();
    s.tabs.import.rows_appended(&s.data, 0);
    let d = &mut s.data;
    if index_version != d.index_version && !d.rows.is_empty() {
        // Classified with an older index: again with this one.
        fx.push(Effect::Reclassify {
            gen,
            index_version: d.index_version,
            first_row: 0,
            pages: d.rows.pages.clone(),
            index: d.index.clone(),
        });
    }
    let Some(line) = done else {
        return true; // the saved copy, while a refresh runs
    };
    // What a full listing did (and why) is always said; a quiet delta round does not push
    // out other news.
    let full = d.refreshing.as_ref().is_some_and(|r| r.full.is_some());
    if full || d.message.as_ref().is_none_or(|m| m.topic == Topic::Load) {
        d.say(Topic::Load, format!("{}.", upper_first(&line)));
    }
    listing_complete(s, fx);
    true
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// News of the refresh of load `gen`, for the status line.
fn refreshing(d: &mut Data, gen: u64, news: super::action::RefreshNews) -> bool {
    use super::action::RefreshNews;
    if gen != d.load_gen {
        return false;
    }
    match news {
        RefreshNews::DeltaRound => {
            d.refreshing = Some(Refreshing {
                full: None,
                listed: 0,
                expected: None,
            })
        }
        RefreshNews::FullListing { why } => {
            d.say(Topic::Load, format!("{why}."));
            d.refreshing = Some(Refreshing {
                full: Some(why),
                listed: 0,
                expected: d.expected.map(|n| n as u64),
            });
        }
        RefreshNews::Listed { listed, expected } => match &mut d.refreshing {
            Some(r) => {
                r.listed = listed;
                r.expected = expected.or(r.expected);
            }
            None => return false,
        },
        RefreshNews::Restarted => {
            if let Some(r) = &mut d.refreshing {
                r.listed = 0;
            }
            if !d.complete_copy {
                // The pages streamed so far are void: the next page replaces them.
                d.reloading = !d.rows.is_empty();
            }
        }
    }
    true
}

/// `y` ran a delta round first and it changed the plan: nothing was sent; the new plan is
/// previewed instead, saying so.
fn apply_replanned(s: &mut AppState, view: Box<PlanView>, round: String) {
    s.data.applying = false;
    if view.in_sync() {
        s.modal = Modal::None;
        s.data.tell(
            Topic::Plan,
            Tone::Warn,
            format!("Nothing was sent: {round}, and now the tenant already matches the directory."),
        );
        return;
    }
    s.modal = Modal::Preview(Box::new(Preview::new(*view, &s.data)));
    let y = s
        .data
        .keymap
        .key_for(&[preview::SECTION.name], Command::Confirm);
    s.data.tell(
        Topic::Plan,
        Tone::Warn,
        format!(
            "Nothing was sent: {round}, and the plan changed. This is the plan now: check it, \
             then {y} applies it."
        ),
    );
}

/// `x`: stop the listing (said, never silent; `r` lists again).
fn stop_load(d: &mut Data, fx: &mut Vec<Effect>) -> bool {
    if !matches!(d.load, Load::Loading { .. } | Load::Waiting) {
        return false;
    }
    d.load_gen += 1;
    d.load = Load::Cancelled;
    d.refreshing = None;
    d.preview_after_listing = false;
    let r = d.tab_key(super::tabs::import::SECTION.name, Command::Refresh);
    d.tell(
        Topic::Load,
        Tone::Warn,
        if d.reloading || d.complete_copy {
            format!("Stopped listing: the last listing is still shown; {r} lists again.")
        } else {
            format!(
                "Stopped listing at {} users; {r} lists them again.",
                thousands(d.rows.len())
            )
        },
    );
    fx.push(Effect::CancelLoad);
    true
}

/// Appends one page of classified tenant users: O(page).
/// A page of load `s.data.load_gen` (a listing's, or the saved copy's as it decodes) on
/// screen; `replace`: it replaces the rows there (so does the first page of a listing that
/// replaces a partial one). A page classified with an older index is classified again.
fn page_arrived(
    s: &mut AppState,
    index_version: u64,
    users: Arc<Vec<User>>,
    statuses: &[ImportStatus],
    replace: bool,
    fx: &mut Vec<Effect>,
) {
    if replace || s.data.reloading {
        s.data.rows.clear();
        s.data.account_upns.clear();
        s.data.reloading = false;
        s.data.complete_copy = false;
        s.tabs.import.rows_replaced();
    }
    let first = apply_page(s, users, statuses);
    let d = &mut s.data;
    if index_version != d.index_version {
        // Classified with an index older than ours: classify that page again.
        fx.push(Effect::Reclassify {
            gen: d.load_gen,
            index_version: d.index_version,
            first_row: first,
            pages: vec![d.rows.pages.last().expect("page just pushed").clone()],
            index: d.index.clone(),
        });
    }
}

pub(crate) fn apply_page(
    s: &mut AppState,
    users: Arc<Vec<User>>,
    statuses: &[ImportStatus],
) -> u32 {
    let d = &mut s.data;
    let first = d.rows.push_shared(users, statuses);
    for r in first as usize..d.rows.len() {
        if d.rows.status[r] == ImportStatus::Imported {
            let u = d.rows.user(r as u32);
            d.account_upns
                .insert(u.id.clone(), u.user_principal_name.clone());
        }
    }
    s.tabs.import.rows_appended(&s.data, first);
    first
}

/// Pasted text goes to the focused text field only, as text: a newline in it never presses
/// Enter, its letters never run commands.
fn paste(s: &mut AppState, text: &str) -> bool {
    let (c, layer) = focus(s);
    let mode = c.text_mode(&s.data);
    // One line: line breaks become spaces (trailing ones dropped), other controls go.
    let text: String = text
        .trim_end_matches(['\r', '\n'])
        .chars()
        .filter_map(|c| match c {
            '\r' | '\n' | '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect();
    let chars: Vec<char> = match mode {
        TextMode::All => text.chars().collect(),
        TextMode::Digits => text.chars().filter(|c| c.is_ascii_digit()).collect(),
        TextMode::None => {
            if layer == Layer::Tab {
                let key = s.data.keymap.key_for(&[section::LIST], Command::Filter);
                s.data.say(
                    Topic::Key,
                    format!("Pasted text goes into a text field: {key} starts a filter."),
                );
                return true;
            }
            return false;
        }
    };
    match layer {
        Layer::Tab => {
            let tab = s.tabs.get_mut(s.tab);
            let v = tab.list_mut();
            for ch in chars {
                v.input.handle(InputRequest::InsertChar(ch));
            }
            tab.filter_changed(&s.data);
            true
        }
        Layer::Dialog => match s.modal.get_mut() {
            Some(d) => {
                let mut any = false;
                for ch in chars {
                    any |= d.input(&mut s.data, InputRequest::InsertChar(ch));
                }
                any
            }
            None => false,
        },
        _ => false,
    }
}

/// The wheel scrolls what has the focus; a click on a tab's title goes there, a click on a
/// row selects it.
fn mouse(s: &mut AppState, m: Mouse, fx: &mut Vec<Effect>) -> bool {
    if s.data.phase != Phase::Main && s.help.is_none() {
        return false;
    }
    match m {
        Mouse::ScrollDown | Mouse::ScrollUp => {
            let c = if m == Mouse::ScrollDown {
                Command::Down
            } else {
                Command::Up
            };
            if !offered(s)(c) {
                return false;
            }
            let mut any = false;
            for _ in 0..3 {
                any |= command(s, c, fx);
            }
            any
        }
        Mouse::Click { column, row } => {
            if s.help.is_some() {
                s.help = None;
                return true;
            }
            if s.question.is_some() || s.modal.is_open() {
                return false;
            }
            let screen = layout::screen_of(&s.data);
            if row == screen.header.y {
                for (tab, x0, x1) in super::view::header_tabs(s) {
                    if column >= x0 && column < x1 {
                        s.tab = tab;
                        return true;
                    }
                }
                return false;
            }
            let rows = list_rows(s);
            let t = s.tabs.get_mut(s.tab);
            let area = t.list_area(&s.data, screen.body);
            let v = t.list_mut();
            match layout::list_row_at(area, v.offset, column, row) {
                Some(i) if i < v.shown.len() => {
                    v.selected = i;
                    v.follow(rows);
                    true
                }
                _ => false,
            }
        }
    }
}

/// The help of the focused screen: its own sections, then the shared ones, with only the keys
/// that work there.
pub fn help_for(s: &AppState) -> Help {
    let (c, layer) = focus(s);
    let names = sections(s);
    let offer = offered(s);
    let km = &s.data.keymap;
    // A key is listed once, in the most specific section that binds it.
    let seen = std::cell::RefCell::new(Vec::<String>::new());
    let rows = |sec: &Section, all: bool| -> HelpSection {
        let f = |x: Command| all || offer(x);
        let mut r = km.help_rows(&names, sec.name, f);
        let mut seen = seen.borrow_mut();
        for (keys, _) in r.iter_mut() {
            let fresh: Vec<&str> = keys
                .split(' ')
                .filter(|k| !seen.iter().any(|s| s == k))
                .collect();
            let fresh = fresh.join(" ");
            seen.extend(keys.split(' ').map(str::to_string));
            *keys = fresh;
        }
        r.retain(|(k, _)| !k.is_empty());
        (sec.title.to_string(), r)
    };
    let shared_names = [section::LIST, section::DIALOG, section::GLOBAL];
    let mine = c.sections(&s.data);
    let mut own: Vec<HelpSection> = mine
        .iter()
        .filter(|x| !shared_names.contains(&x.name))
        .map(|x| rows(x, false))
        .collect();
    let mut shared: Vec<HelpSection> = mine
        .iter()
        .filter(|x| shared_names.contains(&x.name))
        .map(|x| rows(x, false))
        .collect();
    if layer == Layer::Tab && !mine.contains(&Section::FILTER) {
        // What `/` leads to.
        let f = km.help_rows(&[section::FILTER], section::FILTER, |_| true);
        own.push((Section::FILTER.title.to_string(), f));
    }
    if names.contains(&section::GLOBAL) {
        shared.push(rows(&Section::GLOBAL, false));
    }
    Help {
        own,
        shared,
        scroll: 0,
    }
}

/// 12345 -> "12,345" (`crate::format::thousands`).
pub fn fmt_count(n: usize) -> String {
    thousands(n)
}
