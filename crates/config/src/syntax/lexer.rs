//! Tokens of `fence_virt.conf`, following the classic flex rules (spec §6.3):
//! whitespace is space, tab and newline; `#` starts a comment wherever a token
//! may start; an identifier is a run of anything but whitespace, `{ } ; = "`;
//! a value is `"` + one or more non-`"` characters + `"`, without escapes.
//!
//! Deviations are all rejections with a clearer message where the classic
//! lexer would produce a confusing syntax error later: carriage returns and
//! other control characters outside values, NUL inside values, and `""`
//! (which the classic lexer cannot tokenise at all).

use super::{SyntaxError, SyntaxErrorKind};

/// One token and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub line: u32,
    pub kind: TokenKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TokenKind {
    Ident(String),
    /// A quoted value (without quotes) and the line of its closing quote.
    Value(String, u32),
    /// `""`.
    EmptyValue,
    OpenBrace,
    CloseBrace,
    Semicolon,
    Equals,
    Eof,
}

impl TokenKind {
    /// How the token is named in error messages.
    pub fn describe(&self) -> String {
        match self {
            TokenKind::Ident(word) => format!("`{word}`"),
            TokenKind::Value(text, _) => format!("the quoted value \"{}\"", abbreviate(text)),
            TokenKind::EmptyValue => "\"\"".to_owned(),
            TokenKind::OpenBrace => "`{`".to_owned(),
            TokenKind::CloseBrace => "`}`".to_owned(),
            TokenKind::Semicolon => "`;`".to_owned(),
            TokenKind::Equals => "`=`".to_owned(),
            TokenKind::Eof => "the end of the file".to_owned(),
        }
    }
}

/// A pull tokenizer over the whole text.
pub(super) struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    line: u32,
}

impl<'a> Lexer<'a> {
    pub fn new(text: &'a str) -> Lexer<'a> {
        Lexer {
            text,
            pos: 0,
            line: 1,
        }
    }

    /// The next token; `Eof` forever at the end.
    pub fn next_token(&mut self) -> Result<Token, SyntaxError> {
        self.skip_blanks_and_comments();
        let line = self.line;
        let Some(c) = self.peek() else {
            return Ok(Token {
                line,
                kind: TokenKind::Eof,
            });
        };
        let kind = match c {
            '{' => self.single(TokenKind::OpenBrace),
            '}' => self.single(TokenKind::CloseBrace),
            ';' => self.single(TokenKind::Semicolon),
            '=' => self.single(TokenKind::Equals),
            '"' => self.quoted()?,
            _ => self.ident()?,
        };
        Ok(Token { line, kind })
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn single(&mut self, kind: TokenKind) -> TokenKind {
        self.pos += 1;
        kind
    }

    fn skip_blanks_and_comments(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' => self.pos += 1,
                '\n' => {
                    self.pos += 1;
                    self.line += 1;
                }
                '#' => {
                    let rest = &self.text[self.pos..];
                    self.pos += rest.find('\n').unwrap_or(rest.len());
                }
                _ => break,
            }
        }
    }

    fn quoted(&mut self) -> Result<TokenKind, SyntaxError> {
        let start_line = self.line;
        let body_start = self.pos + 1;
        let Some(len) = self.text[body_start..].find('"') else {
            return Err(SyntaxError {
                line: start_line,
                kind: SyntaxErrorKind::UnterminatedValue,
            });
        };
        let body = &self.text[body_start..body_start + len];
        self.pos = body_start + len + 1;
        self.line += count_newlines(body);
        if body.is_empty() {
            return Ok(TokenKind::EmptyValue);
        }
        if body.contains('\0') {
            return Err(SyntaxError {
                line: start_line,
                kind: SyntaxErrorKind::NulInValue,
            });
        }
        Ok(TokenKind::Value(body.to_owned(), self.line))
    }

    fn ident(&mut self) -> Result<TokenKind, SyntaxError> {
        let start = self.pos;
        for c in self.text[start..].chars() {
            if matches!(c, ' ' | '\t' | '\n' | '{' | '}' | ';' | '=' | '"') {
                break;
            }
            if c == '\r' {
                return Err(SyntaxError {
                    line: self.line,
                    kind: SyntaxErrorKind::CarriageReturn,
                });
            }
            if c.is_control() {
                return Err(SyntaxError {
                    line: self.line,
                    kind: SyntaxErrorKind::ControlCharacter(u32::from(c)),
                });
            }
            self.pos += c.len_utf8();
        }
        Ok(TokenKind::Ident(self.text[start..self.pos].to_owned()))
    }
}

/// Newlines in a text, saturating (a file with 4 billion lines is not a
/// configuration file, but it must not panic either).
fn count_newlines(text: &str) -> u32 {
    u32::try_from(text.bytes().filter(|&b| b == b'\n').count()).unwrap_or(u32::MAX)
}

fn abbreviate(text: &str) -> String {
    const MAX: usize = 40;
    let first_line = text.lines().next().unwrap_or("");
    if first_line.chars().count() > MAX || first_line.len() != text.len() {
        let cut: String = first_line.chars().take(MAX).collect();
        format!("{cut}...")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        let mut lexer = Lexer::new(text);
        let mut out = Vec::new();
        loop {
            let token = lexer.next_token().unwrap();
            if token.kind == TokenKind::Eof {
                return out;
            }
            out.push(token.kind);
        }
    }

    #[test]
    fn punctuation_identifiers_and_values() {
        assert_eq!(
            kinds("a{b=\"x y\";}"),
            vec![
                TokenKind::Ident("a".into()),
                TokenKind::OpenBrace,
                TokenKind::Ident("b".into()),
                TokenKind::Equals,
                TokenKind::Value("x y".into(), 1),
                TokenKind::Semicolon,
                TokenKind::CloseBrace,
            ]
        );
    }

    #[test]
    fn comments_only_where_a_token_starts() {
        assert_eq!(
            kinds("# c\nkey#x # comment\n#"),
            vec![TokenKind::Ident("key#x".into())]
        );
        // Inside a value a # is just a character.
        assert_eq!(kinds("\"#x\""), vec![TokenKind::Value("#x".into(), 1)]);
    }

    #[test]
    fn values_may_span_lines_and_lines_are_counted() {
        let mut lexer = Lexer::new("\"a\nb\"\nnext");
        let value = lexer.next_token().unwrap();
        assert_eq!(
            value,
            Token {
                line: 1,
                kind: TokenKind::Value("a\nb".into(), 2)
            }
        );
        let next = lexer.next_token().unwrap();
        assert_eq!(next.line, 3);
    }

    #[test]
    fn empty_and_unterminated_values() {
        assert_eq!(kinds("\"\""), vec![TokenKind::EmptyValue]);
        let err = Lexer::new("\n\"abc").next_token().unwrap_err();
        assert_eq!(
            err,
            SyntaxError {
                line: 2,
                kind: SyntaxErrorKind::UnterminatedValue
            }
        );
    }

    #[test]
    fn carriage_return_and_control_characters() {
        let mut lexer = Lexer::new("a;\r\n");
        lexer.next_token().unwrap();
        lexer.next_token().unwrap();
        assert_eq!(
            lexer.next_token().unwrap_err().kind,
            SyntaxErrorKind::CarriageReturn
        );
        let err = Lexer::new("a\u{7}").next_token().unwrap_err();
        assert_eq!(err.kind, SyntaxErrorKind::ControlCharacter(7));
        let err = Lexer::new("\"a\0\"").next_token().unwrap_err();
        assert_eq!(err.kind, SyntaxErrorKind::NulInValue);
        // A carriage return inside a value is part of the value.
        assert_eq!(kinds("\"a\r\""), vec![TokenKind::Value("a\r".into(), 1)]);
    }
}
