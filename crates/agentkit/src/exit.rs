//! How a run ends, in numbers: the one mapping from a run's verdict to the
//! exit code of the fence-agent contract.
//!
//! 0 is success (for `status`: the target is on), 2 is `status` of a
//! target that is off, 1 is any failure: bad options, an unreachable
//! device, a refused request, a power change not confirmed in time.
//! Pacemaker reads 0 and 2 of `status` as "this device can fence the
//! target" and everything else as "cannot". A program may pass another
//! number through when its peer answered one (fence_xvm does, for the
//! daemon's answers); fence_xenapi never does.

/// The end of a run, as the contract sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Done: the action succeeded, or `status` found the target on.
    Success,
    /// `status` found the target off.
    Off,
    /// Anything that went wrong.
    Failure,
    /// A peer's answer passed through unchanged.
    Passthrough(u8),
}

impl Verdict {
    /// The exit code.
    pub fn code(self) -> u8 {
        match self {
            Verdict::Success => 0,
            Verdict::Failure => 1,
            Verdict::Off => 2,
            Verdict::Passthrough(n) => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(Verdict::Success.code(), 0);
        assert_eq!(Verdict::Failure.code(), 1);
        assert_eq!(Verdict::Off.code(), 2);
        assert_eq!(Verdict::Passthrough(3).code(), 3);
    }
}
