//! Keeping the comments of the file being reconfigured.
//!
//! The syntax tree of `vmfence-config` has no comments, but it has the line
//! of every statement. [`Comments::scan`] finds each `#` comment of the
//! original text with the same rules as the configuration lexer (`#` starts a
//! comment where a token may start, never inside a quoted value or a word)
//! and notes whether it stands on a line of its own or trails a statement.
//! [`render`] then writes the edited tree in the layout of
//! `vmfence_config::write_tree` and puts every comment back:
//!
//! * a comment on its own line goes before the first statement that came
//!   after it in the original file and is still there, at that statement's
//!   indentation (or before the `}` of its block, or at the end of the file);
//! * a trailing comment stays at the end of the line of the statement it
//!   followed, as long as that statement is still there; otherwise it goes
//!   on a line of its own as above.
//!
//! Comments inside a block the dialogue removes are dropped with it
//! ([`Comments::forget`]). Statements the dialogue adds have no line and
//! carry no comment.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use vmfence_config::syntax::{Block, BlockValue, Item};
use vmfence_config::Tree;

/// The comments of a text, by line (a line holds at most one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comments {
    by_line: BTreeMap<u32, Comment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Comment {
    /// From `#` to the end of the line.
    text: String,
    /// True when a statement precedes it on its line.
    trailing: bool,
}

impl Comments {
    /// Find the comments of a configuration text.
    pub fn scan(text: &str) -> Comments {
        let mut by_line = BTreeMap::new();
        let mut line = 1u32;
        let mut in_quote = false;
        let mut in_word = false;
        let mut line_has_code = false;
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if in_quote {
                match c {
                    '"' => in_quote = false,
                    '\n' => line += 1,
                    _ => {}
                }
                continue;
            }
            match c {
                '\n' => {
                    line += 1;
                    in_word = false;
                    line_has_code = false;
                }
                ' ' | '\t' => in_word = false,
                '#' if !in_word => {
                    let rest = &text[i..];
                    let end = rest.find('\n').unwrap_or(rest.len());
                    by_line.insert(
                        line,
                        Comment {
                            text: rest[..end].trim_end().to_owned(),
                            trailing: line_has_code,
                        },
                    );
                    while chars.next_if(|&(_, c)| c != '\n').is_some() {}
                }
                '"' => {
                    in_quote = true;
                    in_word = false;
                    line_has_code = true;
                }
                '{' | '}' | ';' | '=' => {
                    in_word = false;
                    line_has_code = true;
                }
                _ => {
                    in_word = true;
                    line_has_code = true;
                }
            }
        }
        Comments { by_line }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_line.is_empty()
    }

    /// Drop the comments of a removed block on lines `first..=last`, and the
    /// comment lines directly above it (no blank line between), which
    /// describe it.
    pub fn forget(&mut self, first: u32, last: u32) {
        if first == 0 || last < first {
            return;
        }
        self.by_line.retain(|&line, _| !(first..=last).contains(&line));
        let mut above = first - 1;
        while above > 0 && self.by_line.get(&above).is_some_and(|c| !c.trailing) {
            self.by_line.remove(&above);
            above -= 1;
        }
    }

    /// Every comment before `line`, in order, removed from the set.
    fn take_before(&mut self, line: u32) -> Vec<Comment> {
        let later = self.by_line.split_off(&line);
        let before = std::mem::replace(&mut self.by_line, later);
        before.into_values().collect()
    }

    /// The trailing comment of `line`, if there is one.
    fn take_trailing(&mut self, line: u32) -> Option<String> {
        match self.by_line.get(&line) {
            Some(c) if c.trailing && line != 0 => self.by_line.remove(&line).map(|c| c.text),
            _ => None,
        }
    }
}

/// The tree as text with the comments put back (see the module docs). The
/// layout is that of `vmfence_config::write_tree`; the caller checks that
/// names and values are writable (with `write_tree`) before calling this.
pub fn render(tree: &Tree, mut comments: Comments) -> String {
    let mut out = String::new();
    for (i, item) in tree.items.iter().enumerate() {
        if i > 0 && (matches!(item, Item::Block(_)) || matches!(tree.items[i - 1], Item::Block(_))) {
            out.push('\n');
        }
        let next = tree.items.get(i + 1).map_or(0, start_line);
        emit_before(&mut out, &mut comments, start_line(item), 0);
        render_item(&mut out, item, 0, next, &mut comments);
    }
    let rest = comments.take_before(u32::MAX);
    if !rest.is_empty() && !out.is_empty() {
        out.push('\n');
    }
    for c in rest {
        let _ = writeln!(out, "{}", c.text);
    }
    out
}

/// The line an item starts on (0 for items the dialogue added).
fn start_line(item: &Item) -> u32 {
    match item {
        Item::Assignment(a) => a.key_line,
        Item::Block(b) => b.line,
    }
}

fn emit_before(out: &mut String, comments: &mut Comments, line: u32, depth: usize) {
    if line == 0 {
        return;
    }
    let indent = "\t".repeat(depth);
    for c in comments.take_before(line) {
        let _ = writeln!(out, "{indent}{}", c.text);
    }
}

/// `next` is the line where whatever follows this item starts (0 if
/// unknown): a trailing comment on a line shared with it belongs to the
/// last statement of the line.
fn render_item(out: &mut String, item: &Item, depth: usize, next: u32, comments: &mut Comments) {
    let indent = "\t".repeat(depth);
    match item {
        Item::Assignment(a) => {
            let _ = write!(out, "{indent}{} = \"{}\";", a.key, a.value);
            let newlines = u32::try_from(a.value.matches('\n').count()).unwrap_or(0);
            let end = if a.value_line == 0 {
                0
            } else {
                a.value_line.saturating_add(newlines)
            };
            trail(out, comments, end, next);
        }
        Item::Block(b) => render_block(out, b, depth, next, comments),
    }
}

fn render_block(out: &mut String, b: &Block, depth: usize, next: u32, comments: &mut Comments) {
    let indent = "\t".repeat(depth);
    match &b.value {
        Some(BlockValue { text, .. }) => {
            let _ = write!(out, "{indent}{} = \"{text}\" {{", b.name);
        }
        None => {
            let _ = write!(out, "{indent}{} {{", b.name);
        }
    }
    let first_child = b.items.first().map_or(b.end_line, start_line);
    trail(out, comments, b.line, first_child);
    for (i, child) in b.items.iter().enumerate() {
        let following = b.items.get(i + 1).map_or(b.end_line, start_line);
        emit_before(out, comments, start_line(child), depth + 1);
        render_item(out, child, depth + 1, following, comments);
    }
    emit_before(out, comments, b.end_line, depth + 1);
    let _ = write!(out, "{indent}}}");
    trail(out, comments, b.end_line, next);
}

/// End the current line, with the trailing comment of `line` if nothing
/// else follows on that line.
fn trail(out: &mut String, comments: &mut Comments, line: u32, next: u32) {
    if line != 0 && line != next {
        if let Some(text) = comments.take_trailing(line) {
            let _ = write!(out, " {text}");
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use vmfence_config::{parse, write_tree};

    use super::*;
    use crate::configure::edit;

    const TEXT: &str = "# header line 1\n\
        #header line 2\n\
        \n\
        fence_virtd { # the daemon\n\
        \t# which listener\n\
        \tlistener = \"multicast\"; # trailing\n\
        \tbackend = \"lib#virt\";\n\
        \tmodule_path = \"/x\" ; key#not = \"comment\";\n\
        \t# before the brace\n\
        } # after the brace\n\
        \n\
        # about groups\n\
        groups { group { uuid = \"a\nb # in a value\n#still in value\"; # after a multi-line value\n\
        ip = \"1\"; } }\n\
        # the end\n";

    #[test]
    fn scan_follows_the_lexer() {
        let c = Comments::scan(TEXT);
        let lines: Vec<(u32, &str, bool)> = c
            .by_line
            .iter()
            .map(|(l, c)| (*l, c.text.as_str(), c.trailing))
            .collect();
        assert_eq!(
            lines,
            vec![
                (1, "# header line 1", false),
                (2, "#header line 2", false),
                (4, "# the daemon", true),
                (5, "# which listener", false),
                (6, "# trailing", true),
                (9, "# before the brace", false),
                (10, "# after the brace", true),
                (12, "# about groups", false),
                (15, "# after a multi-line value", true),
                (17, "# the end", false),
            ]
        );
    }

    #[test]
    fn render_puts_every_comment_back_and_means_the_same() {
        let tree = parse(TEXT).unwrap();
        let text = render(&tree, Comments::scan(TEXT));
        assert!(parse(&text).unwrap().same_content(&tree), "{text}");
        assert_eq!(
            text,
            "# header line 1\n\
             #header line 2\n\
             fence_virtd { # the daemon\n\
             \t# which listener\n\
             \tlistener = \"multicast\"; # trailing\n\
             \tbackend = \"lib#virt\";\n\
             \tmodule_path = \"/x\";\n\
             \tkey#not = \"comment\";\n\
             \t# before the brace\n\
             } # after the brace\n\
             \n\
             # about groups\n\
             groups {\n\
             \tgroup {\n\
             \t\tuuid = \"a\nb # in a value\n#still in value\"; # after a multi-line value\n\
             \t\tip = \"1\";\n\
             \t}\n\
             }\n\
             \n\
             # the end\n"
        );
        // Without comments the layout is exactly the writer's.
        assert_eq!(render(&tree, Comments::default()), write_tree(&tree).unwrap());
    }

    #[test]
    fn comments_of_removed_statements_move_on_and_removed_blocks_take_theirs() {
        let text = "a {\n\t# about x\n\tx = \"1\"; # x trailing\n\ty = \"2\";\n}\n# groups\ngroups {\n\t# inside\n\tgroup { ip = \"1\"; }\n}\n";
        let mut tree = parse(text).unwrap();
        let mut comments = Comments::scan(text);
        edit::remove(edit::block_mut(&mut tree, &["a"]), "x");
        let groups = edit::remove_blocks(&mut tree.items, "groups");
        for g in &groups {
            comments.forget(g.line, g.end_line);
        }
        edit::set(edit::block_mut(&mut tree, &["a"]), "z", "3");
        let out = render(&tree, comments);
        assert_eq!(
            out,
            "a {\n\t# about x\n\t# x trailing\n\ty = \"2\";\n\tz = \"3\";\n}\n"
        );
    }

    #[test]
    fn a_trailing_comment_of_a_one_line_block_stays_after_its_brace() {
        let text = "a { b = \"1\"; c = \"2\"; } # one line\n";
        let tree = parse(text).unwrap();
        assert_eq!(
            render(&tree, Comments::scan(text)),
            "a {\n\tb = \"1\";\n\tc = \"2\";\n} # one line\n"
        );
    }
}
