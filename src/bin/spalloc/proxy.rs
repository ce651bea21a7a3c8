//! `spalloc proxy`: a v2 job's boards reached from outside the firewall.
//! Each board's Ethernet chip gets a UDP port on 127.0.0.1 whose datagrams
//! go through the service's proxy websocket to the board's SCP port
//! (17893), and the replies come back to whoever sent last; one more port
//! relays to the boot port (54321) of chip (0, 0). It runs until Ctrl-C
//! (SIGTERM, SIGHUP), the job ends, or the proxy fails for good.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use serde_json::json;
use spalloc::v2::proxy::{BOOT_PORT, SCP_PORT};
use spalloc::v2::{Channel, ProxyClient};
use spalloc::{Client, Error, InterruptHandle, JobState, Protocol};

use crate::args::{ProxyArgs, Server};
use crate::exit::{CliError, CliResult, code};
use crate::render::visible;
use crate::signals::{Event, Signals};
use crate::{Ctx, print, settings};

/// The largest datagram relayed (the proxy's own bound is smaller).
const MAX_DATAGRAM: usize = 2048;

/// Why the tunnel stopped.
enum Stop {
    Signal,
    JobEnded(String),
    ProxyEnded(String),
}

/// One tunnel: the board (or `None` for the boot relay), the local
/// address.
pub struct Tunnel {
    pub chip: (u32, u32),
    pub board: String,
    pub local: SocketAddr,
    pub boot: bool,
}

/// Runs `spalloc proxy`.
pub fn run(args: ProxyArgs, _ctx: &Ctx) -> CliResult {
    let config = settings::load_config()?;
    let server = settings::server(&args.server_flags(), &config)?;
    if server.protocol() != Protocol::V2 {
        return Err(CliError::Usage(
            "spalloc proxy needs a v2 service (an http(s):// URL as --hostname): a v1 \
             server has no proxy"
                .into(),
        ));
    }
    let owner = settings::owner(args.owner.as_deref(), &config).or_else(|| server.v2.user.clone());
    if args.job_id.is_none() && owner.is_none() {
        return Err(CliError::Usage("job ID (or --owner) not specified".into()));
    }
    let handle = InterruptHandle::new();
    let signals = Signals::catch_all(handle.clone())
        .map_err(|e| CliError::exit(code::FAILED, format!("cannot catch signals: {e}")))?;
    let fail = |e: Error| match e {
        Error::Interrupted => CliError::silent(code::OK),
        e => CliError::server(&server, e),
    };
    let mut client = Client::connect_interruptible(&server, &handle).map_err(fail)?;
    let id = match args.job_id {
        Some(id) => id,
        None => crate::job::find_job(&mut client, &fail, owner.as_deref().unwrap_or_default())?,
    };
    let (proxy, tunnels, relays) = open(&mut client, id).map_err(|e| match e {
        Error::Server(m) if m.contains("no boards") => CliError::exit(code::STATE, visible(&m)),
        e => fail(e),
    })?;
    if args.json {
        print(&json_of(id, &tunnels))?;
    } else {
        print(&table(id, &tunnels))?;
    }

    let (tx, rx) = mpsc::channel();
    start_relays(relays, &tx);
    let proxy = Arc::new(proxy);
    watch_proxy(&proxy, &tx);
    watch_job(client, id, &tx);
    watch_signals(signals, &tx);
    let stop = rx.recv().unwrap_or(Stop::Signal);
    handle.interrupt();
    match stop {
        Stop::Signal => Ok(ExitCode::SUCCESS),
        Stop::JobEnded(why) => Err(CliError::exit(
            code::STATE,
            format!("Job {id} {why}; the proxy has stopped"),
        )),
        Stop::ProxyEnded(why) => Err(CliError::exit(
            code::FAILED,
            format!("The proxy of job {id} has stopped: {}", visible(&why)),
        )),
    }
}

/// Tunnels opened for `spalloc alloc --proxy`: they relay until dropped
/// (and the process ends).
pub struct Tunnels {
    _proxy: Arc<ProxyClient>,
    /// One per board, then the boot relay.
    pub tunnels: Vec<Tunnel>,
}

impl Tunnels {
    /// Opens the tunnels of job `id` over a new connection to `server`.
    pub fn open(server: &spalloc::ServerOptions, id: u64) -> Result<Tunnels, Error> {
        let mut client = Client::connect(server)?;
        let (proxy, tunnels, relays) = open(&mut client, id)?;
        // alloc watches the job itself; the relays end with the process.
        let (tx, _) = mpsc::channel();
        start_relays(relays, &tx);
        Ok(Tunnels {
            _proxy: Arc::new(proxy),
            tunnels,
        })
    }

    /// `info` with each board's address replaced by its tunnel's local
    /// address (`127.0.0.1:PORT`).
    pub fn localise(&self, info: &spalloc::JobMachineInfo) -> spalloc::JobMachineInfo {
        let mut local = info.clone();
        for c in &mut local.connections {
            if let Some(t) = self
                .tunnels
                .iter()
                .find(|t| !t.boot && t.chip == (c.chip.x, c.chip.y))
            {
                c.hostname = t.local.to_string();
            }
        }
        local
    }
}

/// Binds the local ports and opens a channel for each.
#[allow(clippy::type_complexity)]
fn open(
    client: &mut Client,
    id: u64,
) -> Result<(ProxyClient, Vec<Tunnel>, Vec<(UdpSocket, Channel)>), Error> {
    let Some(rest) = client.as_v2() else {
        return Err(Error::Server("not a v2 service".into()));
    };
    let proxy = rest.proxy(id)?;
    let Some(alloc) = rest.job_machine(id)? else {
        return Err(Error::Server(format!("job {id} has no boards to proxy to")));
    };
    let mut tunnels = Vec::new();
    let mut relays = Vec::new();
    let mut ports: Vec<(u32, u32, String, u16, bool)> = alloc
        .connections
        .iter()
        .map(|c| (c.chip.x, c.chip.y, c.hostname.clone(), SCP_PORT, false))
        .collect();
    if let Some(root) = alloc
        .connections
        .iter()
        .find(|c| (c.chip.x, c.chip.y) == (0, 0))
    {
        ports.push((0, 0, root.hostname.clone(), BOOT_PORT, true));
    }
    for (x, y, board, port, boot) in ports {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let local = socket.local_addr()?;
        let channel = proxy.open(x, y, port)?;
        tunnels.push(Tunnel {
            chip: (x, y),
            board,
            local,
            boot,
        });
        relays.push((socket, channel));
    }
    Ok((proxy, tunnels, relays))
}

fn table(id: u64, tunnels: &[Tunnel]) -> String {
    let mut out = format!("Job {id}: boards reachable through the proxy\n");
    out.push_str(&format!(
        "{:<8} {:<16} {:<6} {}\n",
        "Chip", "Board", "Port", "Local address"
    ));
    for t in tunnels {
        let chip = format!("{},{}", t.chip.0, t.chip.1);
        let port = if t.boot { BOOT_PORT } else { SCP_PORT };
        out.push_str(&format!(
            "{:<8} {:<16} {:<6} {}\n",
            chip,
            visible(&t.board),
            port,
            t.local
        ));
    }
    out.push_str("Press Ctrl-C to stop.\n");
    out
}

fn json_of(id: u64, tunnels: &[Tunnel]) -> String {
    let boards: Vec<_> = tunnels
        .iter()
        .filter(|t| !t.boot)
        .map(|t| {
            json!({
                "chip": [t.chip.0, t.chip.1],
                "hostname": t.board,
                "local": t.local.to_string(),
            })
        })
        .collect();
    let boot = tunnels.iter().find(|t| t.boot).map(|t| t.local.to_string());
    // A whole line, so that a program reading it line by line gets it.
    format!(
        "{}\n",
        json!({"job_id": id, "boards": boards, "boot": boot})
    )
}

/// Two threads per tunnel: local datagrams to the board, and the board's
/// to whoever sent last.
fn start_relays(relays: Vec<(UdpSocket, Channel)>, stop: &Sender<Stop>) {
    for (socket, channel) in relays {
        let Ok(back) = socket.try_clone() else {
            continue;
        };
        let channel = Arc::new(channel);
        let peer: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let (ch, last) = (Arc::clone(&channel), Arc::clone(&peer));
        let tx = stop.clone();
        let _ = thread::Builder::new()
            .name("proxy-up".into())
            .spawn(move || {
                let mut buf = vec![0u8; MAX_DATAGRAM];
                loop {
                    let (n, from) = match socket.recv_from(&mut buf) {
                        Ok(got) => got,
                        Err(e) => {
                            let _ = tx.send(Stop::ProxyEnded(format!("a local port failed: {e}")));
                            return;
                        }
                    };
                    *last.lock().unwrap_or_else(PoisonError::into_inner) = Some(from);
                    match ch.send(&buf[..n]) {
                        Ok(()) => {}
                        Err(Error::InvalidArgument(e)) => log::warn!("dropped a datagram: {e}"),
                        Err(_) => return,
                    }
                }
            });
        let _ = thread::Builder::new()
            .name("proxy-down".into())
            .spawn(move || {
                while let Ok(got) = channel.recv(None) {
                    let Some(d) = got else { continue };
                    let to = *peer.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(to) = to
                        && let Err(e) = back.send_to(&d, to)
                    {
                        log::debug!("relaying to {to}: {e}");
                    }
                }
            });
    }
}

fn watch_proxy(proxy: &Arc<ProxyClient>, stop: &Sender<Stop>) {
    let (proxy, tx) = (Arc::clone(proxy), stop.clone());
    let _ = thread::Builder::new()
        .name("proxy-watch".into())
        .spawn(move || {
            if let Some(why) = proxy.wait_ended(None) {
                let _ = tx.send(Stop::ProxyEnded(why));
            }
        });
}

/// Long-polls the job until it is destroyed.
fn watch_job(mut client: Client, id: u64, stop: &Sender<Stop>) {
    let tx = stop.clone();
    let _ = thread::Builder::new()
        .name("proxy-job".into())
        .spawn(move || {
            let Some(rest) = client.as_v2() else { return };
            // Its state now, then at every change (`Ok(None)` from the
            // wait only means that its limit, none, ran out).
            let mut next = rest.job(id).map(|j| j.ok_or(()));
            loop {
                match next {
                    Ok(Ok(job)) if job.state == JobState::Destroyed => {
                        let why = match job.reason.as_deref().filter(|r| !r.is_empty()) {
                            Some(r) => format!("was destroyed: {}", visible(r)),
                            None => "was destroyed".into(),
                        };
                        let _ = tx.send(Stop::JobEnded(why));
                        return;
                    }
                    Ok(_) => {}
                    Err(Error::Interrupted) => return,
                    Err(e) => {
                        let _ = tx.send(Stop::ProxyEnded(format!("watching the job: {e}")));
                        return;
                    }
                }
                next = rest.wait_for_job(id, None).map(|j| j.ok_or(()));
            }
        });
}

fn watch_signals(signals: Signals, stop: &Sender<Stop>) {
    let tx = stop.clone();
    let _ = thread::Builder::new()
        .name("proxy-signals".into())
        .spawn(move || {
            while let Some(event) = signals.next(None) {
                if let Event::Signal(_) = event {
                    let _ = tx.send(Stop::Signal);
                    return;
                }
            }
        });
}
