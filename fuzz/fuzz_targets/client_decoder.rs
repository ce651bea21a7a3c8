//! Every line a server could send, through the client's line decoder and
//! every typed reply decoder: nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // One line as the client sees it, and each `\n`-separated piece too.
    spalloc::fuzzing::decode_server_line(data);
    for line in data.split(|&b| b == b'\n') {
        spalloc::fuzzing::decode_server_line(line);
    }
});
