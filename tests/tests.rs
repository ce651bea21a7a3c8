//! The single integration-test binary: every module below shares one build.
mod server;
