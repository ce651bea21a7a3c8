//! The v2 (REST) service of the virtual server, over real HTTP on loopback,
//! with the hand-written client in `support::http` (never the crate's own
//! client, so that these tests check the wire itself).

mod auth;
mod endpoints;
mod jobs;
mod longpoll;
mod proxy;
mod robustness;
mod shared;

use std::time::Duration;

use serde_json::{Value, json};
use spalloc::server::{Machine, ServerConfig, V2Config, V2Role, V2User, VirtualServer};

use crate::support::http::Http;

/// The users of these tests.
pub fn users() -> Vec<V2User> {
    vec![
        V2User::new("alice", "alice-pw").token("alice-token-0001"),
        V2User::new("bob", "bob-pw"),
        V2User::new("root", "root-pw").role(V2Role::Admin),
        V2User::new("reader", "reader-pw").role(V2Role::Reader),
    ]
}

/// v2 settings for tests: the users above, keepalives from 1 s.
pub fn v2() -> V2Config {
    V2Config::default()
        .users(users())
        .keepalive_bounds(Duration::from_secs(1), Duration::from_secs(300))
}

/// A server with instant power, a 2 x 2 machine `m` (tag `default`) and a
/// one-triad machine `small` (tag `small`), and the given v2 settings.
pub fn start(v2: V2Config) -> VirtualServer {
    start_with(
        ServerConfig::instant().machines(vec![
            Machine::new("m", 2, 2),
            Machine::new("small", 1, 1)
                .tags(["small"])
                .base_ip("10.2.0.0".parse().expect("ip")),
        ]),
        v2,
    )
}

pub fn start_with(config: ServerConfig, v2: V2Config) -> VirtualServer {
    VirtualServer::start(config.v2(Some(v2))).expect("start the virtual server")
}

/// A create request for `n` boards on any `default` machine.
pub fn boards(n: u64) -> Value {
    json!({"num-boards": n, "tags": ["default"], "keepalive-interval": "PT60S"})
}

/// alice, logged in by the form.
pub fn alice(server: &VirtualServer) -> Http {
    Http::logged_in(server, "alice", "alice-pw")
}
