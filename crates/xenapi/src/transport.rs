//! Getting a request body to a pool host and its answer back.
//!
//! [`Endpoint`] is a parsed `session_url`. [`Transport`] is what the client
//! needs from the network: post a body, get a body, within a time limit;
//! [`HttpTransport`] does it over HTTP or HTTPS (`ureq` on `rustls`), with
//! certificates verified against the system's trust store, or a CA file,
//! or (only when asked for) not at all. Tests substitute their own
//! transport.

use std::fmt;
use std::io;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, TlsProvider};

/// Largest answer read (64 MiB; `VM.get_all_records` of a thousand VMs is a
/// few MiB).
pub const MAX_BODY: u64 = 64 << 20;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP (the password crosses the network in clear).
    Http,
    /// HTTP over TLS.
    Https,
}

/// Where a pool host's API is: scheme, host, optional port, path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host name or address (an IPv6 address without brackets).
    pub host: String,
    /// The port, when the URL gave one.
    pub port: Option<u16>,
    /// The request path (`/` by default).
    pub path: String,
}

/// A `session_url` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Another scheme than http or https.
    #[error("'{0}': only http:// and https:// URLs are supported")]
    Scheme(String),
    /// No host.
    #[error("'{0}': no host name")]
    NoHost(String),
    /// A bad port.
    #[error("'{0}': bad port")]
    Port(String),
    /// Characters a host name cannot have, or user information.
    #[error("'{0}': bad host (user names and passwords go in login and password, not the URL)")]
    Host(String),
}

impl Endpoint {
    /// Parse `https://host[:port][/path]`, `http://…`, or a bare `host[:port]`
    /// (which means https).
    pub fn parse(url: &str) -> Result<Endpoint, UrlError> {
        let url = url.trim();
        let err_url = || url.chars().take(200).collect::<String>();
        let (scheme, rest) = match url.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("https") => (Scheme::Https, rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("http") => (Scheme::Http, rest),
            Some(_) => return Err(UrlError::Scheme(err_url())),
            None => (Scheme::Https, url),
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], &rest[i..]),
            Some(i) => (&rest[..i], "/"),
            None => (rest, "/"),
        };
        let path = path.split(['?', '#']).next().unwrap_or("/");
        if authority.is_empty() {
            return Err(UrlError::NoHost(err_url()));
        }
        if authority.contains('@') {
            return Err(UrlError::Host(err_url()));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| UrlError::Host(err_url()))?;
            if h.parse::<Ipv6Addr>().is_err() {
                return Err(UrlError::Host(err_url()));
            }
            match after {
                "" => (h, None),
                p => (
                    h,
                    Some(p.strip_prefix(':').ok_or_else(|| UrlError::Port(err_url()))?),
                ),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| UrlError::Port(err_url()))?,
            ),
        };
        if host.is_empty() {
            return Err(UrlError::NoHost(err_url()));
        }
        let bracketed = authority.starts_with('[');
        let host_ok = bracketed
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
        if !host_ok {
            return Err(UrlError::Host(err_url()));
        }
        Ok(Endpoint {
            scheme,
            host: host.to_owned(),
            port,
            path: if path.is_empty() {
                "/".to_owned()
            } else {
                path.to_owned()
            },
        })
    }

    /// The same scheme, port and path on another host: where a pool member
    /// that is not the master points (XenAPI gives only the address).
    pub fn with_host(&self, host: &str) -> Endpoint {
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        Endpoint {
            host: host.to_owned(),
            ..self.clone()
        }
    }

    /// The URL.
    pub fn url(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]", self.host)?;
        } else {
            write!(f, "{scheme}://{}", self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        f.write_str(&self.path)
    }
}

/// A request did not get an answer body.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No answer in time.
    #[error("no answer within {} s", .0.as_secs_f32())]
    Timeout(Duration),
    /// The TLS handshake failed, e.g. the certificate is not trusted.
    #[error("TLS: {0}")]
    Tls(String),
    /// The certificate was refused.
    #[error("TLS: the server's certificate is not accepted ({0}); give the CA with cacert, or (unsafe) ssl_insecure")]
    Certificate(String),
    /// No connection (refused, unreachable, name unknown).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// An HTTP status other than 200.
    #[error("HTTP status {status}{}", if .body.is_empty() { String::new() } else { format!(": {}", .body) })]
    Status {
        /// The status code.
        status: u16,
        /// The start of the body, as text.
        body: String,
    },
    /// The answer is larger than [`MAX_BODY`].
    #[error("the answer is larger than {0} bytes")]
    TooLarge(u64),
    /// Anything else HTTP could go wrong with.
    #[error(transparent)]
    Http(ureq::Error),
}

/// What the client needs from the network.
pub trait Transport {
    /// Post `body` (an XML-RPC call) to `endpoint` and return the answer
    /// body; give up after `timeout`.
    fn post(
        &mut self,
        endpoint: &Endpoint,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, TransportError>;
}

/// How server certificates are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    /// Against the system trust store (`/etc/ssl/certs`, or `SSL_CERT_FILE`).
    System,
    /// Against the certificates of this PEM file only.
    CaFile(PathBuf),
    /// Not at all (`ssl_insecure`).
    Insecure,
}

/// The CA file or the system trust store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The CA file cannot be read.
    #[error("cannot read CA file {}: {source}", .path.display())]
    CaRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The CA file has no certificate, or a broken one.
    #[error("CA file {} holds no usable PEM certificate{}", .path.display(), .detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    CaPem {
        /// The file.
        path: PathBuf,
        /// The PEM error, if any.
        detail: Option<String>,
    },
}

/// XML-RPC over HTTP(S) with `ureq`.
#[derive(Debug)]
pub struct HttpTransport {
    agent: ureq::Agent,
    /// Notes for the debug log (e.g. unreadable system certificates).
    pub notes: Vec<String>,
}

impl HttpTransport {
    /// A transport that verifies certificates as `verify` says and gives
    /// each connection attempt `connect_timeout`.
    pub fn new(verify: &Verify, connect_timeout: Duration) -> Result<HttpTransport, TlsSetupError> {
        let mut notes = Vec::new();
        let tls = TlsConfig::builder().provider(TlsProvider::Rustls);
        let tls = match verify {
            Verify::Insecure => tls.disable_verification(true),
            Verify::CaFile(path) => tls.root_certs(RootCerts::Specific(Arc::new(read_ca_file(path)?))),
            Verify::System => {
                let found = rustls_native_certs::load_native_certs();
                for e in &found.errors {
                    notes.push(format!("system trust store: {e}"));
                }
                notes.push(format!("system trust store: {} certificates", found.certs.len()));
                let certs: Vec<Certificate<'static>> = found
                    .certs
                    .iter()
                    .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                    .collect();
                tls.root_certs(RootCerts::Specific(Arc::new(certs)))
            }
        };
        let config = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .proxy(None)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(connect_timeout))
            .user_agent(format!("fence_xenapi/{} (vmfence)", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(HttpTransport {
            agent: config.into(),
            notes,
        })
    }
}

fn read_ca_file(path: &Path) -> Result<Vec<Certificate<'static>>, TlsSetupError> {
    let pem = std::fs::read(path).map_err(|source| TlsSetupError::CaRead {
        path: path.to_owned(),
        source,
    })?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(TlsSetupError::CaPem {
                    path: path.to_owned(),
                    detail: Some(e.to_string()),
                })
            }
        }
    }
    if certs.is_empty() {
        return Err(TlsSetupError::CaPem {
            path: path.to_owned(),
            detail: None,
        });
    }
    Ok(certs)
}

impl Transport for HttpTransport {
    fn post(
        &mut self,
        endpoint: &Endpoint,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, TransportError> {
        let url = endpoint.url();
        let result = self
            .agent
            .post(&url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("Content-Type", "text/xml")
            .send(body);
        let mut resp = result.map_err(|e| classify(e, timeout))?;
        let status = resp.status().as_u16();
        let data = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(n) => TransportError::TooLarge(n),
                e => classify(e, timeout),
            })?;
        if status != 200 {
            let text = String::from_utf8_lossy(&data);
            let body: String = text
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(160)
                .collect();
            return Err(TransportError::Status { status, body });
        }
        Ok(data)
    }
}

fn classify(e: ureq::Error, timeout: Duration) -> TransportError {
    match e {
        ureq::Error::Timeout(_) => TransportError::Timeout(timeout),
        ureq::Error::Rustls(r) => tls_error(&r),
        ureq::Error::Tls(m) => TransportError::Tls(m.to_owned()),
        ureq::Error::HostNotFound => TransportError::Connect("host name not found".to_owned()),
        ureq::Error::ConnectionFailed => TransportError::Connect("connection failed".to_owned()),
        ureq::Error::Io(io) => {
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return tls_error(r);
            }
            match io.kind() {
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TransportError::Timeout(timeout),
                io::ErrorKind::ConnectionRefused
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::NotConnected
                | io::ErrorKind::AddrNotAvailable
                | io::ErrorKind::HostUnreachable
                | io::ErrorKind::NetworkUnreachable
                | io::ErrorKind::UnexpectedEof => TransportError::Connect(io.to_string()),
                _ => TransportError::Http(ureq::Error::Io(io)),
            }
        }
        e => TransportError::Http(e),
    }
}

fn tls_error(e: &rustls::Error) -> TransportError {
    match e {
        rustls::Error::InvalidCertificate(c) => TransportError::Certificate(format!("{c:?}")),
        other => TransportError::Tls(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn urls() {
        let e = Endpoint::parse("https://pool-master.example").unwrap();
        assert_eq!(
            e,
            Endpoint {
                scheme: Scheme::Https,
                host: "pool-master.example".into(),
                port: None,
                path: "/".into()
            }
        );
        assert_eq!(e.url(), "https://pool-master.example/");
        let e = Endpoint::parse("HTTP://10.0.0.5:8080/RPC2?x#y").unwrap();
        assert_eq!(e.scheme, Scheme::Http);
        assert_eq!(e.port, Some(8080));
        assert_eq!(e.path, "/RPC2");
        assert_eq!(e.url(), "http://10.0.0.5:8080/RPC2");
        let e = Endpoint::parse("xen2:443").unwrap();
        assert_eq!(
            (e.scheme, e.host.as_str(), e.port),
            (Scheme::Https, "xen2", Some(443))
        );
        let e = Endpoint::parse("https://[fd00::1]:8443").unwrap();
        assert_eq!(e.host, "fd00::1");
        assert_eq!(e.url(), "https://[fd00::1]:8443/");
        let m = e.with_host("fd00::2");
        assert_eq!(m.url(), "https://[fd00::2]:8443/");
        let m = Endpoint::parse("https://10.0.0.1:4443/x")
            .unwrap()
            .with_host("10.0.0.2");
        assert_eq!(m.url(), "https://10.0.0.2:4443/x");
        for bad in [
            "ftp://x",
            "https://",
            "https://:443",
            "https://h:0",
            "https://h:99999",
            "https://h:x",
            "https://root:pw@h",
            "https://[fd00::1",
            "https://[nothex]:1",
            "https://h h",
            "",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        let err = HttpTransport::new(&Verify::CaFile(empty), Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("no usable PEM certificate"), "{err}");
        let missing = dir.path().join("missing.pem");
        let err = HttpTransport::new(&Verify::CaFile(missing), Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("cannot read CA file"), "{err}");
        assert!(HttpTransport::new(&Verify::Insecure, Duration::from_secs(1)).is_ok());
    }
}
