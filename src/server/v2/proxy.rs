//! The proxy websocket (PROTOCOL_V2.md §5): `proxy/{id}` under the
//! application root relays UDP between a client and the virtual boards of
//! job `{id}` ([`super::super::boards`]), channel by channel.
//!
//! The upgrade itself is checked in `api.rs` with the rest of the security
//! rules; here is what follows it. A [`Session`] per websocket reads the
//! client's frames with the library's codec (`crate::v2::proxy`) and keeps
//! its channels, each a UDP socket on 127.0.0.1 with a thread that relays
//! what arrives to the client. The [`Hub`] issues channel ids (unique
//! across the server, never 0), owns the virtual boards, and watches the
//! engine's change signal: when a job loses its boards, the channels of its
//! websockets are closed (the websockets stay open, as on the Java server)
//! and its boards stop.
//!
//! As on the Java server: a protocol abuse closes the websocket with 1007,
//! an op code past the protocol's with 1011, a text frame with 1003; a
//! failed call gets an `ERROR` frame; `CLOSE` of an unknown channel answers
//! 0; `MESSAGE` to an unknown, closed or unconnected channel is dropped; an
//! unconnected channel passes datagrams from the job's boards only. Unlike
//! it, `OPEN` after the job has lost its boards is refused (the Java server
//! would still open a channel to boards that may be someone else's by
//! then).

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::super::boards::{BoardPorts, Boards};
use super::super::epochs::ChangeSignal;
use super::super::net::Shared;
use super::super::state::later;
use super::config::V2Config;
use super::http::{Request, Response};
use super::websocket::{self, Event, Handler, Limits, Out, Stream};
use crate::v2::proxy::{CLOSE_BAD_DATA, CLOSE_SERVER_ERROR, ClientFrame, MAX_PAYLOAD, ServerFrame};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The most channels one websocket may have open.
pub(crate) const MAX_CHANNELS: usize = 4096;
/// The longest websocket message accepted: Tomcat's default buffer, which
/// the Java server runs with.
pub(crate) const MAX_MESSAGE: usize = 8 * 1024;
/// Events that may wait for a websocket's thread; datagrams beyond are
/// dropped, as a full UDP buffer drops them.
const EVENT_QUEUE: usize = 256;
/// Channel threads only relay datagrams.
const CHANNEL_STACK: usize = 128 * 1024;
/// The Java server's words when a job has no boards to proxy to.
pub(crate) const NOT_PROXYING: &str = "job not in state where proxying permitted";

/// An upgrade to the proxy that passed every check.
#[derive(Debug)]
pub(crate) struct Accepted {
    /// The `101 Switching Protocols` to send.
    pub response: Response,
    pub job: u64,
    /// The job's boards when the websocket opened (Ethernet chip relative
    /// to the job's root, and address), or `None` if it had none.
    pub hosts: Option<Vec<((i64, i64), String)>>,
    /// Who opened it.
    pub user: String,
}

/// Checks the headers of a websocket upgrade as Spring's handshake handler
/// does, in its order; the client's key, or the response refusing it.
pub(crate) fn check_upgrade(req: &Request) -> Result<String, Response> {
    if req.method != "GET" {
        return Err(Response::text(405, "the proxy is reached with GET").with("Allow", "GET"));
    }
    let has = |name: &str, token: &str| {
        req.headers_named(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if !has("upgrade", "websocket") {
        return Err(Response::text(
            400,
            "Can \"Upgrade\" only to \"WebSocket\".",
        ));
    }
    if !has("connection", "upgrade") {
        return Err(Response::text(400, "\"Connection\" must be \"upgrade\"."));
    }
    if req.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(Response::text(
            426,
            "Upgrade Required: only websocket version 13 is supported",
        )
        .with("Sec-WebSocket-Version", "13"));
    }
    match req.header("sec-websocket-key").map(str::trim) {
        Some(k) if !k.is_empty() && k.len() <= 64 => Ok(k.to_owned()),
        _ => Err(Response::text(400, "Missing \"Sec-WebSocket-Key\" header")),
    }
}

/// The `101 Switching Protocols` for a client's key.
pub(crate) fn switching(key: &str) -> Response {
    Response::empty(101)
        .with("Upgrade", "websocket")
        .with("Connection", "Upgrade")
        .with("Sec-WebSocket-Accept", accept_key(key))
}

/// `Sec-WebSocket-Accept` for `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
fn accept_key(key: &str) -> String {
    const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}{GUID}").as_bytes(),
    );
    base64(digest.as_ref())
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What the hub knows of one websocket.
struct Link {
    job: u64,
    events: SyncSender<Event>,
    /// Set when the job has lost its boards.
    gone: Arc<AtomicBool>,
}

/// The proxy's shared state: channel ids, virtual boards, open websockets.
pub(crate) struct Hub {
    shared: Arc<Shared>,
    changes: Arc<ChangeSignal>,
    boards: Boards,
    /// The last channel id issued.
    last_channel: AtomicU32,
    next_session: AtomicU64,
    sessions: Mutex<HashMap<u64, Link>>,
    /// Wakes channel threads from their reads when they are closed.
    waker: UdpSocket,
    limits: Limits,
    stopping: AtomicBool,
    watcher: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("boards", &self.boards)
            .field("sessions", &lock(&self.sessions).len())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// Starts the proxy's watcher; boards start when first used.
    pub fn start(
        shared: &Arc<Shared>,
        changes: &Arc<ChangeSignal>,
        config: &V2Config,
    ) -> io::Result<Arc<Hub>> {
        let engine = shared.clone();
        let boards = Boards::new(
            BoardPorts {
                scp: config.board_scp_port,
                boot: config.board_boot_port,
            },
            Box::new(move |job, address| engine.lock().controller.board_on(job, address)),
        );
        let hub = Arc::new(Hub {
            shared: shared.clone(),
            changes: changes.clone(),
            boards,
            last_channel: AtomicU32::new(0),
            next_session: AtomicU64::new(0),
            sessions: Mutex::new(HashMap::new()),
            waker: UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?,
            limits: Limits {
                send_buffer: config.proxy_send_buffer,
                send_timeout: config.proxy_send_timeout,
                max_message: MAX_MESSAGE,
            },
            stopping: AtomicBool::new(false),
            watcher: Mutex::new(None),
        });
        let h = hub.clone();
        let watcher = thread::Builder::new()
            .name("spalloc-proxy-watch".into())
            .spawn(move || watch(&h))?;
        *lock(&hub.watcher) = Some(watcher);
        Ok(hub)
    }

    /// Stops watching and stops every board. Websockets are ended by the
    /// listener, which cuts their connections.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.changes.stop();
        if let Some(w) = lock(&self.watcher).take() {
            let _ = w.join();
        }
        self.boards.stop();
    }

    /// A new channel id: unique across the server, never 0.
    fn next_channel(&self) -> u32 {
        loop {
            let id = self
                .last_channel
                .fetch_add(1, Ordering::SeqCst)
                .wrapping_add(1);
            if id != 0 {
                return id;
            }
        }
    }

    fn has_boards(&self, job: u64) -> bool {
        self.shared.lock().controller.job_allocation(job).is_some()
    }

    /// Serves an upgraded connection until it closes.
    pub fn serve(
        self: &Arc<Hub>,
        stream: Stream,
        early: Vec<u8>,
        peer: SocketAddr,
        accepted: Accepted,
    ) {
        let (tx, rx) = mpsc::sync_channel(EVENT_QUEUE);
        let gone = Arc::new(AtomicBool::new(accepted.hosts.is_none()));
        let id = self.next_session.fetch_add(1, Ordering::SeqCst);
        lock(&self.sessions).insert(
            id,
            Link {
                job: accepted.job,
                events: tx.clone(),
                gone: gone.clone(),
            },
        );
        let mut hosts = HashMap::new();
        for ((x, y), address) in accepted.hosts.iter().flatten() {
            if let (Ok(x), Ok(y)) = (u32::try_from(*x), u32::try_from(*y)) {
                hosts.insert((x, y), address.clone());
            }
        }
        let close_at_once = accepted.hosts.is_none().then(|| {
            info!(
                "proxy: {} at {peer}: job {} has no boards to proxy to",
                accepted.user, accepted.job
            );
            (CLOSE_SERVER_ERROR, NOT_PROXYING.to_owned())
        });
        info!(
            "proxy: {} at {peer} opened a websocket to job {}",
            accepted.user, accepted.job
        );
        let mut session = Session {
            hub: self.clone(),
            id,
            job: accepted.job,
            peer,
            addresses: Arc::new(hosts.values().cloned().collect()),
            hosts,
            channels: HashMap::new(),
            events: tx.clone(),
            gone,
            gone_seen: false,
        };
        websocket::serve(
            stream,
            early,
            peer,
            self.limits,
            (tx, rx),
            close_at_once,
            &mut session,
        );
    }
}

/// Waits for changes to the engine and acts on those that matter: a job
/// with websockets or boards that has lost its boards.
fn watch(hub: &Hub) {
    let mut seen = hub.shared.lock().epochs.global();
    loop {
        hub.changes
            .wait_past(seen, later(Instant::now(), Duration::from_secs(3600)));
        if hub.stopping.load(Ordering::SeqCst) {
            return;
        }
        let mut jobs: HashSet<u64> = lock(&hub.sessions).values().map(|l| l.job).collect();
        let running = hub.boards.running();
        jobs.extend(running.iter().map(|(j, _)| *j));
        // Each job's boards now, and the epoch they are as of.
        let (boards, epoch) = {
            let core = hub.shared.lock();
            let boards: HashMap<u64, HashSet<String>> = jobs
                .iter()
                .filter_map(|&j| {
                    let a = core.controller.job_allocation(j)?;
                    Some((j, a.connections.into_iter().map(|(_, h)| h).collect()))
                })
                .collect();
            (boards, core.epochs.global())
        };
        seen = epoch;
        for link in lock(&hub.sessions).values() {
            if !boards.contains_key(&link.job) && !link.gone.swap(true, Ordering::SeqCst) {
                // If the queue is full the flag is still seen with the
                // next event.
                let _ = link.events.try_send(Event::Wake);
            }
        }
        hub.boards
            .retain(|job, address| boards.get(&job).is_some_and(|b| b.contains(address)));
    }
}

/// Which datagrams a channel passes to its client.
enum Filter {
    /// Only from this board port (none: the board serves nothing there).
    Bound(Option<SocketAddr>),
    /// From any port of these boards (the job's).
    Unbound(Arc<HashSet<String>>),
}

struct Channel {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    /// Where `MESSAGE` goes; `None` on an unconnected channel, or for a
    /// port the virtual board does not serve.
    target: Option<SocketAddr>,
    bound: bool,
    closed: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// One websocket's channels.
struct Session {
    hub: Arc<Hub>,
    id: u64,
    job: u64,
    peer: SocketAddr,
    /// The job's boards by Ethernet chip, as when the websocket opened.
    hosts: HashMap<(u32, u32), String>,
    addresses: Arc<HashSet<String>>,
    channels: HashMap<u32, Channel>,
    events: SyncSender<Event>,
    gone: Arc<AtomicBool>,
    gone_seen: bool,
}

/// An `ERROR` reply.
fn error(correlation: u32, message: impl Into<String>) -> Vec<u8> {
    ServerFrame::Error {
        correlation,
        message: message.into().into(),
    }
    .encode()
}

fn valid_port(port: u32) -> bool {
    (1..=65535).contains(&port)
}

impl Session {
    /// Closes every channel once the job has lost its boards.
    fn check_gone(&mut self) {
        if self.gone_seen || !self.gone.load(Ordering::SeqCst) {
            return;
        }
        self.gone_seen = true;
        if !self.channels.is_empty() {
            info!(
                "proxy {}: job {} has no boards any more; closing its {} channel(s)",
                self.peer,
                self.job,
                self.channels.len()
            );
        }
        self.close_all();
    }

    fn close_all(&mut self) {
        for (_, ch) in self.channels.drain() {
            close_channel(&self.hub, ch);
        }
    }

    /// Whether the job has lost its boards, asking the engine rather than
    /// waiting for the watcher; closes the channels if so.
    fn lost_boards(&mut self) -> bool {
        if !self.gone.load(Ordering::SeqCst) && !self.hub.has_boards(self.job) {
            self.gone.store(true, Ordering::SeqCst);
        }
        self.check_gone();
        self.gone_seen
    }

    /// Whether a channel may be opened now; the `ERROR` if not.
    fn may_open(&mut self, correlation: u32) -> Result<(), Vec<u8>> {
        if self.lost_boards() {
            return Err(error(correlation, NOT_PROXYING));
        }
        if self.channels.len() >= MAX_CHANNELS {
            return Err(error(
                correlation,
                format!("too many channels: at most {MAX_CHANNELS} on one websocket"),
            ));
        }
        Ok(())
    }

    fn open(&mut self, correlation: u32, x: u32, y: u32, port: u32) -> Vec<u8> {
        if let Err(e) = self.may_open(correlation) {
            return e;
        }
        let Some(address) = self.hosts.get(&(x, y)).cloned() else {
            return error(correlation, "unrecognised ethernet chip");
        };
        if !valid_port(port) {
            return error(correlation, "bad port number");
        }
        let target = match self.hub.boards.endpoint(self.job, &address, port) {
            Ok(t) => t,
            Err(e) => {
                return error(
                    correlation,
                    format!("cannot start the virtual board at {address}: {e}"),
                );
            }
        };
        match self.start_channel(Filter::Bound(target)) {
            Ok((channel, ch)) => {
                debug!(
                    "proxy {}: channel {channel} to ({x}, {y}) port {port} ({address}, at {target:?})",
                    self.peer
                );
                self.channels.insert(channel, Channel { target, ..ch });
                ServerFrame::Opened {
                    correlation,
                    channel,
                }
                .encode()
            }
            Err(e) => error(correlation, format!("cannot open a channel: {e}")),
        }
    }

    fn open_unconnected(&mut self, correlation: u32) -> Vec<u8> {
        if let Err(e) = self.may_open(correlation) {
            return e;
        }
        match self.start_channel(Filter::Unbound(self.addresses.clone())) {
            Ok((channel, ch)) => {
                let (address, port) = match ch.local.ip() {
                    IpAddr::V4(ip) => (ip, u32::from(ch.local.port())),
                    IpAddr::V6(_) => (Ipv4Addr::LOCALHOST, u32::from(ch.local.port())),
                };
                debug!(
                    "proxy {}: unconnected channel {channel} at {}",
                    self.peer, ch.local
                );
                self.channels
                    .insert(channel, Channel { bound: false, ..ch });
                ServerFrame::OpenedUnconnected {
                    correlation,
                    channel,
                    address,
                    port,
                }
                .encode()
            }
            Err(e) => error(correlation, format!("cannot open a channel: {e}")),
        }
    }

    /// A UDP socket on loopback and the thread that relays what it
    /// receives; the boards answer it.
    fn start_channel(&self, filter: Filter) -> io::Result<(u32, Channel)> {
        let socket = Arc::new(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?);
        let local = socket.local_addr()?;
        let id = self.hub.next_channel();
        let closed = Arc::new(AtomicBool::new(false));
        self.hub.boards.allow(local);
        let (hub, s, c, events) = (
            self.hub.clone(),
            socket.clone(),
            closed.clone(),
            self.events.clone(),
        );
        let thread = thread::Builder::new()
            .name(format!("spalloc-proxy-channel-{id}"))
            .stack_size(CHANNEL_STACK)
            .spawn(move || relay(&hub, &s, id, &filter, &c, &events));
        let thread = match thread {
            Ok(t) => t,
            Err(e) => {
                self.hub.boards.disallow(local);
                return Err(e);
            }
        };
        Ok((
            id,
            Channel {
                socket,
                local,
                target: None,
                bound: true,
                closed,
                thread: Some(thread),
            },
        ))
    }

    fn message_to(
        &mut self,
        channel: u32,
        x: u32,
        y: u32,
        port: u32,
        payload: &[u8],
        out: &mut Out,
    ) {
        // In the Java server's order: the board, the port, the channel.
        let Some(address) = self.hosts.get(&(x, y)) else {
            out.close(
                CLOSE_BAD_DATA,
                format!("MESSAGE_TO ({x}, {y}): unrecognised ethernet chip"),
            );
            return;
        };
        if !valid_port(port) {
            out.close(
                CLOSE_BAD_DATA,
                format!("MESSAGE_TO port {port}: bad port number"),
            );
            return;
        }
        let Some(ch) = self.channels.get(&channel) else {
            return;
        };
        if ch.bound {
            out.close(
                CLOSE_BAD_DATA,
                format!("MESSAGE_TO channel {channel}: channel is connected"),
            );
            return;
        }
        match self.hub.boards.endpoint(self.job, address, port) {
            Ok(Some(target)) => {
                if let Err(e) = ch.socket.send_to(payload, target) {
                    out.close(CLOSE_SERVER_ERROR, format!("cannot send to {address}: {e}"));
                }
            }
            Ok(None) => {}
            Err(e) => out.close(
                CLOSE_SERVER_ERROR,
                format!("cannot start the virtual board at {address}: {e}"),
            ),
        }
    }
}

impl Handler for Session {
    fn binary(&mut self, message: &[u8], out: &mut Out) {
        self.check_gone();
        let frame = match ClientFrame::decode(message) {
            Ok(f) => f,
            Err(e) => {
                debug!("proxy {}: {e}", self.peer);
                out.close(e.server_close_code(), e.to_string());
                return;
            }
        };
        match frame {
            ClientFrame::Open {
                correlation,
                x,
                y,
                port,
            } => out.send(self.open(correlation, x, y, port)),
            ClientFrame::Close {
                correlation,
                channel,
            } => {
                // A job that has lost its boards has no channels, even if
                // the watcher has not said so yet: a CLOSE after a destroy
                // always answers 0.
                if self.channels.contains_key(&channel) {
                    self.lost_boards();
                }
                // Closing an unknown or closed channel is not an error: it
                // answers 0.
                let closed = match self.channels.remove(&channel) {
                    Some(ch) => {
                        close_channel(&self.hub, ch);
                        channel
                    }
                    None => 0,
                };
                out.send(
                    ServerFrame::Closed {
                        correlation,
                        channel: closed,
                    }
                    .encode(),
                );
            }
            ClientFrame::Message { channel, payload } => {
                // Dropped on an unknown, closed or unconnected channel.
                if let Some(ch) = self.channels.get(&channel)
                    && let Some(target) = ch.target
                    && let Err(e) = ch.socket.send_to(payload, target)
                {
                    out.close(CLOSE_SERVER_ERROR, format!("cannot send to the board: {e}"));
                }
            }
            ClientFrame::OpenUnconnected { correlation } => {
                out.send(self.open_unconnected(correlation));
            }
            ClientFrame::MessageTo {
                channel,
                x,
                y,
                port,
                payload,
            } => self.message_to(channel, x, y, port, payload, out),
        }
    }

    fn outgoing(&mut self, tag: u32, frame: Vec<u8>, out: &mut Out) {
        self.check_gone();
        // A datagram that arrived as its channel was being closed is lost.
        if self.channels.contains_key(&tag) {
            out.send(frame);
        }
    }

    fn wake(&mut self, _out: &mut Out) {
        self.check_gone();
    }

    fn finish(&mut self) {
        self.close_all();
        lock(&self.hub.sessions).remove(&self.id);
    }
}

/// Stops a channel's thread and forgets its socket.
fn close_channel(hub: &Hub, mut ch: Channel) {
    ch.closed.store(true, Ordering::SeqCst);
    hub.boards.disallow(ch.local);
    let Some(thread) = ch.thread.take() else {
        return;
    };
    // A datagram wakes the thread from its read; an idle socket on
    // loopback does not lose it.
    match hub.waker.send_to(&[], ch.local) {
        Ok(_) => {
            let _ = thread.join();
        }
        Err(e) => warn!("proxy: cannot wake the thread of a closed channel ({e})"),
    }
}

/// Relays a channel's datagrams to its websocket until the channel closes.
fn relay(
    hub: &Hub,
    socket: &UdpSocket,
    id: u32,
    filter: &Filter,
    closed: &AtomicBool,
    events: &SyncSender<Event>,
) {
    // One byte more than a relayed datagram may have, to see longer ones.
    let mut buf = vec![0u8; MAX_PAYLOAD + 1];
    loop {
        let received = socket.recv_from(&mut buf);
        if closed.load(Ordering::SeqCst) {
            return;
        }
        let (n, from) = match received {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionReset
                ) =>
            {
                continue;
            }
            Err(e) => {
                warn!("proxy: channel {id} cannot read ({e}); it relays nothing more");
                return;
            }
        };
        if n > MAX_PAYLOAD {
            debug!("proxy: channel {id} dropped a datagram over {MAX_PAYLOAD} bytes from {from}");
            continue;
        }
        let passes = match filter {
            Filter::Bound(target) => *target == Some(from),
            Filter::Unbound(boards) => hub
                .boards
                .board_at(from)
                .is_some_and(|b| boards.contains(&b)),
        };
        if !passes {
            debug!("proxy: channel {id} dropped a datagram from {from}, not a board of its job");
            continue;
        }
        let frame = ServerFrame::Message {
            channel: id,
            payload: &buf[..n],
        }
        .encode();
        match events.try_send(Event::Outgoing { tag: id, frame }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                debug!("proxy: channel {id} dropped a datagram: its websocket is behind");
            }
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_of_rfc_6455() {
        // The example of RFC 6455 §1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
    }

    fn upgrade(headers: &[(&str, &str)]) -> Request {
        Request {
            method: "GET".into(),
            target: "/spalloc/proxy/1".into(),
            minor_version: 1,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_owned()))
                .collect(),
            body: Vec::new(),
        }
    }

    #[test]
    fn upgrade_headers_are_checked_in_springs_order() {
        let good = [
            ("Upgrade", "websocket"),
            ("Connection", "keep-alive, Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        assert_eq!(
            check_upgrade(&upgrade(&good)).ok().as_deref(),
            Some("dGhlIHNhbXBsZSBub25jZQ==")
        );
        let status = |h: &[(&str, &str)]| check_upgrade(&upgrade(h)).err().map(|r| r.status);
        assert_eq!(status(&good[1..]), Some(400));
        assert_eq!(status(&[good[0], good[2], good[3]]), Some(400));
        assert_eq!(
            status(&[good[0], good[1], ("Sec-WebSocket-Version", "8"), good[3]]),
            Some(426)
        );
        assert_eq!(status(&good[..3]), Some(400));
        let mut post = upgrade(&good);
        post.method = "POST".into();
        assert_eq!(check_upgrade(&post).err().map(|r| r.status), Some(405));
    }
}
