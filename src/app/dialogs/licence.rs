//! Assigning a SKU to a directory group from the Licences tab: the group is picked from the
//! directory's groups (j/k), Enter records it (`Directory::assign_licence`; nothing is sent
//! until an apply), and the preview shows what it changes. Owns the result of its effect
//! (`LicenceAssigned`).
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;
use tui_input::InputRequest;

use crate::directory::LicencePick;
use crate::failure::Failure;
use crate::keymap::Command;
use crate::ui::Theme;

use super::super::component::{Component, Dialog, Outcome, Section, TextMode};
use super::super::effect::Effect;
use super::super::explain::ErrorEntry;
use super::super::state::{Data, Tone, Topic};

pub const SECTION: Section = Section {
    name: "licence_assign",
    title: "Assign a licence to a group",
};

/// The groups shown at once.
const ROWS: usize = 8;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssignLicence {
    /// The SKU's part number (`SPE_E3`).
    pub sku: String,
    /// Directory groups: (id, name).
    pub groups: Vec<(i64, String)>,
    pub selected: usize,
}

impl AssignLicence {
    pub fn new(sku: String, groups: Vec<(i64, String)>) -> AssignLicence {
        AssignLicence {
            sku,
            groups,
            selected: 0,
        }
    }
}

/// The SKU was recorded for the group (what, in words), or not.
pub fn assigned(data: &mut Data, result: Result<String, Failure>, fx: &mut Vec<Effect>) {
    match result {
        Ok(what) => {
            data.tell(
                Topic::Wish,
                Tone::Good,
                format!("{what}. Preview (p) shows what it changes; nothing is sent yet."),
            );
            fx.push(Effect::LoadDirectory);
            data.licences.loading = false;
            super::super::tabs::licences::load(data, fx);
        }
        Err(e) => {
            data.push_error(ErrorEntry::from_failure(&e));
            data.tell(
                Topic::Wish,
                Tone::Bad,
                format!("The licence was not recorded ({}).", data.see_errors()),
            );
        }
    }
}

impl Component for AssignLicence {
    fn sections(&self, _: &Data) -> Vec<Section> {
        vec![SECTION, Section::DIALOG]
    }
    fn commands(&self, _: &Data) -> Vec<Command> {
        vec![Command::Submit, Command::Down, Command::Up, Command::Back]
    }
    fn text_mode(&self, _: &Data) -> TextMode {
        TextMode::None
    }
    fn command(&mut self, _: &mut Data, c: Command, fx: &mut Vec<Effect>) -> Outcome {
        match c {
            Command::Down => {
                self.selected = (self.selected + 1).min(self.groups.len().saturating_sub(1));
            }
            Command::Up => self.selected = self.selected.saturating_sub(1),
            Command::Submit => {
                let Some((id, name)) = self.groups.get(self.selected).cloned() else {
                    return Outcome::Ignored;
                };
                fx.push(Effect::AssignLicence {
                    group_id: id,
                    group: name,
                    pick: LicencePick {
                        sku: self.sku.clone(),
                        disabled_plans: Vec::new(),
                    },
                });
                return Outcome::Close;
            }
            Command::Back => return Outcome::Close,
            _ => return Outcome::Ignored,
        }
        Outcome::Done
    }
    fn input(&mut self, _: &mut Data, _: InputRequest) -> bool {
        false
    }
    fn draw(&self, frame: &mut Frame, area: Rect, data: &Data, theme: &Theme) {
        let mut lines = vec![Line::from(vec![
            Span::raw("Give "),
            Span::styled(self.sku.clone(), theme.bold()),
            Span::raw(" to every bound member of the group:"),
        ])];
        let first = self.selected.saturating_sub(ROWS - 1);
        for (i, (_, name)) in self.groups.iter().enumerate().skip(first).take(ROWS) {
            let style = if i == self.selected {
                theme.selected()
            } else {
                ratatui::style::Style::new()
            };
            lines.push(Line::from(Span::styled(format!("  {name}  "), style)));
        }
        lines.push(Line::from(Span::styled(
            "Each account gets it with one assignLicense; seats are counted first.",
            theme.dim(),
        )));
        super::small(
            frame,
            area,
            data,
            theme,
            "Assign a licence",
            lines,
            &super::hints(data, self),
        );
    }
}

impl Dialog for AssignLicence {
    fn sync(&mut self, _: &mut Data) -> Outcome {
        Outcome::Ignored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enter_records_the_sku_for_the_group_picked() {
        let mut d = Data::default();
        let mut a = AssignLicence::new(
            "SPE_E3".into(),
            vec![(4, "Sales".into()), (9, "Ops".into())],
        );
        let mut fx = Vec::new();
        a.command(&mut d, Command::Down, &mut fx);
        a.command(&mut d, Command::Down, &mut fx);
        assert_eq!(a.selected, 1, "bounded");
        assert_eq!(a.command(&mut d, Command::Submit, &mut fx), Outcome::Close);
        assert_eq!(
            fx,
            vec![Effect::AssignLicence {
                group_id: 9,
                group: "Ops".into(),
                pick: LicencePick::parse("SPE_E3").unwrap()
            }]
        );
    }
}
