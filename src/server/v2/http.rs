//! HTTP/1.1 messages without sockets: an incremental request reader with
//! bounds on every part of a request, and response serialisation.
//!
//! The reader is fed whatever bytes arrive and hands out complete requests,
//! so that the socket loop (`listen.rs`) only moves bytes and keeps time,
//! and so that the fuzz target can drive exactly the code a client reaches.
//! It never buffers more than the head limit plus the body limit, scans
//! each byte of a head once (a client sending one byte at a time costs
//! linear, not quadratic, work), and refuses the request-smuggling shapes
//! (both `Content-Length` and `Transfer-Encoding`, conflicting lengths).

use std::fmt::Write as _;

/// The bounds one request must respect.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Request line plus headers, in bytes.
    pub max_head: usize,
    /// Body, in bytes (after removing chunked framing).
    pub max_body: usize,
}

/// The most header lines a request may have.
const MAX_HEADERS: usize = 64;

/// A complete request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    pub method: String,
    /// The request target as sent (path and query), starting with `/`.
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Names in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (lower case), in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client wants the connection kept open afterwards.
    pub fn keep_alive(&self) -> bool {
        let tokens = |want: &str| {
            self.headers_named("connection")
                .flat_map(|v| v.split(','))
                .any(|t| t.trim().eq_ignore_ascii_case(want))
        };
        if self.minor_version == 0 {
            tokens("keep-alive")
        } else {
            !tokens("close")
        }
    }

    /// The path part of the target (before any `?`).
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The query part of the target (after the first `?`), if any.
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }
}

/// Why a request could not be read. Each maps to the status the client is
/// sent before the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HttpError {
    /// 400, with what was wrong.
    BadRequest(String),
    /// 431: the head is over [`Limits::max_head`] or has too many lines.
    HeadTooLarge,
    /// 413: the body is over [`Limits::max_body`].
    BodyTooLarge,
    /// 501: a transfer coding other than `chunked`.
    NotImplemented(String),
    /// 505: not HTTP/1.0 or 1.1.
    VersionNotSupported,
}

impl HttpError {
    /// The response that tells the client.
    pub fn response(&self, max: &Limits) -> Response {
        match self {
            HttpError::BadRequest(why) => Response::text(400, format!("bad request: {why}")),
            HttpError::HeadTooLarge => Response::text(
                431,
                format!(
                    "request head too large: at most {} bytes and {MAX_HEADERS} header lines",
                    max.max_head
                ),
            ),
            HttpError::BodyTooLarge => Response::text(
                413,
                format!("request body too large: at most {} bytes", max.max_body),
            ),
            HttpError::NotImplemented(what) => {
                Response::text(501, format!("not implemented: {what}"))
            }
            HttpError::VersionNotSupported => {
                Response::text(505, "only HTTP/1.0 and HTTP/1.1 are supported")
            }
        }
    }
}

/// How the body of the request being read is framed.
#[derive(Debug)]
enum Framing {
    Length(usize),
    Chunked(Chunk),
}

/// Where the chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line.
    Size,
    /// Reading this many more bytes of chunk data.
    Data(usize),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// Reading trailer lines until an empty one.
    Trailer,
    /// The empty line after the trailer was read: the body is complete.
    Done,
}

#[derive(Debug)]
enum State {
    /// Looking for the end of the head; bytes before `scanned` hold none.
    Head { scanned: usize },
    /// The head is parsed (and removed from the buffer); reading the body.
    Body { request: Request, framing: Framing },
}

/// Turns a stream of bytes into requests.
#[derive(Debug)]
pub(crate) struct Reader {
    buf: Vec<u8>,
    state: State,
    limits: Limits,
    /// Bytes of the current request taken so far (head and chunk framing
    /// included), so that chunk extensions and trailers stay bounded too.
    taken: usize,
    /// Set when a head with `Expect: 100-continue` was read and the body
    /// has not arrived yet; cleared by [`Reader::take_continue`].
    wants_continue: bool,
}

impl Reader {
    pub fn new(limits: Limits) -> Reader {
        Reader {
            buf: Vec::new(),
            state: State::Head { scanned: 0 },
            limits,
            taken: 0,
            wants_continue: false,
        }
    }

    /// Adds bytes that arrived.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Whether any bytes of a next request have arrived.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty() || matches!(self.state, State::Body { .. })
    }

    /// Whether the client waits for `100 Continue` before sending the body
    /// (asked once per request).
    pub fn take_continue(&mut self) -> bool {
        std::mem::take(&mut self.wants_continue)
    }

    /// The bytes received after the last complete request, for a
    /// connection that stops speaking HTTP (an upgrade to a websocket).
    pub fn into_rest(self) -> Vec<u8> {
        self.buf
    }

    /// The next complete request, `Ok(None)` if more bytes are needed.
    ///
    /// # Errors
    ///
    /// An [`HttpError`] once the bytes cannot be (or cannot become) an
    /// acceptable request; the reader must not be used afterwards.
    pub fn next_request(&mut self) -> Result<Option<Request>, HttpError> {
        if let State::Head { scanned } = &mut self.state {
            // Empty lines before a request line are ignored (RFC 9112 2.2).
            if *scanned == 0 {
                let blank = self
                    .buf
                    .iter()
                    .position(|b| !matches!(b, b'\r' | b'\n'))
                    .unwrap_or(self.buf.len());
                self.buf.drain(..blank);
            }
            let Some(end) = find_head_end(&self.buf, scanned) else {
                if self.buf.len() > self.limits.max_head {
                    return Err(HttpError::HeadTooLarge);
                }
                return Ok(None);
            };
            if end > self.limits.max_head {
                return Err(HttpError::HeadTooLarge);
            }
            let (request, framing) = parse_head(&self.buf[..end], &self.limits)?;
            self.buf.drain(..end);
            self.taken = end;
            self.wants_continue = request
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
                && !matches!(framing, Framing::Length(0));
            self.state = State::Body { request, framing };
        }
        let State::Body { request, framing } = &mut self.state else {
            return Ok(None);
        };
        let done = match framing {
            Framing::Length(n) => {
                let want = *n - request.body.len();
                let got = want.min(self.buf.len());
                request.body.extend_from_slice(&self.buf[..got]);
                self.buf.drain(..got);
                request.body.len() == *n
            }
            Framing::Chunked(chunk) => {
                let used = decode_chunked(&self.buf, chunk, &mut request.body, &self.limits)?;
                self.buf.drain(..used);
                // Chunk framing (sizes, extensions, trailers) counts against
                // the limits too, or a client could stream it forever.
                self.taken = self.taken.saturating_add(used);
                if self.taken > self.limits.max_head + 2 * self.limits.max_body + MAX_CHUNK_LINE {
                    return Err(HttpError::BodyTooLarge);
                }
                *chunk == Chunk::Done
            }
        };
        if !done {
            if self.buf.len() > self.limits.max_head + self.limits.max_body {
                return Err(HttpError::BodyTooLarge);
            }
            return Ok(None);
        }
        self.wants_continue = false;
        let State::Body { request, .. } =
            std::mem::replace(&mut self.state, State::Head { scanned: 0 })
        else {
            return Ok(None);
        };
        Ok(Some(request))
    }
}

/// Finds the end of the head (just past the blank line), scanning only the
/// bytes after `scanned`, which it advances. Accepts bare `\n` line ends as
/// RFC 9112 allows a server to. The buffer must not start with a line end.
fn find_head_end(buf: &[u8], scanned: &mut usize) -> Option<usize> {
    let mut i = *scanned;
    while let Some(off) = memchr::memchr(b'\n', &buf[i..]) {
        let nl = i + off;
        let before = &buf[..nl];
        if before.ends_with(b"\n") || before.ends_with(b"\n\r") {
            *scanned = nl + 1;
            return Some(nl + 1);
        }
        i = nl + 1;
    }
    *scanned = buf.len();
    None
}

/// Parses a complete head (request line, headers, blank line).
fn parse_head(head: &[u8], limits: &Limits) -> Result<(Request, Framing), HttpError> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut storage);
    let status = httparse::ParserConfig::default()
        .allow_multiple_spaces_in_request_line_delimiters(false)
        .parse_request(&mut req, head)
        .map_err(|e| match e {
            httparse::Error::TooManyHeaders => HttpError::HeadTooLarge,
            // 505 only for what is plainly another HTTP version.
            httparse::Error::Version if version_token(head).starts_with(b"HTTP/") => {
                HttpError::VersionNotSupported
            }
            other => HttpError::BadRequest(other.to_string()),
        })?;
    if status.is_partial() {
        return Err(HttpError::BadRequest("incomplete request head".into()));
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HttpError::BadRequest("incomplete request line".into()));
    };
    if !target.starts_with('/') {
        return Err(HttpError::BadRequest(
            "the request target must be a path starting with '/'".into(),
        ));
    }
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).trim().to_owned(),
            )
        })
        .collect();
    let request = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        minor_version: version,
        headers,
        body: Vec::new(),
    };
    let framing = framing(&request, limits)?;
    Ok((request, framing))
}

/// The third word of the request line.
fn version_token(head: &[u8]) -> &[u8] {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    line.split(|&b| b == b' ')
        .filter(|w| !w.is_empty())
        .nth(2)
        .unwrap_or_default()
}

fn framing(request: &Request, limits: &Limits) -> Result<Framing, HttpError> {
    let mut codings = request
        .headers_named("transfer-encoding")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .peekable();
    let lengths: Vec<&str> = request
        .headers_named("content-length")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if codings.peek().is_some() {
        if !lengths.is_empty() {
            return Err(HttpError::BadRequest(
                "both Content-Length and Transfer-Encoding were sent".into(),
            ));
        }
        let codings: Vec<&str> = codings.collect();
        if codings.len() != 1 || !codings[0].eq_ignore_ascii_case("chunked") {
            return Err(HttpError::NotImplemented(format!(
                "transfer coding {:?} (only chunked is supported)",
                codings.join(", ")
            )));
        }
        if request.minor_version == 0 {
            return Err(HttpError::BadRequest(
                "Transfer-Encoding in an HTTP/1.0 request".into(),
            ));
        }
        return Ok(Framing::Chunked(Chunk::Size));
    }
    let Some(first) = lengths.first() else {
        return Ok(Framing::Length(0));
    };
    if lengths.iter().any(|l| l != first) {
        return Err(HttpError::BadRequest(
            "conflicting Content-Length values".into(),
        ));
    }
    if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HttpError::BadRequest(format!(
            "Content-Length {first:?} is not a number"
        )));
    }
    match first.parse::<usize>() {
        Ok(n) if n <= limits.max_body => Ok(Framing::Length(n)),
        _ => Err(HttpError::BodyTooLarge),
    }
}

/// The longest chunk-size line (with extensions) or trailer line accepted.
const MAX_CHUNK_LINE: usize = 4096;

/// Decodes as much of a chunked body from `buf` as is there, appending
/// data to `body`; returns how many bytes of `buf` it used. `state` ends
/// at [`Chunk::Done`] once the whole body is there.
fn decode_chunked(
    buf: &[u8],
    state: &mut Chunk,
    body: &mut Vec<u8>,
    limits: &Limits,
) -> Result<usize, HttpError> {
    let mut pos = 0;
    loop {
        match *state {
            Chunk::Size => {
                let Some(line) = take_line(&buf[pos..])? else {
                    return Ok(pos);
                };
                pos += line.len();
                let text = trim_line(line);
                let size_text = text.split(|&b| b == b';').next().unwrap_or_default();
                let size_text = std::str::from_utf8(size_text)
                    .map_err(|_| HttpError::BadRequest("bad chunk size".into()))?
                    .trim();
                if size_text.is_empty() || !size_text.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(HttpError::BadRequest(format!(
                        "bad chunk size {:?}",
                        String::from_utf8_lossy(size_text.as_bytes())
                    )));
                }
                let size =
                    usize::from_str_radix(size_text, 16).map_err(|_| HttpError::BodyTooLarge)?;
                if size > limits.max_body.saturating_sub(body.len()) {
                    return Err(HttpError::BodyTooLarge);
                }
                *state = if size == 0 {
                    Chunk::Trailer
                } else {
                    Chunk::Data(size)
                };
            }
            Chunk::Data(n) => {
                let got = n.min(buf.len() - pos);
                body.extend_from_slice(&buf[pos..pos + got]);
                pos += got;
                if got < n {
                    *state = Chunk::Data(n - got);
                    return Ok(pos);
                }
                *state = Chunk::DataEnd;
            }
            Chunk::DataEnd => {
                let Some(line) = take_line(&buf[pos..])? else {
                    return Ok(pos);
                };
                if !trim_line(line).is_empty() {
                    return Err(HttpError::BadRequest(
                        "chunk data longer than its size".into(),
                    ));
                }
                pos += line.len();
                *state = Chunk::Size;
            }
            Chunk::Trailer => {
                let Some(line) = take_line(&buf[pos..])? else {
                    return Ok(pos);
                };
                pos += line.len();
                if trim_line(line).is_empty() {
                    *state = Chunk::Done;
                    return Ok(pos);
                }
            }
            Chunk::Done => return Ok(pos),
        }
    }
}

/// The next line of `buf`, with its line end, or `None` if it has not all
/// arrived.
fn take_line(buf: &[u8]) -> Result<Option<&[u8]>, HttpError> {
    match memchr::memchr(b'\n', buf) {
        Some(i) if i < MAX_CHUNK_LINE => Ok(Some(&buf[..=i])),
        Some(_) => Err(HttpError::BadRequest("chunk line too long".into())),
        None if buf.len() >= MAX_CHUNK_LINE => {
            Err(HttpError::BadRequest("chunk line too long".into()))
        }
        None => Ok(None),
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A response to send.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Response {
    pub status: u16,
    /// Header names as they are to be written; `Content-Length`, `Date`
    /// and `Connection` are added when the response is written.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A response with no body.
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `text/plain` response.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", "text/plain;charset=UTF-8".into())],
            body: body.into().into_bytes(),
        }
    }

    /// An `application/json` response.
    pub fn json(status: u16, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", "application/json".into())],
            body,
        }
    }

    /// A `text/html` response.
    pub fn html(status: u16, body: String) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", "text/html;charset=UTF-8".into())],
            body: body.into_bytes(),
        }
    }

    /// A `302 Found` to `location`.
    pub fn redirect(location: String) -> Response {
        Response {
            status: 302,
            headers: vec![("Location", location)],
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// The whole response as bytes. `keep_alive` false adds
    /// `Connection: close`.
    pub fn to_bytes(&self, keep_alive: bool, date: &str) -> Vec<u8> {
        let mut head = String::with_capacity(256);
        let _ = write!(head, "HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            // Values come from this server; still, never let one split the
            // head.
            let value: String = value.chars().filter(|c| !c.is_control()).collect();
            let _ = write!(head, "{name}: {value}\r\n");
        }
        let _ = write!(head, "Date: {date}\r\n");
        // 1xx, 204 and 304 responses have no body and no length.
        if !(self.status < 200 || self.status == 204 || self.status == 304) {
            let _ = write!(head, "Content-Length: {}\r\n", self.body.len());
        }
        if !keep_alive {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if self.status >= 200 && self.status != 204 && self.status != 304 {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// The reason phrase of a status code.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Decodes `%XX` escapes; with `plus`, also `+` as a space (query strings
/// and form bodies). `None` for a malformed escape or bytes that are not
/// UTF-8.
pub(crate) fn percent_decode(s: &str, plus: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The `name=value` pairs of a query string or form body, decoded; pairs
/// that do not decode are skipped.
pub(crate) fn form_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

/// The media type of a `Content-Type` value, lower case, without
/// parameters.
pub(crate) fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Whether an `Accept` header (absent: anything) admits `produced`
/// (`type/subtype`): any media range matching it with a quality above 0.
pub(crate) fn accepts(accept: Option<&str>, produced: &str) -> bool {
    let Some(accept) = accept else {
        return true;
    };
    if accept.trim().is_empty() {
        return true;
    }
    let (ptype, _) = produced.split_once('/').unwrap_or((produced, ""));
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let mt = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let zero = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .or_else(|| p.strip_prefix("Q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        if zero {
            return false;
        }
        mt == "*/*" || mt == produced || mt.strip_suffix("/*").is_some_and(|t| t == ptype)
    })
}

/// Whether an `Accept` header names `wanted` (or its `type/*`) explicitly,
/// not only through `*/*`.
pub(crate) fn names_type(accept: Option<&str>, wanted: &str) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let (wtype, _) = wanted.split_once('/').unwrap_or((wanted, ""));
    accept.split(',').any(|range| {
        let mt = range
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        mt == wanted || mt.strip_suffix("/*").is_some_and(|t| t == wtype)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_head: 1024,
        max_body: 64,
    };

    fn read_all(input: &[u8]) -> Result<Vec<Request>, HttpError> {
        let mut r = Reader::new(LIMITS);
        r.feed(input);
        let mut out = Vec::new();
        while let Some(req) = r.next_request()? {
            out.push(req);
        }
        Ok(out)
    }

    /// Feeds one byte at a time: the result must be the same as at once.
    fn read_bytewise(input: &[u8]) -> Result<Vec<Request>, HttpError> {
        let mut r = Reader::new(LIMITS);
        let mut out = Vec::new();
        for b in input {
            r.feed(&[*b]);
            while let Some(req) = r.next_request()? {
                out.push(req);
            }
        }
        Ok(out)
    }

    #[test]
    fn a_simple_get() -> Result<(), HttpError> {
        let input = b"GET /spalloc/srv/spalloc/?x=1 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n";
        for got in [read_all(input)?, read_bytewise(input)?] {
            assert_eq!(got.len(), 1);
            let r = &got[0];
            assert_eq!(r.method, "GET");
            assert_eq!(r.path(), "/spalloc/srv/spalloc/");
            assert_eq!(r.query(), "x=1");
            assert_eq!(r.header("host"), Some("h"));
            assert!(r.keep_alive());
            assert!(r.body.is_empty());
        }
        Ok(())
    }

    #[test]
    fn bodies_by_length_and_chunked_and_pipelining() -> Result<(), HttpError> {
        let input = b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloPUT /b HTTP/1.1\r\n\
                      Transfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: y\r\n\r\n\
                      GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        for got in [read_all(input)?, read_bytewise(input)?] {
            let bodies: Vec<&[u8]> = got.iter().map(|r| r.body.as_slice()).collect();
            assert_eq!(bodies, vec![&b"hello"[..], b"abcde", b""]);
            assert_eq!(got[2].minor_version, 0);
            assert!(got[2].keep_alive());
        }
        Ok(())
    }

    #[test]
    fn bare_newlines_and_leading_blank_lines() -> Result<(), HttpError> {
        let got = read_all(b"\r\n\nGET / HTTP/1.1\nHost: x\n\n")?;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].header("host"), Some("x"));
        Ok(())
    }

    #[test]
    fn limits_and_malformed_input() {
        let big_head = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(2000));
        assert_eq!(read_all(big_head.as_bytes()), Err(HttpError::HeadTooLarge));
        // No end of head in sight: refused once over the limit.
        assert_eq!(read_all(&[b'a'; 1100]), Err(HttpError::HeadTooLarge));
        let many: String = (0..70).map(|i| format!("X{i}: v\r\n")).collect();
        assert_eq!(
            read_all(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()),
            Err(HttpError::HeadTooLarge)
        );
        assert_eq!(
            read_all(b"POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n"),
            Err(HttpError::BodyTooLarge)
        );
        assert_eq!(
            read_all(b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
            Err(HttpError::BodyTooLarge)
        );
        assert_eq!(
            read_all(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n"),
            Err(HttpError::BodyTooLarge)
        );
        assert_eq!(
            read_all(
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffffff\r\n"
            ),
            Err(HttpError::BodyTooLarge)
        );
        for bad in [
            &b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET http://x/ HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
            b"G\x01T / HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n",
        ] {
            assert!(
                matches!(read_all(bad), Err(HttpError::BadRequest(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(matches!(
            read_all(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Err(HttpError::NotImplemented(_))
        ));
        assert_eq!(
            read_all(b"GET / HTTP/2.0\r\n\r\n"),
            Err(HttpError::VersionNotSupported)
        );
    }

    #[test]
    fn expect_continue_is_reported_once() -> Result<(), HttpError> {
        let mut r = Reader::new(LIMITS);
        r.feed(b"PUT /k HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
        assert_eq!(r.next_request()?, None);
        assert!(r.take_continue());
        assert!(!r.take_continue());
        r.feed(b"ok");
        assert_eq!(r.next_request()?.map(|q| q.body), Some(b"ok".to_vec()));
        Ok(())
    }

    #[test]
    fn responses() {
        let r = Response::text(404, "no such job").with("X-A", "b\r\nInjected: 1");
        let bytes = String::from_utf8(r.to_bytes(false, "D")).unwrap_or_default();
        assert_eq!(
            bytes,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain;charset=UTF-8\r\nX-A: bInjected: 1\r\n\
             Date: D\r\nContent-Length: 11\r\nConnection: close\r\n\r\nno such job"
        );
        let r = Response::empty(204);
        let bytes = String::from_utf8(r.to_bytes(true, "D")).unwrap_or_default();
        assert_eq!(bytes, "HTTP/1.1 204 No Content\r\nDate: D\r\n\r\n");
    }

    #[test]
    fn decoding_and_negotiation() {
        assert_eq!(percent_decode("a%20b+c", true).as_deref(), Some("a b c"));
        assert_eq!(percent_decode("a+b", false).as_deref(), Some("a+b"));
        assert_eq!(percent_decode("%zz", false), None);
        assert_eq!(percent_decode("%ff", false), None);
        assert_eq!(
            form_pairs("_csrf=a%3D&username=al+ice&flag&=x"),
            vec![
                ("_csrf".into(), "a=".into()),
                ("username".into(), "al ice".into()),
                ("flag".into(), String::new()),
                (String::new(), "x".into())
            ]
        );
        assert_eq!(media_type("Text/Plain; charset=UTF-8"), "text/plain");
        assert!(accepts(None, "text/plain"));
        assert!(accepts(Some("*/*"), "text/plain"));
        assert!(accepts(Some("text/*"), "text/plain"));
        assert!(!accepts(Some("application/json"), "text/plain"));
        assert!(!accepts(
            Some("text/plain;q=0, application/json"),
            "text/plain"
        ));
        assert!(names_type(Some("text/html,*/*;q=0.8"), "text/html"));
        assert!(!names_type(Some("*/*"), "text/html"));
    }
}
