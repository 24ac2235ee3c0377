//! A report file as a table of text fields found by header name, and the strict readers of
//! the values the reports share: exact decimals, currency codes, times.

use std::collections::HashMap;

use rust_decimal::Decimal;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset, format_description::well_known::Rfc3339};

use super::{MAX_FIELD_CHARS, MAX_REPORT_BYTES, MAX_REPORT_LINES, ReportError};

/// The UTF-8 byte order mark some spreadsheet exports put first; allowed and skipped.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A CSV file read whole: its header and its records with their line numbers.
pub(crate) struct Table {
    headers: Vec<String>,
    index: HashMap<String, usize>,
    rows: Vec<Row>,
}

/// One record and the line it starts on.
pub(crate) struct Row {
    pub(crate) line: usize,
    fields: Vec<String>,
}

impl Table {
    /// Reads `bytes` as UTF-8 CSV with a header line. Refuses a file over the limits,
    /// invalid UTF-8 (naming the line), a record with a different number of fields than the
    /// header, an empty or repeated header name, and a field over [`MAX_FIELD_CHARS`].
    pub(crate) fn read(bytes: &[u8]) -> Result<Self, ReportError> {
        if bytes.len() > MAX_REPORT_BYTES {
            return Err(ReportError::line(
                1,
                format!(
                    "the file has {} bytes; at most {MAX_REPORT_BYTES} are read",
                    bytes.len()
                ),
            ));
        }
        let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
        if let Err(e) = std::str::from_utf8(bytes) {
            let bad = e.valid_up_to();
            let line = 1 + bytes[..bad].iter().filter(|b| **b == b'\n').count();
            return Err(ReportError::line(
                line,
                format!(
                    "not UTF-8 (byte 0x{:02X}); export the report as UTF-8",
                    bytes.get(bad).copied().unwrap_or_default()
                ),
            ));
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(bytes);
        let lines = Lines::new(bytes);
        let header = reader.headers().map_err(|e| csv_error(&e, &lines))?.clone();
        if header.is_empty() || header.iter().all(str::is_empty) {
            return Err(ReportError::line(1, "no header line"));
        }
        let headers: Vec<String> = header.iter().map(|h| h.trim().to_owned()).collect();
        let mut index = HashMap::new();
        for (i, h) in headers.iter().enumerate() {
            if h.is_empty() {
                return Err(ReportError::line(
                    1,
                    format!("column {} has no name", i + 1),
                ));
            }
            if index.insert(h.clone(), i).is_some() {
                return Err(ReportError::field(1, h, "the column appears twice"));
            }
        }
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| csv_error(&e, &lines))?;
            let line = lines.of(record.position());
            if line > MAX_REPORT_LINES {
                return Err(ReportError::line(
                    line,
                    format!("the report is longer than {MAX_REPORT_LINES} lines"),
                ));
            }
            let mut fields = Vec::with_capacity(record.len());
            for (i, f) in record.iter().enumerate() {
                if f.chars().count() > MAX_FIELD_CHARS {
                    return Err(ReportError::field(
                        line,
                        &headers[i],
                        format!("longer than {MAX_FIELD_CHARS} characters"),
                    ));
                }
                fields.push(f.to_owned());
            }
            rows.push(Row { line, fields });
        }
        Ok(Self {
            headers,
            index,
            rows,
        })
    }

    /// The position of a column the format needs: a missing one is an error on line 1.
    pub(crate) fn require(&self, name: &str) -> Result<usize, ReportError> {
        self.index
            .get(name)
            .copied()
            .ok_or_else(|| ReportError::field(1, name, "required column is missing"))
    }

    /// The position of a column the format may have.
    pub(crate) fn optional(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub(crate) fn headers(&self) -> &[String] {
        &self.headers
    }

    pub(crate) fn rows(&self) -> &[Row] {
        &self.rows
    }
}

impl Row {
    /// The field at `column` (a position from [`Table::require`]), trimmed of spaces.
    pub(crate) fn get(&self, column: usize) -> &str {
        self.fields.get(column).map_or("", |f| f.trim())
    }

    /// The field at an optional column; empty when the column is absent.
    pub(crate) fn opt(&self, column: Option<usize>) -> &str {
        column.map_or("", |c| self.get(c))
    }
}

/// Line numbers from byte offsets. The `csv` crate's own line count leaves out the blank
/// lines it skips, so a record's line is counted here from where its bytes start.
struct Lines<'a> {
    bytes: &'a [u8],
    /// Offsets of every newline byte, ascending.
    newlines: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        let newlines = bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i)
            .collect();
        Self { bytes, newlines }
    }

    /// The 1-based line a record starting at `position` is on (blank lines before it are
    /// passed over).
    fn of(&self, position: Option<&csv::Position>) -> usize {
        let Some(start) = position.and_then(|p| usize::try_from(p.byte()).ok()) else {
            return 1;
        };
        let start = start.min(self.bytes.len());
        let start = self.bytes[start..]
            .iter()
            .position(|b| *b != b'\n' && *b != b'\r')
            .map_or(self.bytes.len(), |skip| start + skip);
        1 + self.newlines.partition_point(|n| *n < start)
    }
}

fn csv_error(e: &csv::Error, lines: &Lines<'_>) -> ReportError {
    let line = lines.of(e.position());
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => ReportError::line(
            line,
            format!("{len} fields where the header has {expected_len}"),
        ),
        _ => ReportError::line(line, format!("not a CSV record: {e}")),
    }
}

/// An exact decimal written plainly: an optional `-`, digits, and optionally `.` and
/// digits. Refuses signs other than `-`, exponents (`1e3`), thousands separators and
/// decimal commas (`12,50`, `1,000.00`), spaces inside, and more digits than a decimal
/// holds (28).
pub(crate) fn decimal(text: &str, line: usize, column: &str) -> Result<Decimal, ReportError> {
    let bad = || {
        ReportError::field(
            line,
            column,
            format!("`{text}` is not a plain decimal amount (digits, optional `-` and `.`)"),
        )
    };
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
        return Err(bad());
    }
    Decimal::from_str_exact(text).map_err(|_| bad())
}

/// An ISO 4217 code: three ASCII letters, returned uppercase (Stripe writes `usd`).
pub(crate) fn currency(text: &str, line: usize, column: &str) -> Result<String, ReportError> {
    if text.len() == 3 && text.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(text.to_ascii_uppercase())
    } else {
        Err(ReportError::field(
            line,
            column,
            format!("`{text}` is not a three-letter currency code"),
        ))
    }
}

/// A local date and time in the providers' `YYYY-MM-DD HH:MM:SS` form.
pub(crate) fn local_time(
    text: &str,
    line: usize,
    column: &str,
) -> Result<PrimitiveDateTime, ReportError> {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    PrimitiveDateTime::parse(text, format).map_err(|_| {
        ReportError::field(
            line,
            column,
            format!("`{text}` is not a time as YYYY-MM-DD HH:MM:SS"),
        )
    })
}

/// An RFC 3339 time with its offset (`2024-01-15T10:22:33+09:00`).
pub(crate) fn rfc3339(
    text: &str,
    line: usize,
    column: &str,
) -> Result<OffsetDateTime, ReportError> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        ReportError::field(
            line,
            column,
            format!("`{text}` is not an RFC 3339 time with an offset"),
        )
    })
}

/// A local time at a UTC offset, as Unix milliseconds.
pub(crate) fn at_offset_ms(local: PrimitiveDateTime, offset: UtcOffset) -> i64 {
    unix_ms(local.assume_offset(offset))
}

/// Unix milliseconds of an instant (sub-millisecond digits are dropped, toward the past).
pub(crate) fn unix_ms(at: OffsetDateTime) -> i64 {
    // Years are -9999..=9999 in `time`, so milliseconds fit an i64 with room to spare.
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn decimals_are_plain_and_exact() {
        assert_eq!(decimal("12.50", 2, "a").unwrap().to_string(), "12.50");
        assert_eq!(decimal("-0.001", 2, "a").unwrap().to_string(), "-0.001");
        assert_eq!(decimal("1000", 2, "a").unwrap().to_string(), "1000");
        for bad in [
            "12,50", "1e3", "abc", "", "+1", "1.", ".5", "1 000", "1,000.00", "--1", "0x10", "NaN",
        ] {
            let e = decimal(bad, 4, "amount").unwrap_err();
            assert_eq!((e.line, e.column.as_deref()), (4, Some("amount")), "{bad}");
        }
    }

    #[test]
    fn invalid_utf8_names_its_line() {
        let e = Table::read(b"a,b\n1,2\n3,caf\xE9\n").err().unwrap();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("UTF-8"), "{e}");
    }

    #[test]
    fn bom_is_skipped() {
        let t = Table::read(b"\xEF\xBB\xBFa,b\n1,2\n").ok().unwrap();
        assert_eq!(t.require("a").unwrap(), 0);
        assert_eq!(t.rows()[0].line, 2);
    }

    #[test]
    fn ragged_and_duplicate_and_long() {
        let e = Table::read(b"a,b\n1,2\n3\n").err().unwrap();
        assert_eq!(e.line, 3);
        let e = Table::read(b"a,a\n1,2\n").err().unwrap();
        assert_eq!((e.line, e.column.as_deref()), (1, Some("a")));
        let long = format!("a,b\n1,{}\n", "x".repeat(MAX_FIELD_CHARS + 1));
        let e = Table::read(long.as_bytes()).err().unwrap();
        assert_eq!((e.line, e.column.as_deref()), (2, Some("b")));
    }

    #[test]
    fn lines_count_blank_lines_and_quoted_newlines() {
        let t = Table::read(b"a,b\r\n\r\n1,\"x\ny\"\r\n\n2,3\n")
            .ok()
            .unwrap();
        let lines: Vec<usize> = t.rows().iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 6]);
        let e = Table::read(b"a,b\n\n\n1\n").err().unwrap();
        assert_eq!(e.line, 4);
    }
}
