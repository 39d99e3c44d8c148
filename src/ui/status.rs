//! Header (tabs, banner), status bar (tenant, identity, token, counts, work in progress) and the
//! hint bar generated from the keymap.
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::app::state::{binding_slot, AppState, Load, Modal, PendingOp, RowState, Tab};
use crate::app::update::{contexts, dialog_accepts, fmt_count};
use crate::directory::{BindingState, ImportStatus};
use crate::keymap::Context;

use super::Theme;

pub fn draw_header(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let mut spans = vec![Span::styled(" m365sync ", theme.accent()), Span::raw(" ")];
    for tab in Tab::ALL {
        let mut label = format!(" {} {} ", tab.index() + 1, tab.title());
        if tab == Tab::Errors && !state.errors.is_empty() {
            label = format!(" 3 Errors ({}) ", fmt_count(state.errors.len()));
        }
        let style = if tab == state.tab {
            theme.tab_active()
        } else if tab == Tab::Errors && !state.errors.is_empty() {
            theme.error()
        } else {
            theme.dim()
        };
        spans.push(Span::styled(label, style));
        spans.push(Span::raw(" "));
    }
    let left: usize = spans.iter().map(|s| s.width()).sum();
    if let Some(b) = &state.banner {
        let b = format!(" {b} ");
        let room = (area.width as usize).saturating_sub(left);
        if room > 4 {
            let b = super::fit(&b, room.min(b.chars().count()));
            let pad = room - b.chars().count();
            spans.push(Span::raw(" ".repeat(pad)));
            spans.push(Span::styled(b, theme.banner()));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// "52m", "1h05m", "expired".
pub fn token_left(expires_at: i64, now: i64) -> String {
    let left = expires_at - now;
    if left <= 0 {
        return "expired".into();
    }
    let m = left / 60;
    if m >= 60 {
        format!("{}h{:02}m", m / 60, m % 60)
    } else {
        format!("{m}m")
    }
}

pub fn draw_status(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let width = area.width as usize;
    // Right: work in progress and the counts per status (never cut); left: where and who,
    // in the longest form that fits.
    let mut right: Vec<Span> = Vec::new();
    if let Some(work) = work_in_progress(state) {
        right.push(Span::styled(work, theme.accent()));
        right.push(Span::styled(" │ ", theme.dim()));
    }
    let counts = |short: bool| -> Vec<Span<'static>> {
        let mut v = Vec::new();
        if state.tab == Tab::Bindings {
            // What the directory is, then what its wishes will change.
            let d = &state.directory;
            // Short of room, what will change matters more than what is.
            let show_counts = !short || d.pending_total() == 0;
            for (i, b) in [
                BindingState::Bound,
                BindingState::Unbound,
                BindingState::Blocked,
            ]
            .into_iter()
            .enumerate()
            .filter(|_| show_counts)
            {
                if i > 0 {
                    v.push(Span::raw("  "));
                }
                let label = match (short, b) {
                    (true, BindingState::Unbound) => "Unb",
                    (true, BindingState::Blocked) => "Blk",
                    _ => b.label(),
                };
                v.push(Span::styled(format!("{label} "), theme.binding(b)));
                v.push(Span::raw(fmt_count(d.counts[binding_slot(b)])));
            }
            if d.pending_total() > 0 {
                if show_counts {
                    v.push(Span::styled(" │", theme.dim()));
                }
                for p in PendingOp::ALL {
                    let n = d.pending[p.slot()];
                    if n > 0 {
                        let lead = if v.is_empty() { "" } else { " " };
                        v.push(Span::styled(
                            format!("{lead}{} ", p.label()),
                            theme.row_state(RowState::Pending(p)),
                        ));
                        v.push(Span::raw(fmt_count(n)));
                    }
                }
            }
            let errors = state.bindings.failures.len();
            if errors > 0 {
                v.push(Span::styled(" │ ", theme.dim()));
                v.push(Span::styled("Error ", theme.error()));
                v.push(Span::raw(fmt_count(errors)));
            }
            v.push(Span::raw(" "));
            return v;
        }
        for (i, st) in ImportStatus::ALL.iter().enumerate() {
            if i > 0 {
                v.push(Span::raw("  "));
            }
            let label = match (short, st) {
                (true, ImportStatus::Imported) => "Imp",
                (true, ImportStatus::Conflict) => "Confl",
                (true, ImportStatus::Failed) => "Fail",
                _ => st.label(),
            };
            v.push(Span::styled(format!("{label} "), theme.status(*st)));
            v.push(Span::raw(fmt_count(state.rows.count(*st))));
        }
        v.push(Span::raw(" "));
        v
    };
    let w = |v: &[Span]| v.iter().map(|s| s.width()).sum::<usize>();
    let long = counts(false);
    if w(&right) + w(&long) + 48 <= width {
        right.extend(long);
    } else {
        right.extend(counts(true));
    }
    let room = width.saturating_sub(w(&right) + 3);

    let mut forms = vec![format!(" {}", state.tenant)];
    if let Some(si) = &state.session {
        let name = &si.identity.name;
        let local = name.split('@').next().unwrap_or(name);
        let left = token_left(si.expires_at, state.now);
        forms = vec![
            format!(" {} │ {} │ token {}", state.tenant, name, left),
            format!(" {} │ {} │ token {}", state.tenant, local, left),
            format!(" {} │ {} │ {}", state.tenant, local, left),
            format!(" {} │ {}", state.tenant, local),
            format!(" {}", state.tenant),
        ];
    }
    let left = forms
        .iter()
        .find(|f| f.chars().count() <= room)
        .cloned()
        .unwrap_or_else(|| super::fit(forms.last().expect("one form"), room));
    let mut spans = vec![
        Span::styled(left, theme.bold()),
        Span::styled(" │ ", theme.dim()),
    ];
    spans.extend(right);
    frame.render_widget(Paragraph::new(Line::from(spans)).style(theme.bar()), area);
}

/// What is running, in words: "loading users 12,345…", "importing 3 users…", "applying
/// 12/40…", or the changes waiting for a preview ("4 pending") away from the Bindings tab.
pub fn work_in_progress(state: &AppState) -> Option<String> {
    if let Modal::Run(r) = &state.modal {
        if r.finished.is_none() {
            let p = &r.progress;
            return Some(format!(
                "applying {}/{}…",
                fmt_count(p.done + p.failed),
                fmt_count(r.total)
            ));
        }
    }
    if state.checking_journal {
        return Some("checking an interrupted run…".into());
    }
    if matches!(state.modal, Modal::Planning { .. }) {
        return Some("planning…".into());
    }
    if let Some(n) = state.importing {
        return Some(format!("importing {} users…", fmt_count(n)));
    }
    let pending = state.directory.pending_total();
    if pending > 0 && state.tab != Tab::Bindings && state.load != Load::Waiting {
        return Some(format!("{} pending (tab 2)", fmt_count(pending)));
    }
    match &state.load {
        Load::Waiting => Some("reading the directory…".into()),
        // The Import tab's toolbar already shows the load.
        Load::Loading { .. } if state.tab != Tab::Import => {
            Some(format!("loading users {}…", fmt_count(state.rows.len())))
        }
        _ => None,
    }
}

pub fn draw_hints(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let ctx = contexts(state);
    // Global keys (help, quit) are pinned right so they never fall off a narrow terminal.
    let (global, mut local): (Vec<_>, Vec<_>) = state
        .keymap
        .hints_where(&ctx, |c| dialog_accepts(state, c))
        .into_iter()
        .partition(|(_, _, c)| *c == Context::Global && ctx.len() > 1);
    // Moving and filtering first, then what this tab does.
    local.sort_by_key(|(_, _, c)| *c != Context::List);
    let entry = |keys: String, word: String| {
        vec![
            Span::styled(keys, theme.key()),
            Span::raw(" "),
            Span::styled(word, theme.dim()),
            Span::raw("  "),
        ]
    };
    let width = |v: &[Span]| v.iter().map(|s| s.width()).sum::<usize>();
    let mut right: Vec<Span> = Vec::new();
    for (k, w, _) in global.into_iter().rev() {
        let e = entry(k, w);
        if width(&right) + width(&e) + 1 > area.width as usize {
            break;
        }
        right.splice(0..0, e);
    }
    let mut left = vec![Span::raw(" ")];
    for (k, w, _) in local {
        let e = entry(k, w);
        if width(&left) + width(&e) + width(&right) > area.width as usize {
            break;
        }
        left.extend(e);
    }
    let pad = (area.width as usize).saturating_sub(width(&left) + width(&right));
    left.push(Span::raw(" ".repeat(pad)));
    left.extend(right);
    frame.render_widget(Paragraph::new(Line::from(left)), area);
}
