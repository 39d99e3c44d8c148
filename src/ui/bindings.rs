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
    spans.push(Span::styled("  ", theme.dim()));
    spans.push(Span::styled(
        if tab.groups { "Groups" } else { "Users" },
        theme.accent(),
    ));
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

    if tab.groups {
        draw_groups(frame, list, state, theme);
        return;
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

const GROUP_COLUMNS: [Constraint; 6] = [
    Constraint::Length(9),
    Constraint::Fill(3),
    Constraint::Length(9),
    Constraint::Fill(2),
    Constraint::Length(7),
    Constraint::Fill(3),
];

/// Shows stray spaces of a group name: quoted when the name has leading, trailing or double
/// spaces, as it is otherwise.
pub fn group_name_shown(name: &str) -> String {
    if name.trim() != name || name.contains("  ") {
        format!("\"{name}\"")
    } else {
        name.to_string()
    }
}

fn draw_groups(frame: &mut Frame, list: Rect, state: &AppState, theme: &Theme) {
    use crate::directory::GroupState;
    let tab = &state.bindings;
    let d = &state.directory;
    let widths = column_widths(&GROUP_COLUMNS, list.width);
    let header = table_line(
        [
            "State",
            "Group",
            "Kind",
            "Nickname",
            "Members",
            "M365 id / last error",
        ]
        .iter()
        .map(|h| (h.to_string(), Style::new()))
        .collect(),
        &widths,
        theme.header_row(),
    );
    let empty = if !state.directory_loaded {
        "The directory is not loaded yet."
    } else if d.groups.is_empty() {
        "The directory has no groups."
    } else {
        "No directory group matches the filter."
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
            let g = &d.groups[v.shown[i] as usize];
            let st = g.state();
            let row_state = match st {
                GroupState::Unbound => RowState::Unbound,
                GroupState::Bound => RowState::Bound,
                GroupState::Kept => RowState::Blocked,
                GroupState::Failed => RowState::Error,
                GroupState::Pending => RowState::Pending(crate::app::state::PendingOp::Create),
            };
            let detail = match (&g.tenant_group_id, &g.last_error) {
                (_, Some(e)) if st == GroupState::Failed => (e.clone(), theme.error()),
                (Some(id), _) => (id.clone(), theme.dim()),
                (None, _) => ("—".to_string(), theme.dim()),
            };
            let kind = match g.kind {
                crate::directory::GroupKind::Security => "security",
                crate::directory::GroupKind::M365 => "M365",
            };
            let cells = vec![
                (st.label().to_string(), theme.row_state(row_state)),
                (group_name_shown(&g.name), Style::new()),
                (kind.to_string(), theme.dim()),
                (crate::sync::groups::nickname_for(g), Style::new()),
                (fmt_count(g.members.len()), Style::new()),
                detail,
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
