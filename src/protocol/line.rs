//! One line from a server: classified as a reply, an exception, a
//! notification or something unknown, with a reply's value decoded straight
//! into its final type on the way.
//!
//! A reply is decoded in the same pass that reads the line, without first
//! building a [`Value`] tree of the whole line: for big replies such as
//! `list_jobs` most of the time would otherwise go into allocating that tree.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::decode::{Reply, id_list, kind_of, string_list};
use crate::error::{Error, ProtocolError, Result};
use crate::types::Notification;

/// One line received from a server, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming<T = Value> {
    /// `{"return": value}`: the reply to the oldest outstanding command.
    Return(T),
    /// `{"exception": message}`: the oldest outstanding command failed.
    Exception(String),
    /// `{"jobs_changed": …}` or `{"machines_changed": …}`.
    Notification(Notification),
    /// A JSON object of a kind this client does not know. Both reference
    /// clients skip such lines; so do we, rather than fail a call because a
    /// newer server added a message kind.
    Unrecognised(Vec<String>),
}

/// Decodes one line (without its `\n`; surrounding white space, such as a
/// trailing `\r`, is tolerated), reading a reply's value as `R` for
/// `command`. A reply of the wrong shape is `Return(Err(…))`, not an error
/// of the line: the connection is still in step.
pub(crate) fn decode_line_as<R: Reply>(
    line: &[u8],
    command: &str,
) -> Result<Incoming<Result<R, ProtocolError>>> {
    let line = line.trim_ascii();
    match parse::<R>(line, command) {
        Ok(incoming) => incoming.map_err(Error::from),
        Err(e) => match patch_non_finite(line) {
            // The Python server writes bare `NaN` and `Infinity` for
            // non-finite floats: read them as strings, which the reply
            // decoders take as floats. Only lines that fail to parse as
            // they are pay for this.
            Cow::Owned(patched) => parse::<R>(&patched, command)?.map_err(Error::from),
            Cow::Borrowed(_) => Err(e.into()),
        },
    }
}

fn parse<R: Reply>(
    line: &[u8],
    command: &str,
) -> serde_json::Result<std::result::Result<Incoming<Result<R, ProtocolError>>, ProtocolError>> {
    let seed = LineSeed::<R> {
        command,
        reply: PhantomData,
    };
    // Checking UTF-8 once for the whole line is much faster than string by
    // string, as `from_slice` does; invalid UTF-8 is left to `from_slice`
    // to report.
    match std::str::from_utf8(line) {
        Ok(text) => {
            let mut de = serde_json::Deserializer::from_str(text);
            let v = seed.deserialize(&mut de)?;
            de.end()?;
            Ok(v)
        }
        Err(_) => {
            let mut de = serde_json::Deserializer::from_slice(line);
            let v = seed.deserialize(&mut de)?;
            de.end()?;
            Ok(v)
        }
    }
}

/// Reads a whole line: an object whose keys say what kind of message it is.
struct LineSeed<'c, R> {
    command: &'c str,
    reply: PhantomData<R>,
}

type Line<R> = std::result::Result<Incoming<Result<R, ProtocolError>>, ProtocolError>;

impl<'de, R: Reply> DeserializeSeed<'de> for LineSeed<'_, R> {
    type Value = Line<R>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Line<R>, D::Error> {
        d.deserialize_any(self)
    }
}

/// The keys that say what a line is.
enum Key {
    Return,
    Exception,
    JobsChanged,
    MachinesChanged,
    Other(String),
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Key, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> std::result::Result<Key, E> {
                Ok(match key {
                    "return" => Key::Return,
                    "exception" => Key::Exception,
                    "jobs_changed" => Key::JobsChanged,
                    "machines_changed" => Key::MachinesChanged,
                    other => Key::Other(other.to_owned()),
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// Decodes the value of `return` as `R`.
struct ReplySeed<'c, R> {
    command: &'c str,
    reply: PhantomData<R>,
}

impl<'de, R: Reply> DeserializeSeed<'de> for ReplySeed<'_, R> {
    type Value = Result<R, ProtocolError>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        R::decode(d, self.command)
    }
}

impl<'de, R: Reply> Visitor<'de> for LineSeed<'_, R> {
    type Value = Line<R>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Line<R>, A::Error> {
        let mut reply = None;
        let mut exception = None;
        let mut jobs = None;
        let mut machines = None;
        let mut others: Vec<String> = Vec::new();
        // A repeated key counts once, its last value winning, as it would
        // in a map.
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Return => {
                    reply = Some(map.next_value_seed(ReplySeed::<R> {
                        command: self.command,
                        reply: PhantomData,
                    })?);
                }
                Key::Exception => exception = Some(map.next_value::<Value>()?),
                Key::JobsChanged => jobs = Some(map.next_value::<Value>()?),
                Key::MachinesChanged => machines = Some(map.next_value::<Value>()?),
                Key::Other(key) => {
                    map.next_value::<IgnoredAny>()?;
                    if !others.contains(&key) {
                        others.push(key);
                    }
                }
            }
        }
        // The Python client checks for "return" first; so do we.
        Ok(Ok(if let Some(reply) = reply {
            Incoming::Return(reply)
        } else if let Some(e) = exception {
            Incoming::Exception(match e {
                Value::String(s) => s,
                other => other.to_string(),
            })
        } else if let Some(v) = jobs {
            match id_list(&v, "jobs_changed") {
                Ok(ids) => Incoming::Notification(Notification::JobsChanged(ids)),
                Err(e) => return Ok(Err(e)),
            }
        } else if let Some(v) = machines {
            match string_list(&v, "machines_changed") {
                Ok(names) => Incoming::Notification(Notification::MachinesChanged(names)),
                Err(e) => return Ok(Err(e)),
            }
        } else {
            Incoming::Unrecognised(others)
        }))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Line<R>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(self.other(Value::Array(Vec::new())))
    }

    visit_other_values!();
}

impl<R> LineSeed<'_, R> {
    /// Not an object: no message at all.
    fn other(&self, v: Value) -> Line<R> {
        Err(ProtocolError {
            command: None,
            field: None,
            expected: "a JSON object".into(),
            got: Some(kind_of(&v).into()),
        })
    }
}

/// Rewrites bare `NaN`, `Infinity` and `-Infinity` tokens (outside strings)
/// as JSON strings. Borrows the input unchanged when there are none.
pub(crate) fn patch_non_finite(line: &[u8]) -> Cow<'_, [u8]> {
    // Outside strings, valid JSON contains no 'N' or 'I' at all, so a quick
    // scan for those bytes rules out almost every line without parsing.
    if memchr::memchr2(b'N', b'I', line).is_none() {
        return Cow::Borrowed(line);
    }
    let mut out = Vec::with_capacity(line.len() + 16);
    let mut patched = false;
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
                patched = true;
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
    if patched {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(line)
    }
}
