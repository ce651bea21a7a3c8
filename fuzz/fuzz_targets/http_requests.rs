//! Bytes as a stream of HTTP requests to the virtual server's v2 service,
//! against a fresh in-memory server: nothing may panic, and every answer
//! is a complete HTTP/1.1 response.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for r in spalloc::server::fuzz_http(data) {
        let end = r.windows(4).position(|w| w == b"\r\n\r\n");
        assert!(end.is_some(), "{:?}", String::from_utf8_lossy(&r));
        assert!(r.starts_with(b"HTTP/1.1 "), "{:?}", String::from_utf8_lossy(&r));
    }
});
