//! Bindings tab: directory users, their binding state and linked tenant id (read only).
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::app::state::AppState;
use crate::app::update::fmt_count;
use crate::directory::BindingState;

use super::import::{filter_spans, set_filter_cursor};
use super::{column_widths, draw_list, table_line, ListSpec, Theme};

const COLUMNS: [Constraint; 4] = [
    Constraint::Length(8),
    Constraint::Fill(3),
    Constraint::Fill(4),
    Constraint::Fill(3),
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
        tab.state.map(|s| theme.binding(s)).unwrap_or(theme.bold()),
    ));
    spans.push(Span::styled("   ", theme.dim()));
    for (i, b) in [
        BindingState::Bound,
        BindingState::Unbound,
        BindingState::Blocked,
    ]
    .into_iter()
    .enumerate()
    {
        spans.push(Span::styled(format!("{} ", b.label()), theme.binding(b)));
        spans.push(Span::raw(fmt_count(d.counts[i])));
        spans.push(Span::raw("  "));
    }
    spans.push(Span::styled(
        format!("{} shown", fmt_count(tab.view.shown.len())),
        theme.dim(),
    ));
    frame.render_widget(Paragraph::new(Line::from(spans)), toolbar);
    if tab.view.editing {
        set_filter_cursor(frame, toolbar, &tab.view);
    }

    let widths = column_widths(&COLUMNS, list.width);
    let header = table_line(
        ["Binding", "Display name", "Email", "Tenant user id"]
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
            let u = &d.users[v.shown[i] as usize];
            let cells = vec![
                (u.binding.label().to_string(), theme.binding(u.binding)),
                (u.display_name.clone(), Style::new()),
                (u.email.clone(), Style::new()),
                (
                    u.tenant_user_id.clone().unwrap_or_else(|| "—".into()),
                    theme.dim(),
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
}
