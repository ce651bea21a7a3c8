//! Turning one request line into one reply line.
//!
//! This layer checks the shape of every request (JSON object, `command`,
//! `args`, `kwargs`), binds arguments to each command's parameters the way a
//! Python function call would (positionally or by name), checks their types,
//! and calls the controller. Every problem becomes an exception reply; the
//! caller's connection carries on. It also encodes replies and notifications
//! in the Python server's JSON style.

use std::collections::BTreeSet;
use std::io;
use std::time::Instant;

use log::{debug, info};
use serde::Serialize;
use serde_json::ser::Formatter;
use serde_json::{Map, Value, json};

use super::allocator::{Request, Shape};
use super::state::{Controller, FixedParts, JobRow, NewJob, WhereIs};

/// What one connection asked to be told about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Watch<T: Ord> {
    #[default]
    Nothing,
    Everything,
    Only(BTreeSet<T>),
}

impl<T: Ord + Clone> Watch<T> {
    fn add(&mut self, item: Option<T>) {
        match (item, &mut *self) {
            (None, _) => *self = Watch::Everything,
            (Some(_), Watch::Everything) => {}
            (Some(t), Watch::Only(set)) => {
                set.insert(t);
            }
            (Some(t), Watch::Nothing) => *self = Watch::Only(BTreeSet::from([t])),
        }
    }

    fn remove(&mut self, item: Option<T>) {
        match (item, &mut *self) {
            (None, _) => *self = Watch::Nothing,
            (Some(t), Watch::Only(set)) => {
                set.remove(&t);
                if set.is_empty() {
                    *self = Watch::Nothing;
                }
            }
            (Some(_), _) => {}
        }
    }

    /// The changed items this watch covers, in the order given.
    pub fn filter(&self, changed: &[T]) -> Vec<T> {
        match self {
            Watch::Nothing => Vec::new(),
            Watch::Everything => changed.to_vec(),
            Watch::Only(set) => changed
                .iter()
                .filter(|c| set.contains(c))
                .cloned()
                .collect(),
        }
    }
}

/// A connection's notification subscriptions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Subscriptions {
    pub jobs: Watch<u64>,
    pub machines: Watch<String>,
}

/// Everything a command needs besides its arguments.
pub(crate) struct Context<'a> {
    pub controller: &'a mut Controller,
    pub subscriptions: &'a mut Subscriptions,
    pub version: &'a str,
    /// The caller's IP address, recorded as `keepalivehost`.
    pub host: &'a str,
    pub now: Instant,
}

/// Handles one line (without its `\n`) and returns the reply line (with it).
pub(crate) fn handle_line(ctx: &mut Context<'_>, line: &[u8]) -> String {
    let reply = run(ctx, line);
    if let Err(e) = &reply {
        debug!("exception for {}: {e}", ctx.host);
    }
    encode_reply(reply)
}

/// The reply to a line that was longer than the limit.
pub(crate) fn line_too_long(limit: usize) -> String {
    encode_reply(Err(format!(
        "line too long: requests may be at most {limit} bytes; the line was discarded"
    )))
}

/// A command's result: a value, or the whole reply line already encoded.
enum Answer {
    Value(Value),
    Encoded(String),
}

fn encode_reply(reply: Result<Answer, String>) -> String {
    match reply {
        Ok(Answer::Value(v)) => encode_line(&json!({ "return": v })),
        Ok(Answer::Encoded(line)) => line,
        Err(e) => encode_line(&json!({ "exception": e })),
    }
}

/// `{"jobs_changed": [...]}` with its newline.
pub(crate) fn jobs_changed(ids: &[u64]) -> String {
    encode_line(&json!({ "jobs_changed": ids }))
}

/// `{"machines_changed": [...]}` with its newline.
pub(crate) fn machines_changed(names: &[String]) -> String {
    encode_line(&json!({ "machines_changed": names }))
}

/// A JSON line the way Python's `json.dumps` writes it.
fn encode_line(v: &Value) -> String {
    let mut text = encode(v);
    text.push('\n');
    text
}

/// JSON the way Python's `json.dumps` writes it: a space after `:` and `,`,
/// and non-ASCII characters escaped as `\uXXXX`.
fn encode<T: Serialize + ?Sized>(v: &T) -> String {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonStyle);
    if v.serialize(&mut ser).is_err() {
        // Serialising plain data into memory cannot fail; stay valid JSON.
        return "null".to_owned();
    }
    // The formatter only ever writes ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// `list_jobs`' reply, written field by field in the form [`encode`] gives.
///
/// With a thousand jobs this is most of the time the shared state stays
/// locked for, and general serialisation spent it mostly on escaping the
/// same eleven keys over and over: here the keys are constant bytes, plain
/// ASCII strings are copied as they are, and only numbers and the rest go
/// through `serde_json` (with the same formatter).
fn encode_jobs_reply(rows: &[JobRow<'_>]) -> String {
    let mut out = Vec::with_capacity(rows.len() * 512 + 16);
    out.extend_from_slice(b"{\"return\": ");
    encode_jobs(&mut out, rows);
    out.extend_from_slice(b"}\n");
    // Everything written is ASCII, as `PythonStyle` escapes the rest.
    String::from_utf8(out).unwrap_or_default()
}

fn encode_jobs(out: &mut Vec<u8>, rows: &[JobRow<'_>]) {
    out.push(b'[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        encode_job(out, row);
    }
    out.push(b']');
}

fn encode_job(out: &mut Vec<u8>, row: &JobRow<'_>) {
    let (from_owner, request) = row.fixed.get_or_init(|| encode_fixed(row));
    // Writing into a `Vec` cannot fail.
    out.extend_from_slice(b"{\"job_id\": ");
    let _ = PythonStyle.write_u64(out, row.job_id);
    out.extend_from_slice(from_owner.as_bytes());
    out.extend_from_slice(b", \"state\": ");
    let _ = PythonStyle.write_u8(out, row.state);
    out.extend_from_slice(b", \"power\": ");
    out.extend_from_slice(match row.power {
        None => b"null",
        Some(true) => b"true",
        Some(false) => b"false",
    });
    out.extend_from_slice(request.as_bytes());
    out.extend_from_slice(b", \"allocated_machine_name\": ");
    match row.allocated_machine_name {
        None => out.extend_from_slice(b"null"),
        Some(name) => encode_str(out, name),
    }
    out.extend_from_slice(b", \"boards\": ");
    match row.boards {
        None => out.extend_from_slice(b"null"),
        Some(boards) => {
            out.push(b'[');
            for (i, &(x, y, z)) in boards.iter().enumerate() {
                out.extend_from_slice(if i > 0 { b", [" } else { b"[" });
                let _ = PythonStyle.write_i32(out, x);
                out.extend_from_slice(b", ");
                let _ = PythonStyle.write_i32(out, y);
                out.extend_from_slice(b", ");
                let _ = PythonStyle.write_i32(out, z);
                out.push(b']');
            }
            out.push(b']');
        }
    }
    out.extend_from_slice(b", \"keepalivehost\": ");
    encode_str(out, row.keepalivehost);
    out.push(b'}');
}

/// The parts of a job's entry that never change: `owner` to `keepalive`,
/// and `args` with `kwargs`, each with its leading `", "`.
fn encode_fixed(row: &JobRow<'_>) -> FixedParts {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b", \"owner\": ");
    encode_str(&mut out, row.owner);
    out.extend_from_slice(b", \"start_time\": ");
    encode_value(&mut out, &row.start_time);
    out.extend_from_slice(b", \"keepalive\": ");
    encode_json(&mut out, row.keepalive);
    let split = out.len();
    out.extend_from_slice(b", \"args\": ");
    encode_list(&mut out, row.args);
    out.extend_from_slice(b", \"kwargs\": ");
    encode_object(&mut out, row.kwargs);
    let request = out.split_off(split);
    // Everything written is ASCII, as `PythonStyle` escapes the rest.
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap_or_default().into();
    (text(out), text(request))
}

/// A value as [`encode`] writes it, with the fast path of [`encode_str`]
/// for every string in it, keys included. (Parsed requests nest at most
/// 128 deep, so the recursion is bounded.)
fn encode_json(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            // Writing into a `Vec` cannot fail.
            (Some(u), _) => drop(PythonStyle.write_u64(out, u)),
            (None, Some(i)) => drop(PythonStyle.write_i64(out, i)),
            _ => encode_value(out, n),
        },
        Value::String(s) => encode_str(out, s),
        Value::Array(items) => encode_list(out, items),
        Value::Object(map) => encode_object(out, map),
    }
}

fn encode_list(out: &mut Vec<u8>, items: &[Value]) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        encode_json(out, item);
    }
    out.push(b']');
}

fn encode_object(out: &mut Vec<u8>, map: &Map<String, Value>) {
    out.push(b'{');
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        encode_str(out, key);
        out.extend_from_slice(b": ");
        encode_json(out, value);
    }
    out.push(b'}');
}

/// The bytes a JSON string can hold as they are in `PythonStyle`: printable
/// ASCII other than `"` and `\`.
const PLAIN: [bool; 256] = {
    let mut plain = [false; 256];
    let mut b = b' ';
    while b <= b'~' {
        plain[b as usize] = b != b'"' && b != b'\\';
        b += 1;
    }
    plain
};

/// A string as JSON: copied as it is when nothing in it needs escaping.
fn encode_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| PLAIN[usize::from(b)]) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        encode_value(out, s);
    }
}

/// Any value as [`encode`] writes it.
fn encode_value<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    let mut ser = serde_json::Serializer::with_formatter(out, PythonStyle);
    // Serialising plain data into memory cannot fail.
    let _ = v.serialize(&mut ser);
}

struct PythonStyle;

impl Formatter for PythonStyle {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if fragment.is_ascii() {
            return w.write_all(fragment.as_bytes());
        }
        for c in fragment.chars() {
            if c.is_ascii() {
                w.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

use crate::protocol::kind_of as type_name;

fn run(ctx: &mut Context<'_>, line: &[u8]) -> Result<Answer, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|_| "request is not valid UTF-8".to_owned())?;
    if text.trim().is_empty() {
        return Err(
            "empty request: expected a JSON object such as {\"command\": \"version\"}".to_owned(),
        );
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("request is not valid JSON: {e}"))?;
    let Value::Object(mut obj) = value else {
        return Err(format!(
            "request must be a JSON object with a \"command\" key, not {}",
            type_name(&value)
        ));
    };
    let command = match obj.remove("command") {
        None | Some(Value::Null) => return Err("request has no \"command\"".to_owned()),
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(format!(
                "\"command\" must be a string, not {}",
                type_name(&other)
            ));
        }
    };
    let args = match obj.remove("args") {
        None => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(format!(
                "\"args\" must be a list, not {}",
                type_name(&other)
            ));
        }
    };
    let mut kwargs = match obj.remove("kwargs") {
        None => Map::new(),
        Some(Value::Object(k)) => k,
        Some(other) => {
            return Err(format!(
                "\"kwargs\" must be an object, not {}",
                type_name(&other)
            ));
        }
    };
    // The Python server reserves this name and drops it silently.
    kwargs.remove("client");
    let call = Call {
        name: &command,
        args: &args,
        kwargs: &kwargs,
    };
    dispatch(ctx, &call)
}

/// One command's arguments, bound like a Python call.
struct Call<'a> {
    name: &'a str,
    args: &'a [Value],
    kwargs: &'a Map<String, Value>,
}

impl Call<'_> {
    /// Binds positional and keyword arguments to `params`; the first
    /// `required` parameters must be given.
    fn bind<const N: usize>(
        &self,
        params: [&str; N],
        required: usize,
    ) -> Result<[Option<&Value>; N], String> {
        let name = self.name;
        if self.args.len() > N {
            return Err(format!(
                "{name}() takes {} positional argument{} but {} were given",
                N,
                if N == 1 { "" } else { "s" },
                self.args.len()
            ));
        }
        let mut out: [Option<&Value>; N] = [None; N];
        for (slot, v) in out.iter_mut().zip(self.args) {
            *slot = Some(v);
        }
        for (k, v) in self.kwargs {
            let Some(i) = params.iter().position(|p| p == k) else {
                return Err(format!("{name}() got an unexpected keyword argument '{k}'"));
            };
            if out[i].is_some() {
                return Err(format!("{name}() got multiple values for argument '{k}'"));
            }
            out[i] = Some(v);
        }
        for (p, v) in params.iter().zip(&out).take(required) {
            if v.is_none() {
                return Err(format!("{name}() missing required argument '{p}'"));
            }
        }
        Ok(out)
    }

    fn no_args(&self) -> Result<(), String> {
        self.bind([], 0).map(|_| ())
    }
}

fn int(name: &str, v: &Value) -> Result<i64, String> {
    if let Some(i) = v.as_i64() {
        return Ok(i);
    }
    if v.as_u64().is_some() {
        return Err(format!("{name} is out of range"));
    }
    if let Some(f) = v.as_f64() {
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        if f.fract() == 0.0 && f.abs() < 9.0e15 {
            return Ok(f as i64);
        }
        return Err(format!("{name} must be a whole number, not {f}"));
    }
    Err(format!("{name} must be an integer, not {}", type_name(v)))
}

fn opt_int(name: &str, v: Option<&Value>) -> Result<Option<i64>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => int(name, v).map(Some),
    }
}

/// A job id: `None` when it cannot name any job (negative).
fn job_id(v: &Value) -> Result<Option<u64>, String> {
    if let Some(u) = v.as_u64() {
        return Ok(Some(u));
    }
    int("job_id", v).map(|i| u64::try_from(i).ok())
}

fn required_job_id(v: Option<&Value>) -> Result<Option<u64>, String> {
    match v {
        None | Some(Value::Null) => Err("job_id must be an integer, not null".to_owned()),
        Some(v) => job_id(v),
    }
}

fn string<'v>(name: &str, v: &'v Value) -> Result<&'v str, String> {
    v.as_str()
        .ok_or_else(|| format!("{name} must be a string, not {}", type_name(v)))
}

fn opt_string<'v>(name: &str, v: Option<&'v Value>) -> Result<Option<&'v str>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => string(name, v).map(Some),
    }
}

fn number(name: &str, v: &Value) -> Result<f64, String> {
    v.as_f64()
        .ok_or_else(|| format!("{name} must be a number, not {}", type_name(v)))
}

fn dispatch(ctx: &mut Context<'_>, call: &Call<'_>) -> Result<Answer, String> {
    if call.name == "list_jobs" {
        call.no_args()?;
        return Ok(Answer::Encoded(encode_jobs_reply(
            &ctx.controller.list_jobs(),
        )));
    }
    command(ctx, call).map(Answer::Value)
}

fn command(ctx: &mut Context<'_>, call: &Call<'_>) -> Result<Value, String> {
    let (host, now) = (ctx.host, ctx.now);
    let ctl = &mut *ctx.controller;
    match call.name {
        "version" => {
            call.no_args()?;
            Ok(Value::from(ctx.version))
        }
        "create_job" => {
            let spec = parse_create_job(call)?;
            Ok(Value::from(ctl.create_job(spec, host, now)))
        }
        "job_keepalive" => {
            let [id] = call.bind(["job_id"], 1)?;
            ctl.job_keepalive(required_job_id(id)?, host, now);
            Ok(Value::Null)
        }
        "get_job_state" => {
            let [id] = call.bind(["job_id"], 1)?;
            Ok(ctl.get_job_state(required_job_id(id)?, host, now))
        }
        "get_job_machine_info" => {
            let [id] = call.bind(["job_id"], 1)?;
            Ok(ctl.get_job_machine_info(required_job_id(id)?, host, now))
        }
        "power_on_job_boards" | "power_off_job_boards" => {
            let [id] = call.bind(["job_id"], 1)?;
            let on = call.name == "power_on_job_boards";
            ctl.power(required_job_id(id)?, on, host, now);
            Ok(Value::Null)
        }
        "destroy_job" => {
            let [id, reason] = call.bind(["job_id", "reason"], 1)?;
            let id = required_job_id(id)?;
            let reason = opt_string("reason", reason)?.map(str::to_owned);
            if let Some(id) = id {
                ctl.destroy(id, reason, now);
            }
            Ok(Value::Null)
        }
        "notify_job" | "no_notify_job" => {
            let [id] = call.bind(["job_id"], 0)?;
            let id = match id {
                None | Some(Value::Null) => None,
                Some(v) => match job_id(v)? {
                    Some(id) => Some(id),
                    // A negative id names no job: nothing to watch or drop.
                    None => return Ok(Value::Null),
                },
            };
            if call.name == "notify_job" {
                ctx.subscriptions.jobs.add(id);
            } else {
                ctx.subscriptions.jobs.remove(id);
            }
            Ok(Value::Null)
        }
        "notify_machine" | "no_notify_machine" => {
            let [name] = call.bind(["machine_name"], 0)?;
            let name = opt_string("machine_name", name)?.map(str::to_owned);
            if call.name == "notify_machine" {
                ctx.subscriptions.machines.add(name);
            } else {
                ctx.subscriptions.machines.remove(name);
            }
            Ok(Value::Null)
        }
        "list_machines" => {
            call.no_args()?;
            Ok(ctl.list_machines())
        }
        "get_board_position" | "get_board_at_position" => {
            let [m, x, y, z] = call.bind(["machine_name", "x", "y", "z"], 4)?;
            let v = |v: Option<&Value>, n: &str| v.map_or(Ok(0), |v| int(n, v));
            let m = m.map_or(Ok(""), |m| string("machine_name", m))?;
            let (x, y, z) = (v(x, "x")?, v(y, "y")?, v(z, "z")?);
            if call.name == "get_board_position" {
                Ok(ctl.get_board_position(m, x, y, z))
            } else {
                Ok(ctl.get_board_at_position(m, x, y, z))
            }
        }
        "where_is" => {
            let query = parse_where_is(call)?;
            Ok(ctl.where_is(&query))
        }
        "report_problem" => {
            let [ip, x, y, p, description] = call.bind(["ip", "x", "y", "p", "description"], 1)?;
            let ip = ip.map_or(Ok(""), |v| string("ip", v))?;
            let (x, y, p) = (opt_int("x", x)?, opt_int("y", y)?, opt_int("p", p)?);
            let description = opt_string("description", description)?
                .unwrap_or("It doesn't work and I don't know why.");
            info!(
                "problem reported by {host} for board {ip} (chip {x:?},{y:?} core {p:?}): {description}"
            );
            Ok(Value::Null)
        }
        other => Err(format!("unknown command: {other}")),
    }
}

const CREATE_JOB_KWARGS: [&str; 8] = [
    "owner",
    "keepalive",
    "machine",
    "tags",
    "min_ratio",
    "max_dead_boards",
    "max_dead_links",
    "require_torus",
];

fn parse_create_job(call: &Call<'_>) -> Result<NewJob, String> {
    if call.args.len() > 3 {
        return Err(format!(
            "create_job() takes at most 3 positional arguments (a board count, a width and height in triads, \
             or a board's x, y, z) but {} were given",
            call.args.len()
        ));
    }
    let kw = call.kwargs;
    if let Some(k) = kw.keys().find(|k| !CREATE_JOB_KWARGS.contains(&k.as_str())) {
        return Err(format!(
            "create_job() got an unexpected keyword argument '{k}'"
        ));
    }
    let names = ["x", "y", "z"];
    let mut pos = Vec::new();
    for (v, n) in call.args.iter().zip(names) {
        if v.is_null() {
            break;
        }
        pos.push(int(n, v)?);
    }
    let shape = match pos[..] {
        [] | [1] => Shape::AnyBoard,
        [n] => Shape::Boards(n),
        [w, h] => Shape::Triads(w, h),
        [x, y, z] => Shape::Board(x, y, z),
        _ => return Err("create_job() takes at most 3 positional arguments".to_owned()),
    };

    let owner = match kw.get("owner") {
        None | Some(Value::Null) => return Err("owner must be specified for all jobs".to_owned()),
        Some(v) => string("owner", v)?.to_owned(),
    };
    let (keepalive, keepalive_echo) = match kw.get("keepalive") {
        None => (Some(60.0), json!(60.0)),
        Some(Value::Null) => (None, Value::Null),
        Some(v) => (Some(number("keepalive", v)?), v.clone()),
    };
    let machine = opt_string("machine", kw.get("machine"))?.map(str::to_owned);
    let tags = match kw.get("tags") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|t| string("each tag", t).map(str::to_owned))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(v) => {
            return Err(format!(
                "tags must be a list of strings, not {}",
                type_name(v)
            ));
        }
    };
    if machine.is_some() && tags.is_some() {
        return Err("Only one of machine and tags may be specified for a job.".to_owned());
    }
    let min_ratio = match kw.get("min_ratio") {
        None | Some(Value::Null) => 0.0,
        Some(v) => number("min_ratio", v)?,
    };
    let max_dead_boards = opt_int("max_dead_boards", kw.get("max_dead_boards"))?;
    let max_dead_links = opt_int("max_dead_links", kw.get("max_dead_links"))?;
    let require_torus = match kw.get("require_torus") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            return Err(format!(
                "require_torus must be a boolean, not {}",
                type_name(v)
            ));
        }
    };
    if require_torus && matches!(shape, Shape::AnyBoard | Shape::Board(..)) {
        return Err("require_torus must be False when allocating boards.".to_owned());
    }
    if min_ratio < 0.0 && matches!(shape, Shape::Boards(_)) {
        return Err(format!("min_ratio must not be negative (got {min_ratio})"));
    }
    let mut kwargs = kw.clone();
    kwargs.remove("owner");
    kwargs.remove("keepalive");
    Ok(NewJob {
        request: Request {
            shape,
            min_ratio,
            max_dead_boards,
            max_dead_links,
            require_torus,
        },
        owner,
        keepalive,
        keepalive_echo,
        machine,
        tags,
        args: call.args.to_vec(),
        kwargs,
        v2_request: None,
    })
}

fn parse_where_is(call: &Call<'_>) -> Result<WhereIs, String> {
    if !call.args.is_empty() {
        return Err(format!(
            "where_is() takes keyword arguments only but {} positional argument{} given",
            call.args.len(),
            if call.args.len() == 1 {
                " was"
            } else {
                "s were"
            }
        ));
    }
    let kw = call.kwargs;
    let mut keys: Vec<&str> = kw.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let get = |k: &str| kw.get(k).unwrap_or(&Value::Null);
    let i = |k: &str| int(k, get(k));
    let machine = || string("machine", get("machine")).map(str::to_owned);
    match keys[..] {
        ["machine", "x", "y", "z"] => Ok(WhereIs::Logical {
            machine: machine()?,
            x: i("x")?,
            y: i("y")?,
            z: i("z")?,
        }),
        ["board", "cabinet", "frame", "machine"] => Ok(WhereIs::Physical {
            machine: machine()?,
            cabinet: i("cabinet")?,
            frame: i("frame")?,
            board: i("board")?,
        }),
        ["chip_x", "chip_y", "machine"] => Ok(WhereIs::Chip {
            machine: machine()?,
            x: i("chip_x")?,
            y: i("chip_y")?,
        }),
        ["chip_x", "chip_y", "job_id"] => Ok(WhereIs::JobChip {
            job_id: job_id(get("job_id"))?,
            x: i("chip_x")?,
            y: i("chip_y")?,
        }),
        _ => Err(format!("Invalid arguments: {}", keys.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::OnceCell;

    #[test]
    fn job_rows_encode_as_the_derived_form_does() {
        let (echo_null, echo_float, echo_int) = (Value::Null, json!(60.0), json!(5));
        let args = [json!(2), json!("x\u{e9}"), json!([1.5, null])];
        let Value::Object(kwargs) = json!({
            "machine": "m\"q\\", "t\u{1F600}": [true, false], "r": 0.333, "n": -3,
            "big": u64::MAX, "e": 1e300, "o": {"k": null}, "i": 7
        }) else {
            panic!("not an object");
        };
        let empty = Map::new();
        let boards = [(0, 0, 0), (-1, 7, 2), (i32::MAX, i32::MIN, 1)];
        let fixed: [OnceCell<FixedParts>; 3] = Default::default();
        let rows = [
            JobRow {
                job_id: 1,
                owner: "filler",
                start_time: 1_795_470_705.607_107_2,
                keepalive: &echo_null,
                state: 3,
                power: Some(true),
                args: &[],
                kwargs: &empty,
                allocated_machine_name: Some("big"),
                boards: Some(&boards[..1]),
                keepalivehost: "127.0.0.1",
                fixed: &fixed[0],
            },
            JobRow {
                job_id: u64::MAX,
                owner: "caf\u{e9} \"quoted\" back\\slash\ttab\u{7f}",
                start_time: 5.0,
                keepalive: &echo_float,
                state: 1,
                power: None,
                args: &args,
                kwargs: &kwargs,
                allocated_machine_name: None,
                boards: None,
                keepalivehost: "",
                fixed: &fixed[1],
            },
            JobRow {
                job_id: 0,
                owner: "",
                start_time: f64::NAN,
                keepalive: &echo_int,
                state: 2,
                power: Some(false),
                args: &[],
                kwargs: &empty,
                allocated_machine_name: Some("\u{1F600}"),
                boards: Some(&boards),
                keepalivehost: "::1\n",
                fixed: &fixed[2],
            },
        ];
        let line = |rows: &[JobRow<'_>]| encode_line(&json!({ "return": rows }));
        assert_eq!(encode_jobs_reply(&rows), line(&rows));
        // Again, from the parts kept the first time.
        assert!(fixed.iter().all(|f| f.get().is_some()));
        assert_eq!(encode_jobs_reply(&rows), line(&rows));
        assert_eq!(encode_jobs_reply(&rows[..1]), line(&rows[..1]));
        assert_eq!(encode_jobs_reply(&[]), "{\"return\": []}\n");
    }

    #[test]
    fn python_style_json() {
        let v = json!({"return": {"a": [1, 2.5, null], "b": "x\u{e9}\u{1F600}"}});
        assert_eq!(
            encode_line(&v),
            "{\"return\": {\"a\": [1, 2.5, null], \"b\": \"x\\u00e9\\ud83d\\ude00\"}}\n"
        );
        assert_eq!(
            encode_line(&json!({"return": 60.0})),
            "{\"return\": 60.0}\n"
        );
    }

    #[test]
    fn watches() {
        let mut w: Watch<u64> = Watch::default();
        w.add(Some(3));
        w.add(Some(5));
        assert_eq!(w.filter(&[1, 3, 5]), vec![3, 5]);
        w.remove(Some(3));
        assert_eq!(w.filter(&[1, 3, 5]), vec![5]);
        w.add(None);
        w.add(Some(9));
        assert_eq!(w.filter(&[1, 3]), vec![1, 3]);
        w.remove(Some(1));
        assert_eq!(w.filter(&[1]), vec![1]);
        w.remove(None);
        assert!(w.filter(&[1]).is_empty());
        w.add(Some(1));
        w.remove(Some(1));
        assert_eq!(w, Watch::Nothing);
    }

    #[test]
    fn binding_like_python() {
        let args = vec![json!(1)];
        let mut kwargs = Map::new();
        kwargs.insert("reason".into(), json!("r"));
        let call = Call {
            name: "destroy_job",
            args: &args,
            kwargs: &kwargs,
        };
        let r = call.bind(["job_id", "reason"], 1);
        assert!(matches!(r, Ok([Some(_), Some(_)])));
        kwargs.insert("job_id".into(), json!(2));
        let call = Call {
            name: "destroy_job",
            args: &args,
            kwargs: &kwargs,
        };
        assert_eq!(
            call.bind(["job_id", "reason"], 1).err().as_deref(),
            Some("destroy_job() got multiple values for argument 'job_id'")
        );
        let none = Map::new();
        let call = Call {
            name: "get_job_state",
            args: &[],
            kwargs: &none,
        };
        assert_eq!(
            call.bind(["job_id"], 1).err().as_deref(),
            Some("get_job_state() missing required argument 'job_id'")
        );
    }

    #[test]
    fn integers() {
        assert_eq!(int("x", &json!(3)), Ok(3));
        assert_eq!(int("x", &json!(3.0)), Ok(3));
        assert!(int("x", &json!(3.5)).is_err());
        assert!(int("x", &json!("3")).is_err());
        assert!(int("x", &json!(u64::MAX)).is_err());
        assert_eq!(job_id(&json!(u64::MAX)), Ok(Some(u64::MAX)));
        assert_eq!(job_id(&json!(-1)), Ok(None));
        assert!(job_id(&json!(true)).is_err());
    }
}
