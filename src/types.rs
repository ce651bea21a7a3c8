//! Typed requests and replies of the v1 protocol.
//!
//! Replies are decoded by hand from `serde_json::Value` rather than derived,
//! because the two server dialects disagree on representation (`null` vs
//! `false` vs `""`, integers vs floats, `NaN` tokens) and because every
//! failure must name the command and the field it concerns.

use std::fmt;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The lifecycle state of a job, as reported by `get_job_state` and
/// `list_jobs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// The server does not know the job (0).
    Unknown,
    /// Waiting for boards (1).
    Queued,
    /// Boards allocated, a power change in progress (2).
    Power,
    /// Allocated with no power change in progress; the boards may be off (3).
    Ready,
    /// Finished, by request or by the server (4).
    Destroyed,
    /// A state number this client does not know.
    Unrecognised(u64),
}

impl JobState {
    /// The state for a wire number.
    pub fn from_code(code: u64) -> JobState {
        match code {
            0 => JobState::Unknown,
            1 => JobState::Queued,
            2 => JobState::Power,
            3 => JobState::Ready,
            4 => JobState::Destroyed,
            n => JobState::Unrecognised(n),
        }
    }

    /// The wire number of this state.
    pub fn code(self) -> u64 {
        match self {
            JobState::Unknown => 0,
            JobState::Queued => 1,
            JobState::Power => 2,
            JobState::Ready => 3,
            JobState::Destroyed => 4,
            JobState::Unrecognised(n) => n,
        }
    }

    /// Whether the job holds, or waits for, boards (queued, power or ready).
    pub fn is_live(self) -> bool {
        matches!(self, JobState::Queued | JobState::Power | JobState::Ready)
    }
}

impl fmt::Display for JobState {
    /// The lower-case state name (`queued`, `power`, `ready`, …), or the
    /// number for an unrecognised state.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobState::Unknown => f.write_str("unknown"),
            JobState::Queued => f.write_str("queued"),
            JobState::Power => f.write_str("power"),
            JobState::Ready => f.write_str("ready"),
            JobState::Destroyed => f.write_str("destroyed"),
            JobState::Unrecognised(n) => write!(f, "{n}"),
        }
    }
}

/// A JSON number as the server (or user) wrote it.
///
/// The distinction matters only for display: the Python tools print a
/// keepalive of `5` as `5` and one of `60.0` as `60.0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// Written without a fraction or exponent.
    Int(i64),
    /// Written as a float (including `NaN` and the infinities).
    Float(f64),
}

impl Number {
    /// The value as a float.
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }

    pub(crate) fn to_json(self) -> Value {
        match self {
            Number::Int(i) => Value::from(i),
            // serde_json cannot represent non-finite floats; both servers
            // would reject them anyway, so they go out as null.
            Number::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        }
    }
}

impl From<f64> for Number {
    fn from(f: f64) -> Self {
        Number::Float(f)
    }
}

impl From<i64> for Number {
    fn from(i: i64) -> Self {
        Number::Int(i)
    }
}

impl From<u32> for Number {
    fn from(i: u32) -> Self {
        Number::Int(i64::from(i))
    }
}

/// A board's logical coordinate: triad `(x, y)` and board `z` within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Board {
    /// Triad column.
    pub x: u32,
    /// Triad row.
    pub y: u32,
    /// Board within the triad (0, 1 or 2).
    pub z: u32,
}

impl Board {
    /// A board coordinate.
    pub fn new(x: u32, y: u32, z: u32) -> Board {
        Board { x, y, z }
    }
}

impl fmt::Display for Board {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {}, {})", self.x, self.y, self.z)
    }
}

/// A board's physical location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BoardPosition {
    /// Cabinet number.
    pub cabinet: u32,
    /// Frame within the cabinet.
    pub frame: u32,
    /// Board within the frame.
    pub board: u32,
}

/// A chip coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Chip {
    /// Chip column.
    pub x: u32,
    /// Chip row.
    pub y: u32,
}

/// An Ethernet-connected chip of a job and the host name that reaches it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Connection {
    /// The chip, relative to the job's chip (0, 0).
    pub chip: Chip,
    /// The board's IP address or host name.
    pub hostname: String,
}

/// A broken link leaving a board, as listed by `list_machines`.
///
/// The link numbering depends on the server: 0=E … 5=S on the Python server,
/// 0=N … 5=NW on the Java compatibility service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeadLink {
    /// The board the link leaves.
    pub board: Board,
    /// The link number.
    pub link: u32,
}

/// The reply to `get_job_state`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobStateInfo {
    /// The job's state.
    pub state: JobState,
    /// Whether the boards are (being) powered on; `None` when the job has no
    /// boards.
    pub power: Option<bool>,
    /// The Python server's keepalive interval in seconds (`None`: never
    /// expires). The Java compatibility service puts the Unix time of the
    /// last keepalive here instead.
    pub keepalive: Option<f64>,
    /// Why the job was destroyed, if it was and the server says.
    pub reason: Option<String>,
    /// When the job was created (Unix seconds).
    pub start_time: Option<f64>,
    /// The address that last kept the job alive.
    pub keepalive_host: Option<String>,
}

impl JobStateInfo {
    pub(crate) fn unknown() -> JobStateInfo {
        JobStateInfo {
            state: JobState::Unknown,
            power: None,
            keepalive: None,
            reason: None,
            start_time: None,
            keepalive_host: None,
        }
    }
}

/// The reply to `get_job_machine_info` for a job that has boards.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobMachineInfo {
    /// Width of the allocation in chips.
    pub width: u32,
    /// Height of the allocation in chips.
    pub height: u32,
    /// The Ethernet-connected chips, sorted by chip coordinate.
    pub connections: Vec<Connection>,
    /// The machine the boards are on.
    pub machine_name: String,
    /// The allocated boards, sorted.
    pub boards: Vec<Board>,
}

impl JobMachineInfo {
    /// The host name of the job's chip (0, 0), or failing that of its
    /// lowest Ethernet-connected chip: the one to boot the machine through.
    pub fn hostname(&self) -> Option<&str> {
        // Connections are sorted by chip, so (0, 0), when present, is first.
        self.connections.first().map(|c| c.hostname.as_str())
    }
}

/// One entry of `list_jobs`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobDescription {
    /// The job's id.
    pub job_id: u64,
    /// Who created it (may be `"<Hidden>"` on the Java service).
    pub owner: Option<String>,
    /// When it was created (Unix seconds).
    pub start_time: Option<f64>,
    /// The keepalive interval as sent, or `None` if it never expires.
    pub keepalive: Option<Number>,
    /// The job's state.
    pub state: JobState,
    /// Whether the boards are (being) powered on; `None` while queued.
    pub power: Option<bool>,
    /// The positional arguments of the request, as sent.
    pub args: Vec<Value>,
    /// The keyword arguments of the request (the Python server leaves out
    /// `owner` and `keepalive`).
    pub kwargs: Map<String, Value>,
    /// The machine the job was allocated on.
    pub allocated_machine_name: Option<String>,
    /// The allocated boards, sorted; empty while queued.
    pub boards: Vec<Board>,
    /// The address that last kept the job alive.
    pub keepalive_host: Option<String>,
    /// The reason field (Java compatibility service only; always empty).
    pub reason: Option<String>,
}

/// One entry of `list_machines`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MachineDescription {
    /// The machine's name.
    pub name: String,
    /// Its tags, in the server's order.
    pub tags: Vec<String>,
    /// Width in triads.
    pub width: u32,
    /// Height in triads.
    pub height: u32,
    /// Boards that are out of service, sorted.
    pub dead_boards: Vec<Board>,
    /// Links that are out of service, sorted.
    pub dead_links: Vec<DeadLink>,
}

impl MachineDescription {
    /// The number of working boards: three per triad, minus the dead ones.
    pub fn num_boards(&self) -> u64 {
        let all = 3 * u64::from(self.width) * u64::from(self.height);
        all.saturating_sub(self.dead_boards.len() as u64)
    }
}

/// The reply to `where_is`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WhereIs {
    /// The machine.
    pub machine: String,
    /// The board's logical coordinate.
    pub logical: Board,
    /// The board's physical location.
    pub physical: BoardPosition,
    /// The chip in machine coordinates (the board's Ethernet chip for the
    /// board forms).
    pub chip: Chip,
    /// The chip's position within its board.
    pub board_chip: Chip,
    /// The job holding the board, if any.
    pub job_id: Option<u64>,
    /// The chip relative to that job.
    pub job_chip: Option<Chip>,
}

/// The four forms of a `where_is` query.
///
/// Coordinates may be out of range or negative: the Python server wraps them
/// around the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhereIsQuery {
    /// A board by logical coordinate.
    Board {
        /// Machine name.
        machine: String,
        /// Triad column.
        x: i64,
        /// Triad row.
        y: i64,
        /// Board within the triad.
        z: i64,
    },
    /// A board by physical location.
    Physical {
        /// Machine name.
        machine: String,
        /// Cabinet.
        cabinet: i64,
        /// Frame.
        frame: i64,
        /// Board.
        board: i64,
    },
    /// A chip in machine coordinates.
    Chip {
        /// Machine name.
        machine: String,
        /// Chip column.
        x: i64,
        /// Chip row.
        y: i64,
    },
    /// A chip relative to a job.
    JobChip {
        /// The job.
        job_id: u64,
        /// Chip column within the job.
        x: i64,
        /// Chip row within the job.
        y: i64,
    },
}

impl WhereIsQuery {
    pub(crate) fn kwargs(&self) -> Map<String, Value> {
        let pairs: Vec<(&str, Value)> = match self {
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
            WhereIsQuery::JobChip { job_id, x, y } => vec![
                ("job_id", (*job_id).into()),
                ("chip_x", (*x).into()),
                ("chip_y", (*y).into()),
            ],
        };
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }
}

/// An unsolicited message announcing changes, sent after a `notify_*`
/// registration. Treat it as a hint to look again, not as the change itself:
/// servers may coalesce, repeat or drop them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// These jobs changed.
    JobsChanged(Vec<u64>),
    /// These machines changed.
    MachinesChanged(Vec<String>),
}

/// What a new job asks for: the positional arguments of `create_job`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JobRequest {
    /// Any single board.
    #[default]
    AnyBoard,
    /// At least this many boards, as a rectangle of whole triads shaped by
    /// `min_ratio`.
    Boards(u32),
    /// A rectangle of triads.
    Triads {
        /// Width in triads.
        width: u32,
        /// Height in triads.
        height: u32,
    },
    /// One specific board.
    Board(Board),
}

impl JobRequest {
    /// The positional arguments as sent on the wire.
    pub fn args(&self) -> Vec<Value> {
        match *self {
            JobRequest::AnyBoard => vec![],
            JobRequest::Boards(n) => vec![n.into()],
            JobRequest::Triads { width, height } => vec![width.into(), height.into()],
            JobRequest::Board(b) => vec![b.x.into(), b.y.into(), b.z.into()],
        }
    }

    /// Whether this asks for a single board (where `require_torus` makes no
    /// sense).
    pub fn is_single_board(&self) -> bool {
        matches!(
            self,
            JobRequest::AnyBoard | JobRequest::Board(_) | JobRequest::Boards(1)
        )
    }
}

/// The keyword arguments of `create_job`.
///
/// Every field is sent, `None` as JSON `null`, exactly as the Python client
/// has always done (so both servers are known to accept it). The defaults are
/// the Python client's.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CreateJobOptions {
    /// Who the job is for, conventionally an e-mail address. Required.
    pub owner: String,
    /// Seconds the server waits for a keepalive before destroying the job;
    /// `None` means never (the Java service substitutes its default). Defaults
    /// to `60.0`.
    pub keepalive: Option<Number>,
    /// Allocate only on this machine. Defaults to `None`.
    pub machine: Option<String>,
    /// Allocate only on machines with all these tags; `None` means the
    /// server's default (`["default"]`). Ignored when `machine` is set.
    /// Defaults to `None`.
    pub tags: Option<Vec<String>>,
    /// Minimum squareness of an N-board request. Defaults to `0.333`.
    pub min_ratio: f64,
    /// Most dead boards acceptable in the allocation; `None` means any.
    /// Defaults to `Some(0)`.
    pub max_dead_boards: Option<u32>,
    /// Most dead links acceptable in the allocation; `None` means any.
    /// Defaults to `None`.
    pub max_dead_links: Option<u32>,
    /// Require wrap-around links. Defaults to `false`.
    pub require_torus: bool,
}

impl CreateJobOptions {
    /// The Python client's defaults, for `owner`.
    pub fn new(owner: impl Into<String>) -> CreateJobOptions {
        CreateJobOptions {
            owner: owner.into(),
            keepalive: Some(Number::Float(60.0)),
            machine: None,
            tags: None,
            min_ratio: 0.333,
            max_dead_boards: Some(0),
            max_dead_links: None,
            require_torus: false,
        }
    }

    /// Checks what the servers would reject (or, worse, half-accept: the
    /// Python server leaves a zombie job behind on some of these).
    pub(crate) fn validate(&self, request: &JobRequest) -> Result<()> {
        if self.owner.trim().is_empty() {
            return Err(Error::InvalidArgument(
                "owner must be specified for all jobs".into(),
            ));
        }
        if self.machine.is_some() && self.tags.is_some() {
            return Err(Error::InvalidArgument(
                "only one of machine and tags may be specified for a job".into(),
            ));
        }
        if self.require_torus && request.is_single_board() {
            return Err(Error::InvalidArgument(
                "require_torus cannot be used when allocating a single board".into(),
            ));
        }
        if self.min_ratio.is_nan() || self.min_ratio < 0.0 {
            return Err(Error::InvalidArgument(format!(
                "min_ratio must be a non-negative number, not {}",
                self.min_ratio
            )));
        }
        if let Some(k) = self.keepalive {
            crate::seconds::limit(k.as_f64())
                .map_err(|e| Error::InvalidArgument(format!("keepalive: {e}")))?;
        }
        Ok(())
    }

    pub(crate) fn kwargs(&self) -> Map<String, Value> {
        let mut kw = Map::new();
        kw.insert("owner".into(), self.owner.as_str().into());
        // A negative or unrepresentably long keepalive is the "never
        // expire" spelling (see `crate::seconds`): the servers want null.
        let keepalive = self
            .keepalive
            .filter(|k| matches!(crate::seconds::limit(k.as_f64()), Ok(Some(_))));
        kw.insert(
            "keepalive".into(),
            keepalive.map_or(Value::Null, Number::to_json),
        );
        kw.insert("machine".into(), self.machine.clone().into());
        kw.insert("tags".into(), self.tags.clone().into());
        kw.insert("min_ratio".into(), Number::Float(self.min_ratio).to_json());
        kw.insert("max_dead_boards".into(), self.max_dead_boards.into());
        kw.insert("max_dead_links".into(), self.max_dead_links.into());
        kw.insert("require_torus".into(), self.require_torus.into());
        kw
    }
}

/// Reading typed values out of untrusted JSON, with errors that say where.
pub(crate) mod decode {
    use super::*;
    use crate::protocol::{ObjectOnly, decode_return_as, kind_of};

    fn shown(v: &Value) -> String {
        let mut s = v.to_string();
        if s.len() > 60 {
            let mut cut = 57;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s.push_str("...");
        }
        s
    }

    /// "a string \"x\"", "a number 5", "null", "a boolean true".
    fn described(v: &Value) -> String {
        match v {
            Value::Null => "null".to_owned(),
            other => format!("{} {}", kind_of(other), shown(other)),
        }
    }

    fn wrong(ctx: &str, field: &str, expected: &str, got: &Value) -> Error {
        Error::protocol(format!(
            "{ctx}: field '{field}': expected {expected}, got {}",
            described(got)
        ))
    }

    /// A non-negative integer; integral floats such as `3.0` are accepted.
    pub(crate) fn as_u64(v: &Value) -> Option<u64> {
        match v {
            Value::Number(n) => n.as_u64().or_else(|| {
                let f = n.as_f64()?;
                (f >= 0.0 && f.fract() == 0.0 && f < 1.8e19).then_some(f as u64)
            }),
            _ => None,
        }
    }

    fn as_u32(v: &Value) -> Option<u32> {
        as_u64(v).and_then(|n| u32::try_from(n).ok())
    }

    /// A float, including the `"NaN"`/`"Infinity"` stand-ins of
    /// [`crate::protocol::decode_line`].
    pub(crate) fn as_f64(v: &Value) -> Option<f64> {
        match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => match s.as_str() {
                "NaN" => Some(f64::NAN),
                "Infinity" => Some(f64::INFINITY),
                "-Infinity" => Some(f64::NEG_INFINITY),
                _ => None,
            },
            _ => None,
        }
    }

    pub(crate) fn as_number(v: &Value) -> Option<Number> {
        match v {
            Value::Number(n) if !n.is_f64() => n
                .as_i64()
                .map(Number::Int)
                .or_else(|| n.as_f64().map(Number::Float)),
            other => as_f64(other).map(Number::Float),
        }
    }

    /// The fields of a reply object, with the reply's name for errors.
    pub(crate) struct Fields<'a> {
        obj: &'a Map<String, Value>,
        ctx: &'a str,
    }

    impl<'a> Fields<'a> {
        pub(crate) fn of(v: &'a Value, ctx: &'a str) -> Result<Fields<'a>> {
            match v {
                Value::Object(obj) => Ok(Fields { obj, ctx }),
                other => Err(Error::protocol(format!(
                    "{ctx}: expected an object, got {}",
                    described(other)
                ))),
            }
        }

        /// The field, treating `null` like a missing field.
        fn get(&self, field: &str) -> Option<&'a Value> {
            self.obj.get(field).filter(|v| !v.is_null())
        }

        fn missing(&self, field: &str) -> Error {
            Error::protocol(format!("{}: field '{field}' is missing", self.ctx))
        }

        pub(crate) fn u64(&self, field: &str) -> Result<u64> {
            let v = self.get(field).ok_or_else(|| self.missing(field))?;
            as_u64(v).ok_or_else(|| wrong(self.ctx, field, "a non-negative integer", v))
        }

        pub(crate) fn u32(&self, field: &str) -> Result<u32> {
            let v = self.get(field).ok_or_else(|| self.missing(field))?;
            as_u32(v).ok_or_else(|| wrong(self.ctx, field, "a non-negative integer", v))
        }

        pub(crate) fn opt_u64(&self, field: &str) -> Result<Option<u64>> {
            self.get(field)
                .map(|v| {
                    as_u64(v).ok_or_else(|| wrong(self.ctx, field, "a non-negative integer", v))
                })
                .transpose()
        }

        pub(crate) fn opt_f64(&self, field: &str) -> Result<Option<f64>> {
            self.get(field)
                .map(|v| as_f64(v).ok_or_else(|| wrong(self.ctx, field, "a number", v)))
                .transpose()
        }

        pub(crate) fn opt_number(&self, field: &str) -> Result<Option<Number>> {
            self.get(field)
                .map(|v| as_number(v).ok_or_else(|| wrong(self.ctx, field, "a number", v)))
                .transpose()
        }

        pub(crate) fn opt_bool(&self, field: &str) -> Result<Option<bool>> {
            self.get(field)
                .map(|v| {
                    v.as_bool()
                        .ok_or_else(|| wrong(self.ctx, field, "a boolean", v))
                })
                .transpose()
        }

        /// A string; `null`, `false` and `""` all mean "none" (the servers
        /// disagree on which to send).
        pub(crate) fn opt_string(&self, field: &str) -> Result<Option<String>> {
            match self.get(field) {
                None | Some(Value::Bool(false)) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(v) => Err(wrong(self.ctx, field, "a string", v)),
            }
        }

        pub(crate) fn string(&self, field: &str) -> Result<String> {
            match self.get(field) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(v) => Err(wrong(self.ctx, field, "a string", v)),
                None => Err(self.missing(field)),
            }
        }

        pub(crate) fn opt_list(&self, field: &str) -> Result<Option<&'a Vec<Value>>> {
            match self.get(field) {
                None => Ok(None),
                Some(Value::Array(items)) => Ok(Some(items)),
                Some(v) => Err(wrong(self.ctx, field, "a list", v)),
            }
        }

        pub(crate) fn list(&self, field: &str) -> Result<&'a Vec<Value>> {
            self.opt_list(field)?.ok_or_else(|| self.missing(field))
        }

        pub(crate) fn opt_object(&self, field: &str) -> Result<Option<&'a Map<String, Value>>> {
            match self.get(field) {
                None => Ok(None),
                Some(Value::Object(m)) => Ok(Some(m)),
                Some(v) => Err(wrong(self.ctx, field, "an object", v)),
            }
        }

        pub(crate) fn boards(&self, field: &str) -> Result<Vec<Board>> {
            let mut boards = self
                .opt_list(field)?
                .map(|items| {
                    items
                        .iter()
                        .map(|v| {
                            board(v).ok_or_else(|| wrong(self.ctx, field, "a list of [x, y, z]", v))
                        })
                        .collect::<Result<Vec<_>>>()
                })
                .transpose()?
                .unwrap_or_default();
            boards.sort_unstable();
            Ok(boards)
        }

        pub(crate) fn board(&self, field: &str) -> Result<Board> {
            let v = self.get(field).ok_or_else(|| self.missing(field))?;
            board(v).ok_or_else(|| wrong(self.ctx, field, "[x, y, z]", v))
        }

        pub(crate) fn chip(&self, field: &str) -> Result<Chip> {
            let v = self.get(field).ok_or_else(|| self.missing(field))?;
            chip(v).ok_or_else(|| wrong(self.ctx, field, "[x, y]", v))
        }

        pub(crate) fn opt_chip(&self, field: &str) -> Result<Option<Chip>> {
            self.get(field)
                .map(|v| chip(v).ok_or_else(|| wrong(self.ctx, field, "[x, y]", v)))
                .transpose()
        }
    }

    fn triple(v: &Value) -> Option<[u32; 3]> {
        match v.as_array()?.as_slice() {
            [a, b, c] => Some([as_u32(a)?, as_u32(b)?, as_u32(c)?]),
            _ => None,
        }
    }

    pub(crate) fn board(v: &Value) -> Option<Board> {
        triple(v).map(|[x, y, z]| Board { x, y, z })
    }

    pub(crate) fn position(v: &Value) -> Option<BoardPosition> {
        triple(v).map(|[cabinet, frame, board]| BoardPosition {
            cabinet,
            frame,
            board,
        })
    }

    fn dead_link(v: &Value) -> Option<DeadLink> {
        match v.as_array()?.as_slice() {
            [x, y, z, link] => Some(DeadLink {
                board: Board {
                    x: as_u32(x)?,
                    y: as_u32(y)?,
                    z: as_u32(z)?,
                },
                link: as_u32(link)?,
            }),
            _ => None,
        }
    }

    pub(crate) fn chip(v: &Value) -> Option<Chip> {
        match v.as_array()?.as_slice() {
            [x, y] => Some(Chip {
                x: as_u32(x)?,
                y: as_u32(y)?,
            }),
            _ => None,
        }
    }

    pub(crate) fn id_list(v: &Value, ctx: &str) -> Result<Vec<u64>> {
        let items = v
            .as_array()
            .ok_or_else(|| wrong(ctx, ctx, "a list of job ids", v))?;
        items
            .iter()
            .map(|i| as_u64(i).ok_or_else(|| wrong(ctx, ctx, "a list of job ids", i)))
            .collect()
    }

    pub(crate) fn string_list(v: &Value, ctx: &str) -> Result<Vec<String>> {
        let items = v
            .as_array()
            .ok_or_else(|| wrong(ctx, ctx, "a list of strings", v))?;
        items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                other => Err(wrong(ctx, ctx, "a list of strings", other)),
            })
            .collect()
    }

    pub(crate) fn job_state(v: &Value) -> Result<JobStateInfo> {
        let f = Fields::of(v, "get_job_state")?;
        let state = JobState::from_code(f.u64("state")?);
        // The Java service reports `power: false` for jobs without boards;
        // normalise to the Python server's "no boards, no power state".
        let power = match state {
            JobState::Power | JobState::Ready => f.opt_bool("power")?,
            _ => None,
        };
        Ok(JobStateInfo {
            state,
            power,
            keepalive: f.opt_f64("keepalive")?,
            reason: f.opt_string("reason")?,
            start_time: f.opt_f64("start_time")?,
            keepalive_host: f.opt_string("keepalivehost")?,
        })
    }

    pub(crate) fn machine_info(v: &Value) -> Result<Option<JobMachineInfo>> {
        const CTX: &str = "get_job_machine_info";
        let f = Fields::of(v, CTX)?;
        // The Python server answers all-null for a job without boards.
        if f.get("machine_name").is_none() && f.get("boards").is_none() {
            return Ok(None);
        }
        let mut connections = f
            .list("connections")?
            .iter()
            .map(|c| {
                let pair = c.as_array().map(Vec::as_slice);
                match pair {
                    Some([xy, Value::String(host)]) => chip(xy).map(|chip| Connection {
                        chip,
                        hostname: host.clone(),
                    }),
                    _ => None,
                }
                .ok_or_else(|| wrong(CTX, "connections", "a list of [[x, y], hostname]", c))
            })
            .collect::<Result<Vec<_>>>()?;
        connections.sort_unstable();
        Ok(Some(JobMachineInfo {
            width: f.u32("width")?,
            height: f.u32("height")?,
            connections,
            machine_name: f.string("machine_name")?,
            boards: f.boards("boards")?,
        }))
    }

    pub(crate) fn job_description(v: &Value) -> Result<JobDescription> {
        let f = Fields::of(v, "list_jobs")?;
        Ok(JobDescription {
            job_id: f.u64("job_id")?,
            owner: f.opt_string("owner")?,
            start_time: f.opt_f64("start_time")?,
            keepalive: f.opt_number("keepalive")?,
            state: JobState::from_code(f.u64("state")?),
            power: f.opt_bool("power")?,
            args: f.opt_list("args")?.cloned().unwrap_or_default(),
            kwargs: f.opt_object("kwargs")?.cloned().unwrap_or_default(),
            allocated_machine_name: f.opt_string("allocated_machine_name")?,
            boards: f.boards("boards")?,
            keepalive_host: f.opt_string("keepalivehost")?,
            reason: f.opt_string("reason")?,
        })
    }

    /// The whole `list_jobs` reply line decoded in one pass, when it is
    /// well formed: `None` sends the caller to the general path
    /// ([`crate::protocol::decode_line`] then [`job_description`]), which
    /// gives the same result for every line accepted here and names the
    /// field of anything this rejects.
    pub(crate) fn job_list_line(line: &[u8]) -> Option<Vec<JobDescription>> {
        decode_return_as::<WireJobList>(line).map(|list| list.0)
    }

    /// A list of [`WireJob`]s, each converted as soon as it is read, so
    /// that the wire form of the whole list never exists at once.
    struct WireJobList(Vec<JobDescription>);

    impl<'de> serde::Deserialize<'de> for WireJobList {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = WireJobList;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a list of jobs")
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> std::result::Result<WireJobList, A::Error> {
                    let mut jobs = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                    while let Some(ObjectOnly(job)) = seq.next_element::<ObjectOnly<WireJob>>()? {
                        jobs.push(JobDescription::from(job));
                    }
                    Ok(WireJobList(jobs))
                }
            }
            d.deserialize_seq(V)
        }
    }

    /// One `list_jobs` entry as it is on the wire, in the strict form both
    /// servers send: integers where [`job_description`] also takes integral
    /// floats, and no `NaN` or `false` stand-ins. A missing field and `null`
    /// are alike, as there.
    #[derive(serde::Deserialize)]
    struct WireJob {
        job_id: u64,
        #[serde(default)]
        owner: Option<String>,
        #[serde(default)]
        start_time: Option<f64>,
        #[serde(default)]
        keepalive: Option<WireNumber>,
        state: u64,
        #[serde(default)]
        power: Option<bool>,
        #[serde(default)]
        args: Option<Vec<Value>>,
        #[serde(default)]
        kwargs: Option<Map<String, Value>>,
        #[serde(default)]
        allocated_machine_name: Option<String>,
        #[serde(default)]
        boards: Option<Vec<[u32; 3]>>,
        #[serde(default)]
        keepalivehost: Option<String>,
        #[serde(default)]
        reason: Option<String>,
    }

    /// `""` means "none", as in [`Fields::opt_string`].
    fn non_empty(s: Option<String>) -> Option<String> {
        s.filter(|s| !s.is_empty())
    }

    impl From<WireJob> for JobDescription {
        fn from(w: WireJob) -> JobDescription {
            let mut boards: Vec<Board> = w
                .boards
                .unwrap_or_default()
                .into_iter()
                .map(|[x, y, z]| Board { x, y, z })
                .collect();
            boards.sort_unstable();
            JobDescription {
                job_id: w.job_id,
                owner: non_empty(w.owner),
                start_time: w.start_time,
                keepalive: w.keepalive.map(|n| n.0),
                state: JobState::from_code(w.state),
                power: w.power,
                args: w.args.unwrap_or_default(),
                kwargs: w.kwargs.unwrap_or_default(),
                allocated_machine_name: non_empty(w.allocated_machine_name),
                boards,
                keepalive_host: non_empty(w.keepalivehost),
                reason: non_empty(w.reason),
            }
        }
    }

    /// A JSON number kept as the integer or float it was sent as, as
    /// [`as_number`] does.
    struct WireNumber(Number);

    impl<'de> serde::Deserialize<'de> for WireNumber {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = WireNumber;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a number")
                }
                fn visit_i64<E>(self, v: i64) -> std::result::Result<WireNumber, E> {
                    Ok(WireNumber(Number::Int(v)))
                }
                fn visit_u64<E>(self, v: u64) -> std::result::Result<WireNumber, E> {
                    Ok(WireNumber(
                        i64::try_from(v).map_or(Number::Float(v as f64), Number::Int),
                    ))
                }
                fn visit_f64<E>(self, v: f64) -> std::result::Result<WireNumber, E> {
                    Ok(WireNumber(Number::Float(v)))
                }
            }
            d.deserialize_any(V)
        }
    }

    pub(crate) fn machine_description(v: &Value) -> Result<MachineDescription> {
        const CTX: &str = "list_machines";
        let f = Fields::of(v, CTX)?;
        let tags = match f.opt_list("tags")? {
            None => Vec::new(),
            Some(items) => items
                .iter()
                .map(|t| match t {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(wrong(CTX, "tags", "a list of strings", other)),
                })
                .collect::<Result<_>>()?,
        };
        let mut dead_links = f
            .opt_list("dead_links")?
            .map(|items| {
                items
                    .iter()
                    .map(|l| {
                        dead_link(l)
                            .ok_or_else(|| wrong(CTX, "dead_links", "a list of [x, y, z, link]", l))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?
            .unwrap_or_default();
        dead_links.sort_unstable();
        Ok(MachineDescription {
            name: f.string("name")?,
            tags,
            width: f.u32("width")?,
            height: f.u32("height")?,
            dead_boards: f.boards("dead_boards")?,
            dead_links,
        })
    }

    pub(crate) fn where_is(v: &Value) -> Result<Option<WhereIs>> {
        if v.is_null() {
            return Ok(None);
        }
        let f = Fields::of(v, "where_is")?;
        let physical = f.get("physical").ok_or_else(|| f.missing("physical"))?;
        Ok(Some(WhereIs {
            machine: f.string("machine")?,
            logical: f.board("logical")?,
            physical: position(physical).ok_or_else(|| {
                wrong("where_is", "physical", "[cabinet, frame, board]", physical)
            })?,
            chip: f.chip("chip")?,
            board_chip: f.chip("board_chip")?,
            job_id: f.opt_u64("job_id")?,
            job_chip: f.opt_chip("job_chip")?,
        }))
    }

    pub(crate) fn list_of<T>(
        v: &Value,
        ctx: &str,
        item: fn(&Value) -> Result<T>,
    ) -> Result<Vec<T>> {
        match v {
            Value::Array(items) => items.iter().map(item).collect(),
            other => Err(Error::protocol(format!(
                "{ctx}: expected a list, got {}",
                described(other)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decode::*;
    use super::*;
    use crate::protocol::{Incoming, decode_line};
    use serde_json::json;

    fn ret(line: &str) -> Value {
        match decode_line(line.as_bytes()) {
            Ok(Incoming::Return(v)) => v,
            other => panic!("not a return: {other:?}"),
        }
    }

    #[test]
    fn job_state_python_dialect() -> Result<()> {
        let v = ret(
            r#"{"return": {"state": 3, "power": true, "keepalive": 60.0, "reason": null, "start_time": 1700000000.5, "keepalivehost": "10.0.0.1"}}"#,
        );
        let s = job_state(&v)?;
        assert_eq!(s.state, JobState::Ready);
        assert_eq!(s.power, Some(true));
        assert_eq!(s.keepalive, Some(60.0));
        assert_eq!(s.reason, None);
        assert_eq!(s.start_time, Some(1_700_000_000.5));
        assert_eq!(s.keepalive_host.as_deref(), Some("10.0.0.1"));
        Ok(())
    }

    #[test]
    fn job_state_java_dialect() -> Result<()> {
        let v = ret(
            r#"{"return":{"state":1,"power":false,"keepalive":1.69E9,"reason":"","start_time":1.690000000123E9,"keepalivehost":""}}"#,
        );
        let s = job_state(&v)?;
        assert_eq!(s.state, JobState::Queued);
        assert_eq!(s.power, None, "no boards, so no power state");
        assert_eq!(s.keepalive, Some(1.69e9));
        assert_eq!(s.reason, None);
        assert_eq!(s.keepalive_host, None);
        Ok(())
    }

    #[test]
    fn job_state_non_finite_and_integers() -> Result<()> {
        let v = ret(
            r#"{"return": {"state": 2, "power": false, "keepalive": Infinity, "reason": null, "start_time": NaN, "keepalivehost": null}}"#,
        );
        let s = job_state(&v)?;
        assert_eq!(s.keepalive, Some(f64::INFINITY));
        assert!(s.start_time.is_some_and(f64::is_nan));
        let v = ret(r#"{"return": {"state": 3.0, "keepalive": 60}}"#);
        let s = job_state(&v)?;
        assert_eq!(s.state, JobState::Ready);
        assert_eq!(s.keepalive, Some(60.0));
        Ok(())
    }

    #[test]
    fn job_state_errors_name_the_field() {
        let v = json!({"state": "ready"});
        let err = job_state(&v).unwrap_err().to_string();
        assert!(err.contains("get_job_state: field 'state'"), "{err}");
        let err = job_state(&json!({})).unwrap_err().to_string();
        assert!(err.contains("'state' is missing"), "{err}");
        let err = job_state(&json!({"state": 3, "power": "on"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("'power'"), "{err}");
        let err = job_state(&json!([1])).unwrap_err().to_string();
        assert!(err.contains("expected an object"), "{err}");
    }

    #[test]
    fn unrecognised_state_survives() -> Result<()> {
        let s = job_state(&json!({"state": 9}))?;
        assert_eq!(s.state, JobState::Unrecognised(9));
        assert_eq!(s.state.to_string(), "9");
        Ok(())
    }

    #[test]
    fn machine_info_sorted_and_nullable() -> Result<()> {
        let v = ret(
            r#"{"return": {"width": 16, "height": 16, "connections": [[[8, 4], "b"], [[0, 0], "a"], [[4, 8], "c"]], "machine_name": "m", "boards": [[0, 1, 2], [0, 1, 0], [0, 1, 1]]}}"#,
        );
        let info = machine_info(&v)?.expect("allocated");
        assert_eq!(info.hostname(), Some("a"));
        assert_eq!(info.connections[1].chip, Chip { x: 4, y: 8 });
        assert_eq!(
            info.boards,
            vec![
                Board::new(0, 1, 0),
                Board::new(0, 1, 1),
                Board::new(0, 1, 2)
            ]
        );
        let v = json!({"width": null, "height": null, "connections": null, "machine_name": null, "boards": null});
        assert_eq!(machine_info(&v)?, None);
        let err = machine_info(&json!({"width": 8, "height": 8, "connections": [[0, "a"]], "machine_name": "m", "boards": []}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("'connections'"), "{err}");
        Ok(())
    }

    #[test]
    fn list_jobs_both_dialects() -> Result<()> {
        let py = ret(
            r#"{"return": [{"job_id": 1, "owner": "me", "start_time": 1.5, "keepalive": 5, "state": 1, "power": null, "args": [3], "kwargs": {"tags": ["default"]}, "allocated_machine_name": null, "boards": null, "keepalivehost": ""}]}"#,
        );
        let jobs = list_of(&py, "list_jobs", job_description)?;
        assert_eq!(jobs[0].keepalive, Some(Number::Int(5)));
        assert!(jobs[0].boards.is_empty());
        assert_eq!(jobs[0].keepalive_host, None);
        assert_eq!(jobs[0].args, vec![json!(3)]);
        let java = ret(
            r#"{"return":[{"job_id":2,"owner":"<Hidden>","start_time":1.69E9,"keepalive":60.0,"state":3,"power":true,"args":[],"kwargs":{"owner":"x","keepalive":60.0},"allocated_machine_name":"m","boards":[[1,0,0]],"keepalivehost":"<Hidden>","reason":""}]}"#,
        );
        let jobs = list_of(&java, "list_jobs", job_description)?;
        assert_eq!(jobs[0].keepalive, Some(Number::Float(60.0)));
        assert_eq!(jobs[0].boards, vec![Board::new(1, 0, 0)]);
        assert_eq!(jobs[0].reason, None);
        assert!(list_of(&json!({}), "list_jobs", job_description).is_err());
        Ok(())
    }

    #[test]
    fn list_machines_decodes() -> Result<()> {
        let v = json!([{"name": "m", "tags": ["default"], "width": 2, "height": 2, "dead_boards": [[0, 0, 1]], "dead_links": [[1, 1, 1, 2]]}]);
        let ms = list_of(&v, "list_machines", machine_description)?;
        assert_eq!(ms[0].num_boards(), 11);
        assert_eq!(ms[0].dead_links[0].link, 2);
        let bad = json!([{"name": "m", "tags": ["default"], "width": 2, "height": 2, "dead_boards": [], "dead_links": [[1, 1]]}]);
        let err = list_of(&bad, "list_machines", machine_description)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'dead_links'"), "{err}");
        Ok(())
    }

    #[test]
    fn where_is_decodes() -> Result<()> {
        let v = json!({"machine": "m", "logical": [1, 0, 1], "physical": [0, 0, 2], "chip": [3, 11], "board_chip": [7, 7], "job_id": 4, "job_chip": [15, 11]});
        let w = where_is(&v)?.expect("found");
        assert_eq!(w.job_id, Some(4));
        assert_eq!(w.physical.board, 2);
        assert_eq!(where_is(&Value::Null)?, None);
        Ok(())
    }

    #[test]
    fn create_job_kwargs_match_python_client() {
        let o = CreateJobOptions::new("me");
        assert_eq!(
            Value::Object(o.kwargs()),
            json!({"owner": "me", "keepalive": 60.0, "machine": null, "tags": null,
                   "min_ratio": 0.333, "max_dead_boards": 0, "max_dead_links": null,
                   "require_torus": false})
        );
    }

    #[test]
    fn create_job_validation() {
        let req = JobRequest::AnyBoard;
        assert!(CreateJobOptions::new(" ").validate(&req).is_err());
        let mut o = CreateJobOptions::new("me");
        o.machine = Some("m".into());
        o.tags = Some(vec![]);
        assert!(o.validate(&req).is_err());
        let mut o = CreateJobOptions::new("me");
        o.require_torus = true;
        assert!(o.validate(&req).is_err());
        assert!(
            o.validate(&JobRequest::Triads {
                width: 2,
                height: 2
            })
            .is_ok()
        );
        o.min_ratio = f64::NAN;
        assert!(o.validate(&JobRequest::Boards(6)).is_err());
    }

    /// `list_jobs` decoded by the general path: `decode_line`, then
    /// `job_description` on each entry.
    fn general_job_list(line: &str) -> Result<Vec<JobDescription>> {
        list_of(&ret(line), "list_jobs", job_description)
    }

    #[test]
    fn job_list_fast_path_agrees_with_the_general_path() -> Result<()> {
        let lines = [
            // The Python server's form.
            r#"{"return": [{"job_id": 1, "owner": "me", "start_time": 1795470705.6071072, "keepalive": 60.0, "state": 3, "power": true, "args": [2, 3], "kwargs": {"machine": "m", "tags": null, "min_ratio": 0.333}, "allocated_machine_name": "m", "boards": [[1, 0, 2], [0, 0, 0]], "keepalivehost": "10.0.0.1"}]}"#,
            // Queued, never expiring, an integer keepalive, fields left out.
            r#"{"return": [{"job_id": 2, "owner": "x", "start_time": 5, "keepalive": null, "state": 1, "power": null, "args": [], "kwargs": {}, "allocated_machine_name": null, "boards": null, "keepalivehost": null}, {"job_id": 3, "state": 2, "keepalive": 5}, {"job_id": 4, "state": 9, "keepalive": 18446744073709551615}]}"#,
            // The Java service's form: empty strings for "none".
            r#"{"return": [{"job_id": 7, "owner": "", "start_time": 1.7e9, "keepalive": 1700000000.5, "state": 3, "power": false, "args": [1], "kwargs": {"owner": "o"}, "allocated_machine_name": "", "boards": [], "keepalivehost": "", "reason": ""}]}"#,
            // Escapes and unknown fields.
            r#"{"return": [{"job_id": 8, "owner": "caf\u00e9 \"q\"", "state": 3, "extra": {"a": [1]}, "boards": [[4294967295, 0, 1]]}]}"#,
            r#"{"return": []}"#,
        ];
        for line in lines {
            let fast = job_list_line(line.as_bytes());
            assert!(fast.is_some(), "fast path turned down {line}");
            assert_eq!(fast, Some(general_job_list(line)?), "{line}");
        }
        Ok(())
    }

    #[test]
    fn job_list_fast_path_leaves_the_unusual_to_the_general_path() {
        let lines = [
            // Accepted by the general path, in a form the fast path leaves.
            r#"{"return": [{"job_id": 1.0, "state": 3}]}"#,
            r#"{"return": [{"job_id": 1, "state": 3, "owner": false}]}"#,
            r#"{"return": [{"job_id": 1, "state": 3, "start_time": NaN}]}"#,
            r#"{"return": [{"job_id": 1, "state": 3, "boards": [[1.0, 2, 0]]}]}"#,
            r#"{"return": [{"job_id": 1, "state": 3, "owner": "a", "owner": "b"}]}"#,
            r#"{"return": [{"job_id": 1, "state": 3}], "extra": 1}"#,
            // Rejected by both.
            r#"{"return": [[1, "me", 5.0, null, 3]]}"#,
            r#"{"return": [{"state": 3}]}"#,
            r#"{"return": [{"job_id": 1, "state": 3, "boards": [[1, 2]]}]}"#,
            r#"{"return": {"job_id": 1}}"#,
            r#"{"exception": "no"}"#,
        ];
        for line in lines {
            assert!(job_list_line(line.as_bytes()).is_none(), "{line}");
        }
    }
}
