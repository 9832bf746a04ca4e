//! Files written by [`vmfence_config::writer`] are read by the classic C
//! `fence_virtd` (Debian fence-virtd 4.12.1) as we read them.
//!
//! The classic daemon dumps the tree it parsed when run with `-d4`; that dump
//! (siblings reversed, child blocks before values) is compared with our tree.
//! For safety the configuration always uses the tcp listener on 127.0.0.1 with
//! a free port and libvirt's `test:///default`; no multicast. The daemon is
//! started in the foreground and killed by its pid as soon as it has printed
//! what we need (at most a few seconds). Skipped, with a message, when the
//! classic daemon is not installed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vmfence_config::syntax::{eq_name, Block, Item, Tree};
use vmfence_config::{parse, parse_config, write_config, write_tree};

const CLASSIC: &str = "/usr/sbin/fence_virtd";

/// Stops the classic daemon (our child, by its pid) however the test ends:
/// SIGTERM first, so that it exits through its normal path and flushes its
/// block-buffered standard output; SIGKILL if it is still there after 3 s.
struct Running(Child);

impl Running {
    fn stop(&mut self) {
        if matches!(self.0.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

fn classic_available() -> bool {
    if Path::new(CLASSIC).exists() {
        true
    } else {
        println!("skipped: {CLASSIC} is not installed (Debian package fence-virtd)");
        false
    }
}

fn free_loopback_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Run the classic daemon on `conf` until it exits or its tcp listener
/// accepts a connection on `port` (at most 5 s), stop it, and return its
/// output.
fn classic_output(dir: &Path, conf: &Path, port: u16) -> String {
    let out_path = dir.join("classic.out");
    let out = fs::File::create(&out_path).unwrap();
    let child = Command::new(CLASSIC)
        .arg("-F")
        .arg("-d4")
        .arg("-f")
        .arg(conf)
        .arg("-p")
        .arg(dir.join("classic.pid"))
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if running.0.try_wait().unwrap().is_some() {
            break;
        }
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    running.stop();
    fs::read_to_string(&out_path).unwrap()
}

/// The tree part of the `-d4` output: after "Debugging threshold is now 4",
/// up to "Backend plugin:".
fn dumped_tree(output: &str) -> Tree {
    let start = output
        .find("Debugging threshold is now 4\n")
        .unwrap_or_else(|| panic!("no dump in:\n{output}"));
    let rest = &output[start..];
    let rest = &rest[rest.find('\n').unwrap() + 1..];
    let end = rest
        .find("Backend plugin:")
        .unwrap_or_else(|| panic!("dump not finished:\n{output}"));
    parse(&rest[..end]).unwrap()
}

/// How the classic daemon stores a tree: per block, child blocks then values,
/// each list reversed.
fn classic_order(items: &[Item]) -> Vec<Item> {
    let blocks = items.iter().rev().filter_map(|i| match i {
        Item::Block(b) => Some(Item::Block(Block {
            items: classic_order(&b.items),
            ..b.clone()
        })),
        Item::Assignment(_) => None,
    });
    let values = items
        .iter()
        .rev()
        .filter(|i| matches!(i, Item::Assignment(_)))
        .cloned();
    blocks.chain(values).collect()
}

/// Drop the `debug = "4"` that `-d4` adds to the dumped fence_virtd block.
fn without_injected_debug(mut tree: Tree) -> Tree {
    for item in &mut tree.items {
        if let Item::Block(b) = item {
            if eq_name(&b.name, "fence_virtd") {
                if let Some(pos) = b
                    .items
                    .iter()
                    .position(|i| matches!(i, Item::Assignment(a) if a.key == "debug"))
                {
                    b.items.remove(pos);
                }
            }
        }
    }
    tree
}

fn setup(dir: &Path) -> (String, u16) {
    let key = dir.join("fence_xvm.key");
    fs::write(&key, [0x5au8; 128]).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    (key.display().to_string(), free_loopback_port())
}

fn check_classic_reads(dir: &Path, name: &str, text: &str, port: u16) {
    let ours = parse(text).unwrap();
    let conf = dir.join(name);
    fs::write(&conf, text).unwrap();
    let output = classic_output(dir, &conf, port);
    assert!(
        !output.contains("Failed to parse"),
        "classic fence_virtd rejected {name}:\n{text}\n{output}"
    );
    let theirs = without_injected_debug(dumped_tree(&output));
    let expected = Tree {
        items: classic_order(&ours.items),
    };
    assert!(
        theirs.same_content(&expected),
        "classic read {name} differently:\n{output}\nexpected:\n{}",
        write_tree(&expected).unwrap()
    );
    if output.contains("failed to initialize") {
        println!(
            "note: the classic backend did not start (libvirt test driver missing?); parsing was checked"
        );
    } else {
        assert!(output.contains(&format!("Got {port} for port")), "{output}");
        assert!(output.contains("Got 127.0.0.1 for address"), "{output}");
    }
}

#[test]
fn classic_daemon_reads_what_we_write() {
    if !classic_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (key, port) = setup(dir.path());
    let source = format!(
        "# a tcp configuration with every kind of statement\n\
         fence_virtd {{\n  listener = \"tcp\";\n  backend = \"libvirt\";\n  wait_for_init = \"0\";\n}}\n\
         listeners {{\n  tcp {{\n    key_file = \"{key}\";\n    address = \"127.0.0.1\";\n    port = \"{port}\";\n\
         \x20   hash = \"sha256\";\n  }}\n  vsock {{ port = \"1229\"; }}\n}}\n\
         backends {{ libvirt {{ uri = \"test:///default\"; uri1 = \"test:///default\"; }} }}\n\
         groups {{\n  group = \"g1\" {{ uuid = \"test\"; uuid = \"6695eb01-f6a4-8304-79aa-97f2502e193f\"; ip = \"127.0.0.1\"; }}\n\
         \x20 group {{ name = \"g2\"; ip = \"10.0.0.1\"; uuid = \"other\"; }}\n}}\n"
    );

    // The tree written back verbatim (file order, our layout).
    let tree_text = write_tree(&parse(&source).unwrap()).unwrap();
    check_classic_reads(dir.path(), "tree.conf", &tree_text, port);

    // The typed settings written with every value explicit.
    let config = parse_config(&source, Path::new("source.conf")).unwrap();
    let config_text = write_config(&config).unwrap();
    check_classic_reads(dir.path(), "config.conf", &config_text, port);
}
