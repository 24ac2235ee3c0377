//! The codemap's architecture invariants (`docs/architecture.md`, "Architecture invariants"), checked
//! against the workspace's own manifests through `cargo metadata`, so a new dependency that
//! breaks a boundary fails the test suite instead of waiting for a reviewer to notice.
//!
//! Each rule is written as an absence, as the codemap states it: "only `store` knows
//! sqlx", "the domain knows nothing of I/O", "no product crate depends on a service crate".
//! Only normal dependencies count: a test may use anything (the harness crates `testkit`
//! and `e2e` start servers and fake providers).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// The workspace's packages and, for each, its normal (non-dev, non-build) dependencies.
fn normal_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    metadata().0
}

/// The packages that build a binary.
fn packages_with_binaries() -> BTreeSet<String> {
    metadata().1
}

/// `cargo metadata` of the workspace: each package's normal dependencies, and which
/// packages have a binary target.
fn metadata() -> (BTreeMap<String, BTreeSet<String>>, BTreeSet<String>) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let mut packages = BTreeMap::new();
    let mut with_binaries = BTreeSet::new();
    for p in meta["packages"].as_array().expect("packages") {
        let name = p["name"].as_str().expect("name").to_owned();
        let has_binary = p["targets"].as_array().expect("targets").iter().any(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "bin"))
        });
        if has_binary {
            with_binaries.insert(name.clone());
        }
        let deps = p["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].is_null())
            .map(|d| d["name"].as_str().expect("dependency name").to_owned())
            .collect();
        packages.insert(name, deps);
    }
    (packages, with_binaries)
}

/// The packages whose normal dependencies include `dependency`.
fn users_of(all: &BTreeMap<String, BTreeSet<String>>, dependency: &str) -> BTreeSet<String> {
    all.iter()
        .filter(|(_, deps)| deps.contains(dependency))
        .map(|(name, _)| name.clone())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// The harness crates: dev-only, allowed to know everything.
const HARNESS: [&str; 2] = ["testkit", "e2e"];

/// Users of `dependency` outside the harness crates.
fn product_users_of(
    all: &BTreeMap<String, BTreeSet<String>>,
    dependency: &str,
) -> BTreeSet<String> {
    users_of(all, dependency)
        .into_iter()
        .filter(|p| !HARNESS.contains(&p.as_str()))
        .collect()
}

#[test]
fn each_foreign_protocol_is_known_by_one_crate() {
    let all = normal_dependencies();
    // Only `store` speaks SQL.
    assert_eq!(product_users_of(&all, "sqlx"), set(&["store"]));
    // Only `bus` speaks NATS.
    assert_eq!(product_users_of(&all, "async-nats"), set(&["bus"]));
    // Only the ingress serves HTTP APIs; `service` serves the other roles' ops endpoints
    // (`service::ops`: `/metrics`, `/healthz`, `/readyz`) with axum, and nothing below it.
    assert_eq!(
        product_users_of(&all, "axum"),
        set(&["ingress", "service"]),
        "axum"
    );
    for http_server in ["hyper", "hyper-util", "tower-http"] {
        assert_eq!(
            product_users_of(&all, http_server),
            set(&["ingress"]),
            "{http_server}"
        );
    }
    // Only the operator's CLI parses command lines.
    assert_eq!(product_users_of(&all, "clap"), set(&["stockctl"]));
}

#[test]
fn only_binaries_use_anyhow_and_set_up_logging() {
    let all = normal_dependencies();
    let binaries = packages_with_binaries();
    let users = product_users_of(&all, "anyhow");
    let libraries: Vec<_> = users.difference(&binaries).collect();
    assert!(
        libraries.is_empty(),
        "libraries using anyhow: {libraries:?}"
    );
    // Logging is set up in one place, the start-up every binary shares.
    assert_eq!(
        product_users_of(&all, "tracing-subscriber"),
        set(&["service"])
    );
}

#[test]
fn the_domain_and_the_wire_formats_do_no_io() {
    let all = normal_dependencies();
    let io = [
        "tokio",
        "sqlx",
        "async-nats",
        "reqwest",
        "axum",
        "hyper",
        "futures",
    ];
    for pure in [
        "domain",
        "contract",
        "providers",
        "config",
        "reconcile",
        "whatif",
    ] {
        let deps = &all[pure];
        for crate_name in io {
            assert!(
                !deps.contains(crate_name),
                "`{pure}` depends on `{crate_name}`"
            );
        }
    }
    // The domain knows nothing but its values: besides serde, ISO 4217's table
    // (`iso_currency`, data only) and, with the `openapi` feature, the schema derive.
    let allowed = set(&[
        "uuid",
        "rust_decimal",
        "thiserror",
        "serde",
        "iso_currency",
        "utoipa",
    ]);
    let extra: Vec<_> = all["domain"].difference(&allowed).collect();
    assert!(extra.is_empty(), "domain depends on {extra:?}");
}

#[test]
fn no_product_crate_depends_on_a_service_or_the_harness() {
    let all = normal_dependencies();
    // A service crate is a role's code; only the CLI reuses the ledger's replay path.
    let allowed_users: [(&str, &[&str]); 4] = [
        ("ingress", &[]),
        ("exceptions", &[]),
        ("ledger", &["stockctl"]),
        ("stockctl", &[]),
    ];
    for (service, users) in allowed_users {
        assert_eq!(
            product_users_of(&all, service),
            set(users),
            "users of `{service}`"
        );
    }
    for harness in HARNESS {
        assert_eq!(
            product_users_of(&all, harness),
            set(&[]),
            "users of `{harness}`"
        );
    }
}

#[test]
fn the_ingress_is_http_and_verification_only() {
    let all = normal_dependencies();
    let internal: BTreeSet<String> = all["ingress"]
        .iter()
        .filter(|d| all.contains_key(d.as_str()))
        .cloned()
        .collect();
    let allowed = set(&[
        "domain",
        "contract",
        "providers",
        "bus",
        "store",
        "config",
        "operator",
        "verifier",
        "service",
    ]);
    let extra: Vec<_> = internal.difference(&allowed).collect();
    assert!(extra.is_empty(), "the ingress depends on {extra:?}");
}
