//! The crate's one error type.
//!
//! Each variant's `Display` describes its own layer only (short, lowercase, no
//! trailing period), and `source()` exposes the layer below, so that a caller
//! can print the whole chain as `msg: cause: cause`. Server exceptions are kept
//! apart from transport failures because the command-line tools report them
//! differently ("Error from server" vs "Error communicating with server").

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in this crate.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Connecting to the server failed: its name did not resolve, or no
    /// address it resolved to accepted a connection in time.
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
    /// Reading or writing failed at the operating-system level.
    Io(io::Error),
    /// No reply arrived before the deadline.
    Timeout,
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
    /// of the wrong type. The message names the command and the field.
    Protocol(String),
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
    /// A caller-supplied value cannot be used, e.g. an empty owner.
    InvalidArgument(String),
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
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether this is a transport-level failure (connection refused or
    /// lost, timeout, garbled reply) that reconnecting might cure, as opposed
    /// to an answer from the server or a local mistake.
    pub fn is_transport(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::Io(_)
            | Error::Timeout
            | Error::Disconnected
            | Error::LineTooLong { .. }
            | Error::Json(_)
            | Error::Protocol(_) => true,
            Error::Server(_)
            | Error::IncompatibleVersion(_)
            | Error::Config { .. }
            | Error::InvalidArgument(_)
            | Error::JobDestroyed { .. }
            | Error::JobUnknown { .. }
            | Error::Interrupted => false,
        }
    }

    pub(crate) fn protocol(msg: impl Into<String>) -> Self {
        Error::Protocol(msg.into())
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
            Error::Io(_) => f.write_str("i/o error"),
            Error::Timeout => f.write_str("timed out waiting for the server"),
            Error::Disconnected => f.write_str("server closed the connection"),
            Error::LineTooLong { limit } => {
                write!(f, "server sent a line longer than {limit} bytes")
            }
            Error::Json(_) => f.write_str("server sent invalid JSON"),
            Error::Protocol(msg) => write!(f, "unexpected reply from server: {msg}"),
            Error::Server(msg) => f.write_str(msg),
            Error::IncompatibleVersion(v) => write!(f, "incompatible server version ({v})"),
            Error::Config { path, key, message } => match key {
                Some(key) => write!(f, "{}: key '{key}': {message}", path.display()),
                None => write!(f, "{}: {message}", path.display()),
            },
            Error::InvalidArgument(msg) => f.write_str(msg),
            Error::JobDestroyed { id, reason } => match reason.as_deref() {
                Some(r) if !r.is_empty() => write!(f, "job {id} was destroyed: {r}"),
                _ => write!(f, "job {id} was destroyed"),
            },
            Error::JobUnknown { id } => write!(f, "job {id} is not known to the server"),
            Error::Interrupted => f.write_str("interrupted"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect { source, .. } => Some(source),
            Error::Io(e) => Some(e),
            Error::Json(e) => Some(e),
            Error::Timeout
            | Error::Disconnected
            | Error::LineTooLong { .. }
            | Error::Protocol(_)
            | Error::Server(_)
            | Error::IncompatibleVersion(_)
            | Error::Config { .. }
            | Error::InvalidArgument(_)
            | Error::JobDestroyed { .. }
            | Error::JobUnknown { .. }
            | Error::Interrupted => None,
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
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout,
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
    fn timeouts_normalise() {
        let e: Error = io::Error::from(io::ErrorKind::WouldBlock).into();
        assert!(matches!(e, Error::Timeout));
        let e: Error = io::Error::from(io::ErrorKind::TimedOut).into();
        assert!(matches!(e, Error::Timeout));
        let e: Error = io::Error::from(io::ErrorKind::ConnectionRefused).into();
        assert!(matches!(e, Error::Io(_)) && e.is_transport());
    }
}
