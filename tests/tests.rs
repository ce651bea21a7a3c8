//! The single integration-test binary: every module below shares one build,
//! as ripgrep's tests do.

mod support;

mod client;
mod job;
mod cli_alloc;
mod pyclient;
