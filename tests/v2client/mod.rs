//! The crate's own v2 client: `spalloc::v2::RestClient`, and `Client`,
//! `Job` and the `spalloc` binary over v2, against the virtual server's v2
//! service (HTTP and HTTPS) and, for what it will not do, a scripted fake
//! HTTP server.

mod cli;
mod fake;
mod job;
mod proxy;
mod rest;

use std::time::Duration;

use spalloc::server::{Machine, ServerConfig, V2Config, VirtualServer};
use spalloc::v2::V2Settings;
use spalloc::{JobOptions, ServerOptions};

pub use crate::v2::users;

/// A server with instant power, a 2 x 2 machine `m` (tag `default`) and a
/// one-triad machine `small` (tag `small`); v2 keepalives from 1 s.
pub fn start() -> VirtualServer {
    start_with(ServerConfig::instant(), V2Config::default())
}

/// The same machines with these settings.
pub fn start_with(config: ServerConfig, v2: V2Config) -> VirtualServer {
    VirtualServer::start(
        config
            .machines(vec![
                Machine::new("m", 2, 2),
                Machine::new("small", 1, 1)
                    .tags(["small"])
                    .base_ip("10.2.0.0".parse().expect("ip")),
            ])
            .v2(Some(v2.users(users()).keepalive_bounds(
                Duration::from_secs(1),
                Duration::from_secs(300),
            ))),
    )
    .expect("start the virtual server")
}

/// alice's credentials, no session cache.
pub fn alice() -> V2Settings {
    V2Settings::default().login("alice", "alice-pw")
}

/// The server's v2 service, as alice.
pub fn server_options(server: &VirtualServer) -> ServerOptions {
    ServerOptions::new()
        .hostname(server.v2_url().expect("v2"))
        .timeout(Some(Duration::from_secs(10)))
        .v2(alice())
}

/// Job options for the server's v2 service, as alice, with a 10 s
/// keepalive.
pub fn job_options(server: &VirtualServer) -> JobOptions {
    JobOptions::new()
        .hostname(server.v2_url().expect("v2"))
        .timeout(Some(Duration::from_secs(10)))
        .reconnect_delay(Duration::from_millis(100))
        .keepalive(Some(Duration::from_secs(10)))
        .v2(alice())
}
