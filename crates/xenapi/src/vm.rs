//! VMs: the typed record, the XenAPI calls on VMs, which VMs may be fenced
//! at all, and how a `plug` (a name label or a UUID) selects one.
//!
//! Templates, snapshots and control domains (dom0 of every host) are VMs
//! to XenAPI. They are never listed, selected or powered: a name or UUID
//! that only matches one of them is "not found". A name label that
//! several fenceable VMs share is an error that lists their UUIDs, because
//! fencing the wrong one of two is worse than fencing none.

use std::fmt;
use std::time::Duration;

use crate::client::{CallError, Session};
use crate::transport::Transport;
use crate::xmlrpc::Value;

/// `VM.power_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PowerState {
    /// Off: no resources in use.
    Halted,
    /// Resources allocated, vCPUs stopped.
    Paused,
    /// Running.
    Running,
    /// Memory saved to disk.
    Suspended,
    /// Something else, as XenAPI spelled it.
    Unknown(String),
}

impl PowerState {
    /// Parse XenAPI's spelling (any case).
    pub fn parse(s: &str) -> PowerState {
        match s.to_ascii_lowercase().as_str() {
            "halted" => PowerState::Halted,
            "paused" => PowerState::Paused,
            "running" => PowerState::Running,
            "suspended" => PowerState::Suspended,
            _ => PowerState::Unknown(s.chars().take(40).collect()),
        }
    }

    /// Whether the VM is off. Only `Halted` is: a paused or suspended VM
    /// still holds its disks, so for fencing it is on (as the classic
    /// agent has it).
    pub fn is_off(&self) -> bool {
        *self == PowerState::Halted
    }
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerState::Halted => "Halted",
            PowerState::Paused => "Paused",
            PowerState::Running => "Running",
            PowerState::Suspended => "Suspended",
            PowerState::Unknown(s) => s,
        })
    }
}

/// The fields of a VM record the agent uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmRecord {
    /// The session-local reference (`OpaqueRef:…`).
    pub reference: String,
    /// The UUID.
    pub uuid: String,
    /// The name label.
    pub name_label: String,
    /// The power state.
    pub power_state: PowerState,
    /// A template (snapshots are templates too).
    pub is_a_template: bool,
    /// A snapshot.
    pub is_a_snapshot: bool,
    /// A control domain (dom0).
    pub is_control_domain: bool,
    /// The Xen domain id (-1 when halted), when given.
    pub domid: Option<i64>,
}

impl VmRecord {
    /// Read a record struct. `uuid`, `name_label`, `power_state`,
    /// `is_a_template` and `is_control_domain` must be there;
    /// `is_a_snapshot` and `domid` may be missing.
    pub fn from_value(reference: &str, v: &Value) -> Result<VmRecord, String> {
        if v.as_struct().is_none() {
            return Err(format!("a VM record is a struct, not a {}", v.kind()));
        }
        let text = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("the VM record has no string {k}"))
        };
        let flag = |k: &str| {
            v.get(k)
                .and_then(Value::as_bool)
                .ok_or_else(|| format!("the VM record has no boolean {k}"))
        };
        Ok(VmRecord {
            reference: reference.to_owned(),
            uuid: text("uuid")?,
            name_label: text("name_label")?,
            power_state: PowerState::parse(&text("power_state")?),
            is_a_template: flag("is_a_template")?,
            is_a_snapshot: v.get("is_a_snapshot").and_then(Value::as_bool).unwrap_or(false),
            is_control_domain: flag("is_control_domain")?,
            domid: v.get("domid").and_then(Value::as_i64),
        })
    }

    /// What kind of VM this is when it may not be fenced: `template`,
    /// `snapshot` or `control domain`.
    pub fn excluded_kind(&self) -> Option<&'static str> {
        if self.is_control_domain {
            Some("control domain")
        } else if self.is_a_snapshot {
            Some("snapshot")
        } else if self.is_a_template {
            Some("template")
        } else {
            None
        }
    }

    /// Whether the VM may be listed, selected and powered.
    pub fn is_fenceable(&self) -> bool {
        self.excluded_kind().is_none()
    }
}

/// Whether `s` has the form of a UUID (8-4-4-4-12 hexadecimal digits).
pub fn looks_like_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A `plug` selects no VM, or more than one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// Nothing fenceable has this name or UUID.
    #[error("no VM with the {what} '{plug}'{}", excluded_note(.excluded))]
    NotFound {
        /// `name label` or `UUID`.
        what: &'static str,
        /// The plug.
        plug: String,
        /// Non-fenceable VMs that matched (kind, UUID).
        excluded: Vec<(&'static str, String)>,
    },
    /// Several fenceable VMs share the name label.
    #[error("{} VMs have the name label '{name}' (UUIDs {}): use the UUID as plug (e.g. with pcmk_host_map)", .uuids.len(), .uuids.join(", "))]
    Ambiguous {
        /// The name.
        name: String,
        /// Their UUIDs.
        uuids: Vec<String>,
    },
}

fn excluded_note(excluded: &[(&'static str, String)]) -> String {
    if excluded.is_empty() {
        return String::new();
    }
    let items: Vec<String> = excluded.iter().map(|(k, u)| format!("a {k} ({u})")).collect();
    format!(
        " that may be fenced; it names {}, which are never touched",
        items.join(", ")
    )
}

/// A VM cannot be looked up.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// A call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The plug selects no VM or several.
    #[error(transparent)]
    Select(#[from] SelectError),
}

fn shape(method: &str, what: impl Into<String>) -> CallError {
    CallError::Shape {
        method: method.to_owned(),
        what: what.into(),
    }
}

fn reference(method: &str, v: &Value) -> Result<String, CallError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| shape(method, format!("a {} instead of a reference", v.kind())))
}

/// The XenAPI VM calls.
impl<T: Transport> Session<'_, '_, T> {
    /// `VM.get_by_uuid`.
    pub fn vm_get_by_uuid(&mut self, uuid: &str) -> Result<String, CallError> {
        let m = "VM.get_by_uuid";
        let v = self.call(m, &[Value::string(uuid)], None)?;
        reference(m, &v)
    }

    /// `VM.get_by_name_label`.
    pub fn vm_get_by_name_label(&mut self, name: &str) -> Result<Vec<String>, CallError> {
        let m = "VM.get_by_name_label";
        let v = self.call(m, &[Value::string(name)], None)?;
        let items = v
            .as_array()
            .ok_or_else(|| shape(m, format!("a {} instead of an array", v.kind())))?;
        items.iter().map(|i| reference(m, i)).collect()
    }

    /// `VM.get_record`.
    pub fn vm_get_record(&mut self, vm: &str) -> Result<VmRecord, CallError> {
        let m = "VM.get_record";
        let v = self.call(m, &[Value::string(vm)], None)?;
        VmRecord::from_value(vm, &v).map_err(|what| shape(m, what))
    }

    /// `VM.get_all_records`: every VM of the pool, templates and control
    /// domains included, in one call.
    pub fn vm_get_all_records(&mut self) -> Result<Vec<VmRecord>, CallError> {
        let m = "VM.get_all_records";
        let v = self.call(m, &[], None)?;
        let all = v
            .as_struct()
            .ok_or_else(|| shape(m, format!("a {} instead of a struct", v.kind())))?;
        all.iter()
            .map(|(r, rec)| VmRecord::from_value(r, rec).map_err(|what| shape(m, what)))
            .collect()
    }

    /// `VM.get_power_state`, within `timeout` (the call limit when `None`).
    pub fn vm_get_power_state(
        &mut self,
        vm: &str,
        timeout: Option<Duration>,
    ) -> Result<PowerState, CallError> {
        let m = "VM.get_power_state";
        let v = self.call(m, &[Value::string(vm)], timeout)?;
        v.as_str()
            .map(PowerState::parse)
            .ok_or_else(|| shape(m, format!("a {} instead of a power state", v.kind())))
    }

    /// `VM.start(vm, start_paused = false, force = true)`.
    pub fn vm_start(&mut self, vm: &str, timeout: Duration) -> Result<(), CallError> {
        self.call(
            "VM.start",
            &[Value::string(vm), Value::Bool(false), Value::Bool(true)],
            Some(timeout),
        )
        .map(drop)
    }

    /// `VM.hard_shutdown`: power off at once, no guest shutdown.
    pub fn vm_hard_shutdown(&mut self, vm: &str, timeout: Duration) -> Result<(), CallError> {
        self.call("VM.hard_shutdown", &[Value::string(vm)], Some(timeout))
            .map(drop)
    }

    /// `VM.hard_reboot`: destroy the domain and start it again.
    pub fn vm_hard_reboot(&mut self, vm: &str, timeout: Duration) -> Result<(), CallError> {
        self.call("VM.hard_reboot", &[Value::string(vm)], Some(timeout))
            .map(drop)
    }

    /// The fenceable VMs, sorted by name label, then UUID.
    pub fn fenceable_vms(&mut self) -> Result<Vec<VmRecord>, CallError> {
        let mut vms: Vec<VmRecord> = self
            .vm_get_all_records()?
            .into_iter()
            .filter(VmRecord::is_fenceable)
            .collect();
        vms.sort_by(|a, b| (&a.name_label, &a.uuid).cmp(&(&b.name_label, &b.uuid)));
        Ok(vms)
    }

    /// The one fenceable VM that `plug` names: by UUID when it has the form
    /// of one (and, if no VM has that UUID, by name label), else by name
    /// label.
    pub fn select_vm(&mut self, plug: &str) -> Result<VmRecord, LookupError> {
        if looks_like_uuid(plug) {
            let uuid = plug.to_ascii_lowercase();
            match self.vm_get_by_uuid(&uuid) {
                Ok(r) => {
                    let rec = self.vm_get_record(&r)?;
                    return match rec.excluded_kind() {
                        None => Ok(rec),
                        Some(kind) => Err(SelectError::NotFound {
                            what: "UUID",
                            plug: plug.to_owned(),
                            excluded: vec![(kind, rec.uuid)],
                        }
                        .into()),
                    };
                }
                Err(e) if e.is(&crate::api::ErrorCode::UuidInvalid) => {
                    self.note(&format!("no VM has the UUID {uuid}; trying it as a name label"));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let refs = self.vm_get_by_name_label(plug)?;
        let mut fenceable = Vec::new();
        let mut excluded = Vec::new();
        for r in refs {
            let rec = self.vm_get_record(&r)?;
            match rec.excluded_kind() {
                None => fenceable.push(rec),
                Some(kind) => excluded.push((kind, rec.uuid)),
            }
        }
        match fenceable.len() {
            1 => Ok(fenceable.remove(0)),
            0 => Err(SelectError::NotFound {
                what: if looks_like_uuid(plug) {
                    "UUID or name label"
                } else {
                    "name label"
                },
                plug: plug.to_owned(),
                excluded,
            }
            .into()),
            _ => {
                let mut uuids: Vec<String> = fenceable.into_iter().map(|r| r.uuid).collect();
                uuids.sort();
                Err(SelectError::Ambiguous {
                    name: plug.to_owned(),
                    uuids,
                }
                .into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::client::tests::{client, failure, success, Script};

    fn record(uuid: &str, name: &str, state: &str, template: bool, dom0: bool) -> String {
        format!(
            "<value><struct>\
             <member><name>uuid</name><value>{uuid}</value></member>\
             <member><name>name_label</name><value>{name}</value></member>\
             <member><name>power_state</name><value>{state}</value></member>\
             <member><name>is_a_template</name><value><boolean>{}</boolean></value></member>\
             <member><name>is_control_domain</name><value><boolean>{}</boolean></value></member>\
             <member><name>domid</name><value>7</value></member>\
             </struct></value>",
            u8::from(template),
            u8::from(dom0)
        )
    }

    #[test]
    fn uuid_form() {
        assert!(looks_like_uuid("6695eb01-f6a4-8304-79aa-97f2502e193f"));
        assert!(looks_like_uuid("6695EB01-F6A4-8304-79AA-97F2502E193F"));
        assert!(!looks_like_uuid("6695eb01-f6a4-8304-79aa-97f2502e193"));
        assert!(!looks_like_uuid("6695eb01f6a4830479aa97f2502e193f"));
        assert!(!looks_like_uuid("g695eb01-f6a4-8304-79aa-97f2502e193f"));
        assert!(!looks_like_uuid("vm-node1"));
    }

    #[test]
    fn records_and_power_states() {
        let doc = format!(
            "<methodResponse><params><param>{}</param></params></methodResponse>",
            record("u1", "n", "Paused", false, false)
        );
        let v = match crate::xmlrpc::decode_response(doc.as_bytes()).unwrap() {
            crate::xmlrpc::Reply::Value(v) => v,
            r => panic!("{r:?}"),
        };
        let r = VmRecord::from_value("OpaqueRef:1", &v).unwrap();
        assert_eq!(r.power_state, PowerState::Paused);
        assert!(!r.power_state.is_off());
        assert_eq!(r.domid, Some(7));
        assert!(r.is_fenceable());
        assert!(VmRecord::from_value("r", &Value::string("x")).is_err());
        assert_eq!(PowerState::parse("HALTED"), PowerState::Halted);
        assert_eq!(PowerState::parse("Crashed").to_string(), "Crashed");
    }

    #[test]
    fn selection_by_name_skips_templates_and_names_duplicates() {
        let mut s = Script::default();
        s.answers.push_back(success("<value>OpaqueRef:s</value>"));
        // "db": two VMs and a template.
        s.answers.push_back(success(
            "<value><array><data><value>OpaqueRef:a</value><value>OpaqueRef:b</value><value>OpaqueRef:t</value></data></array></value>",
        ));
        s.answers
            .push_back(success(&record("uuid-b", "db", "Running", false, false)));
        s.answers
            .push_back(success(&record("uuid-a", "db", "Halted", false, false)));
        s.answers
            .push_back(success(&record("uuid-t", "db", "Halted", true, false)));
        // "Template": only a template.
        s.answers.push_back(success(
            "<value><array><data><value>OpaqueRef:t</value></data></array></value>",
        ));
        s.answers
            .push_back(success(&record("uuid-t", "Template", "Halted", true, false)));
        // A UUID that is a control domain.
        s.answers.push_back(success("<value>OpaqueRef:d</value>"));
        s.answers.push_back(success(&record(
            "6695eb01-f6a4-8304-79aa-97f2502e193f",
            "dom0",
            "Running",
            false,
            true,
        )));
        // A UUID nobody has, and no such name either.
        s.answers.push_back(failure(&[
            "UUID_INVALID",
            "VM",
            "00000000-0000-0000-0000-000000000000",
        ]));
        s.answers
            .push_back(success("<value><array><data></data></array></value>"));
        s.answers.push_back(success("<value></value>"));
        let mut c = client(&mut s, &["https://m"]);
        let mut session = c.login().unwrap();
        let err = session.select_vm("db").unwrap_err().to_string();
        assert_eq!(
            err,
            "2 VMs have the name label 'db' (UUIDs uuid-a, uuid-b): use the UUID as plug (e.g. with pcmk_host_map)"
        );
        let err = session.select_vm("Template").unwrap_err().to_string();
        assert!(
            err.contains(
                "no VM with the name label 'Template' that may be fenced; it names a template (uuid-t)"
            ),
            "{err}"
        );
        let err = session
            .select_vm("6695EB01-f6a4-8304-79aa-97f2502e193f")
            .unwrap_err()
            .to_string();
        assert!(err.contains("a control domain"), "{err}");
        let err = session
            .select_vm("00000000-0000-0000-0000-000000000000")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "no VM with the UUID or name label '00000000-0000-0000-0000-000000000000'"
        );
        drop(session);
        drop(c);
        assert_eq!(s.calls[7].1, "VM.get_by_uuid");
        assert!(s.calls[7].0.contains("https://m"));
        assert_eq!(s.calls.last().map(|c| c.1.as_str()), Some("session.logout"));
        assert!(s.answers.is_empty());
    }
}
