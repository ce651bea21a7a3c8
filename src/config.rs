//! Configuration files compatible with the Python client's.
//!
//! INI files with one `[spalloc]` section are read in order (system, user,
//! current directory); a later file overrides an earlier one key by key. The
//! search path logic (`Config::load`) is separate from the parsing
//! (`Config::from_ini_str`) so the latter can be tested without touching the
//! file system. Each value remembers the file it came from, for
//! `spalloc config`.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use configparser::ini::{Ini, IniDefault};
use log::debug;

use crate::error::{Error, Result};
use crate::seconds;

/// The configuration keys, in the order the Python client documents them.
pub const KEYS: [&str; 13] = [
    "hostname",
    "owner",
    "port",
    "keepalive",
    "reconnect_delay",
    "timeout",
    "machine",
    "tags",
    "min_ratio",
    "max_dead_boards",
    "max_dead_links",
    "require_torus",
    "ignore_version",
];

/// The keys only a v2 (REST) service uses, which the Python client does
/// not know: the login name and password, a bearer token file, a private
/// certificate authority, the opt-in for passwords over plain HTTP, and
/// the accounting group jobs are charged to. `spalloc config` shows them
/// in a section of their own.
pub const V2_KEYS: [&str; 6] = [
    "user",
    "password",
    "token_file",
    "ca_file",
    "allow_plain_http",
    "group",
];

const SECTION: &str = "spalloc";

/// Settings shared by the library and the command-line tools, with the
/// Python client's defaults.
///
/// # Example
/// ```no_run
/// let config = spalloc::Config::load()?;
/// println!("server: {:?}:{}", config.hostname, config.port);
/// # Ok::<(), spalloc::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// The spalloc server. No default.
    pub hostname: Option<String>,
    /// Who jobs are for, by convention an e-mail address. No default.
    pub owner: Option<String>,
    /// The server's port. Defaults to 22244.
    pub port: u16,
    /// Keepalive interval requested for new jobs, in seconds; `None` means
    /// jobs never expire. Defaults to 60.0.
    pub keepalive: Option<f64>,
    /// Pause between reconnection attempts, in seconds. Defaults to 5.0.
    pub reconnect_delay: f64,
    /// Limit for connecting and for each reply, in seconds; `None` means
    /// wait forever. Defaults to 10.0.
    pub timeout: Option<f64>,
    /// Allocate only on this machine. Defaults to `None`.
    pub machine: Option<String>,
    /// Allocate only on machines with all these tags. Defaults to `None`.
    pub tags: Option<Vec<String>>,
    /// Minimum squareness of N-board allocations. Defaults to 0.333.
    pub min_ratio: f64,
    /// Most dead boards acceptable; `None` means any. Defaults to 0.
    pub max_dead_boards: Option<u32>,
    /// Most dead links acceptable; `None` means any. Defaults to `None`.
    pub max_dead_links: Option<u32>,
    /// Require wrap-around links. Defaults to `false`.
    pub require_torus: bool,
    /// Skip the server version check (command-line tools). Defaults to
    /// `false`.
    pub ignore_version: bool,
    /// v2: the login name. No default.
    pub user: Option<String>,
    /// v2: the password. No default. Keep it out of files others may read;
    /// `SPALLOC_PASSWORD` is usually better.
    pub password: Option<String>,
    /// v2: a file holding a bearer token, which only its owner may read.
    /// A relative path is taken from the configuration file's directory.
    /// No default.
    pub token_file: Option<PathBuf>,
    /// v2: a PEM file of certificate authorities to trust besides the
    /// usual ones. A relative path is taken from the configuration file's
    /// directory. No default.
    pub ca_file: Option<PathBuf>,
    /// v2: allow a password or token over plain `http://` to another host.
    /// Defaults to `false`.
    pub allow_plain_http: bool,
    /// v2: the accounting group to charge jobs to, needed by a user who
    /// belongs to more than one. No default (the user's only group).
    pub group: Option<String>,
    sources: [Option<PathBuf>; KEYS.len() + V2_KEYS.len()],
    files: Vec<ConfigFile>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hostname: None,
            owner: None,
            port: crate::client::DEFAULT_PORT,
            keepalive: Some(60.0),
            reconnect_delay: 5.0,
            timeout: Some(10.0),
            machine: None,
            tags: None,
            min_ratio: 0.333,
            max_dead_boards: Some(0),
            max_dead_links: None,
            require_torus: false,
            ignore_version: false,
            user: None,
            password: None,
            token_file: None,
            ca_file: None,
            allow_plain_http: false,
            group: None,
            sources: Default::default(),
            files: Vec::new(),
        }
    }
}

/// A file on the search path and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigFile {
    /// The path, as searched.
    pub path: PathBuf,
    /// What was found there.
    pub status: FileStatus,
}

/// Whether a configuration file was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    /// It was read.
    Read,
    /// There is no such file.
    NotFound,
    /// Something other than a file (e.g. a directory) is there; skipped.
    NotAFile,
}

/// A configuration value, typed, for display by `spalloc config`.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    /// A string, or unset.
    Str(Option<String>),
    /// An integer, or `None`.
    Int(Option<i64>),
    /// A float, or `None`.
    Float(Option<f64>),
    /// A boolean.
    Bool(bool),
    /// A list of strings, or `None`.
    List(Option<Vec<String>>),
}

/// One key's effective value and where it came from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConfigEntry {
    /// The key.
    pub key: &'static str,
    /// Its effective value.
    pub value: ConfigValue,
    /// The file that set it, or `None` for the built-in default.
    pub source: Option<PathBuf>,
}

impl Config {
    /// The files the Python client reads, lowest priority first: the system
    /// file, the user file (both named `spalloc`, in the platform's
    /// configuration directories) and `./.spalloc`.
    pub fn search_path() -> Vec<PathBuf> {
        let mut paths = Vec::with_capacity(3);
        if let Some(system) = system_config_dir() {
            paths.push(system.join("spalloc"));
        }
        if let Some(user) = user_config_dir() {
            paths.push(user.join("spalloc"));
        }
        paths.push(PathBuf::from("./.spalloc"));
        paths
    }

    /// Reads the files on [`search_path`](Self::search_path) over the
    /// defaults. Missing files are skipped.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file (and key) for an unreadable file, a
    /// file that cannot be parsed, or a bad value.
    pub fn load() -> Result<Config> {
        Config::from_files(Config::search_path())
    }

    /// Reads the given files, in order, over the defaults. An empty list
    /// gives the defaults. Missing files are skipped.
    ///
    /// # Errors
    /// As for [`load`](Self::load).
    pub fn from_files<P: AsRef<Path>>(paths: impl IntoIterator<Item = P>) -> Result<Config> {
        let mut config = Config::default();
        for path in paths {
            config.merge_file(path.as_ref())?;
        }
        Ok(config)
    }

    /// Parses INI text over the defaults; `origin` names the text in errors
    /// and in [`entries`](Self::entries).
    ///
    /// # Errors
    /// [`Error::Config`] for text that cannot be parsed or a bad value.
    pub fn from_ini_str(text: &str, origin: impl AsRef<Path>) -> Result<Config> {
        let mut config = Config::default();
        config.merge_str(text, origin.as_ref())?;
        Ok(config)
    }

    /// Reads one more file over this configuration. A missing file is
    /// skipped.
    ///
    /// # Errors
    /// As for [`load`](Self::load).
    pub fn merge_file(&mut self, path: &Path) -> Result<()> {
        let error = |message: String| Error::Config {
            path: path.to_owned(),
            key: None,
            message,
        };
        let status = match std::fs::read(path) {
            Ok(bytes) => {
                let text =
                    String::from_utf8(bytes).map_err(|_| error("not valid UTF-8 text".into()))?;
                self.merge_str(&text, path)?;
                FileStatus::Read
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => FileStatus::NotFound,
            Err(e) if e.kind() == io::ErrorKind::IsADirectory || path.is_dir() => {
                FileStatus::NotAFile
            }
            Err(e) => return Err(error(format!("cannot read: {}", crate::error::plain(&e)))),
        };
        debug!("config file {}: {status:?}", path.display());
        self.files.push(ConfigFile {
            path: path.to_owned(),
            status,
        });
        Ok(())
    }

    fn merge_str(&mut self, text: &str, origin: &Path) -> Result<()> {
        check_syntax(text).map_err(|message| Error::Config {
            path: origin.to_owned(),
            key: None,
            message,
        })?;
        // Python's configparser: section names are case-sensitive, keys are
        // not (we fold them ourselves), no inline comments, indented lines
        // continue a value.
        let mut defaults = IniDefault::default();
        defaults.default_section = "DEFAULT".into();
        defaults.comment_symbols = vec![';', '#'];
        defaults.delimiters = vec!['=', ':'];
        defaults.case_sensitive = true;
        defaults.multiline = true;
        defaults.enable_inline_comments = false;
        let mut ini = Ini::new_from_defaults(defaults);
        let sections = ini.read(text.to_owned()).map_err(|message| Error::Config {
            path: origin.to_owned(),
            key: None,
            // The parser's message may quote a line of any length.
            message: match message.char_indices().nth(200) {
                Some((at, _)) => format!("{}…", &message[..at]),
                None => message,
            },
        })?;
        // `[DEFAULT]` supplies fallbacks for every section, as in Python.
        let mut values: Vec<(String, Option<String>)> = Vec::new();
        for name in ["DEFAULT", SECTION] {
            if let Some(section) = sections.get(name) {
                for (key, value) in section {
                    let key = key.to_lowercase();
                    values.retain(|(k, _)| *k != key);
                    values.push((key, value.clone()));
                }
            }
        }
        let raw: Vec<(String, Option<String>)> = values.clone();
        for (key, value) in values {
            let Some(index) = key_index(&key) else {
                debug!("{}: ignoring unknown key '{key}'", origin.display());
                continue;
            };
            let err = |message: String| Error::Config {
                path: origin.to_owned(),
                key: Some(key.clone()),
                message,
            };
            let value = value.ok_or_else(|| err("has no value (expected 'key = value')".into()))?;
            let value = interpolate(&value, &raw, 0).map_err(err)?;
            self.set(&key, &value, origin).map_err(err)?;
            self.sources[index] = Some(origin.to_owned());
        }
        Ok(())
    }

    /// Sets one key from its text, checking the value as the library and
    /// tools will use it, so that a bad value is reported here, with its
    /// file and key, rather than later by whatever uses it.
    fn set(&mut self, key: &str, raw: &str, origin: &Path) -> std::result::Result<(), String> {
        // An empty name is no name: `owner =` leaves the owner unset.
        let name = |raw: &str| (!raw.is_empty()).then(|| raw.to_owned());
        // A file named relative to the configuration file's directory.
        let file = |raw: &str| {
            (!raw.is_empty()).then(|| {
                let path = PathBuf::from(raw);
                match origin.parent() {
                    Some(dir) if path.is_relative() && origin.is_file() => dir.join(path),
                    _ => path,
                }
            })
        };
        match key {
            "hostname" => self.hostname = name(raw),
            "owner" => self.owner = name(raw),
            "port" => {
                let n = parse_int(raw)?;
                self.port = u16::try_from(n)
                    .map_err(|_| format!("expected a port number (0-65535), got {}", quote(raw)))?;
            }
            "keepalive" => self.keepalive = nullable(raw, |s| parse_seconds(s, seconds::limit))?,
            "reconnect_delay" => self.reconnect_delay = parse_seconds(raw, seconds::pause)?,
            "timeout" => self.timeout = nullable(raw, |s| parse_seconds(s, seconds::limit))?,
            "machine" => self.machine = nullable(raw, |s| Ok(name(s)))?.flatten(),
            "tags" => self.tags = nullable(raw, |s| Ok(parse_tags(s)))?.flatten(),
            "min_ratio" => {
                let ratio = parse_float(raw)?;
                if ratio.is_nan() || ratio < 0.0 {
                    return Err(format!(
                        "expected a number that is not negative, got {}",
                        quote(raw)
                    ));
                }
                self.min_ratio = ratio;
            }
            "max_dead_boards" => self.max_dead_boards = nullable(raw, parse_limit)?.flatten(),
            "max_dead_links" => self.max_dead_links = nullable(raw, parse_limit)?.flatten(),
            "require_torus" => self.require_torus = parse_bool(raw)?,
            "ignore_version" => self.ignore_version = parse_bool(raw)?,
            "user" => self.user = name(raw),
            "password" => {
                self.password = name(raw);
                warn_if_readable(origin);
            }
            "token_file" => self.token_file = file(raw),
            "ca_file" => self.ca_file = file(raw),
            "allow_plain_http" => self.allow_plain_http = parse_bool(raw)?,
            "group" => self.group = name(raw),
            _ => {}
        }
        Ok(())
    }

    /// The files that were consulted, in order, and whether each was read.
    pub fn files(&self) -> &[ConfigFile] {
        &self.files
    }

    /// The file that set `key`, or `None` if it has its built-in default (or
    /// is not a configuration key).
    pub fn source(&self, key: &str) -> Option<&Path> {
        let index = key_index(key)?;
        self.sources[index].as_deref()
    }

    /// Every v2 key, in [`V2_KEYS`] order, with its effective value (the
    /// password shown only as `(set)`) and source.
    pub fn v2_entries(&self) -> Vec<ConfigEntry> {
        V2_KEYS
            .iter()
            .enumerate()
            .map(|(i, &key)| ConfigEntry {
                key,
                value: match key {
                    "user" => ConfigValue::Str(self.user.clone()),
                    "password" => ConfigValue::Str(self.password.as_ref().map(|_| "(set)".into())),
                    "token_file" => {
                        ConfigValue::Str(self.token_file.as_ref().map(|p| p.display().to_string()))
                    }
                    "ca_file" => {
                        ConfigValue::Str(self.ca_file.as_ref().map(|p| p.display().to_string()))
                    }
                    "group" => ConfigValue::Str(self.group.clone()),
                    _ => ConfigValue::Bool(self.allow_plain_http),
                },
                source: self.sources[KEYS.len() + i].clone(),
            })
            .collect()
    }

    /// Every key, in [`KEYS`] order, with its effective value and source.
    pub fn entries(&self) -> Vec<ConfigEntry> {
        KEYS.iter()
            .enumerate()
            .map(|(i, &key)| ConfigEntry {
                key,
                value: self.value(key),
                source: self.sources[i].clone(),
            })
            .collect()
    }

    fn value(&self, key: &str) -> ConfigValue {
        match key {
            "hostname" => ConfigValue::Str(self.hostname.clone()),
            "owner" => ConfigValue::Str(self.owner.clone()),
            "port" => ConfigValue::Int(Some(i64::from(self.port))),
            "keepalive" => ConfigValue::Float(self.keepalive),
            "reconnect_delay" => ConfigValue::Float(Some(self.reconnect_delay)),
            "timeout" => ConfigValue::Float(self.timeout),
            "machine" => ConfigValue::Str(self.machine.clone()),
            "tags" => ConfigValue::List(self.tags.clone()),
            "min_ratio" => ConfigValue::Float(Some(self.min_ratio)),
            "max_dead_boards" => ConfigValue::Int(self.max_dead_boards.map(i64::from)),
            "max_dead_links" => ConfigValue::Int(self.max_dead_links.map(i64::from)),
            "require_torus" => ConfigValue::Bool(self.require_torus),
            _ => ConfigValue::Bool(self.ignore_version),
        }
    }
}

impl fmt::Display for FileStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileStatus::Read => "read",
            FileStatus::NotFound => "not found",
            FileStatus::NotAFile => "not a file",
        })
    }
}

/// The index of a key in the sources: the Python client's keys, then the
/// v2 ones.
fn key_index(key: &str) -> Option<usize> {
    KEYS.iter().position(|k| *k == key).or_else(|| {
        V2_KEYS
            .iter()
            .position(|k| *k == key)
            .map(|i| KEYS.len() + i)
    })
}

/// Warns when a file holding a password may be read by other users.
fn warn_if_readable(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.is_file()
            && meta.permissions().mode() & 0o077 != 0
        {
            log::warn!(
                "{} holds a password and others may read it: make it private (chmod 600), \
                 or use SPALLOC_PASSWORD",
                path.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Python's `ConfigParser` interpolation, which the Python client's files
/// are written for: `%%` is a literal `%`, and `%(key)s` is the value of
/// another key in the same section (or `[DEFAULT]`).
fn interpolate(
    value: &str,
    keys: &[(String, Option<String>)],
    depth: usize,
) -> std::result::Result<String, String> {
    // Python's own limit on nested references.
    const MAX_DEPTH: usize = 10;
    if !value.contains('%') {
        return Ok(value.to_owned());
    }
    if depth >= MAX_DEPTH {
        return Err(format!(
            "'%(…)s' references nest more than {MAX_DEPTH} deep"
        ));
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("%%") {
            out.push('%');
            rest = after;
        } else if let Some((name, after)) = rest.strip_prefix("%(").and_then(|r| r.split_once(")s"))
        {
            let name = name.to_lowercase();
            let target = keys
                .iter()
                .find(|(k, _)| *k == name)
                .and_then(|(_, v)| v.as_deref())
                .ok_or_else(|| format!("'%({name})s' refers to a key that is not set"))?;
            out.push_str(&interpolate(target, keys, depth + 1)?);
            rest = after;
        } else {
            return Err(
                "'%' must be followed by '%' or '(key)s' (write '%%' for a literal '%')".into(),
            );
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Rejects what Python's configparser rejects and the `configparser` crate
/// would quietly accept: settings before any `[section]` header, and lines
/// that are neither a header, a `key = value` (or `key: value`) pair, a
/// comment, nor an indented continuation of the previous value.
fn check_syntax(text: &str) -> std::result::Result<(), String> {
    let mut in_section = false;
    // Indentation of the line that started the current value, if any.
    let mut value_indent: Option<usize> = None;
    for (number, raw) in (1..).zip(text.lines()) {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let indent = raw.len() - raw.trim_start().len();
        if value_indent.is_some_and(|v| indent > v) {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') && line.len() > 2 {
            in_section = true;
            value_indent = None;
            continue;
        }
        if !in_section {
            return Err(format!(
                "line {number}: {} comes before any [section] header",
                quote(line)
            ));
        }
        if !line.contains(['=', ':']) {
            return Err(format!(
                "line {number}: expected 'key = value', got {}",
                quote(line)
            ));
        }
        value_indent = Some(indent);
    }
    Ok(())
}

/// The exact, case-sensitive `None` means "no value", as in the Python
/// client, for the keys that allow it.
fn nullable<T>(
    raw: &str,
    parse: impl Fn(&str) -> std::result::Result<T, String>,
) -> std::result::Result<Option<T>, String> {
    if raw == "None" {
        Ok(None)
    } else {
        parse(raw).map(Some)
    }
}

/// Input quoted in an error message, cut short if long: a file may hold
/// a line of any length, and the message needs only its start.
fn quote(raw: &str) -> String {
    const KEEP: usize = 60;
    match raw.char_indices().nth(KEEP) {
        Some((at, _)) => format!("'{}…' ({} bytes)", &raw[..at], raw.len()),
        None => format!("'{raw}'"),
    }
}

fn parse_int(raw: &str) -> std::result::Result<i64, String> {
    let digits = raw.replace('_', "");
    digits
        .parse::<i64>()
        .map_err(|_| format!("expected an integer, got {}", quote(raw)))
}

fn parse_float(raw: &str) -> std::result::Result<f64, String> {
    raw.replace('_', "")
        .parse::<f64>()
        .map_err(|_| format!("expected a number, got {}", quote(raw)))
}

/// A number of seconds, checked by one of the rules of [`crate::seconds`]
/// but kept as written.
fn parse_seconds<T>(
    raw: &str,
    rule: fn(f64) -> std::result::Result<T, seconds::SecondsError>,
) -> std::result::Result<f64, String> {
    let secs = parse_float(raw)?;
    rule(secs).map_err(|e| e.to_string())?;
    Ok(secs)
}

/// A count where a negative number (conventionally -1) means "no limit".
fn parse_limit(raw: &str) -> std::result::Result<Option<u32>, String> {
    let n = parse_int(raw)?;
    if n < 0 {
        return Ok(None);
    }
    u32::try_from(n)
        .map(Some)
        .map_err(|_| format!("expected a count, got {}", quote(raw)))
}

/// Comma-separated, each item trimmed; an empty value means unset.
fn parse_tags(raw: &str) -> Option<Vec<String>> {
    let tags: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    (!tags.is_empty()).then_some(tags)
}

fn parse_bool(raw: &str) -> std::result::Result<bool, String> {
    match raw.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Ok(true),
        "0" | "no" | "false" | "off" => Ok(false),
        _ => Err(format!(
            "expected a boolean (yes/no, true/false, on/off, 1/0), got {}",
            quote(raw)
        )),
    }
}

#[cfg(target_os = "macos")]
fn system_config_dir() -> Option<PathBuf> {
    Some(PathBuf::from("/Library/Application Support"))
}

#[cfg(target_os = "macos")]
fn user_config_dir() -> Option<PathBuf> {
    dirs::config_dir()
}

#[cfg(windows)]
fn system_config_dir() -> Option<PathBuf> {
    std::env::var_os("ProgramData").map(|d| PathBuf::from(d).join("spalloc"))
}

#[cfg(windows)]
fn user_config_dir() -> Option<PathBuf> {
    dirs::data_local_dir().map(|d| d.join("spalloc"))
}

/// The first entry of `$XDG_CONFIG_DIRS`, or `/etc/xdg`, as Python's
/// `appdirs.site_config_dir` computes it.
#[cfg(not(any(target_os = "macos", windows)))]
fn system_config_dir() -> Option<PathBuf> {
    let dirs = std::env::var("XDG_CONFIG_DIRS").unwrap_or_default();
    let first = dirs.split(':').next().unwrap_or_default().trim();
    Some(PathBuf::from(if first.is_empty() {
        "/etc/xdg"
    } else {
        first
    }))
}

#[cfg(not(any(target_os = "macos", windows)))]
fn user_config_dir() -> Option<PathBuf> {
    dirs::config_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::from_ini_str(text, "test.ini")
    }

    #[test]
    fn defaults_match_python_client() {
        let c = Config::default();
        assert_eq!(c.port, 22244);
        assert_eq!(c.keepalive, Some(60.0));
        assert_eq!(c.reconnect_delay, 5.0);
        assert_eq!(c.timeout, Some(10.0));
        assert_eq!(c.min_ratio, 0.333);
        assert_eq!(c.max_dead_boards, Some(0));
        assert_eq!(c.max_dead_links, None);
        assert!(!c.require_torus && !c.ignore_version);
        assert_eq!(
            (c.hostname, c.owner, c.machine, c.tags),
            (None, None, None, None)
        );
    }

    #[test]
    fn reads_every_key() -> Result<()> {
        let c = parse(
            "[spalloc]\nhostname = spalloc.example.org\nowner: me@example.org\nPORT = 1234\n\
             keepalive = 30\nreconnect_delay = 1.5\ntimeout = 2.5\nmachine = big\n\
             tags = a, b ,c\nmin_ratio = 0.5\nmax_dead_boards = 2\nmax_dead_links = 3\n\
             require_torus = Yes\nignore_version = on\n",
        )?;
        assert_eq!(c.hostname.as_deref(), Some("spalloc.example.org"));
        assert_eq!(c.owner.as_deref(), Some("me@example.org"));
        assert_eq!(c.port, 1234);
        assert_eq!(c.keepalive, Some(30.0));
        assert_eq!(c.reconnect_delay, 1.5);
        assert_eq!(c.timeout, Some(2.5));
        assert_eq!(c.machine.as_deref(), Some("big"));
        assert_eq!(c.tags, Some(vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(c.min_ratio, 0.5);
        assert_eq!(c.max_dead_boards, Some(2));
        assert_eq!(c.max_dead_links, Some(3));
        assert!(c.require_torus && c.ignore_version);
        assert_eq!(c.source("port"), Some(Path::new("test.ini")));
        assert_eq!(c.source("nonsense"), None);
        Ok(())
    }

    #[test]
    fn none_spelling_is_exact() -> Result<()> {
        let c = parse(
            "[spalloc]\nkeepalive = None\ntimeout = None\nmax_dead_boards = None\nhostname = None\nowner = None\nmachine = None\n",
        )?;
        assert_eq!(c.keepalive, None);
        assert_eq!(c.timeout, None);
        assert_eq!(c.max_dead_boards, None);
        assert_eq!(c.machine, None);
        // For hostname and owner, "None" is just a name.
        assert_eq!(c.hostname.as_deref(), Some("None"));
        assert_eq!(c.owner.as_deref(), Some("None"));
        let err = parse("[spalloc]\nkeepalive = none\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "test.ini: key 'keepalive': expected a number, got 'none'"
        );
        let err = parse("[spalloc]\nport = None\n").unwrap_err().to_string();
        assert_eq!(err, "test.ini: key 'port': expected an integer, got 'None'");
        Ok(())
    }

    #[test]
    fn bad_values_name_file_and_key() -> Result<()> {
        for (text, expect) in [
            (
                "[spalloc]\nport = abc\n",
                "test.ini: key 'port': expected an integer, got 'abc'",
            ),
            (
                "[spalloc]\nport = 70000\n",
                "test.ini: key 'port': expected a port number (0-65535), got '70000'",
            ),
            (
                "[spalloc]\nrequire_torus = maybe\n",
                "test.ini: key 'require_torus': expected a boolean (yes/no, true/false, on/off, 1/0), got 'maybe'",
            ),
            (
                "[spalloc]\nmin_ratio = None\n",
                "test.ini: key 'min_ratio': expected a number, got 'None'",
            ),
            (
                "[spalloc]\nmax_dead_links = 1.5\n",
                "test.ini: key 'max_dead_links': expected an integer, got '1.5'",
            ),
            (
                "[spalloc]\nowner\n",
                "test.ini: line 2: expected 'key = value', got 'owner'",
            ),
            (
                "port = 1\n[spalloc]\n",
                "test.ini: line 1: 'port = 1' comes before any [section] header",
            ),
            (
                "[spalloc]\nport = 1\ngarbage here\n",
                "test.ini: line 3: expected 'key = value', got 'garbage here'",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(matches!(err, Error::Config { .. }));
            assert_eq!(err.to_string(), expect);
        }
        let err = parse("[spalloc\nport = 1\n").unwrap_err().to_string();
        assert!(err.starts_with("test.ini: line 1"), "{err}");
        // Continuation lines, comments and blank lines are fine.
        let c = parse("# c\n\n[spalloc]\nowner = a\n  b\n; c\n")?;
        assert_eq!(c.owner.as_deref(), Some("a\nb"));
        Ok(())
    }

    #[test]
    fn syntax_follows_python_configparser() -> Result<()> {
        // Comments only on whole lines; values keep '#' and ';'.
        let c = parse("# comment\n; comment\n[spalloc]\nowner = me # not a comment\n")?;
        assert_eq!(c.owner.as_deref(), Some("me # not a comment"));
        // Other sections are ignored; [DEFAULT] supplies fallbacks.
        let c = parse("[DEFAULT]\nport = 1\nowner = d\n[other]\nport = 2\n[spalloc]\nowner = s\n")?;
        assert_eq!((c.port, c.owner.as_deref()), (1, Some("s")));
        // Section names are case-sensitive, as in Python.
        let c = parse("[SPALLOC]\nport = 3\n")?;
        assert_eq!(c.port, 22244);
        // Negative limits mean "any"; an empty tag list means unset.
        let c = parse("[spalloc]\nmax_dead_boards = -1\ntags = \n")?;
        assert_eq!((c.max_dead_boards, c.tags), (None, None));
        // Unknown keys are ignored.
        assert!(parse("[spalloc]\ncolour = blue\n").is_ok());
        Ok(())
    }

    #[test]
    fn values_are_checked_at_load() -> Result<()> {
        for (text, expect) in [
            (
                "[spalloc]\ntimeout = nan\n",
                "test.ini: key 'timeout': expected a number of seconds, got NaN",
            ),
            (
                "[spalloc]\nkeepalive = NaN\n",
                "test.ini: key 'keepalive': expected a number of seconds, got NaN",
            ),
            (
                "[spalloc]\nreconnect_delay = inf\n",
                "test.ini: key 'reconnect_delay': expected at most 1e9 seconds (about 32 years), got inf",
            ),
            (
                "[spalloc]\nmin_ratio = -1\n",
                "test.ini: key 'min_ratio': expected a number that is not negative, got '-1'",
            ),
            (
                "[spalloc]\nmin_ratio = nan\n",
                "test.ini: key 'min_ratio': expected a number that is not negative, got 'nan'",
            ),
        ] {
            assert_eq!(parse(text).unwrap_err().to_string(), expect);
        }
        // Huge and negative limits are the "no limit" spellings.
        let c = parse("[spalloc]\ntimeout = inf\nkeepalive = -1\nreconnect_delay = -2\n")?;
        assert_eq!(
            (c.timeout, c.keepalive, c.reconnect_delay),
            (Some(f64::INFINITY), Some(-1.0), -2.0)
        );
        // An empty name is no name.
        let c = parse("[spalloc]\nowner =\nhostname =\nmachine =\n")?;
        assert_eq!((c.owner, c.hostname, c.machine), (None, None, None));
        Ok(())
    }

    #[test]
    fn quoted_input_is_cut_short() {
        let long = "x".repeat(100_000);
        let err = parse(&format!("[spalloc]\nport = {long}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.len() < 200, "{err}");
        assert!(err.ends_with("…' (100000 bytes)"), "{err}");
        let err = parse(&format!("[spalloc]\n{long}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.len() < 200, "{err}");
    }

    #[test]
    fn percent_interpolation_as_in_python() -> Result<()> {
        let c = parse(
            "[DEFAULT]\nuser = bob\n[spalloc]\nowner = %(user)s@example.org\nhostname = 100%%.example.org\n",
        )?;
        assert_eq!(c.owner.as_deref(), Some("bob@example.org"));
        assert_eq!(c.hostname.as_deref(), Some("100%.example.org"));
        let c = parse("[spalloc]\nmachine = %(hostname)s\nhostname = %(owner)s\nowner = x\n")?;
        assert_eq!(c.machine.as_deref(), Some("x"));
        for (text, message) in [
            (
                "[spalloc]\nowner = 100%\n",
                "test.ini: key 'owner': '%' must be followed by '%' or '(key)s' (write '%%' for a literal '%')",
            ),
            (
                "[spalloc]\nowner = %(nobody)s\n",
                "test.ini: key 'owner': '%(nobody)s' refers to a key that is not set",
            ),
            (
                "[spalloc]\nowner = %(owner)s\n",
                "test.ini: key 'owner': '%(…)s' references nest more than 10 deep",
            ),
        ] {
            assert_eq!(parse(text).unwrap_err().to_string(), message);
        }
        Ok(())
    }

    #[test]
    fn later_files_override_key_by_key() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, "[spalloc]\nhostname = first\nport = 1\n")?;
        std::fs::write(&b, "[spalloc]\nport = 2\nowner = me\n")?;
        let missing = dir.path().join("missing");
        let c = Config::from_files([&a, &missing, &b])?;
        assert_eq!(c.hostname.as_deref(), Some("first"));
        assert_eq!(c.port, 2);
        assert_eq!(c.source("hostname"), Some(a.as_path()));
        assert_eq!(c.source("port"), Some(b.as_path()));
        assert_eq!(c.source("timeout"), None);
        let statuses: Vec<FileStatus> = c.files().iter().map(|f| f.status).collect();
        assert_eq!(
            statuses,
            [FileStatus::Read, FileStatus::NotFound, FileStatus::Read]
        );
        // A directory where a file should be is skipped, not an error.
        let c = Config::from_files([dir.path()])?;
        assert_eq!(c.files()[0].status, FileStatus::NotAFile);
        // An error names the file.
        std::fs::write(&b, "[spalloc]\ntimeout = soon\n")?;
        let err = Config::from_files([&a, &b]).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: key 'timeout': expected a number, got 'soon'",
                b.display()
            )
        );
        Ok(())
    }

    #[test]
    fn entries_list_every_key_in_order() -> Result<()> {
        let c = parse("[spalloc]\ntags = x,y\n")?;
        let entries = c.entries();
        let keys: Vec<&str> = entries.iter().map(|e| e.key).collect();
        assert_eq!(keys, KEYS);
        let tags = &entries[7];
        assert_eq!(
            tags.value,
            ConfigValue::List(Some(vec!["x".into(), "y".into()]))
        );
        assert_eq!(tags.source.as_deref(), Some(Path::new("test.ini")));
        Ok(())
    }

    #[test]
    fn search_path_ends_in_cwd() {
        let path = Config::search_path();
        assert_eq!(
            path.last().map(PathBuf::as_path),
            Some(Path::new("./.spalloc"))
        );
        assert!(path.len() == 3);
    }
}
