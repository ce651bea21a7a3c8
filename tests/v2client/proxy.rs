//! The crate's proxy client, `spalloc::v2::ProxyClient`, against the
//! virtual v2 service's proxy websocket and its virtual boards (real UDP on
//! loopback): SCP version commands through channels, refusals, a job
//! destroyed under open channels, closed channels, and a websocket that
//! drops and is reopened with its channels.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use spalloc::server::{ServerConfig, V2Config, V2Tls, VirtualServer};
use spalloc::v2::proxy::SCP_PORT;
use spalloc::v2::{Channel, RestClient, V2Settings};
use spalloc::{CreateJobOptions, Error, JobRequest};

use super::{alice, start_with};
use crate::support::cli::{ConfigFile, Running, Sandbox};

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(10));
/// The longest any reply is waited for.
const WAIT: Option<Duration> = Some(Duration::from_secs(20));

/// A server whose virtual boards answer on any free ports.
fn server() -> VirtualServer {
    start_with(
        ServerConfig::instant(),
        V2Config::default().board_ports(0, 0),
    )
}

fn connect(url: &str) -> RestClient {
    RestClient::connect(url, &alice(), TIMEOUT, None).expect("connect to v2")
}

/// A READY job of `n` boards on machine `m`.
fn job(c: &mut RestClient, n: u32) -> u64 {
    let mut o = CreateJobOptions::new("");
    o.tags = Some(vec!["default".into()]);
    c.create_job(&JobRequest::Boards(n), &o).expect("create")
}

/// SCP's version command to chip (`x`, `y`), with sequence number `seq`.
pub fn cmd_ver(x: u8, y: u8, seq: u16) -> Vec<u8> {
    let mut p = vec![0, 0, 0x87, 0xff, 0x00, 0xff, y, x, y, x, 0, 0];
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend_from_slice(&[0; 12]);
    p
}

/// Checks a version reply: its sequence number, and the chip it names
/// (returned).
#[track_caller]
pub fn check_version_reply(p: &[u8], seq: u16) -> (u8, u8) {
    assert!(p.len() > 26, "a short reply: {p:?}");
    assert_eq!(u16::from_le_bytes([p[10], p[11]]), 0x80, "RC_OK");
    assert_eq!(u16::from_le_bytes([p[12], p[13]]), seq, "sequence number");
    let text = String::from_utf8_lossy(&p[26..]);
    assert!(
        text.contains("SpiNNaker"),
        "names a SpiNNaker chip: {text:?}"
    );
    (p[17], p[16])
}

/// Sends a version command on `ch` and waits for the reply.
#[track_caller]
fn version(ch: &Channel, seq: u16) -> (u8, u8) {
    ch.send(&cmd_ver(0, 0, seq)).expect("send");
    let reply = ch.recv(WAIT).expect("recv").expect("a reply in time");
    check_version_reply(&reply, seq)
}

#[test]
fn scp_version_through_every_board_of_a_job() {
    let server = server();
    let mut c = connect(server.v2_url().expect("v2"));
    let id = job(&mut c, 3);
    let alloc = c.job_machine(id).expect("machine").expect("allocated");
    let proxy = c.proxy(id).expect("open the proxy");
    assert_eq!(proxy.job(), id);
    let channels: Vec<Channel> = alloc
        .connections
        .iter()
        .map(|conn| {
            proxy
                .open(conn.chip.x, conn.chip.y, SCP_PORT)
                .expect("open")
        })
        .collect();
    for (i, ch) in channels.iter().enumerate() {
        version(ch, u16::try_from(i).expect("small") + 1);
    }
    // The same again, interleaved: each reply on its own channel.
    for (i, ch) in channels.iter().enumerate() {
        ch.send(&cmd_ver(0, 0, 100 + u16::try_from(i).expect("small")))
            .expect("send");
    }
    for (i, ch) in channels.iter().enumerate() {
        let r = ch.recv(WAIT).expect("recv").expect("a reply");
        check_version_reply(&r, 100 + u16::try_from(i).expect("small"));
    }
    // An unconnected channel reports where boards must send to.
    let open = proxy.open_unconnected().expect("open unconnected");
    let (ip, port) = open.address().expect("an address");
    assert!(ip.is_loopback() && port > 0, "{ip}:{port}");
    // Closing a channel, then the proxy.
    let mut channels = channels.into_iter();
    channels.next().expect("one").close().expect("close");
    let second = channels.next().expect("two");
    version(&second, 7);
    proxy.close();
    assert!(matches!(second.send(&[0, 0]), Err(Error::Disconnected)));
    assert!(matches!(second.recv(WAIT), Err(Error::Disconnected)));
    assert!(
        second.close().is_ok(),
        "closing after the proxy is harmless"
    );
}

#[test]
fn a_chip_not_in_the_job_is_refused_and_the_proxy_goes_on() {
    let server = server();
    let mut c = connect(server.v2_url().expect("v2"));
    let id = job(&mut c, 1);
    let proxy = c.proxy(id).expect("open the proxy");
    match proxy.open(8, 4, SCP_PORT) {
        Err(Error::Server(m)) => {
            assert!(m.contains("unrecognised ethernet chip"), "{m}");
            assert!(m.contains("(8, 4)") && m.contains(&id.to_string()), "{m}");
        }
        other => panic!("expected a refusal: {other:?}"),
    }
    assert!(matches!(
        proxy.open(0, 0, 0),
        Err(Error::InvalidArgument(_))
    ));
    let ch = proxy.open(0, 0, SCP_PORT).expect("the proxy is still open");
    version(&ch, 1);
    let long = vec![0u8; 2041];
    assert!(matches!(ch.send(&long), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        ch.send_to(0, 0, SCP_PORT, &[0, 0]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(proxy.ended().is_none());
}

#[test]
fn a_job_without_boards_has_no_proxy() {
    let server = server();
    let mut c = connect(server.v2_url().expect("v2"));
    let id = job(&mut c, 1);
    c.delete_job(id, Some("done")).expect("delete");
    match c.proxy(id) {
        Err(Error::Server(m)) => assert!(m.contains("no boards to proxy to"), "{m}"),
        other => panic!("expected a refusal: {other:?}"),
    }
    assert!(matches!(
        c.proxy(987_654),
        Err(Error::JobUnknown { id: 987_654 })
    ));
}

#[test]
fn a_job_destroyed_under_open_channels() {
    let server = server();
    let mut c = connect(server.v2_url().expect("v2"));
    let id = job(&mut c, 1);
    let proxy = c.proxy(id).expect("open the proxy");
    let ch = proxy.open(0, 0, SCP_PORT).expect("open");
    version(&ch, 1);
    c.delete_job(id, None).expect("delete");
    // The channels are closed server-side but the websocket stays; new
    // channels are refused, and closing an old one is no error.
    match proxy.open(0, 0, SCP_PORT) {
        Err(Error::Server(m)) => assert!(m.contains("(0, 0)"), "{m}"),
        other => panic!("expected a refusal: {other:?}"),
    }
    ch.close().expect("closing a channel the server closed");
    assert!(proxy.ended().is_none());
    proxy.close();
}

/// A TCP relay that can cut every connection through it at once.
struct Relay {
    addr: SocketAddr,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    /// Per connection: whether what the server sends is dropped.
    mutes: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    /// Connections accepted, and client -> server writes relayed.
    accepted: Arc<AtomicUsize>,
    sent_up: Arc<AtomicUsize>,
}

impl Relay {
    fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let mutes: Arc<Mutex<Vec<Arc<AtomicBool>>>> = Arc::default();
        let accepted = Arc::new(AtomicUsize::new(0));
        let sent_up = Arc::new(AtomicUsize::new(0));
        let (kept, muting, counted, ups) = (
            Arc::clone(&conns),
            Arc::clone(&mutes),
            Arc::clone(&accepted),
            Arc::clone(&sent_up),
        );
        thread::spawn(move || {
            for down in listener.incoming() {
                let Ok(down) = down else { return };
                let Ok(up) = TcpStream::connect(upstream) else {
                    continue;
                };
                let mut list = kept.lock().expect("lock");
                list.push(down.try_clone().expect("clone"));
                list.push(up.try_clone().expect("clone"));
                drop(list);
                let mute = Arc::new(AtomicBool::new(false));
                muting.lock().expect("lock").push(Arc::clone(&mute));
                counted.fetch_add(1, Ordering::SeqCst);
                pump(
                    down.try_clone().expect("clone"),
                    up.try_clone().expect("clone"),
                    None,
                    Some(Arc::clone(&ups)),
                );
                pump(up, down, Some(mute), None);
            }
        });
        Relay {
            addr,
            conns,
            mutes,
            accepted,
            sent_up,
        }
    }

    fn cut(&self) {
        for s in self.conns.lock().expect("lock").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// From now on, what the server sends on the connections open now is
    /// dropped (they stay open): a path that has gone silent.
    fn silence(&self) {
        for m in self.mutes.lock().expect("lock").iter() {
            m.store(true, Ordering::SeqCst);
        }
    }
}

/// Relays `from` to `to`, dropping what comes while `mute` is set, and
/// counting writes in `count`.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    mute: Option<Arc<AtomicBool>>,
    count: Option<Arc<AtomicUsize>>,
) {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) if mute.as_ref().is_some_and(|m| m.load(Ordering::SeqCst)) => {}
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    if let Some(c) = &count {
                        c.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

/// A relay in front of `server`'s v2 service, and a client that goes
/// through it.
fn through_a_relay(server: &VirtualServer) -> (Relay, RestClient) {
    let direct = server.v2_local_addr().expect("v2");
    let relay = Relay::start(direct);
    let url = server
        .v2_url()
        .expect("v2")
        .replace(&direct.to_string(), &relay.addr.to_string());
    let c = connect(&url);
    (relay, c)
}

/// Whether a version request on `ch` is answered again, after a
/// reconnection: datagrams sent while the websocket is down are lost, as
/// UDP may lose them, so it keeps asking (for up to 20 s).
fn answered_again(ch: &Channel) -> bool {
    for seq in 2..200u16 {
        ch.send(&cmd_ver(0, 0, seq)).expect("send");
        if let Some(r) = ch.recv(Some(Duration::from_millis(100))).expect("recv") {
            check_version_reply(&r, u16::from_le_bytes([r[12], r[13]]));
            return true;
        }
    }
    false
}

/// Pings keep a quiet websocket open; a websocket on which nothing, not
/// even a pong, comes back for two ping intervals is given up and reopened
/// with its channels.
#[test]
fn pings_keep_a_quiet_websocket_and_a_silent_one_is_reopened() {
    let server = server();
    let (relay, mut c) = through_a_relay(&server);
    let id = job(&mut c, 1);
    let proxy = c.proxy(id).expect("open the proxy");
    let ch = proxy.open(0, 0, SCP_PORT).expect("open");
    let unconnected = proxy.open_unconnected().expect("open unconnected");
    version(&ch, 1);
    let opened = relay.accepted.load(Ordering::SeqCst);
    proxy.set_ping_interval(Duration::from_millis(50));
    // Quiet but answered: ten pings go out (ten intervals, five times the
    // silence allowed), and the websocket is kept.
    let before = relay.sent_up.load(Ordering::SeqCst);
    assert!(
        crate::support::eventually(Duration::from_secs(20), || {
            relay.sent_up.load(Ordering::SeqCst) >= before + 10
        }),
        "no pings"
    );
    assert_eq!(
        relay.accepted.load(Ordering::SeqCst),
        opened,
        "reopened while answered"
    );
    // Silent: given up and reopened, and the channel works again.
    relay.silence();
    assert!(
        crate::support::eventually(Duration::from_secs(20), || {
            relay.accepted.load(Ordering::SeqCst) > opened
        }),
        "a silent websocket was kept"
    );
    assert!(
        answered_again(&ch),
        "the channel works again after the reconnection"
    );
    // The unconnected channel's address is gone with the websocket: it
    // ended, and says so.
    assert!(matches!(unconnected.recv(WAIT), Err(Error::Disconnected)));
    assert!(matches!(
        unconnected.send_to(0, 0, SCP_PORT, &cmd_ver(0, 0, 1)),
        Err(Error::Disconnected)
    ));
    assert!(proxy.ended().is_none());
    proxy.close();
}

#[test]
fn a_dropped_websocket_is_reopened_with_its_channels() {
    let server = server();
    let (relay, mut c) = through_a_relay(&server);
    let id = job(&mut c, 2);
    let proxy = c.proxy(id).expect("open the proxy");
    let ch = proxy.open(0, 0, SCP_PORT).expect("open");
    version(&ch, 1);
    relay.cut();
    assert!(
        answered_again(&ch),
        "the channel works again after the reconnection"
    );
    assert!(proxy.ended().is_none());
    proxy.close();
}

#[test]
fn over_tls_with_a_bearer_token() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("ca.pem");
    let server = start_with(
        ServerConfig::instant(),
        V2Config::default()
            .board_ports(0, 0)
            .tls(V2Tls::SelfSigned {
                ca_file: Some(ca.clone()),
            }),
    );
    let url = server.v2_url().expect("v2").to_owned();
    assert!(url.starts_with("https://"));
    let token = V2Settings::default().token("alice-token-0001").ca_file(&ca);
    let mut c = RestClient::connect(&url, &token, TIMEOUT, None).expect("connect");
    let id = job(&mut c, 3);
    let proxy = c.proxy(id).expect("open the proxy over TLS");
    let ch = proxy.open(0, 0, SCP_PORT).expect("open");
    // Many round trips, so reads and writes overlap on the one TLS stream.
    for seq in 1..50 {
        version(&ch, seq);
    }
    proxy.close();
}

/// A sandbox whose configuration names `url`, with alice's credentials in
/// the environment.
fn sandbox(url: &str) -> Sandbox {
    let mut sb = Sandbox::new();
    sb.write_config(ConfigFile::User, &format!("[spalloc]\nhostname = {url}\n"));
    sb.env("SPALLOC_USER", "alice")
        .env("SPALLOC_PASSWORD", "alice-pw");
    sb
}

const PATIENCE: Duration = Duration::from_secs(30);

/// The JSON line `spalloc proxy --json` printed: a whole line, ended by
/// its `\n`, as a program reading it line by line needs.
fn tunnel_table(running: &Running) -> serde_json::Value {
    let Some(line) = running.wait_for_stdout_line("\"boot\"", PATIENCE) else {
        panic!(
            "no whole JSON line: {:?}\n{}",
            running.stdout(),
            running.stderr()
        );
    };
    serde_json::from_str(&line).expect("JSON")
}

/// Sends a version command to a local tunnel port and reads the reply.
fn version_through(local: &str, seq: u16) -> (u8, u8) {
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
    udp.set_read_timeout(WAIT).expect("timeout");
    udp.send_to(&cmd_ver(0, 0, seq), local).expect("send");
    let mut buf = [0u8; 2048];
    let (n, from) = udp.recv_from(&mut buf).expect("a reply through the tunnel");
    assert_eq!(from.to_string(), local, "the reply comes from the tunnel");
    check_version_reply(&buf[..n], seq)
}

#[test]
fn the_proxy_command_tunnels_scp_until_ctrl_c() {
    let server = server();
    let mut c = connect(server.v2_url().expect("v2"));
    let id = job(&mut c, 3);
    let sb = sandbox(server.v2_url().expect("v2"));
    // The owner's only job, by default.
    let running = sb.spawn(&["proxy", "--json"]);
    let table = tunnel_table(&running);
    assert_eq!(table["job_id"], id);
    let boards = table["boards"].as_array().expect("boards");
    assert_eq!(boards.len(), 3);
    for (i, b) in boards.iter().enumerate() {
        let local = b["local"].as_str().expect("local");
        assert!(local.starts_with("127.0.0.1:"), "{local}");
        version_through(local, u16::try_from(i).expect("small") + 1);
    }
    assert!(
        table["boot"]
            .as_str()
            .expect("boot")
            .starts_with("127.0.0.1:")
    );
    running.signal(2);
    let out = running.finish(PATIENCE);
    out.expect_code(0);
    // The ports are released.
    for b in boards {
        UdpSocket::bind(b["local"].as_str().expect("local")).expect("the port is free again");
    }
}

#[test]
fn the_proxy_command_prints_its_table_as_whole_lines() {
    let server = server();
    let mut c = connect(server.v2_url().expect("v2"));
    let id = job(&mut c, 1);
    let sb = sandbox(server.v2_url().expect("v2"));
    let running = sb.spawn(&["proxy", &id.to_string()]);
    let last = running.wait_for_stdout_line("Press Ctrl-C to stop.", PATIENCE);
    assert!(
        last.is_some(),
        "no whole last line: {:?}\n{}",
        running.stdout(),
        running.stderr()
    );
    let out = running.stdout();
    let row = out
        .lines()
        .find(|l| l.starts_with("0,0 ") && l.contains(" 17893 "))
        .expect("the board's row");
    let local = row.split_whitespace().last().expect("local address");
    version_through(local, 5);
    running.signal(15);
    running.finish(PATIENCE).expect_code(0);
}

#[test]
fn the_proxy_command_stops_when_the_job_is_destroyed() {
    let server = server();
    let mut c = connect(server.v2_url().expect("v2"));
    let id = job(&mut c, 1);
    let sb = sandbox(server.v2_url().expect("v2"));
    let running = sb.spawn(&["proxy", &id.to_string(), "--json"]);
    let table = tunnel_table(&running);
    version_through(table["boards"][0]["local"].as_str().expect("local"), 9);
    c.delete_job(id, Some("all done")).expect("delete");
    let out = running.finish(PATIENCE);
    out.expect_code(3);
    assert!(
        out.stderr
            .contains(&format!("Job {id} was destroyed: all done")),
        "{}",
        out.stderr
    );
}

#[test]
fn the_proxy_command_refuses_what_it_cannot_tunnel() {
    let server = server();
    let mut c = connect(server.v2_url().expect("v2"));
    let id = job(&mut c, 1);
    c.delete_job(id, None).expect("delete");
    let sb = sandbox(server.v2_url().expect("v2"));
    let out = sb.run(&["proxy", &id.to_string()]);
    out.expect_code(3);
    assert!(
        out.stderr.contains("no boards to proxy to"),
        "{}",
        out.stderr
    );
    // No live job to default to.
    let out = sb.run(&["proxy"]);
    out.expect_code(3);
    assert!(out.stderr.contains("no live jobs"), "{}", out.stderr);
}

#[test]
fn alloc_with_proxy_substitutes_the_local_addresses() {
    let server = server();
    let sb = sandbox(server.v2_url().expect("v2"));
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("go");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let script = format!(
        "echo HOST={{hostname}}; cat {{ethernet_ips}}; read x < {}",
        fifo.display()
    );
    let running = sb.spawn(&["alloc", "--proxy", "-q", "2", "-c", &script]);
    let host = running
        .wait_for_stdout_line("HOST=", PATIENCE)
        .unwrap_or_else(|| panic!("{}\n{}", running.stdout(), running.stderr()));
    let local = host.trim().trim_start_matches("HOST=").to_owned();
    assert!(local.starts_with("127.0.0.1:"), "{local}");
    assert_eq!(version_through(&local, 5), (0, 0));
    // The CSV lists the local addresses.
    assert!(
        running.wait_for_stdout("0,0,127.0.0.1:", PATIENCE),
        "{}",
        running.stdout()
    );
    let out = running.stdout();
    let rows: Vec<&str> = out.lines().filter(|l| l.contains(",127.0.0.1:")).collect();
    assert_eq!(rows.len(), 3, "two boards are taken as a triad: {out}");
    for row in rows {
        let addr = row.splitn(3, ',').nth(2).expect("an address");
        version_through(addr, 6);
    }
    std::fs::write(&fifo, "go\n").expect("release the command");
    running.finish(PATIENCE).expect_code(0);
    // A v1 server has no proxy.
    let v1 = Sandbox::new();
    let out = v1.run(&[
        "alloc",
        "--proxy",
        "-H",
        "127.0.0.1",
        "--owner",
        "me",
        "-c",
        "true",
    ]);
    out.expect_code(2);
    assert!(out.stderr.contains("--proxy"), "{}", out.stderr);
}

#[test]
fn a_protocol_abuse_ends_the_proxy_with_the_close_code() {
    let server = server();
    let mut c = connect(server.v2_url().expect("v2"));
    let id = job(&mut c, 1);
    let proxy = c.proxy(id).expect("open the proxy");
    let bound = proxy.open(0, 0, SCP_PORT).expect("open");
    let open = proxy.open_unconnected().expect("open unconnected");
    // MESSAGE_TO a chip not in the job: the server closes with 1007, and
    // the proxy ends for good (no reconnection), saying why.
    open.send_to(40, 40, SCP_PORT, &[0, 0]).expect("sent");
    let why = proxy.wait_ended(WAIT).expect("the proxy ended");
    assert!(why.contains("1007"), "{why}");
    assert!(matches!(bound.send(&[0, 0]), Err(Error::Disconnected)));
    assert!(matches!(bound.recv(WAIT), Err(Error::Disconnected)));
    assert!(matches!(
        proxy.open(0, 0, SCP_PORT),
        Err(Error::Disconnected)
    ));
}
