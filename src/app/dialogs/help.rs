//! The `?` overlay: the keys of the screen you are on, from the same keymap rows and the same
//! "what works now" as the hint bar, so the two never disagree. It scrolls; any other key
//! closes it.
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph};
use ratatui::Frame;
use tui_input::InputRequest;

use crate::keymap::Command;
use crate::ui::text::{fit, wrap};
use crate::ui::widgets::centered;
use crate::ui::Theme;

use super::super::component::{Component, Outcome, Section, TextMode};
use super::super::effect::Effect;
use super::super::state::Data;

pub const SECTION: Section = Section {
    name: "help",
    title: "Help",
};

/// One section of the help: its title and its rows (keys, what they do).
pub type HelpSection = (String, Vec<(String, String)>);

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Help {
    /// The focused screen's own sections (left column).
    pub own: Vec<HelpSection>,
    /// The shared ones: lists, dialogs, everywhere (right column).
    pub shared: Vec<HelpSection>,
    pub scroll: usize,
}

/// A column of sections `width` wide, descriptions wrapped under themselves.
fn column(
    sections: &[HelpSection],
    key_w: usize,
    width: usize,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for (title, rows) in sections {
        if rows.is_empty() {
            continue;
        }
        lines.push(Line::from(Span::styled(title.clone(), theme.accent())));
        for (keys, desc) in rows {
            for (i, part) in wrap(desc, width.saturating_sub(key_w + 2))
                .into_iter()
                .enumerate()
            {
                let head = if i == 0 {
                    format!(" {}", fit(keys, key_w))
                } else {
                    " ".repeat(key_w + 1)
                };
                lines.push(Line::from(vec![
                    Span::styled(head, theme.key()),
                    Span::raw(" "),
                    Span::raw(part),
                ]));
            }
        }
        lines.push(Line::from(""));
    }
    lines
}

/// The width of the help box and of each of its two columns on a `width`-wide terminal.
fn widths(width: u16) -> (u16, usize) {
    let w = width.min(110);
    (w, (w.saturating_sub(4) / 2) as usize)
}

impl Help {
    fn key_w(&self) -> usize {
        self.own
            .iter()
            .chain(&self.shared)
            .flat_map(|(_, rows)| rows.iter().map(|(k, _)| k.chars().count()))
            .max()
            .unwrap_or(5)
            .clamp(5, 14)
    }

    fn height(&self, width: u16, theme: &Theme) -> usize {
        let k = self.key_w();
        let (_, col) = widths(width);
        column(&self.own, k, col, theme)
            .len()
            .max(column(&self.shared, k, col, theme).len())
    }
}

impl Component for Help {
    fn sections(&self, _: &Data) -> Vec<Section> {
        vec![SECTION]
    }
    fn commands(&self, _: &Data) -> Vec<Command> {
        vec![Command::Down, Command::Up, Command::Back]
    }
    fn text_mode(&self, _: &Data) -> TextMode {
        TextMode::None
    }
    fn command(&mut self, data: &mut Data, c: Command, _: &mut Vec<Effect>) -> Outcome {
        let room = data.height.saturating_sub(3) as usize;
        let max = self
            .height(data.width, &Theme::new(true))
            .saturating_sub(room);
        match c {
            Command::Down => self.scroll = (self.scroll + 1).min(max),
            Command::Up => self.scroll = self.scroll.saturating_sub(1),
            _ => return Outcome::Close,
        }
        Outcome::Done
    }
    fn input(&mut self, _: &mut Data, _: InputRequest) -> bool {
        false
    }
    fn draw(&self, frame: &mut Frame, area: Rect, _: &Data, theme: &Theme) {
        let k = self.key_w();
        let (box_w, col) = widths(area.width);
        let left = column(&self.own, k, col, theme);
        let right = column(&self.shared, k, col, theme);
        let h = (left.len().max(right.len()) as u16).saturating_add(2);
        let rect = centered(area, box_w, h);
        frame.render_widget(Clear, rect);
        let more = if self.scroll > 0 || h > area.height {
            " j/k scroll · any other key closes "
        } else {
            " any other key closes "
        };
        let block = Block::default()
            .borders(Borders::ALL)
            .border_type(BorderType::Rounded)
            .border_style(theme.accent())
            .title(Span::styled(" Keys of this screen ", theme.bold()))
            .title_bottom(Line::from(Span::styled(more, theme.dim())).right_aligned());
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let [l, r] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)])
            .spacing(2)
            .areas(inner);
        let skip = |v: Vec<Line<'static>>| -> Vec<Line<'static>> {
            v.into_iter().skip(self.scroll).collect()
        };
        frame.render_widget(Paragraph::new(skip(left)), l);
        frame.render_widget(Paragraph::new(skip(right)), r);
    }
}

#[cfg(test)]
mod tests {
    use crate::app::fixtures;
    use crate::app::update::help_for;

    fn keys(h: &super::Help) -> Vec<String> {
        h.own
            .iter()
            .chain(&h.shared)
            .flat_map(|(_, rows)| rows.iter().map(|(k, _)| k.clone()))
            .collect()
    }

    #[test]
    fn the_help_lists_only_what_works_where_you_are() {
        // The group list: no marks, no passwords.
        let s = fixtures::groups_state();
        let k = keys(&help_for(&s));
        assert!(!k.iter().any(|k| k == "v" || k == "P"), "{k:?}");
        assert!(k.iter().any(|k| k == "t"), "{k:?}");
        // A preview: its keys and the dialog's, never the tab's.
        let s = fixtures::preview_state(1, 1, false);
        let k = keys(&help_for(&s));
        assert!(k.iter().any(|k| k == "y"), "{k:?}");
        assert!(!k.iter().any(|k| k == "p" || k == "Space"), "{k:?}");
    }
}
