//! A filtered, sorted, scrolled view over rows: what every tab's list is. The moves, the `/`
//! filter's text, `n`/`N` and the mouse work the same on every tab because they are here.
use ratatui::layout::{Position, Rect};
use ratatui::text::Span;
use ratatui::Frame;
use tui_input::Input;

use crate::keymap::Command;
use crate::ui::Theme;

use super::component::TabView;
use super::state::{Data, Load};

/// A filter's text (lower case), searched for in each row from its rarest byte: `memchr`
/// finds the few places that byte is at, and only there is the whole text compared. A million
/// rows are a million searches; this keeps each one a few nanoseconds whatever the length of
/// the text (a paste of 40 characters as much as one key).
pub struct Needle {
    text: String,
    /// Index in `text` of its rarest byte.
    rare: usize,
}

/// How common a byte is in names and emails (lower: more common; 255: rare).
fn commonness(b: u8) -> u8 {
    const ORDER: &[u8] = b" .@eaonirtslcmduhgpbykvwfjzxq-_'0123456789";
    ORDER.iter().position(|&c| c == b).map_or(255, |i| i as u8)
}

impl Needle {
    /// `q` lower-cased already; empty matches everything.
    pub fn new(q: &str) -> Needle {
        let b = q.as_bytes();
        let rare = (0..b.len())
            .max_by_key(|&i| (commonness(b[i]), std::cmp::Reverse(i)))
            .unwrap_or(0);
        Needle {
            text: q.to_string(),
            rare,
        }
    }
    /// Matches everything (no row need be read).
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
    pub fn is_in(&self, hay: &str) -> bool {
        if self.text.len() <= 8 {
            // Short: the standard library's SIMD search is the fastest there is.
            return hay.contains(self.text.as_str());
        }
        let (t, hay) = (self.text.as_bytes(), hay.as_bytes());
        if t.len() > hay.len() {
            return false;
        }
        let k = self.rare;
        memchr::memchr_iter(t[k], &hay[k..hay.len() - (t.len() - k - 1)])
            .any(|p| &hay[p..p + t.len()] == t)
    }
}

/// A sort: the column (index into the tab's columns) and the direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub column: usize,
    pub descending: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ListView {
    /// The `/` filter being typed (tui-input).
    pub input: Input,
    pub editing: bool,
    /// The lower-cased query `shown` reflects.
    pub query: String,
    /// The last query typed: `n`/`N` look for it once the filter is cleared.
    pub last_query: String,
    /// Row indices that pass the filters, in the list's order (ascending unless sorted).
    pub shown: Vec<u32>,
    /// Index into `shown`.
    pub selected: usize,
    /// First index of `shown` on screen; kept so the selection stays visible.
    pub offset: usize,
    /// Rows stay on screen after they stopped passing the state filter (toggled,
    /// reclassified): the list never moves under the cursor. Until `r` or a filter change.
    pub stale: bool,
    pub sort: Option<Sort>,
}

impl PartialEq for ListView {
    fn eq(&self, o: &Self) -> bool {
        self.input.value() == o.input.value()
            && self.editing == o.editing
            && self.query == o.query
            && self.shown == o.shown
            && self.selected == o.selected
            && self.offset == o.offset
            && self.stale == o.stale
            && self.sort == o.sort
    }
}

/// Whether `c` moves in a list.
pub fn is_move(c: Command) -> bool {
    matches!(
        c,
        Command::Down
            | Command::Up
            | Command::Top
            | Command::Bottom
            | Command::PageDown
            | Command::PageUp
            | Command::HalfDown
            | Command::HalfUp
    )
}

/// The index a move `c` leads to from `sel` in a list of `len` entries with `rows` on screen.
pub fn moved(c: Command, sel: usize, len: usize, rows: usize) -> usize {
    let rows = rows.max(1);
    let to = match c {
        Command::Down => sel.saturating_add(1),
        Command::Up => sel.saturating_sub(1),
        Command::Top => 0,
        Command::Bottom => len,
        Command::PageDown => sel + rows,
        Command::PageUp => sel.saturating_sub(rows),
        Command::HalfDown => sel + (rows / 2).max(1),
        Command::HalfUp => sel.saturating_sub((rows / 2).max(1)),
        _ => sel,
    };
    to.min(len.saturating_sub(1))
}

/// Keeps `selected` on screen (`offset..offset + rows`) and the screen full.
pub fn follow(selected: &mut usize, offset: &mut usize, len: usize, rows: usize) {
    let rows = rows.max(1);
    if *selected >= len {
        *selected = len.saturating_sub(1);
    }
    if *selected < *offset {
        *offset = *selected;
    } else if *selected >= *offset + rows {
        *offset = *selected + 1 - rows;
    }
    *offset = (*offset).min(len.saturating_sub(rows));
}

impl ListView {
    pub fn selected_row(&self) -> Option<u32> {
        self.shown.get(self.selected).copied()
    }

    /// A move (`is_move`): the selection moves, the screen follows.
    pub fn nav(&mut self, c: Command, rows: usize) {
        let len = self.shown.len();
        if len == 0 {
            self.selected = 0;
            self.offset = 0;
            return;
        }
        self.selected = moved(c, self.selected, len, rows);
        self.follow(rows);
    }

    pub fn follow(&mut self, rows: usize) {
        follow(&mut self.selected, &mut self.offset, self.shown.len(), rows);
    }

    /// After `shown` changed: keep the same row selected if it is still shown, else start at
    /// the top (the first match, as in fzf or k9s).
    pub fn reselect(&mut self, keep: Option<u32>, rows: usize) {
        self.selected = keep.and_then(|k| self.position(k)).unwrap_or(0);
        if self.selected < self.offset || self.selected >= self.offset + rows.max(1) {
            self.offset = self.selected.saturating_sub(rows.max(1) / 2);
        }
        self.follow(rows);
    }

    /// Where `row` is in `shown` (a binary search unless sorted).
    pub fn position(&self, row: u32) -> Option<usize> {
        if self.sort.is_none() {
            self.shown.binary_search(&row).ok()
        } else {
            self.shown.iter().position(|&r| r == row)
        }
    }

    /// Selects `row` when it is shown.
    pub fn select_row(&mut self, row: u32, rows: usize) -> bool {
        match self.position(row) {
            Some(i) => {
                self.selected = i;
                self.follow(rows);
                true
            }
            None => false,
        }
    }

    /// The query as it is typed, lower-cased; remembered for `n`/`N`.
    pub fn typed_query(&mut self) -> String {
        let q = self.input.value().to_lowercase();
        if !q.is_empty() {
            self.last_query = q.clone();
        }
        q
    }

    /// `n`/`N`: where the next (or previous) shown row after the selection for which `hit`
    /// holds is, wrapping around. None when no row does.
    pub fn find(&self, forward: bool, hit: impl Fn(u32) -> bool) -> Option<usize> {
        let len = self.shown.len();
        (1..=len)
            .map(|step| {
                if forward {
                    (self.selected + step) % len
                } else {
                    (self.selected + len - step % len) % len
                }
            })
            .find(|&i| hit(self.shown[i]))
    }
}

/// The commands every tab's list offers now: moves when it has rows, the filter, `n`/`N` once
/// a filter was typed, Enter on a row, reload, stop a listing.
pub fn commands(v: &ListView, data: &Data) -> Vec<Command> {
    if v.editing {
        return vec![
            Command::FilterKeep,
            Command::FilterClear,
            Command::Down,
            Command::Up,
        ];
    }
    let mut c = vec![Command::Filter, Command::Refresh, Command::ListAgain];
    if !v.shown.is_empty() {
        c.extend([
            Command::Down,
            Command::Up,
            Command::Top,
            Command::Bottom,
            Command::PageDown,
            Command::PageUp,
            Command::HalfDown,
            Command::HalfUp,
            Command::Open,
        ]);
    }
    if !v.last_query.is_empty() {
        c.extend([Command::SearchNext, Command::SearchPrev]);
    }
    if !v.input.value().is_empty() {
        c.push(Command::Back);
    }
    if matches!(data.load, Load::Loading { .. } | Load::Waiting) {
        c.push(Command::StopLoad);
    }
    c
}

/// The list keys every tab shares: moves, the `/` filter, `n`/`N`, and Esc's first job (a
/// filter goes first). None: not a list key, the tab's own.
pub fn command(tab: &mut dyn TabView, data: &mut Data, c: Command, rows: usize) -> Option<bool> {
    let editing = tab.list().editing;
    match c {
        c if is_move(c) => {
            tab.list_mut().nav(c, rows);
            Some(true)
        }
        Command::Filter => {
            tab.list_mut().editing = true;
            Some(true)
        }
        Command::FilterKeep => {
            tab.list_mut().editing = false;
            Some(true)
        }
        Command::FilterClear => {
            let v = tab.list_mut();
            v.editing = false;
            v.input.reset();
            tab.filter_changed(data);
            Some(true)
        }
        Command::Back if editing || !tab.list().input.value().is_empty() => {
            let v = tab.list_mut();
            v.editing = false;
            v.input.reset();
            tab.filter_changed(data);
            Some(true)
        }
        Command::SearchNext | Command::SearchPrev => {
            let q = tab.list().last_query.clone();
            if q.is_empty() {
                return Some(false);
            }
            let found = tab
                .list()
                .find(c == Command::SearchNext, |r| tab.matches(data, r, &q));
            match found {
                Some(i) => {
                    let v = tab.list_mut();
                    v.selected = i;
                    v.follow(rows);
                }
                None => data.say(
                    super::state::Topic::Key,
                    format!("No row shown holds \"{q}\"."),
                ),
            }
            Some(true)
        }
        _ => None,
    }
}

/// "/ filter" hint, the query kept, or the query being typed.
pub fn filter_spans<'a>(v: &ListView, theme: &Theme) -> Vec<Span<'a>> {
    let text = crate::ui::text::clean(v.input.value()).into_owned();
    if v.editing {
        vec![
            Span::styled(" / ", theme.key()),
            Span::styled(text, theme.bold()),
        ]
    } else if text.is_empty() {
        vec![Span::styled(" / filter", theme.dim())]
    } else {
        vec![
            Span::styled(" / ", theme.dim()),
            Span::styled(text, theme.accent()),
        ]
    }
}

/// The cursor of a `/` filter being typed.
pub fn set_filter_cursor(frame: &mut Frame, area: Rect, v: &ListView) {
    let x = area.x + 3 + v.input.visual_cursor() as u16;
    if x < area.x + area.width {
        frame.set_cursor_position(Position::new(x, area.y));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(n: u32) -> ListView {
        ListView {
            shown: (0..n).collect(),
            ..ListView::default()
        }
    }

    #[test]
    fn moves_stay_in_bounds_and_keep_the_selection_on_screen() {
        let mut v = view(100);
        v.nav(Command::Up, 10);
        assert_eq!(v.selected, 0);
        v.nav(Command::Bottom, 10);
        assert_eq!((v.selected, v.offset), (99, 90));
        v.nav(Command::Top, 10);
        assert_eq!((v.selected, v.offset), (0, 0));
        v.nav(Command::PageDown, 10);
        assert_eq!((v.selected, v.offset), (10, 1));
        v.nav(Command::HalfUp, 10);
        assert_eq!(v.selected, 5);
        let mut e = view(0);
        e.nav(Command::Bottom, 10);
        assert_eq!((e.selected, e.offset), (0, 0));
    }

    #[test]
    fn a_needle_is_found_wherever_it_is() {
        for (hay, q, yes) in [
            ("megan vance\u{1f}megan@contoso.com", "vance", true),
            ("megan vance", "megan vance", true),
            ("megan vance", "megan vancex", false),
            ("abc", "", true),
            ("abc", "c", true),
            ("abc", "a", true),
            ("abc", "abcd", false),
            ("zzqzz", "qz", true),
            ("山田太郎", "田太", true),
            ("xqx", "qx", true),
            ("xq", "xq", true),
        ] {
            assert_eq!(Needle::new(q).is_in(hay), yes, "{q:?} in {hay:?}");
            assert_eq!(hay.contains(q), yes, "the reference: {q:?} in {hay:?}");
        }
        // As `str::contains` on the rows of a tenant.
        let mut rows = super::super::state::Haystacks::default();
        for u in super::super::fixtures::tenant_users(2000) {
            rows.push(&[
                u.display_name.as_deref().unwrap_or(""),
                &u.user_principal_name,
                u.mail.as_deref().unwrap_or(""),
            ]);
        }
        for q in [
            "vance",
            "megan v",
            "4@",
            ".com",
            "e",
            "zz",
            "siciliani4",
            "n1",
            "onmicrosoft.com",
        ] {
            let n = Needle::new(q);
            for r in 0..rows.len() {
                assert_eq!(
                    n.is_in(rows.get(r)),
                    rows.get(r).contains(q),
                    "{q:?} in row {r}"
                );
            }
        }
    }

    #[test]
    fn search_wraps_both_ways() {
        let mut v = view(10);
        v.selected = 5;
        let hit = |r: u32| r % 4 == 0;
        assert_eq!(v.find(true, hit), Some(8));
        v.selected = 8;
        assert_eq!(v.find(true, hit), Some(0), "wraps to the top");
        v.selected = 0;
        assert_eq!(v.find(false, hit), Some(8), "backwards wraps to the bottom");
        assert_eq!(v.find(true, |_| false), None);
        assert_eq!(view(0).find(true, hit), None);
    }
}
