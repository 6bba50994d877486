//! ECS documents for process events, exactly as `docs/events.md` specifies:
//! nested objects (never dotted keys), unknown values left out rather than
//! nulled, `container.*`/`orchestrator.*` only for container processes.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::{
    decode::{ExecRecord, ExitRecord, ForkRecord, Tty},
    enrich::{
        host::{BootClock, HostInfo},
        proctable::{EntryLeader, ProcessInfo, ProcessView, Relative, fnv1a_128},
    },
};

pub const ECS_VERSION: &str = "8.11.0";
pub const EVENT_DATASET: &str = "sensor.process";
pub const EVENT_MODULE: &str = "sensor";

/// Container and pod context of an event, filled by the container
/// resolver and metadata look-ups; every field but `id` may be unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerContext {
    /// Full container id (64 hex for docker/containerd/CRI-O/podman).
    pub id: String,
    /// e.g. "podman", "containerd", "cri-o", "docker".
    pub runtime: Option<String>,
    pub name: Option<String>,
    pub image_name: Option<String>,
    pub image_tag: Option<String>,
    pub pod_name: Option<String>,
    pub pod_namespace: Option<String>,
    pub pod_uid: Option<String>,
    /// Pod labels (`orchestrator.resource.labels`).
    pub labels: BTreeMap<String, String>,
}

/// Formats Unix-epoch nanoseconds as RFC 3339 UTC with nanoseconds, e.g.
/// `2026-11-22T19:40:00.123456789Z`.
pub fn rfc3339_nanos(unix_ns: i128) -> String {
    let secs = unix_ns.div_euclid(1_000_000_000) as i64;
    let nanos = unix_ns.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Builds the ECS documents. Holds what is the same in every event (host,
/// agent) so each event only serialises its own fields.
pub struct EcsBuilder {
    host: Value,
    clock: BootClock,
}

fn id_obj(id: u32) -> Value {
    json!({ "id": id.to_string() })
}

fn tty_obj(t: &Tty) -> Value {
    let mut o = Map::new();
    o.insert(
        "char_device".into(),
        json!({"major": t.device.major, "minor": t.device.minor}),
    );
    if !t.name.is_empty() {
        o.insert("name".into(), json!(t.name));
    }
    Value::Object(o)
}

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

impl EcsBuilder {
    pub fn new(host: &HostInfo, clock: BootClock) -> Self {
        Self {
            host: host.to_ecs(),
            clock,
        }
    }

    /// Replaces the boot→wall clock offset (after re-measuring it).
    pub fn set_clock(&mut self, clock: BootClock) {
        self.clock = clock;
    }

    fn time(&self, boot_ns: u64) -> String {
        rfc3339_nanos(self.clock.to_unix_ns(boot_ns))
    }

    /// The fields every process sub-object shares: pid, entity_id, name,
    /// executable, args, args_count, command_line, interactive, start,
    /// user.id, group.id.
    fn identity(&self, p: &ProcessInfo, o: &mut Map<String, Value>) {
        o.insert("pid".into(), json!(p.pid));
        o.insert("entity_id".into(), json!(&*p.entity_id));
        if !p.image.name.is_empty() {
            o.insert("name".into(), json!(p.image.name));
        }
        if let Some(exe) = &p.image.executable {
            o.insert("executable".into(), json!(exe));
        }
        if !p.image.args.is_empty() {
            o.insert("args".into(), json!(p.image.args));
            o.insert("args_count".into(), json!(p.image.args.len()));
            o.insert("command_line".into(), json!(p.image.command_line));
        }
        o.insert("interactive".into(), json!(p.interactive));
        o.insert("start".into(), json!(self.time(p.start_boottime_ns)));
        o.insert("user".into(), id_obj(p.euid));
        o.insert("group".into(), id_obj(p.egid));
    }

    /// A relative's sub-object. `me` is set for leaders, which say whether
    /// they are the process itself (a parent never is).
    fn relative(&self, r: &Relative, me: Option<&ProcessInfo>) -> Value {
        let mut o = Map::new();
        match &r.info {
            Some(info) => {
                self.identity(info, &mut o);
                // Stored ancestor args may be cut by the table's cap: say so.
                if info.image.args_truncated {
                    o.insert("args_truncated".into(), json!(true));
                }
                if let Some(me) = me {
                    o.insert(
                        "same_as_process".into(),
                        json!(info.pid == me.pid && info.start_ticks == me.start_ticks),
                    );
                }
            }
            None => {
                o.insert("pid".into(), json!(r.pid));
                if let Some(id) = &r.entity_id {
                    o.insert("entity_id".into(), json!(&**id));
                }
                if let Some(ns) = r.start_boottime_ns {
                    o.insert("start".into(), json!(self.time(ns)));
                }
                if let Some(me) = me {
                    o.insert("same_as_process".into(), json!(r.pid == me.pid));
                }
            }
        }
        Value::Object(o)
    }

    fn entry_leader(&self, e: &EntryLeader, view: &ProcessView) -> Value {
        let mut o = Map::new();
        self.identity(&e.leader, &mut o);
        if e.leader.image.args_truncated {
            o.insert("args_truncated".into(), json!(true));
        }
        o.insert("entry_meta".into(), json!({"type": e.kind.as_str()}));
        o.insert("same_as_process".into(), json!(view.entry_leader_is_self()));
        Value::Object(o)
    }

    /// `process.*` shared by every action; `action_fields` adds the rest.
    fn process(&self, view: &ProcessView, now_boot_ns: u64) -> Map<String, Value> {
        let p = &view.process;
        let mut o = Map::new();
        self.identity(p, &mut o);
        if let Some(cwd) = &p.working_directory {
            o.insert("working_directory".into(), json!(&**cwd));
        }
        if let Some(t) = &p.tty {
            o.insert("tty".into(), tty_obj(t));
        }
        o.insert(
            "uptime".into(),
            json!(now_boot_ns.saturating_sub(p.start_boottime_ns) / 1_000_000_000),
        );
        o.insert("real_user".into(), id_obj(p.uid));
        o.insert("real_group".into(), id_obj(p.gid));
        o.insert("vpid".into(), json!(p.ns_tgid));
        if let Some(r) = &view.parent {
            o.insert("parent".into(), self.relative(r, None));
        }
        if let Some(r) = &view.session_leader {
            o.insert("session_leader".into(), self.relative(r, Some(p)));
        }
        if let Some(r) = &view.group_leader {
            o.insert("group_leader".into(), self.relative(r, Some(p)));
        }
        if let Some(e) = &view.entry_leader {
            o.insert("entry_leader".into(), self.entry_leader(e, view));
        }
        o
    }

    fn document(
        &self,
        action: &str,
        now_boot_ns: u64,
        process: Map<String, Value>,
        view: &ProcessView,
        container: Option<&ContainerContext>,
    ) -> Map<String, Value> {
        let event_type = if action == "end" { "end" } else { "start" };
        let event_id = format!(
            "{:032x}",
            fnv1a_128(&[
                view.process.entity_id.as_bytes(),
                action.as_bytes(),
                &now_boot_ns.to_le_bytes(),
            ])
        );
        let mut doc = Map::new();
        doc.insert("@timestamp".into(), json!(self.time(now_boot_ns)));
        doc.insert(
            "event".into(),
            json!({
                "kind": "event",
                "category": ["process"],
                "type": [event_type],
                "action": action,
                "dataset": EVENT_DATASET,
                "module": EVENT_MODULE,
                "id": event_id,
            }),
        );
        doc.insert("process".into(), Value::Object(process));
        add_container(&mut doc, view.process.container_id.as_deref(), container);
        doc.insert("host".into(), self.host.clone());
        doc.insert(
            "agent".into(),
            json!({"type": "sensor", "version": env!("CARGO_PKG_VERSION")}),
        );
        doc.insert("ecs".into(), json!({"version": ECS_VERSION}));
        doc
    }

    /// `event.action: "exec"`. `view` is what [`ProcessTable::on_exec`]
    /// returned for `rec`.
    ///
    /// [`ProcessTable::on_exec`]: crate::enrich::proctable::ProcessTable::on_exec
    pub fn exec(
        &self,
        rec: &ExecRecord,
        view: &ProcessView,
        container: Option<&ContainerContext>,
    ) -> Value {
        let now = rec.task.ktime_ns;
        let mut p = self.process(view, now);
        // On exec, args are always present (even empty) and truncation is
        // always stated.
        p.insert("args".into(), json!(view.process.image.args));
        p.insert("args_count".into(), json!(view.process.image.args.len()));
        p.insert(
            "command_line".into(),
            json!(view.process.image.command_line),
        );
        p.insert("args_truncated".into(), json!(rec.args_truncated));
        p.insert("args_original_bytes".into(), json!(rec.args_original_bytes));
        let mut doc = self.document("exec", now, p, view, container);
        let path: String = rec
            .cgroup_leaf_first
            .iter()
            .rev()
            .flat_map(|c| ["/", c.as_str()])
            .collect();
        doc.insert(
            "cgroup".into(),
            json!({"id": rec.cgroup_id, "path": if path.is_empty() { "/".to_string() } else { path }}),
        );
        Value::Object(doc)
    }

    /// `event.action: "fork"`: the new child, still running its parent's
    /// image.
    pub fn fork(
        &self,
        rec: &ForkRecord,
        view: &ProcessView,
        container: Option<&ContainerContext>,
    ) -> Value {
        let now = rec.child.ktime_ns;
        let mut p = self.process(view, now);
        if view.process.image.args_truncated {
            p.insert("args_truncated".into(), json!(true));
        }
        Value::Object(self.document("fork", now, p, view, container))
    }

    /// `event.action: "end"`, with `process.exit_code` and `process.end`.
    pub fn end(
        &self,
        rec: &ExitRecord,
        view: &ProcessView,
        container: Option<&ContainerContext>,
    ) -> Value {
        let now = rec.task.ktime_ns;
        let mut p = self.process(view, now);
        if view.process.image.args_truncated {
            p.insert("args_truncated".into(), json!(true));
        }
        p.insert(
            "exit_code".into(),
            json!(exit_code_from_wait_status(rec.exit_code)),
        );
        p.insert("end".into(), json!(self.time(now)));
        Value::Object(self.document("end", now, p, view, container))
    }
}

fn add_container(
    doc: &mut Map<String, Value>,
    table_id: Option<&str>,
    ctx: Option<&ContainerContext>,
) {
    let Some(ctx) = ctx else {
        // Without resolved context the table's id still marks a container
        // process; host processes get no container.* at all.
        if let Some(id) = table_id {
            doc.insert("container".into(), json!({ "id": id }));
        }
        return;
    };
    let mut c = Map::new();
    c.insert("id".into(), json!(ctx.id));
    if let Some(r) = &ctx.runtime {
        c.insert("runtime".into(), json!(r));
    }
    if let Some(n) = &ctx.name {
        c.insert("name".into(), json!(n));
    }
    let mut image = Map::new();
    if let Some(n) = &ctx.image_name {
        image.insert("name".into(), json!(n));
    }
    if let Some(t) = &ctx.image_tag {
        image.insert("tag".into(), json!(t));
    }
    if !image.is_empty() {
        c.insert("image".into(), Value::Object(image));
    }
    doc.insert("container".into(), Value::Object(c));

    if ctx.pod_name.is_none() && ctx.pod_namespace.is_none() && ctx.pod_uid.is_none() {
        return;
    }
    let mut resource = Map::new();
    resource.insert("type".into(), json!("pod"));
    if let Some(n) = &ctx.pod_name {
        resource.insert("name".into(), json!(n));
    }
    if let Some(u) = &ctx.pod_uid {
        resource.insert("id".into(), json!(u));
    }
    if !ctx.labels.is_empty() {
        resource.insert("labels".into(), json!(ctx.labels));
    }
    let mut orch = Map::new();
    orch.insert("type".into(), json!("kubernetes"));
    if let Some(ns) = &ctx.pod_namespace {
        orch.insert("namespace".into(), json!(ns));
    }
    orch.insert("resource".into(), Value::Object(resource));
    doc.insert("orchestrator".into(), Value::Object(orch));
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::{
        decode::{CharDevice, TaskInfo, fixtures},
        enrich::{
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
        let v = builder().exec(&rec, &view, None);
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
        assert_eq!(p["args_truncated"], false);
        assert_eq!(p["args_original_bytes"], rec.args_original_bytes);
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
            v["cgroup"],
            json!({"id": 77, "path": "/libpod_parent/libpod-x"})
        );
        assert_eq!(v["host"]["hostname"], "node-1");
        assert_eq!(v["host"]["os"]["type"], "linux");
        assert_eq!(v["agent"]["type"], "sensor");
        assert_eq!(v["ecs"]["version"], ECS_VERSION);
        assert!(v.get("container").is_none() && v.get("orchestrator").is_none());
        assert!(!has_dotted_key(&v));
    }

    #[test]
    fn timestamp_and_start_come_from_boottime_plus_the_clock_offset() {
        let (_, rec, view) = curl_exec();
        let v = builder().exec(&rec, &view, None);
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
        let v = builder().exec(&rec, &view, None);
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
        let v = builder().exec(&rec, &view, None);
        assert_eq!(v["process"]["args_truncated"], true);
        assert_eq!(v["process"]["args_original_bytes"], 131_072);
    }

    #[test]
    fn no_tty_field_without_a_controlling_tty() {
        let mut t = table();
        let rec = exec(task(10, 1, 10, 5, 1), "/bin/true", &["true"]);
        let view = t.on_exec(&rec, None);
        let v = builder().exec(&rec, &view, None);
        assert!(v["process"].get("tty").is_none());
        assert_eq!(v["process"]["interactive"], false);
    }

    #[test]
    fn container_process_gets_container_and_orchestrator_objects() {
        let mut t = table();
        let id = "a".repeat(64);
        let rec = exec(task(10, 1, 10, 5, 1), "/bin/sh", &["sh"]);
        let view = t.on_exec(&rec, Some(id.clone()));
        let ctx = ContainerContext {
            id: id.clone(),
            runtime: Some("containerd".into()),
            name: Some("web".into()),
            image_name: Some("busybox".into()),
            image_tag: Some("latest".into()),
            pod_name: Some("web-7f9c".into()),
            pod_namespace: Some("default".into()),
            pod_uid: Some("uid-1".into()),
            labels: [("app".to_string(), "web".to_string())].into(),
        };
        let v = builder().exec(&rec, &view, Some(&ctx));
        assert_eq!(
            v["container"],
            json!({"id": id, "runtime": "containerd", "name": "web",
                   "image": {"name": "busybox", "tag": "latest"}})
        );
        assert_eq!(
            v["orchestrator"],
            json!({"type": "kubernetes", "namespace": "default",
                   "resource": {"type": "pod", "name": "web-7f9c", "id": "uid-1",
                                "labels": {"app": "web"}}})
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
        let view = t.on_exec(&rec, Some(id.clone()));
        let ctx = ContainerContext {
            id: id.clone(),
            runtime: Some("podman".into()),
            ..Default::default()
        };
        let v = builder().exec(&rec, &view, Some(&ctx));
        assert_eq!(v["container"], json!({"id": id, "runtime": "podman"}));
        assert!(v.get("orchestrator").is_none());
        // Without resolved context the id alone still marks the container.
        let bare = builder().exec(&rec, &view, None);
        assert_eq!(bare["container"], json!({"id": id}));
    }

    #[test]
    fn fork_event_is_a_start_of_the_child_with_its_parent() {
        let (mut t, _, _) = curl_exec();
        let child = task(4300, 4200, 4200, 400, 100);
        let rec = ForkRecord { child };
        let view = t.on_fork(&rec).unwrap();
        let v = builder().fork(&rec, &view, None);
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
        let v = builder().end(&rec, &view, None);
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
        let v = builder().exec(&rec, &view, None);
        let parent = &v["process"]["parent"];
        assert_eq!(parent["pid"], 9);
        assert_eq!(
            parent["entity_id"],
            json!(view.parent.as_ref().unwrap().entity_id.as_deref())
        );
        assert!(parent["start"].is_string());
        assert!(parent.get("name").is_none() && parent.get("args").is_none());
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
        let line = builder().exec(&rec, &view, None).to_string();
        assert!(!line.contains('\n'));
        let back: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["process"]["args"], json!(nasty));
    }
}
