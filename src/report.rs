//! What a command prints when it is done: one report struct per command, rendered either as one
//! JSON document (`--output json`) or as text for people. Both come from the same struct, so they
//! cannot drift apart.
//!
//! Every JSON document (results, progress events, errors) carries `schema_version`; the schema is
//! documented in the README.

use serde::Serialize;

use crate::cli::OutputFormat;
use crate::output;

/// Version of the JSON documents' shape. Fields may be added; a change of meaning bumps it.
pub const SCHEMA_VERSION: u32 = 1;

/// Text for people, collected line by line.
#[derive(Default)]
pub struct Text {
    lines: Vec<String>,
}

impl Text {
    pub fn line(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }

    /// Rows whose first columns are padded to a common width. A row's last cell is never padded,
    /// and does not widen its column for the other rows.
    pub fn table(&mut self, rows: &[Vec<String>]) {
        let columns = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                let padded = rows.iter().filter(|r| c + 1 < r.len()).filter_map(|r| r.get(c));
                padded.map(|s| s.chars().count()).max().unwrap_or(0)
            })
            .collect();
        for row in rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}  ", width = widths[c]));
                }
            }
            self.line(line.trim_end().to_string());
        }
    }
}

/// `1 item`, `2 items`: a count and its noun (plural with an `s`).
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A command's result.
pub trait Report: Serialize {
    /// The command's name, in the JSON document.
    const COMMAND: &'static str;
    fn render(&self, text: &mut Text);
}

#[derive(Serialize)]
struct Document<'a, R: Serialize> {
    schema_version: u32,
    command: &'static str,
    #[serde(flatten)]
    report: &'a R,
}

/// The report as its JSON document.
pub fn to_json<R: Report>(report: &R) -> serde_json::Value {
    serde_json::to_value(Document { schema_version: SCHEMA_VERSION, command: R::COMMAND, report })
        .expect("reports serialize")
}

/// Print the report on stdout in the chosen format.
pub fn emit<R: Report>(format: OutputFormat, report: &R) {
    match format {
        OutputFormat::Json => output::json(&to_json(report)),
        OutputFormat::Text => {
            let mut text = Text::default();
            report.render(&mut text);
            for line in text.lines {
                output::line(&line);
            }
        }
    }
}

/// An error, as a JSON document on stdout under `--output json` (the text goes to stderr).
#[derive(Serialize)]
pub struct ErrorReport {
    pub ok: bool,
    pub error: ErrorBody,
}

#[derive(Serialize)]
pub struct ErrorBody {
    /// `config`, `state`, `aws`, `refused`, `steps`, `usage`...
    pub kind: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

pub fn emit_error(command: &'static str, body: ErrorBody) {
    let doc = serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "ok": false,
        "error": body,
    });
    output::json(&doc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Example {
        ok: bool,
    }

    impl Report for Example {
        const COMMAND: &'static str = "example";
        fn render(&self, text: &mut Text) {
            text.table(&[vec!["a".into(), "long".into(), "x".into()], vec!["bbb".into(), "c".into(), "y".into()]]);
        }
    }

    #[test]
    fn json_documents_carry_the_schema_version_and_the_command() {
        let doc = to_json(&Example { ok: true });
        assert_eq!(doc["schema_version"], SCHEMA_VERSION);
        assert_eq!(doc["command"], "example");
        assert_eq!(doc["ok"], true);
    }

    #[test]
    fn counts_agree_with_their_nouns() {
        assert_eq!(
            (count(0, "item"), count(1, "item"), count(2, "item")),
            ("0 items".into(), "1 item".into(), "2 items".into())
        );
    }

    #[test]
    fn a_long_last_cell_does_not_pad_the_other_rows() {
        let mut text = Text::default();
        let long = "x".repeat(180);
        text.table(&[vec!["  delete".into(), "listener-https".into(), "gone".into()], vec!["".into(), long.clone()]]);
        assert_eq!(text.lines, ["  delete  listener-https  gone".to_string(), format!("          {long}")]);
    }

    #[test]
    fn tables_pad_every_column_but_the_last() {
        let mut text = Text::default();
        Example { ok: true }.render(&mut text);
        assert_eq!(text.lines, ["a    long  x", "bbb  c     y"]);
    }
}
