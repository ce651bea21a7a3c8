//! A blocking client of the proxy websocket (PROTOCOL_V2.md §5):
//! [`ProxyClient`] and its [`Channel`]s.
//!
//! One websocket carries every channel. Its socket is shared by three
//! threads without polling: a reader that blocks on the socket and hands
//! replies and datagrams on, the callers (whose frames are written whole,
//! one at a time, under a lock), and a pinger that sends a websocket ping
//! every 30 s and cuts a connection from which nothing at all has come for
//! two of those periods. TLS is split the same way: the reader waits for
//! bytes on the bare socket, and only decrypts them under the lock.
//!
//! When the websocket drops (and only then: a close frame from the server is
//! final), the reader connects again, a few times with growing pauses, and
//! reopens every connected channel; each keeps its [`Channel`] handle.
//! Datagrams in flight meanwhile are lost, as UDP loses them. Unconnected
//! channels cannot be reopened at the same server-side address, so they
//! end instead.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{HandshakeError, Message, WebSocket};

use super::proxy::{ClientFrame, CloseKind, MAX_PAYLOAD, ServerFrame};
use super::url::Url;
use crate::error::{Error, Result};
use crate::interrupt::InterruptHandle;

/// How often a ping goes out.
pub const PING_INTERVAL: Duration = Duration::from_secs(30);
/// The shortest ping interval [`ProxyClient::set_ping_interval`] sets.
const MIN_PING_INTERVAL: Duration = Duration::from_millis(10);
/// Datagrams that may wait on one channel for its reader; more are dropped,
/// as a full UDP receive buffer drops them.
const CHANNEL_QUEUE: usize = 256;
/// The longest websocket message accepted from the server.
const MAX_MESSAGE: usize = 64 * 1024;
/// The longest a frame may take to write before the connection is given up.
const WRITE_LIMIT: Duration = Duration::from_secs(10);
/// Pauses before each attempt to reconnect after the websocket dropped.
const RECONNECT_PAUSES: [Duration; 5] = [
    Duration::from_millis(0),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];
/// The longest server text shown in an error.
const MAX_TEXT: usize = 200;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `text` with control characters made visible and cut to a bound: it
/// came from the network.
fn visible(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == MAX_TEXT {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// Where the websocket is and how to get in: built by
/// [`RestClient::proxy`](super::RestClient::proxy).
pub(crate) struct Target {
    pub job: u64,
    pub url: Url,
    /// Credentials and the like, sent with every upgrade request. Never
    /// logged.
    pub headers: Vec<(&'static str, String)>,
    pub tls: Option<Arc<ClientConfig>>,
    pub timeout: Option<Duration>,
    pub interrupt: Option<InterruptHandle>,
}

/// The socket under one websocket, shared between its reader and writers.
struct Wire {
    tcp: TcpStream,
    tls: Option<Mutex<ClientConnection>>,
    /// Serialises writes on a plain socket.
    write: Mutex<()>,
}

/// A handle on a [`Wire`] that tungstenite reads and writes through.
#[derive(Clone)]
struct Half(Arc<Wire>);

impl Read for Half {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let wire = &*self.0;
        let Some(tls) = &wire.tls else {
            return (&wire.tcp).read(buf);
        };
        let mut raw = [0u8; 4096];
        loop {
            {
                let mut conn = lock(tls);
                match conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            // Wait for bytes without the lock, so writers can go on.
            let n = (&wire.tcp).read(&mut raw)?;
            if n == 0 {
                return Ok(0);
            }
            let mut conn = lock(tls);
            let mut rest = &raw[..n];
            while !rest.is_empty() {
                conn.read_tls(&mut rest)?;
                conn.process_new_packets().map_err(io::Error::other)?;
            }
            let _w = lock(&wire.write);
            while conn.wants_write() {
                conn.write_tls(&mut &wire.tcp)?;
            }
        }
    }
}

impl Write for Half {
    /// Writes all of `buf` or fails: tungstenite hands over whole frames,
    /// so frames from different handles never interleave.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let wire = &*self.0;
        match &wire.tls {
            None => {
                let _w = lock(&wire.write);
                (&wire.tcp).write_all(buf)?;
            }
            Some(tls) => {
                let mut conn = lock(tls);
                conn.writer().write_all(buf)?;
                let _w = lock(&wire.write);
                while conn.wants_write() {
                    conn.write_tls(&mut &wire.tcp)?;
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One open websocket: the socket and the writing half.
struct Socket {
    wire: Arc<Wire>,
    writer: Mutex<WebSocket<Half>>,
}

impl Socket {
    fn send(&self, message: Message) -> Result<()> {
        lock(&self.writer).send(message).map_err(ws_error)
    }

    fn cut(&self) {
        let _ = self.wire.tcp.shutdown(Shutdown::Both);
    }
}

fn ws_error(e: tungstenite::Error) -> Error {
    match e {
        tungstenite::Error::Io(e) => Error::Io(e),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            Error::Disconnected
        }
        other => Error::Io(io::Error::other(other.to_string())),
    }
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// Opens the websocket: TCP, TLS, the upgrade. Returns the socket and the
/// reading half.
fn open_socket(target: &Target) -> Result<(Arc<Socket>, WebSocket<Half>)> {
    let url = &target.url;
    let mut tcp = crate::client::connect_stream(
        &url.host,
        url.port,
        target.timeout,
        target.interrupt.as_ref(),
    )?;
    tcp.set_nodelay(true)?;
    tcp.set_write_timeout(Some(WRITE_LIMIT))?;
    // Bounded until the upgrade is through; then the reader waits for as
    // long as the websocket lives (pings keep it honest).
    tcp.set_read_timeout(target.timeout)?;
    let tls = match &target.tls {
        None => None,
        Some(config) => {
            let name = ServerName::try_from(url.host.clone()).map_err(|_| {
                Error::InvalidArgument(crate::error::InvalidArgument::ServiceUrl(format!(
                    "'{}' is not a host name TLS can check",
                    url.host
                )))
            })?;
            let mut conn = ClientConnection::new(Arc::clone(config), name)
                .map_err(|e| Error::Io(io::Error::other(e)))?;
            while conn.is_handshaking() {
                conn.complete_io(&mut tcp)?;
            }
            Some(Mutex::new(conn))
        }
    };
    let wire = Arc::new(Wire {
        tcp,
        tls,
        write: Mutex::new(()),
    });
    let scheme = if url.secure { "wss" } else { "ws" };
    let origin = url.origin();
    let authority = origin.split_once("://").map_or(origin.as_str(), |(_, a)| a);
    let text = format!("{scheme}://{authority}{}", url.path);
    let mut request = text
        .as_str()
        .into_client_request()
        .map_err(|e| invalid(&format!("the proxy URL {text} cannot be used: {e}")))?;
    let headers = request.headers_mut();
    for (name, value) in &target.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(n, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&url.origin()) {
        headers.insert("Origin", v);
    }
    let reader = match tungstenite::client::client_with_config(
        request,
        Half(Arc::clone(&wire)),
        Some(ws_config()),
    ) {
        Ok((ws, _)) => ws,
        Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            return Err(Error::Server(format!(
                "the service refused the proxy websocket for job {} (HTTP {}): is the job \
                 yours and allocated?",
                target.job,
                response.status().as_u16()
            )));
        }
        Err(HandshakeError::Failure(e)) => return Err(ws_error(e)),
        Err(HandshakeError::Interrupted(_)) => {
            return Err(Error::Timeout(crate::error::Phase::Reply));
        }
    };
    wire.tcp.set_read_timeout(None)?;
    let writer =
        WebSocket::from_raw_socket(Half(Arc::clone(&wire)), Role::Client, Some(ws_config()));
    debug!("proxy websocket for job {} open", target.job);
    Ok((
        Arc::new(Socket {
            wire,
            writer: Mutex::new(writer),
        }),
        reader,
    ))
}

/// What a channel is open to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Connected { x: u32, y: u32, port: u16 },
    Unconnected,
}

/// The reply to a call.
enum Reply {
    Opened(u32),
    Closed,
    OpenedUnconnected(u32, Ipv4Addr, u32),
    Failed(String),
    /// The websocket went before the reply came.
    Lost(String),
}

/// Who waits for a correlation id's reply.
enum Pending {
    Call(SyncSender<Reply>),
    /// A channel being reopened after a reconnection.
    Reopen(u64),
}

struct ChannelState {
    kind: Kind,
    /// The server's id for it on the current websocket, if open there.
    remote: Option<u32>,
    datagrams: SyncSender<Vec<u8>>,
}

#[derive(Default)]
struct State {
    socket: Option<Arc<Socket>>,
    next_correlation: u32,
    next_key: u64,
    pending: HashMap<u32, Pending>,
    channels: HashMap<u64, ChannelState>,
    by_remote: HashMap<u32, u64>,
    /// Why the proxy has ended, once it has.
    ended: Option<String>,
    /// When anything last came from the server.
    last_heard: Option<Instant>,
}

struct Inner {
    target: Target,
    state: Mutex<State>,
    /// Signalled when the proxy ends or reconnects.
    changed: Condvar,
    closing: AtomicBool,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Ends the proxy for good: every call and channel ends with `why`.
    fn end(&self, why: String) {
        let mut s = self.state();
        if s.ended.is_none() {
            s.ended = Some(why.clone());
        }
        for (_, p) in s.pending.drain() {
            if let Pending::Call(tx) = p {
                let _ = tx.try_send(Reply::Lost(why.clone()));
            }
        }
        s.channels.clear();
        s.by_remote.clear();
        if let Some(socket) = s.socket.take() {
            socket.cut();
        }
        self.changed.notify_all();
    }
}

/// A client of a job's proxy websocket: channels to its boards' UDP ports
/// over one websocket (PROTOCOL_V2.md §5).
///
/// Open it with [`RestClient::proxy`](super::RestClient::proxy). Calls
/// block until the server answers (within the client's timeout), and may be
/// made from any thread; each [`Channel`] is read on its own.
///
/// The service keeps a websocket open even after the job is destroyed (its
/// channels just go quiet): watch the job and [`close`](Self::close) the
/// proxy when it ends, as `spalloc proxy` does.
///
/// # Example
/// ```no_run
/// use std::time::Duration;
/// use spalloc::v2::{RestClient, V2Settings};
/// use spalloc::v2::proxy::SCP_PORT;
///
/// let settings = V2Settings::default().login("alice", "s3cret");
/// let mut rest = RestClient::connect("https://spalloc.example.org/spalloc/", &settings, None, None)?;
/// let proxy = rest.proxy(1234)?;
/// let board = proxy.open(0, 0, SCP_PORT)?;
/// board.send(&[0, 0 /* an SCP packet */])?;
/// if let Some(reply) = board.recv(Some(Duration::from_secs(1)))? {
///     println!("{} bytes back", reply.len());
/// }
/// proxy.close();
/// # Ok::<(), spalloc::Error>(())
/// ```
pub struct ProxyClient {
    inner: Arc<Inner>,
    stop_pinger: Option<SyncSender<Pinger>>,
}

/// What the pinger thread is told.
enum Pinger {
    /// Ping this often from now on.
    Every(Duration),
    /// Stop.
    Stop,
}

impl std::fmt::Debug for ProxyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyClient")
            .field("job", &self.inner.target.job)
            .field("url", &self.inner.target.url.to_string())
            .finish_non_exhaustive()
    }
}

/// One channel of a [`ProxyClient`]: datagrams to and from one UDP port of
/// one board (connected), or from every board of the job (unconnected).
/// Dropping it closes it.
pub struct Channel {
    inner: Arc<Inner>,
    key: u64,
    kind: Kind,
    datagrams: Mutex<Receiver<Vec<u8>>>,
    /// For an unconnected channel: where boards must send to.
    address: Option<(Ipv4Addr, u32)>,
    closed: bool,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("kind", &self.kind)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl ProxyClient {
    /// Opens the websocket and starts its reader and pinger.
    pub(crate) fn open_with(target: Target) -> Result<ProxyClient> {
        let (socket, reader) = open_socket(&target)?;
        let inner = Arc::new(Inner {
            target,
            state: Mutex::new(State {
                socket: Some(Arc::clone(&socket)),
                next_correlation: 1,
                next_key: 1,
                last_heard: Some(Instant::now()),
                ..State::default()
            }),
            changed: Condvar::new(),
            closing: AtomicBool::new(false),
        });
        let job = inner.target.job;
        let reading = Arc::clone(&inner);
        thread::Builder::new()
            .name(format!("proxy-read-{job}"))
            .spawn(move || read_loop(&reading, reader))?;
        let (stop, stopped) = mpsc::sync_channel(1);
        let pinging = Arc::clone(&inner);
        thread::Builder::new()
            .name(format!("proxy-ping-{job}"))
            .spawn(move || ping_loop(&pinging, &stopped))?;
        Ok(ProxyClient {
            inner,
            stop_pinger: Some(stop),
        })
    }

    /// The job whose boards this reaches.
    pub fn job(&self) -> u64 {
        self.inner.target.job
    }

    /// Why the proxy has ended, or `None` while it is open.
    pub fn ended(&self) -> Option<String> {
        self.inner.state().ended.clone()
    }

    /// Waits up to `limit` (`None`: for ever) for the proxy to end; its
    /// reason, or `None` if it is still open.
    pub fn wait_ended(&self, limit: Option<Duration>) -> Option<String> {
        let deadline = limit.map(|l| Instant::now() + l);
        let mut s = self.inner.state();
        loop {
            if let Some(why) = &s.ended {
                return Some(why.clone());
            }
            s = match deadline {
                None => self
                    .inner
                    .changed
                    .wait(s)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    self.inner
                        .changed
                        .wait_timeout(s, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    /// Opens a channel to UDP port `port` of the board whose Ethernet chip
    /// is (`x`, `y`) in the job's coordinates (as the job's `connections`
    /// list them).
    ///
    /// # Errors
    /// [`Error::Server`] with the server's reason (`unrecognised ethernet
    /// chip`, `bad port number`, …), [`Error::InvalidArgument`] for port 0,
    /// [`Error::Disconnected`] if the proxy has ended, or a timeout.
    pub fn open(&self, x: u32, y: u32, port: u16) -> Result<Channel> {
        if port == 0 {
            return Err(invalid("UDP port 0 cannot be proxied"));
        }
        let kind = Kind::Connected { x, y, port };
        let (tx, rx) = mpsc::sync_channel(CHANNEL_QUEUE);
        let (key, reply) = self.call(|corr| ClientFrame::Open {
            correlation: corr,
            x,
            y,
            port: u32::from(port),
        })?;
        match reply {
            Reply::Opened(remote) => Ok(self.register(key, kind, remote, tx, rx, None)),
            Reply::Failed(why) => Err(Error::Server(format!(
                "the proxy would not open a channel to port {port} of the board at chip \
                 ({x}, {y}) of job {}: {why}",
                self.job()
            ))),
            other => Err(self.unexpected(other)),
        }
    }

    /// Opens an unconnected channel: it hears datagrams from every board of
    /// the job that sends to the server-side address it reports
    /// ([`Channel::address`]), and sends with [`Channel::send_to`].
    ///
    /// Unlike a connected channel, it ends if the websocket drops (its
    /// calls then fail with [`Error::Disconnected`]): a reopened websocket
    /// would be given another address, which the boards do not know. Open
    /// another, and tell the boards its address.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_unconnected(&self) -> Result<Channel> {
        let (tx, rx) = mpsc::sync_channel(CHANNEL_QUEUE);
        let (key, reply) = self.call(|corr| ClientFrame::OpenUnconnected { correlation: corr })?;
        match reply {
            Reply::OpenedUnconnected(remote, ip, port) => {
                Ok(self.register(key, Kind::Unconnected, remote, tx, rx, Some((ip, port))))
            }
            Reply::Failed(why) => Err(Error::Server(format!(
                "the proxy would not open an unconnected channel for job {}: {why}",
                self.job()
            ))),
            other => Err(self.unexpected(other)),
        }
    }

    fn unexpected(&self, reply: Reply) -> Error {
        match reply {
            Reply::Lost(why) => {
                debug!("proxy call lost: {why}");
                Error::Disconnected
            }
            _ => Error::Server(format!(
                "the proxy of job {} answered a call with the wrong kind of reply",
                self.job()
            )),
        }
    }

    fn register(
        &self,
        key: u64,
        kind: Kind,
        remote: u32,
        tx: SyncSender<Vec<u8>>,
        rx: Receiver<Vec<u8>>,
        address: Option<(Ipv4Addr, u32)>,
    ) -> Channel {
        let mut s = self.inner.state();
        s.channels.insert(
            key,
            ChannelState {
                kind,
                remote: Some(remote),
                datagrams: tx,
            },
        );
        s.by_remote.insert(remote, key);
        drop(s);
        Channel {
            inner: Arc::clone(&self.inner),
            key,
            kind,
            datagrams: Mutex::new(rx),
            address,
            closed: false,
        }
    }

    /// Sends a call frame and waits for its reply; also allocates a channel
    /// key.
    fn call(&self, frame: impl FnOnce(u32) -> ClientFrame<'static>) -> Result<(u64, Reply)> {
        call(&self.inner, frame)
    }

    /// Pings the service every `every` from now on instead of every
    /// [`PING_INTERVAL`] (30 s). A websocket that has been silent for two of
    /// them, pongs included, is taken for lost and reopened. A shorter
    /// interval notices a dead network path sooner (and keeps a NAT or
    /// firewall mapping open); at most one change is pending at a time.
    pub fn set_ping_interval(&self, every: Duration) {
        if let Some(pinger) = &self.stop_pinger {
            let _ = pinger.try_send(Pinger::Every(every.max(MIN_PING_INTERVAL)));
        }
    }

    /// Closes the websocket (and with it every channel).
    pub fn close(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        self.inner.closing.store(true, Ordering::SeqCst);
        if let Some(stop) = self.stop_pinger.take() {
            let _ = stop.try_send(Pinger::Stop);
        }
        let socket = self.inner.state().socket.clone();
        if let Some(socket) = socket {
            let _ = socket.send(Message::Close(Some(tungstenite::protocol::CloseFrame {
                code: tungstenite::protocol::frame::coding::CloseCode::Normal,
                reason: "".into(),
            })));
        }
        self.inner.end("the proxy was closed".into());
    }
}

impl Drop for ProxyClient {
    fn drop(&mut self) {
        if self.stop_pinger.is_some() {
            self.shut();
        }
    }
}

fn call(inner: &Inner, frame: impl FnOnce(u32) -> ClientFrame<'static>) -> Result<(u64, Reply)> {
    let (tx, rx) = mpsc::sync_channel(1);
    let (socket, corr, key) = {
        let mut s = inner.state();
        if s.ended.is_some() {
            return Err(Error::Disconnected);
        }
        let Some(socket) = s.socket.clone() else {
            return Err(Error::Disconnected);
        };
        let corr = s.next_correlation;
        s.next_correlation = s.next_correlation.wrapping_add(1);
        let key = s.next_key;
        s.next_key += 1;
        s.pending.insert(corr, Pending::Call(tx));
        (socket, corr, key)
    };
    let bytes = frame(corr)
        .encode()
        .map_err(|e| Error::Io(io::Error::other(e.to_string())))?;
    if let Err(e) = socket.send(Message::binary(bytes)) {
        inner.state().pending.remove(&corr);
        socket.cut();
        return Err(e);
    }
    let reply = match inner.target.timeout {
        None => rx.recv().map_err(|_| Error::Disconnected)?,
        Some(t) => match rx.recv_timeout(t) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => {
                inner.state().pending.remove(&corr);
                return Err(Error::Timeout(crate::error::Phase::Reply));
            }
            Err(RecvTimeoutError::Disconnected) => return Err(Error::Disconnected),
        },
    };
    Ok((key, reply))
}

impl Channel {
    /// For an unconnected channel, the server-side IPv4 address and UDP
    /// port that boards must send to (for example in an IP tag).
    pub fn address(&self) -> Option<(Ipv4Addr, u32)> {
        self.address
    }

    /// Sends one datagram to the channel's board. A datagram sent while the
    /// websocket is being reopened is lost, as UDP may lose it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for more than 2040 bytes or on an
    /// unconnected channel; [`Error::Disconnected`] once the channel or
    /// the proxy is closed; a transport error.
    pub fn send(&self, payload: &[u8]) -> Result<()> {
        if self.kind == Kind::Unconnected {
            return Err(invalid("an unconnected channel sends only with send_to"));
        }
        self.send_frame(|channel| ClientFrame::Message { channel, payload })
    }

    /// Sends one datagram from an unconnected channel to UDP port `port` of
    /// the board whose Ethernet chip is (`x`, `y`).
    ///
    /// # Errors
    /// As [`send`](Self::send), but only on an unconnected channel. A chip
    /// not in the job makes the server close the websocket (1007), which
    /// ends the proxy.
    pub fn send_to(&self, x: u32, y: u32, port: u16, payload: &[u8]) -> Result<()> {
        if self.kind != Kind::Unconnected {
            return Err(invalid(
                "a connected channel sends only with send (the server would close the \
                 websocket)",
            ));
        }
        if port == 0 {
            return Err(invalid("UDP port 0 cannot be proxied"));
        }
        self.send_frame(|channel| ClientFrame::MessageTo {
            channel,
            x,
            y,
            port: u32::from(port),
            payload,
        })
    }

    fn send_frame<'p>(&self, frame: impl FnOnce(u32) -> ClientFrame<'p>) -> Result<()> {
        let (socket, remote) = {
            let s = self.inner.state();
            if self.closed || s.ended.is_some() {
                return Err(Error::Disconnected);
            }
            let Some(c) = s.channels.get(&self.key) else {
                return Err(Error::Disconnected);
            };
            match (&s.socket, c.remote) {
                (Some(socket), Some(remote)) => (Arc::clone(socket), remote),
                // Reconnecting: lost, as UDP may lose it.
                _ => return Ok(()),
            }
        };
        let frame = frame(remote);
        let payload_len = match &frame {
            ClientFrame::Message { payload, .. } | ClientFrame::MessageTo { payload, .. } => {
                payload.len()
            }
            _ => 0,
        };
        if payload_len > MAX_PAYLOAD {
            return Err(invalid(
                "a datagram longer than 2040 bytes cannot be proxied",
            ));
        }
        let bytes = frame
            .encode()
            .map_err(|e| Error::Io(io::Error::other(e.to_string())))?;
        if let Err(e) = socket.send(Message::binary(bytes)) {
            // The reader notices too, and reconnects.
            socket.cut();
            debug!("a proxied datagram was lost: {e}");
        }
        Ok(())
    }

    /// Waits up to `limit` (`None`: for ever) for the next datagram from
    /// the board; `None` if none came in time.
    ///
    /// # Errors
    /// [`Error::Disconnected`] once the channel or the proxy is closed
    /// (datagrams already received are still returned first).
    pub fn recv(&self, limit: Option<Duration>) -> Result<Option<Vec<u8>>> {
        let datagrams = lock(&self.datagrams);
        match limit {
            None => datagrams.recv().map(Some).map_err(|_| Error::Disconnected),
            Some(t) => match datagrams.recv_timeout(t) {
                Ok(d) => Ok(Some(d)),
                Err(RecvTimeoutError::Timeout) => Ok(None),
                Err(RecvTimeoutError::Disconnected) => Err(Error::Disconnected),
            },
        }
    }

    /// Closes the channel. Closing a channel the server has already closed
    /// (its job destroyed, say) is not an error.
    ///
    /// # Errors
    /// A transport error or timeout; [`Error::Disconnected`] if the proxy
    /// has ended.
    pub fn close(mut self) -> Result<()> {
        self.close_inner()
    }

    fn close_inner(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let remote = {
            let mut s = self.inner.state();
            let c = s.channels.remove(&self.key);
            let remote = c.and_then(|c| c.remote);
            if let Some(r) = remote {
                s.by_remote.remove(&r);
            }
            if s.ended.is_some() {
                return Ok(());
            }
            remote
        };
        let Some(remote) = remote else {
            return Ok(());
        };
        match call(&self.inner, |corr| ClientFrame::Close {
            correlation: corr,
            channel: remote,
        })?
        .1
        {
            Reply::Closed => Ok(()),
            Reply::Failed(why) => Err(Error::Server(format!(
                "the proxy would not close channel {remote}: {why}"
            ))),
            Reply::Lost(_) => Err(Error::Disconnected),
            _ => Err(Error::Server(
                "the proxy answered CLOSE with the wrong kind of reply".into(),
            )),
        }
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        if !self.closed
            && let Err(e) = self.close_inner()
        {
            debug!("closing a proxy channel: {e}");
        }
    }
}

fn invalid(message: &str) -> Error {
    Error::InvalidArgument(crate::error::InvalidArgument::Proxy(message.into()))
}

/// What ended a websocket.
enum Ending {
    /// The server closed it with a close frame: final.
    Closed(String),
    /// It dropped: worth reconnecting.
    Dropped(String),
}

/// Reads one websocket until it ends.
fn read_socket(inner: &Inner, mut reader: WebSocket<Half>) -> Ending {
    loop {
        let message = match reader.read() {
            Ok(m) => m,
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return Ending::Closed("the proxy websocket was closed".into());
            }
            Err(e) => return Ending::Dropped(e.to_string()),
        };
        inner.state().last_heard = Some(Instant::now());
        match message {
            Message::Binary(bytes) => handle_frame(inner, &bytes),
            Message::Close(frame) => {
                let why = match frame {
                    Some(f) => {
                        let code = u16::from(f.code);
                        let kind = CloseKind::from_code(code);
                        let reason = visible(f.reason.as_str());
                        if reason.is_empty() {
                            format!("the service closed the proxy websocket ({code}: {kind})")
                        } else {
                            format!(
                                "the service closed the proxy websocket ({code}: {kind}): {reason}"
                            )
                        }
                    }
                    None => "the service closed the proxy websocket".into(),
                };
                // Let tungstenite answer the close.
                let _ = reader.flush();
                return Ending::Closed(why);
            }
            // Text is not part of the protocol; pongs only prove life.
            _ => {}
        }
    }
}

fn handle_frame(inner: &Inner, bytes: &[u8]) {
    let frame = match ServerFrame::decode(bytes) {
        Ok(f) => f,
        Err(e) => {
            warn!("the proxy sent a frame this client cannot read ({e}); ignored");
            return;
        }
    };
    let mut s = inner.state();
    if let ServerFrame::Message { channel, payload } = frame {
        if let Some(c) = s.by_remote.get(&channel).and_then(|k| s.channels.get(k)) {
            match c.datagrams.try_send(payload.to_vec()) {
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
        return;
    }
    let Some(corr) = frame.correlation() else {
        return;
    };
    let Some(pending) = s.pending.remove(&corr) else {
        debug!("a proxy reply to no call ({corr}); ignored");
        return;
    };
    match pending {
        Pending::Call(tx) => {
            let reply = match frame {
                ServerFrame::Opened { channel, .. } => Reply::Opened(channel),
                ServerFrame::Closed { .. } => Reply::Closed,
                ServerFrame::OpenedUnconnected {
                    channel,
                    address,
                    port,
                    ..
                } => Reply::OpenedUnconnected(channel, address, port),
                ServerFrame::Error { message, .. } => Reply::Failed(visible(&message)),
                ServerFrame::Message { .. } => return,
            };
            let _ = tx.try_send(reply);
        }
        Pending::Reopen(key) => match frame {
            ServerFrame::Opened { channel, .. } => {
                if let Some(c) = s.channels.get_mut(&key) {
                    c.remote = Some(channel);
                    s.by_remote.insert(channel, key);
                }
            }
            other => {
                warn!("the proxy would not reopen a channel after reconnecting: {other:?}");
                s.channels.remove(&key);
            }
        },
    }
}

/// The reader thread: reads, and reconnects after a drop.
fn read_loop(inner: &Arc<Inner>, mut reader: WebSocket<Half>) {
    loop {
        let ending = read_socket(inner, reader);
        if inner.closing.load(Ordering::SeqCst) {
            inner.end("the proxy was closed".into());
            return;
        }
        let why = match ending {
            Ending::Closed(why) => {
                info!("{why}");
                inner.end(why);
                return;
            }
            Ending::Dropped(why) => why,
        };
        warn!(
            "the proxy websocket for job {} dropped ({why}); reconnecting",
            inner.target.job
        );
        {
            let mut s = inner.state();
            s.socket = None;
            for (_, p) in s.pending.drain() {
                if let Pending::Call(tx) = p {
                    let _ = tx.try_send(Reply::Lost(why.clone()));
                }
            }
            s.by_remote.clear();
            s.channels.retain(|_, c| c.kind != Kind::Unconnected);
            for c in s.channels.values_mut() {
                c.remote = None;
            }
        }
        match reconnect(inner) {
            Some(r) => reader = r,
            None => {
                if inner.closing.load(Ordering::SeqCst) {
                    inner.end("the proxy was closed".into());
                } else {
                    inner.end(format!(
                        "the proxy websocket for job {} dropped ({why}) and could not be \
                         reopened",
                        inner.target.job
                    ));
                }
                return;
            }
        }
    }
}

/// Connects again and reopens the connected channels; the new reader, or
/// `None` if every attempt failed or the proxy is closing.
fn reconnect(inner: &Inner) -> Option<WebSocket<Half>> {
    for pause in RECONNECT_PAUSES {
        {
            let s = inner.state();
            let (s, _) = inner
                .changed
                .wait_timeout_while(s, pause, |_| !inner.closing.load(Ordering::SeqCst))
                .unwrap_or_else(PoisonError::into_inner);
            drop(s);
        }
        if inner.closing.load(Ordering::SeqCst) {
            return None;
        }
        let (socket, reader) = match open_socket(&inner.target) {
            Ok(pair) => pair,
            Err(e) => {
                warn!("reopening the proxy websocket: {e}");
                if matches!(e, Error::Server(_) | Error::Login(_) | Error::Interrupted) {
                    return None;
                }
                continue;
            }
        };
        let mut frames = Vec::new();
        {
            let mut s = inner.state();
            let keys: Vec<(u64, Kind)> = s.channels.iter().map(|(k, c)| (*k, c.kind)).collect();
            for (key, kind) in keys {
                if let Kind::Connected { x, y, port } = kind {
                    let corr = s.next_correlation;
                    s.next_correlation = s.next_correlation.wrapping_add(1);
                    s.pending.insert(corr, Pending::Reopen(key));
                    frames.push(ClientFrame::Open {
                        correlation: corr,
                        x,
                        y,
                        port: u32::from(port),
                    });
                }
            }
            s.socket = Some(Arc::clone(&socket));
            s.last_heard = Some(Instant::now());
        }
        for f in frames {
            let Ok(bytes) = f.encode() else { continue };
            if socket.send(Message::binary(bytes)).is_err() {
                break;
            }
        }
        info!(
            "the proxy websocket for job {} is open again",
            inner.target.job
        );
        inner.changed.notify_all();
        return Some(reader);
    }
    None
}

/// The pinger thread: a ping every [`PING_INTERVAL`] (or as told); a
/// websocket silent for two of them is cut (and so reconnected).
fn ping_loop(inner: &Inner, told: &Receiver<Pinger>) {
    let mut every = PING_INTERVAL;
    loop {
        match told.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(Pinger::Every(d)) => {
                every = d;
                continue;
            }
            Ok(Pinger::Stop) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let (socket, heard) = {
            let s = inner.state();
            if s.ended.is_some() {
                return;
            }
            (s.socket.clone(), s.last_heard)
        };
        let Some(socket) = socket else { continue };
        if heard.is_some_and(|h| h.elapsed() > every * 2) {
            warn!(
                "nothing from the proxy websocket for {:?}; reconnecting",
                every * 2
            );
            socket.cut();
            continue;
        }
        if let Err(e) = socket.send(Message::Ping(Vec::new().into())) {
            debug!("a proxy ping failed: {e}");
            socket.cut();
        }
    }
}
