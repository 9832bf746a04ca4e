//! Power actions that are only reported done once XenAPI shows them done.
//!
//! `off` calls `VM.hard_shutdown` and then polls `VM.get_power_state` until
//! the VM is `Halted`, for at most `power_timeout`; `on` calls `VM.start`
//! and polls until it is no longer halted, with retries. `reboot` (method
//! `cycle`, the default) is one `VM.hard_reboot` for a running or paused VM
//! — the domain is destroyed before the call returns, which is what
//! fencing needs — and start for a halted one; method `onoff` is off, then
//! on, as the classic agent did. When the power-on part of a reboot fails
//! after the off part succeeded, the VM is fenced: that is reported, not
//! turned into a failure (the fence-agents convention).

use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::api::ErrorCode;
use crate::client::{CallError, Session};
use crate::transport::Transport;
use crate::vm::{PowerState, VmRecord};

/// Timing of power actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerTiming {
    /// Limit of the power call, and then of the polling.
    pub power_timeout: Duration,
    /// Pause after the power call before the first poll.
    pub power_wait: Duration,
    /// Pause between polls.
    pub poll_interval: Duration,
}

/// How `reboot` is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebootMethod {
    /// `VM.hard_reboot` (a halted VM is started).
    Cycle,
    /// Off, then on.
    OnOff,
}

/// What a power action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// The VM was already in the state asked for.
    Already,
    /// The VM was switched, and is now in this state.
    Switched(PowerState),
    /// Reboot: the VM was switched off, but did not come back on.
    OffOnly(String),
}

/// A power action failed.
#[derive(Debug, thiserror::Error)]
pub enum PowerError {
    /// A call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// XenAPI did not show the state asked for in time.
    #[error("VM {vm}: still {state} {} s after {action} (power_timeout)", .after.as_secs_f32())]
    NotConfirmed {
        /// The VM's name label.
        vm: String,
        /// What was asked.
        action: &'static str,
        /// The last state seen.
        state: PowerState,
        /// How long was waited.
        after: Duration,
    },
    /// The VM is in a state the action cannot leave (e.g. a reboot of a
    /// suspended VM that cannot be shut down).
    #[error("VM {vm}: {action} failed: {source}; the VM is {state}")]
    Refused {
        /// The VM's name label.
        vm: String,
        /// The action.
        action: &'static str,
        /// The state after the refusal.
        state: PowerState,
        /// XenAPI's refusal.
        source: Box<CallError>,
    },
}

/// Power the VM off (`VM.hard_shutdown`) and wait until it is halted.
pub fn power_off<T: Transport>(
    s: &mut Session<'_, '_, T>,
    vm: &VmRecord,
    t: &PowerTiming,
) -> Result<Done, PowerError> {
    if vm.power_state.is_off() {
        return Ok(Done::Already);
    }
    match s.vm_hard_shutdown(&vm.reference, t.power_timeout) {
        Ok(()) => {}
        // Halted meanwhile (by someone else): fine once it shows halted.
        Err(e) if e.is(&ErrorCode::VmBadPowerState) => {
            s.note(&format!(
                "{}: hard_shutdown refused ({e}); checking the state",
                vm.name_label
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let state = wait_for(s, vm, "off", PowerState::is_off, t)?;
    Ok(Done::Switched(state))
}

/// Power the VM on (`VM.start`), `attempts` times at most, and wait until
/// it is no longer halted.
pub fn power_on<T: Transport>(
    s: &mut Session<'_, '_, T>,
    vm: &VmRecord,
    t: &PowerTiming,
    attempts: u32,
) -> Result<Done, PowerError> {
    if !vm.power_state.is_off() {
        return Ok(Done::Already);
    }
    start(s, vm, t, attempts).map(Done::Switched)
}

fn start<T: Transport>(
    s: &mut Session<'_, '_, T>,
    vm: &VmRecord,
    t: &PowerTiming,
    attempts: u32,
) -> Result<PowerState, PowerError> {
    let attempts = attempts.max(1);
    let mut last = None;
    for attempt in 1..=attempts {
        let result = match s.vm_start(&vm.reference, t.power_timeout) {
            Ok(()) => wait_for(s, vm, "on", |p| !p.is_off(), t),
            Err(e) if e.is(&ErrorCode::VmBadPowerState) => {
                // Started meanwhile?
                s.note(&format!(
                    "{}: start refused ({e}); checking the state",
                    vm.name_label
                ));
                wait_for(s, vm, "on", |p| !p.is_off(), t)
            }
            Err(e) => Err(e.into()),
        };
        match result {
            Ok(state) => return Ok(state),
            Err(e) => {
                s.note(&format!(
                    "{}: power on attempt {attempt} of {attempts}: {e}",
                    vm.name_label
                ));
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| PowerError::NotConfirmed {
        vm: vm.name_label.clone(),
        action: "on",
        state: PowerState::Halted,
        after: Duration::ZERO,
    }))
}

/// Reboot the VM (see the module text). `on_attempts` is how often the
/// power-on part is tried.
pub fn reboot<T: Transport>(
    s: &mut Session<'_, '_, T>,
    vm: &VmRecord,
    t: &PowerTiming,
    method: RebootMethod,
    on_attempts: u32,
) -> Result<Done, PowerError> {
    let cycle =
        method == RebootMethod::Cycle && matches!(vm.power_state, PowerState::Running | PowerState::Paused);
    if cycle {
        match s.vm_hard_reboot(&vm.reference, t.power_timeout) {
            Ok(()) => {}
            Err(e) => {
                // Maybe the domain was destroyed and the start failed: then
                // the VM is fenced, and starting it is what is left.
                let state = s.vm_get_power_state(&vm.reference, None)?;
                if !state.is_off() {
                    return Err(PowerError::Refused {
                        vm: vm.name_label.clone(),
                        action: "hard_reboot",
                        state,
                        source: Box::new(e),
                    });
                }
                s.note(&format!(
                    "{}: hard_reboot failed ({e}) but the VM is halted: starting it",
                    vm.name_label
                ));
                return Ok(match start(s, vm, t, on_attempts) {
                    Ok(state) => Done::Switched(state),
                    Err(e) => Done::OffOnly(e.to_string()),
                });
            }
        }
        return Ok(match wait_for(s, vm, "on", |p| !p.is_off(), t) {
            Ok(state) => Done::Switched(state),
            Err(e) => Done::OffOnly(e.to_string()),
        });
    }
    // Off (unless already), then on; the off part decides success.
    power_off(s, vm, t)?;
    Ok(match start(s, vm, t, on_attempts) {
        Ok(state) => Done::Switched(state),
        Err(e) => Done::OffOnly(e.to_string()),
    })
}

/// Pause `power_wait`, then poll the power state until `want` holds, for at
/// most `power_timeout`. A poll without an answer is repeated; a XenAPI
/// error ends the wait.
fn wait_for<T: Transport>(
    s: &mut Session<'_, '_, T>,
    vm: &VmRecord,
    action: &'static str,
    want: fn(&PowerState) -> bool,
    t: &PowerTiming,
) -> Result<PowerState, PowerError> {
    if !t.power_wait.is_zero() {
        sleep(t.power_wait);
    }
    let started = Instant::now();
    let deadline = started + t.power_timeout;
    let mut last = vm.power_state.clone();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let limit = s.limits().call.min(left.max(Duration::from_millis(100)));
        match s.vm_get_power_state(&vm.reference, Some(limit)) {
            Ok(state) if want(&state) => return Ok(state),
            Ok(state) => last = state,
            Err(e) if e.is_transport() => s.note(&format!("{}: power state poll: {e}", vm.name_label)),
            Err(e) => return Err(e.into()),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(PowerError::NotConfirmed {
                vm: vm.name_label.clone(),
                action,
                state: last,
                after: now - started,
            });
        }
        sleep(t.poll_interval.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::client::tests::{client, failure, success, Script};

    fn vm(state: PowerState) -> VmRecord {
        VmRecord {
            reference: "OpaqueRef:v".into(),
            uuid: "u".into(),
            name_label: "vm".into(),
            power_state: state,
            is_a_template: false,
            is_a_snapshot: false,
            is_control_domain: false,
            domid: None,
        }
    }

    const FAST: PowerTiming = PowerTiming {
        power_timeout: Duration::from_millis(300),
        power_wait: Duration::ZERO,
        poll_interval: Duration::from_millis(10),
    };

    fn methods(s: &Script) -> Vec<&str> {
        s.calls.iter().map(|c| c.1.as_str()).collect()
    }

    #[test]
    fn off_polls_until_halted() {
        let mut s = Script::default();
        s.answers.push_back(success("<value>OpaqueRef:s</value>"));
        s.answers.push_back(success("<value></value>"));
        s.answers.push_back(success("<value>Running</value>"));
        s.answers.push_back(success("<value>Halted</value>"));
        s.answers.push_back(success("<value></value>"));
        {
            let mut c = client(&mut s, &["https://m"]);
            let mut session = c.login().unwrap();
            assert_eq!(
                power_off(&mut session, &vm(PowerState::Running), &FAST).unwrap(),
                Done::Switched(PowerState::Halted)
            );
            assert_eq!(
                power_off(&mut session, &vm(PowerState::Halted), &FAST).unwrap(),
                Done::Already
            );
        }
        assert_eq!(
            methods(&s),
            [
                "session.login_with_password",
                "VM.hard_shutdown",
                "VM.get_power_state",
                "VM.get_power_state",
                "session.logout"
            ]
        );
    }

    #[test]
    fn off_not_confirmed_in_time_fails() {
        let mut s = Script::default();
        s.answers.push_back(success("<value>OpaqueRef:s</value>"));
        s.answers.push_back(success("<value></value>"));
        for _ in 0..200 {
            s.answers.push_back(success("<value>Running</value>"));
        }
        let mut c = client(&mut s, &["https://m"]);
        let mut session = c.login().unwrap();
        let err = power_off(&mut session, &vm(PowerState::Running), &FAST).unwrap_err();
        assert!(
            matches!(
                err,
                PowerError::NotConfirmed {
                    state: PowerState::Running,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("still Running"), "{err}");
    }

    #[test]
    fn reboot_cycles_a_running_vm_and_reports_a_failed_start_after_off() {
        let mut s = Script::default();
        s.answers.push_back(success("<value>OpaqueRef:s</value>"));
        s.answers.push_back(success("<value></value>"));
        s.answers.push_back(success("<value>Running</value>"));
        // Second reboot: the domain went, the start failed.
        s.answers.push_back(failure(&["INTERNAL_ERROR", "no memory"]));
        s.answers.push_back(success("<value>Halted</value>"));
        s.answers
            .push_back(failure(&["HOST_NOT_ENOUGH_FREE_MEMORY", "1", "2"]));
        s.answers.push_back(success("<value></value>"));
        {
            let mut c = client(&mut s, &["https://m"]);
            let mut session = c.login().unwrap();
            let r = reboot(
                &mut session,
                &vm(PowerState::Running),
                &FAST,
                RebootMethod::Cycle,
                1,
            );
            assert_eq!(r.unwrap(), Done::Switched(PowerState::Running));
            let r = reboot(
                &mut session,
                &vm(PowerState::Running),
                &FAST,
                RebootMethod::Cycle,
                1,
            )
            .unwrap();
            assert!(
                matches!(r, Done::OffOnly(ref m) if m.contains("HOST_NOT_ENOUGH_FREE_MEMORY")),
                "{r:?}"
            );
        }
        assert_eq!(
            methods(&s),
            [
                "session.login_with_password",
                "VM.hard_reboot",
                "VM.get_power_state",
                "VM.hard_reboot",
                "VM.get_power_state",
                "VM.start",
                "session.logout"
            ]
        );
    }

    #[test]
    fn a_refused_reboot_of_a_running_vm_fails() {
        let mut s = Script::default();
        s.answers.push_back(success("<value>OpaqueRef:s</value>"));
        s.answers.push_back(failure(&["OPERATION_NOT_ALLOWED", "busy"]));
        s.answers.push_back(success("<value>Running</value>"));
        s.answers.push_back(success("<value></value>"));
        let mut c = client(&mut s, &["https://m"]);
        let mut session = c.login().unwrap();
        let err = reboot(
            &mut session,
            &vm(PowerState::Running),
            &FAST,
            RebootMethod::Cycle,
            1,
        )
        .unwrap_err();
        assert!(matches!(err, PowerError::Refused { .. }), "{err}");
        assert!(err.to_string().contains("the VM is Running"), "{err}");
    }

    #[test]
    fn on_retries() {
        let mut s = Script::default();
        s.answers.push_back(success("<value>OpaqueRef:s</value>"));
        s.answers.push_back(failure(&["HOST_NOT_ENOUGH_FREE_MEMORY"]));
        s.answers.push_back(success("<value></value>"));
        s.answers.push_back(success("<value>Running</value>"));
        s.answers.push_back(success("<value></value>"));
        let mut c = client(&mut s, &["https://m"]);
        let mut session = c.login().unwrap();
        assert_eq!(
            power_on(&mut session, &vm(PowerState::Halted), &FAST, 2).unwrap(),
            Done::Switched(PowerState::Running)
        );
        assert_eq!(
            power_on(&mut session, &vm(PowerState::Paused), &FAST, 2).unwrap(),
            Done::Already
        );
    }
}
