//! Request lines through the virtual server's command handling, against a
//! fresh in-memory server: nothing may panic, and every line gets exactly
//! one reply line.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let replies = spalloc::server::fuzz_requests(data);
    assert_eq!(replies.len(), data.split(|&b| b == b'\n').count());
    for r in &replies {
        assert!(r.ends_with('\n') && r.matches('\n').count() == 1, "{r}");
    }
});
