//! A question over everything, when a key would lose something: quitting while an apply runs
//! (a confirmed quit stops sending cleanly and waits for the run to stop), quitting or closing
//! the passwords view with temporary passwords neither copied nor written.
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;
use tui_input::InputRequest;

use crate::format::count;
use crate::keymap::Command;
use crate::ui::Theme;

use super::super::component::{Component, Outcome, Section, TextMode};
use super::super::effect::Effect;
use super::super::state::Data;

pub const SECTION: Section = Section {
    name: "question",
    title: "Question",
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Question {
    /// `q` or Ctrl-C while an apply runs.
    QuitDuringApply,
    /// `q` with temporary passwords neither copied nor written.
    QuitWithPasswords { unsaved: usize },
    /// Closing the passwords view with passwords neither copied nor written.
    ClosePasswords { unsaved: usize },
    /// Importing rows of which `guests` are guests (userType Guest), `others` not.
    ImportGuests { guests: usize, others: usize },
}

impl Question {
    /// A question about quitting (a second Ctrl-C answers yes).
    pub fn is_quit(self) -> bool {
        matches!(
            self,
            Question::QuitDuringApply | Question::QuitWithPasswords { .. }
        )
    }

    fn text(self, data: &Data) -> (&'static str, Vec<String>) {
        match self {
            Question::QuitDuringApply => (
                "Quit while applying?",
                vec![
                    "An apply is running. Quitting stops sending: the changes in flight finish"
                        .into(),
                    "and are recorded, the rest is planned again by the next preview.".into(),
                    String::new(),
                    "The console closes once the run has stopped (passwords it issued".into(),
                    "are shown first).".into(),
                ],
            ),
            Question::QuitWithPasswords { unsaved } => (
                "Quit and lose the passwords?",
                vec![
                    format!(
                        "{} neither copied nor written to a hand-off file.",
                        count(unsaved, "temporary password", None)
                    ),
                    "They are shown only once: quitting loses them, and those accounts".into(),
                    "need a new password (m365sync password set).".into(),
                    String::new(),
                    format!(
                        "n goes back; then {} writes them to a file.",
                        data.keymap
                            .key_for(&[super::run::RESULT.name], Command::WriteHandoff)
                    ),
                ],
            ),
            Question::ImportGuests { guests, others } => (
                "Import guests?",
                vec![
                    format!(
                        "{} among the rows to import{}: invited users of",
                        count(guests, "guest", None),
                        if others > 0 {
                            format!(" (and {})", count(others, "other user", None))
                        } else {
                            String::new()
                        }
                    ),
                    "other organisations (userType Guest, #EXT# UPN).".into(),
                    String::new(),
                    "Importing links each to a directory user; it stays a guest".into(),
                    "account: binding it never makes it a member.".into(),
                    String::new(),
                    "y imports them all; Esc goes back (unmark the guests, or filter".into(),
                    "the status to New, to import the others alone).".into(),
                ],
            ),
            Question::ClosePasswords { unsaved } => (
                "Close and forget the passwords?",
                vec![
                    format!(
                        "{} neither copied nor written to a hand-off file.",
                        count(unsaved, "temporary password", None)
                    ),
                    "They are shown only once: closing forgets them, and those accounts".into(),
                    "need a new password (m365sync password set).".into(),
                    String::new(),
                    format!(
                        "n goes back; then {} copies one, {} writes them all to a file.",
                        data.keymap
                            .key_for(&[super::run::RESULT.name], Command::CopyPassword),
                        data.keymap
                            .key_for(&[super::run::RESULT.name], Command::WriteHandoff)
                    ),
                ],
            ),
        }
    }
}

impl Component for Question {
    fn sections(&self, _: &Data) -> Vec<Section> {
        vec![SECTION]
    }
    fn commands(&self, _: &Data) -> Vec<Command> {
        vec![Command::Confirm, Command::Back]
    }
    fn text_mode(&self, _: &Data) -> TextMode {
        TextMode::None
    }
    fn command(&mut self, _: &mut Data, c: Command, _: &mut Vec<Effect>) -> Outcome {
        match c {
            Command::Confirm => Outcome::Yes,
            Command::Back => Outcome::Close,
            _ => Outcome::Ignored,
        }
    }
    fn input(&mut self, _: &mut Data, _: InputRequest) -> bool {
        false
    }
    fn draw(&self, frame: &mut Frame, area: Rect, data: &Data, theme: &Theme) {
        let (title, text) = self.text(data);
        let lines = text
            .into_iter()
            .map(|t| Line::from(Span::styled(t, theme.warn())))
            .collect();
        super::small(
            frame,
            area,
            data,
            theme,
            title,
            lines,
            &super::hints(data, self),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn y_answers_yes_and_n_or_esc_no() {
        let mut d = Data::default();
        let mut q = Question::QuitDuringApply;
        let mut fx = Vec::new();
        assert_eq!(q.command(&mut d, Command::Confirm, &mut fx), Outcome::Yes);
        assert_eq!(q.command(&mut d, Command::Back, &mut fx), Outcome::Close);
        assert_eq!(q.command(&mut d, Command::Down, &mut fx), Outcome::Ignored);
        assert!(fx.is_empty());
        assert!(q.is_quit() && !Question::ClosePasswords { unsaved: 1 }.is_quit());
    }
}
