//! The XenAPI client: calls, log-in to a pool, and sessions that always
//! log out.
//!
//! [`Client::login`] tries the pool addresses in order. A member that is
//! not the master answers `HOST_IS_SLAVE` with the master's address; the
//! client follows it (same scheme, port and path), up to
//! [`MAX_REDIRECTS`] times. An address that does not answer, or points to
//! a master that does not, is skipped for the next one, so a list of pool
//! members survives a dead master once the pool has a new one. A wrong
//! password stops at once: every member would refuse it.
//!
//! A [`Session`] logs out when it is dropped, whatever ended the run
//! (success, a XenAPI error, a time-out): XenAPI keeps at most 400
//! sessions and silently destroys the oldest, so leaking one per run
//! eventually breaks other tools. A call refused with `SESSION_INVALID`
//! logs in again and is retried once.

use std::fmt;
use std::time::{Duration, Instant};

use crate::api::{open_envelope, ApiFailure, EnvelopeError, ErrorCode};
use crate::transport::{Endpoint, Transport, TransportError};
use crate::xmlrpc::{decode_response, encode_call, DecodeError, EncodeError, Reply, Value};

/// Most `HOST_IS_SLAVE` answers followed from one configured address.
pub const MAX_REDIRECTS: usize = 3;

/// The XenAPI version sent at log-in.
pub const API_VERSION: &str = "1.0";

/// User name and password.
#[derive(Clone)]
pub struct Credentials {
    /// The user (`root`, or a pool user with the VM power admin role).
    pub user: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"…")
            .finish()
    }
}

/// Time limits of calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connecting and logging in to one address.
    pub login: Duration,
    /// Every other call, unless the call gives its own (power calls do).
    pub call: Duration,
}

/// One call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The call cannot be encoded (a parameter XML cannot carry).
    #[error("{method}: {source}")]
    Encode {
        /// The method.
        method: String,
        /// Why.
        source: EncodeError,
    },
    /// No answer.
    #[error("{endpoint}: {method}: {source}")]
    Transport {
        /// The address.
        endpoint: String,
        /// The method.
        method: String,
        /// Why.
        source: TransportError,
    },
    /// The answer is not XML-RPC.
    #[error("{endpoint}: {method}: {source}")]
    Decode {
        /// The address.
        endpoint: String,
        /// The method.
        method: String,
        /// Why.
        source: DecodeError,
    },
    /// An XML-RPC fault.
    #[error("{endpoint}: {method}: XML-RPC fault {code}: {message}")]
    Fault {
        /// The address.
        endpoint: String,
        /// The method.
        method: String,
        /// `faultCode`.
        code: i64,
        /// `faultString`.
        message: String,
    },
    /// XML-RPC, but no XenAPI envelope.
    #[error("{endpoint}: {method}: {source}")]
    Envelope {
        /// The address.
        endpoint: String,
        /// The method.
        method: String,
        /// Why.
        source: EnvelopeError,
    },
    /// XenAPI answered `Failure`.
    #[error("{method}: {failure}")]
    Api {
        /// The method.
        method: String,
        /// The error code and parameters.
        failure: ApiFailure,
    },
    /// A `Success` value of the wrong shape.
    #[error("{method}: unexpected answer ({what})")]
    Shape {
        /// The method.
        method: String,
        /// What was wrong.
        what: String,
    },
}

impl CallError {
    /// The XenAPI failure, when XenAPI answered one.
    pub fn api(&self) -> Option<&ApiFailure> {
        match self {
            CallError::Api { failure, .. } => Some(failure),
            _ => None,
        }
    }

    /// Whether XenAPI answered with `code`.
    pub fn is(&self, code: &ErrorCode) -> bool {
        self.api().is_some_and(|f| &f.code == code)
    }

    /// Whether the call may not have reached XenAPI at all (no answer,
    /// time-out), so that asking again may help.
    pub fn is_transport(&self) -> bool {
        matches!(self, CallError::Transport { .. })
    }
}

/// No session could be opened.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The pool refused the user name or password.
    #[error("{endpoint}: login refused for user '{user}' ({failure}); check login and password")]
    Authentication {
        /// The address that refused.
        endpoint: String,
        /// The user.
        user: String,
        /// XenAPI's answer.
        failure: ApiFailure,
    },
    /// No address led to a master that accepted the login.
    #[error("no pool master reachable: {}", list(.0))]
    NoMaster(Vec<LoginAttempt>),
}

/// One failed log-in attempt.
#[derive(Debug)]
pub struct LoginAttempt {
    /// The address tried.
    pub endpoint: String,
    /// Why it failed.
    pub error: AttemptError,
}

/// Why a log-in attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    /// The call failed.
    #[error(transparent)]
    Call(CallError),
    /// `HOST_IS_SLAVE` once too often.
    #[error("still not the master after {MAX_REDIRECTS} HOST_IS_SLAVE redirects")]
    TooManyRedirects,
    /// `HOST_IS_SLAVE` without an address.
    #[error("HOST_IS_SLAVE without a master address")]
    NoMasterAddress,
    /// The login answer is not a session reference.
    #[error("the login answer is not a session reference")]
    NotAReference,
}

fn list(attempts: &[LoginAttempt]) -> String {
    attempts
        .iter()
        .map(|a| match &a.error {
            // The call error names the address already.
            AttemptError::Call(e) if !matches!(e, CallError::Api { .. } | CallError::Encode { .. }) => {
                e.to_string()
            }
            e => format!("{}: {e}", a.endpoint),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A XenAPI client for one pool.
pub struct Client<'t, T: Transport> {
    transport: T,
    pool: Vec<Endpoint>,
    credentials: Credentials,
    originator: String,
    limits: Limits,
    trace: Box<dyn FnMut(&str) + 't>,
}

impl<T: Transport> fmt::Debug for Client<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("pool", &self.pool)
            .field("credentials", &self.credentials)
            .field("originator", &self.originator)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl<'t, T: Transport> Client<'t, T> {
    /// A client for the pool at `pool` (tried in this order). `originator`
    /// names the program in XenAPI's session records.
    pub fn new(
        transport: T,
        pool: Vec<Endpoint>,
        credentials: Credentials,
        originator: &str,
        limits: Limits,
    ) -> Self {
        Client {
            transport,
            pool,
            credentials,
            originator: originator.to_owned(),
            limits,
            trace: Box::new(|_| {}),
        }
    }

    /// Send debug notes (calls, redirects, durations) to `trace`.
    pub fn with_trace(mut self, trace: impl FnMut(&str) + 't) -> Self {
        self.trace = Box::new(trace);
        self
    }

    /// The time limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Write a debug note.
    pub fn note(&mut self, msg: &str) {
        (self.trace)(msg);
    }

    /// Call `method` on `endpoint` (no session is added).
    pub fn call_at(
        &mut self,
        endpoint: &Endpoint,
        method: &str,
        params: &[Value],
        timeout: Duration,
    ) -> Result<Value, CallError> {
        let body = encode_call(method, params).map_err(|source| CallError::Encode {
            method: method.to_owned(),
            source,
        })?;
        let started = Instant::now();
        let answer = self.transport.post(endpoint, body.as_bytes(), timeout);
        let took = started.elapsed().as_millis();
        let bytes = match answer {
            Ok(b) => b,
            Err(source) => {
                self.note(&format!(
                    "{endpoint}: {method}: no answer after {took} ms: {source}"
                ));
                return Err(CallError::Transport {
                    endpoint: endpoint.to_string(),
                    method: method.to_owned(),
                    source,
                });
            }
        };
        let result = interpret(endpoint, method, &bytes);
        let verdict = match &result {
            Ok(_) => "Success".to_owned(),
            Err(CallError::Api { failure, .. }) => format!("Failure {failure}"),
            Err(e) => format!("error: {e}"),
        };
        self.note(&format!(
            "{endpoint}: {method}: {verdict} ({took} ms, {} bytes)",
            bytes.len()
        ));
        result
    }

    /// Log in: the pool addresses in order, following `HOST_IS_SLAVE`.
    pub fn login(&mut self) -> Result<Session<'_, 't, T>, LoginError> {
        let mut attempts = Vec::new();
        let pool = self.pool.clone();
        for start in &pool {
            let mut target = start.clone();
            let mut redirects = 0;
            loop {
                match self.login_once(&target) {
                    Ok(reference) => {
                        self.note(&format!("{target}: logged in"));
                        return Ok(Session {
                            client: self,
                            endpoint: target,
                            reference: Some(reference),
                        });
                    }
                    Err(AttemptError::Call(e)) if e.is(&ErrorCode::SessionAuthenticationFailed) => {
                        let failure = e.api().cloned().unwrap_or(ApiFailure {
                            code: ErrorCode::SessionAuthenticationFailed,
                            params: Vec::new(),
                        });
                        return Err(LoginError::Authentication {
                            endpoint: target.to_string(),
                            user: self.credentials.user.clone(),
                            failure,
                        });
                    }
                    Err(AttemptError::Call(e)) if e.is(&ErrorCode::HostIsSlave) => {
                        let master = e.api().map(|f| f.param(0).trim().to_owned()).unwrap_or_default();
                        if master.is_empty() {
                            attempts.push(LoginAttempt {
                                endpoint: target.to_string(),
                                error: AttemptError::NoMasterAddress,
                            });
                            break;
                        }
                        if redirects == MAX_REDIRECTS {
                            attempts.push(LoginAttempt {
                                endpoint: target.to_string(),
                                error: AttemptError::TooManyRedirects,
                            });
                            break;
                        }
                        redirects += 1;
                        let next = target.with_host(&master);
                        self.note(&format!(
                            "{target}: HOST_IS_SLAVE, the master is {master}: trying {next}"
                        ));
                        target = next;
                    }
                    Err(error) => {
                        attempts.push(LoginAttempt {
                            endpoint: target.to_string(),
                            error,
                        });
                        break;
                    }
                }
            }
        }
        Err(LoginError::NoMaster(attempts))
    }

    fn login_once(&mut self, endpoint: &Endpoint) -> Result<String, AttemptError> {
        let params = [
            Value::string(self.credentials.user.clone()),
            Value::string(self.credentials.password.clone()),
            Value::string(API_VERSION),
            Value::string(self.originator.clone()),
        ];
        let v = self
            .call_at(
                endpoint,
                "session.login_with_password",
                &params,
                self.limits.login,
            )
            .map_err(AttemptError::Call)?;
        match v.as_str() {
            Some(r) if !r.is_empty() => Ok(r.to_owned()),
            _ => Err(AttemptError::NotAReference),
        }
    }
}

fn interpret(endpoint: &Endpoint, method: &str, bytes: &[u8]) -> Result<Value, CallError> {
    let reply = decode_response(bytes).map_err(|source| CallError::Decode {
        endpoint: endpoint.to_string(),
        method: method.to_owned(),
        source,
    })?;
    let value = match reply {
        Reply::Value(v) => v,
        Reply::Fault { code, message } => {
            return Err(CallError::Fault {
                endpoint: endpoint.to_string(),
                method: method.to_owned(),
                code,
                message,
            })
        }
    };
    match open_envelope(value) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(failure)) => Err(CallError::Api {
            method: method.to_owned(),
            failure,
        }),
        Err(source) => Err(CallError::Envelope {
            endpoint: endpoint.to_string(),
            method: method.to_owned(),
            source,
        }),
    }
}

/// A logged-in session on the pool master. Dropping it logs out.
pub struct Session<'c, 't, T: Transport> {
    client: &'c mut Client<'t, T>,
    endpoint: Endpoint,
    reference: Option<String>,
}

impl<T: Transport> fmt::Debug for Session<'_, '_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("endpoint", &self.endpoint)
            .field("open", &self.reference.is_some())
            .finish()
    }
}

impl<T: Transport> Session<'_, '_, T> {
    /// The master the session is on.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The client's time limits.
    pub fn limits(&self) -> Limits {
        self.client.limits
    }

    /// Write a debug note.
    pub fn note(&mut self, msg: &str) {
        self.client.note(msg);
    }

    /// Call `method` with the session reference before `params`, within
    /// `timeout` (the client's call limit when `None`). On
    /// `SESSION_INVALID` (the pool dropped the session) log in again once
    /// and repeat the call.
    pub fn call(
        &mut self,
        method: &str,
        params: &[Value],
        timeout: Option<Duration>,
    ) -> Result<Value, CallError> {
        let timeout = timeout.unwrap_or(self.client.limits.call);
        match self.call_once(method, params, timeout) {
            Err(e) if e.is(&ErrorCode::SessionInvalid) => {
                self.note(&format!("{method}: SESSION_INVALID: logging in again"));
                // The old reference is gone on the server: nothing to log out.
                self.reference = None;
                let endpoint = self.endpoint.clone();
                match self.client.login_once(&endpoint) {
                    Ok(r) => self.reference = Some(r),
                    Err(AttemptError::Call(again)) => return Err(again),
                    Err(_) => return Err(e),
                }
                self.call_once(method, params, timeout)
            }
            other => other,
        }
    }

    fn call_once(&mut self, method: &str, params: &[Value], timeout: Duration) -> Result<Value, CallError> {
        let mut all = Vec::with_capacity(params.len() + 1);
        all.push(Value::string(self.reference.clone().unwrap_or_default()));
        all.extend_from_slice(params);
        let endpoint = self.endpoint.clone();
        self.client.call_at(&endpoint, method, &all, timeout)
    }

    /// Log out now and report how it went (dropping the session logs out
    /// too, silently).
    pub fn logout(mut self) -> Result<(), CallError> {
        self.logout_inner()
    }

    fn logout_inner(&mut self) -> Result<(), CallError> {
        let Some(reference) = self.reference.take() else {
            return Ok(());
        };
        let endpoint = self.endpoint.clone();
        let limit = self.client.limits.call;
        let result = self
            .client
            .call_at(&endpoint, "session.logout", &[Value::string(reference)], limit)
            .map(drop);
        if let Err(e) = &result {
            self.note(&format!("logout failed: {e}"));
        }
        result
    }
}

impl<T: Transport> Drop for Session<'_, '_, T> {
    fn drop(&mut self) {
        let _ = self.logout_inner();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::VecDeque;

    use super::*;

    /// A transport that answers from a script and records the calls.
    #[derive(Debug, Default)]
    pub(crate) struct Script {
        pub answers: VecDeque<Result<String, TransportError>>,
        pub calls: Vec<(String, String)>,
    }

    impl Transport for &mut Script {
        fn post(
            &mut self,
            endpoint: &Endpoint,
            body: &[u8],
            _timeout: Duration,
        ) -> Result<Vec<u8>, TransportError> {
            let text = String::from_utf8_lossy(body);
            let method = text
                .split("<methodName>")
                .nth(1)
                .and_then(|r| r.split('<').next())
                .unwrap_or("")
                .to_owned();
            self.calls.push((endpoint.to_string(), method));
            match self.answers.pop_front() {
                Some(Ok(s)) => Ok(s.into_bytes()),
                Some(Err(e)) => Err(e),
                None => Err(TransportError::Connect("script ended".into())),
            }
        }
    }

    pub(crate) fn success(v: &str) -> Result<String, TransportError> {
        Ok(format!(
            "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct>\
             <member><name>Status</name><value>Success</value></member>\
             <member><name>Value</name>{v}</member></struct></value></param></params></methodResponse>"
        ))
    }

    pub(crate) fn failure(desc: &[&str]) -> Result<String, TransportError> {
        let items: String = desc.iter().map(|d| format!("<value>{d}</value>")).collect();
        Ok(format!(
            "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct>\
             <member><name>Status</name><value>Failure</value></member>\
             <member><name>ErrorDescription</name><value><array><data>{items}</data></array></value></member>\
             </struct></value></param></params></methodResponse>"
        ))
    }

    pub(crate) fn client<'s>(script: &'s mut Script, urls: &[&str]) -> Client<'static, &'s mut Script> {
        Client::new(
            script,
            urls.iter().map(|u| Endpoint::parse(u).unwrap()).collect(),
            Credentials {
                user: "root".into(),
                password: "pw".into(),
            },
            "test",
            Limits {
                login: Duration::from_secs(1),
                call: Duration::from_secs(1),
            },
        )
    }

    fn methods(s: &Script) -> Vec<String> {
        s.calls.iter().map(|(e, m)| format!("{e} {m}")).collect()
    }

    #[test]
    fn login_follows_host_is_slave_and_logs_out_on_drop() {
        let mut s = Script::default();
        s.answers.push_back(failure(&["HOST_IS_SLAVE", "10.0.0.1"]));
        s.answers.push_back(success("<value>OpaqueRef:s1</value>"));
        s.answers.push_back(success("<value></value>"));
        {
            let mut c = client(&mut s, &["https://10.0.0.2:4443"]);
            let session = c.login().unwrap();
            assert_eq!(session.endpoint().url(), "https://10.0.0.1:4443/");
        }
        assert_eq!(
            methods(&s),
            [
                "https://10.0.0.2:4443/ session.login_with_password",
                "https://10.0.0.1:4443/ session.login_with_password",
                "https://10.0.0.1:4443/ session.logout",
            ]
        );
    }

    #[test]
    fn unreachable_addresses_are_skipped_and_a_wrong_password_stops() {
        let mut s = Script::default();
        s.answers
            .push_back(Err(TransportError::Connect("refused".into())));
        s.answers.push_back(failure(&[
            "SESSION_AUTHENTICATION_FAILED",
            "root",
            "Authentication failure",
        ]));
        let mut c = client(&mut s, &["https://a", "https://b", "https://c"]);
        let err = c.login().unwrap_err();
        assert!(matches!(err, LoginError::Authentication { .. }), "{err}");
        assert!(err.to_string().contains("login refused for user 'root'"), "{err}");
        drop(c);
        assert_eq!(
            methods(&s),
            [
                "https://a/ session.login_with_password",
                "https://b/ session.login_with_password"
            ]
        );
    }

    #[test]
    fn redirect_loops_end() {
        let mut s = Script::default();
        for _ in 0..=MAX_REDIRECTS {
            s.answers.push_back(failure(&["HOST_IS_SLAVE", "b"]));
        }
        s.answers.push_back(failure(&["HOST_IS_SLAVE"]));
        let mut c = client(&mut s, &["https://a", "https://z"]);
        let err = c.login().unwrap_err().to_string();
        assert!(err.contains("https://b/: still not the master"), "{err}");
        assert!(
            err.contains("https://z/: HOST_IS_SLAVE without a master address"),
            "{err}"
        );
    }

    #[test]
    fn session_invalid_logs_in_again_once() {
        let mut s = Script::default();
        s.answers.push_back(success("<value>OpaqueRef:s1</value>"));
        s.answers.push_back(failure(&["SESSION_INVALID", "OpaqueRef:s1"]));
        s.answers.push_back(success("<value>OpaqueRef:s2</value>"));
        s.answers.push_back(success("<value>Running</value>"));
        s.answers.push_back(success("<value></value>"));
        {
            let mut c = client(&mut s, &["https://m"]);
            let mut session = c.login().unwrap();
            let v = session
                .call("VM.get_power_state", &[Value::string("OpaqueRef:v")], None)
                .unwrap();
            assert_eq!(v.as_str(), Some("Running"));
            session.logout().unwrap();
        }
        let m: Vec<String> = s.calls.iter().map(|c| c.1.clone()).collect();
        assert_eq!(
            m,
            [
                "session.login_with_password",
                "VM.get_power_state",
                "session.login_with_password",
                "VM.get_power_state",
                "session.logout"
            ]
        );
    }

    #[test]
    fn garbage_answers_are_call_errors() {
        let mut s = Script::default();
        s.answers.push_back(Ok("<html>500</html>".into()));
        s.answers.push_back(Ok(
            "<methodResponse><params><param><value>x</value></param></params></methodResponse>".into(),
        ));
        s.answers.push_back(Ok("<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>1</int></value></member><member><name>faultString</name><value>no</value></member></struct></value></fault></methodResponse>".into()));
        let mut c = client(&mut s, &["https://a", "https://b", "https://c"]);
        let err = c.login().unwrap_err().to_string();
        assert!(
            err.contains("https://a/: session.login_with_password: the answer is <html>"),
            "{err}"
        );
        assert!(
            err.contains("https://b/: session.login_with_password: the answer is a string"),
            "{err}"
        );
        assert!(err.contains("XML-RPC fault 1: no"), "{err}");
    }
}
