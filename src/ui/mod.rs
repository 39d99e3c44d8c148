//! Pure rendering of AppState: `draw(frame, &state)` cannot change the state, touches no
//! network, disk or clock, and costs O(screen): lists draw only the rows in view.
//!
//! Screen layout (Main): header (tabs, banner) / status bar / toolbar (filter, progress) /
//! list header / rows / hint bar.
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::app::state::{AppState, Phase, Tab};

pub mod bindings;
pub mod dialog;
pub mod errors;
pub mod help;
pub mod import;
pub mod signin;
pub mod status;
pub mod theme;

pub use theme::Theme;

/// Lines above the list (header, status bar, toolbar, list header) and below it (hint bar).
const CHROME_TOP: u16 = 4;
const CHROME_BOTTOM: u16 = 1;

/// Rows of `tab`'s list on a `width` x `height` terminal. `update` uses it to keep the
/// selection in view, `draw` to lay out: both agree by construction.
pub fn list_rows(tab: Tab, _width: u16, height: u16) -> usize {
    let body = height.saturating_sub(CHROME_TOP + CHROME_BOTTOM) as usize;
    match tab {
        Tab::Errors => errors::list_rows(body),
        _ => body,
    }
}

pub fn draw(frame: &mut Frame, state: &AppState) {
    let area = frame.area();
    let theme = Theme::new(state.no_color);
    match &state.phase {
        Phase::Config { message } => signin::draw_config(frame, area, state, &theme, message),
        Phase::SignIn(si) => signin::draw(frame, area, state, &theme, si),
        Phase::Main => draw_main(frame, area, state, &theme),
    }
    if state.help {
        help::draw(frame, area, state, &theme);
    }
}

fn draw_main(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let [head, status_bar, body, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(CHROME_BOTTOM),
    ])
    .areas(area);
    status::draw_header(frame, head, state, theme);
    status::draw_status(frame, status_bar, state, theme);
    match state.tab {
        Tab::Import => import::draw(frame, body, state, theme),
        Tab::Bindings => bindings::draw(frame, body, state, theme),
        Tab::Errors => errors::draw(frame, body, state, theme),
    }
    status::draw_hints(frame, hints, state, theme);
    dialog::draw(frame, area, state, theme);
}

/// Display width of one character (2 for CJK, 0 for combining marks).
fn char_width(c: char) -> usize {
    let mut buf = [0u8; 4];
    Span::raw(&*c.encode_utf8(&mut buf)).width()
}

/// `s` cut to `width` terminal columns (with `…` when cut) and padded with spaces, so the
/// columns after it stay aligned even with wide characters.
pub fn fit(s: &str, width: usize) -> String {
    let mut out = String::with_capacity(width + 4);
    let mut used = 0usize;
    let total: usize = if s.is_ascii() {
        s.len()
    } else {
        s.chars().map(char_width).sum()
    };
    if total <= width {
        out.push_str(s);
        used = total;
    } else if width > 0 {
        for c in s.chars() {
            let w = char_width(c);
            if used + w + 1 > width {
                break;
            }
            out.push(c);
            used += w;
        }
        out.push('…');
        used += 1;
    }
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(used)));
    out
}

/// `text` word-wrapped to `width` columns (words longer than a line are cut into pieces).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut cur_w = 0usize;
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let need = if cur_w == 0 {
                word.len()
            } else {
                cur_w + 1 + word.len()
            };
            if need <= width {
                if cur_w > 0 {
                    cur.push(' ');
                }
                cur.extend(word.iter());
                cur_w = need;
                break;
            }
            if cur_w > 0 {
                lines.push(std::mem::take(&mut cur));
                cur_w = 0;
                continue;
            }
            let rest = word.split_off(width);
            lines.push(word.iter().collect());
            word = rest;
        }
    }
    if cur_w > 0 || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// `label` then `text` wrapped to the columns right of it, continuation lines indented under
/// the text (a hanging indent).
pub fn labeled<'a>(
    label: &str,
    label_w: usize,
    text: &str,
    width: usize,
    label_style: Style,
    text_style: Style,
) -> Vec<Line<'a>> {
    wrap(text, width.saturating_sub(label_w))
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let head = if i == 0 {
                fit(label, label_w)
            } else {
                " ".repeat(label_w)
            };
            Line::from(vec![
                Span::styled(head, label_style),
                Span::styled(chunk, text_style),
            ])
        })
        .collect()
}

/// Column widths for `constraints` across `width`, one space between columns.
pub fn column_widths(constraints: &[Constraint], width: u16) -> Vec<usize> {
    Layout::horizontal(constraints.iter().copied())
        .spacing(1)
        .split(Rect::new(0, 0, width, 1))
        .iter()
        .map(|r| r.width as usize)
        .collect()
}

/// One table line from cells already styled, each cut/padded to its column.
pub fn table_line<'a>(cells: Vec<(String, Style)>, widths: &[usize], row_style: Style) -> Line<'a> {
    let mut spans = Vec::with_capacity(cells.len() * 2);
    for (i, ((text, style), w)) in cells.into_iter().zip(widths).enumerate() {
        if i > 0 {
            spans.push(Span::raw(" "));
        }
        spans.push(Span::styled(fit(&text, *w), style));
    }
    Line::from(spans).style(row_style)
}

/// What a list shows: its header line, how many entries, the first on screen, and what to say
/// when there are none.
pub struct ListSpec<'a> {
    pub header: Line<'a>,
    pub len: usize,
    pub offset: usize,
    pub empty: &'a str,
}

/// Draws the list header and the visible slice `offset..offset + area.height - 1` of a list;
/// `row` builds the line of one visible entry (index into the list). O(screen).
pub fn draw_list<'a>(
    frame: &mut Frame,
    area: Rect,
    spec: ListSpec<'a>,
    theme: &Theme,
    mut row: impl FnMut(usize) -> Line<'a>,
) {
    let ListSpec {
        header,
        len,
        offset,
        empty,
    } = spec;
    if area.height == 0 {
        return;
    }
    let rows = area.height.saturating_sub(1) as usize;
    let mut lines = Vec::with_capacity(rows + 1);
    lines.push(header);
    let offset = offset.min(len.saturating_sub(rows));
    for i in offset..(offset + rows).min(len) {
        lines.push(row(i));
    }
    if len == 0 && !empty.is_empty() {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(format!("  {empty}"), theme.dim())));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// A scrollbar-like position: "123/45,678".
pub fn position(selected: usize, len: usize) -> String {
    if len == 0 {
        "0/0".into()
    } else {
        format!(
            "{}/{}",
            crate::app::update::fmt_count(selected + 1),
            crate::app::update::fmt_count(len)
        )
    }
}

/// A centered rectangle of at most `w` x `h`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_cuts_and_pads_by_display_width() {
        assert_eq!(fit("abc", 5), "abc  ");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("山田太郎", 5), "山田…");
        assert_eq!(fit("山田", 5), "山田 ");
        assert_eq!(fit("x", 0), "");
    }

    #[test]
    fn wrap_breaks_on_words_and_cuts_long_ones() {
        assert_eq!(wrap("one two three", 7), vec!["one two", "three"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), vec![""]);
    }
}
