//! `--watch` (`job`, `ps`, `machine`), and waiting for a change with
//! Ctrl-C caught: draw a frame, wait until the server says something
//! changed, draw again; ride out lost connections; end cleanly on SIGINT.

use std::io::{self, Write};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use signal_hook::consts::SIGINT;
use spalloc::{Client, Error, InterruptHandle, ServerOptions, Watch};

use crate::exit::{CliError, CliResult, reason};
use crate::render::CLEAR_SCREEN;
use crate::settings::Term;
use crate::signals::Signals;

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

/// Waits until something watched changes or `limit` passes (`Ok(true)`:
/// look again), SIGINT arrives (`Ok(false)`), or the connection fails. The
/// client must have been connected with the interrupt's handle.
pub fn wait_for_change(
    client: &mut Client,
    interrupt: &Interrupt,
    limit: Option<Duration>,
) -> Result<bool, Error> {
    if interrupt.raised() {
        return Ok(false);
    }
    match client.wait_for_change(limit) {
        Ok(_) => Ok(true),
        Err(Error::Interrupted) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Asks to be told when `what` changes. The Java service refuses to watch
/// a job or machine it does not know, where the Python server accepts any
/// id or name; then every job (or machine) is watched instead, so that
/// what is drawn (an unknown job, an unknown machine) decides the outcome,
/// whichever server answers.
pub fn subscribe(client: &mut Client, what: &Watch) -> Result<(), Error> {
    match client.watch(what) {
        Err(Error::Server(m)) => {
            let wider = match what {
                Watch::Job(_) => Watch::Jobs,
                Watch::Machine(_) => Watch::Machines,
                _ => return Err(Error::Server(m)),
            };
            log::debug!("cannot watch {what:?} ({m}); watching {wider:?}");
            client.watch(&wider)
        }
        other => other,
    }
}

/// One `--watch` view: what to watch and how to draw a frame.
pub trait View {
    /// What a change of should trigger a redraw. Watched after every
    /// (re)connection, and before every frame if
    /// [`rewatch_each_frame`](Self::rewatch_each_frame).
    fn watched(&self) -> Watch;
    /// Whether to watch again before each frame.
    fn rewatch_each_frame(&self) -> bool {
        false
    }
    /// Fetches what is needed and renders a frame into `frame`. A
    /// `CliError` ends the watch (e.g. an unknown machine).
    fn draw(
        &mut self,
        client: &mut Client,
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
pub fn watch(server: &ServerOptions, term: Term, json: bool, view: &mut dyn View) -> CliResult {
    let interrupt = Interrupt::catch();
    let mut client = match Client::connect_interruptible(server, interrupt.handle()) {
        Ok(c) => c,
        Err(Error::Interrupted) => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(CliError::server(server, e)),
    };
    match subscribe(&mut client, &view.watched()) {
        Ok(()) => {}
        Err(Error::Interrupted) => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(CliError::server(server, e)),
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
            if view.rewatch_each_frame() {
                subscribe(&mut client, &view.watched())?;
            }
            let mut frame = Vec::new();
            if let Err(e) = view.draw(&mut client, &mut frame)? {
                return Ok(Err(e));
            }
            if let Err(e) = frames.show(&frame, term.out_cursor) {
                return Ok(Err(CliError::Output(e)));
            }
            lost = false;
            Ok(Ok(wait_for_change(&mut client, &interrupt, None)?))
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
            Err(e) => return Err(CliError::server(server, e)),
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
    server: &ServerOptions,
    interrupt: &Interrupt,
    view: &mut dyn View,
) -> Result<Option<Client>, CliError> {
    loop {
        // Never spin, even with a zero reconnect delay.
        if !interrupt.sleep(server.reconnect_delay.max(POLL)) {
            return Ok(None);
        }
        match Client::connect_interruptible(server, interrupt.handle()) {
            Ok(mut c) => match subscribe(&mut c, &view.watched()) {
                Ok(()) => return Ok(Some(c)),
                Err(Error::Interrupted) => return Ok(None),
                Err(e) if e.is_transport() => continue,
                Err(e) => return Err(CliError::server(server, e)),
            },
            Err(Error::Interrupted) => return Ok(None),
            Err(Error::IncompatibleVersion(v)) => {
                return Err(CliError::server(server, Error::IncompatibleVersion(v)));
            }
            Err(_) => {}
        }
    }
}
