//! `fence_xenapi`: fence a VM of a XenServer / XCP-ng pool through
//! XenAPI. All the work is in `vmfence_xenapi::agent::run`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = vmfence_xenapi::agent::run(
        std::env::args_os().skip(1),
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    ExitCode::from(code)
}
