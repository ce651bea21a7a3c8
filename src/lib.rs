//! A client for spalloc, the SpiNNaker machine partitioning and allocation
//! server: a typed, blocking protocol client, configuration files compatible
//! with the Python client, and [`Job`], an allocation that is released when
//! its handle is dropped.
//!
//! # Example
//! ```no_run
//! use std::time::Duration;
//! use spalloc::{Job, JobOptions, JobRequest};
//!
//! // Server, owner and other defaults come from the usual config files
//! // (see `spalloc config`); anything can be overridden here.
//! let options = JobOptions::load()?.owner("me@example.org");
//!
//! // Ask for three boards and wait (up to five minutes) until they are on.
//! let mut job = Job::create(JobRequest::Boards(3), &options)?;
//! job.wait_until_ready(Some(Duration::from_secs(300)))?;
//!
//! let hostname = job.hostname()?.unwrap_or_default();
//! let (width, height) = (job.width()?.unwrap_or(0), job.height()?.unwrap_or(0));
//! println!("boot {hostname}: a {width}x{height}-chip machine");
//!
//! // Dropping `job` destroys it and frees the boards, even on a panic.
//! # Ok::<(), spalloc::Error>(())
//! ```
//!
//! # Layers
//! * [`Job`]: creates or resumes a job, keeps it alive from a background
//!   thread that survives connection failures, destroys it on drop.
//! * [`Client`]: a server as tools see it, whatever protocol it speaks:
//!   connect and check the version, list jobs and machines, a job's state
//!   and boards, power, where-is, and waiting for changes. [`Job`] and the
//!   `spalloc` command reach servers only through it. The server's name
//!   picks the protocol: a bare host or `spalloc://host[:port]` is v1, an
//!   `http(s)://` URL of the service is v2 (see [`ServerOptions::protocol`]).
//! * [`v2`]: the Java server's REST service: [`v2::RestClient`], one typed
//!   method per endpoint, logged in (form login, bearer tokens, sessions
//!   cached privately), [`v2::V2Settings`], its credentials, and the proxy
//!   websocket's frames ([`v2::proxy`]).
//! * [`ProtocolClient`]: one v1 connection, one typed method per command of
//!   the protocol; works with both the Python server and the Java server's
//!   compatibility service. [`ProtocolClient::call_pipelined`] sends many
//!   calls (a [`Pipeline`]) before reading their replies.
//! * [`protocol`]: the v1 wire format without sockets, for tools that build
//!   their own transport.
//! * [`Config`], [`JobOptions`], [`ServerOptions`]: the Python client's INI
//!   files (`[spalloc]` section), and the settings they give.
//! * The plain data of requests and replies ([`JobRequest`],
//!   [`JobStateInfo`], [`MachineDescription`], …), with no wire format in
//!   it.
//! * `server` (with the `server` feature): a virtual spalloc server, for
//!   tests and demos.
//!
//! # Cargo features
//! * `cli` (default): the `spalloc` command-line tool, with its argument
//!   parser, logger, signal handling and the rest. It brings `server`.
//! * `server`: the virtual server, `spalloc::server`, with its TOML
//!   configuration files and its v2 (HTTPS) front-end, proxy websocket
//!   included.
//! * `v2` (default): the v2 client, over HTTP/1.1 and TLS (rustls, with
//!   the Mozilla roots).
//!
//! With `default-features = false` a library user compiles the v1 client
//! alone, on a handful of small crates (serde, serde_json, configparser,
//! dirs, log, memchr); `features = ["v2"]` adds the v2 client.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod client;
mod config;
mod error;
// The fuzzing hooks: public only to the fuzz targets (cargo-fuzz builds with
// `--cfg fuzzing`); the property tests use them too.
#[cfg(fuzzing)]
pub mod fuzzing;
#[cfg(all(test, not(fuzzing)))]
mod fuzzing;
mod interrupt;
mod job;
pub mod protocol;
mod remote;
pub mod seconds;
#[cfg(feature = "server")]
pub mod server;
mod types;
pub mod v2;
mod version;

pub use client::{
    DEFAULT_MAX_LINE_LENGTH, DEFAULT_PORT, PIPELINE_WINDOW, Pipeline, ProtocolClient,
};
pub use config::{
    Config, ConfigEntry, ConfigFile, ConfigValue, FileStatus, KEYS as CONFIG_KEYS,
    V2_KEYS as CONFIG_V2_KEYS,
};
pub use error::{Error, InvalidArgument, Phase, ProtocolError, Result};
pub use interrupt::InterruptHandle;
pub use job::{ConnectionEvent, Job, JobOptions, KeepaliveCheck, KeepaliveInterval};
pub use remote::{Client, JobListing, Protocol, ServerOptions, Watch};
pub use types::{
    Board, BoardPosition, Chip, Connection, CreateJobOptions, DeadLink, JobDescription,
    JobMachineInfo, JobRequest, JobState, JobStateInfo, MachineDescription, Notification, Number,
    WhereIs, WhereIsQuery,
};
pub use version::{check_version, parse_version};

/// The JSON types that appear in the raw parts of the API
/// ([`ProtocolClient::call`], a job's request arguments).
pub use serde_json::{Map, Value};
