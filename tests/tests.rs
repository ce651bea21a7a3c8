//! The single integration-test binary: every module below shares one build,
//! as ripgrep's tests do.

mod support;

mod cli_alloc;
mod cli_serve;
mod cli_views;
mod client;
mod dialects;
mod docs;
mod job;
mod pyclient;
mod reliability;
mod server;
mod v2;
