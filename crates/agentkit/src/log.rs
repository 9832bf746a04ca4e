//! Diagnostics on standard error: errors always, debug lines from `-d` (or
//! `-v`) on.
//!
//! The sink is any writer, so tests capture it; nothing here touches the
//! process's own streams.

use std::fmt::Display;
use std::io::Write;

/// Where diagnostics go, and how many of them.
pub struct Log<'w> {
    prog: &'static str,
    level: u32,
    sink: &'w mut dyn Write,
}

impl std::fmt::Debug for Log<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("prog", &self.prog)
            .field("level", &self.level)
            .finish()
    }
}

impl<'w> Log<'w> {
    /// A log for program `prog` at debug level `level` writing to `sink`.
    pub fn new(prog: &'static str, level: u32, sink: &'w mut dyn Write) -> Log<'w> {
        Log { prog, level, sink }
    }

    /// The program name.
    pub fn prog(&self) -> &'static str {
        self.prog
    }

    /// The debug level.
    pub fn level(&self) -> u32 {
        self.level
    }

    /// Change the debug level (once the options are known).
    pub fn set_level(&mut self, level: u32) {
        self.level = level;
    }

    /// A debug line, shown when the level is at least `level`.
    pub fn debug(&mut self, level: u32, msg: impl Display) {
        if self.level >= level {
            let _ = writeln!(self.sink, "{}: debug: {msg}", self.prog);
        }
    }

    /// An error or warning line, always shown.
    pub fn error(&mut self, msg: impl Display) {
        let _ = writeln!(self.sink, "{}: {msg}", self.prog);
    }

    /// Raw text, always shown (multi-line hints, the short failure word).
    pub fn raw(&mut self, msg: impl Display) {
        let _ = writeln!(self.sink, "{msg}");
    }
}
