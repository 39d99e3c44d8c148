//! The pieces every screen is made of: tables cut to their columns, lists that draw only the
//! rows in view, boxes, labelled and wrapped text, key hints. Every text goes through
//! [`super::text`]: cleaned and measured by display width.
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};
use ratatui::Frame;

use super::text::{fit, wrap};
use super::Theme;

/// Column widths for `constraints` across `width`, one space between columns.
pub fn column_widths(constraints: &[Constraint], width: u16) -> Vec<usize> {
    Layout::horizontal(constraints.iter().copied())
        .spacing(1)
        .split(Rect::new(0, 0, width, 1))
        .iter()
        .map(|r| r.width as usize)
        .collect()
}

/// A column of a table whose widths follow what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    /// Always this wide.
    Fixed(usize),
    /// Text: as wide as its widest visible cell (`want`), never under `min` when there is
    /// room; short of room, the widest columns give up width first.
    Text { want: usize, min: usize },
}

/// Widths of `cols` across `width` (one space between columns): fixed columns first, then
/// the text columns share the rest by water-filling: a column that wants less than an equal
/// share gets what it wants, the others split what is left; room beyond every want goes to
/// the last text column. Wide terminals give the space to the text.
pub fn flex_widths(cols: &[Col], width: u16) -> Vec<usize> {
    let gaps = cols.len().saturating_sub(1);
    let fixed: usize = cols
        .iter()
        .map(|c| match c {
            Col::Fixed(n) => *n,
            Col::Text { .. } => 0,
        })
        .sum();
    let mut room = (width as usize).saturating_sub(fixed + gaps);
    let mut out: Vec<usize> = cols
        .iter()
        .map(|c| match c {
            Col::Fixed(n) => *n,
            Col::Text { .. } => 0,
        })
        .collect();
    let mut open: Vec<usize> = (0..cols.len())
        .filter(|&i| matches!(cols[i], Col::Text { .. }))
        .collect();
    let want = |i: usize| match cols[i] {
        Col::Text { want, min } => want.max(min),
        Col::Fixed(n) => n,
    };
    loop {
        if open.is_empty() {
            break;
        }
        let share = room / open.len();
        let (small, big): (Vec<usize>, Vec<usize>) = open.iter().partition(|&&i| want(i) <= share);
        if small.is_empty() {
            let extra = room - share * open.len();
            for (k, &i) in open.iter().enumerate() {
                out[i] = share + usize::from(k < extra);
            }
            room = 0;
            break;
        }
        for i in small {
            out[i] = want(i);
            room -= want(i);
        }
        open = big;
    }
    if room > 0 {
        if let Some(last) = (0..cols.len())
            .rev()
            .find(|&i| matches!(cols[i], Col::Text { .. }))
        {
            out[last] += room;
        }
    }
    out
}

/// One table line from cells already styled, each cleaned, cut and padded to its column.
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

/// A header line of plain column titles.
pub fn header_line<'a>(titles: &[&str], widths: &[usize], theme: &Theme) -> Line<'a> {
    table_line(
        titles
            .iter()
            .map(|h| (h.to_string(), Style::new()))
            .collect(),
        widths,
        theme.header_row(),
    )
}

/// A span of outside text, cleaned (no escape sequence, no bidi control reaches the terminal).
pub fn safe<'a>(text: &str, style: Style) -> Span<'a> {
    Span::styled(super::text::clean(text).into_owned(), style)
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
        for l in wrap(empty, area.width.saturating_sub(2) as usize) {
            lines.push(Line::from(Span::styled(format!("  {l}"), theme.dim())));
        }
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// The indices of a list of `len` entries a `draw_list` in `area` from `offset` shows.
pub fn visible(len: usize, offset: usize, area: Rect) -> std::ops::Range<usize> {
    let rows = area.height.saturating_sub(1) as usize;
    let offset = offset.min(len.saturating_sub(rows));
    offset..(offset + rows).min(len)
}

/// A scrollbar-like position: "123/45,678".
pub fn position(selected: usize, len: usize) -> String {
    if len == 0 {
        "0/0".into()
    } else {
        format!(
            "{}/{}",
            crate::format::thousands(selected + 1),
            crate::format::thousands(len)
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

/// The width of a dialog that holds text: most of a narrow terminal, a readable measure on a
/// wide one.
pub fn dialog_width(area: Rect, want: u16) -> u16 {
    let roomy = (area.width as u32 * 7 / 10) as u16;
    want.max(roomy.min(110)).min(area.width)
}

/// A rounded box with a bold title.
pub fn frame_block<'a>(title: String, theme: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.accent())
        .title(Span::styled(
            format!(" {} ", super::text::clean(&title)),
            theme.bold(),
        ))
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

/// `text` wrapped to `width`, each line styled.
pub fn wrapped<'a>(text: &str, width: usize, style: Style, indent: &str) -> Vec<Line<'a>> {
    wrap(text, width.saturating_sub(indent.len()))
        .into_iter()
        .map(|l| Line::from(Span::styled(format!("{indent}{l}"), style)))
        .collect()
}

/// Key hints as spans: `y apply   Esc back`.
pub fn hint_spans<'a>(items: &[(String, String)], theme: &Theme) -> Vec<Span<'a>> {
    let mut spans = vec![Span::raw(" ")];
    for (keys, word) in items {
        spans.push(Span::styled(keys.clone(), theme.key()));
        spans.push(Span::raw(" "));
        spans.push(Span::styled(word.clone(), theme.dim()));
        spans.push(Span::raw("   "));
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_columns_get_what_they_need_and_share_the_rest() {
        let t = |want| Col::Text { want, min: 6 };
        // Room for everything: each gets its want, the last takes what is left.
        assert_eq!(
            flex_widths(&[Col::Fixed(1), t(10), t(20)], 60),
            vec![1, 10, 47]
        );
        // Short of room: the narrow column keeps its want, the wide ones split the rest.
        assert_eq!(flex_widths(&[t(8), t(40), t(40)], 62), vec![8, 26, 26]);
        // Far too narrow: equal shares, never a panic.
        assert_eq!(flex_widths(&[t(30), t(30)], 5), vec![2, 2]);
        assert_eq!(flex_widths(&[Col::Fixed(10), t(5)], 3), vec![10, 0]);
    }
}
