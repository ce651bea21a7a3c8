//! The test harness example of `docs/guide.md`, as printed there (between
//! the markers), compiled and run.

// guide: begin
use std::time::Duration;

use spalloc::server::{Machine, ServerConfig, VirtualServer};
use spalloc::{Job, JobRequest, JobState};

#[test]
fn my_tool_gets_three_boards() -> Result<(), Box<dyn std::error::Error>> {
    // One machine of 2x2 triads; power changes take no time.
    let server =
        VirtualServer::start(ServerConfig::instant().machines(vec![Machine::new("m", 2, 2)]))?;
    let options = server.job_options().owner("tests@example.org");

    let mut job = Job::create(JobRequest::Boards(3), &options)?;
    job.wait_until_ready(Some(Duration::from_secs(10)))?;
    let hostname = job.hostname()?.expect("a ready job has a hostname");
    // ... run the code under test against `hostname` ...
    assert!(!hostname.is_empty());

    // A job nobody keeps alive expires once its keepalive has passed.
    let id = job.id();
    job.close()?; // stop keeping it alive, without destroying it
    server.advance(Duration::from_secs(120));
    let mut client = spalloc::ProtocolClient::connect(
        &server.local_addr().ip().to_string(),
        server.local_addr().port(),
        Some(Duration::from_secs(5)),
    )?;
    assert_eq!(client.get_job_state(id)?.state, JobState::Destroyed);
    Ok(())
}
// guide: end
