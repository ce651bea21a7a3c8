//! The proxy websocket (`proxy/{id}`) of the virtual v2 service and its
//! virtual boards, over real sockets on loopback: a tungstenite client (over
//! TCP, or over TLS trusting the throw-away CA) opens channels to a READY
//! job's boards and gets SCP version replies from them over real UDP; every
//! refusal, close code and per-channel rule of PROTOCOL_V2.md §5; a job
//! destroyed under open channels; many calls in flight at once; a client
//! that stops reading.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use serde_json::json;
use spalloc::server::{Machine, ServerConfig, V2Config, V2Tls, VirtualServer};
use spalloc::v2::proxy::{BOOT_PORT, ClientFrame, SCP_PORT, ServerFrame};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

use super::{alice, boards, start, start_with, v2};
use crate::support::http::{Http, tls_config};

/// The longest any read in these tests waits.
const WAIT: Duration = Duration::from_secs(20);
const SCP: u32 = SCP_PORT as u32;
const BOOT: u32 = BOOT_PORT as u32;

/// v2 settings with the proxy's boards on any free ports.
fn proxied() -> V2Config {
    v2().board_ports(0, 0)
}

/// A plain or TLS connection for the client.
enum Sock {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Plain(s) => s.read(buf),
            Sock::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Plain(s) => s.write(buf),
            Sock::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sock::Plain(s) => s.flush(),
            Sock::Tls(s) => s.flush(),
        }
    }
}

/// What the server sent.
#[derive(Debug, PartialEq)]
enum Got {
    Binary(Vec<u8>),
    Pong(Vec<u8>),
    /// A close frame's code and reason.
    Closed(u16, String),
}

/// A proxy client: a websocket plus the next correlation id.
struct Client {
    ws: WebSocket<Sock>,
    next: u32,
}

/// Opens the websocket at `url` with these extra request headers; trusts
/// `ca` for `wss://`.
fn connect(
    url: &str,
    headers: &[(&str, String)],
    ca: Option<&str>,
) -> Result<Client, tungstenite::Error> {
    let mut req = url.into_client_request()?;
    for (name, value) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("a name");
        req.headers_mut()
            .insert(name, HeaderValue::from_str(value).expect("a header value"));
    }
    let (scheme, rest) = url.split_once("://").expect("an absolute URL");
    let authority = rest.split('/').next().unwrap_or_default();
    let addr: SocketAddr = authority.parse().expect("an address and port");
    let tcp = TcpStream::connect_timeout(&addr, WAIT)?;
    tcp.set_read_timeout(Some(WAIT))?;
    tcp.set_write_timeout(Some(WAIT))?;
    let sock = match scheme {
        "ws" => Sock::Plain(tcp),
        "wss" => {
            let config: Arc<rustls::ClientConfig> = tls_config(ca.expect("a CA for wss"));
            let name = ServerName::try_from("localhost").expect("name");
            let conn = rustls::ClientConnection::new(config, name).expect("TLS");
            Sock::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
        }
        other => panic!("scheme {other}"),
    };
    let (ws, resp) = tungstenite::client(req, sock).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        tungstenite::HandshakeError::Interrupted(_) => {
            tungstenite::Error::Io(io::ErrorKind::WouldBlock.into())
        }
    })?;
    assert_eq!(resp.status(), 101);
    Ok(Client { ws, next: 100 })
}

/// The status of a refused upgrade.
fn refused(result: Result<Client, tungstenite::Error>) -> u16 {
    match result {
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("not an HTTP refusal: {e}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

/// The credentials of an [`Http`] client, as websocket request headers.
fn creds(h: &Http) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(c) = &h.cookie {
        out.push(("Cookie", format!("JSESSIONID={c}")));
    }
    if let Some(b) = &h.bearer {
        out.push(("Authorization", format!("Bearer {b}")));
    }
    out
}

impl Client {
    fn set_timeout(&self, d: Duration) {
        let tcp = match self.ws.get_ref() {
            Sock::Plain(s) => s,
            Sock::Tls(t) => &t.sock,
        };
        tcp.set_read_timeout(Some(d)).expect("timeout");
    }

    fn send_raw(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::Binary(bytes.into())).expect("send");
    }

    fn send(&mut self, frame: &ClientFrame<'_>) {
        self.send_raw(frame.encode().expect("encode"));
    }

    /// The next thing from the server (pings are answered by tungstenite
    /// and skipped).
    fn next(&mut self) -> Got {
        loop {
            match self.ws.read() {
                Ok(Message::Binary(b)) => return Got::Binary(b.to_vec()),
                Ok(Message::Pong(p)) => return Got::Pong(p.to_vec()),
                Ok(Message::Close(f)) => {
                    return f.map_or(Got::Closed(1005, String::new()), |f| {
                        Got::Closed(u16::from(f.code), f.reason.to_string())
                    });
                }
                Ok(Message::Ping(_) | Message::Frame(_)) => {}
                Ok(Message::Text(t)) => panic!("a text frame: {t}"),
                Err(e) => panic!("reading the websocket: {e}"),
            }
        }
    }

    /// The next binary frame.
    #[track_caller]
    fn frame(&mut self) -> Vec<u8> {
        match self.next() {
            Got::Binary(b) => b,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// The close that must come next: its code.
    #[track_caller]
    fn closed(&mut self) -> u16 {
        match self.next() {
            Got::Closed(code, _) => code,
            other => panic!("expected a close, got {other:?}"),
        }
    }

    fn corr(&mut self) -> u32 {
        self.next += 1;
        self.next
    }

    /// OPEN, and its reply.
    fn open_reply(&mut self, x: u32, y: u32, port: u32) -> (u32, Vec<u8>) {
        let correlation = self.corr();
        self.send(&ClientFrame::Open {
            correlation,
            x,
            y,
            port,
        });
        (correlation, self.frame())
    }

    /// Opens a channel; its id.
    #[track_caller]
    fn open(&mut self, x: u32, y: u32, port: u32) -> u32 {
        let (correlation, reply) = self.open_reply(x, y, port);
        match ServerFrame::decode(&reply) {
            Ok(ServerFrame::Opened {
                correlation: c,
                channel,
            }) if c == correlation => channel,
            other => panic!("OPEN ({x}, {y}) {port}: {other:?}"),
        }
    }

    /// Closes a channel; what the server says it closed.
    #[track_caller]
    fn close(&mut self, channel: u32) -> u32 {
        let correlation = self.corr();
        self.send(&ClientFrame::Close {
            correlation,
            channel,
        });
        match ServerFrame::decode(&self.frame()) {
            Ok(ServerFrame::Closed {
                correlation: c,
                channel,
            }) if c == correlation => channel,
            other => panic!("CLOSE {channel}: {other:?}"),
        }
    }

    /// Sends SCP's version command on a channel and reads the reply.
    #[track_caller]
    fn version(&mut self, channel: u32, x: u8, y: u8, seq: u16) -> Version {
        self.send(&ClientFrame::Message {
            channel,
            payload: &cmd_ver(x, y, seq),
        });
        let reply = self.frame();
        match ServerFrame::decode(&reply) {
            Ok(ServerFrame::Message {
                channel: c,
                payload,
            }) if c == channel => Version::parse(payload),
            other => panic!("expected the version reply on channel {channel}: {other:?}"),
        }
    }
}

/// SCP's version command (`CMD_VER`) to core 0 of chip (`x`, `y`), as
/// SpiNNMan sends it: two bytes of padding, the SDP header (reply
/// expected, tag 255, from port 7 core 31 of the chip itself), command 0,
/// the sequence number and three empty arguments.
fn cmd_ver(x: u8, y: u8, seq: u16) -> Vec<u8> {
    let mut p = vec![0, 0, 0x87, 0xff, 0x00, 0xff, y, x, y, x, 0, 0];
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend_from_slice(&[0; 12]);
    p
}

/// What a version reply says.
#[derive(Debug)]
struct Version {
    result: u16,
    seq: u16,
    chip: (u8, u8),
    core: u8,
    name: String,
    version: String,
}

impl Version {
    /// Reads a reply as SpiNNMan does (`VersionInfo`, SC&MP's form with
    /// version number 0xFFFF and the version after the first NUL).
    fn parse(p: &[u8]) -> Version {
        assert!(p.len() > 26, "a short reply: {p:?}");
        assert_eq!(&p[..2], &[0, 0], "padding");
        assert_eq!(p[2], 0x07, "a reply wants no reply");
        let result = u16::from_le_bytes([p[10], p[11]]);
        let seq = u16::from_le_bytes([p[12], p[13]]);
        let (core, y, x) = (p[14], p[16], p[17]);
        assert_eq!(&p[20..22], &[0xff, 0xff], "version number 0xFFFF");
        let text = &p[26..p.len() - 1];
        let text = String::from_utf8(text.to_vec()).expect("UTF-8");
        let (name, version) = text.split_once('\0').expect("name\\0version");
        Version {
            result,
            seq,
            chip: (x, y),
            core,
            name: name.to_owned(),
            version: version.to_owned(),
        }
    }
}

/// Sends a GET with exactly these headers and reads the response's head
/// (an accepted upgrade never ends, so this does not read to the end).
fn head_of(
    server: &VirtualServer,
    path: &str,
    headers: &[(&str, &str)],
) -> crate::support::http::Reply {
    let addr = server.v2_local_addr().expect("v2");
    let mut tcp = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
    tcp.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    tcp.write_all(req.as_bytes()).expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut buf).expect("read the head");
        assert!(
            n > 0,
            "closed before the head: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    crate::support::http::parse(&got).expect("a response head")
}

/// A READY job of `n` boards for alice: its id, proxy URL and boards'
/// Ethernet chips.
fn ready_job(h: &Http, n: u64) -> (u64, String, Vec<(u32, u32)>) {
    let id = h.create(&boards(n));
    let job = h.job(id);
    assert_eq!(job["state"], "READY");
    let url = job["proxy-ref"].as_str().expect("proxy-ref").to_owned();
    let m = h.get(&h.srv(&format!("jobs/{id}/machine"))).json();
    let chips = m["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .map(|c| {
            let xy = |i: usize| u32::try_from(c[0][i].as_u64().expect("coordinate")).expect("u32");
            (xy(0), xy(1))
        })
        .collect();
    (id, url, chips)
}

#[test]
fn the_proxy_ref_is_in_power_and_ready_only() {
    let server = start_with(
        ServerConfig::instant()
            .machines(vec![Machine::new("m", 1, 1)])
            .power_delay(Duration::from_secs(3600)),
        proxied(),
    );
    let h = alice(&server);
    let addr = server.v2_local_addr().expect("v2");
    let id = h.create(&boards(3));
    // Powering on (for an hour).
    let job = h.job(id);
    assert_eq!(job["state"], "POWER");
    assert_eq!(job["proxy-ref"], format!("ws://{addr}/spalloc/proxy/{id}"));
    // Its fields in the Java server's order: after chip-ref.
    let text = h.get(&h.srv(&format!("jobs/{id}"))).text();
    let at = |k: &str| text.find(k).unwrap_or_else(|| panic!("{k} in {text}"));
    assert!(at("\"chip-ref\"") < at("\"proxy-ref\""));
    assert!(at("\"proxy-ref\"") < at("\"original-request\""));
    // Queued behind it: none.
    let queued = h.create(&boards(1));
    assert_eq!(h.job(queued)["state"], "QUEUED");
    assert!(h.job(queued).get("proxy-ref").is_none());
    // Destroyed: none.
    h.delete(&h.srv(&format!("jobs/{id}"))).expect(204);
    assert!(h.job(id).get("proxy-ref").is_none());

    // No proxy: no proxy-ref, and nothing at proxy/.
    let server = start(proxied().proxy(false));
    let h = alice(&server);
    let id = h.create(&boards(1));
    assert_eq!(h.job(id)["state"], "READY");
    assert!(h.job(id).get("proxy-ref").is_none());
    let r = h.call(
        "GET",
        &format!("/spalloc/proxy/{id}"),
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        b"",
    );
    r.expect(404);
}

#[test]
fn every_board_of_a_ready_job_answers_scp_version_through_the_proxy() {
    // Boards at 192.168.0.x: served on 127.0.0.1, never on a real network.
    let server = start(proxied());
    let h = alice(&server);
    let (id, url, chips) = ready_job(&h, 3);
    assert_eq!(chips.len(), 3);
    assert!(url.starts_with("ws://127.0.0.1:"), "{url}");
    assert!(url.ends_with(&format!("/spalloc/proxy/{id}")), "{url}");
    let mut c = connect(&url, &creds(&h), None).expect("the websocket");
    let mut channels = Vec::new();
    for (i, &(x, y)) in chips.iter().enumerate() {
        let ch = c.open(x, y, SCP);
        assert_ne!(ch, 0);
        assert!(!channels.contains(&ch));
        channels.push(ch);
        let seq = 0x1000 + u16::try_from(i).expect("small");
        let v = c.version(ch, x as u8, y as u8, seq);
        assert_eq!(v.result, 0x80, "RC_OK");
        assert_eq!(v.seq, seq);
        assert_eq!(v.chip, (x as u8, y as u8));
        assert_eq!(v.core, 0);
        assert_eq!(v.name, "SC&MP/SpiNNaker");
        assert_eq!(v.version, "4.0.0");
    }
    // Another command gets "bad command" (RC_CMD), with its sequence.
    let mut read = cmd_ver(0, 0, 7);
    read[10] = 2;
    c.send(&ClientFrame::Message {
        channel: channels[0],
        payload: &read,
    });
    let reply = c.frame();
    assert_eq!(&reply[8 + 10..8 + 14], &[0x83, 0, 7, 0]);
    // Ping, pong.
    c.ws.send(Message::Ping(b"are you there".to_vec().into()))
        .expect("ping");
    assert_eq!(c.next(), Got::Pong(b"are you there".to_vec()));
    for ch in channels {
        assert_eq!(c.close(ch), ch);
    }
    c.ws.close(None).expect("close");
    assert_eq!(c.closed(), 1005);
}

#[test]
fn over_tls_with_a_bearer_token_and_with_basic_credentials() {
    let server = start_with(
        ServerConfig::instant().machines(vec![ServerConfig::default_machine()]),
        proxied().tls(V2Tls::SelfSigned { ca_file: None }),
    );
    let ca = server.v2_ca_pem().expect("a CA").to_owned();
    let mut h = Http::new(&server);
    h.bearer = Some("alice-token-0001".into());
    let (_, url, chips) = ready_job(&h, 2);
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    // Bearer.
    let mut c = connect(&url, &creds(&h), Some(&ca)).expect("the websocket");
    for &(x, y) in &chips {
        let ch = c.open(x, y, SCP);
        let v = c.version(ch, x as u8, y as u8, 42);
        assert_eq!((v.result, v.chip), (0x80, (x as u8, y as u8)));
    }
    // Basic.
    let basic = [("Authorization", "Basic YWxpY2U6YWxpY2UtcHc=".to_owned())];
    let mut c = connect(&url, &basic, Some(&ca)).expect("the websocket");
    let (x, y) = chips[1];
    let ch = c.open(x, y, SCP);
    assert_eq!(c.version(ch, x as u8, y as u8, 1).result, 0x80);
    // And refused with a wrong password.
    let wrong = [("Authorization", "Basic YWxpY2U6d3Jvbmc=".to_owned())];
    assert_eq!(refused(connect(&url, &wrong, Some(&ca))), 401);
}

#[test]
fn upgrades_are_refused_as_the_java_server_refuses_them() {
    let server = start(proxied());
    let h = alice(&server);
    let (id, url, _) = ready_job(&h, 1);
    let base = url.trim_end_matches(&id.to_string()).to_owned();
    // Nobody, or a bearer token nobody has: 401.
    assert_eq!(refused(connect(&url, &[], None)), 401);
    let forged = [("Authorization", "Bearer not-a-token-of-anyone".to_owned())];
    assert_eq!(refused(connect(&url, &forged, None)), 401);
    // Unknown, zero, negative, not a number, someone else's: an empty 200.
    let bob = crate::support::http::Http::logged_in(&server, "bob", "bob-pw");
    for (u, who) in [
        (format!("{base}999"), &h),
        (format!("{base}0"), &h),
        (format!("{base}-1"), &h),
        (format!("{base}x1"), &h),
        (url.clone(), &bob),
    ] {
        assert_eq!(refused(connect(&u, &creds(who), None)), 200, "{u}");
    }
    let cookie = format!("JSESSIONID={}", h.cookie.clone().unwrap_or_default());
    let upgrade = |extra: &[(&str, &str)]| {
        let mut headers = vec![
            ("Cookie", cookie.as_str()),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        for (n, v) in extra {
            headers.retain(|(h, _)| h != n);
            if !v.is_empty() {
                headers.push((n, v));
            }
        }
        head_of(&server, &format!("/spalloc/proxy/{id}"), &headers)
    };
    let r = upgrade(&[]);
    r.expect(101);
    assert_eq!(
        r.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    let r = upgrade(&[("Sec-WebSocket-Key", "")]);
    r.expect(400);
    upgrade(&[("Upgrade", "")]).expect(400);
    upgrade(&[("Connection", "close")]).expect(400);
    let r = upgrade(&[("Sec-WebSocket-Version", "8")]);
    r.expect(426);
    assert_eq!(r.header("sec-websocket-version"), Some("13"));
    // The refusal for a job the caller may not see is an empty 200.
    let bobs = format!("JSESSIONID={}", bob.cookie.clone().unwrap_or_default());
    let r = upgrade(&[("Cookie", bobs.as_str())]);
    r.expect(200);
    assert_eq!(r.header("content-length"), Some("0"));
    // An admin may use anyone's job.
    let root = crate::support::http::Http::logged_in(&server, "root", "root-pw");
    let mut c = connect(&url, &creds(&root), None).expect("the admin's websocket");
    assert_ne!(c.open(0, 0, SCP), 0);
}

#[test]
fn a_job_without_boards_is_closed_with_1011() {
    let server = start_with(
        ServerConfig::instant().machines(vec![Machine::new("m", 1, 1)]),
        proxied(),
    );
    let h = alice(&server);
    let (running, url, _) = ready_job(&h, 3);
    let base = url.trim_end_matches(&running.to_string()).to_owned();
    // Queued: the websocket opens, then closes with 1011.
    let queued = h.create(&boards(1));
    assert_eq!(h.job(queued)["state"], "QUEUED");
    let mut c = connect(&format!("{base}{queued}"), &creds(&h), None).expect("the websocket");
    assert_eq!(
        c.next(),
        Got::Closed(1011, "job not in state where proxying permitted".into())
    );
    // Destroyed: the same.
    h.delete(&h.srv(&format!("jobs/{running}"))).expect(204);
    let mut c = connect(&url, &creds(&h), None).expect("the websocket");
    assert_eq!(c.closed(), 1011);
}

/// A fresh websocket to `url` that sends `bytes` and must be closed with
/// `code`.
#[track_caller]
fn closes_with(url: &str, h: &Http, bytes: Vec<u8>, code: u16) {
    let mut c = connect(url, &creds(h), None).expect("the websocket");
    c.send_raw(bytes.clone());
    match c.next() {
        Got::Closed(got, reason) => assert_eq!(got, code, "{bytes:02x?}: {reason}"),
        other => panic!("{bytes:02x?}: expected a close, got {other:?}"),
    }
}

#[test]
fn protocol_abuse_closes_the_websocket() {
    let server = start(proxied());
    let h = alice(&server);
    let (_, url, chips) = ready_job(&h, 3);
    let w = |ws: &[u32]| ws.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>();
    // Bad data: 1007.
    for bytes in [
        Vec::new(),
        vec![0, 0],
        w(&[0, 1, 0, 0]),                  // OPEN, short
        w(&[0, 1, 0, 0, SCP, 0]),          // OPEN, a word too many
        w(&[1, 1]),                        // CLOSE, short
        [w(&[1, 1, 5]), vec![0]].concat(), // CLOSE, a byte too many
        w(&[3]),                           // OPEN_UNCONNECTED, short
        w(&[3, 1, 0]),                     // OPEN_UNCONNECTED, a word too many
        vec![2, 0, 0, 0, 1, 0],            // MESSAGE, short
        w(&[4, 1, 0, 0]),                  // MESSAGE_TO, short
        w(&[5, 1]),                        // ERROR, from a client
        w(&[4, 1, 99, 99, SCP]),           // MESSAGE_TO an unknown chip
        w(&[4, 1, 0, 0, 0]),               // MESSAGE_TO port 0
        w(&[4, 1, 0, 0, 65536]),           // MESSAGE_TO port 65536
    ] {
        closes_with(&url, &h, bytes, 1007);
    }
    // Op codes past the protocol's: 1011 (the Java server fails on them).
    for op in [6, 7, 1000, u32::MAX, 0x8000_0000] {
        closes_with(&url, &h, w(&[op, 1, 2]), 1011);
    }
    // MESSAGE_TO on a connected channel: 1007.
    let mut c = connect(&url, &creds(&h), None).expect("the websocket");
    let (x, y) = chips[0];
    let ch = c.open(x, y, SCP);
    c.send_raw(w(&[4, ch, x, y, SCP]));
    assert_eq!(c.closed(), 1007);
    // Text: 1003.
    let mut c = connect(&url, &creds(&h), None).expect("the websocket");
    c.ws.send(Message::text("OPEN 0 0")).expect("send");
    assert_eq!(
        c.next(),
        Got::Closed(1003, "Text messages not supported".into())
    );
    // A message over the limit (8 KiB): 1009.
    let mut c = connect(&url, &creds(&h), None).expect("the websocket");
    c.send_raw([w(&[2, ch]), vec![0; 9000]].concat());
    assert_eq!(c.closed(), 1009);
    // And the server carries on.
    let mut c = connect(&url, &creds(&h), None).expect("the websocket");
    assert_ne!(c.open(x, y, SCP), 0);
}

#[test]
fn failed_calls_get_error_frames_and_the_websocket_stays() {
    let server = start(proxied());
    let h = alice(&server);
    let (_, url, chips) = ready_job(&h, 1);
    let mut c = connect(&url, &creds(&h), None).expect("the websocket");
    let error = |reply: &[u8]| match ServerFrame::decode(reply) {
        Ok(ServerFrame::Error {
            correlation,
            message,
        }) => (correlation, message.into_owned()),
        other => panic!("expected an ERROR: {other:?}"),
    };
    // A chip that is not one of the job's boards' Ethernet chips.
    let (corr, reply) = c.open_reply(1, 1, SCP);
    assert_eq!(error(&reply), (corr, "unrecognised ethernet chip".into()));
    let (corr, reply) = c.open_reply(8, 4, SCP);
    assert_eq!(error(&reply), (corr, "unrecognised ethernet chip".into()));
    let (x, y) = chips[0];
    for port in [0, 65536, u32::MAX] {
        let (corr, reply) = c.open_reply(x, y, port);
        assert_eq!(error(&reply), (corr, "bad port number".into()));
    }
    // Closing an unknown channel, or one twice: 0.
    assert_eq!(c.close(12345), 0);
    let ch = c.open(x, y, SCP);
    assert_eq!(c.close(ch), ch);
    assert_eq!(c.close(ch), 0);
    // MESSAGE to an unknown or closed channel: dropped, nothing comes back
    // (the next frame is the next call's reply).
    for channel in [ch, 0, 999_999] {
        c.send(&ClientFrame::Message {
            channel,
            payload: &cmd_ver(0, 0, 1),
        });
    }
    // MESSAGE_TO an unknown channel: dropped too.
    c.send(&ClientFrame::MessageTo {
        channel: 999_999,
        x,
        y,
        port: SCP,
        payload: &cmd_ver(0, 0, 2),
    });
    let ch = c.open(x, y, SCP);
    assert_eq!(c.version(ch, 0, 0, 3).seq, 3);
    // A port the virtual board does not serve opens, but nothing answers:
    // the next frame is the next reply.
    let quiet = c.open(x, y, 17894);
    c.send(&ClientFrame::Message {
        channel: quiet,
        payload: &cmd_ver(0, 0, 4),
    });
    // The boot port takes datagrams and says nothing.
    let boot = c.open(x, y, BOOT);
    c.send(&ClientFrame::Message {
        channel: boot,
        payload: &[0, 1, 0, 0, 0, 1, 0, 0, 0, 0],
    });
    assert_eq!(c.version(ch, 0, 0, 5).seq, 5);
    assert_eq!(c.close(quiet), quiet);
    assert_eq!(c.close(boot), boot);
}

#[test]
fn channel_ids_are_unique_across_the_server() {
    let server = start(proxied());
    let h = alice(&server);
    let (_, url_a, chips_a) = ready_job(&h, 1);
    let (_, url_b, chips_b) = ready_job(&h, 1);
    let mut a = connect(&url_a, &creds(&h), None).expect("a");
    let mut b = connect(&url_b, &creds(&h), None).expect("b");
    let mut seen = std::collections::HashSet::new();
    for _ in 0..5 {
        for (c, (x, y)) in [(&mut a, chips_a[0]), (&mut b, chips_b[0])] {
            let ch = c.open(x, y, SCP);
            assert!(ch != 0 && seen.insert(ch), "channel {ch} twice");
        }
    }
    // Channels are the websocket's own: b cannot close a's.
    let mine = a.open(chips_a[0].0, chips_a[0].1, SCP);
    assert_eq!(b.close(mine), 0);
    assert_eq!(a.close(mine), mine);
}

#[test]
fn unconnected_channels_hear_every_board_of_the_job_and_nothing_else() {
    let server = start(proxied());
    let h = alice(&server);
    let (_, url, chips) = ready_job(&h, 3);
    let mut c = connect(&url, &creds(&h), None).expect("the websocket");
    let correlation = c.corr();
    c.send(&ClientFrame::OpenUnconnected { correlation });
    let (ch, address, port) = match ServerFrame::decode(&c.frame()) {
        Ok(ServerFrame::OpenedUnconnected {
            correlation: got,
            channel,
            address,
            port,
        }) if got == correlation => (channel, address, port),
        other => panic!("{other:?}"),
    };
    assert_ne!(ch, 0);
    assert!(address.is_loopback());
    let there = SocketAddr::new(address.into(), u16::try_from(port).expect("a port"));
    // A stranger's datagram to it is dropped...
    let stranger = UdpSocket::bind("127.0.0.1:0").expect("bind");
    stranger.send_to(b"not from a board", there).expect("send");
    // ... and MESSAGE on it goes nowhere ...
    c.send(&ClientFrame::Message {
        channel: ch,
        payload: &cmd_ver(0, 0, 1),
    });
    // ... while MESSAGE_TO reaches each board, and each answers on it.
    for (i, &(x, y)) in chips.iter().enumerate() {
        let seq = 10 + u16::try_from(i).expect("small");
        c.send(&ClientFrame::MessageTo {
            channel: ch,
            x,
            y,
            port: SCP,
            payload: &cmd_ver(x as u8, y as u8, seq),
        });
        match ServerFrame::decode(&c.frame()) {
            Ok(ServerFrame::Message { channel, payload }) => {
                assert_eq!(channel, ch);
                let v = Version::parse(payload);
                assert_eq!((v.seq, v.chip), (seq, (x as u8, y as u8)));
            }
            other => panic!("{other:?}"),
        }
    }
    // MESSAGE_TO a port no virtual board serves: dropped, no close.
    c.send(&ClientFrame::MessageTo {
        channel: ch,
        x: chips[0].0,
        y: chips[0].1,
        port: 17894,
        payload: &cmd_ver(0, 0, 2),
    });
    assert_eq!(c.close(ch), ch);
}

#[test]
fn many_calls_and_channels_interleaved() {
    let server = start(proxied());
    let h = alice(&server);
    let (_, url, chips) = ready_job(&h, 6);
    let mut c = connect(&url, &creds(&h), None).expect("the websocket");
    // Forty OPENs in flight at once, over all the boards.
    let calls: Vec<(u32, (u32, u32))> = (0..40)
        .map(|i| (1000 + i, chips[i as usize % chips.len()]))
        .collect();
    for &(correlation, (x, y)) in &calls {
        c.send(&ClientFrame::Open {
            correlation,
            x,
            y,
            port: SCP,
        });
    }
    let mut channels = std::collections::HashMap::new();
    for _ in &calls {
        match ServerFrame::decode(&c.frame()) {
            Ok(ServerFrame::Opened {
                correlation,
                channel,
            }) => {
                let xy = calls
                    .iter()
                    .find(|(c, _)| *c == correlation)
                    .map(|(_, xy)| *xy)
                    .expect("a correlation id of ours");
                assert!(channels.insert(channel, xy).is_none());
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(channels.len(), 40);
    // A version request on every channel at once, with calls between:
    // every reply comes back on its own channel with its own sequence.
    let mut want = std::collections::HashMap::new();
    for (i, (&ch, &(x, y))) in channels.iter().enumerate() {
        let seq = 500 + u16::try_from(i).expect("small");
        c.send(&ClientFrame::Message {
            channel: ch,
            payload: &cmd_ver(x as u8, y as u8, seq),
        });
        want.insert(ch, (seq, (x as u8, y as u8)));
        if i % 10 == 0 {
            c.send(&ClientFrame::Close {
                correlation: 7000 + u32::try_from(i).expect("small"),
                channel: 0,
            });
        }
    }
    let (mut replies, mut closes) = (0, 0);
    while replies < 40 || closes < 4 {
        match ServerFrame::decode(&c.frame()) {
            Ok(ServerFrame::Message { channel, payload }) => {
                let v = Version::parse(payload);
                assert_eq!(want.remove(&channel), Some((v.seq, v.chip)));
                replies += 1;
            }
            Ok(ServerFrame::Closed {
                correlation,
                channel: 0,
            }) if (7000..7040).contains(&correlation) => closes += 1,
            other => panic!("{other:?}"),
        }
    }
    for &ch in channels.keys() {
        assert_eq!(c.close(ch), ch);
    }
}

#[test]
fn destroying_the_job_closes_its_channels_but_not_the_websocket() {
    let server = start(proxied());
    let h = alice(&server);
    let (id, url, chips) = ready_job(&h, 1);
    let mut c = connect(&url, &creds(&h), None).expect("the websocket");
    let (x, y) = chips[0];
    let ch = c.open(x, y, SCP);
    let unbound = {
        let correlation = c.corr();
        c.send(&ClientFrame::OpenUnconnected { correlation });
        match ServerFrame::decode(&c.frame()) {
            Ok(ServerFrame::OpenedUnconnected { channel, .. }) => channel,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(c.version(ch, 0, 0, 1).result, 0x80);
    h.delete(&h.srv(&format!("jobs/{id}?reason=done")))
        .expect(204);
    // The channels are closed: closing them again answers 0.
    assert_eq!(c.close(ch), 0);
    assert_eq!(c.close(unbound), 0);
    // New channels are refused (the Java server would open them), and the
    // websocket is still there.
    let (corr, reply) = c.open_reply(x, y, SCP);
    assert_eq!(
        ServerFrame::decode(&reply),
        Ok(ServerFrame::Error {
            correlation: corr,
            message: "job not in state where proxying permitted".into()
        })
    );
    c.ws.send(Message::Ping(b"still".to_vec().into()))
        .expect("ping");
    assert_eq!(c.next(), Got::Pong(b"still".to_vec()));
}

#[test]
fn a_powered_off_board_does_not_answer() {
    let server = start(proxied());
    let h = alice(&server);
    let (id, url, chips) = ready_job(&h, 1);
    let mut c = connect(&url, &creds(&h), None).expect("the websocket");
    let (x, y) = chips[0];
    let ch = c.open(x, y, SCP);
    h.post_json(
        &h.srv(&format!("jobs/{id}/machine/power")),
        &json!({"power": "OFF"}),
    )
    .expect(202);
    // Off, the board says nothing (for as long as we care to wait).
    c.send(&ClientFrame::Message {
        channel: ch,
        payload: &cmd_ver(0, 0, 1),
    });
    c.set_timeout(Duration::from_millis(500));
    match c.ws.read() {
        Err(tungstenite::Error::Io(e))
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) => {}
        other => panic!("a board that is off answered: {other:?}"),
    }
    c.set_timeout(WAIT);
    h.post_json(
        &h.srv(&format!("jobs/{id}/machine/power")),
        &json!({"power": "ON"}),
    )
    .expect(202);
    assert_eq!(h.job(id)["state"], "READY");
    // On again, it answers. (A board that looked at the first request only
    // after the power came back on may answer that one too.)
    c.send(&ClientFrame::Message {
        channel: ch,
        payload: &cmd_ver(0, 0, 2),
    });
    let mut v = Version::parse(&c.frame()[8..]);
    if v.seq == 1 {
        v = Version::parse(&c.frame()[8..]);
    }
    assert_eq!((v.result, v.seq), (0x80, 2));
}

#[test]
fn a_client_that_stops_reading_is_disconnected() {
    let server = start(proxied().proxy_send_limits(4096, Duration::from_secs(1)));
    let h = alice(&server);
    let (_, url, chips) = ready_job(&h, 1);
    let mut c = connect(&url, &creds(&h), None).expect("the websocket");
    let (x, y) = chips[0];
    let ch = c.open(x, y, SCP);
    // Ask and ask, never reading the answers: the server gives up on us.
    let frame = ClientFrame::Message {
        channel: ch,
        payload: &cmd_ver(0, 0, 1),
    }
    .encode()
    .expect("encode");
    let mut failed = false;
    for _ in 0..2_000_000 {
        if c.ws.send(Message::Binary(frame.clone().into())).is_err() {
            failed = true;
            break;
        }
    }
    assert!(
        failed,
        "the server never disconnected a client that does not read"
    );
    // Others are served as before.
    let mut other = connect(&url, &creds(&h), None).expect("the websocket");
    let ch = other.open(x, y, SCP);
    assert_eq!(other.version(ch, 0, 0, 9).seq, 9);
}

#[test]
fn stopping_the_server_ends_its_websockets() {
    let server = start(proxied());
    let h = alice(&server);
    let (_, url, chips) = ready_job(&h, 1);
    let mut c = connect(&url, &creds(&h), None).expect("the websocket");
    let ch = c.open(chips[0].0, chips[0].1, SCP);
    assert_eq!(c.version(ch, 0, 0, 1).result, 0x80);
    server.shutdown();
    // The connection ends (without a close frame: the server cut it).
    let end = c.ws.read();
    assert!(
        matches!(
            end,
            Err(tungstenite::Error::Protocol(_)
                | tungstenite::Error::Io(_)
                | tungstenite::Error::ConnectionClosed)
        ),
        "{end:?}"
    );
}

/// The server used by the Python test is `spalloc serve`; this one checks
/// that `VirtualServer` stops cleanly with channels open and boards live.
#[test]
fn a_server_with_open_channels_stops() {
    let server: VirtualServer = start(proxied());
    let h = alice(&server);
    let (_, url, chips) = ready_job(&h, 3);
    let mut c = connect(&url, &creds(&h), None).expect("the websocket");
    for &(x, y) in &chips {
        c.open(x, y, SCP);
        c.open(x, y, BOOT);
    }
    drop(server);
}

#[test]
fn frames_sent_with_the_upgrade_request_are_not_lost() {
    let server = start(proxied());
    let h = alice(&server);
    let (id, _, chips) = ready_job(&h, 1);
    let (x, y) = chips[0];
    // The upgrade request and a masked OPEN frame in one write, before
    // the 101 has come back.
    let open = ClientFrame::Open {
        correlation: 77,
        x,
        y,
        port: SCP,
    }
    .encode()
    .expect("encode");
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut bytes = format!(
        "GET /spalloc/proxy/{id} HTTP/1.1\r\nHost: h\r\nCookie: JSESSIONID={}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        h.cookie.clone().unwrap_or_default()
    )
    .into_bytes();
    bytes.extend_from_slice(&[0x82, 0x80 | u8::try_from(open.len()).expect("short")]);
    bytes.extend_from_slice(&mask);
    bytes.extend(open.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    let addr = server.v2_local_addr().expect("v2");
    let mut tcp = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
    tcp.set_read_timeout(Some(WAIT)).expect("timeout");
    tcp.write_all(&bytes).expect("send");
    // The 101, then the reply: an unmasked binary frame of 12 bytes.
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let head_end = loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n")
            && got.len() >= end + 4 + 14
        {
            break end + 4;
        }
        let n = tcp.read(&mut buf).expect("read");
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    };
    assert!(got.starts_with(b"HTTP/1.1 101 "));
    let frame = &got[head_end..head_end + 14];
    assert_eq!(&frame[..2], &[0x82, 12]);
    assert!(matches!(
        ServerFrame::decode(&frame[2..]),
        Ok(ServerFrame::Opened { correlation: 77, channel }) if channel != 0
    ));
}
