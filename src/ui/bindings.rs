//! Bindings tab: directory users with their binding, the change their wish asks for (pending)
//! or the last failure (error, with its reason); marks, `/` filter and a state filter.
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::app::state::{AppState, RowState};
use crate::app::update::fmt_count;

use super::import::{filter_spans, set_filter_cursor};
use super::{column_widths, draw_list, table_line, ListSpec, Theme};

const COLUMNS: [Constraint; 5] = [
    Constraint::Length(1),
    Constraint::Length(11),
    Constraint::Fill(3),
    Constraint::Fill(4),
    Constraint::Fill(4),
];

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let [toolbar, list] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    let tab = &state.bindings;
    let d = &state.directory;
    let mut spans = filter_spans(&tab.view, theme);
    spans.push(Span::styled("  state ", theme.dim()));
    spans.push(Span::styled(
        tab.state.map(|s| s.label()).unwrap_or("All"),
        theme.bold(),
    ));
    spans.push(Span::styled(
        format!("  {} shown", fmt_count(tab.view.shown.len())),
        theme.dim(),
    ));
    if !tab.marks.is_empty() {
        spans.push(Span::styled(
            format!("  {} marked", fmt_count(tab.marks.len())),
            theme.accent(),
        ));
    }
    if let Some(m) = &state.message {
        spans.push(Span::raw("  "));
        spans.push(Span::raw(m.clone()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), toolbar);
    if tab.view.editing {
        set_filter_cursor(frame, toolbar, &tab.view);
    }

    let widths = column_widths(&COLUMNS, list.width);
    let header = table_line(
        ["", "State", "Display name", "Email", "Account / last error"]
            .iter()
            .map(|h| (h.to_string(), Style::new()))
            .collect(),
        &widths,
        theme.header_row(),
    );
    let empty = if !state.directory_loaded {
        "The directory is not loaded yet."
    } else if d.users.is_empty() {
        "The directory has no users yet: import some from the Import tab (1)."
    } else {
        "No directory user matches the filter."
    };
    let v = &tab.view;
    draw_list(
        frame,
        list,
        ListSpec {
            header,
            len: v.shown.len(),
            offset: v.offset,
            empty,
        },
        theme,
        |i| {
            let row = v.shown[i];
            let u = &d.users[row as usize];
            let st = RowState::of(u, &tab.failures);
            let marked = tab.marks.contains(row);
            let detail = match st {
                RowState::Error => match tab.failures.get(&u.id) {
                    Some(f) => (
                        format!("{} failed: {} ({})", f.kind.label(), f.message, f.code),
                        theme.error(),
                    ),
                    None => (String::new(), Style::new()),
                },
                _ => (
                    u.tenant_user_id.clone().unwrap_or_else(|| "—".into()),
                    theme.dim(),
                ),
            };
            let cells = vec![
                (if marked { "●" } else { " " }.to_string(), theme.accent()),
                (st.label().to_string(), theme.row_state(st)),
                (u.display_name.clone(), Style::new()),
                (u.email.clone(), Style::new()),
                detail,
            ];
            let style = if i == v.selected {
                theme.selected()
            } else if marked {
                theme.bold()
            } else {
                Style::new()
            };
            table_line(cells, &widths, style)
        },
    );
}
