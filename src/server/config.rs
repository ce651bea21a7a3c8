//! Server settings: [`ServerConfig`], built in code or read from TOML.
//!
//! The file format mirrors the Python server's `Configuration` and `Machine`
//! objects (one `[server]` table and one `[[machine]]` table per machine, in
//! priority order), so that a site's settings translate name by name. Every
//! error names the file and the offending field.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::geometry::Link;
use super::machine::{BoardLocation, Layout, Machine};
use super::v2::V2Config;
use super::v2::config::RawV2;

/// Which real server a [`VirtualServer`](super::VirtualServer) answers as.
///
/// Both allocate boards the same way; they differ in everything else a
/// client sees (see the [module documentation](super#dialects)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// The Python `spalloc_server` (1!7): `null` for "not found", a job
    /// for every request, `\n` line ends, Python's JSON.
    #[default]
    Python,
    /// The Java server's v1 compatibility service: exceptions for "not
    /// found" and for impossible requests, a job tied to one machine from
    /// its creation, `\r\n` line ends, Jackson's JSON.
    Java,
}

impl Dialect {
    /// What the `version` command answers by default: `"1.1.0"` for
    /// Python (see [`ServerConfig::version`]) and the Java service's own
    /// `"5.0.0"`.
    pub fn default_version(self) -> &'static str {
        match self {
            Dialect::Python => "1.1.0",
            Dialect::Java => "5.0.0",
        }
    }

    /// The dialect's name in configuration files and flags.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Python => "python",
            Dialect::Java => "java",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Dialect {
    type Err = String;

    /// `python` or `java`, in any case.
    fn from_str(s: &str) -> Result<Dialect, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "python" => Ok(Dialect::Python),
            "java" => Ok(Dialect::Java),
            _ => Err(format!(
                "{s:?} is not a dialect: use \"python\" or \"java\""
            )),
        }
    }
}

/// Settings of a [`VirtualServer`](super::VirtualServer).
///
/// `ServerConfig::default()` describes a realistic server: the timings of the
/// Python server (keepalives checked every 5 s, boards reused 30 s after they
/// were powered off) plus a 2 s power-on/off. Tests and demos usually want
/// [`ServerConfig::instant`], where everything happens at once.
///
/// ```
/// use std::time::Duration;
/// use spalloc::server::{Machine, ServerConfig};
/// let config = ServerConfig::instant()
///     .machines(vec![Machine::new("m", 2, 2)])
///     .power_delay(Duration::from_millis(100));
/// assert_eq!(config.version, "1.1.0");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Address to listen on. Defaults to `127.0.0.1:0` (any free port; ask
    /// [`VirtualServer::local_addr`](super::VirtualServer::local_addr)).
    pub listen: SocketAddr,
    /// Which server to answer as. Defaults to [`Dialect::Python`].
    pub dialect: Dialect,
    /// The machines, highest priority first. When empty, the server runs one
    /// machine named `virtual`, 4 x 2 triads (24 boards), tagged `default`.
    pub machines: Vec<Machine>,
    /// How often keepalive expiry is checked. Defaults to 5 s; a job expires
    /// between its keepalive and its keepalive plus this interval after its
    /// last refresh.
    pub timeout_check_interval: Duration,
    /// How many destroyed jobs' reasons are remembered. Defaults to 1200.
    pub max_retired_jobs: usize,
    /// How long boards stay unavailable after a job's boards were powered
    /// off. Defaults to 30 s.
    pub seconds_before_free: Duration,
    /// How long a power on or off takes (the job is in state 2 meanwhile).
    /// Defaults to 2 s.
    pub power_delay: Duration,
    /// What the `version` command returns. Defaults to the dialect's
    /// [`default_version`](Dialect::default_version): for Python `"1.1.0"`
    /// rather than the real server's `"1!7.1.0"`, which the Python client
    /// cannot parse; `"1.1.0"` suits both the Python client (0.1.0 to below
    /// 7.0.0) and the Java client (0.4.0 to below 2.0.0).
    pub version: String,
    /// Where to keep jobs across restarts; `None` (the default) keeps nothing.
    pub state_file: Option<PathBuf>,
    /// How often, at most, a changed state is written to `state_file`.
    /// Defaults to 1 s. The state is also written at shutdown.
    pub save_interval: Duration,
    /// The longest request line accepted, in bytes. Longer lines are
    /// discarded and answered with an exception. Defaults to 1 MiB.
    pub max_line_length: usize,
    /// How many bytes of replies and notifications may wait for a client
    /// that is not reading before it is disconnected. Defaults to 16 MiB.
    pub max_queued_output: usize,
    /// How many clients may be connected at once; more are turned away.
    /// Defaults to 1000.
    pub max_connections: usize,
    /// The v2 (REST) service to run beside the v1 one, on the same jobs.
    /// `None` (the default in code) runs none; a configuration read from a
    /// file runs one with [`V2Config`]'s defaults unless its `[v2]` table
    /// says `enabled = false`.
    pub v2: Option<V2Config>,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            dialect: Dialect::Python,
            machines: Vec::new(),
            timeout_check_interval: Duration::from_secs(5),
            max_retired_jobs: 1200,
            seconds_before_free: Duration::from_secs(30),
            power_delay: Duration::from_secs(2),
            version: Dialect::Python.default_version().to_owned(),
            state_file: None,
            save_interval: Duration::from_secs(1),
            max_line_length: 1 << 20,
            max_queued_output: 16 << 20,
            max_connections: 1000,
            v2: None,
        }
    }
}

impl ServerConfig {
    /// The defaults, except that nothing takes time: power changes and
    /// board releases are instant, and keepalives are checked (and the
    /// state saved) every 50 ms. What tests and demos want.
    pub fn instant() -> ServerConfig {
        ServerConfig {
            timeout_check_interval: Duration::from_millis(50),
            seconds_before_free: Duration::ZERO,
            power_delay: Duration::ZERO,
            save_interval: Duration::from_millis(50),
            ..ServerConfig::default()
        }
    }

    /// The machine used when none is configured: `virtual`, 4 x 2 triads,
    /// its boards on addresses from 127.100.0.0, which never leave this
    /// computer (a tool that tries to boot them cannot reach a real host).
    pub fn default_machine() -> Machine {
        Machine::new("virtual", 4, 2).base_ip(Ipv4Addr::new(127, 100, 0, 0))
    }

    /// Sets [`listen`](Self::listen).
    pub fn listen(mut self, addr: SocketAddr) -> ServerConfig {
        self.listen = addr;
        self
    }

    /// Sets [`dialect`](Self::dialect). A [`version`](Self::version) that
    /// is still the old dialect's default becomes the new one's.
    pub fn dialect(mut self, dialect: Dialect) -> ServerConfig {
        if self.version == self.dialect.default_version() {
            self.version = dialect.default_version().to_owned();
        }
        self.dialect = dialect;
        self
    }

    /// Sets [`machines`](Self::machines).
    pub fn machines(mut self, machines: Vec<Machine>) -> ServerConfig {
        self.machines = machines;
        self
    }

    /// Sets [`timeout_check_interval`](Self::timeout_check_interval).
    pub fn timeout_check_interval(mut self, d: Duration) -> ServerConfig {
        self.timeout_check_interval = d;
        self
    }

    /// Sets [`max_retired_jobs`](Self::max_retired_jobs).
    pub fn max_retired_jobs(mut self, n: usize) -> ServerConfig {
        self.max_retired_jobs = n;
        self
    }

    /// Sets [`seconds_before_free`](Self::seconds_before_free).
    pub fn seconds_before_free(mut self, d: Duration) -> ServerConfig {
        self.seconds_before_free = d;
        self
    }

    /// Sets [`power_delay`](Self::power_delay).
    pub fn power_delay(mut self, d: Duration) -> ServerConfig {
        self.power_delay = d;
        self
    }

    /// Sets [`version`](Self::version).
    pub fn version(mut self, v: impl Into<String>) -> ServerConfig {
        self.version = v.into();
        self
    }

    /// Sets [`state_file`](Self::state_file).
    pub fn state_file(mut self, path: Option<PathBuf>) -> ServerConfig {
        self.state_file = path;
        self
    }

    /// Sets [`save_interval`](Self::save_interval).
    pub fn save_interval(mut self, d: Duration) -> ServerConfig {
        self.save_interval = d;
        self
    }

    /// Sets [`max_line_length`](Self::max_line_length).
    pub fn max_line_length(mut self, n: usize) -> ServerConfig {
        self.max_line_length = n;
        self
    }

    /// Sets [`max_queued_output`](Self::max_queued_output).
    pub fn max_queued_output(mut self, n: usize) -> ServerConfig {
        self.max_queued_output = n;
        self
    }

    /// Sets [`max_connections`](Self::max_connections).
    pub fn max_connections(mut self, n: usize) -> ServerConfig {
        self.max_connections = n;
        self
    }

    /// Sets [`v2`](Self::v2).
    pub fn v2(mut self, v2: Option<V2Config>) -> ServerConfig {
        self.v2 = v2;
        self
    }

    /// Reads a configuration from TOML text (see the [module
    /// documentation](super) for the format). Settings that are left out
    /// keep their [`Default`] values, except `port`, which defaults to the
    /// standard spalloc port 22244.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field, for TOML syntax errors, unknown
    /// fields, values of the wrong type or range, and machines that do not
    /// validate (dead boards off the machine, duplicate names or addresses…).
    pub fn from_toml_str(text: &str) -> Result<ServerConfig, ConfigError> {
        let raw: RawFile = toml::from_str(text).map_err(|mut e| {
            let at = location(text, e.span());
            // Without the input, the error's text ends with the dotted key
            // it is about (the crate has no accessor for it).
            e.set_input(None);
            let full = e.to_string();
            let field = full
                .rsplit_once("\nin `")
                .map(|(_, k)| k.trim_end().trim_end_matches('`').to_owned());
            ConfigError {
                path: None,
                field,
                message: e.message().trim_end().to_owned() + &at,
            }
        })?;
        raw.into_config()
    }

    /// Reads a configuration file; see [`ServerConfig::from_toml_str`].
    ///
    /// # Errors
    ///
    /// [`ConfigError`] carrying `path`, when the file cannot be read or its
    /// contents are invalid.
    pub fn from_file(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: Some(path.to_owned()),
            field: None,
            message: format!("cannot read the file: {}", crate::error::plain(&e)),
        })?;
        ServerConfig::from_toml_str(&text).map_err(|mut e| {
            e.path = Some(path.to_owned());
            e
        })
    }

    /// Checks everything a running server relies on.
    pub(crate) fn validate(&self) -> Result<Vec<super::machine::MachineDef>, ConfigError> {
        let err = |field: String, message: String| ConfigError {
            path: None,
            field: Some(field),
            message,
        };
        if self.max_line_length == 0 {
            return Err(err(
                "server.max_line_length".into(),
                "must be at least 1".into(),
            ));
        }
        if self.max_connections == 0 {
            return Err(err(
                "server.max_connections".into(),
                "must be at least 1".into(),
            ));
        }
        if self.timeout_check_interval.is_zero() {
            return Err(err(
                "server.timeout_check_interval".into(),
                "must be more than 0".into(),
            ));
        }
        if let Some(v2) = &self.v2 {
            v2.validate()?;
        }
        let default = [ServerConfig::default_machine()];
        let machines: &[Machine] = if self.machines.is_empty() {
            &default
        } else {
            &self.machines
        };
        let mut defs: Vec<super::machine::MachineDef> = Vec::new();
        let mut ips = std::collections::HashMap::new();
        let mut bmp_ips = std::collections::HashMap::new();
        for (i, m) in machines.iter().enumerate() {
            let def = m.resolve().map_err(|message| {
                let (field, message) = split_field(&message);
                err(format!("machine[{i}]{field}"), message)
            })?;
            if defs.iter().any(|d| d.name == def.name) {
                return Err(err(
                    format!("machine[{i}].name"),
                    format!("machine name {:?} is used twice", def.name),
                ));
            }
            for (b, ip) in &def.ips {
                if let Some(other) = ips.insert(ip.clone(), def.name.clone()) {
                    return Err(err(
                        format!("machine[{i}].base_ip"),
                        format!(
                            "address {ip} of board {b:?} is also used by machine {other:?}; give each machine its own base_ip"
                        ),
                    ));
                }
            }
            for ((c, f), ip) in &def.bmps {
                if let Some(other) = bmp_ips.insert(ip.clone(), def.name.clone()) {
                    return Err(err(
                        format!("machine[{i}].base_ip"),
                        format!(
                            "BMP address {ip} of cabinet {c}, frame {f} is also used by machine {other:?}; \
                             give each machine its own base_ip"
                        ),
                    ));
                }
            }
            defs.push(def);
        }
        Ok(defs)
    }
}

/// Splits `"field: message"` from machine validation into `.field` and message.
fn split_field(message: &str) -> (String, String) {
    match message.split_once(": ") {
        Some((field, rest)) if !field.contains(' ') => (format!(".{field}"), rest.to_owned()),
        _ => (String::new(), message.to_owned()),
    }
}

fn location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(span) = span else {
        return String::new();
    };
    let before = text.get(..span.start).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!(" (line {line}, column {column})")
}

/// A configuration that could not be read or is invalid.
///
/// `Display` gives `path: field: message`, leaving out whichever is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigError {
    /// The file, when the configuration came from one.
    pub path: Option<PathBuf>,
    /// The offending setting, such as `machine[0].dead_links[1]`.
    pub field: Option<String>,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.path {
            write!(f, "{}: ", p.display())?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

// ----- the file format -----

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    machine: Vec<RawMachine>,
    v2: Option<RawV2>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    ip: Option<String>,
    port: Option<u16>,
    dialect: Option<String>,
    timeout_check_interval: Option<f64>,
    max_retired_jobs: Option<u64>,
    seconds_before_free: Option<f64>,
    power_delay: Option<f64>,
    version: Option<String>,
    state_file: Option<PathBuf>,
    save_interval: Option<f64>,
    max_line_length: Option<u64>,
    max_queued_output: Option<u64>,
    max_connections: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawLink {
    Number(i64),
    Name(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoard {
    x: u32,
    y: u32,
    z: u32,
    cabinet: u32,
    frame: u32,
    board: u32,
    ip: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // BMP addresses are read for completeness; nothing is powered
struct RawBmp {
    cabinet: u32,
    frame: u32,
    ip: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSingleBoard {
    spinnaker_ip: String,
    #[allow(dead_code)] // as for RawBmp
    bmp_ip: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMachine {
    name: String,
    tags: Option<Vec<String>>,
    width: Option<u32>,
    height: Option<u32>,
    #[serde(default)]
    dead_boards: Vec<(u32, u32, u32)>,
    #[serde(default)]
    dead_links: Vec<(u32, u32, u32, RawLink)>,
    layout: Option<String>,
    base_ip: Option<String>,
    cabinet_stride: Option<String>,
    frame_stride: Option<String>,
    board_stride: Option<String>,
    bmp_offset: Option<String>,
    spinnaker_offset: Option<String>,
    #[serde(default)]
    boards: Vec<RawBoard>,
    #[serde(default)]
    bmps: Vec<RawBmp>,
    single_board: Option<RawSingleBoard>,
}

fn seconds(field: &str, v: Option<f64>, default: Duration) -> Result<Duration, ConfigError> {
    let Some(v) = v else {
        return Ok(default);
    };
    // Durations are capped at about 30 years, far beyond any real use, so
    // that adding them to the clock can never overflow.
    if !(0.0..=1.0e9).contains(&v) {
        return Err(ConfigError {
            path: None,
            field: Some(field.to_owned()),
            message: format!("must be a number of seconds between 0 and 1e9, not {v}"),
        });
    }
    Ok(Duration::from_secs_f64(v))
}

fn size(field: &str, v: Option<u64>, default: usize) -> Result<usize, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) => usize::try_from(v).map_err(|_| ConfigError {
            path: None,
            field: Some(field.to_owned()),
            message: format!("{v} is too large"),
        }),
    }
}

impl RawFile {
    fn into_config(self) -> Result<ServerConfig, ConfigError> {
        let d = ServerConfig::default();
        let s = self.server;
        let ip_text = s.ip.as_deref().unwrap_or("127.0.0.1");
        // The original's "" means every interface.
        let ip: IpAddr = if ip_text.is_empty() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            ip_text.parse().map_err(|_| ConfigError {
                path: None,
                field: Some("server.ip".into()),
                message: format!("{ip_text:?} is not an IP address"),
            })?
        };
        let mut machines = Vec::new();
        for (i, m) in self.machine.into_iter().enumerate() {
            machines.push(m.into_machine(i)?);
        }
        let v2 = self.v2.unwrap_or_default().into_config(ip, seconds, size)?;
        let dialect = match s.dialect.as_deref() {
            None => Dialect::Python,
            Some(text) => text.parse().map_err(|message| ConfigError {
                path: None,
                field: Some("server.dialect".into()),
                message,
            })?,
        };
        let config = ServerConfig {
            listen: SocketAddr::new(ip, s.port.unwrap_or(22244)),
            dialect,
            machines,
            timeout_check_interval: seconds(
                "server.timeout_check_interval",
                s.timeout_check_interval,
                d.timeout_check_interval,
            )?,
            max_retired_jobs: size(
                "server.max_retired_jobs",
                s.max_retired_jobs,
                d.max_retired_jobs,
            )?,
            seconds_before_free: seconds(
                "server.seconds_before_free",
                s.seconds_before_free,
                d.seconds_before_free,
            )?,
            power_delay: seconds("server.power_delay", s.power_delay, d.power_delay)?,
            version: s
                .version
                .unwrap_or_else(|| dialect.default_version().to_owned()),
            state_file: s.state_file,
            save_interval: seconds("server.save_interval", s.save_interval, d.save_interval)?,
            max_line_length: size(
                "server.max_line_length",
                s.max_line_length,
                d.max_line_length,
            )?,
            max_queued_output: size(
                "server.max_queued_output",
                s.max_queued_output,
                d.max_queued_output,
            )?,
            max_connections: size(
                "server.max_connections",
                s.max_connections,
                d.max_connections,
            )?,
            v2,
        };
        config.validate()?;
        Ok(config)
    }
}

impl RawMachine {
    fn into_machine(self, i: usize) -> Result<Machine, ConfigError> {
        let err = |field: &str, message: String| ConfigError {
            path: None,
            field: Some(format!("machine[{i}].{field}")),
            message,
        };
        let addr = |field: &str, v: &Option<String>| -> Result<Option<Ipv4Addr>, ConfigError> {
            match v {
                None => Ok(None),
                Some(s) => s
                    .parse()
                    .map(Some)
                    .map_err(|_| err(field, format!("{s:?} is not an IPv4 address"))),
            }
        };
        let mut links = Vec::new();
        for (j, (x, y, z, l)) in self.dead_links.iter().enumerate() {
            let link = match l {
                RawLink::Number(n) => Link::from_index(*n),
                RawLink::Name(s) => Link::from_name(s),
            }
            .ok_or_else(|| {
                err(
                    &format!("dead_links[{j}]"),
                    "the link must be 0 to 5 or one of east, north_east, north, west, south_west, south".into(),
                )
            })?;
            links.push((*x, *y, *z, link));
        }

        let mut m = if let Some(single) = &self.single_board {
            if self.width.is_some_and(|w| w != 1) || self.height.is_some_and(|h| h != 1) {
                return Err(err(
                    "single_board",
                    "a single-board machine is 1 x 1".into(),
                ));
            }
            if !self.boards.is_empty() || self.layout.is_some() {
                return Err(err(
                    "single_board",
                    "cannot be combined with boards or layout".into(),
                ));
            }
            Machine::single_board(self.name.clone(), single.spinnaker_ip.clone())
        } else {
            let layout = match self.layout.as_deref() {
                None | Some("spinner") => Layout::Spinner,
                Some("linear") => Layout::Linear,
                Some("explicit") => Layout::Explicit,
                Some(other) => {
                    return Err(err(
                        "layout",
                        format!("{other:?} is not one of \"spinner\", \"linear\", \"explicit\""),
                    ));
                }
            };
            // An explicit layout may leave its size to be inferred from the
            // boards it lists, as the original does.
            let infer = |f: fn(&RawBoard) -> u32, g: fn(&(u32, u32, u32)) -> u32| {
                self.boards
                    .iter()
                    .map(f)
                    .chain(self.dead_boards.iter().map(g))
                    .max()
                    .map(|v| v + 1)
            };
            let width = self
                .width
                .or_else(|| {
                    (layout == Layout::Explicit)
                        .then(|| infer(|b| b.x, |d| d.0))
                        .flatten()
                })
                .ok_or_else(|| err("width", "missing (the width in triads)".into()))?;
            let height = self
                .height
                .or_else(|| {
                    (layout == Layout::Explicit)
                        .then(|| infer(|b| b.y, |d| d.1))
                        .flatten()
                })
                .ok_or_else(|| err("height", "missing (the height in triads)".into()))?;
            let boards = self.boards.iter().map(|b| {
                let loc = BoardLocation::new(b.x, b.y, b.z, b.cabinet, b.frame, b.board);
                match &b.ip {
                    Some(ip) => loc.ip(ip.clone()),
                    None => loc,
                }
            });
            Machine::new(self.name.clone(), width, height)
                .layout(layout)
                .boards(boards)
        };
        if let Some(tags) = &self.tags {
            m = m.tags(tags.iter().cloned());
        }
        let mut dead = self.dead_boards.clone();
        if self.single_board.is_some() {
            dead.extend([(0, 0, 1), (0, 0, 2)]);
        }
        m = m.dead_boards(dead).dead_links(links);
        if let Some(ip) = addr("base_ip", &self.base_ip)? {
            m = m.base_ip(ip);
        }
        if let Some(ip) = addr("cabinet_stride", &self.cabinet_stride)? {
            m = m.cabinet_stride(ip);
        }
        if let Some(ip) = addr("frame_stride", &self.frame_stride)? {
            m = m.frame_stride(ip);
        }
        if let Some(ip) = addr("board_stride", &self.board_stride)? {
            m = m.board_stride(ip);
        }
        if let Some(ip) = addr("bmp_offset", &self.bmp_offset)? {
            m = m.bmp_offset(ip);
        }
        if let Some(ip) = addr("spinnaker_offset", &self.spinnaker_offset)? {
            m = m.spinnaker_offset(ip);
        }
        for (j, b) in self.bmps.iter().enumerate() {
            if b.ip.trim().is_empty() {
                return Err(err(&format!("bmps[{j}].ip"), "must not be empty".into()));
            }
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_realistic() {
        let d = ServerConfig::default();
        assert_eq!(d.timeout_check_interval, Duration::from_secs(5));
        assert_eq!(d.seconds_before_free, Duration::from_secs(30));
        assert_eq!(d.max_retired_jobs, 1200);
        assert_eq!(d.power_delay, Duration::from_secs(2));
        assert_eq!(d.version, "1.1.0");
        assert_eq!(d.listen.port(), 0);
        let t = ServerConfig::instant();
        assert!(t.power_delay.is_zero() && t.seconds_before_free.is_zero());
    }

    #[test]
    fn empty_file_gives_defaults_on_the_standard_port() {
        let c = ServerConfig::from_toml_str("");
        let Ok(c) = c else {
            panic!("{c:?}");
        };
        assert_eq!(c.listen.port(), 22244);
        assert_eq!(c.version, "1.1.0");
        assert!(c.machines.is_empty());
    }

    #[test]
    fn dialects() {
        let c = ServerConfig::from_toml_str("[server]\ndialect = \"java\"\n");
        assert!(
            matches!(&c, Ok(c) if c.dialect == Dialect::Java && c.version == "5.0.0"),
            "{c:?}"
        );
        let c = ServerConfig::from_toml_str("[server]\ndialect = \"Java\"\nversion = \"4.0.0\"\n");
        assert!(matches!(&c, Ok(c) if c.version == "4.0.0"), "{c:?}");
        let e = ServerConfig::from_toml_str("[server]\ndialect = \"perl\"\n").err();
        let msg = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.starts_with("server.dialect: \"perl\" is not a dialect"),
            "{msg}"
        );
        let c = ServerConfig::default().dialect(Dialect::Java);
        assert_eq!(c.version, "5.0.0");
        let c = c.version("9.9.9").dialect(Dialect::Python);
        assert_eq!(c.version, "9.9.9");
        assert_eq!(
            ServerConfig::default()
                .dialect(Dialect::Java)
                .dialect(Dialect::Python)
                .version,
            "1.1.0"
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let e = ServerConfig::from_toml_str("[server]\nportt = 1\n").err();
        let msg = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("portt"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
    }
}
