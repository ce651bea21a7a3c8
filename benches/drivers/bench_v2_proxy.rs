//! `bench_v2 proxy`: round trips and datagrams per second through the real
//! `spalloc proxy`, against direct UDP to a responder on this machine (see
//! the module doc of `bench_v2`).

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, ErrorKind};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use spalloc::v2::V2Settings;
use spalloc::{Job, JobOptions, JobRequest};

use super::{TIMEOUT, percentile};

/// A request not answered within this long is lost, and frees its place.
const LOSS: Duration = Duration::from_millis(200);
/// Requests outstanding at once when measuring datagrams per second.
const WINDOW: usize = 32;
/// How many times the subjects take turns.
const SLICES: u32 = 4;
/// Round trips of each subject before measuring.
const WARM_UP: usize = 200;
/// How long the proxy may take to open its tunnels, and to stop.
const START_LIMIT: Duration = Duration::from_secs(30);
const STOP_LIMIT: Duration = Duration::from_secs(5);
/// The largest datagram read.
const MAX_DATAGRAM: usize = 2048;

/// SDP flags: a reply is expected (0x87), and of a reply (0x07).
const FLAGS_REPLY_EXPECTED: u8 = 0x87;
const FLAGS_REPLY: u8 = 0x07;
/// SCP's version command, and the result "OK".
const CMD_VER: u16 = 0;
const RC_OK: u16 = 0x80;
/// Two bytes of padding, the 8-byte SDP header, command and sequence.
const SCP_HEADER: usize = 14;

/// A version request with sequence number `seq`, as a host tool sends it:
/// padding, SDP header (to core 0 of chip (0, 0), from the host), command,
/// sequence and three zero arguments.
fn request(seq: u16) -> [u8; SCP_HEADER + 12] {
    let mut r = [0u8; SCP_HEADER + 12];
    r[2] = FLAGS_REPLY_EXPECTED;
    r[3] = 0xff; // tag
    r[4] = 0x00; // destination port and CPU
    r[5] = 0xff; // source port and CPU: the host
    r[10..12].copy_from_slice(&CMD_VER.to_le_bytes());
    r[12..14].copy_from_slice(&seq.to_le_bytes());
    r
}

/// The sequence number of a successful version reply.
fn reply_seq(reply: &[u8]) -> Option<u16> {
    if reply.len() < SCP_HEADER || reply[2] != FLAGS_REPLY {
        return None;
    }
    (u16::from_le_bytes([reply[10], reply[11]]) == RC_OK)
        .then(|| u16::from_le_bytes([reply[12], reply[13]]))
}

/// The reply a board gives a version request: the SDP addresses swapped,
/// "OK", the sequence number, the core and chip asked, a reserved half
/// word, version 0xFFFF, a build date, and SC&MP's version text.
fn version_reply(request: &[u8]) -> Option<Vec<u8>> {
    if request.len() < SCP_HEADER || request[2] & 0x80 == 0 {
        return None;
    }
    let r = request;
    let mut reply = vec![0, 0, FLAGS_REPLY, r[3], r[5], r[4], r[8], r[9], r[6], r[7]];
    reply.extend_from_slice(&RC_OK.to_le_bytes());
    reply.extend_from_slice(&r[12..14]);
    let core = r[4] & 0x1f;
    reply.extend_from_slice(&[core, core, r[6], r[7], 0, 0, 0xff, 0xff]);
    reply.extend_from_slice(&1_700_000_000u32.to_le_bytes());
    reply.extend_from_slice(b"SC&MP/SpiNNaker\x004.0.0\x00");
    Some(reply)
}

/// "Direct UDP to a board on this machine": a thread answering version
/// requests on 127.0.0.1 as a board does, until it reads an empty
/// datagram.
struct Responder {
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    fn start() -> io::Result<Responder> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = socket.local_addr()?;
        let thread = thread::spawn(move || {
            let mut buf = [0u8; MAX_DATAGRAM];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Some(reply) = version_reply(&buf[..n]) {
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        Ok(Responder {
            addr,
            thread: Some(thread),
        })
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let stopped = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|s| s.send_to(&[], self.addr))
            .is_ok();
        if let (true, Some(t)) = (stopped, self.thread.take()) {
            let _ = t.join();
        }
    }
}

/// The `spalloc proxy` child: stopped (SIGKILL) when dropped unless it was
/// stopped before.
struct ProxyChild {
    pid: Option<Pid>,
    exited: Receiver<io::Result<ExitStatus>>,
    lines: Receiver<String>,
}

impl ProxyChild {
    fn start(spalloc: &str, url: &str, id: u64, user: &str, dir: &Path) -> io::Result<Self> {
        let mut child = Command::new(spalloc)
            .args(["proxy", &id.to_string(), "-H", url, "--json"])
            .current_dir(dir)
            .env("SPALLOC_USER", user)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| io::Error::other(format!("cannot run {spalloc}: {e}")))?;
        let pid = Pid::from_child(&child);
        let stdout = child.stdout.take();
        let (tx, lines) = mpsc::channel();
        if let Some(out) = stdout {
            thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let (tx, exited) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        Ok(ProxyChild {
            pid: Some(pid),
            exited,
            lines,
        })
    }

    /// The first line it prints (the JSON of its tunnels), within
    /// `START_LIMIT`.
    fn first_line(&self) -> io::Result<String> {
        self.lines.recv_timeout(START_LIMIT).map_err(|e| {
            io::Error::other(match e {
                RecvTimeoutError::Timeout => {
                    format!("spalloc proxy printed nothing in {START_LIMIT:?}")
                }
                RecvTimeoutError::Disconnected => "spalloc proxy ended without output".into(),
            })
        })
    }

    /// Sends `signal` and waits (bounded) for the exit.
    fn stop(&mut self, signal: Signal) -> io::Result<ExitStatus> {
        let Some(pid) = self.pid.take() else {
            return Err(io::Error::other("spalloc proxy was already stopped"));
        };
        // Not reaped yet (the waiter would have said), so the pid is ours.
        if let Ok(status) = self.exited.try_recv() {
            return status;
        }
        kill_process(pid, signal)?;
        match self.exited.recv_timeout(STOP_LIMIT) {
            Ok(status) => status,
            Err(_) => {
                let _ = kill_process(pid, Signal::KILL);
                Err(io::Error::other(format!(
                    "spalloc proxy did not stop within {STOP_LIMIT:?} of {signal:?}"
                )))
            }
        }
    }
}

impl Drop for ProxyChild {
    fn drop(&mut self) {
        if self.pid.is_some() {
            let _ = self.stop(Signal::KILL);
        }
    }
}

/// A directory of its own for the child, whose `.spalloc` names the CA;
/// removed when dropped.
struct ConfigDir(PathBuf);

impl ConfigDir {
    fn new(ca: &str) -> io::Result<ConfigDir> {
        let ca = std::fs::canonicalize(ca)
            .map_err(|e| io::Error::other(format!("CA file {ca}: {e}")))?;
        let dir = std::env::temp_dir().join(format!("bench_v2-proxy-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let config = ConfigDir(dir);
        std::fs::write(
            config.0.join(".spalloc"),
            format!("[spalloc]\nca_file = {}\n", ca.display()),
        )?;
        Ok(config)
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn timed_out(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// One subject: a socket connected to where the requests go, and its
/// figures.
struct Subject {
    name: &'static str,
    socket: UdpSocket,
    seq: u16,
    round_trips: Vec<f64>,
    rt_lost: u64,
    replies: u64,
    lost: u64,
    windowed_secs: f64,
    reply_len: usize,
}

impl Subject {
    fn new(name: &'static str, to: SocketAddr) -> io::Result<Subject> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        socket.connect(to)?;
        Ok(Subject {
            name,
            socket,
            seq: 0,
            round_trips: Vec::new(),
            rt_lost: 0,
            replies: 0,
            lost: 0,
            windowed_secs: 0.0,
            reply_len: 0,
        })
    }

    fn next_seq(&mut self) -> u16 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// One request, waiting for its reply (up to `LOSS`, the socket's
    /// read timeout); the round trip, or `None` if it was lost.
    fn round_trip(&mut self) -> io::Result<Option<Duration>> {
        let seq = self.next_seq();
        let mut buf = [0u8; MAX_DATAGRAM];
        let sent = Instant::now();
        self.socket.send(&request(seq))?;
        loop {
            match self.socket.recv(&mut buf) {
                Ok(n) if reply_seq(&buf[..n]) == Some(seq) => {
                    self.reply_len = n;
                    return Ok(Some(sent.elapsed()));
                }
                // A late reply to an earlier request.
                Ok(_) if sent.elapsed() < LOSS => {}
                Ok(_) => return Ok(None),
                Err(e) if timed_out(&e) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    fn warm_up(&mut self) -> io::Result<()> {
        self.socket.set_read_timeout(Some(LOSS))?;
        let mut answered = 0;
        for _ in 0..WARM_UP {
            answered += usize::from(self.round_trip()?.is_some());
        }
        if answered == 0 {
            return Err(io::Error::other(format!(
                "no reply to {WARM_UP} version requests ({})",
                self.name
            )));
        }
        Ok(())
    }

    /// Round trips, one request at a time, for `length`.
    fn one_at_a_time(&mut self, length: Duration) -> io::Result<()> {
        self.socket.set_read_timeout(Some(LOSS))?;
        let end = Instant::now() + length;
        while Instant::now() < end {
            match self.round_trip()? {
                Some(t) => self.round_trips.push(t.as_secs_f64() * 1e6),
                None => self.rt_lost += 1,
            }
        }
        Ok(())
    }

    /// `WINDOW` requests outstanding for `length`, each reply sending the
    /// next; replies that come after `length` are not counted.
    fn windowed(&mut self, length: Duration) -> io::Result<()> {
        // Short reads, so that lost requests are noticed.
        self.socket
            .set_read_timeout(Some(Duration::from_millis(20)))?;
        let mut buf = [0u8; MAX_DATAGRAM];
        let mut outstanding: VecDeque<(u16, Instant)> = VecDeque::with_capacity(WINDOW);
        let start = Instant::now();
        let end = start + length;
        let mut now = start;
        while now < end {
            while outstanding.len() < WINDOW {
                let seq = self.next_seq();
                self.socket.send(&request(seq))?;
                outstanding.push_back((seq, Instant::now()));
            }
            match self.socket.recv(&mut buf) {
                Ok(n) => {
                    if let Some(seq) = reply_seq(&buf[..n])
                        && let Some(i) = outstanding.iter().position(|&(s, _)| s == seq)
                    {
                        outstanding.remove(i);
                        self.replies += 1;
                    }
                }
                Err(e) if timed_out(&e) => {}
                Err(e) => return Err(e),
            }
            now = Instant::now();
            while outstanding
                .front()
                .is_some_and(|&(_, sent)| now.duration_since(sent) > LOSS)
            {
                outstanding.pop_front();
                self.lost += 1;
            }
        }
        self.windowed_secs += now.duration_since(start).as_secs_f64();
        // Read what is still in flight, so that the next measurement
        // starts with an empty socket (bounded by `LOSS`).
        let drain = Instant::now();
        while !outstanding.is_empty() && drain.elapsed() < LOSS {
            match self.socket.recv(&mut buf) {
                Ok(n) => {
                    if let Some(seq) = reply_seq(&buf[..n]) {
                        outstanding.retain(|&(s, _)| s != seq);
                    }
                }
                Err(e) if timed_out(&e) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn figures(&mut self) -> String {
        self.round_trips.sort_by(f64::total_cmp);
        let name = self.name;
        format!(
            "{name}_rtt_us={:.1} {name}_rtt_p99_us={:.1} {name}_round_trips={} \
             {name}_rtt_lost={} {name}_dps={:.0} {name}_replies={} {name}_lost={} \
             {name}_reply_bytes={}",
            percentile(&self.round_trips, 0.5),
            percentile(&self.round_trips, 0.99),
            self.round_trips.len(),
            self.rt_lost,
            self.replies as f64 / self.windowed_secs.max(1e-9),
            self.replies,
            self.lost,
            self.reply_len,
        )
    }
}

/// The local address `spalloc proxy --json` gives the first board.
fn board_address(json: &str) -> io::Result<SocketAddr> {
    let bad = |what: &str| io::Error::other(format!("spalloc proxy printed {what}: {json:?}"));
    let v: serde_json::Value = serde_json::from_str(json).map_err(|_| bad("something not JSON"))?;
    let local = v
        .get("boards")
        .and_then(|b| b.get(0))
        .and_then(|b| b.get("local"))
        .and_then(|l| l.as_str())
        .ok_or_else(|| bad("no boards[0].local"))?;
    let addr: SocketAddr = local.parse().map_err(|_| bad("a bad local address"))?;
    if !addr.ip().is_loopback() {
        return Err(bad("a local address not on loopback"));
    }
    Ok(addr)
}

pub fn run(
    url: &str,
    settings: &V2Settings,
    ca: &str,
    user: &str,
    seconds: Duration,
    spalloc: &str,
) -> spalloc::Result<String> {
    let config = ConfigDir::new(ca)?;
    let options = JobOptions::new()
        .hostname(url)
        .v2(settings.clone())
        .keepalive(Some(Duration::from_secs(60)))
        .timeout(TIMEOUT);
    // Dropping the job (on any error below) destroys it.
    let mut job = Job::create(JobRequest::AnyBoard, &options)?;
    job.wait_until_ready(Some(Duration::from_secs(30)))?;
    let started = Instant::now();
    let mut child = ProxyChild::start(spalloc, url, job.id(), user, &config.0)?;
    let board = board_address(&child.first_line()?)?;
    let start_ms = started.elapsed().as_secs_f64() * 1e3;
    let responder = Responder::start()?;

    let mut proxy = Subject::new("proxy", board)?;
    let mut direct = Subject::new("direct", responder.addr)?;
    proxy.warm_up()?;
    direct.warm_up()?;
    let slice = seconds / SLICES;
    for _ in 0..SLICES {
        proxy.one_at_a_time(slice)?;
        direct.one_at_a_time(slice)?;
        proxy.windowed(slice)?;
        direct.windowed(slice)?;
    }
    if proxy.reply_len != direct.reply_len {
        return Err(io::Error::other(format!(
            "the board's version reply is {} bytes, the direct responder's {}",
            proxy.reply_len, direct.reply_len
        ))
        .into());
    }

    let status = child.stop(Signal::TERM)?;
    if !status.success() {
        return Err(
            io::Error::other(format!("spalloc proxy ended with {status} on SIGTERM")).into(),
        );
    }
    job.destroy(None)?;
    Ok(format!(
        "{} {} window={WINDOW} request_bytes={} proxy_start_ms={start_ms:.1} seconds={:.1}",
        proxy.figures(),
        direct.figures(),
        request(0).len(),
        seconds.as_secs_f64()
    ))
}
