//! The v1 wire format, with no sockets: encode a call, decode a line.
//!
//! Kept apart from [`crate::ProtocolClient`] so that framing and decoding can
//! be tested (and fuzzed) on byte slices alone. Everything here treats its
//! input as untrusted: a decoding failure is an [`Error`], never a panic.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::types::Notification;

/// One line received from a server, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// `{"return": value}`: the reply to the oldest outstanding command.
    Return(Value),
    /// `{"exception": message}`: the oldest outstanding command failed.
    Exception(String),
    /// `{"jobs_changed": …}` or `{"machines_changed": …}`.
    Notification(Notification),
    /// A JSON object of a kind this client does not know. Both reference
    /// clients skip such lines; so do we, rather than fail a call because a
    /// newer server added a message kind.
    Unrecognised(Vec<String>),
}

/// Encodes one command as a compact JSON object and a terminating `\n`.
///
/// Both `args` and `kwargs` are always present: both servers accept that, and
/// the Java compatibility service reads each parameter from only one of them.
pub fn encode_call(command: &str, args: &[Value], kwargs: &Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(48 + command.len());
    out.extend_from_slice(b"{\"command\":");
    // Serialising strings, slices of `Value` and maps of `Value` into a
    // `Vec` cannot fail: there is no I/O and no non-string map key.
    let _ = serde_json::to_writer(&mut out, command);
    out.extend_from_slice(b",\"args\":");
    let _ = serde_json::to_writer(&mut out, args);
    out.extend_from_slice(b",\"kwargs\":");
    let _ = serde_json::to_writer(&mut out, kwargs);
    out.extend_from_slice(b"}\n");
    out
}

/// Decodes one line (without its `\n`; a trailing `\r` is tolerated).
///
/// The Python server writes the non-standard tokens `NaN`, `Infinity` and
/// `-Infinity` for non-finite floats. They are accepted here and turned into
/// the strings `"NaN"`, `"Infinity"` and `"-Infinity"`, which the typed
/// decoders read back as floats wherever a number is expected.
///
/// # Errors
/// [`Error::Json`] if the line is not JSON, [`Error::Protocol`] if it is JSON
/// but not an object or a notification of the wrong shape.
pub fn decode_line(line: &[u8]) -> Result<Incoming> {
    let text = patch_non_finite(trim_ascii(line));
    let value: Value = serde_json::from_slice(&text)?;
    let Value::Object(mut obj) = value else {
        return Err(Error::protocol(format!(
            "expected a JSON object, got {}",
            kind_of(&value)
        )));
    };
    // The Python client checks for "return" first; so do we.
    if let Some(v) = obj.remove("return") {
        return Ok(Incoming::Return(v));
    }
    if let Some(v) = obj.remove("exception") {
        return Ok(Incoming::Exception(match v {
            Value::String(s) => s,
            other => other.to_string(),
        }));
    }
    if let Some(v) = obj.get("jobs_changed") {
        let ids = crate::types::decode::id_list(v, "jobs_changed")?;
        return Ok(Incoming::Notification(Notification::JobsChanged(ids)));
    }
    if let Some(v) = obj.get("machines_changed") {
        let names = crate::types::decode::string_list(v, "machines_changed")?;
        return Ok(Incoming::Notification(Notification::MachinesChanged(names)));
    }
    Ok(Incoming::Unrecognised(obj.keys().cloned().collect()))
}

/// The JSON type name of a value, for error messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn trim_ascii(line: &[u8]) -> &[u8] {
    line.trim_ascii()
}

/// Rewrites bare `NaN`, `Infinity` and `-Infinity` tokens (outside strings)
/// as JSON strings. Borrows the input unchanged in the common case.
fn patch_non_finite(line: &[u8]) -> Cow<'_, [u8]> {
    // Outside strings, valid JSON contains no 'N' or 'I' at all, so a quick
    // scan for those bytes rules out almost every line without parsing.
    if !line.iter().any(|&b| b == b'N' || b == b'I') {
        return Cow::Borrowed(line);
    }
    let mut out = Vec::with_capacity(line.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        let rest = &line[i..];
        let token: Option<(&[u8], &[u8])> = if rest.starts_with(b"NaN") {
            Some((b"NaN", b"\"NaN\""))
        } else if rest.starts_with(b"Infinity") {
            Some((b"Infinity", b"\"Infinity\""))
        } else if rest.starts_with(b"-Infinity") {
            Some((b"-Infinity", b"\"-Infinity\""))
        } else {
            None
        };
        match token {
            Some((raw, quoted)) => {
                out.extend_from_slice(quoted);
                i += raw.len();
            }
            None => {
                if b == b'"' {
                    in_string = true;
                }
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_compact_single_line() {
        let mut kw = Map::new();
        kw.insert("reason".into(), json!("done"));
        let bytes = encode_call("destroy_job", &[json!(7)], &kw);
        assert_eq!(
            bytes,
            b"{\"command\":\"destroy_job\",\"args\":[7],\"kwargs\":{\"reason\":\"done\"}}\n"
        );
        let bytes = encode_call("version", &[], &Map::new());
        assert_eq!(
            bytes,
            b"{\"command\":\"version\",\"args\":[],\"kwargs\":{}}\n"
        );
    }

    #[test]
    fn escapes_newlines_in_strings() {
        let bytes = encode_call("x\ny", &[json!("a\nb")], &Map::new());
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1);
    }

    #[test]
    fn decodes_each_kind_in_both_dialects() -> Result<()> {
        assert_eq!(
            decode_line(b"{\"return\": 42}")?,
            Incoming::Return(json!(42))
        );
        assert_eq!(
            decode_line(b"{\"return\":42}\r")?,
            Incoming::Return(json!(42))
        );
        assert_eq!(
            decode_line(b"{\"return\": null}")?,
            Incoming::Return(Value::Null)
        );
        assert_eq!(
            decode_line(b"{\"exception\": \"no such job\"}")?,
            Incoming::Exception("no such job".into())
        );
        assert_eq!(
            decode_line(b"{\"jobs_changed\": [1, 2]}")?,
            Incoming::Notification(Notification::JobsChanged(vec![1, 2]))
        );
        assert_eq!(
            decode_line(b"{\"machines_changed\":[\"m\"]}\r")?,
            Incoming::Notification(Notification::MachinesChanged(vec!["m".into()]))
        );
        Ok(())
    }

    #[test]
    fn non_string_exception_is_kept_readable() -> Result<()> {
        assert_eq!(
            decode_line(b"{\"exception\": 5}")?,
            Incoming::Exception("5".into())
        );
        Ok(())
    }

    #[test]
    fn unknown_object_is_reported_not_fatal() -> Result<()> {
        assert_eq!(
            decode_line(b"{\"hello\": 1}")?,
            Incoming::Unrecognised(vec!["hello".into()])
        );
        Ok(())
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(decode_line(b"not json"), Err(Error::Json(_))));
        assert!(matches!(decode_line(b""), Err(Error::Json(_))));
        assert!(matches!(decode_line(b"[1, 2]"), Err(Error::Protocol(m)) if m.contains("a list")));
        assert!(matches!(
            decode_line(b"{\"jobs_changed\": \"x\"}"),
            Err(Error::Protocol(m)) if m.contains("jobs_changed")
        ));
        assert!(matches!(
            decode_line(b"{\"return\": 1} extra"),
            Err(Error::Json(_))
        ));
    }

    #[test]
    fn non_finite_tokens_become_strings() -> Result<()> {
        assert_eq!(
            decode_line(b"{\"return\": [NaN, Infinity, -Infinity, \"NaN in a string\"]}")?,
            Incoming::Return(json!(["NaN", "Infinity", "-Infinity", "NaN in a string"]))
        );
        // A quote escaped inside a string does not end it.
        assert_eq!(
            decode_line(br#"{"return": ["a\"NaN", NaN]}"#)?,
            Incoming::Return(json!(["a\"NaN", "NaN"]))
        );
        // Tokens that merely start like the keywords are still rejected.
        assert!(decode_line(b"{\"return\": Nope}").is_err());
        Ok(())
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let mut line = b"{\"return\": ".to_vec();
        line.extend(std::iter::repeat_n(b'[', 100_000));
        assert!(decode_line(&line).is_err());
    }
}
