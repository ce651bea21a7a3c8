//! One websocket connection of the v2 front-end, after the upgrade: bytes
//! in and out, TLS, websocket framing, and the bounds that keep a client
//! from holding the server up. What the binary messages mean is the
//! [`Handler`]'s business (the proxy, `proxy.rs`).
//!
//! Everything a connection does happens on its own thread, which waits for
//! [`Event`]s: bytes from the client (read by a reader thread), messages
//! for the client from elsewhere (the proxy's UDP channels), and wake-ups.
//! TLS and websocket state are driven without blocking (rustls and
//! tungstenite over in-memory buffers), so a datagram for the client never
//! waits behind a read, and nothing polls. Bytes for the client go through
//! a bounded outbox to a writer thread: a client that lets more than
//! `send_buffer` bytes pile up, or does not take one write within
//! `send_timeout`, is disconnected, so it costs the server a bounded amount
//! of memory and time.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use log::debug;
use rustls::ServerConnection;
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, WebSocketContext};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How long a client has to answer our close frame before the connection
/// is cut.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How much one read from the client's socket takes at most.
const READ_CHUNK: usize = 16 * 1024;

/// The client's connection, once upgraded.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<ServerConnection>, TcpStream),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) | Stream::Tls(_, s) => s,
        }
    }
}

/// The bounds of one connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Bytes that may wait to be written to the client.
    pub send_buffer: usize,
    /// How long one write to the client may block.
    pub send_timeout: Duration,
    /// The longest websocket message (and frame) accepted.
    pub max_message: usize,
}

/// What the connection's thread is woken by.
#[derive(Debug)]
pub(crate) enum Event {
    /// Bytes from the client's socket.
    Received(Vec<u8>),
    /// The client's socket was closed, or failed.
    Disconnected,
    /// A binary message for the client from elsewhere: `tag` is for the
    /// handler (the proxy's channel id).
    Outgoing { tag: u32, frame: Vec<u8> },
    /// Something the handler watches may have changed.
    Wake,
}

/// What a handler wants done after an event.
#[derive(Debug, Default)]
pub(crate) struct Out {
    frames: Vec<Vec<u8>>,
    close: Option<(u16, String)>,
}

impl Out {
    /// Sends a binary message.
    pub fn send(&mut self, frame: Vec<u8>) {
        self.frames.push(frame);
    }

    /// Closes the websocket with `code` (after the messages already
    /// queued); later messages are not sent.
    pub fn close(&mut self, code: u16, reason: impl Into<String>) {
        if self.close.is_none() {
            self.close = Some((code, reason.into()));
        }
    }
}

/// The meaning of the messages.
pub(crate) trait Handler {
    /// A binary message from the client.
    fn binary(&mut self, message: &[u8], out: &mut Out);
    /// An [`Event::Outgoing`]: whether and what to send is the handler's
    /// choice.
    fn outgoing(&mut self, tag: u32, frame: Vec<u8>, out: &mut Out);
    /// An [`Event::Wake`].
    fn wake(&mut self, out: &mut Out);
    /// The websocket is gone (called once, at the end).
    fn finish(&mut self);
}

/// Bytes waiting for the writer thread.
struct Outbox {
    state: Mutex<OutState>,
    ready: Condvar,
    limit: usize,
}

#[derive(Default)]
struct OutState {
    queue: VecDeque<Vec<u8>>,
    bytes: usize,
    /// Nothing more will be queued: write what there is, then stop.
    closed: bool,
    /// The connection is being cut: drop everything.
    failed: bool,
}

impl Outbox {
    /// Queues bytes; `false` (and the outbox fails) if they would take it
    /// past its limit.
    fn push(&self, bytes: Vec<u8>) -> bool {
        if bytes.is_empty() {
            return true;
        }
        let mut s = lock(&self.state);
        if s.failed {
            return false;
        }
        if s.bytes.saturating_add(bytes.len()) > self.limit {
            s.failed = true;
            s.queue.clear();
            drop(s);
            self.ready.notify_all();
            return false;
        }
        s.bytes += bytes.len();
        s.queue.push_back(bytes);
        drop(s);
        self.ready.notify_one();
        true
    }

    fn close(&self) {
        lock(&self.state).closed = true;
        self.ready.notify_all();
    }

    fn fail(&self) {
        let mut s = lock(&self.state);
        s.failed = true;
        s.queue.clear();
        drop(s);
        self.ready.notify_all();
    }

    fn failed(&self) -> bool {
        lock(&self.state).failed
    }

    fn next(&self) -> Option<Vec<u8>> {
        let mut s = lock(&self.state);
        loop {
            if s.failed {
                return None;
            }
            if let Some(b) = s.queue.pop_front() {
                s.bytes -= b.len();
                return Some(b);
            }
            if s.closed {
                return None;
            }
            s = self.ready.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// What tungstenite reads from and writes to: the plaintext that arrived,
/// and the plaintext to send.
struct Pipe<'a> {
    input: &'a mut VecDeque<u8>,
    output: &'a mut Vec<u8>,
}

impl Read for Pipe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            // More will come as an event; tungstenite keeps its place.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.input.read(buf)
    }
}

impl Write for Pipe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The connection's state on its own thread.
struct Conn {
    ws: WebSocketContext,
    tls: Option<Box<ServerConnection>>,
    /// Plaintext from the client not yet framed.
    input: VecDeque<u8>,
    outbox: Arc<Outbox>,
    peer: SocketAddr,
    /// We sent a close frame: wait for the client's until this time.
    closing: Option<Instant>,
    /// Nothing more can be done: end.
    done: bool,
}

impl Conn {
    /// Takes bytes from the client's socket (decrypting them) and handles
    /// every whole message they complete.
    fn received(&mut self, bytes: &[u8], handler: &mut impl Handler) {
        if let Err(e) = self.decrypt(bytes) {
            debug!("proxy {}: TLS failed: {e}", self.peer);
            self.done = true;
            return;
        }
        let mut out = Out::default();
        loop {
            // A read may also write: a pong, or the reply to a close.
            let mut written = Vec::new();
            let read = self.ws.read(&mut Pipe {
                input: &mut self.input,
                output: &mut written,
            });
            self.send_plain(written);
            match read {
                Ok(Message::Binary(data)) => {
                    if self.closing.is_none() && out.close.is_none() {
                        handler.binary(&data, &mut out);
                    }
                }
                Ok(Message::Text(_)) => out.close(1003, "Text messages not supported"),
                Ok(Message::Close(frame)) => {
                    debug!(
                        "proxy {}: the client closes ({:?})",
                        self.peer,
                        frame.map(|f| u16::from(f.code))
                    );
                }
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    self.done = true;
                    break;
                }
                Err(tungstenite::Error::Capacity(e)) => {
                    out.close(1009, format!("message too big: {e}"));
                    break;
                }
                Err(e) => {
                    debug!("proxy {}: websocket error: {e}", self.peer);
                    out.close(1002, "websocket protocol error");
                    // tungstenite cannot read on after most errors.
                    self.apply(out);
                    self.done = true;
                    return;
                }
            }
        }
        self.apply(out);
    }

    /// Sends what a handler asked for.
    fn apply(&mut self, out: Out) {
        if self.closing.is_some() {
            return;
        }
        let mut plain = Vec::new();
        let mut pipe = Pipe {
            input: &mut self.input,
            output: &mut plain,
        };
        for frame in out.frames {
            if let Err(e) = self.ws.write(&mut pipe, Message::Binary(frame.into())) {
                debug!("proxy {}: cannot send: {e}", self.peer);
                self.done = true;
                break;
            }
        }
        if let Some((code, reason)) = out.close {
            let reason: String = reason.chars().filter(|c| !c.is_control()).collect();
            let reason = truncate(&reason, 123);
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            };
            debug!("proxy {}: closing with {code} ({reason})", self.peer);
            // The close frame is queued whatever the error says.
            let _ = self.ws.close(&mut pipe, Some(frame));
            self.closing = Some(Instant::now() + CLOSE_GRACE);
        } else if let Err(e) = self.ws.flush(&mut pipe)
            && !matches!(&e, tungstenite::Error::Io(io) if io.kind() == io::ErrorKind::WouldBlock)
        {
            debug!("proxy {}: cannot send: {e}", self.peer);
            self.done = true;
        }
        self.send_plain(plain);
    }

    fn decrypt(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        let Some(tls) = &mut self.tls else {
            self.input.extend(bytes);
            return Ok(());
        };
        while !bytes.is_empty() {
            tls.read_tls(&mut bytes)?;
            let state = tls.process_new_packets();
            // Alerts and handshake messages go out even on an error.
            let mut out = Vec::new();
            while tls.wants_write() {
                tls.write_tls(&mut out)?;
            }
            if !self.outbox.push(out) {
                return Err(io::Error::other("the client is not reading"));
            }
            state.map_err(io::Error::other)?;
            drain_plaintext(tls, &mut self.input)?;
        }
        Ok(())
    }

    /// Queues plaintext for the client (encrypting it).
    fn send_plain(&mut self, plain: Vec<u8>) {
        if plain.is_empty() {
            return;
        }
        let bytes = match &mut self.tls {
            None => plain,
            Some(tls) => match encrypt(tls, &plain) {
                Ok(b) => b,
                Err(e) => {
                    debug!("proxy {}: TLS failed: {e}", self.peer);
                    self.done = true;
                    return;
                }
            },
        };
        if !self.outbox.push(bytes) {
            debug!(
                "proxy {}: more than {} bytes wait for a client that is not reading; disconnecting it",
                self.peer, self.outbox.limit
            );
            self.done = true;
        }
    }
}

/// Moves the plaintext rustls has decrypted into `input`; an error when
/// the client has closed TLS.
fn drain_plaintext(tls: &mut ServerConnection, input: &mut VecDeque<u8>) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        match tls.reader().read(&mut buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => input.extend(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

fn encrypt(tls: &mut ServerConnection, mut plain: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(plain.len() + 64);
    while !plain.is_empty() {
        let n = tls.writer().write(plain)?;
        while tls.wants_write() {
            tls.write_tls(&mut out)?;
        }
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        plain = &plain[n..];
    }
    while tls.wants_write() {
        tls.write_tls(&mut out)?;
    }
    Ok(out)
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Serves an upgraded connection until it closes: `early` is what the
/// client sent after its upgrade request, `close_at_once` a close to send
/// straight away. `events` is the connection's queue; others hold senders
/// to it.
pub(crate) fn serve(
    stream: Stream,
    early: Vec<u8>,
    peer: SocketAddr,
    limits: Limits,
    events: (SyncSender<Event>, Receiver<Event>),
    close_at_once: Option<(u16, String)>,
    handler: &mut impl Handler,
) {
    let (tx, rx) = events;
    let tcp = stream.tcp();
    let clones = (tcp.try_clone(), tcp.try_clone());
    let (Ok(reading), Ok(writing)) = clones else {
        debug!("proxy {peer}: cannot share the socket");
        let _ = tcp.shutdown(Shutdown::Both);
        handler.finish();
        return;
    };
    // The HTTP front-end's deadlines no longer apply: a websocket may be
    // idle for as long as its client likes (clients ping it).
    let _ = reading.set_read_timeout(None);
    let _ = writing.set_write_timeout(Some(limits.send_timeout));
    let outbox = Arc::new(Outbox {
        state: Mutex::new(OutState::default()),
        ready: Condvar::new(),
        limit: limits.send_buffer,
    });
    let writer = {
        let outbox = outbox.clone();
        thread::Builder::new()
            .name(format!("spalloc-ws-write-{peer}"))
            .spawn(move || write_loop(&outbox, writing, peer))
    };
    let reader = {
        let tx = tx.clone();
        thread::Builder::new()
            .name(format!("spalloc-ws-read-{peer}"))
            .spawn(move || read_loop(reading, &tx))
    };
    drop(tx);
    let (tcp, tls) = match stream {
        Stream::Plain(s) => (s, None),
        Stream::Tls(c, s) => (s, Some(c)),
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(limits.max_message))
        .max_frame_size(Some(limits.max_message));
    let mut conn = Conn {
        ws: WebSocketContext::new(Role::Server, Some(config)),
        tls,
        input: VecDeque::from(early),
        outbox: outbox.clone(),
        peer,
        closing: None,
        done: false,
    };
    match (&writer, &reader) {
        (Ok(_), Ok(_)) => {
            // What rustls decrypted but the HTTP reader had not taken.
            if let Some(tls) = &mut conn.tls
                && drain_plaintext(tls, &mut conn.input).is_err()
            {
                conn.done = true;
            }
            if let Some((code, reason)) = close_at_once {
                let mut out = Out::default();
                out.close(code, reason);
                conn.apply(out);
            }
            if !conn.done {
                conn.received(&[], handler);
            }
            run(&mut conn, &rx, handler);
        }
        _ => debug!("proxy {peer}: cannot start the connection's threads"),
    }
    handler.finish();
    if outbox.failed() {
        // A client that does not read: cut it now, which also ends a write
        // blocked on it.
        let _ = tcp.shutdown(Shutdown::Both);
    } else if let Some(tls) = &mut conn.tls {
        // A clean end: TLS says so, after what is queued.
        tls.send_close_notify();
        let mut out = Vec::new();
        while tls.wants_write() {
            if tls.write_tls(&mut out).is_err() {
                break;
            }
        }
        outbox.push(out);
    }
    outbox.close();
    if let Ok(w) = writer {
        let _ = w.join();
    }
    let _ = tcp.shutdown(Shutdown::Both);
    drop(rx);
    if let Ok(r) = reader {
        let _ = r.join();
    }
    debug!("proxy {peer}: websocket closed");
}

/// Handles events until the connection is done.
fn run(conn: &mut Conn, rx: &Receiver<Event>, handler: &mut impl Handler) {
    while !conn.done && !conn.outbox.failed() {
        let event = match conn.closing {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    debug!("proxy {}: no close frame in reply; cutting", conn.peer);
                    return;
                }
                rx.recv_timeout(left)
            }
        };
        match event {
            Ok(Event::Received(bytes)) => conn.received(&bytes, handler),
            Ok(Event::Disconnected) | Err(_) => return,
            Ok(Event::Outgoing { tag, frame }) => {
                let mut out = Out::default();
                handler.outgoing(tag, frame, &mut out);
                conn.apply(out);
            }
            Ok(Event::Wake) => {
                let mut out = Out::default();
                handler.wake(&mut out);
                conn.apply(out);
            }
        }
    }
    if conn.outbox.failed() {
        debug!("proxy {}: dropping a client that does not read", conn.peer);
    }
}

fn read_loop(mut tcp: TcpStream, tx: &SyncSender<Event>) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if tx.send(Event::Received(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = tx.send(Event::Disconnected);
}

fn write_loop(outbox: &Outbox, mut tcp: TcpStream, peer: SocketAddr) {
    while let Some(bytes) = outbox.next() {
        if let Err(e) = tcp.write_all(&bytes) {
            debug!("proxy {peer}: write failed or too slow ({e}); disconnecting");
            outbox.fail();
            // The reader sees the end, and so does the connection.
            let _ = tcp.shutdown(Shutdown::Both);
            return;
        }
    }
    if outbox.failed() {
        let _ = tcp.shutdown(Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_is_bounded() {
        let o = Outbox {
            state: Mutex::new(OutState::default()),
            ready: Condvar::new(),
            limit: 10,
        };
        assert!(o.push(vec![1; 6]));
        assert!(o.push(Vec::new()));
        assert_eq!(o.next(), Some(vec![1; 6]));
        assert!(o.push(vec![2; 10]));
        // One byte more than fits: the outbox fails and drops everything.
        assert!(!o.push(vec![3]));
        assert!(o.failed());
        assert_eq!(o.next(), None);
        assert!(!o.push(vec![4]));
    }

    #[test]
    fn closing_lets_the_writer_finish() {
        let o = Outbox {
            state: Mutex::new(OutState::default()),
            ready: Condvar::new(),
            limit: 100,
        };
        assert!(o.push(vec![1, 2]));
        o.close();
        assert_eq!(o.next(), Some(vec![1, 2]));
        assert_eq!(o.next(), None);
    }

    #[test]
    fn reasons_are_cut_at_characters() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate(&"x".repeat(200), 123).len(), 123);
    }
}
