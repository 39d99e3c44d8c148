//! Where things are on the screen: one pure function of the terminal size, used by `update`
//! (how many rows a page is, where a click landed) and by drawing alike, so the two agree by
//! construction.
//!
//! Main screen: header (tabs, banner) / status bar / body (a tab: toolbar, list header, rows;
//! dialogs cover it) / message line (only while there is a message) / hint bar.
use ratatui::layout::Rect;

use super::state::Data;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screen {
    pub header: Rect,
    pub status: Rect,
    pub body: Rect,
    /// Height 0 without a message.
    pub message: Rect,
    pub hints: Rect,
}

pub fn screen(width: u16, height: u16, message: bool) -> Screen {
    let line = |y: u16| Rect::new(0, y.min(height), width, u16::from(y < height));
    let msg_h = u16::from(message && height > 4);
    let body_h = height.saturating_sub(3 + msg_h);
    Screen {
        header: line(0),
        status: line(1),
        body: Rect::new(0, 2.min(height), width, body_h),
        message: Rect::new(0, (2 + body_h).min(height), width, msg_h),
        hints: line(height.saturating_sub(1).max(2)),
    }
}

/// The screen of `data`'s terminal, with its message line when there is a message.
pub fn screen_of(data: &Data) -> Screen {
    screen(data.width, data.height, data.message.is_some())
}

/// A tab's body: its toolbar line, then its list (a header line and the rows).
pub fn toolbar_and_list(body: Rect) -> (Rect, Rect) {
    let t = body.height.min(1);
    (
        Rect::new(body.x, body.y, body.width, t),
        Rect::new(body.x, body.y + t, body.width, body.height - t),
    )
}

/// Rows of a list drawn in `list` (its first line is the header).
pub fn list_rows(list: Rect) -> usize {
    list.height.saturating_sub(1) as usize
}

/// The row of a list drawn in `list` that screen line `y` shows (None: the header or outside).
pub fn list_row_at(list: Rect, offset: usize, x: u16, y: u16) -> Option<usize> {
    let inside = x >= list.x && x < list.x + list.width && y > list.y && y < list.y + list.height;
    inside.then(|| offset + (y - list.y - 1) as usize)
}

/// The inside of a dialog that covers the body (a box with borders).
pub fn dialog_inner(data: &Data) -> Rect {
    let b = screen_of(data).body;
    Rect::new(
        b.x + 1,
        b.y + 1,
        b.width.saturating_sub(2),
        b.height.saturating_sub(2),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_screen_adds_up_at_any_size() {
        for (w, h) in [(80, 24), (120, 40), (1, 1), (10, 3), (200, 50)] {
            for msg in [false, true] {
                let s = screen(w, h, msg);
                let total = s.header.height
                    + s.status.height
                    + s.body.height
                    + s.message.height
                    + s.hints.height;
                assert!(total <= h.max(3), "{w}x{h} {msg}: {s:?}");
            }
        }
        let s = screen(80, 24, false);
        assert_eq!((s.body.y, s.body.height, s.hints.y), (2, 21, 23));
        let s = screen(80, 24, true);
        assert_eq!((s.body.height, s.message.y, s.hints.y), (20, 22, 23));
        let (toolbar, list) = toolbar_and_list(s.body);
        assert_eq!((toolbar.y, list.y, list_rows(list)), (2, 3, 18));
        assert_eq!(list_row_at(list, 10, 5, 4), Some(10));
        assert_eq!(list_row_at(list, 10, 5, 3), None, "the header");
    }
}
