//! ECS documents for process events, exactly as `docs/events.md` specifies:
//! nested objects (never dotted keys), unknown values left out rather than
//! nulled, `container.*`/`orchestrator.*` only for container processes.
//!
//! An [`EcsDoc`] borrows the record and its process-table view and
//! serialises itself: the NDJSON line is written straight from it, and the
//! rules see a projection of it onto the fields they read
//! (`sensor_rules::FieldSet::project`), so no event builds a whole JSON
//! tree unless it raised an alert.

mod container;
mod file;
mod index;
mod process;
mod time;
mod user;

use container::*;
pub use process::Rendered;
use process::*;
pub use time::*;
use user::*;

use std::fmt;

use serde::{Serialize, Serializer, ser::SerializeMap};
use serde_json::{Value, json};

use crate::{
    decode::{ExecRecord, ExitRecord, FileRecord, ForkRecord, Tty},
    enrich::{
        host::{BootClock, HostInfo},
        metadata::{ContainerContext, ContainerMeta},
        proctable::{EntryLeader, ProcessInfo, ProcessView, Relative, fnv1a_128, same_process},
    },
};

pub const ECS_VERSION: &str = "9.4.0";
pub const EVENT_DATASET: &str = "sensor.process";
pub const EVENT_MODULE: &str = "sensor";

/// Wait-status → ECS exit code: the exit status, or 128 + signal number
/// for a process killed by a signal (the shell convention).
pub fn exit_code_from_wait_status(status: u32) -> i64 {
    let signal = status & 0x7f;
    if signal == 0 {
        i64::from((status >> 8) & 0xff)
    } else {
        128 + i64::from(signal)
    }
}

/// Builds the ECS documents. Holds what is the same in every event (host,
/// agent) so each event only serialises its own fields.
/// Clock moves below this keep relatives' renderings (their `start`).
pub const CLOCK_SLACK_NS: i128 = 1_000_000;

pub struct EcsBuilder {
    host: Value,
    /// Bumped when the clock moved by more than [`CLOCK_SLACK_NS`] since
    /// the last bump: renderings of another epoch are not reused.
    clock_epoch: u64,
    clock_at_epoch: BootClock,
    /// `host` as JSON text, for the written lines.
    host_json: Box<serde_json::value::RawValue>,
    clock: BootClock,
    /// Environment variables written as `process.env_vars` (by name).
    env_vars: Vec<String>,
}

impl EcsBuilder {
    pub fn new(host: &HostInfo, clock: BootClock) -> Self {
        let host = host.to_ecs();
        Self {
            host_json: serde_json::value::to_raw_value(&host).expect("a JSON value serialises"),
            host,
            clock_epoch: 0,
            clock_at_epoch: clock,
            clock,
            env_vars: Vec::new(),
        }
    }

    /// Writes these environment variables of an exec (when captured) as
    /// `process.env_vars`, the way Elastic Endpoint does.
    pub fn with_env_vars(mut self, names: &[String]) -> Self {
        self.env_vars = names.to_vec();
        self
    }

    /// Whether an environment variable of this name is written.
    pub fn keeps_env(&self, name: &[u8]) -> bool {
        self.env_vars.iter().any(|v| v.as_bytes() == name)
    }

    /// Replaces the boot→wall clock offset (after re-measuring it).
    pub fn set_clock(&mut self, clock: BootClock) {
        self.clock = clock;
        let moved = clock.to_unix_ns(0) - self.clock_at_epoch.to_unix_ns(0);
        if moved.abs() > CLOCK_SLACK_NS {
            self.clock_epoch += 1;
            self.clock_at_epoch = clock;
        }
    }

    fn time(&self, boot_ns: u64) -> Rfc3339 {
        Rfc3339(self.clock.to_unix_ns(boot_ns))
    }

    /// `event.action: "exec"`. `view` is what [`ProcessTable::on_exec`]
    /// returned for `rec`.
    ///
    /// [`ProcessTable::on_exec`]: crate::enrich::proctable::ProcessTable::on_exec
    pub fn exec<'a>(
        &'a self,
        rec: &'a ExecRecord,
        view: &'a ProcessView,
        container: Option<&'a ContainerContext>,
    ) -> EcsDoc<'a> {
        self.doc(Action::Exec(rec), rec.task.ktime_ns, view, container)
    }

    /// `event.action: "fork"`: the new child, still running its parent's
    /// image.
    pub fn fork<'a>(
        &'a self,
        rec: &'a ForkRecord,
        view: &'a ProcessView,
        container: Option<&'a ContainerContext>,
    ) -> EcsDoc<'a> {
        self.doc(Action::Fork, rec.child.ktime_ns, view, container)
    }

    /// `event.action: "end"`, with `process.exit_code` and `process.end`.
    pub fn end<'a>(
        &'a self,
        rec: &'a ExitRecord,
        view: &'a ProcessView,
        container: Option<&'a ContainerContext>,
    ) -> EcsDoc<'a> {
        self.doc(Action::End(rec), rec.task.ktime_ns, view, container)
    }

    /// A file event (`event.category: file`), with the acting process's
    /// full context.
    pub fn file<'a>(
        &'a self,
        rec: &'a FileRecord,
        view: &'a ProcessView,
        container: Option<&'a ContainerContext>,
    ) -> EcsDoc<'a> {
        self.doc(Action::File(rec), rec.task.ktime_ns, view, container)
    }

    fn doc<'a>(
        &'a self,
        action: Action<'a>,
        now: u64,
        view: &'a ProcessView,
        container: Option<&'a ContainerContext>,
    ) -> EcsDoc<'a> {
        EcsDoc {
            b: self,
            action,
            now,
            view,
            container,
            slim: false,
            written: false,
            user_name: None,
        }
    }
}

#[derive(Clone, Copy)]
enum Action<'a> {
    Exec(&'a ExecRecord),
    Fork,
    End(&'a ExitRecord),
    File(&'a FileRecord),
}

impl Action<'_> {
    fn name(&self) -> &'static str {
        match self {
            Action::Exec(_) => "exec",
            Action::Fork => "fork",
            Action::End(_) => "end",
            Action::File(r) => file::action_and_type(r.action).0,
        }
    }

    /// `event.category`, `event.type` and `event.dataset`.
    fn categorisation(&self) -> (&'static str, &'static str, &'static str) {
        match self {
            Action::Exec(_) | Action::Fork => ("process", "start", EVENT_DATASET),
            Action::End(_) => ("process", "end", EVENT_DATASET),
            Action::File(r) => (
                "file",
                file::action_and_type(r.action).1,
                file::FILE_DATASET,
            ),
        }
    }
}

/// One process event, serialised on demand.
#[derive(Clone, Copy)]
pub struct EcsDoc<'a> {
    b: &'a EcsBuilder,
    action: Action<'a>,
    /// CLOCK_BOOTTIME of the event.
    now: u64,
    view: &'a ProcessView,
    container: Option<&'a ContainerContext>,
    /// Written form of a fork or end: the leaders and the parent's details
    /// are left out (the exec event carries them; `entity_id` joins).
    slim: bool,
    /// The written form: parts rendered before are written as they were
    /// (the rules' capture never meets raw JSON text).
    written: bool,
    /// `user.name` of the effective uid, when the passwd file it sees names it.
    user_name: Option<&'a str>,
}

impl<'a> EcsDoc<'a> {
    pub fn with_user_name(self, name: Option<&'a str>) -> Self {
        Self {
            user_name: name,
            ..self
        }
    }

    /// The document as it is written. Rules always see the full context;
    /// a fork's or end's line carries the process and its parent's ids
    /// only, which halves the bytes written per exec (3 records each).
    pub fn written(&self) -> Self {
        Self {
            slim: matches!(self.action, Action::Fork | Action::End(_)),
            written: true,
            ..*self
        }
    }

    /// `@timestamp` in ns since the epoch.
    pub fn timestamp_ns(&self) -> i64 {
        let ns = self.b.clock.to_unix_ns(self.now);
        ns.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// What the rule index reads, answered from the typed event.
    pub fn index_view(&'a self) -> index::IndexView<'a> {
        index::IndexView(self)
    }

    /// `event.action`.
    pub fn action(&self) -> &'static str {
        self.action.name()
    }

    /// The whole document as a JSON tree (alerts, tests).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("an ECS document always serialises")
    }
}

impl Serialize for EcsDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let process = &self.view.process;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("@timestamp", &self.b.time(self.now))?;
        m.serialize_entry("event", &EventObj::new(&self.action, EventId(self)))?;
        m.serialize_entry("process", &ProcessObj(self))?;
        if let Action::File(r) = self.action {
            m.serialize_entry("file", &file::FileObj(r))?;
        }
        match self.container {
            Some(ctx) => {
                m.serialize_entry("container", &ContainerObj(ctx))?;
                let meta = ctx.meta();
                if meta.pod_name.is_some()
                    || meta.pod_namespace.is_some()
                    || ctx.pod_uid().is_some()
                {
                    m.serialize_entry("orchestrator", &OrchestratorObj(ctx))?;
                }
            }
            // Without resolved context the table's id still marks a
            // container process; host processes get no container.* at all.
            None => {
                if let Some(id) = process.container_id() {
                    m.serialize_entry("container", &json!({ "id": id }))?;
                }
            }
        }
        // Top-level `user`/`group`, as Defend for Containers writes them
        // (its sequences join on `user.id`); the real ids under Elastic
        // Endpoint's `Ext.real` names.
        m.serialize_entry(
            "user",
            &TopIdObj::new(process.euid, process.uid, self.user_name),
        )?;
        m.serialize_entry("group", &TopIdObj::new(process.egid, process.gid, None))?;
        if self.written {
            m.serialize_entry("host", &*self.b.host_json)?;
        } else {
            m.serialize_entry("host", &self.b.host)?;
        }
        m.serialize_entry(
            "agent",
            &AgentObj {
                r#type: "sensor",
                version: env!("CARGO_PKG_VERSION"),
            },
        )?;
        m.serialize_entry(
            "ecs",
            &EcsObj {
                version: ECS_VERSION,
            },
        )?;
        m.end()
    }
}

/// `event.id`: a hash of the process, the action and the time, as 32 hex
/// digits; computed only when serialised.
struct EventId<'a>(&'a EcsDoc<'a>);

impl Serialize for EventId<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = self.0;
        let id = fnv1a_128(&[
            d.view.process.entity_id.as_bytes(),
            d.action.name().as_bytes(),
            &d.now.to_le_bytes(),
        ]);
        s.collect_str(&format_args!("{id:032x}"))
    }
}

#[derive(Serialize)]
struct EventObj<'a> {
    kind: &'static str,
    category: [&'static str; 1],
    r#type: [&'static str; 1],
    action: &'static str,
    dataset: &'static str,
    module: &'static str,
    id: EventId<'a>,
}

impl<'a> EventObj<'a> {
    fn new(action: &Action<'_>, id: EventId<'a>) -> Self {
        let (category, r#type, dataset) = action.categorisation();
        Self {
            kind: "event",
            category: [category],
            r#type: [r#type],
            action: action.name(),
            dataset,
            module: EVENT_MODULE,
            id,
        }
    }
}

#[derive(Serialize)]
struct AgentObj {
    r#type: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct EcsObj {
    version: &'static str,
}

/// Any `Display` value as a JSON string, without an intermediate String.
struct DisplayStr<T>(T);

impl<T: fmt::Display> Serialize for DisplayStr<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::{path::PathBuf, sync::Arc};

    use super::*;
    use crate::{
        decode::{CharDevice, TaskInfo, fixtures},
        enrich::{
            container::{ContainerRef, Runtime, test_container},
            host::Uname,
            proctable::{ProcessTable, TableConfig},
        },
    };

    const TICK: u64 = 10_000_000;
    const BOOT_EPOCH_NS: i128 = 1_700_000_000_000_000_000;

    fn host() -> HostInfo {
        HostInfo::from_parts(
            Uname {
                nodename: "node-1".into(),
                release: "6.18.0".into(),
                machine: "x86_64".into(),
            },
            Some("abcdefabcdefabcdefabcdefabcdefab".into()),
            &Default::default(),
        )
    }

    fn builder() -> EcsBuilder {
        EcsBuilder::new(&host(), BootClock::from_offset_ns(BOOT_EPOCH_NS))
    }

    fn table() -> ProcessTable {
        ProcessTable::new(TableConfig {
            proc_root: PathBuf::from("/nonexistent"),
            read_cwd: false,
            host_id: "abcdefabcdefabcdefabcdefabcdefab".into(),
            clock_ticks_per_sec: 100,
            ..TableConfig::default()
        })
    }

    fn task(pid: u32, ppid: u32, sid: u32, start: u64, pstart: u64) -> TaskInfo {
        TaskInfo {
            pid,
            tgid: pid,
            ppid,
            sid,
            pgid: pid,
            ns_tgid: pid,
            pidns_inum: 1,
            uid: 1000,
            euid: 0,
            gid: 1001,
            egid: 5,
            start_boottime_ns: start * TICK,
            parent_start_boottime_ns: pstart * TICK,
            ktime_ns: start * TICK + 2_500_000_123,
            comm: "c".into(),
        }
    }

    /// A podman container's exec, as the cgroup names it.
    fn exec(task: TaskInfo, exe: &str, args: &[&str]) -> ExecRecord {
        ExecRecord {
            cgroup_id: 77,
            cgroup_leaf_first: vec!["libpod-x".into(), "libpod_parent".into()],
            ..fixtures::exec(task, exe, args)
        }
    }

    /// init → bash (session leader on pts0) → curl.
    fn curl_exec() -> (ProcessTable, ExecRecord, ProcessView) {
        let mut t = table();
        t.on_exec(
            &exec(task(1, 0, 1, 1, 0), "/sbin/init", &["/sbin/init"]),
            None,
        );
        let mut bash = exec(task(4200, 1, 4200, 100, 1), "/usr/bin/bash", &["bash"]);
        bash.tty = Some(Tty {
            device: CharDevice {
                major: 136,
                minor: 0,
            },
            name: "pts0".into(),
        });
        bash.interactive = true;
        t.on_exec(&bash, None);
        let mut curl = exec(
            task(4242, 4200, 4200, 200, 100),
            "/usr/bin/curl",
            &["curl", "-k", "https://127.0.0.1:6443/api"],
        );
        curl.tty = bash.tty.clone();
        curl.interactive = true;
        let v = t.on_exec(&curl, None);
        (t, curl, v)
    }

    fn has_dotted_key(v: &Value) -> bool {
        match v {
            Value::Object(m) => m
                .iter()
                .any(|(k, v)| (k.contains('.') && k != "@timestamp") || has_dotted_key(v)),
            Value::Array(a) => a.iter().any(has_dotted_key),
            _ => false,
        }
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_nanoseconds() {
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nanos(1_795_376_400_123_456_789),
            "2026-11-22T19:40:00.123456789Z"
        );
        // Leap day and a pre-epoch instant.
        assert_eq!(
            rfc3339_nanos(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
        assert_eq!(rfc3339_nanos(-1), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn exec_event_has_the_contract_fields() {
        let (_, rec, view) = curl_exec();
        let v = builder().exec(&rec, &view, None).to_value();
        assert_eq!(v["event"]["kind"], "event");
        assert_eq!(v["event"]["category"], json!(["process"]));
        assert_eq!(v["event"]["type"], json!(["start"]));
        assert_eq!(v["event"]["action"], "exec");
        assert_eq!(v["event"]["dataset"], "sensor.process");
        assert_eq!(v["event"]["module"], "sensor");
        assert_eq!(v["event"]["id"].as_str().unwrap().len(), 32);
        let p = &v["process"];
        assert_eq!(p["pid"], 4242);
        assert_eq!(p["name"], "curl");
        assert_eq!(p["executable"], "/usr/bin/curl");
        assert_eq!(
            p["args"],
            json!(["curl", "-k", "https://127.0.0.1:6443/api"])
        );
        assert_eq!(p["args_count"], 3);
        assert_eq!(p["command_line"], "curl -k https://127.0.0.1:6443/api");
        assert_eq!(p["Ext"]["args_truncated"], false);
        assert_eq!(p["Ext"]["args_original_bytes"], rec.args_original_bytes);
        assert_eq!(p["interactive"], true);
        assert_eq!(
            p["tty"],
            json!({"char_device": {"major": 136, "minor": 0}, "name": "pts0"})
        );
        assert_eq!(p["user"]["id"], "0");
        assert_eq!(p["group"]["id"], "5");
        assert_eq!(p["real_user"]["id"], "1000");
        assert_eq!(p["real_group"]["id"], "1001");
        assert_eq!(p["vpid"], 4242);
        assert_eq!(p["uptime"], 2);
        assert_eq!(p["entity_id"], &*view.process.entity_id);
        assert_eq!(
            v["process"]["Ext"]["cgroup"],
            json!({"id": 77, "path": "/libpod_parent/libpod-x"})
        );
        assert_eq!(v["host"]["hostname"], "node-1");
        assert_eq!(v["host"]["os"]["type"], "linux");
        assert_eq!(v["agent"]["type"], "sensor");
        assert_eq!(v["ecs"]["version"], ECS_VERSION);
        assert!(v.get("container").is_none() && v.get("orchestrator").is_none());
        assert!(!has_dotted_key(&v));
    }

    fn line(d: &EcsDoc<'_>) -> Value {
        serde_json::from_str(&serde_json::to_string(d).unwrap()).unwrap()
    }

    #[test]
    fn a_written_exec_line_is_the_document_rules_see_with_relatives_rendered_once() {
        let (_, mut rec, view) = curl_exec();
        rec.args.push("quote \" and\nnewline \u{1}".into());
        let b = builder();
        let doc = b.exec(&rec, &view, None);
        let plain = doc.to_value();
        // Rendered the first time, reused after.
        assert_eq!(line(&doc.written()), plain);
        assert_eq!(line(&doc.written()), plain);
        let parent = view.parent.as_ref().and_then(|r| r.info.as_ref()).unwrap();
        // bash is curl's parent and its session leader: both forms.
        assert_eq!(format!("{:?}", parent.rendered), "2 rendered");
    }

    #[test]
    fn an_ended_process_is_cached_without_its_renderings() {
        let (mut t, curl, view) = curl_exec();
        line(&builder().exec(&curl, &view, None).written());
        t.on_exit(&ExitRecord {
            task: task(4200, 1, 4200, 100, 1),
            exit_code: 0,
        });
        let late = t.on_exec(
            &exec(task(4243, 4200, 4200, 300, 100), "/usr/bin/id", &["id"]),
            None,
        );
        let parent = late.parent.and_then(|r| r.info).unwrap();
        assert_eq!(parent.image.name, "bash");
        assert_eq!(format!("{:?}", parent.rendered), "0 rendered");
    }

    #[test]
    fn a_clock_step_rewrites_the_relatives_start_and_jitter_does_not() {
        let (_, rec, view) = curl_exec();
        let mut b = builder();
        line(&b.exec(&rec, &view, None).written());
        let parent_start = |b: &EcsBuilder| {
            line(&b.exec(&rec, &view, None).written())["process"]["parent"]["start"].clone()
        };
        let before = parent_start(&b);
        b.set_clock(BootClock::from_offset_ns(BOOT_EPOCH_NS + 500_000));
        assert_eq!(
            parent_start(&b),
            before,
            "half a millisecond keeps the rendering"
        );
        b.set_clock(BootClock::from_offset_ns(BOOT_EPOCH_NS + 2_000_000_000));
        let after = parent_start(&b);
        assert_ne!(after, before);
        assert_eq!(
            after,
            b.exec(&rec, &view, None).to_value()["process"]["parent"]["start"]
        );
    }

    #[test]
    fn timestamp_and_start_come_from_boottime_plus_the_clock_offset() {
        let (_, rec, view) = curl_exec();
        let v = builder().exec(&rec, &view, None).to_value();
        assert_eq!(
            v["@timestamp"],
            rfc3339_nanos(BOOT_EPOCH_NS + i128::from(rec.task.ktime_ns))
        );
        assert_eq!(v["@timestamp"], "2023-11-14T22:13:24.500000123Z");
        assert_eq!(
            v["process"]["start"],
            rfc3339_nanos(BOOT_EPOCH_NS + 200 * i128::from(TICK))
        );
    }

    #[test]
    fn exec_event_carries_parent_session_group_and_entry_leaders() {
        let (t, rec, view) = curl_exec();
        let v = builder().exec(&rec, &view, None).to_value();
        let bash = t.get(4200).unwrap();
        let parent = &v["process"]["parent"];
        assert_eq!(parent["pid"], 4200);
        assert_eq!(parent["entity_id"], &*bash.entity_id);
        assert_eq!(parent["name"], "bash");
        assert_eq!(parent["executable"], "/usr/bin/bash");
        assert_eq!(parent["args"], json!(["bash"]));
        assert_eq!(parent["args_count"], 1);
        assert_eq!(parent["command_line"], "bash");
        assert_eq!(parent["interactive"], true);
        assert_eq!(parent["user"]["id"], "0");
        assert_eq!(parent["group"]["id"], "5");
        assert!(parent["start"].is_string());
        assert!(parent.get("same_as_process").is_none());
        assert_eq!(v["process"]["session_leader"]["pid"], 4200);
        assert_eq!(v["process"]["session_leader"]["same_as_process"], false);
        assert_eq!(v["process"]["group_leader"]["pid"], 4242);
        assert_eq!(v["process"]["group_leader"]["same_as_process"], true);
        let entry = &v["process"]["entry_leader"];
        assert_eq!(entry["pid"], 4200);
        assert_eq!(entry["entry_meta"]["type"], "init");
        assert_eq!(entry["same_as_process"], false);
        assert_eq!(entry["name"], "bash");
    }

    #[test]
    fn truncated_exec_states_the_original_size() {
        let (mut t, _, _) = curl_exec();
        let mut rec = exec(
            task(5000, 4200, 4200, 300, 100),
            "/bin/echo",
            &["echo", "xx"],
        );
        rec.args_truncated = true;
        rec.args_original_bytes = 131_072;
        let view = t.on_exec(&rec, None);
        let v = builder().exec(&rec, &view, None).to_value();
        assert_eq!(v["process"]["Ext"]["args_truncated"], true);
        assert_eq!(v["process"]["Ext"]["args_original_bytes"], 131_072);
    }

    #[test]
    fn no_tty_field_without_a_controlling_tty() {
        let mut t = table();
        let rec = exec(task(10, 1, 10, 5, 1), "/bin/true", &["true"]);
        let view = t.on_exec(&rec, None);
        let v = builder().exec(&rec, &view, None).to_value();
        assert!(v["process"].get("tty").is_none());
        assert_eq!(v["process"]["interactive"], false);
    }

    /// What `doc`'s index view and its JSON give at every index path.
    fn index_answers(doc: &EcsDoc<'_>) {
        use sensor_rules::{Document, Leaf};
        let json = doc.to_value();
        let view = doc.index_view();
        let owned = |l: Leaf<'_>| l.to_json();
        for p in index::paths() {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            view.leaves(p, &mut |l| {
                a.push(owned(l));
                false
            });
            json.leaves(p, &mut |l| {
                b.push(owned(l));
                false
            });
            assert_eq!(a, b, "{} of {json}", p.dotted());
        }
        assert_eq!(
            view.timestamp_ns(),
            sensor_rules::date::parse_timestamp_ns(json["@timestamp"].as_str().unwrap())
        );
    }

    #[test]
    fn the_index_view_answers_what_the_document_holds() {
        let b = builder();
        let (mut t, rec, view) = curl_exec();
        index_answers(&b.exec(&rec, &view, None));
        // A container process, with and without its runtime's context.
        let container = Arc::new(ContainerRef {
            id: "b".repeat(64),
            runtime: Runtime::Podman,
            pod_uid: None,
        });
        let crec = exec(task(20, 1, 20, 5, 1), "/bin/sh", &["sh"]);
        let cview = t.on_exec(&crec, Some(container.clone()));
        index_answers(&b.exec(&crec, &cview, None));
        let ctx = ContainerContext {
            container,
            meta: None,
        };
        index_answers(&b.exec(&crec, &cview, Some(&ctx)));
        // Fork, end and file events of the same process.
        let child = task(21, 20, 20, 6, 5);
        let fork = crate::decode::ForkRecord {
            child: child.clone(),
        };
        let fview = t.on_fork(&fork).unwrap();
        index_answers(&b.fork(&fork, &fview, Some(&ctx)));
        let file = FileRecord {
            task: child.clone(),
            action: sensor_common::file::FileAction::OpenWrite,
            path: "/etc/cron.d/x".into(),
            truncated: false,
            path2: None,
            path2_truncated: false,
            ino: 7,
            mode: 0o100644,
            open_flags: 1,
            syscall: 257,
            in_container: true,
            pending: false,
            normalised: false,
        };
        index_answers(&b.file(&file, &fview, Some(&ctx)));
        let end = ExitRecord {
            task: child,
            exit_code: 0,
        };
        let eview = t.on_exit(&end);
        index_answers(&b.end(&end, &eview, Some(&ctx)));
        // A process the table never saw (no name).
        let unknown = exec(task(30, 1, 30, 9, 1), "", &[]);
        let mut u = t.on_exec(&unknown, None);
        u.process = Arc::new(ProcessInfo {
            image: Arc::new(crate::enrich::proctable::Image::default()),
            ..(*u.process).clone()
        });
        index_answers(&b.fork(&fork, &u, None));
    }

    #[test]
    fn container_process_gets_container_and_orchestrator_objects() {
        let mut t = table();
        let id = "a".repeat(64);
        let rec = exec(task(10, 1, 10, 5, 1), "/bin/sh", &["sh"]);
        let container = Arc::new(ContainerRef {
            id: id.clone(),
            runtime: Runtime::Containerd,
            pod_uid: Some("uid-1".into()),
        });
        let view = t.on_exec(&rec, Some(container.clone()));
        let ctx = ContainerContext {
            container,
            meta: Some(Arc::new(ContainerMeta {
                name: Some("web".into()),
                image_name: Some("busybox".into()),
                image_tag: Some("latest".into()),
                pod_name: Some("web-7f9c".into()),
                pod_namespace: Some("default".into()),
                pod_labels: [("app".to_string(), "web".to_string())].into(),
                ..ContainerMeta::default()
            })),
        };
        let v = builder().exec(&rec, &view, Some(&ctx)).to_value();
        assert_eq!(
            v["container"],
            json!({"id": id, "runtime": "containerd", "name": "web",
                   "image": {"name": "busybox", "tag": "latest"}})
        );
        assert_eq!(
            v["orchestrator"],
            json!({"type": "kubernetes", "namespace": "default",
                   "resource": {"type": "pod", "name": "web-7f9c", "id": "uid-1",
                                "label": ["app:web"]}})
        );
        assert_eq!(
            v["process"]["entry_leader"]["entry_meta"]["type"],
            "container"
        );
        assert_eq!(v["process"]["entry_leader"]["same_as_process"], true);
    }

    #[test]
    fn podman_container_without_pod_has_no_orchestrator() {
        let mut t = table();
        let id = "b".repeat(64);
        let rec = exec(task(10, 1, 10, 5, 1), "/bin/sh", &["sh"]);
        let container = test_container(&id);
        let view = t.on_exec(&rec, container.clone());
        let ctx = ContainerContext {
            container: container.unwrap(),
            meta: None,
        };
        let v = builder().exec(&rec, &view, Some(&ctx)).to_value();
        assert_eq!(v["container"], json!({"id": id, "runtime": "podman"}));
        assert!(v.get("orchestrator").is_none());
        // Without resolved context the id alone still marks the container.
        let bare = builder().exec(&rec, &view, None).to_value();
        assert_eq!(bare["container"], json!({"id": id}));
    }

    #[test]
    fn fork_event_is_a_start_of_the_child_with_its_parent() {
        let (mut t, _, _) = curl_exec();
        let child = task(4300, 4200, 4200, 400, 100);
        let rec = ForkRecord { child };
        let view = t.on_fork(&rec).unwrap();
        let v = builder().fork(&rec, &view, None).to_value();
        assert_eq!(v["event"]["action"], "fork");
        assert_eq!(v["event"]["type"], json!(["start"]));
        assert_eq!(v["process"]["pid"], 4300);
        assert_eq!(v["process"]["name"], "bash");
        assert_eq!(v["process"]["parent"]["pid"], 4200);
        assert_eq!(v["process"]["tty"]["char_device"]["major"], 136);
    }

    #[test]
    fn end_event_has_exit_code_and_end_time() {
        let (mut t, curl, _) = curl_exec();
        let mut task = curl.task.clone();
        task.ktime_ns += 1_000_000_000;
        let rec = ExitRecord {
            task,
            exit_code: 7 << 8,
        };
        let view = t.on_exit(&rec);
        let v = builder().end(&rec, &view, None).to_value();
        assert_eq!(v["event"]["action"], "end");
        assert_eq!(v["event"]["type"], json!(["end"]));
        assert_eq!(v["process"]["exit_code"], 7);
        assert_eq!(v["process"]["end"], v["@timestamp"]);
        assert_eq!(v["process"]["name"], "curl");
    }

    #[test]
    fn exit_code_of_a_signalled_process_is_128_plus_signal() {
        assert_eq!(exit_code_from_wait_status(0), 0);
        assert_eq!(exit_code_from_wait_status(1 << 8), 1);
        assert_eq!(exit_code_from_wait_status(9), 137);
        assert_eq!(exit_code_from_wait_status(0x80 | 11), 139);
    }

    #[test]
    fn unknown_parent_still_has_pid_entity_id_and_start() {
        let mut t = table();
        let rec = exec(task(10, 9, 10, 5, 4), "/bin/x", &["x"]);
        let view = t.on_exec(&rec, None);
        let v = builder().exec(&rec, &view, None).to_value();
        let parent = &v["process"]["parent"];
        assert_eq!(parent["pid"], 9);
        assert_eq!(
            parent["entity_id"],
            json!(view.parent.as_ref().unwrap().entity_id.as_deref())
        );
        assert!(parent["start"].is_string());
        assert!(parent.get("name").is_none() && parent.get("args").is_none());
    }

    /// Fails on an object that names a key twice (serde_json would keep
    /// the last one silently).
    fn assert_unique_keys(line: &str) {
        struct Check;
        impl<'de> serde::de::Visitor<'de> for Check {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
                let mut seen = std::collections::HashSet::new();
                while let Some(k) = m.next_key::<String>()? {
                    if !seen.insert(k.clone()) {
                        return Err(serde::de::Error::custom(format!("key {k} twice")));
                    }
                    m.next_value::<Checked>()?;
                }
                Ok(())
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
                while a.next_element::<Checked>()?.is_some() {}
                Ok(())
            }
            fn visit_str<E>(self, _: &str) -> Result<(), E> {
                Ok(())
            }
            fn visit_bool<E>(self, _: bool) -> Result<(), E> {
                Ok(())
            }
            fn visit_u64<E>(self, _: u64) -> Result<(), E> {
                Ok(())
            }
            fn visit_i64<E>(self, _: i64) -> Result<(), E> {
                Ok(())
            }
            fn visit_f64<E>(self, _: f64) -> Result<(), E> {
                Ok(())
            }
            fn visit_unit<E>(self) -> Result<(), E> {
                Ok(())
            }
        }
        struct Checked;
        impl<'de> serde::Deserialize<'de> for Checked {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(Check).map(|()| Checked)
            }
        }
        serde_json::from_str::<Checked>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }

    #[test]
    #[should_panic(expected = "key a twice")]
    fn the_duplicate_key_check_catches_a_repeated_key() {
        assert_unique_keys(r#"{"x": [{"a": 1, "a": 2}]}"#);
    }

    #[test]
    fn no_object_in_any_event_names_a_key_twice() {
        let (mut t, curl, view) = curl_exec();
        let ctx = ContainerContext {
            container: Arc::new(ContainerRef {
                id: "c".repeat(64),
                runtime: Runtime::Containerd,
                pod_uid: Some("u".into()),
            }),
            meta: Some(Arc::new(ContainerMeta {
                name: Some("web".into()),
                image_name: Some("busybox".into()),
                image_tag: Some("1".into()),
                pod_name: Some("p".into()),
                pod_namespace: Some("ns".into()),
                pod_labels: [("a".to_string(), "b".to_string())].into(),
                runtime: Some("containerd".into()),
                ..ContainerMeta::default()
            })),
        };
        let b = builder();
        assert_unique_keys(&serde_json::to_string(&b.exec(&curl, &view, Some(&ctx))).unwrap());
        let fork = ForkRecord {
            child: task(4300, 4242, 4200, 300, 200),
        };
        let fview = t.on_fork(&fork).unwrap();
        assert_unique_keys(&serde_json::to_string(&b.fork(&fork, &fview, Some(&ctx))).unwrap());
        let exit = ExitRecord {
            task: curl.task.clone(),
            exit_code: 0,
        };
        let eview = t.on_exit(&exit);
        assert_unique_keys(&serde_json::to_string(&b.end(&exit, &eview, None)).unwrap());
    }

    #[test]
    fn hostile_args_serialise_to_one_line_of_valid_json() {
        let mut t = table();
        let nasty = [
            "a\nb",
            "q\"uote",
            "back\\slash",
            "\u{0}\u{1b}[31m",
            "x\u{fffd}y",
        ];
        let rec = exec(task(10, 1, 10, 5, 1), "/bin/x", &nasty);
        let view = t.on_exec(&rec, None);
        let line = serde_json::to_string(&builder().exec(&rec, &view, None)).unwrap();
        assert!(!line.contains('\n'));
        let back: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["process"]["args"], json!(nasty));
    }
}
