//! Text for the terminal. Names, emails, group names, audit details and Graph's error messages
//! come from a CSV or from the tenant, so they may carry bytes a terminal obeys instead of
//! showing: an ESC starting a CSI or OSC sequence (`\x1b]52;c;...\x07` writes the clipboard,
//! `\x1b[2J` clears the screen), a BEL, a NUL, C1 controls (U+009B is a one-character CSI), or
//! a bidi override (U+202E) that makes `gpj.exe` read `exe.jpg`. Every text m365sync prints
//! from such a source goes through [`clean`]; tables line up with [`fit`] and [`pad`], which
//! count display columns (a CJK character or an emoji takes two, a combining mark or a
//! zero-width joiner none), grapheme by grapheme as ratatui does.
//!
//! - [`clean`]`(&str) -> Cow<str>`: the text without controls (borrowed when there are none).
//! - [`width`]`(&str) -> usize`: its display columns, once clean.
//! - [`fit`]`(&str, columns) -> String`: clean, in exactly `columns` columns (cut with `…`).
//! - [`pad`]`(&str, columns) -> String`: clean, at least `columns` columns (never cut).
//! - [`is_control`]`(char)` / [`describe`]`(char)`: what [`clean`] removes, and its name for a
//!   message ("U+001B (ESC)"): the CSV import refuses such characters with their line.
//! - [`escape_json`]`(&str) -> Cow<str>`: JSON that serde_json wrote, with the controls it
//!   leaves raw written as `\uXXXX`: the same JSON value, safe to print.
use std::borrow::Cow;

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// Whether `c` must not reach a terminal as it is: a C0 control (U+0000–U+001F: NUL, BEL,
/// backspace, tab, newline, carriage return, ESC, ...), DEL (U+007F), a C1 control
/// (U+0080–U+009F, among them CSI U+009B and OSC U+009D), or a bidi embedding, override or
/// isolate (U+202A–U+202E, U+2066–U+2069). Printable Unicode (accents, CJK, emoji, the
/// zero-width joiner) is not.
pub fn is_control(c: char) -> bool {
    c.is_control() // C0, DEL and C1 (Unicode's general category Cc)
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// How a message names a control character: `U+001B (ESC)`, `U+202E (right-to-left
/// override)`, `U+0085`.
pub fn describe(c: char) -> String {
    let name = match c {
        '\0' => Some("NUL"),
        '\u{7}' => Some("BEL"),
        '\u{8}' => Some("backspace"),
        '\t' => Some("tab"),
        '\n' => Some("newline"),
        '\r' => Some("carriage return"),
        '\u{1b}' => Some("ESC"),
        '\u{7f}' => Some("DEL"),
        '\u{9b}' => Some("CSI"),
        '\u{9d}' => Some("OSC"),
        '\u{202a}' => Some("left-to-right embedding"),
        '\u{202b}' => Some("right-to-left embedding"),
        '\u{202c}' => Some("pop directional formatting"),
        '\u{202d}' => Some("left-to-right override"),
        '\u{202e}' => Some("right-to-left override"),
        '\u{2066}' => Some("left-to-right isolate"),
        '\u{2067}' => Some("right-to-left isolate"),
        '\u{2068}' => Some("first strong isolate"),
        '\u{2069}' => Some("pop directional isolate"),
        _ => None,
    };
    match name {
        Some(n) => format!("U+{:04X} ({n})", c as u32),
        None => format!("U+{:04X}", c as u32),
    }
}

/// `s` safe to print: every [`is_control`] character removed, except that a tab, a newline
/// or a carriage return becomes a space (words stay apart, and one value stays on one line,
/// so a name cannot forge a line of output). What is left of an escape sequence is plain text
/// (`\x1b]52;c;aGk=\x07` prints as `]52;c;aGk=`). Borrowed when nothing is removed.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_control) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .filter_map(|c| match c {
                '\t' | '\n' | '\r' => Some(' '),
                c if is_control(c) => None,
                c => Some(c),
            })
            .collect(),
    )
}

/// The display columns `s` takes once [`clean`]: the sum of its graphemes' widths.
pub fn width(s: &str) -> usize {
    clean(s).graphemes(true).map(UnicodeWidthStr::width).sum()
}

/// `s`, [`clean`], in exactly `columns` display columns: padded with spaces, or cut at a
/// grapheme boundary with `…` as its last column (a wide character that would straddle the
/// edge is left out and its column padded).
pub fn fit(s: &str, columns: usize) -> String {
    let s = clean(s);
    let total: usize = s.graphemes(true).map(UnicodeWidthStr::width).sum();
    let mut out = String::with_capacity(s.len().max(columns));
    if total <= columns {
        out.push_str(&s);
        out.extend(std::iter::repeat_n(' ', columns - total));
        return out;
    }
    if columns == 0 {
        return out;
    }
    let room = columns - 1; // the ellipsis takes the last column
    let mut used = 0;
    for g in s.graphemes(true) {
        let w = UnicodeWidthStr::width(g);
        if used + w > room {
            break;
        }
        out.push_str(g);
        used += w;
    }
    out.extend(std::iter::repeat_n(' ', room - used));
    out.push('…');
    out
}

/// `s`, [`clean`], padded with spaces to at least `columns` display columns; never cut (for
/// table columns whose full value matters, such as an email).
pub fn pad(s: &str, columns: usize) -> String {
    let s = clean(s);
    let w: usize = s.graphemes(true).map(UnicodeWidthStr::width).sum();
    let mut out = String::with_capacity(s.len() + columns.saturating_sub(w));
    out.push_str(&s);
    out.extend(std::iter::repeat_n(' ', columns.saturating_sub(w)));
    out
}

/// JSON text as serde_json writes it, with every [`is_control`] character it leaves raw (DEL,
/// C1 controls, bidi controls: serde_json escapes only U+0000–U+001F) written as a `\uXXXX`
/// escape. Those characters can only sit inside JSON strings, where the escape means the same
/// character: a JSON reader gets the same value, a terminal gets nothing to obey.
pub fn escape_json(json: &str) -> Cow<'_, str> {
    if !json.chars().any(is_control) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_control(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_are_removed_and_printable_unicode_kept() {
        let hostile = "Ann\u{1b}]52;c;aGVsbG8=\u{7} \u{1b}[2JLee\0\u{7f}\u{9b}31m \u{202e}gpj.exe";
        let c = clean(hostile);
        assert_eq!(c, "Ann]52;c;aGVsbG8= [2JLee31m gpj.exe");
        assert!(!c.chars().any(is_control));
        for ok in [
            "Zoë Åström",
            "李小龍",
            "Ana 👩‍💻",
            "e\u{301}",
            "a\u{200d}b",
            "plain",
        ] {
            assert!(matches!(clean(ok), Cow::Borrowed(_)), "{ok:?}");
        }
        assert_eq!(clean("two\nlines\r\n\ttab"), "two lines   tab");
        for c in [
            '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{202a}', '\u{85}',
        ] {
            assert!(is_control(c), "{c:?}");
        }
        assert!(!is_control('\u{200b}') && !is_control('é') && !is_control(' '));
    }

    #[test]
    fn control_characters_are_named() {
        assert_eq!(describe('\u{1b}'), "U+001B (ESC)");
        assert_eq!(describe('\u{202e}'), "U+202E (right-to-left override)");
        assert_eq!(describe('\u{85}'), "U+0085");
        assert_eq!(describe('\0'), "U+0000 (NUL)");
    }

    #[test]
    fn width_counts_columns_not_chars() {
        assert_eq!(width("abc"), 3);
        assert_eq!(width("李小龍"), 6);
        assert_eq!(width("e\u{301}"), 1, "a combining accent takes no column");
        assert_eq!(width("a\u{200b}b"), 2, "zero-width space");
        assert_eq!(width("\u{1b}[31mred"), 7, "ESC removed, the rest is text");
    }

    #[test]
    fn fit_pads_or_cuts_to_exact_columns() {
        assert_eq!(fit("abc", 5), "abc  ");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abcd", 4), "abcd");
        assert_eq!(fit("abc", 0), "");
        assert_eq!(fit("abc", 1), "…");
        // A wide character never straddles the edge.
        assert_eq!(fit("李小龍", 4), "李 …");
        assert_eq!(width(&fit("李小龍", 4)), 4);
        assert_eq!(fit("李小龍", 6), "李小龍");
        // Combining marks stay with their letter.
        assert_eq!(fit("e\u{301}e\u{301}e\u{301}", 2), "e\u{301}…");
        // Controls are gone before measuring.
        assert_eq!(fit("\u{1b}[2Jab", 6), "[2Jab ");
        for s in ["Zoë", "李小龍 Lee", "👩‍💻 dev", "a\u{200d}b", "x\u{202e}y"] {
            for w in 0..12 {
                assert_eq!(width(&fit(s, w)), w, "{s:?} in {w}");
            }
        }
    }

    #[test]
    fn pad_never_cuts() {
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(pad("abcdef", 4), "abcdef");
        assert_eq!(pad("李", 4), "李  ");
        assert_eq!(pad("\u{7}ab", 3), "ab ");
    }

    #[test]
    fn json_keeps_its_value_and_loses_raw_controls() {
        let name = "Ann\u{1b}]52;c;x\u{7}\u{202e}\u{9b}\u{7f}Lee";
        let raw = serde_json::to_string(&serde_json::json!({ "displayName": name })).unwrap();
        assert!(
            raw.contains('\u{202e}'),
            "serde_json leaves bidi raw: {raw}"
        );
        let safe = escape_json(&raw);
        assert!(!safe.chars().any(is_control), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["displayName"], name, "the same value");
        assert!(matches!(escape_json("{\"a\":\"é\"}"), Cow::Borrowed(_)));
    }
}
