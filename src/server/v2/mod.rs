//! The v2 front-end: the Java spalloc server's REST service (the one
//! SpiNNaker users reach at `https://…/spalloc/`), on the same engine as the
//! v1 service, so a job made through either is seen, kept alive, powered
//! and destroyed through both.
//!
//! * `http`: HTTP/1.1 requests and responses, no sockets (fuzzed).
//! * `listen`: sockets, TLS, threads, deadlines.
//! * `api`: security rules, URL layout and endpoints; translates requests
//!   into engine calls and engine results into the Java server's JSON.
//! * `auth`, `password`: users, sessions, CSRF, bearer tokens, lockout.
//! * `wire`: the JSON documents, times and durations.
//! * `tls`: rustls set-up and the throw-away certificate authority.
//! * `proxy`: the proxy websocket (`proxy/{id}`): channels relaying UDP
//!   to the job's virtual boards (`super::boards`).
//! * `websocket`: one upgraded connection: TLS and websocket framing
//!   without blocking, a bounded outbox, and the threads that move bytes.
//! * `config`: [`V2Config`].
//!
//! Its deliberate differences from the Java server are listed in the
//! documentation of [`crate::server`], where users see them.

pub(crate) mod api;
pub(crate) mod auth;
pub(crate) mod config;
#[cfg(test)]
mod fuzzing;
pub(crate) mod http;
pub(crate) mod listen;
pub(crate) mod password;
pub(crate) mod proxy;
pub(crate) mod tls;
pub(crate) mod websocket;
pub(crate) mod wire;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use log::info;

pub use config::{Lockout, V2Config, V2Password, V2Role, V2Tls, V2User};

use super::config::ServerConfig;
use super::machine::Machine;
use super::net::{Core, FairLock, Shared};
use super::state::Controller;

/// A running v2 service.
#[derive(Debug)]
pub(crate) struct V2Server {
    listener: listen::Listener,
    hub: Option<Arc<proxy::Hub>>,
    /// `http(s)://host:port/base/`.
    pub url: String,
    /// The throw-away CA's certificate, when there is one.
    pub ca_pem: Option<String>,
}

impl V2Server {
    /// Sets up users, TLS and the listener, and starts serving.
    pub fn start(shared: &Arc<Shared>, config: V2Config, v1: SocketAddr) -> io::Result<V2Server> {
        let auth = auth::Auth::new(&config)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("v2: {e}")))?;
        let tls = tls::setup(&config.tls)?;
        let addr = config.listen_addr(v1);
        let listener = TcpListener::bind(addr).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("v2 service: cannot listen on {addr}: {e}"),
            )
        })?;
        let local = listener.local_addr()?;
        let secure = tls.is_some();
        let url = format!(
            "{}://{}{}",
            if secure { "https" } else { "http" },
            url_host(local),
            config.base_path
        );
        let changes = shared.lock().changes.clone();
        let hub = if config.proxy {
            Some(proxy::Hub::start(shared, &changes, &config)?)
        } else {
            None
        };
        let service = api::Service {
            shared: shared.clone(),
            changes,
            auth,
            config,
            secure,
            local,
            proxy: hub.clone(),
        };
        let ca_pem = tls.as_ref().and_then(|t| t.ca_pem.clone());
        let listener = match listen::Listener::start(service, tls.map(|t| t.config), listener) {
            Ok(l) => l,
            Err(e) => {
                if let Some(h) = &hub {
                    h.stop();
                }
                return Err(e);
            }
        };
        info!("virtual spalloc v2 service at {url}");
        Ok(V2Server {
            listener,
            hub,
            url,
            ca_pem,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.addr
    }

    /// Stops serving: the proxy's boards and watcher first, then the
    /// listener and every connection (`listen::Listener::stop`), websockets
    /// included.
    pub fn stop(&mut self) {
        if let Some(hub) = self.hub.take() {
            hub.stop();
        }
        self.listener.stop();
    }
}

/// A listening address as it goes in a URL: the loopback address for "any
/// interface", IPv6 in brackets.
fn url_host(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        }
        ip => ip,
    };
    SocketAddr::new(ip, addr.port()).to_string()
}

/// The bearer token of the fuzzing server's user (`test`, password `test`).
pub(crate) const FUZZ_TOKEN: &str = "fuzz-token-0001";

/// Runs `input` as a stream of HTTP requests through a fresh in-memory v2
/// service (one 2 x 2-triad machine, instant power, no sockets, no
/// threads, long-polls that do not wait) and returns each response as
/// sent. A request that cannot be read gets its error response, which
/// ends the stream, as it ends a connection.
pub(crate) fn fuzz(input: &[u8]) -> Vec<Vec<u8>> {
    let config = ServerConfig::for_tests().machines(vec![Machine::new("m", 2, 2)]);
    let Ok(defs) = config.validate() else {
        return Vec::new();
    };
    let core = Core::new(
        Controller::new(super::settings(&config), defs),
        config.dialect,
    );
    let changes = core.changes.clone();
    let shared = Arc::new(Shared {
        core: FairLock::new(core),
        wake: Mutex::new(false),
        wake_signal: Condvar::new(),
        config,
        stopping: AtomicBool::new(false),
        threads: Mutex::new(Vec::new()),
    });
    let v2 = V2Config::default()
        .users(vec![V2User::new("test", "test").token(FUZZ_TOKEN)])
        .wait_timeout(Duration::ZERO)
        .keepalive_bounds(Duration::from_secs(1), Duration::from_secs(300));
    let Ok(auth) = auth::Auth::with_iterations(&v2, 1) else {
        return Vec::new();
    };
    let limits = http::Limits {
        max_head: 4096,
        max_body: 4096,
    };
    let service = api::Service {
        shared,
        changes,
        auth,
        config: v2,
        secure: false,
        local: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
        proxy: None,
    };
    let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut reader = http::Reader::new(limits);
    reader.feed(input);
    let mut out = Vec::new();
    loop {
        match reader.next_request() {
            Ok(Some(req)) => {
                let resp = service.handle(&req, peer);
                out.push(resp.to_bytes(req.keep_alive(), "Thu, 01 Jan 1970 00:00:00 GMT"));
            }
            Ok(None) => break,
            Err(e) => {
                out.push(
                    e.response(&limits)
                        .to_bytes(false, "Thu, 01 Jan 1970 00:00:00 GMT"),
                );
                break;
            }
        }
    }
    out
}
