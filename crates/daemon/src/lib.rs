//! `fence_virtd`: the host daemon that receives fencing requests from guests
//! and carries them out through a hypervisor backend.
//!
//! This first slice provides the command line ([`cli`]) and its `--check`
//! mode: read and validate `fence_virt.conf`, load every key file the
//! configured listeners need, and print the effective settings. Running the
//! listeners comes later.

pub mod cli;
