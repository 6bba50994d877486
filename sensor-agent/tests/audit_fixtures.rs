//! The shipped audit rules against real audit events from Falco's
//! regression suite (tests/fixtures/k8s-audit, Apache-2.0): each rule fires
//! where the sample shows the behaviour, and nowhere else.

use std::{collections::BTreeSet, path::Path};

use sensor_rules::engine::EngineConfig;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Names of the rules that fire on one fixture file.
fn fired(fixture: &str) -> BTreeSet<String> {
    let mut out = Vec::new();
    sensor_agent::audit::replay(
        &root().join("rules"),
        &root().join("tests/fixtures/k8s-audit").join(fixture),
        EngineConfig::unsuppressed(),
        None,
        &mut out,
    )
    .unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["rule"]["name"].as_str().unwrap().to_string()
        })
        .collect()
}

const PRIVILEGED: &str = "Kubernetes Privileged or Host-Mounting Pod Created";
const EXEC: &str = "Kubernetes Pod Exec or Attach by a User";
const ANONYMOUS: &str = "Kubernetes Anonymous Request Allowed";

#[test]
fn privileged_hostnetwork_and_hostpath_pods_fire_the_privileged_pod_rule() {
    for f in [
        "create_nginx_pod_privileged.json",
        "create_nginx_pod_privileged_2nd_container.json",
        "create_nginx_pod_no_secctx_1st_container_privileged_2nd_container.json",
        "create_nginx_pod_hostnetwork.json",
        "create_nginx_pod_sensitive_mount.json",
        "create_nginx_pod_sensitive_mount_2nd_container.json",
    ] {
        assert!(fired(f).contains(PRIVILEGED), "{f}: {:?}", fired(f));
    }
}

#[test]
fn ordinary_pods_fire_nothing() {
    for f in [
        "create_nginx_pod_unprivileged.json",
        "create_nginx_pod_nohostnetwork.json",
        "create_nginx_pod_unsensitive_mount.json",
        "create_deployment.json",
    ] {
        assert!(fired(f).is_empty(), "{f}: {:?}", fired(f));
    }
}

#[test]
fn exec_and_attach_by_a_user_fire_the_exec_rule() {
    assert!(fired("exec_pod.json").contains(EXEC));
    assert!(fired("attach_pod.json").contains(EXEC));
}

#[test]
fn an_allowed_anonymous_request_fires_and_a_named_user_does_not() {
    assert!(fired("anonymous_creates_namespace_foo.json").contains(ANONYMOUS));
    assert!(fired("some-user_creates_namespace_foo.json").is_empty());
    assert!(fired("minikube_creates_namespace_foo.json").is_empty());
}
