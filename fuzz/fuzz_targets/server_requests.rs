//! Request lines through the virtual server's command handling, in both
//! dialects, against a fresh in-memory server: nothing may panic, and every
//! line gets exactly one reply line, or silence where the real server would
//! skip it or hang up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spalloc::server::Dialect;

fuzz_target!(|data: &[u8]| {
    for (dialect, ending) in [(Dialect::Python, "\n"), (Dialect::Java, "\r\n")] {
        let replies = spalloc::server::fuzz_requests(dialect, data);
        assert!(replies.len() <= data.split(|&b| b == b'\n').count());
        for r in replies.iter().flatten() {
            assert!(r.ends_with(ending) && r.matches('\n').count() == 1, "{r}");
        }
    }
});
