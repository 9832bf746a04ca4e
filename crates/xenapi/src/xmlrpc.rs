//! XML-RPC, the wire format of XenAPI, without any I/O: method calls are
//! encoded to text, response bodies decoded into [`Value`]s.
//!
//! XenAPI's dialect is plain XML-RPC with two habits a decoder must accept:
//! most scalars come *untyped* (`<value>Running</value>` is a string, and
//! 64-bit integers are decimal strings too), and `void` is an empty string.
//! The decoder takes any byte string and either returns a value or says
//! what is wrong; it refuses documents with a DTD, more than
//! [`MAX_NODES`] nodes or values nested deeper than [`MAX_DEPTH`], so a
//! hostile or broken server costs bounded time and memory. It is fuzzed
//! (`fuzz/fuzz_targets/xmlrpc.rs`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Deepest nesting of arrays and structs accepted. XenAPI's records are
/// four levels deep at most.
pub const MAX_DEPTH: usize = 32;

/// Most XML nodes accepted in one response (a pool's `VM.get_all_records`
/// with a thousand VMs is well below).
pub const MAX_NODES: u32 = 4_000_000;

/// An XML-RPC value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `<string>` or an untyped `<value>`.
    String(String),
    /// `<int>`, `<i4>` or `<i8>`.
    Int(i64),
    /// `<boolean>`.
    Bool(bool),
    /// `<double>`.
    Double(f64),
    /// `<dateTime.iso8601>`, as sent.
    DateTime(String),
    /// `<base64>`, as sent (XenAPI does not use it).
    Base64(String),
    /// `<struct>`; a repeated member name keeps the last value.
    Struct(BTreeMap<String, Value>),
    /// `<array>`.
    Array(Vec<Value>),
    /// `<nil/>` (an extension; XenAPI does not send it).
    Nil,
}

impl Value {
    /// A string value.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// The text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// An integer, typed or (as XenAPI sends 64-bit integers) a decimal string.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The elements of an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The members of a struct.
    pub fn as_struct(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Struct(m) => Some(m),
            _ => None,
        }
    }

    /// Member `name` of a struct.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.as_struct().and_then(|m| m.get(name))
    }

    /// A short name of the value's type, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Int(_) => "int",
            Value::Bool(_) => "boolean",
            Value::Double(_) => "double",
            Value::DateTime(_) => "dateTime",
            Value::Base64(_) => "base64",
            Value::Struct(_) => "struct",
            Value::Array(_) => "array",
            Value::Nil => "nil",
        }
    }
}

/// A decoded response: a value, or an XML-RPC fault (XenAPI reports its own
/// errors inside a value, see [`crate::api`]; faults come from the XML-RPC
/// layer itself).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `<params><param><value>…`.
    Value(Value),
    /// `<fault>`.
    Fault {
        /// `faultCode`.
        code: i64,
        /// `faultString`.
        message: String,
    },
}

/// A method call cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// XML 1.0 cannot carry this character, not even as a reference.
    #[error("the text of a parameter holds a character XML cannot carry (U+{0:04X})")]
    InvalidChar(u32),
    /// The method name is not of the form `Class.method`.
    #[error("bad method name '{0}'")]
    MethodName(String),
}

/// A response body is not an XML-RPC response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not UTF-8.
    #[error("the answer is not UTF-8 text")]
    NotUtf8,
    /// Not well-formed XML (or a DTD, or too many nodes).
    #[error("the answer is not well-formed XML: {0}")]
    Xml(String),
    /// The root element is not `methodResponse`.
    #[error("the answer is <{0}>, not an XML-RPC <methodResponse>")]
    NotAResponse(String),
    /// An element is missing.
    #[error("<{parent}> has no <{missing}>")]
    Missing {
        /// Where it was expected.
        parent: &'static str,
        /// What was expected.
        missing: &'static str,
    },
    /// An element that does not belong where it is.
    #[error("unexpected <{found}> in <{parent}>")]
    Unexpected {
        /// Where.
        parent: &'static str,
        /// What was found.
        found: String,
    },
    /// Text where only elements belong.
    #[error("unexpected text in <{0}>")]
    StrayText(&'static str),
    /// A response with other than one parameter.
    #[error("a response has one parameter, this one has {0}")]
    ParamCount(usize),
    /// A scalar that does not parse as its type.
    #[error("<{kind}> holds '{text}'")]
    BadScalar {
        /// The type element.
        kind: &'static str,
        /// Its text (shortened).
        text: String,
    },
    /// Deeper than [`MAX_DEPTH`].
    #[error("values nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A fault without an integer `faultCode` and a string `faultString`.
    #[error("malformed <fault>")]
    BadFault,
}

/// Encode a call of `method` with `params` as an XML-RPC request body.
/// Strings are sent typed (`<string>`), as XenAPI's own clients do.
pub fn encode_call(method: &str, params: &[Value]) -> Result<String, EncodeError> {
    let well_formed = !method.is_empty()
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
    if !well_formed {
        return Err(EncodeError::MethodName(method.chars().take(64).collect()));
    }
    let mut x = String::from("<?xml version=\"1.0\"?>\n<methodCall><methodName>");
    x.push_str(method);
    x.push_str("</methodName><params>");
    for p in params {
        x.push_str("<param>");
        encode_value(&mut x, p)?;
        x.push_str("</param>");
    }
    x.push_str("</params></methodCall>\n");
    Ok(x)
}

/// Encode `value` as a response body (what a server sends; the client
/// never needs it, the fuzz round trip and the tests do).
pub fn encode_response(value: &Value) -> Result<String, EncodeError> {
    let mut x = String::from("<?xml version=\"1.0\"?>\n<methodResponse><params><param>");
    encode_value(&mut x, value)?;
    x.push_str("</param></params></methodResponse>\n");
    Ok(x)
}

fn encode_value(x: &mut String, v: &Value) -> Result<(), EncodeError> {
    x.push_str("<value>");
    match v {
        Value::String(s) => {
            x.push_str("<string>");
            escape_into(x, s)?;
            x.push_str("</string>");
        }
        Value::Int(n) => {
            if i32::try_from(*n).is_ok() {
                let _ = write!(x, "<int>{n}</int>");
            } else {
                let _ = write!(x, "<i8>{n}</i8>");
            }
        }
        Value::Bool(b) => {
            let _ = write!(x, "<boolean>{}</boolean>", u8::from(*b));
        }
        Value::Double(d) => {
            let _ = write!(x, "<double>{d:?}</double>");
        }
        Value::DateTime(s) => {
            x.push_str("<dateTime.iso8601>");
            escape_into(x, s)?;
            x.push_str("</dateTime.iso8601>");
        }
        Value::Base64(s) => {
            x.push_str("<base64>");
            escape_into(x, s)?;
            x.push_str("</base64>");
        }
        Value::Struct(m) => {
            x.push_str("<struct>");
            for (k, v) in m {
                x.push_str("<member><name>");
                escape_into(x, k)?;
                x.push_str("</name>");
                encode_value(x, v)?;
                x.push_str("</member>");
            }
            x.push_str("</struct>");
        }
        Value::Array(a) => {
            x.push_str("<array><data>");
            for v in a {
                encode_value(x, v)?;
            }
            x.push_str("</data></array>");
        }
        Value::Nil => x.push_str("<nil/>"),
    }
    x.push_str("</value>");
    Ok(())
}

/// Whether XML 1.0 allows character `c` in a document.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn escape_into(x: &mut String, s: &str) -> Result<(), EncodeError> {
    for c in s.chars() {
        match c {
            '&' => x.push_str("&amp;"),
            '<' => x.push_str("&lt;"),
            '>' => x.push_str("&gt;"),
            // A raw CR would be read back as LF.
            '\r' => x.push_str("&#13;"),
            c if xml_char(c) => x.push(c),
            c => return Err(EncodeError::InvalidChar(u32::from(c))),
        }
    }
    Ok(())
}

/// Decode a response body.
pub fn decode_response(body: &[u8]) -> Result<Reply, DecodeError> {
    let text = std::str::from_utf8(body).map_err(|_| DecodeError::NotUtf8)?;
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    let doc =
        roxmltree::Document::parse_with_options(text, opts).map_err(|e| DecodeError::Xml(e.to_string()))?;
    let root = doc.root_element();
    if root.tag_name().name() != "methodResponse" {
        return Err(DecodeError::NotAResponse(shorten(root.tag_name().name())));
    }
    let first = only_child(root, "methodResponse")?.ok_or(DecodeError::Missing {
        parent: "methodResponse",
        missing: "params",
    })?;
    match first.tag_name().name() {
        "params" => {
            let params = elements(first, "params")?;
            if params.len() != 1 {
                return Err(DecodeError::ParamCount(params.len()));
            }
            let param = params[0];
            if param.tag_name().name() != "param" {
                return Err(unexpected("params", param));
            }
            let value = only_child(param, "param")?.ok_or(DecodeError::Missing {
                parent: "param",
                missing: "value",
            })?;
            Ok(Reply::Value(decode_value(value, 0)?))
        }
        "fault" => {
            let value = only_child(first, "fault")?.ok_or(DecodeError::Missing {
                parent: "fault",
                missing: "value",
            })?;
            let v = decode_value(value, 0)?;
            let code = v.get("faultCode").and_then(Value::as_i64);
            let message = v.get("faultString").and_then(Value::as_str);
            match (code, message) {
                (Some(code), Some(message)) => Ok(Reply::Fault {
                    code,
                    message: message.to_owned(),
                }),
                _ => Err(DecodeError::BadFault),
            }
        }
        _ => Err(unexpected("methodResponse", first)),
    }
}

fn shorten(s: &str) -> String {
    s.chars().take(40).collect()
}

fn unexpected(parent: &'static str, n: roxmltree::Node<'_, '_>) -> DecodeError {
    DecodeError::Unexpected {
        parent,
        found: shorten(n.tag_name().name()),
    }
}

/// The child elements of `n`; text other than white space is an error,
/// comments and processing instructions are skipped.
fn elements<'a, 'i>(
    n: roxmltree::Node<'a, 'i>,
    name: &'static str,
) -> Result<Vec<roxmltree::Node<'a, 'i>>, DecodeError> {
    let mut out = Vec::new();
    for c in n.children() {
        if c.is_element() {
            out.push(c);
        } else if c.is_text() && !c.text().unwrap_or("").trim().is_empty() {
            return Err(DecodeError::StrayText(name));
        }
    }
    Ok(out)
}

/// The one child element of `n`, if any; a second one is an error.
fn only_child<'a, 'i>(
    n: roxmltree::Node<'a, 'i>,
    name: &'static str,
) -> Result<Option<roxmltree::Node<'a, 'i>>, DecodeError> {
    let mut els = elements(n, name)?.into_iter();
    let first = els.next();
    match els.next() {
        Some(extra) => Err(unexpected(name, extra)),
        None => Ok(first),
    }
}

/// All text directly inside `n` (entities and CDATA already resolved).
fn text_of(n: roxmltree::Node<'_, '_>) -> String {
    n.children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect()
}

fn decode_value(v: roxmltree::Node<'_, '_>, depth: usize) -> Result<Value, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    if v.tag_name().name() != "value" {
        return Err(DecodeError::Missing {
            parent: "param",
            missing: "value",
        });
    }
    let has_element = v.children().any(|c| c.is_element());
    if !has_element {
        // Untyped: a string, with its spaces.
        return Ok(Value::String(text_of(v)));
    }
    let t = only_child(v, "value")?.ok_or(DecodeError::Missing {
        parent: "value",
        missing: "string",
    })?;
    let scalar = |kind: &'static str| -> Result<String, DecodeError> {
        if t.children().any(|c| c.is_element()) {
            return Err(DecodeError::Unexpected {
                parent: kind,
                found: "element".to_owned(),
            });
        }
        Ok(text_of(t))
    };
    let bad = |kind: &'static str, text: &str| DecodeError::BadScalar {
        kind,
        text: shorten(text),
    };
    Ok(match t.tag_name().name() {
        "string" => Value::String(scalar("string")?),
        "int" | "i4" | "i8" => {
            let s = scalar("int")?;
            Value::Int(s.trim().parse().map_err(|_| bad("int", &s))?)
        }
        "boolean" => {
            let s = scalar("boolean")?;
            match s.trim() {
                "1" => Value::Bool(true),
                "0" => Value::Bool(false),
                _ => return Err(bad("boolean", &s)),
            }
        }
        "double" => {
            let s = scalar("double")?;
            let d: f64 = s.trim().parse().map_err(|_| bad("double", &s))?;
            Value::Double(d)
        }
        "dateTime.iso8601" => Value::DateTime(scalar("dateTime.iso8601")?),
        "base64" => Value::Base64(scalar("base64")?),
        "nil" => {
            if !scalar("nil")?.trim().is_empty() {
                return Err(DecodeError::StrayText("nil"));
            }
            Value::Nil
        }
        "struct" => {
            let mut m = BTreeMap::new();
            for member in elements(t, "struct")? {
                if member.tag_name().name() != "member" {
                    return Err(unexpected("struct", member));
                }
                let (mut name, mut value) = (None, None);
                for c in elements(member, "member")? {
                    match c.tag_name().name() {
                        "name" if name.is_none() => name = Some(text_of(c)),
                        "value" if value.is_none() => value = Some(decode_value(c, depth + 1)?),
                        _ => return Err(unexpected("member", c)),
                    }
                }
                match (name, value) {
                    (Some(n), Some(v)) => {
                        m.insert(n, v);
                    }
                    (None, _) => {
                        return Err(DecodeError::Missing {
                            parent: "member",
                            missing: "name",
                        })
                    }
                    (_, None) => {
                        return Err(DecodeError::Missing {
                            parent: "member",
                            missing: "value",
                        })
                    }
                }
            }
            Value::Struct(m)
        }
        "array" => {
            let data = only_child(t, "array")?.ok_or(DecodeError::Missing {
                parent: "array",
                missing: "data",
            })?;
            if data.tag_name().name() != "data" {
                return Err(unexpected("array", data));
            }
            let mut a = Vec::new();
            for item in elements(data, "data")? {
                if item.tag_name().name() != "value" {
                    return Err(unexpected("data", item));
                }
                a.push(decode_value(item, depth + 1)?);
            }
            Value::Array(a)
        }
        _ => return Err(unexpected("value", t)),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn ok(body: &str) -> Value {
        match decode_response(body.as_bytes()) {
            Ok(Reply::Value(v)) => v,
            other => panic!("{other:?} for {body}"),
        }
    }

    fn wrap(v: &str) -> String {
        format!("<?xml version=\"1.0\"?><methodResponse><params><param>{v}</param></params></methodResponse>")
    }

    #[test]
    fn xapi_success_envelope_with_untyped_strings() {
        // As xapi sends it: untyped strings, no white space.
        let body = "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct>\
                    <member><name>Status</name><value>Success</value></member>\
                    <member><name>Value</name><value>OpaqueRef:7a1b</value></member>\
                    </struct></value></param></params></methodResponse>";
        let v = ok(body);
        assert_eq!(v.get("Status").and_then(Value::as_str), Some("Success"));
        assert_eq!(v.get("Value").and_then(Value::as_str), Some("OpaqueRef:7a1b"));
    }

    #[test]
    fn every_scalar_type_and_nesting() {
        let v = ok(&wrap(
            "<value><array><data>\n  <value><string>a &amp; b</string></value>\n\
             <value><int>-7</int></value><value><i4>8</i4></value><value><i8>9000000000</i8></value>\
             <value><boolean>1</boolean></value><value><boolean>0</boolean></value>\
             <value><double>1.5</double></value>\
             <value><dateTime.iso8601>20240102T03:04:05Z</dateTime.iso8601></value>\
             <value><base64>AAEC</base64></value><value><nil/></value>\
             <value></value><value/><value>  spaced  </value><value><![CDATA[<raw>]]></value>\
             <value><struct><member><name>k</name><value><array><data/></array></value></member></struct></value>\
             </data></array></value>",
        ));
        let a = v.as_array().unwrap();
        assert_eq!(a[0], Value::string("a & b"));
        assert_eq!(a[1], Value::Int(-7));
        assert_eq!(a[2], Value::Int(8));
        assert_eq!(a[3], Value::Int(9_000_000_000));
        assert_eq!(a[4], Value::Bool(true));
        assert_eq!(a[5], Value::Bool(false));
        assert_eq!(a[6], Value::Double(1.5));
        assert_eq!(a[7], Value::DateTime("20240102T03:04:05Z".into()));
        assert_eq!(a[8], Value::Base64("AAEC".into()));
        assert_eq!(a[9], Value::Nil);
        assert_eq!(a[10], Value::string(""));
        assert_eq!(a[11], Value::string(""));
        assert_eq!(a[12], Value::string("  spaced  "));
        assert_eq!(a[13], Value::string("<raw>"));
        assert_eq!(a[14].get("k"), Some(&Value::Array(vec![])));
        assert_eq!(Value::string(" 42 ").as_i64(), Some(42));
    }

    #[test]
    fn faults() {
        let body = "<methodResponse><fault><value><struct>\
                    <member><name>faultCode</name><value><int>4</int></value></member>\
                    <member><name>faultString</name><value><string>Too many</string></value></member>\
                    </struct></value></fault></methodResponse>";
        assert_eq!(
            decode_response(body.as_bytes()),
            Ok(Reply::Fault {
                code: 4,
                message: "Too many".into()
            })
        );
        let bad = "<methodResponse><fault><value><struct></struct></value></fault></methodResponse>";
        assert_eq!(decode_response(bad.as_bytes()), Err(DecodeError::BadFault));
    }

    #[test]
    fn malformed_answers_are_errors_not_panics() {
        type Check = fn(&DecodeError) -> bool;
        let cases: &[(&[u8], Check)] = &[
            (b"\xff\xfe", |e| *e == DecodeError::NotUtf8),
            (b"<html><body>500 Internal Error</body></html>", |e| {
                matches!(e, DecodeError::NotAResponse(_))
            }),
            (b"<methodResponse>", |e| matches!(e, DecodeError::Xml(_))),
            (b"<methodResponse></methodResponse>", |e| {
                matches!(e, DecodeError::Missing { .. })
            }),
            (b"<methodResponse><params></params></methodResponse>", |e| {
                *e == DecodeError::ParamCount(0)
            }),
            (
                b"<methodResponse><params><param><value>a</value></param><param><value>b</value></param></params></methodResponse>",
                |e| *e == DecodeError::ParamCount(2),
            ),
            (
                b"<methodResponse><params><param><value><int>x</int></value></param></params></methodResponse>",
                |e| matches!(e, DecodeError::BadScalar { kind: "int", .. }),
            ),
            (
                b"<methodResponse><params><param><value><boolean>true</boolean></value></param></params></methodResponse>",
                |e| matches!(e, DecodeError::BadScalar { kind: "boolean", .. }),
            ),
            (
                b"<methodResponse><params><param><value><blob/></value></param></params></methodResponse>",
                |e| matches!(e, DecodeError::Unexpected { .. }),
            ),
            (
                b"<methodResponse><params><param><value>x<int>1</int></value></param></params></methodResponse>",
                |e| *e == DecodeError::StrayText("value"),
            ),
            (
                b"<methodResponse><params><param><value><int>1</int><int>2</int></value></param></params></methodResponse>",
                |e| matches!(e, DecodeError::Unexpected { .. }),
            ),
            (
                b"<methodResponse><params><param><value><struct><member><value>1</value></member></struct></value></param></params></methodResponse>",
                |e| matches!(e, DecodeError::Missing { missing: "name", .. }),
            ),
            (
                b"<!DOCTYPE x [<!ENTITY a \"b\">]><methodResponse/>",
                |e| matches!(e, DecodeError::Xml(_)),
            ),
        ];
        for (body, want) in cases {
            let got = decode_response(body).unwrap_err();
            assert!(want(&got), "{}: {got:?}", String::from_utf8_lossy(body));
        }
        let deep = wrap(&format!(
            "{}{}",
            "<value><array><data>".repeat(MAX_DEPTH + 2),
            "</data></array></value>".repeat(MAX_DEPTH + 2)
        ));
        assert_eq!(decode_response(deep.as_bytes()), Err(DecodeError::TooDeep));
        let ok_depth = wrap(&format!(
            "{}{}",
            "<value><array><data>".repeat(MAX_DEPTH),
            "</data></array></value>".repeat(MAX_DEPTH)
        ));
        assert!(decode_response(ok_depth.as_bytes()).is_ok());
    }

    #[test]
    fn calls_are_escaped_and_round_trip() {
        let params = vec![
            Value::string("OpaqueRef:1"),
            Value::string("a<b>&c\r\n\"'"),
            Value::Bool(false),
            Value::Bool(true),
            Value::Int(5),
            Value::Int(1 << 40),
            Value::Array(vec![Value::string("x")]),
            Value::Struct([("k".to_owned(), Value::string("v"))].into()),
        ];
        let x = encode_call("VM.start", &params).unwrap();
        assert!(x.starts_with("<?xml version=\"1.0\"?>\n<methodCall><methodName>VM.start</methodName>"));
        assert!(x.contains("<string>a&lt;b&gt;&amp;c&#13;\n\"'</string>"), "{x}");
        assert!(x.contains("<boolean>0</boolean>"));
        assert!(x.contains("<i8>1099511627776</i8>"));
        // Read back with the response decoder: same values.
        let as_response = x
            .replace(
                "<methodCall><methodName>VM.start</methodName>",
                "<methodResponse>",
            )
            .replace("</methodCall>", "</methodResponse>");
        let doc = roxmltree::Document::parse(&as_response).unwrap();
        let values: Vec<Value> = doc
            .descendants()
            .filter(|n| n.has_tag_name("param"))
            .map(|p| decode_value(p.first_element_child().unwrap(), 0).unwrap())
            .collect();
        assert_eq!(values, params);
        assert_eq!(
            encode_call("VM.start", &[Value::string("a\u{1}")]),
            Err(EncodeError::InvalidChar(1))
        );
        assert!(matches!(
            encode_call("VM.start</methodName>", &[]),
            Err(EncodeError::MethodName(_))
        ));
    }
}
