//! Text from outside (names, emails, Graph's messages, pasted input) made safe and measurable
//! for a terminal cell.
//!
//! A directory user's name is hostile input: an `ESC` starts an escape sequence (colours, cursor
//! moves, OSC 52 writes to the admin's clipboard), `BEL` rings, a right-to-left override (U+202E)
//! reverses what follows on screen, zero-width characters make two different addresses look the
//! same and shift columns in some terminals. [`clean`] is applied to every text the console draws
//! (through [`fit`], [`wrap`] and the widgets), and [`scrub`] goes over the finished frame as a
//! last guard: no cell reaches the terminal with one of them.
//!
//! - control characters (C0, DEL, C1) and bidirectional controls are shown as `�` (the admin
//!   sees that the name holds something odd instead of a silently different name);
//! - tab, newline and the Unicode line separators become a space (one line per cell);
//! - invisible format characters (zero-width space and joiners, word joiner, BOM, soft hyphen,
//!   variation selectors, tag characters) are dropped, so widths are the same for every terminal.
//!
//! What counts as a control is `crate::text::is_control`, the CLI's own rule; the console adds
//! the bidi marks and the invisible characters, and shows a control as `�` where the CLI
//! removes it.
use std::borrow::Cow;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// What [`clean`] does with one character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treat {
    Keep,
    /// Shown as `�`.
    Mark,
    /// Shown as a space.
    Space,
    /// Dropped.
    Drop,
}

pub const MARK: char = '\u{FFFD}';

pub fn treat(c: char) -> Treat {
    match c {
        '\t' | '\n' | '\r' | '\u{2028}' | '\u{2029}' | '\u{85}' => Treat::Space,
        // What the CLI refuses or removes (C0, DEL, C1, bidi embeddings, overrides and
        // isolates): one definition for both.
        c if crate::text::is_control(c) => Treat::Mark,
        // The bidi marks too: on a screen of columns they reorder what follows.
        '\u{061C}' | '\u{200E}' | '\u{200F}' => Treat::Mark,
        // Invisible format characters.
        '\u{00AD}'
        | '\u{034F}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200D}'
        | '\u{2060}'..='\u{2064}'
        | '\u{FEFF}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{E0000}'..='\u{E007F}'
        | '\u{E0100}'..='\u{E01EF}' => Treat::Drop,
        _ => Treat::Keep,
    }
}

/// `s` with nothing a terminal would act on and nothing invisible: see the module docs.
/// Borrowed (no allocation) when `s` is already clean, as almost every name is.
pub fn clean(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) || s.chars().all(|c| treat(c) == Treat::Keep) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match treat(c) {
            Treat::Keep => out.push(c),
            Treat::Mark => out.push(MARK),
            Treat::Space => out.push(' '),
            Treat::Drop => {}
        }
    }
    Cow::Owned(out)
}

/// Whether `s` holds a character [`clean`] would change.
pub fn is_hostile(s: &str) -> bool {
    matches!(clean(s), Cow::Owned(_))
}

/// Display width of `s` once cleaned (2 for a CJK character, 0 for a combining mark).
pub fn width(s: &str) -> usize {
    let s = clean(s);
    if s.is_ascii() {
        s.len()
    } else {
        UnicodeWidthStr::width(s.as_ref())
    }
}

fn char_width(c: char) -> usize {
    UnicodeWidthChar::width(c).unwrap_or(0)
}

/// `s` cleaned, cut to `width` terminal columns (with `…` when cut) and padded with spaces, so
/// the columns after it stay aligned whatever it holds.
pub fn fit(s: &str, width: usize) -> String {
    let s = clean(s);
    let mut out = String::with_capacity(width + 4);
    let total = if s.is_ascii() {
        s.len()
    } else {
        s.chars().map(char_width).sum()
    };
    let mut used = 0usize;
    if total <= width {
        out.push_str(&s);
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

/// `s` cleaned and cut to `width` columns, not padded.
pub fn cut(s: &str, width: usize) -> String {
    let f = fit(s, width);
    f.trim_end_matches(' ').to_string()
}

/// `text` cleaned and word-wrapped to `width` columns (words longer than a line are cut into
/// pieces, by display width).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut cur_w = 0usize;
    for word in text.split_whitespace() {
        let word = clean(word);
        let mut word: &str = word.trim();
        if word.is_empty() {
            continue;
        }
        loop {
            let ww: usize = word.chars().map(char_width).sum();
            let need = if cur_w == 0 { ww } else { cur_w + 1 + ww };
            if need <= width {
                if cur_w > 0 {
                    cur.push(' ');
                }
                cur.push_str(word);
                cur_w = need;
                break;
            }
            if cur_w > 0 {
                lines.push(std::mem::take(&mut cur));
                cur_w = 0;
                continue;
            }
            // A word wider than the line: as much of it as fits, then the rest.
            let mut used = 0;
            let mut split = word.len();
            for (i, c) in word.char_indices() {
                let w = char_width(c);
                if used + w > width && used > 0 {
                    split = i;
                    break;
                }
                used += w;
            }
            lines.push(word[..split].to_string());
            word = &word[split..];
            if word.is_empty() {
                break;
            }
        }
    }
    if cur_w > 0 || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// Goes over a drawn frame: a cell whose symbol still holds a character [`clean`] would change
/// keeps only its harmless characters (a space when nothing is left), so its width is
/// unchanged. The last guard (ratatui appends zero-width characters to the cell before them);
/// O(screen).
pub fn scrub(buf: &mut ratatui::buffer::Buffer) {
    for cell in buf.content.iter_mut() {
        let sym = cell.symbol();
        if sym.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            continue;
        }
        if sym.chars().any(|c| treat(c) != Treat::Keep) {
            let kept: String = sym.chars().filter(|&c| treat(c) == Treat::Keep).collect();
            let kept = if kept.is_empty() {
                " ".to_string()
            } else {
                kept
            };
            cell.set_symbol(&kept);
        }
    }
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
        assert_eq!(wrap("山田太郎", 4), vec!["山田", "太郎"]);
    }

    #[test]
    fn hostile_characters_never_pass() {
        // ESC starting a colour, an OSC 52 clipboard write ended by BEL, NUL, DEL, a C1 CSI.
        let evil = "Eve\x1b[31mRed\x1b]52;c;aGk=\x07\0\x7f\u{9b}2J";
        let c = clean(evil);
        assert!(!c.chars().any(|c| c.is_control()), "{c:?}");
        assert_eq!(c, "Eve�[31mRed�]52;c;aGk=����2J");
        // A right-to-left override would show "moc.evil@nna" reversed; isolates too.
        assert_eq!(clean("ann\u{202E}moc.live"), "ann�moc.live");
        assert_eq!(clean("a\u{2067}b\u{2069}"), "a�b�");
        // Zero-width characters are dropped: two addresses that look the same are the same.
        assert_eq!(clean("ad\u{200B}min\u{FEFF}@x\u{200D}.com"), "admin@x.com");
        assert_eq!(clean("line\nbreak\ttab"), "line break tab");
        assert!(matches!(clean("plain name"), Cow::Borrowed(_)));
        assert!(matches!(clean("Zoë 山田"), Cow::Borrowed(_)));
        assert!(is_hostile("x\u{202E}") && !is_hostile("José"));
    }

    #[test]
    fn widths_count_what_is_drawn() {
        assert_eq!(width("ab\u{200B}c"), 3);
        assert_eq!(width("山田"), 4);
        assert_eq!(width("e\u{301}"), 1, "a combining accent takes no column");
        assert_eq!(fit("a\u{200B}\u{200B}b", 3), "ab ");
        assert_eq!(fit("x\x1by", 4), "x�y ");
    }

    #[test]
    fn scrub_cleans_cells_that_were_drawn_raw() {
        use ratatui::buffer::Buffer;
        use ratatui::layout::Rect;
        let mut b = Buffer::empty(Rect::new(0, 0, 4, 1));
        b[(0, 0)].set_symbol("a\u{202E}");
        b[(1, 0)].set_symbol("\u{200B}");
        b[(2, 0)].set_symbol("\x1b");
        scrub(&mut b);
        assert_eq!(b[(0, 0)].symbol(), "a");
        assert_eq!(b[(1, 0)].symbol(), " ");
        assert_eq!(b[(2, 0)].symbol(), " ");
    }
}
