//! The building blocks of `--json` output, so every subcommand spells the
//! same things the same way: snake_case names, coordinates as objects,
//! times as an ISO-8601 UTC string plus Unix seconds, sorted lists.

use serde_json::{Map, Value, json};
use spalloc::{Board, BoardPosition, Chip, Connection, DeadLink, JobState, Number};

use crate::term;

/// `{"x","y","z"}`.
pub fn board(b: &Board) -> Value {
    json!({"x": b.x, "y": b.y, "z": b.z})
}

/// A sorted list of boards.
pub fn boards(list: &[Board]) -> Value {
    let mut sorted = list.to_vec();
    sorted.sort_unstable();
    Value::Array(sorted.iter().map(board).collect())
}

/// `{"x","y"}`.
pub fn chip(c: &Chip) -> Value {
    json!({"x": c.x, "y": c.y})
}

/// `{"cabinet","frame","board"}`.
pub fn position(p: &BoardPosition) -> Value {
    json!({"cabinet": p.cabinet, "frame": p.frame, "board": p.board})
}

/// `{"x","y","z","link"}`.
pub fn dead_link(l: &DeadLink) -> Value {
    json!({"x": l.board.x, "y": l.board.y, "z": l.board.z, "link": l.link})
}

/// A sorted list of `{"x","y","hostname"}`.
pub fn connections(list: &[Connection]) -> Value {
    let mut sorted = list.to_vec();
    sorted.sort_unstable();
    Value::Array(
        sorted
            .iter()
            .map(|c| json!({"x": c.chip.x, "y": c.chip.y, "hostname": c.hostname}))
            .collect(),
    )
}

/// The state's name; an unrecognised state as its number, as a string.
pub fn state(s: JobState) -> Value {
    Value::String(s.to_string())
}

/// A number as it came (integer or float); non-finite becomes null.
pub fn number(n: Option<Number>) -> Value {
    match n {
        Some(Number::Int(i)) => Value::from(i),
        Some(Number::Float(f)) => {
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        None => Value::Null,
    }
}

/// Inserts `<name>` (ISO-8601 UTC) and `<name>_unix` (seconds).
pub fn insert_time(obj: &mut Map<String, Value>, name: &str, unix: Option<f64>) {
    let iso = unix
        .and_then(term::iso8601_utc)
        .map_or(Value::Null, Value::String);
    obj.insert(name.to_owned(), iso);
    let secs = unix
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number);
    obj.insert(format!("{name}_unix"), secs);
}

/// One compact JSON document and a newline.
pub fn line(v: &Value) -> String {
    let mut s = v.to_string();
    s.push('\n');
    s
}
