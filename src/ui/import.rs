//! Import tab: every tenant user with its import status; filter, marks, progress gauge.
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{LineGauge, Paragraph};
use ratatui::Frame;

use crate::app::state::{AppState, ListView, Load};
use crate::app::update::fmt_count;

use super::{column_widths, draw_list, table_line, ListSpec, Theme};

const COLUMNS: [Constraint; 6] = [
    Constraint::Length(1),
    Constraint::Length(8),
    Constraint::Fill(3),
    Constraint::Fill(4),
    Constraint::Fill(4),
    Constraint::Length(7),
];

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let [toolbar, list] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    let right_w = (toolbar.width / 3).clamp(12, 34);
    let [left, right] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(right_w)]).areas(toolbar);

    let tab = &state.import;
    let mut spans = filter_spans(&tab.view, theme);
    spans.push(Span::styled("  status ", theme.dim()));
    spans.push(Span::styled(
        tab.status.map(|s| s.label()).unwrap_or("All"),
        tab.status.map(|s| theme.status(s)).unwrap_or(theme.bold()),
    ));
    if tab.status.is_some() || !tab.view.query.is_empty() {
        spans.push(Span::styled(
            format!("  {} shown", fmt_count(tab.view.shown.len())),
            theme.dim(),
        ));
    }
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
    frame.render_widget(Paragraph::new(Line::from(spans)), left);
    if tab.view.editing {
        set_filter_cursor(frame, left, &tab.view);
    }
    draw_progress(frame, right, state, theme);

    let widths = column_widths(&COLUMNS, list.width);
    let header = table_line(
        ["", "Status", "Display name", "UPN", "Mail", "Enabled"]
            .iter()
            .map(|h| (h.to_string(), Style::new()))
            .collect(),
        &widths,
        theme.header_row(),
    );
    let empty = match &state.load {
        _ if !state.rows.is_empty() => "No user matches the filter.",
        Load::Waiting => "Reading the local directory…",
        Load::Loading { .. } => "Waiting for the first page of users from Microsoft Graph…",
        Load::Failed { .. } => "Loading the users failed: see Errors (3); press r to try again.",
        Load::Cancelled => "Loading was stopped: press r to load the users.",
        _ => "The tenant has no users.",
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
            let u = state.rows.user(row);
            let st = state.rows.status[row as usize];
            let marked = tab.marks.contains(row);
            let cells = vec![
                (if marked { "●" } else { " " }.to_string(), theme.accent()),
                (st.label().to_string(), theme.status(st)),
                (u.display_name.clone().unwrap_or_default(), Style::new()),
                (u.user_principal_name.clone(), Style::new()),
                (u.mail.clone().unwrap_or_default(), theme.dim()),
                (
                    match u.account_enabled {
                        Some(true) => "yes",
                        Some(false) => "no",
                        None => "—",
                    }
                    .to_string(),
                    Style::new(),
                ),
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

/// "/ filter" hint, the query kept, or the query being typed.
pub fn filter_spans<'a>(v: &ListView, theme: &Theme) -> Vec<Span<'a>> {
    let text = v.input.value();
    if v.editing {
        vec![
            Span::styled(" / ", theme.key()),
            Span::styled(text.to_string(), theme.bold()),
        ]
    } else if text.is_empty() {
        vec![Span::styled(" / filter", theme.dim())]
    } else {
        vec![
            Span::styled(" / ", theme.dim()),
            Span::styled(text.to_string(), theme.accent()),
        ]
    }
}

pub fn set_filter_cursor(frame: &mut Frame, area: Rect, v: &ListView) {
    let x = area.x + 3 + v.input.visual_cursor() as u16;
    if x < area.x + area.width {
        frame.set_cursor_position(Position::new(x, area.y));
    }
}

fn draw_progress(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let n = state.rows.len();
    match &state.load {
        Load::Loading { pages } => match state.expected {
            // A reload: the last load's total is a fair estimate.
            Some(e) if e > 0 => frame.render_widget(
                LineGauge::default()
                    .ratio((n as f64 / e as f64).min(1.0))
                    .label(format!("{} of ~{} ", fmt_count(n), fmt_count(e)))
                    .filled_symbol("━")
                    .unfilled_symbol("─")
                    .filled_style(theme.gauge())
                    .unfilled_style(theme.dim()),
                area,
            ),
            // Graph gives no total up front: count what came, claim no ratio.
            _ => frame.render_widget(
                Paragraph::new(Line::from(vec![
                    Span::styled(format!("{} loaded", fmt_count(n)), theme.accent()),
                    Span::styled(format!(" · page {pages}… "), theme.dim()),
                ]))
                .right_aligned(),
                area,
            ),
        },
        Load::Done => frame.render_widget(
            Paragraph::new(Line::from(Span::styled(
                format!("all {} loaded ", fmt_count(n)),
                theme.ok(),
            )))
            .right_aligned(),
            area,
        ),
        Load::Failed { .. } => frame.render_widget(
            Paragraph::new(Line::from(Span::styled(
                format!("load failed at {} ", fmt_count(n)),
                theme.error(),
            )))
            .right_aligned(),
            area,
        ),
        Load::Cancelled => frame.render_widget(
            Paragraph::new(Line::from(Span::styled(
                format!("stopped at {} ", fmt_count(n)),
                theme.warn(),
            )))
            .right_aligned(),
            area,
        ),
        Load::Waiting => frame.render_widget(
            Paragraph::new(Line::from(Span::styled("reading directory… ", theme.dim())))
                .right_aligned(),
            area,
        ),
        Load::Idle => {}
    }
}
