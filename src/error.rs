//! The crate's error type, and the typed details some of its variants carry.
//!
//! Each variant's `Display` is short, lowercase, with no trailing period,
//! and `source()` exposes the layer below, so that a caller can print the
//! whole chain as `msg: cause: cause`. The exceptions are the two variants
//! that wrap an operating-system error, [`Error::Connect`] and
//! [`Error::Io`]: their `Display` already gives the system's reason in plain
//! words (`connection refused`, not `Connection refused (os error 111)`),
//! and `source()` keeps the original for its kind and number, so a chain
//! printer should stop at them. Server exceptions are kept apart from
//! transport failures because the command-line tools report them
//! differently ("Error from server" vs "Error communicating with server").

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in this crate.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Connecting to the server failed: its name did not resolve, or no
    /// address it resolved to accepted a connection in time (the source's
    /// kind is then [`io::ErrorKind::TimedOut`]; see [`Error::timeout`]).
    Connect {
        /// The host name (or address) as given.
        host: String,
        /// The port.
        port: u16,
        /// Whether it was the name lookup that failed.
        lookup: bool,
        /// The operating system's error.
        source: io::Error,
    },
    /// Reading or writing failed at the operating-system level. `Display`
    /// gives the system's reason in plain words (`connection reset by
    /// peer`); `source()` is the original error, for its kind and number.
    Io(io::Error),
    /// Time ran out; the [`Phase`] says what was being waited for.
    Timeout(Phase),
    /// The server closed the connection.
    Disconnected,
    /// The server sent a line longer than the configured bound.
    LineTooLong {
        /// The bound, in bytes, that was exceeded.
        limit: usize,
    },
    /// A line from the server was not valid JSON.
    Json(serde_json::Error),
    /// A line from the server was JSON of the wrong shape, e.g. a reply field
    /// of the wrong type; the [`ProtocolError`] names the command, the
    /// field, what was expected and what came.
    Protocol(Box<ProtocolError>),
    /// A connection that failed earlier was used again. After a timeout it
    /// can still be used; after any other failure it cannot, because the
    /// replies can no longer be matched to their commands. Reconnect.
    Abandoned {
        /// What made it unusable, e.g. `a write failed`.
        after: &'static str,
    },
    /// The server answered a command with `{"exception": …}`.
    Server(String),
    /// The server's version is outside the range this client supports.
    IncompatibleVersion(String),
    /// A configuration file (or string) has a bad value or cannot be parsed.
    Config {
        /// The file, or a description of where the text came from.
        path: PathBuf,
        /// The key at fault, when one is.
        key: Option<String>,
        /// What was wrong.
        message: String,
    },
    /// A request or option that cannot be sent, found before anything was:
    /// an empty owner, no server, both a machine and tags, and so on.
    InvalidArgument(InvalidArgument),
    /// The job was destroyed, by request or by the server.
    JobDestroyed {
        /// The job's id.
        id: u64,
        /// The reason the server gave, if any.
        reason: Option<String>,
    },
    /// The server does not know the job (never created, or long forgotten).
    JobUnknown {
        /// The job's id.
        id: u64,
    },
    /// A wait was cut short through an
    /// [`InterruptHandle`](crate::InterruptHandle).
    Interrupted,
    /// A v2 service would not let us in: it refused the user name and
    /// password or the bearer token, or none was given. A refused login is
    /// never tried again automatically (the service may lock the account
    /// after repeated failures); the message says why and what to do.
    Login(String),
    /// A v2 service answered with an HTTP status that means neither success
    /// nor a refusal of the request itself: a gateway or service that is
    /// unavailable (5xx, worth trying again: see
    /// [`is_transport`](Self::is_transport)), or a status this client
    /// does not expect.
    Http {
        /// The status code.
        status: u16,
        /// The start of the response body, as text.
        message: String,
    },
    /// A v2 service sent a response (head or body) larger than the bound.
    ResponseTooLarge {
        /// The bound, in bytes, that was exceeded.
        limit: usize,
    },
}

/// What a [`Error::Timeout`] was waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Connecting. Reported as [`Error::Connect`], which also names the
    /// server; [`Error::timeout`] gives this phase for it.
    Connect,
    /// The reply to a command. The connection stays usable: the late reply
    /// is discarded when it comes.
    Reply,
    /// The server's acknowledgement of a keepalive.
    Keepalive,
    /// A job reaching a state, such as
    /// [`Job::wait_until_ready`](crate::Job::wait_until_ready). The server
    /// may be answering perfectly well.
    Wait,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Connect => "connecting to the server",
            Phase::Reply => "the server",
            Phase::Keepalive => "the server to acknowledge a keepalive",
            Phase::Wait => "the job",
        })
    }
}

/// A line from the server that is JSON but not of the shape expected: what
/// came where, and what should have.
///
/// Its `Display` reads `COMMAND: field 'FIELD': expected EXPECTED, got GOT`,
/// leaving out what is not known.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProtocolError {
    /// The command whose reply was wrong (`list_jobs`), or the kind of
    /// message (`jobs_changed`); `None` when the line itself was not a
    /// message at all.
    pub command: Option<String>,
    /// The field of the reply that was wrong; `None` when the reply as a
    /// whole was.
    pub field: Option<String>,
    /// What was expected there, e.g. `a non-negative integer`.
    pub expected: String,
    /// What came instead, e.g. `a string "x"`; `None` when nothing did
    /// (a missing field).
    pub got: Option<String>,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(command) = &self.command {
            write!(f, "{command}: ")?;
        }
        match (&self.field, &self.got) {
            (Some(field), None) => write!(f, "field '{field}' is missing"),
            (Some(field), Some(got)) => {
                write!(f, "field '{field}': expected {}, got {got}", self.expected)
            }
            (None, Some(got)) => write!(f, "expected {}, got {got}", self.expected),
            (None, None) => write!(f, "expected {}, got nothing", self.expected),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// A request or option that cannot be used, found before anything is sent
/// (see [`Error::InvalidArgument`]). Each variant names the setting, so
/// that a tool can report it in its own words (the `spalloc` command names
/// its flags).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum InvalidArgument {
    /// No server was given.
    NoHostname,
    /// No owner was given, or only white space.
    NoOwner,
    /// Both a machine and tags were given.
    MachineAndTags,
    /// Wrap-around links were required of a single board.
    TorusForSingleBoard,
    /// The minimum ratio is negative or NaN.
    MinRatio(f64),
    /// The keepalive interval is not a number of seconds.
    Keepalive(crate::seconds::SecondsError),
    /// The server setting is an `http(s)://` service URL that cannot be
    /// used; the text says why.
    ServiceUrl(String),
    /// A use of the v2 proxy that cannot work (a datagram too long, port
    /// 0, the wrong kind of send for a channel); the text says which.
    Proxy(String),
    /// An option (or request form) that the server's protocol does not
    /// have, such as `min_ratio` on a v2 service or a board by IP address
    /// on a v1 server.
    NotOnProtocol {
        /// The option, as the configuration key or request form is named.
        option: &'static str,
        /// The protocol that lacks it: `v1` or `v2`.
        protocol: &'static str,
    },
    /// A password or token would go over plain `http://` to a host other
    /// than this machine, which was not explicitly allowed.
    PlainHttp {
        /// The host.
        host: String,
    },
    /// A physical board was asked of a v1 server without naming the
    /// machine it is on.
    PhysicalWithoutMachine,
}

impl fmt::Display for InvalidArgument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidArgument::NoHostname => f.write_str(
                "no server hostname given (set `hostname` in the options or a config file)",
            ),
            InvalidArgument::NoOwner => {
                f.write_str("no owner given (set `owner` in the options or a config file)")
            }
            InvalidArgument::MachineAndTags => {
                f.write_str("only one of machine and tags may be specified for a job")
            }
            InvalidArgument::TorusForSingleBoard => {
                f.write_str("require_torus cannot be used when allocating a single board")
            }
            InvalidArgument::MinRatio(r) => {
                write!(f, "min_ratio must be a non-negative number, not {r}")
            }
            InvalidArgument::Keepalive(e) => write!(f, "keepalive: {e}"),
            InvalidArgument::ServiceUrl(e) => write!(f, "service URL: {e}"),
            InvalidArgument::Proxy(e) => write!(f, "proxy: {e}"),
            InvalidArgument::NotOnProtocol { option, protocol } => write!(
                f,
                "{option} cannot be used with a {protocol} server ({})",
                match *protocol {
                    "v1" => "only the v2 REST service, an http(s):// URL, has it",
                    _ => "only the v1 protocol has it",
                }
            ),
            InvalidArgument::PlainHttp { host } => write!(
                f,
                "refusing to send a password or token to {host} over plain http://: use https://, \
                 or allow it explicitly (--allow-plain-http, or `allow_plain_http = true` in the configuration)"
            ),
            InvalidArgument::PhysicalWithoutMachine => f.write_str(
                "a board by physical position needs the machine it is on (set the machine)",
            ),
        }
    }
}

impl std::error::Error for InvalidArgument {}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether this is a transport-level failure (connection refused or
    /// lost, a reply that did not come, a garbled reply) that reconnecting
    /// might cure, as opposed to an answer from the server, a local mistake,
    /// or a wait that simply ran out of time.
    pub fn is_transport(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::Io(_)
            | Error::Timeout(Phase::Connect | Phase::Reply | Phase::Keepalive)
            | Error::Disconnected
            | Error::LineTooLong { .. }
            | Error::Json(_)
            | Error::Protocol(_)
            | Error::Abandoned { .. }
            | Error::ResponseTooLarge { .. } => true,
            Error::Http { status, .. } => *status >= 500,
            Error::Timeout(Phase::Wait)
            | Error::Login(_)
            | Error::Server(_)
            | Error::IncompatibleVersion(_)
            | Error::Config { .. }
            | Error::InvalidArgument(_)
            | Error::JobDestroyed { .. }
            | Error::JobUnknown { .. }
            | Error::Interrupted => false,
        }
    }

    /// If time ran out, what was being waited for: the phase of an
    /// [`Error::Timeout`], or [`Phase::Connect`] for an [`Error::Connect`]
    /// that timed out.
    pub fn timeout(&self) -> Option<Phase> {
        match self {
            Error::Timeout(phase) => Some(*phase),
            Error::Connect { source, .. } if source.kind() == io::ErrorKind::TimedOut => {
                Some(Phase::Connect)
            }
            _ => None,
        }
    }

    /// A reply (or message) of the wrong shape.
    #[cfg(test)]
    pub(crate) fn protocol(
        command: Option<&str>,
        field: Option<&str>,
        expected: impl Into<String>,
        got: Option<String>,
    ) -> Self {
        Error::Protocol(Box::new(ProtocolError {
            command: command.map(str::to_owned),
            field: field.map(str::to_owned),
            expected: expected.into(),
            got,
        }))
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(Box::new(e))
    }
}

impl From<InvalidArgument> for Error {
    fn from(e: InvalidArgument) -> Self {
        Error::InvalidArgument(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect {
                host,
                port,
                lookup: true,
                source,
            } => write!(f, "cannot look up {host} (port {port}): {}", plain(source)),
            Error::Connect {
                host,
                port,
                lookup: false,
                source,
            } => {
                if host.contains(':') {
                    write!(f, "cannot connect to [{host}]:{port}: {}", plain(source))
                } else {
                    write!(f, "cannot connect to {host}:{port}: {}", plain(source))
                }
            }
            Error::Io(e) => f.write_str(&plain(e)),
            Error::Timeout(phase) => write!(f, "timed out waiting for {phase}"),
            Error::Disconnected => f.write_str("server closed the connection"),
            Error::LineTooLong { limit } => {
                write!(f, "server sent a line longer than {limit} bytes")
            }
            Error::Json(_) => f.write_str("server sent invalid JSON"),
            Error::Protocol(e) => write!(f, "unexpected reply from server: {e}"),
            Error::Abandoned { after } => write!(
                f,
                "connection abandoned after an earlier failure ({after}); reconnect"
            ),
            Error::Server(msg) => f.write_str(msg),
            Error::IncompatibleVersion(v) => write!(f, "incompatible server version ({v})"),
            Error::Config { path, key, message } => match key {
                Some(key) => write!(f, "{}: key '{key}': {message}", path.display()),
                None => write!(f, "{}: {message}", path.display()),
            },
            Error::InvalidArgument(e) => e.fmt(f),
            Error::JobDestroyed { id, reason } => match reason.as_deref() {
                Some(r) if !r.is_empty() => write!(f, "job {id} was destroyed: {r}"),
                _ => write!(f, "job {id} was destroyed"),
            },
            Error::JobUnknown { id } => write!(f, "job {id} is not known to the server"),
            Error::Interrupted => f.write_str("interrupted"),
            Error::Login(message) => f.write_str(message),
            Error::Http { status, message } if message.is_empty() => {
                write!(f, "server answered HTTP {status}")
            }
            Error::Http { status, message } => {
                write!(f, "server answered HTTP {status}: {message}")
            }
            Error::ResponseTooLarge { limit } => {
                write!(f, "server sent a response larger than {limit} bytes")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect { source, .. } => Some(source),
            Error::Io(e) => Some(e),
            Error::Json(e) => Some(e),
            Error::Timeout(_)
            | Error::Disconnected
            | Error::LineTooLong { .. }
            | Error::Protocol(_)
            | Error::Abandoned { .. }
            | Error::Server(_)
            | Error::IncompatibleVersion(_)
            | Error::Config { .. }
            | Error::InvalidArgument(_)
            | Error::JobDestroyed { .. }
            | Error::JobUnknown { .. }
            | Error::Interrupted
            | Error::Login(_)
            | Error::Http { .. }
            | Error::ResponseTooLarge { .. } => None,
        }
    }
}

/// An operating-system error as a reader wants it: `connection refused`
/// rather than `Connection refused (os error 111)`.
pub(crate) fn plain(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match (e.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(at)) => &text[..at],
        _ => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        // Lower-case a leading capital, but not an acronym ("DNS").
        Some(first) if first.is_uppercase() && !chars.next().is_some_and(char::is_uppercase) => {
            first
                .to_lowercase()
                .chain(text[first.len_utf8()..].chars())
                .collect()
        }
        _ => text.to_owned(),
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            // Unix reports an expired socket timeout as WouldBlock, Windows as
            // TimedOut: both mean our deadline passed.
            // A socket timeout is a reply that did not come: connecting has
            // its own error, and longer waits their own phases.
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout(Phase::Reply),
            io::ErrorKind::UnexpectedEof => Error::Disconnected,
            _ => Error::Io(e),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Json(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_stays_small() {
        // Errors travel through every Result in the crate; keep them cheap to move.
        assert!(
            std::mem::size_of::<Error>() <= 72,
            "{}",
            std::mem::size_of::<Error>()
        );
    }

    #[test]
    fn config_error_names_file_and_key() {
        let e = Error::Config {
            path: PathBuf::from("/etc/xdg/spalloc"),
            key: Some("port".into()),
            message: "expected an integer, got 'abc'".into(),
        };
        assert_eq!(
            e.to_string(),
            "/etc/xdg/spalloc: key 'port': expected an integer, got 'abc'"
        );
    }

    #[test]
    fn connection_failures_name_host_port_and_reason() {
        let e = Error::Connect {
            host: "127.0.0.1".into(),
            port: 9,
            lookup: false,
            source: io::Error::from_raw_os_error(111),
        };
        assert_eq!(
            e.to_string(),
            "cannot connect to 127.0.0.1:9: connection refused"
        );
        assert!(e.is_transport());
        assert!(std::error::Error::source(&e).is_some());
        let e = Error::Connect {
            host: "::1".into(),
            port: 9,
            lookup: false,
            source: io::ErrorKind::TimedOut.into(),
        };
        assert_eq!(e.to_string(), "cannot connect to [::1]:9: timed out");
        let e = Error::Connect {
            host: "nowhere.invalid".into(),
            port: 22244,
            lookup: true,
            source: io::Error::other(
                "failed to lookup address information: Name or service not known",
            ),
        };
        assert_eq!(
            e.to_string(),
            "cannot look up nowhere.invalid (port 22244): failed to lookup address information: Name or service not known"
        );
    }

    #[test]
    fn io_errors_read_plainly_and_keep_their_source() {
        let e = Error::Io(io::Error::from_raw_os_error(104));
        assert_eq!(e.to_string(), "connection reset by peer");
        let source = std::error::Error::source(&e).expect("a source");
        assert!(source.to_string().contains("os error 104"), "{source}");
    }

    #[test]
    fn timeouts_name_their_phase() {
        assert_eq!(
            Error::Timeout(Phase::Reply).to_string(),
            "timed out waiting for the server"
        );
        assert_eq!(
            Error::Timeout(Phase::Keepalive).to_string(),
            "timed out waiting for the server to acknowledge a keepalive"
        );
        assert_eq!(
            Error::Timeout(Phase::Wait).to_string(),
            "timed out waiting for the job"
        );
        assert!(Error::Timeout(Phase::Reply).is_transport());
        assert!(!Error::Timeout(Phase::Wait).is_transport());
        let connect = Error::Connect {
            host: "h".into(),
            port: 1,
            lookup: false,
            source: io::ErrorKind::TimedOut.into(),
        };
        assert_eq!(connect.timeout(), Some(Phase::Connect));
        assert_eq!(Error::Disconnected.timeout(), None);
    }

    #[test]
    fn protocol_errors_name_command_field_expected_and_got() {
        let e = Error::protocol(
            Some("list_jobs"),
            Some("state"),
            "a non-negative integer",
            Some("a string \"x\"".into()),
        );
        assert_eq!(
            e.to_string(),
            "unexpected reply from server: list_jobs: field 'state': expected a non-negative integer, got a string \"x\""
        );
        let e = Error::protocol(Some("where_is"), Some("chip"), "[x, y]", None);
        assert_eq!(
            e.to_string(),
            "unexpected reply from server: where_is: field 'chip' is missing"
        );
        let e = Error::protocol(None, None, "a JSON object", Some("a list".into()));
        assert_eq!(
            e.to_string(),
            "unexpected reply from server: expected a JSON object, got a list"
        );
        assert!(e.is_transport());
    }

    #[test]
    fn timeouts_normalise() {
        let e: Error = io::Error::from(io::ErrorKind::WouldBlock).into();
        assert!(matches!(e, Error::Timeout(Phase::Reply)));
        let e: Error = io::Error::from(io::ErrorKind::TimedOut).into();
        assert!(matches!(e, Error::Timeout(Phase::Reply)));
        let e: Error = io::Error::from(io::ErrorKind::ConnectionRefused).into();
        assert!(matches!(e, Error::Io(_)) && e.is_transport());
    }
}
