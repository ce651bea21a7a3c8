//! Client library, tools and virtual server for the spalloc v1 protocol.
//!
//! (Crate documentation is being written; see README.md.)

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod error;
pub mod server;

pub use error::{Error, Result};
