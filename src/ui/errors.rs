//! Errors tab: every failure so far, a list and a detail pane that says in plain words what
//! happened and what to do, with the raw code, message and ids support asks for.
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use crate::app::explain::ErrorEntry;
use crate::app::state::AppState;
use crate::app::update::fmt_count;

use super::import::{filter_spans, set_filter_cursor};
use super::{column_widths, draw_list, labeled, table_line, ListSpec, Theme};

const COLUMNS: [Constraint; 4] = [
    Constraint::Length(9),
    Constraint::Length(22),
    Constraint::Fill(2),
    Constraint::Fill(3),
];

/// Rows of the error list when `body` rows are free for list and detail together.
pub fn list_rows(body: usize) -> usize {
    (body / 3).max(3).min(body)
}

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let body = area.height.saturating_sub(2) as usize;
    let rows = list_rows(body) as u16;
    let [toolbar, list, detail] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(rows + 1),
        Constraint::Fill(1),
    ])
    .areas(area);
    let v = &state.errors_tab.view;
    let mut spans = filter_spans(v, theme);
    if state.errors.is_empty() {
        spans.push(Span::styled("  No errors so far.", theme.ok()));
    } else {
        spans.push(Span::styled(
            format!(
                "  {} errors, oldest first  ·  {}",
                fmt_count(state.errors.len()),
                super::position(v.selected, v.shown.len())
            ),
            theme.bold(),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), toolbar);
    if v.editing {
        set_filter_cursor(frame, toolbar, v);
    }

    let widths = column_widths(&COLUMNS, list.width);
    let header = table_line(
        ["Source", "Code", "About", "Message"]
            .iter()
            .map(|h| (h.to_string(), Style::new()))
            .collect(),
        &widths,
        theme.header_row(),
    );
    draw_list(
        frame,
        list,
        ListSpec {
            header,
            len: v.shown.len(),
            offset: v.offset,
            empty: "",
        },
        theme,
        |i| {
            let e = &state.errors[v.shown[i] as usize];
            let cells = vec![
                (e.source.label().to_string(), theme.dim()),
                (e.code.clone(), theme.error()),
                (e.subject.clone(), Style::new()),
                (e.message.clone(), Style::new()),
            ];
            let style = if i == v.selected {
                theme.selected()
            } else {
                Style::new()
            };
            table_line(cells, &widths, style)
        },
    );

    let selected = v.selected_row().and_then(|r| state.errors.get(r as usize));
    draw_detail(frame, detail, selected, theme);
}

fn draw_detail(frame: &mut Frame, area: Rect, e: Option<&ErrorEntry>, theme: &Theme) {
    let Some(e) = e else {
        let block = Block::default()
            .borders(Borders::TOP)
            .border_style(theme.dim());
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(
                " Failures of sign-in, Microsoft Graph and imports appear here, with what to do.",
                theme.dim(),
            )))
            .block(block)
            .wrap(Wrap { trim: true }),
            area,
        );
        return;
    };
    let block = Block::default()
        .borders(Borders::TOP)
        .border_style(theme.dim())
        .title(Span::styled(
            format!(" {} · {} · {} ", e.code, e.source.label(), e.subject),
            theme.bold(),
        ));
    let width = area.width as usize;
    let mut lines = Vec::new();
    lines.extend(labeled(
        "What happened",
        15,
        &e.what,
        width,
        theme.bold(),
        Style::new(),
    ));
    lines.extend(labeled(
        "What to do",
        15,
        &e.todo,
        width,
        theme.bold(),
        Style::new(),
    ));
    lines.push(Line::from(""));
    let mut field = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            lines.extend(labeled(name, 12, &v, width, theme.dim(), Style::new()));
        }
    };
    field("Code", Some(e.code.clone()));
    field("Message", Some(e.message.clone()));
    field("Status", e.status.map(|s| s.to_string()));
    field("Request-id", e.request_id.clone());
    field("Trace id", e.trace_id.clone());
    field("When", e.at.clone());
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
