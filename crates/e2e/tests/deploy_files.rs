//! The deployment files (`deploy/`: compose, Kubernetes, HAProxy, the NATS cluster config,
//! the Prometheus rules and their unit tests, the Grafana dashboard) are checked by
//! `scripts/check-deploy`, offline; this runs it as part of the test suite, so a metric,
//! variable or runbook section renamed in one place and not the others fails here
//! (`docs/deploy.md`).

use std::path::Path;
use std::process::Command;

#[test]
fn deployment_files_check_out() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check-deploy");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "scripts/check-deploy failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
