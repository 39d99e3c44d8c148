//! Key -> intent. Keys are data: `{ on, action, desc }` rows in `assets/keymap.toml`, grouped in
//! sections (one per screen: `global`, `list`, each tab's, each dialog's); `desc` feeds the help
//! overlay and `hint` the bottom hint bar, both filtered by what the focused screen offers. A
//! user's `keymap.toml` in the data directory is merged in front of the defaults.
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use serde::Deserialize;

/// The default bindings, compiled in.
pub const DEFAULT_KEYMAP: &str = include_str!("../assets/keymap.toml");

/// What a key asks for. Names are the `action` strings of keymap.toml (`go_tab` takes the tab's
/// number: `action = { go_tab = 2 }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Quit,
    Help,
    NextTab,
    PrevTab,
    /// The n-th tab (1 = the first of the registry).
    GoTab(u8),
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
    /// List every tenant user again (a full listing, not a delta round).
    ListAgain,
    /// Stop listing the tenant users (never Esc: it must not cancel a reload by surprise).
    StopLoad,
    RetrySignIn,
    /// Open the detail of the selected row.
    Open,
    /// Link a Conflict to the directory user holding its address.
    Link,
    /// Sort by the next / previous column; reverse the order.
    SortNext,
    SortPrev,
    SortReverse,
    /// The next / previous row matching the last filter text, in the whole list.
    SearchNext,
    SearchPrev,
    /// Scroll a detail pane.
    DetailDown,
    DetailUp,
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
    /// In a dialog: set the typed password, save the typed value, close a finished run (Enter).
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
    /// Licences: assign the selected SKU to a directory group or user (a dialog picks who
    /// and the service plans).
    AssignLicence,
    /// Licence dialog: turn the selected service plan off or on.
    TogglePlan,
    /// Licence dialog: remove the SKU from the group or user picked.
    UnassignLicence,
}

/// The sections of keymap.toml every screen shares; tabs and dialogs name their own.
pub mod section {
    /// Everywhere (tabs, help, quit).
    pub const GLOBAL: &str = "global";
    /// Every tab's list: moving, filtering, sorting, detail.
    pub const LIST: &str = "list";
    /// While typing a `/` filter.
    pub const FILTER: &str = "filter";
    /// Every dialog: back, scrolling.
    pub const DIALOG: &str = "dialog";
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
    /// The section of keymap.toml: `global`, `list`, a tab's or a dialog's.
    pub section: String,
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

impl Default for Keymap {
    fn default() -> Self {
        Keymap::from_toml(DEFAULT_KEYMAP).expect("assets/keymap.toml is valid")
    }
}

impl Keymap {
    /// Every section of `text` (`name = [ { on, action, desc, hint } ... ]`); which sections
    /// exist is checked by [`Keymap::check_sections`] against the screens that use them.
    pub fn from_toml(text: &str) -> Result<Keymap, String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut bindings = Vec::new();
        for (section, rows) in table {
            let rows: Vec<Row> = rows
                .try_into()
                .map_err(|e: toml::de::Error| format!("[{section}] {}", e.message()))?;
            for r in rows {
                let key = Key::parse(&r.on).map_err(|e| format!("[{section}] {e}"))?;
                bindings.push(Binding {
                    section: section.clone(),
                    key,
                    command: r.action,
                    desc: r.desc,
                    hint: r.hint,
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

    /// A section no screen uses is a typo in a user's file: say which, and what exists.
    pub fn check_sections(&self, known: &[&str]) -> Result<(), String> {
        let mut unknown: Vec<&str> = self
            .bindings
            .iter()
            .map(|b| b.section.as_str())
            .filter(|s| !known.contains(s))
            .collect();
        unknown.dedup();
        match unknown.first() {
            None => Ok(()),
            Some(s) => Err(format!(
                "unknown section `{s}`; the sections are: {}",
                known.join(", ")
            )),
        }
    }

    /// The command bound to `key` in the first of `sections` that binds it; a shifted arrow
    /// nothing binds acts as the plain one.
    pub fn lookup(&self, sections: &[&str], key: Key) -> Option<Command> {
        let found = sections.iter().find_map(|sec| {
            self.bindings
                .iter()
                .find(|b| b.section == *sec && b.key == key)
                .map(|b| b.command)
        });
        match found {
            None if key.shift => self.lookup(
                sections,
                Key {
                    shift: false,
                    ..key
                },
            ),
            f => f,
        }
    }

    /// Hint bar entries for `sections`, of the commands `offered` says do something now: rows
    /// with a `hint`, grouped by hint word, keys joined with `/` (`j/k move`). A key shadowed
    /// by a more specific section is left out. (keys, word, section)
    pub fn hints(
        &self,
        sections: &[&str],
        offered: impl Fn(Command) -> bool,
    ) -> Vec<(String, String, String)> {
        let mut out: Vec<(String, String, String)> = Vec::new();
        // A key a more specific section binds (with a hint or not) is that section's.
        let mut seen: Vec<Key> = Vec::new();
        for sec in sections {
            let here: Vec<Key> = self
                .bindings
                .iter()
                .filter(|b| b.section == *sec)
                .map(|b| b.key)
                .collect();
            for b in self.bindings.iter().filter(|b| b.section == *sec) {
                let Some(hint) = &b.hint else { continue };
                if self.lookup(sections, b.key) != Some(b.command)
                    || !offered(b.command)
                    || seen.contains(&b.key)
                {
                    continue;
                }
                match out.iter_mut().find(|(_, h, _)| h == hint) {
                    Some((keys, _, _)) => {
                        let k = b.key.to_string();
                        if !keys.split('/').any(|x| x == k) {
                            keys.push('/');
                            keys.push_str(&k);
                        }
                    }
                    None => out.push((b.key.to_string(), hint.clone(), sec.to_string())),
                }
            }
            seen.extend(here);
        }
        out
    }

    /// Help rows of one section, of the commands `offered` says do something now (keys with
    /// the same description joined: `j ↓`). A key shadowed by a section before it in
    /// `sections` is left out.
    pub fn help_rows(
        &self,
        sections: &[&str],
        section: &str,
        offered: impl Fn(Command) -> bool,
    ) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for b in self.bindings.iter().filter(|b| b.section == section) {
            if !offered(b.command) || self.lookup(sections, b.key) != Some(b.command) {
                continue;
            }
            match out.iter_mut().find(|(_, d)| *d == b.desc) {
                Some((keys, _)) => {
                    let k = b.key.to_string();
                    if !keys.split(' ').any(|x| x == k) {
                        keys.push(' ');
                        keys.push_str(&k);
                    }
                }
                None => out.push((b.key.to_string(), b.desc.clone())),
            }
        }
        out
    }

    /// The first key that gives `c` in `sections` (for "press r to reload"), or "".
    pub fn key_for(&self, sections: &[&str], c: Command) -> String {
        sections
            .iter()
            .find_map(|sec| {
                self.bindings
                    .iter()
                    .find(|b| b.section == *sec && b.command == c)
                    .filter(|b| self.lookup(sections, b.key) == Some(c))
                    .map(|b| b.key.to_string())
            })
            .unwrap_or_default()
    }
}

/// Only presses (and repeats) are keys: Windows terminals also report releases.
pub fn is_press(ev: &KeyEvent) -> bool {
    matches!(ev.kind, KeyEventKind::Press | KeyEventKind::Repeat)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAB: &[&str] = &["import", "list", "global"];

    #[test]
    fn default_keymap_parses_and_resolves_by_section() {
        let km = Keymap::default();
        let r = Key::parse("r").unwrap();
        assert_eq!(
            km.lookup(&["signin", "global"], r),
            Some(Command::RetrySignIn)
        );
        assert_eq!(km.lookup(TAB, r), Some(Command::Refresh));
        let g = Key::parse("G").unwrap();
        assert_eq!(km.lookup(&["list"], g), Some(Command::Bottom));
        // `g` and Home mean the first row everywhere, the groups toggle included.
        for tab in ["import", "bindings", "errors"] {
            for k in ["g", "home"] {
                assert_eq!(
                    km.lookup(&[tab, "list", "global"], Key::parse(k).unwrap()),
                    Some(Command::Top),
                    "{k} on {tab}"
                );
            }
        }
        let cd = Key::parse("ctrl-d").unwrap();
        assert_eq!(km.lookup(&["list"], cd), Some(Command::HalfDown));
        assert_eq!(Key::parse("shift-tab").unwrap().code, KeyCode::BackTab);
        assert!(Key::parse("nope").is_err());
        let sd = Key::parse("shift-down").unwrap();
        assert!(sd.shift && sd.code == KeyCode::Down);
        assert_eq!(sd.to_string(), "S-↓");
        let ev = KeyEvent::new(KeyCode::Down, KeyModifiers::SHIFT);
        assert_eq!(Key::from_event(&ev), sd);
        assert_eq!(
            km.lookup(&["bindings", "list"], sd),
            Some(Command::MarkDown)
        );
        // Where nothing binds shift-down it moves like down.
        assert_eq!(km.lookup(&["list"], sd), Some(Command::Down));
        // Shift is part of a character: `V` from a terminal that reports SHIFT is still `V`.
        let v = KeyEvent::new(KeyCode::Char('V'), KeyModifiers::SHIFT);
        assert_eq!(Key::from_event(&v), Key::parse("V").unwrap());
        assert_eq!(
            km.lookup(&["global"], Key::parse("3").unwrap()),
            Some(Command::GoTab(3))
        );
    }

    #[test]
    fn hints_group_keys_by_word_and_only_offered_commands() {
        let km = Keymap::default();
        let h = km.hints(TAB, |_| true);
        assert!(h.iter().any(|(k, w, _)| k == "j/k" && w == "move"), "{h:?}");
        assert!(h.iter().any(|(k, w, _)| k == "i" && w == "import"));
        // `r` means reload here: the sign-in `r` is not offered.
        assert!(!h.iter().any(|(_, w, _)| w == "new code"));
        let h = km.hints(TAB, |c| c != Command::Import);
        assert!(!h.iter().any(|(_, w, _)| w == "import"));
        assert_eq!(km.key_for(TAB, Command::Refresh), "r");
    }

    #[test]
    fn overrides_come_first_and_unknown_sections_are_named() {
        let km = Keymap::with_overrides(
            "list = [ { on = \"n\", action = \"down\", desc = \"next\" } ]\n",
        )
        .unwrap();
        assert_eq!(
            km.lookup(&["list"], Key::parse("n").unwrap()),
            Some(Command::Down)
        );
        assert!(
            Keymap::from_toml("list = [ { on = \"n\", action = \"fly\", desc = \"x\" } ]").is_err()
        );
        let typo = Keymap::from_toml("lsit = [ { on = \"n\", action = \"down\", desc = \"x\" } ]")
            .unwrap();
        let e = typo.check_sections(&["list", "global"]).unwrap_err();
        assert!(e.contains("lsit") && e.contains("list, global"), "{e}");
    }
}
