//! Command-line syntax: the argh structures of every subcommand, and the
//! translation of the Python tools' argparse-style command lines into them.
//!
//! argh parses one value per option, no `--opt=value`, no optional values
//! and no "rest of the line" options, all of which the Python tools' users
//! rely on (`-m` with or without a machine, `-t a b c`, `-c cmd args…`,
//! `--destroy [REASON]`, `--ignore_version [VALUE]`, negative chip
//! coordinates). [`normalise`] rewrites such a command line into the
//! canonical form argh understands, so the structures below stay plain and
//! argh still provides parsing, typing, help text and error messages.

use argh::FromArgs;

use crate::term::ColorChoice;

/// Adds the flags every server-facing subcommand shares.
macro_rules! server_command {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : [$($ty:tt)*], )*
        }
    ) => {
        $(#[$meta])*
        #[derive(FromArgs, Debug, Clone, PartialEq)]
        #[argh(help_triggers("-h", "--help"))]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $($ty)*, )*
            /// hostname or IP address of the spalloc server (default: config `hostname`)
            #[argh(option, short = 'H')]
            pub hostname: Option<String>,
            /// port of the spalloc server (default: config `port`, 22244)
            #[argh(option, short = 'P')]
            pub port: Option<u16>,
            /// seconds to wait for each reply from the server; negative means no limit (default: config `timeout`, 10.0)
            #[argh(option)]
            pub timeout: Option<f64>,
            /// do not check the server's version (also `--ignore_version [yes|no]`)
            #[argh(switch)]
            pub ignore_version: bool,
            /// the value given to the old `--ignore_version` spelling
            #[argh(option, hidden_help)]
            pub ignore_version_as: Option<bool>,
            /// when to colour the output: auto, always or never (default: auto)
            #[argh(option, default = "ColorChoice::Auto")]
            pub color: ColorChoice,
            /// log diagnostic information to stderr
            #[argh(switch)]
            pub debug: bool,
            /// print the version and exit
            #[argh(switch, short = 'V')]
            pub version: bool,
        }

        impl ServerFlags for $name {
            fn hostname(&self) -> Option<&str> { self.hostname.as_deref() }
            fn port(&self) -> Option<u16> { self.port }
            fn timeout(&self) -> Option<f64> { self.timeout }
            fn ignore_version(&self) -> Option<bool> {
                match (self.ignore_version, self.ignore_version_as) {
                    (true, _) => Some(true),
                    (false, v) => v,
                }
            }
            fn color(&self) -> ColorChoice { self.color }
            fn debug(&self) -> bool { self.debug }
            fn version(&self) -> bool { self.version }
        }
    };
}

/// The flags shared by every subcommand that talks to a server.
pub trait ServerFlags {
    /// `-H/--hostname`.
    fn hostname(&self) -> Option<&str>;
    /// `-P/--port`.
    fn port(&self) -> Option<u16>;
    /// `--timeout`, in seconds.
    fn timeout(&self) -> Option<f64>;
    /// `--ignore-version` or the old spelling's value, if given.
    fn ignore_version(&self) -> Option<bool>;
    /// `--color`.
    fn color(&self) -> ColorChoice;
    /// `--debug`.
    fn debug(&self) -> bool;
    /// `-V/--version`.
    fn version(&self) -> bool;
}

server_command! {
    /// Request SpiNNaker boards and hold them while a command runs (or until
    /// Enter is pressed). WHAT is nothing or 1 for one board, N for at least
    /// N boards, W H for W x H triads, or X Y Z for the board at that logical
    /// coordinate.
    pub struct AllocArgs {
        /// what to allocate: nothing, N, W H, or X Y Z
        #[argh(positional, arg_name = "WHAT")]
        pub what: [Vec<String>],
        /// keep the given job alive instead of creating one (allocation options are ignored)
        #[argh(option, short = 'r')]
        pub resume: [Option<u64>],
        /// allocate only on this machine; a bare -m means any machine (default: config `machine`)
        #[argh(option, short = 'm')]
        pub machine: [Option<String>],
        /// allocate only on machines with all these tags (default: config `tags`, else default)
        #[argh(option, short = 't')]
        pub tags: [Vec<String>],
        /// minimum squareness of an N-board allocation (default: config `min_ratio`, 0.333)
        #[argh(option)]
        pub min_ratio: [Option<f64>],
        /// dead boards allowed in the allocation, -1 for any (default: config `max_dead_boards`, 0)
        #[argh(option)]
        pub max_dead_boards: [Option<i64>],
        /// dead links allowed in the allocation, -1 for any (default: config `max_dead_links`, -1)
        #[argh(option)]
        pub max_dead_links: [Option<i64>],
        /// require wrap-around links
        #[argh(switch, short = 'w')]
        pub require_torus: [bool],
        /// do not require wrap-around links
        #[argh(switch, short = 'W')]
        pub no_require_torus: [bool],
        /// run COMMAND... once the boards are ready, then release them; must come last ({hostname}, {w}, {h}, {ethernet_ips} and {id} are substituted)
        #[argh(switch, short = 'c')]
        pub command: [bool],
        /// who the job is for, by convention an e-mail address (default: config `owner`)
        #[argh(option)]
        pub owner: [Option<String>],
        /// seconds the server waits for a keepalive, -1 for never (default: config `keepalive`, 60.0)
        #[argh(option)]
        pub keepalive: [Option<String>],
        /// seconds between reconnection attempts (default: config `reconnect_delay`, 5.0)
        #[argh(option)]
        pub reconnect_delay: [Option<f64>],
        /// keep the job when spalloc exits
        #[argh(switch, short = 'D')]
        pub no_destroy: [bool],
        /// do not print status lines
        #[argh(switch, short = 'q')]
        pub quiet: [bool],
        /// print the allocation as one JSON line on stdout
        #[argh(switch)]
        pub json: [bool],
        /// start a built-in virtual server (one 24-board machine) and allocate from it: no hardware or configuration needed
        #[argh(switch, long = "virtual")]
        pub virtual_server: [bool],
    }
}

server_command! {
    /// Show or manage one job (by default, the owner's only live job).
    pub struct JobArgs {
        /// the job (default: the owner's only live job)
        #[argh(positional, arg_name = "JOB_ID")]
        pub job_id: [Option<u64>],
        /// the owner whose only job is meant, and named in the destroy reason (default: config `owner`)
        #[argh(option, short = 'o')]
        pub owner: [Option<String>],
        /// show the job (the default action)
        #[argh(switch, short = 'i')]
        pub info: [bool],
        /// show the job again whenever it changes
        #[argh(switch, short = 'w')]
        pub watch: [bool],
        /// power the boards on, or reset them (also --reset, -r); waits until done
        #[argh(switch, short = 'p')]
        pub power_on: [bool],
        /// power the boards off; waits until done
        #[argh(switch)]
        pub power_off: [bool],
        /// print the Ethernet-connected chips' IP addresses as CSV
        #[argh(switch, short = 'e')]
        pub ethernet_ips: [bool],
        /// destroy the job, optionally giving a REASON (default: "Destroyed by OWNER")
        #[argh(switch, short = 'D')]
        pub destroy: [bool],
        /// the reason given after --destroy
        #[argh(option, hidden_help)]
        pub destroy_reason: [Option<String>],
        /// print JSON instead of text
        #[argh(switch)]
        pub json: [bool],
    }
}

server_command! {
    /// List the live jobs.
    pub struct PsArgs {
        /// show the list again whenever it changes
        #[argh(switch, short = 'w')]
        pub watch: [bool],
        /// only jobs allocated on this machine
        #[argh(option, short = 'm')]
        pub machine: [Option<String>],
        /// only jobs of this owner
        #[argh(option, short = 'o')]
        pub owner: [Option<String>],
        /// print JSON instead of text
        #[argh(switch)]
        pub json: [bool],
    }
}

server_command! {
    /// Summarise the machines, or show one machine's boards and jobs.
    pub struct MachineArgs {
        /// the machine to show
        #[argh(positional, arg_name = "MACHINE")]
        pub machine: [Option<String>],
        /// show again whenever it changes
        #[argh(switch, short = 'w')]
        pub watch: [bool],
        /// list the machine's jobs in a table
        #[argh(switch, short = 'd')]
        pub detailed: [bool],
        /// print JSON instead of text
        #[argh(switch)]
        pub json: [bool],
    }
}

server_command! {
    /// Find a board or chip: where it is physically and logically, and which
    /// job holds it. Give exactly one of the forms.
    pub struct WhereIsArgs {
        /// MACHINE X Y Z: a board by logical coordinate (also --logical, -l)
        #[argh(switch, short = 'b')]
        pub board: [bool],
        /// MACHINE CABINET FRAME BOARD: a board by physical location
        #[argh(switch, short = 'p')]
        pub physical: [bool],
        /// MACHINE X Y: a chip in machine coordinates
        #[argh(switch, short = 'c')]
        pub chip: [bool],
        /// JOB_ID X Y: a chip relative to a job
        #[argh(switch, short = 'j')]
        pub job_chip: [bool],
        /// the values of the chosen form
        #[argh(positional, arg_name = "VALUE")]
        pub values: [Vec<String>],
        /// print JSON instead of text
        #[argh(switch)]
        pub json: [bool],
    }
}

/// Show where configuration is read from and the value of every key.
#[derive(FromArgs, Debug, Clone, PartialEq)]
#[argh(help_triggers("-h", "--help"))]
pub struct ConfigArgs {
    /// print JSON instead of text
    #[argh(switch)]
    pub json: bool,
    /// when to colour the output: auto, always or never (default: auto)
    #[argh(option, default = "ColorChoice::Auto")]
    pub color: ColorChoice,
    /// print the version and exit
    #[argh(switch, short = 'V')]
    pub version: bool,
}

/// Run a virtual spalloc server (no hardware) until interrupted.
#[derive(FromArgs, Debug, Clone, PartialEq)]
#[argh(help_triggers("-h", "--help"))]
pub struct ServeArgs {
    /// machines and timings, as a TOML file (default: one 24-board machine)
    #[argh(option)]
    pub config: Option<String>,
    /// address to listen on (default: from the file, else 127.0.0.1)
    #[argh(option)]
    pub host: Option<String>,
    /// port to listen on (default: from the file, else 22244)
    #[argh(option, short = 'P')]
    pub port: Option<u16>,
    /// keep jobs in this file across restarts
    #[argh(option)]
    pub state_file: Option<String>,
    /// answer as the Python server (python) or the Java server's v1 service (java) (default: from the file, else python)
    #[argh(option)]
    pub dialect: Option<spalloc::server::Dialect>,
    /// seconds a power on or off takes (default: from the file, else 2)
    #[argh(option)]
    pub power_delay: Option<f64>,
    /// seconds before released boards can be reused (default: from the file, else 30)
    #[argh(option)]
    pub seconds_before_free: Option<f64>,
    /// seconds between keepalive expiry checks (default: from the file, else 5)
    #[argh(option)]
    pub timeout_check_interval: Option<f64>,
    /// port for the v2 (REST) service (default: from the file, else the v1 port + 1; 0 for any)
    #[argh(option)]
    pub v2_port: Option<u16>,
    /// serve v2 over HTTPS with a throw-away certificate, writing the CA that clients must trust to FILE
    #[argh(option, arg_name = "FILE")]
    pub v2_self_signed: Option<String>,
    /// serve only the v1 protocol
    #[argh(switch)]
    pub no_v2: bool,
    /// log diagnostic information to stderr
    #[argh(switch)]
    pub debug: bool,
    /// when to colour the output: auto, always or never (default: auto)
    #[argh(option, default = "ColorChoice::Auto")]
    pub color: ColorChoice,
    /// print the version and exit
    #[argh(switch, short = 'V')]
    pub version: bool,
}

/// How an option consumes the tokens after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Switch,
    Value,
    /// A value only if the next token does not look like an option; the
    /// bare form becomes this replacement (an option and value, or none).
    OptionalValue {
        bare: Option<&'static str>,
    },
    /// Every later token is the command (alloc `-c`).
    Rest,
    /// Several values, up to the next option or integer (alloc `-t`).
    Many,
    /// The old `--ignore_version [BOOL]`.
    LegacyBool,
}

struct Spec {
    names: &'static [&'static str],
    canonical: &'static str,
    kind: Kind,
}

const fn spec(names: &'static [&'static str], canonical: &'static str, kind: Kind) -> Spec {
    Spec {
        names,
        canonical,
        kind,
    }
}

const COMMON: &[Spec] = &[
    spec(&["-H", "--hostname"], "--hostname", Kind::Value),
    spec(&["-P", "--port"], "--port", Kind::Value),
    spec(&["--timeout"], "--timeout", Kind::Value),
    spec(&["--ignore-version"], "--ignore-version", Kind::Switch),
    spec(
        &["--ignore_version"],
        "--ignore-version-as",
        Kind::LegacyBool,
    ),
    spec(&["--color", "--colour"], "--color", Kind::Value),
    spec(&["--debug"], "--debug", Kind::Switch),
    spec(&["-V", "--version"], "--version", Kind::Switch),
    spec(&["-h", "--help"], "--help", Kind::Switch),
    spec(&["--json"], "--json", Kind::Switch),
];

const ALLOC: &[Spec] = &[
    spec(&["-r", "--resume"], "--resume", Kind::Value),
    spec(
        &["-m", "--machine"],
        "--machine",
        Kind::OptionalValue { bare: Some("") },
    ),
    spec(&["-t", "--tags"], "--tags", Kind::Many),
    spec(&["--min-ratio"], "--min-ratio", Kind::Value),
    spec(&["--max-dead-boards"], "--max-dead-boards", Kind::Value),
    spec(&["--max-dead-links"], "--max-dead-links", Kind::Value),
    spec(&["-w", "--require-torus"], "--require-torus", Kind::Switch),
    spec(
        &["-W", "--no-require-torus"],
        "--no-require-torus",
        Kind::Switch,
    ),
    spec(&["-c", "--command"], "--command", Kind::Rest),
    spec(&["--owner"], "--owner", Kind::Value),
    spec(&["--keepalive"], "--keepalive", Kind::Value),
    spec(&["--reconnect-delay"], "--reconnect-delay", Kind::Value),
    spec(&["-D", "--no-destroy"], "--no-destroy", Kind::Switch),
    spec(&["-q", "--quiet"], "--quiet", Kind::Switch),
    spec(&["--virtual"], "--virtual", Kind::Switch),
];

const JOB: &[Spec] = &[
    spec(&["-o", "--owner"], "--owner", Kind::Value),
    spec(&["-i", "--info"], "--info", Kind::Switch),
    spec(&["-w", "--watch"], "--watch", Kind::Switch),
    spec(
        &["-p", "-r", "--power-on", "--reset"],
        "--power-on",
        Kind::Switch,
    ),
    spec(&["--power-off"], "--power-off", Kind::Switch),
    spec(&["-e", "--ethernet-ips"], "--ethernet-ips", Kind::Switch),
    spec(
        &["-D", "--destroy"],
        "--destroy",
        Kind::OptionalValue { bare: None },
    ),
];

const PS: &[Spec] = &[
    spec(&["-w", "--watch"], "--watch", Kind::Switch),
    spec(&["-m", "--machine"], "--machine", Kind::Value),
    spec(&["-o", "--owner"], "--owner", Kind::Value),
];

const MACHINE: &[Spec] = &[
    spec(&["-w", "--watch"], "--watch", Kind::Switch),
    spec(&["-d", "--detailed"], "--detailed", Kind::Switch),
];

const WHERE_IS: &[Spec] = &[
    spec(
        &["-b", "-l", "--board", "--logical"],
        "--board",
        Kind::Switch,
    ),
    spec(&["-p", "--physical"], "--physical", Kind::Switch),
    spec(&["-c", "--chip"], "--chip", Kind::Switch),
    spec(&["-j", "--job-chip"], "--job-chip", Kind::Switch),
];

const CONFIG: &[Spec] = &[
    spec(&["--json"], "--json", Kind::Switch),
    spec(&["--color", "--colour"], "--color", Kind::Value),
    spec(&["-V", "--version"], "--version", Kind::Switch),
    spec(&["-h", "--help"], "--help", Kind::Switch),
];

const SERVE: &[Spec] = &[
    spec(&["--config"], "--config", Kind::Value),
    spec(&["--host"], "--host", Kind::Value),
    spec(&["-P", "--port"], "--port", Kind::Value),
    spec(&["--state-file"], "--state-file", Kind::Value),
    spec(&["--dialect"], "--dialect", Kind::Value),
    spec(&["--power-delay"], "--power-delay", Kind::Value),
    spec(
        &["--seconds-before-free"],
        "--seconds-before-free",
        Kind::Value,
    ),
    spec(
        &["--timeout-check-interval"],
        "--timeout-check-interval",
        Kind::Value,
    ),
    spec(&["--v2-port"], "--v2-port", Kind::Value),
    spec(&["--v2-self-signed"], "--v2-self-signed", Kind::Value),
    spec(&["--no-v2"], "--no-v2", Kind::Switch),
    spec(&["--debug"], "--debug", Kind::Switch),
    spec(&["--color", "--colour"], "--color", Kind::Value),
    spec(&["-V", "--version"], "--version", Kind::Switch),
    spec(&["-h", "--help"], "--help", Kind::Switch),
];

/// The subcommands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    /// `alloc`
    Alloc,
    /// `job`
    Job,
    /// `ps`
    Ps,
    /// `machine`
    Machine,
    /// `where-is`
    WhereIs,
    /// `config`
    Config,
    /// `serve`
    Serve,
}

impl Sub {
    /// The subcommand for a name on the command line.
    pub fn from_name(name: &str) -> Option<Sub> {
        Some(match name {
            "alloc" => Sub::Alloc,
            "job" => Sub::Job,
            "ps" => Sub::Ps,
            "machine" => Sub::Machine,
            "where-is" => Sub::WhereIs,
            "config" => Sub::Config,
            "serve" => Sub::Serve,
            _ => return None,
        })
    }

    /// The subcommand a legacy program name stands for.
    pub fn from_legacy_name(program: &str) -> Option<Sub> {
        Some(match program {
            "spalloc-job" => Sub::Job,
            "spalloc-ps" => Sub::Ps,
            "spalloc-machine" => Sub::Machine,
            "spalloc-where-is" => Sub::WhereIs,
            _ => return None,
        })
    }

    fn specs(self) -> Vec<&'static Spec> {
        let own: &[Spec] = match self {
            Sub::Alloc => ALLOC,
            Sub::Job => JOB,
            Sub::Ps => PS,
            Sub::Machine => MACHINE,
            Sub::WhereIs => WHERE_IS,
            Sub::Config => return CONFIG.iter().collect(),
            Sub::Serve => return SERVE.iter().collect(),
        };
        own.iter().chain(COMMON).collect()
    }
}

/// A command line rewritten for argh, plus what argh cannot hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Normalised {
    /// Options first, then (after `--` where needed) the positionals.
    pub argv: Vec<String>,
    /// The tokens after alloc's `-c/--command`, if it was given.
    pub command: Option<Vec<String>>,
}

fn is_int(tok: &str) -> bool {
    let digits = tok.strip_prefix(['-', '+']).unwrap_or(tok);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_number(tok: &str) -> bool {
    tok.starts_with('-') && tok.len() > 1 && tok[1..].parse::<f64>().is_ok()
}

/// Whether a token would be read as an option rather than a value.
fn looks_like_option(tok: &str) -> bool {
    tok.starts_with('-') && tok != "-" && !is_number(tok)
}

fn parse_bool_word(tok: &str) -> Option<bool> {
    match tok.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" | "" => Some(false),
        _ => None,
    }
}

/// Rewrites an argparse-style command line for `sub` into canonical argh
/// form. Unknown options are passed through for argh to report.
pub fn normalise(sub: Sub, args: &[String]) -> Normalised {
    let specs = sub.specs();
    let find = |name: &str| specs.iter().copied().find(|s| s.names.contains(&name));
    let mut opts: Vec<String> = Vec::new();
    let mut positionals: Vec<String> = Vec::new();
    let mut command = None;
    let mut i = 0;
    while i < args.len() {
        let tok = args[i].as_str();
        i += 1;
        if tok == "--" {
            positionals.extend(args[i..].iter().cloned());
            break;
        }
        if !looks_like_option(tok) {
            positionals.push(tok.to_owned());
            continue;
        }
        // Split `--name=value` and `-Xvalue` into a name and attached value.
        let (name, attached): (String, Option<String>) = if tok.starts_with("--") {
            match tok.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (tok.to_owned(), None),
            }
        } else if tok.chars().count() > 2 {
            let (n, v) = tok.split_at(tok.char_indices().nth(2).map_or(tok.len(), |(i, _)| i));
            match find(n) {
                // A cluster of short switches, as argparse allows: `-qD`.
                Some(s)
                    if s.kind == Kind::Switch
                        && v.chars().all(|c| {
                            find(&format!("-{c}")).is_some_and(|s| s.kind == Kind::Switch)
                        }) =>
                {
                    for c in tok.chars().skip(1) {
                        if let Some(s) = find(&format!("-{c}")) {
                            opts.push(s.canonical.to_owned());
                        }
                    }
                    continue;
                }
                Some(s) if s.kind != Kind::Switch => (n.to_owned(), Some(v.to_owned())),
                _ => (tok.to_owned(), None),
            }
        } else {
            (tok.to_owned(), None)
        };
        let Some(spec) = find(&name) else {
            opts.push(tok.to_owned());
            continue;
        };
        let canonical = spec.canonical.to_owned();
        match spec.kind {
            Kind::Switch => {
                if attached.is_some() {
                    // `--quiet=x`: let argh reject it as given.
                    opts.push(tok.to_owned());
                } else {
                    opts.push(canonical);
                }
            }
            Kind::Value => {
                opts.push(canonical);
                match attached {
                    Some(v) => opts.push(v),
                    None if i < args.len() => {
                        opts.push(args[i].clone());
                        i += 1;
                    }
                    // argh reports the missing value, provided the option
                    // stays last: the positionals would otherwise follow as
                    // `-- …` and argh would take the `--` as its value.
                    None => {
                        positionals.clear();
                        break;
                    }
                }
            }
            Kind::OptionalValue { bare } => {
                let value = match attached {
                    Some(v) => Some(v),
                    None if i < args.len() && !looks_like_option(&args[i]) => {
                        i += 1;
                        Some(args[i - 1].clone())
                    }
                    None => None,
                };
                if sub == Sub::Job {
                    // `--destroy [REASON]`: a switch plus a hidden option.
                    opts.push(canonical);
                    if let Some(v) = value {
                        opts.push("--destroy-reason".into());
                        opts.push(v);
                    }
                } else {
                    match value.or(bare.map(str::to_owned)) {
                        Some(v) => {
                            opts.push(canonical);
                            opts.push(v);
                        }
                        None => opts.push(canonical),
                    }
                }
            }
            Kind::Rest => {
                let mut rest: Vec<String> = attached.into_iter().collect();
                rest.extend(args[i..].iter().cloned());
                command = Some(rest);
                break;
            }
            Kind::Many => match attached {
                // `--tags=2024` is how a numeric tag is written.
                Some(v) => {
                    opts.push(canonical);
                    opts.push(v);
                }
                None => {
                    while i < args.len() && !looks_like_option(&args[i]) && !is_int(&args[i]) {
                        opts.push(canonical.clone());
                        opts.push(args[i].clone());
                        i += 1;
                    }
                }
            },
            Kind::LegacyBool => {
                let value = match attached {
                    Some(v) => parse_bool_word(&v).unwrap_or(true),
                    None => match args.get(i).and_then(|t| parse_bool_word(t)) {
                        Some(b) => {
                            i += 1;
                            b
                        }
                        None => true,
                    },
                };
                opts.push(canonical);
                opts.push(value.to_string());
            }
        }
    }
    // A later -w/-W wins over an earlier one, as with argparse.
    let torus: Vec<usize> = (0..opts.len())
        .filter(|&k| opts[k] == "--require-torus" || opts[k] == "--no-require-torus")
        .collect();
    if let Some((_, earlier)) = torus.split_last() {
        for &k in earlier.iter().rev() {
            opts.remove(k);
        }
    }
    if !positionals.is_empty() {
        opts.push("--".into());
        opts.extend(positionals);
    }
    Normalised {
        argv: opts,
        command,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(sub: Sub, line: &str) -> Normalised {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        normalise(sub, &args)
    }

    fn argv(sub: Sub, line: &str) -> String {
        norm(sub, line).argv.join(" ")
    }

    #[test]
    fn alloc_command_takes_the_rest() {
        let n = norm(Sub::Alloc, "3 -q -c echo {} -q --owner x");
        assert_eq!(n.argv.join(" "), "--quiet -- 3");
        assert_eq!(
            n.command.map(|c| c.join(" ")),
            Some("echo {} -q --owner x".into())
        );
        let n = norm(Sub::Alloc, "--command");
        assert_eq!(n.command, Some(vec![]));
    }

    #[test]
    fn machine_value_is_optional() {
        assert_eq!(argv(Sub::Alloc, "-m big 2 2"), "--machine big -- 2 2");
        assert_eq!(argv(Sub::Alloc, "-m -q"), "--machine  --quiet");
        assert_eq!(argv(Sub::Alloc, "-m"), "--machine ");
        assert_eq!(argv(Sub::Alloc, "--machine=big"), "--machine big");
    }

    #[test]
    fn tags_stop_at_options_and_integers() {
        assert_eq!(argv(Sub::Alloc, "--tags big 4"), "--tags big -- 4");
        assert_eq!(argv(Sub::Alloc, "-t a b -q"), "--tags a --tags b --quiet");
        assert_eq!(argv(Sub::Alloc, "--tags=2024 -t x"), "--tags 2024 --tags x");
    }

    #[test]
    fn short_clusters_and_attached_values() {
        assert_eq!(
            argv(Sub::Alloc, "-qD -Hhost -P22244"),
            "--quiet --no-destroy --hostname host --port 22244"
        );
        assert_eq!(
            argv(Sub::Alloc, "--owner=me --keepalive -1"),
            "--owner me --keepalive -1"
        );
    }

    #[test]
    fn last_torus_flag_wins() {
        assert_eq!(argv(Sub::Alloc, "-w -W"), "--no-require-torus");
        assert_eq!(argv(Sub::Alloc, "-W 2 2 -w"), "--require-torus -- 2 2");
    }

    #[test]
    fn legacy_ignore_version() {
        assert_eq!(
            argv(Sub::Machine, "--ignore_version big"),
            "--ignore-version-as true -- big"
        );
        assert_eq!(
            argv(Sub::Machine, "--ignore_version False big"),
            "--ignore-version-as false -- big"
        );
        assert_eq!(
            argv(Sub::Ps, "--ignore_version=yes"),
            "--ignore-version-as true"
        );
        assert_eq!(argv(Sub::Ps, "--ignore-version"), "--ignore-version");
    }

    #[test]
    fn job_destroy_reason_and_aliases() {
        assert_eq!(argv(Sub::Job, "15 --destroy"), "--destroy -- 15");
        assert_eq!(
            argv(Sub::Job, "--destroy 15"),
            "--destroy --destroy-reason 15"
        );
        assert_eq!(
            argv(Sub::Job, "-D done -o me"),
            "--destroy --destroy-reason done --owner me"
        );
        assert_eq!(argv(Sub::Job, "-r 3"), "--power-on -- 3");
        assert_eq!(argv(Sub::Job, "--reset"), "--power-on");
    }

    #[test]
    fn negative_positionals_survive() {
        assert_eq!(argv(Sub::WhereIs, "--chip m -1 -1"), "--chip -- m -1 -1");
        assert_eq!(argv(Sub::WhereIs, "-l m 0 0 0"), "--board -- m 0 0 0");
        assert_eq!(
            argv(Sub::WhereIs, "-j 15 9 5 --json"),
            "--job-chip --json -- 15 9 5"
        );
    }

    #[test]
    fn a_missing_value_stays_missing() {
        // Not `--hostname -- 15`, which would make `--` the host name.
        assert_eq!(argv(Sub::Job, "15 --hostname"), "--hostname");
        assert_eq!(argv(Sub::WhereIs, "-j 15 9 5 -P"), "--job-chip --port");
    }

    #[test]
    fn unknown_options_pass_through() {
        assert_eq!(argv(Sub::Ps, "--frobnicate -x"), "--frobnicate -x");
    }

    #[test]
    fn argh_accepts_the_result() {
        let n = norm(Sub::Alloc, "-m big -t a b 2 2 --keepalive -1 -q -H h");
        let refs: Vec<&str> = n.argv.iter().map(String::as_str).collect();
        let parsed = AllocArgs::from_args(&["spalloc"], &refs).expect("parses");
        assert_eq!(parsed.machine.as_deref(), Some("big"));
        assert_eq!(parsed.tags, ["a", "b"]);
        assert_eq!(parsed.what, ["2", "2"]);
        assert_eq!(parsed.keepalive.as_deref(), Some("-1"));
        assert!(parsed.quiet);
        assert_eq!(parsed.hostname.as_deref(), Some("h"));
        let n = norm(Sub::WhereIs, "--chip m -1 -1 --ignore_version no");
        let refs: Vec<&str> = n.argv.iter().map(String::as_str).collect();
        let parsed = WhereIsArgs::from_args(&["spalloc-where-is"], &refs).expect("parses");
        assert_eq!(parsed.values, ["m", "-1", "-1"]);
        assert_eq!(parsed.ignore_version(), Some(false));
    }
}
