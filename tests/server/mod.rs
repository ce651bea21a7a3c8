//! Tests of the virtual server, talking raw JSON lines over loopback TCP.
//!
//! The tiny client below is deliberately independent of the crate's own
//! client library, so that these tests check the wire protocol itself.

mod config;
mod fidelity;
mod java;
mod lifecycle;
mod notify;
mod persistence;
mod robustness;
mod shapes;
mod worked_example;

use std::collections::VecDeque;
use std::error::Error;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use spalloc::server::{Dialect, Machine, ServerConfig, VirtualServer};

pub type TestResult<T = ()> = Result<T, Box<dyn Error>>;

/// How long any single read may wait before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A test failure with a message.
pub fn fail<T>(msg: impl Into<String>) -> TestResult<T> {
    Err(msg.into().into())
}

/// A server for tests: instant power and release, 50 ms keepalive checks.
pub fn start(machines: Vec<Machine>) -> TestResult<VirtualServer> {
    Ok(VirtualServer::start(
        ServerConfig::instant().machines(machines),
    )?)
}

/// A server for tests in the given dialect.
pub fn start_as(dialect: Dialect, machines: Vec<Machine>) -> TestResult<VirtualServer> {
    Ok(VirtualServer::start(
        ServerConfig::instant().dialect(dialect).machines(machines),
    )?)
}

/// What a request got back.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Return(Value),
    Exception(String),
}

/// A raw line-based client that queues notifications while waiting.
pub struct Client {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    pub notes: VecDeque<Value>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> TestResult<Client> {
        let stream = TcpStream::connect_timeout(&addr, READ_TIMEOUT)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_write_timeout(Some(READ_TIMEOUT))?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Client {
            stream,
            reader,
            notes: VecDeque::new(),
        })
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> TestResult {
        self.stream.write_all(bytes)?;
        Ok(())
    }

    /// Reads one line as JSON; fails on timeout or EOF.
    pub fn read_value(&mut self) -> TestResult<Value> {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line)?;
        if n == 0 {
            return fail("server closed the connection");
        }
        if !line.ends_with('\n') {
            return fail(format!("incomplete line {line:?}"));
        }
        Ok(serde_json::from_str(&line)?)
    }

    /// Reads one line exactly as sent (line end included).
    pub fn read_raw(&mut self) -> TestResult<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return fail("server closed the connection");
        }
        Ok(line)
    }

    /// Sends `bytes` and returns the next line exactly as sent.
    pub fn exchange(&mut self, bytes: &[u8]) -> TestResult<String> {
        self.send_raw(bytes)?;
        self.read_raw()
    }

    /// Fails unless the server closes the connection (within the read
    /// timeout) without sending anything more.
    pub fn expect_closed(&mut self) -> TestResult {
        let mut rest = String::new();
        match self.reader.read_line(&mut rest) {
            Ok(0) => Ok(()),
            Ok(_) => fail(format!("expected the connection to close, got {rest:?}")),
            // A reset also ends it.
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Ok(()),
            Err(e) => fail(format!("expected the connection to close: {e}")),
        }
    }

    /// Reads lines until a reply, queueing notifications.
    pub fn reply(&mut self) -> TestResult<Reply> {
        loop {
            let v = self.read_value()?;
            if let Some(r) = v.get("return") {
                return Ok(Reply::Return(r.clone()));
            }
            if let Some(e) = v.get("exception") {
                return Ok(Reply::Exception(e.as_str().unwrap_or_default().to_owned()));
            }
            self.notes.push_back(v);
        }
    }

    pub fn request(&mut self, command: &str, args: Value, kwargs: Value) -> TestResult<Reply> {
        let line = json!({"command": command, "args": args, "kwargs": kwargs}).to_string() + "\n";
        self.send_raw(line.as_bytes())?;
        self.reply()
    }

    /// A request that must return a value.
    pub fn call(&mut self, command: &str, args: Value, kwargs: Value) -> TestResult<Value> {
        match self.request(command, args, kwargs)? {
            Reply::Return(v) => Ok(v),
            Reply::Exception(e) => fail(format!("{command}: unexpected exception {e:?}")),
        }
    }

    /// A request that must raise; returns the message.
    pub fn call_err(&mut self, command: &str, args: Value, kwargs: Value) -> TestResult<String> {
        match self.request(command, args, kwargs)? {
            Reply::Exception(e) => Ok(e),
            Reply::Return(v) => fail(format!("{command}: expected an exception, got {v}")),
        }
    }

    /// Sends a raw line and expects an exception reply.
    pub fn raw_err(&mut self, bytes: &[u8]) -> TestResult<String> {
        self.send_raw(bytes)?;
        match self.reply()? {
            Reply::Exception(e) => Ok(e),
            Reply::Return(v) => fail(format!("{bytes:?}: expected an exception, got {v}")),
        }
    }

    /// `create_job` with the given positional args and extra kwargs.
    pub fn create(&mut self, args: Value, kwargs: Value) -> TestResult<u64> {
        let mut kw = Map::new();
        kw.insert("owner".into(), json!("tester"));
        if let Value::Object(extra) = kwargs {
            kw.extend(extra);
        }
        let id = self.call("create_job", args, Value::Object(kw))?;
        id.as_u64().map_or_else(|| fail(format!("job id {id}")), Ok)
    }

    pub fn state(&mut self, id: u64) -> TestResult<Value> {
        self.call("get_job_state", json!([id]), json!({}))
    }

    pub fn state_num(&mut self, id: u64) -> TestResult<u64> {
        let s = self.state(id)?;
        s["state"]
            .as_u64()
            .map_or_else(|| fail(format!("state {s}")), Ok)
    }

    pub fn info(&mut self, id: u64) -> TestResult<Value> {
        self.call("get_job_machine_info", json!([id]), json!({}))
    }

    pub fn boards(&mut self, id: u64) -> TestResult<Value> {
        Ok(self.info(id)?["boards"].clone())
    }

    /// The next notification within `timeout`, if any.
    pub fn notification(&mut self, timeout: Duration) -> TestResult<Option<Value>> {
        if let Some(n) = self.notes.pop_front() {
            return Ok(Some(n));
        }
        self.stream.set_read_timeout(Some(timeout))?;
        let mut line = String::new();
        let got = self.reader.read_line(&mut line);
        self.stream.set_read_timeout(Some(READ_TIMEOUT))?;
        match got {
            Ok(0) => fail("server closed the connection"),
            Ok(_) => Ok(Some(serde_json::from_str(&line)?)),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if line.is_empty() {
                    Ok(None)
                } else {
                    fail(format!("partial line {line:?}"))
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Polls `f` until it returns `Some`, failing after `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> TestResult<Option<T>>) -> TestResult<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return fail(format!("condition not met within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sorted boards as a JSON value, for comparisons.
pub fn boards(list: &[(i64, i64, i64)]) -> Value {
    let mut l = list.to_vec();
    l.sort_unstable();
    Value::Array(l.into_iter().map(|(x, y, z)| json!([x, y, z])).collect())
}

/// Every board of a triad rectangle.
pub fn triads(x0: i64, y0: i64, w: i64, h: i64) -> Value {
    let mut l = Vec::new();
    for x in x0..x0 + w {
        for y in y0..y0 + h {
            for z in 0..3 {
                l.push((x, y, z));
            }
        }
    }
    boards(&l)
}
