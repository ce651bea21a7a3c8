//! The data of spalloc: what a job asks for, and what a server says about
//! jobs, machines and boards.
//!
//! Plain data with no knowledge of any wire format: how each of these is
//! spelled on the wire, and how the server dialects differ in spelling it,
//! is the business of [`crate::protocol`]. The one exception is the raw
//! request a server echoes back in [`JobDescription`], which is kept as the
//! JSON it came as because servers differ in what they put there.

use std::fmt;

use serde_json::{Map, Value};

use crate::error::InvalidArgument;

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
    /// The reason field (Java compatibility service only, where it is
    /// always empty; on v2, why a destroyed job was destroyed).
    pub reason: Option<String>,
    /// When the job was destroyed (Unix seconds): v2 lists destroyed jobs
    /// too, when asked.
    pub finish_time: Option<f64>,
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
    /// A board by IP address (v2 only).
    Address {
        /// Machine name.
        machine: String,
        /// The board's IP address.
        address: String,
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
    /// One specific board by physical position. On v1 it must come with a
    /// machine, and is asked for by its logical coordinate (looked up with
    /// `get_board_at_position`).
    Physical(BoardPosition),
    /// One specific board by IP address: v2 only.
    Address(std::net::Ipv4Addr),
}

impl JobRequest {
    /// Whether this asks for a single board (where `require_torus` makes no
    /// sense).
    pub fn is_single_board(&self) -> bool {
        matches!(
            self,
            JobRequest::AnyBoard
                | JobRequest::Board(_)
                | JobRequest::Boards(1)
                | JobRequest::Physical(_)
                | JobRequest::Address(_)
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
    ///
    /// A number rather than a `Duration` because it is sent as written:
    /// `5` and `5.0` are different on the wire, and the Java service and the
    /// Python tools show it back as sent. Set it as a `Duration` with
    /// [`JobOptions::keepalive`](crate::JobOptions::keepalive).
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
    /// The accounting group to charge (v2 only; v1 servers ignore it).
    /// Defaults to `None`: the user's only group.
    pub group: Option<String>,
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
            group: None,
        }
    }

    /// Checks what the servers would reject (or, worse, half-accept: the
    /// Python server leaves a zombie job behind on some of these), in this
    /// order: the owner, a machine with tags, wrap-around links for a single
    /// board (only when `request` is given), the minimum ratio and the
    /// keepalive; then what a v1 server cannot be asked (a board by IP
    /// address, a board by physical position without a machine).
    ///
    /// # Errors
    /// The first problem found, naming the setting.
    pub fn validate(&self, request: Option<&JobRequest>) -> Result<(), InvalidArgument> {
        if self.owner.trim().is_empty() {
            return Err(InvalidArgument::NoOwner);
        }
        if self.machine.is_some() && self.tags.is_some() {
            return Err(InvalidArgument::MachineAndTags);
        }
        if self.require_torus && request.is_some_and(JobRequest::is_single_board) {
            return Err(InvalidArgument::TorusForSingleBoard);
        }
        if self.min_ratio.is_nan() || self.min_ratio < 0.0 {
            return Err(InvalidArgument::MinRatio(self.min_ratio));
        }
        if let Some(k) = self.keepalive {
            crate::seconds::limit(k.as_f64()).map_err(InvalidArgument::Keepalive)?;
        }
        match request {
            Some(JobRequest::Address(_)) => Err(InvalidArgument::NotOnProtocol {
                option: "a board by IP address",
                protocol: "v1",
            }),
            Some(JobRequest::Physical(_)) if self.machine.is_none() => {
                Err(InvalidArgument::PhysicalWithoutMachine)
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_job_validation() {
        let req = JobRequest::AnyBoard;
        assert_eq!(
            CreateJobOptions::new(" ").validate(Some(&req)),
            Err(InvalidArgument::NoOwner)
        );
        let mut o = CreateJobOptions::new("me");
        o.machine = Some("m".into());
        o.tags = Some(vec![]);
        assert_eq!(o.validate(Some(&req)), Err(InvalidArgument::MachineAndTags));
        let mut o = CreateJobOptions::new("me");
        o.require_torus = true;
        assert_eq!(
            o.validate(Some(&req)),
            Err(InvalidArgument::TorusForSingleBoard)
        );
        assert!(o.validate(None).is_ok());
        assert!(
            o.validate(Some(&JobRequest::Triads {
                width: 2,
                height: 2
            }))
            .is_ok()
        );
        o.min_ratio = f64::NAN;
        assert!(matches!(
            o.validate(Some(&JobRequest::Boards(6))),
            Err(InvalidArgument::MinRatio(r)) if r.is_nan()
        ));
    }
}
