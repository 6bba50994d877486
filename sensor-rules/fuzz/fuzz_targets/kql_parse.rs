//! Arbitrary KQL text: parse, compile and evaluate against a mapped audit
//! event. Errors are fine; panics, hangs and runaway memory are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sensor_rules::kql::compile_kql;
use std::sync::OnceLock;

fn event() -> &'static serde_json::Value {
    static E: OnceLock<serde_json::Value> = OnceLock::new();
    E.get_or_init(|| {
        serde_json::json!({
            "@timestamp": "2026-12-02T10:00:00.000Z",
            "event": {"action": "create", "dataset": "kubernetes.audit_logs", "outcome": "success"},
            "user": {"name": "system:serviceaccount:default:web"}, "user_agent": {"original": "curl/8.5.0"},
            "source": {"ip": ["10.0.0.1"]}, "message": "Quick brown fox",
            "kubernetes": {"audit": {"annotations": {"authorization_k8s_io/decision": "allow"},
                "objectRef": {"resource": "pods"}, "responseStatus": {"code": 201},
                "requestObject": {"spec": {"hostPID": true, "containers": [{"image": "busybox:1.36", "securityContext": {"privileged": true}}, {"image": "nginx"}]}},
                "user": {"extra": {"authentication.kubernetes.io/pod-name": ["web-1"]}}}}
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(c) = compile_kql(&text) {
        let _ = c.matches(event());
    }
});
