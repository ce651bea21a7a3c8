//! `spalloc serve`: the virtual spalloc server in the foreground, until
//! SIGINT, SIGTERM or SIGHUP, for trying the tools and for test harnesses
//! written in any language. It serves the v1 protocol and, beside it on the
//! same jobs, the v2 REST service (unless told not to).

use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use spalloc::InterruptHandle;
use spalloc::server::{ServerConfig, V2Config, V2Password, V2Tls, VirtualServer};

use crate::Ctx;
use crate::args::ServeArgs;
use crate::exit::{CliError, CliResult, code, plain};
use crate::render::visible;
use crate::settings::flag_span;
use crate::signals::Signals;

/// Where `spalloc serve` listens when neither the file nor the flags say.
const DEFAULT_PORT: u16 = spalloc::DEFAULT_PORT;

/// Runs `spalloc serve`.
pub fn run(args: ServeArgs, _ctx: &Ctx) -> CliResult {
    let mut config = match &args.config {
        Some(path) => ServerConfig::from_file(Path::new(path)).map_err(|e| {
            CliError::exit(code::USAGE, format!("spalloc serve: config error: {e}"))
        })?,
        None => ServerConfig::default(),
    };
    let port = args.port.unwrap_or(match config.listen.port() {
        0 => DEFAULT_PORT,
        p => p,
    });
    config.listen = match &args.host {
        Some(host) => resolve(host, port)?,
        None => SocketAddr::new(config.listen.ip(), port),
    };
    if let Some(d) = args.dialect {
        config = config.dialect(d);
    }
    if let Some(f) = &args.state_file {
        config.state_file = Some(PathBuf::from(f));
    }
    if let Some(s) = args.power_delay {
        config.power_delay = flag_span("--power-delay", s)?;
    }
    if let Some(s) = args.seconds_before_free {
        config.seconds_before_free = flag_span("--seconds-before-free", s)?;
    }
    if let Some(s) = args.timeout_check_interval {
        config.timeout_check_interval =
            flag_span("--timeout-check-interval", s)?.max(Duration::from_millis(10));
    }
    if config.machines.is_empty() {
        config.machines = vec![ServerConfig::default_machine()];
    }
    if args.config.is_none() {
        // Without a file, v2 runs with its defaults (and its test user); a
        // file has its own say, through its [v2] table.
        config.v2 = Some(V2Config::default());
    }
    if args.no_v2 {
        config.v2 = None;
    } else if let Some(v2) = &mut config.v2 {
        if let Some(port) = args.v2_port {
            let ip = v2.listen.map_or(config.listen.ip(), |a| a.ip());
            v2.listen = Some(SocketAddr::new(ip, port));
        }
        if let Some(file) = &args.v2_self_signed {
            v2.tls = V2Tls::SelfSigned {
                ca_file: Some(PathBuf::from(file)),
            };
        }
    }
    // The built-in test user is announced, so nobody wonders how to log in.
    let test_user = config.v2.as_ref().and_then(|v2| match &v2.users[..] {
        [u] if u.name == "test" && u.password == V2Password::Plain("test".into()) => {
            Some("v2 login: user \"test\", password \"test\" (the built-in test user)")
        }
        _ => None,
    });
    let summary: Vec<String> = config
        .machines
        .iter()
        .map(|m| format!("{} ({}x{} triads)", m.name(), m.width(), m.height()))
        .collect();

    let signals = Signals::catch_all(InterruptHandle::new()).map_err(|e| {
        CliError::exit(
            code::FAILED,
            format!("spalloc serve: cannot handle signals: {}", plain(&e)),
        )
    })?;
    let (dialect, version) = (config.dialect, config.version.clone());
    let server = VirtualServer::start(config).map_err(|e| {
        // A setting (or a file one names) to fix is a usage error; a state
        // file that cannot be used or an address that cannot be listened on
        // is a failure. Either way the message names what to look at.
        let code = if e.is_setting() {
            code::USAGE
        } else {
            code::FAILED
        };
        CliError::exit(code, format!("spalloc serve: {}", visible(&e.to_string())))
    })?;
    {
        let mut out = io::stdout().lock();
        writeln!(
            out,
            "spalloc virtual server listening on {}",
            server.local_addr()
        )?;
        if let Some(url) = server.v2_url() {
            writeln!(out, "spalloc v2 service at {url}")?;
        }
        if let Some(line) = test_user {
            writeln!(out, "{line}")?;
        }
        writeln!(out, "machines: {}", summary.join(", "))?;
        writeln!(out, "dialect: {dialect} (version {version})")?;
        out.flush()?;
    }
    let caught = loop {
        if let Some(sig) = signals.wait(Duration::from_secs(3600)) {
            break sig;
        }
    };
    log::info!("signal {}: shutting down", caught.signal);
    server.shutdown();
    Ok(ExitCode::SUCCESS)
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, CliError> {
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| {
            CliError::exit(
                code::USAGE,
                format!("spalloc serve: cannot listen on '{host}': not an address"),
            )
        })
}
