//! Option values: the one error type of option parsing and checking, and
//! the number and boolean readers every agent uses the same way.

use std::net::IpAddr;

/// Something in the options is wrong. Every variant is a usage error: the
/// run ends with exit code 1 and a hint to `-h`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    /// A command-line word that is no option of this program.
    #[error("unknown option '{0}'")]
    UnknownOption(String),
    /// An option that needs a value got none.
    #[error("option {0} needs a value")]
    MissingValue(String),
    /// A flag was given a value (`--debug=3`).
    #[error("option {0} takes no value")]
    UnexpectedValue(String),
    /// A command-line word that is not an option.
    #[error("unexpected argument '{0}' (options take their value as -o VALUE or -oVALUE)")]
    StrayArgument(String),
    /// A word after an option whose value is optional and must be attached
    /// (`-S 3`: the classic agent silently took CID 2 and ignored the 3).
    #[error(
        "unexpected argument '{value}' after {option}: its value must be attached ({option}{value} \
         or {long}={value}); a bare {option} means the default"
    )]
    DetachedValue {
        /// The option as given, e.g. `-S`.
        option: String,
        /// Its long form, e.g. `--vsock`.
        long: String,
        /// The word that followed it.
        value: String,
    },
    /// A command-line argument that is not UTF-8.
    #[error("argument is not valid UTF-8: {0}")]
    NotUtf8(String),
    /// The value does not parse or is out of range.
    #[error("invalid value '{value}' for {option}: {reason}")]
    InvalidValue {
        /// The option, e.g. `-t/timeout`.
        option: String,
        /// The value as given.
        value: String,
        /// What is expected.
        reason: String,
    },
    /// The action acts on a VM but none was named.
    #[error("no virtual machine given for action '{0}' (use -n NAME, or plug=NAME on standard input)")]
    NoTarget(&'static str),
    /// A required option is missing.
    #[error("option {option} is required for action '{action}'")]
    Required {
        /// The option, e.g. `-s/session_url`.
        option: String,
        /// The action.
        action: &'static str,
    },
    /// Two options that exclude each other were both given.
    #[error("options {0} and {1} exclude each other")]
    Conflict(String, String),
    /// `fence_xvm`: the multicast address and `ip_family` disagree.
    #[error("multicast address {addr} is not an {family} address")]
    FamilyMismatch {
        /// The address.
        addr: IpAddr,
        /// The family asked for.
        family: &'static str,
    },
    /// Standard input could not be read.
    #[error("cannot read standard input: {0}")]
    Stdin(String),
}

/// `1/yes/on/true` and `0/no/off/false`, case-insensitively.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "yes" | "on" | "true" => Some(true),
        "0" | "no" | "off" | "false" => Some(false),
        _ => None,
    }
}

/// A decimal number, or hexadecimal with `0x` (which the classic agents'
/// `strtol(…, 0)` also took). A leading zero does not mean octal: `010` is
/// ten, not eight.
pub fn parse_number(v: &str) -> Option<i64> {
    let v = v.trim();
    let (neg, digits) = match v.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let n = if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -n } else { n })
}

/// `v` unless it is empty; `bad` builds the error (it gets the value and
/// the reason).
pub fn non_empty(v: &str, bad: impl Fn(&str, &str) -> ArgError) -> Result<&str, ArgError> {
    if v.is_empty() {
        Err(bad(v, "must not be empty"))
    } else {
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans() {
        for t in ["1", "yes", "ON", "True"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["0", "no", "Off", "FALSE"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool("2"), None);
        assert_eq!(parse_bool(""), None);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number(" 42 "), Some(42));
        assert_eq!(parse_number("+7"), Some(7));
        assert_eq!(parse_number("0X10"), Some(16));
        assert_eq!(parse_number("9223372036854775808"), None);
        assert_eq!(parse_number("1.5"), None);
    }
}
