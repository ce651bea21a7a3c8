//! The v2 protocol: the REST service of the Java spalloc server (the one
//! SpiNNaker users reach at `https://…/spalloc/`).
//!
//! Most programs never name this module: give [`ServerOptions`] (or the
//! `hostname` configuration key) an `http://` or `https://` URL of the
//! service's application root and [`Client`](crate::Client) and
//! [`Job`](crate::Job) speak v2, exactly as they speak v1 to a bare host
//! name or a `spalloc://host:port`. What is here:
//!
//! * [`V2Settings`]: credentials (and where they came from), a private CA,
//!   the session cache, and the opt-in for passwords over plain HTTP; a
//!   part of [`ServerOptions`], built with or without the `v2` feature.
//! * [`RestClient`] (with the `v2` feature): one typed method per endpoint,
//!   for what the protocol-neutral [`Client`](crate::Client) does not
//!   cover (issue reports, long-polls, the service's own documents).
//! * [`proxy`]: the proxy websocket's binary frames (which relay UDP
//!   between a client and a job's boards), encoded and decoded without
//!   sockets.
//! * [`ProxyClient`] (with the `v2` feature): those frames over a live
//!   websocket, from [`RestClient::proxy`]: [`Channel`]s to the UDP ports
//!   of a job's boards, pinged and reconnected.
//!
//! # Logging in
//! A bearer token (`OIDC_BEARER_TOKEN`, or a private token file) is sent
//! with every request. Otherwise the client logs in with the form, as the
//! reference clients do, and keeps the session: in the process (shared by a
//! job's keepalive thread) and, when [`V2Settings::session_cache`] is set,
//! in a file only the user may read, so the next run needs no password.
//! An expired session is renewed once when the password is at hand. A
//! login the service refuses is **never** tried again automatically (the
//! service may lock an account after repeated failures): the error says
//! so. Passwords, tokens and cookies appear in no log line, error or
//! `Debug` output.
//!
//! [`ServerOptions`]: crate::ServerOptions

#[cfg(feature = "v2")]
mod client;
#[cfg(feature = "v2")]
mod http;
#[cfg(feature = "v2")]
pub(crate) mod neutral;
pub mod proxy;
#[cfg(feature = "v2")]
mod session;
mod settings;
#[cfg(feature = "v2")]
mod tunnel;
#[cfg(feature = "v2")]
mod types;
pub(crate) mod url;

#[cfg(feature = "v2")]
pub use client::RestClient;
pub use settings::{CredentialSource, PasswordPrompt, PromptFn, Secret, V2Settings};
#[cfg(feature = "v2")]
pub use tunnel::{Channel, PING_INTERVAL, ProxyClient};
#[cfg(feature = "v2")]
pub use types::{
    BoardCoords, BoardLocation, Direction, DownLink, IssueBoard, JobAllocation, JobInfo, Machine,
    ServiceInfo,
};

use crate::error::InvalidArgument;
use crate::types::{CreateJobOptions, JobRequest};

/// Where sessions are cached by default: `spalloc` in the user's cache
/// directory (`~/.cache/spalloc` on Linux).
pub(crate) fn default_session_dir() -> Option<std::path::PathBuf> {
    dirs::cache_dir().map(|d| d.join("spalloc"))
}

/// The default `min_ratio`, which v2 does not have: only a different value
/// counts as asking for it.
const DEFAULT_MIN_RATIO: f64 = 0.333;

/// Checks that a request uses nothing the v2 service lacks: `min_ratio`
/// (other than its default), `max_dead_links`, `require_torus`, or a
/// keepalive of "never" (the service requires one).
///
/// # Errors
/// [`InvalidArgument::NotOnProtocol`] naming the option, or
/// [`InvalidArgument::Keepalive`].
pub fn check_request(
    _request: &JobRequest,
    options: &CreateJobOptions,
) -> Result<(), InvalidArgument> {
    let not = |option| InvalidArgument::NotOnProtocol {
        option,
        protocol: "v2",
    };
    if (options.min_ratio - DEFAULT_MIN_RATIO).abs() > f64::EPSILON {
        return Err(not("min_ratio"));
    }
    if options.max_dead_links.is_some() {
        return Err(not("max_dead_links"));
    }
    if options.require_torus {
        return Err(not("require_torus"));
    }
    match options.keepalive {
        None => Err(not("a keepalive of None (never expire)")),
        Some(k) => crate::seconds::limit(k.as_f64())
            .map(drop)
            .map_err(InvalidArgument::Keepalive),
    }
}
