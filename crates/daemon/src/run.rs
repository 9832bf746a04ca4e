//! Daemon mode: configuration → keys → backend → bound listeners → serve.
//!
//! Order matters: everything that can be refused (configuration, keys,
//! binding) happens before the process detaches, so errors reach the
//! terminal or the journal. SIGTERM and SIGINT stop gracefully (listeners
//! close, in-flight requests get up to 30 s); SIGHUP re-reads the
//! configuration and keys and swaps listeners and backend, keeping the
//! duplicate history and replay guard, without dropping requests in flight.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use vmfence_backend::guests::{ChannelKind, LibvirtGuests};
use vmfence_backend::libvirt::LibvirtHypervisor;
use vmfence_backend::Hypervisor;
use vmfence_config::{
    BackendSettings, Config, Family, ListenAddress, ListenerSettings, LoadedKey, SerialMode,
};
use vmfence_server::serial::SerialSpec;
use vmfence_server::server::{bind_all, serve, Bound, ListenerSpec};
use vmfence_server::vsock::CidMap;
use vmfence_server::{Core, Dispatcher, Group, ListenerAuth, Permissions, Timeouts};

use crate::cli::{load_validated, Options};
use crate::logging;

/// Default pid file, as the classic daemon.
pub const DEFAULT_PID_FILE: &str = "/var/run/fence_virtd.pid";
/// Requests handled at once, at most.
const MAX_IN_FLIGHT: usize = 64;
/// Threads for hypervisor calls (requests for different VMs in parallel).
const BLOCKING_THREADS: usize = 16;
/// How long a stop waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(30);
/// How often the serial listener looks for guests started or stopped.
const SERIAL_RESCAN: Duration = Duration::from_secs(2);
/// Retry period of `-w` (wait for the backend).
const INIT_RETRY: Duration = Duration::from_secs(5);

/// What a configuration asks the runtime to do.
struct Plan {
    specs: Vec<ListenerSpec>,
    uris: Vec<String>,
    groups: Vec<Group>,
}

impl Plan {
    fn new(config: &Config, keys: &BTreeMap<PathBuf, LoadedKey>) -> anyhow::Result<Plan> {
        let uris = match &config.backend {
            BackendSettings::Libvirt(l) if l.uris.is_empty() => vec!["qemu:///system".to_string()],
            BackendSettings::Libvirt(l) => l.uris.clone(),
            BackendSettings::Cpg(c) => bail!("{}: the cpg backend is not available in this build yet", c.at),
        };
        let mut specs = Vec::new();
        for l in &config.listeners {
            let auth = |name: &str, a: &vmfence_config::AuthSettings| ListenerAuth {
                name: name.to_string(),
                key: if a.needs_key() {
                    keys.get(&a.key_file.path).map(|k| k.key.clone())
                } else {
                    None
                },
                min_hash: a.hash,
                auth: a.auth,
            };
            match l {
                ListenerSettings::Multicast(m) => specs.push(ListenerSpec::Multicast {
                    auth: auth("multicast", &m.auth),
                    group: m.address,
                    port: m.port,
                    interface: m.interface.clone(),
                }),
                ListenerSettings::Tcp(t) => specs.push(ListenerSpec::Tcp {
                    auth: auth("tcp", &t.auth),
                    host: match &t.address {
                        ListenAddress::Ip(ip) => ip.to_string(),
                        ListenAddress::Host(h) => h.clone(),
                    },
                    ipv6: t.family == Family::Ipv6,
                    port: t.port,
                }),
                ListenerSettings::Vsock(v) => specs.push(ListenerSpec::Vsock {
                    auth: auth("vsock", &v.auth),
                    port: v.port,
                    cids: Arc::new(CidMap::new(Arc::new(LibvirtGuests::many(&uris)))),
                }),
                ListenerSettings::Serial(s) => {
                    // Without its own `uri`, the serial listener watches
                    // the backend's hypervisors.
                    let directory = match &s.uri {
                        Some(uri) => LibvirtGuests::new(uri),
                        None => LibvirtGuests::many(&uris),
                    };
                    specs.push(ListenerSpec::Serial(Arc::new(SerialSpec {
                        name: "serial".into(),
                        directory: Arc::new(directory),
                        kind: match s.mode {
                            SerialMode::Serial => ChannelKind::Serial,
                            SerialMode::Vmchannel => ChannelKind::Channel,
                        },
                        path: s.path.clone(),
                        unrestricted: s.unrestricted,
                        rescan: SERIAL_RESCAN,
                    })));
                }
            }
        }
        let groups = config
            .groups
            .iter()
            .map(|g| Group {
                name: g.label.clone(),
                ips: g.ips.clone(),
                uuids: g.uuids.clone(),
            })
            .collect();
        Ok(Plan { specs, uris, groups })
    }
}

/// Run the daemon until it is told to stop.
pub(crate) fn daemon(options: &Options, err: &mut dyn Write) -> anyhow::Result<()> {
    let (config, keys) = load_validated(options, err)?;
    let plan = Plan::new(&config, &keys)?;
    let foreground = options.foreground || config.daemon.foreground;
    let wait_for_init = options.wait_for_init || config.daemon.wait_for_init;
    let debug = options.debug.unwrap_or(config.daemon.debug);
    let bound = bind_all(&plan.specs).context("cannot listen")?;
    if !foreground {
        logging::detach().context("cannot detach from the terminal")?;
    }
    logging::init(debug, foreground);
    let pid_path = options
        .pid_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PID_FILE));
    let _pid = PidFile::create(&pid_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fence_virtd")
        // Hypervisor calls run on blocking threads; each thread costs a
        // stack and a malloc arena, and more than this many at once only
        // queue inside libvirtd anyway.
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
        .context("cannot start the runtime")?;
    let result = runtime.block_on(main_loop(options.clone(), plan, bound, wait_for_init));
    if let Err(e) = &result {
        tracing::error!("{e:#}");
    }
    result
}

/// Open the libvirt backend. With `wait` (`-w`), keep trying every
/// [`INIT_RETRY`] until it opens or `stop` fires (`None`); `waited` is set
/// when at least one attempt failed.
async fn open_backend(
    uris: &[String],
    wait: bool,
    stop: &CancellationToken,
    waited: &mut bool,
) -> anyhow::Result<Option<Arc<dyn Hypervisor>>> {
    loop {
        let u = uris.to_vec();
        let opened = tokio::task::spawn_blocking(move || LibvirtHypervisor::open(&u)).await?;
        match opened {
            Ok((h, problems)) => {
                for p in problems {
                    tracing::warn!("libvirt: skipping {p}");
                }
                return Ok(Some(Arc::new(h)));
            }
            Err(e) if wait => {
                *waited = true;
                tracing::warn!(
                    "backend libvirt failed to initialise ({e}); retrying in {}s",
                    INIT_RETRY.as_secs()
                );
                tokio::select! {
                    _ = stop.cancelled() => return Ok(None),
                    _ = tokio::time::sleep(INIT_RETRY) => {}
                }
            }
            Err(e) => bail!("backend libvirt failed to initialise: {e}"),
        }
    }
}

async fn main_loop(options: Options, plan: Plan, bound: Vec<Bound>, wait: bool) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            stop.cancel();
        });
    }
    tracing::info!(
        listeners = %plan.specs.iter().map(ListenerSpec::describe).collect::<Vec<_>>().join(", "),
        backend = %format!("libvirt {}", plan.uris.join(" ")),
        "fence_virtd starting"
    );
    let mut waited = false;
    let Some(backend) = open_backend(&plan.uris, wait, &stop, &mut waited).await? else {
        return Ok(());
    };
    if waited {
        drop_stale_requests(&bound);
    }
    if plan.groups.is_empty() {
        tracing::warn!("no groups configured: every requester that holds the key may fence every VM");
    }
    let mut core = Arc::new(Core::new(
        Dispatcher::new(Arc::clone(&backend), Permissions::new(plan.groups.clone())),
        MAX_IN_FLIGHT,
        Timeouts::default(),
    ));
    let mut current = plan;
    let mut listeners = CancellationToken::new();
    let mut task = spawn_serve(Arc::clone(&core), bound, listeners.clone());
    notify(&[sd_notify::NotifyState::Ready]);
    tracing::info!("ready");
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = hup.recv() => {
                notify(&[sd_notify::NotifyState::Reloading]);
                match reload(&options, &current, &core, &backend).await {
                    Ok((plan, new_core, bound_fn)) => {
                        listeners.cancel();
                        let _ = (&mut task).await;
                        match bound_fn() {
                            Ok(bound) => {
                                core = new_core;
                                current = plan;
                                tracing::info!("configuration reloaded");
                                listeners = CancellationToken::new();
                                task = spawn_serve(Arc::clone(&core), bound, listeners.clone());
                            }
                            Err(e) => {
                                tracing::error!("reload: cannot listen ({e}); keeping the previous configuration");
                                let again = bind_all(&current.specs).context("cannot listen again after a failed reload")?;
                                listeners = CancellationToken::new();
                                task = spawn_serve(Arc::clone(&core), again, listeners.clone());
                            }
                        }
                    }
                    Err(e) => tracing::error!("reload refused, keeping the running configuration: {e:#}"),
                }
                notify(&[sd_notify::NotifyState::Ready]);
            }
        }
    }
    notify(&[sd_notify::NotifyState::Stopping]);
    tracing::info!("fence_virtd shutting down");
    listeners.cancel();
    let _ = task.await;
    let left = core.drain(DRAIN).await;
    if left > 0 {
        tracing::warn!(left, "stopping with requests still in flight");
    }
    Ok(())
}

type Rebind = Box<dyn FnOnce() -> std::io::Result<Vec<Bound>> + Send>;

/// Validate a new configuration and prepare everything but the sockets
/// (which can only be bound once the old ones are closed).
async fn reload(
    options: &Options,
    current: &Plan,
    core: &Arc<Core>,
    backend: &Arc<dyn Hypervisor>,
) -> anyhow::Result<(Plan, Arc<Core>, Rebind)> {
    let mut messages = Vec::new();
    let loaded = load_validated(options, &mut messages);
    for line in String::from_utf8_lossy(&messages).lines() {
        tracing::warn!("{line}");
    }
    let (config, keys) = loaded?;
    let plan = Plan::new(&config, &keys)?;
    let backend = if plan.uris == current.uris {
        Arc::clone(backend)
    } else {
        let stop = CancellationToken::new();
        open_backend(&plan.uris, false, &stop, &mut false)
            .await?
            .context("backend")?
    };
    let new_core =
        Arc::new(core.reconfigured(Dispatcher::new(backend, Permissions::new(plan.groups.clone()))));
    let specs = plan.specs.clone();
    Ok((plan, new_core, Box::new(move || bind_all(&specs))))
}

/// Discard the multicast requests that queued up on the bound sockets while
/// `-w` waited for the backend. Their senders have given up by now (an
/// agent waits for its answer only so long), and a power action carried out
/// long after it was asked for is worse than none; the classic daemon,
/// which binds only once its backend is up, never sees them either. TCP
/// needs nothing: a queued connection whose agent has left fails its
/// challenge.
fn drop_stale_requests(bound: &[Bound]) {
    /// Enough for any backlog a socket buffer holds.
    const MAX: usize = 100_000;
    let mut buf = [0u8; 2048];
    for b in bound {
        let Bound::Multicast(auth, sock, what) = b else {
            continue;
        };
        if let Err(e) = sock.set_nonblocking(true) {
            tracing::warn!(listener = %auth.name, "cannot drop stale requests: {e}");
            continue;
        }
        let mut dropped = 0usize;
        while dropped < MAX && sock.recv_from(&mut buf).is_ok() {
            dropped += 1;
        }
        if dropped > 0 {
            tracing::warn!(
                listener = %auth.name,
                dropped,
                "dropped requests that arrived on {what} while waiting for the backend"
            );
        }
    }
}

/// Serve listeners in a task; a failure is logged, never lost.
fn spawn_serve(core: Arc<Core>, bound: Vec<Bound>, token: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = serve(core, bound, token).await {
            tracing::error!("listeners stopped: {e}");
        }
    })
}

fn notify(state: &[sd_notify::NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        if let Err(e) = sd_notify::notify(false, state) {
            tracing::warn!("sd_notify failed: {e}");
        }
    }
}

/// The pid file: refused when it names another live fence_virtd, removed
/// when dropped (every exit path of [`daemon`]).
struct PidFile(PathBuf);

impl PidFile {
    fn create(path: &Path) -> anyhow::Result<PidFile> {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse::<u32>() {
                if pid != std::process::id() && is_live_fence_virtd(pid) {
                    bail!(
                        "fence_virtd is already running with pid {pid} (pid file {})",
                        path.display()
                    );
                }
            }
        }
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot write pid file {}", path.display()))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Whether `pid` is a running process named `fence_virtd`. A zombie (an
/// exited daemon its parent has not reaped yet) still has its name in
/// `/proc/PID/comm` but runs no more: it does not count.
fn is_live_fence_virtd(pid: u32) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    comm.trim() == "fence_virtd" && !matches!(process_state(pid), None | Some('Z' | 'X' | 'x'))
}

/// The state letter of `/proc/PID/stat` (`R`, `S`, `Z`, ...), `None` when
/// there is no such process. The name field may hold spaces and
/// parentheses: the state is the first word after the last `)`.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[cfg(test)]
mod tests {
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use super::*;

    /// Start `program args` under the name `fence_virtd` (a symlink: the
    /// kernel names a process after the path it was started from).
    fn as_fence_virtd(dir: &Path, program: &str, args: &[&str]) -> Child {
        let link = dir.join("fence_virtd");
        std::os::unix::fs::symlink(program, &link).unwrap();
        Command::new(&link)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn state_letter_of_this_process() {
        // The main thread: running, or waiting for the test threads.
        let state = process_state(std::process::id());
        assert!(matches!(state, Some('R' | 'S')), "{state:?}");
        assert_eq!(process_state(u32::MAX), None);
    }

    #[test]
    fn pid_file_of_a_live_fence_virtd_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = as_fence_virtd(dir.path(), "/bin/sleep", &["30"]);
        let pid = child.id();
        wait_for("the child to be named fence_virtd", || is_live_fence_virtd(pid));
        let path = dir.path().join("fence_virtd.pid");
        std::fs::write(&path, format!("{pid}\n")).unwrap();
        let refused = PidFile::create(&path).err().map(|e| e.to_string());
        child.kill().unwrap();
        child.wait().unwrap();
        let refused = refused.expect("a live fence_virtd's pid file was taken over");
        assert!(
            refused.contains(&format!("already running with pid {pid}")),
            "{refused}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{pid}\n"));
    }

    #[test]
    fn pid_file_of_a_zombie_fence_virtd_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = as_fence_virtd(dir.path(), "/bin/true", &[]);
        let pid = child.id();
        // Not reaped yet: a zombie that still has its name.
        wait_for("the child to become a zombie", || process_state(pid) == Some('Z'));
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(comm.trim(), "fence_virtd");
        let path = dir.path().join("fence_virtd.pid");
        std::fs::write(&path, format!("{pid}\n")).unwrap();
        let taken = PidFile::create(&path);
        child.wait().unwrap();
        let pid_file = taken.unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(pid_file);
        assert!(!path.exists(), "the pid file is removed when dropped");
    }
}
