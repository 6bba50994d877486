//! Alert suppression, in Elastic's rule schema (`[rule.alert_suppression]`
//! with `group_by`, `duration` and `missing_fields_strategy`), plus the
//! agent-wide default and a per-(rule, container) rate cap.
//!
//! The first alert of a group is written at once with
//! `kibana.alert.suppression.*` set; the duplicates inside the window are
//! counted, and when the window closes (on event time, so `replay` folds
//! exactly as `run` did) the same alert, with the same `kibana.alert.uuid`,
//! is written again carrying `docs_count`, `start` and `end`: Elastic updates
//! the alert document in place, and a stream can only append.

use crate::document::{Document, Leaf, has_str};
use crate::rule::RuleMeta;
use crate::value::{FieldPath, Val};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::OnceLock;

/// `[rule.alert_suppression]` as written in the TOML file.
#[derive(Debug, Clone, Deserialize)]
pub struct RawSuppression {
    group_by: Vec<String>,
    #[serde(default)]
    duration: Option<RawDuration>,
    #[serde(default)]
    missing_fields_strategy: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawDuration {
    value: u64,
    unit: String,
}

/// What to do with alerts whose `group_by` fields are missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingFields {
    /// Missing values form one group of their own (Elastic's default).
    Suppress,
    /// Every such alert is written.
    DoNotSuppress,
}

/// A rule's suppression settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Suppression {
    pub group_by: Vec<FieldPath>,
    /// `None`: one window per rule run in Elastic; here the rule's `interval`,
    /// or the agent's default window.
    pub duration_ms: Option<u64>,
    pub missing: MissingFields,
}

impl TryFrom<RawSuppression> for Suppression {
    type Error = String;

    fn try_from(r: RawSuppression) -> Result<Self, String> {
        if r.group_by.is_empty() || r.group_by.len() > 3 {
            return Err(format!(
                "group_by takes 1 to 3 fields, found {}",
                r.group_by.len()
            ));
        }
        let duration_ms = match r.duration {
            None => None,
            Some(d) => {
                let unit = match d.unit.as_str() {
                    "s" => 1_000,
                    "m" => 60_000,
                    "h" => 3_600_000,
                    other => {
                        return Err(format!("duration unit '{other}': use s, m or h"));
                    }
                };
                Some(d.value.checked_mul(unit).ok_or("duration too large")?)
            }
        };
        let missing = match r.missing_fields_strategy.as_deref() {
            None | Some("suppress") => MissingFields::Suppress,
            Some("doNotSuppress") => MissingFields::DoNotSuppress,
            Some(other) => {
                return Err(format!(
                    "missing_fields_strategy '{other}': use \"suppress\" or \"doNotSuppress\""
                ));
            }
        };
        Ok(Suppression {
            group_by: r
                .group_by
                .iter()
                .map(|f| FieldPath::dotted_name(f))
                .collect(),
            duration_ms,
            missing,
        })
    }
}

/// Agent-wide settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuppressConfig {
    /// Window for rules without `[rule.alert_suppression]`; 0 turns the
    /// default off (rules' own settings still apply).
    pub default_window_ms: u64,
    /// Alerts per minute of event time one (rule, container) may write; 0: no cap.
    pub rate_cap: u32,
    /// Open windows kept at most; past it the oldest closes early (its count alert is written).
    pub max_windows: usize,
}

impl Default for SuppressConfig {
    fn default() -> Self {
        SuppressConfig {
            default_window_ms: 60_000,
            rate_cap: 100,
            max_windows: 20_000,
        }
    }
}

/// The fields the default grouping (and the rate cap) reads, built once:
/// `container.id`, `host.name`, `process.command_line`, `file.path`,
/// `event.category`, and for Kubernetes audit events `event.dataset`,
/// `user.name` and `kubernetes.audit.requestURI`.
pub fn default_group_fields() -> &'static [FieldPath; 8] {
    static F: OnceLock<[FieldPath; 8]> = OnceLock::new();
    F.get_or_init(|| {
        [
            "container.id",
            "host.name",
            "process.command_line",
            "file.path",
            "event.category",
            "event.dataset",
            "user.name",
            "kubernetes.audit.requestURI",
        ]
        .map(FieldPath::dotted_name)
    })
}

const RATE_WINDOW_NS: i64 = 60_000_000_000;

#[derive(Debug)]
struct Window {
    end_ns: i64,
    start_ns: i64,
    last_ns: i64,
    count: u64,
    /// The alert written first; written again with the count at close.
    alert: Value,
}

#[derive(Debug, Default)]
pub struct Suppressor {
    cfg: SuppressConfig,
    windows: HashMap<String, Window>,
    /// Window keys in opening order, with their end: closes them on time.
    order: VecDeque<(i64, String)>,
    /// (rule, container) → (window start, alerts written in it, capped in it).
    rate: HashMap<String, (i64, u32, u64)>,
    /// Windows replaced by a new one before `expire` closed them.
    pending_close: Vec<Window>,
    pub suppressed: u64,
    pub capped: u64,
    pub count_alerts: u64,
}

fn first_value(path: &FieldPath, ev: &dyn Document) -> Option<Value> {
    let mut vals = Vec::new();
    ev.leaves(path, &mut |l| {
        if !matches!(l, Leaf::Scalar(Val::Null)) {
            vals.push(l.to_json());
        }
        false
    });
    match vals.len() {
        0 => None,
        1 => vals.pop(),
        _ => Some(Value::Array(vals)),
    }
}

fn is_file_event(ev: &dyn Document) -> bool {
    has_str(ev, &default_group_fields()[4], "file")
}

fn is_audit_event(ev: &dyn Document) -> bool {
    has_str(ev, &default_group_fields()[5], "kubernetes.audit_logs")
}

fn set_suppression(alert: &mut Value, terms: &[(String, Value)], w: (i64, i64, u64)) {
    let Some(obj) = alert.as_object_mut() else {
        return;
    };
    let kibana = obj.entry("kibana").or_insert_with(|| json!({}));
    let Some(kibana) = kibana.as_object_mut() else {
        return;
    };
    let a = kibana.entry("alert").or_insert_with(|| json!({}));
    if let Some(a) = a.as_object_mut() {
        let terms: Vec<Value> = terms
            .iter()
            .map(|(f, v)| json!({"field": f, "value": v}))
            .collect();
        let mut s = Map::new();
        s.insert("terms".into(), Value::Array(terms));
        s.insert("start".into(), json!(crate::date::format_ns(w.0)));
        s.insert("end".into(), json!(crate::date::format_ns(w.1)));
        s.insert("docs_count".into(), json!(w.2));
        a.insert("suppression".into(), Value::Object(s));
    }
}

impl Suppressor {
    pub fn new(cfg: SuppressConfig) -> Suppressor {
        Suppressor {
            cfg,
            ..Suppressor::default()
        }
    }

    /// Decides the alerts rule number `rule` raised on `view` at event time
    /// `now_ns` (one alert, or a sequence's shell and building blocks).
    /// `build` makes them, called only when they are written: a suppressed
    /// or capped match costs no alert building. The first alert of a
    /// window gets its `kibana.alert.suppression.*` fields.
    pub fn admit(
        &mut self,
        rule: usize,
        meta: &RuleMeta,
        view: &dyn Document,
        now_ns: i64,
        build: &mut dyn FnMut() -> Vec<Value>,
    ) -> Option<Vec<Value>> {
        let (window_ms, terms) = match &meta.suppression {
            Some(s) => {
                let terms: Vec<(String, Option<Value>)> = s
                    .group_by
                    .iter()
                    .map(|p| (p.dotted(), first_value(p, view)))
                    .collect();
                if s.missing == MissingFields::DoNotSuppress && terms.iter().any(|t| t.1.is_none())
                {
                    return self.rate_check(rule, view, now_ns).then(build);
                }
                let ms = s
                    .duration_ms
                    .or(meta.interval_ms)
                    .unwrap_or(self.cfg.default_window_ms.max(1));
                (ms, terms)
            }
            None if self.cfg.default_window_ms == 0 => {
                return self.rate_check(rule, view, now_ns).then(build);
            }
            // An audit event has no container or command: the same user
            // making the same request (a controller creating one pod after
            // another) is the group.
            None if is_audit_event(view) => {
                let f = default_group_fields();
                (
                    self.cfg.default_window_ms,
                    vec![
                        ("user.name".to_string(), first_value(&f[6], view)),
                        (
                            "kubernetes.audit.requestURI".to_string(),
                            first_value(&f[7], view),
                        ),
                    ],
                )
            }
            None => {
                let f = default_group_fields();
                let scope = first_value(&f[0], view)
                    .map(|v| ("container.id".to_string(), Some(v)))
                    .unwrap_or_else(|| ("host.name".into(), first_value(&f[1], view)));
                let what = if is_file_event(view) {
                    ("file.path".to_string(), first_value(&f[3], view))
                } else {
                    ("process.command_line".to_string(), first_value(&f[2], view))
                };
                (self.cfg.default_window_ms, vec![scope, what])
            }
        };
        let terms: Vec<(String, Value)> = terms
            .into_iter()
            .map(|(f, v)| (f, v.unwrap_or(Value::Null)))
            .collect();
        let mut key = rule.to_string();
        for (_, v) in &terms {
            key.push('\u{1f}');
            key.push_str(&v.to_string());
        }
        if let Some(w) = self.windows.get_mut(&key)
            && now_ns < w.end_ns
        {
            w.count += 1;
            w.last_ns = w.last_ns.max(now_ns);
            self.suppressed += 1;
            return None;
        }
        if !self.rate_check(rule, view, now_ns) {
            return None;
        }
        let mut alerts = build();
        let alert = alerts.first_mut()?;
        set_suppression(alert, &terms, (now_ns, now_ns, 0));
        let end_ns = now_ns.saturating_add((window_ms as i64).saturating_mul(1_000_000));
        let old = self.windows.insert(
            key.clone(),
            Window {
                end_ns,
                start_ns: now_ns,
                last_ns: now_ns,
                count: 0,
                alert: alert.clone(),
            },
        );
        // An expired window still open under this key: its count is kept
        // for the next `expire`, which sees the key's end moved on.
        if let Some(old) = old
            && old.count > 0
        {
            self.pending_close.push(old);
        }
        self.order.push_back((end_ns, key));
        Some(alerts)
    }

    /// May one more alert of `rule` for this container (or host) be written
    /// now? Counts the ones it holds back.
    fn rate_check(&mut self, rule: usize, view: &dyn Document, now_ns: i64) -> bool {
        if self.cfg.rate_cap == 0 {
            return true;
        }
        let f = default_group_fields();
        let scope = first_value(&f[0], view)
            .or_else(|| first_value(&f[1], view))
            .unwrap_or(Value::Null);
        let key = format!("{rule}\u{1f}{scope}");
        let e = self.rate.entry(key).or_insert((now_ns, 0, 0));
        if now_ns - e.0 >= RATE_WINDOW_NS {
            *e = (now_ns, 0, 0);
        }
        if e.1 >= self.cfg.rate_cap {
            e.2 += 1;
            self.capped += 1;
            return false;
        }
        e.1 += 1;
        true
    }

    /// The rule set was reloaded: rule number `i` is now `new_of_old[i]`.
    /// State of the rules that stayed moves with them; the windows of the
    /// others close at the next [`Suppressor::expire`].
    pub fn remap_rules(&mut self, new_of_old: &[Option<usize>]) {
        let remap = |key: &str| -> Option<String> {
            let (rule, rest) = key.split_once('\u{1f}').unwrap_or((key, ""));
            let new = (*new_of_old.get(rule.parse::<usize>().ok()?)?)?;
            Some(format!("{new}\u{1f}{rest}"))
        };
        for (key, w) in std::mem::take(&mut self.windows) {
            match remap(&key) {
                Some(k) => {
                    self.windows.insert(k, w);
                }
                None => self.pending_close.push(w),
            }
        }
        self.order = std::mem::take(&mut self.order)
            .into_iter()
            .filter_map(|(end, key)| Some((end, remap(&key)?)))
            .collect();
        self.rate = std::mem::take(&mut self.rate)
            .into_iter()
            .filter_map(|(key, v)| Some((remap(&key)?, v)))
            .collect();
    }

    /// Closes the windows that ended by `now_ns` (all with `i64::MAX`) and
    /// writes the count alert of each that suppressed anything.
    pub fn expire(&mut self, now_ns: i64, out: &mut Vec<Value>) {
        for w in std::mem::take(&mut self.pending_close) {
            self.close(w, out);
        }
        while let Some((end, _)) = self.order.front() {
            let over = self.windows.len() > self.cfg.max_windows;
            if *end > now_ns && !over {
                break;
            }
            let Some((end, key)) = self.order.pop_front() else {
                break;
            };
            // A reopened window has a later end: its own entry closes it.
            if self.windows.get(&key).is_some_and(|w| w.end_ns == end)
                && let Some(w) = self.windows.remove(&key)
            {
                self.close(w, out);
            }
        }
        self.rate
            .retain(|_, (start, _, _)| now_ns.saturating_sub(*start) < RATE_WINDOW_NS);
    }

    fn close(&mut self, w: Window, out: &mut Vec<Value>) {
        if w.count == 0 {
            return;
        }
        let mut alert = w.alert;
        // Same alert, same terms: only the window's span and count change.
        if let Some(sup) = alert
            .pointer_mut("/kibana/alert/suppression")
            .and_then(Value::as_object_mut)
        {
            sup.insert("start".into(), json!(crate::date::format_ns(w.start_ns)));
            sup.insert("end".into(), json!(crate::date::format_ns(w.last_ns)));
            sup.insert("docs_count".into(), json!(w.count));
        }
        self.count_alerts += 1;
        out.push(alert);
    }
}
