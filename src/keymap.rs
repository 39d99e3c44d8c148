//! Key -> intent. Keys are data: `{ on, action, desc }` rows in `assets/keymap.toml`, grouped by
//! context; `desc` feeds the help overlay and `hint` the bottom hint bar. A user's
//! `keymap.toml` in the data directory is merged in front of the defaults.
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use serde::Deserialize;

/// The default bindings, compiled in.
pub const DEFAULT_KEYMAP: &str = include_str!("../assets/keymap.toml");

/// What a key asks for. Names are the `action` strings of keymap.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Quit,
    Help,
    NextTab,
    PrevTab,
    TabImport,
    TabBindings,
    TabErrors,
    Down,
    Up,
    Top,
    Bottom,
    PageDown,
    PageUp,
    HalfDown,
    HalfUp,
    Filter,
    FilterKeep,
    FilterClear,
    Back,
    CycleStatus,
    ToggleMark,
    MarkAll,
    UnmarkAll,
    Import,
    Refresh,
    RetrySignIn,
    /// Bindings: toggle the desired binding of the marked rows, else of this row.
    ToggleWant,
    /// Bindings: switch the list between directory users and directory groups.
    ToggleGroups,
    /// Bindings: want bound / unbound, whatever it was.
    Bind,
    Unbind,
    /// Bindings: mark or unmark this row (Space toggles the binding there).
    MarkRow,
    /// Mark every shown row from the last marked one to this one.
    MarkRange,
    /// Mark this row and move (shift-arrows).
    MarkDown,
    MarkUp,
    /// Marked rows shown become unmarked and the others marked.
    InvertMarks,
    /// Compute the plan and open the preview.
    Preview,
    /// Open the masked password input for this row.
    SetPassword,
    /// Ask to disconnect the tenant.
    Disconnect,
    /// In a dialog: apply the plan, yes to the question (`y`, never Enter).
    Confirm,
    /// In a dialog: set the typed password, close a finished run (Enter).
    Submit,
    /// Passwords panel: copy the selected one to the clipboard (OSC 52).
    CopyPassword,
    /// Passwords panel: write the hand-off CSV (mode 0600).
    WriteHandoff,
    /// Errors: preview the selected error's main one-key fix.
    Fix,
    /// Fix dialog: offer the error's next fix instead.
    NextFix,
    /// Errors: export the errors shown (asks CSV or JSON).
    Export,
    /// Export dialog: CSV / JSON.
    ExportCsv,
    ExportJson,
    /// Open the domain settings.
    Domains,
    /// Domain settings: enable or disable the selected domain.
    ToggleDomain,
    /// Domain settings: make the selected domain the integration's default.
    DefaultDomain,
}

/// Where a binding applies, most specific first when a key is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    Filter,
    /// The export dialog of the Errors tab (CSV or JSON).
    Export,
    /// A dialog over the Bindings tab: preview, progress, passwords, password input, confirm.
    Dialog,
    SignIn,
    Import,
    Bindings,
    Errors,
    List,
    Global,
}

impl Context {
    pub const ALL: [Context; 9] = [
        Context::Filter,
        Context::Export,
        Context::Dialog,
        Context::SignIn,
        Context::Import,
        Context::Bindings,
        Context::Errors,
        Context::List,
        Context::Global,
    ];
    pub fn title(self) -> &'static str {
        match self {
            Context::Filter => "While filtering",
            Context::Export => "Export dialog",
            Context::Dialog => "Dialogs (preview, progress, passwords)",
            Context::SignIn => "Sign-in",
            Context::Import => "Import tab",
            Context::Bindings => "Bindings tab",
            Context::Errors => "Errors tab",
            Context::List => "Lists",
            Context::Global => "Everywhere",
        }
    }
    fn key(self) -> &'static str {
        match self {
            Context::Filter => "filter",
            Context::Export => "export",
            Context::Dialog => "dialog",
            Context::SignIn => "signin",
            Context::Import => "import",
            Context::Bindings => "bindings",
            Context::Errors => "errors",
            Context::List => "list",
            Context::Global => "global",
        }
    }
}

/// A key as written in keymap.toml: a code plus Ctrl/Alt/Shift. Shift is part of the
/// character (`G`, `?`) and of `shift-tab`, so it is tracked only for the other keys
/// (`shift-down`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
    pub shift: bool,
}

impl Key {
    pub fn parse(spec: &str) -> Result<Key, String> {
        let mut ctrl = false;
        let mut alt = false;
        let mut shift = false;
        let mut rest = spec;
        loop {
            if rest.len() > 1 && rest != "shift-tab" {
                if let Some(r) = rest.strip_prefix("shift-") {
                    shift = true;
                    rest = r;
                    continue;
                }
                if let Some(r) = rest.strip_prefix("ctrl-") {
                    ctrl = true;
                    rest = r;
                    continue;
                }
                if let Some(r) = rest.strip_prefix("alt-") {
                    alt = true;
                    rest = r;
                    continue;
                }
            }
            break;
        }
        let code = match rest {
            "space" => KeyCode::Char(' '),
            "enter" => KeyCode::Enter,
            "esc" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "shift-tab" | "backtab" => KeyCode::BackTab,
            "backspace" => KeyCode::Backspace,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pgup" | "pageup" => KeyCode::PageUp,
            "pgdn" | "pagedown" => KeyCode::PageDown,
            "delete" => KeyCode::Delete,
            s => {
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => KeyCode::Char(c),
                    _ => return Err(format!("unknown key `{spec}`")),
                }
            }
        };
        let shift = shift && shift_counts(code);
        Ok(Key {
            code,
            ctrl,
            alt,
            shift,
        })
    }

    pub fn from_event(ev: &KeyEvent) -> Key {
        let code = match ev.code {
            // Some terminals report Ctrl-letters in upper case with SHIFT.
            KeyCode::Char(c) if ev.modifiers.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            c => c,
        };
        Key {
            code,
            ctrl: ev.modifiers.contains(KeyModifiers::CONTROL),
            alt: ev.modifiers.contains(KeyModifiers::ALT),
            shift: ev.modifiers.contains(KeyModifiers::SHIFT) && shift_counts(code),
        }
    }
}

/// Shift is already in a character (`V`) and in back-tab; it is a modifier of the others.
fn shift_counts(code: KeyCode) -> bool {
    !matches!(code, KeyCode::Char(_) | KeyCode::BackTab)
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("Ctrl-")?;
        }
        if self.alt {
            f.write_str("Alt-")?;
        }
        if self.shift {
            f.write_str("S-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("S-Tab"),
            KeyCode::Backspace => f.write_str("Bksp"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::Delete => f.write_str("Del"),
            other => write!(f, "{other:?}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub context: Context,
    pub key: Key,
    pub command: Command,
    pub desc: String,
    pub hint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    pub bindings: Vec<Binding>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    on: String,
    action: Command,
    desc: String,
    #[serde(default)]
    hint: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    filter: Vec<Row>,
    #[serde(default)]
    export: Vec<Row>,
    #[serde(default)]
    dialog: Vec<Row>,
    #[serde(default)]
    signin: Vec<Row>,
    #[serde(default)]
    import: Vec<Row>,
    #[serde(default)]
    bindings: Vec<Row>,
    #[serde(default)]
    errors: Vec<Row>,
    #[serde(default)]
    list: Vec<Row>,
    #[serde(default)]
    global: Vec<Row>,
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap::from_toml(DEFAULT_KEYMAP).expect("assets/keymap.toml is valid")
    }
}

impl Keymap {
    pub fn from_toml(text: &str) -> Result<Keymap, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut bindings = Vec::new();
        for ctx in Context::ALL {
            let rows = match ctx {
                Context::Filter => &file.filter,
                Context::Export => &file.export,
                Context::Dialog => &file.dialog,
                Context::SignIn => &file.signin,
                Context::Import => &file.import,
                Context::Bindings => &file.bindings,
                Context::Errors => &file.errors,
                Context::List => &file.list,
                Context::Global => &file.global,
            };
            for r in rows {
                let key = Key::parse(&r.on).map_err(|e| format!("[{}] {e}", ctx.key()))?;
                bindings.push(Binding {
                    context: ctx,
                    key,
                    command: r.action,
                    desc: r.desc.clone(),
                    hint: r.hint.clone(),
                });
            }
        }
        Ok(Keymap { bindings })
    }

    /// The defaults with `overrides` (a user's keymap.toml) searched first.
    pub fn with_overrides(overrides: &str) -> Result<Keymap, String> {
        let mut km = Keymap::from_toml(overrides)?;
        km.bindings.extend(Keymap::default().bindings);
        Ok(km)
    }

    /// The command bound to `key` in the first of `contexts` that binds it; a shifted arrow
    /// nothing binds acts as the plain one.
    pub fn lookup(&self, contexts: &[Context], key: Key) -> Option<Command> {
        let found = contexts.iter().find_map(|ctx| {
            self.bindings
                .iter()
                .find(|b| b.context == *ctx && b.key == key)
                .map(|b| b.command)
        });
        match found {
            None if key.shift => self.lookup(
                contexts,
                Key {
                    shift: false,
                    ..key
                },
            ),
            f => f,
        }
    }

    /// Hint bar entries for `contexts`: rows with a `hint`, grouped by hint word, keys joined
    /// with `/` (`j/k move`). A key shadowed by a more specific context is left out.
    pub fn hints(&self, contexts: &[Context]) -> Vec<(String, String, Context)> {
        self.hints_where(contexts, |_| true)
    }

    /// `hints` of the commands `offered` says do something now (a dialog offers few).
    pub fn hints_where(
        &self,
        contexts: &[Context],
        offered: impl Fn(Command) -> bool,
    ) -> Vec<(String, String, Context)> {
        let mut out: Vec<(String, String, Context)> = Vec::new();
        for ctx in contexts {
            for b in self.bindings.iter().filter(|b| b.context == *ctx) {
                let Some(hint) = &b.hint else { continue };
                if self.lookup(contexts, b.key) != Some(b.command) || !offered(b.command) {
                    continue;
                }
                match out.iter_mut().find(|(_, h, _)| h == hint) {
                    Some((keys, _, _)) => {
                        keys.push('/');
                        keys.push_str(&b.key.to_string());
                    }
                    None => out.push((b.key.to_string(), hint.clone(), b.context)),
                }
            }
        }
        out
    }

    /// Help overlay rows of one context: keys with the same description joined (`j ↓`).
    pub fn help_rows(&self, ctx: Context) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for b in self.bindings.iter().filter(|b| b.context == ctx) {
            match out.iter_mut().find(|(_, d)| *d == b.desc) {
                Some((keys, _)) => {
                    keys.push(' ');
                    keys.push_str(&b.key.to_string());
                }
                None => out.push((b.key.to_string(), b.desc.clone())),
            }
        }
        out
    }
}

/// Only presses (and repeats) are keys: Windows terminals also report releases.
pub fn is_press(ev: &KeyEvent) -> bool {
    matches!(ev.kind, KeyEventKind::Press | KeyEventKind::Repeat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_keymap_parses_and_resolves_by_context() {
        let km = Keymap::default();
        let r = Key::parse("r").unwrap();
        assert_eq!(
            km.lookup(&[Context::SignIn, Context::Global], r),
            Some(Command::RetrySignIn)
        );
        assert_eq!(
            km.lookup(&[Context::Import, Context::List, Context::Global], r),
            Some(Command::Refresh)
        );
        let g = Key::parse("G").unwrap();
        assert_eq!(km.lookup(&[Context::List], g), Some(Command::Bottom));
        let cd = Key::parse("ctrl-d").unwrap();
        assert_eq!(km.lookup(&[Context::List], cd), Some(Command::HalfDown));
        assert_eq!(Key::parse("shift-tab").unwrap().code, KeyCode::BackTab);
        assert!(Key::parse("nope").is_err());
        let sd = Key::parse("shift-down").unwrap();
        assert!(sd.shift && sd.code == KeyCode::Down);
        assert_eq!(sd.to_string(), "S-↓");
        let ev = KeyEvent::new(KeyCode::Down, KeyModifiers::SHIFT);
        assert_eq!(Key::from_event(&ev), sd);
        assert_eq!(
            km.lookup(&[Context::Bindings, Context::List], sd),
            Some(Command::MarkDown)
        );
        // Where nothing binds shift-down it moves like down.
        assert_eq!(km.lookup(&[Context::List], sd), Some(Command::Down));
        // Shift is part of a character: `V` from a terminal that reports SHIFT is still `V`.
        let v = KeyEvent::new(KeyCode::Char('V'), KeyModifiers::SHIFT);
        assert_eq!(Key::from_event(&v), Key::parse("V").unwrap());
    }

    #[test]
    fn hints_group_keys_by_word() {
        let km = Keymap::default();
        let h = km.hints(&[Context::Import, Context::List, Context::Global]);
        assert!(
            h.contains(&("j/k".into(), "move".into(), Context::List)),
            "{h:?}"
        );
        assert!(h.contains(&("i".into(), "import".into(), Context::Import)));
        // `r` means reload here: the sign-in `r` is not offered.
        assert!(!h.iter().any(|(_, w, _)| w == "new code"));
    }

    #[test]
    fn overrides_come_first() {
        let km = Keymap::with_overrides(
            "list = [ { on = \"n\", action = \"down\", desc = \"next\" } ]\n",
        )
        .unwrap();
        assert_eq!(
            km.lookup(&[Context::List], Key::parse("n").unwrap()),
            Some(Command::Down)
        );
        assert!(
            Keymap::from_toml("list = [ { on = \"n\", action = \"fly\", desc = \"x\" } ]").is_err()
        );
    }
}
