//! Sockets and threads: accepting clients, reading requests, writing replies,
//! and the ticker that runs timed events.
//!
//! Each client gets a reader thread and a writer thread. Replies and
//! notifications go through a per-client outbox with a byte limit, so a
//! client that stops reading only ever fills its own outbox (and is then
//! disconnected); it can never block the shared state or other clients. The
//! shared state sits behind one mutex that is held only while a single
//! request is handled or a tick runs.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::config::{Dialect, ServerConfig};
use super::epochs::{ChangeSignal, Epochs};
use super::persist;
use super::state::{Controller, later};
use super::v1::{self, Context, Outcome, Subscriptions};

/// How long a write to a client may block before the client is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The queue of lines waiting to be written to one client.
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<OutState>,
    ready: Condvar,
    stream: TcpStream,
    limit: usize,
}

#[derive(Debug, Default)]
struct OutState {
    /// Shared, as one notification goes to many clients; an `Arc<String>`
    /// rather than an `Arc<str>`, so that a reply (which may be a
    /// `list_jobs` of hundreds of kilobytes) is queued without a copy.
    queue: VecDeque<Arc<String>>,
    bytes: usize,
    closed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; if something ever did, the
    // data is still consistent enough to keep serving other clients.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A mutex that hands itself to waiters strictly in arrival order.
///
/// std's mutex lets the thread that just unlocked take the lock straight
/// back, so a client pipelining expensive requests (say `list_jobs` on a
/// big machine) could starve everyone else. Queueing waiters and handing
/// the lock to the oldest bounds any client's wait to one request per
/// other client ahead of it.
pub(crate) struct FairLock<T> {
    data: Mutex<T>,
    turns: Mutex<Turns>,
}

#[derive(Default)]
struct Turns {
    held: bool,
    next_ticket: u64,
    handed_to: Option<u64>,
    waiting: VecDeque<(u64, thread::Thread)>,
}

/// Access to the data of a [`FairLock`]; passes the lock on when dropped.
pub(crate) struct FairGuard<'a, T> {
    data: MutexGuard<'a, T>,
    lock: &'a FairLock<T>,
}

impl<T> FairLock<T> {
    pub fn new(data: T) -> FairLock<T> {
        FairLock {
            data: Mutex::new(data),
            turns: Mutex::new(Turns::default()),
        }
    }

    pub fn lock(&self) -> FairGuard<'_, T> {
        let mut turns = lock(&self.turns);
        if turns.held || !turns.waiting.is_empty() {
            let ticket = turns.next_ticket;
            turns.next_ticket += 1;
            turns.waiting.push_back((ticket, thread::current()));
            // park() may wake spuriously: wait until the lock was handed to
            // this ticket by unlock().
            while turns.handed_to != Some(ticket) {
                drop(turns);
                thread::park();
                turns = lock(&self.turns);
            }
            turns.handed_to = None;
        }
        turns.held = true;
        drop(turns);
        FairGuard {
            data: lock(&self.data),
            lock: self,
        }
    }

    fn unlock(&self) {
        let mut turns = lock(&self.turns);
        match turns.waiting.pop_front() {
            Some((ticket, waiter)) => {
                // Stays held: ownership passes directly to the waiter.
                turns.handed_to = Some(ticket);
                waiter.unpark();
            }
            None => turns.held = false,
        }
    }
}

impl<T> std::ops::Deref for FairGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.data
    }
}

impl<T> std::ops::DerefMut for FairGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.data
    }
}

impl<T> Drop for FairGuard<'_, T> {
    fn drop(&mut self) {
        // The data guard itself is released just after this; the next owner
        // may wait a moment for it, which is harmless.
        self.lock.unlock();
    }
}

impl Outbox {
    fn new(stream: TcpStream, limit: usize) -> Outbox {
        Outbox {
            state: Mutex::new(OutState::default()),
            ready: Condvar::new(),
            stream,
            limit,
        }
    }

    /// Queues a line; a client whose queue would overflow is disconnected.
    fn push(&self, line: Arc<String>) {
        let mut s = lock(&self.state);
        if s.closed {
            return;
        }
        if s.bytes.saturating_add(line.len()) > self.limit {
            debug!(
                "client {:?} is not reading its replies; disconnecting it",
                self.stream.peer_addr()
            );
            s.closed = true;
            s.queue.clear();
            s.bytes = 0;
            drop(s);
            let _ = self.stream.shutdown(Shutdown::Both);
            self.ready.notify_all();
            return;
        }
        s.bytes += line.len();
        s.queue.push_back(line);
        drop(s);
        self.ready.notify_one();
    }

    /// Lets the writer finish what is queued, then stop.
    fn close(&self) {
        lock(&self.state).closed = true;
        self.ready.notify_all();
    }

    /// Drops everything and cuts the connection at once.
    fn abort(&self) {
        {
            let mut s = lock(&self.state);
            s.closed = true;
            s.queue.clear();
            s.bytes = 0;
        }
        let _ = self.stream.shutdown(Shutdown::Both);
        self.ready.notify_all();
    }

    fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    fn next(&self) -> Option<Arc<String>> {
        let mut s = lock(&self.state);
        loop {
            if let Some(line) = s.queue.pop_front() {
                s.bytes -= line.len();
                return Some(line);
            }
            if s.closed {
                return None;
            }
            s = self.ready.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

#[derive(Debug)]
struct Connection {
    subscriptions: Subscriptions,
    outbox: Arc<Outbox>,
}

/// Everything behind the one lock.
#[derive(Debug)]
pub(crate) struct Core {
    pub controller: Controller,
    dialect: Dialect,
    connections: HashMap<u64, Connection>,
    next_connection: u64,
    stopping: bool,
    /// Connections part way through a batch of requests whose changes are
    /// reported together at its end; meanwhile nothing else reports.
    batching: HashSet<u64>,
    /// When each job and machine last changed, for waiting v2 requests.
    pub epochs: Epochs,
    /// Where new epochs are published to them.
    pub changes: Arc<ChangeSignal>,
}

impl Core {
    pub fn new(controller: Controller, dialect: Dialect) -> Core {
        Core {
            controller,
            dialect,
            connections: HashMap::new(),
            next_connection: 0,
            stopping: false,
            batching: HashSet::new(),
            epochs: Epochs::default(),
            changes: Arc::new(ChangeSignal::default()),
        }
    }

    /// Forgets a connection that has gone.
    fn remove(&mut self, id: u64) -> Option<Connection> {
        let c = self.connections.remove(&id);
        if self.batching.remove(&id) {
            self.notify();
        }
        c
    }

    /// Sends the changes since the last round to every subscriber: for
    /// each kind of change, one message per round (Python), or one per
    /// subscription (Java); and stamps them for v2 requests that wait for a
    /// change.
    pub(crate) fn notify(&mut self) {
        if !self.batching.is_empty() {
            return;
        }
        let changes = self.controller.take_changes();
        if changes.is_empty() {
            return;
        }
        let epoch = self.epochs.record(&changes.jobs, &changes.machines);
        let known = self.controller.known_jobs();
        self.epochs
            .prune(2 * known + 1024, |id| self.controller.knows_job(id));
        self.changes.publish(epoch);
        let broadcast = v1::Broadcast::new(self.dialect, &changes);
        for c in self.connections.values() {
            for line in broadcast.lines_for(&c.subscriptions) {
                c.outbox.push(line);
            }
        }
    }
}

/// The server's time: real time, plus however far the server has been
/// moved forward ([`VirtualServer::advance`](super::VirtualServer::advance)).
/// Everything the engine does in time (power, expiry, releases, v2 sessions
/// and lockouts) reads it; waits on sockets keep to real time.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    ahead: Mutex<Duration>,
}

impl Clock {
    pub fn now(&self) -> Instant {
        later(Instant::now(), *lock(&self.ahead))
    }

    pub fn advance(&self, by: Duration) {
        let mut ahead = lock(&self.ahead);
        *ahead = ahead.saturating_add(by);
    }
}

/// State shared by all of a server's threads.
pub(crate) struct Shared {
    pub core: FairLock<Core>,
    pub clock: Clock,
    /// Set (and signalled) to wake the ticker early: an earlier event was
    /// scheduled, there is state to save, or the server is stopping.
    pub wake: Mutex<bool>,
    pub wake_signal: Condvar,
    pub config: ServerConfig,
    pub stopping: AtomicBool,
    pub threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("listen", &self.config.listen)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub fn lock(&self) -> FairGuard<'_, Core> {
        self.core.lock()
    }

    pub fn wake_ticker(&self) {
        *lock(&self.wake) = true;
        self.wake_signal.notify_one();
    }

    /// Sleeps until woken or until `timeout` has passed.
    fn sleep(&self, timeout: Duration) {
        let mut woken = lock(&self.wake);
        if !*woken {
            woken = self
                .wake_signal
                .wait_timeout(woken, timeout)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        *woken = false;
    }
}

/// Accepts clients until the server stops.
pub(crate) fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                debug!("accept failed: {e}");
                // Typically out of file descriptors: give clients a moment
                // to go away instead of spinning. A timed pause, as nothing
                // announces that a descriptor is free again.
                thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        if let Err(e) = start_connection(shared, stream) {
            debug!("could not set up a connection: {e}");
        }
        lock(&shared.threads).retain(|t| !t.is_finished());
    }
}

fn start_connection(shared: &Arc<Shared>, stream: TcpStream) -> io::Result<()> {
    let peer = stream.peer_addr()?;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let outbox = Arc::new(Outbox::new(
        stream.try_clone()?,
        shared.config.max_queued_output,
    ));
    let id = {
        let mut core = shared.lock();
        if core.stopping {
            return Ok(());
        }
        if core.connections.len() >= shared.config.max_connections {
            info!(
                "refusing {peer}: already {} clients",
                core.connections.len()
            );
            let line = v1::too_many_connections(core.dialect);
            let mut s = &stream;
            let _ = s.write_all(line.as_bytes());
            let _ = stream.shutdown(Shutdown::Both);
            return Ok(());
        }
        core.next_connection += 1;
        let id = core.next_connection;
        core.connections.insert(
            id,
            Connection {
                subscriptions: Subscriptions::default(),
                outbox: outbox.clone(),
            },
        );
        id
    };
    debug!("client {peer} connected");
    let shared2 = shared.clone();
    let spawned = thread::Builder::new()
        .name(format!("spalloc-server-conn-{id}"))
        .spawn(move || serve(&shared2, id, peer, stream, &outbox));
    match spawned {
        Ok(handle) => {
            lock(&shared.threads).push(handle);
            Ok(())
        }
        Err(e) => {
            if let Some(c) = shared.lock().remove(id) {
                c.outbox.abort();
            }
            Err(e)
        }
    }
}

/// Reads and answers one client's requests until it goes away.
fn serve(shared: &Arc<Shared>, id: u64, peer: SocketAddr, stream: TcpStream, outbox: &Arc<Outbox>) {
    let writer = {
        let outbox = outbox.clone();
        thread::Builder::new()
            .name(format!("spalloc-server-write-{id}"))
            .spawn(move || write_loop(&outbox))
    };
    match writer {
        Ok(writer) => {
            read_loop(shared, id, peer, stream, outbox);
            if let Some(c) = shared.lock().remove(id) {
                c.outbox.close();
            }
            let _ = writer.join();
        }
        Err(e) => {
            debug!("could not start a writer for {peer}: {e}");
            if let Some(c) = shared.lock().remove(id) {
                c.outbox.abort();
            }
        }
    }
    let _ = outbox.stream.shutdown(Shutdown::Both);
    debug!("client {peer} disconnected");
}

fn write_loop(outbox: &Outbox) {
    let mut stream = &outbox.stream;
    while let Some(line) = outbox.next() {
        if let Err(e) = stream.write_all(line.as_bytes()) {
            debug!("write to {:?} failed: {e}", outbox.stream.peer_addr());
            outbox.abort();
            return;
        }
    }
}

fn read_loop(shared: &Arc<Shared>, id: u64, peer: SocketAddr, stream: TcpStream, outbox: &Outbox) {
    let host = peer.ip().to_string();
    let dialect = shared.config.dialect;
    let limit = shared.config.max_line_length;
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut line: Vec<u8> = Vec::new();
    let mut too_long = false;
    // The Java service reads lines as `BufferedReader` does: `\r`, `\n` and
    // `\r\n` all end one; the Python server splits on `\n` only.
    let cr_ends_line = dialect == Dialect::Java;
    let mut skip_lf = false;
    loop {
        if outbox.is_closed() {
            // Disconnected for not reading: drop whatever it still sent.
            return;
        }
        let buf = match reader.fill_buf() {
            Ok([]) => return,
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                debug!("read from {peer} failed: {e}");
                return;
            }
        };
        if std::mem::take(&mut skip_lf) && buf.first() == Some(&b'\n') {
            reader.consume(1);
            continue;
        }
        let end = if cr_ends_line {
            memchr::memchr2(b'\n', b'\r', buf)
        } else {
            memchr::memchr(b'\n', buf)
        };
        let (chunk, complete) = match end {
            Some(i) => (&buf[..i], true),
            None => (buf, false),
        };
        skip_lf = complete && buf[chunk.len()] == b'\r';
        if !too_long {
            if line.len() + chunk.len() > limit {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = chunk.len() + usize::from(complete);
        reader.consume(used);
        if complete {
            if too_long {
                let reply = v1::line_too_long(dialect, limit);
                let mut core = shared.lock();
                if let Some(c) = core.connections.get(&id) {
                    c.outbox.push(reply.into());
                }
                // It ends any batch it was part of.
                core.batching.remove(&id);
                core.notify();
            } else if !handle_request(shared, id, &host, &line, !has_line(&reader, dialect)) {
                debug!("closing the connection of {peer}, as the real server would");
                return;
            }
            line.clear();
            too_long = false;
        }
    }
}

/// Whether another whole request is already buffered, to be handled in
/// the same pass as this one (Python; the Java service has no passes).
fn has_line(reader: &BufReader<TcpStream>, dialect: Dialect) -> bool {
    match dialect {
        Dialect::Python => memchr::memchr(b'\n', reader.buffer()).is_some(),
        Dialect::Java => false,
    }
}

/// Handles one request; false when the connection must close.
///
/// The Python server reports the changes of one pass of its event loop
/// (every request that had arrived) after all of that pass's replies:
/// with `last_of_batch` false, this request's changes wait for the next
/// request's (or the ticker's) round.
fn handle_request(shared: &Shared, id: u64, host: &str, line: &[u8], last_of_batch: bool) -> bool {
    let now = shared.clock.now();
    let dialect = shared.config.dialect;
    let mut core = shared.lock();
    let before = core.controller.next_event();
    let was_dirty = core.controller.is_dirty();
    let Core {
        controller,
        connections,
        ..
    } = &mut *core;
    let Some(conn) = connections.get_mut(&id) else {
        return false;
    };
    let mut ctx = Context {
        controller,
        subscriptions: &mut conn.subscriptions,
        version: &shared.config.version,
        host,
        now,
    };
    let outcome = v1::handle_line(dialect, &mut ctx, line);
    let outbox = conn.outbox.clone();
    if outcome == Outcome::Close {
        // Nothing more for this client, not even this round's changes.
        outbox.close();
    }
    if last_of_batch || outcome == Outcome::Close {
        core.batching.remove(&id);
    } else {
        core.batching.insert(id);
    }
    core.controller.tick(now);
    if let Outcome::Reply(reply) = outcome {
        match dialect {
            // Replies go before the changes they caused.
            Dialect::Python => {
                outbox.push(reply.into());
                core.notify();
            }
            // The service's notifier threads run apart from the command
            // loop: a change can be reported before the reply to the
            // command that caused it, and here it always is.
            Dialect::Java => {
                core.notify();
                outbox.push(reply.into());
            }
        }
    } else {
        core.notify();
    }
    let after = core.controller.next_event();
    let earlier = match (before, after) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(b), Some(a)) => a < b,
    };
    // The ticker also saves the state: wake it when there is newly
    // something to save.
    let dirty = shared.config.state_file.is_some() && !was_dirty && core.controller.is_dirty();
    drop(core);
    if earlier || dirty {
        shared.wake_ticker();
    }
    !outbox.is_closed()
}

/// Runs `f` on the engine as a request from another front-end (the v2
/// service) would: then runs whatever fell due, tells v1 subscribers and v2
/// waiters what changed, and wakes the ticker if it now has something
/// earlier to do or newly something to save, exactly as a v1 request does.
pub(crate) fn update<R>(shared: &Shared, f: impl FnOnce(&mut Controller, Instant) -> R) -> R {
    let now = shared.clock.now();
    let mut core = shared.lock();
    let before = core.controller.next_event();
    let was_dirty = core.controller.is_dirty();
    let result = f(&mut core.controller, now);
    core.controller.tick(now);
    core.notify();
    let after = core.controller.next_event();
    let earlier = match (before, after) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(b), Some(a)) => a < b,
    };
    let dirty = shared.config.state_file.is_some() && !was_dirty && core.controller.is_dirty();
    drop(core);
    if earlier || dirty {
        shared.wake_ticker();
    }
    result
}

/// Moves the server's clock forward by `by` and does at once whatever fell
/// due in that time, then lets the ticker plan again.
pub(crate) fn advance(shared: &Shared, by: Duration) {
    shared.clock.advance(by);
    {
        let mut core = shared.lock();
        let now = shared.clock.now();
        core.controller.tick(now);
        core.notify();
    }
    shared.wake_ticker();
}

/// Runs timed events, keepalive checks and state saving until the server stops.
///
/// It sleeps until the next timed event (a power change, a release, the
/// next save) and is woken early when a request schedules an earlier one.
/// The one fixed interval is `timeout_check_interval`, which is the
/// server's documented behaviour rather than a poll: like the Python
/// server, it looks for expired keepalives that often, so a job expires
/// between its keepalive and its keepalive plus the interval after its last
/// refresh.
pub(crate) fn tick_loop(shared: &Shared) {
    let interval = shared.config.timeout_check_interval;
    let mut next_save = shared.clock.now();
    loop {
        let mut core = shared.lock();
        if core.stopping {
            return;
        }
        let now = shared.clock.now();
        core.controller.tick(now);
        core.notify();
        if let Some(path) = &shared.config.state_file
            && now >= next_save
            && core.controller.take_dirty()
        {
            let saved = core.controller.save();
            drop(core);
            if let Err(e) = persist::save(path, &saved) {
                warn!("could not save the state to {}: {e}", path.display());
            }
            next_save = later(now, shared.config.save_interval);
            continue;
        }
        let mut until = later(now, interval);
        if let Some(t) = core.controller.next_event() {
            until = until.min(t);
        }
        if shared.config.state_file.is_some() && core.controller.is_dirty() {
            until = until.min(next_save.max(now));
        }
        drop(core);
        shared.sleep(
            until
                .saturating_duration_since(now)
                .max(Duration::from_millis(1)),
        );
    }
}

/// Stops accepting, disconnects everyone and waits for all threads.
pub(crate) fn stop(
    shared: &Shared,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
    ticker: Option<JoinHandle<()>>,
) {
    shared.stopping.store(true, Ordering::SeqCst);
    if let Some(acceptor) = acceptor {
        // accept() has no timeout: knock on our own door to wake it.
        let target = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
            }
            _ => addr,
        };
        match TcpStream::connect_timeout(&target, Duration::from_secs(2)) {
            Ok(_) => {
                let _ = acceptor.join();
            }
            Err(e) => warn!("could not wake the accept thread ({e}); leaving it behind"),
        }
    }
    {
        let mut core = shared.lock();
        core.stopping = true;
        for c in core.connections.values() {
            c.outbox.abort();
        }
    }
    let threads = std::mem::take(&mut *lock(&shared.threads));
    for t in threads {
        let _ = t.join();
    }
    shared.wake_ticker();
    if let Some(ticker) = ticker {
        let _ = ticker.join();
    }
    if let Some(path) = &shared.config.state_file {
        let saved = shared.lock().controller.save();
        match persist::save(path, &saved) {
            Ok(()) => info!("state saved to {}", path.display()),
            Err(e) => warn!("could not save the state to {}: {e}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    fn pair() -> io::Result<(TcpStream, TcpStream)> {
        let l = TcpListener::bind("127.0.0.1:0")?;
        let a = TcpStream::connect(l.local_addr()?)?;
        let (b, _) = l.accept()?;
        a.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok((a, b))
    }

    #[test]
    fn outbox_overflow_disconnects_only_that_client() -> io::Result<()> {
        let (mut peer, server_side) = pair()?;
        let outbox = Outbox::new(server_side, 100);
        outbox.push(Arc::from("x".repeat(60)));
        assert!(!outbox.is_closed());
        outbox.push(Arc::from("y".repeat(60)));
        assert!(outbox.is_closed());
        // Nothing more is queued, and the peer sees the connection end.
        assert_eq!(outbox.next(), None);
        let mut buf = Vec::new();
        let end = peer.read_to_end(&mut buf);
        assert!(end.is_ok() || end.is_err_and(|e| e.kind() != io::ErrorKind::WouldBlock));
        assert!(buf.is_empty());
        Ok(())
    }

    #[test]
    fn outbox_close_flushes_what_is_queued() -> io::Result<()> {
        let (mut peer, server_side) = pair()?;
        let outbox = Arc::new(Outbox::new(server_side, 1000));
        outbox.push(Arc::new("one\n".to_owned()));
        outbox.push(Arc::new("two\n".to_owned()));
        outbox.close();
        let o = outbox.clone();
        let writer = thread::spawn(move || write_loop(&o));
        let _ = writer.join();
        let _ = outbox.stream.shutdown(Shutdown::Both);
        let mut got = String::new();
        peer.read_to_string(&mut got)?;
        assert_eq!(got, "one\ntwo\n");
        Ok(())
    }

    #[test]
    fn fair_lock_serves_waiters_in_order() {
        let lock = Arc::new(FairLock::new(Vec::new()));
        let first = lock.lock();
        let mut handles = Vec::new();
        for i in 0..5 {
            let l = lock.clone();
            handles.push(thread::spawn(move || l.lock().push(i)));
            // Let each thread queue up before the next starts.
            while lock_queue_len(&lock) < i + 1 {
                thread::yield_now();
            }
        }
        drop(first);
        for h in handles {
            let _ = h.join();
        }
        assert_eq!(*lock.lock(), vec![0, 1, 2, 3, 4]);
    }

    fn lock_queue_len<T>(l: &FairLock<T>) -> usize {
        lock(&l.turns).waiting.len()
    }
}
