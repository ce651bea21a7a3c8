//! The v1 wire format, with no sockets: encode a call, decode a line.
//!
//! Kept apart from [`crate::ProtocolClient`] so that framing and decoding can
//! be tested (and fuzzed) on byte slices alone. Everything here treats its
//! input as untrusted: a decoding failure is an [`Error`], never a panic.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
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

/// Decodes a line that is exactly `{"return": value}` straight into `T`,
/// without building a [`Value`] tree first: for big replies such as
/// `list_jobs`, most of the decoding time goes into allocating that tree.
///
/// Returns `None` for anything else: another kind of line, an object with
/// other keys besides `return`, a value that `T` does not accept, or input
/// that is not JSON at all. `T` may therefore be stricter than the general
/// decoder, and the caller falls back on [`decode_line`], whose errors name
/// what was wrong.
pub(crate) fn decode_return_as<T: DeserializeOwned>(line: &[u8]) -> Option<T> {
    // No `NaN` patching: a bare `NaN` token fails here, and the general
    // decoder then deals with it. The UTF-8 check is done once for the
    // whole line, which is much faster than string by string as
    // `from_slice` does; invalid UTF-8 is left to the general decoder too.
    let text = std::str::from_utf8(trim_ascii(line)).ok()?;
    serde_json::from_str::<ReturnOnly<T>>(text)
        .ok()
        .map(|r| r.0)
}

/// `{"return": T}` and nothing else.
struct ReturnOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ReturnOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Envelope<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Envelope<T> {
            type Value = ReturnOnly<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object with a single key, \"return\"")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                if map.next_key::<ReturnKey>()?.is_none() {
                    return Err(de::Error::custom("not a return"));
                }
                let value = map.next_value()?;
                match map.next_key::<de::IgnoredAny>()? {
                    None => Ok(ReturnOnly(value)),
                    Some(_) => Err(de::Error::custom("more than a return")),
                }
            }
        }
        // Only an object: a derived struct would also take a list.
        d.deserialize_map(Envelope(PhantomData))
    }
}

/// The key `return`, read without allocating; any other key is an error.
struct ReturnKey;

impl<'de> Deserialize<'de> for ReturnKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Key;
        impl Visitor<'_> for Key {
            type Value = ReturnKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the key \"return\"")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> std::result::Result<ReturnKey, E> {
                if key == "return" {
                    Ok(ReturnKey)
                } else {
                    Err(E::custom("not a return"))
                }
            }
        }
        d.deserialize_str(Key)
    }
}

/// A `T` that derives `Deserialize`, accepted only from a JSON object (a
/// derived struct would also accept a list of its fields in order, which
/// no server sends and the general decoder rejects).
#[derive(Debug)]
pub(crate) struct ObjectOnly<T>(pub(crate) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Object<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Object<T> {
            type Value = ObjectOnly<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(ObjectOnly)
            }
        }
        d.deserialize_map(Object(PhantomData))
    }
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

    #[test]
    fn a_lone_return_decodes_straight_to_its_type() {
        assert_eq!(
            decode_return_as::<Value>(b"{\"return\": {\"a\": [1, 2.5]}}"),
            Some(json!({"a": [1, 2.5]}))
        );
        assert_eq!(decode_return_as::<u64>(b" {\"return\":42}\r"), Some(42));
        assert_eq!(
            decode_return_as::<Value>(b"{\"return\": null}"),
            Some(Value::Null)
        );
        // An escaped key is still the key.
        assert_eq!(decode_return_as::<u64>(b"{\"\\u0072eturn\": 7}"), Some(7));
    }

    #[test]
    fn anything_but_a_lone_return_is_left_to_decode_line() {
        for line in [
            &b"{\"exception\": \"no\"}"[..],
            b"{\"jobs_changed\": [1]}",
            b"{\"return\": 1, \"exception\": \"x\"}",
            b"{\"exception\": \"x\", \"return\": 1}",
            b"{\"return\": 1, \"return\": 2}",
            b"{}",
            b"[1]",
            b"{\"return\": NaN}",
            b"{\"return\": 1} extra",
            b"not json",
            b"",
        ] {
            assert_eq!(
                decode_return_as::<Value>(line),
                None,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        // A value of the wrong shape for the type.
        assert_eq!(decode_return_as::<u64>(b"{\"return\": \"1\"}"), None);
    }

    #[test]
    fn object_only_turns_down_a_list_of_fields() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct Pair {
            a: u32,
            b: u32,
        }
        assert_eq!(
            decode_return_as::<ObjectOnly<Pair>>(b"{\"return\": {\"b\": 2, \"a\": 1}}")
                .map(|p| p.0),
            Some(Pair { a: 1, b: 2 })
        );
        // A derived struct alone would take this; the servers never send
        // it and the general decoder rejects it.
        assert!(decode_return_as::<Pair>(b"{\"return\": [1, 2]}").is_some());
        assert!(decode_return_as::<ObjectOnly<Pair>>(b"{\"return\": [1, 2]}").is_none());
    }
}
