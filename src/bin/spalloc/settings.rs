//! Flags and configuration resolved, once, into what the library needs:
//! [`ServerOptions`] for every subcommand that talks to a server,
//! [`JobOptions`] and the request for `alloc`, and what each output stream
//! can do.
//!
//! A flag overrides the configuration files, which override the built-in
//! defaults; the checks the library makes ([`JobOptions::validate`]) are
//! reported here in the tool's own words, naming the flag. The order of
//! the checks is the Python tools': the owner, the server, the request.

use std::io::{self, IsTerminal};
use std::net::SocketAddr;
use std::time::Duration;

use spalloc::v2::{PasswordPrompt, Secret};
use spalloc::{
    Board, BoardPosition, Config, Error, InvalidArgument, JobOptions, JobRequest, Number, Protocol,
    ServerOptions, seconds,
};

use crate::args::{AllocArgs, ServerFlags};
use crate::exit::{CliError, code};
use crate::render::{self, ColorChoice};

/// What each output stream can do, decided once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Term {
    /// Colour on stdout.
    pub out_colour: bool,
    /// Colour on stderr.
    pub err_colour: bool,
    /// Cursor control (clear screen) on stdout.
    pub out_cursor: bool,
    /// Cursor control (rewriting status lines) on stderr.
    pub err_cursor: bool,
}

impl Term {
    /// Looks at the real streams and the environment.
    pub fn detect(choice: ColorChoice) -> Term {
        let no_color = std::env::var("NO_COLOR").ok();
        let term = std::env::var("TERM").ok();
        let (out_tty, err_tty) = (io::stdout().is_terminal(), io::stderr().is_terminal());
        let colour =
            |tty| render::colour_enabled(choice, tty, no_color.as_deref(), term.as_deref());
        Term {
            out_colour: colour(out_tty),
            err_colour: colour(err_tty),
            out_cursor: render::cursor_control(out_tty, term.as_deref()),
            err_cursor: render::cursor_control(err_tty, term.as_deref()),
        }
    }
}

/// Loads the configuration files, mapping errors to the CLI's wording.
pub fn load_config() -> Result<Config, CliError> {
    Config::load().map_err(|e| CliError::config(&e))
}

/// A `--FLAG SECONDS` limit (`--timeout`) by the rule of [`spalloc::seconds`]:
/// negative or huge means none; NaN is a usage error naming the flag.
pub fn flag_limit(flag: &str, secs: f64) -> Result<Option<Duration>, CliError> {
    seconds::limit(secs).map_err(|e| CliError::Usage(format!("argument {flag}: {e}")))
}

/// A `--FLAG SECONDS` pause (`--reconnect-delay`): negative means none.
pub fn flag_pause(flag: &str, secs: f64) -> Result<Duration, CliError> {
    seconds::pause(secs).map_err(|e| CliError::Usage(format!("argument {flag}: {e}")))
}

/// A `--FLAG SECONDS` length of time with no "none" spelling (`serve`'s
/// timings).
pub fn flag_span(flag: &str, secs: f64) -> Result<Duration, CliError> {
    seconds::span(secs).map_err(|e| CliError::Usage(format!("argument {flag}: {e}")))
}

/// A problem the library found with the options, in the tool's words.
pub fn invalid(e: InvalidArgument) -> CliError {
    CliError::Usage(match e {
        InvalidArgument::NoOwner => {
            "--owner must be specified (typically your email address)".into()
        }
        InvalidArgument::NoHostname => "--hostname of spalloc server must be specified".into(),
        InvalidArgument::MinRatio(r) => {
            format!("argument --min-ratio: expected a number that is not negative, got {r}")
        }
        InvalidArgument::Keepalive(e) => format!("argument --keepalive: {e}"),
        InvalidArgument::NotOnProtocol { option, protocol } => {
            let flag = match option {
                "min_ratio" => "--min-ratio (config `min_ratio`)",
                "max_dead_links" => "--max-dead-links (config `max_dead_links`)",
                "require_torus" => "--require-torus (config `require_torus`)",
                "a keepalive of None (never expire)" => {
                    "--keepalive -1 (never expire; config `keepalive = None`)"
                }
                "a board by IP address" | "where-is by IP address" => "--ip",
                other => other,
            };
            match protocol {
                "v2" => format!(
                    "argument {flag}: not available with a v2 server (an http(s):// service \
                     URL), which has no such setting"
                ),
                _ => format!(
                    "argument {flag}: only available with a v2 server (an http(s):// service \
                     URL as --hostname)"
                ),
            }
        }
        InvalidArgument::PhysicalWithoutMachine => {
            "argument --physical: a board by physical position needs the machine (-m)".into()
        }
        other => other.to_string(),
    })
}

/// A value from the configuration files that the library turned down.
/// [`Config::load`] checks every value as it reads it, so this cannot
/// happen in practice; it is worded as a configuration error all the same.
fn config_value(e: Error) -> CliError {
    match e {
        Error::Config {
            key: Some(key),
            message,
            ..
        } => CliError::exit(
            code::USAGE,
            format!("spalloc: config error: key '{key}': {message}"),
        ),
        other => CliError::config(&other),
    }
}

/// The server: flags over configuration. A missing host name is a usage
/// error, reported before any other flag's.
pub fn server(flags: &ServerFlags<'_>, config: &Config) -> Result<ServerOptions, CliError> {
    let mut server = ServerOptions::from_config(config).map_err(config_value)?;
    if let Some(host) = flags.hostname {
        server.hostname = Some(host.to_owned());
    }
    server.validate().map_err(invalid)?;
    let mut server = apply_flags(server, flags)?;
    with_prompt(&mut server);
    Ok(server)
}

/// On a v2 server, a way to ask for the password on the terminal when a
/// login is needed (no password given, no session cached).
fn with_prompt(server: &mut ServerOptions) {
    if server.protocol() == Protocol::V2 && io::stdin().is_terminal() {
        server.v2.prompt = Some(PasswordPrompt(std::sync::Arc::new(ask_password)));
    }
}

/// Asks for a password on the terminal, without echo; once per run (a
/// password that was refused is not asked for again, and a job's
/// background thread never asks).
fn ask_password(user: &str, url: &str) -> Option<Secret> {
    use std::io::{BufRead, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    static ASKED: AtomicBool = AtomicBool::new(false);
    // Only the main thread asks: a job's keepalive thread renewing a
    // session must not take the terminal from a running command.
    if std::thread::current().name() != Some("main") || ASKED.swap(true, Ordering::SeqCst) {
        return None;
    }
    let stdin = io::stdin();
    let mut err = io::stderr().lock();
    // Echo off while the password is typed, restored however the read
    // ends; off before the prompt shows, so that nothing typed as soon as
    // it does is echoed.
    let saved = rustix::termios::tcgetattr(&stdin).ok();
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
    }
    let _ = write!(
        err,
        "Password for {} at {}: ",
        render::visible(user),
        render::visible(url)
    );
    let _ = err.flush();
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(t) = &saved {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, t);
    }
    let _ = writeln!(err);
    let password = line.trim_end_matches(['\n', '\r']);
    (read.is_ok() && !password.is_empty()).then(|| Secret::new(password))
}

/// The server flags other than the host name, over `server`.
fn apply_flags(
    mut server: ServerOptions,
    flags: &ServerFlags<'_>,
) -> Result<ServerOptions, CliError> {
    if let Some(port) = flags.port {
        server.port = port;
    }
    if let Some(t) = flags.timeout {
        server.timeout = flag_limit("--timeout", t)?;
    }
    if let Some(ignore) = flags.ignore_version {
        server.ignore_version = ignore;
    }
    if flags.allow_plain_http {
        server.v2.allow_plain_http = true;
    }
    Ok(server)
}

/// The owner: the flag, else the configuration's.
pub fn owner(flag: Option<&str>, config: &Config) -> Option<String> {
    flag.map(str::to_owned).or_else(|| config.owner.clone())
}

/// What `alloc` does: the job's options, and what to ask for (`None` when
/// resuming a job).
#[derive(Debug)]
pub struct Alloc {
    /// Server, request and keepalive.
    pub options: JobOptions,
    /// What to create, or `None` to resume.
    pub request: Option<JobRequest>,
}

/// `alloc`'s flags over the configuration; `virtual_server` is the address
/// of the built-in server, which stands in for the configured one and
/// needs no owner.
pub fn alloc(
    args: &AllocArgs,
    config: &Config,
    virtual_server: Option<SocketAddr>,
) -> Result<Alloc, CliError> {
    let flags = crate::args::Server::server_flags(args);
    let mut options = JobOptions::from_config(config).map_err(config_value)?;
    match virtual_server {
        Some(addr) => options = options.address(addr),
        None => {
            options.server.hostname = flags
                .hostname
                .map(str::to_owned)
                .or(options.server.hostname)
        }
    }
    let owner = owner(args.owner.as_deref(), config).or_else(|| {
        // The demo server needs no configuration at all.
        virtual_server.map(|_| std::env::var("USER").unwrap_or_else(|_| "virtual-user".into()))
    });
    options.request.owner = owner.unwrap_or_default();
    // Resuming, only the server matters: the job exists already (but its
    // keepalive still sets how often it is kept alive).
    let request = match args.resume {
        Some(_) => {
            options.server.validate().map_err(invalid)?;
            None
        }
        None => {
            options.validate(None).map_err(invalid)?;
            Some(parse_request(args)?)
        }
    };
    if let Some(request) = &request {
        options.request.machine = match args.machine.as_deref() {
            // A bare `-m` means "any machine", overriding the configuration.
            Some("") => None,
            Some(m) => Some(m.to_owned()),
            None => config.machine.clone(),
        };
        options.request.tags = if options.request.machine.is_some() {
            None
        } else if !args.tags.is_empty() {
            Some(args.tags.clone())
        } else {
            Some(
                config
                    .tags
                    .clone()
                    .unwrap_or_else(|| vec!["default".into()]),
            )
        };
        if let Some(ratio) = args.min_ratio {
            options.request.min_ratio = ratio;
        }
        if let Some(group) = &args.group {
            options.request.group = Some(group.clone());
        }
        options.request.max_dead_boards = count_limit(args.max_dead_boards, config.max_dead_boards);
        options.request.max_dead_links = count_limit(args.max_dead_links, config.max_dead_links);
        if args.require_torus {
            options.request.require_torus = true;
        } else if args.no_require_torus {
            options.request.require_torus = false;
        }
        options.validate(Some(request)).map_err(invalid)?;
    }
    let server = options.server.clone();
    options.server = apply_flags_alloc(server, &flags, args, config, virtual_server)?;
    options.request.keepalive = keepalive(args.keepalive.as_deref(), config)?;
    if options.server.protocol() == Protocol::V2 {
        // Now with the keepalive, which v2 requires.
        if let Some(request) = &request {
            options.validate(Some(request)).map_err(invalid)?;
        }
        with_prompt(&mut options.server);
    }
    Ok(Alloc { options, request })
}

/// What to ask for: WHAT, or with `--physical` the board at CABINET FRAME
/// BOARD, or with `--ip` the board with that address.
fn parse_request(args: &AllocArgs) -> Result<JobRequest, CliError> {
    if let Some(ip) = &args.ip {
        if !args.what.is_empty() || args.physical {
            return Err(CliError::Usage(
                "argument --ip: not allowed with WHAT or --physical".into(),
            ));
        }
        let address = ip.parse().map_err(|_| {
            CliError::Usage(format!(
                "argument --ip: expected an IPv4 address, got '{}'",
                render::visible(ip)
            ))
        })?;
        return Ok(JobRequest::Address(address));
    }
    match (args.physical, parse_what(&args.what)?) {
        (false, request) => Ok(request),
        (true, JobRequest::Board(b)) => Ok(JobRequest::Physical(BoardPosition {
            cabinet: b.x,
            frame: b.y,
            board: b.z,
        })),
        (true, _) => Err(CliError::Usage(
            "argument --physical: expected WHAT to be CABINET FRAME BOARD".into(),
        )),
    }
}

/// The server flags, `alloc`'s `--reconnect-delay`, and the virtual
/// server's port over any other.
fn apply_flags_alloc(
    server: ServerOptions,
    flags: &ServerFlags<'_>,
    args: &AllocArgs,
    config: &Config,
    virtual_server: Option<SocketAddr>,
) -> Result<ServerOptions, CliError> {
    let mut server = apply_flags(server, flags)?;
    if let Some(addr) = virtual_server {
        server.port = addr.port();
    }
    server.reconnect_delay = match args.reconnect_delay {
        Some(d) => flag_pause("--reconnect-delay", d)?,
        None => seconds::pause(config.reconnect_delay).map_err(|e| {
            config_value(Error::Config {
                path: "configuration".into(),
                key: Some("reconnect_delay".into()),
                message: e.to_string(),
            })
        })?,
    };
    Ok(server)
}

/// WHAT: nothing, N boards, W H triads, or the board X Y Z.
pub fn parse_what(what: &[String]) -> Result<JobRequest, CliError> {
    let mut n = Vec::with_capacity(what.len());
    for w in what {
        let v: u32 = w.parse().map_err(|_| {
            CliError::Usage(format!(
                "argument WHAT: expected whole numbers that are not negative \
                 (N boards, W H triads, or the board X Y Z), got '{w}'"
            ))
        })?;
        n.push(v);
    }
    match n.as_slice() {
        [] => Ok(JobRequest::AnyBoard),
        [boards] => Ok(JobRequest::Boards(*boards)),
        [width, height] => Ok(JobRequest::Triads { width: *width, height: *height }),
        [x, y, z] => Ok(JobRequest::Board(Board::new(*x, *y, *z))),
        _ => Err(CliError::Usage(
            "expected either no arguments, one argument, NUM, two arguments, WIDTH HEIGHT, or three arguments, X Y Z"
                .into(),
        )),
    }
}

/// `--keepalive` keeps its spelling on the wire: `5` stays an integer. A
/// negative or huge value means "never expire" and NaN is an error, by the
/// rule of [`spalloc::seconds`].
pub fn keepalive(raw: Option<&str>, config: &Config) -> Result<Option<Number>, CliError> {
    let Some(raw) = raw else {
        return Ok(config
            .keepalive
            .filter(|k| matches!(seconds::limit(*k), Ok(Some(_))))
            .map(Number::Float));
    };
    let number = match raw.parse::<i64>() {
        Ok(i) => Number::Int(i),
        Err(_) => Number::Float(raw.parse().map_err(|_| {
            CliError::Usage(format!(
                "argument --keepalive: invalid float value: '{raw}'"
            ))
        })?),
    };
    Ok(flag_limit("--keepalive", number.as_f64())?.map(|_| number))
}

/// `--max-dead-boards`/`--max-dead-links`: negative means any.
fn count_limit(flag: Option<i64>, config: Option<u32>) -> Option<u32> {
    match flag {
        Some(n) if n < 0 => None,
        Some(n) => Some(u32::try_from(n).unwrap_or(u32::MAX)),
        None => config,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_forms() {
        let s = |v: &[&str]| parse_what(&v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>());
        assert!(matches!(s(&[]), Ok(JobRequest::AnyBoard)));
        assert!(matches!(s(&["3"]), Ok(JobRequest::Boards(3))));
        assert!(matches!(
            s(&["2", "1"]),
            Ok(JobRequest::Triads {
                width: 2,
                height: 1
            })
        ));
        assert!(matches!(s(&["1", "0", "2"]), Ok(JobRequest::Board(_))));
        assert!(
            matches!(s(&["1", "2", "3", "4"]), Err(CliError::Usage(m)) if m.starts_with("expected either"))
        );
        assert!(
            matches!(s(&["-1"]), Err(CliError::Usage(m)) if m == "argument WHAT: expected whole numbers that are not negative (N boards, W H triads, or the board X Y Z), got '-1'")
        );
    }

    #[test]
    fn keepalive_keeps_its_spelling() {
        let c = Config::default();
        assert_eq!(keepalive(Some("5"), &c).ok(), Some(Some(Number::Int(5))));
        assert_eq!(
            keepalive(Some("5.0"), &c).ok(),
            Some(Some(Number::Float(5.0)))
        );
        assert_eq!(keepalive(Some("-1"), &c).ok(), Some(None));
        assert_eq!(keepalive(None, &c).ok(), Some(Some(Number::Float(60.0))));
        assert!(keepalive(Some("soon"), &c).is_err());
    }

    #[test]
    fn the_librarys_checks_read_as_the_tools() {
        let usage = |e| match invalid(e) {
            CliError::Usage(m) => m,
            other => panic!("not a usage error: {other:?}"),
        };
        assert_eq!(
            usage(InvalidArgument::NoOwner),
            "--owner must be specified (typically your email address)"
        );
        assert_eq!(
            usage(InvalidArgument::NoHostname),
            "--hostname of spalloc server must be specified"
        );
        assert_eq!(
            usage(InvalidArgument::MinRatio(-1.0)),
            "argument --min-ratio: expected a number that is not negative, got -1"
        );
        assert_eq!(
            usage(InvalidArgument::TorusForSingleBoard),
            "require_torus cannot be used when allocating a single board"
        );
    }
}
