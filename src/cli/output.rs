//! How the commands print what they list, for people and for scripts:
//!
//! - text (the default): a header line, then one row a line, columns by display width, every
//!   value through [`crate::text::clean`] (a name cannot move the cursor, write the clipboard
//!   or forge a line);
//! - `--json`: one object a line, keys in Graph's camelCase ([`Record::FIELDS`]), written with
//!   [`crate::text::escape_json`] (the same values; no raw control character reaches the
//!   terminal);
//! - `--csv`: a header row of the same names, then the same fields as the JSON (a null is an
//!   empty cell), each cell clean and spreadsheet-safe ([`crate::csvsafe`]).
use std::io::Write;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use crate::text::clean;

/// What a listing command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Csv,
}

/// `--json` / `--csv` of a listing command.
#[derive(Debug, Clone, Args, Default)]
pub struct FormatArgs {
    /// One JSON object per line (Graph's camelCase keys, listed in the README)
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// CSV with a header row: the same fields as --json
    #[arg(long)]
    pub csv: bool,
}

impl FormatArgs {
    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else if self.csv {
            Format::Csv
        } else {
            Format::Text
        }
    }
}

/// A line of a listing as `--json` and `--csv` print it: the JSON object's keys in order
/// (also the CSV header) and the same fields as CSV cells.
pub trait Record: Serialize {
    const FIELDS: &'static [&'static str];
    /// The cells, in the order of [`Record::FIELDS`]: a string as it is, a number or a bool
    /// as JSON writes it, a null as an empty cell.
    fn cells(&self) -> Vec<String>;
}

/// A cell of an optional value.
pub fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

/// A value as JSON writes it, without quotes (`bound`, `security`, `true`): the same word in
/// CSV as in JSON.
pub fn word(v: &impl Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Null) | Err(_) => String::new(),
        Ok(other) => other.to_string(),
    }
}

/// One JSON object and a newline; no raw control character in it.
pub fn json_line(out: &mut dyn Write, value: &impl Serialize) -> Result<()> {
    let json = serde_json::to_string(value)?;
    out.write_all(crate::text::escape_json(&json).as_bytes())?;
    out.write_all(b"\n")?;
    Ok(())
}

/// The CSV header of `R`.
pub fn csv_header<R: Record>(out: &mut dyn Write) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    crate::csvsafe::write_row(&mut w, R::FIELDS)?;
    w.flush()?;
    Ok(())
}

/// One CSV row of `R`: each cell clean, then spreadsheet-safe.
pub fn csv_row<R: Record>(out: &mut dyn Write, record: &R) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    crate::csvsafe::write_row(&mut w, record.cells().iter().map(|c| clean(c)))?;
    w.flush()?;
    Ok(())
}

/// Print `record` as `format` asks (text is the caller's: see [`row`]).
pub fn record<R: Record>(out: &mut dyn Write, format: Format, record: &R) -> Result<()> {
    match format {
        Format::Json => json_line(out, record),
        Format::Csv => csv_row(out, record),
        Format::Text => Ok(()),
    }
}

/// A text row: each `(value, columns)` cleaned and padded to at least `columns` display
/// columns (0: as it is), separated by two spaces, trailing spaces trimmed.
pub fn row(out: &mut dyn Write, cells: &[(&str, usize)]) -> Result<()> {
    let line: Vec<String> = cells.iter().map(|(v, w)| crate::text::pad(v, *w)).collect();
    writeln!(out, "{}", line.join("  ").trim_end())?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `R`'s JSON keys are exactly its FIELDS, in order, and each CSV cell is the JSON value
    /// of that field (a string as it is, a null empty): the CSV has the same fields.
    pub(crate) fn same_fields_in_json_and_csv<R: Record>(sample: &R) {
        let json = serde_json::to_string(sample).unwrap();
        // Keys in the order written (serde_json's Value would sort them).
        let keys: Vec<String> = {
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            let obj = v.as_object().unwrap();
            let mut ks: Vec<(usize, String)> = obj
                .keys()
                .map(|k| (json.find(&format!("\"{k}\":")).unwrap(), k.clone()))
                .collect();
            ks.sort();
            ks.into_iter().map(|(_, k)| k).collect()
        };
        assert_eq!(keys, R::FIELDS, "JSON keys of {json}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let cells = sample.cells();
        assert_eq!(cells.len(), R::FIELDS.len());
        for (field, cell) in R::FIELDS.iter().zip(&cells) {
            let want = match &v[*field] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(&want, cell, "{field}");
        }
        for k in R::FIELDS {
            assert!(
                !k.contains('_') && k.chars().next().unwrap().is_ascii_lowercase(),
                "{k} is camelCase"
            );
        }
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Sample {
        display_name: String,
        job_title: Option<String>,
        want_bound: bool,
    }

    impl Record for Sample {
        const FIELDS: &'static [&'static str] = &["displayName", "jobTitle", "wantBound"];
        fn cells(&self) -> Vec<String> {
            vec![
                self.display_name.clone(),
                opt(&self.job_title),
                self.want_bound.to_string(),
            ]
        }
    }

    #[test]
    fn json_csv_and_text_print_no_raw_control() {
        let s = Sample {
            display_name: "=Ann\u{1b}]52;c;aGk=\u{7}\u{202e}Lee".into(),
            job_title: None,
            want_bound: true,
        };
        same_fields_in_json_and_csv(&s);
        let mut out = Vec::new();
        json_line(&mut out, &s).unwrap();
        csv_header::<Sample>(&mut out).unwrap();
        csv_row(&mut out, &s).unwrap();
        row(&mut out, &[(&s.display_name, 20), ("x", 0)]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text
                .chars()
                .any(|c| crate::text::is_control(c) && c != '\n'),
            "{text:?}"
        );
        let mut lines = text.lines();
        let back: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(back["displayName"], s.display_name, "JSON keeps the value");
        assert_eq!(lines.next(), Some("displayName,jobTitle,wantBound"));
        assert_eq!(lines.next(), Some("'=Ann]52;c;aGk=Lee,,true"));
        assert_eq!(lines.next(), Some("=Ann]52;c;aGk=Lee     x"));
    }
}
