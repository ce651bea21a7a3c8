//! The v1 wire format, with no sockets: every command's arguments, a call
//! as a line of JSON, and a line from the server decoded into typed data.
//!
//! This module is the one place that knows the protocol's JSON: field
//! names, argument positions, and how each reply is spelled by the two
//! server dialects. Everything else in the crate deals in plain data
//! ([`JobStateInfo`](crate::JobStateInfo), [`JobRequest`](crate::JobRequest),
//! …). Kept apart from [`crate::ProtocolClient`] so that
//! framing and decoding can be tested (and fuzzed) on byte slices alone.
//! Everything here treats its input as untrusted: a decoding failure is an
//! [`Error`](crate::Error), never a panic.
//!
//! * `encode`: requests ([`encode_call`], [`create_job_args`],
//!   [`create_job_kwargs`], and the other commands' arguments).
//! * `line`: a line classified as an [`Incoming`] message, with a reply's
//!   value decoded in the same pass.
//! * `decode`: one decoder for each kind of reply.

/// The visitor methods for the JSON values a visitor does not take apart:
/// each builds the value, for an error message to show, and hands it to the
/// visitor's own `other`. (Lists and objects, which the visitors read, are
/// left to each.)
macro_rules! visit_other_values {
    () => {
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(self.other(serde_json::Value::Bool(v)))
        }

        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(self.other(serde_json::Value::from(v)))
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(self.other(serde_json::Value::from(v)))
        }

        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(self.other(serde_json::Value::from(v)))
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(self.other(serde_json::Value::from(v)))
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(self.other(serde_json::Value::Null))
        }
    };
}

mod decode;
mod encode;
mod line;

use serde_json::Value;

use crate::error::Result;

pub use encode::{create_job_args, create_job_kwargs, encode_call};
pub use line::Incoming;

pub(crate) use decode::{Ignored, Reply};
pub(crate) use encode::{
    board_kwargs, destroy_kwargs, location_kwargs, optional_arg, report_problem_kwargs,
    where_is_kwargs,
};
pub(crate) use line::decode_line_as;

#[cfg(any(test, fuzzing))]
pub(crate) use decode::{
    as_f64, as_number, as_u64, board, chip, field_names, position, reply_from_value,
};
#[cfg(any(test, fuzzing))]
pub(crate) use line::patch_non_finite;

/// Decodes one line (without its `\n`; surrounding white space, such as a
/// trailing `\r`, is tolerated).
///
/// The Python server writes the non-standard tokens `NaN`, `Infinity` and
/// `-Infinity` for non-finite floats. They are accepted here and turned into
/// the strings `"NaN"`, `"Infinity"` and `"-Infinity"`, which the typed
/// decoders read back as floats wherever a number is expected.
///
/// # Errors
/// [`Error::Json`](crate::Error::Json) if the line is not JSON,
/// [`Error::Protocol`](crate::Error::Protocol) if it is JSON but not an
/// object, or a notification of the wrong shape.
pub fn decode_line(line: &[u8]) -> Result<Incoming> {
    Ok(match decode_line_as::<Value>(line, "reply")? {
        Incoming::Return(v) => Incoming::Return(v.unwrap_or_default()),
        Incoming::Exception(e) => Incoming::Exception(e),
        Incoming::Notification(n) => Incoming::Notification(n),
        Incoming::Unrecognised(keys) => Incoming::Unrecognised(keys),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, ProtocolError};
    use crate::types::{JobDescription, Notification};
    use serde_json::{Map, json};

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

    fn protocol_error(r: Result<Incoming>) -> ProtocolError {
        match r {
            Err(Error::Protocol(e)) => *e,
            other => panic!("not a protocol error: {other:?}"),
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(decode_line(b"not json"), Err(Error::Json(_))));
        assert!(matches!(decode_line(b""), Err(Error::Json(_))));
        let e = protocol_error(decode_line(b"[1, 2]"));
        assert_eq!(
            (e.command, e.field, e.expected.as_str(), e.got.as_deref()),
            (None, None, "a JSON object", Some("a list"))
        );
        let e = protocol_error(decode_line(b"{\"jobs_changed\": \"x\"}"));
        assert_eq!(e.command.as_deref(), Some("jobs_changed"));
        assert_eq!(e.field.as_deref(), Some("jobs_changed"));
        assert_eq!(e.expected, "a list of job ids");
        assert_eq!(e.got.as_deref(), Some("a string \"x\""));
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
        // Only a line that needs it is rewritten.
        assert!(matches!(
            patch_non_finite(b"{\"return\": \"NaN\"}"),
            std::borrow::Cow::Borrowed(_)
        ));
        Ok(())
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let mut line = b"{\"return\": ".to_vec();
        line.extend(std::iter::repeat_n(b'[', 100_000));
        assert!(decode_line(&line).is_err());
    }

    /// A line as a typed call reads it.
    fn typed<R: Reply>(line: &[u8], command: &str) -> Result<Incoming<Result<R, ProtocolError>>> {
        decode_line_as::<R>(line, command)
    }

    #[test]
    fn a_reply_decodes_straight_to_its_type() -> Result<()> {
        assert_eq!(
            typed::<Value>(b"{\"return\": {\"a\": [1, 2.5]}}", "x")?,
            Incoming::Return(Ok(json!({"a": [1, 2.5]})))
        );
        assert_eq!(
            typed::<u64>(b" {\"return\":42}\r", "create_job")?,
            Incoming::Return(Ok(42))
        );
        // An escaped key is still the key.
        assert_eq!(
            typed::<u64>(b"{\"\\u0072eturn\": 7}", "create_job")?,
            Incoming::Return(Ok(7))
        );
        // A reply of the wrong shape is the reply's error, not the line's:
        // the connection is still in step.
        let Incoming::Return(Err(e)) = typed::<u64>(b"{\"return\": \"1\"}", "create_job")? else {
            panic!("not a reply error");
        };
        assert_eq!(e.to_string(), "create_job: expected a job id, got \"1\"");
        Ok(())
    }

    #[test]
    fn any_line_is_classified_as_decode_line_would() -> Result<()> {
        let cases: [(&[u8], Option<Incoming>); 11] = [
            (
                b"{\"exception\": \"no\"}",
                Some(Incoming::Exception("no".into())),
            ),
            (
                b"{\"jobs_changed\": [1]}",
                Some(Incoming::Notification(Notification::JobsChanged(vec![1]))),
            ),
            // "return" wins wherever it comes; the last of repeated keys counts.
            (
                b"{\"return\": 1, \"exception\": \"x\"}",
                Some(Incoming::Return(json!(1))),
            ),
            (
                b"{\"exception\": \"x\", \"return\": 1}",
                Some(Incoming::Return(json!(1))),
            ),
            (
                b"{\"return\": 1, \"return\": 2}",
                Some(Incoming::Return(json!(2))),
            ),
            (b"{}", Some(Incoming::Unrecognised(vec![]))),
            (b"{\"return\": NaN}", Some(Incoming::Return(json!("NaN")))),
            (b"[1]", None),
            (b"{\"return\": 1} extra", None),
            (b"not json", None),
            (b"", None),
        ];
        for (line, want) in cases {
            let got = decode_line(line).ok();
            assert_eq!(got, want, "{}", String::from_utf8_lossy(line));
            let typed = typed::<Value>(line, "x").ok().map(|i| match i {
                Incoming::Return(v) => Incoming::Return(v.unwrap_or_default()),
                Incoming::Exception(e) => Incoming::Exception(e),
                Incoming::Notification(n) => Incoming::Notification(n),
                Incoming::Unrecognised(k) => Incoming::Unrecognised(k),
            });
            assert_eq!(typed, want, "{}", String::from_utf8_lossy(line));
        }
        Ok(())
    }

    #[test]
    fn a_list_of_fields_is_no_object() -> Result<()> {
        // A derived struct would take this; the servers never send it.
        let Incoming::Return(Err(e)) = typed::<Vec<JobDescription>>(
            b"{\"return\": [[1, \"me\", 5.0, null, 3]]}",
            "list_jobs",
        )?
        else {
            panic!("not a reply error");
        };
        assert_eq!(e.expected, "an object");
        assert_eq!(e.got.as_deref(), Some("a list [1,\"me\",5.0,null,3]"));
        Ok(())
    }
}
