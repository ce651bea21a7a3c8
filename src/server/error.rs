//! [`ServerError`]: why a [`VirtualServer`](super::VirtualServer) did not
//! start.
//!
//! Each variant says what the operator has to look at: a setting, the
//! state file, an address, or the operating system. `Display` is one line
//! naming the setting, file or address; `source()` gives the operating
//! system's error where there is one.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use super::config::ConfigError;
use crate::error::plain;

/// Why a [`VirtualServer`](super::VirtualServer) could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerError {
    /// A setting of the configuration is invalid; the error names it.
    Config(ConfigError),
    /// Something a setting names cannot be used: a state file that could
    /// not be written where it is to be, the v2 service's users, its
    /// certificate or its key. The message names the setting or the file.
    Unusable(String),
    /// The state file exists, but cannot be read or is not a saved state.
    /// The server will not start over it rather than lose the jobs in it.
    StateFile(String),
    /// An address could not be listened on.
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Whether it was the v2 (HTTP) service's.
        v2: bool,
        /// The operating system's error.
        source: io::Error,
    },
    /// Another step of starting failed: making a certificate, writing the
    /// CA certificate where asked, starting a thread. The message says
    /// which.
    Io {
        /// What was being done.
        what: String,
        /// The operating system's error.
        source: io::Error,
    },
}

impl ServerError {
    /// Whether the fault is in the settings (or what they name) rather than
    /// in the state file or the operating system.
    pub fn is_setting(&self) -> bool {
        match self {
            ServerError::Config(_) | ServerError::Unusable(_) => true,
            ServerError::StateFile(_) | ServerError::Listen { .. } | ServerError::Io { .. } => {
                false
            }
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> ServerError {
        ServerError::Io {
            what: what.into(),
            source,
        }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Config(e) => e.fmt(f),
            ServerError::Unusable(m) | ServerError::StateFile(m) => f.write_str(m),
            ServerError::Listen {
                addr,
                v2: false,
                source,
            } => write!(f, "cannot listen on {addr}: {}", plain(source)),
            ServerError::Listen {
                addr,
                v2: true,
                source,
            } => write!(f, "v2 service: cannot listen on {addr}: {}", plain(source)),
            ServerError::Io { what, source } => write!(f, "{what}: {}", plain(source)),
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::Config(e) => Some(e),
            ServerError::Listen { source, .. } | ServerError::Io { source, .. } => Some(source),
            ServerError::Unusable(_) | ServerError::StateFile(_) => None,
        }
    }
}

impl From<ConfigError> for ServerError {
    fn from(e: ConfigError) -> Self {
        ServerError::Config(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_to_look_at() {
        let addr: SocketAddr = ([127, 0, 0, 1], 22244).into();
        let e = ServerError::Listen {
            addr,
            v2: true,
            source: io::Error::from_raw_os_error(98),
        };
        assert_eq!(
            e.to_string(),
            "v2 service: cannot listen on 127.0.0.1:22244: address already in use"
        );
        assert!(!e.is_setting());
        assert!(std::error::Error::source(&e).is_some());
        let e = ServerError::Unusable("state file /x: cannot be written there: denied".into());
        assert!(e.is_setting());
    }
}
