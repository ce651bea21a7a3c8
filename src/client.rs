//! `ProtocolClient`: one blocking TCP connection to a spalloc server.
//!
//! The client owns one persistent receive buffer, so a line that arrives in
//! pieces survives a read timeout, and a queue of notifications that arrived
//! while a call was waiting for its reply. Every call runs against a deadline
//! computed once at its start. A call that times out leaves its reply owed;
//! the next call discards that stale reply when it arrives, so replies are
//! never matched to the wrong command.
//!
//! A call costs one write and (for a short reply) one read: the socket's
//! timeouts are set again only when the time left differs from the last
//! setting by more than 1 % (at most 10 ms), which is therefore how far a
//! blocked read may outlast its deadline. What goes on the wire and how a
//! reply is read are [`crate::protocol`]'s business: each reply is decoded
//! straight into its final type as its line is read.
//!
//! [`ProtocolClient::call_pipelined`] writes many calls before reading
//! their replies, which both servers send in the order of the calls. It
//! shares the reply loop of single calls (`next_reply`), which tells
//! replies owed to the calls in flight from those owed to earlier calls
//! that timed out, and queues notifications on the way.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, trace};
use serde_json::{Map, Value};

use crate::error::{Error, Phase, ProtocolError, Result};
use crate::interrupt::{InterruptHandle, Registration, Waker};
use crate::protocol::{
    self, Ignored, Incoming, Reply, create_job_args, create_job_kwargs, decode_line_as, encode_call,
};
use crate::seconds;
use crate::types::{
    Board, BoardPosition, CreateJobOptions, JobDescription, JobMachineInfo, JobRequest,
    JobStateInfo, MachineDescription, Notification, WhereIs, WhereIsQuery,
};

/// The default spalloc server port.
pub const DEFAULT_PORT: u16 = 22244;

/// The default bound on the length of one line from the server: large enough
/// for `list_jobs` with tens of thousands of jobs, small enough that a broken
/// or hostile server cannot exhaust memory.
pub const DEFAULT_MAX_LINE_LENGTH: usize = 16 * 1024 * 1024;

/// Notifications are hints; if a caller never collects them, keep only the
/// most recent ones rather than grow without bound.
const MAX_QUEUED_NOTIFICATIONS: usize = 4096;

/// How long [`ProtocolClient::connect_interruptible`] tries a loopback
/// address on the calling thread (uninterruptibly) before it hands the
/// attempt to a helper thread: a loopback connection is accepted or
/// refused within the system call unless the server's listen queue is
/// full. Saves starting a thread, and waking up after it, per connection.
const LOOPBACK_CONNECT: Duration = Duration::from_millis(20);

/// The most calls [`ProtocolClient::call_pipelined`] has in flight at
/// once: enough to hide the round trips, few enough that the requests
/// written ahead (tens of bytes each) never fill a socket buffer while the
/// server is blocked writing replies that are not being read yet.
pub const PIPELINE_WINDOW: usize = 128;

/// Exception texts with which the Java compatibility service says "not
/// found", where the Python server returns `null` instead.
const NOT_FOUND: [&str; 5] = [
    "no such job",
    "no such board",
    "no such machine",
    "no boards currently allocated",
    "boards not allocated",
];

fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Server(m) if NOT_FOUND.iter().any(|nf| m.trim().eq_ignore_ascii_case(nf)))
}

/// A blocking connection to a spalloc server speaking the v1 JSON-lines
/// protocol.
///
/// Each typed method sends one command in the form that both the Python
/// server and the Java compatibility service accept, waits for its reply for
/// at most [`timeout`](Self::timeout), and decodes it. Notifications that
/// arrive in the meantime are queued for
/// [`wait_for_notification`](Self::wait_for_notification).
///
/// # Example
/// ```no_run
/// use std::time::Duration;
/// use spalloc::ProtocolClient;
///
/// let mut client = ProtocolClient::connect("spalloc.example.org", 22244, Some(Duration::from_secs(5)))?;
/// println!("server version {}", client.version()?);
/// for job in client.list_jobs()? {
///     println!("{} {} {:?}", job.job_id, job.state, job.owner);
/// }
/// # Ok::<(), spalloc::Error>(())
/// ```
#[derive(Debug)]
pub struct ProtocolClient {
    stream: TcpStream,
    peer: SocketAddr,
    /// Received bytes: `buf[start..end]` is pending; `buf[end..]` is
    /// already-zeroed room for the next read, so reads need not clear it
    /// again.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// `buf[start..scanned]` is known to contain no newline.
    scanned: usize,
    /// The socket's timeouts as last set, to skip setting them again.
    read_timeout: Applied,
    write_timeout: Applied,
    notifications: VecDeque<Notification>,
    /// Replies still owed by the server, including the current call's.
    outstanding: usize,
    timeout: Option<Duration>,
    max_line_length: usize,
    /// Why the connection can no longer be used, once it cannot.
    broken: Option<&'static str>,
    /// The handle that can cut this client's calls short, if any.
    interrupt: Option<Attached>,
}

/// Calls to send together with [`ProtocolClient::call_pipelined`]: each
/// is encoded as it is added, and they go out back to back.
///
/// A pipeline can be sent any number of times, on any connection.
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    /// The encoded calls, one line each.
    bytes: Vec<u8>,
    calls: Vec<Queued>,
}

/// One call of a [`Pipeline`].
#[derive(Debug, Clone)]
struct Queued {
    /// For error messages about its reply.
    command: String,
    /// Where its line ends in `bytes`.
    end: usize,
}

impl Pipeline {
    /// An empty pipeline.
    pub fn new() -> Pipeline {
        Pipeline::default()
    }

    /// Adds a call of any command, encoded as [`ProtocolClient::call`]
    /// encodes it.
    pub fn call(
        &mut self,
        command: &str,
        args: &[Value],
        kwargs: &Map<String, Value>,
    ) -> &mut Pipeline {
        self.bytes
            .extend_from_slice(&encode_call(command, args, kwargs));
        self.calls.push(Queued {
            command: command.to_owned(),
            end: self.bytes.len(),
        });
        self
    }

    /// How many calls it holds.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether it holds no calls.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Removes every call, keeping the memory for the next ones.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.calls.clear();
    }
}

/// An [`InterruptHandle`] and this client's socket registered with it.
#[derive(Debug)]
struct Attached {
    handle: InterruptHandle,
    registration: Registration,
}

impl ProtocolClient {
    /// Connects to `hostname:port`, trying each address the name resolves to
    /// (IPv4 and IPv6) in turn, each for at most `timeout`. The same
    /// `timeout` becomes the default limit for each call (`None`: wait
    /// forever; a timeout too long to represent is the same as `None`).
    ///
    /// # Errors
    /// [`Error::Connect`], naming the host, the port and the operating
    /// system's reason, if the name does not resolve or no address accepts
    /// the connection in time.
    pub fn connect(hostname: &str, port: u16, timeout: Option<Duration>) -> Result<ProtocolClient> {
        let stream = open(hostname, port, timeout)?;
        ProtocolClient::from_stream(stream, timeout)
    }

    /// [`connect`](Self::connect), but `interrupt` can cut the connection
    /// attempt short, and every later call on the client too (see
    /// [`InterruptHandle`]). Name lookup and connecting then happen on a
    /// helper thread, which is left to finish on its own if interrupted;
    /// except that a loopback address (such as a virtual server's) is
    /// first tried on the calling thread for a few milliseconds, as the
    /// system accepts or refuses such a connection at once.
    ///
    /// # Errors
    /// As for [`connect`](Self::connect), or [`Error::Interrupted`].
    pub fn connect_interruptible(
        hostname: &str,
        port: u16,
        timeout: Option<Duration>,
        interrupt: &InterruptHandle,
    ) -> Result<ProtocolClient> {
        let stream = connect_stream(hostname, port, timeout, Some(interrupt))?;
        let mut client = ProtocolClient::from_stream(stream, timeout)?;
        client.attach(interrupt)?;
        Ok(client)
    }

    /// Wraps an already connected stream.
    ///
    /// # Errors
    /// [`Error::Io`] if the stream has no peer (it is not connected).
    pub fn from_stream(stream: TcpStream, timeout: Option<Duration>) -> Result<ProtocolClient> {
        // Commands are small and latency-bound: do not let Nagle hold them.
        stream.set_nodelay(true)?;
        let peer = stream.peer_addr()?;
        Ok(ProtocolClient {
            stream,
            peer,
            buf: Vec::new(),
            start: 0,
            end: 0,
            scanned: 0,
            read_timeout: Applied::Unknown,
            write_timeout: Applied::Unknown,
            notifications: VecDeque::new(),
            outstanding: 0,
            timeout,
            max_line_length: DEFAULT_MAX_LINE_LENGTH,
            broken: None,
            interrupt: None,
        })
    }

    /// Lets `interrupt` cut this client's calls short.
    fn attach(&mut self, interrupt: &InterruptHandle) -> Result<()> {
        let registration = interrupt.register(Waker::Socket {
            stream: self.stream.try_clone()?,
            grace: None,
            armed: false,
        });
        self.interrupt = Some(Attached {
            handle: interrupt.clone(),
            registration,
        });
        Ok(())
    }

    /// Runs `f`, during which an interruption waits up to `grace` before
    /// it cuts a blocked call short, so that a reply on its way (the id of
    /// a job just created) can still arrive. A second interruption cuts it
    /// short at once.
    pub(crate) fn with_interrupt_grace<T>(
        &mut self,
        grace: Duration,
        f: impl FnOnce(&mut ProtocolClient) -> Result<T>,
    ) -> Result<T> {
        if let Some(a) = &self.interrupt {
            a.registration.set_grace(Some(grace));
        }
        let result = f(self);
        if let Some(a) = &self.interrupt {
            a.registration.set_grace(None);
        }
        result
    }

    /// Marks a call as in progress, so that an interruption cuts it short;
    /// or, if one is pending, uses it up instead. The connection, idle
    /// until now, stays usable.
    fn arm(&mut self) -> Result<()> {
        match &self.interrupt {
            Some(a) => a.registration.arm(),
            None => Ok(()),
        }
    }

    fn disarm(&self) {
        if let Some(a) = &self.interrupt {
            a.registration.disarm();
        }
    }

    /// Uses up a pending interruption, if there is one.
    fn check_interrupt(&self) -> Result<()> {
        match &self.interrupt {
            Some(a) => a.handle.take(),
            None => Ok(()),
        }
    }

    /// `e`, or [`Error::Interrupted`] if an interruption is what caused it
    /// (by shutting the socket down, so that the connection is done for).
    fn interrupted_instead(&mut self, e: Error) -> Error {
        match self.check_interrupt() {
            Err(interrupted) => {
                self.broken = Some("an interruption");
                interrupted
            }
            Ok(()) => e,
        }
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The limit applied to each typed call (`None`: wait forever).
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Sets the limit applied to each typed call.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// The longest line accepted from the server, in bytes.
    pub fn max_line_length(&self) -> usize {
        self.max_line_length
    }

    /// Sets the longest line accepted from the server. Defaults to
    /// [`DEFAULT_MAX_LINE_LENGTH`].
    pub fn set_max_line_length(&mut self, bytes: usize) {
        self.max_line_length = bytes;
    }

    /// Closes the connection. Dropping the client does the same.
    pub fn close(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// Sends any command and returns the raw value of its reply.
    ///
    /// Notifications that arrive before the reply are queued for
    /// [`wait_for_notification`](Self::wait_for_notification). If the call
    /// times out, its reply is discarded when it arrives later.
    ///
    /// # Errors
    /// [`Error::Server`] for an `{"exception": …}` reply; [`Error::Timeout`]
    /// if no reply came within `timeout`; [`Error::Disconnected`],
    /// [`Error::Io`], [`Error::Json`], [`Error::Protocol`] or
    /// [`Error::LineTooLong`] if the connection failed (the client is then
    /// unusable and should be replaced).
    pub fn call(
        &mut self,
        command: &str,
        args: &[Value],
        kwargs: &Map<String, Value>,
        timeout: Option<Duration>,
    ) -> Result<Value> {
        self.call_as::<Value>(command, args, kwargs, timeout)
    }

    /// [`call`](Self::call), with the reply read straight into `T` as its
    /// line is read (see [`crate::protocol`]).
    fn call_as<T: Reply>(
        &mut self,
        command: &str,
        args: &[Value],
        kwargs: &Map<String, Value>,
        timeout: Option<Duration>,
    ) -> Result<T> {
        self.usable()?;
        self.arm()?;
        let result = self.call_armed(command, args, kwargs, timeout);
        self.disarm();
        result
    }

    fn call_armed<T: Reply>(
        &mut self,
        command: &str,
        args: &[Value],
        kwargs: &Map<String, Value>,
        timeout: Option<Duration>,
    ) -> Result<T> {
        let deadline = seconds::deadline(timeout);
        let line = encode_call(command, args, kwargs);
        trace!("-> {}", String::from_utf8_lossy(&line).trim_end());
        self.send(&line, deadline)?;
        self.outstanding += 1;
        self.next_reply(deadline, command, 1)?
    }

    /// Reads replies until the one to the oldest of the `mine` calls still
    /// owed a reply, and decodes it as `T` for `command`. Replies owed to
    /// earlier calls that timed out come first (`outstanding` counts them
    /// beside `mine`): they are read without decoding their values and
    /// dropped. Notifications on the way are queued.
    ///
    /// The outer `Result` is the connection's (it failed, or no reply came
    /// in time); the inner one is the call's (an exception, or a value of
    /// the wrong shape), after which the connection is still in step.
    fn next_reply<T: Reply>(
        &mut self,
        deadline: Option<Instant>,
        command: &str,
        mine: usize,
    ) -> Result<Result<T>> {
        loop {
            // A late reply to an earlier call is not this call's: read it
            // without decoding its value, and drop it.
            if self.outstanding > mine {
                match self.next_incoming::<Ignored>(deadline, command)? {
                    Incoming::Return(_) | Incoming::Exception(_) => {
                        self.outstanding -= 1;
                        debug!("discarding the late reply to an earlier call");
                    }
                    Incoming::Notification(n) => self.queue(n),
                    Incoming::Unrecognised(keys) => {
                        debug!("ignoring a message with keys {keys:?}");
                    }
                }
                continue;
            }
            let reply = match self.next_incoming::<T>(deadline, command)? {
                Incoming::Return(reply) => reply.map_err(Error::from),
                Incoming::Exception(m) => Err(Error::Server(m)),
                Incoming::Notification(n) => {
                    self.queue(n);
                    continue;
                }
                Incoming::Unrecognised(keys) => {
                    debug!("ignoring a message with keys {keys:?}");
                    continue;
                }
            };
            self.outstanding -= 1;
            return Ok(reply);
        }
    }

    /// Sends every call of `pipeline` before reading the replies, and
    /// returns one result per call, in the order the calls were added.
    ///
    /// Both servers answer one connection's commands in the order they
    /// arrive, so reply `i` belongs to call `i`; writing the calls back to
    /// back saves a round trip per call over calling them one at a time,
    /// which is most of the cost of a small call. At most
    /// [`PIPELINE_WINDOW`] calls are in flight at once: a longer pipeline
    /// sends more as replies come in, so that neither side's buffers fill
    /// while the other waits. Pipelining suits many small calls (states,
    /// keepalives, destroys of many jobs); replies a server must buffer
    /// are bounded by the window times the size of a reply.
    ///
    /// Each call's result is its own: an exception from the server is an
    /// [`Error::Server`] for that call alone, and the calls after it are
    /// still answered. Notifications that arrive between the replies are
    /// queued for [`wait_for_notification`](Self::wait_for_notification),
    /// and late replies to earlier calls that timed out are dropped, as
    /// for [`call`](Self::call). `timeout` bounds the whole pipeline (one
    /// deadline; `None` waits forever).
    ///
    /// Replies are [`Value`]s as [`call`](Self::call) returns them: the
    /// typed methods' decoding and their tolerance of the Java service's
    /// "not found" exceptions are not applied.
    ///
    /// # Errors
    /// The results are always as many as the calls. If the connection
    /// fails part way, the call whose reply was due gets the failure
    /// (as [`call`](Self::call) would) and each later call
    /// [`Error::Abandoned`]; if the deadline passes, every call still
    /// unanswered gets [`Error::Timeout`] (their replies, if they come,
    /// are dropped by later calls, and the connection stays usable). A
    /// call whose result is such an error may or may not have been carried
    /// out by the server. If an interruption cuts the pipeline short, the
    /// call whose reply was due gets [`Error::Interrupted`].
    ///
    /// # Example
    /// ```no_run
    /// use std::time::Duration;
    /// use spalloc::{Pipeline, ProtocolClient};
    ///
    /// let mut client = ProtocolClient::connect("spalloc.example.org", 22244, Some(Duration::from_secs(5)))?;
    /// let mut keepalives = Pipeline::new();
    /// for id in [17, 18, 19] {
    ///     keepalives.call("job_keepalive", &[id.into()], &Default::default());
    /// }
    /// for (id, result) in [17, 18, 19].iter().zip(client.call_pipelined(&keepalives, client.timeout())) {
    ///     if let Err(e) = result {
    ///         eprintln!("job {id}: {e}");
    ///     }
    /// }
    /// # Ok::<(), spalloc::Error>(())
    /// ```
    pub fn call_pipelined(
        &mut self,
        pipeline: &Pipeline,
        timeout: Option<Duration>,
    ) -> Vec<Result<Value>> {
        let mut results = Vec::with_capacity(pipeline.len());
        if pipeline.is_empty() {
            return results;
        }
        let failure = match self.usable().and_then(|()| self.arm()) {
            Ok(()) => {
                let failure = self.pipeline_armed(pipeline, timeout, &mut results);
                self.disarm();
                failure
            }
            Err(e) => Some(e),
        };
        if let Some(e) = failure {
            let interrupted = matches!(e, Error::Interrupted);
            results.push(Err(e));
            while results.len() < pipeline.len() {
                results.push(Err(match self.broken {
                    Some(after) => Error::Abandoned { after },
                    // Interrupted before anything was sent.
                    None if interrupted => Error::Interrupted,
                    None => Error::Timeout(Phase::Reply),
                }));
            }
        }
        results
    }

    /// Sends `pipeline`'s calls a window at a time and reads their replies
    /// into `results`; returns the failure that ended it early, if any.
    fn pipeline_armed(
        &mut self,
        pipeline: &Pipeline,
        timeout: Option<Duration>,
        results: &mut Vec<Result<Value>>,
    ) -> Option<Error> {
        let deadline = seconds::deadline(timeout);
        let calls = &pipeline.calls;
        let mut sent = 0;
        while results.len() < calls.len() {
            let answered = results.len();
            // Top the window up once half of it has been answered: one
            // write for many calls, and never more than the window ahead.
            if sent < calls.len() && sent - answered <= PIPELINE_WINDOW / 2 {
                let upto = calls.len().min(answered + PIPELINE_WINDOW);
                let from = if sent == 0 { 0 } else { calls[sent - 1].end };
                let bytes = &pipeline.bytes[from..calls[upto - 1].end];
                trace!("-> {} calls, {} bytes", upto - sent, bytes.len());
                if let Err(e) = self.send(bytes, deadline) {
                    return Some(e);
                }
                self.outstanding += upto - sent;
                sent = upto;
            }
            match self.next_reply::<Value>(deadline, &calls[answered].command, sent - answered) {
                Ok(reply) => results.push(reply),
                Err(e) => return Some(e),
            }
        }
        None
    }

    fn call_args<T: Reply>(&mut self, command: &str, args: &[Value]) -> Result<T> {
        self.call_as(command, args, &Map::new(), self.timeout)
    }

    fn call_kwargs<T: Reply>(&mut self, command: &str, kwargs: Map<String, Value>) -> Result<T> {
        self.call_as(command, &[], &kwargs, self.timeout)
    }

    /// Waits for a notification: first from the queue of those that arrived
    /// during earlier calls, then from the connection. `None` waits forever;
    /// a zero timeout only checks what has already arrived.
    ///
    /// Returns `Ok(None)` if none arrived in time. Notifications arrive only
    /// after [`notify_job`](Self::notify_job) or
    /// [`notify_machine`](Self::notify_machine) on this connection.
    ///
    /// # Errors
    /// As for [`call`](Self::call), for failures of the connection.
    pub fn wait_for_notification(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Option<Notification>> {
        self.check_interrupt()?;
        if let Some(n) = self.notifications.pop_front() {
            return Ok(Some(n));
        }
        self.usable()?;
        self.arm()?;
        let result = self.notification_armed(timeout);
        self.disarm();
        result
    }

    fn notification_armed(&mut self, timeout: Option<Duration>) -> Result<Option<Notification>> {
        let deadline = seconds::deadline(timeout);
        loop {
            match self.next_incoming::<Ignored>(deadline, "a notification") {
                Ok(Incoming::Notification(n)) => return Ok(Some(n)),
                Ok(Incoming::Return(_) | Incoming::Exception(_)) => {
                    if self.outstanding > 0 {
                        self.outstanding -= 1;
                        debug!("discarding the late reply to an earlier call");
                    } else {
                        debug!("ignoring a reply to no call");
                    }
                }
                Ok(Incoming::Unrecognised(keys)) => debug!("ignoring a message with keys {keys:?}"),
                Err(Error::Timeout(_)) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// The server's version string (not checked; see
    /// [`check_version`](Self::check_version)).
    ///
    /// # Errors
    /// As for [`call`](Self::call), or [`Error::Protocol`] if the reply is
    /// not a string.
    pub fn version(&mut self) -> Result<String> {
        self.call_args("version", &[])
    }

    /// Fetches the server's version and checks it with
    /// [`crate::check_version`]. Returns the version string.
    ///
    /// # Errors
    /// [`Error::IncompatibleVersion`] if it is out of range, or as for
    /// [`version`](Self::version).
    pub fn check_version(&mut self) -> Result<String> {
        let v = self.version()?;
        crate::version::check_version(&v)?;
        Ok(v)
    }

    /// Creates a job and returns its id.
    ///
    /// The request is checked locally first for what the servers would
    /// reject ([`CreateJobOptions::validate`]). Note that the Python server
    /// returns an id even for a request no machine can satisfy, and destroys
    /// that job at once.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a request that fails the local check,
    /// [`Error::Server`] if the server refuses it, or as for
    /// [`call`](Self::call).
    ///
    /// A board by physical position is first looked up on the options'
    /// machine with `get_board_at_position`, and asked for by its logical
    /// coordinate; [`Error::Server`] if there is no such board.
    pub fn create_job(&mut self, request: &JobRequest, options: &CreateJobOptions) -> Result<u64> {
        options.validate(Some(request))?;
        let request = match (request, &options.machine) {
            (JobRequest::Physical(p), Some(machine)) => {
                match self.get_board_at_position(machine, *p)? {
                    Some(board) => JobRequest::Board(board),
                    None => {
                        return Err(Error::Server(format!(
                            "no board at cabinet {}, frame {}, board {} on machine {machine}",
                            p.cabinet, p.frame, p.board
                        )));
                    }
                }
            }
            (other, _) => *other,
        };
        self.call_as(
            "create_job",
            &create_job_args(&request)?,
            &create_job_kwargs(options),
            self.timeout,
        )
    }

    /// Tells the server the job is still wanted.
    ///
    /// # Errors
    /// As for [`call`](Self::call), except that a reply that does not come
    /// in time is [`Error::Timeout`]`(`[`Phase::Keepalive`]`)`; the Java
    /// service raises `no such job` for an unknown id.
    pub fn job_keepalive(&mut self, job_id: u64) -> Result<()> {
        match self.call_args::<Ignored>("job_keepalive", &[job_id.into()]) {
            Ok(Ignored) => Ok(()),
            Err(Error::Timeout(Phase::Reply)) => Err(Error::Timeout(Phase::Keepalive)),
            Err(e) => Err(e),
        }
    }

    /// The job's state. An id the server does not know gives
    /// [`JobState::Unknown`](crate::JobState::Unknown) on both servers. Also
    /// counts as a keepalive.
    ///
    /// # Errors
    /// As for [`call`](Self::call), or [`Error::Protocol`] naming the field
    /// of a malformed reply.
    pub fn get_job_state(&mut self, job_id: u64) -> Result<JobStateInfo> {
        match self.call_args("get_job_state", &[job_id.into()]) {
            Err(e) if is_not_found(&e) => Ok(JobStateInfo::unknown()),
            other => other,
        }
    }

    /// Where the job's boards are, or `None` if it has none (queued,
    /// destroyed or unknown). Also counts as a keepalive.
    ///
    /// # Errors
    /// As for [`get_job_state`](Self::get_job_state).
    pub fn get_job_machine_info(&mut self, job_id: u64) -> Result<Option<JobMachineInfo>> {
        match self.call_args("get_job_machine_info", &[job_id.into()]) {
            Err(e) if is_not_found(&e) => Ok(None),
            other => other,
        }
    }

    /// Powers the job's boards on, or resets them if they are on. The job
    /// passes through [`JobState::Power`](crate::JobState::Power).
    ///
    /// # Errors
    /// As for [`call`](Self::call); the Java service raises an exception for
    /// a job without boards.
    pub fn power_on_job_boards(&mut self, job_id: u64) -> Result<()> {
        self.call_args::<Ignored>("power_on_job_boards", &[job_id.into()])
            .map(drop)
    }

    /// Powers the job's boards off.
    ///
    /// # Errors
    /// As for [`power_on_job_boards`](Self::power_on_job_boards).
    pub fn power_off_job_boards(&mut self, job_id: u64) -> Result<()> {
        self.call_args::<Ignored>("power_off_job_boards", &[job_id.into()])
            .map(drop)
    }

    /// Destroys the job, recording `reason` if given.
    ///
    /// # Errors
    /// As for [`call`](Self::call); the Java service raises `no such job` for
    /// an unknown id.
    pub fn destroy_job(&mut self, job_id: u64, reason: Option<&str>) -> Result<()> {
        let kwargs = protocol::destroy_kwargs(reason);
        self.call_as::<Ignored>("destroy_job", &[job_id.into()], &kwargs, self.timeout)
            .map(drop)
    }

    /// Asks for notifications about one job, or about all jobs (`None`), on
    /// this connection.
    ///
    /// # Errors
    /// As for [`call`](Self::call).
    pub fn notify_job(&mut self, job_id: Option<u64>) -> Result<()> {
        self.call_args::<Ignored>("notify_job", &protocol::optional_arg(job_id))
            .map(drop)
    }

    /// Stops notifications about one job, or about all jobs (`None`).
    ///
    /// # Errors
    /// As for [`call`](Self::call).
    pub fn no_notify_job(&mut self, job_id: Option<u64>) -> Result<()> {
        self.call_args::<Ignored>("no_notify_job", &protocol::optional_arg(job_id))
            .map(drop)
    }

    /// Asks for notifications about one machine, or about all (`None`).
    ///
    /// # Errors
    /// As for [`call`](Self::call).
    pub fn notify_machine(&mut self, machine: Option<&str>) -> Result<()> {
        self.call_args::<Ignored>("notify_machine", &protocol::optional_arg(machine))
            .map(drop)
    }

    /// Stops notifications about one machine, or about all (`None`).
    ///
    /// # Errors
    /// As for [`call`](Self::call).
    pub fn no_notify_machine(&mut self, machine: Option<&str>) -> Result<()> {
        self.call_args::<Ignored>("no_notify_machine", &protocol::optional_arg(machine))
            .map(drop)
    }

    /// The live jobs, in the server's order.
    ///
    /// # Errors
    /// As for [`call`](Self::call), or [`Error::Protocol`] naming the field
    /// of a malformed entry.
    pub fn list_jobs(&mut self) -> Result<Vec<JobDescription>> {
        self.call_args("list_jobs", &[])
    }

    /// The machines, in the server's priority order.
    ///
    /// # Errors
    /// As for [`list_jobs`](Self::list_jobs).
    pub fn list_machines(&mut self) -> Result<Vec<MachineDescription>> {
        self.call_args("list_machines", &[])
    }

    /// The physical location of a board, or `None` if the machine or board
    /// does not exist.
    ///
    /// # Errors
    /// As for [`call`](Self::call).
    pub fn get_board_position(
        &mut self,
        machine: &str,
        board: Board,
    ) -> Result<Option<BoardPosition>> {
        match self.call_kwargs("get_board_position", protocol::board_kwargs(machine, board)) {
            Err(e) if is_not_found(&e) => Ok(None),
            other => other,
        }
    }

    /// The logical coordinate of the board at a physical location, or `None`
    /// if there is none.
    ///
    /// # Errors
    /// As for [`call`](Self::call).
    pub fn get_board_at_position(
        &mut self,
        machine: &str,
        position: BoardPosition,
    ) -> Result<Option<Board>> {
        let kwargs = protocol::location_kwargs(machine, position);
        match self.call_kwargs("get_board_at_position", kwargs) {
            Err(e) if is_not_found(&e) => Ok(None),
            other => other,
        }
    }

    /// Locates a board or chip, or returns `None` if there is nothing there
    /// (no such machine, board or job; a dead board; a chip outside the job).
    ///
    /// # Errors
    /// As for [`call`](Self::call), or [`Error::Protocol`] naming the field
    /// of a malformed reply.
    pub fn where_is(&mut self, query: &WhereIsQuery) -> Result<Option<WhereIs>> {
        if matches!(query, WhereIsQuery::Address { .. }) {
            return Err(crate::error::InvalidArgument::NotOnProtocol {
                option: "where-is by IP address",
                protocol: "v1",
            }
            .into());
        }
        match self.call_kwargs("where_is", protocol::where_is_kwargs(query)) {
            Err(e) if is_not_found(&e) => Ok(None),
            other => other,
        }
    }

    /// Reports a faulty board (and optionally chip and core) to the server's
    /// operators. Only the Java compatibility service and this crate's
    /// virtual server know this command; the Python server drops the
    /// connection instead.
    ///
    /// # Errors
    /// As for [`call`](Self::call).
    pub fn report_problem(
        &mut self,
        board_ip: &str,
        chip: Option<(u32, u32)>,
        core: Option<u32>,
        description: Option<&str>,
    ) -> Result<()> {
        let kwargs = protocol::report_problem_kwargs(chip, core, description);
        self.call_as::<Ignored>("report_problem", &[board_ip.into()], &kwargs, self.timeout)
            .map(drop)
    }

    fn usable(&self) -> Result<()> {
        match self.broken {
            None => Ok(()),
            Some(after) => Err(Error::Abandoned { after }),
        }
    }

    fn queue(&mut self, n: Notification) {
        if self.notifications.len() >= MAX_QUEUED_NOTIFICATIONS {
            self.notifications.pop_front();
        }
        self.notifications.push_back(n);
    }

    fn send(&mut self, line: &[u8], deadline: Option<Instant>) -> Result<()> {
        let result = (|| {
            let remaining = remaining(deadline)?;
            if let Some(t) = self.write_timeout.update(remaining) {
                self.stream.set_write_timeout(t).inspect_err(|_| {
                    self.write_timeout = Applied::Unknown;
                })?;
            }
            self.stream.write_all(line)
        })();
        result.map_err(|e| {
            // Part of the line may have gone out: the framing is lost.
            self.broken = Some("a write failed");
            self.interrupted_instead(e.into())
        })
    }

    /// Reads the next complete line and decodes it, a reply's value as `T`
    /// for `command`. A timeout leaves any partial line buffered; every
    /// other failure of the line makes the connection unusable (a reply of
    /// the wrong shape does not: it is in step, just wrong).
    fn next_incoming<T: Reply>(
        &mut self,
        deadline: Option<Instant>,
        command: &str,
    ) -> Result<Incoming<Result<T, ProtocolError>>> {
        let result = self.next_line(deadline).and_then(|(from, to)| {
            let decoded = decode_line_as::<T>(&self.buf[from..to], command);
            self.consume(to + 1);
            decoded
        });
        match result {
            Err(Error::Timeout(phase)) => Err(Error::Timeout(phase)),
            Err(e) => {
                let e = self.interrupted_instead(e);
                if matches!(e, Error::Interrupted) {
                    return Err(e);
                }
                self.broken = Some(match e {
                    Error::Disconnected => "the server closed the connection",
                    Error::LineTooLong { .. } => "an over-long line",
                    _ => "an unreadable line",
                });
                Err(e)
            }
            ok => ok,
        }
    }

    /// Finds the next complete line, reading as needed; returns its range in
    /// `buf`, without the `\n`.
    fn next_line(&mut self, deadline: Option<Instant>) -> Result<(usize, usize)> {
        loop {
            if let Some(pos) = memchr::memchr(b'\n', &self.buf[self.scanned..self.end]) {
                let end = self.scanned + pos;
                if end - self.start > self.max_line_length {
                    return Err(Error::LineTooLong {
                        limit: self.max_line_length,
                    });
                }
                return Ok((self.start, end));
            }
            self.scanned = self.end;
            if self.end - self.start > self.max_line_length {
                return Err(Error::LineTooLong {
                    limit: self.max_line_length,
                });
            }
            self.fill(deadline)?;
        }
    }

    fn consume(&mut self, upto: usize) {
        self.start = upto;
        if self.start >= self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 64 * 1024 && self.start * 2 > self.end {
            // Compact only occasionally, so that draining many short lines
            // from one big read stays linear.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        self.scanned = self.start;
    }

    /// Appends at least one byte from the socket, or fails.
    fn fill(&mut self, deadline: Option<Instant>) -> Result<()> {
        let pending = self.end - self.start;
        let chunk = pending.clamp(8 * 1024, 1024 * 1024);
        if self.buf.len() < self.end + chunk {
            self.buf.resize(self.end + chunk, 0);
        }
        let result = match remaining(deadline) {
            // Out of time: one last look at what has already arrived.
            Err(_) => self.read_nonblocking(),
            Ok(timeout) => match self.read_timeout.update(timeout) {
                Some(t) => self.stream.set_read_timeout(t).inspect_err(|_| {
                    self.read_timeout = Applied::Unknown;
                }),
                None => Ok(()),
            }
            .and_then(|()| self.stream.read(&mut self.buf[self.end..])),
        };
        match result {
            Ok(0) => Err(Error::Disconnected),
            Ok(n) => {
                self.end += n;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn read_nonblocking(&mut self) -> io::Result<usize> {
        self.stream.set_nonblocking(true)?;
        let result = self.stream.read(&mut self.buf[self.end..]);
        self.stream.set_nonblocking(false)?;
        result
    }
}

/// A socket timeout (read or write) as last set on the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applied {
    /// Not set by us: whatever the stream came with.
    Unknown,
    Set(Option<Duration>),
}

impl Applied {
    /// The longest a blocking read or write may outlast its deadline.
    const MAX_SLACK: Duration = Duration::from_millis(10);

    /// What to set the socket's timeout to, if anything, before an
    /// operation that should give up after `wanted`.
    ///
    /// Setting it is a system call, and every call's deadline differs from
    /// the last by the microseconds in between: so the timeout already set
    /// is kept when it is no shorter than `wanted` and longer by at most
    /// 1 % (at most [`MAX_SLACK`](Self::MAX_SLACK)). A new one is set to
    /// `wanted` plus half that slack, which the next call's `wanted`
    /// will almost always fall within.
    fn update(&mut self, wanted: Option<Duration>) -> Option<Option<Duration>> {
        let Some(w) = wanted else {
            return match *self {
                Applied::Set(None) => None,
                _ => {
                    *self = Applied::Set(None);
                    Some(None)
                }
            };
        };
        let slack = (w / 100).min(Self::MAX_SLACK);
        match *self {
            Applied::Set(Some(a)) if a >= w && a - w <= slack => None,
            _ => {
                let new = w.saturating_add(slack / 2);
                *self = Applied::Set(Some(new));
                Some(Some(new))
            }
        }
    }
}

/// Time left before `deadline`: `Ok(None)` for no deadline, an error once it
/// has passed (std rejects a zero socket timeout, so we must not pass one).
fn remaining(deadline: Option<Instant>) -> io::Result<Option<Duration>> {
    match deadline {
        None => Ok(None),
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                Err(io::ErrorKind::TimedOut.into())
            } else {
                Ok(Some(left))
            }
        }
    }
}

/// Resolves `hostname` and connects to the first address that accepts.
/// Connects to `hostname:port` as [`ProtocolClient::connect`] does; with
/// `interrupt`, on a helper thread that an interruption leaves to finish on
/// its own.
pub(crate) fn connect_stream(
    hostname: &str,
    port: u16,
    timeout: Option<Duration>,
    interrupt: Option<&InterruptHandle>,
) -> Result<TcpStream> {
    let Some(interrupt) = interrupt else {
        return open(hostname, port, timeout);
    };
    if let Ok(ip) = hostname.parse::<std::net::IpAddr>()
        && ip.is_loopback()
        && timeout.is_none_or(|t| t > LOOPBACK_CONNECT)
    {
        interrupt.take()?;
        match TcpStream::connect_timeout(&SocketAddr::new(ip, port), LOOPBACK_CONNECT) {
            Ok(stream) => return Ok(stream),
            // A full listen queue, say: wait on the helper thread, where an
            // interruption can end the wait.
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                debug!("connecting to {ip}:{port} is taking a while ({e})");
            }
            Err(source) => {
                return Err(Error::Connect {
                    host: hostname.to_owned(),
                    port,
                    lookup: false,
                    source,
                });
            }
        }
    }
    // `None` on the channel: interrupted.
    let (tx, rx) = mpsc::channel::<Option<Result<TcpStream>>>();
    let wake = tx.clone();
    let registration = interrupt.take_or_register(Waker::Notify(Box::new(move || {
        let _ = wake.send(None);
    })))?;
    let host = hostname.to_owned();
    thread::Builder::new()
        .name("spalloc-connect".into())
        .spawn(move || {
            let _ = tx.send(Some(open(&host, port, timeout)));
        })
        .map_err(|source| Error::Connect {
            host: hostname.to_owned(),
            port,
            lookup: false,
            source,
        })?;
    let stream = match rx.recv() {
        Ok(Some(result)) => result?,
        Ok(None) | Err(_) => {
            let _ = interrupt.take();
            return Err(Error::Interrupted);
        }
    };
    drop(registration);
    Ok(stream)
}

fn open(hostname: &str, port: u16, timeout: Option<Duration>) -> Result<TcpStream> {
    let failed = |lookup: bool, source: io::Error| Error::Connect {
        host: hostname.to_owned(),
        port,
        lookup,
        source,
    };
    let addrs: Vec<SocketAddr> = (hostname, port)
        .to_socket_addrs()
        .map_err(|e| failed(true, e))?
        .collect();
    let mut last_err = io::Error::new(io::ErrorKind::NotFound, "the name has no addresses");
    let mut lookup = true;
    for addr in addrs {
        lookup = false;
        debug!("connecting to {addr}");
        let attempt = match timeout {
            Some(t) if t.is_zero() => Err(io::ErrorKind::TimedOut.into()),
            Some(t) => TcpStream::connect_timeout(&addr, t),
            None => TcpStream::connect(addr),
        };
        match attempt {
            Ok(stream) => {
                debug!("connected to {addr}");
                return Ok(stream);
            }
            Err(e) => {
                debug!("connecting to {addr} failed: {e}");
                last_err = e;
            }
        }
    }
    Err(failed(lookup, last_err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_timeouts_are_set_again_only_when_they_must_be() {
        let ms = Duration::from_millis;
        let ten = Duration::from_secs(10);
        let mut a = Applied::Unknown;
        // Whatever the stream came with, the first is set: a little over.
        let Some(Some(set)) = a.update(Some(ten)) else {
            panic!("the first timeout was not set");
        };
        assert!(set >= ten && set - ten <= Applied::MAX_SLACK, "{set:?}");
        // The next calls' deadlines, microseconds apart, keep it.
        assert_eq!(a.update(Some(ten - Duration::from_micros(40))), None);
        assert_eq!(a.update(Some(ten + Duration::from_micros(40))), None);
        // Much shorter: the socket must not wait long past the deadline.
        assert_eq!(
            a.update(Some(ms(900))),
            Some(Some(ms(904) + Duration::from_micros(500)))
        );
        // Longer: the socket must not give up before the deadline.
        assert!(a.update(Some(ms(950))).is_some());
        // A very short wait gets next to no slack.
        assert_eq!(
            a.update(Some(Duration::from_micros(50))),
            Some(Some(Duration::from_nanos(50_250)))
        );
        // No deadline at all.
        assert_eq!(a.update(None), Some(None));
        assert_eq!(a.update(None), None);
        assert!(a.update(Some(ten)).is_some());
    }
}
