//! `fence_virtd`, the host daemon. Everything happens in
//! [`vmfence_daemon::cli::run`]; this file only hands it the arguments.

use std::process::ExitCode;

fn main() -> ExitCode {
    vmfence_daemon::cli::run(std::env::args_os())
}
