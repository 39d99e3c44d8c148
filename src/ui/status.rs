//! Header (tabs, banner), status bar (tenant, identity, token, counts, work in progress) and the
//! hint bar generated from the keymap.
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::app::state::{AppState, Load, Tab};
use crate::app::update::{contexts, fmt_count};
use crate::directory::ImportStatus;

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
    let sep = || Span::styled(" │ ", theme.dim());
    let mut spans = vec![Span::styled(format!(" {}", state.tenant), theme.bold())];
    if let Some(si) = &state.session {
        spans.push(sep());
        spans.push(Span::raw(si.identity.name.clone()));
        spans.push(sep());
        spans.push(Span::styled("token ", theme.dim()));
        spans.push(Span::raw(token_left(si.expires_at, state.now)));
    }
    spans.push(sep());
    for (i, st) in ImportStatus::ALL.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(format!("{} ", st.label()), theme.status(*st)));
        spans.push(Span::raw(fmt_count(state.rows.count(*st))));
    }
    if let Some(work) = work_in_progress(state) {
        spans.push(sep());
        spans.push(Span::styled(work, theme.accent()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(theme.bar()), area);
}

/// What is running, in words: "loading users 12,345…", "importing 3 users…".
pub fn work_in_progress(state: &AppState) -> Option<String> {
    if let Some(n) = state.importing {
        return Some(format!("importing {} users…", fmt_count(n)));
    }
    match &state.load {
        Load::Waiting => Some("reading the directory…".into()),
        Load::Loading { .. } => Some(format!("loading users {}…", fmt_count(state.rows.len()))),
        _ => None,
    }
}

pub fn draw_hints(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let ctx = contexts(state);
    let mut spans = vec![Span::raw(" ")];
    let mut used = 1usize;
    for (keys, word) in state.keymap.hints(&ctx) {
        let w = keys.chars().count() + word.chars().count() + 3;
        if used + w > area.width as usize {
            break;
        }
        used += w;
        spans.push(Span::styled(keys, theme.key()));
        spans.push(Span::raw(" "));
        spans.push(Span::styled(word, theme.dim()));
        spans.push(Span::raw("  "));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
