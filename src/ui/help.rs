//! The `?` overlay: the keys of what is on screen (the tab, with moving and filtering, or the
//! open dialog), by context, from the same rows as the hint bar.
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph};
use ratatui::Frame;

use crate::app::state::{AppState, Phase, Tab};
use crate::keymap::Context;

use super::{centered, fit, Theme};

fn section<'a>(state: &AppState, ctx: Context, theme: &Theme, key_w: usize) -> Vec<Line<'a>> {
    let rows = state.keymap.help_rows(ctx);
    if rows.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![Line::from(Span::styled(
        ctx.title().to_string(),
        theme.accent(),
    ))];
    for (keys, desc) in rows {
        lines.push(Line::from(vec![
            Span::styled(format!(" {}", fit(&keys, key_w)), theme.key()),
            Span::raw(" "),
            Span::raw(desc),
        ]));
    }
    lines.push(Line::from(""));
    lines
}

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let key_w = Context::ALL
        .iter()
        .flat_map(|c| state.keymap.help_rows(*c))
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(8)
        .max(5);
    // The keys of what is on screen: a dialog's, or the tab's with moving and filtering.
    let (left_ctx, right_ctx): (Vec<Context>, Vec<Context>) = match &state.phase {
        Phase::Main if state.modal == crate::app::state::Modal::Export => (
            vec![Context::Global],
            vec![Context::Export, Context::Dialog],
        ),
        Phase::Main if state.modal.is_open() => (vec![Context::Global], vec![Context::Dialog]),
        Phase::Main => {
            let tab = match state.tab {
                Tab::Import => Context::Import,
                Tab::Bindings => Context::Bindings,
                Tab::Errors => Context::Errors,
            };
            (
                vec![Context::Global, Context::List],
                vec![tab, Context::Filter],
            )
        }
        Phase::SignIn(_) => (vec![Context::Global], vec![Context::SignIn]),
        Phase::Config { .. } => (vec![Context::Global], vec![]),
    };
    let left: Vec<Line> = left_ctx
        .into_iter()
        .flat_map(|c| section(state, c, theme, key_w))
        .collect();
    let right: Vec<Line> = right_ctx
        .into_iter()
        .flat_map(|c| section(state, c, theme, key_w))
        .collect();
    let h = (left.len().max(right.len()) as u16 + 1).saturating_add(2);
    let rect = centered(area, 100, h);
    frame.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.accent())
        .title(Span::styled(" Keys ", theme.bold()))
        .title_bottom(Line::from(Span::styled(" any key closes ", theme.dim())).right_aligned());
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [l, r] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)])
        .spacing(2)
        .areas(inner);
    frame.render_widget(Paragraph::new(left), l);
    frame.render_widget(Paragraph::new(right), r);
}
