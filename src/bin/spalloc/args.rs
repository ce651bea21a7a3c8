//! Command-line syntax: the argh structures of every subcommand, each flag
//! declared once, and the translation of the Python tools' argparse-style
//! command lines into what argh reads.
//!
//! argh parses one value per option, no `--opt=value`, no optional values
//! and no "rest of the line" options, all of which the Python tools' users
//! rely on (`-m` with or without a machine, `-t a b c`, `-c cmd args…`,
//! `--destroy [REASON]`, `--ignore_version [VALUE]`, negative chip
//! coordinates). [`normalise`] rewrites such a command line into the
//! canonical form argh understands, so the structures stay plain and argh
//! still provides parsing, typing, help text and error messages.
//!
//! Both come from one declaration: the `command!` macro turns each field
//! into the argh field (its type in brackets, so that argh sees it as
//! written) and the entry of [`Syntax::specs`] that tells [`normalise`]
//! how the flag is spelled and what it takes. A field's argh attribute
//! gives its kind, long name and short letter; markers
//! before it give what argh cannot hold:
//!
//! * `@also("-l", "--logical")`: more spellings of the same flag;
//! * `@many`: several values, up to the next option or integer (`-t a b`);
//! * `@rest`: every later token (`-c cmd args…`);
//! * `@optional("")`: the value may be left out, standing for `""`;
//! * `@value_in(field)`: a switch whose optional value goes to `field`;
//! * `@legacy("--ignore_version")`: an old boolean spelling whose optional
//!   value (`yes`, `False`, …) goes to this (hidden) field.

use argh::FromArgs;

use crate::render::ColorChoice;

/// How an option consumes the tokens after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Switch,
    Value,
    /// A value only if the next token does not look like an option; the
    /// bare form stands for `bare`, or for nothing at all.
    OptionalValue {
        bare: Option<&'static str>,
    },
    /// A switch whose optional value goes to another (hidden) option.
    SwitchWithValue {
        into: String,
    },
    /// Every later token is the command (alloc `-c`).
    Rest,
    /// Several values, up to the next option or integer (alloc `-t`).
    Many,
    /// The old `--ignore_version [BOOL]`.
    LegacyBool,
}

/// One flag as [`normalise`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Every spelling: `-x`, `--long` and any others.
    pub names: Vec<String>,
    /// The spelling argh reads.
    pub canonical: String,
    pub kind: Kind,
}

/// What a `command!` field's declaration says about its spelling; turned
/// into a [`Spec`] by [`FlagDecl::spec`].
#[derive(Debug, Default)]
pub struct FlagDecl {
    pub field: &'static str,
    pub argh_kind: &'static str,
    pub short: Option<char>,
    pub long: Option<&'static str>,
    pub hidden: bool,
    pub also: &'static [&'static str],
    pub kind: Option<Kind>,
    /// `@value_in(field)`: the field the optional value goes to.
    pub value_in: Option<&'static str>,
}

/// argh's long name for a field: `--min-ratio` for `min_ratio`.
fn long_name(field: &str) -> String {
    format!("--{}", field.replace('_', "-"))
}

impl FlagDecl {
    /// The flag's spelling, or `None` for a positional argument or a hidden
    /// option with no spelling of its own.
    pub fn spec(self) -> Option<Spec> {
        if self.argh_kind == "positional" {
            return None;
        }
        let canonical = match self.long {
            Some(long) => format!("--{long}"),
            None => long_name(self.field),
        };
        let mut names: Vec<String> = Vec::new();
        if !self.hidden {
            names.extend(self.short.map(|c| format!("-{c}")));
            names.push(canonical.clone());
        }
        names.extend(self.also.iter().map(|a| (*a).to_owned()));
        if names.is_empty() {
            return None;
        }
        let kind = match (self.kind, self.value_in) {
            (_, Some(into)) => Kind::SwitchWithValue {
                into: long_name(into),
            },
            (Some(kind), None) => kind,
            (None, None) if self.argh_kind == "switch" => Kind::Switch,
            (None, None) => Kind::Value,
        };
        Some(Spec {
            names,
            canonical,
            kind,
        })
    }
}

/// The argparse-style syntax of a subcommand's flags.
pub trait Syntax {
    /// Every flag's spelling, `-h/--help` first.
    fn specs() -> Vec<Spec>;
}

/// One argh attribute key of a field, as far as its spelling goes.
macro_rules! decl_key {
    ($d:ident, short = $v:literal) => {
        $d.short = Some($v);
    };
    ($d:ident, long = $v:literal) => {
        $d.long = Some($v);
    };
    ($d:ident, hidden_help) => {
        $d.hidden = true;
    };
    ($d:ident, $other:ident $(= $v:literal)?) => {};
}

/// One `@marker` of a field.
macro_rules! decl_marker {
    ($d:ident, also($($name:literal),*)) => {
        $d.also = &[$($name),*];
    };
    ($d:ident, many) => {
        $d.kind = Some(Kind::Many);
    };
    ($d:ident, rest) => {
        $d.kind = Some(Kind::Rest);
    };
    ($d:ident, optional($bare:literal)) => {
        $d.kind = Some(Kind::OptionalValue { bare: Some($bare) });
    };
    ($d:ident, value_in($field:ident)) => {
        $d.value_in = Some(stringify!($field));
    };
    ($d:ident, legacy($name:literal)) => {
        $d.kind = Some(Kind::LegacyBool);
        $d.also = &[$name];
    };
}

/// Declares a subcommand's argh structure and its [`Syntax`] from one list
/// of fields, after which come the shared flag groups named in the header,
/// in that order (`server`, `color`, `debug`, `version`): each shared flag
/// is declared once, here.
macro_rules! command {
    (
        $(#[doc = $doc:literal])*
        pub struct $name:ident: $($group:ident),* {
            $($fields:tt)*
        }
    ) => {
        command!(@group [$($doc)*] $name [$($fields)*] $($group)*);
    };
    (@group [$($doc:literal)*] $name:ident [$($fields:tt)*] server $($rest:ident)*) => {
        command!(@group [$($doc)*] $name [$($fields)*
            /// hostname or IP address of the spalloc server (default: config `hostname`)
            #[argh(option, short = 'H')]
            hostname: [Option<String>],
            /// port of the spalloc server (default: config `port`, 22244)
            #[argh(option, short = 'P')]
            port: [Option<u16>],
            /// seconds to wait for each reply from the server; negative means no limit (default: config `timeout`, 10.0)
            #[argh(option)]
            timeout: [Option<f64>],
            /// do not check the server's version (also `--ignore_version [yes|no]`)
            #[argh(switch)]
            ignore_version: [bool],
            /// the value given to the old `--ignore_version` spelling
            @legacy("--ignore_version")
            #[argh(option, hidden_help)]
            ignore_version_as: [Option<bool>],
            /// v2 (http:// service URL): allow a password or token over plain HTTP to a host that is not this machine
            #[argh(switch)]
            allow_plain_http: [bool],
        ] $($rest)*);
    };
    (@group [$($doc:literal)*] $name:ident [$($fields:tt)*] color $($rest:ident)*) => {
        command!(@group [$($doc)*] $name [$($fields)*
            /// when to colour the output: auto, always or never (default: auto)
            @also("--colour")
            #[argh(option, default = "ColorChoice::Auto")]
            color: [ColorChoice],
        ] $($rest)*);
    };
    (@group [$($doc:literal)*] $name:ident [$($fields:tt)*] debug $($rest:ident)*) => {
        command!(@group [$($doc)*] $name [$($fields)*
            /// log diagnostic information to stderr
            #[argh(switch)]
            debug: [bool],
        ] $($rest)*);
    };
    (@group [$($doc:literal)*] $name:ident [$($fields:tt)*] version $($rest:ident)*) => {
        command!(@group [$($doc)*] $name [$($fields)*
            /// print the version and exit
            #[argh(switch, short = 'V')]
            version: [bool],
        ] $($rest)*);
    };
    (@group [$($doc:literal)*] $name:ident [$(
        $(#[doc = $fdoc:literal])*
        $(@$marker:ident $(($($marg:tt)*))?)*
        #[argh($kind:ident $(, $key:ident $(= $val:literal)?)*)]
        $field:ident : [$($ty:tt)*],
    )*]) => {
        $(#[doc = $doc])*
        #[derive(FromArgs, Debug, Clone, PartialEq)]
        #[argh(help_triggers("-h", "--help"))]
        pub struct $name {
            $(
                $(#[doc = $fdoc])*
                #[argh($kind $(, $key $(= $val)?)*)]
                pub $field: $($ty)*,
            )*
        }

        impl Syntax for $name {
            fn specs() -> Vec<Spec> {
                let mut specs = vec![Spec {
                    names: vec!["-h".into(), "--help".into()],
                    canonical: "--help".into(),
                    kind: Kind::Switch,
                }];
                $(
                    // Not every field has keys or markers to set.
                    #[allow(unused_mut)]
                    let mut d = FlagDecl {
                        field: stringify!($field),
                        argh_kind: stringify!($kind),
                        ..FlagDecl::default()
                    };
                    $(decl_key!(d, $key $(= $val)?);)*
                    $(decl_marker!(d, $marker $(($($marg)*))?);)*
                    specs.extend(d.spec());
                )*
                specs
            }
        }
    };
}

command! {
    /// Request SpiNNaker boards and hold them while a command runs (or until
    /// Enter is pressed). WHAT is nothing or 1 for one board, N for at least
    /// N boards, W H for W x H triads, or X Y Z for the board at that logical
    /// coordinate.
    pub struct AllocArgs: server, color, debug, version {
        /// what to allocate: nothing, N, W H, or X Y Z
        #[argh(positional, arg_name = "WHAT")]
        what: [Vec<String>],
        /// keep the given job alive instead of creating one (allocation options are ignored)
        #[argh(option, short = 'r')]
        resume: [Option<u64>],
        /// allocate only on this machine; a bare -m means any machine (default: config `machine`)
        @optional("")
        #[argh(option, short = 'm')]
        machine: [Option<String>],
        /// allocate only on machines with all these tags (default: config `tags`, else default)
        @many
        #[argh(option, short = 't')]
        tags: [Vec<String>],
        /// minimum squareness of an N-board allocation (default: config `min_ratio`, 0.333)
        #[argh(option)]
        min_ratio: [Option<f64>],
        /// dead boards allowed in the allocation, -1 for any (default: config `max_dead_boards`, 0)
        #[argh(option)]
        max_dead_boards: [Option<i64>],
        /// dead links allowed in the allocation, -1 for any (default: config `max_dead_links`, -1)
        #[argh(option)]
        max_dead_links: [Option<i64>],
        /// require wrap-around links
        #[argh(switch, short = 'w')]
        require_torus: [bool],
        /// do not require wrap-around links
        #[argh(switch, short = 'W')]
        no_require_torus: [bool],
        /// run COMMAND... once the boards are ready, then release them; must come last ({hostname}, {w}, {h}, {ethernet_ips} and {id} are substituted)
        @rest
        #[argh(switch, short = 'c')]
        command: [bool],
        /// who the job is for, by convention an e-mail address (default: config `owner`)
        #[argh(option)]
        owner: [Option<String>],
        /// seconds the server waits for a keepalive, -1 for never (default: config `keepalive`, 60.0)
        #[argh(option)]
        keepalive: [Option<String>],
        /// seconds between reconnection attempts (default: config `reconnect_delay`, 5.0)
        #[argh(option)]
        reconnect_delay: [Option<f64>],
        /// keep the job when spalloc exits
        #[argh(switch, short = 'D')]
        no_destroy: [bool],
        /// do not print status lines
        #[argh(switch, short = 'q')]
        quiet: [bool],
        /// print the allocation as one JSON line on stdout
        #[argh(switch)]
        json: [bool],
        /// WHAT is the board at CABINET FRAME BOARD (a physical position; v1 needs -m)
        #[argh(switch)]
        physical: [bool],
        /// the board with this IP address (v2 servers only)
        #[argh(option)]
        ip: [Option<String>],
        /// start a built-in virtual server (one 24-board machine) and allocate from it: no hardware or configuration needed
        #[argh(switch, long = "virtual")]
        virtual_server: [bool],
    }
}

command! {
    /// Show or manage one job (by default, the owner's only live job).
    pub struct JobArgs: server, color, debug, version {
        /// the job (default: the owner's only live job)
        #[argh(positional, arg_name = "JOB_ID")]
        job_id: [Option<u64>],
        /// the owner whose only job is meant, and named in the destroy reason (default: config `owner`)
        #[argh(option, short = 'o')]
        owner: [Option<String>],
        /// show the job (the default action)
        #[argh(switch, short = 'i')]
        info: [bool],
        /// show the job again whenever it changes
        #[argh(switch, short = 'w')]
        watch: [bool],
        /// power the boards on, or reset them (also --reset, -r); waits until done
        @also("-r", "--reset")
        #[argh(switch, short = 'p')]
        power_on: [bool],
        /// power the boards off; waits until done
        #[argh(switch)]
        power_off: [bool],
        /// print the Ethernet-connected chips' IP addresses as CSV
        #[argh(switch, short = 'e')]
        ethernet_ips: [bool],
        /// destroy the job, optionally giving a REASON (default: "Destroyed by OWNER")
        @value_in(destroy_reason)
        #[argh(switch, short = 'D')]
        destroy: [bool],
        /// the reason given after --destroy
        #[argh(option, hidden_help)]
        destroy_reason: [Option<String>],
        /// print JSON instead of text
        #[argh(switch)]
        json: [bool],
    }
}

command! {
    /// List the live jobs.
    pub struct PsArgs: server, color, debug, version {
        /// show the list again whenever it changes
        #[argh(switch, short = 'w')]
        watch: [bool],
        /// only jobs allocated on this machine
        #[argh(option, short = 'm')]
        machine: [Option<String>],
        /// only jobs of this owner
        #[argh(option, short = 'o')]
        owner: [Option<String>],
        /// also the destroyed jobs the server remembers, with when and why they ended (v2 servers; v1 servers forget them)
        #[argh(switch)]
        all: [bool],
        /// print JSON instead of text
        #[argh(switch)]
        json: [bool],
    }
}

command! {
    /// Summarise the machines, or show one machine's boards and jobs.
    pub struct MachineArgs: server, color, debug, version {
        /// the machine to show
        #[argh(positional, arg_name = "MACHINE")]
        machine: [Option<String>],
        /// show again whenever it changes
        #[argh(switch, short = 'w')]
        watch: [bool],
        /// list the machine's jobs in a table
        #[argh(switch, short = 'd')]
        detailed: [bool],
        /// print JSON instead of text
        #[argh(switch)]
        json: [bool],
    }
}

command! {
    /// Find a board or chip: where it is physically and logically, and which
    /// job holds it. Give exactly one of the forms.
    pub struct WhereIsArgs: server, color, debug, version {
        /// MACHINE X Y Z: a board by logical coordinate (also --logical, -l)
        @also("-l", "--logical")
        #[argh(switch, short = 'b')]
        board: [bool],
        /// MACHINE CABINET FRAME BOARD: a board by physical location
        #[argh(switch, short = 'p')]
        physical: [bool],
        /// MACHINE X Y: a chip in machine coordinates
        #[argh(switch, short = 'c')]
        chip: [bool],
        /// JOB_ID X Y: a chip relative to a job
        #[argh(switch, short = 'j')]
        job_chip: [bool],
        /// the board with this IP address, on MACHINE if given, else on any (v2 servers only)
        #[argh(option)]
        ip: [Option<String>],
        /// the values of the chosen form
        #[argh(positional, arg_name = "VALUE")]
        values: [Vec<String>],
        /// print JSON instead of text
        #[argh(switch)]
        json: [bool],
    }
}

command! {
    /// Show where configuration is read from and the value of every key.
    pub struct ConfigArgs: color, version {
        /// print JSON instead of text
        #[argh(switch)]
        json: [bool],
    }
}

command! {
    /// Run a virtual spalloc server (no hardware) until interrupted.
    pub struct ServeArgs: debug, color, version {
        /// machines and timings, as a TOML file (default: one 24-board machine)
        #[argh(option)]
        config: [Option<String>],
        /// address to listen on (default: from the file, else 127.0.0.1)
        #[argh(option)]
        host: [Option<String>],
        /// port to listen on (default: from the file, else 22244)
        #[argh(option, short = 'P')]
        port: [Option<u16>],
        /// keep jobs in this file across restarts
        #[argh(option)]
        state_file: [Option<String>],
        /// answer as the Python server (python) or the Java server's v1 service (java) (default: from the file, else python)
        #[argh(option)]
        dialect: [Option<spalloc::server::Dialect>],
        /// seconds a power on or off takes (default: from the file, else 2)
        #[argh(option)]
        power_delay: [Option<f64>],
        /// seconds before released boards can be reused (default: from the file, else 30)
        #[argh(option)]
        seconds_before_free: [Option<f64>],
        /// seconds between keepalive expiry checks (default: from the file, else 5)
        #[argh(option)]
        timeout_check_interval: [Option<f64>],
        /// port for the v2 (REST) service (default: from the file, else the v1 port + 1; 0 for any)
        #[argh(option)]
        v2_port: [Option<u16>],
        /// serve v2 over HTTPS with a throw-away certificate, writing the CA that clients must trust to FILE
        #[argh(option, arg_name = "FILE")]
        v2_self_signed: [Option<String>],
        /// serve only the v1 protocol
        #[argh(switch)]
        no_v2: [bool],
    }
}

/// The flags of every subcommand that talks to a server, as one value.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerFlags<'a> {
    /// `-H/--hostname`.
    pub hostname: Option<&'a str>,
    /// `-P/--port`.
    pub port: Option<u16>,
    /// `--timeout`, in seconds.
    pub timeout: Option<f64>,
    /// `--ignore-version`, or the old spelling's value, if given.
    pub ignore_version: Option<bool>,
    /// `--allow-plain-http`.
    pub allow_plain_http: bool,
}

/// What `main` and the settings read from any subcommand's flags.
pub trait Common {
    /// `--color`.
    fn colour(&self) -> ColorChoice;
    /// `-V/--version`.
    fn wants_version(&self) -> bool;
    /// `--debug`.
    fn debug(&self) -> bool;
}

/// Subcommands that talk to a server.
pub trait Server {
    /// The server flags.
    fn server_flags(&self) -> ServerFlags<'_>;
}

macro_rules! server_commands {
    ($($t:ty),*) => {$(
        impl Server for $t {
            fn server_flags(&self) -> ServerFlags<'_> {
                ServerFlags {
                    hostname: self.hostname.as_deref(),
                    port: self.port,
                    timeout: self.timeout,
                    ignore_version: match (self.ignore_version, self.ignore_version_as) {
                        (true, _) => Some(true),
                        (false, v) => v,
                    },
                    allow_plain_http: self.allow_plain_http,
                }
            }
        }
        impl Common for $t {
            fn colour(&self) -> ColorChoice { self.color }
            fn wants_version(&self) -> bool { self.version }
            fn debug(&self) -> bool { self.debug }
        }
    )*};
}
server_commands!(AllocArgs, JobArgs, PsArgs, MachineArgs, WhereIsArgs);

impl Common for ConfigArgs {
    fn colour(&self) -> ColorChoice {
        self.color
    }
    fn wants_version(&self) -> bool {
        self.version
    }
    fn debug(&self) -> bool {
        false
    }
}

impl Common for ServeArgs {
    fn colour(&self) -> ColorChoice {
        self.color
    }
    fn wants_version(&self) -> bool {
        self.version
    }
    fn debug(&self) -> bool {
        self.debug
    }
}

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

    fn specs(self) -> Vec<Spec> {
        match self {
            Sub::Alloc => AllocArgs::specs(),
            Sub::Job => JobArgs::specs(),
            Sub::Ps => PsArgs::specs(),
            Sub::Machine => MachineArgs::specs(),
            Sub::WhereIs => WhereIsArgs::specs(),
            Sub::Config => ConfigArgs::specs(),
            Sub::Serve => ServeArgs::specs(),
        }
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
    let find = |name: &str| specs.iter().find(|s| s.names.iter().any(|n| n == name));
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
                            opts.push(s.canonical.clone());
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
        let canonical = spec.canonical.clone();
        match &spec.kind {
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
            Kind::OptionalValue { .. } | Kind::SwitchWithValue { .. } => {
                let value = match attached {
                    Some(v) => Some(v),
                    None if i < args.len() && !looks_like_option(&args[i]) => {
                        i += 1;
                        Some(args[i - 1].clone())
                    }
                    None => None,
                };
                match &spec.kind {
                    // `--destroy [REASON]`: a switch plus a hidden option.
                    Kind::SwitchWithValue { into } => {
                        opts.push(canonical);
                        if let Some(v) = value {
                            opts.push(into.clone());
                            opts.push(v);
                        }
                    }
                    Kind::OptionalValue { bare } => match value.or(bare.map(str::to_owned)) {
                        Some(v) => {
                            opts.push(canonical);
                            opts.push(v);
                        }
                        None => opts.push(canonical),
                    },
                    _ => {}
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
    fn each_flag_is_spelled_as_declared() {
        let spec = |sub: Sub, name: &str| {
            sub.specs()
                .into_iter()
                .find(|s| s.names.iter().any(|n| n == name))
        };
        let tags = spec(Sub::Alloc, "-t").expect("-t");
        assert_eq!(
            (tags.names, tags.canonical, tags.kind),
            (
                vec!["-t".into(), "--tags".into()],
                "--tags".into(),
                Kind::Many
            )
        );
        let virt = spec(Sub::Alloc, "--virtual").expect("--virtual");
        assert_eq!(virt.kind, Kind::Switch);
        let legacy = spec(Sub::Ps, "--ignore_version").expect("--ignore_version");
        assert_eq!(
            (legacy.names, legacy.canonical, legacy.kind),
            (
                vec!["--ignore_version".into()],
                "--ignore-version-as".into(),
                Kind::LegacyBool
            )
        );
        // Hidden targets and positionals have no spelling of their own.
        assert!(spec(Sub::Job, "--destroy-reason").is_none());
        assert!(spec(Sub::Ps, "--ignore-version-as").is_none());
        assert_eq!(
            spec(Sub::Job, "-D").map(|s| s.kind),
            Some(Kind::SwitchWithValue {
                into: "--destroy-reason".into()
            })
        );
        assert_eq!(
            spec(Sub::Serve, "--colour").map(|s| s.canonical),
            Some("--color".into())
        );
        // Every spelling belongs to one flag of its command.
        for sub in [
            Sub::Alloc,
            Sub::Job,
            Sub::Ps,
            Sub::Machine,
            Sub::WhereIs,
            Sub::Config,
            Sub::Serve,
        ] {
            let mut names: Vec<String> = sub.specs().into_iter().flat_map(|s| s.names).collect();
            let all = names.len();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), all, "{sub:?}: a spelling is used twice");
        }
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
        assert_eq!(parsed.server_flags().ignore_version, Some(false));
    }
}
