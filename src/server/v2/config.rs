//! Settings of the v2 (HTTP) front-end: [`V2Config`], built in code or read
//! from the `[v2]` table of the server's TOML file.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::super::config::ConfigError;

/// Settings of the v2 REST service (the Java server's `/spalloc/` API) that
/// a [`VirtualServer`](crate::server::VirtualServer) runs beside the v1
/// service when [`ServerConfig::v2`](crate::server::ServerConfig::v2) is set.
///
/// Every duration and limit has the Java server's default; tests usually
/// shorten [`wait_timeout`](Self::wait_timeout) and the keepalive bounds.
///
/// ```
/// use std::time::Duration;
/// use spalloc::server::{V2Config, V2Role, V2User};
/// let v2 = V2Config::default()
///     .users(vec![
///         V2User::new("alice", "s3cret"),
///         V2User::new("root", "toor").role(V2Role::Admin).token("root-token"),
///     ])
///     .keepalive_bounds(Duration::from_secs(1), Duration::from_secs(300));
/// assert_eq!(v2.base_path, "/spalloc/");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct V2Config {
    /// Where to listen. `None` (the default) means the v1 service's address
    /// with the next port up, or any free port when the v1 port is 0.
    pub listen: Option<SocketAddr>,
    /// The application root's path, which clients are given as
    /// `http(s)://host:port/spalloc/`. Starts and ends with `/`. Defaults
    /// to `/spalloc/`.
    pub base_path: String,
    /// Plain HTTP, or HTTPS with which certificate. Defaults to plain HTTP.
    pub tls: V2Tls,
    /// Who may log in. Defaults to one user, `test` with password `test`.
    pub users: Vec<V2User>,
    /// How long a session lives without requests. Defaults to 30 minutes.
    pub session_timeout: Duration,
    /// How long a `?wait=true` request waits for a change at most. Defaults
    /// to 30 s.
    pub wait_timeout: Duration,
    /// The shortest `keepalive-interval` a job may ask for. Defaults to 30 s.
    pub keepalive_min: Duration,
    /// The longest `keepalive-interval` a job may ask for. Defaults to 300 s.
    pub keepalive_max: Duration,
    /// Locking accounts after failed logins; `None` (the default) never
    /// locks. (The Java server means to lock after three failures for a
    /// day, but its lock is rolled back with the failed login, so in
    /// practice it never locks either.)
    pub lockout: Option<Lockout>,
    /// What the service root reports as the server's version. Defaults to
    /// `"7.4.1"`, the Java server's newest release.
    pub version: String,
    /// How many connections may be open at once; more are turned away with
    /// `503`. Defaults to 1000.
    pub max_connections: usize,
    /// The longest request head (request line and headers), in bytes.
    /// Defaults to 16 KiB.
    pub max_head: usize,
    /// The longest request body, in bytes. Defaults to 64 KiB (a create
    /// request is a few hundred bytes), which keeps a thousand connections
    /// within tens of megabytes.
    pub max_body: usize,
    /// How long a client may take to send one whole request once it has
    /// started. Defaults to 30 s.
    pub request_timeout: Duration,
    /// How long an idle connection is kept open for its next request.
    /// Defaults to 60 s.
    pub idle_timeout: Duration,
    /// How many sessions are kept at once; the least recently used
    /// (anonymous ones first) are dropped beyond this. Defaults to 10000.
    pub max_sessions: usize,
    /// Whether to run the proxy websocket (`proxy/{id}` under the
    /// application root) and the virtual boards that answer through it.
    /// Defaults to true.
    pub proxy: bool,
    /// The local UDP port a virtual board binds for its SCP port (which
    /// clients name as 17893 through the proxy), on the board's own
    /// address when that is on loopback. 0, or a port that is taken,
    /// means any free port. Defaults to 17893.
    pub board_scp_port: u16,
    /// As [`board_scp_port`](Self::board_scp_port), for the boot port
    /// (54321 to clients). Defaults to 54321.
    pub board_boot_port: u16,
    /// How many bytes may wait for a proxy client that is not reading
    /// before it is disconnected. Defaults to 512 KiB, as on the Java
    /// server.
    pub proxy_send_buffer: usize,
    /// How long one write to a proxy client may block before it is
    /// disconnected. Defaults to 10 s, as on the Java server.
    pub proxy_send_timeout: Duration,
}

impl Default for V2Config {
    fn default() -> V2Config {
        V2Config {
            listen: None,
            base_path: "/spalloc/".to_owned(),
            tls: V2Tls::Off,
            users: vec![V2User::new("test", "test")],
            session_timeout: Duration::from_secs(30 * 60),
            wait_timeout: Duration::from_secs(30),
            keepalive_min: Duration::from_secs(30),
            keepalive_max: Duration::from_secs(300),
            lockout: None,
            version: "7.4.1".to_owned(),
            max_connections: 1000,
            max_head: 16 << 10,
            max_body: 64 << 10,
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_sessions: 10_000,
            proxy: true,
            board_scp_port: 17893,
            board_boot_port: 54321,
            proxy_send_buffer: 512 << 10,
            proxy_send_timeout: Duration::from_secs(10),
        }
    }
}

impl V2Config {
    /// Sets [`listen`](Self::listen).
    pub fn listen(mut self, addr: SocketAddr) -> V2Config {
        self.listen = Some(addr);
        self
    }

    /// Sets [`base_path`](Self::base_path).
    pub fn base_path(mut self, path: impl Into<String>) -> V2Config {
        self.base_path = path.into();
        self
    }

    /// Sets [`tls`](Self::tls).
    pub fn tls(mut self, tls: V2Tls) -> V2Config {
        self.tls = tls;
        self
    }

    /// Sets [`users`](Self::users).
    pub fn users(mut self, users: Vec<V2User>) -> V2Config {
        self.users = users;
        self
    }

    /// Sets [`session_timeout`](Self::session_timeout).
    pub fn session_timeout(mut self, d: Duration) -> V2Config {
        self.session_timeout = d;
        self
    }

    /// Sets [`wait_timeout`](Self::wait_timeout).
    pub fn wait_timeout(mut self, d: Duration) -> V2Config {
        self.wait_timeout = d;
        self
    }

    /// Sets [`keepalive_min`](Self::keepalive_min) and
    /// [`keepalive_max`](Self::keepalive_max).
    pub fn keepalive_bounds(mut self, min: Duration, max: Duration) -> V2Config {
        self.keepalive_min = min;
        self.keepalive_max = max;
        self
    }

    /// Sets [`lockout`](Self::lockout).
    pub fn lockout(mut self, lockout: Option<Lockout>) -> V2Config {
        self.lockout = lockout;
        self
    }

    /// Sets [`version`](Self::version).
    pub fn version(mut self, v: impl Into<String>) -> V2Config {
        self.version = v.into();
        self
    }

    /// Sets [`max_connections`](Self::max_connections).
    pub fn max_connections(mut self, n: usize) -> V2Config {
        self.max_connections = n;
        self
    }

    /// Sets [`max_head`](Self::max_head) and [`max_body`](Self::max_body).
    pub fn max_request(mut self, head: usize, body: usize) -> V2Config {
        self.max_head = head;
        self.max_body = body;
        self
    }

    /// Sets [`request_timeout`](Self::request_timeout) and
    /// [`idle_timeout`](Self::idle_timeout).
    pub fn timeouts(mut self, request: Duration, idle: Duration) -> V2Config {
        self.request_timeout = request;
        self.idle_timeout = idle;
        self
    }

    /// Sets [`max_sessions`](Self::max_sessions).
    pub fn max_sessions(mut self, n: usize) -> V2Config {
        self.max_sessions = n;
        self
    }

    /// Sets [`proxy`](Self::proxy).
    pub fn proxy(mut self, on: bool) -> V2Config {
        self.proxy = on;
        self
    }

    /// Sets [`board_scp_port`](Self::board_scp_port) and
    /// [`board_boot_port`](Self::board_boot_port).
    pub fn board_ports(mut self, scp: u16, boot: u16) -> V2Config {
        self.board_scp_port = scp;
        self.board_boot_port = boot;
        self
    }

    /// Sets [`proxy_send_buffer`](Self::proxy_send_buffer) and
    /// [`proxy_send_timeout`](Self::proxy_send_timeout).
    pub fn proxy_send_limits(mut self, bytes: usize, timeout: Duration) -> V2Config {
        self.proxy_send_buffer = bytes;
        self.proxy_send_timeout = timeout;
        self
    }

    /// The address to listen on, given the v1 service's.
    pub(crate) fn listen_addr(&self, v1: SocketAddr) -> SocketAddr {
        self.listen.unwrap_or_else(|| match v1.port() {
            0 => SocketAddr::new(v1.ip(), 0),
            p => SocketAddr::new(v1.ip(), p.wrapping_add(1).max(1)),
        })
    }

    /// The version as (major, minor, revision), from `version`.
    pub(crate) fn version_parts(&self) -> Option<(u32, u32, u32)> {
        let core = self.version.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
        let major = parts.next()??;
        let minor = parts.next().unwrap_or(Some(0))?;
        let revision = parts.next().unwrap_or(Some(0))?;
        parts.next().is_none().then_some((major, minor, revision))
    }

    /// Checks everything the front-end relies on.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let err = |field: &str, message: String| ConfigError {
            path: None,
            field: Some(format!("v2.{field}")),
            message,
        };
        let p = &self.base_path;
        if !p.starts_with('/')
            || !p.ends_with('/')
            || p.contains("//")
            || !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b))
        {
            return Err(err(
                "base_path",
                format!(
                    "{p:?} must start and end with '/' and hold only letters, digits, '-', '.', '_', '~' and single '/'"
                ),
            ));
        }
        if p.split('/').any(|s| s == "." || s == "..") {
            return Err(err("base_path", format!("{p:?} must not hold . or ..")));
        }
        if self.users.is_empty() {
            return Err(err(
                "user",
                "at least one user is needed to use the service".into(),
            ));
        }
        let mut names = std::collections::HashSet::new();
        let mut tokens = std::collections::HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            if u.name.trim().is_empty() || u.name.chars().any(char::is_control) {
                return Err(err(
                    &format!("user[{i}].name"),
                    "must be non-blank, with no control characters".into(),
                ));
            }
            if !names.insert(u.name.as_str()) {
                return Err(err(
                    &format!("user[{i}].name"),
                    format!("user {:?} is listed twice", u.name),
                ));
            }
            if let V2Password::Hash(h) = &u.password {
                super::password::PasswordHash::parse(h)
                    .map_err(|m| err(&format!("user[{i}].password_hash"), m))?;
            }
            for (j, g) in u.groups.iter().enumerate() {
                if g.trim().is_empty() || g.chars().any(char::is_control) {
                    return Err(err(
                        &format!("user[{i}].groups[{j}]"),
                        "must be non-blank, with no control characters".into(),
                    ));
                }
            }
            for (j, t) in u.tokens.iter().enumerate() {
                if t.len() < 8 || !t.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(err(
                        &format!("user[{i}].tokens[{j}]"),
                        "a token must be at least 8 printable ASCII characters, no spaces".into(),
                    ));
                }
                if !tokens.insert(t.as_str()) {
                    // Never echo a secret, even in an error.
                    return Err(err(
                        &format!("user[{i}].tokens[{j}]"),
                        "this token is also given to another user or twice".into(),
                    ));
                }
            }
        }
        if self.keepalive_min.is_zero() || self.keepalive_min > self.keepalive_max {
            return Err(err(
                "keepalive_min",
                "must be more than 0 and at most keepalive_max".into(),
            ));
        }
        for (field, d) in [
            ("session_timeout", self.session_timeout),
            ("request_timeout", self.request_timeout),
            ("idle_timeout", self.idle_timeout),
            ("proxy_send_timeout", self.proxy_send_timeout),
        ] {
            if d.is_zero() {
                return Err(err(field, "must be more than 0".into()));
            }
        }
        for (field, n) in [
            ("max_connections", self.max_connections),
            ("max_sessions", self.max_sessions),
        ] {
            if n == 0 {
                return Err(err(field, "must be at least 1".into()));
            }
        }
        if self.proxy_send_buffer < 4096 {
            return Err(err(
                "proxy_send_buffer",
                "must be at least 4096 (a few datagrams)".into(),
            ));
        }
        if self.max_head < 1024 {
            return Err(err("max_head", "must be at least 1024".into()));
        }
        if let Some(l) = &self.lockout
            && l.failures == 0
        {
            return Err(err("lockout_failures", "must be at least 1".into()));
        }
        if self.version_parts().is_none() {
            return Err(err(
                "version",
                format!("{:?} is not a version such as \"7.4.1\"", self.version),
            ));
        }
        Ok(())
    }
}

/// Whether and how the v2 service uses TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum V2Tls {
    /// Plain HTTP.
    Off,
    /// HTTPS with a certificate chain and private key from PEM files.
    Pem {
        /// The certificate chain, leaf first.
        cert: PathBuf,
        /// The private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
    /// HTTPS with a throw-away certificate for `localhost`, `127.0.0.1` and
    /// `::1`, signed by a throw-away certificate authority made at start.
    /// Clients must be told to trust that CA: its certificate (PEM) is
    /// written to `ca_file` if given, and is available from
    /// [`VirtualServer::v2_ca_pem`](crate::server::VirtualServer::v2_ca_pem).
    SelfSigned {
        /// Where to write the CA's certificate.
        ca_file: Option<PathBuf>,
    },
}

/// What a user may do, as the Java server's trust levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum V2Role {
    /// May look at machines and the job list, not create or touch jobs.
    Reader,
    /// May also create jobs and use their own (the default).
    User,
    /// May also see and use every job and create jobs for other owners.
    Admin,
}

impl V2Role {
    fn parse(s: &str) -> Option<V2Role> {
        match s {
            "reader" => Some(V2Role::Reader),
            "user" => Some(V2Role::User),
            "admin" => Some(V2Role::Admin),
            _ => None,
        }
    }
}

/// A user's password, as configured.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum V2Password {
    /// The password itself; hashed when the server starts.
    Plain(String),
    /// A PBKDF2 hash: `pbkdf2-sha256$ITERATIONS$SALT_HEX$HASH_HEX`.
    Hash(String),
}

impl fmt::Debug for V2Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            V2Password::Plain(_) => f.write_str("Plain(..)"),
            V2Password::Hash(_) => f.write_str("Hash(..)"),
        }
    }
}

/// One user of the v2 service.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct V2User {
    /// The login name, which becomes the owner of the jobs they create.
    pub name: String,
    /// The password.
    pub password: V2Password,
    /// What they may do. Defaults to [`V2Role::User`].
    pub role: V2Role,
    /// Bearer tokens that log in as this user (standing in for the Java
    /// server's EBRAINS tokens). Defaults to none.
    pub tokens: Vec<String>,
    /// The accounting groups the user belongs to. A job names one of them
    /// (`group`), or none when there is only one; with several, the
    /// service asks which, as the Java server does. Defaults to none, which
    /// here means one implicit group: any job is accepted.
    pub groups: Vec<String>,
}

impl fmt::Debug for V2User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V2User")
            .field("name", &self.name)
            .field("password", &self.password)
            .field("role", &self.role)
            .field("tokens", &format_args!("[{} hidden]", self.tokens.len()))
            .field("groups", &self.groups)
            .finish()
    }
}

impl V2User {
    /// A user with a plain-text password and role [`V2Role::User`].
    pub fn new(name: impl Into<String>, password: impl Into<String>) -> V2User {
        V2User {
            name: name.into(),
            password: V2Password::Plain(password.into()),
            role: V2Role::User,
            tokens: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// A user whose password is given as a stored hash.
    pub fn with_hash(name: impl Into<String>, hash: impl Into<String>) -> V2User {
        V2User {
            password: V2Password::Hash(hash.into()),
            ..V2User::new(name, "")
        }
    }

    /// Sets [`role`](Self::role).
    pub fn role(mut self, role: V2Role) -> V2User {
        self.role = role;
        self
    }

    /// Adds a bearer token.
    pub fn token(mut self, token: impl Into<String>) -> V2User {
        self.tokens.push(token.into());
        self
    }

    /// Adds the user to an accounting group.
    pub fn group(mut self, group: impl Into<String>) -> V2User {
        self.groups.push(group.into());
        self
    }
}

/// Locking an account after failed logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lockout {
    /// Consecutive failed logins that lock the account (at least 1). A
    /// login attempted while locked fails and extends the lock.
    pub failures: u32,
    /// How long the account stays locked after the last failure.
    pub duration: Duration,
}

impl Lockout {
    /// Locks after `failures` failed logins, for `duration`.
    pub fn new(failures: u32, duration: Duration) -> Lockout {
        Lockout { failures, duration }
    }
}

// ----- the [v2] table of the TOML file -----

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawV2 {
    enabled: Option<bool>,
    ip: Option<String>,
    port: Option<u16>,
    base_path: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    self_signed_ca: Option<PathBuf>,
    session_timeout: Option<f64>,
    wait_timeout: Option<f64>,
    keepalive_min: Option<f64>,
    keepalive_max: Option<f64>,
    lockout_failures: Option<u32>,
    lockout_duration: Option<f64>,
    version: Option<String>,
    max_connections: Option<u64>,
    max_head: Option<u64>,
    max_body: Option<u64>,
    request_timeout: Option<f64>,
    idle_timeout: Option<f64>,
    max_sessions: Option<u64>,
    proxy: Option<bool>,
    board_scp_port: Option<u16>,
    board_boot_port: Option<u16>,
    proxy_send_buffer: Option<u64>,
    proxy_send_timeout: Option<f64>,
    #[serde(default)]
    user: Option<Vec<RawUser>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: String,
    password: Option<String>,
    password_hash: Option<String>,
    role: Option<String>,
    #[serde(default)]
    tokens: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
}

impl RawV2 {
    /// The settings, or `None` when `enabled = false`. `seconds` and `size`
    /// are the caller's converters, so every file value is checked alike.
    pub(crate) fn into_config(
        self,
        v1_ip: IpAddr,
        seconds: impl Fn(&str, Option<f64>, Duration) -> Result<Duration, ConfigError>,
        size: impl Fn(&str, Option<u64>, usize) -> Result<usize, ConfigError>,
    ) -> Result<Option<V2Config>, ConfigError> {
        if self.enabled == Some(false) {
            return Ok(None);
        }
        let err = |field: &str, message: String| ConfigError {
            path: None,
            field: Some(format!("v2.{field}")),
            message,
        };
        let d = V2Config::default();
        let ip = match self.ip.as_deref() {
            None => None,
            Some("") => Some(IpAddr::from([0, 0, 0, 0])),
            Some(text) => Some(
                text.parse::<IpAddr>()
                    .map_err(|_| err("ip", format!("{text:?} is not an IP address")))?,
            ),
        };
        let listen = match (ip, self.port) {
            (None, None) => None,
            (ip, port) => Some(SocketAddr::new(ip.unwrap_or(v1_ip), port.unwrap_or(0))),
        };
        let tls = match (self.tls_cert, self.tls_key, self.self_signed_ca) {
            (None, None, None) => V2Tls::Off,
            (Some(cert), Some(key), None) => V2Tls::Pem { cert, key },
            (None, None, Some(file)) => V2Tls::SelfSigned {
                ca_file: Some(file),
            },
            (Some(_), None, None) | (None, Some(_), None) => {
                return Err(err(
                    "tls_cert",
                    "tls_cert and tls_key must be given together".into(),
                ));
            }
            _ => {
                return Err(err(
                    "self_signed_ca",
                    "cannot be combined with tls_cert and tls_key".into(),
                ));
            }
        };
        let users = match self.user {
            None => d.users.clone(),
            Some(raw) => {
                let mut users = Vec::new();
                for (i, u) in raw.into_iter().enumerate() {
                    let password = match (u.password, u.password_hash) {
                        (Some(p), None) => V2Password::Plain(p),
                        (None, Some(h)) => V2Password::Hash(h),
                        _ => {
                            return Err(err(
                                &format!("user[{i}]"),
                                "give exactly one of password and password_hash".into(),
                            ));
                        }
                    };
                    let role = match u.role.as_deref() {
                        None => V2Role::User,
                        Some(r) => V2Role::parse(r).ok_or_else(|| {
                            err(
                                &format!("user[{i}].role"),
                                format!("{r:?} is not one of \"reader\", \"user\", \"admin\""),
                            )
                        })?,
                    };
                    users.push(V2User {
                        name: u.name,
                        password,
                        role,
                        tokens: u.tokens,
                        groups: u.groups,
                    });
                }
                users
            }
        };
        let lockout = match self.lockout_failures {
            None | Some(0) => None,
            Some(failures) => Some(Lockout {
                failures,
                duration: seconds(
                    "v2.lockout_duration",
                    self.lockout_duration,
                    Duration::from_secs(24 * 3600),
                )?,
            }),
        };
        let config = V2Config {
            listen,
            base_path: self.base_path.unwrap_or(d.base_path),
            tls,
            users,
            session_timeout: seconds(
                "v2.session_timeout",
                self.session_timeout,
                d.session_timeout,
            )?,
            wait_timeout: seconds("v2.wait_timeout", self.wait_timeout, d.wait_timeout)?,
            keepalive_min: seconds("v2.keepalive_min", self.keepalive_min, d.keepalive_min)?,
            keepalive_max: seconds("v2.keepalive_max", self.keepalive_max, d.keepalive_max)?,
            lockout,
            version: self.version.unwrap_or(d.version),
            max_connections: size(
                "v2.max_connections",
                self.max_connections,
                d.max_connections,
            )?,
            max_head: size("v2.max_head", self.max_head, d.max_head)?,
            max_body: size("v2.max_body", self.max_body, d.max_body)?,
            request_timeout: seconds(
                "v2.request_timeout",
                self.request_timeout,
                d.request_timeout,
            )?,
            idle_timeout: seconds("v2.idle_timeout", self.idle_timeout, d.idle_timeout)?,
            max_sessions: size("v2.max_sessions", self.max_sessions, d.max_sessions)?,
            proxy: self.proxy.unwrap_or(d.proxy),
            board_scp_port: self.board_scp_port.unwrap_or(d.board_scp_port),
            board_boot_port: self.board_boot_port.unwrap_or(d.board_boot_port),
            proxy_send_buffer: size(
                "v2.proxy_send_buffer",
                self.proxy_send_buffer,
                d.proxy_send_buffer,
            )?,
            proxy_send_timeout: seconds(
                "v2.proxy_send_timeout",
                self.proxy_send_timeout,
                d.proxy_send_timeout,
            )?,
        };
        config.validate()?;
        Ok(Some(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let u = V2User::new("alice", "hunter22").token("tok-secret-1");
        let text = format!("{u:?} {:?}", V2Config::default().users(vec![u.clone()]));
        assert!(
            !text.contains("hunter22") && !text.contains("tok-secret-1"),
            "{text}"
        );
        assert!(text.contains("alice"));
    }

    #[test]
    fn validation_names_the_field() {
        let bad = |c: V2Config| c.validate().err().and_then(|e| e.field).unwrap_or_default();
        assert_eq!(
            bad(V2Config::default().base_path("spalloc/")),
            "v2.base_path"
        );
        assert_eq!(bad(V2Config::default().base_path("/a//b/")), "v2.base_path");
        assert_eq!(bad(V2Config::default().base_path("/../")), "v2.base_path");
        assert_eq!(bad(V2Config::default().users(vec![])), "v2.user");
        assert_eq!(
            bad(V2Config::default().users(vec![V2User::new("a", "x"), V2User::new("a", "y")])),
            "v2.user[1].name"
        );
        assert_eq!(
            bad(V2Config::default().users(vec![V2User::new("a", "x").token("short")])),
            "v2.user[0].tokens[0]"
        );
        assert_eq!(
            bad(V2Config::default().users(vec![V2User::with_hash("a", "nope")])),
            "v2.user[0].password_hash"
        );
        assert_eq!(
            bad(V2Config::default()
                .keepalive_bounds(Duration::from_secs(10), Duration::from_secs(5))),
            "v2.keepalive_min"
        );
        assert_eq!(bad(V2Config::default().version("seven")), "v2.version");
        assert_eq!(
            bad(V2Config::default().proxy_send_limits(100, Duration::from_secs(1))),
            "v2.proxy_send_buffer"
        );
        assert_eq!(
            bad(V2Config::default().proxy_send_limits(1 << 20, Duration::ZERO)),
            "v2.proxy_send_timeout"
        );
        assert!(V2Config::default().base_path("/").validate().is_ok());
        assert!(V2Config::default().validate().is_ok());
    }

    #[test]
    fn every_key_of_the_v2_table() {
        let text = "[server]\nport = 5000\n[v2]\nport = 0\nbase_path = \"/x/\"\n\
            self_signed_ca = \"ca.pem\"\nsession_timeout = 60\nwait_timeout = 2.5\n\
            keepalive_min = 1\nkeepalive_max = 10\nlockout_failures = 3\n\
            lockout_duration = 7\nversion = \"7.3.0\"\nmax_connections = 9\n\
            max_head = 2048\nmax_body = 100\nrequest_timeout = 4\nidle_timeout = 5\n\
            max_sessions = 6\nproxy = false\nboard_scp_port = 0\nboard_boot_port = 1234\n\
            proxy_send_buffer = 8192\nproxy_send_timeout = 2.5\n\n[[v2.user]]\nname = \"a\"\npassword = \"p\"\n\
            role = \"admin\"\ntokens = [\"token-123456\"]\ngroups = [\"g1\", \"g2\"]\n";
        let c = crate::server::ServerConfig::from_toml_str(text);
        let v2 = match c {
            Ok(c) => c.v2.unwrap_or_default(),
            Err(e) => panic!("{e}"),
        };
        let secs = Duration::from_secs;
        assert_eq!(
            v2.listen.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:0")
        );
        assert_eq!(v2.base_path, "/x/");
        assert_eq!(
            v2.tls,
            V2Tls::SelfSigned {
                ca_file: Some("ca.pem".into())
            }
        );
        assert_eq!(
            (v2.session_timeout, v2.wait_timeout),
            (secs(60), Duration::from_millis(2500))
        );
        assert_eq!((v2.keepalive_min, v2.keepalive_max), (secs(1), secs(10)));
        assert_eq!(v2.lockout, Some(Lockout::new(3, secs(7))));
        assert_eq!(v2.version, "7.3.0");
        assert_eq!(
            (v2.max_connections, v2.max_head, v2.max_body),
            (9, 2048, 100)
        );
        assert_eq!(
            (v2.request_timeout, v2.idle_timeout, v2.max_sessions),
            (secs(4), secs(5), 6)
        );
        assert!(!v2.proxy);
        assert_eq!((v2.board_scp_port, v2.board_boot_port), (0, 1234));
        assert_eq!(
            (v2.proxy_send_buffer, v2.proxy_send_timeout),
            (8192, Duration::from_millis(2500))
        );
        assert_eq!(
            v2.users,
            vec![
                V2User::new("a", "p")
                    .role(V2Role::Admin)
                    .token("token-123456")
                    .group("g1")
                    .group("g2")
            ]
        );
        // No table: the defaults. `enabled = false`: none.
        let plain = crate::server::ServerConfig::from_toml_str("")
            .ok()
            .and_then(|c| c.v2);
        assert_eq!(plain, Some(V2Config::default()));
        let off = crate::server::ServerConfig::from_toml_str("[v2]\nenabled = false\n");
        assert!(off.is_ok_and(|c| c.v2.is_none()));
    }

    #[test]
    fn the_default_port_follows_v1() {
        let v1 = SocketAddr::from(([127, 0, 0, 1], 22244));
        assert_eq!(V2Config::default().listen_addr(v1).port(), 22245);
        let v1 = SocketAddr::from(([127, 0, 0, 1], 0));
        assert_eq!(V2Config::default().listen_addr(v1).port(), 0);
        assert_eq!(V2Config::default().version_parts(), Some((7, 4, 1)));
        assert_eq!(
            V2Config::default()
                .version("7.4.2-SNAPSHOT")
                .version_parts(),
            Some((7, 4, 2))
        );
    }
}
