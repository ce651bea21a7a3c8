//! [`Client`]: a spalloc server as a tool sees it, whatever protocol it
//! speaks, and [`ServerOptions`], where it is and how to talk to it.
//!
//! This is the seam between what the tools want (list the jobs, power a
//! job's boards, wait until something changes) and how one protocol does
//! it. [`Job`](crate::Job) and the `spalloc` command reach a server only
//! through here, so that a second protocol is a second implementation of
//! these operations rather than a second path through every caller. Today
//! the one implementation is the v1 [`ProtocolClient`].

use std::net::SocketAddr;
use std::time::Duration;

use crate::client::ProtocolClient;
use crate::config::Config;
use crate::error::{Error, InvalidArgument, Result};
use crate::interrupt::InterruptHandle;
use crate::seconds;
use crate::types::{
    CreateJobOptions, JobDescription, JobMachineInfo, JobRequest, JobStateInfo, MachineDescription,
    WhereIs, WhereIsQuery,
};

/// Where a spalloc server is and how to talk to it, each setting defaulting
/// as in the Python client.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use spalloc::ServerOptions;
/// let server = ServerOptions::new()
///     .hostname("spalloc.example.org")
///     .timeout(Some(Duration::from_secs(5)));
/// assert_eq!(server.port, 22244);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ServerOptions {
    /// The server's host name or address. Required; no default.
    pub hostname: Option<String>,
    /// The server's port. Defaults to 22244.
    pub port: u16,
    /// Limit for connecting and for each reply; `None` waits forever.
    /// Defaults to 10 s.
    pub timeout: Option<Duration>,
    /// Pause between reconnection attempts. Defaults to 5 s.
    pub reconnect_delay: Duration,
    /// Skip the server version check. Defaults to `false`.
    pub ignore_version: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            hostname: None,
            port: crate::client::DEFAULT_PORT,
            timeout: Some(Duration::from_secs(10)),
            reconnect_delay: Duration::from_secs(5),
            ignore_version: false,
        }
    }
}

/// `Config`'s value for a key, by the rule in [`crate::seconds`], or an
/// error naming the key.
pub(crate) fn config_seconds<T>(
    key: &str,
    value: f64,
    rule: fn(f64) -> std::result::Result<T, seconds::SecondsError>,
) -> Result<T> {
    rule(value).map_err(|e| Error::Config {
        path: "configuration".into(),
        key: Some(key.to_owned()),
        message: e.to_string(),
    })
}

impl ServerOptions {
    /// The built-in defaults, ignoring configuration files.
    pub fn new() -> ServerOptions {
        ServerOptions::default()
    }

    /// The server settings of a configuration.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key of a number of seconds that is NaN.
    /// [`Config::load`] checks every value as it reads it, so this happens
    /// only to a `Config` whose fields were changed in code.
    pub fn from_config(config: &Config) -> Result<ServerOptions> {
        Ok(ServerOptions {
            hostname: config.hostname.clone(),
            port: config.port,
            timeout: match config.timeout {
                Some(t) => config_seconds("timeout", t, seconds::limit)?,
                None => None,
            },
            reconnect_delay: config_seconds(
                "reconnect_delay",
                config.reconnect_delay,
                seconds::pause,
            )?,
            ignore_version: config.ignore_version,
        })
    }

    /// Sets [`hostname`](Self::hostname).
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = Some(hostname.into());
        self
    }

    /// Sets [`port`](Self::port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets [`hostname`](Self::hostname) and [`port`](Self::port) to an
    /// address, such as a virtual server's `local_addr()`.
    pub fn address(self, addr: SocketAddr) -> Self {
        self.hostname(addr.ip().to_string()).port(addr.port())
    }

    /// Sets [`timeout`](Self::timeout). A timeout too long for a deadline
    /// to be represented (such as `Duration::MAX`) is the same as `None`.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`reconnect_delay`](Self::reconnect_delay).
    pub fn reconnect_delay(mut self, delay: Duration) -> Self {
        self.reconnect_delay = delay;
        self
    }

    /// Sets [`ignore_version`](Self::ignore_version).
    pub fn ignore_version(mut self, ignore: bool) -> Self {
        self.ignore_version = ignore;
        self
    }

    /// The host name, which must have been given.
    ///
    /// # Errors
    /// [`InvalidArgument::NoHostname`].
    pub fn validate(&self) -> std::result::Result<(), InvalidArgument> {
        match &self.hostname {
            Some(_) => Ok(()),
            None => Err(InvalidArgument::NoHostname),
        }
    }

    /// `HOST:PORT` (`[HOST]:PORT` for an IPv6 address), as messages name
    /// the server.
    pub fn describe(&self) -> String {
        let host = self.hostname.as_deref().unwrap_or_default();
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// What a [`Client`] is told about by [`Client::wait_for_change`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Watch {
    /// One job.
    Job(u64),
    /// Every job.
    Jobs,
    /// One machine.
    Machine(String),
    /// Every machine.
    Machines,
}

/// A connection to a spalloc server, whichever protocol it speaks: the
/// operations the `spalloc` tools are made of.
///
/// [`connect`](Self::connect) checks the server's version (unless told
/// not to); each other method is one request, except the waits. For
/// everything the v1 protocol offers beyond these, use a
/// [`ProtocolClient`].
///
/// # Example
/// ```no_run
/// use spalloc::{Client, ServerOptions};
///
/// let mut client = Client::connect(&ServerOptions::new().hostname("spalloc.example.org"))?;
/// for machine in client.list_machines()? {
///     println!("{}: {} boards", machine.name, machine.num_boards());
/// }
/// # Ok::<(), spalloc::Error>(())
/// ```
#[derive(Debug)]
pub struct Client {
    v1: ProtocolClient,
}

impl Client {
    /// Connects to the server and checks its version, unless
    /// [`ignore_version`](ServerOptions::ignore_version).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if no host name is given;
    /// [`Error::Connect`] if the server cannot be reached;
    /// [`Error::IncompatibleVersion`]; other transport errors if the
    /// version check fails.
    pub fn connect(server: &ServerOptions) -> Result<Client> {
        Client::open(server, None)
    }

    /// [`connect`](Self::connect), but `interrupt` can cut connecting
    /// short, and every later call on the client too (see
    /// [`InterruptHandle`]).
    ///
    /// # Errors
    /// As for [`connect`](Self::connect), or [`Error::Interrupted`].
    pub fn connect_interruptible(
        server: &ServerOptions,
        interrupt: &InterruptHandle,
    ) -> Result<Client> {
        Client::open(server, Some(interrupt))
    }

    /// Connects with `server`'s settings but `timeout` for connecting and
    /// each call.
    pub(crate) fn open_with(
        server: &ServerOptions,
        timeout: Option<Duration>,
        interrupt: Option<&InterruptHandle>,
    ) -> Result<Client> {
        let host = server
            .hostname
            .as_deref()
            .ok_or(InvalidArgument::NoHostname)?;
        let mut v1 = match interrupt {
            Some(i) => ProtocolClient::connect_interruptible(host, server.port, timeout, i)?,
            None => ProtocolClient::connect(host, server.port, timeout)?,
        };
        if !server.ignore_version {
            v1.check_version()?;
        }
        Ok(Client { v1 })
    }

    fn open(server: &ServerOptions, interrupt: Option<&InterruptHandle>) -> Result<Client> {
        Client::open_with(server, server.timeout, interrupt)
    }

    /// The limit applied to each call (`None`: wait forever).
    pub fn timeout(&self) -> Option<Duration> {
        self.v1.timeout()
    }

    /// Sets the limit applied to each call.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.v1.set_timeout(timeout);
    }

    /// The live jobs, in the server's order.
    ///
    /// # Errors
    /// Transport errors, or [`Error::Protocol`] naming the field of a
    /// malformed entry.
    pub fn list_jobs(&mut self) -> Result<Vec<JobDescription>> {
        self.v1.list_jobs()
    }

    /// The machines, in the server's priority order.
    ///
    /// # Errors
    /// As for [`list_jobs`](Self::list_jobs).
    pub fn list_machines(&mut self) -> Result<Vec<MachineDescription>> {
        self.v1.list_machines()
    }

    /// A job's state; [`JobState::Unknown`](crate::JobState::Unknown) for
    /// an id the server does not know. Also counts as a keepalive.
    ///
    /// # Errors
    /// Transport errors, or [`Error::Protocol`] for a malformed reply.
    pub fn job_state(&mut self, id: u64) -> Result<JobStateInfo> {
        self.v1.get_job_state(id)
    }

    /// Where a job's boards are, or `None` if it has none. Also counts as a
    /// keepalive.
    ///
    /// # Errors
    /// As for [`job_state`](Self::job_state).
    pub fn job_machine_info(&mut self, id: u64) -> Result<Option<JobMachineInfo>> {
        self.v1.get_job_machine_info(id)
    }

    /// Creates a job after checking the request
    /// ([`CreateJobOptions::validate`]); returns its id.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`], [`Error::Server`] if the server refuses
    /// the request, or transport errors.
    pub fn create_job(&mut self, request: &JobRequest, options: &CreateJobOptions) -> Result<u64> {
        self.v1.create_job(request, options)
    }

    /// [`create_job`](Self::create_job), during which an interruption waits
    /// up to `grace` for the job's id before it cuts the call short.
    pub(crate) fn create_job_with_grace(
        &mut self,
        request: &JobRequest,
        options: &CreateJobOptions,
        grace: Duration,
    ) -> Result<u64> {
        self.v1
            .with_interrupt_grace(grace, |c| c.create_job(request, options))
    }

    /// Tells the server a job is still wanted.
    ///
    /// # Errors
    /// Transport errors ([`Error::Timeout`] of
    /// [`Phase::Keepalive`](crate::Phase::Keepalive) if unanswered), or
    /// [`Error::Server`].
    pub fn keepalive(&mut self, id: u64) -> Result<()> {
        self.v1.job_keepalive(id)
    }

    /// Powers a job's boards on (or resets them) or off. The job passes
    /// through [`JobState::Power`](crate::JobState::Power).
    ///
    /// # Errors
    /// Transport errors, or [`Error::Server`] (e.g. a job without boards).
    pub fn power(&mut self, id: u64, on: bool) -> Result<()> {
        if on {
            self.v1.power_on_job_boards(id)
        } else {
            self.v1.power_off_job_boards(id)
        }
    }

    /// Destroys a job, recording `reason` if given.
    ///
    /// # Errors
    /// Transport errors, or [`Error::Server`].
    pub fn destroy_job(&mut self, id: u64, reason: Option<&str>) -> Result<()> {
        self.v1.destroy_job(id, reason)
    }

    /// Locates a board or chip, or `None` if nothing is there.
    ///
    /// # Errors
    /// Transport errors, or [`Error::Protocol`] for a malformed reply.
    pub fn where_is(&mut self, query: &WhereIsQuery) -> Result<Option<WhereIs>> {
        self.v1.where_is(query)
    }

    /// Asks to be told when `what` changes, by
    /// [`wait_for_change`](Self::wait_for_change). Call it before looking
    /// at what is watched, so that a change in between is not missed.
    ///
    /// # Errors
    /// Transport errors.
    pub fn watch(&mut self, what: &Watch) -> Result<()> {
        match what {
            Watch::Job(id) => self.v1.notify_job(Some(*id)),
            Watch::Jobs => self.v1.notify_job(None),
            Watch::Machine(name) => self.v1.notify_machine(Some(name)),
            Watch::Machines => self.v1.notify_machine(None),
        }
    }

    /// Waits up to `timeout` (`None`: for ever) for something watched to
    /// change: `true` if it may have (treat it as a hint to look again, not
    /// as the change itself), `false` if the time ran out.
    ///
    /// # Errors
    /// Transport errors, or [`Error::Interrupted`].
    pub fn wait_for_change(&mut self, timeout: Option<Duration>) -> Result<bool> {
        Ok(self.v1.wait_for_notification(timeout)?.is_some())
    }
}
