//! A virtual spalloc server: the spalloc v1 protocol, and the Java server's
//! v2 REST service, with no hardware behind them.
//!
//! [`VirtualServer`] listens on TCP and answers every command of the
//! protocol the way a real server does: the same allocation algorithm as the
//! Python `spalloc_server` (so the same boards for the same sequence of
//! requests), the same queueing, job states, keepalive expiry, destroy
//! reasons, `where_is` answers and change notifications. Powering boards on
//! and off is simulated by a configurable delay. It is meant for testing
//! clients and for demos.
//!
//! # Dialects
//!
//! A server answers as one of two real servers, chosen by
//! [`ServerConfig::dialect`] (`dialect` in the TOML file, `spalloc serve
//! --dialect`):
//!
//! * [`Dialect::Python`] (the default): `spalloc_server` 1!7. A job id for
//!   every well-formed request (one no machine can run is destroyed at once,
//!   `"Cancelled: No suitable machines available."`); `null` for anything not
//!   found (`state` 0 for an unknown job); a queued job may go to whichever
//!   eligible machine frees up first; keepalive `null` never expires; expiry
//!   reason `"Job timed out."`; coordinates wrap around the machine. Arguments
//!   bind as a Python call binds them, with CPython's error messages, and ids
//!   are looked up as a Python dictionary looks them up (`true` and `1.0` are
//!   job 1, `"1"` is no job, a list is "unhashable"). An empty line is
//!   skipped; a line that is not UTF-8, not a JSON object, names no known
//!   command, or has `args` that are not a list or `kwargs` that are not an
//!   object ends the connection without a reply. Replies are `json.dumps`
//!   lines (`", "` and `": "`, non-ASCII escaped) ending in `\n`; the changes
//!   caused by the requests read together are reported after all of their
//!   replies.
//! * [`Dialect::Java`]: the Java server's v1 compatibility service. Version
//!   `"5.0.0"`; exceptions instead of `null`s (`no such job`, `boards not
//!   allocated`, `no boards currently allocated`, `no such machine`, `no such
//!   board`); a request no machine can ever run is refused (`no machine
//!   available which matches allocation request`) and makes no job; a new job
//!   is tied to the first machine that could run it and waits only for that
//!   one; keepalive `null` means the default 60 s; expiry reason `"keepalive
//!   expired"`; job ids and `notify_*` arguments are read only by position,
//!   `reason`, `where_is` and the board lookups only by keyword, numbers
//!   through the service's `parseDec`; unused arguments are ignored;
//!   `get_job_state` reports the time of the last keepalive and `""` for no
//!   reason or host; `list_jobs` echoes every keyword argument; dead links are
//!   numbered by board direction and listed from both ends; `report_problem`
//!   is accepted; `login` is refused. Bad JSON gets an exception and the
//!   connection carries on; a blank line, `null` or a request without a
//!   command ends it. Lines end in `\r\n`, `\r` or `\n` on the way in and in
//!   `\r\n` on the way out, in Jackson's compact JSON with Java's number
//!   formatting (`1.79547E9`). Notifications are sent by subscription: one
//!   message per watched job or machine plus one for "all", so a change can
//!   be reported twice; "all jobs" does not report a job's creation; and a
//!   change is reported before the reply to the request that caused it.
//!
//! # Deliberate differences from the real servers
//!
//! Everything else is meant to match byte for byte; a difference not listed
//! here is a bug.
//!
//! * **Requests the Python server half-creates.** `create_job` checks its
//!   arguments before making a job. The real server takes a job id first and
//!   then fails (leaving a queued job behind that can later crash its
//!   keepalive sweep) on: unknown keyword arguments, `machine` with `tags`,
//!   `require_torus` for a single board, a negative or `null` `min_ratio` for
//!   a number of boards, more than seven positional arguments, a positional
//!   argument also given by keyword. Here these get the real server's
//!   exception text and no job; with no machine matching the request's tags
//!   the real server would instead return a job id and cancel the job.
//! * **Wrongly typed arguments** (Python): board coordinates, `tags`,
//!   `machine`, `max_dead_boards`, `max_dead_links`, `where_is` coordinates
//!   and a `destroy_job` reason of the wrong type get an exception of ours
//!   naming the argument, where the real server fails later with a Python
//!   `TypeError` from deep inside, or (`tags` given as a string) goes on with
//!   nonsense.
//! * **Version** (Python): `"1.1.0"` by default rather than `"1!7.1.0"`,
//!   which the Python client cannot parse; set [`ServerConfig::version`].
//! * **Limits**: lines longer than [`ServerConfig::max_line_length`] are
//!   discarded and answered with an exception, a client that stops reading is
//!   disconnected once [`ServerConfig::max_queued_output`] bytes wait for it,
//!   and at most [`ServerConfig::max_connections`] clients are served. The
//!   real servers have no such limits.
//! * **JSON the real servers accept and this one does not** (both dialects):
//!   `NaN` and `Infinity` (Python), and nesting deeper than 128 levels; such
//!   a line is bad JSON here.
//! * **Order**: boards, connections and changed ids are sorted (the real
//!   servers use hash or database order); `Invalid arguments:` lists its keys
//!   sorted; the Java dialect echoes `list_jobs` keyword arguments in the
//!   order sent (the service uses Java `HashMap` order) and writes reply
//!   fields in the order Jackson's rules give the service's classes.
//! * **Timing**: power changes take [`ServerConfig::power_delay`] instead of
//!   real BMP time; keepalives are checked every
//!   [`ServerConfig::timeout_check_interval`] and after every request in both
//!   dialects (the Java service checks every 30 s), so a keepalive of zero or
//!   less ends a job at once in both. The Python dialect groups notifications
//!   by the requests one client sent together, not by a pass over every
//!   client.
//! * **Java specifics not imitated**: boards are chosen by the Python
//!   server's allocator (the same machine, maybe other boards than the Java
//!   allocator would pick); destroyed jobs are remembered for
//!   [`ServerConfig::max_retired_jobs`] jobs rather than 14 days; a watch of
//!   one job or machine does not repeat its notification every 60 s; the
//!   texts of Jackson's JSON errors follow its wording but are not always
//!   exact; the owner is not checked against users and groups, and there are
//!   no quotas.
//! * `report_problem` (Java) is logged, not recorded.
//!
//! # The v2 service
//!
//! With [`ServerConfig::v2`] set, the server also runs the Java spalloc
//! server's REST service (PROTOCOL_V2.md), on its own port, on the same
//! jobs: a job made through either protocol is seen, kept alive, powered and
//! destroyed through both. [`V2Config`] sets its address, base path, TLS,
//! users and limits; [`VirtualServer::v2_url`] says where it is. It logs in
//! (the login form with its CSRF token and a new `JSESSIONID`, bearer
//! tokens, Basic), checks CSRF tokens on state changes of cookie sessions,
//! answers 401, 403 and 404 (another user's job), pages and long-polls as
//! the Java server does. A job made through it follows the Java engine's
//! rules whatever the [dialect](#dialects): the §4.5 shapes, one machine
//! chosen at creation, no job for an impossible request, `keepalive
//! expired`.
//!
//! It also runs the proxy websocket (`proxy/{id}` under the application
//! root), which relays UDP between a client and the job's boards, channel
//! by channel, with the Java server's rules, `ERROR` frames and close
//! codes. Each board is a virtual board on loopback that answers SCP's
//! version command (`CMD_VER`) as SC&MP does and takes boot datagrams
//! silently, while its job holds it powered on, and only from the proxy. A
//! board whose address is on loopback (127.0.0.0/8, as the built-in
//! machine's are) binds that address, with
//! [`V2Config::board_scp_port`] and [`V2Config::board_boot_port`] when they
//! are free and any free port otherwise; any other board binds 127.0.0.1,
//! so nothing is ever sent to a real network. A client that leaves
//! [`V2Config::proxy_send_buffer`] bytes unread, or a write blocked for
//! [`V2Config::proxy_send_timeout`], is disconnected.
//!
//! Deliberate differences from the Java server's REST service:
//! * Where the Java server has a bug, this one does the right thing: a
//!   create request naming more than one of `group`, `nmpi-collab` and
//!   `nmpi-job-id` is refused with no job made (the Java server makes one
//!   anyway); `job-ref` and `machine-ref` in where-is and job-machine
//!   answers include the `spalloc/` segment the Java server leaves out;
//!   `job-chip` of a job-chip lookup is relative to the job's root (the
//!   Java server adds the root twice); `machines/{m}/chip` finds the board
//!   holding the chip (the Java server's query returns an arbitrary one);
//!   `POST …/machine/power` without `power` is a 400, not a power-off.
//! * Unknown fields in request bodies and query parameters that are not
//!   integers are a 400 naming them (on the Java server, a 400, 404 or 500).
//! * Accounts are locked after failed logins only if [`V2Config::lockout`]
//!   is set (the Java server means to lock after three failures, but its
//!   lock is rolled back with the failed login).
//! * Long-polls cannot miss a change that lands just before they wait, and
//!   waiting on a destroyed job answers at once (the Java server waits out
//!   the bound).
//! * The proxy websocket (`proxy/{id}`, with [`V2Config::proxy`]) gives
//!   `proxy-ref` as `ws://` when the service is plain HTTP (the Java server
//!   says `wss://` whatever it runs on); `OPEN` after the job has lost its
//!   boards is refused with `ERROR` (the Java server opens a channel to
//!   boards that may be someone else's by then); boards that are not on
//!   loopback are reached on 127.0.0.1, and a virtual board serves only its
//!   SCP and boot ports (a channel to any other port opens, and nothing
//!   answers); a websocket may have at most 4096 channels.
//! * Groups, quotas and NMPI are not modelled (`group`, `nmpi-collab` and
//!   `nmpi-job-id` are accepted and echoed in `original-request`); issue
//!   reports are recorded but take no board out of service; the endpoints
//!   that drive real boards (`memory`, `fast-data-*`, `router`) answer 501,
//!   and `emergencyStop` is not offered.
//!
//! # Example
//!
//! ```no_run
//! use std::io::{BufRead, BufReader, Write};
//! use std::net::TcpStream;
//! use spalloc::server::{Machine, ServerConfig, VirtualServer};
//!
//! let server = VirtualServer::start(
//!     ServerConfig::instant().machines(vec![Machine::new("m", 2, 2)]),
//! )?;
//! let mut stream = TcpStream::connect(server.local_addr())?;
//! stream.write_all(b"{\"command\": \"create_job\", \"args\": [1, 1], \"kwargs\": {\"owner\": \"me\"}}\n")?;
//! let mut reply = String::new();
//! BufReader::new(&stream).read_line(&mut reply)?;
//! assert_eq!(reply, "{\"return\": 1}\n");
//! server.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Configuration file
//!
//! [`ServerConfig::from_file`] reads TOML. Every key is optional except each
//! machine's `name` (and its `width` and `height`, unless it is a
//! single-board machine or lists its boards explicitly):
//!
//! ```toml
//! [server]
//! ip = "127.0.0.1"              # "" = every interface
//! port = 22244                  # 0 = any free port
//! dialect = "python"            # or "java"
//! timeout_check_interval = 5.0  # seconds
//! max_retired_jobs = 1200
//! seconds_before_free = 30.0
//! power_delay = 2.0             # how long a power on/off takes
//! version = "1.1.0"             # default: "1.1.0" (python) or "5.0.0" (java)
//! state_file = "spalloc-state.json"
//! save_interval = 1.0
//! max_line_length = 1048576
//! max_queued_output = 16777216
//! max_connections = 1000
//!
//! [v2]                          # the v2 service; enabled unless `enabled = false`
//! port = 22245                  # default: the v1 port + 1 (0 if that is 0)
//! base_path = "/spalloc/"
//! self_signed_ca = "v2-ca.pem"  # HTTPS with a throw-away certificate, or
//! # tls_cert = "cert.pem"       # with a certificate and key from PEM files
//! # tls_key = "key.pem"
//! session_timeout = 1800.0
//! wait_timeout = 30.0           # the longest a ?wait=true request waits
//! keepalive_min = 30.0
//! keepalive_max = 300.0
//! lockout_failures = 0          # 0: never lock accounts
//! lockout_duration = 86400.0
//! version = "7.4.1"
//! max_connections = 1000
//! max_head = 16384
//! max_body = 65536
//! request_timeout = 30.0
//! idle_timeout = 60.0
//! max_sessions = 10000
//! proxy = true                  # the proxy websocket and virtual boards
//! board_scp_port = 17893        # local UDP ports boards bind (0: any free)
//! board_boot_port = 54321
//! proxy_send_buffer = 524288    # slow proxy clients are disconnected
//! proxy_send_timeout = 10.0
//!
//! [[v2.user]]                   # without any, one user: test / test
//! name = "alice"
//! password = "s3cret"           # or password_hash = "pbkdf2-sha256$…"
//! role = "user"                 # "reader", "user" or "admin"
//! tokens = ["a-bearer-token"]
//! groups = ["my-group"]         # accounting groups; with several, jobs name one
//!
//! [[machine]]                   # one table per machine, highest priority first
//! name = "m"
//! tags = ["default"]
//! width = 2                     # triads
//! height = 2
//! dead_boards = [[0, 0, 1]]
//! dead_links = [[1, 1, 1, "north"], [1, 1, 0, 3]]   # a link name or number
//! layout = "spinner"            # or "linear", or "explicit" (only `boards`)
//! base_ip = "192.168.0.0"       # the standard-address parameters
//! cabinet_stride = "0.0.5.0"
//! frame_stride = "0.0.1.0"
//! board_stride = "0.0.0.8"
//! bmp_offset = "0.0.0.0"
//! spinnaker_offset = "0.0.0.1"
//! boards = [{ x = 0, y = 0, z = 0, cabinet = 0, frame = 0, board = 0, ip = "10.0.0.1" }]
//! bmps = [{ cabinet = 0, frame = 0, ip = "10.0.0.0" }]  # informational
//!
//! [[machine]]
//! name = "one"
//! tags = ["small"]
//! base_ip = "10.1.0.0"
//! single_board = { spinnaker_ip = "10.1.0.1" }
//! ```
//!
//! Link names are `east`, `north_east`, `north`, `west`, `south_west` and
//! `south` (numbers 0 to 5 in that order).

mod allocator;
mod boards;
#[cfg(test)]
mod clocked;
mod config;
mod epochs;
mod error;
mod freezset;
mod geometry;
mod layout;
mod machine;
mod net;
mod pack_tree;
mod persist;
mod state;
mod v1;
mod v2;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::info;

pub use config::{ConfigError, Dialect, ServerConfig};
pub use error::ServerError;
pub use geometry::Link;
pub use machine::{BoardLocation, Layout, MAX_TRIADS, Machine};
pub use v2::{Lockout, V2Config, V2Password, V2Role, V2Tls, V2User};

use net::{Core, Shared};
use state::{Controller, Policy, Settings};

/// A running virtual spalloc server.
///
/// It serves on background threads from [`start`](Self::start) until
/// [`shutdown`](Self::shutdown) or drop, which stop accepting, disconnect
/// every client, wait for all threads and, with a
/// [`state_file`](ServerConfig::state_file), save the state.
#[derive(Debug)]
#[must_use = "dropping a VirtualServer shuts it down"]
pub struct VirtualServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
    ticker: Option<JoinHandle<()>>,
    v2: Option<v2::V2Server>,
}

impl VirtualServer {
    /// Validates `config`, restores the state file if there is one, binds
    /// [`config.listen`](ServerConfig::listen) and starts serving.
    ///
    /// # Errors
    ///
    /// [`ServerError::Config`] for an invalid configuration (naming the
    /// setting), [`ServerError::Unusable`] for a state file that cannot be
    /// written where it is to be or v2 users, certificate or key that cannot
    /// be used (naming the file or setting), [`ServerError::StateFile`] for
    /// a state file that exists but cannot be read or used,
    /// [`ServerError::Listen`] if an address cannot be listened on, and
    /// [`ServerError::Io`] if the operating system refuses another step.
    pub fn start(config: ServerConfig) -> Result<VirtualServer, ServerError> {
        let defs = config.validate()?;
        let mut controller = Controller::new(settings(&config), defs);
        if let Some(path) = &config.state_file {
            persist::check_writable(path)?;
        }
        if let Some(path) = &config.state_file
            && let Some(saved) = persist::load(path)?
        {
            info!(
                "restoring {} job(s) from {}",
                saved.jobs.len(),
                path.display()
            );
            controller.restore(saved, Instant::now());
            // Nobody is connected yet to be told about these.
            controller.take_changes();
        }
        let listen_failed = |source| ServerError::Listen {
            addr: config.listen,
            v2: false,
            source,
        };
        let listener = TcpListener::bind(config.listen).map_err(listen_failed)?;
        let addr = listener.local_addr().map_err(listen_failed)?;
        let v2_config = config.v2.clone();
        // The v2 port follows the configured v1 port (0 stays "any").
        let v1_listen = config.listen;
        info!("virtual spalloc server listening on {addr}");
        let shared = Arc::new(Shared {
            core: net::FairLock::new(Core::new(controller, config.dialect)),
            clock: net::Clock::default(),
            wake: Mutex::new(false),
            wake_signal: Condvar::new(),
            config,
            stopping: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let ticker = thread::Builder::new()
            .name("spalloc-server-tick".into())
            .spawn(move || net::tick_loop(&s))
            .map_err(|e| ServerError::io("cannot start a thread", e))?;
        let s = shared.clone();
        let acceptor = thread::Builder::new()
            .name("spalloc-server-accept".into())
            .spawn(move || net::accept_loop(&s, &listener));
        let acceptor = match acceptor {
            Ok(a) => a,
            Err(e) => {
                net::stop(&shared, addr, None, Some(ticker));
                return Err(ServerError::io("cannot start a thread", e));
            }
        };
        let v2 = match v2_config.map(|c| v2::V2Server::start(&shared, c, v1_listen)) {
            None => None,
            Some(Ok(v2)) => Some(v2),
            Some(Err(e)) => {
                net::stop(&shared, addr, Some(acceptor), Some(ticker));
                return Err(e);
            }
        };
        Ok(VirtualServer {
            shared,
            addr,
            acceptor: Some(acceptor),
            ticker: Some(ticker),
            v2,
        })
    }

    /// The address the server listens on (with the real port when
    /// [`listen`](ServerConfig::listen) asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Moves the server's clock forward by `by`: whatever would have
    /// happened in that time happens now, before this returns — power
    /// changes finish, jobs whose keepalives ran out expire, released
    /// boards come free, v2 sessions idle out and lockouts end. Nothing
    /// else is hurried: clients still get their answers in real time.
    ///
    /// For tests of code that must cope with such events, without waiting
    /// for them:
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use spalloc::server::{ServerConfig, VirtualServer};
    /// use spalloc::{Client, CreateJobOptions, JobRequest, JobState};
    ///
    /// let server = VirtualServer::start(ServerConfig::instant())?;
    /// let mut client = Client::connect(&server.server_options())?;
    /// let id = client.create_job(&JobRequest::AnyBoard, &CreateJobOptions::new("me"))?;
    /// server.advance(Duration::from_secs(61)); // no keepalive for over a minute
    /// assert_eq!(client.job_state(id)?.state, JobState::Destroyed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn advance(&self, by: Duration) {
        net::advance(&self.shared, by);
    }

    /// Options for a [`Job`](crate::Job) on this server: its v1 address,
    /// and the built-in defaults for the rest (set an owner).
    ///
    /// ```no_run
    /// use spalloc::server::{ServerConfig, VirtualServer};
    /// use spalloc::{Job, JobRequest};
    ///
    /// let server = VirtualServer::start(ServerConfig::instant())?;
    /// let job = Job::create(JobRequest::AnyBoard, &server.job_options().owner("me"))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn job_options(&self) -> crate::JobOptions {
        crate::JobOptions::new().address(self.addr)
    }

    /// The server as a [`Client`](crate::Client) reaches it: its v1
    /// address, and the built-in defaults for the rest.
    pub fn server_options(&self) -> crate::ServerOptions {
        crate::ServerOptions::new().address(self.addr)
    }

    /// Where the v2 (REST) service is, when [`ServerConfig::v2`] asked
    /// for one: the application root that clients are given, such as
    /// `http://127.0.0.1:22245/spalloc/` (the service itself is under
    /// `srv/spalloc/`, the login page under `system/`).
    pub fn v2_url(&self) -> Option<&str> {
        self.v2.as_ref().map(|v| v.url.as_str())
    }

    /// The address the v2 service listens on, if there is one.
    pub fn v2_local_addr(&self) -> Option<SocketAddr> {
        self.v2.as_ref().map(v2::V2Server::local_addr)
    }

    /// The certificate (PEM) of the throw-away certificate authority that
    /// signed the v2 service's certificate, with [`V2Tls::SelfSigned`]: what
    /// an HTTPS client must be told to trust.
    pub fn v2_ca_pem(&self) -> Option<&str> {
        self.v2.as_ref().and_then(|v| v.ca_pem.as_deref())
    }

    /// Stops the server; see the type's documentation.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(v2) = &mut self.v2 {
            v2.stop();
        }
        if self.acceptor.is_none() && self.ticker.is_none() {
            return;
        }
        net::stop(
            &self.shared,
            self.addr,
            self.acceptor.take(),
            self.ticker.take(),
        );
        info!("virtual spalloc server on {} stopped", self.addr);
    }
}

/// The controller's settings for `config`.
fn settings(config: &ServerConfig) -> Settings {
    Settings {
        power_delay: config.power_delay,
        seconds_before_free: config.seconds_before_free,
        max_retired_jobs: config.max_retired_jobs,
        policy: match config.dialect {
            Dialect::Python => Policy::python(),
            Dialect::Java => Policy::java(),
        },
    }
}

/// Fuzzing hook (only with `--cfg fuzzing`, which cargo-fuzz sets, and in
/// this crate's tests): runs each `\n`-separated request line of `input` through the server's request handling in the
/// given dialect, in order, against a fresh in-memory server (one 2 x
/// 2-triad machine, instant power changes, no sockets, no threads), and
/// returns what became of each line: `Some(reply)`, or `None` for a line
/// answered with silence. The list ends early, with a `None`, at a line
/// that would close the connection.
///
/// The fuzz target `server_requests` and the property tests call this to
/// check that no request, however malformed, can panic the server.
#[cfg(any(test, fuzzing))]
pub fn fuzz_requests(dialect: Dialect, input: &[u8]) -> Vec<Option<String>> {
    let config = ServerConfig::instant()
        .dialect(dialect)
        .machines(vec![Machine::new("m", 2, 2)]);
    let Ok(defs) = config.validate() else {
        return Vec::new();
    };
    let mut controller = Controller::new(settings(&config), defs);
    let mut subscriptions = v1::Subscriptions::default();
    let mut replies = Vec::new();
    for line in input.split(|&b| b == b'\n') {
        let now = Instant::now();
        let mut ctx = v1::Context {
            controller: &mut controller,
            subscriptions: &mut subscriptions,
            version: &config.version,
            host: "127.0.0.1",
            now,
        };
        let outcome = v1::handle_line(dialect, &mut ctx, line);
        controller.tick(now);
        controller.take_changes();
        match outcome {
            v1::Outcome::Reply(r) => replies.push(Some(r)),
            v1::Outcome::Skip => replies.push(None),
            v1::Outcome::Close => {
                replies.push(None);
                break;
            }
        }
    }
    replies
}

/// Fuzzing hook (only with `--cfg fuzzing` and in this crate's tests): runs
/// `input` as a stream of HTTP requests through a fresh in-memory v2 service (user `test`,
/// password `test`, bearer token `fuzz-token-0001`; one 2 x 2-triad
/// machine; no sockets, no threads) and returns each response as sent.
///
/// The fuzz target `http_requests` and the property tests call this to
/// check that no request, however malformed, can panic the service, and
/// that every request read gets exactly one well-formed response.
#[cfg(any(test, fuzzing))]
pub fn fuzz_http(input: &[u8]) -> Vec<Vec<u8>> {
    v2::fuzz(input)
}

impl Drop for VirtualServer {
    fn drop(&mut self) {
        self.stop();
    }
}
