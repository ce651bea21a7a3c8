//! The Python server's dialect.
//!
//! Requests are handled as `spalloc_server` 1!7 handles them: a line that
//! is empty is skipped; a line that is not a JSON object naming one of the
//! seventeen commands, with `args` a list and `kwargs` an object, ends the
//! connection without a reply; arguments bind to each command's parameters
//! as a Python call binds them (with Python's own error texts); job ids,
//! machine names and board coordinates are looked up as Python's
//! dictionaries look them up (`true` and `1.0` are job 1, `"1"` is no job,
//! a list cannot be a key); "not found" is `null`. Replies are written as
//! `json.dumps` writes them.
//!
//! Where the real server fails late (after taking a job id, leaving a
//! half-created job), `create_job` checks up front and creates nothing; see
//! the module documentation of `spalloc::server` for every such difference.

use log::debug;
use serde_json::ser::Formatter;
use serde_json::{Map, Value, json};

use super::json::{
    PythonStyle, python_float, python_line, python_repr, python_str, python_value, without,
};
use super::{Context, Outcome};
use crate::server::Dialect;
use crate::server::allocator::{Request, Shape};
use crate::server::state::{
    Controller, FixedParts, JobRow, JobStatus, Keepalive, MachineInfo, NewJob, WhereIs,
};

/// The commands of `spalloc_server`, each with its Python parameters
/// (including `self` and the client) and how many of them have defaults.
struct Signature {
    name: &'static str,
    params: &'static [&'static str],
    defaults: usize,
    varargs: bool,
    varkw: bool,
}

const fn sig(name: &'static str, params: &'static [&'static str], defaults: usize) -> Signature {
    Signature {
        name,
        params,
        defaults,
        varargs: false,
        varkw: false,
    }
}

const COMMANDS: [Signature; 17] = [
    sig("version", &["self", "_client"], 0),
    Signature {
        name: "create_job",
        params: &["self", "client"],
        defaults: 0,
        varargs: true,
        varkw: true,
    },
    sig("job_keepalive", &["self", "client", "job_id"], 0),
    sig("get_job_state", &["self", "client", "job_id"], 0),
    sig("get_job_machine_info", &["self", "client", "job_id"], 0),
    sig("power_on_job_boards", &["self", "client", "job_id"], 0),
    sig("power_off_job_boards", &["self", "client", "job_id"], 0),
    sig("destroy_job", &["self", "client", "job_id", "reason"], 1),
    sig("notify_job", &["self", "client", "job_id"], 1),
    sig("no_notify_job", &["self", "client", "job_id"], 1),
    sig("notify_machine", &["self", "client", "machine_name"], 1),
    sig("no_notify_machine", &["self", "client", "machine_name"], 1),
    sig("list_jobs", &["self", "_client"], 0),
    sig("list_machines", &["self", "_client"], 0),
    sig(
        "get_board_position",
        &["self", "_client", "machine_name", "x", "y", "z"],
        0,
    ),
    sig(
        "get_board_at_position",
        &["self", "_client", "machine_name", "x", "y", "z"],
        0,
    ),
    Signature {
        name: "where_is",
        params: &["self", "_client"],
        defaults: 0,
        varargs: false,
        varkw: true,
    },
];

/// The allocator's parameters, which `create_job`'s positional arguments
/// and remaining keyword arguments bind to.
const ALLOC_TYPE: Signature = sig(
    "_alloc_type",
    &[
        "self",
        "x_or_num_or_width",
        "y_or_height",
        "z",
        "max_dead_boards",
        "max_dead_links",
        "require_torus",
        "min_ratio",
    ],
    7,
);

/// Handles one line (without its `\n`).
pub(crate) fn handle_line(ctx: &mut Context<'_>, line: &[u8]) -> Outcome {
    if line.is_empty() {
        return Outcome::Skip;
    }
    let Some((command, args, kwargs)) = parse(line) else {
        debug!("{} sent a bad request; disconnecting it", ctx.host);
        return Outcome::Close;
    };
    let result = match command.name {
        "list_jobs" => bind(&qualname(command), command, &args, &kwargs)
            .map(|_| encode_jobs_reply(&ctx.controller.list_jobs())),
        _ => run(ctx, command, &args, &kwargs).map(|v| python_line(&json!({ "return": v }))),
    };
    Outcome::Reply(result.unwrap_or_else(|e| {
        debug!("exception for {}: {e}", ctx.host);
        python_line(&json!({ "exception": e }))
    }))
}

/// The request's command, `args` and `kwargs`, or `None` where the real
/// server disconnects: not UTF-8, not JSON, not an object, no command or not
/// a known one, `args` not a list, `kwargs` not an object.
fn parse(line: &[u8]) -> Option<(&'static Signature, Vec<Value>, Map<String, Value>)> {
    let text = std::str::from_utf8(line).ok()?;
    let Value::Object(mut obj) = serde_json::from_str(text).ok()? else {
        return None;
    };
    let Some(Value::String(name)) = obj.get("command") else {
        return None;
    };
    let command = COMMANDS.iter().find(|c| c.name == name)?;
    let args = match obj.shift_remove("args") {
        None => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return None,
    };
    let mut kwargs = match obj.shift_remove("kwargs") {
        None => Map::new(),
        Some(Value::Object(k)) => k,
        Some(_) => return None,
    };
    // The name is reserved; the server drops it.
    kwargs.shift_remove("client");
    Some((command, args, kwargs))
}

fn qualname(s: &Signature) -> String {
    format!("SpallocServer.{}", s.name)
}

/// Arguments bound to a signature's named parameters (after `self` and
/// the client, or after `self` for the allocator), plus what `*args` and
/// `**kwargs` collect.
struct Bound<'a> {
    named: Vec<Option<&'a Value>>,
    extra_kwargs: Map<String, Value>,
}

/// Binds `args` and `kwargs` as CPython binds a call, with its messages:
/// unexpected or repeated keywords first (in the order given), then too
/// many positional arguments, then missing ones. `self` and the client
/// count as positional arguments already given.
fn bind<'a>(
    qualname: &str,
    s: &Signature,
    args: &'a [Value],
    kwargs: &'a Map<String, Value>,
) -> Result<Bound<'a>, String> {
    let given_first = if s.name == "_alloc_type" { 1 } else { 2 };
    let mut slots: Vec<Option<&Value>> = vec![None; s.params.len()];
    let positional = args.len() + given_first;
    for slot in slots.iter_mut().take(given_first) {
        *slot = Some(&Value::Null);
    }
    for (slot, v) in slots.iter_mut().skip(given_first).zip(args) {
        *slot = Some(v);
    }
    let mut extra_kwargs = Map::new();
    for (k, v) in kwargs {
        match s.params.iter().position(|p| p == k) {
            Some(i) if slots[i].is_some() => {
                return Err(format!(
                    "{qualname}() got multiple values for argument '{k}'"
                ));
            }
            Some(i) => slots[i] = Some(v),
            None if s.varkw => {
                extra_kwargs.insert(k.clone(), v.clone());
            }
            None => {
                return Err(format!(
                    "{qualname}() got an unexpected keyword argument '{k}'"
                ));
            }
        }
    }
    let count = s.params.len();
    if positional > count && !s.varargs {
        let takes = if s.defaults > 0 {
            format!(
                "from {} to {count} positional arguments",
                count - s.defaults
            )
        } else {
            format!(
                "{count} positional argument{}",
                if count == 1 { "" } else { "s" }
            )
        };
        return Err(format!(
            "{qualname}() takes {takes} but {positional} {} given",
            if positional == 1 { "was" } else { "were" }
        ));
    }
    let missing: Vec<String> = s.params[..count - s.defaults]
        .iter()
        .zip(&slots)
        .filter(|(_, v)| v.is_none())
        .map(|(p, _)| format!("'{p}'"))
        .collect();
    if !missing.is_empty() {
        let names = match &missing[..] {
            [one] => one.clone(),
            [a, b] => format!("{a} and {b}"),
            [init @ .., last] => format!("{}, and {last}", init.join(", ")),
            [] => String::new(),
        };
        return Err(format!(
            "{qualname}() missing {} required positional argument{}: {names}",
            missing.len(),
            if missing.len() == 1 { "" } else { "s" }
        ));
    }
    Ok(Bound {
        named: slots.split_off(given_first),
        extra_kwargs,
    })
}

/// Python's name for a value's type, as in its error messages.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

fn unhashable(v: &Value) -> Result<(), String> {
    match v {
        Value::Array(_) | Value::Object(_) => Err(format!("unhashable type: '{}'", type_name(v))),
        _ => Ok(()),
    }
}

/// An integer as a Python dictionary key sees it: `True` is 1 and `2.0` is
/// 2; other hashable values (strings, `None`, `2.5`) match no integer; a
/// list or dict cannot be a key.
fn int_key(v: &Value) -> Result<Option<i64>, String> {
    unhashable(v)?;
    Ok(match v {
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Some(i),
            #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(f as i64),
            _ => None,
        },
        _ => None,
    })
}

/// A job id as the server's job table looks it up.
fn job_key(v: &Value) -> Result<Option<u64>, String> {
    if let Some(u) = v.as_u64() {
        return Ok(Some(u));
    }
    Ok(int_key(v)?.and_then(|i| u64::try_from(i).ok()))
}

/// A machine name as the server's machine table looks it up.
fn name_key(v: &Value) -> Result<Option<&str>, String> {
    unhashable(v)?;
    Ok(v.as_str())
}

/// Python's truth value of a parsed value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Python's `float(v)`.
fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        Value::Number(n) => Ok(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => parse_python_float(s)
            .ok_or_else(|| format!("could not convert string to float: {}", python_repr(v))),
        other => Err(format!(
            "float() argument must be a string or a real number, not '{}'",
            type_name(other)
        )),
    }
}

/// What Python's `float()` accepts from a string: surrounding whitespace,
/// a sign, `inf`/`infinity`/`nan` in any case, digits with single
/// underscores between them.
fn parse_python_float(s: &str) -> Option<f64> {
    let t = s.trim();
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let lower = body.to_ascii_lowercase();
    let magnitude = match lower.as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => {
            let bytes = body.as_bytes();
            let bad_underscore = bytes.iter().enumerate().any(|(i, &b)| {
                b == b'_'
                    && !(i > 0
                        && bytes[i - 1].is_ascii_digit()
                        && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
            });
            if bad_underscore
                || body.is_empty()
                || !body.bytes().all(|b| {
                    b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-' | b'_')
                })
            {
                return None;
            }
            body.replace('_', "").parse::<f64>().ok()?
        }
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// An integer argument the server does arithmetic on. Our own check and
/// message: the real server fails later, with a Python `TypeError` from
/// deep inside, often after creating half a job.
fn int(name: &str, v: &Value) -> Result<i64, String> {
    if let Value::Bool(b) = v {
        return Ok(i64::from(*b));
    }
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
        return Err(format!(
            "{name} must be a whole number, not {}",
            python_float(f)
        ));
    }
    Err(format!("{name} must be an integer, not {}", python_repr(v)))
}

fn opt_int(name: &str, v: Option<&Value>) -> Result<Option<i64>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => int(name, v).map(Some),
    }
}

fn string<'v>(name: &str, v: &'v Value) -> Result<&'v str, String> {
    v.as_str()
        .ok_or_else(|| format!("{name} must be a string, not {}", python_repr(v)))
}

fn run(
    ctx: &mut Context<'_>,
    command: &Signature,
    args: &[Value],
    kwargs: &Map<String, Value>,
) -> Result<Value, String> {
    let qualname = qualname(command);
    let b = bind(&qualname, command, args, kwargs)?;
    let arg = |i: usize| b.named.get(i).copied().flatten().unwrap_or(&Value::Null);
    let (host, now) = (ctx.host, ctx.now);
    let ctl = &mut *ctx.controller;
    match command.name {
        "version" => Ok(Value::from(ctx.version)),
        "create_job" => {
            let new = parse_create_job(args, kwargs)?;
            // The Python server never refuses a job: one no machine could
            // run is destroyed at once instead.
            let id = ctl.create_job(new, host, now).unwrap_or_default();
            Ok(Value::from(id))
        }
        "job_keepalive" => {
            ctl.touch(job_key(arg(0))?, host, now);
            Ok(Value::Null)
        }
        "get_job_state" => {
            let id = job_key(arg(0))?;
            ctl.touch(id, host, now);
            Ok(job_state(ctl.job_status(id)))
        }
        "get_job_machine_info" => {
            let id = job_key(arg(0))?;
            ctl.touch(id, host, now);
            Ok(match ctl.machine_info(id) {
                MachineInfo::Allocated(a) => json!({
                    "width": a.width,
                    "height": a.height,
                    "connections": a.connections.iter()
                        .map(|((x, y), ip)| json!([[x, y], ip]))
                        .collect::<Vec<_>>(),
                    "machine_name": a.machine_name,
                    "boards": boards_json(a.boards),
                }),
                _ => json!({
                    "width": null, "height": null, "connections": null,
                    "machine_name": null, "boards": null,
                }),
            })
        }
        "power_on_job_boards" | "power_off_job_boards" => {
            let id = job_key(arg(0))?;
            if ctl.touch(id, host, now) == crate::server::state::Found::Live {
                ctl.power(id, command.name == "power_on_job_boards", now);
            }
            Ok(Value::Null)
        }
        "destroy_job" => {
            let id = job_key(arg(0))?;
            let reason = match arg(1) {
                Value::Null => None,
                v => Some(string("reason", v)?.to_owned()),
            };
            ctl.destroy_job(id, reason, now);
            Ok(Value::Null)
        }
        "notify_job" | "no_notify_job" => {
            let v = arg(0);
            let id = if v.is_null() {
                None
            } else {
                match job_key(v)? {
                    Some(id) => Some(id),
                    // A key no job has: watching it changes nothing.
                    None => return Ok(Value::Null),
                }
            };
            if command.name == "notify_job" {
                ctx.subscriptions.jobs.add(Dialect::Python, id);
            } else {
                ctx.subscriptions.jobs.remove(Dialect::Python, id);
            }
            Ok(Value::Null)
        }
        "notify_machine" | "no_notify_machine" => {
            let v = arg(0);
            let name = if v.is_null() {
                None
            } else {
                match name_key(v)? {
                    Some(name) => Some(name.to_owned()),
                    None => return Ok(Value::Null),
                }
            };
            if command.name == "notify_machine" {
                ctx.subscriptions.machines.add(Dialect::Python, name);
            } else {
                ctx.subscriptions.machines.remove(Dialect::Python, name);
            }
            Ok(Value::Null)
        }
        "list_machines" => Ok(Value::Array(
            ctl.list_machines()
                .into_iter()
                .map(|m| {
                    json!({
                        "name": m.name,
                        "tags": m.tags,
                        "width": m.width,
                        "height": m.height,
                        "dead_boards": boards_json(&m.dead_boards),
                        "dead_links": m.dead_links.iter()
                            .map(|&((x, y, z), l)| json!([x, y, z, l.index()]))
                            .collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )),
        "get_board_position" => {
            let Some(machine) = name_key(arg(0))? else {
                return Ok(Value::Null);
            };
            if !ctl.has_machine(machine) {
                return Ok(Value::Null);
            }
            let mut xyz = [0; 3];
            for (slot, i) in xyz.iter_mut().zip(1..) {
                match int_key(arg(i))? {
                    Some(v) => *slot = v,
                    None => return Ok(Value::Null),
                }
            }
            Ok(ctl
                .board_position(machine, xyz[0], xyz[1], xyz[2])
                .map_or(Value::Null, |(c, f, b)| json!([c, f, b])))
        }
        "get_board_at_position" => {
            let Some(machine) = name_key(arg(0))? else {
                return Ok(Value::Null);
            };
            // Compared with ==, not looked up: no value is unhashable here.
            let mut cfb = [0; 3];
            for (slot, i) in cfb.iter_mut().zip(1..) {
                match int_key(arg(i)).ok().flatten() {
                    Some(v) => *slot = v,
                    None => return Ok(Value::Null),
                }
            }
            Ok(ctl
                .board_at_position(machine, cfb[0], cfb[1], cfb[2])
                .map_or(Value::Null, |(x, y, z)| json!([x, y, z])))
        }
        "where_is" => {
            let Some(query) = parse_where_is(ctl, &b.extra_kwargs)? else {
                return Ok(Value::Null);
            };
            Ok(ctl.where_is(&query).map_or(Value::Null, |l| {
                json!({
                    "machine": l.machine,
                    "logical": [l.logical.0, l.logical.1, l.logical.2],
                    "physical": [l.physical.0, l.physical.1, l.physical.2],
                    "chip": [l.chip.0, l.chip.1],
                    "board_chip": [l.board_chip.0, l.board_chip.1],
                    "job_id": l.job.map(|(id, _)| id),
                    "job_chip": l.job.map(|(_, (x, y))| json!([x, y])),
                })
            }))
        }
        other => Err(format!("unknown command: {other}")),
    }
}

fn job_state(status: JobStatus<'_>) -> Value {
    match status {
        JobStatus::Live(j) => json!({
            "state": j.phase.number(),
            "power": j.power,
            "keepalive": j.keepalive,
            "reason": null,
            "start_time": j.start_time,
            "keepalivehost": j.keepalivehost,
        }),
        JobStatus::Destroyed(r) => json!({
            "state": 4,
            "power": null,
            "keepalive": null,
            "reason": r.reason,
            "start_time": null,
            "keepalivehost": null,
        }),
        JobStatus::Unknown => json!({
            "state": 0,
            "power": null,
            "keepalive": null,
            "reason": null,
            "start_time": null,
            "keepalivehost": null,
        }),
    }
}

fn boards_json(boards: &[(i32, i32, i32)]) -> Value {
    Value::Array(boards.iter().map(|&(x, y, z)| json!([x, y, z])).collect())
}

/// `create_job(*args, **kwargs)`, checked in the real server's order and
/// with its messages, but all before any job exists.
fn parse_create_job(args: &[Value], kwargs: &Map<String, Value>) -> Result<NewJob, String> {
    let tags = match kwargs.get("tags") {
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
                python_repr(v)
            ));
        }
    };
    let owner = match kwargs.get("owner") {
        None | Some(Value::Null) => return Err("owner must be specified for all jobs".to_owned()),
        Some(v) => python_str(v),
    };
    let keepalive = match kwargs.get("keepalive") {
        None => Keepalive::Default,
        Some(Value::Null) => Keepalive::Never,
        Some(v) => Keepalive::Seconds(to_float(v)?),
    };
    let machine = match kwargs.get("machine") {
        None | Some(Value::Null) => None,
        Some(v) => Some(string("machine", v)?.to_owned()),
    };
    if machine.is_some() && tags.is_some() {
        return Err("Only one of machine and tags may be specified for a job.".to_owned());
    }
    let rest = without(kwargs, &["owner", "keepalive", "machine", "tags"]);
    let alloc = bind("Allocator._alloc_type", &ALLOC_TYPE, args, &rest)?;
    let p = |i: usize| alloc.named.get(i).copied().flatten();
    let mut pos = Vec::new();
    for (i, name) in ["x", "y", "z"].into_iter().enumerate() {
        match p(i) {
            None | Some(Value::Null) => break,
            Some(v) => pos.push(int(name, v)?),
        }
    }
    let shape = match pos[..] {
        [] | [1] => Shape::AnyBoard,
        [n] => Shape::Boards(n),
        [w, h] => Shape::Triads(w, h),
        [x, y, z] => Shape::Board(x, y, z),
        _ => return Err("create_job() takes at most 3 board coordinates".to_owned()),
    };
    let max_dead_boards = opt_int("max_dead_boards", p(3))?;
    let max_dead_links = opt_int("max_dead_links", p(4))?;
    let require_torus = p(5).is_some_and(truthy);
    if require_torus && matches!(shape, Shape::AnyBoard | Shape::Board(..)) {
        return Err("require_torus must be False when allocating boards.".to_owned());
    }
    let min_ratio = match (&shape, p(6)) {
        (_, None) => 0.0,
        (Shape::Boards(_), Some(v)) => match v {
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Number(n) => n.as_f64().unwrap_or(0.0),
            other => {
                return Err(format!(
                    "'<' not supported between instances of '{}' and 'float'",
                    type_name(other)
                ));
            }
        },
        // Only a number of boards looks at the ratio.
        (_, Some(v)) => v.as_f64().unwrap_or(0.0),
    };
    if min_ratio < 0.0 && matches!(shape, Shape::Boards(n) if n > 0) {
        return Err("Aspect ratio cannot be negative.".to_owned());
    }
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
        machine,
        tags,
        echo: crate::server::state::Echo {
            args: args.to_vec(),
            kwargs: without(kwargs, &["owner", "keepalive"]),
        },
        v2_request: None,
    })
}

/// `where_is`: the form from the exact set of keys; `None` (the reply
/// `null`) when the machine or job named does not exist, which the real
/// server finds out before it looks at the coordinates.
fn parse_where_is(ctl: &Controller, kw: &Map<String, Value>) -> Result<Option<WhereIs>, String> {
    let mut keys: Vec<&str> = kw.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let get = |k: &str| kw.get(k).unwrap_or(&Value::Null);
    let i = |k: &str| int(k, get(k));
    let machine = || -> Result<Option<String>, String> {
        Ok(name_key(get("machine"))?
            .filter(|m| ctl.has_machine(m))
            .map(str::to_owned))
    };
    let query = match keys[..] {
        ["machine", "x", "y", "z"] => machine()?.map(|machine| -> Result<_, String> {
            Ok(WhereIs::Logical {
                machine,
                x: i("x")?,
                y: i("y")?,
                z: i("z")?,
            })
        }),
        ["board", "cabinet", "frame", "machine"] => machine()?.map(|machine| {
            Ok(WhereIs::Physical {
                machine,
                cabinet: i("cabinet")?,
                frame: i("frame")?,
                board: i("board")?,
            })
        }),
        ["chip_x", "chip_y", "machine"] => machine()?.map(|machine| {
            Ok(WhereIs::Chip {
                machine,
                x: i("chip_x")?,
                y: i("chip_y")?,
            })
        }),
        ["chip_x", "chip_y", "job_id"] => {
            let id = job_key(get("job_id"))?;
            match ctl.machine_info(id) {
                MachineInfo::Allocated(_) => Some(Ok(WhereIs::JobChip {
                    job_id: id,
                    x: i("chip_x")?,
                    y: i("chip_y")?,
                })),
                _ => None,
            }
        }
        _ => return Err(format!("Invalid arguments: {}", keys.join(", "))),
    };
    query.transpose()
}

/// `list_jobs`' reply, written field by field in the form [`python_line`]
/// gives.
///
/// With a thousand jobs this is most of the time the shared state stays
/// locked for, and general serialisation spent it mostly on escaping the
/// same eleven keys over and over: here the keys are constant bytes, plain
/// ASCII strings are copied as they are, and only numbers and the rest go
/// through `serde_json` (with the same formatter).
fn encode_jobs_reply(rows: &[JobRow<'_>]) -> String {
    let mut out = Vec::with_capacity(rows.len() * 512 + 16);
    out.extend_from_slice(b"{\"return\": ");
    out.push(b'[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        encode_job(&mut out, row);
    }
    out.push(b']');
    out.extend_from_slice(b"}\n");
    // Everything written is ASCII, as `PythonStyle` escapes the rest.
    String::from_utf8(out).unwrap_or_default()
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
    python_value(&mut out, &row.start_time);
    out.extend_from_slice(b", \"keepalive\": ");
    python_value(&mut out, &row.keepalive);
    let split = out.len();
    out.extend_from_slice(b", \"args\": ");
    encode_list(&mut out, &row.echo.args);
    out.extend_from_slice(b", \"kwargs\": ");
    encode_object(&mut out, &row.echo.kwargs);
    let request = out.split_off(split);
    // Everything written is ASCII, as `PythonStyle` escapes the rest.
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap_or_default().into();
    (text(out), text(request))
}

/// A value as [`python_line`] writes it, with the fast path of
/// [`encode_str`] for every string in it, keys included. (Parsed requests
/// nest at most 128 deep, so the recursion is bounded.)
fn encode_json(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            // Writing into a `Vec` cannot fail.
            (Some(u), _) => drop(PythonStyle.write_u64(out, u)),
            (None, Some(i)) => drop(PythonStyle.write_i64(out, i)),
            _ => python_value(out, n),
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
        python_value(out, s);
    }
}

/// The general encoder's form of a row, which the fast one must match.
#[cfg(test)]
fn derived_row(row: &JobRow<'_>) -> Value {
    json!({
        "job_id": row.job_id,
        "owner": row.owner,
        "start_time": row.start_time,
        "keepalive": row.keepalive,
        "state": row.state,
        "power": row.power,
        "args": row.echo.args,
        "kwargs": row.echo.kwargs,
        "allocated_machine_name": row.allocated_machine_name,
        "boards": row.boards.map(boards_json),
        "keepalivehost": row.keepalivehost,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::state::Echo;
    use std::cell::OnceCell;

    #[test]
    fn job_rows_encode_as_the_general_encoder_does() {
        let args = vec![json!(2), json!("x\u{e9}"), json!([1.5, null])];
        let Value::Object(kwargs) = json!({
            "machine": "m\"q\\", "t\u{1F600}": [true, false], "r": 0.333, "n": -3,
            "big": u64::MAX, "e": 1e300, "o": {"k": null}, "i": 7
        }) else {
            panic!("not an object");
        };
        let echoes = [Echo::default(), Echo { args, kwargs }, Echo::default()];
        let boards = [(0, 0, 0), (-1, 7, 2), (i32::MAX, i32::MIN, 1)];
        let fixed: [OnceCell<FixedParts>; 3] = Default::default();
        let rows = [
            JobRow {
                job_id: 1,
                owner: "filler",
                start_time: 1_795_470_705.607_107_2,
                keepalive: None,
                state: 3,
                power: Some(true),
                echo: &echoes[0],
                allocated_machine_name: Some("big"),
                bound_machine_name: None,
                boards: Some(&boards[..1]),
                keepalivehost: "127.0.0.1",
                fixed: &fixed[0],
            },
            JobRow {
                job_id: u64::MAX,
                owner: "caf\u{e9} \"quoted\" back\\slash\ttab\u{7f}",
                start_time: 5.0,
                keepalive: Some(60.0),
                state: 1,
                power: None,
                echo: &echoes[1],
                allocated_machine_name: None,
                bound_machine_name: None,
                boards: None,
                keepalivehost: "",
                fixed: &fixed[1],
            },
            JobRow {
                job_id: 0,
                owner: "",
                start_time: 1e20,
                keepalive: Some(5.5),
                state: 2,
                power: Some(false),
                echo: &echoes[2],
                allocated_machine_name: Some("\u{1F600}"),
                bound_machine_name: None,
                boards: Some(&boards),
                keepalivehost: "::1\n",
                fixed: &fixed[2],
            },
        ];
        let line = |rows: &[JobRow<'_>]| {
            let v: Vec<Value> = rows.iter().map(derived_row).collect();
            python_line(&json!({ "return": v }))
        };
        assert_eq!(encode_jobs_reply(&rows), line(&rows));
        // Again, from the parts kept the first time.
        assert!(fixed.iter().all(|f| f.get().is_some()));
        assert_eq!(encode_jobs_reply(&rows), line(&rows));
        assert_eq!(encode_jobs_reply(&rows[..1]), line(&rows[..1]));
        assert_eq!(encode_jobs_reply(&[]), "{\"return\": []}\n");
    }

    fn bind_err(s: &Signature, args: Value, kwargs: Value) -> String {
        let (Value::Array(args), Value::Object(kwargs)) = (args, kwargs) else {
            panic!("bad test input");
        };
        let name = if s.name == "_alloc_type" {
            "Allocator._alloc_type".to_owned()
        } else {
            qualname(s)
        };
        match bind(&name, s, &args, &kwargs) {
            Err(e) => e,
            Ok(_) => "bound".to_owned(),
        }
    }

    fn command(name: &str) -> &'static Signature {
        COMMANDS.iter().find(|c| c.name == name).expect("a command")
    }

    /// The messages CPython gives for each way a call can go wrong.
    #[test]
    fn binding_like_cpython() {
        let cases = [
            (
                "version",
                json!([1]),
                json!({}),
                "SpallocServer.version() takes 2 positional arguments but 3 were given",
            ),
            (
                "get_job_state",
                json!([]),
                json!({}),
                "SpallocServer.get_job_state() missing 1 required positional argument: 'job_id'",
            ),
            (
                "get_job_state",
                json!([1, 2]),
                json!({}),
                "SpallocServer.get_job_state() takes 3 positional arguments but 4 were given",
            ),
            (
                "get_job_state",
                json!([]),
                json!({"jobid": 1}),
                "SpallocServer.get_job_state() got an unexpected keyword argument 'jobid'",
            ),
            (
                "get_job_state",
                json!([1]),
                json!({"job_id": 1}),
                "SpallocServer.get_job_state() got multiple values for argument 'job_id'",
            ),
            (
                "destroy_job",
                json!([1, 2, 3]),
                json!({}),
                "SpallocServer.destroy_job() takes from 3 to 4 positional arguments but 5 were given",
            ),
            (
                "get_board_position",
                json!(["m", 0]),
                json!({}),
                "SpallocServer.get_board_position() missing 2 required positional arguments: 'y' and 'z'",
            ),
            (
                "get_board_position",
                json!([]),
                json!({}),
                "SpallocServer.get_board_position() missing 4 required positional arguments: 'machine_name', 'x', 'y', and 'z'",
            ),
            (
                "where_is",
                json!([1]),
                json!({}),
                "SpallocServer.where_is() takes 2 positional arguments but 3 were given",
            ),
            (
                "where_is",
                json!([]),
                json!({"self": 1}),
                "SpallocServer.where_is() got multiple values for argument 'self'",
            ),
            (
                "notify_job",
                json!([1, 2]),
                json!({}),
                "SpallocServer.notify_job() takes from 2 to 3 positional arguments but 4 were given",
            ),
            (
                "job_keepalive",
                json!([]),
                json!({"x": 1}),
                "SpallocServer.job_keepalive() got an unexpected keyword argument 'x'",
            ),
            // Keywords are checked before the positional count.
            (
                "version",
                json!([1]),
                json!({"x": 1}),
                "SpallocServer.version() got an unexpected keyword argument 'x'",
            ),
        ];
        for (name, args, kwargs, want) in cases {
            assert_eq!(bind_err(command(name), args, kwargs), want);
        }
        assert_eq!(
            bind_err(&ALLOC_TYPE, json!([1, 2, 3, 4, 5, 6, 7, 8]), json!({})),
            "Allocator._alloc_type() takes from 1 to 8 positional arguments but 9 were given"
        );
        assert_eq!(
            bind_err(
                &ALLOC_TYPE,
                json!([1, 1, 1, 1]),
                json!({"max_dead_boards": 1})
            ),
            "Allocator._alloc_type() got multiple values for argument 'max_dead_boards'"
        );
    }

    #[test]
    fn python_floats_from_strings() {
        assert_eq!(parse_python_float(" 30 "), Some(30.0));
        assert_eq!(parse_python_float("1_000.5"), Some(1000.5));
        assert_eq!(parse_python_float("-inf"), Some(f64::NEG_INFINITY));
        assert!(parse_python_float("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_python_float("1e3"), Some(1000.0));
        for bad in ["x", "", "1__0", "_1", "0x10", "1.5.5"] {
            assert_eq!(parse_python_float(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn dictionary_keys_like_python() {
        assert_eq!(job_key(&json!(true)), Ok(Some(1)));
        assert_eq!(job_key(&json!(1.0)), Ok(Some(1)));
        assert_eq!(job_key(&json!(1.5)), Ok(None));
        assert_eq!(job_key(&json!("1")), Ok(None));
        assert_eq!(job_key(&json!(-1)), Ok(None));
        assert_eq!(job_key(&json!(u64::MAX)), Ok(Some(u64::MAX)));
        assert_eq!(
            job_key(&json!([1])),
            Err("unhashable type: 'list'".to_owned())
        );
        assert_eq!(
            job_key(&json!({})),
            Err("unhashable type: 'dict'".to_owned())
        );
    }
}
