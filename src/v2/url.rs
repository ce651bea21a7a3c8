//! Service URLs: parsing what the user configured, building request paths
//! under it, and checking the URLs a server hands out before following
//! them (PROTOCOL_V2.md §9: a server may name the wrong scheme, or leave a
//! path segment out).

// Without the `v2` feature only the parsing is used (to name the server).
#![cfg_attr(not(feature = "v2"), allow(dead_code))]

use std::fmt;
use std::net::IpAddr;

/// An `http://` or `https://` URL, split the way requests need it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Url {
    /// `https`.
    pub secure: bool,
    /// The host, without brackets around an IPv6 address, lower case.
    pub host: String,
    /// The port, explicit or the scheme's default.
    pub port: u16,
    /// The path from its leading `/`, with any query.
    pub path: String,
    /// A user name given as `user@`, percent-decoded.
    pub user: Option<String>,
    /// A password given as `user:password@`, percent-decoded.
    pub password: Option<String>,
}

impl fmt::Debug for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password.
        write!(f, "Url({self})")
    }
}

impl fmt::Display for Url {
    /// The URL without its user name or password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin(), self.path)
    }
}

/// Whether `text` names a v2 service: an `http://` or `https://` URL, in
/// any case (SpiNNaker's own tool chain's rule, PROTOCOL_V2.md §1.4).
pub(crate) fn is_service_url(text: &str) -> bool {
    let lower = text.trim_start().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

impl Url {
    /// Parses an absolute `http(s)://[user[:password]@]host[:port][/path][?query]`
    /// URL. A fragment is dropped.
    pub fn parse(text: &str) -> Result<Url, String> {
        let text = text.trim();
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| "expected an http:// or https:// URL".to_owned())?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            other => return Err(format!("unsupported scheme '{other}' (use http or https)")),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.chars().any(|c| c.is_control() || c == ' ') {
            return Err("the host part holds spaces or control characters".into());
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((n, p)) => (Some(decode(n)?), Some(decode(p)?)),
                None => (Some(decode(u)?), None),
            },
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| "an IPv6 address is missing its ']'".to_owned())?;
            (h, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err("the URL has no host".into());
        }
        let port = match port {
            None | Some("") => {
                if secure {
                    443
                } else {
                    80
                }
            }
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("bad port '{p}'"))?,
        };
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        if path.chars().any(|c| c.is_control() || c == ' ') {
            return Err("the path holds spaces or control characters".into());
        }
        Ok(Url {
            secure,
            host: host.to_ascii_lowercase(),
            port,
            path,
            user: user.filter(|u| !u.is_empty()),
            password,
        })
    }

    /// `scheme://host:port`, with the port only when it is not the
    /// scheme's default.
    pub fn origin(&self) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.secure { 443 } else { 80 };
        if self.port == default {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}:{}", self.port)
        }
    }

    /// The same URL as a directory: the query dropped and the path ending
    /// in `/`, as the application root must be for paths to be resolved
    /// against it.
    pub fn as_directory(&self) -> Url {
        let mut path = self.path.split('?').next().unwrap_or("/").to_owned();
        if !path.ends_with('/') {
            path.push('/');
        }
        Url {
            path,
            user: None,
            password: None,
            ..self.clone()
        }
    }

    /// This directory URL with `relative` (no leading `/`) appended.
    pub fn join(&self, relative: &str) -> Url {
        Url {
            path: format!("{}{}", self.path, relative.trim_start_matches('/')),
            user: None,
            password: None,
            ..self.clone()
        }
    }

    /// Whether the host is this machine: `localhost` or a loopback address,
    /// where a password over plain HTTP never leaves the machine.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self.host.ends_with(".localhost")
            || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// Checks a URL the server handed out before it is followed: it must
    /// be on this service's host and port, and under `root` (a directory
    /// URL). Its scheme is taken to be ours (a server behind a proxy may
    /// name the wrong one; never downgrade, never switch ports), so the
    /// result always goes where this service is. `None` if it goes
    /// anywhere else, or does not parse.
    pub fn follow(&self, root: &Url, given: &str) -> Option<Url> {
        let url = Url::parse(given).ok()?;
        if url.user.is_some() || url.host != self.host {
            return None;
        }
        // The server may say `https` for a plain port behind a proxy that
        // terminates TLS, or the other way round: the port must be ours
        // once the scheme's default is put right.
        let given_port = if url.port == default_port(url.secure) {
            default_port(self.secure)
        } else {
            url.port
        };
        if given_port != self.port {
            return None;
        }
        if !url.path.starts_with(&root.path) {
            return None;
        }
        Some(Url {
            secure: self.secure,
            port: self.port,
            ..url
        })
    }
}

fn default_port(secure: bool) -> u16 {
    if secure { 443 } else { 80 }
}

/// Percent-decodes `s`; the result must be UTF-8.
fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "a malformed %-escape".to_owned())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a %-escape that is not UTF-8".to_owned())
}

/// Percent-encodes `s` for a query value or a path segment: everything but
/// the unreserved characters.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_users_write() {
        let u = Url::parse("https://spinnaker.cs.man.ac.uk/spalloc/").expect("url");
        assert!(u.secure);
        assert_eq!((u.host.as_str(), u.port), ("spinnaker.cs.man.ac.uk", 443));
        assert_eq!(u.path, "/spalloc/");
        assert_eq!(u.to_string(), "https://spinnaker.cs.man.ac.uk/spalloc/");
        let u = Url::parse("HTTP://Alice:p%40ss@[::1]:8080/spalloc").expect("url");
        assert!(!u.secure);
        assert_eq!((u.host.as_str(), u.port), ("::1", 8080));
        assert_eq!(u.user.as_deref(), Some("Alice"));
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        assert_eq!(u.to_string(), "http://[::1]:8080/spalloc");
        assert!(!format!("{u:?}").contains("p@ss"));
        assert_eq!(u.as_directory().path, "/spalloc/");
        assert!(u.is_loopback());
        assert_eq!(Url::parse("http://h").expect("url").path, "/");
        for bad in [
            "ftp://h/",
            "h/spalloc",
            "http:///x",
            "http://h:0/",
            "http://h:99999/",
            "http://h/a b",
            "http://[::1/",
            "http://u%zz@h/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
        assert!(is_service_url("HTTPS://x") && !is_service_url("spalloc://x"));
    }

    #[test]
    fn server_urls_are_followed_only_home() {
        let me = Url::parse("http://127.0.0.1:8080/spalloc/").expect("url");
        let root = me.join("srv/spalloc/");
        let ok = me
            .follow(&root, "https://127.0.0.1:8080/spalloc/srv/spalloc/jobs/3")
            .expect("same server");
        assert_eq!(
            ok.to_string(),
            "http://127.0.0.1:8080/spalloc/srv/spalloc/jobs/3"
        );
        // Elsewhere, another port, outside the service, or with a user.
        for bad in [
            "http://evil.example/spalloc/srv/spalloc/jobs/3",
            "http://127.0.0.1:9999/spalloc/srv/spalloc/jobs/3",
            "http://127.0.0.1:8080/spalloc/srv/machines/m",
            "http://u@127.0.0.1:8080/spalloc/srv/spalloc/jobs/3",
            "wss://127.0.0.1:8080/spalloc/proxy/3",
        ] {
            assert_eq!(me.follow(&root, bad), None, "{bad}");
        }
        // A server behind a TLS proxy names its default port.
        let me = Url::parse("https://h.example/spalloc/").expect("url");
        let root = me.join("srv/spalloc/");
        assert!(
            me.follow(&root, "http://h.example/spalloc/srv/spalloc/jobs")
                .is_some()
        );
    }

    #[test]
    fn encoding() {
        assert_eq!(encode("a b/c?d=é"), "a%20b%2Fc%3Fd%3D%C3%A9");
        assert_eq!(decode("a%20b").as_deref(), Ok("a b"));
    }
}
