//! `spalloc alloc` (Python: `spalloc`): request boards, report progress on
//! stderr, then run a command (`-c`), print the allocation (`--json`), or
//! show it and wait for Enter — and release the boards on every way out,
//! signals included.
//!
//! The stages are kept as separate functions (create, wait, run, prompt),
//! each of which hands back either a way to continue or how to exit; the
//! one function [`run`] releases the job and the CSV afterwards, so no exit
//! path can skip that.

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::ops::ControlFlow;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use spalloc::server::{ServerConfig, VirtualServer};
use spalloc::{
    Config, ConnectionEvent, Error, InterruptHandle, Job, JobMachineInfo, JobOptions, JobRequest,
    JobState, KeepaliveCheck, KeepaliveInterval, Phase,
};
use tempfile::NamedTempFile;

use crate::Ctx;
use crate::args::{AllocArgs, Server};
use crate::exit::{CliError, CliResult, code, plain, reason};
use crate::render::json::{self, AllocationView};
use crate::render::{
    REWRITE_PREVIOUS_LINE, Style, ethernet_csv, paint, render_deflist, shown, visible,
};
use crate::signals::{self, Caught, Event, Signals};
use crate::{keeper, settings};

/// The shortest pause between attempts to reach the server again.
///
/// A timed retry, not a poll for an event: nothing tells a client that an
/// unreachable server is back, so [`retry`] tries again every
/// `reconnect_delay`, and this floor keeps a zero delay from spinning. A
/// signal ends the pause at once ([`Signals::wait`]). Every other wait in
/// `alloc` is for an event: the job changing (a notification), a reply, a
/// signal, a line at the prompt, or the command ending (its waiter
/// thread, [`signals::watch_child`]).
const MIN_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Everything decided from the arguments and configuration.
struct Plan {
    /// What to create, or `None` when resuming.
    request: Option<JobRequest>,
    resume: Option<u64>,
    options: JobOptions,
    command: Option<Vec<String>>,
    quiet: bool,
    json: bool,
    no_destroy: bool,
    /// `--queue-timeout`: how long to wait for the job to be ready.
    queue_timeout: Option<Duration>,
    /// `--detach`: hand the job to a background keeper once ready, started
    /// with these server flags.
    detach: Option<Vec<String>>,
    /// Tunnel to the boards through the v2 proxy (`--proxy`).
    proxy: bool,
    /// The job's keepalive interval as the server last reported it (the
    /// Python server does; for a resumed job it is the only source).
    keepalive_seen: Cell<Option<f64>>,
    /// The keepalive interval the server applies, beside the one asked for,
    /// once known.
    keepalive: Cell<Option<KeepaliveCheck>>,
}

impl Plan {
    fn new(
        args: &AllocArgs,
        config: &Config,
        command: Option<Vec<String>>,
        virtual_server: Option<std::net::SocketAddr>,
    ) -> Result<Plan, CliError> {
        if command
            .as_ref()
            .is_some_and(|cmd| cmd.iter().all(|a| a.trim().is_empty()))
        {
            return Err(CliError::Usage(
                "argument -c/--command: expected a command to run".into(),
            ));
        }
        let queue_timeout = match args.queue_timeout {
            None => None,
            Some(s) if s.is_finite() && (0.0..1e9).contains(&s) => Some(Duration::from_secs_f64(s)),
            Some(s) => {
                return Err(CliError::Usage(format!(
                    "argument --queue-timeout: expected a number of seconds from 0, got {s}"
                )));
            }
        };
        if args.detach {
            let clash = [
                (command.is_some(), "-c/--command"),
                (args.no_destroy, "-D/--no-destroy"),
                (args.virtual_server, "--virtual"),
                // The tunnels would end with this process.
                (args.proxy, "--proxy"),
            ];
            if let Some((_, flag)) = clash.iter().find(|(given, _)| *given) {
                return Err(CliError::Usage(format!(
                    "argument --detach: not allowed with argument {flag}"
                )));
            }
        }
        let settings::Alloc { options, request } = settings::alloc(args, config, virtual_server)?;
        if args.group.as_deref().is_some_and(|g| g.trim().is_empty()) {
            return Err(CliError::Usage(
                "argument --group: expected a group name".into(),
            ));
        }
        if args.group.is_some() && options.server.protocol() != spalloc::Protocol::V2 {
            return Err(CliError::Usage(
                "argument --group: only available with a v2 server (an http(s):// service \
                 URL as --hostname)"
                    .into(),
            ));
        }
        if args.proxy && options.server.protocol() != spalloc::Protocol::V2 {
            return Err(CliError::Usage(
                "argument --proxy: only available with a v2 server (an http(s):// service \
                 URL as --hostname)"
                    .into(),
            ));
        }
        Ok(Plan {
            request,
            resume: args.resume,
            options,
            command,
            quiet: args.quiet,
            proxy: args.proxy,
            json: args.json,
            no_destroy: args.no_destroy,
            queue_timeout,
            detach: args.detach.then(|| {
                let flags = args.server_flags();
                let mut forward = Vec::new();
                if let Some(h) = flags.hostname {
                    forward.push(format!("--hostname={h}"));
                }
                if let Some(p) = flags.port {
                    forward.push(format!("--port={p}"));
                }
                if let Some(t) = flags.timeout {
                    forward.push(format!("--timeout={t}"));
                }
                if let Some(i) = flags.ignore_version {
                    forward.push(format!("--ignore-version={}", if i { "yes" } else { "no" }));
                }
                if flags.allow_plain_http {
                    forward.push("--allow-plain-http".to_owned());
                }
                forward
            }),
            keepalive_seen: Cell::new(None),
            keepalive: Cell::new(None),
        })
    }

    /// What the user is told about a job left behind: when the server
    /// will expire it, as far as is known.
    fn expiry(&self, id: u64) -> String {
        let check = self.keepalive.get();
        let keepalive = match check {
            Some(c) => Some(c.applied),
            None => self
                .keepalive_seen
                .get()
                .map(KeepaliveInterval::Seconds)
                .or_else(|| {
                    self.resume
                        .is_none()
                        .then(|| KeepaliveInterval::from_wire(self.options.request.keepalive))
                }),
        };
        match keepalive {
            Some(KeepaliveInterval::Seconds(k)) => format!(
                "it expires about {k} s after its last keepalive unless something keeps it alive \
                 (`spalloc alloc --resume {id}`)"
            ),
            None => {
                "it expires after its keepalive interval unless something keeps it alive".into()
            }
            Some(KeepaliveInterval::Never) if check.is_some_and(|c| c.honoured() != Some(true)) => {
                format!("it never expires: destroy it with `spalloc job --destroy {id}`")
            }
            Some(KeepaliveInterval::Never) => format!(
                "it never expires (--keepalive -1): destroy it with `spalloc job --destroy {id}`"
            ),
        }
    }
}

/// Status lines on stderr, rewritten in place on a terminal. Shared with
/// the job's connection observer, which reports outages from inside the
/// job's calls; hence the lock.
#[derive(Clone)]
struct Status(Arc<Mutex<StatusLines>>);

struct StatusLines {
    quiet: bool,
    colour: bool,
    cursor: bool,
    last_was_status: bool,
}

impl Status {
    fn new(quiet: bool, colour: bool, cursor: bool) -> Status {
        Status(Arc::new(Mutex::new(StatusLines {
            quiet,
            colour,
            cursor,
            last_was_status: false,
        })))
    }

    /// Writes a line, with any text from the server made safe; `replace`
    /// lets it replace a progress line just before it (on a terminal).
    fn write(&self, text: &str, style: Style, replace: bool, progress: bool) {
        let mut lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !progress && lines.quiet && style != Style::RED {
            return;
        }
        let mut err = io::stderr().lock();
        if replace && lines.cursor && lines.last_was_status {
            let _ = err.write_all(REWRITE_PREVIOUS_LINE.as_bytes());
        }
        let _ = writeln!(err, "{}", paint(&visible(text), style, lines.colour));
        let _ = err.flush();
        lines.last_was_status = progress;
    }

    /// A progress line (`-q` hides it), replaced by the next one.
    fn update(&self, text: &str, style: Style) {
        if !self.0.lock().unwrap_or_else(PoisonError::into_inner).quiet {
            self.write(text, style, true, true);
        }
    }

    /// A line that stays, such as a lost connection (`-q` hides it).
    fn note(&self, text: &str, style: Style) {
        self.write(text, style, false, false);
    }

    /// A failure line, always shown.
    fn error(&self, text: &str) {
        self.write(text, Style::RED, true, false);
    }
}

/// The private CSV of Ethernet-connected chips, readable by its owner
/// alone; removed when dropped.
struct TempCsv(NamedTempFile<File>);

impl TempCsv {
    fn create() -> Result<TempCsv, CliError> {
        let dir = std::env::temp_dir();
        tempfile::Builder::new()
            .prefix("spinnaker_ips_")
            .suffix(".csv")
            .rand_bytes(8)
            // Opened here rather than by tempfile, so that an error is the
            // system's own, for `plain` to put in words.
            .make_in(&dir, |path| {
                let mut open = OpenOptions::new();
                open.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
                open.open(path)
            })
            .map(TempCsv)
            .map_err(|e| {
                CliError::exit(
                    code::FAILED,
                    format!(
                        "spalloc: cannot create a temporary file in {} (set TMPDIR to a writable directory): {}",
                        visible(&dir.display().to_string()),
                        plain(&e)
                    ),
                )
            })
    }

    fn write(&mut self, info: &JobMachineInfo) -> io::Result<()> {
        let f = self.0.as_file_mut();
        f.write_all(ethernet_csv(info).as_bytes())?;
        f.flush()
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

/// What happened to the job, deciding how it is released and the exit code.
struct Outcome {
    code: u8,
    /// A keeper holds the job now: let go of it without destroying it.
    handed_over: bool,
    /// The reason to destroy the job with.
    reason: Option<String>,
    /// The server already destroyed the job (or never knew it).
    gone: bool,
}

impl Outcome {
    fn done(code: u8) -> Outcome {
        Outcome {
            code,
            handed_over: false,
            reason: None,
            gone: false,
        }
    }
}

/// Runs `spalloc alloc`.
pub fn run(args: AllocArgs, ctx: &Ctx, command: Option<Vec<String>>) -> CliResult {
    if args.virtual_server {
        let clash = [
            (args.hostname.is_some(), "-H/--hostname"),
            (args.port.is_some(), "-P/--port"),
        ];
        if let Some((_, flag)) = clash.iter().find(|(given, _)| *given) {
            return Err(CliError::Usage(format!(
                "argument --virtual: not allowed with argument {flag} (the virtual server is built in)"
            )));
        }
    }
    let config = settings::load_config()?;
    if args.virtual_server {
        // Every flag is checked before the server is started for it.
        let unstarted = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        Plan::new(&args, &config, command.clone(), Some(unstarted))?;
    }
    // Declared first so that it outlives the job, which is destroyed on it.
    let virtual_server = if args.virtual_server {
        Some(start_virtual(args.quiet)?)
    } else {
        None
    };
    let mut plan = Plan::new(
        &args,
        &config,
        command,
        virtual_server.as_ref().map(|v| v.local_addr()),
    )?;
    let mut csv = TempCsv::create()?;
    // Every signal cuts short the blocking call in progress, from the
    // first connection attempt on.
    let interrupt = InterruptHandle::new();
    let signals = Signals::catch_all(interrupt.clone()).map_err(|e| {
        CliError::exit(
            code::FAILED,
            format!("spalloc: cannot handle signals: {}", plain(&e)),
        )
    })?;
    plan.options.interrupt = Some(interrupt);
    let status = Status::new(plan.quiet, ctx.term.err_colour, ctx.term.err_cursor);

    let created = match (plan.resume, plan.request) {
        (Some(id), _) => Job::resume(id, &plan.options),
        (None, request) => Job::create(request.unwrap_or_default(), &plan.options),
    };
    let mut job = match created {
        Ok(job) => job,
        Err(Error::Interrupted) => {
            let sig = caught(&signals);
            status.error(&match plan.resume {
                Some(id) => format!("Job {id}: {} The job was left as it was.", sig.status()),
                None => format!(
                    "{} No job was made, or the server's reply did not come in time \
                     (such a job {}).",
                    sig.status(),
                    match plan.options.request.keepalive {
                        Some(k) => format!("expires {} s after it was made", k.as_f64()),
                        None => "never expires: see `spalloc ps`".to_owned(),
                    }
                ),
            });
            return Ok(ExitCode::from(interrupted_code(sig)));
        }
        Err(e) => return Err(create_failed(e, &plan.options, &status)),
    };
    let id = job.id();
    let observer = status.clone();
    job.on_connection_change(move |event| match event {
        ConnectionEvent::Lost(e) => observer.note(
            &format!(
                "Job {id}: Lost connection to server: {}; reconnecting…",
                reason(e)
            ),
            Style::YELLOW,
        ),
        ConnectionEvent::Restored => {
            observer.note(
                &format!("Job {id}: Connection to server restored."),
                Style::GREEN,
            );
        }
        _ => {}
    });
    let outcome = hold(&mut job, &plan, &signals, &status, &mut csv, ctx);

    // Every way out passes here: release the job, then the CSV. A signal
    // from here on cuts the release short (the job then expires).
    let released = if plan.no_destroy || outcome.handed_over {
        job.close()
    } else {
        job.destroy(outcome.reason.as_deref())
    };
    match released {
        Err(e) => status.error(&format!(
            "Job {id}: could not be destroyed ({}); {}.",
            reason(&e),
            plan.expiry(id)
        )),
        Ok(()) if outcome.handed_over => {}
        Ok(()) if plan.no_destroy && !outcome.gone => status.note(
            &format!("Job {id}: Kept: {}.", plan.expiry(id)),
            Style::PLAIN,
        ),
        Ok(()) if virtual_server.is_some() && !plan.no_destroy && !outcome.gone => {
            status.update(
                &format!("Job {id}: Destroyed; the boards are free again."),
                Style::GREEN,
            );
        }
        Ok(()) => {}
    }
    drop(csv);
    Ok(ExitCode::from(outcome.code))
}

fn start_virtual(quiet: bool) -> Result<VirtualServer, CliError> {
    let config = ServerConfig::default();
    let server = VirtualServer::start(config).map_err(|e| {
        CliError::exit(
            code::NO_SERVER_OR_MACHINE,
            format!("spalloc: cannot start the virtual server: {e}"),
        )
    })?;
    if !quiet {
        eprintln!(
            "Virtual spalloc server on {} (one 24-board machine, no hardware)",
            server.local_addr()
        );
    }
    Ok(server)
}

fn create_failed(e: Error, options: &JobOptions, status: &Status) -> CliError {
    let server = options.server.describe();
    let (code, line) = match e {
        Error::IncompatibleVersion(v) => {
            (code::USAGE, format!("Incompatible server version ({v})"))
        }
        Error::Server(m) => (
            code::NO_SERVER_OR_MACHINE,
            format!("Error from server: {m}"),
        ),
        Error::JobUnknown { id } => (code::FAILED, format!("Job {id} does not exist: unknown")),
        Error::JobDestroyed {
            id,
            reason: Some(r),
        } => (
            code::FAILED,
            format!("Job {id} does not exist: destroyed: {r}"),
        ),
        Error::JobDestroyed { id, reason: None } => {
            (code::FAILED, format!("Job {id} does not exist: destroyed"))
        }
        Error::InvalidArgument(e) => return settings::invalid(e),
        Error::Login(m) => (code::NO_SERVER_OR_MACHINE, format!("Cannot log in: {m}")),
        e @ Error::Connect { .. } => (
            code::NO_SERVER_OR_MACHINE,
            format!("Could not connect to server: {server}: {}", reason(&e)),
        ),
        // Connected, but the server then failed to answer properly.
        other => (
            code::NO_SERVER_OR_MACHINE,
            format!(
                "Error communicating with server: {server}: {}",
                reason(&other)
            ),
        ),
    };
    status.error(&line);
    CliError::silent(code)
}

/// Holds the job through every stage; returns how to end.
fn hold(
    job: &mut Job,
    plan: &Plan,
    signals: &Signals,
    status: &Status,
    csv: &mut TempCsv,
    ctx: &Ctx,
) -> Outcome {
    let id = job.id();
    // A signal during create: the job exists now, so release it.
    if let Some(sig) = signals.pending() {
        return interrupted(id, sig, status);
    }
    if let Err(outcome) = check_keepalive(job, plan, signals, status) {
        return outcome;
    }
    let queued = match wait_ready(job, plan, signals, status) {
        Ok(queued) => queued.map_or_else(String::new, |q| {
            format!(" (queued for {})", seconds_text(q))
        }),
        Err(outcome) => return outcome,
    };
    let info = match machine_info(job, plan, signals) {
        Ok(info) => info,
        Err(outcome) => return outcome,
    };
    // If the server could not be asked at first, ask now.
    if let Err(outcome) = check_keepalive(job, plan, signals, status) {
        return outcome;
    }
    // With --proxy, everything below sees the tunnels' local addresses;
    // the tunnels last until this returns.
    let _tunnels;
    let info = if plan.proxy {
        match crate::proxy::Tunnels::open(&plan.options.server, id) {
            Ok(t) => {
                let local = t.localise(&info);
                _tunnels = t;
                local
            }
            Err(e) => {
                status.error(&format!("Job {id}: cannot open the proxy: {e}"));
                return Outcome::done(code::FAILED);
            }
        }
    } else {
        info
    };
    if let Err(e) = csv.write(&info) {
        status.error(&format!(
            "Job {id}: cannot write {}: {}",
            csv.path().display(),
            plain(&e)
        ));
        return Outcome::done(code::FAILED);
    }
    status.update(&format!("Job {id}: Ready!{queued}"), Style::GREEN);
    if let Some(line) = plan
        .request
        .as_ref()
        .and_then(|r| board_difference(id, r, &info))
    {
        status.note(&line, Style::YELLOW);
    }
    if plan.json {
        let check = plan.keepalive.get();
        let line = json::line(&AllocationView::new(
            id,
            &info,
            check.map(|c| c.applied).or_else(|| {
                plan.resume
                    .is_none()
                    .then(|| KeepaliveInterval::from_wire(plan.options.request.keepalive))
            }),
            check.and_then(|c| c.honoured()),
        ));
        if write_flush(&mut io::stdout(), line.as_bytes()).is_err() {
            return Outcome::done(code::OK);
        }
    }
    if let Some(forward) = &plan.detach {
        return detach(id, &info, forward, plan.json, ctx, status, signals);
    }
    match &plan.command {
        Some(command) => run_command(command, id, &info, csv.path(), signals),
        None => {
            if !plan.json {
                let block = info_block(&info, Some(csv.path()), ctx.term.out_colour);
                if write_flush(&mut io::stdout(), block.as_bytes()).is_err() {
                    return Outcome::done(code::OK);
                }
            }
            prompt(plan.json, ctx, signals)
        }
    }
}

/// A line saying how the boards allocated differ in number from the
/// boards asked for, if they do: more boards than asked for (the server
/// rounds a number of boards up to whole triads or a rectangle), or
/// fewer (dead boards inside the triads asked for, as --max-dead-boards
/// allowed).
fn board_difference(id: u64, request: &JobRequest, info: &JobMachineInfo) -> Option<String> {
    let (asked, what) = match request {
        JobRequest::Boards(n) => (u64::from(*n), format!("the {n} asked for")),
        JobRequest::Triads { width, height } => (
            3 * u64::from(*width) * u64::from(*height),
            format!("the {width}x{height} triads asked for"),
        ),
        _ => (1, "the one asked for".to_owned()),
    };
    let got = u64::try_from(info.boards.len()).unwrap_or(u64::MAX);
    let plural = |n: u64| if n == 1 { "board" } else { "boards" };
    match got.cmp(&asked) {
        std::cmp::Ordering::Equal => None,
        std::cmp::Ordering::Greater => Some(format!(
            "Job {id}: Allocated {got} {}, more than {what}.",
            plural(got)
        )),
        std::cmp::Ordering::Less => Some(format!(
            "Job {id}: Allocated {got} {}, fewer than {what}: {} dead.",
            plural(got),
            asked - got,
        )),
    }
}

/// `--detach`: prints the allocation (without the CSV file, which goes
/// with this process), then hands the job to a background keeper.
fn detach(
    id: u64,
    info: &JobMachineInfo,
    forward: &[String],
    json: bool,
    ctx: &Ctx,
    status: &Status,
    signals: &Signals,
) -> Outcome {
    match keeper::spawn_detached(id, forward, signals) {
        keeper::Handover::Held(pid) => {
            if !json {
                let block = info_block(info, None, ctx.term.out_colour);
                let _ = write_flush(&mut io::stdout(), block.as_bytes());
            }
            status.note(
                &format!(
                    "Job {id}: Kept alive in the background (keeper pid {pid}); \
                     release it with `spalloc job --destroy {id}`."
                ),
                Style::PLAIN,
            );
            Outcome {
                handed_over: true,
                ..Outcome::done(code::OK)
            }
        }
        keeper::Handover::Signalled(sig) => interrupted(id, sig, status),
        keeper::Handover::Failed(e) => {
            status.error(&format!("Job {id}: cannot detach: {e}; destroying it."));
            Outcome {
                reason: Some("spalloc alloc --detach: no keeper".to_owned()),
                ..Outcome::done(code::FAILED)
            }
        }
    }
}

/// Compares the keepalive interval the server applies with the one asked
/// for, once, and says so if the server did not honour it (the Java
/// service turns "never expire" into 60 s). Best effort: if the server
/// cannot be asked, the interval stays unknown.
fn check_keepalive(
    job: &mut Job,
    plan: &Plan,
    signals: &Signals,
    status: &Status,
) -> Result<(), Outcome> {
    if plan.keepalive.get().is_some() {
        return Ok(());
    }
    let id = job.id();
    match job.keepalive_check() {
        Ok(Some(check)) => {
            plan.keepalive.set(Some(check));
            if check.honoured() == Some(false) {
                status.note(&keepalive_line(id, &check), Style::YELLOW);
            }
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(Error::Interrupted) => Err(interrupted(id, caught(signals), status)),
        Err(e) => {
            log::debug!("job {id}: cannot check the keepalive interval: {e}");
            Ok(())
        }
    }
}

/// `Job N: The server applies a keepalive of 60 s, not the "never expire"
/// asked for.`
fn keepalive_line(id: u64, check: &KeepaliveCheck) -> String {
    let applied = match check.applied {
        KeepaliveInterval::Seconds(s) => format!("a keepalive of {s} s"),
        KeepaliveInterval::Never => "no keepalive (the job never expires)".to_owned(),
    };
    let asked = match check.requested {
        Some(KeepaliveInterval::Seconds(s)) => format!("the {s} s"),
        _ => "the \"never expire\" (--keepalive -1)".to_owned(),
    };
    format!("Job {id}: The server applies {applied}, not {asked} asked for.")
}

/// The exit code for a signal before the job is ready.
fn interrupted_code(sig: Caught) -> u8 {
    if sig.is_interrupt() {
        code::INTERRUPTED_OR_NOTHING
    } else {
        code::signalled(sig.signal)
    }
}

fn interrupted(id: u64, sig: Caught, status: &Status) -> Outcome {
    status.error(&format!("Job {id}: {}", sig.status()));
    Outcome {
        code: interrupted_code(sig),
        reason: Some(sig.reason().to_owned()),
        gone: false,
        ..Outcome::done(0)
    }
}

/// The signal behind an `Error::Interrupted` (it is sent just after the
/// interruption is raised).
fn caught(signals: &Signals) -> Caught {
    signals.wait(Duration::from_secs(1)).unwrap_or(Caught {
        signal: signal_hook::consts::SIGINT,
        user_sent: false,
    })
}

/// Waits for the ready state, reporting each new state; `Err` ends the run.
/// Lost connections are ridden out by the library, which reports them to
/// the job's connection observer.
fn wait_ready(
    job: &mut Job,
    plan: &Plan,
    signals: &Signals,
    status: &Status,
) -> Result<Option<Duration>, Outcome> {
    let id = job.id();
    let mut shown = None;
    let mut queued_since: Option<Instant> = None;
    let mut queued_for: Option<Duration> = None;
    let waited = job.wait_until_ready_with(plan.queue_timeout, |info| {
        if let Some(k) = info.keepalive.filter(|k| (0.0..1e6).contains(k)) {
            plan.keepalive_seen.set(Some(k));
        }
        if shown == Some(info.state) {
            return ControlFlow::Continue(());
        }
        shown = Some(info.state);
        // Once out of the queue, each line says how long the job queued.
        let queued = match (info.state, queued_since) {
            (JobState::Queued, _) => {
                queued_since.get_or_insert_with(Instant::now);
                String::new()
            }
            (_, Some(since)) => {
                let q = *queued_for.get_or_insert_with(|| since.elapsed());
                format!(" (queued for {})", seconds_text(q))
            }
            (_, None) => String::new(),
        };
        match info.state {
            JobState::Queued => {
                status.update(&format!("Job {id}: Waiting in queue..."), Style::YELLOW);
            }
            JobState::Power => {
                status.update(
                    &format!("Job {id}: Waiting for power on...{queued}"),
                    Style::YELLOW,
                );
            }

            // A state this tool does not know: do not wait through it.
            JobState::Unrecognised(_) => return ControlFlow::Break(()),
            _ => {}
        }
        ControlFlow::Continue(())
    });
    match waited {
        Ok(info) => match info.state {
            JobState::Ready => Ok(queued_for),
            state => {
                status.error(&format!(
                    "Job {id}: Entered an unrecognised state {}.",
                    state.code()
                ));
                Err(Outcome::done(code::STATE))
            }
        },
        Err(Error::JobDestroyed { reason, .. }) => {
            match &reason {
                Some(r) => status.error(&format!("Job {id}: Destroyed: {r}")),
                None => status.error(&format!("Job {id}: Destroyed.")),
            }
            Err(Outcome {
                code: code::FAILED,
                reason,
                gone: true,
                ..Outcome::done(0)
            })
        }
        Err(Error::JobUnknown { .. }) => {
            status.error(&format!("Job {id}: Job not recognised by server."));
            Err(Outcome {
                gone: true,
                ..Outcome::done(code::USAGE)
            })
        }
        Err(Error::Interrupted) => Err(interrupted(id, caught(signals), status)),
        Err(Error::Timeout(Phase::Wait)) => {
            let limit = seconds_text(plan.queue_timeout.unwrap_or_default());
            status.error(&format!(
                "Job {id}: Not ready after {limit} (--queue-timeout); destroying it."
            ));
            Err(Outcome {
                code: code::NOT_READY,
                reason: Some(format!("Not ready within {limit} (--queue-timeout).")),
                ..Outcome::done(0)
            })
        }
        Err(e) => Err(failed(id, &e, status)),
    }
}

/// A duration for a status line: `0.4 s`, `12 s`.
pub fn seconds_text(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{:.1} s", (s * 10.0).floor() / 10.0)
    } else {
        format!("{} s", d.as_secs())
    }
}

fn failed(id: u64, e: &Error, status: &Status) -> Outcome {
    match e {
        Error::IncompatibleVersion(v) => {
            status.error(&format!("Incompatible server version ({v})"));
            Outcome::done(code::USAGE)
        }
        other => {
            status.error(&format!("Job {id}: {}", reason(other)));
            Outcome::done(code::FAILED)
        }
    }
}

/// Runs a query on the job, retrying through lost connections every
/// reconnect delay until it works or a signal arrives.
fn retry<T>(
    job: &mut Job,
    plan: &Plan,
    signals: &Signals,
    status: &Status,
    mut query: impl FnMut(&mut Job) -> Result<T, Error>,
) -> Result<T, Outcome> {
    let id = job.id();
    loop {
        match query(job) {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transport() => {
                log::debug!("job {id}: {e}; retrying");
                if let Some(sig) =
                    signals.wait(plan.options.server.reconnect_delay.max(MIN_RETRY_PAUSE))
                {
                    return Err(interrupted(id, sig, status));
                }
            }
            Err(Error::Interrupted) => return Err(interrupted(id, caught(signals), status)),
            Err(e) => return Err(failed(id, &e, status)),
        }
    }
}

fn machine_info(job: &mut Job, plan: &Plan, signals: &Signals) -> Result<JobMachineInfo, Outcome> {
    let quiet = Status::new(true, false, false);
    let id = job.id();
    let info = retry(job, plan, signals, &quiet, |j: &mut Job| {
        j.machine_info().map(|i| i.cloned())
    })?;
    info.ok_or_else(|| {
        // Ready but without boards: the server changed its mind.
        Status::new(false, false, false).error(&format!(
            "Job {id}: the server reports no boards for a ready job"
        ));
        Outcome::done(code::FAILED)
    })
}

fn write_flush(w: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    w.write_all(bytes)?;
    w.flush()
}

/// The definition list shown before the prompt.
fn info_block(info: &JobMachineInfo, csv: Option<&Path>, colour: bool) -> String {
    let hostname = visible(info.hostname().unwrap_or_default());
    let mut items = vec![
        ("Hostname", paint(&hostname, Style::BRIGHT, colour)),
        ("Width", info.width.to_string()),
        ("Height", info.height.to_string()),
    ];
    if info.connections.len() > 1 {
        items.push(("Num boards", info.connections.len().to_string()));
        if let Some(csv) = csv {
            items.push(("All hostnames", csv.display().to_string()));
        }
    }
    items.push(("Running on", shown(&info.machine_name)));
    render_deflist(&items)
}

/// Waits for Enter, end of input or a signal.
fn prompt(to_stderr: bool, ctx: &Ctx, signals: &Signals) -> Outcome {
    let colour = if to_stderr {
        ctx.term.err_colour
    } else {
        ctx.term.out_colour
    };
    let text = paint("<Press enter when done>", Style::DIM, colour);
    let newline = |to_stderr: bool| {
        let _ = if to_stderr {
            write_flush(&mut io::stderr(), b"\n")
        } else {
            write_flush(&mut io::stdout(), b"\n")
        };
    };
    let shown = if to_stderr {
        write_flush(&mut io::stderr(), text.as_bytes())
    } else {
        write_flush(&mut io::stdout(), text.as_bytes())
    };
    if shown.is_err() {
        return Outcome::done(code::OK);
    }
    let events = signals.sender();
    // The reader may stay blocked on stdin after we finish; it holds
    // nothing, and the process exits.
    let reader = thread::Builder::new()
        .name("spalloc-stdin".into())
        .spawn(move || {
            let mut line = String::new();
            let got = io::stdin().lock().read_line(&mut line);
            let _ = events.send(Event::Input(matches!(got, Ok(n) if n > 0)));
        });
    if reader.is_err() {
        newline(to_stderr);
        return Outcome::done(code::OK);
    }
    loop {
        match signals.next(None) {
            Some(Event::Signal(sig)) if sig.is_interrupt() => {
                newline(to_stderr);
                return Outcome {
                    code: code::OK,
                    reason: Some(sig.reason().to_owned()),
                    gone: false,
                    ..Outcome::done(0)
                };
            }
            Some(Event::Signal(sig)) => {
                return Outcome {
                    code: code::signalled(sig.signal),
                    reason: Some(sig.reason().to_owned()),
                    gone: false,
                    ..Outcome::done(0)
                };
            }
            Some(Event::Input(true)) => return Outcome::done(code::OK),
            Some(Event::Input(false)) | None => {
                newline(to_stderr);
                return Outcome::done(code::OK);
            }
            Some(Event::Exited) => {}
        }
    }
}

/// The values substituted into `-c` commands.
struct Values {
    id: u64,
    hostname: String,
    width: u32,
    height: u32,
    csv: String,
}

impl Values {
    fn new(id: u64, info: &JobMachineInfo, csv: &Path) -> Values {
        Values {
            id,
            hostname: info.hostname().unwrap_or_default().to_owned(),
            width: info.width,
            height: info.height,
            csv: csv.display().to_string(),
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        Some(match name {
            "" | "hostname" => self.hostname.clone(),
            "w" | "width" => self.width.to_string(),
            "h" | "height" => self.height.to_string(),
            "ethernet_ips" => self.csv.clone(),
            "id" => self.id.to_string(),
            _ => return None,
        })
    }
}

/// Quotes a value for `sh`, only when it needs it.
pub fn shell_quote(value: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !value.is_empty() && value.chars().all(safe) {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', "'\\''"))
    }
}

/// Replaces `{}`, `{hostname}`, `{w}`… (and `{{`, `}}`); every other brace
/// is copied as is.
fn substitute(template: &str, values: &Values, quote: bool) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("{{") {
            out.push('{');
            rest = &rest[2..];
        } else if rest.starts_with("}}") {
            out.push('}');
            rest = &rest[2..];
        } else if c == '{' {
            let value = rest[1..]
                .find('}')
                .and_then(|end| values.get(&rest[1..=end]).map(|v| (v, end)));
            match value {
                Some((v, end)) => {
                    out.push_str(&if quote { shell_quote(&v) } else { v });
                    rest = &rest[end + 2..];
                }
                None => {
                    out.push('{');
                    rest = &rest[1..];
                }
            }
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Runs the `-c` command, forwarding signals to it, and returns how to end.
fn run_command(
    command: &[String],
    id: u64,
    info: &JobMachineInfo,
    csv: &Path,
    signals: &Signals,
) -> Outcome {
    let values = Values::new(id, info, csv);
    let mut cmd = if let [single] = command {
        // `/bin/sh`, as the Python client's `shell=True` runs it (and
        // without searching PATH for it).
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(substitute(single, &values, true));
        c
    } else {
        let argv: Vec<String> = command
            .iter()
            .map(|a| substitute(a, &values, false))
            .collect();
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    };
    cmd.env("SPALLOC_JOB_ID", id.to_string())
        .env("SPALLOC_HOSTNAME", info.hostname().unwrap_or_default())
        .env("SPALLOC_WIDTH", info.width.to_string())
        .env("SPALLOC_HEIGHT", info.height.to_string())
        .env("SPALLOC_MACHINE", &info.machine_name)
        .env("SPALLOC_ETHERNET_IPS", csv);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            let program = command.first().map(String::as_str).unwrap_or_default();
            let _ = writeln!(
                io::stderr(),
                "spalloc: cannot run '{}': {}",
                visible(program),
                plain(&e)
            );
            let code = if e.kind() == io::ErrorKind::NotFound {
                code::NOT_FOUND
            } else {
                code::NOT_EXECUTABLE
            };
            return Outcome::done(code);
        }
    };
    // The child is watched from a thread, so that one wait covers both it
    // and the signals; it is reaped here, after the last signal is sent.
    if let Err(e) = signals::watch_child(child.id(), signals.sender()) {
        // Without a watcher the command could not be waited for alongside
        // the signals: stop it rather than hang.
        let _ = writeln!(
            io::stderr(),
            "spalloc: cannot watch the command: {}",
            plain(&e)
        );
        let _ = child.kill();
        let _ = child.wait();
        return Outcome::done(code::FAILED);
    }
    let mut received = 0;
    let mut terminating: Option<Caught> = None;
    loop {
        match signals.next(None) {
            Some(Event::Signal(sig)) => {
                received += 1;
                if !sig.is_interrupt() {
                    terminating = Some(sig);
                }
                if received >= 3 {
                    signals::send(child.id(), signals::KILL);
                } else if sig.user_sent {
                    signals::send(child.id(), sig.signal);
                }
            }
            Some(Event::Exited) | None => break,
            Some(Event::Input(_)) => {}
        }
    }
    let child_code = match child.wait() {
        Ok(s) => exit_code_of(s),
        Err(_) => code::FAILED,
    };
    match terminating {
        Some(sig) => Outcome {
            code: code::signalled(sig.signal),
            reason: Some(sig.reason().to_owned()),
            gone: false,
            ..Outcome::done(0)
        },
        None => Outcome::done(child_code),
    }
}

fn exit_code_of(status: std::process::ExitStatus) -> u8 {
    if let Some(c) = status.code() {
        return u8::try_from(c & 0xff).unwrap_or(code::FAILED);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return code::signalled(sig);
        }
    }
    code::FAILED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("10.0.0.1"), "10.0.0.1");
        assert_eq!(
            shell_quote("/tmp/spinnaker_ips_ab.csv"),
            "/tmp/spinnaker_ips_ab.csv"
        );
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    fn values() -> Values {
        Values {
            id: 7,
            hostname: "10.0.0.1".into(),
            width: 16,
            height: 8,
            csv: "/tmp/a b.csv".into(),
        }
    }

    #[test]
    fn placeholders() {
        let v = values();
        assert_eq!(
            substitute("{} {hostname} {w}x{h} {width}x{height} {id}", &v, false),
            "10.0.0.1 10.0.0.1 16x8 16x8 7"
        );
        assert_eq!(
            substitute("rig-boot {} && run {}", &v, true),
            "rig-boot 10.0.0.1 && run 10.0.0.1"
        );
        assert_eq!(
            substitute("cat {ethernet_ips}", &v, true),
            "cat '/tmp/a b.csv'"
        );
        assert_eq!(
            substitute("cat {ethernet_ips}", &v, false),
            "cat /tmp/a b.csv"
        );
        // Braces that are not placeholders pass through; doubled ones halve.
        assert_eq!(substitute("awk '{print $1}'", &v, true), "awk '{print $1}'");
        assert_eq!(
            substitute("awk '{{print $1}}'", &v, true),
            "awk '{print $1}'"
        );
        assert_eq!(substitute("{0} {w:03} {", &v, true), "{0} {w:03} {");
        assert_eq!(substitute("}{}{", &v, false), "}10.0.0.1{");
        assert_eq!(substitute("héllo {id}", &v, false), "héllo 7");
    }
}
