//! `RestClient` against the virtual v2 service: every endpoint, each way of
//! logging in, HTTPS with a private CA, sessions cached and renewed, and
//! the errors a user sees.

use std::time::Duration;

use spalloc::server::{Lockout, ServerConfig, V2Config, V2Tls};
use spalloc::v2::{IssueBoard, RestClient, V2Settings};
use spalloc::{
    Board, BoardPosition, Chip, Client, CreateJobOptions, Error, InvalidArgument, JobRequest,
    JobState, Protocol,
};

use super::{alice, server_options, start, start_with};

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(10));

fn connect(server: &spalloc::server::VirtualServer, settings: &V2Settings) -> RestClient {
    RestClient::connect(server.v2_url().expect("v2"), settings, TIMEOUT, None)
        .expect("connect to v2")
}

fn request() -> CreateJobOptions {
    let mut o = CreateJobOptions::new("");
    o.tags = Some(vec!["default".into()]);
    o
}

#[test]
fn every_endpoint_as_a_user() {
    let server = start();
    let mut c = connect(&server, &alice());
    assert_eq!(c.service().version, "7.4.1");
    assert!(c.service().jobs_ref.is_some());
    c.check_version().expect("a version this client speaks");
    assert_eq!(c.user(), Some("alice"));

    // Machines.
    let machines = c.machines().expect("machines");
    let names: Vec<&str> = machines.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["m", "small"]);
    let m = c.machine("m").expect("machine").expect("m exists");
    assert_eq!((m.width, m.height), (2, 2));
    assert_eq!(c.machine("nope").expect("asked"), None);

    // A job of three boards.
    let id = c
        .create_job(&JobRequest::Boards(3), &request())
        .expect("create");
    let info = c.job(id).expect("job").expect("known");
    assert_eq!(info.state, JobState::Ready);
    assert_eq!(info.owner.as_deref(), Some("alice"));
    assert_eq!(info.keepalive_interval(), Some(60.0));
    let alloc = c.job_machine(id).expect("machine").expect("allocated");
    assert_eq!((alloc.depth, alloc.boards.len()), (3, 3));
    assert_eq!(alloc.connections[0].chip, Chip { x: 0, y: 0 });
    assert_eq!(c.power(id).expect("power"), Some(true));
    c.keepalive(id).expect("keepalive");
    assert!(c.job_ids(false).expect("jobs").contains(&id));

    // Where-is, every form, on one of its boards.
    let b = alloc.boards[0];
    let by_xyz = c
        .logical_board("m", b.x, b.y, b.z)
        .expect("where")
        .expect("found");
    assert_eq!(by_xyz.job_id, Some(id));
    let (cab, frame, board) = by_xyz.physical;
    let by_pos = c
        .physical_board("m", cab, frame, board.expect("a board number"))
        .expect("where")
        .expect("found");
    assert_eq!(by_pos.logical, b);
    let ip = &alloc.connections[0].hostname;
    let by_ip = c.board_ip("m", ip).expect("where").expect("found");
    assert_eq!(by_ip.job_id, Some(id));
    let in_job = c.job_chip(id, 0, 0).expect("where").expect("found");
    assert_eq!(in_job.job_id, Some(id));
    assert_eq!(c.logical_board("m", 9, 9, 0).expect("where"), None);
    assert_eq!(c.logical_board("nope", 0, 0, 0).expect("where"), None);

    // Issue reports: a board of the job, and one that is not.
    let action = c
        .report_issue(
            id,
            "chip (1,1) is dead",
            &[("m".into(), IssueBoard::Logical(b))],
        )
        .expect("report");
    assert!(!action.is_empty());

    // Power off, and a destroy with a reason.
    assert!(c.set_power(id, false).expect("power off"));
    c.delete_job(id, Some("all done")).expect("destroy");
    let gone = c.job(id).expect("job").expect("still listed");
    assert_eq!(gone.state, JobState::Destroyed);
    assert_eq!(gone.reason.as_deref(), Some("all done"));
    assert!(gone.finish_time.is_some());
    assert!(!c.job_ids(false).expect("jobs").contains(&id));
    assert!(c.job_ids(true).expect("all jobs").contains(&id));
    // A destroyed job has no boards to power.
    assert!(!c.set_power(id, true).expect("asked"));
    assert_eq!(c.job(999_999).expect("asked"), None);
}

#[test]
fn every_create_form() {
    let server = start();
    let mut c = connect(&server, &alice());
    let mut on_m = request();
    on_m.tags = None;
    on_m.machine = Some("m".into());
    let forms = [
        JobRequest::AnyBoard,
        JobRequest::Boards(1),
        JobRequest::Triads {
            width: 1,
            height: 1,
        },
        JobRequest::Board(Board::new(1, 1, 2)),
        JobRequest::Physical(BoardPosition {
            cabinet: 0,
            frame: 0,
            board: 0,
        }),
        JobRequest::Address("10.2.0.1".parse().expect("ip")),
    ];
    for form in forms {
        let options = match form {
            JobRequest::Address(_) => {
                let mut o = request();
                o.tags = None;
                o.machine = Some("small".into());
                o
            }
            _ => on_m.clone(),
        };
        let id = c.create_job(&form, &options).expect("create");
        let alloc = c.job_machine(id).expect("machine").expect("allocated");
        match form {
            JobRequest::Triads { .. } => assert_eq!(alloc.boards.len(), 3, "{form:?}"),
            JobRequest::Board(b) => assert_eq!(alloc.boards, [b]),
            JobRequest::Address(_) => assert_eq!(alloc.machine_name, "small"),
            _ => assert_eq!(alloc.boards.len(), 1, "{form:?}"),
        }
        c.delete_job(id, None).expect("destroy");
    }
    // The service's refusals, in its words.
    let mut nowhere = request();
    nowhere.tags = Some(vec!["nowhere".into()]);
    let e = c.create_job(&JobRequest::AnyBoard, &nowhere).unwrap_err();
    assert!(
        matches!(&e, Error::Server(m) if m.contains("no machine available")),
        "{e:?}"
    );
    // v1-only options never reach the server.
    let mut torus = request();
    torus.require_torus = true;
    let e = c.create_job(&JobRequest::Boards(3), &torus).unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidArgument(InvalidArgument::NotOnProtocol {
                option: "require_torus",
                protocol: "v2"
            })
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "require_torus cannot be used with a v2 server (only the v1 protocol has it)"
    );
}

#[test]
fn bearer_tokens_and_https_with_a_private_ca() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("ca.pem");
    let server = start_with(
        ServerConfig::instant(),
        V2Config::default().tls(V2Tls::SelfSigned {
            ca_file: Some(ca.clone()),
        }),
    );
    let url = server.v2_url().expect("v2").to_owned();
    assert!(url.starts_with("https://"));
    // Trusting the CA, by token.
    let token = V2Settings::default().token("alice-token-0001").ca_file(&ca);
    let mut c = RestClient::connect(&url, &token, TIMEOUT, None).expect("connect");
    assert_eq!(c.user(), None);
    let id = c
        .create_job(&JobRequest::AnyBoard, &request())
        .expect("create");
    assert_eq!(
        c.job(id).expect("job").expect("known").owner.as_deref(),
        Some("alice")
    );
    // And by password.
    let mut p = RestClient::connect(&url, &alice().ca_file(&ca), TIMEOUT, None).expect("connect");
    p.keepalive(id).expect("keepalive");
    // Not trusting it: the handshake fails, naming the reason.
    let e = RestClient::connect(&url, &alice(), TIMEOUT, None).unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");
    assert!(e.is_transport());
    // A token the service does not know.
    let e = RestClient::connect(
        &url,
        &V2Settings::default().token("nope").ca_file(&ca),
        TIMEOUT,
        None,
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::Login(m) if m.contains("refused the bearer token")),
        "{e:?}"
    );
    // A CA file that is not one.
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a certificate").expect("write");
    let e = RestClient::connect(&url, &alice().ca_file(&bad), TIMEOUT, None).unwrap_err();
    assert!(
        matches!(&e, Error::Config { key: Some(k), .. } if k == "ca_file"),
        "{e:?}"
    );
}

#[test]
fn a_refused_password_is_never_sent_twice() {
    // The server locks an account at the second failure: a client that
    // retried would lock alice out, and her right password would fail.
    let server = start_with(
        ServerConfig::instant(),
        V2Config::default().lockout(Some(Lockout::new(2, Duration::from_secs(3600)))),
    );
    let wrong = V2Settings::default().login("alice", "not-her-password");
    let e = RestClient::connect(server.v2_url().expect("v2"), &wrong, TIMEOUT, None).unwrap_err();
    let Error::Login(message) = &e else {
        panic!("not a login error: {e:?}");
    };
    assert!(
        message.contains("refused the login for user alice"),
        "{message}"
    );
    assert!(message.contains("not tried again"), "{message}");
    assert!(!message.contains("not-her-password"), "{message}");
    // Every later attempt in this process fails without asking the server
    // (a Job's keepalive thread, a reconnection...).
    for _ in 0..3 {
        let again = Client::connect(&server_options(&server).v2(wrong.clone())).unwrap_err();
        assert!(matches!(again, Error::Login(_)), "{again:?}");
    }
    // So the account is not locked, and the right password works.
    let mut c = connect(&server, &alice());
    c.machines().expect("machines");
}

#[test]
fn sessions_are_cached_privately_and_renewed_once_expired() {
    let server = start();
    let cache = tempfile::tempdir().expect("temp dir");
    let dir = cache.path().join("spalloc");
    let with_cache = alice().session_cache(Some(dir.clone()));
    let mut c = connect(&server, &with_cache);
    let id = c
        .create_job(&JobRequest::AnyBoard, &request())
        .expect("create");
    // One private file, which holds no password.
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("cache dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).expect("read");
    assert!(!text.contains("alice-pw"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0])
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The session expires on the server (30 minutes idle); the next call
    // logs in again, once, and carries on, a state change included.
    server.advance(Duration::from_secs(31 * 60));
    c.keepalive(id).expect("keepalive after renewal");
    server.advance(Duration::from_secs(31 * 60));
    c.machines().expect("machines after renewal");
    server.advance(Duration::from_secs(31 * 60));
    c.delete_job(id, Some("bye"))
        .expect("destroy after renewal");
}

#[test]
fn no_password_over_plain_http_to_another_host() {
    let options = spalloc::ServerOptions::new()
        .hostname("http://spalloc.example.invalid/spalloc/")
        .v2(alice());
    assert_eq!(options.protocol(), Protocol::V2);
    let e = Client::connect(&options).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument(InvalidArgument::PlainHttp { host }) if host == "spalloc.example.invalid"),
        "{e:?}"
    );
    assert!(e.to_string().contains("--allow-plain-http"), "{e}");
    // Allowed explicitly, it goes as far as looking the host up.
    let e = Client::connect(&options.clone().v2(alice().allow_plain_http(true))).unwrap_err();
    assert!(e.is_transport(), "{e:?}");
    // Nothing shows the password, in the settings or in the URL.
    assert!(!format!("{options:?}").contains("alice-pw"));
    let in_url =
        spalloc::ServerOptions::new().hostname("https://alice:alice-pw@h.example/spalloc/");
    assert!(!format!("{in_url:?}").contains("alice-pw"));
    assert_eq!(in_url.describe(), "https://h.example/spalloc/");
    assert!(!e.to_string().contains("alice-pw"));
}

#[test]
fn the_protocol_follows_the_server_name() {
    let server = start();
    let v1 = spalloc::ServerOptions::new()
        .hostname(format!(
            "spalloc://127.0.0.1:{}",
            server.local_addr().port()
        ))
        .timeout(TIMEOUT);
    assert_eq!(v1.protocol(), Protocol::V1);
    assert_eq!(
        v1.describe(),
        format!("127.0.0.1:{}", server.local_addr().port())
    );
    let mut c = Client::connect(&v1).expect("v1 connect");
    assert_eq!(c.protocol(), Protocol::V1);
    let v1_machines = c.list_machines().expect("machines");
    let mut c = Client::connect(&server_options(&server)).expect("v2 connect");
    assert_eq!(c.protocol(), Protocol::V2);
    assert_eq!(c.list_machines().expect("machines"), v1_machines);
    let bad = spalloc::ServerOptions::new().hostname("https://");
    assert!(matches!(
        bad.validate(),
        Err(InvalidArgument::ServiceUrl(_))
    ));
}

/// The listing calls pipeline their requests (a long list shared over two
/// connections), answer in the order asked, show a job the user may not
/// see (or that does not exist) as `None`, and log in again, once, when the
/// session has expired.
#[test]
fn listings_answer_in_order_whatever_the_mix() {
    let server = start();
    let mut c = connect(&server, &alice());
    let mut bob = connect(&server, &V2Settings::default().login("bob", "bob-pw"));
    let mut mine = Vec::new();
    for _ in 0..4 {
        mine.push(
            c.create_job(&JobRequest::Boards(1), &request())
                .expect("create"),
        );
    }
    let bobs = bob
        .create_job(&JobRequest::Boards(1), &request())
        .expect("bob's");
    mine.push(
        c.create_job(&JobRequest::Boards(3), &request())
            .expect("create"),
    );
    // 300 ids: alice's jobs, bob's, and ids never used.
    let ids: Vec<u64> = (1..=300).collect();
    assert!(mine.iter().chain([&bobs]).all(|id| ids.contains(id)));
    let got = c.jobs(&ids).expect("jobs");
    assert_eq!(got.len(), ids.len());
    for (id, info) in ids.iter().zip(&got) {
        match info {
            Some(info) => {
                assert!(mine.contains(id), "job {id} shown");
                assert_eq!((info.id, info.state), (*id, JobState::Ready));
            }
            None => assert!(!mine.contains(id), "job {id} not shown"),
        }
    }
    // Boards and power, the same jobs asked for twice over, in order.
    let asked: Vec<u64> = mine.iter().chain(&mine).copied().collect();
    let allocations = c.job_machines(&asked).expect("machines");
    let sizes: Vec<usize> = allocations
        .iter()
        .map(|a| a.as_ref().expect("allocated").boards.len())
        .collect();
    assert_eq!(sizes, [1, 1, 1, 1, 3, 1, 1, 1, 1, 3]);
    assert_eq!(c.powers(&asked).expect("powers"), vec![Some(true); 10]);
    assert!(c.jobs(&[]).expect("nothing asked").is_empty());
    // Bob's job is his: asked for by alice, it is refused.
    assert!(c.powers(&[bobs]).is_err());
    // The session expires (the jobs, with it): the listing logs in again
    // and carries on.
    server.advance(Duration::from_secs(31 * 60));
    let after = c.jobs(&ids).expect("jobs after renewal");
    assert_eq!(after.iter().flatten().count(), mine.len());
    assert!(
        after
            .iter()
            .flatten()
            .all(|j| j.state == JobState::Destroyed)
    );
    assert_eq!(c.job_machines(&mine).expect("machines"), vec![None; 5]);
}

/// An interruption that cuts a pipelined listing short leaves no answer
/// behind on the connection for the next request to take as its own.
#[test]
fn an_interrupted_listing_leaves_nothing_behind() {
    let server = start();
    let interrupt = spalloc::InterruptHandle::new();
    let mut c = RestClient::connect(
        server.v2_url().expect("v2"),
        &alice(),
        TIMEOUT,
        Some(&interrupt),
    )
    .expect("connect to v2");
    let ready = c
        .create_job(&JobRequest::Boards(1), &request())
        .expect("create");
    let gone = c
        .create_job(&JobRequest::Boards(1), &request())
        .expect("create");
    c.delete_job(gone, None).expect("destroy");
    assert_eq!(
        c.job(ready).expect("job").expect("known").state,
        JobState::Ready
    );
    interrupt.interrupt();
    let cut = c.jobs(&[gone; 20]);
    assert!(matches!(cut, Err(Error::Interrupted)), "{cut:?}");
    // The next request gets its own answer, not one of the listing's.
    let info = c.job(ready).expect("job").expect("known");
    assert_eq!((info.id, info.state), (ready, JobState::Ready));
}

/// Reading a job's boards or power is a keepalive on the Java service, so
/// a watch that listed them on every look would keep every job it shows
/// alive. A watched job that nobody else touches is read once: it still
/// expires on time, while a power change made meanwhile still shows.
#[test]
fn a_watch_does_not_keep_the_jobs_it_shows_alive() {
    let server = start();
    let mut other = connect(&server, &alice());
    let mut short = request();
    short.keepalive = Some(spalloc::Number::Int(30));
    let left = other
        .create_job(&JobRequest::Boards(1), &short)
        .expect("create");
    let powered = other
        .create_job(&JobRequest::Boards(1), &request())
        .expect("create");
    let mut c = Client::connect(&server_options(&server)).expect("connect");
    c.watch(&spalloc::Watch::Jobs).expect("watch");
    let power_of = |c: &mut Client, id: u64| {
        let listing = c.job_list(false).expect("list");
        listing
            .jobs
            .iter()
            .find(|j| j.job_id == id)
            .map(|j| (j.state, j.power, j.boards.len()))
    };
    assert_eq!(
        power_of(&mut c, left),
        Some((JobState::Ready, Some(true), 1))
    );
    // Someone powers the other job off between two looks (a second or
    // more later, as the service keeps times in whole seconds): it shows.
    server.advance(Duration::from_secs(1));
    other.set_power(powered, false).expect("power off");
    assert_eq!(
        power_of(&mut c, powered),
        Some((JobState::Ready, Some(false), 1))
    );
    // Looking every 10 s for 40 s does not keep the 30 s job alive (the
    // other job is kept alive by its owner).
    for _ in 0..4 {
        server.advance(Duration::from_secs(10));
        other.keepalive(powered).expect("keepalive");
        let _ = c.job_list(false).expect("list");
    }
    assert_eq!(
        other.job(left).expect("job").expect("known").state,
        JobState::Destroyed
    );
    assert_eq!(power_of(&mut c, left), None);
    assert_eq!(
        power_of(&mut c, powered),
        Some((JobState::Ready, Some(false), 1))
    );
}
