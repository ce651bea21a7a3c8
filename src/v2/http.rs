//! HTTP/1.1 over one persistent connection, plain or TLS: just what the v2
//! client needs, and nothing it must not do.
//!
//! * Redirects are never followed: a successful login *is* a 302, and an
//!   expired session is a 302 to the login page; the caller decides.
//! * Every request runs against one deadline, set again on the socket
//!   before each read and write, as the v1 client does (a long-poll passes a
//!   longer one).
//! * The response head and body are bounded; a chunked or length-delimited
//!   body is read exactly, so the connection is reused.
//! * The socket is registered with the caller's
//!   [`InterruptHandle`](crate::InterruptHandle) while a request is in
//!   progress, so an interruption ends it at once, connecting included.
//! * TLS is rustls, always verifying: the Mozilla roots plus, when given, a
//!   private CA from a PEM file.
//! * Nothing here logs a header or a body: cookies, tokens and passwords
//!   travel in them.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, trace};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::url::Url;
use crate::error::{Error, Phase, Result};
use crate::interrupt::{InterruptHandle, Registration, Waker};
use crate::seconds::{deadline, time_left};

/// The longest response head accepted, in bytes.
const MAX_HEAD: usize = 64 * 1024;
/// The most header lines accepted in one response.
const MAX_HEADERS: usize = 64;
/// The longest line of a chunked body's framing.
const MAX_CHUNK_LINE: usize = 1024;
/// The default bound on a response body: the v1 client's line bound.
pub(crate) const DEFAULT_MAX_BODY: usize = crate::client::DEFAULT_MAX_LINE_LENGTH;
/// A kept-alive connection idle for longer than this is not trusted with a
/// request that must not be sent twice (the server may be closing it just
/// as the request goes out).
const STALE_FOR_POST: Duration = Duration::from_secs(2);
/// How many requests [`Transport::send_all`] has written and not yet seen
/// answered, at most: enough that the server always has the next request
/// at hand, few enough (a few kilobytes) that they fit in the sockets'
/// buffers while the responses are unread.
const PIPELINE_DEPTH: usize = 16;

/// A request to send.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    /// `GET`, `POST`, `PUT` or `DELETE`.
    pub method: &'static str,
    /// The path and query, from the leading `/`.
    pub target: &'a str,
    /// Headers besides `Host`, `User-Agent` and `Content-Length`.
    pub headers: Vec<(&'static str, String)>,
    /// The body; empty for none.
    pub body: Vec<u8>,
}

/// A response, with its body read in full.
#[derive(Debug)]
pub(crate) struct Response {
    /// The status code.
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every header named `name` (lower case).
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text, at most `limit` characters of it, trimmed.
    pub fn text(&self, limit: usize) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        match text.char_indices().nth(limit) {
            Some((at, _)) => format!("{}…", &text[..at]),
            None => text.to_owned(),
        }
    }
}

/// The socket, with or without TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// One open connection.
struct Conn {
    stream: Stream,
    /// Bytes received and not yet used.
    buf: InBuf,
    registration: Option<Registration>,
    /// Whether a request has been answered on it already.
    reused: bool,
    last_used: Instant,
}

/// Bytes received and not yet used: those from `start` on. Taking from
/// the front moves `start` rather than the bytes after it, so a buffer
/// holding several pipelined responses is not shifted once per response.
#[derive(Default)]
struct InBuf {
    data: Vec<u8>,
    start: usize,
}

impl InBuf {
    fn bytes(&self) -> &[u8] {
        &self.data[self.start..]
    }

    fn len(&self) -> usize {
        self.data.len() - self.start
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the first `n` bytes (at most all of them).
    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.data.len());
        if self.start == self.data.len() {
            self.data.clear();
            self.start = 0;
        }
    }

    /// Removes and returns the first `n` bytes (at most all of them).
    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.len());
        let taken = self.bytes()[..n].to_vec();
        self.consume(n);
        taken
    }

    fn extend(&mut self, more: &[u8]) {
        // Reclaim the used front once it is most of the buffer.
        if self.start > 0 && self.start >= self.data.len() / 2 {
            self.data.drain(..self.start);
            self.start = 0;
        }
        self.data.extend_from_slice(more);
    }
}

/// A failed exchange, and whether anything at all came back (if not, on a
/// kept-alive connection, the server most likely closed it while idle).
struct Failure {
    error: Error,
    nothing_received: bool,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure {
            error,
            nothing_received: false,
        }
    }
}

/// Requests to one server (scheme, host and port), over one connection at a
/// time, reopened as needed.
pub(crate) struct Transport {
    host: String,
    port: u16,
    /// `Host:` as sent.
    host_header: String,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    conn: Option<Conn>,
    interrupt: Option<InterruptHandle>,
    /// The grace an interruption gives a request in progress.
    grace: Option<Duration>,
    /// The largest body accepted.
    pub max_body: usize,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

/// The TLS settings: rustls with the ring provider, the Mozilla roots, and
/// the certificates of `ca_file` if given.
pub(crate) fn tls_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let bad = |message: String| Error::Config {
            path: path.to_owned(),
            key: Some("ca_file".into()),
            message,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(format!("cannot read certificates: {e}")))?;
        let mut added = 0;
        for cert in certs {
            let cert = cert.map_err(|e| bad(format!("not a PEM certificate file: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| bad(format!("unusable certificate: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad("holds no PEM certificate".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Io(io::Error::other(e)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl Transport {
    /// Requests to `url`'s server; `tls` must be given for `https`.
    pub fn new(
        url: &Url,
        tls: Option<Arc<ClientConfig>>,
        interrupt: Option<&InterruptHandle>,
    ) -> Result<Transport> {
        let tls = match (url.secure, tls) {
            (false, _) => None,
            (true, Some(config)) => {
                let name = ServerName::try_from(url.host.clone()).map_err(|_| {
                    Error::InvalidArgument(crate::error::InvalidArgument::ServiceUrl(format!(
                        "'{}' is not a host name TLS can check",
                        url.host
                    )))
                })?;
                Some((config, name))
            }
            (true, None) => Some((tls_config(None)?, {
                ServerName::try_from(url.host.clone()).map_err(|_| {
                    Error::InvalidArgument(crate::error::InvalidArgument::ServiceUrl(format!(
                        "'{}' is not a host name TLS can check",
                        url.host
                    )))
                })?
            })),
        };
        let host_header = {
            let origin = url.origin();
            origin
                .split_once("://")
                .map_or(origin.clone(), |(_, h)| h.to_owned())
        };
        Ok(Transport {
            host: url.host.clone(),
            port: url.port,
            host_header,
            tls,
            conn: None,
            interrupt: interrupt.cloned(),
            grace: None,
            max_body: DEFAULT_MAX_BODY,
        })
    }

    /// Another transport to the same server with the same settings, not
    /// yet connected.
    pub fn sibling(&self) -> Transport {
        Transport {
            host: self.host.clone(),
            port: self.port,
            host_header: self.host_header.clone(),
            tls: self.tls.clone(),
            conn: None,
            interrupt: self.interrupt.clone(),
            grace: self.grace,
            max_body: self.max_body,
        }
    }

    /// The TLS settings, for `https`.
    pub fn tls(&self) -> Option<Arc<ClientConfig>> {
        self.tls.as_ref().map(|(c, _)| Arc::clone(c))
    }

    /// The interruption handle requests are registered with.
    pub fn interrupt(&self) -> Option<&InterruptHandle> {
        self.interrupt.as_ref()
    }

    /// Closes the connection, if one is open; the next request opens one.
    pub fn disconnect(&mut self) {
        self.conn = None;
    }

    /// Sets the grace an interruption gives a request in progress before it
    /// cuts it short (a second interruption cuts it at once).
    pub fn set_grace(&mut self, grace: Option<Duration>) {
        self.grace = grace;
        if let Some(c) = &self.conn
            && let Some(r) = &c.registration
        {
            r.set_grace(grace);
        }
    }

    /// Sends `req` and reads the whole response, within `timeout`.
    ///
    /// # Errors
    /// [`Error::Connect`], [`Error::Io`], [`Error::Timeout`] of
    /// [`Phase::Reply`], [`Error::Disconnected`], [`Error::Interrupted`],
    /// [`Error::ResponseTooLarge`], or [`Error::Protocol`] for a response
    /// that is not HTTP.
    pub fn send(&mut self, req: &Request<'_>, timeout: Option<Duration>) -> Result<Response> {
        let deadline = deadline(timeout);
        let mut retried = false;
        loop {
            if let Some(c) = &self.conn
                && req.method == "POST"
                && c.last_used.elapsed() > STALE_FOR_POST
            {
                self.conn = None;
            }
            let fresh = self.conn.is_none();
            if fresh {
                self.connect(deadline)?;
            }
            let Some(conn) = self.conn.as_mut() else {
                return Err(Error::Disconnected);
            };
            if let Some(r) = &conn.registration {
                r.arm()?;
            }
            let result = exchange(conn, &self.host_header, req, deadline, self.max_body);
            if let Some(r) = &conn.registration {
                r.disarm();
            }
            match result {
                Ok((response, keep)) => {
                    conn.reused = true;
                    conn.last_used = Instant::now();
                    if !keep {
                        self.conn = None;
                    }
                    return Ok(response);
                }
                Err(Failure {
                    error,
                    nothing_received,
                }) => {
                    self.conn = None;
                    let error = self.interrupted_instead(error);
                    let stale = !fresh && nothing_received && !retried;
                    let may_repeat = req.method != "POST";
                    if stale
                        && may_repeat
                        && !matches!(error, Error::Interrupted | Error::Timeout(_))
                    {
                        debug!("the kept-alive connection was closed ({error}); reconnecting");
                        retried = true;
                        continue;
                    }
                    return Err(error);
                }
            }
        }
    }

    /// Sends `GET` requests pipelined, up to [`PIPELINE_DEPTH`] of them
    /// written before their responses are read, and returns the responses
    /// in order. A server that closes the connection after some response
    /// (Tomcat closes after 100 requests by default) leaves the requests
    /// after it unanswered: they are sent again on a new connection, as is
    /// the rest if a kept-alive connection turns out to be closed. Each
    /// response must begin within `timeout` of the one before.
    ///
    /// # Errors
    /// As for [`send`](Self::send).
    pub fn send_all(
        &mut self,
        reqs: &[Request<'_>],
        timeout: Option<Duration>,
    ) -> Result<Vec<Response>> {
        debug_assert!(reqs.iter().all(|r| r.method == "GET"));
        let mut responses = Vec::with_capacity(reqs.len());
        // Requests written on the current connection and not yet answered
        // are reqs[responses.len()..sent].
        let mut sent = 0;
        // Whether the current connection has answered (and so may have
        // been closed by the server while idle, rather than refused us).
        let mut retried = false;
        while responses.len() < reqs.len() {
            let deadline = deadline(timeout);
            if self.conn.is_none() {
                self.connect(deadline)?;
                sent = responses.len();
            }
            let Some(conn) = self.conn.as_mut() else {
                return Err(Error::Disconnected);
            };
            let answered_before = conn.reused;
            let in_flight = sent - responses.len();
            let mut result = Ok(());
            if sent < reqs.len() && in_flight <= PIPELINE_DEPTH / 2 {
                let end = (responses.len() + PIPELINE_DEPTH).min(reqs.len());
                let mut bytes = Vec::new();
                for r in &reqs[sent..end] {
                    bytes.extend(request_bytes(&self.host_header, r));
                }
                result = write_requests(conn, &bytes, deadline);
                sent = end;
            }
            if let Some(r) = &conn.registration
                && let Err(e) = r.arm()
            {
                // Requests are in flight: their answers must not be read
                // as another request's.
                self.conn = None;
                return Err(e);
            }
            let result = result.and_then(|()| {
                read_response(conn, &reqs[responses.len()], deadline, self.max_body)
            });
            if let Some(r) = &conn.registration {
                r.disarm();
            }
            match result {
                Ok((response, keep)) => {
                    conn.reused = true;
                    conn.last_used = Instant::now();
                    responses.push(response);
                    retried = false;
                    if !keep {
                        self.conn = None;
                    }
                }
                Err(Failure {
                    error,
                    nothing_received,
                }) => {
                    self.conn = None;
                    let error = self.interrupted_instead(error);
                    if answered_before
                        && nothing_received
                        && !retried
                        && !matches!(error, Error::Interrupted | Error::Timeout(_))
                    {
                        debug!("the kept-alive connection was closed ({error}); reconnecting");
                        retried = true;
                        continue;
                    }
                    return Err(error);
                }
            }
        }
        Ok(responses)
    }

    /// `e`, or [`Error::Interrupted`] if an interruption caused it.
    fn interrupted_instead(&self, e: Error) -> Error {
        match &self.interrupt {
            Some(i) if i.take().is_err() => Error::Interrupted,
            _ => e,
        }
    }

    fn connect(&mut self, deadline: Option<Instant>) -> Result<()> {
        let timeout = match time_left(deadline) {
            Some(left) if left.is_zero() => return Err(Error::Timeout(Phase::Reply)),
            other => other,
        };
        let stream =
            crate::client::connect_stream(&self.host, self.port, timeout, self.interrupt.as_ref())?;
        stream.set_nodelay(true)?;
        let registration = match &self.interrupt {
            Some(i) => Some(i.register(Waker::Socket {
                stream: stream.try_clone()?,
                grace: self.grace,
                armed: false,
            })),
            None => None,
        };
        let stream = match &self.tls {
            None => Stream::Plain(stream),
            Some((config, name)) => {
                let conn = ClientConnection::new(Arc::clone(config), name.clone())
                    .map_err(|e| Error::Io(io::Error::other(e)))?;
                Stream::Tls(Box::new(StreamOwned::new(conn, stream)))
            }
        };
        self.conn = Some(Conn {
            stream,
            buf: InBuf::default(),
            registration,
            reused: false,
            last_used: Instant::now(),
        });
        Ok(())
    }
}

/// The time left before `deadline` as a socket timeout, or a timeout error
/// if none is.
fn socket_timeout(deadline: Option<Instant>) -> Result<Option<Duration>> {
    match time_left(deadline) {
        Some(left) if left.is_zero() => Err(Error::Timeout(Phase::Reply)),
        other => Ok(other),
    }
}

/// Writes the request and reads the response; `true` with it if the
/// connection can carry another.
fn exchange(
    conn: &mut Conn,
    host: &str,
    req: &Request<'_>,
    deadline: Option<Instant>,
    max_body: usize,
) -> std::result::Result<(Response, bool), Failure> {
    write_requests(conn, &request_bytes(host, req), deadline)?;
    read_response(conn, req, deadline, max_body)
}

/// The request as it goes on the wire.
fn request_bytes(host: &str, req: &Request<'_>) -> Vec<u8> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: spalloc-rs/{}\r\n",
        req.method,
        req.target,
        env!("CARGO_PKG_VERSION")
    );
    for (name, value) in &req.headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    if !req.body.is_empty() || req.method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", req.body.len()));
    }
    head.push_str("\r\n");
    trace!("{} {}", req.method, req.target);
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&req.body);
    bytes
}

/// Writes one or more whole requests and flushes them.
fn write_requests(
    conn: &mut Conn,
    bytes: &[u8],
    deadline: Option<Instant>,
) -> std::result::Result<(), Failure> {
    let written = (|| {
        conn.stream
            .tcp()
            .set_write_timeout(socket_timeout(deadline)?)?;
        conn.stream.write_all(bytes)?;
        conn.stream.flush()?;
        Ok::<(), Error>(())
    })();
    written.map_err(|error| {
        let nothing_received = matches!(&error, Error::Io(e) if matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted))
            || matches!(error, Error::Disconnected);
        Failure {
            error,
            nothing_received,
        }
    })
}

/// Reads the response to `req`; `true` with it if the connection can carry
/// another.
fn read_response(
    conn: &mut Conn,
    req: &Request<'_>,
    deadline: Option<Instant>,
    max_body: usize,
) -> std::result::Result<(Response, bool), Failure> {
    let (status, headers, version) = loop {
        let (status, headers, version, used) = read_head(conn, deadline)?;
        conn.buf.consume(used);
        // Interim answers (100 Continue) come before the real one.
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        break (status, headers, version);
    };
    let response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let close = response
        .header("connection")
        .is_some_and(|c| c.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
        || version == 0;
    let mut response = response;
    if req.method == "HEAD" || status == 204 || status == 304 {
        return Ok((response, !close));
    }
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    let length = response.header("content-length").map(str::trim);
    if chunked {
        response.body = read_chunked(conn, deadline, max_body)?;
        Ok((response, !close))
    } else if let Some(length) = length {
        let n: usize = length.parse().map_err(|_| {
            Error::from(crate::error::ProtocolError {
                command: Some(format!("{} {}", req.method, path_only(req.target))),
                field: Some("Content-Length".into()),
                expected: "a number of bytes".into(),
                got: Some(format!("{length:?}")),
            })
        })?;
        if n > max_body {
            return Err(Error::ResponseTooLarge { limit: max_body }.into());
        }
        while conn.buf.len() < n {
            if fill(conn, deadline)? == 0 {
                return Err(Error::Disconnected.into());
            }
        }
        response.body = conn.buf.take(n);
        Ok((response, !close))
    } else {
        // Delimited by the end of the connection.
        loop {
            if conn.buf.len() > max_body {
                return Err(Error::ResponseTooLarge { limit: max_body }.into());
            }
            if fill(conn, deadline)? == 0 {
                break;
            }
        }
        response.body = conn.buf.take(conn.buf.len());
        Ok((response, false))
    }
}

/// A request target without its query, for messages (a query may hold a
/// reason or an address, but never a secret; still, keep messages short).
fn path_only(target: &str) -> &str {
    target.split('?').next().unwrap_or(target)
}

type Head = (u16, Vec<(String, String)>, u8, usize);

/// Reads until a whole response head is buffered and parses it; the number
/// of bytes it took is last.
fn read_head(conn: &mut Conn, deadline: Option<Instant>) -> std::result::Result<Head, Failure> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        match parsed.parse(conn.buf.bytes()) {
            Ok(httparse::Status::Complete(used)) => {
                let status = parsed.code.unwrap_or(0);
                let version = parsed.version.unwrap_or(0);
                let headers = parsed
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                return Ok((status, headers, version, used));
            }
            Ok(httparse::Status::Partial) if conn.buf.len() > MAX_HEAD => {
                return Err(Error::ResponseTooLarge { limit: MAX_HEAD }.into());
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => {
                return Err(Error::from(crate::error::ProtocolError {
                    command: None,
                    field: None,
                    expected: "an HTTP/1.1 response".into(),
                    got: Some(format!("something else ({e})")),
                })
                .into());
            }
        }
        let empty = conn.buf.is_empty();
        match fill(conn, deadline) {
            Ok(0) => {
                return Err(Failure {
                    error: Error::Disconnected,
                    nothing_received: empty,
                });
            }
            Ok(_) => {}
            Err(Failure { error, .. }) => {
                let reset = matches!(&error, Error::Io(e) if matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted));
                return Err(Failure {
                    error,
                    nothing_received: empty && reset,
                });
            }
        }
    }
}

/// Reads a chunked body.
fn read_chunked(
    conn: &mut Conn,
    deadline: Option<Instant>,
    max_body: usize,
) -> std::result::Result<Vec<u8>, Failure> {
    let bad = |what: &str| -> Failure {
        Error::from(crate::error::ProtocolError {
            command: None,
            field: Some("chunked body".into()),
            expected: "HTTP/1.1 chunked framing".into(),
            got: Some(what.to_owned()),
        })
        .into()
    };
    let mut body = Vec::new();
    loop {
        let line = read_line(conn, deadline)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| bad("a bad chunk size"))?;
        if size == 0 {
            // Trailers, up to an empty line.
            while !read_line(conn, deadline)?.is_empty() {}
            return Ok(body);
        }
        if body.len().saturating_add(size) > max_body {
            return Err(Error::ResponseTooLarge { limit: max_body }.into());
        }
        while conn.buf.len() < size + 2 {
            if fill(conn, deadline)? == 0 {
                return Err(Error::Disconnected.into());
            }
        }
        body.extend_from_slice(&conn.buf.bytes()[..size]);
        conn.buf.consume(size);
        if conn.buf.take(2) != b"\r\n" {
            return Err(bad("a chunk not followed by CRLF"));
        }
    }
}

/// One CRLF-terminated line of chunked framing, without its CRLF.
fn read_line(conn: &mut Conn, deadline: Option<Instant>) -> std::result::Result<String, Failure> {
    loop {
        if let Some(at) = conn.buf.bytes().windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&conn.buf.bytes()[..at]).into_owned();
            conn.buf.consume(at + 2);
            return Ok(line);
        }
        if conn.buf.len() > MAX_CHUNK_LINE {
            return Err(Error::ResponseTooLarge {
                limit: MAX_CHUNK_LINE,
            }
            .into());
        }
        if fill(conn, deadline)? == 0 {
            return Err(Error::Disconnected.into());
        }
    }
}

/// Reads what has arrived (at least one byte, or 0 at the end) onto the
/// buffer.
fn fill(conn: &mut Conn, deadline: Option<Instant>) -> std::result::Result<usize, Failure> {
    let timeout = socket_timeout(deadline)?;
    conn.stream
        .tcp()
        .set_read_timeout(timeout)
        .map_err(Error::from)?;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match conn.stream.read(&mut chunk) {
            Ok(n) => {
                conn.buf.extend(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A TLS peer that closes without close_notify: the end, as
            // far as a length-delimited exchange is concerned.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
            Err(e) => return Err(Error::from(e).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// A server that answers one connection with `reply` to whatever comes,
    /// after reading the request head.
    fn serve(replies: Vec<&'static [u8]>) -> (Url, thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handle = thread::spawn(move || {
            let mut seen = Vec::new();
            let (mut s, _) = listener.accept().expect("accept");
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            for reply in replies {
                let mut got = Vec::new();
                let mut byte = [0u8; 1];
                while !got.ends_with(b"\r\n\r\n") {
                    if s.read(&mut byte).expect("read") == 0 {
                        return seen;
                    }
                    got.push(byte[0]);
                }
                seen.push(String::from_utf8_lossy(&got).into_owned());
                s.write_all(reply).expect("write");
            }
            seen
        });
        let url = Url::parse(&format!("http://{addr}/")).expect("url");
        (url, handle)
    }

    fn get(target: &str) -> Request<'_> {
        Request {
            method: "GET",
            target,
            headers: vec![("Accept", "application/json".into())],
            body: Vec::new(),
        }
    }

    #[test]
    fn lengths_chunks_and_reuse() {
        let (url, server) = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: v\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\nno such job",
        ]);
        let mut t = Transport::new(&url, None, None).expect("transport");
        let timeout = Some(Duration::from_secs(10));
        let r = t.send(&get("/a"), timeout).expect("first");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        let r = t.send(&get("/b"), timeout).expect("chunked");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abcde"[..]));
        let r = t.send(&get("/c"), timeout).expect("no content");
        assert_eq!((r.status, r.body.len()), (204, 0));
        let r = t.send(&get("/d"), timeout).expect("close-delimited");
        assert_eq!((r.status, r.text(100).as_str()), (404, "no such job"));
        let seen = server.join().expect("server");
        assert_eq!(seen.len(), 4, "one connection carried all four");
        assert!(seen[0].starts_with("GET /a HTTP/1.1\r\nHost: 127.0.0.1:"));
    }

    /// Pipelined requests get their answers in order, and those a server
    /// left unanswered when it closed the connection (as Tomcat does after
    /// a number of requests) are sent again on a new one.
    #[test]
    fn pipelined_requests_survive_a_server_that_closes_every_third() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = thread::spawn(move || {
            let mut answered = Vec::new();
            let mut connections = 0;
            while answered.len() < 8 {
                let (mut s, _) = listener.accept().expect("accept");
                connections += 1;
                s.set_read_timeout(Some(Duration::from_secs(10)))
                    .expect("timeout");
                for n in 1..=3 {
                    let mut got = Vec::new();
                    let mut byte = [0u8; 1];
                    while !got.ends_with(b"\r\n\r\n") {
                        assert_eq!(s.read(&mut byte).expect("read"), 1, "early close");
                        got.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&got).into_owned();
                    let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
                    let close = if n == 3 { "Connection: close\r\n" } else { "" };
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\n{close}Content-Length: {}\r\n\r\n{path}",
                        path.len()
                    );
                    s.write_all(reply.as_bytes()).expect("write");
                    answered.push(path);
                    if answered.len() == 8 {
                        break;
                    }
                }
                // A lingering close: what the client sent after the third
                // is read (and dropped) until it closes its end, so that
                // the close does not reset the answers it has not read.
                s.shutdown(std::net::Shutdown::Write).expect("shutdown");
                let _ = s.read_to_end(&mut Vec::new());
            }
            (answered, connections)
        });
        let url = Url::parse(&format!("http://{addr}/")).expect("url");
        let mut t = Transport::new(&url, None, None).expect("transport");
        let targets: Vec<String> = (0..8).map(|i| format!("/r{i}")).collect();
        let reqs: Vec<Request<'_>> = targets.iter().map(|p| get(p)).collect();
        let responses = t
            .send_all(&reqs, Some(Duration::from_secs(10)))
            .expect("all answered");
        let bodies: Vec<String> = responses
            .iter()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .collect();
        assert_eq!(bodies, targets);
        drop(t);
        let (answered, connections) = server.join().expect("server");
        assert_eq!(answered, targets, "each answered once, in order");
        assert_eq!(connections, 3);
    }

    #[test]
    fn bounds_and_garbage() {
        let (url, server) = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
        ]);
        let mut t = Transport::new(&url, None, None).expect("transport");
        let e = t
            .send(&get("/"), Some(Duration::from_secs(10)))
            .unwrap_err();
        assert!(matches!(e, Error::ResponseTooLarge { .. }), "{e}");
        server.join().expect("server");

        let (url, server) = serve(vec![b"SSH-2.0-OpenSSH\r\n\r\n"]);
        let mut t = Transport::new(&url, None, None).expect("transport");
        let e = t
            .send(&get("/"), Some(Duration::from_secs(10)))
            .unwrap_err();
        assert!(matches!(e, Error::Protocol(_)), "{e}");
        server.join().expect("server");
    }

    #[test]
    fn a_silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url =
            Url::parse(&format!("http://{}/", listener.local_addr().expect("addr"))).expect("url");
        let mut t = Transport::new(&url, None, None).expect("transport");
        let e = t
            .send(&get("/"), Some(Duration::from_millis(200)))
            .unwrap_err();
        assert!(matches!(e, Error::Timeout(Phase::Reply)), "{e}");
        drop(listener);
    }

    #[test]
    fn an_interruption_ends_a_request_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url =
            Url::parse(&format!("http://{}/", listener.local_addr().expect("addr"))).expect("url");
        let interrupt = InterruptHandle::new();
        let mut t = Transport::new(&url, None, Some(&interrupt)).expect("transport");
        let (tx, rx) = std::sync::mpsc::channel();
        let worker = thread::spawn(move || {
            let _ = tx.send(());
            t.send(&get("/"), Some(Duration::from_secs(60)))
        });
        // The request is in progress once the server has the connection.
        let (_conn, _) = listener.accept().expect("accept");
        rx.recv().expect("started");
        interrupt.interrupt();
        let e = worker.join().expect("worker").unwrap_err();
        assert!(matches!(e, Error::Interrupted), "{e}");
    }
}
