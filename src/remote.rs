//! [`Client`]: a spalloc server as a tool sees it, whatever protocol it
//! speaks, and [`ServerOptions`], where it is and how to talk to it.
//!
//! This is the seam between what the tools want (list the jobs, power a
//! job's boards, wait until something changes) and how one protocol does
//! it. [`Job`](crate::Job) and the `spalloc` command reach a server only
//! through here, so that a second protocol is a second implementation of
//! these operations rather than a second path through every caller: the v1
//! [`ProtocolClient`], and (with the `v2` feature) the v2 REST service's
//! [`RestClient`](crate::v2::RestClient). Which one a server gets is
//! decided by how it is named (see [`ServerOptions::protocol`]).

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
use crate::v2::V2Settings;
#[cfg(feature = "v2")]
use crate::v2::neutral::V2Backend;
use crate::v2::url::{Url, is_service_url};

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
#[derive(Clone, PartialEq)]
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
    /// Credentials and the rest of what only a v2 service uses. Defaults
    /// to none.
    pub v2: V2Settings,
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A service URL may hold a password: show it without.
        let hostname = self.hostname.as_ref().map(|h| match Url::parse(h) {
            Ok(url) if is_service_url(h) => url.to_string(),
            _ => h.clone(),
        });
        f.debug_struct("ServerOptions")
            .field("hostname", &hostname)
            .field("port", &self.port)
            .field("timeout", &self.timeout)
            .field("reconnect_delay", &self.reconnect_delay)
            .field("ignore_version", &self.ignore_version)
            .field("v2", &self.v2)
            .finish()
    }
}

/// The protocol a server speaks, as its name says (the rule of SpiNNaker's
/// own tool chain): an `http://` or `https://` URL is a v2 REST service;
/// a bare host name (or address) or `spalloc://host[:port]` a v1 server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// The JSON-lines protocol on TCP (the Python server, or the Java
    /// server's compatibility service).
    V1,
    /// The Java server's REST service.
    V2,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::V1 => "v1",
            Protocol::V2 => "v2",
        })
    }
}

/// What [`Client::job_list`] finds.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobListing {
    /// The jobs this user may see, oldest first.
    pub jobs: Vec<JobDescription>,
    /// How many more jobs the server listed but will not describe to this
    /// user (v2 shows other users' jobs only to administrators); always 0
    /// on v1.
    pub hidden: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            hostname: None,
            port: crate::client::DEFAULT_PORT,
            timeout: Some(Duration::from_secs(10)),
            reconnect_delay: Duration::from_secs(5),
            ignore_version: false,
            v2: V2Settings::default(),
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

    /// The server settings of a configuration, with the v2 credentials
    /// of the environment (`OIDC_BEARER_TOKEN`, `SPALLOC_USER`,
    /// `SPALLOC_PASSWORD`) over the configuration's, and v2 sessions cached
    /// in the user's cache directory.
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
            v2: v2_settings(config),
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

    /// Sets [`v2`](Self::v2).
    pub fn v2(mut self, settings: V2Settings) -> Self {
        self.v2 = settings;
        self
    }

    /// The protocol the [`hostname`](Self::hostname) names (v1 if none is
    /// given).
    pub fn protocol(&self) -> Protocol {
        match &self.hostname {
            Some(h) if is_service_url(h) => Protocol::V2,
            _ => Protocol::V1,
        }
    }

    /// The v1 server's host and port: the host name as given, or the host
    /// and port of a `spalloc://[user@]host[:port]` (whose port, when
    /// given, wins over [`port`](Self::port)).
    fn v1_address(&self) -> std::result::Result<(String, u16), InvalidArgument> {
        let host = self
            .hostname
            .as_deref()
            .ok_or(InvalidArgument::NoHostname)?;
        let Some(rest) = strip_prefix_ignore_case(host, "spalloc://") else {
            return Ok((host.to_owned(), self.port));
        };
        let bad = |why: &str| InvalidArgument::ServiceUrl(format!("{why} in '{host}'"));
        let rest = rest.trim_end_matches('/');
        let hostport = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        let (h, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("a missing ']'"))?;
            (h, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if h.is_empty() || h.contains('/') {
            return Err(bad("no host"));
        }
        let port = match port {
            None => self.port,
            Some(p) => p.parse().map_err(|_| bad("a bad port"))?,
        };
        Ok((h.to_owned(), port))
    }

    /// The host name, which must have been given; for a v2 service, a URL
    /// this client can use.
    ///
    /// # Errors
    /// [`InvalidArgument::NoHostname`], or [`InvalidArgument::ServiceUrl`].
    pub fn validate(&self) -> std::result::Result<(), InvalidArgument> {
        match (&self.hostname, self.protocol()) {
            (None, _) => Err(InvalidArgument::NoHostname),
            (Some(h), Protocol::V2) => {
                if cfg!(not(feature = "v2")) {
                    return Err(InvalidArgument::ServiceUrl(
                        "this build of spalloc has no v2 support (the `v2` feature)".into(),
                    ));
                }
                Url::parse(h).map(drop).map_err(InvalidArgument::ServiceUrl)
            }
            (Some(_), Protocol::V1) => self.v1_address().map(drop),
        }
    }

    /// How messages name the server: `HOST:PORT` (`[HOST]:PORT` for an
    /// IPv6 address) for v1, the service URL (without any user name or
    /// password) for v2.
    pub fn describe(&self) -> String {
        let host = self.hostname.as_deref().unwrap_or_default();
        if self.protocol() == Protocol::V2 {
            return match Url::parse(host) {
                Ok(url) => url.to_string(),
                Err(_) => host.split('@').next_back().unwrap_or_default().to_owned(),
            };
        }
        let (host, port) = self
            .v1_address()
            .unwrap_or_else(|_| (host.to_owned(), self.port));
        if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The v2 settings of a configuration, then the environment's.
fn v2_settings(config: &Config) -> V2Settings {
    use crate::v2::{CredentialSource, Secret};
    let source = |key: &str| {
        config
            .source(key)
            .map(|p| CredentialSource::Config(p.to_owned()))
    };
    let mut v2 = V2Settings {
        user: config.user.clone(),
        user_source: source("user"),
        password: config.password.clone().map(Secret::new),
        password_source: source("password"),
        token_file: config.token_file.clone(),
        ca_file: config.ca_file.clone(),
        allow_plain_http: config.allow_plain_http,
        session_cache: crate::v2::default_session_dir(),
        ..V2Settings::default()
    };
    v2.apply_environment();
    v2
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
    backend: Backend,
}

/// The protocol a [`Client`] speaks. (The v2 side is boxed: it is the
/// larger, and the v1 side is the common one.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Backend {
    V1(ProtocolClient),
    #[cfg(feature = "v2")]
    V2(Box<V2Backend>),
}

/// Runs `$body` with `$c` bound to the v1 client or the v2 backend.
macro_rules! each {
    ($self:expr, $c:ident => $v1:expr, $v2:expr) => {
        match &mut $self.backend {
            Backend::V1($c) => $v1,
            #[cfg(feature = "v2")]
            Backend::V2($c) => $v2,
        }
    };
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
        server.validate()?;
        if server.protocol() == Protocol::V2 {
            #[cfg(feature = "v2")]
            {
                let url = server.hostname.as_deref().unwrap_or_default();
                let v2 = V2Backend::connect(url, server, timeout, interrupt)?;
                return Ok(Client {
                    backend: Backend::V2(Box::new(v2)),
                });
            }
        }
        let (host, port) = server.v1_address()?;
        let mut v1 = match interrupt {
            Some(i) => ProtocolClient::connect_interruptible(&host, port, timeout, i)?,
            None => ProtocolClient::connect(&host, port, timeout)?,
        };
        if !server.ignore_version {
            v1.check_version()?;
        }
        Ok(Client {
            backend: Backend::V1(v1),
        })
    }

    /// The protocol this client speaks.
    pub fn protocol(&self) -> Protocol {
        match &self.backend {
            Backend::V1(_) => Protocol::V1,
            #[cfg(feature = "v2")]
            Backend::V2(_) => Protocol::V2,
        }
    }

    /// The v1 connection, for the commands only v1 has.
    pub fn as_v1(&mut self) -> Option<&mut ProtocolClient> {
        match &mut self.backend {
            Backend::V1(c) => Some(c),
            #[cfg(feature = "v2")]
            Backend::V2(_) => None,
        }
    }

    /// The v2 client, for the endpoints only v2 has.
    #[cfg(feature = "v2")]
    pub fn as_v2(&mut self) -> Option<&mut crate::v2::RestClient> {
        match &mut self.backend {
            Backend::V1(_) => None,
            Backend::V2(c) => Some(c.rest()),
        }
    }

    fn open(server: &ServerOptions, interrupt: Option<&InterruptHandle>) -> Result<Client> {
        Client::open_with(server, server.timeout, interrupt)
    }

    /// The limit applied to each call (`None`: wait forever).
    pub fn timeout(&self) -> Option<Duration> {
        match &self.backend {
            Backend::V1(c) => c.timeout(),
            #[cfg(feature = "v2")]
            Backend::V2(c) => c.timeout(),
        }
    }

    /// Sets the limit applied to each call.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        each!(self, c => c.set_timeout(timeout), c.set_timeout(timeout));
    }

    /// The live jobs, in the server's order.
    ///
    /// # Errors
    /// Transport errors, or [`Error::Protocol`] naming the field of a
    /// malformed entry.
    pub fn list_jobs(&mut self) -> Result<Vec<JobDescription>> {
        Ok(self.job_list(false)?.jobs)
    }

    /// The jobs, oldest first: the live ones, and with `destroyed` the
    /// destroyed ones the server still remembers (v2 only; v1 servers
    /// forget them), with a count of those the server will not show this
    /// user.
    ///
    /// On v2 this costs a request per job (and two more for each job with
    /// boards, which, on the Java server, also count as its keepalive).
    ///
    /// # Errors
    /// As for [`list_jobs`](Self::list_jobs).
    #[cfg_attr(not(feature = "v2"), allow(unused_variables))]
    pub fn job_list(&mut self, destroyed: bool) -> Result<JobListing> {
        each!(self, c => Ok(JobListing { jobs: c.list_jobs()?, hidden: 0 }), c.job_list(destroyed))
    }

    /// The machines, in the server's priority order.
    ///
    /// # Errors
    /// As for [`list_jobs`](Self::list_jobs).
    pub fn list_machines(&mut self) -> Result<Vec<MachineDescription>> {
        each!(self, c => c.list_machines(), c.list_machines())
    }

    /// A job's state; [`JobState::Unknown`](crate::JobState::Unknown) for
    /// an id the server does not know. Also counts as a keepalive.
    ///
    /// # Errors
    /// Transport errors, or [`Error::Protocol`] for a malformed reply.
    pub fn job_state(&mut self, id: u64) -> Result<JobStateInfo> {
        each!(self, c => c.get_job_state(id), c.job_state(id))
    }

    /// Where a job's boards are, or `None` if it has none. Also counts as a
    /// keepalive.
    ///
    /// # Errors
    /// As for [`job_state`](Self::job_state).
    pub fn job_machine_info(&mut self, id: u64) -> Result<Option<JobMachineInfo>> {
        each!(self, c => c.get_job_machine_info(id), c.job_machine_info(id))
    }

    /// Creates a job after checking the request
    /// ([`CreateJobOptions::validate`]); returns its id.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`], [`Error::Server`] if the server refuses
    /// the request, or transport errors.
    pub fn create_job(&mut self, request: &JobRequest, options: &CreateJobOptions) -> Result<u64> {
        each!(self, c => c.create_job(request, options), c.create_job(request, options, None))
    }

    /// [`create_job`](Self::create_job), during which an interruption waits
    /// up to `grace` for the job's id before it cuts the call short.
    pub(crate) fn create_job_with_grace(
        &mut self,
        request: &JobRequest,
        options: &CreateJobOptions,
        grace: Duration,
    ) -> Result<u64> {
        each!(
            self,
            c => c.with_interrupt_grace(grace, |c| c.create_job(request, options)),
            c.create_job(request, options, Some(grace))
        )
    }

    /// Tells the server a job is still wanted.
    ///
    /// # Errors
    /// Transport errors ([`Error::Timeout`] of
    /// [`Phase::Keepalive`](crate::Phase::Keepalive) if unanswered), or
    /// [`Error::Server`].
    pub fn keepalive(&mut self, id: u64) -> Result<()> {
        each!(self, c => c.job_keepalive(id), c.keepalive(id))
    }

    /// Powers a job's boards on (or resets them) or off. The job passes
    /// through [`JobState::Power`](crate::JobState::Power).
    ///
    /// # Errors
    /// Transport errors, or [`Error::Server`] (e.g. a job without boards).
    pub fn power(&mut self, id: u64, on: bool) -> Result<()> {
        each!(
            self,
            c => if on {
                c.power_on_job_boards(id)
            } else {
                c.power_off_job_boards(id)
            },
            c.power(id, on)
        )
    }

    /// Destroys a job, recording `reason` if given.
    ///
    /// # Errors
    /// Transport errors, or [`Error::Server`].
    pub fn destroy_job(&mut self, id: u64, reason: Option<&str>) -> Result<()> {
        each!(self, c => c.destroy_job(id, reason), c.destroy_job(id, reason))
    }

    /// Locates a board or chip, or `None` if nothing is there.
    ///
    /// # Errors
    /// Transport errors, or [`Error::Protocol`] for a malformed reply.
    pub fn where_is(&mut self, query: &WhereIsQuery) -> Result<Option<WhereIs>> {
        each!(self, c => c.where_is(query), c.where_is(query))
    }

    /// Asks to be told when `what` changes, by
    /// [`wait_for_change`](Self::wait_for_change). Call it before looking
    /// at what is watched, so that a change in between is not missed.
    ///
    /// # Errors
    /// Transport errors.
    pub fn watch(&mut self, what: &Watch) -> Result<()> {
        each!(
            self,
            c => match what {
                Watch::Job(id) => c.notify_job(Some(*id)),
                Watch::Jobs => c.notify_job(None),
                Watch::Machine(name) => c.notify_machine(Some(name)),
                Watch::Machines => c.notify_machine(None),
            },
            c.watch(what)
        )
    }

    /// Waits up to `timeout` (`None`: for ever) for something watched to
    /// change: `true` if it may have (treat it as a hint to look again, not
    /// as the change itself), `false` if the time ran out.
    ///
    /// # Errors
    /// Transport errors, or [`Error::Interrupted`].
    pub fn wait_for_change(&mut self, timeout: Option<Duration>) -> Result<bool> {
        each!(
            self,
            c => Ok(c.wait_for_notification(timeout)?.is_some()),
            c.wait_for_change(timeout)
        )
    }
}
