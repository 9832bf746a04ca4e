//! Reading our daemon's log lines (`tracing` fmt format):
//! `TIMESTAMP  LEVEL message key=value key="quoted value" ...`.

use std::collections::BTreeMap;

/// Remove ANSI escape sequences (`ESC [ ... letter`).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// One parsed log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `TRACE`, `DEBUG`, `INFO`, `WARN` or `ERROR`.
    pub level: String,
    /// The message (`request`, `request refused`, ...).
    pub message: String,
    /// Structured fields, quotes removed.
    pub fields: BTreeMap<String, String>,
    /// The whole line, for error messages.
    pub raw: String,
}

impl LogLine {
    /// Parse a line (ANSI already stripped); `None` for lines that are not
    /// `tracing` events (e.g. a panic message).
    pub fn parse(line: &str) -> Option<LogLine> {
        let levels = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];
        let mut rest = line.trim_start();
        let first = rest.split_whitespace().next()?;
        if !levels.contains(&first) {
            // a timestamp first
            rest = rest[first.len()..].trim_start();
        }
        let level = rest.split_whitespace().next()?;
        if !levels.contains(&level) {
            return None;
        }
        rest = rest[level.len()..].trim_start();
        let parts = split_fields(rest);
        let mut message = String::new();
        let mut fields = BTreeMap::new();
        for (i, part) in parts.iter().enumerate() {
            match field(part) {
                Some((k, v)) => {
                    fields.insert(k, v);
                }
                None if i == 0 => message = part.clone(),
                None => {}
            }
        }
        Some(LogLine {
            level: level.to_owned(),
            message,
            fields,
            raw: line.to_owned(),
        })
    }

    /// A field's value, or "" when absent.
    pub fn get(&self, key: &str) -> &str {
        self.fields.get(key).map(String::as_str).unwrap_or("")
    }
}

fn is_field_start(s: &str) -> bool {
    let Some(eq) = s.find('=') else { return false };
    eq > 0 && s[..eq].chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn field(part: &str) -> Option<(String, String)> {
    if !is_field_start(part) {
        return None;
    }
    let (k, v) = part.split_once('=')?;
    Some((k.to_owned(), unquote(v)))
}

fn unquote(v: &str) -> String {
    let Some(inner) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return v.to_owned();
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Split `message k=v k="v w" k=v w` at spaces outside quotes that start a
/// new `key=`; the first part is the message unless it is itself a field.
fn split_fields(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut escaped = false;
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if in_quote {
            cur.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quote = false;
            }
            continue;
        }
        if c == ' ' {
            let ahead: String = chars[i + 1..].iter().collect();
            let word = ahead.split(' ').next().unwrap_or("");
            if is_field_start(word) {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
        }
        if c == '"' && cur.ends_with('=') {
            in_quote = true;
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_request_line() {
        let raw = "\u{1b}[2m2026-11-21T22:13:51.364576Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m request \
                   \u{1b}[3mlistener\u{1b}[0m\u{1b}[2m=\u{1b}[0mmulticast \u{1b}[3mpeer\u{1b}[0m\u{1b}[2m=\
                   \u{1b}[0m\"10.231.0.11:1229\" op=\"status\" domain=\"a b\" code=0 \
                   detail=Connection refused (os error 111) latency_ms=0";
        let l = LogLine::parse(&strip_ansi(raw)).unwrap();
        assert_eq!(l.level, "INFO");
        assert_eq!(l.message, "request");
        assert_eq!(l.get("listener"), "multicast");
        assert_eq!(l.get("peer"), "10.231.0.11:1229");
        assert_eq!(l.get("domain"), "a b");
        assert_eq!(l.get("code"), "0");
        assert_eq!(l.get("detail"), "Connection refused (os error 111)");
        assert_eq!(l.get("latency_ms"), "0");
    }

    #[test]
    fn parses_messages_with_spaces_and_no_fields() {
        let l = LogLine::parse("2026-11-21T22:13:51Z  WARN request refused reason=\"replay\"").unwrap();
        assert_eq!(l.message, "request refused");
        assert_eq!(l.get("reason"), "replay");
        let l = LogLine::parse("INFO ready").unwrap();
        assert_eq!(l.message, "ready");
        assert!(LogLine::parse("thread main panicked").is_none());
    }
}
