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
#[cfg(any(test, fuzzing))]
mod fuzzing;
pub(crate) mod http;
pub(crate) mod listen;
pub(crate) mod password;
pub(crate) mod proxy;
pub(crate) mod tls;
pub(crate) mod websocket;
pub(crate) mod wire;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use log::info;

pub use config::{Lockout, V2Config, V2Password, V2Role, V2Tls, V2User};
#[cfg(any(test, fuzzing))]
pub(crate) use fuzzing::fuzz;

use super::error::ServerError;
use super::net::Shared;

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
    pub fn start(
        shared: &Arc<Shared>,
        config: V2Config,
        v1: SocketAddr,
    ) -> Result<V2Server, ServerError> {
        let auth =
            auth::Auth::new(&config).map_err(|e| ServerError::Unusable(format!("v2: {e}")))?;
        let tls = tls::setup(&config.tls)?;
        let addr = config.listen_addr(v1);
        let listen_failed = |source| ServerError::Listen {
            addr,
            v2: true,
            source,
        };
        let listener = TcpListener::bind(addr).map_err(listen_failed)?;
        let local = listener.local_addr().map_err(listen_failed)?;
        let secure = tls.is_some();
        let url = format!(
            "{}://{}{}",
            if secure { "https" } else { "http" },
            url_host(local),
            config.base_path
        );
        let changes = shared.lock().changes.clone();
        let hub = if config.proxy {
            Some(
                proxy::Hub::start(shared, &changes, &config)
                    .map_err(|e| ServerError::io("v2: cannot start the proxy", e))?,
            )
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
                return Err(ServerError::io("v2: cannot start serving", e));
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
