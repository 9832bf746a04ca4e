//! `fence_xvm`: fence a virtual machine through the fence_virtd daemons of
//! its hosts, reached by multicast. All the work is in `vmfence_agent::run`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = vmfence_agent::run(
        vmfence_agent::Binary::Xvm,
        std::env::args_os().skip(1),
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    ExitCode::from(code)
}
