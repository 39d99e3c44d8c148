//! Exporting the errors shown (`e` on Errors): CSV or JSON, under the data directory, mode
//! 0600. Owns the result of its effect (`Exported`).
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;
use tui_input::InputRequest;

use crate::failure::Failure;
use crate::format::count;
use crate::keymap::Command;
use crate::ui::Theme;

use super::super::component::{Component, Dialog, Outcome, Section, TextMode};
use super::super::effect::{Effect, ExportFormat};
use super::super::explain::ErrorEntry;
use super::super::state::{Data, Tone, Topic};

pub const SECTION: Section = Section {
    name: "export",
    title: "Export the errors",
};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Export {
    /// The errors shown when it opened (rows of `Data::errors`).
    pub rows: Vec<u32>,
}

impl Export {
    pub fn new(rows: Vec<u32>) -> Export {
        Export { rows }
    }
}

/// The errors were exported (the file's path), or not.
pub fn exported(data: &mut Data, result: Result<String, Failure>) {
    match result {
        Ok(path) => data.tell(
            Topic::Export,
            Tone::Good,
            format!("Errors exported: {path}"),
        ),
        Err(e) => {
            data.push_error(ErrorEntry::from_failure(&e));
            data.tell(
                Topic::Export,
                Tone::Bad,
                format!("Exporting the errors failed ({}).", data.see_errors()),
            );
        }
    }
}

impl Component for Export {
    fn sections(&self, _: &Data) -> Vec<Section> {
        vec![SECTION, Section::DIALOG]
    }
    fn commands(&self, _: &Data) -> Vec<Command> {
        vec![Command::ExportCsv, Command::ExportJson, Command::Back]
    }
    fn text_mode(&self, _: &Data) -> TextMode {
        TextMode::None
    }
    fn command(&mut self, data: &mut Data, c: Command, fx: &mut Vec<Effect>) -> Outcome {
        let format = match c {
            Command::ExportCsv => ExportFormat::Csv,
            Command::ExportJson => ExportFormat::Json,
            Command::Back => return Outcome::Close,
            _ => return Outcome::Ignored,
        };
        let errors = self
            .rows
            .iter()
            .filter_map(|&r| data.errors.get(r as usize).cloned())
            .collect();
        data.say(Topic::Export, "Exporting the errors…");
        fx.push(Effect::ExportErrors { format, errors });
        Outcome::Close
    }
    fn input(&mut self, _: &mut Data, _: InputRequest) -> bool {
        false
    }
    fn draw(&self, frame: &mut Frame, area: Rect, data: &Data, theme: &Theme) {
        super::small(
            frame,
            area,
            data,
            theme,
            "Export the errors shown",
            vec![
                Line::from(format!(
                    "{}, as shown (filter and kind applied).",
                    count(self.rows.len(), "error", None)
                )),
                Line::from(Span::styled(
                    "Written under the data directory, readable by you only (0600).",
                    theme.dim(),
                )),
            ],
            &super::hints(data, self),
        );
    }
}

impl Dialog for Export {
    fn sync(&mut self, _: &mut Data) -> Outcome {
        Outcome::Ignored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fixtures;

    #[test]
    fn it_exports_the_errors_shown_when_it_opened() {
        let mut d = fixtures::preflight_errors_state().data;
        let mut e = Export::new(vec![2, 0]);
        let mut fx = Vec::new();
        assert_eq!(
            e.command(&mut d, Command::ExportJson, &mut fx),
            Outcome::Close
        );
        let [Effect::ExportErrors { format, errors }] = fx.as_slice() else {
            panic!("{fx:?}")
        };
        assert_eq!(*format, ExportFormat::Json);
        assert_eq!(errors, &vec![d.errors[2].clone(), d.errors[0].clone()]);
    }
}
