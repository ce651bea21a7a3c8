//! Virtual boards that answer over real UDP on loopback, for the v2 proxy.
//!
//! A board comes to life the first time the proxy needs it (a channel to
//! it is opened, or a datagram sent to it): it binds two UDP sockets, one
//! standing for its SCP port (17893) and one for its boot port (54321), and
//! a thread reads each. The SCP socket answers SCP's version command
//! (`CMD_VER`) the way SC&MP does, naming the chip the request was
//! addressed to, and any other command that expects a reply with "bad
//! command" (`RC_CMD`); the boot socket takes boot datagrams and says
//! nothing, as a board that is booting does. A board answers only while
//! its job holds it with the power on, and only datagrams from the proxy's
//! own sockets: anything else is dropped, as the real boards sit behind a
//! firewall that only the proxy passes.
//!
//! Where a board's sockets are: a board whose address is on loopback
//! (127.0.0.0/8, as the built-in machine's are) binds that address, with
//! the configured port numbers (17893 and 54321 by default) when they are
//! free and any free port otherwise; a board with any other address binds
//! `127.0.0.1` and any free port, so that nothing is ever sent to a real
//! network. The proxy asks [`Boards::endpoint`] where a board's port is,
//! so clients always name the real port numbers whatever was bound.
//!
//! Nothing here knows about jobs beyond an id: whether a board may answer
//! is asked of the `live` function given at construction, and boards whose
//! job has lost them are dropped through [`Boards::retain`].

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

use log::{debug, trace, warn};

use crate::v2::proxy::{BOOT_PORT, SCP_PORT};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// SDP flags of a packet that wants a reply, and of a reply.
const REPLY_EXPECTED: u8 = 0x80;
const REPLY_FLAGS: u8 = 0x07;
/// SCP command and result codes.
const CMD_VER: u16 = 0;
const RC_OK: u16 = 0x80;
const RC_CMD: u16 = 0x83;
/// Two bytes of UDP padding, the 8-byte SDP header, then the SCP command
/// (or result) and sequence number.
const SCP_HEADER: usize = 2 + 8 + 4;
/// What the version reply names: software, hardware and version, in
/// SC&MP's own form (version number 0xFFFF: the version is the text after
/// the first NUL).
const VERSION_TEXT: &[u8] = b"SC&MP/SpiNNaker\x004.0.0\x00";
/// The build date the version reply gives (2023-11-14, seconds since 1970).
const BUILD_DATE: u32 = 1_700_000_000;
/// The largest datagram a board reads whole.
const MAX_DATAGRAM: usize = 2048;

/// The answer of a board's SCP port to one datagram, if it answers.
///
/// `CMD_VER` gets the version of SC&MP, from the chip and core the request
/// was addressed to; any other command that wants a reply gets `RC_CMD`.
/// A datagram too short to be SCP, or that wants no reply, gets nothing.
pub(crate) fn scp_reply(request: &[u8]) -> Option<Vec<u8>> {
    if request.len() < SCP_HEADER || request[2] & REPLY_EXPECTED == 0 {
        return None;
    }
    let (tag, dest_port_cpu, src_port_cpu) = (request[3], request[4], request[5]);
    let (dest_y, dest_x, src_y, src_x) = (request[6], request[7], request[8], request[9]);
    let command = u16::from_le_bytes([request[10], request[11]]);
    let sequence = [request[12], request[13]];
    // The reply goes back where the request came from: the SDP addresses
    // are swapped.
    let mut reply = vec![
        0,
        0,
        REPLY_FLAGS,
        tag,
        src_port_cpu,
        dest_port_cpu,
        src_y,
        src_x,
        dest_y,
        dest_x,
    ];
    let result = if command == CMD_VER { RC_OK } else { RC_CMD };
    reply.extend_from_slice(&result.to_le_bytes());
    reply.extend_from_slice(&sequence);
    if command == CMD_VER {
        let core = dest_port_cpu & 0x1f;
        // Virtual core, physical core, chip y, chip x; a reserved half
        // word; version number 0xFFFF (see the text); the build date.
        reply.extend_from_slice(&[core, core, dest_y, dest_x, 0, 0, 0xff, 0xff]);
        reply.extend_from_slice(&BUILD_DATE.to_le_bytes());
        reply.extend_from_slice(VERSION_TEXT);
    }
    Some(reply)
}

/// Which local UDP ports virtual boards bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BoardPorts {
    /// For the SCP port (0: any free port).
    pub scp: u16,
    /// For the boot port (0: any free port).
    pub boot: u16,
}

/// Whether board `address` of job `job` may answer now.
pub(crate) type Live = dyn Fn(u64, &str) -> bool + Send + Sync;

/// The virtual boards of one server.
pub(crate) struct Boards {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Boards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Boards")
            .field("ports", &self.inner.ports)
            .field("boards", &lock(&self.inner.boards).len())
            .finish_non_exhaustive()
    }
}

struct Inner {
    ports: BoardPorts,
    live: Box<Live>,
    /// The proxy's sockets: the only sources boards answer.
    allowed: Mutex<HashSet<SocketAddr>>,
    boards: Mutex<HashMap<String, Board>>,
    /// Which board each bound socket belongs to.
    sockets: Mutex<HashMap<SocketAddr, String>>,
}

/// One board: its two ports.
struct Board {
    job: Arc<AtomicU64>,
    scp: Port,
    boot: Port,
}

/// One bound socket and the thread reading it.
struct Port {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Port {
    /// Stops the thread: the flag, then a datagram to wake it from its
    /// read (on loopback a datagram to an idle socket is not lost).
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let Some(thread) = self.thread.take() else {
            return;
        };
        let any = SocketAddr::new(self.addr.ip(), 0);
        match UdpSocket::bind(any).and_then(|s| s.send_to(&[], self.addr)) {
            Ok(_) => {
                let _ = thread.join();
            }
            Err(e) => warn!("virtual board at {}: cannot stop ({e})", self.addr),
        }
    }
}

impl Board {
    fn stop(&mut self) {
        self.scp.stop();
        self.boot.stop();
    }
}

/// What a port's thread does with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Scp,
    Boot,
}

impl Boards {
    /// No boards yet; `live` says whether a board may answer.
    pub fn new(ports: BoardPorts, live: Box<Live>) -> Boards {
        Boards {
            inner: Arc::new(Inner {
                ports,
                live,
                allowed: Mutex::new(HashSet::new()),
                boards: Mutex::new(HashMap::new()),
                sockets: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Where board `address` (held by job `job`) receives datagrams sent to
    /// its `port`: `Some` for the SCP and boot ports, starting the board if
    /// it is not running, and `None` for any other port (nothing listens
    /// there).
    ///
    /// # Errors
    ///
    /// The error of binding a socket, if the board cannot be started.
    pub fn endpoint(&self, job: u64, address: &str, port: u32) -> io::Result<Option<SocketAddr>> {
        let role = match port {
            p if p == u32::from(SCP_PORT) => Role::Scp,
            p if p == u32::from(BOOT_PORT) => Role::Boot,
            _ => return Ok(None),
        };
        let mut boards = lock(&self.inner.boards);
        if !boards.contains_key(address) {
            let board = self.start(job, address)?;
            boards.insert(address.to_owned(), board);
        }
        let Some(board) = boards.get(address) else {
            return Ok(None);
        };
        // The board may have passed to another job since it started.
        board.job.store(job, Ordering::SeqCst);
        Ok(Some(match role {
            Role::Scp => board.scp.addr,
            Role::Boot => board.boot.addr,
        }))
    }

    /// The address of the board that `socket` (one of a board's sockets)
    /// belongs to.
    pub fn board_at(&self, socket: SocketAddr) -> Option<String> {
        lock(&self.inner.sockets).get(&socket).cloned()
    }

    /// Boards answer datagrams from `socket` (one of the proxy's).
    pub fn allow(&self, socket: SocketAddr) {
        lock(&self.inner.allowed).insert(socket);
    }

    /// Boards no longer answer datagrams from `socket`.
    pub fn disallow(&self, socket: SocketAddr) {
        lock(&self.inner.allowed).remove(&socket);
    }

    /// Stops every board for which `keep(job, address)` is false.
    pub fn retain(&self, keep: impl Fn(u64, &str) -> bool) {
        let gone: Vec<(String, Board)> = {
            let mut boards = lock(&self.inner.boards);
            let names: Vec<String> = boards
                .iter()
                .filter(|(a, b)| !keep(b.job.load(Ordering::SeqCst), a))
                .map(|(a, _)| a.clone())
                .collect();
            names
                .into_iter()
                .filter_map(|a| boards.remove(&a).map(|b| (a, b)))
                .collect()
        };
        for (address, mut board) in gone {
            debug!("virtual board {address}: stopped (no longer allocated)");
            self.forget_sockets(&board);
            board.stop();
        }
    }

    /// The running boards' addresses and jobs.
    pub fn running(&self) -> Vec<(u64, String)> {
        lock(&self.inner.boards)
            .iter()
            .map(|(a, b)| (b.job.load(Ordering::SeqCst), a.clone()))
            .collect()
    }

    /// Stops every board.
    pub fn stop(&self) {
        self.retain(|_, _| false);
    }

    fn forget_sockets(&self, board: &Board) {
        let mut sockets = lock(&self.inner.sockets);
        sockets.remove(&board.scp.addr);
        sockets.remove(&board.boot.addr);
    }

    /// Binds a board's sockets and starts their threads.
    fn start(&self, job: u64, address: &str) -> io::Result<Board> {
        let job = Arc::new(AtomicU64::new(job));
        let scp = self.bind(address, self.inner.ports.scp)?;
        let boot = self.bind(address, self.inner.ports.boot)?;
        let scp = self.spawn(address, Role::Scp, scp, &job)?;
        let boot = match self.spawn(address, Role::Boot, boot, &job) {
            Ok(p) => p,
            Err(e) => {
                let mut scp = scp;
                scp.stop();
                return Err(e);
            }
        };
        let board = Board { job, scp, boot };
        {
            let mut sockets = lock(&self.inner.sockets);
            sockets.insert(board.scp.addr, address.to_owned());
            sockets.insert(board.boot.addr, address.to_owned());
        }
        debug!(
            "virtual board {address}: SCP at {}, boot at {}",
            board.scp.addr, board.boot.addr
        );
        Ok(board)
    }

    /// A socket for one of the board's ports: the board's own loopback
    /// address with the configured port if possible, else any free port
    /// there, else any free port on 127.0.0.1.
    fn bind(&self, address: &str, port: u16) -> io::Result<UdpSocket> {
        let own = address
            .parse::<Ipv4Addr>()
            .ok()
            .filter(Ipv4Addr::is_loopback);
        let mut tries = Vec::new();
        if let Some(ip) = own {
            if port != 0 {
                tries.push(SocketAddr::new(IpAddr::V4(ip), port));
            }
            tries.push(SocketAddr::new(IpAddr::V4(ip), 0));
        }
        tries.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        let mut last = None;
        for addr in tries {
            match UdpSocket::bind(addr) {
                Ok(s) => return Ok(s),
                Err(e) => {
                    trace!("virtual board {address}: cannot bind {addr}: {e}");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no address to bind")))
    }

    fn spawn(
        &self,
        address: &str,
        role: Role,
        socket: UdpSocket,
        job: &Arc<AtomicU64>,
    ) -> io::Result<Port> {
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (inner, s, j, name) = (
            self.inner.clone(),
            stop.clone(),
            job.clone(),
            address.to_owned(),
        );
        let thread = thread::Builder::new()
            .name(format!("spalloc-board-{address}-{role:?}"))
            .spawn(move || serve(&inner, &socket, role, &name, &j, &s))?;
        Ok(Port {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Boards {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads one of a board's sockets until told to stop.
fn serve(
    inner: &Inner,
    socket: &UdpSocket,
    role: Role,
    address: &str,
    job: &AtomicU64,
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = socket.recv_from(&mut buf);
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let (n, from) = match received {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // An ICMP error from an earlier reply (some systems report
            // them on unconnected sockets): nothing to do with this read.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => continue,
            Err(e) => {
                warn!("virtual board {address}: cannot read ({e}); it stops answering");
                return;
            }
        };
        if !lock(&inner.allowed).contains(&from) {
            debug!("virtual board {address}: dropped a datagram from {from}, not the proxy");
            continue;
        }
        if !(inner.live)(job.load(Ordering::SeqCst), address) {
            trace!("virtual board {address}: off; a datagram from {from} is lost");
            continue;
        }
        match role {
            Role::Boot => trace!("virtual board {address}: boot datagram of {n} bytes"),
            Role::Scp => {
                if let Some(reply) = scp_reply(&buf[..n])
                    && let Err(e) = socket.send_to(&reply, from)
                {
                    debug!("virtual board {address}: cannot answer {from}: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A CMD_VER request to core 0 of chip (8, 4), sequence 0x1234, as
    /// SpiNNMan sends it through the proxy.
    const VER: [u8; 26] = [
        0, 0, // padding
        0x87, 0xff, 0x00, 0xff, 4, 8, 4, 8, // SDP: flags, tag, ports/cpus, dest y x, src y x
        0x00, 0x00, 0x34, 0x12, // CMD_VER, sequence
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // three arguments
    ];

    #[test]
    fn the_version_reply() {
        let reply = scp_reply(&VER).unwrap_or_default();
        let mut want = vec![
            0, 0, 0x07, 0xff, 0xff, 0x00, 4, 8, 4, 8, // swapped addresses
            0x80, 0x00, 0x34, 0x12, // RC_OK, sequence
            0, 0, 4, 8, 0, 0, 0xff, 0xff, // core, physical core, y, x, -, 0xFFFF
        ];
        want.extend_from_slice(&BUILD_DATE.to_le_bytes());
        want.extend_from_slice(b"SC&MP/SpiNNaker\x004.0.0\x00");
        assert_eq!(reply, want);
        // Core 3 of chip (1, 2), from port 7 core 31.
        let mut req = VER;
        req[4] = 0x03;
        req[6] = 2;
        req[7] = 1;
        let reply = scp_reply(&req).unwrap_or_default();
        assert_eq!(&reply[4..10], &[0xff, 0x03, 4, 8, 2, 1]);
        assert_eq!(&reply[14..18], &[3, 3, 2, 1]);
    }

    #[test]
    fn other_commands_and_other_datagrams() {
        let mut read = VER;
        read[10] = 2; // CMD_READ
        let reply = scp_reply(&read).unwrap_or_default();
        assert_eq!(reply.len(), 14);
        assert_eq!(&reply[10..14], &[0x83, 0x00, 0x34, 0x12]);
        // No reply wanted, too short, empty.
        let mut quiet = VER;
        quiet[2] = 0x07;
        assert_eq!(scp_reply(&quiet), None);
        assert_eq!(scp_reply(&VER[..13]), None);
        assert_eq!(scp_reply(&[]), None);
        // The header alone (no arguments) is enough for a version request.
        assert!(scp_reply(&VER[..14]).is_some());
    }

    fn boards(live: &Arc<AtomicBool>) -> Boards {
        boards_asked(live, None)
    }

    /// Boards whose `live` answers from `live`, and says on `asked` each
    /// time it is asked.
    fn boards_asked(live: &Arc<AtomicBool>, asked: Option<mpsc::Sender<()>>) -> Boards {
        let live = live.clone();
        let asked = Mutex::new(asked);
        Boards::new(
            BoardPorts { scp: 0, boot: 0 },
            Box::new(move |_, _| {
                // Read first, then tell: once the test hears of it, the
                // answer no longer depends on `live`.
                let answer = live.load(Ordering::SeqCst);
                if let Some(tx) = &*lock(&asked) {
                    let _ = tx.send(());
                }
                answer
            }),
        )
    }

    /// A version request with sequence number `seq`.
    fn ver(seq: u8) -> [u8; 26] {
        let mut v = VER;
        v[12] = seq;
        v
    }

    /// Sends version request `seq` and returns the sequence number of the
    /// first reply.
    fn ask(from: &UdpSocket, to: SocketAddr, seq: u8) -> u8 {
        from.send_to(&ver(seq), to).expect("send");
        let mut buf = [0u8; 512];
        let (n, src) = from.recv_from(&mut buf).expect("an answer");
        assert_eq!(src, to);
        assert!(n > 14 && buf[10] == 0x80, "{:?}", &buf[..n]);
        buf[12]
    }

    /// Nothing waits to be read. (The board reads its datagrams in order
    /// and loopback delivers at once, so an answer to anything sent before
    /// the last answer received would be here.)
    fn assert_silent(s: &UdpSocket) {
        s.set_nonblocking(true).expect("nonblocking");
        let got = s.recv_from(&mut [0u8; 64]);
        assert!(
            matches!(&got, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            "{got:?}"
        );
        s.set_nonblocking(false).expect("blocking");
    }

    fn socket() -> io::Result<UdpSocket> {
        let s = UdpSocket::bind("127.0.0.1:0")?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        Ok(s)
    }

    #[test]
    fn a_board_answers_only_the_proxy_and_only_when_live() -> io::Result<()> {
        let live = Arc::new(AtomicBool::new(true));
        let (asked_tx, asked) = mpsc::channel();
        let b = boards_asked(&live, Some(asked_tx));
        let scp = b.endpoint(1, "127.100.0.9", 17893)?.expect("an SCP port");
        let boot = b.endpoint(1, "127.100.0.9", 54321)?.expect("a boot port");
        assert_eq!(b.endpoint(1, "127.100.0.9", 17894)?, None);
        assert_ne!(scp, boot);
        assert_eq!(b.board_at(scp).as_deref(), Some("127.100.0.9"));
        assert_eq!(b.board_at(boot).as_deref(), Some("127.100.0.9"));
        // The same board: the same ports.
        assert_eq!(b.endpoint(1, "127.100.0.9", 17893)?, Some(scp));

        let (proxy, stranger) = (socket()?, socket()?);
        b.allow(proxy.local_addr()?);
        // The stranger is not answered.
        stranger.send_to(&ver(1), scp)?;
        assert_eq!(ask(&proxy, scp, 2), 2);
        assert_silent(&stranger);
        // The boot port says nothing, and the board goes on answering.
        proxy.send_to(b"\x00\x01boot", boot)?;
        assert_eq!(ask(&proxy, scp, 3), 3);
        assert_silent(&proxy);
        // Off: datagrams are lost.
        // Three datagrams from the proxy so far (two SCP, one boot, the boot
        // one read on a thread of its own): hear of all three first, so
        // that the next question is about the one sent while off.
        for _ in 0..3 {
            asked
                .recv_timeout(Duration::from_secs(20))
                .expect("the board looked at an earlier datagram");
        }
        live.store(false, Ordering::SeqCst);
        proxy.send_to(&ver(4), scp)?;
        asked
            .recv_timeout(Duration::from_secs(20))
            .expect("the board looked at the datagram");
        live.store(true, Ordering::SeqCst);
        assert_eq!(ask(&proxy, scp, 5), 5);
        // No longer the proxy's.
        b.disallow(proxy.local_addr()?);
        b.allow(stranger.local_addr()?);
        proxy.send_to(&ver(6), scp)?;
        assert_eq!(ask(&stranger, scp, 7), 7);
        assert_silent(&proxy);

        // Not a loopback address: bound on 127.0.0.1 instead.
        let far = b.endpoint(2, "10.0.0.1", 17893)?.expect("an SCP port");
        assert_eq!(far.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(ask(&stranger, far, 8), 8);
        Ok(())
    }

    #[test]
    fn boards_stop_when_their_job_loses_them() -> io::Result<()> {
        let b = boards(&Arc::new(AtomicBool::new(true)));
        let one = b.endpoint(1, "127.100.0.1", 17893)?.expect("port");
        b.endpoint(2, "127.100.0.2", 17893)?.expect("port");
        let mut running = b.running();
        running.sort();
        assert_eq!(
            running,
            vec![(1, "127.100.0.1".to_owned()), (2, "127.100.0.2".to_owned())]
        );
        b.retain(|job, _| job == 2);
        assert_eq!(b.running(), vec![(2, "127.100.0.2".to_owned())]);
        assert_eq!(b.board_at(one), None);
        // A board taken over by another job follows it.
        b.endpoint(3, "127.100.0.2", 54321)?;
        assert_eq!(b.running(), vec![(3, "127.100.0.2".to_owned())]);
        b.stop();
        assert!(b.running().is_empty());
        Ok(())
    }
}
