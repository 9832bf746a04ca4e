//! A stand-in for QEMU's VMChannel `guestfwd`, for serial-listener tests
//! without QEMU.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A stand-in for QEMU's guestfwd: it listens on the domain's channel
/// socket (where the daemon connects and stays) and on `guest.sock`, where
/// socat in the guest namespace hands over each TCP connection the guest
/// makes to 10.0.2.179:1229; bytes are relayed both ways, one guest
/// connection at a time, the daemon connection kept throughout.
#[derive(Debug)]
pub struct GuestFwd {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl GuestFwd {
    /// Listen on `channel` (the daemon connects there) and on `guest`.
    pub fn start(channel: &Path, guest: &Path) -> GuestFwd {
        let daemon_side = UnixListener::bind(channel).unwrap();
        let guest_side = UnixListener::bind(guest).unwrap();
        daemon_side.set_nonblocking(true).unwrap();
        guest_side.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = thread::spawn(move || {
            let accept = |l: &UnixListener| -> Option<UnixStream> {
                while !stop2.load(Ordering::Relaxed) {
                    match l.accept() {
                        Ok((s, _)) => return Some(s),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(10))
                        }
                        Err(e) => panic!("accept: {e}"),
                    }
                }
                None
            };
            let Some(daemon) = accept(&daemon_side) else {
                return;
            };
            daemon.set_nonblocking(false).unwrap();
            daemon.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            while let Some(guest) = accept(&guest_side) {
                guest.set_nonblocking(false).unwrap();
                guest.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                relay(&daemon, &guest, &stop2);
            }
        });
        GuestFwd {
            stop,
            handle: Some(handle),
        }
    }
}

/// Relay until the guest side closes (or the test ends).
fn relay(daemon: &UnixStream, guest: &UnixStream, stop: &AtomicBool) {
    let mut buf = [0u8; 4096];
    let (mut d, mut g) = (daemon, guest);
    while !stop.load(Ordering::Relaxed) {
        match g.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => d.write_all(&buf[..n]).unwrap(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
        match d.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if g.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("daemon side: {e}"),
        }
    }
}

impl Drop for GuestFwd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
