//! The statement grammar of spec §6.3 over the lexer's tokens:
//!
//! ```text
//! file       := statement+
//! statement  := block | assignment
//! block      := IDENT '{' statement* '}' | IDENT '=' VALUE '{' statement* '}'
//! assignment := IDENT '=' VALUE ';'
//! ```
//!
//! Open blocks are kept on an explicit stack and nesting is limited to
//! [`MAX_DEPTH`] levels (real files use three), so hostile input cannot make
//! later recursive walks overflow the stack. Parsing stops at the first
//! syntax error: after a missing `;` or brace the rest of the file cannot be
//! interpreted reliably.

use super::lexer::{Lexer, Token, TokenKind};
use super::{Assignment, Block, BlockValue, Item, SyntaxError, SyntaxErrorKind, Tree};

/// Deepest block nesting accepted.
pub const MAX_DEPTH: usize = 32;

/// Parse a whole configuration text into a [`Tree`].
pub fn parse(text: &str) -> Result<Tree, SyntaxError> {
    let mut lexer = Lexer::new(text);
    let mut top: Vec<Item> = Vec::new();
    let mut open: Vec<Block> = Vec::new();
    loop {
        let token = lexer.next_token()?;
        let line = token.line;
        match token.kind {
            TokenKind::Eof => {
                if let Some(block) = open.pop() {
                    return Err(SyntaxError {
                        line: block.line,
                        kind: SyntaxErrorKind::UnclosedBlock {
                            name: block.name,
                            line: block.line,
                        },
                    });
                }
                if top.is_empty() {
                    return Err(SyntaxError {
                        line,
                        kind: SyntaxErrorKind::EmptyFile,
                    });
                }
                return Ok(Tree { items: top });
            }
            TokenKind::CloseBrace => {
                let Some(mut block) = open.pop() else {
                    return Err(SyntaxError {
                        line,
                        kind: SyntaxErrorKind::UnbalancedClose,
                    });
                };
                block.end_line = line;
                current(&mut top, &mut open).push(Item::Block(block));
            }
            TokenKind::Ident(name) => {
                if let Some(block) = statement(&mut lexer, name, line)? {
                    match block {
                        Statement::Assignment(a) => current(&mut top, &mut open).push(Item::Assignment(a)),
                        Statement::OpenBlock(b) => {
                            if open.len() >= MAX_DEPTH {
                                return Err(SyntaxError {
                                    line,
                                    kind: SyntaxErrorKind::TooDeep { max: MAX_DEPTH },
                                });
                            }
                            open.push(b)
                        }
                    }
                }
            }
            other => {
                return Err(SyntaxError {
                    line,
                    kind: SyntaxErrorKind::ExpectedName {
                        found: other.describe(),
                    },
                })
            }
        }
    }
}

enum Statement {
    Assignment(Assignment),
    OpenBlock(Block),
}

fn current<'a>(top: &'a mut Vec<Item>, open: &'a mut [Block]) -> &'a mut Vec<Item> {
    match open.last_mut() {
        Some(block) => &mut block.items,
        None => top,
    }
}

/// After a name: `{` opens a block; `= "v" ;` is an assignment; `= "v" {`
/// opens a block with a value.
fn statement(lexer: &mut Lexer<'_>, name: String, name_line: u32) -> Result<Option<Statement>, SyntaxError> {
    let Token { line, kind } = lexer.next_token()?;
    match kind {
        TokenKind::OpenBrace => Ok(Some(Statement::OpenBlock(open_block(name, name_line, None)))),
        TokenKind::Equals => {
            let Token { line, kind } = lexer.next_token()?;
            let (value, value_end) = match kind {
                TokenKind::Value(value, end) => (value, end),
                TokenKind::EmptyValue => {
                    return Err(SyntaxError {
                        line,
                        kind: SyntaxErrorKind::EmptyValue { key: name },
                    })
                }
                TokenKind::Ident(word) => {
                    return Err(SyntaxError {
                        line,
                        kind: SyntaxErrorKind::UnquotedValue { key: name, word },
                    })
                }
                other => {
                    return Err(SyntaxError {
                        line,
                        kind: SyntaxErrorKind::MissingValue {
                            key: name,
                            found: other.describe(),
                        },
                    })
                }
            };
            let value_line = line;
            let after = lexer.next_token()?;
            match after.kind {
                TokenKind::Semicolon => Ok(Some(Statement::Assignment(Assignment {
                    key: name,
                    key_line: name_line,
                    value,
                    value_line,
                }))),
                TokenKind::OpenBrace => Ok(Some(Statement::OpenBlock(open_block(
                    name,
                    name_line,
                    Some(BlockValue {
                        text: value,
                        line: value_line,
                    }),
                )))),
                other => Err(SyntaxError {
                    line: value_end,
                    kind: SyntaxErrorKind::MissingSemicolon {
                        key: name,
                        found: other.describe(),
                    },
                }),
            }
        }
        other => Err(SyntaxError {
            line,
            kind: SyntaxErrorKind::ExpectedEqualsOrBrace {
                name,
                found: other.describe(),
            },
        }),
    }
}

fn open_block(name: String, line: u32, value: Option<BlockValue>) -> Block {
    Block {
        name,
        line,
        value,
        items: Vec::new(),
        end_line: line,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn err(text: &str) -> SyntaxError {
        parse(text).unwrap_err()
    }

    #[test]
    fn nested_blocks_values_and_lines() {
        let tree = parse("top = \"t\";\n\na {\n  b = \"x\" {\n    k = \"v\";\n  }\n}\n").unwrap();
        assert_eq!(tree.items.len(), 2);
        let Item::Assignment(top) = &tree.items[0] else {
            panic!("assignment expected")
        };
        assert_eq!(
            (top.key.as_str(), top.value.as_str(), top.key_line),
            ("top", "t", 1)
        );
        let Item::Block(a) = &tree.items[1] else {
            panic!("block expected")
        };
        assert_eq!((a.line, a.end_line), (3, 7));
        let Item::Block(b) = &a.items[0] else {
            panic!("block expected")
        };
        assert_eq!(
            b.value,
            Some(BlockValue {
                text: "x".into(),
                line: 4
            })
        );
        let Item::Assignment(k) = &b.items[0] else {
            panic!("assignment expected")
        };
        assert_eq!((k.key_line, k.value_line), (5, 5));
    }

    #[test]
    fn empty_blocks_are_fine_empty_files_are_not() {
        assert!(parse("a { }").is_ok());
        assert_eq!(err("").kind, SyntaxErrorKind::EmptyFile);
        assert_eq!(
            err("# only a comment\n\n"),
            SyntaxError {
                line: 3,
                kind: SyntaxErrorKind::EmptyFile
            }
        );
    }

    #[test]
    fn missing_semicolon_names_the_key_and_line() {
        let e = err("a {\n  listener = \"tcp\"\n  backend = \"libvirt\";\n}");
        assert_eq!(e.line, 2);
        assert_eq!(
            e.kind,
            SyntaxErrorKind::MissingSemicolon {
                key: "listener".into(),
                found: "`backend`".into()
            }
        );
    }

    #[test]
    fn unquoted_and_empty_values() {
        let e = err("a = b;");
        assert_eq!(
            e.kind,
            SyntaxErrorKind::UnquotedValue {
                key: "a".into(),
                word: "b".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "line 1: value of `a` must be in double quotes: write a = \"b\";"
        );
        assert_eq!(
            err("x {\na = \"\";}").kind,
            SyntaxErrorKind::EmptyValue { key: "a".into() }
        );
        assert_eq!(
            err("a = ;").kind,
            SyntaxErrorKind::MissingValue {
                key: "a".into(),
                found: "`;`".into()
            }
        );
    }

    #[test]
    fn braces_must_balance() {
        let e = err("a {\n b {\n  c = \"1\";\n }\n");
        assert_eq!(
            e,
            SyntaxError {
                line: 1,
                kind: SyntaxErrorKind::UnclosedBlock {
                    name: "a".into(),
                    line: 1
                }
            }
        );
        assert_eq!(err("a { }\n}").kind, SyntaxErrorKind::UnbalancedClose);
        assert_eq!(err("a { }\n}").line, 2);
    }

    #[test]
    fn statements_start_with_a_name() {
        assert_eq!(
            err(";").kind,
            SyntaxErrorKind::ExpectedName { found: "`;`".into() }
        );
        assert_eq!(
            err("\"v\";").kind,
            SyntaxErrorKind::ExpectedName {
                found: "the quoted value \"v\"".into()
            }
        );
        assert_eq!(
            err("a b").kind,
            SyntaxErrorKind::ExpectedEqualsOrBrace {
                name: "a".into(),
                found: "`b`".into()
            }
        );
    }

    #[test]
    fn nesting_depth_is_limited() {
        let ok = format!("{}{}", "a{".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let deep = format!("{}{}", "a{".repeat(100_000), "}".repeat(100_000));
        assert_eq!(err(&deep).kind, SyntaxErrorKind::TooDeep { max: MAX_DEPTH });
    }
}
