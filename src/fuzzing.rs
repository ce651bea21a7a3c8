//! Entry points for the fuzz targets in `fuzz/` and for the property tests
//! below. Compiled only for fuzzing (cargo-fuzz builds with `--cfg
//! fuzzing`), where it is public, and for this crate's own tests; it is not
//! part of the published API.
//!
//! Each takes raw bytes and pushes them through everything that decodes
//! untrusted input, so that a fuzzer only has to look for panics, hangs and
//! runaway memory. The virtual server's hook is
//! `crate::server::fuzz_requests`.

use std::fmt::Debug;

use serde_json::Value;

use crate::error::ProtocolError;
use crate::protocol::{self, Incoming, Reply, decode_line, decode_line_as, reply_from_value};
use crate::types::{
    Board, BoardPosition, JobDescription, JobMachineInfo, JobStateInfo, MachineDescription, WhereIs,
};
use crate::v2::proxy::{ClientFrame, MAX_PAYLOAD, ServerFrame};

/// Decodes `bytes` as a v2 proxy frame from a client and as one from a
/// server; returns in how many directions it is a frame.
///
/// A frame that decodes must encode back to the same bytes (except an
/// `ERROR` message that is not UTF-8, which decodes with replacement
/// characters), and a client frame that does not decode must be answered
/// with close code 1007 or 1011; this panics otherwise, so that fuzzing and
/// the property tests look for that too.
pub fn decode_proxy_frame(bytes: &[u8]) -> usize {
    let mut n = 0;
    match ClientFrame::decode(bytes) {
        Ok(f) => {
            n += 1;
            match f.encode() {
                Ok(again) => assert_eq!(again, bytes, "{f:?} re-encodes differently"),
                // Only a datagram longer than a client may send.
                Err(_) => assert!(bytes.len() > 8 + MAX_PAYLOAD, "{f:?} does not re-encode"),
            }
        }
        Err(e) => assert!(
            matches!(e.server_close_code(), 1007 | 1011),
            "{e:?} closes with {}",
            e.server_close_code()
        ),
    }
    if let Ok(f) = ServerFrame::decode(bytes) {
        n += 1;
        let lossy = matches!(f, ServerFrame::Error { .. })
            && std::str::from_utf8(bytes.get(8..).unwrap_or_default()).is_err();
        if !lossy {
            assert_eq!(f.encode(), bytes, "{f:?} re-encodes differently");
        }
    }
    n
}

/// Decodes `line` as a line from a server and, when it is a reply, runs
/// every typed reply decoder on its value. Returns how many decoders
/// accepted it (so that the work cannot be optimised away).
///
/// Each reply decoder reads a reply in two ways, from the line as it
/// streams past and from a [`Value`] already parsed; this panics unless the
/// two agree on every line, so that fuzzing and the property tests below
/// look for that too.
pub fn decode_server_line(line: &[u8]) -> usize {
    let general = decode_line(line);
    let value = match &general {
        Ok(Incoming::Return(v)) => Some(v),
        _ => None,
    };
    agrees::<Value>(line, value, "call");
    if value.is_none() {
        // Not a reply: the line was read the same way whatever the reply's
        // type, as the call above checked.
        return usize::from(general.map_or_else(|e| e.to_string().is_empty(), |_| true));
    }
    agrees::<String>(line, value, "version");
    agrees::<u64>(line, value, "create_job");
    agrees::<JobStateInfo>(line, value, "get_job_state");
    agrees::<Option<JobMachineInfo>>(line, value, "get_job_machine_info");
    agrees::<Vec<JobDescription>>(line, value, "list_jobs");
    agrees::<Vec<MachineDescription>>(line, value, "list_machines");
    agrees::<Option<WhereIs>>(line, value, "where_is");
    agrees::<Option<Board>>(line, value, "get_board_at_position");
    agrees::<Option<BoardPosition>>(line, value, "get_board_position");
    match general {
        Ok(Incoming::Return(v)) => 1 + decode_reply(&v),
        Ok(_) => 1,
        Err(e) => usize::from(e.to_string().is_empty()),
    }
}

/// Panics unless `R` read from `line` and read from its already parsed
/// reply `value` give the same.
fn agrees<R: Reply + Debug>(line: &[u8], value: Option<&Value>, command: &str) {
    let streamed: Option<Result<R, ProtocolError>> = match decode_line_as::<R>(line, command) {
        Ok(Incoming::Return(r)) => Some(r),
        _ => None,
    };
    let from_value = value.map(|v| reply_from_value::<R>(v, command));
    // Compared as text, so that NaN equals NaN.
    assert_eq!(
        format!("{streamed:?}"),
        format!("{from_value:?}"),
        "{command}: decoding from the line and from its value differ"
    );
}

/// Runs every typed reply decoder on `v`; returns how many accepted it.
pub fn decode_reply(v: &Value) -> usize {
    let results = [
        reply_from_value::<String>(v, "version").is_ok(),
        reply_from_value::<u64>(v, "create_job").is_ok(),
        reply_from_value::<JobStateInfo>(v, "get_job_state").is_ok(),
        reply_from_value::<Option<JobMachineInfo>>(v, "get_job_machine_info").is_ok(),
        reply_from_value::<Vec<JobDescription>>(v, "list_jobs").is_ok(),
        reply_from_value::<Vec<MachineDescription>>(v, "list_machines").is_ok(),
        reply_from_value::<Option<WhereIs>>(v, "where_is").is_ok(),
        reply_from_value::<Option<Board>>(v, "get_board_at_position").is_ok(),
        reply_from_value::<Option<BoardPosition>>(v, "get_board_position").is_ok(),
        protocol::board(v).is_some(),
        protocol::position(v).is_some(),
        protocol::chip(v).is_some(),
        protocol::as_u64(v).is_some(),
        protocol::as_f64(v).is_some(),
        protocol::as_number(v).is_some(),
    ];
    results.into_iter().filter(|ok| *ok).count()
}

/// How many cases each property test tries.
#[cfg(test)]
const CASES: u32 = 512;

/// Runs one property for [`CASES`] cases, records the outcome in
/// `$SPALLOC_RELIABILITY_LOG` (as the integration tests do) and fails
/// the test with the minimal failing input.
#[cfg(test)]
pub(crate) fn check<S: proptest::strategy::Strategy>(
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), proptest::test_runner::TestCaseError>,
) {
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: CASES,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    });
    let result = runner.run(&strategy, test);
    if let Some(path) = std::env::var_os("SPALLOC_RELIABILITY_LOG") {
        let line = serde_json::json!({
            "suite": "properties",
            "case": name,
            "cases": CASES,
            "outcome": if result.is_ok() { "pass" } else { "fail" },
        });
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes());
        }
    }
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

#[cfg(test)]
mod tests {
    //! Property tests: arbitrary bytes, arbitrary JSON, valid replies with
    //! one field broken, deep nesting and huge numbers. None may panic; a
    //! broken field must be named in the error.

    use super::*;
    use crate::error::Error;
    use proptest::prelude::*;
    use serde_json::{Map, json};

    /// Every field a reply decoder reads.
    fn fields() -> Vec<&'static str> {
        crate::protocol::field_names()
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (0u64..10).prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            prop_oneof![
                Just("NaN".to_owned()),
                Just("Infinity".to_owned()),
                Just(String::new()),
                ".{0,12}",
            ]
            .prop_map(Value::String),
        ]
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => proptest::sample::select(fields()).prop_map(str::to_owned),
            1 => "[a-z_]{0,8}",
        ]
    }

    fn json() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((key(), inner), 0..8)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    /// Equal, except that floats may differ in the last bit: serde_json's
    /// default float parsing is fast rather than exact.
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
                match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) => {
                        // Relative for normal numbers; subnormals carry
                        // few bits, so any difference below the smallest
                        // normal number is allowed there.
                        let scale = x.abs().max(y.abs());
                        x == y || (x - y).abs() <= (scale * 1e-15).max(f64::MIN_POSITIVE)
                    }
                    _ => false,
                }
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
            }
            _ => a == b,
        }
    }

    /// One valid reply of each kind [`decode_as`] reads, in its order.
    fn valid_replies() -> Vec<Value> {
        vec![
            json!({"state": 3, "power": true, "keepalive": 60.0, "reason": null,
                       "start_time": 1.5, "keepalivehost": "h"}),
            json!({"width": 8, "height": 8, "connections": [[[0, 0], "h"]],
                       "machine_name": "m", "boards": [[0, 0, 0]]}),
            json!({"job_id": 1, "owner": "o", "start_time": 1.0, "keepalive": 60,
                       "state": 3, "power": true, "args": [], "kwargs": {},
                       "allocated_machine_name": "m", "boards": [[0, 0, 0]],
                       "keepalivehost": "h"}),
            json!({"name": "m", "tags": ["default"], "width": 1, "height": 1,
                       "dead_boards": [], "dead_links": [[0, 0, 0, 1]]}),
            json!({"machine": "m", "logical": [0, 0, 0], "physical": [0, 0, 0],
                       "chip": [0, 0], "board_chip": [0, 0], "job_id": 1,
                       "job_chip": [0, 0]}),
        ]
    }

    fn ctx_of(i: usize) -> &'static str {
        [
            "get_job_state",
            "get_job_machine_info",
            "list_jobs",
            "list_machines",
            "where_is",
        ][i]
    }

    /// Decodes `v` as the reply (for lists: the item) that `which` names.
    fn decode_as(which: usize, v: &Value) -> Result<(), Error> {
        let command = ctx_of(which);
        let item = || Value::Array(vec![v.clone()]);
        let checked = match which {
            0 => reply_from_value::<JobStateInfo>(v, command).map(drop),
            1 => reply_from_value::<Option<JobMachineInfo>>(v, command).map(drop),
            2 => reply_from_value::<Vec<JobDescription>>(&item(), command).map(drop),
            3 => reply_from_value::<Vec<MachineDescription>>(&item(), command).map(drop),
            _ => reply_from_value::<Option<WhereIs>>(v, command).map(drop),
        };
        checked.map_err(Error::from)
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        check(
            "client: arbitrary bytes as a server line",
            proptest::collection::vec(any::<u8>(), 0..512),
            |bytes| {
                decode_server_line(&bytes);
                Ok(())
            },
        );
    }

    #[test]
    fn proxy_frames_decode_or_fail_cleanly() {
        check(
            "proxy: arbitrary bytes as frames from a client and from a server",
            proptest::collection::vec(any::<u8>(), 0..64),
            |bytes| {
                decode_proxy_frame(&bytes);
                Ok(())
            },
        );
        // Frame-shaped: a real op code (or one just past them), words,
        // then a payload of any length up to past the limit.
        check(
            "proxy: frame-shaped bytes, payloads up to past the 2040-byte limit",
            (
                0u32..8,
                proptest::collection::vec(any::<u32>(), 0..6),
                0usize..2100,
            ),
            |(op, words, payload)| {
                let mut bytes: Vec<u8> = std::iter::once(op)
                    .chain(words)
                    .flat_map(u32::to_le_bytes)
                    .collect();
                bytes.resize(bytes.len() + payload, 0x5a);
                decode_proxy_frame(&bytes);
                Ok(())
            },
        );
    }

    #[test]
    fn arbitrary_json_text_never_panics() {
        check(
            "client: JSON-like text, bare and as a reply value",
            "[\\[\\]{}\",:0-9a-zA-Z.eE+\\- \\\\]{0,200}",
            |text| {
                decode_server_line(text.as_bytes());
                let mut line = b"{\"return\": ".to_vec();
                line.extend_from_slice(text.as_bytes());
                line.push(b'}');
                decode_server_line(&line);
                Ok(())
            },
        );
    }

    #[test]
    fn arbitrary_replies_decode_or_fail_cleanly() {
        check(
            "client: arbitrary JSON replies through every typed decoder",
            json(),
            |v| {
                let line = serde_json::to_vec(&json!({"return": v})).expect("encode");
                // The line decodes back to the same value...
                match decode_line(&line) {
                    Ok(Incoming::Return(back)) => {
                        prop_assert!(same(&back, &v), "{} != {}", back, v)
                    }
                    other => prop_assert!(false, "not a return: {:?}", other),
                }
                // ...and every typed decoder either accepts it or says
                // which reply it could not read.
                decode_reply(&v);
                for which in 0..5 {
                    if let Err(e) = decode_as(which, &v) {
                        prop_assert!(matches!(e, Error::Protocol(_)), "{:?}", e);
                        prop_assert!(e.to_string().contains(ctx_of(which)), "{}", e);
                    }
                }
                Ok(())
            },
        );
    }

    #[test]
    fn one_broken_field_is_named() {
        check(
            "client: valid replies with one field wrong or missing",
            (
                0usize..5,
                proptest::sample::select(fields()),
                proptest::option::of(json()),
            ),
            |(which, field, replacement)| {
                let mut reply = valid_replies().swap_remove(which);
                prop_assert!(decode_as(which, &valid_replies()[which]).is_ok());
                if let Value::Object(obj) = &mut reply {
                    match &replacement {
                        Some(r) => obj.insert(field.to_owned(), r.clone()),
                        None => obj.remove(field),
                    };
                }
                if decode_as(which, &reply).is_err() {
                    let text = decode_as(which, &reply)
                        .expect_err("failed once")
                        .to_string();
                    prop_assert!(
                        text.contains(&format!("'{field}'")),
                        "{} (broke {})",
                        text,
                        field
                    );
                }
                Ok(())
            },
        );
    }

    #[test]
    fn list_jobs_reads_the_same_from_the_line_and_from_a_value() {
        // Valid entries with up to two fields replaced (by anything) or
        // removed, in lists of one or two: `decode_server_line` checks that
        // the decoder gives the same reading the line as it streams past
        // and reading the value once parsed.
        let change = (
            proptest::sample::select(fields()),
            proptest::option::of(prop_oneof![
                json(),
                Just(json!(false)),
                Just(json!("")),
                Just(json!(1.0)),
                Just(json!(u64::MAX)),
                Just(json!([[1, 2, 3], [0, 0, 1]])),
            ]),
        );
        check(
            "client: list_jobs read from the line or from its value",
            (change.clone(), change, any::<bool>()),
            |(first, second, two)| {
                let mut entry = valid_replies().swap_remove(2);
                if let Value::Object(obj) = &mut entry {
                    for (field, replacement) in [first, second] {
                        match replacement {
                            Some(r) => obj.insert(field.to_owned(), r),
                            None => obj.remove(field),
                        };
                    }
                }
                let mut list = vec![entry];
                if two {
                    list.push(valid_replies().swap_remove(2));
                }
                let line = json!({ "return": list }).to_string();
                decode_server_line(line.as_bytes());
                Ok(())
            },
        );
    }

    #[test]
    fn deep_nesting_is_an_error() {
        check(
            "client: nesting up to 200,000 deep",
            (1usize..200_000, any::<bool>()),
            |(depth, object)| {
                let open = if object { "{\"a\":" } else { "[" };
                let line = format!("{{\"return\": {}", open.repeat(depth));
                prop_assert_eq!(decode_server_line(line.as_bytes()), 0);
                Ok(())
            },
        );
    }

    #[test]
    fn huge_numbers_are_errors_or_values() {
        check(
            "client: numbers of up to 400 digits, exponents up to 1000",
            (
                "[1-9][0-9]{0,400}",
                proptest::option::of(-1000i32..1000),
                proptest::sample::select(fields()),
            ),
            |(digits, exponent, field)| {
                let number = match exponent {
                    Some(e) => format!("{digits}e{e}"),
                    None => digits,
                };
                let line =
                    format!("{{\"return\": {{\"{field}\": {number}, \"state\": {number}}}}}");
                decode_server_line(line.as_bytes());
                let line = format!("{{\"jobs_changed\": [{number}]}}");
                decode_server_line(line.as_bytes());
                Ok(())
            },
        );
    }

    #[cfg(feature = "server")]
    fn request_line() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(
                any::<u8>().prop_filter("no newline", |b| *b != b'\n'),
                0..64
            ),
            (
                proptest::sample::select(
                    &[
                        "version",
                        "create_job",
                        "job_keepalive",
                        "get_job_state",
                        "get_job_machine_info",
                        "power_on_job_boards",
                        "power_off_job_boards",
                        "destroy_job",
                        "notify_job",
                        "no_notify_job",
                        "notify_machine",
                        "no_notify_machine",
                        "list_jobs",
                        "list_machines",
                        "get_board_position",
                        "get_board_at_position",
                        "where_is",
                        "report_problem",
                        "login",
                        "nonsense",
                    ][..]
                ),
                proptest::collection::vec(leaf(), 0..5),
                proptest::collection::vec((key(), leaf()), 0..5),
            )
                .prop_map(|(command, args, kwargs)| {
                    let kwargs: Map<String, Value> = kwargs.into_iter().collect();
                    serde_json::to_vec(&json!({"command": command, "args": args, "kwargs": kwargs}))
                        .expect("encode")
                }),
        ]
    }

    #[cfg(feature = "server")]
    #[test]
    fn the_server_answers_every_line_with_one_json_reply_or_hangs_up() {
        check(
            "server: sequences of arbitrary and command-shaped request lines",
            (
                proptest::collection::vec(request_line(), 1..12),
                proptest::bool::ANY,
            ),
            |(lines, java)| {
                let dialect = if java {
                    crate::server::Dialect::Java
                } else {
                    crate::server::Dialect::Python
                };
                let input = lines.join(&b'\n');
                let replies = crate::server::fuzz_requests(dialect, &input);
                prop_assert!(!replies.is_empty() && replies.len() <= lines.len());
                let ending = if java { "\r\n" } else { "\n" };
                for (i, (r, line)) in replies.iter().zip(&lines).enumerate() {
                    let Some(r) = r else {
                        // Silence: the Python server skips an empty line;
                        // anything else silent hangs up.
                        let skipped = !java && line.is_empty();
                        prop_assert!(skipped || i + 1 == replies.len(), "{:?}", line);
                        continue;
                    };
                    prop_assert!(r.ends_with(ending) && r.matches('\n').count() == 1, "{}", r);
                    match decode_line(r.as_bytes()) {
                        Ok(Incoming::Return(_) | Incoming::Exception(_)) => {}
                        other => prop_assert!(false, "{} -> {:?}", r, other),
                    }
                }
                if replies.len() < lines.len() {
                    prop_assert!(replies.last().is_some_and(Option::is_none));
                }
                Ok(())
            },
        );
    }
}
