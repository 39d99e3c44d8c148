//! Dialogs over the Bindings tab: the plan preview (with the mass-change guard), the progress
//! of an apply and its summary with the passwords issued (shown once), the masked password
//! input and the disconnect question. Each draws its own key line from the keymap. O(screen):
//! only the visible ops and passwords are drawn.
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, LineGauge, Paragraph, Wrap};
use ratatui::Frame;

use crate::app::state::{
    AppState, DomainsView, FixDialog, Modal, PasswordInput, Preview, Run, RunEnd,
};
use crate::app::update::fmt_count;
use crate::keymap::{Command, Context, Key};

use super::{centered, column_widths, draw_list, fit, table_line, ListSpec, Theme};

/// Lines of the main screen that are not the body (header, status bar, hint bar).
const CHROME: u16 = 3;

/// Lines of the scrolling list of the open dialog (the preview's ops, the passwords), on the
/// terminal size the state knows. `update` scrolls with it, `draw` lays out with it.
pub fn list_rows(s: &AppState) -> usize {
    let inner = s.height.saturating_sub(CHROME + 2) as usize;
    let fixed = match &s.modal {
        Modal::Preview(p) => {
            // Summary (2), warnings, list header, guard box, key line.
            2 + p.view.warnings.len()
                + 1
                + if p.expected().is_some() { 4 } else { 0 }
                + held_rows(p)
                + group_rows(p)
                + 1
        }
        // Summary, hand-off line, blank, title, list header, key line.
        Modal::Run(_) => 6,
        _ => return 0,
    };
    inner.saturating_sub(fixed).max(1)
}

/// Lines of the preview's held-back section: a title and up to three ops.
fn held_rows(p: &Preview) -> usize {
    let n = p.view.held.len() + p.view.group_held.len();
    if n == 0 {
        0
    } else {
        1 + n.min(3)
    }
}

/// Lines of the preview's group section: a title with counts per kind and up to three ops.
fn group_rows(p: &Preview) -> usize {
    if p.view.group_ops.is_empty() {
        0
    } else {
        1 + p.view.group_ops.len().min(3)
    }
}

/// The area dialogs cover: the body of the main screen.
fn body(area: Rect) -> Rect {
    Rect::new(
        area.x,
        area.y + 2,
        area.width,
        area.height.saturating_sub(CHROME),
    )
}

fn frame_block<'a>(title: String, theme: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.accent())
        .title(Span::styled(format!(" {title} "), theme.bold()))
}

/// "y apply  Esc back": keys from the keymap, words from the dialog.
fn keys_line<'a>(state: &AppState, theme: &Theme, items: &[(Command, &str)]) -> Line<'a> {
    keys_line_where(state, theme, items, |_| true)
}

/// `keys_line` with only the keys `shown` keeps (a text input types characters: its keys are
/// Enter and Esc, never `n`).
fn keys_line_where<'a>(
    state: &AppState,
    theme: &Theme,
    items: &[(Command, &str)],
    shown: impl Fn(&Key) -> bool,
) -> Line<'a> {
    let mut spans = vec![Span::raw(" ")];
    for (c, word) in items {
        let keys: Vec<String> = state
            .keymap
            .bindings
            .iter()
            .filter(|b| {
                matches!(b.context, Context::Dialog | Context::Export)
                    && b.command == *c
                    && shown(&b.key)
            })
            .map(|b| b.key.to_string())
            .collect();
        if keys.is_empty() {
            continue;
        }
        spans.push(Span::styled(keys.join("/"), theme.key()));
        spans.push(Span::raw(" "));
        spans.push(Span::styled(word.to_string(), theme.dim()));
        spans.push(Span::raw("   "));
    }
    Line::from(spans)
}

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    match &state.modal {
        Modal::None => {}
        Modal::Planning { .. } => small(
            frame,
            area,
            state,
            theme,
            "Preview",
            vec![Line::from(Span::styled(
                "Computing the plan against the tenant users listed…",
                theme.accent(),
            ))],
            &[(Command::Back, "cancel")],
        ),
        Modal::Preview(p) => preview(frame, area, state, theme, p),
        Modal::Run(r) => run(frame, area, state, theme, r),
        Modal::Password(p) => password(frame, area, state, theme, p),
        Modal::Disconnect => small(
            frame,
            area,
            state,
            theme,
            "Disconnect the tenant?",
            vec![
                Line::from("This clears every binding selection in the directory and the"),
                Line::from("saved sign-in (token cache)."),
                Line::from(""),
                Line::from(Span::styled(
                    "Every M365 account is left exactly as it is: nothing is blocked,",
                    theme.ok(),
                )),
                Line::from(Span::styled(
                    "deleted or changed in the tenant.",
                    theme.ok(),
                )),
                Line::from(""),
                Line::from("You will be back at the sign-in screen."),
            ],
            &[(Command::Confirm, "disconnect"), (Command::Back, "cancel")],
        ),
        Modal::Disconnecting => small(
            frame,
            area,
            state,
            theme,
            "Disconnect",
            vec![Line::from(Span::styled("Disconnecting…", theme.accent()))],
            &[],
        ),
        Modal::Fix(d) => fix(frame, area, state, theme, d),
        Modal::Export => small(
            frame,
            area,
            state,
            theme,
            "Export the errors shown",
            vec![
                Line::from(format!(
                    "{} errors, as shown (filter and kind applied).",
                    fmt_count(state.errors_tab.view.shown.len())
                )),
                Line::from(Span::styled(
                    "Written under the data directory, readable by you only (0600).",
                    theme.dim(),
                )),
            ],
            &[
                (Command::ExportCsv, "CSV"),
                (Command::ExportJson, "JSON"),
                (Command::Back, "cancel"),
            ],
        ),
        Modal::Domains(v) => domains(frame, area, state, theme, v),
    }
}

/// A centered box with `lines` and a key line.
fn small(
    frame: &mut Frame,
    area: Rect,
    state: &AppState,
    theme: &Theme,
    title: &str,
    mut lines: Vec<Line<'static>>,
    keys: &[(Command, &str)],
) {
    let w = lines
        .iter()
        .map(|l| l.width())
        .max()
        .unwrap_or(0)
        .max(title.len() + 4) as u16
        + 4;
    lines.push(Line::from(""));
    lines.push(keys_line(state, theme, keys));
    let rect = centered(area, w, lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    let block = frame_block(title.to_string(), theme);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    frame.render_widget(
        Paragraph::new(
            lines
                .into_iter()
                .map(|l| {
                    let mut spans = vec![Span::raw(" ")];
                    spans.extend(l.spans);
                    Line::from(spans)
                })
                .collect::<Vec<_>>(),
        ),
        inner,
    );
}

/// "1m 40s", "~12s", "under a second".
pub fn fmt_eta(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        "under a second".into()
    } else if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    }
}

const OP_COLUMNS: [Constraint; 4] = [
    Constraint::Length(27),
    Constraint::Fill(3),
    Constraint::Fill(4),
    Constraint::Fill(5),
];

fn preview(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, p: &Preview) {
    let rect = body(area);
    frame.render_widget(Clear, rect);
    let n = p.view.plan.ops.len() + p.view.group_ops.len();
    let block = frame_block(
        format!(
            "Plan: {} {}",
            fmt_count(n),
            if n == 1 { "change" } else { "changes" }
        ),
        theme,
    );
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let warn_h = p.view.warnings.len() as u16;
    let guard_h = if p.expected().is_some() { 4 } else { 0 };
    let held_h = held_rows(p) as u16;
    let groups_h = group_rows(p) as u16;
    let [summary, warnings, list, groups, held, guard, keys] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(warn_h),
        Constraint::Fill(1),
        Constraint::Length(groups_h),
        Constraint::Length(held_h),
        Constraint::Length(guard_h),
        Constraint::Length(1),
    ])
    .areas(inner);
    if groups_h > 0 {
        let w = groups.width as usize;
        let mut spans = vec![Span::styled(" Groups: ", theme.bold())];
        for (i, kind) in crate::sync::groups::GroupOpKind::ALL.iter().enumerate() {
            let n = p.view.group_ops.iter().filter(|o| o.kind == *kind).count();
            if n == 0 {
                continue;
            }
            if i > 0 && spans.len() > 1 {
                spans.push(Span::styled(" · ", theme.dim()));
            }
            spans.push(Span::raw(format!("{} {}", kind.label(), fmt_count(n))));
        }
        let mut lines = vec![Line::from(spans)];
        for op in p.view.group_ops.iter().take(3) {
            let label = format!("   {} ", op.kind.label());
            let what = match &op.member {
                Some(m) => format!("{} ← {}", op.group_name, m.email),
                None => format!("{} ({})", op.group_name, op.mail_nickname),
            };
            let what_w = w.saturating_sub(label.chars().count()).max(8);
            lines.push(Line::from(vec![
                Span::styled(label, theme.ok()),
                Span::raw(fit(&what, what_w)),
            ]));
        }
        frame.render_widget(Paragraph::new(lines), groups);
    }
    if held_h > 0 {
        let w = held.width as usize;
        let n = p.view.held.len() + p.view.group_held.len();
        let mut lines = vec![Line::from(vec![
            Span::styled(format!(" ⏸ held back: {} ", fmt_count(n)), theme.warn()),
            Span::styled("— never sent; see Errors (tab 3)", theme.dim()),
        ])];
        let held_ops =
            p.view
                .held
                .iter()
                .map(|(op, issue)| (op.kind.label(), op.upn.clone(), issue))
                .chain(
                    p.view.group_held.iter().map(|(op, issue)| {
                        (op.kind.label(), format!("\"{}\"", op.group_name), issue)
                    }),
                );
        for (kind, what, issue) in held_ops.take(3) {
            let label = format!("   {kind} ");
            let upn_w = w.saturating_sub(label.chars().count() + 24).max(8);
            lines.push(Line::from(vec![
                Span::styled(label, theme.warn()),
                Span::raw(fit(&what, upn_w)),
                Span::raw(" "),
                Span::styled(issue.kind.clone(), theme.error()),
            ]));
        }
        frame.render_widget(Paragraph::new(lines), held);
    }

    let mut spans = vec![Span::raw(" ")];
    for (i, (kind, count)) in p.view.counts.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", theme.dim()));
        }
        spans.push(Span::styled(kind.label(), theme.bold()));
        spans.push(Span::raw(format!(" {}", fmt_count(*count))));
    }
    spans.push(Span::styled(" · ETA ", theme.dim()));
    spans.push(Span::styled(fmt_eta(p.view.eta), theme.accent()));
    spans.push(Span::styled(
        format!(
            " (write budget {} / {} s)",
            fmt_count(crate::app::runtime::BUDGET.writes as usize),
            crate::app::runtime::BUDGET.window.as_secs()
        ),
        theme.dim(),
    ));
    frame.render_widget(
        Paragraph::new(Line::from(spans)).wrap(Wrap { trim: true }),
        summary,
    );
    let w = warnings.width as usize;
    let lines: Vec<Line> = p
        .view
        .warnings
        .iter()
        .map(|t| {
            Line::from(vec![
                Span::styled(" ! ", theme.warn()),
                Span::styled(fit(t, w.saturating_sub(3)), theme.warn()),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), warnings);

    let widths = column_widths(&OP_COLUMNS, list.width);
    let header = table_line(
        ["Change", "User", "UPN", "Why"]
            .iter()
            .map(|h| (h.to_string(), Style::new()))
            .collect(),
        &widths,
        theme.header_row(),
    );
    let ops = &p.view.plan.ops;
    draw_list(
        frame,
        list,
        ListSpec {
            header,
            len: ops.len(),
            offset: p.offset,
            empty: "",
        },
        theme,
        |i| {
            let op = &ops[i];
            let kind_style = match op.kind {
                crate::sync::plan::OpKind::Block => theme.warn(),
                _ => theme.ok(),
            };
            let cells = vec![
                (format!(" {}", op.kind.label()), kind_style),
                (op.display_name.clone(), Style::new()),
                (op.upn.clone(), Style::new()),
                (op.reason.clone(), theme.dim()),
            ];
            let style = if i == p.selected {
                theme.selected()
            } else {
                Style::new()
            };
            table_line(cells, &widths, style)
        },
    );

    if let Some(want) = p.expected() {
        let ok = p.confirmed();
        // The guard's count first, then the UPN of an account m365sync acts for.
        let (title, message) = match (&p.view.guard, &p.view.self_block) {
            (Some(g), _) if !p.guard_ok => (" Mass-change guard ", g.message.clone()),
            (_, Some(b)) => (" Blocking your own account ", b.message.clone()),
            _ => (" Confirm ", String::new()),
        };
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(if ok { theme.ok() } else { theme.error() })
            .title(Span::styled(title, theme.error()));
        let gi = block.inner(guard);
        frame.render_widget(block, guard);
        let prompt = format!(" Type {want} to confirm: ");
        let lines = vec![
            Line::from(Span::styled(
                fit(&format!(" {message}"), gi.width as usize),
                theme.warn(),
            )),
            Line::from(vec![
                Span::styled(prompt.clone(), theme.bold()),
                Span::styled(
                    format!("{:<8}", p.guard_input.value()),
                    if ok { theme.ok() } else { theme.selected() },
                ),
                Span::styled(if ok { "  confirmed: y applies" } else { "" }, theme.ok()),
            ]),
        ];
        frame.render_widget(Paragraph::new(lines), gi);
        let x = gi.x + prompt.len() as u16 + p.guard_input.visual_cursor() as u16;
        if x < gi.x + gi.width {
            frame.set_cursor_position(Position::new(x, gi.y + 1));
        }
    }
    let mut items = vec![];
    if p.confirmed() && (!p.view.plan.ops.is_empty() || !p.view.group_ops.is_empty()) {
        items.push((Command::Confirm, "apply"));
    }
    items.push((Command::Back, "back"));
    items.push((Command::Down, "scroll"));
    frame.render_widget(Paragraph::new(keys_line(state, theme, &items)), keys);
}

fn run(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, r: &Run) {
    let rect = body(area);
    frame.render_widget(Clear, rect);
    let title = match (&r.finished, r.stopping) {
        (Some(_), _) => format!("Applied {} changes", fmt_count(r.total)),
        (None, true) => "Stopping…".to_string(),
        (None, false) => format!("Applying {} changes", fmt_count(r.total)),
    };
    let block = frame_block(title, theme);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    match &r.finished {
        None => running(frame, inner, state, theme, r),
        Some(end) => finished(frame, inner, state, theme, r, end),
    }
}

fn running(frame: &mut Frame, inner: Rect, state: &AppState, theme: &Theme, r: &Run) {
    let p = &r.progress;
    let [gauge, stats, stopping, _, errors, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    let total = (p.done + p.failed + p.remaining).max(r.total).max(1);
    let finished = p.done + p.failed;
    frame.render_widget(
        LineGauge::default()
            .ratio((finished as f64 / total as f64).min(1.0))
            .label(format!(" {} of {} ", fmt_count(finished), fmt_count(total)))
            .filled_symbol("━")
            .unfilled_symbol("─")
            .filled_style(theme.gauge())
            .unfilled_style(theme.dim()),
        gauge,
    );
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" done ", theme.dim()),
            Span::styled(fmt_count(p.done), theme.ok()),
            Span::styled("  failed ", theme.dim()),
            Span::styled(
                fmt_count(p.failed),
                if p.failed > 0 {
                    theme.error()
                } else {
                    theme.bold()
                },
            ),
            Span::styled("  remaining ", theme.dim()),
            Span::styled(fmt_count(p.remaining), theme.bold()),
            Span::styled("  ·  ", theme.dim()),
            Span::styled(format!("{:.1} ops/s", p.rate), theme.accent()),
            Span::styled("  ·  throttled ", theme.dim()),
            Span::styled(
                fmt_count(p.throttled),
                if p.throttled > 0 {
                    theme.warn()
                } else {
                    theme.bold()
                },
            ),
        ])),
        stats,
    );
    if r.stopping {
        frame.render_widget(
            Paragraph::new(Span::styled(
                " Stopping after the ops in flight… (nothing new is sent)",
                theme.warn(),
            )),
            stopping,
        );
    }
    error_lines(frame, errors, theme, r);
    let items: &[(Command, &str)] = if r.stopping {
        &[]
    } else {
        &[(Command::Back, "stop sending")]
    };
    frame.render_widget(Paragraph::new(keys_line(state, theme, items)), keys);
}

fn error_lines(frame: &mut Frame, area: Rect, theme: &Theme, r: &Run) {
    if r.errors.is_empty() {
        return;
    }
    let w = area.width as usize;
    let mut lines = vec![Line::from(Span::styled(" Last errors", theme.error()))];
    for e in r.errors.iter().rev() {
        lines.push(Line::from(vec![
            Span::raw("  "),
            Span::styled(
                fit(&format!("{} {}:", e.kind.label(), e.upn), w / 2),
                theme.bold(),
            ),
            Span::raw(" "),
            Span::raw(fit(&e.message, w.saturating_sub(w / 2 + 3))),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

const PASSWORD_COLUMNS: [Constraint; 3] = [
    Constraint::Length(1),
    Constraint::Fill(3),
    Constraint::Fill(2),
];

fn finished(
    frame: &mut Frame,
    inner: Rect,
    state: &AppState,
    theme: &Theme,
    r: &Run,
    end: &RunEnd,
) {
    let summary = match end {
        RunEnd::Done {
            done,
            failed,
            cancelled,
        } => {
            let mut spans = vec![
                Span::raw(" "),
                Span::styled(format!("{} done", fmt_count(*done)), theme.ok()),
            ];
            if *failed > 0 {
                spans.push(Span::raw(", "));
                spans.push(Span::styled(
                    format!("{} failed (see the Errors tab)", fmt_count(*failed)),
                    theme.error(),
                ));
            }
            if *cancelled > 0 {
                spans.push(Span::raw(", "));
                spans.push(Span::styled(
                    format!("{} not sent (stopped)", fmt_count(*cancelled)),
                    theme.warn(),
                ));
            }
            spans.push(Span::raw("."));
            Line::from(spans)
        }
        RunEnd::Failed(e) => Line::from(vec![
            Span::styled(" The apply stopped: ", theme.error()),
            Span::raw(e.clone()),
        ]),
    };
    if r.passwords.is_empty() {
        let [s, _, errors, keys] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Fill(1),
            Constraint::Length(1),
        ])
        .areas(inner);
        frame.render_widget(Paragraph::new(summary), s);
        error_lines(frame, errors, theme, r);
        frame.render_widget(
            Paragraph::new(keys_line(state, theme, &[(Command::Back, "close")])),
            keys,
        );
        return;
    }
    let [s, handoff, _, title, list, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    frame.render_widget(Paragraph::new(summary), s);
    if let Some(path) = &r.handoff {
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(" Hand-off CSV (owner-only): ", theme.dim()),
                Span::styled(path.clone(), theme.ok()),
            ])),
            handoff,
        );
    }
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(
                format!(" {} temporary passwords", fmt_count(r.passwords.len())),
                theme.accent(),
            ),
            Span::styled(
                " (changed at first sign-in), shown only once:",
                theme.warn(),
            ),
        ])),
        title,
    );
    let widths = column_widths(&PASSWORD_COLUMNS, list.width);
    let header = table_line(
        ["", "User principal name", "Temporary password"]
            .iter()
            .map(|h| (h.to_string(), Style::new()))
            .collect(),
        &widths,
        theme.header_row(),
    );
    let rows = list.height.saturating_sub(1) as usize;
    let offset = r.selected.saturating_sub(rows.saturating_sub(1));
    draw_list(
        frame,
        list,
        ListSpec {
            header,
            len: r.passwords.len(),
            offset,
            empty: "",
        },
        theme,
        |i| {
            let p = &r.passwords[i];
            let cells = vec![
                (
                    if i == r.selected { "›" } else { " " }.to_string(),
                    theme.accent(),
                ),
                (p.upn.clone(), Style::new()),
                (p.password.clone(), theme.bold()),
            ];
            let style = if i == r.selected {
                theme.selected()
            } else {
                Style::new()
            };
            table_line(cells, &widths, style)
        },
    );
    frame.render_widget(
        Paragraph::new(keys_line(
            state,
            theme,
            &[
                (Command::CopyPassword, "copy (OSC 52)"),
                (Command::WriteHandoff, "hand-off CSV"),
                (Command::Down, "select"),
                (Command::Back, "close and forget"),
            ],
        )),
        keys,
    );
}

fn password(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, p: &PasswordInput) {
    let w = 72u16.min(area.width);
    let rect = centered(area, w, 10);
    frame.render_widget(Clear, rect);
    let block = frame_block(format!("Set the password of {}", p.email), theme);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let n = p.input.value().chars().count();
    let masked: String = "•".repeat(n);
    let field_w = (inner.width as usize).saturating_sub(13);
    let shown = if n > field_w {
        // Keep the end (where typing happens) in view.
        "•".repeat(field_w)
    } else {
        masked
    };
    let check = match &p.problem {
        Some(problem) => Line::from(vec![
            Span::styled(" ✗ ", theme.error()),
            Span::styled(problem.clone(), theme.warn()),
        ]),
        None => Line::from(vec![
            Span::styled(" ✓ ", theme.ok()),
            Span::styled("meets the tenant's password rules", theme.ok()),
        ]),
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(" Password: ", theme.bold()),
            Span::styled(fit(&shown, field_w), theme.selected()),
        ]),
        Line::from(""),
    ];
    lines.push(check);
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        " Sent at once to the bound account, not to be changed at sign-in.",
        theme.dim(),
    )));
    lines.push(Line::from(Span::styled(
        " The directory keeps when it was set, never the password.",
        theme.dim(),
    )));
    let [text, keys] = Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(inner);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), text);
    let mut items = vec![];
    if p.problem.is_none() {
        items.push((Command::Submit, "set"));
    }
    items.push((Command::Back, "cancel"));
    let not_text = |k: &Key| !matches!(k.code, crossterm::event::KeyCode::Char(_));
    frame.render_widget(
        Paragraph::new(keys_line_where(state, theme, &items, not_text)),
        keys,
    );
    let x = text.x + 11 + (p.input.visual_cursor().min(field_w)) as u16;
    if x < text.x + text.width {
        frame.set_cursor_position(Position::new(x, text.y));
    }
}

fn fix(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, d: &FixDialog) {
    let id = d.action.map(|a| a.id()).unwrap_or("fix");
    let e = state.errors.get(d.error);
    let title = format!("Fix: {id}");
    let w = 74u16.min(area.width);
    let inner_w = w.saturating_sub(4) as usize;
    let mut lines: Vec<Line> = Vec::new();
    if let Some(e) = e {
        lines.push(Line::from(vec![
            Span::styled(" Error  ", theme.dim()),
            Span::styled(fit(&e.diag.title, inner_w.saturating_sub(8)), theme.error()),
        ]));
    }
    lines.push(Line::from(""));
    for c in &d.change {
        for l in super::wrap(c, inner_w.saturating_sub(1)) {
            lines.push(Line::from(format!(" {l}")));
        }
    }
    let mut cursor = None;
    if let Some(input) = &d.input {
        lines.push(Line::from(""));
        let field_w = inner_w.saturating_sub(9);
        let v = input.value();
        let shown: String = v
            .chars()
            .skip(v.chars().count().saturating_sub(field_w))
            .collect();
        cursor = Some((lines.len(), 8 + input.visual_cursor().min(field_w)));
        lines.push(Line::from(vec![
            Span::styled(" Email: ", theme.bold()),
            Span::styled(format!("{shown:<field_w$}"), theme.selected()),
        ]));
        lines.push(match &d.problem {
            Some(p) => Line::from(vec![
                Span::styled(" ✗ ", theme.error()),
                Span::styled(fit(p, inner_w.saturating_sub(3)), theme.warn()),
            ]),
            None => Line::from(vec![
                Span::styled(" ✓ ", theme.ok()),
                Span::styled("a valid address", theme.ok()),
            ]),
        });
    }
    if d.irreversible {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(
            " ⚠ This is irreversible.",
            theme.error(),
        )));
    }
    let many = e.is_some_and(|e| e.fixes().len() > 1);
    let mut items: Vec<(Command, &str)> = Vec::new();
    let ready = d.value.is_some()
        || d.input.is_some()
        || matches!(
            d.action,
            Some(crate::diagnose::FixAction::Retry | crate::diagnose::FixAction::SignInAgain)
        );
    if d.input.is_some() {
        if d.problem.is_none() {
            items.push((Command::Submit, "save"));
        }
    } else if ready {
        items.push((
            Command::Confirm,
            if d.irreversible {
                "delete for good"
            } else {
                "apply"
            },
        ));
    }
    if many {
        items.push((Command::NextFix, "other fix"));
    }
    items.push((Command::Back, "cancel"));
    let h = (lines.len() as u16 + 4).min(area.height);
    let rect = centered(area, w, h);
    frame.render_widget(Clear, rect);
    let block = frame_block(title, theme);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [text, keys] = Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(inner);
    frame.render_widget(Paragraph::new(lines), text);
    let not_text =
        |k: &Key| d.input.is_none() || !matches!(k.code, crossterm::event::KeyCode::Char(_));
    frame.render_widget(
        Paragraph::new(keys_line_where(state, theme, &items, not_text)),
        keys,
    );
    if let Some((row, col)) = cursor {
        let (x, y) = (text.x + col as u16, text.y + row as u16);
        if x < text.x + text.width && y < text.y + text.height {
            frame.set_cursor_position(Position::new(x, y));
        }
    }
}

fn domains(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, v: &DomainsView) {
    let rect = body(area);
    frame.render_widget(Clear, rect);
    let block = frame_block(format!("Domains of {}", state.tenant), theme);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [intro, list, keys] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    let default = v.default_domain();
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(Span::styled(
                " Where m365sync may create accounts (✓), and its default domain (★).",
                theme.dim(),
            )),
            Line::from(Span::styled(
                format!(
                    " Default: {}   ·   {}",
                    default.as_deref().unwrap_or("none"),
                    if v.settings.enabled.is_none() {
                        "no list saved: every verified domain"
                    } else {
                        "saved for this tenant"
                    }
                ),
                theme.bold(),
            )),
        ]),
        intro,
    );
    match (&v.domains, &v.error) {
        (_, Some(e)) => frame.render_widget(
            Paragraph::new(Line::from(Span::styled(format!(" {e}"), theme.error())))
                .wrap(Wrap { trim: true }),
            list,
        ),
        (None, None) => frame.render_widget(
            Paragraph::new(Line::from(Span::styled(
                " Reading the tenant's domains…",
                theme.accent(),
            ))),
            list,
        ),
        (Some(ds), None) => {
            let widths = column_widths(&DOMAIN_COLUMNS, list.width);
            let header = table_line(
                ["   Use", "Domain", "Verified", "Auth", "Notes"]
                    .iter()
                    .map(|h| (h.to_string(), Style::new()))
                    .collect(),
                &widths,
                theme.header_row(),
            );
            let rows = list.height.saturating_sub(1) as usize;
            let offset = v.selected.saturating_sub(rows.saturating_sub(1));
            draw_list(
                frame,
                list,
                ListSpec {
                    header,
                    len: ds.len(),
                    offset,
                    empty: " The tenant has no domains.",
                },
                theme,
                |i| {
                    let d = &ds[i];
                    let on = v.enabled(d);
                    let is_default = default
                        .as_deref()
                        .is_some_and(|x| x.eq_ignore_ascii_case(&d.id));
                    let mut notes = Vec::new();
                    if d.is_default {
                        notes.push("tenant default");
                    }
                    if d.is_initial {
                        notes.push("initial");
                    }
                    let cells = vec![
                        (
                            format!(
                                " {} {}",
                                if on { "✓" } else { "·" },
                                if is_default { "★" } else { " " }
                            ),
                            if on { theme.ok() } else { theme.dim() },
                        ),
                        (d.id.clone(), Style::new()),
                        (
                            if d.is_verified { "yes" } else { "no" }.to_string(),
                            if d.is_verified {
                                theme.ok()
                            } else {
                                theme.error()
                            },
                        ),
                        (
                            d.authentication_type
                                .clone()
                                .unwrap_or_else(|| "Managed".into()),
                            theme.dim(),
                        ),
                        (notes.join(", "), theme.dim()),
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
    }
    frame.render_widget(
        Paragraph::new(keys_line(
            state,
            theme,
            &[
                (Command::ToggleDomain, "allow"),
                (Command::DefaultDomain, "default"),
                (Command::Down, "move"),
                (Command::Back, "close"),
            ],
        )),
        keys,
    );
}

const DOMAIN_COLUMNS: [Constraint; 5] = [
    Constraint::Length(6),
    Constraint::Fill(3),
    Constraint::Length(8),
    Constraint::Length(9),
    Constraint::Fill(2),
];
