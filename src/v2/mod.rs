//! The spalloc v2 protocol: the Java server's REST service and the proxy
//! websocket that relays UDP between a client and a job's boards
//! (PROTOCOL_V2.md).
//!
//! * [`proxy`]: the proxy's binary frames, encoded and decoded without
//!   sockets.

pub mod proxy;
