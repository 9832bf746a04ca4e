//! Rendering a [`Tree`] or a [`Config`] as `fence_virt.conf` text.
//!
//! The output is in the tree's (file) order, indented with one tab per
//! level, every value quoted, `key = "value";` and `name { ... }` — the shape
//! the classic `fence_virtd -c` writes and the classic parser reads. Unlike
//! the classic writer, siblings are not reversed on every rewrite. Comments
//! are not part of the tree and are not written. Names and values the format
//! cannot express (empty values, `"` in a value, punctuation in a name) are
//! refused rather than written into a file that would not parse back.
//!
//! [`Config::to_tree`] turns typed settings into a tree with every setting
//! explicit, so the written file does not depend on anyone's defaults; the
//! one exception is the tcp/vsock `auth` key, omitted while it has its default
//! value because the classic daemon would misread it as `hash` (spec §7.1
//! item 8).

use std::fmt::Write as _;

use vmfence_proto::HashType;

use crate::settings::{AuthSettings, BackendSettings, Config, ListenerSettings};
use crate::syntax::{Block, BlockValue, Item, Tree};

/// A tree that cannot be written as valid text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// A key or block name that would not read back as one identifier.
    #[error(
        "cannot write the name `{name}`: a name must not be empty, start with `#`, or contain white \
         space, control characters, `\"` or any of {{ }} ; ="
    )]
    BadName {
        /// The name.
        name: String,
    },
    /// `""` is not part of the grammar.
    #[error("cannot write an empty value for `{key}`: the file format has no empty string")]
    EmptyValue {
        /// The key or block name.
        key: String,
    },
    /// Values have no escapes, so `"` cannot be written.
    #[error("cannot write the value of `{key}`: it contains `\"`, which the file format cannot express")]
    QuoteInValue {
        /// The key or block name.
        key: String,
    },
    /// NUL bytes end values early in the classic daemon.
    #[error("cannot write the value of `{key}`: it contains a NUL byte")]
    NulInValue {
        /// The key or block name.
        key: String,
    },
}

/// Render a tree as text.
pub fn write_tree(tree: &Tree) -> Result<String, WriteError> {
    let mut out = String::new();
    for (i, item) in tree.items.iter().enumerate() {
        if i > 0 && (matches!(item, Item::Block(_)) || matches!(tree.items[i - 1], Item::Block(_))) {
            out.push('\n');
        }
        write_item(&mut out, item, 0)?;
    }
    Ok(out)
}

/// Render typed settings as text (see [`Config::to_tree`]).
pub fn write_config(config: &Config) -> Result<String, WriteError> {
    write_tree(&config.to_tree())
}

impl Config {
    /// The settings as a tree: `fence_virtd`, the listeners that run, the
    /// selected backend and the groups, all values explicit. Unused listener
    /// and backend blocks of the source file are not part of a [`Config`]
    /// and are not written.
    pub fn to_tree(&self) -> Tree {
        let mut daemon = Block::new("fence_virtd");
        let names: Vec<&str> = self.listeners.iter().map(|l| l.kind().name()).collect();
        daemon.push_value("listener", names.join(","));
        daemon.push_value("backend", self.backend.kind().name());
        if let Some(path) = &self.daemon.module_path {
            daemon.push_value("module_path", path.clone());
        }
        if self.daemon.debug != 0 {
            daemon.push_value("debug", self.daemon.debug.to_string());
        }
        if self.daemon.foreground {
            daemon.push_value("foreground", "1");
        }
        if self.daemon.wait_for_init {
            daemon.push_value("wait_for_init", "1");
        }

        let mut listeners = Block::new("listeners");
        for listener in &self.listeners {
            listeners.push_block(listener_block(listener));
        }

        let mut backends = Block::new("backends");
        let mut backend = Block::new(self.backend.kind().name());
        for (i, uri) in self.backend.uris().iter().enumerate() {
            // Renumbered without gaps, so the classic daemon reads them all.
            let key = if i == 0 {
                "uri".to_owned()
            } else {
                format!("uri{i}")
            };
            backend.push_value(key, uri.clone());
        }
        if let BackendSettings::Cpg(cpg) = &self.backend {
            backend.push_value("name_mode", cpg.name_mode.name());
        }
        backends.push_block(backend);

        let mut items = vec![Item::Block(daemon), Item::Block(listeners), Item::Block(backends)];
        if !self.groups.is_empty() {
            let mut groups = Block::new("groups");
            for group in &self.groups {
                let mut block = Block::new("group");
                if let Some(name) = &group.name {
                    block.push_value("name", name.clone());
                }
                for uuid in &group.uuids {
                    block.push_value("uuid", uuid.clone());
                }
                for ip in &group.ips {
                    block.push_value("ip", ip.clone());
                }
                groups.push_block(block);
            }
            items.push(Item::Block(groups));
        }
        Tree { items }
    }
}

fn listener_block(listener: &ListenerSettings) -> Block {
    let mut block = Block::new(listener.kind().name());
    match listener {
        ListenerSettings::Multicast(m) => {
            push_auth(&mut block, &m.auth, true);
            block.push_value("family", m.family.name());
            block.push_value("address", m.address.to_string());
            block.push_value("port", m.port.to_string());
            if let Some(interface) = &m.interface {
                block.push_value("interface", interface.clone());
            }
        }
        ListenerSettings::Tcp(t) => {
            push_auth(&mut block, &t.auth, false);
            block.push_value("family", t.family.name());
            block.push_value("address", t.address.to_string());
            block.push_value("port", t.port.to_string());
        }
        ListenerSettings::Vsock(v) => {
            push_auth(&mut block, &v.auth, false);
            block.push_value("port", v.port.to_string());
        }
        ListenerSettings::Serial(s) => {
            if let Some(uri) = &s.uri {
                block.push_value("uri", uri.clone());
            }
            if let Some(path) = &s.path {
                block.push_value("path", path.to_string_lossy().into_owned());
            }
            block.push_value("mode", s.mode.name());
        }
    }
    block
}

/// `always_auth` is false for tcp/vsock, whose `auth` the classic daemon
/// misreads: it is then written only when it differs from the default.
fn push_auth(block: &mut Block, auth: &AuthSettings, always_auth: bool) {
    block.push_value("key_file", auth.key_file.path.to_string_lossy().into_owned());
    block.push_value("hash", auth.hash.name());
    if always_auth || auth.auth != HashType::default() {
        block.push_value("auth", auth.auth.name());
    }
}

fn write_item(out: &mut String, item: &Item, depth: usize) -> Result<(), WriteError> {
    let indent = "\t".repeat(depth);
    match item {
        Item::Assignment(a) => {
            check_name(&a.key)?;
            check_value(&a.key, &a.value)?;
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{indent}{} = \"{}\";", a.key, a.value);
        }
        Item::Block(b) => {
            check_name(&b.name)?;
            match &b.value {
                Some(BlockValue { text, .. }) => {
                    check_value(&b.name, text)?;
                    let _ = writeln!(out, "{indent}{} = \"{text}\" {{", b.name);
                }
                None => {
                    let _ = writeln!(out, "{indent}{} {{", b.name);
                }
            }
            for child in &b.items {
                write_item(out, child, depth + 1)?;
            }
            let _ = writeln!(out, "{indent}}}");
        }
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), WriteError> {
    let bad = name.is_empty()
        || name.starts_with('#')
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "{};=\"".contains(c));
    if bad {
        Err(WriteError::BadName {
            name: name.to_owned(),
        })
    } else {
        Ok(())
    }
}

fn check_value(key: &str, value: &str) -> Result<(), WriteError> {
    if value.is_empty() {
        Err(WriteError::EmptyValue { key: key.to_owned() })
    } else if value.contains('"') {
        Err(WriteError::QuoteInValue { key: key.to_owned() })
    } else if value.contains('\0') {
        Err(WriteError::NulInValue { key: key.to_owned() })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::syntax::{parse, Assignment};

    #[test]
    fn layout_is_tabs_quotes_and_blank_lines_between_top_level_blocks() {
        let tree = parse("a{b=\"1\";c = \"x\" { d = \"2\"; }}\ntop = \"t\";\ne { }").unwrap();
        let text = write_tree(&tree).unwrap();
        assert_eq!(
            text,
            "a {\n\tb = \"1\";\n\tc = \"x\" {\n\t\td = \"2\";\n\t}\n}\n\ntop = \"t\";\n\ne {\n}\n"
        );
        assert!(parse(&text).unwrap().same_content(&tree));
    }

    #[test]
    fn multi_line_values_survive() {
        let tree = parse("a = \"line one\nline two\";").unwrap();
        let again = parse(&write_tree(&tree).unwrap()).unwrap();
        assert!(again.same_content(&tree));
    }

    #[test]
    fn unwritable_names_and_values_are_refused() {
        let mut block = Block::new("ok");
        block.items.push(Item::Assignment(Assignment::new("k", "")));
        let tree = Tree {
            items: vec![Item::Block(block)],
        };
        assert_eq!(
            write_tree(&tree).unwrap_err(),
            WriteError::EmptyValue { key: "k".into() }
        );

        for name in ["", "#x", "a b", "a;b", "a=b", "a\"b", "a\rb"] {
            let tree = Tree {
                items: vec![Item::Assignment(Assignment::new(name, "v"))],
            };
            assert_eq!(
                write_tree(&tree).unwrap_err(),
                WriteError::BadName { name: name.into() },
                "{name:?}"
            );
        }
        let tree = Tree {
            items: vec![Item::Assignment(Assignment::new("k", "a\"b"))],
        };
        assert_eq!(
            write_tree(&tree).unwrap_err(),
            WriteError::QuoteInValue { key: "k".into() }
        );
        let tree = Tree {
            items: vec![Item::Assignment(Assignment::new("k", "a\0b"))],
        };
        assert_eq!(
            write_tree(&tree).unwrap_err(),
            WriteError::NulInValue { key: "k".into() }
        );
    }
}
