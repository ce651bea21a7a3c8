//! What the subcommands share: the terminal's capabilities, the server
//! settings (flags over configuration), connecting with the version check,
//! the wording of server errors, and the `--watch` loop.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use signal_hook::consts::SIGINT;
use spalloc::{Config, Error, InterruptHandle, ProtocolClient, seconds};

use crate::args::ServerFlags;
use crate::exit::{CliError, CliResult, code, reason};
use crate::signals::Signals;
use crate::term::{self, CLEAR_SCREEN, ColorChoice};
use crate::visible::visible;

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
        Term {
            out_colour: term::colour_enabled(choice, out_tty, no_color.as_deref(), term.as_deref()),
            err_colour: term::colour_enabled(choice, err_tty, no_color.as_deref(), term.as_deref()),
            out_cursor: term::cursor_control(out_tty, term.as_deref()),
            err_cursor: term::cursor_control(err_tty, term.as_deref()),
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

/// A limit from the configuration files, which checked it when they were
/// read (so the error here cannot happen in practice).
pub fn config_limit(key: &str, secs: Option<f64>) -> Result<Option<Duration>, CliError> {
    match secs {
        None => Ok(None),
        Some(s) => seconds::limit(s).map_err(|e| {
            CliError::exit(
                code::USAGE,
                format!("spalloc: config error: key '{key}': {e}"),
            )
        }),
    }
}

/// A pause from the configuration files (checked when they were read).
pub fn config_pause(key: &str, secs: f64) -> Result<Duration, CliError> {
    seconds::pause(secs).map_err(|e| {
        CliError::exit(
            code::USAGE,
            format!("spalloc: config error: key '{key}': {e}"),
        )
    })
}

/// The server to talk to and how.
#[derive(Debug, Clone)]
pub struct Server {
    /// Host name or address.
    pub hostname: String,
    /// Port.
    pub port: u16,
    /// Limit for connecting and for each reply.
    pub timeout: Option<Duration>,
    /// Skip the version check.
    pub ignore_version: bool,
    /// Pause between reconnection attempts.
    pub reconnect_delay: Duration,
}

impl Server {
    /// Flags over configuration. A missing hostname is a usage error.
    pub fn resolve(flags: &dyn ServerFlags, config: &Config) -> Result<Server, CliError> {
        let hostname = flags
            .hostname()
            .map(str::to_owned)
            .or_else(|| config.hostname.clone())
            .ok_or_else(|| {
                CliError::Usage("--hostname of spalloc server must be specified".into())
            })?;
        Ok(Server {
            hostname,
            port: flags.port().unwrap_or(config.port),
            timeout: match flags.timeout() {
                Some(t) => flag_limit("--timeout", t)?,
                None => config_limit("timeout", config.timeout)?,
            },
            ignore_version: flags.ignore_version().unwrap_or(config.ignore_version),
            reconnect_delay: config_pause("reconnect_delay", config.reconnect_delay)?,
        })
    }

    /// `HOST:PORT`, as error messages name the server.
    pub fn describe(&self) -> String {
        if self.hostname.contains(':') {
            format!("[{}]:{}", self.hostname, self.port)
        } else {
            format!("{}:{}", self.hostname, self.port)
        }
    }

    /// Connects and checks the version (unless told not to), without
    /// mapping errors; `interrupt` (if any) cuts either short, and every
    /// later call on the client.
    pub fn try_connect(
        &self,
        interrupt: Option<&InterruptHandle>,
    ) -> Result<ProtocolClient, Error> {
        let mut client = match interrupt {
            Some(i) => {
                ProtocolClient::connect_interruptible(&self.hostname, self.port, self.timeout, i)?
            }
            None => ProtocolClient::connect(&self.hostname, self.port, self.timeout)?,
        };
        if !self.ignore_version {
            client.check_version()?;
        }
        Ok(client)
    }

    /// Connects and checks the version, with errors worded for the user.
    pub fn connect(&self) -> Result<ProtocolClient, CliError> {
        self.try_connect(None).map_err(|e| self.error(e))
    }

    /// The standard wording of a failure talking to this server (job, ps,
    /// machine and where-is).
    pub fn error(&self, e: Error) -> CliError {
        match e {
            Error::Server(m) => {
                CliError::exit(code::FAILED, format!("Error from server: {}", visible(&m)))
            }
            Error::IncompatibleVersion(v) => CliError::exit(
                code::USAGE,
                format!("Incompatible server version ({})", visible(&v)),
            ),
            other => CliError::exit(
                code::FAILED,
                format!(
                    "Error communicating with server: {}: {}",
                    self.describe(),
                    reason(&other)
                ),
            ),
        }
    }
}

/// SIGINT, caught rather than fatal, for the commands that end cleanly on
/// Ctrl-C (`--watch`, `job --power-on`): it cuts short whatever blocking
/// call is in progress on a client connected with [`Interrupt::handle`].
#[derive(Debug)]
pub struct Interrupt {
    handle: InterruptHandle,
    /// `None` if SIGINT could not be caught: Ctrl-C then keeps its default
    /// effect, which also ends the command at once.
    signals: Option<Signals>,
}

impl Interrupt {
    /// Starts catching SIGINT.
    pub fn catch() -> Interrupt {
        let handle = InterruptHandle::new();
        let signals = Signals::catch(&[SIGINT], handle.clone()).ok();
        Interrupt { handle, signals }
    }

    /// The handle that SIGINT interrupts.
    pub fn handle(&self) -> &InterruptHandle {
        &self.handle
    }

    /// Whether SIGINT has arrived.
    pub fn raised(&self) -> bool {
        self.signals.as_ref().is_some_and(Signals::raised)
    }

    /// Sleeps for `how_long` unless SIGINT arrives first (`false`).
    pub fn sleep(&self, how_long: Duration) -> bool {
        match &self.signals {
            Some(s) => {
                // A signal ends the sleep and stays to be seen by `raised`.
                match s.wait(how_long) {
                    Some(_) => false,
                    None => !s.raised(),
                }
            }
            None => {
                thread::sleep(how_long);
                true
            }
        }
    }
}

/// Waits until a notification arrives or `limit` passes (`Ok(true)`: look
/// again), SIGINT arrives (`Ok(false)`), or the connection fails. The
/// client must have been connected with the interrupt's handle.
pub fn wait_notification(
    client: &mut ProtocolClient,
    interrupt: &Interrupt,
    limit: Option<Duration>,
) -> Result<bool, Error> {
    if interrupt.raised() {
        return Ok(false);
    }
    match client.wait_for_notification(limit) {
        Ok(_) => Ok(true),
        Err(Error::Interrupted) => Ok(false),
        Err(e) => Err(e),
    }
}

/// One `--watch` view: how to subscribe and how to draw a frame.
pub trait View {
    /// Registers for the notifications that should trigger a redraw. Called
    /// after every (re)connection, and before every frame if
    /// [`resubscribe_each_frame`](Self::resubscribe_each_frame).
    fn subscribe(&mut self, client: &mut ProtocolClient) -> Result<(), Error>;
    /// Whether to register again before each frame.
    fn resubscribe_each_frame(&self) -> bool {
        false
    }
    /// Fetches what is needed and renders a frame into `frame`. A
    /// `CliError` ends the watch (e.g. an unknown machine).
    fn draw(
        &mut self,
        client: &mut ProtocolClient,
        frame: &mut Vec<u8>,
    ) -> Result<Result<(), CliError>, Error>;
}

/// Runs a `--watch` loop: draw, wait for a change, repeat; reconnects after
/// a lost connection; ends with exit 0 on Ctrl-C. `json` frames are not
/// separated by blank lines or preceded by a clear-screen.
///
/// Every text frame is followed by exactly one empty line, whatever ends
/// it: a notification, Ctrl-C, or a lost connection (as Python's
/// `finally: print("")` does). So frames stay apart on a pipe even when a
/// reconnection comes between them.
pub fn watch(server: &Server, term: Term, json: bool, view: &mut dyn View) -> CliResult {
    let interrupt = Interrupt::catch();
    let mut client = match server.try_connect(Some(interrupt.handle())) {
        Ok(c) => c,
        Err(Error::Interrupted) => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(server.error(e)),
    };
    match view.subscribe(&mut client) {
        Ok(()) => {}
        Err(Error::Interrupted) => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(server.error(e)),
    }
    let stdout = io::stdout();
    let mut frames = Frames {
        json,
        open: false,
        out: &stdout,
    };
    // Whether the loss of the connection has been reported and no frame has
    // been drawn since: one message per loss, not one per failed attempt.
    let mut lost = false;
    loop {
        let round = (|| -> Result<Result<bool, CliError>, Error> {
            if view.resubscribe_each_frame() {
                view.subscribe(&mut client)?;
            }
            let mut frame = Vec::new();
            if let Err(e) = view.draw(&mut client, &mut frame)? {
                return Ok(Err(e));
            }
            if let Err(e) = frames.show(&frame, term.out_cursor) {
                return Ok(Err(CliError::Output(e)));
            }
            lost = false;
            Ok(Ok(wait_notification(&mut client, &interrupt, None)?))
        })();
        match round {
            Ok(Ok(true)) => frames.close()?,
            Ok(Ok(false)) | Err(Error::Interrupted) => {
                frames.close()?;
                return Ok(ExitCode::SUCCESS);
            }
            Ok(Err(e)) => return Err(e),
            Err(e) if e.is_transport() => {
                frames.close()?;
                if !lost {
                    eprintln!("Lost connection to server: {}; reconnecting…", reason(&e));
                    lost = true;
                }
                match reconnect(server, &interrupt, view)? {
                    Some(c) => client = c,
                    None => return Ok(ExitCode::SUCCESS),
                }
            }
            Err(e) => return Err(server.error(e)),
        }
    }
}

/// The frames of a watch on stdout, and the empty line owed after each.
struct Frames<'a> {
    json: bool,
    /// A text frame has been printed and its empty line has not.
    open: bool,
    out: &'a io::Stdout,
}

impl Frames<'_> {
    /// Prints a frame (after a clear-screen on a terminal).
    fn show(&mut self, frame: &[u8], clear: bool) -> io::Result<()> {
        let mut out = self.out.lock();
        if clear && !self.json {
            out.write_all(CLEAR_SCREEN.as_bytes())?;
        }
        out.write_all(frame)?;
        out.flush()?;
        self.open = !self.json;
        Ok(())
    }

    /// Ends the current frame with its empty line, if it is owed one.
    fn close(&mut self) -> io::Result<()> {
        if self.open {
            self.open = false;
            let mut out = self.out.lock();
            out.write_all(b"\n")?;
            out.flush()?;
        }
        Ok(())
    }
}

/// The shortest pause between reconnection attempts.
const POLL: Duration = Duration::from_millis(100);

/// Reconnects every `reconnect_delay` until it works (`Some`) or SIGINT
/// arrives (`None`).
fn reconnect(
    server: &Server,
    interrupt: &Interrupt,
    view: &mut dyn View,
) -> Result<Option<ProtocolClient>, CliError> {
    loop {
        // Never spin, even with a zero reconnect delay.
        if !interrupt.sleep(server.reconnect_delay.max(POLL)) {
            return Ok(None);
        }
        match server.try_connect(Some(interrupt.handle())) {
            Ok(mut c) => match view.subscribe(&mut c) {
                Ok(()) => return Ok(Some(c)),
                Err(Error::Interrupted) => return Ok(None),
                Err(e) if e.is_transport() => continue,
                Err(e) => return Err(server.error(e)),
            },
            Err(Error::Interrupted) => return Ok(None),
            Err(Error::IncompatibleVersion(v)) => {
                return Err(server.error(Error::IncompatibleVersion(v)));
            }
            Err(_) => {}
        }
    }
}

/// Writes to stdout, returning the error for `main` to judge (a closed pipe
/// is success there).
pub fn print(text: &str) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}
