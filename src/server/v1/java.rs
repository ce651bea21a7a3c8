//! The Java server's v1 compatibility service's dialect.
//!
//! Requests are read as that service reads them: invalid UTF-8 is replaced,
//! a blank line, `null` or an object without a `command` ends the
//! connection, other bad JSON gets an exception (in the style of Jackson's
//! messages) and the connection carries on, and unknown fields are ignored.
//! Each command reads its arguments by hand: job ids and the `notify_*`
//! arguments only by position, `reason`, `where_is` and the board lookups
//! only by keyword, numbers through the service's `parseDec` (a number is
//! truncated, a decimal string parsed, a negative one refused); arguments
//! a command does not use are ignored. "Not found" is an exception (`no
//! such job`, `boards not allocated`, …), never `null`. Replies are
//! Jackson's compact JSON with Java's number formatting and `\r\n`.

use log::{debug, info};
use serde_json::{Map, Number, Value, json};

use super::json::{java_class, java_line, java_to_string};
use super::{Context, Outcome};
use crate::server::Dialect;
use crate::server::allocator::{Request, Shape};
use crate::server::geometry::{Link, neighbour};
use crate::server::state::{
    Echo, Found, JobRow, JobStatus, Keepalive, MachineInfo, Miss, NewJob, PowerOutcome, Refusal,
    WhereIs,
};

/// Handles one line (without its line end).
pub(crate) fn handle_line(ctx: &mut Context<'_>, line: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(line);
    if is_blank(&text) {
        return Outcome::Close;
    }
    let command = match parse(&text) {
        Ok(Some(c)) => c,
        // The service treats these as the end of the conversation.
        Ok(None) => {
            debug!("{} sent no command; disconnecting it", ctx.host);
            return Outcome::Close;
        }
        Err(e) => return Outcome::Reply(exception(&e)),
    };
    let reply = match run(ctx, &command) {
        Ok(v) => java_line(&json!({ "return": v })),
        Err(e) => {
            debug!("exception for {}: {e}", ctx.host);
            exception(&e)
        }
    };
    Outcome::Reply(reply)
}

fn exception(message: &str) -> String {
    java_line(&json!({ "exception": message }))
}

/// Java's `String.isBlank`: empty or only white space (which in Java
/// excludes the no-break spaces and includes the four separator controls).
fn is_blank(s: &str) -> bool {
    s.chars().all(|c| {
        matches!(c, '\u{1c}'..='\u{1f}')
            || (c.is_whitespace() && !matches!(c, '\u{a0}' | '\u{2007}' | '\u{202f}'))
    })
}

/// A parsed request.
struct Command {
    name: String,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
}

/// Jackson's name for the JSON token a value starts with, and the shape it
/// reports.
fn token(v: &Value) -> (&'static str, &'static str) {
    match v {
        Value::Null => ("VALUE_NULL", "Null"),
        Value::Bool(true) => ("VALUE_TRUE", "Boolean"),
        Value::Bool(false) => ("VALUE_FALSE", "Boolean"),
        Value::Number(n) if n.is_f64() => ("VALUE_NUMBER_FLOAT", "Floating-point"),
        Value::Number(_) => ("VALUE_NUMBER_INT", "Integer"),
        Value::String(_) => ("VALUE_STRING", "String"),
        Value::Array(_) => ("START_ARRAY", "Array"),
        Value::Object(_) => ("START_OBJECT", "Object"),
    }
}

fn cannot_deserialize(java_type: &str, v: &Value) -> String {
    let (token, shape) = token(v);
    format!(
        "Cannot deserialize value of type `{java_type}` from {shape} value (token `JsonToken.{token}`)"
    )
}

const COMMAND_CLASS: &str = "uk.ac.manchester.spinnaker.alloc.compat.Command";

/// Reads a request as Jackson reads it into the service's `Command`:
/// `Ok(None)` when there is no command (the service then hangs up), an
/// error message (Jackson's, approximately) when the JSON is bad.
fn parse(text: &str) -> Result<Option<Command>, String> {
    // Jackson reads one value and ignores whatever follows it.
    let first = serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .next();
    let value = match first {
        None => return Ok(None),
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(jackson_parse_error(text, &e)),
    };
    let obj = match value {
        Value::Null => return Ok(None),
        Value::Object(obj) => obj,
        Value::Array(_) => return Err(cannot_deserialize(COMMAND_CLASS, &value)),
        scalar => {
            let (what, shown) = match &scalar {
                Value::String(s) => ("String", format!("'{s}'")),
                Value::Bool(b) => ("boolean/Boolean", b.to_string()),
                Value::Number(n) if n.is_f64() => ("double/Double", n.to_string()),
                other => ("int/Int", other.to_string()),
            };
            let shape = token(&scalar).1;
            return Err(format!(
                "Cannot construct instance of `{COMMAND_CLASS}` (although at least one Creator exists): \
                 no {what}-argument constructor/factory method to deserialize from {shape} value ({shown})"
            ));
        }
    };
    let mut name = None;
    let mut args = Vec::new();
    let mut kwargs = Map::new();
    // Properties are set in the order they appear; the first bad one fails.
    for (key, v) in obj {
        let chain = format!(" (through reference chain: {COMMAND_CLASS}[\"{key}\"])");
        match key.as_str() {
            "command" => {
                name = match v {
                    Value::Null => None,
                    Value::String(s) => Some(s),
                    // Scalars are coerced to text.
                    Value::Bool(b) => Some(b.to_string()),
                    Value::Number(n) => Some(java_to_string(&Value::Number(n))),
                    other => return Err(cannot_deserialize("java.lang.String", &other) + &chain),
                };
            }
            "args" => {
                args = match v {
                    Value::Array(a) => a,
                    Value::Null => {
                        return Err(format!(
                            "Cannot invoke \"java.util.Collection.toArray()\" because \"c\" is null{chain}"
                        ));
                    }
                    other => {
                        return Err(cannot_deserialize(
                            "java.util.ArrayList<java.lang.Object>",
                            &other,
                        ) + &chain);
                    }
                };
            }
            "kwargs" => {
                kwargs = match v {
                    Value::Object(k) => k,
                    Value::Null => {
                        return Err(format!(
                            "Cannot invoke \"java.util.Map.size()\" because \"m\" is null{chain}"
                        ));
                    }
                    other => {
                        return Err(cannot_deserialize(
                            "java.util.LinkedHashMap<java.lang.String,java.lang.Object>",
                            &other,
                        ) + &chain);
                    }
                };
            }
            _ => {}
        }
    }
    Ok(name.map(|name| Command { name, args, kwargs }))
}

/// A JSON syntax error in the style of Jackson's.
fn jackson_parse_error(text: &str, e: &serde_json::Error) -> String {
    let at = format!(
        "\n at [Source: (String)\"{}\"; line: {}, column: {}]",
        text.chars().take(500).collect::<String>(),
        e.line(),
        e.column()
    );
    if e.is_eof() {
        return format!("Unexpected end-of-input{at}");
    }
    let offset = text
        .lines()
        .take(e.line().saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum::<usize>()
        + e.column().saturating_sub(1);
    let offset = (0..=offset.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let start = text[..offset]
        .char_indices()
        .rev()
        .take_while(|&(_, c)| word(c))
        .last()
        .map_or(offset, |(i, _)| i);
    let end = text[offset..]
        .char_indices()
        .find(|&(_, c)| !word(c))
        .map_or(text.len(), |(i, _)| offset + i);
    let expected = "(JSON String, Number, Array, Object or token 'null', 'true' or 'false')";
    if start < end {
        return format!(
            "Unrecognized token '{}': was expecting {expected}{at}",
            &text[start..end]
        );
    }
    match text[offset..].chars().next() {
        Some(c) => format!(
            "Unexpected character ('{c}' (code {})): expected a valid value {expected}{at}",
            c as u32
        ),
        None => format!("{e}{at}"),
    }
}

// ----- reading arguments as the service does -----

const NULL_PARSE_DEC: &str = "Cannot invoke \"java.lang.Integer.intValue()\" because the return \
     value of \"uk.ac.manchester.spinnaker.alloc.compat.Utils.parseDec(Object)\" is null";

fn arg(args: &[Value], i: usize) -> Result<&Value, String> {
    args.get(i)
        .ok_or_else(|| format!("missing argument at index {i}"))
}

fn kwarg<'a>(kwargs: &'a Map<String, Value>, key: &str) -> Result<&'a Value, String> {
    kwargs
        .get(key)
        .ok_or_else(|| format!("missing keyword argument: {key}"))
}

/// The service's `parseDec`: `None` for `null`, a number's `intValue()`, a
/// decimal string's value; negative values are refused.
fn parse_dec(v: &Value) -> Result<Option<i32>, String> {
    let n = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => int_value(n),
        Value::String(s) => parse_int(s)?,
        other => {
            return Err(format!(
                "needed a number, got a {}",
                java_class(other).unwrap_or("null")
            ));
        }
    };
    if n < 0 {
        return Err("negative values not supported".to_owned());
    }
    Ok(Some(n))
}

/// `parseDec` where an `int` is needed: `null` fails on unboxing.
fn dec(v: &Value) -> Result<i32, String> {
    parse_dec(v)?.ok_or_else(|| NULL_PARSE_DEC.to_owned())
}

/// `Number.intValue()` of the number Jackson made of `n`: an `Integer`, a
/// `Long` or `BigInteger` cut to its low 32 bits, a `Double` truncated
/// (saturating, NaN as 0).
fn int_value(n: &Number) -> i32 {
    #[allow(clippy::cast_possible_truncation)]
    match (n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(i), _, _) => i as i32,
        (None, Some(u), _) => u as i32,
        (_, _, Some(f)) => f as i32,
        _ => 0,
    }
}

/// `Integer.parseInt(s)`.
fn parse_int(s: &str) -> Result<i32, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("For input string: \"{s}\""));
    }
    s.parse::<i32>()
        .map_err(|_| format!("For input string: \"{s}\""))
}

fn class_cast(v: &Value, to: &str) -> String {
    let from = java_class(v).unwrap_or("null");
    format!(
        "class {from} cannot be cast to class {to} ({from} and {to} are in module java.base of loader 'bootstrap')"
    )
}

/// `(String) value`.
fn cast_string(v: Option<&Value>) -> Result<Option<&str>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(class_cast(other, "java.lang.String")),
    }
}

fn job(v: i32) -> Option<u64> {
    u64::try_from(v).ok()
}

/// `getJob`: the id of an existing (live or destroyed) job.
fn existing(ctx: &Context<'_>, id: i32) -> Result<Option<u64>, String> {
    let id = job(id);
    match ctx.controller.find(id) {
        Found::Unknown => Err("no such job".to_owned()),
        _ => Ok(id),
    }
}

fn machine<'a>(ctx: &Context<'_>, name: Option<&'a str>) -> Result<&'a str, String> {
    match name {
        Some(n) if ctx.controller.has_machine(n) => Ok(n),
        _ => Err("no such machine".to_owned()),
    }
}

fn run(ctx: &mut Context<'_>, c: &Command) -> Result<Value, String> {
    let (args, kwargs) = (&c.args[..], &c.kwargs);
    let (host, now) = (ctx.host, ctx.now);
    match c.name.as_str() {
        "create_job" => create_job(ctx, c),
        "destroy_job" => {
            let id = dec(arg(args, 0)?)?;
            let reason = cast_string(kwargs.get("reason"))?.map(str::to_owned);
            let id = existing(ctx, id)?;
            ctx.controller.destroy_job(id, reason, now);
            Ok(Value::Null)
        }
        "get_board_at_position" | "get_board_position" => {
            let name = cast_string(kwargs.get("machine_name"))?;
            let x = dec(kwarg(kwargs, "x")?)?;
            let y = dec(kwarg(kwargs, "y")?)?;
            let z = dec(kwarg(kwargs, "z")?)?;
            let m = machine(ctx, name)?;
            let (x, y, z) = (i64::from(x), i64::from(y), i64::from(z));
            let found = if c.name == "get_board_position" {
                ctx.controller
                    .board_position(m, x, y, z)
                    .map(|(c, f, b)| json!([c, f, b]))
            } else {
                ctx.controller
                    .board_at_position(m, x, y, z)
                    .map(|(x, y, z)| json!([x, y, z]))
            };
            found.map_err(|_| "no such board".to_owned())
        }
        "get_job_machine_info" => {
            let id = existing(ctx, dec(arg(args, 0)?)?)?;
            ctx.controller.touch(id, host, now);
            match ctx.controller.machine_info(id) {
                MachineInfo::Allocated(a) => Ok(json!({
                    "width": a.width,
                    "height": a.height,
                    "connections": a.connections.iter()
                        .map(|((x, y), ip)| json!([[x, y], ip]))
                        .collect::<Vec<_>>(),
                    "machine_name": a.machine_name,
                    "boards": boards_json(a.boards),
                })),
                MachineInfo::NoBoards => Err("boards not allocated".to_owned()),
                MachineInfo::Unknown => Err("no such job".to_owned()),
            }
        }
        "get_job_state" => {
            let id = existing(ctx, dec(arg(args, 0)?)?)?;
            ctx.controller.touch(id, host, now);
            job_state(ctx.controller.job_status(id))
        }
        "job_keepalive" => {
            let id = existing(ctx, dec(arg(args, 0)?)?)?;
            ctx.controller.touch(id, host, now);
            Ok(Value::Null)
        }
        "list_jobs" => Ok(Value::Array(
            ctx.controller.list_jobs().iter().map(job_row).collect(),
        )),
        "list_machines" => Ok(list_machines(ctx)),
        "notify_job" | "no_notify_job" => {
            let id = match args.first() {
                None => None,
                Some(v) => {
                    let id = existing(ctx, dec(v)?)?;
                    ctx.controller.touch(id, host, now);
                    id
                }
            };
            if c.name == "notify_job" {
                ctx.subscriptions.jobs.add(Dialect::Java, id);
            } else {
                ctx.subscriptions.jobs.remove(Dialect::Java, id);
            }
            Ok(Value::Null)
        }
        "notify_machine" | "no_notify_machine" => {
            let name = match args.first() {
                None | Some(Value::Null) => None,
                Some(v) => {
                    let name = java_to_string(v);
                    machine(ctx, Some(&name))?;
                    Some(name)
                }
            };
            if c.name == "notify_machine" {
                ctx.subscriptions.machines.add(Dialect::Java, name);
            } else {
                ctx.subscriptions.machines.remove(Dialect::Java, name);
            }
            Ok(Value::Null)
        }
        "power_off_job_boards" | "power_on_job_boards" => {
            let id = existing(ctx, dec(arg(args, 0)?)?)?;
            ctx.controller.touch(id, host, now);
            match ctx
                .controller
                .power(id, c.name == "power_on_job_boards", now)
            {
                PowerOutcome::Started => Ok(Value::Null),
                PowerOutcome::NoBoards => Err("no boards currently allocated".to_owned()),
                PowerOutcome::Unknown => Err("no such job".to_owned()),
            }
        }
        "version" => Ok(Value::from(ctx.version)),
        "where_is" => where_is(ctx, kwargs),
        "report_problem" => {
            let ip = match args.first() {
                None => {
                    return Err(format!("Index 0 out of bounds for length {}", args.len()));
                }
                Some(Value::Null) => {
                    return Err(
                        "Cannot invoke \"Object.toString()\" because the return value of \
                                \"java.util.List.get(int)\" is null"
                            .to_owned(),
                    );
                }
                Some(v) => java_to_string(v),
            };
            let (mut x, mut y, mut p) = (None, None, None);
            if kwargs.contains_key("x") {
                x = Some(dec(kwarg(kwargs, "x")?)?);
                y = Some(dec(kwarg(kwargs, "y")?)?);
                if kwargs.contains_key("p") {
                    p = Some(dec(kwarg(kwargs, "p")?)?);
                }
            }
            let description = match kwargs.get("description") {
                Some(v) => java_to_string(v),
                None => "It doesn't work and I don't know why.".to_owned(),
            };
            info!(
                "problem reported by {host} for board {ip} (chip {x:?},{y:?} core {p:?}): {description}"
            );
            Ok(Value::Null)
        }
        "login" => Err("upgrading security is not supported".to_owned()),
        other => Err(format!("unknown command: {other}")),
    }
}

fn boards_json(boards: &[(i32, i32, i32)]) -> Value {
    Value::Array(boards.iter().map(|&(x, y, z)| json!([x, y, z])).collect())
}

/// Whole Unix seconds, as the service's database keeps times.
fn seconds(t: f64) -> f64 {
    t.floor()
}

/// `get_job_state`, in the order Jackson writes the service's `JobState`.
fn job_state(status: JobStatus<'_>) -> Result<Value, String> {
    let mut out = Map::new();
    let (state, power, start, reason, host, keepalive) = match status {
        JobStatus::Live(j) => (
            j.phase.number(),
            j.power.unwrap_or(false),
            j.start_time,
            "",
            j.keepalivehost,
            j.last_keepalive,
        ),
        JobStatus::Destroyed(r) => (
            4,
            false,
            r.start_time,
            r.reason.as_deref().unwrap_or(""),
            r.keepalivehost.as_str(),
            r.last_keepalive,
        ),
        JobStatus::Unknown => return Err("no such job".to_owned()),
    };
    out.insert("state".into(), json!(state));
    out.insert("power".into(), json!(power));
    out.insert("start_time".into(), json!(seconds(start)));
    out.insert("reason".into(), json!(reason));
    out.insert("keepalivehost".into(), json!(host));
    // The time of the last keepalive, not the interval.
    out.insert("keepalive".into(), json!(seconds(keepalive)));
    Ok(Value::Object(out))
}

/// One `list_jobs` entry, in the order Jackson writes the service's
/// `JobDescription` (properties renamed by annotation come last).
fn job_row(row: &JobRow<'_>) -> Value {
    let mut out = Map::new();
    let owner = row
        .echo
        .kwargs
        .get("owner")
        .filter(|v| !v.is_null())
        .map_or_else(|| row.owner.to_owned(), java_to_string);
    out.insert("owner".into(), json!(owner));
    out.insert("state".into(), json!(row.state));
    // True only when every allocated board is on.
    let powered = row.boards.is_some() && row.power == Some(true);
    out.insert("power".into(), json!(powered));
    out.insert("reason".into(), json!(""));
    out.insert("args".into(), Value::Array(row.echo.args.clone()));
    out.insert("kwargs".into(), Value::Object(row.echo.kwargs.clone()));
    out.insert("boards".into(), boards_json(row.boards.unwrap_or_default()));
    out.insert("job_id".into(), json!(row.job_id));
    out.insert("start_time".into(), json!(seconds(row.start_time)));
    // Whole seconds of the interval.
    let keepalive = row
        .keepalive
        .map_or(0.0, |k| if k.is_finite() { k.trunc() } else { k });
    out.insert("keepalive".into(), json!(keepalive));
    out.insert(
        "allocated_machine_name".into(),
        json!(row.allocated_machine_name.or(row.bound_machine_name)),
    );
    out.insert("keepalivehost".into(), json!(row.keepalivehost));
    Value::Object(out)
}

/// The service's board directions, numbered 0 to 5: N, E, SE, S, W, NW.
/// Its dead links join two boards and are listed from both ends.
fn direction(link: Link) -> u8 {
    match link {
        Link::North => 0,
        Link::NorthEast => 1,
        Link::East => 2,
        Link::South => 3,
        Link::SouthWest => 4,
        Link::West => 5,
    }
}

fn list_machines(ctx: &Context<'_>) -> Value {
    Value::Array(
        ctx.controller
            .list_machines()
            .into_iter()
            .map(|m| {
                let mut links = std::collections::BTreeSet::new();
                let mut dead_links = Vec::new();
                for (b, l) in &m.dead_links {
                    let (other, _) = neighbour(*b, *l, m.width, m.height);
                    let back = l.opposite();
                    // One link, however many of its ends are listed.
                    if links.insert((*b, *l)) && links.insert((other, back)) {
                        dead_links.push(json!([b.0, b.1, b.2, direction(*l)]));
                        dead_links.push(json!([other.0, other.1, other.2, direction(back)]));
                    }
                }
                json!({
                    "name": m.name,
                    "tags": m.tags,
                    "width": m.width,
                    "height": m.height,
                    "dead_boards": boards_json(&m.dead_boards),
                    "dead_links": dead_links,
                })
            })
            .collect(),
    )
}

/// `where_is`: the form is chosen by the keys present (`job_id`, else
/// `machine` with `chip_x`, `x` or `cabinet`); other keys are ignored.
fn where_is(ctx: &mut Context<'_>, kwargs: &Map<String, Value>) -> Result<Value, String> {
    let (host, now) = (ctx.host, ctx.now);
    let query = if kwargs.contains_key("job_id") {
        let id = dec(kwarg(kwargs, "job_id")?)?;
        let x = dec(kwarg(kwargs, "chip_x")?)?;
        let y = dec(kwarg(kwargs, "chip_y")?)?;
        let id = existing(ctx, id)?;
        ctx.controller.touch(id, host, now);
        WhereIs::JobChip {
            job_id: id,
            x: i64::from(x),
            y: i64::from(y),
        }
    } else {
        if !kwargs.contains_key("machine") {
            return Err("missing parameter: machine".to_owned());
        }
        let name = cast_string(kwargs.get("machine"))?;
        let ints = |keys: [&str; 3]| -> Result<[i64; 3], String> {
            let mut out = [0; 3];
            for (slot, k) in out.iter_mut().zip(keys) {
                *slot = i64::from(dec(kwarg(kwargs, k)?)?);
            }
            Ok(out)
        };
        if kwargs.contains_key("chip_x") {
            let x = dec(kwarg(kwargs, "chip_x")?)?;
            let y = dec(kwarg(kwargs, "chip_y")?)?;
            WhereIs::Chip {
                machine: machine(ctx, name)?.to_owned(),
                x: i64::from(x),
                y: i64::from(y),
            }
        } else if kwargs.contains_key("x") {
            let [x, y, z] = ints(["x", "y", "z"])?;
            WhereIs::Logical {
                machine: machine(ctx, name)?.to_owned(),
                x,
                y,
                z,
            }
        } else if kwargs.contains_key("cabinet") {
            let [cabinet, frame, board] = ints(["cabinet", "frame", "board"])?;
            WhereIs::Physical {
                machine: machine(ctx, name)?.to_owned(),
                cabinet,
                frame,
                board,
            }
        } else {
            return Err("missing parameter: chip_x, x, or cabinet".to_owned());
        }
    };
    match ctx.controller.where_is(&query) {
        Ok(l) => {
            // The order Jackson writes the service's `WhereIs`.
            let mut out = Map::new();
            out.insert("job_chip".into(), json!(l.job.map(|(_, (x, y))| [x, y])));
            out.insert("job_id".into(), json!(l.job.map(|(id, _)| id)));
            out.insert("chip".into(), json!([l.chip.0, l.chip.1]));
            out.insert(
                "logical".into(),
                json!([l.logical.0, l.logical.1, l.logical.2]),
            );
            out.insert("machine".into(), json!(l.machine));
            out.insert("board_chip".into(), json!([l.board_chip.0, l.board_chip.1]));
            out.insert(
                "physical".into(),
                json!([l.physical.0, l.physical.1, l.physical.2]),
            );
            Ok(Value::Object(out))
        }
        Err(Miss::NoSuchMachine) => Err("no such machine".to_owned()),
        Err(Miss::NoSuchJob) => Err("no such job".to_owned()),
        Err(Miss::NotInJob) => Err("no boards currently allocated".to_owned()),
        Err(Miss::NoSuchBoard) => Err("no such board".to_owned()),
    }
}

/// `create_job`: the form from the number of positional arguments, then
/// `max_dead_boards`, `owner`, `keepalive`, `machine` and `tags` read in
/// the service's order. Other keyword arguments are ignored (but kept, and
/// listed by `list_jobs`).
fn create_job(ctx: &mut Context<'_>, c: &Command) -> Result<Value, String> {
    let (args, kwargs) = (&c.args[..], &c.kwargs);
    let max_dead = || -> Result<Option<i64>, String> {
        Ok(Some(i64::from(
            parse_dec(kwargs.get("max_dead_boards").unwrap_or(&Value::Null))?.unwrap_or(0),
        )))
    };
    let (shape, max_dead_boards) = match args.len() {
        0 => (Shape::AnyBoard, max_dead()?),
        1 => match dec(&args[0])? {
            1 => (Shape::AnyBoard, max_dead()?),
            n => (Shape::Boards(i64::from(n)), max_dead()?),
        },
        2 => {
            let w = dec(&args[0])?;
            let h = dec(&args[1])?;
            (Shape::Triads(i64::from(w), i64::from(h)), max_dead()?)
        }
        3 => {
            let x = dec(&args[0])?;
            let y = dec(&args[1])?;
            let z = dec(&args[2])?;
            (Shape::Board(i64::from(x), i64::from(y), i64::from(z)), None)
        }
        n => return Err(format!("unsupported number of arguments: {n}")),
    };
    let owner = match kwargs.get("owner") {
        None | Some(Value::Null) => String::new(),
        Some(v) => java_to_string(v),
    };
    let owner = owner.trim_matches(|c: char| c.is_whitespace()).to_owned();
    if owner.is_empty() {
        return Err("invalid owner identifier; must be non-empty".to_owned());
    }
    if !owner.bytes().all(|b| (32..127).contains(&b)) {
        return Err("invalid owner identifier; must be printable ASCII".to_owned());
    }
    let keepalive = match kwargs.get("keepalive") {
        None | Some(Value::Null) => Keepalive::Default,
        Some(Value::Number(n)) => Keepalive::Seconds(n.as_f64().unwrap_or(0.0)),
        Some(other) => return Err(class_cast(other, "java.lang.Number")),
    };
    let machine = cast_string(kwargs.get("machine"))?.map(str::to_owned);
    let tags = if machine.is_some() {
        // The machine wins; tags are not looked at.
        None
    } else {
        let tags: Vec<String> = match kwargs.get("tags") {
            Some(Value::Array(items)) => items.iter().map(java_to_string).collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        (!tags.is_empty()).then_some(tags)
    };
    let new = NewJob {
        request: Request {
            shape,
            min_ratio: 0.0,
            max_dead_boards,
            max_dead_links: None,
            require_torus: false,
        },
        owner,
        keepalive,
        machine,
        tags,
        echo: Echo {
            args: args.to_vec(),
            kwargs: kwargs.clone(),
        },
        v2_request: None,
    };
    match ctx.controller.create_job(new, ctx.host, ctx.now) {
        Ok(id) => Ok(Value::from(id)),
        Err(Refusal::NoMachine) => {
            Err("no machine available which matches allocation request".to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_dec_like_the_service() {
        assert_eq!(parse_dec(&json!(7)), Ok(Some(7)));
        assert_eq!(parse_dec(&json!(1.9)), Ok(Some(1)));
        assert_eq!(parse_dec(&json!("12")), Ok(Some(12)));
        assert_eq!(parse_dec(&json!("+12")), Ok(Some(12)));
        assert_eq!(parse_dec(&json!(null)), Ok(None));
        assert_eq!(
            parse_dec(&json!(-1)),
            Err("negative values not supported".to_owned())
        );
        assert_eq!(
            parse_dec(&json!("x")),
            Err("For input string: \"x\"".to_owned())
        );
        assert_eq!(
            parse_dec(&json!("99999999999")),
            Err("For input string: \"99999999999\"".to_owned())
        );
        assert_eq!(
            parse_dec(&json!(true)),
            Err("needed a number, got a java.lang.Boolean".to_owned())
        );
        assert_eq!(
            parse_dec(&json!([1])),
            Err("needed a number, got a java.util.ArrayList".to_owned())
        );
        // A Long keeps its low 32 bits.
        assert_eq!(parse_dec(&json!((1i64 << 32) + 5)), Ok(Some(5)));
        assert_eq!(dec(&json!(null)), Err(NULL_PARSE_DEC.to_owned()));
    }

    #[test]
    fn blank_like_java() {
        assert!(is_blank(""));
        assert!(is_blank(" \t\u{1f}"));
        assert!(!is_blank("\u{a0}"));
        assert!(!is_blank("{}"));
    }

    #[test]
    fn request_shapes() {
        assert!(matches!(parse("null"), Ok(None)));
        assert!(matches!(parse("{}"), Ok(None)));
        assert!(matches!(parse("{\"command\": null}"), Ok(None)));
        let c = parse("{\"command\": 5, \"extra\": 1} trailing")
            .ok()
            .flatten();
        assert_eq!(c.map(|c| c.name), Some("5".to_owned()));
        assert_eq!(
            parse("[1]").err().as_deref(),
            Some(
                "Cannot deserialize value of type `uk.ac.manchester.spinnaker.alloc.compat.Command` \
                 from Array value (token `JsonToken.START_ARRAY`)"
            )
        );
        let e = parse("{\"command\": \"version\", \"args\": {}}").err();
        assert!(
            e.as_deref().is_some_and(|e| e.starts_with(
                "Cannot deserialize value of type `java.util.ArrayList<java.lang.Object>` from Object value"
            )),
            "{e:?}"
        );
        let e = parse("this is not json").err();
        assert!(
            e.as_deref()
                .is_some_and(|e| e.starts_with("Unrecognized token 'this': was expecting")),
            "{e:?}"
        );
        let e = parse("{\"command\": }").err();
        assert!(
            e.as_deref()
                .is_some_and(|e| e.starts_with("Unexpected character ('}' (code 125))")),
            "{e:?}"
        );
    }
}
