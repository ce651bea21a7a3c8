//! Requests: each command's arguments as the servers read them, and a call
//! as one line of JSON.
//!
//! Both servers accept `args` and `kwargs` together, and the Java
//! compatibility service reads each parameter from only one of them, so
//! each builder here puts every argument where both servers look for it.

use serde_json::{Map, Value};

use crate::error::InvalidArgument;
use crate::seconds;
use crate::types::{Board, BoardPosition, CreateJobOptions, JobRequest, Number, WhereIsQuery};

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

/// A number as JSON: integers as integers, floats as floats; a non-finite
/// float (which both servers would reject anyway) as `null`, since JSON
/// cannot spell it.
pub(crate) fn number(n: Number) -> Value {
    match n {
        Number::Int(i) => Value::from(i),
        Number::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
    }
}

/// The positional arguments of `create_job`: nothing, N, W H or X Y Z.
///
/// # Errors
/// [`InvalidArgument::NotOnProtocol`] for the forms v1 has no arguments
/// for: a board by IP address (which v1 cannot name at all) and a board by
/// physical position (which [`ProtocolClient::create_job`](crate::ProtocolClient::create_job)
/// first turns into its logical coordinate with `get_board_at_position`).
pub fn create_job_args(request: &JobRequest) -> Result<Vec<Value>, InvalidArgument> {
    match *request {
        JobRequest::AnyBoard => Ok(vec![]),
        JobRequest::Boards(n) => Ok(vec![n.into()]),
        JobRequest::Triads { width, height } => Ok(vec![width.into(), height.into()]),
        JobRequest::Board(b) => Ok(vec![b.x.into(), b.y.into(), b.z.into()]),
        JobRequest::Physical(_) => Err(InvalidArgument::NotOnProtocol {
            option: "a board by physical position (look up its logical coordinate first)",
            protocol: "v1",
        }),
        JobRequest::Address(_) => Err(InvalidArgument::NotOnProtocol {
            option: "a board by IP address",
            protocol: "v1",
        }),
    }
}

/// The keyword arguments of `create_job`: all eight, `None` as `null`,
/// exactly as the Python client has always sent them (so both servers are
/// known to accept them).
pub fn create_job_kwargs(options: &CreateJobOptions) -> Map<String, Value> {
    let mut kw = Map::new();
    kw.insert("owner".into(), options.owner.as_str().into());
    // A negative or unrepresentably long keepalive is the "never expire"
    // spelling (see `crate::seconds`): the servers want null.
    let keepalive = options
        .keepalive
        .filter(|k| matches!(seconds::limit(k.as_f64()), Ok(Some(_))));
    kw.insert("keepalive".into(), keepalive.map_or(Value::Null, number));
    kw.insert("machine".into(), options.machine.clone().into());
    kw.insert("tags".into(), options.tags.clone().into());
    kw.insert("min_ratio".into(), number(Number::Float(options.min_ratio)));
    kw.insert("max_dead_boards".into(), options.max_dead_boards.into());
    kw.insert("max_dead_links".into(), options.max_dead_links.into());
    kw.insert("require_torus".into(), options.require_torus.into());
    kw
}

/// The keyword arguments of `where_is`, by form.
pub(crate) fn where_is_kwargs(query: &WhereIsQuery) -> Map<String, Value> {
    let pairs: Vec<(&str, Value)> = match query {
        WhereIsQuery::Board { machine, x, y, z } => vec![
            ("machine", machine.as_str().into()),
            ("x", (*x).into()),
            ("y", (*y).into()),
            ("z", (*z).into()),
        ],
        WhereIsQuery::Physical {
            machine,
            cabinet,
            frame,
            board,
        } => vec![
            ("machine", machine.as_str().into()),
            ("cabinet", (*cabinet).into()),
            ("frame", (*frame).into()),
            ("board", (*board).into()),
        ],
        WhereIsQuery::Chip { machine, x, y } => vec![
            ("machine", machine.as_str().into()),
            ("chip_x", (*x).into()),
            ("chip_y", (*y).into()),
        ],
        // No v1 server has this form; the client refuses it before here.
        WhereIsQuery::Address { machine, address } => vec![
            ("machine", machine.as_str().into()),
            ("address", address.as_str().into()),
        ],
        WhereIsQuery::JobChip { job_id, x, y } => vec![
            ("job_id", (*job_id).into()),
            ("chip_x", (*x).into()),
            ("chip_y", (*y).into()),
        ],
    };
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// `get_board_position`'s keyword arguments: a board's logical coordinate.
pub(crate) fn board_kwargs(machine: &str, board: Board) -> Map<String, Value> {
    position_kwargs(machine, [board.x, board.y, board.z])
}

/// `get_board_at_position`'s keyword arguments: a physical location (sent
/// under the names `x`, `y` and `z`, as the servers want them).
pub(crate) fn location_kwargs(machine: &str, position: BoardPosition) -> Map<String, Value> {
    position_kwargs(machine, [position.cabinet, position.frame, position.board])
}

fn position_kwargs(machine: &str, [x, y, z]: [u32; 3]) -> Map<String, Value> {
    let mut kw = Map::new();
    kw.insert("machine_name".into(), machine.into());
    kw.insert("x".into(), x.into());
    kw.insert("y".into(), y.into());
    kw.insert("z".into(), z.into());
    kw
}

/// The positional argument of a `notify_*` command: "all" is no argument
/// at all, since the Java service rejects `[null]`.
pub(crate) fn optional_arg<T: Into<Value>>(v: Option<T>) -> Vec<Value> {
    v.map(|v| vec![v.into()]).unwrap_or_default()
}

/// `destroy_job`'s keyword arguments.
pub(crate) fn destroy_kwargs(reason: Option<&str>) -> Map<String, Value> {
    let mut kwargs = Map::new();
    if let Some(r) = reason {
        kwargs.insert("reason".into(), r.into());
    }
    kwargs
}

/// `report_problem`'s keyword arguments: a chip and core only with the
/// chip.
pub(crate) fn report_problem_kwargs(
    chip: Option<(u32, u32)>,
    core: Option<u32>,
    description: Option<&str>,
) -> Map<String, Value> {
    let mut kwargs = Map::new();
    if let Some((x, y)) = chip {
        kwargs.insert("x".into(), x.into());
        kwargs.insert("y".into(), y.into());
        if let Some(p) = core {
            kwargs.insert("p".into(), p.into());
        }
    }
    if let Some(d) = description {
        kwargs.insert("description".into(), d.into());
    }
    kwargs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn create_job_kwargs_match_python_client() {
        let o = CreateJobOptions::new("me");
        assert_eq!(
            Value::Object(create_job_kwargs(&o)),
            json!({"owner": "me", "keepalive": 60.0, "machine": null, "tags": null,
                   "min_ratio": 0.333, "max_dead_boards": 0, "max_dead_links": null,
                   "require_torus": false})
        );
        let mut o = CreateJobOptions::new("me");
        o.keepalive = Some(Number::Int(5));
        assert_eq!(create_job_kwargs(&o)["keepalive"], json!(5));
        o.keepalive = Some(Number::Float(-1.0));
        assert_eq!(create_job_kwargs(&o)["keepalive"], Value::Null);
    }

    #[test]
    fn create_job_args_by_form() {
        assert_eq!(
            create_job_args(&JobRequest::AnyBoard),
            Ok(Vec::<Value>::new())
        );
        assert_eq!(create_job_args(&JobRequest::Boards(3)), Ok(vec![json!(3)]));
        assert_eq!(
            create_job_args(&JobRequest::Triads {
                width: 2,
                height: 1
            }),
            Ok(vec![json!(2), json!(1)])
        );
        assert_eq!(
            create_job_args(&JobRequest::Board(Board::new(1, 0, 2))),
            Ok(vec![json!(1), json!(0), json!(2)])
        );
    }

    #[test]
    fn board_lookups_name_the_machine_and_coordinates() {
        assert_eq!(
            Value::Object(location_kwargs(
                "m",
                BoardPosition {
                    cabinet: 1,
                    frame: 2,
                    board: 3
                }
            )),
            json!({"machine_name": "m", "x": 1, "y": 2, "z": 3})
        );
        assert_eq!(optional_arg::<u64>(None), Vec::<Value>::new());
        assert_eq!(optional_arg(Some(4u64)), vec![json!(4)]);
    }
}
