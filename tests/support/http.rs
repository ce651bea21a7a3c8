//! A minimal HTTP/1.1 client for testing the v2 service over real sockets,
//! deliberately independent of any client library: one connection per
//! request (`Connection: close`), the response read to the end and parsed
//! by hand, HTTPS through rustls trusting the server's throw-away CA. It
//! keeps the session cookie and CSRF token the way both reference clients
//! do, and every read is bounded by a timeout.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use spalloc::server::VirtualServer;

/// How long one request may take (long-polls in tests are bounded below
/// this).
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(20);

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {:?}", self.status, self.text()))
    }

    /// The `JSESSIONID` this response sets, if any.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers_named("set-cookie").into_iter().find_map(|c| {
            let v = c.strip_prefix("JSESSIONID=")?;
            let id = v.split(';').next()?;
            (!id.is_empty()).then(|| id.to_owned())
        })
    }

    /// Fails the test unless the status is `status`.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Reply {
        assert_eq!(self.status, status, "body: {:?}", self.text());
        self
    }
}

/// Parses a whole response (head and body as read to the end).
pub fn parse(bytes: &[u8]) -> Option<Reply> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    let (version, status) = (parts.next()?, parts.next()?);
    if version != "HTTP/1.1" {
        return None;
    }
    let status: u16 = status.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap_or((l, ""));
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let mut body = bytes[end + 4..].to_vec();
    if let Some(len) = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(len);
    }
    Some(Reply {
        status,
        headers,
        body,
    })
}

/// A client for one v2 service.
#[derive(Clone)]
pub struct Http {
    pub addr: SocketAddr,
    /// The application root's path, e.g. `/spalloc/`.
    pub base: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
    pub bearer: Option<String>,
}

impl Http {
    /// A client for `server`'s v2 service (trusting its CA if it has one).
    pub fn new(server: &VirtualServer) -> Http {
        let addr = server.v2_local_addr().expect("the server runs v2");
        let url = server.v2_url().expect("the server runs v2");
        let base = url
            .splitn(4, '/')
            .nth(3)
            .map_or("/".to_owned(), |p| format!("/{p}"));
        let tls = url
            .starts_with("https:")
            .then(|| tls_config(server.v2_ca_pem().expect("a throw-away CA")));
        Http {
            addr,
            base,
            tls,
            cookie: None,
            csrf: None,
            bearer: None,
        }
    }

    /// A client for the service at `url` (such as `spalloc serve` prints),
    /// trusting `ca_pem` for HTTPS.
    pub fn at(url: &str, ca_pem: Option<&str>) -> Http {
        let (scheme, rest) = url.split_once("://").expect("an absolute URL");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        Http {
            addr: authority.parse().expect("an IP address and port"),
            base: format!("/{path}"),
            tls: (scheme == "https").then(|| tls_config(ca_pem.expect("a CA for HTTPS"))),
            cookie: None,
            csrf: None,
            bearer: None,
        }
    }

    /// `{base}srv/spalloc/{rest}`.
    pub fn srv(&self, rest: &str) -> String {
        format!("{}srv/spalloc/{rest}", self.base)
    }

    /// Sends a request for `path` (absolute) with exactly these headers
    /// (plus `Host` and `Connection: close`) and returns the response.
    #[track_caller]
    pub fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        let chunked = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"));
        if !chunked && (!body.is_empty() || matches!(method, "POST" | "PUT")) {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        let got = self.exchange(&bytes);
        parse(&got).unwrap_or_else(|| {
            panic!(
                "{method} {path}: unparsable response {:?}",
                String::from_utf8_lossy(&got)
            )
        })
    }

    /// Sends bytes on a fresh connection and reads until the server closes.
    #[track_caller]
    pub fn exchange(&self, bytes: &[u8]) -> Vec<u8> {
        let tcp = TcpStream::connect_timeout(&self.addr, HTTP_TIMEOUT).expect("connect");
        tcp.set_read_timeout(Some(HTTP_TIMEOUT)).expect("timeout");
        tcp.set_write_timeout(Some(HTTP_TIMEOUT)).expect("timeout");
        let mut out = Vec::new();
        match &self.tls {
            None => {
                let mut s = tcp;
                s.write_all(bytes).expect("send");
                read_to_close(&mut s, &mut out);
            }
            Some(cfg) => {
                let name = ServerName::try_from("localhost").expect("name");
                let conn = rustls::ClientConnection::new(cfg.clone(), name).expect("tls");
                let mut s = rustls::StreamOwned::new(conn, tcp);
                s.write_all(bytes).expect("send");
                s.flush().expect("flush");
                read_to_close(&mut s, &mut out);
            }
        }
        out
    }

    /// The headers this client sends on every request: credentials and a
    /// JSON `Accept`, plus the CSRF header on state changes.
    fn auth_headers(&self, unsafe_method: bool) -> Vec<(String, String)> {
        let mut h = vec![("Accept".to_owned(), "application/json".to_owned())];
        if let Some(c) = &self.cookie {
            h.push(("Cookie".into(), format!("JSESSIONID={c}")));
        }
        if let Some(b) = &self.bearer {
            h.push(("Authorization".into(), format!("Bearer {b}")));
        }
        if unsafe_method && let Some(t) = &self.csrf {
            h.push(("X-CSRF-TOKEN".into(), t.clone()));
        }
        h
    }

    #[track_caller]
    pub fn call(&self, method: &str, path: &str, extra: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut headers = self.auth_headers(method != "GET");
        for (n, v) in extra {
            headers.retain(|(h, _)| !h.eq_ignore_ascii_case(n));
            headers.push(((*n).to_owned(), (*v).to_owned()));
        }
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        self.raw(method, path, &headers, body)
    }

    #[track_caller]
    pub fn get(&self, path: &str) -> Reply {
        self.call("GET", path, &[], b"")
    }

    #[track_caller]
    pub fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.call(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    }

    #[track_caller]
    pub fn put_keepalive(&self, path: &str) -> Reply {
        self.call(
            "PUT",
            path,
            &[
                ("Content-Type", "text/plain; charset=UTF-8"),
                ("Accept", "*/*"),
            ],
            b"alive",
        )
    }

    #[track_caller]
    pub fn delete(&self, path: &str) -> Reply {
        self.call("DELETE", path, &[], b"")
    }

    /// The login page: its CSRF token and temporary session.
    #[track_caller]
    pub fn login_page(&self) -> (String, String) {
        let r = self.raw("GET", &format!("{}system/login.html", self.base), &[], b"");
        r.expect(200);
        let page = r.text();
        // The Python client's own pattern.
        let token = page
            .lines()
            .find_map(|l| {
                let rest = l
                    .trim()
                    .strip_prefix("<input type=\"hidden\" name=\"_csrf\" value=\"")?;
                rest.strip_suffix("\" />").map(str::to_owned)
            })
            .expect("a _csrf field");
        (token, r.session_cookie().expect("a temporary session"))
    }

    /// Posts the login form on the temporary session.
    #[track_caller]
    pub fn post_login(&self, session: &str, csrf: &str, user: &str, password: &str) -> Reply {
        let form = format!(
            "_csrf={}&username={}&password={}&submit=submit",
            enc(csrf),
            enc(user),
            enc(password)
        );
        self.raw(
            "POST",
            &format!("{}system/perform_login", self.base),
            &[
                ("Cookie", &format!("JSESSIONID={session}")),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            form.as_bytes(),
        )
    }

    /// The whole form login, as both reference clients do it: login page,
    /// form, then the service root for the new CSRF token.
    #[track_caller]
    pub fn login(&mut self, user: &str, password: &str) {
        let (csrf, temp) = self.login_page();
        let r = self.post_login(&temp, &csrf, user, password);
        r.expect(302);
        self.cookie = Some(r.session_cookie().expect("a new session"));
        self.bearer = None;
        let root = self.get(&self.srv(""));
        root.expect(200);
        self.csrf = root.json()["csrf-token"].as_str().map(str::to_owned);
    }

    /// A client logged in as `user`.
    #[track_caller]
    pub fn logged_in(server: &VirtualServer, user: &str, password: &str) -> Http {
        let mut h = Http::new(server);
        h.login(user, password);
        h
    }

    /// Creates a job; returns its id.
    #[track_caller]
    pub fn create(&self, body: &Value) -> u64 {
        let r = self.post_json(&self.srv("jobs"), body);
        r.expect(201);
        r.json()["job-id"].as_u64().expect("job-id")
    }

    /// A job's description.
    #[track_caller]
    pub fn job(&self, id: u64) -> Value {
        let r = self.get(&self.srv(&format!("jobs/{id}")));
        r.expect(200);
        r.json()
    }
}

fn read_to_close(s: &mut impl Read, out: &mut Vec<u8>) {
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // A TLS peer that closes without close_notify, or a reset after
            // the response: what arrived is the answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("reading the response: {e}"),
        }
    }
}

/// Percent-encodes a form value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A TLS client configuration trusting only the CA in `pem`.
pub fn tls_config(pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// One persistent plain-HTTP connection, for clients that send many
/// requests (the way a connection-pooling client does).
pub struct KeepAlive {
    stream: TcpStream,
    buf: Vec<u8>,
    http: Http,
}

impl KeepAlive {
    /// A connection to `http`'s service, sending its credentials.
    pub fn open(http: &Http) -> KeepAlive {
        let stream = TcpStream::connect_timeout(&http.addr, HTTP_TIMEOUT).expect("connect");
        stream
            .set_read_timeout(Some(HTTP_TIMEOUT))
            .expect("timeout");
        KeepAlive {
            stream,
            buf: Vec::new(),
            http: http.clone(),
        }
    }

    /// A GET on this connection.
    #[track_caller]
    pub fn get(&mut self, path: &str) -> Reply {
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n", self.http.addr);
        for (n, v) in self.http.auth_headers(false) {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.stream.write_all(req.as_bytes()).expect("send");
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = parse(&self.buf[..end + 4]).expect("a response head");
                let len = head
                    .header("content-length")
                    .and_then(|l| l.parse::<usize>().ok())
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + len {
                    let whole: Vec<u8> = self.buf.drain(..end + 4 + len).collect();
                    return parse(&whole).expect("a response");
                }
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk).expect("read the response");
            assert!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
