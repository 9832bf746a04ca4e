//! Logging: `tracing` to standard error in the foreground (the journal
//! captures it under systemd), to syslog once detached. Messages are passed
//! to syslog as data, never as a format string.

use std::ffi::CString;
use std::io;

use tracing_subscriber::EnvFilter;

/// Set up the global subscriber. `debug` raises the level (0 info,
/// 1 debug, 2+ trace); `RUST_LOG` overrides.
pub fn init(debug: u32, foreground: bool) {
    let level = match debug {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some();
    if foreground {
        // Colour only on a terminal: a file or the journal would get escape bytes.
        let ansi = io::IsTerminal::is_terminal(&io::stderr()) && !under_journal;
        let b = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(io::stderr)
            .with_ansi(ansi)
            .with_target(false);
        let _ = if under_journal {
            b.without_time().try_init()
        } else {
            b.try_init()
        };
    } else {
        open_syslog();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(|| Syslog)
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .try_init();
    }
}

#[allow(unsafe_code)]
fn open_syslog() {
    static IDENT: &[u8] = b"fence_virtd\0";
    // SAFETY: IDENT is a static NUL-terminated string that outlives the process's use of syslog.
    unsafe {
        libc::openlog(
            IDENT.as_ptr().cast(),
            libc::LOG_PID | libc::LOG_NDELAY,
            libc::LOG_DAEMON,
        )
    };
}

/// Each formatted event arrives as one write; it becomes one syslog line.
struct Syslog;

impl io::Write for Syslog {
    #[allow(unsafe_code)]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let line = text.trim_end().replace('\0', " ");
        if let Ok(c) = CString::new(line) {
            // SAFETY: both pointers are NUL-terminated strings valid for the call;
            // the message is passed as an argument to "%s", never as the format.
            unsafe { libc::syslog(libc::LOG_NOTICE, c"%s".as_ptr(), c.as_ptr()) };
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Detach from the terminal (fork, new session, stdio to /dev/null). Must
/// run before any thread is started.
#[allow(unsafe_code)]
pub fn detach() -> io::Result<()> {
    // SAFETY: called while the process is single-threaded; daemon(3) forks
    // and the parent exits.
    if unsafe { libc::daemon(0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
