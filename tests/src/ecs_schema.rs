//! Checks documents against ECS's own field list (ECS 9.4's
//! `ecs_flat.yml`, vendored under `tests/fixtures/ecs/` with its licence):
//! every leaf must be an ECS field of a matching type, or sit in one of the
//! documented extensions (`docs/events.md`):
//!
//! - any `*.Ext.*` subtree, as Elastic Endpoint extends ECS;
//! - `kibana.*`, Elastic's alert schema;
//! - `kubernetes.audit.*`, the fields of Elastic's Kubernetes audit
//!   integration, which the audit source writes as that integration does.

use std::{collections::HashMap, sync::OnceLock};

use serde_json::Value;

const ECS_FLAT: &str = include_str!("../fixtures/ecs/ecs_flat.yml");

/// Where a document may leave ECS.
const EXTENSION_ROOTS: &[&str] = &["kibana", "kubernetes.audit"];

struct Schema {
    /// Flat field name → ECS type.
    fields: HashMap<String, String>,
    /// Every proper prefix of a field name: the objects ECS defines.
    objects: std::collections::HashSet<String>,
}

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        // The file is one top-level key per field, each with an indented
        // `type:`: reading those two kinds of line is all that is needed.
        let mut fields = HashMap::new();
        let mut current: Option<String> = None;
        for line in ECS_FLAT.lines() {
            if !line.starts_with(' ') && line.ends_with(':') {
                let name = line.trim_end_matches(':').trim_matches('\'');
                current = Some(name.to_string());
            } else if let Some(ty) = line.strip_prefix("  type: ")
                && let Some(name) = current.take()
            {
                fields.insert(name, ty.trim().to_string());
            }
        }
        let mut objects = std::collections::HashSet::new();
        for name in fields.keys() {
            let mut at = 0;
            while let Some(i) = name[at..].find('.') {
                objects.insert(name[..at + i].to_string());
                at += i + 1;
            }
        }
        Schema { fields, objects }
    })
}

fn type_fits(ty: &str, v: &Value) -> bool {
    match v {
        Value::Array(items) => items.iter().all(|i| !i.is_array() && type_fits(ty, i)),
        Value::Null => true,
        Value::String(_) => matches!(
            ty,
            "keyword"
                | "wildcard"
                | "constant_keyword"
                | "match_only_text"
                | "text"
                | "date"
                | "ip"
                | "version"
        ),
        Value::Number(n) => match ty {
            "long" | "integer" | "short" | "byte" | "unsigned_long" => n.is_i64() || n.is_u64(),
            "float" | "double" | "scaled_float" | "half_float" => true,
            // Epoch milliseconds are a valid date.
            "date" => true,
            _ => false,
        },
        Value::Bool(_) => ty == "boolean",
        Value::Object(_) => matches!(ty, "object" | "flattened" | "nested" | "geo_point"),
    }
}

fn is_extension(path: &str) -> bool {
    path.split('.').any(|seg| seg == "Ext")
        || EXTENSION_ROOTS
            .iter()
            .any(|r| path == *r || path.starts_with(&format!("{r}.")))
}

fn walk(path: &str, v: &Value, out: &mut Vec<String>) {
    let s = schema();
    if !path.is_empty() && is_extension(path) {
        return;
    }
    if let Some(ty) = s.fields.get(path) {
        if !type_fits(ty, v) {
            out.push(format!("{path}: {v} is not an ECS {ty}"));
        }
        return;
    }
    match v {
        Value::Object(map) => {
            let holds_extension = EXTENSION_ROOTS
                .iter()
                .any(|r| r.starts_with(&format!("{path}.")));
            if !path.is_empty() && !s.objects.contains(path) && !holds_extension {
                out.push(format!("{path}: not an ECS object"));
                return;
            }
            for (k, child) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(&p, child, out);
            }
        }
        Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
            for i in items {
                walk(path, i, out);
            }
        }
        _ => out.push(format!("{path}: not an ECS field")),
    }
}

/// Every way `doc` leaves ECS 9.4 and the documented extensions.
pub fn violations(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk("", doc, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ecs_fields_of_the_right_type_pass() {
        let doc = json!({
            "@timestamp": "2026-12-02T00:00:00Z",
            "event": {"kind": "event", "category": ["process"], "severity": 47},
            "process": {"pid": 3, "args": ["a", "b"], "interactive": true},
            "tags": ["x"],
        });
        assert_eq!(violations(&doc), Vec::<String>::new());
    }

    #[test]
    fn an_unknown_field_inside_an_ecs_object_is_reported() {
        let doc = json!({"process": {"args_truncated": false}});
        assert_eq!(
            violations(&doc),
            ["process.args_truncated: not an ECS field"]
        );
    }

    #[test]
    fn an_unknown_top_level_object_is_reported() {
        let doc = json!({"cgroup": {"id": 1}});
        assert_eq!(violations(&doc), ["cgroup: not an ECS object"]);
    }

    #[test]
    fn only_the_named_part_of_an_extension_root_is_open() {
        let doc = json!({"kubernetes": {"pod": {"x": 1}}});
        assert_eq!(violations(&doc), ["kubernetes.pod: not an ECS object"]);
    }

    #[test]
    fn a_wrong_type_is_reported() {
        let doc = json!({"process": {"pid": "3"}});
        assert_eq!(violations(&doc), [r#"process.pid: "3" is not an ECS long"#]);
    }

    #[test]
    fn ext_subtrees_and_the_alert_schema_are_extensions() {
        let doc = json!({
            "process": {"Ext": {"anything": 1}},
            "kibana": {"alert": {"rule": {"name": "r"}}},
            "kubernetes": {"audit": {"verb": "get"}},
        });
        assert_eq!(violations(&doc), Vec::<String>::new());
    }
}
