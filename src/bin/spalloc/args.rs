//! Command-line syntax: the argh structures of every subcommand, each flag
//! declared once, and the parsing of the Python tools' argparse-style
//! command lines into what argh reads.
//!
//! argh parses one value per option, no `--opt=value`, no abbreviations, no
//! repeated options, no optional values and no "rest of the line" options,
//! all of which the Python tools' users rely on (`--own me`, `--port 1
//! --port 2`, `-m` with or without a machine, `-t a b c`, `-c cmd args…`,
//! `--destroy [REASON]`, `--ignore_version [VALUE]`, negative chip
//! coordinates). [`normalise`] reads such a command line as argparse would,
//! reports what argparse would report in its words, and rewrites the rest
//! into the canonical form argh understands, so the structures stay plain
//! and argh still provides the typing of values.
//!
//! Everything about a flag comes from one declaration: the `command!` macro
//! turns each field into the argh field (its type in brackets, so that argh
//! sees it as written) and into the [`Spec`] (or [`Positional`]) of the
//! command's [`Syntax`], from which [`normalise`] parses and the help, the
//! man page and the shell completions are written. A field's doc comment
//! is its help; its argh attribute gives its kind, long name, short letter
//! and value name (`arg_name`); markers before it give what argh cannot
//! hold:
//!
//! * `@also("-l", "--logical")`: more spellings of the same flag;
//! * `@many`: several values, up to the next option or integer (`-t a b`);
//! * `@rest`: every later token (`-c cmd args…`);
//! * `@optional("")`: the value may be left out, standing for `""`;
//! * `@value_in(field)`: a switch whose optional value goes to `field`;
//! * `@bool_in(field)`: a switch that also takes `=BOOL`, which goes to
//!   `field`;
//! * `@legacy("--ignore_version")`: an old boolean spelling whose optional
//!   value (`yes`, `False`, …) goes to this (hidden) field;
//! * `@values("MACHINE", "X", "Y")`: a switch followed by exactly these
//!   values, which go to the `@fed` positional;
//! * `@fed`: a positional filled only by `@values` flags;
//! * `@required`: an `Option` positional that must be given (checked after
//!   `-V`, as argparse does);
//! * `@metavar("NAME")`: the value name of a switch-declared flag;
//! * `@choices("a", "b")`: the values a flag or positional accepts;
//! * `@dest(field)`: the field the flag really sets, when two flags set one
//!   (`-w`/`-W`): the last given wins;
//! * `@either(group)` / `@one_of(group)`: at most / exactly one flag of the
//!   group;
//! * `@unlisted`: a member of its group left out of the "one of the
//!   arguments … is required" message (a form the Python tool lacks, so
//!   that the message stays its own);
//! * `@section(server)`: listed under "server options".

use argh::FromArgs;

use crate::render::ColorChoice;

/// How an option consumes the tokens after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Switch,
    /// A switch that also takes `=BOOL`, which goes to another (hidden)
    /// option.
    BoolSwitch {
        into: String,
    },
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
    /// Exactly this many values, which go to the positionals (where-is).
    Fixed(usize),
    /// Exactly this many values, which go to the flag's own list (job
    /// `--board X Y Z`).
    Tuple(usize),
    /// The old `--ignore_version [BOOL]`.
    LegacyBool,
}

impl Kind {
    /// Whether the flag takes no value of its own.
    pub fn is_switch(&self) -> bool {
        matches!(self, Kind::Switch | Kind::BoolSwitch { .. })
    }
}

/// Where a flag is listed in the help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Section {
    /// The subcommand's own and the common flags.
    #[default]
    Options,
    /// The flags naming and reaching the server.
    Server,
}

/// A group of flags of which at most one, or exactly one, may be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exclusive {
    pub group: &'static str,
    pub required: bool,
}

/// One flag, as parsing, help and completion see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Every spelling, short ones first: `-b`, `-l`, `--board`, `--logical`.
    pub names: Vec<String>,
    /// The spelling argh reads.
    pub canonical: String,
    /// How argparse names the flag in messages: every spelling, long name
    /// first, joined by `/` (`--port/-P`).
    pub argparse_name: String,
    pub kind: Kind,
    /// The field the flag sets; of several flags setting one field, the
    /// last given wins.
    pub dest: String,
    /// One-line help.
    pub help: String,
    /// The value names: `JOB_ID`, or `MACHINE X Y Z`.
    pub metavar: Vec<String>,
    /// The values accepted, if only a few are.
    pub choices: Vec<&'static str>,
    /// Accepted, but not shown in help, usage or completions.
    pub hidden: bool,
    pub section: Section,
    pub exclusive: Option<Exclusive>,
    /// Left out of the message for a missing required group.
    pub unlisted: bool,
}

impl Spec {
    /// `-h/--help`, which every subcommand has.
    fn help() -> Spec {
        Spec {
            names: vec!["-h".into(), "--help".into()],
            canonical: "--help".into(),
            argparse_name: "-h/--help".into(),
            kind: Kind::Switch,
            dest: "help".into(),
            help: "show this help and exit".into(),
            metavar: Vec::new(),
            choices: Vec::new(),
            hidden: false,
            section: Section::Options,
            exclusive: None,
            unlisted: false,
        }
    }

    /// Whether this is `-h/--help`.
    pub fn is_help(&self) -> bool {
        self.dest == "help"
    }

    /// The short spelling, if any.
    pub fn short(&self) -> Option<&str> {
        self.names
            .iter()
            .map(String::as_str)
            .find(|n| !n.starts_with("--"))
    }

    /// The spellings starting with `--`.
    pub fn longs(&self) -> impl Iterator<Item = &str> {
        self.names
            .iter()
            .map(String::as_str)
            .filter(|n| n.starts_with("--"))
    }

    /// The value part of the synopsis: `JOB_ID`, `[MACHINE]`, `TAG...`,
    /// `MACHINE X Y Z`, or nothing for a switch.
    pub fn value_synopsis(&self) -> String {
        let meta = self.metavar.join(" ");
        match self.kind {
            Kind::Switch | Kind::BoolSwitch { .. } | Kind::LegacyBool => String::new(),
            Kind::Value | Kind::Fixed(_) | Kind::Tuple(_) => meta,
            Kind::OptionalValue { .. } | Kind::SwitchWithValue { .. } => format!("[{meta}]"),
            Kind::Many | Kind::Rest => format!("{meta}..."),
        }
    }
}

/// How many values a positional takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    One,
    Optional,
    Many,
    /// Filled only by the `@values` flags.
    Fed,
}

/// One positional argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Positional {
    /// Its value name, `JOB_ID`.
    pub name: String,
    /// How argparse names it in messages (the field name, `job_id`).
    pub field: String,
    pub help: String,
    pub count: Count,
    pub choices: Vec<&'static str>,
}

impl Positional {
    /// Its part of the synopsis: `JOB_ID`, `[JOB_ID]`, `[WHAT...]`.
    pub fn synopsis(&self) -> Option<String> {
        match self.count {
            Count::One => Some(self.name.clone()),
            Count::Optional => Some(format!("[{}]", self.name)),
            Count::Many => Some(format!("[{}...]", self.name)),
            Count::Fed => None,
        }
    }
}

/// A subcommand's whole syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Syntax {
    /// What the subcommand does: its structure's doc comment.
    pub about: String,
    /// Every flag, `-h/--help` first, in declaration order.
    pub flags: Vec<Spec>,
    pub positionals: Vec<Positional>,
}

/// What a `command!` field's declaration says; turned into a [`Spec`] or
/// [`Positional`] by [`FlagDecl::add_to`].
#[derive(Debug, Default)]
pub struct FlagDecl {
    pub field: &'static str,
    pub argh_kind: &'static str,
    /// The field's type, as written.
    pub ty: &'static str,
    pub help: String,
    pub short: Option<char>,
    pub long: Option<&'static str>,
    pub arg_name: Option<&'static str>,
    pub hidden: bool,
    pub also: &'static [&'static str],
    pub kind: Option<Kind>,
    /// `@value_in(field)`: the field the optional value goes to.
    pub value_in: Option<&'static str>,
    /// `@bool_in(field)`: the field `=BOOL` goes to.
    pub bool_in: Option<&'static str>,
    pub metavar: &'static [&'static str],
    pub choices: &'static [&'static str],
    pub dest: Option<&'static str>,
    pub exclusive: Option<Exclusive>,
    /// `@unlisted`.
    pub unlisted: bool,
    pub fed: bool,
    /// `@required`: an `Option` positional that must be given all the same
    /// (so that `-V` and `--help` work without it).
    pub required: bool,
    pub section: Section,
}

/// argh's long name for a field: `--min-ratio` for `min_ratio`.
fn long_name(field: &str) -> String {
    format!("--{}", field.replace('_', "-"))
}

/// A doc comment's lines as one paragraph.
pub fn doc_text(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl FlagDecl {
    /// Adds the flag or positional to `syntax`; a hidden option with no
    /// spelling of its own adds nothing.
    pub fn add_to(self, syntax: &mut Syntax) {
        if self.argh_kind == "positional" {
            let count = if self.fed {
                Count::Fed
            } else if self.required {
                Count::One
            } else if self.ty.starts_with("Vec") {
                Count::Many
            } else if self.ty.starts_with("Option") {
                Count::Optional
            } else {
                Count::One
            };
            syntax.positionals.push(Positional {
                name: self
                    .arg_name
                    .map_or_else(|| self.field.to_uppercase(), str::to_owned),
                field: self.field.to_owned(),
                help: self.help,
                count,
                choices: self.choices.to_vec(),
            });
            return;
        }
        syntax.flags.extend(self.spec());
    }

    /// The flag's [`Spec`], or `None` for a hidden option with no spelling
    /// of its own.
    pub fn spec(self) -> Option<Spec> {
        if self.argh_kind == "positional" {
            return None;
        }
        let canonical = match self.long {
            Some(long) => format!("--{long}"),
            None => long_name(self.field),
        };
        let short = self.short.map(|c| format!("-{c}"));
        let mut argparse: Vec<String> = Vec::new();
        if !self.hidden {
            argparse.push(canonical.clone());
            argparse.extend(short);
        }
        argparse.extend(self.also.iter().map(|a| (*a).to_owned()));
        if argparse.is_empty() {
            return None;
        }
        let (mut names, longs): (Vec<String>, Vec<String>) =
            argparse.iter().cloned().partition(|n| !n.starts_with("--"));
        names.extend(longs);
        let kind = match (self.kind, self.value_in, self.bool_in) {
            (_, Some(into), _) => Kind::SwitchWithValue {
                into: long_name(into),
            },
            (_, None, Some(into)) => Kind::BoolSwitch {
                into: long_name(into),
            },
            (Some(kind), None, None) => kind,
            (None, None, None) if self.argh_kind == "switch" => Kind::Switch,
            (None, None, None) => Kind::Value,
        };
        let metavar = if !self.metavar.is_empty() {
            self.metavar.iter().map(|m| (*m).to_owned()).collect()
        } else if kind.is_switch() || kind == Kind::LegacyBool {
            Vec::new()
        } else {
            vec![
                self.arg_name
                    .map_or_else(|| self.field.to_uppercase(), str::to_owned),
            ]
        };
        Some(Spec {
            names,
            argparse_name: argparse.join("/"),
            canonical,
            kind,
            dest: self.dest.unwrap_or(self.field).to_owned(),
            help: self.help,
            metavar,
            choices: self.choices.to_vec(),
            hidden: self.hidden,
            section: self.section,
            exclusive: self.exclusive,
            unlisted: self.unlisted,
        })
    }
}

/// A subcommand structure's syntax.
pub trait Declared {
    /// Its [`Syntax`].
    fn syntax() -> Syntax;
}

/// One argh attribute key of a field, as far as its spelling goes.
macro_rules! decl_key {
    ($d:ident, short = $v:literal) => {
        $d.short = Some($v);
    };
    ($d:ident, long = $v:literal) => {
        $d.long = Some($v);
    };
    ($d:ident, arg_name = $v:literal) => {
        $d.arg_name = Some($v);
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
    ($d:ident, bool_in($field:ident)) => {
        $d.bool_in = Some(stringify!($field));
    };
    ($d:ident, legacy($name:literal)) => {
        $d.kind = Some(Kind::LegacyBool);
        $d.also = &[$name];
    };
    ($d:ident, values($($name:literal),+)) => {
        $d.metavar = &[$($name),+];
        $d.kind = Some(Kind::Fixed($d.metavar.len()));
    };
    ($d:ident, tuple($($name:literal),+)) => {
        $d.metavar = &[$($name),+];
        $d.kind = Some(Kind::Tuple($d.metavar.len()));
    };
    ($d:ident, metavar($name:literal)) => {
        $d.metavar = &[$name];
    };
    ($d:ident, choices($($value:literal),+)) => {
        $d.choices = &[$($value),+];
    };
    ($d:ident, dest($field:ident)) => {
        $d.dest = Some(stringify!($field));
    };
    ($d:ident, either($group:ident)) => {
        $d.exclusive = Some(Exclusive { group: stringify!($group), required: false });
    };
    ($d:ident, one_of($group:ident)) => {
        $d.exclusive = Some(Exclusive { group: stringify!($group), required: true });
    };
    ($d:ident, fed) => {
        $d.fed = true;
    };
    ($d:ident, unlisted) => {
        $d.unlisted = true;
    };
    ($d:ident, required) => {
        $d.required = true;
    };
    ($d:ident, section(server)) => {
        $d.section = Section::Server;
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
            /// host name or IP address of the spalloc server (default: config `hostname`)
            @section(server)
            #[argh(option, short = 'H', arg_name = "HOSTNAME")]
            hostname: [Option<String>],
            /// port of the spalloc server (default: config `port`, 22244)
            @section(server)
            #[argh(option, short = 'P', arg_name = "PORT")]
            port: [Option<u16>],
            /// seconds to wait for each reply from the server; negative means no limit (default: config `timeout`, 10.0)
            @section(server)
            #[argh(option, arg_name = "SECONDS")]
            timeout: [Option<f64>],
            /// do not check the server's version (default: config `ignore_version`); also `--ignore-version=BOOL` and the old `--ignore_version [BOOL]`
            @section(server)
            @bool_in(ignore_version_as)
            #[argh(switch)]
            ignore_version: [bool],
            /// the value given to `--ignore-version=BOOL` or the old `--ignore_version` spelling
            @legacy("--ignore_version")
            @dest(ignore_version)
            #[argh(option, hidden_help)]
            ignore_version_as: [Option<bool>],
            /// v2 (http:// service URL): allow a password or token over plain HTTP to a host that is not this machine
            #[argh(switch)]
            allow_plain_http: [bool],
        ] $($rest)*);
    };
    (@group [$($doc:literal)*] $name:ident [$($fields:tt)*] color $($rest:ident)*) => {
        command!(@group [$($doc)*] $name [$($fields)*
            /// when to colour the output: auto, always or never (default: auto; auto honours NO_COLOR and TERM=dumb)
            @also("--colour")
            @choices("auto", "always", "never")
            #[argh(option, default = "ColorChoice::Auto", arg_name = "WHEN")]
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
        #[argh($kind:ident $(, $key:ident $(= $val:tt)?)*)]
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

        impl Declared for $name {
            fn syntax() -> Syntax {
                let mut syntax = Syntax {
                    about: doc_text(&[$($doc),*]),
                    flags: vec![Spec::help()],
                    positionals: Vec::new(),
                };
                $(
                    // Not every field has keys or markers to set.
                    #[allow(unused_mut)]
                    let mut d = FlagDecl {
                        field: stringify!($field),
                        argh_kind: stringify!($kind),
                        ty: stringify!($($ty)*),
                        help: doc_text(&[$($fdoc),*]),
                        ..FlagDecl::default()
                    };
                    $(decl_key!(d, $key $(= $val)?);)*
                    $(decl_marker!(d, $marker $(($($marg)*))?);)*
                    d.add_to(&mut syntax);
                )*
                syntax
            }
        }
    };
}

// The fields of each command come in the Python tool's order, so that an
// ambiguous abbreviation lists its candidates as argparse did.

command! {
    /// Request SpiNNaker boards and hold them while a command runs (or until
    /// Enter is pressed). WHAT is nothing or 1 for one board, N for at least
    /// N boards, W H for W x H triads, or X Y Z for the board at that logical
    /// coordinate.
    pub struct AllocArgs: server, color, debug, version {
        /// what to allocate: nothing or 1 for one board, N for at least N boards, W H for W x H triads, X Y Z for the board at that logical coordinate
        #[argh(positional, arg_name = "WHAT")]
        what: [Vec<String>],
        /// do not print status lines (errors are still printed)
        #[argh(switch, short = 'q')]
        quiet: [bool],
        /// keep the job when spalloc exits (it expires one keepalive later unless made with --keepalive -1)
        #[argh(switch, short = 'D')]
        no_destroy: [bool],
        /// keep the given job alive instead of creating one (allocation options are ignored)
        #[argh(option, short = 'r', arg_name = "JOB_ID")]
        resume: [Option<u64>],
        /// allocate only on this machine; a bare -m means any machine (default: config `machine`)
        @optional("")
        #[argh(option, short = 'm', arg_name = "MACHINE")]
        machine: [Option<String>],
        /// allocate only on machines with all these tags; stops at the next option or integer, so write a numeric tag as --tags=2024 (default: config `tags`, else default)
        @many
        #[argh(option, short = 't', arg_name = "TAG")]
        tags: [Vec<String>],
        /// minimum squareness of an N-board allocation (default: config `min_ratio`, 0.333)
        #[argh(option, arg_name = "RATIO")]
        min_ratio: [Option<f64>],
        /// dead boards allowed in the allocation, -1 for any (default: config `max_dead_boards`, 0)
        #[argh(option, arg_name = "NUM")]
        max_dead_boards: [Option<i64>],
        /// dead links allowed in the allocation, -1 for any (default: config `max_dead_links`, -1)
        #[argh(option, arg_name = "NUM")]
        max_dead_links: [Option<i64>],
        /// require wrap-around links (default: config `require_torus`, False)
        #[argh(switch, short = 'w')]
        require_torus: [bool],
        /// do not require wrap-around links
        @dest(require_torus)
        #[argh(switch, short = 'W')]
        no_require_torus: [bool],
        /// v2: reach the boards through local UDP tunnels (as `spalloc proxy`); addresses shown and substituted are the local ones
        #[argh(switch)]
        proxy: [bool],
        /// run COMMAND... once the boards are ready, then release them; must come last (see "the command" below)
        @rest
        @metavar("COMMAND")
        #[argh(switch, short = 'c')]
        command: [bool],
        /// who the job is for, by convention an e-mail address (default: config `owner`)
        #[argh(option, arg_name = "OWNER")]
        owner: [Option<String>],
        /// seconds the server waits for a keepalive, -1 for never (default: config `keepalive`, 60.0)
        #[argh(option, arg_name = "SECONDS")]
        keepalive: [Option<String>],
        /// seconds between reconnection attempts (default: config `reconnect_delay`, 5.0)
        #[argh(option, arg_name = "SECONDS")]
        reconnect_delay: [Option<f64>],
        /// print the allocation as one JSON line on stdout
        #[argh(switch)]
        json: [bool],
        /// WHAT is the board at CABINET FRAME BOARD (a physical position; v1 needs -m)
        #[argh(switch)]
        physical: [bool],
        /// the board with this IP address (v2 servers only)
        #[argh(option)]
        ip: [Option<String>],
        /// v2: the accounting group to charge, needed if you belong to more than one (default: config `group`)
        #[argh(option, arg_name = "GROUP")]
        group: [Option<String>],
        /// start a built-in virtual server (one 24-board machine) and allocate from it: no hardware or configuration needed
        #[argh(switch, long = "virtual")]
        virtual_server: [bool],
        /// give up if the job is not ready within SECONDS: destroy it and exit 5
        #[argh(option, arg_name = "SECONDS")]
        queue_timeout: [Option<f64>],
        /// once ready, print the allocation, leave a background keeper holding the job, and exit 0 (release with `spalloc job --destroy ID`)
        #[argh(switch)]
        detach: [bool],
    }
}

command! {
    /// Show or manage one job (by default, the owner's only live job). The
    /// actions are mutually exclusive; without one, the job is shown.
    pub struct JobArgs: server, color, debug, version {
        /// the job (default: the owner's only live job)
        #[argh(positional, arg_name = "JOB_ID")]
        job_id: [Option<u64>],
        /// the owner whose only job is meant, and named in the destroy reason (default: config `owner`)
        #[argh(option, short = 'o', arg_name = "OWNER")]
        owner: [Option<String>],
        /// show the job (the default action)
        @either(action)
        #[argh(switch, short = 'i')]
        info: [bool],
        /// show the job again whenever it changes
        @either(action)
        #[argh(switch, short = 'w')]
        watch: [bool],
        /// power the boards on, or reset them; waits until done
        @also("--reset", "-r")
        @either(action)
        #[argh(switch, short = 'p')]
        power_on: [bool],
        /// power the boards off; waits until done
        @either(action)
        #[argh(switch)]
        power_off: [bool],
        /// print the Ethernet-connected chips' IP addresses as CSV
        @either(action)
        #[argh(switch, short = 'e')]
        ethernet_ips: [bool],
        /// destroy the job, giving REASON (default: "Destroyed by OWNER"); `--destroy N` with no JOB_ID destroys job N
        @value_in(destroy_reason)
        @metavar("REASON")
        @either(action)
        #[argh(switch, short = 'D')]
        destroy: [bool],
        /// the reason given after --destroy
        #[argh(option, hidden_help)]
        destroy_reason: [Option<String>],
        /// wait until the job is ready (exit 0), destroyed (exit 1) or --ready-timeout passes (exit 5)
        @either(action)
        #[argh(switch)]
        wait_ready: [bool],
        /// report a problem with the job's boards to the server's operators, giving REASON; with --board or --chip, with that board only
        @either(action)
        #[argh(option, arg_name = "REASON")]
        report_problem: [Option<String>],
        /// with --report-problem: the board at logical coordinate X Y Z
        @tuple("X", "Y", "Z")
        #[argh(option)]
        board: [Vec<i64>],
        /// with --report-problem: the board holding the chip at X Y, counted within the job's allocation
        @tuple("X", "Y")
        #[argh(option)]
        chip: [Vec<i64>],
        /// with --wait-ready: give up after SECONDS (default: no limit)
        #[argh(option, arg_name = "SECONDS")]
        ready_timeout: [Option<f64>],
        /// keep the job alive in the foreground until Ctrl-C, SIGTERM or SIGHUP (the job is not destroyed: it expires one keepalive later) or until the job is destroyed
        @either(action)
        #[argh(switch)]
        keepalive: [bool],
        /// print JSON instead of text (info, --watch and --ethernet-ips)
        #[argh(switch)]
        json: [bool],
    }
}

command! {
    /// Reach a v2 job's boards from outside the firewall: a local UDP port
    /// on 127.0.0.1 per board, relayed through the service's proxy to the
    /// board's SCP port, plus one for booting, until Ctrl-C or the job ends.
    pub struct ProxyArgs: server, color, debug, version {
        /// the job (default: the owner's only live job)
        #[argh(positional, arg_name = "JOB_ID")]
        job_id: [Option<u64>],
        /// the owner whose only job is meant (default: config `owner`, or the v2 user)
        #[argh(option, short = 'o', arg_name = "OWNER")]
        owner: [Option<String>],
        /// print the local addresses as JSON instead of a table
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
        #[argh(option, short = 'm', arg_name = "MACHINE")]
        machine: [Option<String>],
        /// only jobs of this owner
        #[argh(option, short = 'o', arg_name = "OWNER")]
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
        /// list the machine's jobs in a table (needs MACHINE)
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
        /// a board by its logical coordinate
        @also("--logical", "-l")
        @values("MACHINE", "X", "Y", "Z")
        @one_of(form)
        #[argh(switch, short = 'b')]
        board: [bool],
        /// a board by its physical location
        @values("MACHINE", "CABINET", "FRAME", "BOARD")
        @one_of(form)
        #[argh(switch, short = 'p')]
        physical: [bool],
        /// a chip by its coordinate in the whole machine
        @values("MACHINE", "X", "Y")
        @one_of(form)
        #[argh(switch, short = 'c')]
        chip: [bool],
        /// a chip by its coordinate within a job's boards
        @values("JOB_ID", "X", "Y")
        @one_of(form)
        #[argh(switch, short = 'j')]
        job_chip: [bool],
        /// a board by its IP address, on any machine (v2 servers only)
        @values("ADDRESS")
        @one_of(form)
        @unlisted
        #[argh(switch)]
        ip: [bool],
        /// the values of the chosen form
        @fed
        #[argh(positional, arg_name = "VALUE")]
        values: [Vec<String>],
        /// print JSON instead of text
        #[argh(switch)]
        json: [bool],
    }
}

command! {
    /// Show where configuration is read from and the value of every key.
    /// Contacts no server.
    pub struct ConfigArgs: color, version {
        /// print JSON instead of text
        #[argh(switch)]
        json: [bool],
    }
}

command! {
    /// Run a virtual spalloc server (no hardware) until interrupted: the v1
    /// protocol and, on the next port up, the v2 REST service.
    pub struct ServeArgs: debug, color, version {
        /// machines and timings, as a TOML file (default: one 24-board machine)
        #[argh(option, arg_name = "FILE")]
        config: [Option<String>],
        /// address to listen on (default: from the file, else 127.0.0.1)
        #[argh(option, arg_name = "ADDRESS")]
        host: [Option<String>],
        /// port to listen on, 0 for any (default: from the file, else 22244)
        #[argh(option, short = 'P', arg_name = "PORT")]
        port: [Option<u16>],
        /// keep jobs in this file across restarts
        #[argh(option, arg_name = "FILE")]
        state_file: [Option<String>],
        /// answer as the Python server (python) or the Java server's v1 service (java) (default: from the file, else python)
        @choices("python", "java")
        #[argh(option, arg_name = "DIALECT")]
        dialect: [Option<spalloc::server::Dialect>],
        /// seconds a power on or off takes (default: from the file, else 2)
        #[argh(option, arg_name = "SECONDS")]
        power_delay: [Option<f64>],
        /// seconds before released boards can be reused (default: from the file, else 30)
        #[argh(option, arg_name = "SECONDS")]
        seconds_before_free: [Option<f64>],
        /// seconds between keepalive expiry checks (default: from the file, else 5)
        #[argh(option, arg_name = "SECONDS")]
        timeout_check_interval: [Option<f64>],
        /// port for the v2 (REST) service (default: from the file, else the v1 port + 1; 0 for any)
        #[argh(option, arg_name = "PORT")]
        v2_port: [Option<u16>],
        /// serve v2 over HTTPS with a throw-away certificate, writing the CA that clients must trust to FILE
        #[argh(option, arg_name = "FILE")]
        v2_self_signed: [Option<String>],
        /// serve only the v1 protocol
        #[argh(switch)]
        no_v2: [bool],
    }
}

command! {
    /// Print a completion script for SHELL (bash, zsh or fish) on stdout.
    pub struct CompletionsArgs: color, version {
        /// the shell: bash, zsh or fish
        @choices("bash", "zsh", "fish")
        @required
        #[argh(positional, arg_name = "SHELL")]
        shell: [Option<String>],
    }
}

command! {
    /// Print the manual page, spalloc(1), as roff on stdout: read it with
    /// `spalloc man | man -l -`.
    pub struct ManArgs: color, version {
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
server_commands!(
    AllocArgs,
    JobArgs,
    ProxyArgs,
    PsArgs,
    MachineArgs,
    WhereIsArgs
);

/// The subcommands that neither log nor talk to a server.
macro_rules! quiet_commands {
    ($($t:ty),*) => {$(
        impl Common for $t {
            fn colour(&self) -> ColorChoice { self.color }
            fn wants_version(&self) -> bool { self.version }
            fn debug(&self) -> bool { false }
        }
    )*};
}
quiet_commands!(ConfigArgs, CompletionsArgs, ManArgs);

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
    /// `proxy`
    Proxy,
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
    /// `completions`
    Completions,
    /// `man`
    Man,
}

impl Sub {
    /// Every subcommand, in the order the help lists them.
    pub const ALL: [Sub; 10] = [
        Sub::Alloc,
        Sub::Job,
        Sub::Proxy,
        Sub::Ps,
        Sub::Machine,
        Sub::WhereIs,
        Sub::Config,
        Sub::Serve,
        Sub::Completions,
        Sub::Man,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Sub::Alloc => "alloc",
            Sub::Job => "job",
            Sub::Proxy => "proxy",
            Sub::Ps => "ps",
            Sub::Machine => "machine",
            Sub::WhereIs => "where-is",
            Sub::Config => "config",
            Sub::Serve => "serve",
            Sub::Completions => "completions",
            Sub::Man => "man",
        }
    }

    /// The subcommand for a name on the command line.
    pub fn from_name(name: &str) -> Option<Sub> {
        Sub::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The Python tool it replaces, if any.
    pub fn legacy_name(self) -> Option<&'static str> {
        match self {
            Sub::Alloc => Some("spalloc"),
            Sub::Job => Some("spalloc-job"),
            Sub::Ps => Some("spalloc-ps"),
            Sub::Machine => Some("spalloc-machine"),
            Sub::WhereIs => Some("spalloc-where-is"),
            Sub::Proxy | Sub::Config | Sub::Serve | Sub::Completions | Sub::Man => None,
        }
    }

    /// The subcommand a legacy program name stands for.
    pub fn from_legacy_name(program: &str) -> Option<Sub> {
        Sub::ALL
            .into_iter()
            .filter(|s| *s != Sub::Alloc)
            .find(|s| s.legacy_name() == Some(program))
    }

    /// One line on what it does, for the list of commands.
    pub fn summary(self) -> &'static str {
        match self {
            Sub::Alloc => "request boards and hold them while a command runs",
            Sub::Job => "show or manage one job",
            Sub::Proxy => "reach a v2 job's boards through local UDP ports",
            Sub::Ps => "list the live jobs",
            Sub::Machine => "summarise the machines, or show one",
            Sub::WhereIs => "find a board or chip",
            Sub::Config => "show the configuration files and values",
            Sub::Serve => "run a virtual spalloc server, no hardware needed",
            Sub::Completions => "print a shell completion script",
            Sub::Man => "print the manual page",
        }
    }

    /// Its flags and positionals.
    pub fn syntax(self) -> Syntax {
        match self {
            Sub::Alloc => AllocArgs::syntax(),
            Sub::Job => JobArgs::syntax(),
            Sub::Proxy => ProxyArgs::syntax(),
            Sub::Ps => PsArgs::syntax(),
            Sub::Machine => MachineArgs::syntax(),
            Sub::WhereIs => WhereIsArgs::syntax(),
            Sub::Config => ConfigArgs::syntax(),
            Sub::Serve => ServeArgs::syntax(),
            Sub::Completions => CompletionsArgs::syntax(),
            Sub::Man => ManArgs::syntax(),
        }
    }
}

/// A command line read as argparse reads it, rewritten for argh.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Normalised {
    /// Options first, then (after `--` where needed) the positionals.
    pub argv: Vec<String>,
    /// The tokens after alloc's `-c/--command`, if it was given.
    pub command: Option<Vec<String>>,
    /// `-h/--help` was given: print the help and do nothing else.
    pub help: bool,
    /// What argparse reports only once every argument has been read, so
    /// after acting on `-V`: a missing required argument, or arguments that
    /// are not this command's.
    pub late_error: Option<String>,
    /// The values a later one overrode (`--port x` of `--port x --port
    /// 1`), each as argh reads it: argparse checks every value it is given.
    pub overridden: Vec<[String; 2]>,
}

/// How argparse reads one token.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Class {
    /// A value or a positional argument.
    Arg,
    /// One of the command's flags (by index), with any value attached to
    /// it (`--port=1`, `-P1`); `joined` when attached to a short flag
    /// without `=`, where argparse reads what follows a switch as more
    /// short flags (`-qD`).
    Flag {
        flag: usize,
        attached: Option<String>,
        joined: bool,
    },
    /// Looks like an option, but is none of this command's.
    Unknown,
}

fn is_int(tok: &str) -> bool {
    let digits = tok.strip_prefix(['-', '+']).unwrap_or(tok);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A negative number, read as a value: argparse's `-5`, `-.5`, `-1.5`,
/// and also what argparse would refuse as an unknown option though no flag
/// is spelled so, `-1e-3` and `-inf` (any value a duration flag takes).
fn is_negative_number(tok: &str) -> bool {
    tok.strip_prefix('-')
        .is_some_and(|n| !n.is_empty() && n.parse::<f64>().is_ok())
}

fn parse_bool_word(tok: &str) -> Option<bool> {
    match tok.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" | "" => Some(false),
        _ => None,
    }
}

/// The flag spelled exactly `name`.
fn exact(flags: &[Spec], name: &str) -> Option<usize> {
    flags.iter().position(|f| f.names.iter().any(|n| n == name))
}

/// Reads one token as argparse does: a flag spelled out, a flag with an
/// attached value, an unambiguous abbreviation of a long flag, a short
/// flag with more after it, a negative number, or anything else.
fn classify(flags: &[Spec], tok: &str) -> Result<Class, String> {
    if !tok.starts_with('-') || tok == "-" {
        return Ok(Class::Arg);
    }
    if tok == "--" {
        return Ok(Class::Unknown);
    }
    let flag = |flag, attached: Option<&str>, joined| Class::Flag {
        flag,
        attached: attached.map(str::to_owned),
        joined,
    };
    if let Some(f) = exact(flags, tok) {
        return Ok(flag(f, None, false));
    }
    if let Some((name, value)) = tok.split_once('=')
        && let Some(f) = exact(flags, name)
    {
        return Ok(flag(f, Some(value), false));
    }
    if tok.starts_with("--") {
        let (prefix, attached) = match tok.split_once('=') {
            Some((p, v)) => (p, Some(v)),
            None => (tok, None),
        };
        // Every spelling it abbreviates, in the order argparse lists them.
        let matches: Vec<(usize, &str)> = flags
            .iter()
            .enumerate()
            .flat_map(|(i, f)| f.argparse_name.split('/').map(move |n| (i, n)))
            .filter(|(_, n)| n.starts_with(prefix))
            .collect();
        let mut dests: Vec<&str> = matches
            .iter()
            .map(|(i, _)| flags[*i].dest.as_str())
            .collect();
        dests.sort_unstable();
        dests.dedup();
        match dests.as_slice() {
            [] => {}
            // Spellings of one flag (`--color`, `--colour`), or of two
            // flags setting one field (`--ignore-version`, `--ignore_version`):
            // not ambiguous. The flag taking a value reads more forms.
            [_] => {
                let f = matches
                    .iter()
                    .map(|(i, _)| *i)
                    .find(|i| !flags[*i].kind.is_switch())
                    .unwrap_or(matches[0].0);
                return Ok(flag(f, attached, false));
            }
            _ => {
                let names: Vec<&str> = matches.iter().map(|(_, n)| *n).collect();
                return Err(format!(
                    "ambiguous option: {tok} could match {}",
                    names.join(", ")
                ));
            }
        }
    } else {
        let split = tok.char_indices().nth(2).map_or(tok.len(), |(i, _)| i);
        let (short, rest) = tok.split_at(split);
        if let Some(f) = exact(flags, short) {
            return Ok(flag(f, Some(rest), true));
        }
    }
    if is_negative_number(tok) || tok.contains(' ') {
        return Ok(Class::Arg);
    }
    Ok(Class::Unknown)
}

/// One flag as given on the command line.
#[derive(Debug)]
struct Given {
    flag: usize,
    /// Its one value, if it has one.
    value: Option<String>,
    /// Its values (`-t a b`, `-b m 0 0 0`).
    values: Vec<String>,
}

/// The tokens of a command line, read left to right.
struct Tokens<'a> {
    flags: &'a [Spec],
    args: &'a [String],
    next: usize,
}

impl Tokens<'_> {
    /// The next token, if argparse would take it as a value.
    fn peek_arg(&self) -> Result<Option<&str>, String> {
        match self.args.get(self.next) {
            Some(tok) if classify(self.flags, tok)? == Class::Arg => Ok(Some(tok)),
            _ => Ok(None),
        }
    }

    fn take_arg(&mut self) -> Result<Option<String>, String> {
        let arg = self.peek_arg()?.map(str::to_owned);
        if arg.is_some() {
            self.next += 1;
        }
        Ok(arg)
    }
}

/// Reads an argparse-style command line for `sub` as argparse would, and
/// rewrites it into canonical argh form. An error is argparse's message for
/// the first thing wrong (an ambiguous abbreviation, a missing value, a
/// value given to a switch, two flags of which only one may be given).
pub fn normalise(sub: Sub, args: &[String]) -> Result<Normalised, String> {
    let syntax = sub.syntax();
    let flags = &syntax.flags;
    let mut tokens = Tokens {
        flags,
        args,
        next: 0,
    };
    let mut given: Vec<Given> = Vec::new();
    let mut positionals: Vec<(usize, String)> = Vec::new();
    let mut unknown: Vec<(usize, String)> = Vec::new();
    let mut command = None;
    'tokens: while let Some(tok) = args.get(tokens.next) {
        let at = tokens.next;
        tokens.next += 1;
        if tok == "--" {
            positionals.extend(
                args[tokens.next..]
                    .iter()
                    .cloned()
                    .enumerate()
                    .map(|(i, a)| (at + 1 + i, a)),
            );
            break;
        }
        let (mut flag, mut attached, joined) = match classify(flags, tok)? {
            Class::Arg => {
                positionals.push((at, tok.clone()));
                continue;
            }
            Class::Unknown => {
                unknown.push((at, tok.clone()));
                continue;
            }
            Class::Flag {
                flag,
                attached,
                joined,
            } => (flag, attached, joined),
        };
        loop {
            let spec = &flags[flag];
            let name = &spec.argparse_name;
            if spec.is_help() && (attached.is_none() || joined) {
                return Ok(Normalised {
                    help: true,
                    ..Normalised::default()
                });
            }
            let mut one = Given {
                flag,
                value: None,
                values: Vec::new(),
            };
            match &spec.kind {
                Kind::Switch | Kind::BoolSwitch { .. } => match attached {
                    None => {}
                    // `-qD`: more short flags.
                    Some(rest) if joined => {
                        given.push(one);
                        let mut chars = rest.chars();
                        let next = chars
                            .next()
                            .and_then(|c| exact(flags, &format!("-{c}")))
                            .ok_or_else(|| {
                                format!("argument {name}: ignored explicit argument '{rest}'")
                            })?;
                        flag = next;
                        attached = Some(chars.as_str().to_owned()).filter(|r| !r.is_empty());
                        continue;
                    }
                    Some(v) => {
                        let Kind::BoolSwitch { .. } = spec.kind else {
                            return Err(format!(
                                "argument {name}: ignored explicit argument '{v}'"
                            ));
                        };
                        let b = parse_bool_word(&v).ok_or_else(|| {
                            format!(
                                "argument {name}: invalid boolean value: '{v}' \
                                 (use yes/no, true/false, on/off or 1/0)"
                            )
                        })?;
                        one.value = Some(b.to_string());
                    }
                },
                Kind::Value => {
                    one.value = Some(match attached {
                        Some(v) => v,
                        None => tokens
                            .take_arg()?
                            .ok_or_else(|| format!("argument {name}: expected one argument"))?,
                    });
                }
                Kind::OptionalValue { bare } => {
                    one.value = match attached {
                        Some(v) => Some(v),
                        None => tokens.take_arg()?,
                    }
                    .or(bare.map(str::to_owned));
                }
                Kind::SwitchWithValue { .. } => {
                    one.value = match attached {
                        Some(v) => Some(v),
                        None => tokens.take_arg()?,
                    };
                }
                Kind::Rest => {
                    let mut rest: Vec<String> = attached.into_iter().collect();
                    rest.extend(args[tokens.next..].iter().cloned());
                    command = Some(rest);
                    given.push(one);
                    break 'tokens;
                }
                Kind::Many => match attached {
                    // `--tags=2024` is how a numeric tag is written.
                    Some(v) => one.values.push(v),
                    None => {
                        while let Some(v) = tokens.peek_arg()?.filter(|v| !is_int(v)) {
                            one.values.push(v.to_owned());
                            tokens.next += 1;
                        }
                    }
                },
                Kind::Fixed(n) | Kind::Tuple(n) => {
                    let expected = || format!("argument {name}: expected {n} arguments");
                    if attached.is_some() {
                        return Err(expected());
                    }
                    for _ in 0..*n {
                        one.values.push(tokens.take_arg()?.ok_or_else(expected)?);
                    }
                }
                Kind::LegacyBool => {
                    let b = match attached {
                        // Any other word is true, as the Python tools read it.
                        Some(v) => parse_bool_word(&v).unwrap_or(true),
                        None => match tokens.peek_arg()?.and_then(parse_bool_word) {
                            Some(b) => {
                                tokens.next += 1;
                                b
                            }
                            None => true,
                        },
                    };
                    one.value = Some(b.to_string());
                }
            }
            given.push(one);
            break;
        }
    }

    // Of a group, only one flag, however often.
    let mut chosen: Vec<(&str, &Spec)> = Vec::new();
    for g in &given {
        let spec = &flags[g.flag];
        let Some(exclusive) = spec.exclusive else {
            continue;
        };
        match chosen.iter().find(|(group, _)| *group == exclusive.group) {
            Some((_, first)) if first.dest != spec.dest => {
                return Err(format!(
                    "argument {}: not allowed with argument {}",
                    spec.argparse_name, first.argparse_name
                ));
            }
            Some(_) => {}
            None => chosen.push((exclusive.group, spec)),
        }
    }

    // Positionals beyond what the command takes are unrecognised.
    let free: Vec<&Positional> = syntax
        .positionals
        .iter()
        .filter(|p| p.count != Count::Fed)
        .collect();
    let capacity = if free.iter().any(|p| p.count == Count::Many) {
        usize::MAX
    } else {
        free.len()
    };
    if positionals.len() > capacity {
        unknown.extend(positionals.split_off(capacity));
    }
    unknown.sort_by_key(|(at, _)| *at);
    let missing: Vec<&str> = free
        .iter()
        .skip(positionals.len())
        .filter(|p| p.count == Count::One)
        .map(|p| p.name.as_str())
        .collect();
    let mut groups: Vec<Exclusive> = Vec::new();
    for g in flags.iter().filter_map(|f| f.exclusive) {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let missing_group = groups
        .iter()
        .filter(|g| g.required && !chosen.iter().any(|(c, _)| *c == g.group))
        .map(|g| {
            let names: Vec<&str> = flags
                .iter()
                .filter(|f| f.exclusive == Some(*g) && !f.unlisted)
                .map(|f| f.argparse_name.as_str())
                .collect();
            format!("one of the arguments {} is required", names.join(" "))
        })
        .next();
    let late_error = if !missing.is_empty() {
        Some(format!(
            "the following arguments are required: {}",
            missing.join(", ")
        ))
    } else if let Some(m) = missing_group {
        Some(m)
    } else if !unknown.is_empty() {
        let words: Vec<&str> = unknown.iter().map(|(_, t)| t.as_str()).collect();
        Some(format!("unrecognized arguments: {}", words.join(" ")))
    } else {
        None
    };

    // The last of a flag wins (or of flags setting one field, as `-w` and
    // `-W` do); tags add up.
    let keep = |k: usize| {
        let spec = &flags[given[k].flag];
        spec.kind == Kind::Many
            || !given[k + 1..]
                .iter()
                .any(|later| flags[later.flag].dest == spec.dest)
    };
    let mut argv: Vec<String> = Vec::new();
    let mut fed: Vec<String> = Vec::new();
    let mut overridden = Vec::new();
    for (k, g) in given.iter().enumerate() {
        if !keep(k) {
            if let (Kind::Value, Some(v)) = (&flags[g.flag].kind, &g.value) {
                overridden.push([flags[g.flag].canonical.clone(), v.clone()]);
            }
            continue;
        }
        let spec = &flags[g.flag];
        let canonical = spec.canonical.clone();
        match (&spec.kind, &g.value) {
            (Kind::Rest, _) => {}
            (Kind::BoolSwitch { into } | Kind::SwitchWithValue { into }, Some(v)) => {
                if let Kind::SwitchWithValue { .. } = spec.kind {
                    argv.push(canonical);
                }
                argv.push(into.clone());
                argv.push(v.clone());
            }
            (Kind::Many | Kind::Tuple(_), _) => {
                for v in &g.values {
                    argv.push(canonical.clone());
                    argv.push(v.clone());
                }
            }
            (Kind::Fixed(_), _) => {
                argv.push(canonical);
                fed.extend(g.values.iter().cloned());
            }
            (_, Some(v)) => {
                argv.push(canonical);
                argv.push(v.clone());
            }
            (_, None) => argv.push(canonical),
        }
    }
    fed.extend(positionals.into_iter().map(|(_, p)| p));
    if !fed.is_empty() {
        argv.push("--".into());
        argv.extend(fed);
    }
    Ok(Normalised {
        argv,
        command,
        help: false,
        late_error,
        overridden,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    fn norm(sub: Sub, line: &str) -> Normalised {
        normalise(sub, &words(line)).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn argv(sub: Sub, line: &str) -> String {
        let n = norm(sub, line);
        assert_eq!(n.late_error, None, "{line}");
        n.argv.join(" ")
    }

    fn error(sub: Sub, line: &str) -> String {
        match normalise(sub, &words(line)) {
            Err(e) => e,
            Ok(n) => n
                .late_error
                .unwrap_or_else(|| panic!("{line}: no error but {:?}", n.argv)),
        }
    }

    #[test]
    fn alloc_command_takes_the_rest() {
        let n = norm(Sub::Alloc, "3 -q -c echo {} -q --owner x --ma");
        assert_eq!(n.argv.join(" "), "--quiet -- 3");
        assert_eq!(
            n.command.map(|c| c.join(" ")),
            Some("echo {} -q --owner x --ma".into())
        );
        let n = norm(Sub::Alloc, "--command");
        assert_eq!(n.command, Some(vec![]));
        let n = norm(Sub::Alloc, "-qc true");
        assert_eq!(n.command, Some(vec!["true".to_owned()]));
    }

    #[test]
    fn machine_value_is_optional() {
        assert_eq!(argv(Sub::Alloc, "-m big 2 2"), "--machine big -- 2 2");
        assert_eq!(argv(Sub::Alloc, "-m -q"), "--machine  --quiet");
        assert_eq!(argv(Sub::Alloc, "-m"), "--machine ");
        assert_eq!(argv(Sub::Alloc, "--machine=big"), "--machine big");
        assert_eq!(argv(Sub::Alloc, "-m=big"), "--machine big");
        assert_eq!(argv(Sub::Alloc, "-m -- 3"), "--machine  -- 3");
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
        assert_eq!(argv(Sub::Alloc, "-qm big"), "--quiet --machine big");
        assert_eq!(argv(Sub::Alloc, "-qmbig"), "--quiet --machine big");
        assert_eq!(argv(Sub::Alloc, "-P=5"), "--port 5");
        assert_eq!(
            argv(Sub::Alloc, "--owner=me --keepalive -1"),
            "--owner me --keepalive -1"
        );
        assert_eq!(argv(Sub::Job, "-Ddone"), "--destroy --destroy-reason done");
        assert_eq!(
            argv(Sub::Alloc, "-qDmbig"),
            "--quiet --no-destroy --machine big"
        );
        assert_eq!(
            error(Sub::Alloc, "-qx"),
            "argument --quiet/-q: ignored explicit argument 'x'"
        );
    }

    #[test]
    fn the_last_of_an_option_wins() {
        assert_eq!(argv(Sub::Ps, "--port 1 --port 2"), "--port 2");
        assert_eq!(
            norm(Sub::Ps, "--port x -P1 --port 2").overridden,
            [["--port", "x"], ["--port", "1"]].map(|p| p.map(str::to_owned))
        );
        assert_eq!(
            argv(Sub::Ps, "-P1 -o a --port=2 -o b"),
            "--port 2 --owner b"
        );
        assert_eq!(argv(Sub::Ps, "-w --watch -w"), "--watch");
        assert_eq!(argv(Sub::Alloc, "-m a -m"), "--machine ");
        assert_eq!(
            argv(Sub::Job, "--destroy a -D b"),
            "--destroy --destroy-reason b"
        );
        assert_eq!(
            argv(Sub::WhereIs, "-b m 0 0 0 --logical n 1 1 1"),
            "--board -- n 1 1 1"
        );
        // Two flags setting one field.
        assert_eq!(argv(Sub::Alloc, "-w -W"), "--no-require-torus");
        assert_eq!(argv(Sub::Alloc, "-W 2 2 -w"), "--require-torus -- 2 2");
        assert_eq!(
            argv(Sub::Ps, "--ignore-version --ignore_version no"),
            "--ignore-version-as false"
        );
        assert_eq!(
            argv(Sub::Ps, "--ignore_version no --ignore-version"),
            "--ignore-version"
        );
    }

    #[test]
    fn unique_abbreviations_are_accepted() {
        assert_eq!(argv(Sub::Ps, "--own me --mach m"), "--owner me --machine m");
        assert_eq!(argv(Sub::Ps, "--own=me --wa"), "--owner me --watch");
        assert_eq!(
            argv(Sub::Alloc, "--keep 5 --vir"),
            "--keepalive 5 --virtual"
        );
        assert_eq!(argv(Sub::WhereIs, "--log m 0 0 0"), "--board -- m 0 0 0");
        assert_eq!(argv(Sub::Job, "--res"), "--power-on");
        // Spellings of one flag, or of one field, are not ambiguous.
        assert_eq!(argv(Sub::Ps, "--col never"), "--color never");
        assert_eq!(argv(Sub::Ps, "--ign"), "--ignore-version-as true");
        assert_eq!(argv(Sub::Ps, "--ign=no"), "--ignore-version-as false");
        assert!(norm(Sub::Ps, "--he").help);
    }

    #[test]
    fn ambiguous_abbreviations_are_refused_as_argparse_does() {
        assert_eq!(
            error(Sub::Alloc, "--ma x"),
            "ambiguous option: --ma could match --machine, --max-dead-boards, --max-dead-links"
        );
        assert_eq!(
            error(Sub::Alloc, "--max=3"),
            "ambiguous option: --max=3 could match --max-dead-boards, --max-dead-links"
        );
        assert_eq!(
            error(Sub::Ps, "--h x"),
            "ambiguous option: --h could match --help, --hostname"
        );
        assert_eq!(
            error(Sub::Job, "--po"),
            "ambiguous option: --po could match --power-on, --power-off, --port"
        );
        // Even where a value is expected.
        assert_eq!(
            error(Sub::Alloc, "--owner --ma"),
            "ambiguous option: --ma could match --machine, --max-dead-boards, --max-dead-links"
        );
    }

    #[test]
    fn values_given_with_equals() {
        assert_eq!(
            argv(Sub::Ps, "--ignore-version=yes"),
            "--ignore-version-as true"
        );
        assert_eq!(
            argv(Sub::Ps, "--ignore-version=No"),
            "--ignore-version-as false"
        );
        assert_eq!(
            error(Sub::Ps, "--ignore-version=maybe"),
            "argument --ignore-version: invalid boolean value: 'maybe' (use yes/no, true/false, on/off or 1/0)"
        );
        assert_eq!(
            error(Sub::Ps, "--watch=x"),
            "argument --watch/-w: ignored explicit argument 'x'"
        );
        assert_eq!(
            error(Sub::Ps, "-w="),
            "argument --watch/-w: ignored explicit argument ''"
        );
        assert_eq!(argv(Sub::Ps, "--owner="), "--owner ");
        assert_eq!(
            argv(Sub::Job, "--destroy=15"),
            "--destroy --destroy-reason 15"
        );
    }

    #[test]
    fn missing_and_unexpected_values() {
        assert_eq!(
            error(Sub::Job, "15 --hostname"),
            "argument --hostname/-H: expected one argument"
        );
        assert_eq!(
            error(Sub::Ps, "--owner -q"),
            "argument --owner/-o: expected one argument"
        );
        assert_eq!(
            error(Sub::Ps, "--owner --"),
            "argument --owner/-o: expected one argument"
        );
        assert_eq!(argv(Sub::Ps, "--owner -1"), "--owner -1");
        assert_eq!(argv(Sub::Ps, "--owner -.5"), "--owner -.5");
        assert_eq!(
            argv(Sub::Alloc, "--timeout -1e-3 --keepalive -inf"),
            "--timeout -1e-3 --keepalive -inf"
        );
        assert_eq!(
            error(Sub::WhereIs, "-j 15 9 -P 1"),
            "argument --job-chip/-j: expected 3 arguments"
        );
        assert_eq!(
            error(Sub::WhereIs, "--board m 1 2"),
            "argument --board/-b/--logical/-l: expected 4 arguments"
        );
    }

    #[test]
    fn unrecognised_arguments_are_reported_together_and_late() {
        let n = norm(Sub::Ps, "--frobnicate x -q --port 1");
        assert_eq!(
            n.late_error.as_deref(),
            Some("unrecognized arguments: --frobnicate x -q")
        );
        assert_eq!(n.argv.join(" "), "--port 1");
        assert_eq!(
            error(Sub::Job, "1 2 --frob"),
            "unrecognized arguments: 2 --frob"
        );
        assert_eq!(
            error(Sub::WhereIs, "-j 1 2 3 4"),
            "unrecognized arguments: 4"
        );
        // Hidden fields have no spelling of their own.
        assert_eq!(
            error(Sub::Job, "1 --destroy-reason x"),
            "unrecognized arguments: --destroy-reason x"
        );
    }

    #[test]
    fn exclusive_and_required_groups() {
        assert_eq!(
            error(Sub::Job, "-w --power-off"),
            "argument --power-off: not allowed with argument --watch/-w"
        );
        assert_eq!(argv(Sub::Job, "-w -w"), "--watch");
        assert_eq!(
            error(Sub::WhereIs, "-b m 0 0 0 -j 1 0 0"),
            "argument --job-chip/-j: not allowed with argument --board/-b/--logical/-l"
        );
        assert_eq!(
            error(Sub::WhereIs, "--json"),
            "one of the arguments --board/-b/--logical/-l --physical/-p --chip/-c --job-chip/-j is required"
        );
        assert_eq!(
            error(Sub::Completions, ""),
            "the following arguments are required: SHELL"
        );
    }

    #[test]
    fn help_wins() {
        assert!(norm(Sub::Alloc, "--frob -h").help);
        assert!(norm(Sub::Alloc, "-qh").help);
        assert!(norm(Sub::WhereIs, "--help").help);
        assert!(!norm(Sub::Alloc, "-c foo -h").help);
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
    fn each_flag_is_spelled_as_declared() {
        let spec = |sub: Sub, name: &str| {
            sub.syntax()
                .flags
                .into_iter()
                .find(|s| s.names.iter().any(|n| n == name))
        };
        let tags = spec(Sub::Alloc, "-t").expect("-t");
        assert_eq!(
            (tags.names, tags.canonical, tags.kind, tags.metavar),
            (
                vec!["-t".into(), "--tags".into()],
                "--tags".into(),
                Kind::Many,
                vec!["TAG".into()]
            )
        );
        let virt = spec(Sub::Alloc, "--virtual").expect("--virtual");
        assert_eq!(virt.kind, Kind::Switch);
        let legacy = spec(Sub::Ps, "--ignore_version").expect("--ignore_version");
        assert_eq!(
            (legacy.names, legacy.canonical, legacy.kind, legacy.hidden),
            (
                vec!["--ignore_version".into()],
                "--ignore-version-as".into(),
                Kind::LegacyBool,
                true
            )
        );
        // Hidden targets and positionals have no spelling of their own.
        assert!(spec(Sub::Job, "--destroy-reason").is_none());
        assert!(spec(Sub::Ps, "--ignore-version-as").is_none());
        assert_eq!(
            spec(Sub::Job, "-D").map(|s| (s.kind, s.metavar)),
            Some((
                Kind::SwitchWithValue {
                    into: "--destroy-reason".into()
                },
                vec!["REASON".into()]
            ))
        );
        assert_eq!(
            spec(Sub::Serve, "--colour").map(|s| (s.canonical, s.argparse_name)),
            Some(("--color".into(), "--color/--colour".into()))
        );
        let board = spec(Sub::WhereIs, "-l").expect("-l");
        assert_eq!(
            (board.names.join(" "), board.kind, board.metavar.join(" ")),
            (
                "-b -l --board --logical".into(),
                Kind::Fixed(4),
                "MACHINE X Y Z".into()
            )
        );
        let job = JobArgs::syntax();
        assert_eq!(job.positionals[0].name, "JOB_ID");
        assert_eq!(job.positionals[0].count, Count::Optional);
        assert_eq!(WhereIsArgs::syntax().positionals[0].count, Count::Fed);
        // Every spelling belongs to one flag of its command.
        for sub in Sub::ALL {
            let mut names: Vec<String> = sub
                .syntax()
                .flags
                .into_iter()
                .flat_map(|s| s.names)
                .collect();
            let all = names.len();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), all, "{sub:?}: a spelling is used twice");
        }
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
        // Every command accepts each of its flags as rewritten.
        for sub in Sub::ALL {
            for spec in sub.syntax().flags.iter().filter(|s| !s.is_help()) {
                let mut line = vec![spec.names[0].clone()];
                line.extend(spec.metavar.iter().map(|_| "1".to_owned()));
                if let Some(c) = spec.choices.first() {
                    line.truncate(1);
                    line.push((*c).to_owned());
                }
                let n = normalise(sub, &line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
                let refs: Vec<&str> = n.argv.iter().map(String::as_str).collect();
                let parsed = match sub {
                    Sub::Alloc => AllocArgs::from_args(&["p"], &refs).map(|_| ()),
                    Sub::Job => JobArgs::from_args(&["p"], &refs).map(|_| ()),
                    Sub::Proxy => ProxyArgs::from_args(&["p"], &refs).map(|_| ()),
                    Sub::Ps => PsArgs::from_args(&["p"], &refs).map(|_| ()),
                    Sub::Machine => MachineArgs::from_args(&["p"], &refs).map(|_| ()),
                    Sub::WhereIs => WhereIsArgs::from_args(&["p"], &refs).map(|_| ()),
                    Sub::Config => ConfigArgs::from_args(&["p"], &refs).map(|_| ()),
                    Sub::Serve => ServeArgs::from_args(&["p"], &refs).map(|_| ()),
                    Sub::Completions => {
                        let mut refs = refs.clone();
                        refs.push("bash");
                        CompletionsArgs::from_args(&["p"], &refs).map(|_| ())
                    }
                    Sub::Man => ManArgs::from_args(&["p"], &refs).map(|_| ()),
                };
                assert!(parsed.is_ok(), "{sub:?} {line:?} -> {refs:?}: {parsed:?}");
            }
        }
    }
}
