//! Small in-place edits of a parsed [`Tree`], so the dialogue changes only
//! the keys it asks about and everything else of the file (other keys, other
//! blocks, their order and line numbers, which the comments hang on) stays.
//!
//! Lookups follow the classic rules: names compare case-insensitively and of
//! several blocks or keys with one name the last one is the one in force, so
//! that is the one edited.

use vmfence_config::syntax::{eq_name, Assignment, Block, Item};
use vmfence_config::Tree;

/// The block in force at `path` (`["listeners", "tcp"]`), created (appended)
/// with any missing parents. `path` is a constant of the dialogue, never
/// empty.
pub fn block_mut<'a>(tree: &'a mut Tree, path: &[&str]) -> &'a mut Block {
    let (first, rest) = match path.split_first() {
        Some(split) => split,
        None => unreachable!("configure: empty tree path"),
    };
    let mut block = child_mut(&mut tree.items, first);
    for name in rest {
        block = child_mut(&mut block.items, name);
    }
    block
}

/// The block in force at `path`, if there is one.
pub fn block<'a>(tree: &'a Tree, path: &[&str]) -> Option<&'a Block> {
    let (first, rest) = path.split_first()?;
    let mut block = tree.block(first)?;
    for name in rest {
        block = block.block(name)?;
    }
    Some(block)
}

/// The value in force of `key` in the block at `path`.
pub fn value<'a>(tree: &'a Tree, path: &[&str], key: &str) -> Option<&'a str> {
    block(tree, path)?.value(key).map(|a| a.value.as_str())
}

/// Set `key` in `block`: the assignment in force gets the new value (it
/// keeps its place and spelling); earlier assignments of the same key, which
/// it overrides anyway, are removed; a missing key is appended.
pub fn set(block: &mut Block, key: &str, value: &str) {
    let positions: Vec<usize> = assignments(&block.items, key).collect();
    match positions.split_last() {
        Some((&last, earlier)) => {
            if let Some(Item::Assignment(a)) = block.items.get_mut(last) {
                a.value = value.to_owned();
            }
            for &i in earlier.iter().rev() {
                block.items.remove(i);
            }
        }
        None => block.items.push(Item::Assignment(Assignment::new(key, value))),
    }
}

/// Remove every assignment of `key` from `block`.
pub fn remove(block: &mut Block, key: &str) {
    block
        .items
        .retain(|item| !matches!(item, Item::Assignment(a) if eq_name(&a.key, key)));
}

/// Remove every assignment whose key satisfies `pred`.
pub fn remove_where(block: &mut Block, mut pred: impl FnMut(&str) -> bool) {
    block
        .items
        .retain(|item| !matches!(item, Item::Assignment(a) if pred(&a.key)));
}

/// Remove every block named `name` from `items`; returns the removed blocks.
pub fn remove_blocks(items: &mut Vec<Item>, name: &str) -> Vec<Block> {
    let mut removed = Vec::new();
    let mut kept = Vec::with_capacity(items.len());
    for item in items.drain(..) {
        match item {
            Item::Block(b) if eq_name(&b.name, name) => removed.push(b),
            other => kept.push(other),
        }
    }
    *items = kept;
    removed
}

fn assignments<'a>(items: &'a [Item], key: &'a str) -> impl Iterator<Item = usize> + 'a {
    items.iter().enumerate().filter_map(move |(i, item)| match item {
        Item::Assignment(a) if eq_name(&a.key, key) => Some(i),
        _ => None,
    })
}

fn child_mut<'a>(items: &'a mut Vec<Item>, name: &str) -> &'a mut Block {
    let found = items
        .iter()
        .rposition(|item| matches!(item, Item::Block(b) if eq_name(&b.name, name)));
    let index = match found {
        Some(i) => i,
        None => {
            items.push(Item::Block(Block::new(name)));
            items.len() - 1
        }
    };
    match &mut items[index] {
        Item::Block(b) => b,
        // `rposition` matched a block.
        Item::Assignment(_) => unreachable!("configure: tree index is not a block"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use vmfence_config::{parse, write_tree};

    use super::*;

    #[test]
    fn set_edits_the_key_in_force_and_drops_the_overridden_ones() {
        let mut tree = parse(
            "fence_virtd { listener = \"x\"; } fence_virtd { LISTENER = \"tcp\"; debug = \"1\"; Listener = \"vsock\"; }",
        )
        .unwrap();
        set(block_mut(&mut tree, &["fence_virtd"]), "listener", "multicast");
        assert_eq!(
            write_tree(&tree).unwrap(),
            "fence_virtd {\n\tlistener = \"x\";\n}\n\nfence_virtd {\n\tdebug = \"1\";\n\tListener = \"multicast\";\n}\n"
        );
        assert_eq!(value(&tree, &["fence_virtd"], "listener"), Some("multicast"));
    }

    #[test]
    fn missing_blocks_and_keys_are_appended() {
        let mut tree = parse("groups { }").unwrap();
        set(block_mut(&mut tree, &["listeners", "tcp"]), "port", "1230");
        set(block_mut(&mut tree, &["listeners", "tcp"]), "port", "1231");
        assert_eq!(
            write_tree(&tree).unwrap(),
            "groups {\n}\n\nlisteners {\n\ttcp {\n\t\tport = \"1231\";\n\t}\n}\n"
        );
        assert!(block(&tree, &["listeners", "vsock"]).is_none());
        assert_eq!(value(&tree, &["listeners", "tcp"], "PORT"), Some("1231"));
    }

    #[test]
    fn removing() {
        let mut tree =
            parse("b { uri = \"a\"; uri1 = \"b\"; Uri = \"c\"; name_mode = \"uuid\"; } groups { group { ip = \"1\"; } x = \"y\"; GROUP { } }")
                .unwrap();
        remove(block_mut(&mut tree, &["b"]), "uri");
        remove_where(block_mut(&mut tree, &["b"]), |k| k.starts_with("uri"));
        let removed = remove_blocks(&mut block_mut(&mut tree, &["groups"]).items, "group");
        assert_eq!(removed.len(), 2);
        assert_eq!(
            write_tree(&tree).unwrap(),
            "b {\n\tname_mode = \"uuid\";\n}\n\ngroups {\n\tx = \"y\";\n}\n"
        );
    }
}
