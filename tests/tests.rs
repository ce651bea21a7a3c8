//! The integration tests: every module below shares one build, as
//! ripgrep's tests do. The reliability tests, which wait on real time, are
//! a target of their own (`tests/reliability/main.rs`, `cargo test --test
//! reliability`).

mod support;

mod cli_alloc;
mod cli_serve;
mod cli_syntax;
mod cli_views;
mod cli_workflows;
mod client;
mod dialects;
mod docs;
mod job;
mod pipeline;
mod pyclient;
mod server;
mod v2;
mod v2client;
