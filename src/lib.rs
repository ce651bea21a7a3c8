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
//! * [`ProtocolClient`]: one connection, one typed method per command of the
//!   v1 protocol; works with both the Python server and the Java server's
//!   compatibility service.
//! * [`Config`]: the Python client's INI files (`[spalloc]` section).
//! * [`Job`]: creates or resumes a job, keeps it alive from a background
//!   thread that survives connection failures, destroys it on drop.
//! * [`v2`]: pieces of the v2 protocol (the Java server's REST service and
//!   proxy websocket); for now the proxy's frames.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod client;
mod config;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod interrupt;
mod job;
pub mod protocol;
pub mod seconds;
pub mod server;
mod types;
pub mod v2;
mod version;

pub use client::{DEFAULT_MAX_LINE_LENGTH, DEFAULT_PORT, ProtocolClient};
pub use config::{Config, ConfigEntry, ConfigFile, ConfigValue, FileStatus, KEYS as CONFIG_KEYS};
pub use error::{Error, Result};
pub use interrupt::InterruptHandle;
pub use job::{ConnectionEvent, Job, JobOptions};
pub use types::{
    Board, BoardPosition, Chip, Connection, CreateJobOptions, DeadLink, JobDescription,
    JobMachineInfo, JobRequest, JobState, JobStateInfo, MachineDescription, Notification, Number,
    WhereIs, WhereIsQuery,
};
pub use version::{check_version, parse_version};

/// The JSON types that appear in the raw parts of the API
/// ([`ProtocolClient::call`], a job's request arguments).
pub use serde_json::{Map, Value};
