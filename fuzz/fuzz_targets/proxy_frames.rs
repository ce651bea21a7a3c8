//! Bytes as one binary message of the v2 proxy websocket, decoded as a
//! client's frame and as a server's: nothing may panic, every frame that
//! decodes encodes back to the same bytes, and every client frame that does
//! not decode closes the websocket with 1007 or 1011
//! (`spalloc::fuzzing::decode_proxy_frame` asserts these).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    spalloc::fuzzing::decode_proxy_frame(data);
});
