//! What every tab and dialog is: a component that owns its state, handles its keys, says which
//! of its keys work now (the hint bar and the help show only those), takes text when it has a
//! field, and draws itself. The traits have no default methods: a new component that forgets
//! one does not compile.
//!
//! Focus is one layer at a time (as in yazi): the help, else a question, else the dialog, else
//! the tab. The root (`update`) handles the global keys and the phase and hands everything
//! else to the focused layer; what it returns ([`Outcome`]) tells the root what to do next.
use ratatui::layout::Rect;
use ratatui::text::Span;
use ratatui::Frame;
use tui_input::InputRequest;

use crate::keymap::Command;
use crate::ui::Theme;

use super::dialogs::{Modal, Question};
use super::effect::Effect;
use super::list::ListView;
use super::state::Data;

/// A section of keymap.toml and its title in the help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    pub name: &'static str,
    pub title: &'static str,
}

impl Section {
    pub const GLOBAL: Section = Section {
        name: crate::keymap::section::GLOBAL,
        title: "Everywhere",
    };
    pub const LIST: Section = Section {
        name: crate::keymap::section::LIST,
        title: "Lists",
    };
    pub const FILTER: Section = Section {
        name: crate::keymap::section::FILTER,
        title: "While filtering (other keys type)",
    };
    pub const DIALOG: Section = Section {
        name: crate::keymap::section::DIALOG,
        title: "Dialogs",
    };
}

/// How the focused component takes keys the keymap does not bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextMode {
    /// Keys are commands only.
    None,
    /// A text field: every character types; only Enter, Esc, Tab (its section's rows) act.
    All,
    /// A number field: digits and Backspace type, other keys are commands.
    Digits,
}

/// What a component did with a command; the root carries out the rest.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Not a key of this component here: nothing changed.
    Ignored,
    /// Handled; the screen may have changed.
    Done,
    /// Close this dialog: the layer under it has the focus again.
    Close,
    /// Open a dialog (a tab opens one; a dialog is replaced by it).
    Open(Modal),
    /// Ask a question over this layer.
    Ask(Question),
    /// The question was answered yes (only a question returns it).
    Yes,
}

pub trait Component {
    /// Keymap sections of this component, most specific first; the root adds `global` where
    /// global keys work.
    fn sections(&self, data: &Data) -> Vec<Section>;
    /// The commands that do something now: the hint bar, the help and the dialog's key line
    /// show only their keys.
    fn commands(&self, data: &Data) -> Vec<Command>;
    /// Whether it takes typed text now.
    fn text_mode(&self, data: &Data) -> TextMode;
    fn command(&mut self, data: &mut Data, c: Command, fx: &mut Vec<Effect>) -> Outcome;
    /// An edit of its text field (typed, or pasted a character at a time). False: no field.
    fn input(&mut self, data: &mut Data, req: InputRequest) -> bool;
    fn draw(&self, frame: &mut Frame, area: Rect, data: &Data, theme: &Theme);
}

/// A tab: a component with a list, a title in the header and its counts in the status bar.
pub trait TabView: Component {
    fn title(&self) -> &'static str;
    /// Shown after the title ("Errors (3)"), and whether it calls for attention.
    fn badge(&self, data: &Data) -> Option<(String, bool)>;
    fn list(&self) -> &ListView;
    fn list_mut(&mut self) -> &mut ListView;
    /// Where its list is drawn in `body` (the header line included): scrolling, clicks and
    /// drawing use it.
    fn list_area(&self, data: &Data, body: Rect) -> Rect;
    /// Its part of the status bar: the counts of what it lists (`short` when room is scarce).
    fn counts(&self, data: &Data, theme: &Theme, short: bool) -> Vec<Span<'static>>;
    /// The `/` text changed: show the rows that match.
    fn filter_changed(&mut self, data: &Data);
    /// Whether `row` holds `query` (lower case): `n`/`N`.
    fn matches(&self, data: &Data, row: u32, query: &str) -> bool;
    /// The shared data changed (a reload, new errors): follow it.
    fn sync(&mut self, data: &Data);
    /// `r`: the rows kept on screen after they stopped passing the filters go.
    fn refresh(&mut self, data: &Data);
}

/// A dialog: a component over the tabs that may follow the data under it.
pub trait Dialog: Component {
    /// The shared data changed (errors re-checked, a directory read): follow it, or close.
    fn sync(&mut self, data: &mut Data) -> Outcome;
}

// A boxed component is the component (the registries box the big ones).
impl<T: Component + ?Sized> Component for Box<T> {
    fn sections(&self, data: &Data) -> Vec<Section> {
        (**self).sections(data)
    }
    fn commands(&self, data: &Data) -> Vec<Command> {
        (**self).commands(data)
    }
    fn text_mode(&self, data: &Data) -> TextMode {
        (**self).text_mode(data)
    }
    fn command(&mut self, data: &mut Data, c: Command, fx: &mut Vec<Effect>) -> Outcome {
        (**self).command(data, c, fx)
    }
    fn input(&mut self, data: &mut Data, req: InputRequest) -> bool {
        (**self).input(data, req)
    }
    fn draw(&self, frame: &mut Frame, area: Rect, data: &Data, theme: &Theme) {
        (**self).draw(frame, area, data, theme)
    }
}

impl<T: Dialog + ?Sized> Dialog for Box<T> {
    fn sync(&mut self, data: &mut Data) -> Outcome {
        (**self).sync(data)
    }
}
