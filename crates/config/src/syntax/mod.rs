//! Stage one of reading `fence_virt.conf`: text to a syntax tree.
//!
//! The grammar is the classic one (spec §6.3): identifiers, double-quoted
//! values without escapes (they may span lines), `#` comments, `{ } ; =`,
//! blocks, blocks carrying a value (`group = "g1" { ... }`) and assignments,
//! also at the top level. Unlike the classic parser, which prepends every
//! sibling and so stores them in reverse, the [`Tree`] keeps **file order**
//! and the line of every key, value and block; the lookup helpers reproduce
//! the classic meaning on top of that order (names compare case-insensitively,
//! the last of several equal keys or blocks wins).
//!
//! This module knows nothing about which keys exist; that is the job of
//! [`crate::settings`].

mod lexer;
mod parser;

pub use parser::{parse, MAX_DEPTH};

/// Why a text is not a valid configuration file, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct SyntaxError {
    /// 1-based line the problem is reported at.
    pub line: u32,
    /// What is wrong.
    pub kind: SyntaxErrorKind,
}

/// The causes of a syntax error. Each message says what is wrong in terms of
/// the file, not of the parser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxErrorKind {
    /// Nothing but whitespace and comments: the classic parser rejects it.
    #[error("the file contains no settings (an empty file is not a valid configuration)")]
    EmptyFile,
    /// The bytes are not UTF-8.
    #[error("the file is not valid UTF-8 text")]
    NotUtf8,
    /// A carriage return outside a quoted value.
    #[error(
        "carriage return character: the file has DOS (CRLF) line endings, which fence_virtd \
         cannot read; convert it with `dos2unix`"
    )]
    CarriageReturn,
    /// A control character (other than tab and newline) outside a quoted value.
    #[error("unexpected control character U+{0:04X}")]
    ControlCharacter(u32),
    /// A NUL byte inside a quoted value.
    #[error("a quoted value contains a NUL byte")]
    NulInValue,
    /// `"` without a closing `"` before the end of the file.
    #[error("quoted value starting on this line is never closed (missing `\"`)")]
    UnterminatedValue,
    /// `key = "";`: the classic grammar has no empty value.
    #[error(
        "empty value for `{key}`: \"\" is not allowed (fence_virtd rejects it); \
         remove the line to use the default"
    )]
    EmptyValue {
        /// The key (or block name) the value belongs to.
        key: String,
    },
    /// `key = word;`: values must be quoted.
    #[error("value of `{key}` must be in double quotes: write {key} = \"{word}\";")]
    UnquotedValue {
        /// The key.
        key: String,
        /// The unquoted word that was found.
        word: String,
    },
    /// `key = "v"` followed by something other than `;` or `{`.
    #[error("missing `;` after the value of `{key}` (found {found})")]
    MissingSemicolon {
        /// The key whose statement is not terminated.
        key: String,
        /// What came instead.
        found: String,
    },
    /// `key =` followed by something that is not a value.
    #[error("expected a quoted value after `{key} =`, found {found}")]
    MissingValue {
        /// The key.
        key: String,
        /// What came instead.
        found: String,
    },
    /// A name followed by something other than `=` or `{`.
    #[error("expected `=` or `{{` after `{name}`, found {found}")]
    ExpectedEqualsOrBrace {
        /// The name.
        name: String,
        /// What came instead.
        found: String,
    },
    /// A statement that does not start with a name.
    #[error("expected a key or block name, found {found}")]
    ExpectedName {
        /// What came instead.
        found: String,
    },
    /// `}` with no open block.
    #[error("unbalanced `}}`: there is no open block to close")]
    UnbalancedClose,
    /// Blocks nested deeper than the parser accepts.
    #[error("blocks are nested more than {max} levels deep")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// End of file inside a block; reported at the block's opening line.
    #[error("block `{name}` opened on line {line} is never closed (missing `}}` at end of file)")]
    UnclosedBlock {
        /// Name of the innermost open block.
        name: String,
        /// Line where it was opened.
        line: u32,
    },
}

/// A parsed file: its top-level statements in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    /// Top-level blocks and assignments, in file order.
    pub items: Vec<Item>,
}

/// One statement: a block or an assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `name { ... }` or `name = "value" { ... }`.
    Block(Block),
    /// `key = "value";`.
    Assignment(Assignment),
}

/// `key = "value";`. Line numbers are 1-based; 0 means "not from a file".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The key as written (compare with [`eq_name`]).
    pub key: String,
    /// Line of the key.
    pub key_line: u32,
    /// The value without its quotes, exactly as written (may contain newlines).
    pub value: String,
    /// Line where the value starts (its opening quote).
    pub value_line: u32,
}

/// A quoted value attached to a block name: the `"g1"` of `group = "g1" { }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockValue {
    /// The value without its quotes.
    pub text: String,
    /// Line of its opening quote.
    pub line: u32,
}

/// `name { ... }` with its children in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The block name as written.
    pub name: String,
    /// Line of the name.
    pub line: u32,
    /// The optional value of `name = "value" { ... }`.
    pub value: Option<BlockValue>,
    /// Children in file order.
    pub items: Vec<Item>,
    /// Line of the closing `}`.
    pub end_line: u32,
}

/// Case-insensitive name comparison, as the classic lookups do (ASCII only,
/// like `strcasecmp` in the C locale).
pub fn eq_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

impl Tree {
    /// An empty tree (not a valid file by itself).
    pub fn new() -> Tree {
        Tree::default()
    }

    /// The effective value of a top-level key: the last one in the file.
    pub fn value(&self, key: &str) -> Option<&Assignment> {
        last_value(&self.items, key)
    }

    /// The effective top-level block of that name: the last one in the file.
    pub fn block(&self, name: &str) -> Option<&Block> {
        last_block(&self.items, name)
    }

    /// Every top-level block of that name, in file order.
    pub fn blocks<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
        blocks_named(&self.items, name)
    }

    /// Classic path lookup (`sc_get`): `fence_virtd/@listener`,
    /// `groups/group[2]/@uuid[1]`, `backends/libvirt/@uri`.
    ///
    /// Each path element selects a block; `name[N]` selects the N-th block of
    /// that name **counting from the end of the file** (N ≥ 1), which is what
    /// the classic reversed storage produces; a plain name is `name[1]`, the
    /// last one. The final `@key[N]` selects a value the same way. A path that
    /// ends in a block name returns that block's own value, if it has one.
    /// Returns `None` for anything not found or a malformed path.
    pub fn get(&self, path: &str) -> Option<&str> {
        let mut items = &self.items;
        let mut parts = path.split('/').peekable();
        while let Some(part) = parts.next() {
            let last = parts.peek().is_none();
            if let Some(key) = part.strip_prefix('@') {
                if !last {
                    return None;
                }
                let (key, nth) = split_index(key)?;
                return items
                    .iter()
                    .rev()
                    .filter_map(|item| match item {
                        Item::Assignment(a) if eq_name(&a.key, key) => Some(a.value.as_str()),
                        _ => None,
                    })
                    .nth(nth - 1);
            }
            let (name, nth) = split_index(part)?;
            let block = items
                .iter()
                .rev()
                .filter_map(|item| match item {
                    Item::Block(b) if eq_name(&b.name, name) => Some(b),
                    _ => None,
                })
                .nth(nth - 1)?;
            if last {
                return block.value.as_ref().map(|v| v.text.as_str());
            }
            items = &block.items;
        }
        None
    }

    /// Structural equality that ignores line numbers: what a round trip
    /// through the writer must preserve.
    pub fn same_content(&self, other: &Tree) -> bool {
        same_items(&self.items, &other.items)
    }
}

impl Block {
    /// A block with no children, for building trees in code (lines are 0).
    pub fn new(name: impl Into<String>) -> Block {
        Block {
            name: name.into(),
            line: 0,
            value: None,
            items: Vec::new(),
            end_line: 0,
        }
    }

    /// The effective value of a key in this block: the last one.
    pub fn value(&self, key: &str) -> Option<&Assignment> {
        last_value(&self.items, key)
    }

    /// Every value of a key in this block, in file order (for list keys such
    /// as `ip` and `uuid`).
    pub fn values<'a>(&'a self, key: &'a str) -> impl DoubleEndedIterator<Item = &'a Assignment> + 'a {
        values_named(&self.items, key)
    }

    /// The effective child block of that name: the last one.
    pub fn block(&self, name: &str) -> Option<&Block> {
        last_block(&self.items, name)
    }

    /// Every child block of that name, in file order.
    pub fn blocks<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
        blocks_named(&self.items, name)
    }

    /// Append `key = "value";` (builder helper; lines are 0).
    pub fn push_value(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.items.push(Item::Assignment(Assignment::new(key, value)));
    }

    /// Append a child block (builder helper).
    pub fn push_block(&mut self, block: Block) {
        self.items.push(Item::Block(block));
    }
}

impl Assignment {
    /// An assignment built in code (lines are 0).
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Assignment {
        Assignment {
            key: key.into(),
            key_line: 0,
            value: value.into(),
            value_line: 0,
        }
    }
}

fn last_value<'a>(items: &'a [Item], key: &str) -> Option<&'a Assignment> {
    items.iter().rev().find_map(|item| match item {
        Item::Assignment(a) if eq_name(&a.key, key) => Some(a),
        _ => None,
    })
}

fn last_block<'a>(items: &'a [Item], name: &str) -> Option<&'a Block> {
    items.iter().rev().find_map(|item| match item {
        Item::Block(b) if eq_name(&b.name, name) => Some(b),
        _ => None,
    })
}

fn values_named<'a>(items: &'a [Item], key: &'a str) -> impl DoubleEndedIterator<Item = &'a Assignment> + 'a {
    items.iter().filter_map(move |item| match item {
        Item::Assignment(a) if eq_name(&a.key, key) => Some(a),
        _ => None,
    })
}

fn blocks_named<'a>(items: &'a [Item], name: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
    items.iter().filter_map(move |item| match item {
        Item::Block(b) if eq_name(&b.name, name) => Some(b),
        _ => None,
    })
}

/// `name[3]` → ("name", 3); `name` → ("name", 1); `name[0]` and junk → None.
fn split_index(part: &str) -> Option<(&str, usize)> {
    match part.find('[') {
        None => Some((part, 1)),
        Some(open) => {
            let index = part[open + 1..].strip_suffix(']')?.parse::<usize>().ok()?;
            (index >= 1).then_some((&part[..open], index))
        }
    }
}

fn same_items(a: &[Item], b: &[Item]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|pair| match pair {
            (Item::Assignment(x), Item::Assignment(y)) => x.key == y.key && x.value == y.value,
            (Item::Block(x), Item::Block(y)) => {
                x.name == y.name
                    && x.value.as_ref().map(|v| &v.text) == y.value.as_ref().map(|v| &v.text)
                    && same_items(&x.items, &y.items)
            }
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const TEXT: &str = r#"
fence_virtd { listener = "tcp"; LISTENER = "multicast"; }
fence_virtd { backend = "libvirt"; }
groups {
    group = "g1" { uuid = "a"; uuid = "b"; }
    group { ip = "10.0.0.1"; }
}
"#;

    #[test]
    fn last_block_and_last_key_win_case_insensitively() {
        let tree = parse(TEXT).unwrap();
        // Only the last fence_virtd block is searched, like the classic lookup.
        assert_eq!(tree.get("fence_virtd/@listener"), None);
        assert_eq!(tree.get("FENCE_VIRTD/@Backend"), Some("libvirt"));
        let first = tree.blocks("fence_virtd").next().unwrap();
        assert_eq!(first.value("listener").unwrap().value, "multicast");
        assert_eq!(first.values("Listener").count(), 2);
    }

    #[test]
    fn indexes_count_from_the_end_like_the_classic_reversed_lists() {
        let tree = parse(TEXT).unwrap();
        assert_eq!(tree.get("groups/group[1]/@ip"), Some("10.0.0.1"));
        assert_eq!(tree.get("groups/group[2]"), Some("g1"));
        assert_eq!(tree.get("groups/group[2]/@uuid[1]"), Some("b"));
        assert_eq!(tree.get("groups/group[2]/@uuid[2]"), Some("a"));
        assert_eq!(tree.get("groups/group[2]/@uuid[3]"), None);
        assert_eq!(tree.get("groups/group[3]"), None);
        assert_eq!(tree.get("groups/group[0]"), None);
        assert_eq!(tree.get("groups/group[x]"), None);
        assert_eq!(tree.get("groups/@ip/x"), None);
    }

    #[test]
    fn same_content_ignores_lines_only() {
        let a = parse("a { b = \"1\"; }").unwrap();
        let b = parse("\n\na {\n b = \"1\";\n}\n").unwrap();
        let c = parse("a { b = \"2\"; }").unwrap();
        assert!(a.same_content(&b));
        assert!(!a.same_content(&c));
        assert_ne!(a, b);
    }
}
