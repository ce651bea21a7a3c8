//! The `--json` output: one view struct per document, whose fields, in the
//! order they are declared, are the schema (CLI_REFERENCE §12). Every
//! subcommand spells the same things the same way: snake_case names,
//! coordinates as objects, times as an ISO-8601 UTC string plus Unix
//! seconds, sorted lists, `null` for what is missing or not a finite number.
//!
//! JSON escapes control characters itself, so unlike the text views these
//! need no [`visible`](super::text::visible).

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};
use spalloc::{
    Board, BoardPosition, Chip, ConfigEntry, ConfigFile, ConfigValue, Connection, DeadLink,
    FileStatus, JobDescription, JobMachineInfo, JobState, JobStateInfo, KeepaliveInterval,
    MachineDescription, Number, WhereIs,
};

use super::time::iso8601_utc;

/// One compact JSON document and a newline.
pub fn line(document: &impl Serialize) -> String {
    // Serialising plain data into a string cannot fail.
    let mut s = serde_json::to_string(document).unwrap_or_default();
    s.push('\n');
    s
}

/// `{"x","y","z"}`.
#[derive(Serialize)]
pub struct BoardView {
    x: u32,
    y: u32,
    z: u32,
}

impl From<&Board> for BoardView {
    fn from(b: &Board) -> Self {
        BoardView {
            x: b.x,
            y: b.y,
            z: b.z,
        }
    }
}

/// A sorted list of boards.
fn boards(list: &[Board]) -> Vec<BoardView> {
    let mut sorted = list.to_vec();
    sorted.sort_unstable();
    sorted.iter().map(BoardView::from).collect()
}

/// `{"x","y"}`.
#[derive(Serialize)]
pub struct ChipView {
    x: u32,
    y: u32,
}

impl From<&Chip> for ChipView {
    fn from(c: &Chip) -> Self {
        ChipView { x: c.x, y: c.y }
    }
}

/// `{"cabinet","frame","board"}`.
#[derive(Serialize)]
pub struct PositionView {
    cabinet: u32,
    frame: u32,
    board: u32,
}

/// `{"x","y","z","link"}`.
#[derive(Serialize)]
pub struct DeadLinkView {
    x: u32,
    y: u32,
    z: u32,
    link: u32,
}

impl From<&DeadLink> for DeadLinkView {
    fn from(l: &DeadLink) -> Self {
        DeadLinkView {
            x: l.board.x,
            y: l.board.y,
            z: l.board.z,
            link: l.link,
        }
    }
}

/// `{"x","y","hostname"}`.
#[derive(Serialize)]
pub struct ConnectionView<'a> {
    x: u32,
    y: u32,
    hostname: &'a str,
}

/// A sorted list of Ethernet-connected chips.
pub fn connections(list: &[Connection]) -> Vec<ConnectionView<'_>> {
    let mut sorted: Vec<&Connection> = list.iter().collect();
    sorted.sort_unstable();
    sorted
        .into_iter()
        .map(|c| ConnectionView {
            x: c.chip.x,
            y: c.chip.y,
            hostname: &c.hostname,
        })
        .collect()
}

/// A number as it came: an integer, or a float (`null` if not finite).
pub struct NumberView(Number);

impl Serialize for NumberView {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Number::Int(i) => s.serialize_i64(i),
            // serde_json writes a non-finite float as null.
            Number::Float(f) => s.serialize_f64(f),
        }
    }
}

/// The state's name; an unrecognised state as its number, as a string.
fn state(s: JobState) -> String {
    s.to_string()
}

/// `{"args","kwargs"}`: a job's request as the server echoed it.
#[derive(Serialize)]
pub struct RequestView<'a> {
    args: &'a [Value],
    kwargs: &'a Map<String, Value>,
}

/// One job of `ps --json`.
#[derive(Serialize)]
pub struct PsJob<'a> {
    id: u64,
    state: String,
    power: Option<bool>,
    num_boards: Option<usize>,
    boards: Option<Vec<BoardView>>,
    machine: Option<&'a str>,
    start_time: Option<String>,
    start_time_unix: Option<f64>,
    keepalive: Option<NumberView>,
    owner: Option<&'a str>,
    keepalive_host: Option<&'a str>,
    request: RequestView<'a>,
    /// With `ps --all` only: when the job ended, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_time: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Option<&'a str>>,
}

impl<'a> PsJob<'a> {
    /// With `all`, the finish time and reason (`null` for a live job).
    pub fn ended(mut self, all: bool, job: &'a JobDescription) -> Self {
        if all {
            self.finish_time = Some(job.finish_time.and_then(iso8601_utc));
            self.reason = Some(
                job.reason
                    .as_deref()
                    .filter(|_| job.state == spalloc::JobState::Destroyed),
            );
        }
        self
    }
}

impl<'a> From<&'a JobDescription> for PsJob<'a> {
    fn from(job: &'a JobDescription) -> Self {
        let allocated = !job.boards.is_empty();
        PsJob {
            id: job.job_id,
            state: state(job.state),
            power: job.power,
            num_boards: allocated.then_some(job.boards.len()),
            boards: allocated.then(|| boards(&job.boards)),
            machine: job.allocated_machine_name.as_deref(),
            start_time: job.start_time.and_then(iso8601_utc),
            start_time_unix: job.start_time,
            keepalive: job.keepalive.map(NumberView),
            owner: job.owner.as_deref(),
            keepalive_host: job.keepalive_host.as_deref(),
            request: RequestView {
                args: &job.args,
                kwargs: &job.kwargs,
            },
            finish_time: None,
            reason: None,
        }
    }
}

/// `job --json`: every key always present, `null` where the job has no
/// value (for a dead or unknown job, all but `id`, `state` and `reason`).
#[derive(Serialize, Default)]
pub struct JobView<'a> {
    id: u64,
    state: Option<String>,
    owner: Option<&'a str>,
    start_time: Option<String>,
    start_time_unix: Option<f64>,
    keepalive: Option<NumberView>,
    keepalive_host: Option<&'a str>,
    reason: Option<&'a str>,
    request: Option<RequestView<'a>>,
    machine: Option<&'a str>,
    hostname: Option<&'a str>,
    width: Option<u32>,
    height: Option<u32>,
    num_boards: Option<usize>,
    boards: Option<Vec<BoardView>>,
    power: Option<bool>,
    connections: Option<Vec<ConnectionView<'a>>>,
    keeper_pid: Option<u32>,
}

impl<'a> JobView<'a> {
    /// A live job, as `list_jobs` lists it, with its boards' whereabouts.
    pub fn live(
        job: &'a JobDescription,
        info: Option<&'a JobMachineInfo>,
        keeper_pid: Option<u32>,
    ) -> Self {
        let ps = PsJob::from(job);
        JobView {
            id: job.job_id,
            state: Some(ps.state),
            owner: ps.owner,
            start_time: ps.start_time,
            start_time_unix: ps.start_time_unix,
            keepalive: ps.keepalive,
            keepalive_host: ps.keepalive_host,
            reason: None,
            request: Some(ps.request),
            machine: ps.machine,
            hostname: info.and_then(JobMachineInfo::hostname),
            width: info.map(|i| i.width),
            height: info.map(|i| i.height),
            num_boards: ps.num_boards,
            boards: ps.boards,
            power: ps.power,
            connections: info.map(|i| connections(&i.connections)),
            keeper_pid,
        }
    }

    /// A job that is not live: only its state and why it ended.
    pub fn dead(id: u64, info: &'a JobStateInfo) -> Self {
        JobView {
            id,
            state: Some(state(info.state)),
            reason: info.reason.as_deref(),
            ..JobView::default()
        }
    }
}

/// `alloc --json`: the allocation, once it is ready, and the keepalive
/// interval the server applies to it.
#[derive(Serialize)]
pub struct AllocationView<'a> {
    id: u64,
    machine: &'a str,
    hostname: Option<&'a str>,
    width: u32,
    height: u32,
    boards: Vec<BoardView>,
    connections: Vec<ConnectionView<'a>>,
    /// Seconds; `null` if the job never expires.
    keepalive: Option<f64>,
    /// Whether that is the interval asked for; `null` if not known (a
    /// resumed job).
    keepalive_honoured: Option<bool>,
}

impl<'a> AllocationView<'a> {
    /// Job `id`'s allocation.
    pub fn new(
        id: u64,
        info: &'a JobMachineInfo,
        keepalive: Option<KeepaliveInterval>,
        keepalive_honoured: Option<bool>,
    ) -> Self {
        AllocationView {
            id,
            machine: &info.machine_name,
            hostname: info.hostname(),
            width: info.width,
            height: info.height,
            boards: boards(&info.boards),
            connections: connections(&info.connections),
            keepalive: keepalive.and_then(KeepaliveInterval::seconds),
            keepalive_honoured,
        }
    }
}

/// One job in `machine NAME --json`.
#[derive(Serialize)]
pub struct MachineJobView<'a> {
    key: String,
    id: u64,
    num_boards: usize,
    owner: Option<&'a str>,
    keepalive_host: Option<&'a str>,
    boards: Vec<BoardView>,
}

impl<'a> MachineJobView<'a> {
    /// The job keyed `key` on the machine's map.
    pub fn new(key: String, job: &'a JobDescription) -> Self {
        MachineJobView {
            key,
            id: job.job_id,
            num_boards: job.boards.len(),
            owner: job.owner.as_deref(),
            keepalive_host: job.keepalive_host.as_deref(),
            boards: boards(&job.boards),
        }
    }
}

/// A machine in `machine --json`; with its jobs for `machine NAME --json`.
#[derive(Serialize)]
pub struct MachineView<'a> {
    name: &'a str,
    tags: &'a [String],
    width_triads: u32,
    height_triads: u32,
    num_boards: u64,
    in_use: usize,
    num_jobs: usize,
    dead_boards: Vec<BoardView>,
    dead_links: Vec<DeadLinkView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jobs: Option<Vec<MachineJobView<'a>>>,
}

impl<'a> MachineView<'a> {
    /// The summary of a machine on which `in_use` boards are held by
    /// `num_jobs` jobs.
    pub fn new(machine: &'a MachineDescription, in_use: usize, num_jobs: usize) -> Self {
        MachineView {
            name: &machine.name,
            tags: &machine.tags,
            width_triads: machine.width,
            height_triads: machine.height,
            num_boards: machine.num_boards(),
            in_use,
            num_jobs,
            dead_boards: boards(&machine.dead_boards),
            dead_links: machine.dead_links.iter().map(DeadLinkView::from).collect(),
            jobs: None,
        }
    }

    /// With the machine's jobs listed.
    pub fn with_jobs(mut self, jobs: Vec<MachineJobView<'a>>) -> Self {
        self.jobs = Some(jobs);
        self
    }
}

/// `where-is --json`.
#[derive(Serialize)]
pub struct WhereIsView<'a> {
    machine: &'a str,
    physical: PositionView,
    logical: BoardView,
    chip: ChipView,
    board_chip: ChipView,
    job_id: Option<u64>,
    job_chip: Option<ChipView>,
}

impl<'a> From<&'a WhereIs> for WhereIsView<'a> {
    fn from(w: &'a WhereIs) -> Self {
        let BoardPosition {
            cabinet,
            frame,
            board,
        } = w.physical;
        WhereIsView {
            machine: &w.machine,
            physical: PositionView {
                cabinet,
                frame,
                board,
            },
            logical: BoardView::from(&w.logical),
            chip: ChipView::from(&w.chip),
            board_chip: ChipView::from(&w.board_chip),
            job_id: w.job_id,
            job_chip: w.job_chip.as_ref().map(ChipView::from),
        }
    }
}

/// `config --json`: the files searched and every key's value and source.
#[derive(Serialize)]
pub struct ConfigView<'a> {
    search_path: Vec<ConfigFileView>,
    values: ConfigValues<'a>,
    /// For a v2 service only: which, where the credentials come from, and
    /// the v2 keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<ServerView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    v2_values: Option<ConfigValues<'a>>,
}

/// `{"protocol", "url", "credentials"}`.
#[derive(Serialize)]
struct ServerView<'a> {
    protocol: &'static str,
    url: &'a str,
    credentials: &'a str,
}

impl<'a> ConfigView<'a> {
    /// The files and entries of a configuration.
    pub fn new(files: &[ConfigFile], entries: &'a [ConfigEntry]) -> Self {
        ConfigView {
            search_path: files
                .iter()
                .map(|f| ConfigFileView {
                    path: f.path.display().to_string(),
                    status: match f.status {
                        FileStatus::Read => "read",
                        FileStatus::NotFound => "not_found",
                        FileStatus::NotAFile => "not_a_file",
                    },
                })
                .collect(),
            values: ConfigValues(entries),
            server: None,
            v2_values: None,
        }
    }

    /// Adds the v2 part.
    pub fn v2(mut self, entries: &'a [ConfigEntry], url: &'a str, credentials: &'a str) -> Self {
        self.server = Some(ServerView {
            protocol: "v2",
            url,
            credentials,
        });
        self.v2_values = Some(ConfigValues(entries));
        self
    }
}

/// `{"path","status"}`.
#[derive(Serialize)]
struct ConfigFileView {
    path: String,
    status: &'static str,
}

/// `{KEY: {"value","source"}, …}`, in the order of the keys.
struct ConfigValues<'a>(&'a [ConfigEntry]);

impl Serialize for ConfigValues<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for e in self.0 {
            map.serialize_entry(
                e.key,
                &ConfigEntryView {
                    value: TypedValue(&e.value),
                    source: e
                        .source
                        .as_ref()
                        .map_or_else(|| "default".to_owned(), |p| p.display().to_string()),
                },
            )?;
        }
        map.end()
    }
}

/// `{"value","source"}`.
#[derive(Serialize)]
struct ConfigEntryView<'a> {
    value: TypedValue<'a>,
    source: String,
}

/// A configuration value as its JSON type (`null` for none, or for a
/// float that is not finite).
struct TypedValue<'a>(&'a ConfigValue);

impl Serialize for TypedValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            ConfigValue::Str(v) => v.serialize(s),
            ConfigValue::Int(v) => v.serialize(s),
            ConfigValue::Float(v) => v.serialize(s),
            ConfigValue::Bool(v) => v.serialize(s),
            ConfigValue::List(v) => v.serialize(s),
        }
    }
}
