//! A long-running holder: keeps a job's boards for as long as it runs,
//! riding out lost connections and server restarts, and releases them
//! however it ends.
//!
//! ```text
//! cargo run --example hold -- [BOARDS]        # a new job of BOARDS boards (default 1)
//! cargo run --example hold -- --resume JOB    # take over an existing job
//! ```
//!
//! The server and the owner come from the usual configuration files (see
//! `spalloc config`). Once the boards are ready their host name is printed;
//! the job is then held until input ends (Ctrl-D), or until the server
//! destroys it, and is destroyed on the way out. A background thread keeps
//! the job alive all the while, on its own connection.

use std::io::Read;
use std::thread;

use spalloc::{ConnectionEvent, Error, InterruptHandle, Job, JobOptions, JobRequest, JobState};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // End of input cuts short whatever the job is waiting for.
    let stop = InterruptHandle::new();
    let options = JobOptions::load()?.interrupt(stop.clone());
    thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        stop.interrupt();
    });

    let created = match args.as_slice() {
        [flag, id] if flag == "--resume" => Job::resume(id.parse()?, &options),
        [boards] => Job::create(JobRequest::Boards(boards.parse()?), &options),
        _ => Job::create(JobRequest::AnyBoard, &options),
    };
    let mut job = match created {
        Ok(job) => job,
        // Input ended before the job was made: nothing to release.
        Err(Error::Interrupted) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let id = job.id();
    job.on_connection_change(move |event| match event {
        ConnectionEvent::Lost(e) => eprintln!("job {id}: lost the server ({e}); reconnecting"),
        ConnectionEvent::Restored => eprintln!("job {id}: the server is back"),
        _ => {}
    });

    match hold(&mut job) {
        // Input ended: release the boards.
        Err(Error::Interrupted) => {}
        other => other?,
    }
    // Dropping the job would do this too; this way a failure is reported.
    job.destroy(Some("released by the holder"))?;
    eprintln!("job {id}: released");
    Ok(())
}

/// Waits until the job is ready, prints where it is, then holds it until
/// the server ends it (`Ok`) or the wait is interrupted.
fn hold(job: &mut Job) -> Result<(), Error> {
    let id = job.id();
    job.wait_until_ready(None)?;
    let hostname = job.hostname()?.unwrap_or_default();
    println!("job {id}: ready; boot {hostname}");
    let mut state = JobState::Ready;
    loop {
        let info = job.wait_for_state_change(state, None)?;
        state = info.state;
        match state {
            JobState::Destroyed | JobState::Unknown => {
                let reason = info.reason.unwrap_or_else(|| "no reason given".into());
                eprintln!("job {id}: ended by the server: {reason}");
                return Ok(());
            }
            other => eprintln!("job {id}: now {other}"),
        }
    }
}
