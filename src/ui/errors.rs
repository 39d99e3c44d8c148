//! Errors tab: every failure and preflight finding so far as a catalog diagnosis: the kinds
//! present with their counts (`s` narrows to one), a list, and a detail pane: what happened,
//! why, numbered fix steps, the one-key fixes, the permission, and the raw code, message and
//! ids support asks for.
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use crate::app::explain::{ErrorEntry, ErrorSource};
use crate::app::state::{AppState, ErrorsTab};
use crate::app::update::fmt_count;
use crate::keymap::{Command, Context};

use super::import::{filter_spans, set_filter_cursor};
use super::{column_widths, draw_list, fit, labeled, table_line, ListSpec, Theme};

const COLUMNS: [Constraint; 4] = [
    Constraint::Length(9),
    Constraint::Length(26),
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
    let [toolbar, kinds, list, detail] = Layout::vertical([
        Constraint::Length(1),
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
                "  {} errors{}  ·  {}",
                fmt_count(state.errors.len()),
                match &state.errors_tab.kind {
                    Some(k) => format!(", kind {k}"),
                    None => String::new(),
                },
                super::position(v.selected, v.shown.len())
            ),
            theme.bold(),
        ));
    }
    if let Some(m) = &state.message {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(m.clone(), theme.accent()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), toolbar);
    if v.editing {
        set_filter_cursor(frame, toolbar, v);
    }
    draw_kinds(frame, kinds, state, theme);

    let widths = column_widths(&COLUMNS, list.width);
    let header = table_line(
        ["Source", "Kind", "About", "Message"]
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
                (e.kind().to_string(), theme.error()),
                (e.diag.subject.name().to_string(), Style::new()),
                (
                    if e.message.is_empty() {
                        e.diag.title.clone()
                    } else {
                        e.message.clone()
                    },
                    Style::new(),
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

    let selected = v.selected_row().and_then(|r| state.errors.get(r as usize));
    draw_detail(frame, detail, state, selected, theme);
}

/// `kinds: upn-domain-unverified 1 · proxy-address-held 2` with the kind shown highlighted.
fn draw_kinds(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let kinds = ErrorsTab::kinds(&state.errors);
    if kinds.is_empty() {
        return;
    }
    let mut spans = vec![Span::styled(" kinds ", theme.dim())];
    let all = state.errors_tab.kind.is_none();
    spans.push(Span::styled(
        format!("all {}", fmt_count(state.errors.len())),
        if all { theme.selected() } else { Style::new() },
    ));
    for (k, n) in kinds {
        spans.push(Span::styled(" · ", theme.dim()));
        let on = state.errors_tab.kind.as_deref() == Some(k);
        spans.push(Span::styled(
            format!("{k} {n}"),
            if on { theme.selected() } else { theme.error() },
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The keys of the fix command, from the keymap (`f`).
fn key_of(state: &AppState, c: Command, ctx: Context) -> String {
    state
        .keymap
        .bindings
        .iter()
        .find(|b| b.context == ctx && b.command == c)
        .map(|b| b.key.to_string())
        .unwrap_or_default()
}

fn draw_detail(
    frame: &mut Frame,
    area: Rect,
    state: &AppState,
    e: Option<&ErrorEntry>,
    theme: &Theme,
) {
    let Some(e) = e else {
        let block = Block::default()
            .borders(Borders::TOP)
            .border_style(theme.dim());
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(
                " Failures of sign-in, Microsoft Graph, imports and the preflight checks of \
                 the plan appear here, with what to do.",
                theme.dim(),
            )))
            .block(block)
            .wrap(Wrap { trim: true }),
            area,
        );
        return;
    };
    let d = &e.diag;
    let block = Block::default()
        .borders(Borders::TOP)
        .border_style(theme.dim())
        .title(Span::styled(
            fit(
                &format!(" {} · {} ", d.title, d.subject.label()),
                area.width.saturating_sub(2) as usize,
            ),
            theme.bold(),
        ));
    let width = area.width as usize;
    let mut lines = Vec::new();
    lines.extend(labeled(
        "What",
        7,
        &d.what,
        width,
        theme.bold(),
        Style::new(),
    ));
    // The raw code and ids first: support asks for them, and they must fit at 80x24.
    let target = d.raw.as_ref().and_then(|r| r.target.as_deref());
    let mut raw = match (e.status, e.source, target) {
        (Some(st), _, _) => format!("{} (HTTP {st})", e.code),
        (None, ErrorSource::Preflight, Some(t)) => {
            format!("preflight check of {t}: held back, nothing was sent")
        }
        (None, _, _) => e.code.clone(),
    };
    if let Some(r) = &e.request_id {
        raw.push_str(&format!(" · request-id {r}"));
    }
    if let Some(t) = &e.trace_id {
        raw.push_str(&format!(" · trace {t}"));
    }
    if let Some(at) = &e.at {
        raw.push_str(&format!(" · {at}"));
    }
    lines.extend(labeled("Raw", 7, &raw, width, theme.bold(), theme.dim()));
    for (i, step) in d.steps.iter().enumerate() {
        let head = if i == 0 { "Fix" } else { "" };
        lines.extend(labeled(
            head,
            7,
            &format!("{}. {step}", i + 1),
            width,
            theme.bold(),
            Style::new(),
        ));
    }
    let fixes = d.fixes();
    if !fixes.is_empty() {
        let mut spans = vec![Span::styled(fit("Keys", 7), theme.bold())];
        spans.push(Span::styled(
            key_of(state, Command::Fix, Context::Errors),
            theme.key(),
        ));
        spans.push(Span::raw(format!(" {}", fixes[0].id())));
        if fixes.len() > 1 {
            let others: Vec<&str> = fixes[1..].iter().map(|f| f.id()).collect();
            spans.push(Span::styled(
                format!(
                    "  (then {} for {})",
                    key_of(state, Command::NextFix, Context::Dialog),
                    others.join(", ")
                ),
                theme.dim(),
            ));
        }
        lines.push(Line::from(spans));
    }
    if let Some(p) = &d.permission {
        lines.extend(labeled("Needs", 7, p, width, theme.bold(), theme.warn()));
    }
    lines.extend(labeled("Why", 7, &d.why, width, theme.bold(), theme.dim()));
    lines.push(Line::from(""));
    let mut field = |name: &str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            lines.extend(labeled(name, 12, &v, width, theme.dim(), Style::new()));
        }
    };
    field("Message", Some(e.message.clone()));
    field("Target", d.raw.as_ref().and_then(|r| r.target.clone()));
    field("Request-id", e.request_id.clone());
    field("Trace id", e.trace_id.clone());
    field("Date", e.at.clone());
    field("Kind", Some(format!("{} · {}", d.kind, e.source.label())));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
