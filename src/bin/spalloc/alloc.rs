//! `spalloc alloc` (Python: `spalloc`): request boards, report progress on
//! stderr, then run a command (`-c`), print the allocation (`--json`), or
//! show it and wait for Enter — and release the boards on every way out,
//! signals included.
//!
//! The stages are kept as separate functions (create, wait, run, prompt),
//! each of which hands back either a way to continue or how to exit; the
//! one function [`run`] releases the job and the CSV afterwards, so no exit
//! path can skip that.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::{Map, Value};
use spalloc::server::{ServerConfig, VirtualServer};
use spalloc::{
    Board, Config, Error, Job, JobMachineInfo, JobOptions, JobRequest, JobState, Number,
};

use crate::Ctx;
use crate::args::AllocArgs;
use crate::common::{delay, limit, load_config};
use crate::exit::{CliError, CliResult, code, reason};
use crate::json;
use crate::signals::{self, Caught, Signals};
use crate::term::{REWRITE_PREVIOUS_LINE, Style, paint, render_deflist};

/// How long the main thread sleeps between looks at signals and children.
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
}

fn parse_what(what: &[String]) -> Result<JobRequest, CliError> {
    let mut n = Vec::with_capacity(what.len());
    for w in what {
        let v: u32 = w
            .parse()
            .map_err(|_| CliError::Usage(format!("argument WHAT: invalid int value: '{w}'")))?;
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

/// `--keepalive` keeps its spelling on the wire: `5` stays an integer.
fn keepalive(raw: Option<&str>, config: &Config) -> Result<Option<Number>, CliError> {
    let Some(raw) = raw else {
        return Ok(config.keepalive.filter(|k| *k >= 0.0).map(Number::Float));
    };
    if let Ok(i) = raw.parse::<i64>() {
        return Ok((i >= 0).then_some(Number::Int(i)));
    }
    let f: f64 = raw.parse().map_err(|_| {
        CliError::Usage(format!(
            "argument --keepalive: invalid float value: '{raw}'"
        ))
    })?;
    Ok((f >= 0.0).then_some(Number::Float(f)))
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
        let mut options = JobOptions::from_config(config)
            .hostname(hostname)
            .port(server.map_or(args.port.unwrap_or(config.port), |(_, p)| p))
            .timeout(match args.timeout {
                Some(t) => limit(Some(t)),
                None => limit(config.timeout),
            })
            .reconnect_delay(delay(
                args.reconnect_delay.unwrap_or(config.reconnect_delay),
            ))
            .ignore_version(match (args.ignore_version, args.ignore_version_as) {
                (true, _) => true,
                (false, Some(v)) => v,
                (false, None) => config.ignore_version,
            })
            .min_ratio(args.min_ratio.unwrap_or(config.min_ratio))
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
        })
    }
}

/// Status lines on stderr, rewritten in place on a terminal.
struct Status {
    quiet: bool,
    colour: bool,
    cursor: bool,
    last_was_status: bool,
}

impl Status {
    fn write(&mut self, text: &str, style: Style) {
        let mut err = io::stderr().lock();
        if self.cursor && self.last_was_status {
            let _ = err.write_all(REWRITE_PREVIOUS_LINE.as_bytes());
        }
        let _ = writeln!(err, "{}", paint(text, style, self.colour));
        let _ = err.flush();
    }

    /// A progress line (`-q` hides it).
    fn update(&mut self, text: &str, style: Style) {
        if !self.quiet {
            self.write(text, style);
            self.last_was_status = true;
        }
    }

    /// A failure line, always shown.
    fn error(&mut self, text: &str) {
        self.write(text, Style::RED);
        self.last_was_status = false;
    }
}

/// The private CSV of Ethernet-connected chips; removed when dropped.
struct TempCsv {
    path: PathBuf,
}

impl TempCsv {
    fn create() -> io::Result<TempCsv> {
        let dir = std::env::temp_dir();
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
}

impl Outcome {
    fn done(code: u8) -> Outcome {
        Outcome { code, reason: None }
    }
}

/// Runs `spalloc alloc`.
pub fn run(args: AllocArgs, ctx: &Ctx, command: Option<Vec<String>>) -> CliResult {
    let config = load_config()?;
    // Declared first so that it outlives the job, which is destroyed on it.
    let virtual_server = if args.virtual_server {
        Some(start_virtual(args.quiet)?)
    } else {
        None
    };
    let local = virtual_server.as_ref().map(|v| v.local_addr());
    let local_host = local.map(|a| a.ip().to_string());
    let plan = Plan::new(
        &args,
        &config,
        command,
        local_host.as_deref().zip(local.map(|a| a.port())),
    )?;
    let csv = TempCsv::create().map_err(|e| {
        CliError::exit(
            code::FAILED,
            format!("spalloc: cannot create a temporary file: {e}"),
        )
    })?;
    let signals = Signals::catch().map_err(|e| {
        CliError::exit(code::FAILED, format!("spalloc: cannot handle signals: {e}"))
    })?;
    let mut status = Status {
        quiet: plan.quiet,
        colour: ctx.term.err_colour,
        cursor: ctx.term.err_cursor,
        last_was_status: false,
    };

    let created = match (plan.resume, plan.request) {
        (Some(id), _) => Job::resume(id, &plan.options),
        (None, request) => Job::create(request.unwrap_or_default(), &plan.options),
    };
    let mut job = match created {
        Ok(job) => job,
        Err(e) => return Err(create_failed(e, &plan.options, &mut status)),
    };
    signals.wake(job.interrupt_handle());
    let outcome = hold(&mut job, &plan, &signals, &mut status, &csv, ctx);

    // Every way out passes here: release the job, then the CSV.
    let id = job.id();
    let released = if plan.no_destroy {
        job.close()
    } else {
        job.destroy(outcome.reason.as_deref())
    };
    if let Err(e) = released {
        status.error(&format!("Job {id}: could not be destroyed: {}", reason(&e)));
    } else if virtual_server.is_some() && !plan.no_destroy {
        status.update(
            &format!("Job {id}: Destroyed; the boards are free again."),
            Style::GREEN,
        );
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

fn create_failed(e: Error, options: &JobOptions, status: &mut Status) -> CliError {
    let server = format!(
        "{}:{}",
        options.hostname.as_deref().unwrap_or_default(),
        options.port
    );
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
        other => (
            code::NO_SERVER_OR_MACHINE,
            format!("Could not connect to server: {server}: {}", reason(&other)),
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
    status: &mut Status,
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
            "Job {id}: cannot write {}: {e}",
            csv.path().display()
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

fn interrupted(id: u64, sig: Caught, status: &mut Status) -> Outcome {
    status.error(&format!("Job {id}: {}", sig.status()));
    Outcome {
        code: if sig.is_interrupt() {
            code::INTERRUPTED_OR_NOTHING
        } else {
            code::signalled(sig.signal)
        },
        reason: Some(sig.reason().to_owned()),
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
    status: &mut Status,
) -> Result<(), Outcome> {
    let id = job.id();
    let mut shown = None;
    let mut info = retry(job, plan, signals, status, Job::state_info)?;
    loop {
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
                    });
                }
                JobState::Unknown => {
                    status.error(&format!("Job {id}: Job not recognised by server."));
                    return Err(Outcome::done(code::USAGE));
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

fn failed(id: u64, e: &Error, status: &mut Status) -> Outcome {
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
    status: &mut Status,
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
    let mut status = Status {
        quiet: true,
        colour: false,
        cursor: false,
        last_was_status: false,
    };
    let id = job.id();
    let info = retry(job, plan, signals, &mut status, |j: &mut Job| {
        j.machine_info().map(|i| i.cloned())
    })?;
    info.ok_or_else(|| {
        // Ready but without boards: the server changed its mind.
        let mut loud = Status {
            quiet: false,
            colour: false,
            cursor: false,
            last_was_status: false,
        };
        loud.error(&format!(
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
    let hostname = info.hostname().unwrap_or_default();
    let mut items = vec![
        ("Hostname", paint(hostname, Style::BRIGHT, colour)),
        ("Width", info.width.to_string()),
        ("Height", info.height.to_string()),
    ];
    if info.connections.len() > 1 {
        items.push(("Num boards", info.connections.len().to_string()));
        items.push(("All hostnames", csv.display().to_string()));
    }
    items.push(("Running on", info.machine_name.clone()));
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
    let (tx, rx) = mpsc::channel();
    // The reader may stay blocked on stdin after we finish; it holds
    // nothing, and the process exits.
    let _ = thread::Builder::new()
        .name("spalloc-stdin".into())
        .spawn(move || {
            let mut line = String::new();
            let got = io::stdin().lock().read_line(&mut line);
            let _ = tx.send(matches!(got, Ok(n) if n > 0));
        });
    loop {
        if let Some(sig) = signals.wait(TICK) {
            if sig.is_interrupt() {
                newline(to_stderr);
                return Outcome {
                    code: code::OK,
                    reason: Some(sig.reason().to_owned()),
                };
            }
            return Outcome {
                code: code::signalled(sig.signal),
                reason: Some(sig.reason().to_owned()),
            };
        }
        match rx.try_recv() {
            Ok(true) => return Outcome::done(code::OK),
            Ok(false) | Err(mpsc::TryRecvError::Disconnected) => {
                newline(to_stderr);
                return Outcome::done(code::OK);
            }
            Err(mpsc::TryRecvError::Empty) => {}
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
            let _ = writeln!(io::stderr(), "spalloc: cannot run '{program}': {e}");
            let code = if e.kind() == io::ErrorKind::NotFound {
                code::NOT_FOUND
            } else {
                code::NOT_EXECUTABLE
            };
            return Outcome::done(code);
        }
    };
    let mut received = 0;
    let mut terminating: Option<Caught> = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(_) => break None,
        }
        if let Some(sig) = signals.wait(TICK) {
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
    };
    let child_code = match status {
        Some(s) => exit_code_of(s),
        None => code::FAILED,
    };
    match terminating {
        Some(sig) => Outcome {
            code: code::signalled(sig.signal),
            reason: Some(sig.reason().to_owned()),
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
            matches!(s(&["x"]), Err(CliError::Usage(m)) if m == "argument WHAT: invalid int value: 'x'")
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
