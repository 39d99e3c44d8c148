//! The console: a state store of components.
//!
//! `update(&mut AppState, Action) -> Vec<Effect>` is the only place state changes; the runtime
//! runs effects on tokio and feeds their outcomes back as actions; `draw(frame, &state)`
//! renders. Each tab (`tabs/`, one registry) and each dialog (`dialogs/`, one registry) is a
//! component (`component.rs`): its state, its keys, the keys it offers now (the hint bar and
//! the help), its text field, its drawing and the results of its effects, in one module. The
//! root (`update.rs`) handles the global keys and the phase and dispatches by focus: the help,
//! else a question, else the dialog, else the tab. `layout.rs` is where things are on screen,
//! for scrolling and drawing alike. See DESIGN.md.
//!
//! Benchmarks (no I/O, no terminal): build a big state with `fixtures::loaded_state(1_000_000)`
//! (fixed statuses) or `AppState::with_tenant_users(users, index)` (classified with
//! `DirectoryIndex::classify`), then time `terminal.draw(|f| app::draw(f, &state))` on a
//! ratatui `TestBackend` (send `Action::Resize` first so the state knows the size) and
//! keystrokes: `update(&mut state, Action::Command(Command::Filter))` once, then
//! `update(&mut state, Action::FilterInput(tui_input::InputRequest::InsertChar('x')))`.
pub mod action;
pub mod component;
pub mod dialogs;
pub mod effect;
pub mod explain;
pub mod fixtures;
pub mod layout;
pub mod list;
pub mod runtime;
pub mod signin;
pub mod state;
pub mod tabs;
pub mod update;
pub mod view;

pub use action::Action;
pub use effect::Effect;
pub use state::AppState;
pub use update::update;
pub use view::draw;

use std::sync::Arc;

use crate::config::Settings;
use crate::keymap::Keymap;

/// How `run_tui` is started.
#[derive(Debug, Clone, Default)]
pub struct TuiOptions {
    /// Shown in the header, e.g. "DEMO — simulated tenant".
    pub demo_banner: Option<String>,
    /// Force colour off (true) or on (false); None reads NO_COLOR.
    pub no_color: Option<bool>,
}

/// The initial state for `settings`: the "not set up" screen when the tenant or client id is
/// missing, else the sign-in screen (resuming a cached session first). No I/O.
pub fn initial_state(settings: &Settings, opts: &TuiOptions, keymap: Keymap) -> AppState {
    let mut state = AppState::new(settings.tenant.as_deref().unwrap_or(""));
    state.data.banner = opts.demo_banner.clone();
    state.data.no_color = opts
        .no_color
        .unwrap_or_else(|| std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()));
    state.data.keymap = Arc::new(keymap);
    let missing: Vec<String> = [settings.tenant(), settings.client_id()]
        .into_iter()
        .filter_map(|r| r.err().map(|e| e.to_string()))
        .collect();
    if !missing.is_empty() {
        state.data.phase = state::Phase::Config {
            message: missing.join("\n"),
        };
    }
    state
}

/// The interactive console: sets up the terminal (restored on every exit path and on panic),
/// signs in, loads the directory and the tenant users, and runs until the admin quits.
pub async fn run_tui(settings: Settings, opts: TuiOptions) -> anyhow::Result<()> {
    // Restores the terminal before printing a panic report (ratatui's hook runs first).
    let _ = color_eyre::install();
    let keymap = match std::fs::read_to_string(settings.data_dir.join("keymap.toml")) {
        Ok(text) => Keymap::with_overrides(&text)
            .and_then(|k| k.check_sections(&keymap_sections()).map(|()| k))
            .map_err(|e| {
                anyhow::anyhow!("{}: {e}", settings.data_dir.join("keymap.toml").display())
            })?,
        Err(_) => Keymap::default(),
    };
    let mut state = initial_state(&settings, &opts, keymap);
    let http = match settings.http_client() {
        Ok(c) => Some(c),
        Err(e) => {
            if !matches!(state.data.phase, state::Phase::Config { .. }) {
                state.data.phase = state::Phase::Config {
                    message: format!("{e:#}"),
                };
            }
            None
        }
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let services = runtime::Services::new(settings, http, tx);
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            ratatui::restore();
            return Err(e.into());
        }
    };
    // Pastes arrive as one event (a newline in them is text, not Enter), the wheel and clicks
    // as mouse events; both are turned off again on every way out (panics included).
    let _ = crossterm::execute!(
        std::io::stdout(),
        crossterm::event::EnableBracketedPaste,
        crossterm::event::EnableMouseCapture
    );
    restore_input_modes_on_panic();
    contain_background_panics();
    let initial = update::init(&mut state);
    let events = runtime::terminal_events();
    let result = runtime::run(&mut terminal, state, services, rx, events, initial).await;
    restore_input_modes();
    ratatui::restore();
    result.map(|_| ())
}

/// Every keymap section a screen uses: a user's keymap.toml naming another is a typo.
pub fn keymap_sections() -> Vec<&'static str> {
    use crate::keymap::section;
    let mut v = vec![
        section::GLOBAL,
        section::LIST,
        section::FILTER,
        section::DIALOG,
        signin::SECTION.name,
    ];
    v.extend(tabs::Tab::ALL.iter().map(|t| t.section()));
    v.extend(dialogs::SECTIONS);
    v
}

fn restore_input_modes() {
    let _ = crossterm::execute!(
        std::io::stdout(),
        crossterm::event::DisableMouseCapture,
        crossterm::event::DisableBracketedPaste
    );
}

/// Bracketed paste and mouse capture left on would garble the shell after a panic.
fn restore_input_modes_on_panic() {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_input_modes();
        hook(info);
    }));
}

/// A panic in a background task is already turned into an error the Errors tab shows (see
/// `runtime::Services::spawn`): it must not tear the terminal down under the running UI. Only a
/// panic of the UI thread itself restores the terminal and prints the report.
fn contain_background_panics() {
    let ui_thread = std::thread::current().id();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == ui_thread {
            hook(info);
        } else {
            tracing::error!("background task panicked: {info}");
        }
    }));
}
