//! XenAPI's result envelope and its error codes.
//!
//! Every XenAPI call answers a struct: `Status` = `Success` with the result
//! in `Value`, or `Status` = `Failure` with `ErrorDescription`, an array of
//! strings whose first element is the error code and the rest its
//! parameters (`["HOST_IS_SLAVE", "192.0.2.10"]`). [`open_envelope`] turns
//! that into a `Result`, with the codes the agent acts on as
//! [`ErrorCode`] variants.

use std::fmt;

use crate::xmlrpc::Value;

/// The XenAPI error codes the client and the agent tell apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    /// Wrong user name or password.
    SessionAuthenticationFailed,
    /// The session reference is not (or no longer) valid.
    SessionInvalid,
    /// Logged in to a pool member that is not the master; parameter 0 is
    /// the master's address.
    HostIsSlave,
    /// A host the operation needs is offline.
    HostOffline,
    /// The host is still starting its API.
    HostStillBooting,
    /// No object has this UUID (parameters: class, UUID).
    UuidInvalid,
    /// No object has this reference (parameters: class, reference).
    HandleInvalid,
    /// The VM is not in a power state the operation accepts (parameters:
    /// VM, expected, actual).
    VmBadPowerState,
    /// Another operation on the object is running.
    OtherOperationInProgress,
    /// The operation is not allowed on the object.
    OperationNotAllowed,
    /// The server has no such method.
    MessageMethodUnknown,
    /// The method takes another number of parameters (parameters: method,
    /// expected, received).
    MessageParameterCountMismatch,
    /// Any other code, as the server spelled it.
    Unknown(String),
}

impl ErrorCode {
    /// The code as XenAPI spells it.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::SessionAuthenticationFailed => "SESSION_AUTHENTICATION_FAILED",
            ErrorCode::SessionInvalid => "SESSION_INVALID",
            ErrorCode::HostIsSlave => "HOST_IS_SLAVE",
            ErrorCode::HostOffline => "HOST_OFFLINE",
            ErrorCode::HostStillBooting => "HOST_STILL_BOOTING",
            ErrorCode::UuidInvalid => "UUID_INVALID",
            ErrorCode::HandleInvalid => "HANDLE_INVALID",
            ErrorCode::VmBadPowerState => "VM_BAD_POWER_STATE",
            ErrorCode::OtherOperationInProgress => "OTHER_OPERATION_IN_PROGRESS",
            ErrorCode::OperationNotAllowed => "OPERATION_NOT_ALLOWED",
            ErrorCode::MessageMethodUnknown => "MESSAGE_METHOD_UNKNOWN",
            ErrorCode::MessageParameterCountMismatch => "MESSAGE_PARAMETER_COUNT_MISMATCH",
            ErrorCode::Unknown(s) => s,
        }
    }

    /// The code for its spelling.
    pub fn parse(code: &str) -> ErrorCode {
        match code {
            "SESSION_AUTHENTICATION_FAILED" => ErrorCode::SessionAuthenticationFailed,
            "SESSION_INVALID" => ErrorCode::SessionInvalid,
            "HOST_IS_SLAVE" => ErrorCode::HostIsSlave,
            "HOST_OFFLINE" => ErrorCode::HostOffline,
            "HOST_STILL_BOOTING" => ErrorCode::HostStillBooting,
            "UUID_INVALID" => ErrorCode::UuidInvalid,
            "HANDLE_INVALID" => ErrorCode::HandleInvalid,
            "VM_BAD_POWER_STATE" => ErrorCode::VmBadPowerState,
            "OTHER_OPERATION_IN_PROGRESS" => ErrorCode::OtherOperationInProgress,
            "OPERATION_NOT_ALLOWED" => ErrorCode::OperationNotAllowed,
            "MESSAGE_METHOD_UNKNOWN" => ErrorCode::MessageMethodUnknown,
            "MESSAGE_PARAMETER_COUNT_MISMATCH" => ErrorCode::MessageParameterCountMismatch,
            other => ErrorCode::Unknown(other.to_owned()),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `Failure` answer: the code and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    /// The error code.
    pub code: ErrorCode,
    /// The rest of `ErrorDescription`.
    pub params: Vec<String>,
}

impl ApiFailure {
    /// Parameter `i`, or an empty string.
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map_or("", String::as_str)
    }
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if !self.params.is_empty() {
            write!(f, " [{}]", self.params.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiFailure {}

/// The answer is XML-RPC but not a XenAPI envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Not a struct.
    #[error("the answer is a {0}, not a XenAPI result struct")]
    NotAStruct(&'static str),
    /// No `Status` string.
    #[error("the answer has no Status")]
    NoStatus,
    /// `Status` neither `Success` nor `Failure`.
    #[error("unknown Status '{0}'")]
    BadStatus(String),
    /// `Success` without `Value`.
    #[error("a Success answer without Value")]
    NoValue,
    /// `Failure` without a non-empty array of strings in `ErrorDescription`.
    #[error("a Failure answer without a readable ErrorDescription")]
    NoErrorDescription,
}

/// What a call answered: the value, or XenAPI's failure.
pub type Outcome = Result<Value, ApiFailure>;

/// Open the envelope of a call's answer.
pub fn open_envelope(v: Value) -> Result<Outcome, EnvelopeError> {
    let Value::Struct(mut m) = v else {
        return Err(EnvelopeError::NotAStruct(v.kind()));
    };
    let status = m
        .get("Status")
        .and_then(Value::as_str)
        .ok_or(EnvelopeError::NoStatus)?;
    match status {
        "Success" => m.remove("Value").map(Ok).ok_or(EnvelopeError::NoValue),
        "Failure" => {
            let items = m
                .get("ErrorDescription")
                .and_then(Value::as_array)
                .ok_or(EnvelopeError::NoErrorDescription)?;
            let mut strings = items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
                .ok_or(EnvelopeError::NoErrorDescription)?
                .into_iter();
            let code = strings.next().ok_or(EnvelopeError::NoErrorDescription)?;
            Ok(Err(ApiFailure {
                code: ErrorCode::parse(&code),
                params: strings.collect(),
            }))
        }
        other => Err(EnvelopeError::BadStatus(other.chars().take(40).collect())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn st(members: &[(&str, Value)]) -> Value {
        Value::Struct(
            members
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn success_and_failure() {
        let ok = st(&[("Status", Value::string("Success")), ("Value", Value::string(""))]);
        assert_eq!(open_envelope(ok), Ok(Ok(Value::string(""))));
        let fail = st(&[
            ("Status", Value::string("Failure")),
            (
                "ErrorDescription",
                Value::Array(vec![Value::string("HOST_IS_SLAVE"), Value::string("192.0.2.10")]),
            ),
        ]);
        let f = open_envelope(fail).unwrap().unwrap_err();
        assert_eq!(f.code, ErrorCode::HostIsSlave);
        assert_eq!(f.param(0), "192.0.2.10");
        assert_eq!(f.param(5), "");
        assert_eq!(f.to_string(), "HOST_IS_SLAVE [192.0.2.10]");
        let odd = st(&[
            ("Status", Value::string("Failure")),
            (
                "ErrorDescription",
                Value::Array(vec![Value::string("VDI_IN_USE")]),
            ),
        ]);
        let f = open_envelope(odd).unwrap().unwrap_err();
        assert_eq!(f.code, ErrorCode::Unknown("VDI_IN_USE".into()));
        assert_eq!(f.to_string(), "VDI_IN_USE");
    }

    #[test]
    fn codes_round_trip() {
        for c in [
            "SESSION_AUTHENTICATION_FAILED",
            "SESSION_INVALID",
            "HOST_IS_SLAVE",
            "HOST_OFFLINE",
            "HOST_STILL_BOOTING",
            "UUID_INVALID",
            "HANDLE_INVALID",
            "VM_BAD_POWER_STATE",
            "OTHER_OPERATION_IN_PROGRESS",
            "OPERATION_NOT_ALLOWED",
            "MESSAGE_METHOD_UNKNOWN",
            "MESSAGE_PARAMETER_COUNT_MISMATCH",
            "SOMETHING_NEW",
        ] {
            assert_eq!(ErrorCode::parse(c).as_str(), c);
        }
        assert!(!matches!(
            ErrorCode::parse("HOST_IS_SLAVE"),
            ErrorCode::Unknown(_)
        ));
    }

    #[test]
    fn broken_envelopes() {
        assert_eq!(
            open_envelope(Value::string("x")),
            Err(EnvelopeError::NotAStruct("string"))
        );
        assert_eq!(open_envelope(st(&[])), Err(EnvelopeError::NoStatus));
        assert_eq!(
            open_envelope(st(&[("Status", Value::string("Maybe"))])),
            Err(EnvelopeError::BadStatus("Maybe".into()))
        );
        assert_eq!(
            open_envelope(st(&[("Status", Value::string("Success"))])),
            Err(EnvelopeError::NoValue)
        );
        for desc in [
            None,
            Some(Value::Array(vec![])),
            Some(Value::Array(vec![Value::Int(1)])),
            Some(Value::string("X")),
        ] {
            let mut m = vec![("Status", Value::string("Failure"))];
            if let Some(d) = desc {
                m.push(("ErrorDescription", d));
            }
            assert_eq!(open_envelope(st(&m)), Err(EnvelopeError::NoErrorDescription));
        }
    }
}
