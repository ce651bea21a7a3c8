//! `Job`: an allocation that lives exactly as long as its handle.
//!
//! A `Job` creates (or resumes) a job on the server, keeps it alive from a
//! background thread with its own connection, and destroys it on `Drop`.
//! The keepalive thread never gives up on a transient failure: it reconnects
//! every `reconnect_delay` until it is stopped or the server says the job is
//! gone. The main connection, used for queries and waits, also reconnects on
//! demand, so a server restart does not end the job.

use std::fmt;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use log::{debug, warn};

use crate::config::Config;
use crate::error::{Error, InvalidArgument, Phase, Result};
use crate::interrupt::InterruptHandle;
use crate::remote::{Client, ServerOptions, Watch, config_seconds};
use crate::seconds::{self, deadline, deadline_after, time_left};
use crate::types::{
    Board, Connection, CreateJobOptions, JobMachineInfo, JobRequest, JobState, JobStateInfo,
    Number, WhereIs, WhereIsQuery,
};

/// Limit used when the configured timeout is "forever" but the operation must
/// end (destroying in `Drop`, the keepalive thread's calls).
const FALLBACK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a destroy keeps retrying after a transport failure, and how
/// often (a timed retry: nothing announces that a server is reachable
/// again; an interruption ends the pause at once).
const DESTROY_RETRY_WINDOW: Duration = Duration::from_secs(1);
const DESTROY_RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Keepalive period when the job was created without a keepalive: the Java
/// service then applies its 60 s default, so keep it alive anyway.
const NO_KEEPALIVE_PERIOD: Duration = Duration::from_secs(30);
/// How long an interruption while the server is creating the job waits
/// for the job's id, so that the job is destroyed at once rather than left
/// to expire (a second interruption ends the wait).
const CREATE_GRACE: Duration = Duration::from_secs(1);
/// Never send keepalives, or try to reconnect, faster than this, whatever
/// the configuration says: a server that refuses connections at once must
/// not set a loop spinning.
///
/// The keepalive thread's timer and these reconnection pauses are the
/// only timed waits of a `Job`: a keepalive is a message the server wants
/// at intervals, and nothing announces that a lost server is back. Every
/// other wait (for a reply, a notification, the keepalive thread to stop,
/// an interruption) ends on its event.
const MIN_PERIOD: Duration = Duration::from_millis(50);
/// How long stopping waits for the keepalive thread before leaving it to
/// finish on its own (it holds nothing but its own socket).
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Everything a [`Job`] needs: where the server is, what to ask it for,
/// and what may interrupt the job's waits; each defaulting as in the Python
/// client.
///
/// Build one from the configuration files with [`JobOptions::load`] (or
/// [`JobOptions::from_config`]), then override fields with the setters.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use spalloc::JobOptions;
/// let options = JobOptions::new()
///     .hostname("spalloc.example.org")
///     .owner("me@example.org")
///     .keepalive(Some(Duration::from_secs(30)))
///     .machine(Some("spin5"));
/// assert_eq!(options.server.port, 22244);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobOptions {
    /// The server, and how to talk to it.
    pub server: ServerOptions,
    /// What to ask the server for: owner, keepalive and where the boards
    /// may come from, with the Python client's defaults. The owner is
    /// required to create a job (an empty owner counts as missing).
    pub request: CreateJobOptions,
    /// Cuts short creating or resuming the job, and later every wait of the
    /// job (see [`InterruptHandle`]). Defaults to `None`: each job gets a
    /// handle of its own ([`Job::interrupt_handle`]), which cannot reach
    /// `create` or `resume`.
    pub interrupt: Option<InterruptHandle>,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            server: ServerOptions::default(),
            request: CreateJobOptions::new(""),
            interrupt: None,
        }
    }
}

impl JobOptions {
    /// The built-in defaults, ignoring configuration files.
    pub fn new() -> JobOptions {
        JobOptions::default()
    }

    /// The values of a configuration.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key of a value out of range: NaN for a
    /// number of seconds (see [`crate::seconds`]), or a negative
    /// `min_ratio`. [`Config::load`] checks every value as it reads it, so
    /// this happens only to a `Config` whose fields were changed in code.
    pub fn from_config(config: &Config) -> Result<JobOptions> {
        let mut request = CreateJobOptions::new(config.owner.clone().unwrap_or_default());
        request.keepalive = match config.keepalive {
            Some(k) => config_seconds("keepalive", k, seconds::limit)?.map(|_| Number::Float(k)),
            None => None,
        };
        request.machine = config.machine.clone();
        request.tags = config.tags.clone();
        if config.min_ratio.is_nan() || config.min_ratio < 0.0 {
            return Err(Error::Config {
                path: "configuration".into(),
                key: Some("min_ratio".into()),
                message: format!(
                    "expected a number that is not negative, got {}",
                    config.min_ratio
                ),
            });
        }
        request.min_ratio = config.min_ratio;
        request.max_dead_boards = config.max_dead_boards;
        request.max_dead_links = config.max_dead_links;
        request.require_torus = config.require_torus;
        request.group = config.group.clone();
        Ok(JobOptions {
            server: ServerOptions::from_config(config)?,
            request,
            interrupt: None,
        })
    }

    /// The values from the configuration files on the search path
    /// ([`Config::load`]).
    ///
    /// # Errors
    /// [`Error::Config`] naming the file and key of a bad value.
    pub fn load() -> Result<JobOptions> {
        JobOptions::from_config(&Config::load()?)
    }

    /// Sets [`interrupt`](Self::interrupt).
    pub fn interrupt(mut self, handle: InterruptHandle) -> Self {
        self.interrupt = Some(handle);
        self
    }

    /// Sets the server's [`hostname`](ServerOptions::hostname).
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.server = self.server.hostname(hostname);
        self
    }

    /// Sets the server's [`port`](ServerOptions::port).
    pub fn port(mut self, port: u16) -> Self {
        self.server = self.server.port(port);
        self
    }

    /// Points at the server listening on `addr`, such as a virtual
    /// server's `local_addr()`.
    pub fn address(mut self, addr: SocketAddr) -> Self {
        self.server = self.server.address(addr);
        self
    }

    /// Sets the server's [`timeout`](ServerOptions::timeout). A timeout too
    /// long for a deadline to be represented (such as `Duration::MAX`) is
    /// the same as `None`.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.server = self.server.timeout(timeout);
        self
    }

    /// Sets the server's [`reconnect_delay`](ServerOptions::reconnect_delay).
    pub fn reconnect_delay(mut self, delay: Duration) -> Self {
        self.server = self.server.reconnect_delay(delay);
        self
    }

    /// Sets the server's [`ignore_version`](ServerOptions::ignore_version).
    pub fn ignore_version(mut self, ignore: bool) -> Self {
        self.server = self.server.ignore_version(ignore);
        self
    }

    /// Sets the server's [`v2`](ServerOptions::v2) settings: credentials
    /// and the rest of what a v2 service needs.
    pub fn v2(mut self, settings: crate::v2::V2Settings) -> Self {
        self.server = self.server.v2(settings);
        self
    }

    /// Sets the request's [`owner`](CreateJobOptions::owner).
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.request.owner = owner.into();
        self
    }

    /// Sets the request's [`keepalive`](CreateJobOptions::keepalive): how
    /// long the server waits for a keepalive before destroying the job.
    /// `None`, or more than [`seconds::MAX_SECONDS`], means the job never
    /// expires (the rule of [`crate::seconds`]).
    pub fn keepalive(mut self, keepalive: Option<Duration>) -> Self {
        self.request.keepalive = keepalive
            .map(|d| d.as_secs_f64())
            .filter(|s| matches!(seconds::limit(*s), Ok(Some(_))))
            .map(Number::Float);
        self
    }

    /// Sets the request's [`machine`](CreateJobOptions::machine).
    pub fn machine(mut self, machine: Option<impl Into<String>>) -> Self {
        self.request.machine = machine.map(Into::into);
        self
    }

    /// Sets the request's [`tags`](CreateJobOptions::tags).
    pub fn tags<S: Into<String>>(mut self, tags: Option<impl IntoIterator<Item = S>>) -> Self {
        self.request.tags = tags.map(|t| t.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the request's [`min_ratio`](CreateJobOptions::min_ratio).
    pub fn min_ratio(mut self, ratio: f64) -> Self {
        self.request.min_ratio = ratio;
        self
    }

    /// Sets the request's [`max_dead_boards`](CreateJobOptions::max_dead_boards).
    pub fn max_dead_boards(mut self, max: Option<u32>) -> Self {
        self.request.max_dead_boards = max;
        self
    }

    /// Sets the request's [`max_dead_links`](CreateJobOptions::max_dead_links).
    pub fn max_dead_links(mut self, max: Option<u32>) -> Self {
        self.request.max_dead_links = max;
        self
    }

    /// Sets the request's [`require_torus`](CreateJobOptions::require_torus).
    pub fn require_torus(mut self, require: bool) -> Self {
        self.request.require_torus = require;
        self
    }

    /// The `create_job` options these give: the request, except that a
    /// machine, when one is set, stands for itself whatever the tags.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if no owner is set.
    pub fn create_options(&self) -> Result<CreateJobOptions> {
        if self.request.owner.trim().is_empty()
            && self.server.protocol() != crate::remote::Protocol::V2
        {
            return Err(InvalidArgument::NoOwner.into());
        }
        Ok(self.to_send())
    }

    /// The request as sent: a machine, when one is set, stands for itself
    /// whatever the tags.
    fn to_send(&self) -> CreateJobOptions {
        let mut o = self.request.clone();
        if o.machine.is_some() {
            o.tags = None;
        }
        o
    }

    /// Checks what [`Job::create`] would refuse, before anything is sent,
    /// in the order the `spalloc` tools report problems: the owner, the
    /// server, then `request` and the rest of the options
    /// ([`CreateJobOptions::validate`]). Without a `request` only the owner
    /// and the server are checked, for a caller that reads the request
    /// later.
    ///
    /// # Errors
    /// The first problem, naming the setting.
    ///
    /// On a v2 service (an `http(s)://` server) there is no owner to check
    /// (jobs belong to the user logged in), and the request must not use
    /// what v2 lacks (see [`crate::v2::check_request`]).
    pub fn validate(
        &self,
        request: Option<&JobRequest>,
    ) -> std::result::Result<(), InvalidArgument> {
        if self.server.protocol() == crate::remote::Protocol::V2 {
            self.server.validate()?;
            if let Some(request) = request {
                let send = self.to_send();
                if send.machine.is_some() && send.tags.is_some() {
                    return Err(InvalidArgument::MachineAndTags);
                }
                crate::v2::check_request(request, &send)?;
            }
            return Ok(());
        }
        if self.request.owner.trim().is_empty() {
            return Err(InvalidArgument::NoOwner);
        }
        self.server.validate()?;
        match request {
            Some(request) => self.to_send().validate(Some(request)),
            None => Ok(()),
        }
    }

    fn keepalive_period(&self) -> Duration {
        match self
            .request
            .keepalive
            .map(|k| seconds::limit(k.as_f64() / 2.0))
        {
            Some(Ok(Some(half))) => half.max(MIN_PERIOD),
            _ => NO_KEEPALIVE_PERIOD,
        }
    }
}

/// A keepalive interval: how long a server waits for a keepalive before it
/// destroys a job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeepaliveInterval {
    /// This many seconds.
    Seconds(f64),
    /// The job never expires.
    Never,
}

impl KeepaliveInterval {
    /// The interval of a request or a `list_jobs` entry, where `None` means
    /// "never expire".
    pub fn from_wire(keepalive: Option<Number>) -> KeepaliveInterval {
        keepalive.map_or(KeepaliveInterval::Never, |k| {
            KeepaliveInterval::Seconds(k.as_f64())
        })
    }

    /// The number of seconds, or `None` for [`Never`](Self::Never).
    pub fn seconds(self) -> Option<f64> {
        match self {
            KeepaliveInterval::Seconds(s) => Some(s),
            KeepaliveInterval::Never => None,
        }
    }
}

/// What a server made of a job's keepalive interval
/// ([`Job::keepalive_check`]).
///
/// The Python server applies the interval a job was created with, and
/// `null` ("never expire") too. The Java server's compatibility service
/// turns `null` into its default (60 s), so a job made to outlive its
/// creator expires a minute after the last keepalive instead.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct KeepaliveCheck {
    /// The interval the job was created with; `None` for a job this handle
    /// resumed, whose request it does not know.
    pub requested: Option<KeepaliveInterval>,
    /// The interval the server applies, as it lists the job.
    pub applied: KeepaliveInterval,
}

impl KeepaliveCheck {
    /// Whether the server applies the interval asked for: `None` if that is
    /// not known (a resumed job). The Java service lists whole seconds, so
    /// an interval cut to its whole seconds counts as honoured.
    pub fn honoured(&self) -> Option<bool> {
        use KeepaliveInterval::{Never, Seconds};
        Some(match (self.requested?, self.applied) {
            (Never, Never) => true,
            (Seconds(asked), Seconds(got)) => got == asked || got == asked.trunc(),
            _ => false,
        })
    }
}

/// A job on a spalloc server, destroyed when this handle is dropped.
///
/// Created with [`Job::create`] or taken over with [`Job::resume`]; while it
/// exists, a background thread keeps the job alive. Dropping the handle stops
/// that thread and destroys the job (logging, not panicking, if the server
/// cannot be reached), so boards are released however the owning code ends:
/// normally, through `?`, or by a panic. Use [`Job::close`] to keep the job
/// and [`Job::destroy`] to see whether destroying it worked.
///
/// # Example
/// ```no_run
/// use std::time::Duration;
/// use spalloc::{Job, JobOptions, JobRequest};
///
/// let options = JobOptions::load()?.hostname("spalloc.example.org").owner("me@example.org");
/// let mut job = Job::create(JobRequest::Boards(3), &options)?;
/// job.wait_until_ready(Some(Duration::from_secs(300)))?;
/// println!("boot {:?}", job.hostname()?);
/// # Ok::<(), spalloc::Error>(())
/// ```
#[must_use = "dropping a Job immediately destroys its allocation"]
#[derive(Debug)]
pub struct Job {
    id: u64,
    /// The server, with a host name.
    server: ServerOptions,
    client: Option<Client>,
    /// Whether `client` has a `notify_job` registration for this job.
    watching: bool,
    keepalive: Option<Keepalive>,
    period: Duration,
    /// The keepalive interval the job was created with; `None` if resumed.
    requested_keepalive: Option<KeepaliveInterval>,
    machine_info: Option<JobMachineInfo>,
    interrupt: InterruptHandle,
    /// Told when the main connection is lost and when it is back.
    observer: Option<Observer>,
    /// The main connection has failed and not yet been made again.
    outage: bool,
    /// Set once destroyed or closed, so `Drop` does nothing more.
    released: bool,
}

/// A change in a [`Job`]'s connection to the server, as reported to the
/// function given to [`Job::on_connection_change`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectionEvent<'a> {
    /// The connection failed, for this reason; the job tries again every
    /// `reconnect_delay` while it waits. Reported once per outage.
    Lost(&'a Error),
    /// A connection was made again after a loss.
    Restored,
}

/// The function given to [`Job::on_connection_change`].
struct Observer(Box<dyn FnMut(ConnectionEvent<'_>) + Send>);

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observer")
    }
}

impl Job {
    /// Creates a job and starts keeping it alive. The job may still be
    /// queued or powering on; see [`wait_until_ready`](Self::wait_until_ready).
    ///
    /// With [`JobOptions::interrupt`] set, an interruption cuts connecting
    /// and the version check short at once. While `create_job` itself is in
    /// flight it waits up to a second for the job's id (a second
    /// interruption ends that wait): if the id comes, the job is returned,
    /// the interruption stays pending for the next wait, and dropping the
    /// job destroys it; if not, any job the server made expires after its
    /// keepalive interval.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `hostname` or `owner` is missing or the
    /// request is contradictory; [`Error::IncompatibleVersion`] unless
    /// `ignore_version`; [`Error::Server`] if the server refuses the
    /// request; [`Error::Connect`] if it cannot be reached, and other
    /// transport errors if it fails afterwards; [`Error::Interrupted`].
    pub fn create(request: JobRequest, options: &JobOptions) -> Result<Job> {
        options.validate(Some(&request))?;
        let server = options.server.clone();
        let create = options.to_send();
        let interrupt = options.interrupt.clone().unwrap_or_default();
        let mut client = Client::connect_interruptible(&server, &interrupt)?;
        let id = client.create_job_with_grace(&request, &create, CREATE_GRACE)?;
        debug!("created job {id}");
        // Hold the handle from here on, so that any failure below destroys
        // the new job on the way out.
        let mut job = Job::new(id, server, client, options.keepalive_period(), interrupt);
        job.requested_keepalive = Some(KeepaliveInterval::from_wire(create.keepalive));
        job.start_keepalive(job.period)?;
        Ok(job)
    }

    /// Takes over an existing job: keeps it alive and destroys it on drop
    /// like one this handle created. The keepalive period follows the job's
    /// own keepalive interval when the server reports it.
    ///
    /// # Errors
    /// [`Error::JobUnknown`] or [`Error::JobDestroyed`] if the job is not
    /// live; otherwise as for [`create`](Self::create).
    pub fn resume(job_id: u64, options: &JobOptions) -> Result<Job> {
        options.server.validate()?;
        let server = options.server.clone();
        let interrupt = options.interrupt.clone().unwrap_or_default();
        let mut client = Client::connect_interruptible(&server, &interrupt)?;
        let info = client.job_state(job_id)?;
        let mut period = options.keepalive_period();
        match info.state {
            JobState::Unknown => return Err(Error::JobUnknown { id: job_id }),
            JobState::Destroyed => {
                return Err(Error::JobDestroyed {
                    id: job_id,
                    reason: info.reason,
                });
            }
            _ => {}
        }
        // The Python server reports the interval; the Java service reports a
        // timestamp there instead, which no real interval comes close to.
        if let Some(k) = info.keepalive.filter(|k| *k > 0.0 && *k < 1e6)
            && let Ok(Some(half)) = seconds::limit(k / 2.0)
        {
            period = period.min(half.max(MIN_PERIOD));
        }
        let mut job = Job::new(job_id, server, client, period, interrupt);
        // A resumed job may be close to expiring: keep it alive at once.
        job.start_keepalive(Duration::ZERO)?;
        Ok(job)
    }

    fn new(
        id: u64,
        server: ServerOptions,
        client: Client,
        period: Duration,
        interrupt: InterruptHandle,
    ) -> Job {
        Job {
            id,
            server,
            client: Some(client),
            watching: false,
            keepalive: None,
            period,
            requested_keepalive: None,
            machine_info: None,
            interrupt,
            observer: None,
            outage: false,
            released: false,
        }
    }

    /// A handle with which another thread can cut short this job's waits.
    pub fn interrupt_handle(&self) -> InterruptHandle {
        self.interrupt.clone()
    }

    /// Calls `observer` whenever the job's own connection to the server is
    /// lost and whenever it is made again, for example to show that a wait
    /// is riding out an outage. It runs on the thread that is using the
    /// job, inside the call that noticed the change. The background
    /// keepalives have a connection of their own, which this does not
    /// report on, and it is not called while the job is being destroyed or
    /// closed.
    pub fn on_connection_change(
        &mut self,
        observer: impl FnMut(ConnectionEvent<'_>) + Send + 'static,
    ) {
        self.observer = Some(Observer(Box::new(observer)));
    }

    /// Notes a transport failure of the main connection and drops it.
    fn lost(&mut self, e: &Error) {
        self.disconnect();
        if !self.outage {
            self.outage = true;
            if let Some(Observer(f)) = self.observer.as_mut() {
                f(ConnectionEvent::Lost(e));
            }
        }
    }

    fn start_keepalive(&mut self, first: Duration) -> Result<()> {
        self.keepalive = Some(Keepalive::start(
            self.id,
            self.server.clone(),
            self.period,
            first,
        )?);
        Ok(())
    }

    /// The job's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The interval between keepalives sent by the background thread.
    pub fn keepalive_period(&self) -> Duration {
        self.period
    }

    /// What the server made of the job's keepalive interval: the one the
    /// job was created with beside the one the server applies, as its
    /// `get_job_state` reports it or, when that does not settle it, its
    /// `list_jobs` (the Java service's `get_job_state` gives the time of
    /// the last keepalive instead of the interval). `Ok(None)` if the job
    /// is no longer live.
    ///
    /// When the server applies another interval than the one asked for (or
    /// than a resumed job's keepalives are sent for), keepalives are sent
    /// often enough for the server's from then on, so that the job does
    /// not expire while this handle holds it.
    ///
    /// # Example
    /// ```no_run
    /// # use spalloc::{Job, JobOptions, JobRequest};
    /// # let options = JobOptions::load()?;
    /// let mut job = Job::create(JobRequest::AnyBoard, &options.keepalive(None))?;
    /// if let Some(check) = job.keepalive_check()? {
    ///     if check.honoured() == Some(false) {
    ///         eprintln!("the server applies {:?}", check.applied);
    ///     }
    /// }
    /// # Ok::<(), spalloc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`state_info`](Self::state_info); [`Error::Protocol`] (without
    /// reconnecting) if the server's list of jobs cannot be read.
    pub fn keepalive_check(&mut self) -> Result<Option<KeepaliveCheck>> {
        let id = self.id;
        // The Python server's `get_job_state` gives the interval it
        // applies, and the v2 service's is the one asked for: a state that
        // repeats the request settles it without reading the listing of
        // every job (hundreds of kilobytes on a busy server, and several
        // requests per job over v2). The Java service gives the time of the
        // last keepalive there instead, which never matches: then the
        // listing is read.
        if let Some(requested) = self.requested_keepalive {
            let state = self.state_info()?;
            if !state.state.is_live() {
                return Ok(None);
            }
            let same = match (requested, state.keepalive) {
                (KeepaliveInterval::Seconds(asked), Some(applied)) => asked == applied,
                (KeepaliveInterval::Never, None) => true,
                _ => false,
            };
            if same {
                return Ok(Some(KeepaliveCheck {
                    requested: Some(requested),
                    applied: requested,
                }));
            }
        }
        // A listing this client cannot read leaves the connection in step,
        // and reading it again would not help: not an outage to report.
        let jobs = self
            .rpc(|c| match c.list_jobs() {
                Err(Error::Protocol(e)) => Ok(Err(e)),
                other => other.map(Ok),
            })?
            .map_err(Error::Protocol)?;
        let Some(listed) = jobs.into_iter().find(|j| j.job_id == id) else {
            return Ok(None);
        };
        let check = KeepaliveCheck {
            requested: self.requested_keepalive,
            applied: KeepaliveInterval::from_wire(listed.keepalive),
        };
        if check.honoured() != Some(true)
            && let KeepaliveInterval::Seconds(s) = check.applied
            && let Ok(Some(half)) = seconds::limit(s / 2.0)
        {
            let period = half.max(MIN_PERIOD);
            if period < self.period {
                debug!(
                    "job {id}: the server applies a keepalive of {s} s; keepalives every {period:?}"
                );
                self.period = period;
                if let Some(k) = self.keepalive.take() {
                    k.stop();
                }
                self.start_keepalive(Duration::ZERO)?;
            }
        }
        Ok(Some(check))
    }

    /// The job's current state, power, reason and so on.
    ///
    /// # Errors
    /// Transport errors, after one reconnection attempt.
    pub fn state_info(&mut self) -> Result<JobStateInfo> {
        let id = self.id;
        self.rpc(|c| c.job_state(id))
    }

    /// The job's current state.
    ///
    /// # Errors
    /// As for [`state_info`](Self::state_info).
    pub fn state(&mut self) -> Result<JobState> {
        Ok(self.state_info()?.state)
    }

    /// Whether the boards are on (or being powered on); `None` if the job
    /// has no boards.
    ///
    /// # Errors
    /// As for [`state_info`](Self::state_info).
    pub fn power(&mut self) -> Result<Option<bool>> {
        Ok(self.state_info()?.power)
    }

    /// Why the job was destroyed, if it was and the server says.
    ///
    /// # Errors
    /// As for [`state_info`](Self::state_info).
    pub fn reason(&mut self) -> Result<Option<String>> {
        Ok(self.state_info()?.reason)
    }

    /// Where the job's boards are, or `None` while it has none. Fetched once
    /// the boards are allocated and cached from then on.
    ///
    /// # Errors
    /// As for [`state_info`](Self::state_info).
    pub fn machine_info(&mut self) -> Result<Option<&JobMachineInfo>> {
        if self.machine_info.is_none() {
            let id = self.id;
            self.machine_info = self.rpc(|c| c.job_machine_info(id))?;
        }
        Ok(self.machine_info.as_ref())
    }

    /// The host name of the job's chip (0, 0): the one to boot through.
    ///
    /// # Errors
    /// As for [`machine_info`](Self::machine_info).
    pub fn hostname(&mut self) -> Result<Option<String>> {
        Ok(self
            .machine_info()?
            .and_then(|i| i.hostname())
            .map(str::to_owned))
    }

    /// The Ethernet-connected chips and their host names.
    ///
    /// # Errors
    /// As for [`machine_info`](Self::machine_info).
    pub fn connections(&mut self) -> Result<Option<Vec<Connection>>> {
        Ok(self.machine_info()?.map(|i| i.connections.clone()))
    }

    /// The allocation's width in chips.
    ///
    /// # Errors
    /// As for [`machine_info`](Self::machine_info).
    pub fn width(&mut self) -> Result<Option<u32>> {
        Ok(self.machine_info()?.map(|i| i.width))
    }

    /// The allocation's height in chips.
    ///
    /// # Errors
    /// As for [`machine_info`](Self::machine_info).
    pub fn height(&mut self) -> Result<Option<u32>> {
        Ok(self.machine_info()?.map(|i| i.height))
    }

    /// The machine the boards are on.
    ///
    /// # Errors
    /// As for [`machine_info`](Self::machine_info).
    pub fn machine_name(&mut self) -> Result<Option<String>> {
        Ok(self.machine_info()?.map(|i| i.machine_name.clone()))
    }

    /// The allocated boards.
    ///
    /// # Errors
    /// As for [`machine_info`](Self::machine_info).
    pub fn boards(&mut self) -> Result<Option<Vec<Board>>> {
        Ok(self.machine_info()?.map(|i| i.boards.clone()))
    }

    /// Powers the boards on (`true`) or off. The job goes through
    /// [`JobState::Power`]; see [`wait_until_ready`](Self::wait_until_ready).
    ///
    /// # Errors
    /// As for [`state_info`](Self::state_info), or [`Error::Server`].
    pub fn set_power(&mut self, on: bool) -> Result<()> {
        let id = self.id;
        self.rpc(|c| c.power(id, on))
    }

    /// Resets the boards (powers them on again).
    ///
    /// # Errors
    /// As for [`set_power`](Self::set_power).
    pub fn reset(&mut self) -> Result<()> {
        self.set_power(true)
    }

    /// Locates a chip given relative to this job, or `None` if the chip is
    /// not on one of its boards.
    ///
    /// # Errors
    /// As for [`state_info`](Self::state_info).
    pub fn where_is(&mut self, chip_x: i64, chip_y: i64) -> Result<Option<WhereIs>> {
        let query = WhereIsQuery::JobChip {
            job_id: self.id,
            x: chip_x,
            y: chip_y,
        };
        self.rpc(|c| c.where_is(&query))
    }

    /// Waits until the job's state differs from `old` and returns the new
    /// state. Listens for notifications and polls at least every keepalive
    /// period; reconnects (every `reconnect_delay`) if the connection fails.
    ///
    /// # Errors
    /// [`Error::Timeout`] of [`Phase::Wait`] if nothing changed within
    /// `timeout` (`None`, or a
    /// timeout too long to represent, waits forever); [`Error::Interrupted`]
    /// if cut short through an [`InterruptHandle`];
    /// [`Error::IncompatibleVersion`] if a reconnection finds another
    /// server.
    pub fn wait_for_state_change(
        &mut self,
        old: JobState,
        timeout: Option<Duration>,
    ) -> Result<JobStateInfo> {
        let deadline = deadline(timeout);
        loop {
            self.interrupt.take()?;
            match self.poll_for_change(old, deadline) {
                Ok(Some(info)) => return Ok(info),
                Ok(None) => {}
                Err(e) if e.is_transport() => {
                    debug!("job {}: connection failed while waiting: {e}", self.id);
                    self.lost(&e);
                    self.pause_to_reconnect(deadline)?;
                }
                Err(e) => return Err(self.after_failure(e)),
            }
            if time_left(deadline).is_some_and(|l| l.is_zero()) {
                return Err(Error::Timeout(Phase::Wait));
            }
        }
    }

    /// Sleeps unless interrupted.
    fn pause(&self, how_long: Duration) -> Result<()> {
        self.interrupt.sleep(how_long)
    }

    /// Sleeps the reconnect delay (at least [`MIN_PERIOD`]), or until
    /// `deadline` if that comes first, unless interrupted.
    fn pause_to_reconnect(&self, deadline: Option<std::time::Instant>) -> Result<()> {
        let delay = self.server.reconnect_delay.max(MIN_PERIOD);
        self.pause(time_left(deadline).map_or(delay, |l| l.min(delay)))
    }

    /// One round: subscribe, look, then wait for a hint (or the keepalive
    /// period, as a fallback for servers whose hints go astray). `Ok(None)`
    /// means "nothing yet, go round again".
    fn poll_for_change(
        &mut self,
        old: JobState,
        deadline: Option<std::time::Instant>,
    ) -> Result<Option<JobStateInfo>> {
        let id = self.id;
        let period = self.period;
        // Subscribe before looking, so a change between the two still
        // produces a notification.
        let watching = self.watching && self.client.is_some();
        let client = self.connected()?;
        if !watching {
            match client.watch(&Watch::Job(id)) {
                // The Java service refuses to watch a job it no longer
                // knows, where the Python server accepts any id: the state,
                // looked at next, tells the caller what became of the job.
                Err(Error::Server(m)) => debug!("job {id}: cannot watch: {m}"),
                other => other?,
            }
        }
        self.watching = true;
        let client = self.connected()?;
        let info = client.job_state(id)?;
        if info.state != old {
            return Ok(Some(info));
        }
        // An interruption shuts the connection down, which ends this wait
        // at once: no need to wake up just to look for one. The limit of a
        // keepalive period is a fallback, not the way changes are seen: a
        // notification is only a hint, and one that goes astray must not
        // stall the wait for ever.
        let wait = time_left(deadline).map_or(period, |l| l.min(period));
        let client = self.connected()?;
        client.wait_for_change(Some(wait))?;
        Ok(None)
    }

    /// Waits until the job is ready (state 3).
    ///
    /// # Errors
    /// [`Error::JobDestroyed`] (with the server's reason) or
    /// [`Error::JobUnknown`] if the job ends instead; [`Error::Timeout`] of
    /// [`Phase::Wait`] if it is not ready within `timeout`; as for
    /// [`wait_for_state_change`](Self::wait_for_state_change).
    pub fn wait_until_ready(&mut self, timeout: Option<Duration>) -> Result<()> {
        self.wait_until_ready_with(timeout, |_| ControlFlow::Continue(()))
            .map(drop)
    }

    /// [`wait_until_ready`](Self::wait_until_ready), telling `progress`
    /// about the job's state when it first looks and after every change, so
    /// that a tool can show how the wait is going. `progress` can end the
    /// wait early with [`ControlFlow::Break`], for a state it does not want
    /// to wait through. Returns the last state seen: ready, unless
    /// `progress` ended the wait.
    ///
    /// Connection failures on the way are ridden out, reconnecting every
    /// `reconnect_delay` (see [`on_connection_change`](Self::on_connection_change)).
    ///
    /// # Errors
    /// As for [`wait_until_ready`](Self::wait_until_ready).
    pub fn wait_until_ready_with(
        &mut self,
        timeout: Option<Duration>,
        mut progress: impl FnMut(&JobStateInfo) -> ControlFlow<()>,
    ) -> Result<JobStateInfo> {
        let deadline = deadline(timeout);
        // The first look must ride out a lost connection just as the waits
        // below do: failing here would end a wait that a brief outage (a
        // server restart, a dropped connection) should only have delayed.
        let mut info = loop {
            self.interrupt.take()?;
            match self.state_info() {
                Ok(info) => break info,
                Err(e) if e.is_transport() => {
                    debug!("job {}: cannot get the state: {e}; retrying", self.id);
                    self.lost(&e);
                    if time_left(deadline).is_some_and(|l| l.is_zero()) {
                        return Err(Error::Timeout(Phase::Wait));
                    }
                    self.pause_to_reconnect(deadline)?;
                }
                Err(e) => return Err(e),
            }
        };
        loop {
            if progress(&info).is_break() {
                return Ok(info);
            }
            match info.state {
                JobState::Ready => return Ok(info),
                JobState::Destroyed => {
                    return Err(Error::JobDestroyed {
                        id: self.id,
                        reason: info.reason,
                    });
                }
                JobState::Unknown => return Err(Error::JobUnknown { id: self.id }),
                old => info = self.wait_for_state_change(old, time_left(deadline))?,
            }
        }
    }

    /// Destroys the job, recording `reason`, and reports whether that
    /// worked. Stops the keepalive first.
    ///
    /// However long the configured timeout, this ends within the timeout
    /// or 10 s, whichever is less (1 s at least: a failure in the first
    /// second is retried). An interruption that was pending when it began
    /// is forgotten (it was meant for a wait); one that arrives while it
    /// runs ends it at once.
    ///
    /// # Errors
    /// Transport errors if the server could not be told (the job then
    /// expires after its keepalive interval), [`Error::Interrupted`], or
    /// [`Error::Server`].
    pub fn destroy(mut self, reason: Option<&str>) -> Result<()> {
        self.destroy_(reason)
    }

    /// Stops the keepalive and disconnects, leaving the job on the server,
    /// like the Python client's `close()`. The job then expires after its
    /// keepalive interval unless something else keeps it alive (for example
    /// `Job::resume` in another process).
    ///
    /// # Errors
    /// None at present; the `Result` leaves room for reporting failures to
    /// shut down cleanly.
    pub fn close(mut self) -> Result<()> {
        self.close_();
        Ok(())
    }

    fn close_(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        self.observer = None;
        if let Some(k) = self.keepalive.take() {
            k.stop();
        }
        self.disconnect();
    }

    fn destroy_(&mut self, reason: Option<&str>) -> Result<()> {
        if self.released {
            return Ok(());
        }
        self.released = true;
        // Whoever watches the connection is not told about the release.
        self.observer = None;
        self.interrupt.clear();
        // Stop keepalives before destroying, so none arrives afterwards.
        if let Some(k) = self.keepalive.take() {
            k.stop();
        }
        let id = self.id;
        // However long the configured timeout, a destroy must end: one
        // deadline covers every attempt, reconnections included. A moment's
        // outage (a dropped connection, a server refusing connections while
        // it restarts) should not leave the job running until it expires,
        // so a failure in the first second is retried, but a server that
        // is gone must not hold up the caller either.
        let limit = self
            .server
            .timeout
            .unwrap_or(FALLBACK_TIMEOUT)
            .min(FALLBACK_TIMEOUT);
        let give_up = deadline_after(limit.max(DESTROY_RETRY_WINDOW));
        let stop_retrying = deadline_after(DESTROY_RETRY_WINDOW);
        let left = || time_left(give_up).unwrap_or(limit).min(limit);
        let result = loop {
            let attempt = self.connected_with(Some(left())).and_then(|c| {
                c.set_timeout(Some(left()));
                c.destroy_job(id, reason)
            });
            match attempt {
                Err(e) if e.is_transport() => {
                    self.disconnect();
                    let retry = time_left(stop_retrying).is_some_and(|l| !l.is_zero());
                    if !retry || left() <= DESTROY_RETRY_PAUSE {
                        break Err(e);
                    }
                    debug!("job {id}: destroying failed ({e}); trying again");
                    if let Err(interrupted) = self.pause(DESTROY_RETRY_PAUSE) {
                        break Err(interrupted);
                    }
                }
                other => break other,
            }
        };
        self.disconnect();
        match result {
            // The job is gone either way.
            Err(Error::Server(m)) if m.trim().eq_ignore_ascii_case("no such job") => Ok(()),
            other => other,
        }
    }

    /// The main connection, (re)connecting if there is none.
    fn connected(&mut self) -> Result<&mut Client> {
        self.connected_with(self.server.timeout)
    }

    fn connected_with(&mut self, timeout: Option<Duration>) -> Result<&mut Client> {
        if self.client.is_none() {
            self.watching = false;
            let client = Client::open_with(&self.server, timeout, Some(&self.interrupt))?;
            self.client = Some(client);
            if self.outage {
                self.outage = false;
                if let Some(Observer(f)) = self.observer.as_mut() {
                    f(ConnectionEvent::Restored);
                }
            }
        }
        // Just set above if it was missing.
        self.client.as_mut().ok_or(Error::Disconnected)
    }

    fn disconnect(&mut self) {
        self.client = None;
        self.watching = false;
    }

    /// Drops a connection that an interruption has closed.
    fn after_failure(&mut self, e: Error) -> Error {
        if matches!(e, Error::Interrupted) {
            self.disconnect();
        }
        e
    }

    fn rpc<T>(&mut self, f: impl FnMut(&mut Client) -> Result<T>) -> Result<T> {
        self.rpc_with(self.server.timeout, f)
    }

    /// Runs `f` on the main connection; on a transport failure, reconnects
    /// once and retries (every call here is safe to repeat).
    fn rpc_with<T>(
        &mut self,
        timeout: Option<Duration>,
        mut f: impl FnMut(&mut Client) -> Result<T>,
    ) -> Result<T> {
        let had_client = self.client.is_some();
        let first = match self.connected_with(timeout) {
            Ok(client) => f(client),
            Err(e) => Err(e),
        };
        let result = match first {
            Err(e) if e.is_transport() && had_client => {
                debug!("job {}: {e}; reconnecting", self.id);
                self.lost(&e);
                match self.connected_with(timeout) {
                    Ok(client) => f(client),
                    Err(e) => Err(e),
                }
            }
            other => other,
        };
        match result {
            Err(e) if e.is_transport() => {
                self.lost(&e);
                Err(e)
            }
            Err(e) => Err(self.after_failure(e)),
            ok => ok,
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if let Err(e) = self.destroy_(None) {
            warn!("could not destroy spalloc job {}: {e}", self.id);
        }
    }
}

/// The background keepalive sender.
#[derive(Debug)]
struct Keepalive {
    /// Dropping it wakes the thread and tells it to stop.
    stop: mpsc::Sender<()>,
    /// Disconnects when the thread ends.
    done: mpsc::Receiver<()>,
    /// Cuts short the thread's connecting and calls, so that stopping is
    /// prompt even against a server that does not answer.
    interrupt: InterruptHandle,
    /// Whether the thread is busy (connecting or sending), and whether it
    /// has been told to stop.
    turn: Arc<Mutex<Turn>>,
    thread: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Turn {
    busy: bool,
    stopped: bool,
}

impl Keepalive {
    fn start(
        id: u64,
        server: ServerOptions,
        period: Duration,
        first: Duration,
    ) -> Result<Keepalive> {
        let (stop, stop_rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel::<()>();
        let interrupt = InterruptHandle::new();
        let turn = Arc::new(Mutex::new(Turn::default()));
        let (shared, shared_turn) = (interrupt.clone(), turn.clone());
        let thread = thread::Builder::new()
            .name("spalloc-keepalive".into())
            .spawn(move || {
                let _done = done_tx;
                keepalive_loop(id, &server, period, first, &stop_rx, &shared, &shared_turn);
            })?;
        Ok(Keepalive {
            stop,
            done,
            interrupt,
            turn,
            thread,
        })
    }

    /// Stops the thread: at once if it is waiting for its next turn (it
    /// then ends on its own without sending anything more), otherwise
    /// waiting at most [`STOP_GRACE`] for it to finish.
    fn stop(self) {
        let Keepalive {
            stop,
            done,
            interrupt,
            turn,
            thread,
        } = self;
        drop(stop);
        let busy = {
            let mut turn = turn.lock().unwrap_or_else(PoisonError::into_inner);
            turn.stopped = true;
            turn.busy
        };
        if !busy {
            // Nothing to wait for: waking up just to see it end would cost
            // the caller a thread hand-off.
            return;
        }
        // Unblock a connection attempt or call in progress; the thread then
        // sees the stop.
        interrupt.interrupt();
        match done.recv_timeout(STOP_GRACE) {
            Err(RecvTimeoutError::Timeout) => {
                debug!("keepalive thread still busy; leaving it to finish");
            }
            _ => {
                let _ = thread.join();
            }
        }
    }
}

fn keepalive_loop(
    id: u64,
    server: &ServerOptions,
    period: Duration,
    first: Duration,
    stop: &mpsc::Receiver<()>,
    interrupt: &InterruptHandle,
    turn: &Mutex<Turn>,
) {
    // The thread's calls must end well within a period, so that a stalled
    // server is noticed and the thread can be stopped promptly.
    let timeout = Some(
        server
            .timeout
            .unwrap_or(FALLBACK_TIMEOUT)
            .min(period.max(Duration::from_secs(1))),
    );
    // The keepalive connection does not check the version: the job's own
    // connection did, and a keepalive must not wait for more than itself.
    let server = &server.clone().ignore_version(true);
    let mut client: Option<Client> = None;
    let mut wait = first;
    loop {
        match stop.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            // Stop requested (sender dropped) or, defensively, any message.
            _ => return,
        }
        {
            let mut turn = turn.lock().unwrap_or_else(PoisonError::into_inner);
            if turn.stopped {
                return;
            }
            turn.busy = true;
        }
        let next = keepalive_round(id, server, timeout, period, &mut client, interrupt);
        turn.lock().unwrap_or_else(PoisonError::into_inner).busy = false;
        match next {
            Some(w) => wait = w,
            None => return,
        }
    }
}

/// Connects if need be and sends one keepalive: how long to wait before
/// the next, or `None` to stop.
fn keepalive_round(
    id: u64,
    server: &ServerOptions,
    timeout: Option<Duration>,
    period: Duration,
    client: &mut Option<Client>,
    interrupt: &InterruptHandle,
) -> Option<Duration> {
    if client.is_none() {
        match Client::open_with(server, timeout, Some(interrupt)) {
            Ok(c) => *client = Some(c),
            Err(Error::Interrupted) => return None,
            Err(e) => {
                debug!("job {id}: keepalive cannot connect: {e}; retrying");
                return Some(server.reconnect_delay.max(MIN_PERIOD));
            }
        }
    }
    let c = client.as_mut()?;
    match c.keepalive(id) {
        Ok(()) => Some(period),
        Err(Error::Server(m)) if m.trim().eq_ignore_ascii_case("no such job") => {
            debug!("job {id}: server no longer knows the job; keepalive stops");
            None
        }
        Err(Error::Server(m)) => {
            debug!("job {id}: keepalive refused: {m}");
            Some(period)
        }
        Err(Error::Interrupted) => None,
        Err(e) => {
            debug!("job {id}: keepalive failed: {e}; reconnecting");
            *client = None;
            Some(server.reconnect_delay.max(MIN_PERIOD))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_honoured() {
        use KeepaliveInterval::{Never, Seconds};
        let check = |requested, applied| KeepaliveCheck { requested, applied }.honoured();
        assert_eq!(check(Some(Seconds(30.0)), Seconds(30.0)), Some(true));
        // The Java service lists whole seconds.
        assert_eq!(check(Some(Seconds(30.7)), Seconds(30.0)), Some(true));
        assert_eq!(check(Some(Seconds(30.7)), Seconds(31.0)), Some(false));
        assert_eq!(check(Some(Seconds(30.0)), Seconds(60.0)), Some(false));
        assert_eq!(check(Some(Never), Never), Some(true));
        assert_eq!(check(Some(Never), Seconds(60.0)), Some(false));
        assert_eq!(check(Some(Seconds(60.0)), Never), Some(false));
        assert_eq!(check(None, Seconds(60.0)), None);
        assert_eq!(
            KeepaliveInterval::from_wire(Some(Number::Int(5))),
            Seconds(5.0)
        );
        assert_eq!(KeepaliveInterval::from_wire(None), Never);
        assert_eq!((Seconds(5.0).seconds(), Never.seconds()), (Some(5.0), None));
    }

    #[test]
    fn job_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Job>();
    }

    #[test]
    fn options_follow_config() -> Result<()> {
        let config = Config::from_ini_str(
            "[spalloc]\nhostname = h\nowner = o\nkeepalive = None\ntimeout = None\nreconnect_delay = 0.5\nmachine = m\ntags = a\n",
            "x",
        )?;
        let o = JobOptions::from_config(&config)?;
        assert_eq!(o.server.hostname.as_deref(), Some("h"));
        assert_eq!(o.request.keepalive, None);
        assert_eq!(o.server.timeout, None);
        assert_eq!(o.server.reconnect_delay, Duration::from_millis(500));
        assert_eq!(o.keepalive_period(), NO_KEEPALIVE_PERIOD);
        let c = o.create_options()?;
        assert_eq!((c.machine.as_deref(), c.tags), (Some("m"), None));
        Ok(())
    }

    #[test]
    fn keepalive_period_is_half_and_bounded() {
        assert_eq!(
            JobOptions::new().keepalive_period(),
            Duration::from_secs(30)
        );
        assert_eq!(
            JobOptions::new()
                .keepalive(Some(Duration::ZERO))
                .keepalive_period(),
            MIN_PERIOD
        );
        assert_eq!(JobOptions::new().keepalive(None).request.keepalive, None);
        // On the wire as the Python client's default is: a float.
        assert_eq!(
            JobOptions::new()
                .keepalive(Some(Duration::from_secs(60)))
                .request
                .keepalive,
            Some(Number::Float(60.0))
        );
    }

    #[test]
    fn missing_hostname_or_owner_is_a_clear_error() {
        let err = Job::create(JobRequest::AnyBoard, &JobOptions::new().owner("me")).unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument(InvalidArgument::NoHostname)),
            "{err}"
        );
        assert!(err.to_string().contains("hostname"), "{err}");
        let err = Job::create(
            JobRequest::AnyBoard,
            &JobOptions::new().hostname("localhost"),
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument(InvalidArgument::NoOwner)),
            "{err}"
        );
        assert!(err.to_string().contains("owner"), "{err}");
    }

    #[test]
    fn unusual_keepalives_follow_the_rule() {
        let o = JobOptions::new().keepalive(Some(Duration::MAX));
        assert_eq!(o.request.keepalive, None);
        assert_eq!(o.keepalive_period(), NO_KEEPALIVE_PERIOD);
        let o = JobOptions::new().keepalive(Some(Duration::from_secs(2_000_000_000)));
        assert_eq!(o.request.keepalive, None);
        let mut o = JobOptions::new();
        o.request.keepalive = Some(Number::Float(f64::NAN));
        assert_eq!(o.keepalive_period(), NO_KEEPALIVE_PERIOD);
        let err =
            Job::create(JobRequest::AnyBoard, &o.hostname("localhost").owner("me")).unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument(InvalidArgument::Keepalive(_))),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "keepalive: expected a number of seconds, got NaN"
        );
    }

    #[test]
    fn validation_follows_the_tools_order() {
        let o = JobOptions::new();
        assert_eq!(o.validate(None), Err(InvalidArgument::NoOwner));
        let o = o.owner("me");
        assert_eq!(o.validate(None), Err(InvalidArgument::NoHostname));
        let o = o.hostname("h").require_torus(true);
        assert_eq!(o.validate(None), Ok(()));
        assert_eq!(
            o.validate(Some(&JobRequest::AnyBoard)),
            Err(InvalidArgument::TorusForSingleBoard)
        );
        // A machine stands for itself, whatever the tags.
        let o = o.require_torus(false).machine(Some("m")).tags(Some(["a"]));
        assert_eq!(o.validate(Some(&JobRequest::AnyBoard)), Ok(()));
    }

    #[test]
    fn configurations_changed_in_code_are_checked() {
        let mut config = Config::default();
        config.timeout = Some(f64::NAN);
        let err = JobOptions::from_config(&config).unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration: key 'timeout': expected a number of seconds, got NaN"
        );
        config.timeout = Some(f64::INFINITY);
        config.reconnect_delay = -1.0;
        let o = JobOptions::from_config(&config).expect("valid");
        assert_eq!(
            (o.server.timeout, o.server.reconnect_delay),
            (None, Duration::ZERO)
        );
        config.min_ratio = -1.0;
        assert!(JobOptions::from_config(&config).is_err());
    }
}
