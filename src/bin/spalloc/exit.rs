//! The CLI's own error type and every exit code, in one place.
//!
//! Subcommands return `Result<ExitCode, CliError>`; `main` prints the error
//! (one line, never a trace) and exits with its code. The codes are the
//! Python tools', which scripts test for.

use std::io;
use std::process::ExitCode;

use spalloc::{Error, ServerOptions};

use crate::render::visible;

/// Exit codes shared by the subcommands.
pub mod code {
    /// Success.
    pub const OK: u8 = 0;
    /// Transport error or server exception (job, ps, machine, where-is);
    /// job destroyed before ready or dead `--resume` (alloc).
    pub const FAILED: u8 = 1;
    /// Usage, configuration or version error; alloc: job unknown while
    /// waiting.
    pub const USAGE: u8 = 2;
    /// alloc: unrecognised job state; job: no live job, or several.
    pub const STATE: u8 = 3;
    /// alloc: SIGINT before ready; where-is: nothing there.
    pub const INTERRUPTED_OR_NOTHING: u8 = 4;
    /// alloc `--queue-timeout`, job `--wait-ready --ready-timeout`: the job
    /// was not ready in time.
    pub const NOT_READY: u8 = 5;
    /// alloc: cannot connect, or server exception, on create or resume;
    /// machine: unknown machine.
    pub const NO_SERVER_OR_MACHINE: u8 = 6;
    /// job: SIGINT while waiting on power.
    pub const POWER_INTERRUPTED: u8 = 7;
    /// job: cannot power in this state.
    pub const POWER_STATE: u8 = 8;
    /// job: `--ethernet-ips` of a queued, dead or unknown job.
    pub const NO_IPS: u8 = 9;
    /// alloc `-c`: the command cannot be executed.
    pub const NOT_EXECUTABLE: u8 = 126;
    /// alloc `-c`: the command was not found.
    pub const NOT_FOUND: u8 = 127;
    /// The exit code for "killed by signal N" (128 + N).
    pub fn signalled(signal: i32) -> u8 {
        u8::try_from(128 + signal.clamp(0, 127)).unwrap_or(255)
    }
}

/// How a subcommand failed.
#[derive(Debug)]
pub enum CliError {
    /// A usage error: `PROG: error: MESSAGE`, the usage, exit 2.
    Usage(String),
    /// A message on stderr (if any) and an exit code.
    Exit {
        /// The exit code.
        code: u8,
        /// The line to print on stderr, without its newline.
        message: Option<String>,
    },
    /// Writing output failed (a closed pipe counts as success).
    Output(io::Error),
}

impl CliError {
    /// Exits with `code` after printing `message`.
    pub fn exit(code: u8, message: impl Into<String>) -> CliError {
        CliError::Exit {
            code,
            message: Some(message.into()),
        }
    }

    /// Exits with `code`, printing nothing.
    pub fn silent(code: u8) -> CliError {
        CliError::Exit {
            code,
            message: None,
        }
    }

    /// A configuration error: `spalloc: config error: …`, exit 2. The
    /// file's text is shown with control characters made visible.
    pub fn config(e: &Error) -> CliError {
        CliError::exit(
            code::USAGE,
            format!("spalloc: config error: {}", visible(&e.to_string())),
        )
    }

    /// The standard wording of a failure talking to `server` (job, ps,
    /// machine and where-is).
    pub fn server(server: &ServerOptions, e: Error) -> CliError {
        match e {
            Error::Server(m) => {
                CliError::exit(code::FAILED, format!("Error from server: {}", visible(&m)))
            }
            Error::IncompatibleVersion(v) => CliError::exit(
                code::USAGE,
                format!("Incompatible server version ({})", visible(&v)),
            ),
            Error::Login(m) => {
                CliError::exit(code::FAILED, format!("Cannot log in: {}", visible(&m)))
            }
            Error::InvalidArgument(e) => crate::settings::invalid(e),
            other => CliError::exit(
                code::FAILED,
                format!(
                    "Error communicating with server: {}: {}",
                    server.describe(),
                    reason(&other)
                ),
            ),
        }
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        CliError::Output(e)
    }
}

/// The result of a subcommand.
pub type CliResult = Result<ExitCode, CliError>;

/// The part of an error worth showing after a prefix: the error and its
/// causes, `msg: cause: cause`, without the server's address (which the
/// prefix names), with operating-system errors in plain words and control
/// characters made visible (a server's message is untrusted).
pub fn reason(e: &Error) -> String {
    let text = match e {
        // Already in plain words; its source is the same error, raw.
        Error::Io(_) => e.to_string(),
        Error::Connect {
            lookup: true,
            source,
            ..
        } => format!("cannot look up the host name: {}", plain(source)),
        Error::Connect { source, .. } => plain(source),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    };
    visible(&text).into_owned()
}

/// An operating-system error in plain words: `connection refused` rather
/// than `Connection refused (os error 111)`.
pub fn plain(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match (e.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(at)) => &text[..at],
        _ => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        // Lower-case a leading capital, but not an acronym.
        Some(first) if first.is_uppercase() && !chars.next().is_some_and(char::is_uppercase) => {
            first
                .to_lowercase()
                .chain(text[first.len_utf8()..].chars())
                .collect()
        }
        _ => text.to_owned(),
    }
}

/// Whether an error chain is a closed pipe on our output.
pub fn is_broken_pipe(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_well() {
        let refused = Error::Io(io::Error::from_raw_os_error(111));
        assert_eq!(reason(&refused), "connection refused");
        let refused = Error::Connect {
            host: "h".into(),
            port: 1,
            lookup: false,
            source: io::Error::from_raw_os_error(111),
        };
        assert_eq!(reason(&refused), "connection refused");
        assert_eq!(reason(&Error::Server("a\x1b[2Jb".into())), "a\\e[2Jb");
        assert_eq!(
            reason(&Error::Timeout(spalloc::Phase::Reply)),
            "timed out waiting for the server"
        );
        let json = serde_json::from_str::<serde_json::Value>("{").map_err(Error::from);
        let Err(json) = json else { panic!("parsed") };
        assert!(
            reason(&json).starts_with("server sent invalid JSON: EOF"),
            "{}",
            reason(&json)
        );
    }

    #[test]
    fn signal_codes() {
        assert_eq!(code::signalled(15), 143);
        assert_eq!(code::signalled(1), 129);
        assert_eq!(code::signalled(9), 137);
    }
}
