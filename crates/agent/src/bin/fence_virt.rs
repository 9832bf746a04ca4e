//! `fence_virt`: fence a virtual machine through a fence_virtd daemon
//! reached over TCP (`-T`), vsock (`-S`), a serial port (`-D`) or, by
//! default, VMChannel. All the work is in `vmfence_agent::run`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = vmfence_agent::run(
        vmfence_agent::Binary::Virt,
        std::env::args_os().skip(1),
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    ExitCode::from(code)
}
