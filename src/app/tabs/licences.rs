//! The Licences tab: the tenant's SKUs with their seats (enabled, in use, free, what the plan
//! would take, users held back for want of a seat), what m365sync assigns per group and user,
//! and the users with licence errors, from the same plan as the preview
//! (`Pipeline::licence_report`). `a` assigns the selected SKU to a directory group or user
//! with the service plans chosen (the licence dialog), `p` previews, `r` reads it all again.
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;
use tui_input::InputRequest;

use crate::format::thousands;
use crate::keymap::Command;
use crate::sync::licences::{LicenceReport, SkuLine};
use crate::ui::widgets::{draw_list, flex_widths, header_line, table_line, Col, ListSpec};
use crate::ui::Theme;

use super::super::component::{Component, Outcome, Section, TabView, TextMode};
use super::super::dialogs::licence::AssignLicence;
use super::super::dialogs::{preview, Modal};
use super::super::effect::Effect;
use super::super::layout;
use super::super::list::{self, ListView};
use super::super::state::{Data, Topic};

pub const SECTION: Section = Section {
    name: "licences",
    title: "Licences tab",
};

const TITLES: [&str; 6] = ["SKU", "Enabled", "In use", "Free", "Planned", "Status"];

/// What the tab shows, read by `Effect::LoadLicences`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LicencesData {
    pub report: Option<Box<LicenceReport>>,
    pub loading: bool,
    /// Why the last read failed.
    pub error: Option<String>,
    /// Bumped on every report: the tab follows it.
    pub gen: u64,
}

/// Asks for the report unless one is on its way.
pub fn load(data: &mut Data, fx: &mut Vec<Effect>) {
    if data.session.is_some() && !data.licences.loading {
        data.licences.loading = true;
        fx.push(Effect::LoadLicences);
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LicencesTab {
    pub view: ListView,
    seen: u64,
}

impl LicencesTab {
    pub const SECTION: Section = SECTION;
    pub const TITLE: &'static str = "Licences";

    fn skus(data: &Data) -> &[SkuLine] {
        data.licences
            .report
            .as_deref()
            .map_or(&[], |r| r.skus.as_slice())
    }

    /// Toolbar, the SKU list, and the lower pane (assignments, errors).
    fn areas(data: &Data, area: Rect) -> [Rect; 3] {
        let n = Self::skus(data).len().max(1) as u16;
        let rows = n.min(area.height.saturating_sub(4) / 2).max(1);
        Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(rows + 1),
            Constraint::Fill(1),
        ])
        .areas(area)
    }

    fn rescan(&mut self, data: &Data) {
        let rows = layout::list_rows(self.list_area(data, layout::screen_of(data).body));
        let keep = self.view.selected_row();
        let q = self.view.query.clone();
        self.view.shown = Self::skus(data)
            .iter()
            .enumerate()
            .filter(|(_, s)| q.is_empty() || s.sku.to_lowercase().contains(&q))
            .map(|(i, _)| i as u32)
            .collect();
        self.view.reselect(keep, rows);
    }

    fn selected<'a>(&self, data: &'a Data) -> Option<&'a SkuLine> {
        Self::skus(data).get(self.view.selected_row()? as usize)
    }
}

/// The lines under the SKU list: what m365sync assigns, then the users with licence errors.
pub fn lower_lines(r: &LicenceReport, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(Span::styled("m365sync assigns", theme.bold()))];
    if r.assignments.is_empty() {
        lines.push(Line::from(Span::styled(
            "  nothing yet: select a SKU and assign it to a group or user",
            theme.dim(),
        )));
    }
    for a in &r.assignments {
        lines.push(Line::from(vec![
            Span::styled(format!("  {} ", a.owner), theme.dim()),
            Span::raw(format!("{}: ", a.name)),
            Span::styled(a.licences.join("; "), theme.ok()),
            Span::styled(
                format!("  ({})", crate::format::count(a.users, "user", None)),
                theme.dim(),
            ),
        ]));
    }
    lines.push(Line::from(Span::styled(
        format!("Users with licence errors ({})", r.errors.len()),
        theme.bold(),
    )));
    if r.errors.is_empty() {
        lines.push(Line::from(Span::styled("  none", theme.ok())));
    }
    for e in &r.errors {
        lines.push(Line::from(vec![
            Span::raw(format!("  {} ", e.email)),
            Span::styled(format!("{} ", e.kind), theme.error()),
            Span::raw(e.message.clone()),
        ]));
    }
    lines
}

impl Component for LicencesTab {
    fn sections(&self, _: &Data) -> Vec<Section> {
        if self.view.editing {
            return vec![Section::FILTER];
        }
        vec![SECTION, Section::LIST]
    }

    fn commands(&self, data: &Data) -> Vec<Command> {
        let mut v = list::commands(&self.view, data);
        // A SKU has no detail beyond its row.
        v.retain(|c| *c != Command::Open);
        if self.view.editing {
            return v;
        }
        v.push(Command::Preview);
        if self.selected(data).is_some() {
            v.push(Command::AssignLicence);
        }
        v
    }

    fn text_mode(&self, _: &Data) -> TextMode {
        if self.view.editing {
            TextMode::All
        } else {
            TextMode::None
        }
    }

    fn command(&mut self, data: &mut Data, c: Command, fx: &mut Vec<Effect>) -> Outcome {
        match c {
            Command::AssignLicence => {
                let Some((sku, plans)) = self
                    .selected(data)
                    .map(|s| (s.sku.clone(), s.service_plans.clone()))
                else {
                    return Outcome::Ignored;
                };
                if data.directory.groups.is_empty() && data.directory.users.is_empty() {
                    data.say(
                        Topic::Key,
                        "No directory group or user to assign it to: import a CSV first.",
                    );
                    return Outcome::Done;
                }
                Outcome::Open(Modal::AssignLicence(AssignLicence::new(data, sku, plans)))
            }
            Command::Preview => preview::start_plan(data, fx),
            _ => Outcome::Ignored,
        }
    }

    fn input(&mut self, _: &mut Data, _: InputRequest) -> bool {
        false
    }

    fn draw(&self, frame: &mut Frame, area: Rect, data: &Data, theme: &Theme) {
        let [toolbar, list_area, lower] = Self::areas(data, area);
        let lic = &data.licences;
        let mut spans = list::filter_spans(&self.view, theme);
        spans.push(match (&lic.report, lic.loading, &lic.error) {
            (_, true, _) => Span::styled("  reading the tenant's licences…", theme.dim()),
            (_, _, Some(e)) => Span::styled(format!("  {e}"), theme.error()),
            (None, _, _) => Span::styled("  r reads the tenant's licences", theme.dim()),
            (Some(r), _, _) => Span::styled(
                format!(
                    "  {} SKUs · {} free seats",
                    r.skus.len(),
                    thousands(r.skus.iter().map(|s| s.free.max(0) as usize).sum())
                ),
                theme.bold(),
            ),
        });
        frame.render_widget(Paragraph::new(Line::from(spans)), toolbar);
        if self.view.editing {
            list::set_filter_cursor(frame, toolbar, &self.view);
        }
        let skus = Self::skus(data);
        let widths = flex_widths(
            &[
                Col::Text { want: 20, min: 12 },
                Col::Fixed(8),
                Col::Fixed(8),
                Col::Fixed(6),
                Col::Fixed(8),
                Col::Text { want: 30, min: 10 },
            ],
            list_area.width,
        );
        let v = &self.view;
        draw_list(
            frame,
            list_area,
            ListSpec {
                header: header_line(&TITLES, &widths, theme),
                len: v.shown.len(),
                offset: v.offset,
                empty: "",
            },
            theme,
            |i| {
                let s = &skus[v.shown[i] as usize];
                let mut status = s.status.clone();
                if !s.applies_to.eq_ignore_ascii_case("User") {
                    status.push_str(" (not for users)");
                }
                if s.short > 0 {
                    status = format!("{} held back: no seat", s.short);
                }
                let free_style = if s.free == 0 || s.short > 0 {
                    theme.error()
                } else {
                    theme.ok()
                };
                let cells = vec![
                    (s.sku.clone(), theme.bold()),
                    (thousands(s.enabled.max(0) as usize), Style::new()),
                    (thousands(s.consumed.max(0) as usize), Style::new()),
                    (thousands(s.free.max(0) as usize), free_style),
                    (thousands(s.planned.max(0) as usize), Style::new()),
                    (
                        status,
                        if s.short > 0 {
                            theme.error()
                        } else {
                            theme.dim()
                        },
                    ),
                ];
                let style = if i == v.selected {
                    theme.selected()
                } else {
                    Style::new()
                };
                table_line(cells, &widths, style)
            },
        );
        let block = Block::default()
            .borders(Borders::TOP)
            .border_style(theme.dim());
        let lines = match &lic.report {
            Some(r) => lower_lines(r, theme),
            None => Vec::new(),
        };
        frame.render_widget(
            Paragraph::new(lines)
                .block(block)
                .wrap(Wrap { trim: false }),
            lower,
        );
    }
}

impl TabView for LicencesTab {
    fn title(&self) -> &'static str {
        Self::TITLE
    }
    fn badge(&self, data: &Data) -> Option<(String, bool)> {
        let r = data.licences.report.as_deref()?;
        (!r.errors.is_empty()).then(|| (format!("({})", thousands(r.errors.len())), true))
    }
    fn list(&self) -> &ListView {
        &self.view
    }
    fn list_mut(&mut self) -> &mut ListView {
        &mut self.view
    }
    fn list_area(&self, data: &Data, body: Rect) -> Rect {
        Self::areas(data, body)[1]
    }
    fn counts(&self, data: &Data, theme: &Theme, _short: bool) -> Vec<Span<'static>> {
        let Some(r) = data.licences.report.as_deref() else {
            return vec![Span::styled("Licences not read yet", theme.dim())];
        };
        let used: i64 = r.skus.iter().map(|s| s.consumed).sum();
        let free: i64 = r.skus.iter().map(|s| s.free).sum();
        vec![
            Span::styled("SKUs ", theme.bold()),
            Span::raw(thousands(r.skus.len())),
            Span::styled("  in use ", theme.dim()),
            Span::raw(thousands(used.max(0) as usize)),
            Span::styled("  free ", theme.dim()),
            Span::raw(thousands(free.max(0) as usize)),
            Span::styled("  licence errors ", theme.dim()),
            Span::raw(thousands(r.errors.len())),
        ]
    }
    fn filter_changed(&mut self, data: &Data) {
        let q = self.view.typed_query();
        if q == self.view.query {
            return;
        }
        self.view.query = q;
        self.rescan(data);
    }
    fn matches(&self, data: &Data, row: u32, q: &str) -> bool {
        Self::skus(data)
            .get(row as usize)
            .is_some_and(|s| s.sku.to_lowercase().contains(q))
    }
    fn sync(&mut self, data: &Data) {
        if self.seen != data.licences.gen {
            self.seen = data.licences.gen;
            self.rescan(data);
        }
    }
    fn refresh(&mut self, data: &Data) {
        self.rescan(data);
    }
}
