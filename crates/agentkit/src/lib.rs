//! The fence-agent framework: everything a fence agent shares with every
//! other one, whatever it talks to.
//!
//! A program declares its options once, in a table of [`OptSpec`]s, and
//! implements [`Program`] (its name, its table, its default settings and
//! how one option value is applied to them). From that table the framework
//! parses the command line and standard input by the fence-agent rules
//! ([`parse`]), writes `-h`, the metadata XML and the man page ([`docs`]),
//! and turns the end of a run into the exit code of the contract
//! ([`exit`]). Diagnostics go through [`log::Log`].
//!
//! `fence_xvm` and `fence_virt` (crate `vmfence-agent`) and `fence_xenapi`
//! (crate `vmfence-xenapi`) are built on it.

pub mod docs;
pub mod exit;
pub mod log;
pub mod parse;
pub mod table;
pub mod value;

pub use crate::table::{Arg, Content, OptSpec, Program};
pub use crate::value::ArgError;
