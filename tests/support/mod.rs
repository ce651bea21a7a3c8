//! A scripted loopback spalloc server for tests.
//!
//! It binds 127.0.0.1:0, records every line it receives, and answers each
//! through a closure that returns a [`Reply`]: a return value or exception
//! in either server dialect, raw bytes, a script of sends, pauses and
//! disconnects, or nothing. Tests can also push bytes to every open
//! connection and kill connections. Every socket has a read timeout, so a
//! misbehaving client fails a test instead of hanging it.

#![allow(dead_code)] // Each test module uses a different part of this kit.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

pub mod cli;
pub mod http;
pub mod proxy;

/// How long any test waits for anything before declaring failure.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Which server's output conventions to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `{"return": 42}\n`: spaces after `:` and `,`, `\n` line ends.
    Python,
    /// `{"return":42}\r\n`: compact, `\r\n` line ends.
    Java,
}

/// One received line, parsed where possible.
#[derive(Debug, Clone)]
pub struct Call {
    /// Which connection (numbered from 0 in accept order) it came on.
    pub conn: usize,
    /// The exact line, without its `\n`.
    pub raw: String,
    /// `command`, or "" if the line was not a command object.
    pub command: String,
    pub args: Vec<Value>,
    pub kwargs: Map<String, Value>,
    pub at: Instant,
}

impl Call {
    pub fn arg(&self, i: usize) -> Option<&Value> {
        self.args.get(i)
    }

    pub fn job_id(&self) -> Option<u64> {
        self.args.first().and_then(Value::as_u64)
    }
}

/// One step of a scripted reply.
#[derive(Debug, Clone)]
pub enum Action {
    Send(Vec<u8>),
    Sleep(Duration),
    Close,
}

/// What the server does with a received line.
#[derive(Debug, Clone)]
pub enum Reply {
    Return(Value),
    Exception(String),
    /// Exact bytes, sent in one write.
    Raw(Vec<u8>),
    Script(Vec<Action>),
    /// Say nothing.
    Nothing,
    /// Close the connection without answering.
    Close,
}

pub type Handler = dyn Fn(&Call) -> Reply + Send + Sync;

struct Shared {
    dialect: Dialect,
    handler: Box<Handler>,
    calls: Mutex<Vec<Call>>,
    conns: Mutex<Vec<(usize, TcpStream)>>,
    next_conn: AtomicUsize,
    done: AtomicBool,
    refuse: AtomicBool,
}

pub struct FakeServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl FakeServer {
    pub fn start(
        dialect: Dialect,
        handler: impl Fn(&Call) -> Reply + Send + Sync + 'static,
    ) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        FakeServer::on(listener, dialect, handler)
    }

    /// Serves on an existing listener (e.g. one bound to `[::1]:0`).
    pub fn on(
        listener: TcpListener,
        dialect: Dialect,
        handler: impl Fn(&Call) -> Reply + Send + Sync + 'static,
    ) -> FakeServer {
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            dialect,
            handler: Box::new(handler),
            calls: Mutex::new(Vec::new()),
            conns: Mutex::new(Vec::new()),
            next_conn: AtomicUsize::new(0),
            done: AtomicBool::new(false),
            refuse: AtomicBool::new(false),
        });
        let s = Arc::clone(&shared);
        let accept = thread::spawn(move || {
            for stream in listener.incoming() {
                if s.done.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                if s.refuse.load(Ordering::SeqCst) {
                    drop(stream);
                    continue;
                }
                let id = s.next_conn.fetch_add(1, Ordering::SeqCst);
                if let Ok(clone) = stream.try_clone() {
                    lock(&s.conns).push((id, clone));
                }
                let s2 = Arc::clone(&s);
                thread::spawn(move || serve(id, stream, &s2));
            }
        });
        FakeServer {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// A server that answers every command with `null` (and `version`
    /// with a good version).
    pub fn nulls(dialect: Dialect) -> FakeServer {
        FakeServer::start(dialect, |c| match c.command.as_str() {
            "version" => Reply::Return("1!7.1.0".into()),
            _ => Reply::Return(Value::Null),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn calls(&self) -> Vec<Call> {
        lock(&self.shared.calls).clone()
    }

    pub fn commands(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.command).collect()
    }

    pub fn calls_named(&self, name: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.command == name)
            .collect()
    }

    pub fn count(&self, name: &str) -> usize {
        self.calls_named(name).len()
    }

    /// Waits until `pred` holds for the recorded calls; false on timeout.
    pub fn wait_until(&self, timeout: Duration, pred: impl Fn(&[Call]) -> bool) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if pred(&lock(&self.shared.calls)) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn wait_for_count(&self, name: &str, n: usize) -> bool {
        self.wait_until(PATIENCE, |calls| {
            calls.iter().filter(|c| c.command == name).count() >= n
        })
    }

    /// Writes bytes to every open connection.
    pub fn push(&self, bytes: &[u8]) {
        for (_, s) in lock(&self.shared.conns).iter_mut() {
            let _ = s.write_all(bytes);
        }
    }

    /// Writes bytes to one connection.
    pub fn push_to(&self, conn: usize, bytes: &[u8]) {
        for (id, s) in lock(&self.shared.conns).iter_mut() {
            if *id == conn {
                let _ = s.write_all(bytes);
            }
        }
    }

    /// Resets every open connection.
    pub fn kill_connections(&self) {
        for (_, s) in lock(&self.shared.conns).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Resets one connection.
    pub fn kill(&self, conn: usize) {
        lock(&self.shared.conns).retain(|(id, s)| {
            if *id == conn {
                let _ = s.shutdown(Shutdown::Both);
                false
            } else {
                true
            }
        });
    }

    /// While set, new connections are accepted and closed at once.
    pub fn refuse(&self, on: bool) {
        self.shared.refuse.store(on, Ordering::SeqCst);
    }

    pub fn connections_made(&self) -> usize {
        self.shared.next_conn.load(Ordering::SeqCst)
    }

    pub fn line(&self, reply: &Reply) -> Vec<u8> {
        encode(self.shared.dialect, reply)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.shared.done.store(true, Ordering::SeqCst);
        self.kill_connections();
        // Wake the blocking accept() so the thread sees `done`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn serve(id: usize, stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        if shared.done.load(Ordering::SeqCst) {
            return;
        }
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) if line.ends_with(b"\n") => {}
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return,
        }
        let raw = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
        line.clear();
        let call = parse_call(id, raw);
        lock(&shared.calls).push(call.clone());
        let reply = (shared.handler)(&call);
        if !perform(&mut writer, shared.dialect, reply) {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
    }
}

fn parse_call(conn: usize, raw: String) -> Call {
    let v: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
    Call {
        conn,
        command: v
            .get("command")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        args: v
            .get("args")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        kwargs: v
            .get("kwargs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        raw,
        at: Instant::now(),
    }
}

/// Carries out a reply; false means "close the connection".
fn perform(w: &mut TcpStream, dialect: Dialect, reply: Reply) -> bool {
    match reply {
        Reply::Nothing => true,
        Reply::Close => false,
        Reply::Script(actions) => {
            for a in actions {
                match a {
                    Action::Send(b) => {
                        if w.write_all(&b).is_err() {
                            return false;
                        }
                    }
                    Action::Sleep(d) => thread::sleep(d),
                    Action::Close => return false,
                }
            }
            true
        }
        other => w.write_all(&encode(dialect, &other)).is_ok(),
    }
}

/// The bytes of a reply in the given dialect.
pub fn encode(dialect: Dialect, reply: &Reply) -> Vec<u8> {
    let value = match reply {
        Reply::Return(v) => serde_json::json!({ "return": v }),
        Reply::Exception(m) => serde_json::json!({ "exception": m }),
        Reply::Raw(b) => return b.clone(),
        _ => return Vec::new(),
    };
    line(dialect, &value)
}

/// One JSON line in the given dialect.
pub fn line(dialect: Dialect, value: &Value) -> Vec<u8> {
    match dialect {
        Dialect::Java => {
            let mut out = serde_json::to_vec(value).unwrap_or_default();
            out.extend_from_slice(b"\r\n");
            out
        }
        Dialect::Python => {
            let mut out = Vec::new();
            let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
            let _ = serde::Serialize::serialize(value, &mut ser);
            out.push(b'\n');
            out
        }
    }
}

/// `json.dumps` spacing: `", "` between items and `": "` after keys.
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
}

/// A notification line.
pub fn jobs_changed(dialect: Dialect, ids: &[u64]) -> Vec<u8> {
    line(dialect, &serde_json::json!({ "jobs_changed": ids }))
}

/// A port on which nothing listens (bound, then released).
pub fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// `mod name { fn python(); fn java(); }`, running `name(dialect)`: a test
/// of each server dialect from one body.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn python() {
                    super::$name(spalloc::server::Dialect::Python);
                }

                #[test]
                fn java() {
                    super::$name(spalloc::server::Dialect::Java);
                }
            }
        )*
    };
}
pub(crate) use both;
