//! Sockets and threads for the v2 front-end: accepting connections, TLS,
//! reading requests against deadlines, writing responses.
//!
//! One thread per connection, as in the v1 front-end, with a cap on open
//! connections (more are told `503` and closed). Every read is bounded by a
//! deadline: an idle connection is closed after `idle_timeout`, and a
//! request must arrive whole within `request_timeout` of its first byte, so
//! a slow client holds one thread for a bounded time and never the engine.
//! Requests that wait for a change (`?wait=true`) sleep on the change
//! signal, not on a timer, and are woken at shutdown.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{debug, info, warn};
use rustls::{ServerConnection, StreamOwned};

use super::api::{Answer, Service};
use super::http::{Limits, Reader, Response};
use super::websocket::Stream;
use super::wire;

/// How long writing one response may block before the client is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a connection refused for being over the cap is given to finish
/// sending its request (and to close) before the server closes it.
const REFUSAL_DRAIN: Duration = Duration::from_millis(250);
/// Responses to pipelined requests are written together up to about this
/// many bytes.
const OUT_BATCH: usize = 64 * 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the connection threads share.
#[derive(Debug)]
pub(crate) struct Front {
    pub service: Service,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    stopping: AtomicBool,
    /// Open connections (a second handle to each socket, to cut them at
    /// shutdown).
    conns: Mutex<Conns>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct Conns {
    open: HashMap<u64, TcpStream>,
    next: u64,
}

/// A plain or TLS connection.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(t) => &t.sock,
        }
    }

    /// Sends TLS's close_notify, so that the client sees a clean end.
    fn close(&mut self) {
        if let Conn::Tls(t) = self {
            t.conn.send_close_notify();
            let _ = t.flush();
        }
        let _ = self.tcp().shutdown(Shutdown::Both);
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(t) => t.flush(),
        }
    }
}

fn date() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    wire::http_date(now)
}

/// A running listener.
#[derive(Debug)]
pub(crate) struct Listener {
    pub front: Arc<Front>,
    pub addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

impl Listener {
    /// Starts accepting on `listener`.
    pub fn start(
        service: Service,
        tls: Option<Arc<rustls::ServerConfig>>,
        listener: TcpListener,
    ) -> io::Result<Listener> {
        let addr = listener.local_addr()?;
        let front = Arc::new(Front {
            service,
            tls,
            stopping: AtomicBool::new(false),
            conns: Mutex::new(Conns::default()),
            threads: Mutex::new(Vec::new()),
        });
        let f = front.clone();
        let acceptor = thread::Builder::new()
            .name("spalloc-v2-accept".into())
            .spawn(move || accept_loop(&f, &listener))?;
        Ok(Listener {
            front,
            addr,
            acceptor: Some(acceptor),
        })
    }

    /// Stops accepting, wakes waiting requests, cuts every connection and
    /// waits for all threads.
    pub fn stop(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.front.stopping.store(true, Ordering::SeqCst);
        self.front.service.changes.stop();
        // accept() has no timeout: knock on our own door to wake it.
        let target = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.addr.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), self.addr.port())
            }
            _ => self.addr,
        };
        match TcpStream::connect_timeout(&target, Duration::from_secs(2)) {
            Ok(_) => {
                let _ = acceptor.join();
            }
            Err(e) => warn!("v2: could not wake the accept thread ({e}); leaving it behind"),
        }
        for s in lock(&self.front.conns).open.values() {
            let _ = s.shutdown(Shutdown::Both);
        }
        let threads = std::mem::take(&mut *lock(&self.front.threads));
        for t in threads {
            let _ = t.join();
        }
        info!("v2 service on {} stopped", self.addr);
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(front: &Arc<Front>, listener: &TcpListener) {
    for stream in listener.incoming() {
        if front.stopping.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                debug!("v2: accept failed: {e}");
                // Typically out of file descriptors: give clients a moment
                // to go away instead of spinning. A timed pause, as nothing
                // announces that a descriptor is free again.
                thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        if let Err(e) = start_connection(front, stream) {
            debug!("v2: could not set up a connection: {e}");
        }
        lock(&front.threads).retain(|t| !t.is_finished());
    }
}

fn start_connection(front: &Arc<Front>, stream: TcpStream) -> io::Result<()> {
    let peer = stream.peer_addr()?;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let id = {
        let mut conns = lock(&front.conns);
        if conns.open.len() >= front.service.config.max_connections {
            drop(conns);
            info!("v2: refusing {peer}: too many connections");
            if front.tls.is_none() {
                let resp = Response::text(503, "too many connections; try again later");
                let mut s = &stream;
                let _ = s.write_all(&resp.to_bytes(false, &date()));
                // Take what the client sends (its request, which may still
                // be on its way) until it closes, briefly: closing with
                // unread data resets the connection, and the client would
                // lose the answer. Bounded in time and size, as this holds
                // up the accept loop, only while over the cap.
                let _ = stream.shutdown(Shutdown::Write);
                let until = Instant::now() + REFUSAL_DRAIN;
                let mut sink = [0u8; 4096];
                for _ in 0..16 {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
                        break;
                    }
                    match s.read(&mut sink) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            }
            let _ = stream.shutdown(Shutdown::Both);
            return Ok(());
        }
        conns.next += 1;
        let id = conns.next;
        conns.open.insert(id, stream.try_clone()?);
        id
    };
    let f = front.clone();
    let spawned = thread::Builder::new()
        .name(format!("spalloc-v2-conn-{id}"))
        .spawn(move || {
            serve(&f, stream, peer);
            lock(&f.conns).open.remove(&id);
        });
    match spawned {
        Ok(handle) => {
            lock(&front.threads).push(handle);
            Ok(())
        }
        Err(e) => {
            if let Some(s) = lock(&front.conns).open.remove(&id) {
                let _ = s.shutdown(Shutdown::Both);
            }
            Err(e)
        }
    }
}

/// How reading the next request ended, other than with a request.
enum Ended {
    /// The client closed, or the connection failed: nothing to answer.
    Gone,
    /// The client was too slow with a request it had started.
    TooSlow,
}

/// Serves one connection until it closes, errs or idles out.
fn serve(front: &Front, stream: TcpStream, peer: SocketAddr) {
    let config = &front.service.config;
    let limits = Limits {
        max_head: config.max_head,
        max_body: config.max_body,
    };
    let mut conn = match &front.tls {
        None => Conn::Plain(stream),
        Some(tls) => match ServerConnection::new(tls.clone()) {
            Ok(c) => Conn::Tls(Box::new(StreamOwned::new(c, stream))),
            Err(e) => {
                debug!("v2: TLS set-up for {peer} failed: {e}");
                return;
            }
        },
    };
    let mut reader = Reader::new(limits);
    let mut buf = vec![0u8; 16 * 1024];
    // Responses not yet written: while the client has more requests
    // waiting (pipelined), their responses go out together, in one write,
    // rather than one write (and one TLS record, and one wake-up of the
    // client) each. They are written before reading more from the client,
    // and before anything that may take a while to answer.
    let mut out = Vec::new();
    loop {
        let request = match next_request(front, &mut conn, &mut reader, &mut buf, &limits, &mut out)
        {
            Ok(r) => r,
            Err(Ended::Gone) => break,
            Err(Ended::TooSlow) => {
                let resp =
                    Response::text(408, "request timeout: the request did not arrive in time");
                out.extend(resp.to_bytes(false, &date()));
                let _ = write_out(&mut conn, &mut out);
                break;
            }
        };
        let request = match request {
            Ok(r) => r,
            Err(resp) => {
                out.extend(resp.to_bytes(false, &date()));
                let _ = write_out(&mut conn, &mut out);
                break;
            }
        };
        // A long-poll may hold its answer for the server's whole wait: the
        // answers before it must not wait with it.
        if request.query().contains("wait") && write_out(&mut conn, &mut out).is_err() {
            break;
        }
        let keep = request.keep_alive() && !front.stopping.load(Ordering::SeqCst);
        let resp = match front.service.answer(&request, peer.ip()) {
            Answer::Response(r) => r,
            Answer::Upgrade(accepted) => {
                let Some(hub) = &front.service.proxy else {
                    break;
                };
                out.extend(accepted.response.to_bytes(true, &date()));
                if write_out(&mut conn, &mut out).is_err() {
                    break;
                }
                // From here on the connection is the proxy's, with
                // whatever the client sent after its request.
                let stream = match conn {
                    Conn::Plain(s) => Stream::Plain(s),
                    Conn::Tls(t) => {
                        let t = *t;
                        Stream::Tls(Box::new(t.conn), t.sock)
                    }
                };
                hub.serve(stream, reader.into_rest(), peer, *accepted);
                return;
            }
        };
        let mut bytes = resp.to_bytes(keep, &date());
        if request.method == "HEAD" {
            // The head as for GET, without the body.
            if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                bytes.truncate(end + 4);
            }
        }
        out.extend(bytes);
        if !keep {
            let _ = write_out(&mut conn, &mut out);
            break;
        }
        if out.len() >= OUT_BATCH && write_out(&mut conn, &mut out).is_err() {
            break;
        }
    }
    conn.close();
}

/// Writes (and flushes) the responses waiting in `out`.
fn write_out(conn: &mut Conn, out: &mut Vec<u8>) -> io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let written = conn.write_all(out).and_then(|()| conn.flush());
    out.clear();
    written
}

/// Reads until a whole request is there. The inner `Err` is an answer to a
/// request that cannot be read (after which the connection closes).
fn next_request(
    front: &Front,
    conn: &mut Conn,
    reader: &mut Reader,
    buf: &mut [u8],
    limits: &Limits,
    out: &mut Vec<u8>,
) -> Result<Result<super::http::Request, Response>, Ended> {
    let config = &front.service.config;
    let idle_deadline = Instant::now() + config.idle_timeout;
    let mut request_deadline = None;
    loop {
        match reader.next_request() {
            Ok(Some(r)) => return Ok(Ok(r)),
            Ok(None) => {}
            Err(e) => {
                debug!("v2: unreadable request: {e:?}");
                return Ok(Err(e.response(limits)));
            }
        }
        if reader.take_continue() {
            out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        // Nothing more to answer without reading: what is answered goes out.
        if write_out(conn, out).is_err() {
            return Err(Ended::Gone);
        }
        if front.stopping.load(Ordering::SeqCst) {
            return Err(Ended::Gone);
        }
        let now = Instant::now();
        if request_deadline.is_none() && reader.has_partial() {
            request_deadline = Some(now + config.request_timeout);
        }
        let deadline = request_deadline.unwrap_or(idle_deadline);
        let left = deadline.saturating_duration_since(now);
        if left.is_zero() {
            return Err(if request_deadline.is_some() {
                Ended::TooSlow
            } else {
                Ended::Gone
            });
        }
        if conn.tcp().set_read_timeout(Some(left)).is_err() {
            return Err(Ended::Gone);
        }
        match conn.read(buf) {
            Ok(0) => return Err(Ended::Gone),
            Ok(n) => reader.feed(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                debug!("v2: read failed: {e}");
                return Err(Ended::Gone);
            }
        }
    }
}
