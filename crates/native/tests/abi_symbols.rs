//! Every callback `src/abi.rs` declares is exported by the real Envoy (1.40.0 by default, or
//! $VRATA_ENVOY), and every hook the built module exports is one Envoy looks up. A missing
//! callback would fail at load (`undefined symbol`: a Rust cdylib binds at once); a hook
//! Envoy does not know would be dead code. Names only: signatures and enum ordinals are
//! checked by what the end-to-end tests see Envoy do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use vrata_mirror_testkit::envoy::{envoy_binary, native_module};

const ABI_RS: &str = include_str!("../src/abi.rs");

/// The `pub fn envoy_dynamic_module_callback_*` names declared in abi.rs.
fn declared_callbacks() -> BTreeSet<String> {
    ABI_RS
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("pub fn "))
        .filter_map(|rest| rest.split('(').next())
        .filter(|name| name.starts_with("envoy_dynamic_module_callback_"))
        .map(str::to_owned)
        .collect()
}

/// `nm -D --defined-only` of a binary: its exported symbols.
fn exported(binary: &Path) -> BTreeSet<String> {
    let output = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(binary)
        .output()
        .unwrap_or_else(|e| panic!("cannot run nm (binutils) on {}: {e}", binary.display()));
    assert!(
        output.status.success(),
        "nm -D --defined-only {} failed:\n{}",
        binary.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().nth(2))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_declared_callback_is_exported_by_envoy() {
    let declared = declared_callbacks();
    // The subset this host needs: streams, request reads, route, worker, log, metrics, schedulers.
    assert!(
        declared.len() >= 25,
        "abi.rs declares only {} callbacks: {declared:?}",
        declared.len()
    );
    let envoy = envoy_binary();
    let exports = exported(&envoy);
    let envoy_callbacks = exports
        .iter()
        .filter(|s| s.starts_with("envoy_dynamic_module_callback_"))
        .count();
    assert!(
        envoy_callbacks > 100,
        "{} exports only {envoy_callbacks} dynamic-module callbacks: is it Envoy 1.40?",
        envoy.display()
    );
    let missing: Vec<&String> = declared.iter().filter(|name| !exports.contains(*name)).collect();
    assert!(
        missing.is_empty(),
        "callbacks declared in crates/native/src/abi.rs that {} does not export (the module would fail to \
         load with `undefined symbol`): {missing:?}",
        envoy.display()
    );
}

#[test]
fn abi_rs_names_the_abi_version_it_was_written_from() {
    let header: String = ABI_RS.lines().take_while(|l| l.starts_with("//!")).collect();
    assert!(header.contains("abi/abi.h"), "abi.rs's header names no abi.h");
    assert!(header.contains("1.40.0"), "abi.rs's header names no Envoy version");
    assert!(ABI_RS.contains("c\"v0.2.0\""), "abi.rs's ABI_VERSION is not v0.2.0");
}

#[test]
fn every_hook_the_module_exports_is_one_envoy_looks_up() {
    let module = exported(&native_module());
    let hooks: Vec<&String> = module
        .iter()
        .filter(|s| s.starts_with("envoy_dynamic_module_on_"))
        .collect();
    assert!(
        hooks.iter().any(|h| *h == "envoy_dynamic_module_on_program_init"),
        "the module exports no envoy_dynamic_module_on_program_init: {hooks:?}"
    );
    // Envoy names the hooks it resolves as strings in its binary.
    let envoy = envoy_binary();
    let output = Command::new("grep")
        .args(["-a", "-o", "envoy_dynamic_module_on_[a-z_]*"])
        .arg(&envoy)
        .output()
        .expect("grep the envoy binary");
    let looked_up: BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(
        looked_up.len() > 20,
        "{} names only {} hooks",
        envoy.display(),
        looked_up.len()
    );
    let unknown: Vec<&&String> = hooks.iter().filter(|hook| !looked_up.contains(**hook)).collect();
    assert!(unknown.is_empty(), "hooks Envoy never looks up: {unknown:?}");
    // Nothing else leaks out of the .so but the hooks (Rust keeps its own symbols local).
    let other: Vec<&String> = module
        .iter()
        .filter(|s| s.starts_with("envoy_") && !s.starts_with("envoy_dynamic_module_on_"))
        .collect();
    assert!(
        other.is_empty(),
        "the module exports Envoy-named symbols that are not hooks: {other:?}"
    );
}
