//! The end-to-end tests on the host kernel, shared by `test` and `vm-test
//! --host`.

use anyhow::Result;

use crate::{
    build,
    util::{self, Counts},
};

/// The end-to-end tests on the host kernel, all tiers (containers included),
/// against the release agent. Returns whether they passed and the counts.
pub fn e2e_host() -> Result<(bool, Counts)> {
    let agent = build::agent_path(true);
    let mut cmd = util::cargo();
    cmd.args([
        "test",
        "--release",
        "--package",
        "sensor-tests",
        // Run every test binary even when an earlier one fails.
        "--no-fail-fast",
        "--",
        "--test-threads=1",
    ])
    .env("SENSOR_AGENT_BIN", &agent)
    .env("SENSOR_RULES_DIR", util::root().join("rules"))
    .env("SENSOR_TEST_TIER", "host");
    let (status, counts) = util::run_counting(&mut cmd)?;
    Ok((status.success(), counts))
}
