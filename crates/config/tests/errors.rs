//! Every error a configuration can produce, with its exact `FILE:LINE:
//! message` text, and the collection of several errors from one file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use vmfence_config::{load_config, parse_config, ConfigError};

/// The messages of a text that must be rejected.
fn errors(text: &str) -> Vec<String> {
    match parse_config(text, Path::new("test.conf")) {
        Ok(config) => panic!("accepted: {config:?}"),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

/// The single message of a text with exactly one error.
fn error(text: &str) -> String {
    let all = errors(text);
    assert_eq!(all.len(), 1, "{all:#?}");
    all.into_iter().next().unwrap()
}

/// A valid daemon block (lines 1-4) followed by `rest` from line 5 on.
fn with(rest: &str) -> String {
    format!("fence_virtd {{\n\tlistener = \"tcp\";\n\tbackend = \"libvirt\";\n}}\n{rest}")
}

#[test]
fn unreadable_file() {
    let err = load_config(Path::new("/nonexistent/fence_virt.conf")).unwrap_err();
    assert_eq!(err.errors.len(), 1);
    assert!(matches!(err.errors[0], ConfigError::Read { .. }));
    assert_eq!(
        err.to_string(),
        "/nonexistent/fence_virt.conf: cannot read the configuration file: No such file or directory (os error 2)"
    );
}

#[test]
fn not_utf8_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.conf");
    std::fs::write(&path, b"fence_virtd {\n listener = \"caf\xe9\";\n}\n").unwrap();
    let err = load_config(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2: syntax error: the file is not valid UTF-8 text",
            path.display()
        )
    );
}

#[test]
fn syntax_errors() {
    assert_eq!(
        error(""),
        "test.conf:1: syntax error: the file contains no settings (an empty file is not a valid configuration)"
    );
    assert_eq!(
        error("# nothing\n"),
        "test.conf:2: syntax error: the file contains no settings (an empty file is not a valid configuration)"
    );
    assert_eq!(
        error("fence_virtd {\n\tlistener = \"tcp\"\n\tbackend = \"libvirt\";\n}\n"),
        "test.conf:2: syntax error: missing `;` after the value of `listener` (found `backend`)"
    );
    assert_eq!(
        error("fence_virtd {\n\tlistener = tcp;\n}\n"),
        "test.conf:2: syntax error: value of `listener` must be in double quotes: write listener = \"tcp\";"
    );
    assert_eq!(
        error("fence_virtd {\n\tlistener = \"\";\n}\n"),
        "test.conf:2: syntax error: empty value for `listener`: \"\" is not allowed (fence_virtd rejects \
         it); remove the line to use the default"
    );
    assert_eq!(
        error("fence_virtd {\n\tlistener = \"tcp\";\n\n"),
        "test.conf:1: syntax error: block `fence_virtd` opened on line 1 is never closed (missing `}` at end \
         of file)"
    );
    assert_eq!(
        error(&with("listeners {\n\ttcp {\n\t}\n")),
        "test.conf:5: syntax error: block `listeners` opened on line 5 is never closed (missing `}` at end of file)"
    );
    assert_eq!(
        error(&with("}\n")),
        "test.conf:5: syntax error: unbalanced `}`: there is no open block to close"
    );
    assert_eq!(
        error("fence_virtd {\n\tlistener = \"tcp;\n}\n"),
        "test.conf:2: syntax error: quoted value starting on this line is never closed (missing `\"`)"
    );
    assert_eq!(
        error("fence_virtd {\r\n}\r\n"),
        "test.conf:1: syntax error: carriage return character: the file has DOS (CRLF) line endings, which \
         fence_virtd cannot read; convert it with `dos2unix`"
    );
    assert_eq!(
        error("a = ;"),
        "test.conf:1: syntax error: expected a quoted value after `a =`, found `;`"
    );
    assert_eq!(
        error("a b"),
        "test.conf:1: syntax error: expected `=` or `{` after `a`, found `b`"
    );
    assert_eq!(
        error("= \"x\";"),
        "test.conf:1: syntax error: expected a key or block name, found `=`"
    );
}

#[test]
fn unknown_keys_and_blocks_with_suggestions() {
    assert_eq!(
        error(&with(
            "listeners {\n\ttcp {\n\t\tadress = \"127.0.0.1\";\n\t}\n}\n"
        )),
        "test.conf:7: unknown key `adress` in listeners/tcp (did you mean `address`?)"
    );
    assert_eq!(
        error(&with("listeners {\n\ttcp {\n\t\tcolour = \"blue\";\n\t}\n}\n")),
        "test.conf:7: unknown key `colour` in listeners/tcp"
    );
    assert_eq!(
        error("fence_virtd {\n\tlistener = \"tcp\";\n\tbackend = \"libvirt\";\n\tlisten = \"x\";\n}\n"),
        "test.conf:4: unknown key `listen` in fence_virtd (did you mean `listener`?)"
    );
    assert_eq!(
        error(&with("listeners {\n\tmulticat {\n\t}\n}\n")),
        "test.conf:6: unknown block `multicat` in listeners (did you mean `multicast`?)"
    );
    assert_eq!(
        error(&with(
            "backends {\n\tlibvirt {\n\t\turl = \"qemu:///system\";\n\t}\n}\n"
        )),
        "test.conf:7: unknown key `url` in backends/libvirt (did you mean `uri`?)"
    );
    assert_eq!(
        error(&with("groups {\n\tgroup {\n\t\tips = \"1.2.3.4\";\n\t}\n}\n")),
        "test.conf:7: unknown key `ips` in groups/group (did you mean `ip`?)"
    );
    assert_eq!(
        error(&with("listener = \"tcp\";\n")),
        "test.conf:5: unknown key `listener` in the top level"
    );
}

#[test]
fn keys_and_blocks_in_the_wrong_form() {
    assert_eq!(
        error(&with("listeners {\n\ttcp {\n\t\tport {\n\t\t}\n\t}\n}\n")),
        "test.conf:7: `port` in listeners/tcp is a setting, write it as port = \"...\"; not as a block"
    );
    assert_eq!(
        error(&with("listeners = \"tcp\";\n")),
        "test.conf:5: `listeners` in the top level is a block, write it as listeners { ... } not as a setting"
    );
}

#[test]
fn missing_required_settings() {
    assert_eq!(
        error("listeners {\n}\n"),
        "test.conf: there is no `fence_virtd { ... }` block; it must set `listener` and `backend`"
    );
    assert_eq!(
        error("fence_virtd {\n\tbackend = \"libvirt\";\n}\n"),
        "test.conf:1: the fence_virtd block has no `listener`; it is required (for example listener = \"multicast\";)"
    );
    assert_eq!(
        error("fence_virtd {\n\tlistener = \"tcp\";\n}\n"),
        "test.conf:1: the fence_virtd block has no `backend`; it is required (for example backend = \"libvirt\";)"
    );
}

#[test]
fn bad_listener_and_backend_names() {
    let daemon = |listener: &str, backend: &str| {
        format!("fence_virtd {{\n\tlistener = \"{listener}\";\n\tbackend = \"{backend}\";\n}}\n")
    };
    assert_eq!(
        error(&daemon("multicst", "libvirt")),
        "test.conf:2: unknown listener `multicst` (known: multicast, tcp, vsock, serial) (did you mean `multicast`?)"
    );
    assert_eq!(
        error(&daemon("tcp, TCP", "libvirt")),
        "test.conf:2: listener `tcp` is listed more than once"
    );
    assert_eq!(
        error(&daemon(" , ", "libvirt")),
        "test.conf:2: `listener` names no listener"
    );
    assert_eq!(
        error(&daemon("tcp", "libvrit")),
        "test.conf:3: unknown backend `libvrit` (known: libvirt, cpg) (did you mean `libvirt`?)"
    );
    assert_eq!(
        error(&daemon("tcp", "libvirt-qmf")),
        "test.conf:3: backend `libvirt-qmf` is not supported by vmfence (supported: libvirt, cpg)"
    );
}

fn tcp(body: &str) -> String {
    with(&format!("listeners {{\n\ttcp {{\n{body}\n\t}}\n}}\n"))
}

fn multicast(body: &str) -> String {
    format!(
        "fence_virtd {{\n\tlistener = \"multicast\";\n\tbackend = \"libvirt\";\n}}\n\
         listeners {{\n\tmulticast {{\n{body}\n\t}}\n}}\n"
    )
}

#[test]
fn bad_values() {
    assert_eq!(
        error(&tcp("\t\thash = \"sha265\";")),
        "test.conf:7: unknown hash `sha265` (expected none, sha1, sha256 or sha512) (did you mean `sha256`?)"
    );
    assert_eq!(
        error(&tcp("\t\tauth = \"md5\";")),
        "test.conf:7: unknown auth `md5` (expected none, sha1, sha256 or sha512)"
    );
    assert_eq!(
        error(&tcp("\t\tfamily = \"inet\";")),
        "test.conf:7: unknown family `inet` (expected ipv4 or ipv6)"
    );
    assert_eq!(
        error(&tcp("\t\tport = \"http\";")),
        "test.conf:7: port `http` is not a number"
    );
    assert_eq!(
        error(&tcp("\t\tport = \"-1\";")),
        "test.conf:7: port `-1` is not a number"
    );
    assert_eq!(
        error(&tcp("\t\tport = \"0\";")),
        "test.conf:7: port 0 is out of range (1 to 65535)"
    );
    assert_eq!(
        error(&tcp("\t\tport = \"65536\";")),
        "test.conf:7: port 65536 is out of range (1 to 65535)"
    );
    assert_eq!(
        error(&tcp("\t\tport = \"99999999999999999999\";")),
        "test.conf:7: port 99999999999999999999 is out of range (1 to 65535)"
    );
    assert_eq!(
        error(&tcp("\t\taddress = \"not an address\";")),
        "test.conf:7: `not an address` is neither an IP address nor a valid host name"
    );
    assert_eq!(
        error(&tcp("\t\taddress = \"::1\";")),
        "test.conf:7: ::1 is an ipv6 address but the family is ipv4 (the default); set family = \"ipv6\"; in this block"
    );
    assert_eq!(
        error(&tcp("\t\tfamily = \"ipv6\";\n\t\taddress = \"127.0.0.1\";")),
        "test.conf:8: 127.0.0.1 is an ipv4 address but the family is ipv6; set family = \"ipv4\"; in this block"
    );
    assert_eq!(
        error(&multicast("\t\taddress = \"225.0.0\";")),
        "test.conf:7: `225.0.0` is not an IP address"
    );
    assert_eq!(
        error(&multicast("\t\taddress = \"192.168.1.1\";")),
        "test.conf:7: 192.168.1.1 is not a multicast address (IPv4 multicast is 224.0.0.0/4, IPv6 multicast is ff00::/8)"
    );
    assert_eq!(
        error(&multicast("\t\taddress = \"ff05::3:1\";")),
        "test.conf:7: ff05::3:1 is an ipv6 address but the family is ipv4 (the default); set family = \"ipv6\"; in this block"
    );
    assert_eq!(
        error(&multicast("\t\tinterface = \"a-very-long-interface-name\";")),
        "test.conf:7: `a-very-long-interface-name` is not a valid interface name (at most 15 bytes, no `/` or white space)"
    );
    assert_eq!(
        error(&with(
            "listeners {\n\tvsock {\n\t\tport = \"4294967295\";\n\t}\n}\n"
        )),
        "test.conf:7: port 4294967295 is out of range (1 to 4294967294)"
    );
    assert_eq!(
        error(&with("listeners {\n\tserial {\n\t\tmode = \"vmchanel\";\n\t}\n}\n")),
        "test.conf:7: unknown serial mode `vmchanel` (expected serial or vmchannel) (did you mean `vmchannel`?)"
    );
    assert_eq!(
        error(&with("backends {\n\tcpg {\n\t\tname_mode = \"id\";\n\t}\n}\n")),
        "test.conf:7: unknown name_mode `id` (expected name or uuid)"
    );
    assert_eq!(
        error("fence_virtd {\n\tlistener = \"tcp\";\n\tbackend = \"libvirt\";\n\tdebug = \"verbose\";\n}\n"),
        "test.conf:4: `debug` must be a whole number (0 = off), not `verbose`"
    );
    assert_eq!(
        error("fence_virtd {\n\tlistener = \"tcp\";\n\tbackend = \"libvirt\";\n\tforeground = \"yes\";\n}\n"),
        "test.conf:4: `foreground` must be a whole number (0 = off), not `yes`"
    );
}

#[test]
fn unused_blocks_are_validated_too() {
    // The multicast block is not run (listener = "tcp") but its errors count.
    assert_eq!(
        error(&with("listeners {\n\tmulticast {\n\t\tport = \"x\";\n\t}\n}\n")),
        "test.conf:7: port `x` is not a number"
    );
    assert_eq!(
        error(&with(
            "backends {\n\tcpg {\n\t\turi = \"qemu:///system\";\n\t\tname_mode = \"x\";\n\t}\n}\n"
        )),
        "test.conf:8: unknown name_mode `x` (expected name or uuid)"
    );
}

#[test]
fn all_errors_are_collected_in_line_order() {
    let text = "fence_virtd {\n\
                \tlistener = \"tcp,vsock,bogus\";\n\
                \tdebug = \"x\";\n\
                }\n\
                listeners {\n\
                \ttcp {\n\
                \t\tport = \"0\";\n\
                \t\thash = \"sha3\";\n\
                \t}\n\
                \tvsock {\n\
                \t\tprot = \"5\";\n\
                \t}\n\
                }\n";
    assert_eq!(
        errors(text),
        vec![
            "test.conf:1: the fence_virtd block has no `backend`; it is required (for example backend = \"libvirt\";)",
            "test.conf:2: unknown listener `bogus` (known: multicast, tcp, vsock, serial)",
            "test.conf:3: `debug` must be a whole number (0 = off), not `x`",
            "test.conf:7: port 0 is out of range (1 to 65535)",
            "test.conf:8: unknown hash `sha3` (expected none, sha1, sha256 or sha512) (did you mean `sha1`?)",
            "test.conf:11: unknown key `prot` in listeners/vsock (did you mean `port`?)",
        ]
    );
}

#[test]
fn display_of_the_whole_error_list_is_one_line_per_error() {
    let err = parse_config("fence_virtd {\n}\n", Path::new("x.conf")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "x.conf:1: the fence_virtd block has no `listener`; it is required (for example listener = \"multicast\";)\n\
         x.conf:1: the fence_virtd block has no `backend`; it is required (for example backend = \"libvirt\";)"
    );
}
