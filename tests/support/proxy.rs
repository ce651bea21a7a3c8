//! A fault-injecting TCP proxy for loopback tests.
//!
//! [`Proxy::start`] listens on `127.0.0.1:0` and relays every connection to
//! an upstream server (normally a `VirtualServer`), line by line. At run
//! time a test can, for every connection at once: drop or reset (RST) the
//! connections, stall either direction, delay every line, truncate the next
//! line towards the client, inject garbage or an unsolicited notification
//! towards the client, or refuse new connections for a while. A fault can
//! start now ([`Proxy::inject`]) or when a client line containing some text
//! passes ([`Proxy::arm`]), so a test can hit one precise moment such as
//! "right after `create_job` reached the server".
//!
//! [`Proxy::start_http`] relays HTTP/1.1 the same way: lines are the
//! request and header lines (a trigger can match a request line such as
//! `DELETE /spalloc/srv/spalloc/jobs/`), and a body that does not end in a
//! newline is relayed as soon as it arrives; [`Proxy::count_requests`]
//! counts request lines.
//!
//! Threads: one acceptor, plus two pumps per connection. Every socket has a
//! short read timeout so that pumps notice faults and shutdown promptly, and
//! a write timeout so that nothing blocks for long; `Drop` stops and joins
//! everything.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often blocked pumps look at the fault settings.
const POLL: Duration = Duration::from_millis(10);
/// Longest a write may block before the connection is given up.
const WRITE_LIMIT: Duration = Duration::from_secs(5);

/// A fault, as injected into every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Close every connection (FIN) in both directions.
    Drop,
    /// Abort every connection with a TCP RST (SO_LINGER 0).
    Reset,
    /// Stop relaying client -> server for the fault's duration.
    StallUp,
    /// Stop relaying server -> client for the fault's duration.
    StallDown,
    /// Hold every line, in both directions, this long, for the duration.
    Delay(Duration),
    /// Send only the first half of the next line to the client, then close.
    Truncate,
    /// Send a line of bytes that are not JSON to the client.
    Garbage,
    /// Send `{"jobs_changed": [...]}` the client never asked for.
    Notification,
    /// Close every connection and reset every new one for the duration: a
    /// server that has gone away for a while.
    Refuse,
}

impl Fault {
    /// Every fault, each with the given delay for [`Fault::Delay`].
    pub fn all(delay: Duration) -> [Fault; 9] {
        [
            Fault::Drop,
            Fault::Reset,
            Fault::StallUp,
            Fault::StallDown,
            Fault::Delay(delay),
            Fault::Truncate,
            Fault::Garbage,
            Fault::Notification,
            Fault::Refuse,
        ]
    }

    /// A short name, for reports.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Drop => "drop",
            Fault::Reset => "reset",
            Fault::StallUp => "stall-up",
            Fault::StallDown => "stall-down",
            Fault::Delay(_) => "delay",
            Fault::Truncate => "truncate",
            Fault::Garbage => "garbage",
            Fault::Notification => "notification",
            Fault::Refuse => "refuse",
        }
    }
}

/// The bytes [`Fault::Garbage`] sends: invalid UTF-8, a NUL, half an object.
pub const GARBAGE: &[u8] = b"\x00\xff\xfe{\"return\": [1, 2,,]] garbage \x07\n";
/// The line [`Fault::Notification`] sends.
pub const NOTIFICATION: &[u8] = b"{\"jobs_changed\": [999999, 1]}\n";

#[derive(Debug, Default)]
struct Settings {
    stall_up_until: Option<Instant>,
    stall_down_until: Option<Instant>,
    delay: Option<(Duration, Instant)>,
    refuse_until: Option<Instant>,
    truncate_next: bool,
    /// (text to look for in a client line, fault, duration).
    armed: Option<(String, Fault, Duration)>,
}

/// Counters, for assertions and reports.
#[derive(Debug, Default)]
pub struct Stats {
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub lines_up: AtomicU64,
    pub lines_down: AtomicU64,
    pub faults: AtomicU64,
}

struct Conn {
    client: TcpStream,
    server: TcpStream,
    /// Serialises writes to the client, so injections fall between lines.
    down: Mutex<()>,
    closed: AtomicBool,
    /// In HTTP mode, a drop, reset or refusal armed on a request of this
    /// connection: it starts as the reply begins, so the server has read
    /// the whole request (body included) and acted on it.
    at_reply: Mutex<Option<(Fault, Duration)>>,
}

impl Conn {
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }

    /// Aborts with RST on the client side: with SO_LINGER 0, the kernel
    /// resets the connection when the descriptor is closed, which happens
    /// when the pumps (the last holders) let go a moment later.
    fn reset(&self) {
        self.closed.store(true, Ordering::SeqCst);
        set_linger_zero(&self.client);
        set_linger_zero(&self.server);
    }

    fn send_to_client(&self, bytes: &[u8]) {
        let _guard = lock(&self.down);
        if (&self.client).write_all(bytes).is_err() {
            self.close();
        }
    }
}

struct Shared {
    upstream: SocketAddr,
    /// Relays a trailing part line at once (HTTP bodies).
    http: bool,
    /// HTTP request lines relayed, in [`Proxy::start_http`] mode.
    requests: Mutex<Vec<String>>,
    settings: Mutex<Settings>,
    conns: Mutex<Vec<Arc<Conn>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Client lines relayed, by command name.
    commands: Mutex<HashMap<String, u64>>,
    done: AtomicBool,
    stats: Stats,
}

/// The proxy; stops everything when dropped.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// SO_LINGER with a zero timeout: close() then sends RST instead of FIN.
fn set_linger_zero(s: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a descriptor we own, with a pointer to a live,
    // correctly sized `linger` struct; it has no other memory effects.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

fn active(until: Option<Instant>) -> bool {
    until.is_some_and(|t| Instant::now() < t)
}

impl Proxy {
    /// Starts relaying `127.0.0.1:0` to `upstream`.
    pub fn start(upstream: SocketAddr) -> Proxy {
        Proxy::start_with(upstream, false)
    }

    /// Starts relaying `127.0.0.1:0` to `upstream`, an HTTP/1.1 server.
    pub fn start_http(upstream: SocketAddr) -> Proxy {
        Proxy::start_with(upstream, true)
    }

    fn start_with(upstream: SocketAddr, http: bool) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            upstream,
            http,
            requests: Mutex::new(Vec::new()),
            settings: Mutex::new(Settings::default()),
            conns: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
            commands: Mutex::new(HashMap::new()),
            done: AtomicBool::new(false),
            stats: Stats::default(),
        });
        let s = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("proxy-accept".into())
            .spawn(move || accept_loop(&s, &listener))
            .expect("spawn proxy");
        Proxy {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// How many client lines of command `name` have been relayed.
    pub fn count(&self, name: &str) -> u64 {
        lock(&self.shared.commands).get(name).copied().unwrap_or(0)
    }

    /// How many HTTP request lines containing `text` have been relayed
    /// (in [`Proxy::start_http`] mode).
    pub fn count_requests(&self, text: &str) -> u64 {
        lock(&self.shared.requests)
            .iter()
            .filter(|l| l.contains(text))
            .count() as u64
    }

    /// Connections currently open through the proxy.
    pub fn open_connections(&self) -> usize {
        let mut conns = lock(&self.shared.conns);
        conns.retain(|c| !c.closed.load(Ordering::SeqCst));
        conns.len()
    }

    /// Starts `fault` now, lasting `duration` where that means anything.
    pub fn inject(&self, fault: Fault, duration: Duration) {
        apply(&self.shared, fault, duration);
    }

    /// Starts `fault` when a client line containing `trigger` passes
    /// (once). Drops, resets and refusals start once that line has reached
    /// the server (in HTTP mode: once the reply to that request begins), so
    /// the server acts on it and the client loses the reply;
    /// every other fault starts just before the line goes on (a client-side
    /// stall holds that very line), so that the reply cannot slip past it.
    pub fn arm(&self, trigger: &str, fault: Fault, duration: Duration) {
        lock(&self.shared.settings).armed = Some((trigger.to_owned(), fault, duration));
    }

    /// Whether an armed fault has fired.
    pub fn fired(&self) -> bool {
        lock(&self.shared.settings).armed.is_none()
    }

    /// Ends every lasting fault and disarms any armed one.
    pub fn clear(&self) {
        *lock(&self.shared.settings) = Settings::default();
    }

    /// Refuses (resets) new connections while set.
    pub fn refuse_for(&self, d: Duration) {
        lock(&self.shared.settings).refuse_until = Some(Instant::now() + d);
    }

    /// Closes every connection (FIN).
    pub fn drop_all(&self) {
        for c in lock(&self.shared.conns).drain(..) {
            c.close();
        }
    }

    /// Resets every connection (RST).
    pub fn reset_all(&self) {
        for c in lock(&self.shared.conns).drain(..) {
            c.reset();
        }
    }

    /// Writes raw bytes to every client, between lines.
    pub fn send_to_clients(&self, bytes: &[u8]) {
        for c in lock(&self.shared.conns).iter() {
            c.send_to_client(bytes);
        }
    }
}

fn apply(shared: &Shared, fault: Fault, duration: Duration) {
    shared.stats.faults.fetch_add(1, Ordering::SeqCst);
    let until = Instant::now() + duration;
    match fault {
        Fault::Drop => {
            for c in lock(&shared.conns).drain(..) {
                c.close();
            }
        }
        Fault::Reset => {
            for c in lock(&shared.conns).drain(..) {
                c.reset();
            }
        }
        Fault::StallUp => lock(&shared.settings).stall_up_until = Some(until),
        Fault::StallDown => lock(&shared.settings).stall_down_until = Some(until),
        Fault::Delay(d) => lock(&shared.settings).delay = Some((d, until)),
        Fault::Truncate => lock(&shared.settings).truncate_next = true,
        Fault::Garbage | Fault::Notification => {
            let bytes = if fault == Fault::Garbage {
                GARBAGE
            } else {
                NOTIFICATION
            };
            for c in lock(&shared.conns).iter() {
                c.send_to_client(bytes);
            }
        }
        Fault::Refuse => {
            lock(&shared.settings).refuse_until = Some(until);
            for c in lock(&shared.conns).drain(..) {
                c.reset();
            }
        }
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    for stream in listener.incoming() {
        if shared.done.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = stream else { continue };
        if active(lock(&shared.settings).refuse_until) {
            shared.stats.refused.fetch_add(1, Ordering::SeqCst);
            set_linger_zero(&client);
            drop(client);
            continue;
        }
        let Ok(server) = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(2))
        else {
            set_linger_zero(&client);
            continue;
        };
        shared.stats.accepted.fetch_add(1, Ordering::SeqCst);
        for s in [&client, &server] {
            let _ = s.set_nodelay(true);
            let _ = s.set_read_timeout(Some(POLL));
            let _ = s.set_write_timeout(Some(WRITE_LIMIT));
        }
        let conn = Arc::new(Conn {
            client,
            server,
            down: Mutex::new(()),
            closed: AtomicBool::new(false),
            at_reply: Mutex::new(None),
        });
        lock(&shared.conns).push(Arc::clone(&conn));
        let mut threads = lock(&shared.threads);
        threads.retain(|t| !t.is_finished());
        for up in [true, false] {
            let (s, c) = (Arc::clone(shared), Arc::clone(&conn));
            if let Ok(t) = thread::Builder::new()
                .name(if up { "proxy-up" } else { "proxy-down" }.into())
                .spawn(move || pump(&s, &c, up))
            {
                threads.push(t);
            }
        }
    }
}

/// Relays one direction, a line at a time, applying the faults.
fn pump(shared: &Shared, conn: &Conn, up: bool) {
    let (mut from, to) = if up {
        (&conn.client, &conn.server)
    } else {
        (&conn.server, &conn.client)
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let stop = || shared.done.load(Ordering::SeqCst) || conn.closed.load(Ordering::SeqCst);
    loop {
        if stop() {
            break;
        }
        // Hold everything, read nothing, while this direction is stalled.
        let stalled = {
            let s = lock(&shared.settings);
            active(if up {
                s.stall_up_until
            } else {
                s.stall_down_until
            })
        };
        if stalled {
            thread::sleep(POLL);
            continue;
        }
        if let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if !relay_line(shared, conn, up, to, &line) {
                break;
            }
            continue;
        }
        // An HTTP body need not end in a newline: relay what is left at once.
        if shared.http && !pending.is_empty() {
            let part = std::mem::take(&mut pending);
            if !relay_line(shared, conn, up, to, &part) {
                break;
            }
            continue;
        }
        match from.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    // One side ended: end the other too, as a plain TCP relay would, unless
    // a reset is under way (then closing the descriptors sends the RST).
    if !conn.closed.swap(true, Ordering::SeqCst) {
        let _ = conn.client.shutdown(Shutdown::Both);
        let _ = conn.server.shutdown(Shutdown::Both);
    }
}

/// Forwards one line; false when the connection is finished.
fn relay_line(shared: &Shared, conn: &Conn, up: bool, mut to: &TcpStream, line: &[u8]) -> bool {
    if !up && let Some((fault, d)) = lock(&conn.at_reply).take() {
        // The fault ends this connection (a reset by RST, so no FIN here).
        apply(shared, fault, d);
        return false;
    }
    let (delay, fire) = {
        let mut s = lock(&shared.settings);
        let delay = s
            .delay
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(d, _)| d);
        let fire = if up {
            match &s.armed {
                Some((trigger, _, _)) if contains(line, trigger.as_bytes()) => {
                    s.armed.take().map(|(_, f, d)| (f, d))
                }
                _ => None,
            }
        } else {
            None
        };
        (delay, fire)
    };
    if let Some(d) = delay {
        thread::sleep(d);
    }
    // Faults that act on the reply start before the line goes on, so the
    // reply cannot slip past them; the others start after it has reached
    // the server, so the server acts on it and the client loses the reply.
    let (before, mut after) = match fire {
        Some((Fault::Drop | Fault::Reset | Fault::Refuse, _)) => (None, fire),
        _ => (fire, None),
    };
    if shared.http && after.is_some() {
        *lock(&conn.at_reply) = after.take();
    }
    if let Some((fault, d)) = before {
        apply(shared, fault, d);
        if fault == Fault::StallUp {
            // Hold this very line for the stall.
            thread::sleep(d);
        }
    }
    let truncate = !up && std::mem::take(&mut lock(&shared.settings).truncate_next);
    if up {
        shared.stats.lines_up.fetch_add(1, Ordering::SeqCst);
        if let Some(name) = command_name(line) {
            *lock(&shared.commands).entry(name).or_default() += 1;
        }
        if shared.http && is_request_line(line) {
            lock(&shared.requests).push(String::from_utf8_lossy(line).trim_end().to_owned());
        }
    } else {
        shared.stats.lines_down.fetch_add(1, Ordering::SeqCst);
    }
    let ok = if truncate {
        let half = &line[..line.len() / 2];
        let _guard = lock(&conn.down);
        let _ = to.write_all(half);
        let _ = to.flush();
        false
    } else if up {
        to.write_all(line).is_ok()
    } else {
        let _guard = lock(&conn.down);
        to.write_all(line).is_ok()
    };
    if let Some((fault, d)) = after {
        apply(shared, fault, d);
    }
    if !ok {
        conn.close();
    }
    ok
}

/// The command of a client line, as this crate's client writes it.
fn command_name(line: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"{\"command\":\"";
    let rest = line.strip_prefix(KEY)?;
    let end = rest.iter().position(|&b| b == b'"')?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// Whether a line is an HTTP/1.1 request line.
fn is_request_line(line: &[u8]) -> bool {
    [
        "GET ", "POST ", "PUT ", "DELETE ", "HEAD ", "OPTIONS ", "PATCH ",
    ]
    .iter()
    .any(|m| line.starts_with(m.as_bytes()))
        && contains(line, b" HTTP/1.")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.done.store(true, Ordering::SeqCst);
        for c in lock(&self.shared.conns).drain(..) {
            c.close();
        }
        // Wake the blocking accept() so it sees `done`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let threads = std::mem::take(&mut *lock(&self.shared.threads));
        for t in threads {
            let _ = t.join();
        }
    }
}
