//! A batch of departures from a CSV file (`offboard start --from people.csv`): its columns, its
//! rows read one at a time (a batch of any size is never held in memory), and the batch record
//! that lets `offboard resume --from people.csv` continue it.
//!
//! The file has a header row. `user` is required; `type`, `effective_at` and `ticket` are
//! optional, and so is any input the runbook declares under `[inputs]` (e.g. `manager`). An
//! empty cell takes the command line's value (or the input's default). Blank lines are skipped.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::departure::DepartureType;

/// The columns every batch file may have besides the runbook's inputs.
pub const FIXED_COLUMNS: [&str; 4] = ["user", "type", "effective_at", "ticket"];

/// Where each known column is in the file.
#[derive(Debug, Clone)]
pub struct Columns {
    user: usize,
    departure_type: Option<usize>,
    effective_at: Option<usize>,
    ticket: Option<usize>,
    inputs: Vec<(String, usize)>,
    width: usize,
}

/// One person's line, as written (cells trimmed; empty cells are `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The line in the file (1 is the header).
    pub line: u64,
    pub user: String,
    pub departure_type: Option<DepartureType>,
    pub effective_at: Option<String>,
    pub ticket: Option<String>,
    /// Runbook inputs given on this line, `(name, value)`.
    pub inputs: Vec<(String, String)>,
}

/// A line that cannot be used, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLine {
    pub line: u64,
    pub why: String,
}

impl Columns {
    /// Read the header row: `user` must be there; every other column must be a known one or an
    /// input the runbook declares. Errors say all that is wrong with it at once.
    pub fn from_header(header: &[String], inputs: &[&str]) -> Result<Columns, String> {
        let mut problems = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        let (mut user, mut departure_type, mut effective_at, mut ticket) = (None, None, None, None);
        let mut declared = Vec::new();
        for (i, name) in header.iter().enumerate() {
            // A spreadsheet's "CSV UTF-8" export starts with a byte-order mark.
            let name = name.trim_start_matches('\u{feff}').trim();
            if seen.contains(&name) {
                problems.push(format!("column {name:?} appears twice"));
                continue;
            }
            seen.push(name);
            match name {
                "user" => user = Some(i),
                "type" => departure_type = Some(i),
                "effective_at" => effective_at = Some(i),
                "ticket" => ticket = Some(i),
                n if inputs.contains(&n) => declared.push((n.to_string(), i)),
                "" => problems.push(format!("column {} has no name", i + 1)),
                n => problems.push(format!(
                    "column {:?} is neither {} nor an input the runbook declares ({})",
                    crate::ui::escape(n),
                    FIXED_COLUMNS.join(", "),
                    if inputs.is_empty() {
                        "it declares none under [inputs]".to_string()
                    } else {
                        inputs.join(", ")
                    }
                )),
            }
        }
        let Some(user) = user else {
            problems.insert(
                0,
                "there is no `user` column: the first line must be a header naming the columns, e.g. user,type,ticket".into(),
            );
            return Err(problems.join("; "));
        };
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        Ok(Columns {
            user,
            departure_type,
            effective_at,
            ticket,
            inputs: declared,
            width: header.len(),
        })
    }

    /// One line's cells as a row, or why it cannot be one.
    pub fn row(&self, line: u64, cells: &[String]) -> Result<Row, String> {
        if cells.len() != self.width {
            return Err(format!(
                "{} cell(s) where the header has {} (a missing or extra comma? quote a value that holds one)",
                cells.len(),
                self.width
            ));
        }
        let cell = |i: Option<usize>| {
            i.map(|i| cells[i].trim())
                .filter(|c| !c.is_empty())
                .map(str::to_string)
        };
        let user = cell(Some(self.user)).ok_or("the user is empty")?;
        if user.chars().any(char::is_control) {
            return Err("the user holds a control character (a tab, a line break…)".into());
        }
        let departure_type = match cell(self.departure_type) {
            None => None,
            Some(t) => Some(match t.to_ascii_lowercase().as_str() {
                "voluntary" => DepartureType::Voluntary,
                "involuntary" => DepartureType::Involuntary,
                _ => {
                    return Err(format!(
                        "type {:?} is not voluntary or involuntary",
                        crate::ui::escape(&t)
                    ));
                }
            }),
        };
        Ok(Row {
            line,
            user,
            departure_type,
            effective_at: cell(self.effective_at),
            ticket: cell(self.ticket),
            inputs: self
                .inputs
                .iter()
                .filter_map(|(n, i)| cell(Some(*i)).map(|v| (n.clone(), v)))
                .collect(),
        })
    }
}

/// A batch file being read: its columns, then its lines one at a time.
pub struct Rows {
    reader: csv::Reader<LineCounter>,
    pub columns: Columns,
    record: csv::ByteRecord,
    lines: Lines,
}

/// Line numbers by byte offset: the csv reader does not count the blank lines it skips, so the
/// bytes it reads are counted here. Only the newlines it has read ahead of the current record
/// are kept (a buffer's worth at most).
#[derive(Default)]
struct LineState {
    /// Bytes read so far.
    offset: u64,
    /// Offsets of newlines read but not yet passed by a record.
    pending: std::collections::VecDeque<u64>,
    /// Newlines passed.
    passed: u64,
}

type Lines = std::sync::Arc<std::sync::Mutex<LineState>>;

struct LineCounter {
    inner: Box<dyn Read + Send>,
    lines: Lines,
}

impl Read for LineCounter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut l = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let start = l.offset;
        for (i, b) in buf[..n].iter().enumerate() {
            if *b == b'\n' {
                l.pending.push_back(start + i as u64);
            }
        }
        l.offset += n as u64;
        Ok(n)
    }
}

/// The 1-based line of a record that ends at byte `end` (just past its line break, if any):
/// the record's own start may lie before blank lines the reader skipped, its end does not.
fn record_line(lines: &Lines, end: u64) -> u64 {
    let mut l = lines.lock().unwrap_or_else(|p| p.into_inner());
    let mut last = None;
    while l.pending.front().is_some_and(|&o| o < end) {
        last = l.pending.pop_front();
        l.passed += 1;
    }
    let own_break = last.is_some_and(|o| o + 1 == end);
    l.passed + 1 - u64::from(own_break)
}

/// The 1-based line that byte `offset` is on (offsets only grow from call to call).
fn line_at(lines: &Lines, offset: u64) -> u64 {
    let mut l = lines.lock().unwrap_or_else(|p| p.into_inner());
    while l.pending.front().is_some_and(|&o| o < offset) {
        l.pending.pop_front();
        l.passed += 1;
    }
    l.passed + 1
}

/// Open a batch file and read its header. `Err` says what is wrong (the file cannot be read, or
/// its header is not usable), as a sentence about line 1.
pub fn open(path: &Path, inputs: &[&str]) -> Result<Rows, String> {
    let file = File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
    from_reader(Box::new(file), inputs)
}

/// [`open`] over any reader.
pub fn from_reader(input: Box<dyn Read + Send>, inputs: &[&str]) -> Result<Rows, String> {
    let lines = Lines::default();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(LineCounter {
            inner: input,
            lines: lines.clone(),
        });
    let header = reader
        .byte_headers()
        .map_err(|e| format!("line 1: {e}"))?
        .clone();
    if header.is_empty() {
        return Err(
            "the file is empty: it needs a header line (user,type,ticket…) and one line per person"
                .into(),
        );
    }
    let header: Vec<String> = header
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let columns = Columns::from_header(&header, inputs).map_err(|e| format!("line 1: {e}"))?;
    Ok(Rows {
        reader,
        columns,
        record: csv::ByteRecord::new(),
        lines,
    })
}

impl Iterator for Rows {
    type Item = Result<Row, BadLine>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => None,
            Err(e) => {
                let line = e.position().map_or(0, |p| line_at(&self.lines, p.byte()));
                // An I/O error ends the file; a malformed line does not.
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    self.record.clear();
                    return Some(Err(BadLine {
                        line,
                        why: format!("reading the file: {e}"),
                    }));
                }
                Some(Err(BadLine {
                    line,
                    why: e.to_string(),
                }))
            }
            Ok(true) => {
                let line = record_line(&self.lines, self.reader.position().byte());
                let mut cells = Vec::with_capacity(self.record.len());
                for c in self.record.iter() {
                    match std::str::from_utf8(c) {
                        Ok(s) => cells.push(s.to_string()),
                        Err(_) => {
                            return Some(Err(BadLine {
                                line,
                                why: "not UTF-8 text (save the file as UTF-8)".into(),
                            }));
                        }
                    }
                }
                Some(
                    self.columns
                        .row(line, &cells)
                        .map_err(|why| BadLine { line, why }),
                )
            }
        }
    }
}

/// The SHA-256 of a file, hex, read in chunks.
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// What a batch is, kept in `<state>/batches/<id>.json` (0600, written atomically) so that
/// `offboard resume --from <csv>` or `--batch <id>` can continue it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRecord {
    pub batch: String,
    /// The CSV file, as an absolute path.
    pub csv: PathBuf,
    /// Its SHA-256 when the batch started: a changed file is not silently taken for the same batch.
    pub sha256: String,
    /// The runbook file, as an absolute path, and its name.
    pub runbook: PathBuf,
    pub runbook_name: String,
    pub rows: u64,
    pub created_at: String,
    pub by: String,
    /// The command line's values every row defaults to.
    pub defaults: BatchDefaults,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchDefaults {
    #[serde(rename = "type")]
    pub departure_type: DepartureType,
    pub effective_at: Option<String>,
    pub ticket: Option<String>,
    /// `--set KEY=VALUE`, as given.
    pub set: Vec<String>,
    pub legal_hold: bool,
    pub new: bool,
}

/// A batch id: `<yyyymmddThhmmss>-batch-<4 hex>`, only `[a-z0-9-]` (never from user input).
pub fn new_batch_id(at: chrono::DateTime<chrono::Utc>) -> String {
    use rand::Rng;
    let suffix: u16 = rand::thread_rng().r#gen();
    format!("{}-batch-{suffix:04x}", at.format("%Y%m%dt%H%M%S"))
}

/// Where batch records live.
pub fn batches_dir(state: &crate::state::StateDir) -> PathBuf {
    state.root().join("batches")
}

/// The record of batch `id` (a well-formed id, or an error).
pub fn record_path(state: &crate::state::StateDir, id: &str) -> Result<PathBuf> {
    if !crate::state::is_valid_id(id) {
        anyhow::bail!("{:?} is not a batch id", crate::ui::escape(id));
    }
    Ok(batches_dir(state).join(format!("{id}.json")))
}

/// Write a batch record (atomic, 0600, in a private directory).
pub fn save(state: &crate::state::StateDir, record: &BatchRecord) -> Result<()> {
    crate::state::create_private_dir(&batches_dir(state))?;
    let path = record_path(state, &record.batch)?;
    let mut bytes = serde_json::to_vec_pretty(record)?;
    bytes.push(b'\n');
    crate::state::write_atomic(&path, &bytes)
}

/// Read the record of batch `id`.
pub fn load(state: &crate::state::StateDir, id: &str) -> Result<Option<BatchRecord>> {
    let path = record_path(state, id)?;
    match crate::state::read_nofollow(&path) {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The newest batch started from `csv` (an absolute path), if any.
pub fn latest_for(state: &crate::state::StateDir, csv: &Path) -> Result<Option<BatchRecord>> {
    let dir = batches_dir(state);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut ids: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .filter(|n| crate::state::is_valid_id(n))
                .map(str::to_string)
        })
        .collect();
    ids.sort();
    for id in ids.iter().rev() {
        if let Some(r) = load(state, id)?
            && r.csv == csv
        {
            return Ok(Some(r));
        }
    }
    Ok(None)
}

/// The `run_started` command a batch's departures record, by which resume finds them.
pub fn run_command(batch: &str) -> String {
    format!("start --from {batch}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, inputs: &[&str]) -> Result<Vec<Result<Row, BadLine>>, String> {
        let rows = from_reader(
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
            inputs,
        )?;
        Ok(rows.collect())
    }

    #[test]
    fn rows_come_with_their_line_numbers_and_inputs() {
        let rows = read(
            "user,type,manager,ticket\n\
             alice@corp.example,involuntary,bob@corp.example,HR-1\n\
             \n\
             \"carol@corp.example\", voluntary ,,\n",
            &["manager"],
        )
        .unwrap();
        assert_eq!(
            rows[0],
            Ok(Row {
                line: 2,
                user: "alice@corp.example".into(),
                departure_type: Some(DepartureType::Involuntary),
                effective_at: None,
                ticket: Some("HR-1".into()),
                inputs: vec![("manager".into(), "bob@corp.example".into())],
            })
        );
        let carol = rows[1].as_ref().unwrap();
        assert_eq!(carol.line, 4);
        assert_eq!(carol.departure_type, Some(DepartureType::Voluntary));
        assert!(carol.inputs.is_empty() && carol.ticket.is_none());
    }

    #[test]
    fn a_spreadsheets_byte_order_mark_is_not_part_of_the_first_column() {
        let rows = read("\u{feff}user,type\nalice@corp.example,voluntary\n", &[]).unwrap();
        assert_eq!(rows[0].as_ref().unwrap().user, "alice@corp.example");
    }

    #[test]
    fn line_numbers_count_blank_lines_crlf_and_a_last_line_without_a_break() {
        let rows = read("user\r\na@x\r\n\r\n\r\nb@x\r\n\nc@x", &[]).unwrap();
        let lines: Vec<u64> = rows.iter().map(|r| r.as_ref().unwrap().line).collect();
        assert_eq!(lines, [2, 5, 7]);
    }

    #[test]
    fn every_bad_line_is_named_and_reading_goes_on() {
        let rows = read(
            "user,type\n\
             ,voluntary\n\
             dave@corp.example,fired\n\
             erin@corp.example,voluntary,extra\n\
             frank@corp.example,involuntary\n",
            &[],
        )
        .unwrap();
        let bad: Vec<(u64, String)> = rows
            .iter()
            .filter_map(|r| r.as_ref().err().map(|b| (b.line, b.why.clone())))
            .collect();
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert_eq!(bad[0].0, 2);
        assert!(bad[0].1.contains("user is empty"), "{bad:?}");
        assert_eq!(bad[1].0, 3);
        assert!(
            bad[1]
                .1
                .contains("\"fired\" is not voluntary or involuntary")
        );
        assert_eq!(bad[2].0, 4);
        assert!(bad[2].1.contains("3 cell(s) where the header has 2"));
        assert_eq!(rows[3].as_ref().unwrap().user, "frank@corp.example");
    }

    #[test]
    fn the_header_must_name_user_and_only_known_columns() {
        let e = read("email,type\nalice@corp.example,voluntary\n", &[])
            .err()
            .unwrap();
        assert!(e.starts_with("line 1: there is no `user` column"), "{e}");
        let e = read("user,manager,user\nx,y,z\n", &["asset_tag"])
            .err()
            .unwrap();
        assert!(e.contains("\"manager\" is neither"), "{e}");
        assert!(e.contains("(asset_tag)"), "{e}");
        assert!(e.contains("\"user\" appears twice"), "{e}");
        assert!(read("", &[]).is_err());
    }

    #[test]
    fn batch_ids_are_safe_file_names() {
        let id = new_batch_id(chrono::Utc::now());
        assert!(crate::state::is_valid_id(&id), "{id}");
        assert!(id.contains("-batch-"));
        let dir = tempfile::tempdir().unwrap();
        let st = crate::state::StateDir::resolve(Some(dir.path())).unwrap();
        assert!(record_path(&st, "../etc/passwd").is_err());
        assert!(record_path(&st, "Alice").is_err());
    }
}
