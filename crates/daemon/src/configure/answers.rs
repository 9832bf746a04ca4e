//! Checks of single answers of the `-c` dialogue. Each returns the parsed
//! value or the reason for refusing it, naming what was typed. The final
//! word on a whole file is still `vmfence_config::parse_config`; these make
//! sure a wrong value is caught at its own question, where it can be fixed.

use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;

use vmfence_config::{did_you_mean, BackendKind, ListenAddress, ListenerKind, NameMode, SerialMode};
use vmfence_proto::HashType;

/// Longest Linux interface name (IFNAMSIZ - 1).
const MAX_INTERFACE_LEN: usize = 15;
/// Longest VM name or UUID a request can carry.
const MAX_VM_LEN: usize = vmfence_proto::domain::MAX_DOMAIN_LEN;

/// `multicast, tcp`: one or more listener names, separated by commas or
/// white space, each at most once.
pub fn listeners(answer: &str) -> Result<Vec<ListenerKind>, String> {
    let mut kinds = Vec::new();
    for name in answer
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
        let kind = name.parse::<ListenerKind>().map_err(|_| {
            let names = ListenerKind::ALL.map(ListenerKind::name);
            format!(
                "There is no listener `{name}` (known: {}).{}",
                names.join(", "),
                suggestion(name, names)
            )
        })?;
        if kinds.contains(&kind) {
            return Err(format!("The listener `{kind}` is listed twice."));
        }
        kinds.push(kind);
    }
    if kinds.is_empty() {
        return Err(format!("`{answer}` names no listener."));
    }
    Ok(kinds)
}

/// A port from 1 to `max`.
pub fn port(answer: &str, max: u32) -> Result<u32, String> {
    if answer.is_empty() || !answer.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("Port `{answer}` is not a number."));
    }
    match answer.parse::<u32>() {
        Ok(p) if (1..=max).contains(&p) => Ok(p),
        _ => Err(format!("Port {answer} is out of range (1 to {max}).")),
    }
}

/// A multicast group address, IPv4 or IPv6.
pub fn multicast_address(answer: &str) -> Result<IpAddr, String> {
    let addr = answer
        .parse::<IpAddr>()
        .map_err(|_| format!("`{answer}` is not an IP address."))?;
    if !addr.is_multicast() {
        return Err(format!(
            "{answer} is not a multicast address (IPv4 multicast is 224.0.0.0/4, IPv6 multicast \
             is ff00::/8)."
        ));
    }
    Ok(addr)
}

/// A TCP listen address: an IP address or a host name.
pub fn listen_address(answer: &str) -> Result<ListenAddress, String> {
    if let Ok(ip) = answer.parse::<IpAddr>() {
        return Ok(ListenAddress::Ip(ip));
    }
    if is_host_name(answer) {
        Ok(ListenAddress::Host(answer.to_owned()))
    } else {
        Err(format!("`{answer}` is neither an IP address nor a host name."))
    }
}

/// `ipv4` or `ipv6`.
pub fn family(answer: &str) -> Result<vmfence_config::Family, String> {
    match answer.to_ascii_lowercase().as_str() {
        "ipv4" => Ok(vmfence_config::Family::Ipv4),
        "ipv6" => Ok(vmfence_config::Family::Ipv6),
        _ => Err(format!("`{answer}` is neither ipv4 nor ipv6.")),
    }
}

/// A network interface name, or `none`.
pub fn interface(answer: &str) -> Result<Option<String>, String> {
    if answer.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let valid = answer.len() <= MAX_INTERFACE_LEN
        && answer != "."
        && answer != ".."
        && !answer.chars().any(|c| c == '/' || c.is_whitespace());
    if valid {
        Ok(Some(answer.to_owned()))
    } else {
        Err(format!(
            "`{answer}` is not an interface name (at most {MAX_INTERFACE_LEN} bytes, no `/` or \
             white space)."
        ))
    }
}

/// A key file: an absolute path that is not a directory.
pub fn key_file(answer: &str) -> Result<String, String> {
    if !answer.starts_with('/') {
        return Err(format!(
            "`{answer}` is not an absolute path; the key file must be given from `/`."
        ));
    }
    if Path::new(answer).is_dir() {
        return Err(format!("{answer} is a directory, not a key file."));
    }
    Ok(answer.to_owned())
}

/// `none`, `sha1`, `sha256` or `sha512`.
pub fn hash(answer: &str) -> Result<HashType, String> {
    HashType::from_str(answer).map_err(|_| {
        let names = HashType::ALL.map(HashType::name);
        format!(
            "`{answer}` is not a hash (none, sha1, sha256, sha512).{}",
            suggestion(answer, names)
        )
    })
}

/// `serial` or `vmchannel`.
pub fn serial_mode(answer: &str) -> Result<SerialMode, String> {
    match answer.to_ascii_lowercase().as_str() {
        "serial" => Ok(SerialMode::Serial),
        "vmchannel" => Ok(SerialMode::Vmchannel),
        _ => Err(format!(
            "`{answer}` is not a mode (serial or vmchannel).{}",
            suggestion(answer, ["serial", "vmchannel"])
        )),
    }
}

/// An absolute directory path, or `none`.
pub fn socket_dir(answer: &str) -> Result<Option<String>, String> {
    if answer.eq_ignore_ascii_case("none") {
        Ok(None)
    } else if answer.starts_with('/') {
        Ok(Some(answer.to_owned()))
    } else {
        Err(format!("`{answer}` is not an absolute path (or `none`)."))
    }
}

/// A libvirt URI: `scheme:...` without white space.
pub fn uri(answer: &str) -> Result<String, String> {
    if answer.is_empty() || answer.chars().any(char::is_whitespace) || !answer.contains(':') {
        return Err(format!(
            "`{answer}` is not a libvirt URI (such as qemu:///system or qemu+ssh://host/system)."
        ));
    }
    Ok(answer.to_owned())
}

/// A libvirt URI, or `none`.
pub fn uri_or_none(answer: &str) -> Result<Option<String>, String> {
    if answer.eq_ignore_ascii_case("none") {
        Ok(None)
    } else {
        uri(answer).map(Some)
    }
}

/// `libvirt` or `cpg`.
pub fn backend(answer: &str) -> Result<BackendKind, String> {
    answer.parse::<BackendKind>().map_err(|_| {
        let names = BackendKind::ALL.map(BackendKind::name);
        if answer.eq_ignore_ascii_case("libvirt-qmf") {
            format!(
                "The backend libvirt-qmf is not supported (known: {}).",
                names.join(", ")
            )
        } else {
            format!(
                "There is no backend `{answer}` (known: {}).{}",
                names.join(", "),
                suggestion(answer, names)
            )
        }
    })
}

/// `name` or `uuid`.
pub fn name_mode(answer: &str) -> Result<NameMode, String> {
    match answer.to_ascii_lowercase().as_str() {
        "name" => Ok(NameMode::Name),
        "uuid" => Ok(NameMode::Uuid),
        _ => Err(format!("`{answer}` is neither name nor uuid.")),
    }
}

/// A VM of a group: a UUID or a VM name a request can carry.
pub fn vm(answer: &str) -> Result<String, String> {
    if answer.len() > MAX_VM_LEN {
        return Err(format!(
            "`{answer}` is longer than {MAX_VM_LEN} bytes, more than a fencing request can name."
        ));
    }
    Ok(answer.to_owned())
}

/// A client of a group: an IP address (written in the form the daemon
/// compares, e.g. `2001:db8::1`) or a vsock context id.
pub fn client(answer: &str) -> Result<String, String> {
    if let Ok(ip) = answer.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    if answer.bytes().all(|b| b.is_ascii_digit()) && answer.parse::<u32>().is_ok() {
        return Ok(answer.to_owned());
    }
    Err(format!(
        "`{answer}` is neither an IP address nor a vsock context id (a number)."
    ))
}

/// A group name (anything writable; empty is refused by the caller's
/// default).
pub fn group_name(answer: &str) -> Result<String, String> {
    Ok(answer.to_owned())
}

fn suggestion<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match did_you_mean(word, candidates) {
        Some(s) => format!(" Did you mean `{s}`?"),
        None => String::new(),
    }
}

/// A plausible DNS host name: dot-separated labels of letters, digits, `-`
/// and `_`, at most 253 bytes.
fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn listener_lists() {
        assert_eq!(
            listeners("multicast, TCP vsock").unwrap(),
            vec![ListenerKind::Multicast, ListenerKind::Tcp, ListenerKind::Vsock]
        );
        let e = listeners("multicst").unwrap_err();
        assert!(
            e.contains("no listener `multicst`") && e.contains("Did you mean `multicast`?"),
            "{e}"
        );
        assert!(!listeners("bogus").unwrap_err().contains("Did you mean"));
        assert!(listeners("tcp,tcp").unwrap_err().contains("twice"));
        assert!(listeners(" , ").unwrap_err().contains("names no listener"));
    }

    #[test]
    fn ports_name_the_input() {
        assert_eq!(port("1229", 65535), Ok(1229));
        assert_eq!(
            port("0", 65535).unwrap_err(),
            "Port 0 is out of range (1 to 65535)."
        );
        assert_eq!(
            port("70000", 65535).unwrap_err(),
            "Port 70000 is out of range (1 to 65535)."
        );
        assert_eq!(
            port("99999999999", 65535).unwrap_err(),
            "Port 99999999999 is out of range (1 to 65535)."
        );
        assert_eq!(port("-1", 65535).unwrap_err(), "Port `-1` is not a number.");
        assert_eq!(port("4294967294", u32::MAX - 1), Ok(u32::MAX - 1));
    }

    #[test]
    fn addresses() {
        assert!(multicast_address("225.0.0.12").unwrap().is_ipv4());
        assert!(multicast_address("ff05::3:1").unwrap().is_ipv6());
        assert_eq!(
            multicast_address("300.1.1.1").unwrap_err(),
            "`300.1.1.1` is not an IP address."
        );
        assert!(multicast_address("10.0.0.1")
            .unwrap_err()
            .starts_with("10.0.0.1 is not a multicast address"));
        assert_eq!(
            listen_address("::").unwrap(),
            ListenAddress::Ip("::".parse().unwrap())
        );
        assert_eq!(
            listen_address("host-1.example").unwrap(),
            ListenAddress::Host("host-1.example".into())
        );
        assert!(listen_address("a b").is_err());
        assert!(listen_address("a..b").is_err());
    }

    #[test]
    fn words() {
        assert_eq!(hash("SHA512"), Ok(HashType::Sha512));
        assert!(hash("sha265").unwrap_err().contains("Did you mean `sha256`?"));
        assert_eq!(serial_mode("VMChannel"), Ok(SerialMode::Vmchannel));
        assert!(serial_mode("vmchanel").unwrap_err().contains("`vmchannel`"));
        assert_eq!(backend("CPG"), Ok(BackendKind::Cpg));
        assert!(backend("libvirt-qmf").unwrap_err().contains("not supported"));
        assert!(backend("libvrt").unwrap_err().contains("Did you mean `libvirt`?"));
        assert_eq!(name_mode("uuid"), Ok(NameMode::Uuid));
        assert!(family("ipv5").is_err());
    }

    #[test]
    fn paths_and_names() {
        assert_eq!(interface("none"), Ok(None));
        assert_eq!(interface("virbr0"), Ok(Some("virbr0".into())));
        assert!(interface("a-very-long-interface").is_err());
        assert!(interface("a/b").is_err());
        assert!(key_file("fence_xvm.key")
            .unwrap_err()
            .contains("not an absolute path"));
        assert!(key_file("/").unwrap_err().contains("is a directory"));
        assert_eq!(key_file("/etc/x.key"), Ok("/etc/x.key".into()));
        assert_eq!(socket_dir("NONE"), Ok(None));
        assert!(socket_dir("run/x").is_err());
        assert_eq!(uri_or_none("none"), Ok(None));
        assert!(uri("none").is_err());
        assert!(uri("qemu :///system").is_err());
        assert_eq!(uri("test:///default"), Ok("test:///default".into()));
        assert_eq!(uri_or_none("test:///default"), Ok(Some("test:///default".into())));
    }

    #[test]
    fn group_entries() {
        assert_eq!(client("2001:DB8::0001"), Ok("2001:db8::1".into()));
        assert_eq!(client("10.0.0.1"), Ok("10.0.0.1".into()));
        assert_eq!(client("3"), Ok("3".into()));
        assert!(client("host").is_err());
        assert!(client("99999999999").is_err());
        assert!(vm(&"v".repeat(64)).is_err());
        assert_eq!(vm("node1"), Ok("node1".into()));
    }
}
