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
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use serde_json::{Map, Value};
use spalloc::server::{ServerConfig, VirtualServer};
use spalloc::{
    Board, Config, ConnectionEvent, Error, InterruptHandle, Job, JobMachineInfo, JobOptions,
    JobRequest, JobState, Number,
};

use crate::Ctx;
use crate::args::AllocArgs;
use crate::common::{config_limit, config_pause, flag_limit, flag_pause, load_config};
use crate::exit::{CliError, CliResult, code, plain, reason};
use crate::json;
use crate::signals::{self, Caught, Event, Signals};
use crate::term::{REWRITE_PREVIOUS_LINE, Style, paint, render_deflist};
use crate::visible::{shown, visible};

/// The shortest pause between attempts to reach the server again.
const TICK: Duration = Duration::from_millis(50);

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
    /// The job's keepalive interval as the server last reported it (the
    /// Python server does; for a resumed job it is the only source).
    keepalive_seen: Cell<Option<f64>>,
}

fn parse_what(what: &[String]) -> Result<JobRequest, CliError> {
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
fn keepalive(raw: Option<&str>, config: &Config) -> Result<Option<Number>, CliError> {
    let Some(raw) = raw else {
        let k = config.keepalive;
        return Ok(config_limit("keepalive", k)?.and(k).map(Number::Float));
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

fn count_limit(flag: Option<i64>, config: Option<u32>) -> Option<u32> {
    match flag {
        Some(n) if n < 0 => None,
        Some(n) => Some(u32::try_from(n).unwrap_or(u32::MAX)),
        None => config,
    }
}

impl Plan {
    fn new(
        args: &AllocArgs,
        config: &Config,
        command: Option<Vec<String>>,
        server: Option<(&str, u16)>,
    ) -> Result<Plan, CliError> {
        if command
            .as_ref()
            .is_some_and(|cmd| cmd.iter().all(|a| a.trim().is_empty()))
        {
            return Err(CliError::Usage(
                "argument -c/--command: expected a command to run".into(),
            ));
        }
        let hostname = match server {
            Some((host, _)) => Some(host.to_owned()),
            None => args.hostname.clone().or_else(|| config.hostname.clone()),
        };
        let owner = args
            .owner
            .clone()
            .or_else(|| config.owner.clone())
            .or_else(|| {
                // The demo server needs no configuration at all.
                server.map(|_| std::env::var("USER").unwrap_or_else(|_| "virtual-user".into()))
            });
        if owner.as_deref().is_none_or(str::is_empty) && args.resume.is_none() {
            return Err(CliError::Usage(
                "--owner must be specified (typically your email address)".into(),
            ));
        }
        let hostname = hostname.ok_or_else(|| {
            CliError::Usage("--hostname of spalloc server must be specified".into())
        })?;
        let request = if args.resume.is_some() {
            None
        } else {
            Some(parse_what(&args.what)?)
        };
        let machine = match args.machine.as_deref() {
            // A bare `-m` means "any machine", overriding the configuration.
            Some("") => None,
            Some(m) => Some(m.to_owned()),
            None => config.machine.clone(),
        };
        let tags = if machine.is_some() {
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
        let min_ratio = args.min_ratio.unwrap_or(config.min_ratio);
        if min_ratio.is_nan() || min_ratio < 0.0 {
            return Err(CliError::Usage(format!(
                "argument --min-ratio: expected a number that is not negative, got {min_ratio}"
            )));
        }
        let mut options = JobOptions::from_config(config)
            .map_err(|e| CliError::config(&e))?
            .hostname(hostname)
            .port(server.map_or(args.port.unwrap_or(config.port), |(_, p)| p))
            .timeout(match args.timeout {
                Some(t) => flag_limit("--timeout", t)?,
                None => config_limit("timeout", config.timeout)?,
            })
            .reconnect_delay(match args.reconnect_delay {
                Some(d) => flag_pause("--reconnect-delay", d)?,
                None => config_pause("reconnect_delay", config.reconnect_delay)?,
            })
            .ignore_version(match (args.ignore_version, args.ignore_version_as) {
                (true, _) => true,
                (false, Some(v)) => v,
                (false, None) => config.ignore_version,
            })
            .min_ratio(min_ratio)
            .max_dead_boards(count_limit(args.max_dead_boards, config.max_dead_boards))
            .max_dead_links(count_limit(args.max_dead_links, config.max_dead_links))
            .require_torus(if args.require_torus {
                true
            } else if args.no_require_torus {
                false
            } else {
                config.require_torus
            });
        options.request.machine = machine;
        options.request.tags = tags;
        options.request.owner = owner.unwrap_or_default();
        options.request.keepalive = keepalive(args.keepalive.as_deref(), config)?;
        Ok(Plan {
            request,
            resume: args.resume,
            options,
            command,
            quiet: args.quiet,
            json: args.json,
            no_destroy: args.no_destroy,
            keepalive_seen: Cell::new(None),
        })
    }

    /// What the user is told about a job left behind: when the server
    /// will expire it, as far as is known.
    fn expiry(&self, id: u64) -> String {
        let keepalive = self.keepalive_seen.get().or_else(|| {
            if self.resume.is_some() {
                None
            } else {
                self.options.request.keepalive.map(Number::as_f64)
            }
        });
        match keepalive {
            Some(k) => format!(
                "it expires about {k} s after its last keepalive unless something keeps it alive \
                 (`spalloc alloc --resume {id}`)"
            ),
            None if self.resume.is_some() => {
                "it expires after its keepalive interval unless something keeps it alive".into()
            }
            None => format!(
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

/// The private CSV of Ethernet-connected chips; removed when dropped.
struct TempCsv {
    path: PathBuf,
}

impl TempCsv {
    fn create() -> Result<TempCsv, CliError> {
        let dir = std::env::temp_dir();
        TempCsv::create_in(&dir).map_err(|e| {
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

    fn create_in(dir: &Path) -> io::Result<TempCsv> {
        let seed = std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            std::process::id(),
        );
        for attempt in 0..100u64 {
            let mut n = seed.wrapping_add(attempt.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut name = String::from("spinnaker_ips_");
            for _ in 0..8 {
                let c = b"abcdefghijklmnopqrstuvwxyz0123456789_"[(n % 37) as usize];
                name.push(char::from(c));
                n /= 37;
            }
            name.push_str(".csv");
            let path = dir.join(name);
            let mut open = OpenOptions::new();
            open.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
            match open.open(&path) {
                Ok(_) => return Ok(TempCsv { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free temporary file name",
        ))
    }

    fn write(&self, info: &JobMachineInfo) -> io::Result<()> {
        let mut f = File::create(&self.path)?;
        f.write_all(crate::job::csv(info).as_bytes())?;
        f.flush()
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempCsv {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// What happened to the job, deciding how it is released and the exit code.
struct Outcome {
    code: u8,
    /// The reason to destroy the job with.
    reason: Option<String>,
    /// The server already destroyed the job (or never knew it).
    gone: bool,
}

impl Outcome {
    fn done(code: u8) -> Outcome {
        Outcome {
            code,
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
    let config = load_config()?;
    // Declared first so that it outlives the job, which is destroyed on it.
    let virtual_server = if args.virtual_server {
        Some(start_virtual(args.quiet)?)
    } else {
        None
    };
    let local = virtual_server.as_ref().map(|v| v.local_addr());
    let local_host = local.map(|a| a.ip().to_string());
    let mut plan = Plan::new(
        &args,
        &config,
        command,
        local_host.as_deref().zip(local.map(|a| a.port())),
    )?;
    let csv = TempCsv::create()?;
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
    let outcome = hold(&mut job, &plan, &signals, &status, &csv, ctx);

    // Every way out passes here: release the job, then the CSV. A signal
    // from here on cuts the release short (the job then expires).
    let released = if plan.no_destroy {
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
            format!("spalloc: cannot start the virtual server: {}", plain(&e)),
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
    let host = options.hostname.as_deref().unwrap_or_default();
    let server = if host.contains(':') {
        format!("[{host}]:{}", options.port)
    } else {
        format!("{host}:{}", options.port)
    };
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
        Error::InvalidArgument(m) => return CliError::Usage(m),
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
    csv: &TempCsv,
    ctx: &Ctx,
) -> Outcome {
    let id = job.id();
    // A signal during create: the job exists now, so release it.
    if let Some(sig) = signals.pending() {
        return interrupted(id, sig, status);
    }
    if let Err(outcome) = wait_ready(job, plan, signals, status) {
        return outcome;
    }
    let info = match machine_info(job, plan, signals) {
        Ok(info) => info,
        Err(outcome) => return outcome,
    };
    if let Err(e) = csv.write(&info) {
        status.error(&format!(
            "Job {id}: cannot write {}: {}",
            csv.path().display(),
            plain(&e)
        ));
        return Outcome::done(code::FAILED);
    }
    status.update(&format!("Job {id}: Ready!"), Style::GREEN);
    if plan.json {
        let line = json::line(&allocation_json(id, &info));
        if write_flush(&mut io::stdout(), line.as_bytes()).is_err() {
            return Outcome::done(code::OK);
        }
    }
    match &plan.command {
        Some(command) => run_command(command, id, &info, csv.path(), signals),
        None => {
            if !plan.json {
                let block = info_block(&info, csv.path(), ctx.term.out_colour);
                if write_flush(&mut io::stdout(), block.as_bytes()).is_err() {
                    return Outcome::done(code::OK);
                }
            }
            prompt(plan.json, ctx, signals)
        }
    }
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
fn wait_ready(
    job: &mut Job,
    plan: &Plan,
    signals: &Signals,
    status: &Status,
) -> Result<(), Outcome> {
    let id = job.id();
    let mut shown = None;
    let mut info = retry(job, plan, signals, status, Job::state_info)?;
    loop {
        if let Some(k) = info.keepalive.filter(|k| (0.0..1e6).contains(k)) {
            plan.keepalive_seen.set(Some(k));
        }
        let state = info.state;
        if shown != Some(state) {
            shown = Some(state);
            match state {
                JobState::Queued => {
                    status.update(&format!("Job {id}: Waiting in queue..."), Style::YELLOW)
                }
                JobState::Power => {
                    status.update(&format!("Job {id}: Waiting for power on..."), Style::YELLOW)
                }
                JobState::Ready => return Ok(()),
                JobState::Destroyed => {
                    match &info.reason {
                        Some(r) => status.error(&format!("Job {id}: Destroyed: {r}")),
                        None => status.error(&format!("Job {id}: Destroyed.")),
                    }
                    return Err(Outcome {
                        code: code::FAILED,
                        reason: info.reason.clone(),
                        gone: true,
                    });
                }
                JobState::Unknown => {
                    status.error(&format!("Job {id}: Job not recognised by server."));
                    return Err(Outcome {
                        gone: true,
                        ..Outcome::done(code::USAGE)
                    });
                }
                JobState::Unrecognised(n) => {
                    status.error(&format!("Job {id}: Entered an unrecognised state {n}."));
                    return Err(Outcome::done(code::STATE));
                }
            }
        }
        info = match job.wait_for_state_change(state, None) {
            Ok(next) => next,
            Err(Error::Interrupted) => return Err(interrupted(id, caught(signals), status)),
            Err(e) => return Err(failed(id, &e, status)),
        };
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
                if let Some(sig) = signals.wait(plan.options.reconnect_delay.max(TICK)) {
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

fn allocation_json(id: u64, info: &JobMachineInfo) -> Value {
    let mut obj = Map::new();
    obj.insert("id".into(), id.into());
    obj.insert("machine".into(), info.machine_name.clone().into());
    obj.insert("hostname".into(), info.hostname().map(str::to_owned).into());
    obj.insert("width".into(), info.width.into());
    obj.insert("height".into(), info.height.into());
    obj.insert("boards".into(), json::boards(&info.boards));
    obj.insert("connections".into(), json::connections(&info.connections));
    Value::Object(obj)
}

/// The definition list shown before the prompt.
fn info_block(info: &JobMachineInfo, csv: &Path, colour: bool) -> String {
    let hostname = visible(info.hostname().unwrap_or_default());
    let mut items = vec![
        ("Hostname", paint(&hostname, Style::BRIGHT, colour)),
        ("Width", info.width.to_string()),
        ("Height", info.height.to_string()),
    ];
    if info.connections.len() > 1 {
        items.push(("Num boards", info.connections.len().to_string()));
        items.push(("All hostnames", csv.display().to_string()));
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
                };
            }
            Some(Event::Signal(sig)) => {
                return Outcome {
                    code: code::signalled(sig.signal),
                    reason: Some(sig.reason().to_owned()),
                    gone: false,
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
        let mut c = Command::new("sh");
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
}
