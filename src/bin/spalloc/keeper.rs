//! Keepers: a process that does nothing but keep one job alive.
//!
//! `spalloc job --keepalive ID` is one in the foreground, for supervisors;
//! `spalloc alloc --detach` starts the same thing in the background (this
//! binary again, in a session of its own, its output thrown away) and
//! exits. A keeper never destroys the job: it stops when the job is
//! destroyed (by `spalloc job --destroy ID` or anything else), or on
//! SIGINT, SIGTERM or SIGHUP, after which the job expires one keepalive
//! interval later.
//!
//! While it holds the job, a keeper records its pid in a private file
//! (`keepers/job-ID` in the user's runtime or cache directory, mode 0600),
//! so that `spalloc job ID` can say that a local keeper holds the job.

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, getpid, setsid, test_kill_process};
use serde_json::json;
use spalloc::{Error, InterruptHandle, Job, JobOptions, JobState, ServerOptions};

use crate::exit::{CliError, CliResult, code, plain, reason};
use crate::render::visible;
use crate::signals::{Caught, Event, Signals};

/// Set in a detached keeper's environment: it starts a session of its
/// own and says `ready` on stdout once it holds the job.
const DETACHED_ENV: &str = "SPALLOC_DETACHED_KEEPER";

/// How long `alloc --detach` waits for its keeper to take the job over.
const HANDOVER_LIMIT: Duration = Duration::from_secs(60);

/// The pause before looking at the job again after a lost connection (a
/// timed retry: nothing announces that a server is reachable again).
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// The directory of keeper files.
fn dir() -> Option<PathBuf> {
    dirs::runtime_dir()
        .or_else(dirs::cache_dir)
        .map(|d| d.join("spalloc").join("keepers"))
}

/// The keeper file of job `id`.
fn file(id: u64) -> Option<PathBuf> {
    dir().map(|d| d.join(format!("job-{id}")))
}

/// The keeper file, removed when dropped.
struct PidFile(PathBuf);

impl PidFile {
    fn create(id: u64, server: &ServerOptions) -> io::Result<PidFile> {
        let path = file(id).ok_or_else(|| io::Error::other("no cache directory"))?;
        if let Some(parent) = path.parent() {
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(parent)?;
        }
        let text = json!({"pid": getpid().as_raw_nonzero().get(), "server": server.describe()});
        let mut open = OpenOptions::new();
        open.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
        let mut f = open.open(&path)?;
        writeln!(f, "{text}")?;
        Ok(PidFile(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Only while it is still ours: a second keeper of the same job may
        // have written its own since.
        let ours = fs::read_to_string(&self.0)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t.trim()).ok())
            .and_then(|v| v["pid"].as_u64())
            == Some(u64::from(getpid().as_raw_nonzero().get().unsigned_abs()));
        if ours {
            let _ = fs::remove_file(&self.0);
        }
    }
}

/// The pid of the live local keeper of job `id` on `server`, if any.
pub fn holder(id: u64, server: &ServerOptions) -> Option<u32> {
    let text = fs::read_to_string(file(id)?).ok()?;
    if text.len() > 4096 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
    if v["server"].as_str() != Some(server.describe().as_str()) {
        return None;
    }
    let pid = u32::try_from(v["pid"].as_u64()?).ok()?;
    let raw = Pid::from_raw(i32::try_from(pid).ok()?)?;
    test_kill_process(raw).ok().map(|()| pid)
}

/// Runs `spalloc job --keepalive ID`: holds the job until it is destroyed
/// (exit 1, with the reason) or a signal arrives (exit 0; the job then
/// expires after its keepalive interval).
pub fn run(id: u64, server: ServerOptions) -> CliResult {
    let detached = std::env::var_os(DETACHED_ENV).is_some();
    if detached {
        // Out of the caller's session, so that its terminal's hangup and
        // Ctrl-C do not reach the keeper.
        let _ = setsid();
    }
    let interrupt = InterruptHandle::new();
    let signals = Signals::catch_all(interrupt.clone()).map_err(|e| {
        CliError::exit(
            code::FAILED,
            format!("spalloc: cannot handle signals: {}", plain(&e)),
        )
    })?;
    let mut options = JobOptions::new().interrupt(interrupt);
    options.server = server.clone();
    let job = match Job::resume(id, &options) {
        Ok(job) => job,
        Err(Error::Interrupted) => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(gone_or_failed(id, &server, e)),
    };
    let pid_file = PidFile::create(id, &server);
    if let Err(e) = &pid_file {
        log::warn!("job {id}: cannot record the keeper: {}", plain(e));
    }
    if detached {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "ready").and_then(|()| out.flush());
    } else {
        eprintln!(
            "Job {id}: Kept alive by this process (pid {}); Ctrl-C stops keeping it, \
             and it then expires after its keepalive interval.",
            std::process::id()
        );
    }
    let ended = hold(job, &signals);
    drop(pid_file);
    match ended {
        Held::Signalled => {
            eprintln!("Job {id}: No longer kept alive; it expires after its keepalive interval.");
            Ok(ExitCode::SUCCESS)
        }
        Held::Destroyed(Some(r)) => Err(CliError::exit(
            code::FAILED,
            format!("Job {id}: Destroyed: {}", visible(&r)),
        )),
        Held::Destroyed(None) => Err(CliError::exit(
            code::FAILED,
            format!("Job {id}: Destroyed."),
        )),
        Held::Failed(e) => Err(CliError::exit(
            code::FAILED,
            format!(
                "Job {id}: {}; it expires after its keepalive interval.",
                reason(&e)
            ),
        )),
    }
}

enum Held {
    Signalled,
    Destroyed(Option<String>),
    Failed(Error),
}

/// Waits, keeping the job alive, until it ends or a signal arrives; then
/// lets go of the job without destroying it.
fn hold(mut job: Job, signals: &Signals) -> Held {
    // Nothing yet, then the last state seen: the first look returns at
    // once, every later one only on a change.
    let mut state: Option<JobState> = None;
    let ended = loop {
        if signals.raised() {
            break Held::Signalled;
        }
        let got = match state {
            None => job.state_info(),
            Some(s) => job.wait_for_state_change(s, None),
        };
        match got {
            Ok(info) => match info.state {
                JobState::Destroyed => break Held::Destroyed(info.reason),
                JobState::Unknown => break Held::Destroyed(None),
                s => state = Some(s),
            },
            Err(Error::Interrupted) => break Held::Signalled,
            Err(Error::JobDestroyed { reason, .. }) => break Held::Destroyed(reason),
            Err(Error::JobUnknown { .. }) => break Held::Destroyed(None),
            // Only the first look can fail so: try again after a pause (a
            // signal ends it), as the keepalives do.
            Err(e) if e.is_transport() => {
                if signals.wait(RETRY_PAUSE).is_some() {
                    break Held::Signalled;
                }
            }
            Err(e) => break Held::Failed(e),
        }
    };
    let _ = job.close();
    ended
}

fn gone_or_failed(id: u64, server: &ServerOptions, e: Error) -> CliError {
    match e {
        Error::JobUnknown { .. } => {
            CliError::exit(code::FAILED, format!("Job {id} does not exist: unknown"))
        }
        Error::JobDestroyed {
            reason: Some(r), ..
        } => CliError::exit(
            code::FAILED,
            format!("Job {id} does not exist: destroyed: {}", visible(&r)),
        ),
        Error::JobDestroyed { reason: None, .. } => {
            CliError::exit(code::FAILED, format!("Job {id} does not exist: destroyed"))
        }
        e => CliError::server(server, e),
    }
}

/// How handing a job to a detached keeper ended.
pub enum Handover {
    /// The keeper holds the job; its pid.
    Held(u32),
    /// It could not; why.
    Failed(String),
    /// A signal arrived first; the keeper was stopped.
    Signalled(Caught),
}

/// Starts a detached keeper of job `id` (this binary, `job --keepalive
/// ID` with `server_args`) and waits, for a signal too, until it holds the
/// job.
pub fn spawn_detached(id: u64, server_args: &[String], signals: &Signals) -> Handover {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return Handover::Failed(format!("cannot find spalloc: {}", plain(&e))),
    };
    let spawned = Command::new(exe)
        .arg("job")
        .arg("--keepalive")
        .args(server_args)
        .arg(id.to_string())
        .env(DETACHED_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return Handover::Failed(format!("cannot start the keeper: {}", plain(&e))),
    };
    let stop = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
    };
    let Some(out) = child.stdout.take() else {
        stop(&mut child);
        return Handover::Failed("cannot read from the keeper".into());
    };
    // The keeper's first line, or the end of its output if it fails, comes
    // on the channel the signals come on, so that one wait covers both.
    let events = signals.sender();
    let reader = thread::Builder::new()
        .name("spalloc-keeper".into())
        .spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = events.send(Event::Input(line.trim() == "ready"));
        });
    if let Err(e) = reader {
        stop(&mut child);
        return Handover::Failed(format!("cannot start the keeper: {}", plain(&e)));
    }
    let end = Instant::now() + HANDOVER_LIMIT;
    loop {
        match signals.next(Some(end.saturating_duration_since(Instant::now()))) {
            Some(Event::Input(true)) => return Handover::Held(child.id()),
            Some(Event::Input(false)) => {
                let status = child.wait().ok().and_then(|s| s.code());
                return Handover::Failed(format!(
                    "the keeper could not take the job over (exit status {})",
                    status.map_or_else(|| "unknown".to_owned(), |c| c.to_string())
                ));
            }
            Some(Event::Signal(sig)) => {
                stop(&mut child);
                return Handover::Signalled(sig);
            }
            Some(Event::Exited) => {}
            None => {
                stop(&mut child);
                return Handover::Failed("the keeper did not take the job over in time".into());
            }
        }
    }
}
