//! Finding and compiling the module under test, once per test binary: the
//! compiled code is immutable and shared; every test still gets its own
//! Store, instance and host state.

use std::path::PathBuf;
use std::sync::OnceLock;
use wasmtime::{Engine, Module};

const BUILT_MODULE: &str = "target/wasm32-wasip1/release/vrata_mirror.wasm";

/// The module's path: `VRATA_WASM` if set, else the `make build` output.
/// A `VRATA_WASM` that names a missing file is an error, not a reason to
/// quietly test some other module.
pub fn path() -> PathBuf {
    let fallback = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(BUILT_MODULE);
    let path = match std::env::var_os("VRATA_WASM") {
        Some(set) if !set.is_empty() => PathBuf::from(set),
        _ => fallback.clone(),
    };
    if !path.is_file() {
        panic!(
            "the wasm module under test is missing: {} does not exist.\n\
             Build it with `make build` in {} (it writes {}), or set VRATA_WASM to a built vrata_mirror.wasm.",
            path.display(),
            env!("CARGO_MANIFEST_DIR"),
            fallback.display(),
        );
    }
    path
}

const BUILT_COMPARE_MODULE: &str = "target/wasm32-wasip1/release/vrata_mirror_compare.wasm";

/// The comparison module's path: `VRATA_WASM_COMPARE` if set, else the
/// `make build` output.
pub fn compare_path() -> PathBuf {
    let fallback = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(BUILT_COMPARE_MODULE);
    let path = match std::env::var_os("VRATA_WASM_COMPARE") {
        Some(set) if !set.is_empty() => PathBuf::from(set),
        _ => fallback,
    };
    if !path.is_file() {
        panic!(
            "the comparison module is missing: {} does not exist. Build it with `make build`.",
            path.display()
        );
    }
    path
}

/// The comparison module, compiled on first use with the same engine.
pub fn compiled_compare() -> &'static Module {
    static COMPILED: OnceLock<Module> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let (engine, _) = compiled();
        let path = compare_path();
        Module::from_file(engine, &path)
            .unwrap_or_else(|err| panic!("{} is not a loadable wasm module: {err:?}", path.display()))
    })
}

/// The engine and compiled module, compiled on first use.
pub fn compiled() -> &'static (Engine, Module) {
    static COMPILED: OnceLock<(Engine, Module)> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let path = path();
        // Fuel counts the wasm instructions the module runs: the cost tests
        // (cost.rs) hold each request shape to a budget of them.
        let mut config = wasmtime::Config::new();
        config.consume_fuel(true);
        let engine = Engine::new(&config).unwrap_or_else(|err| panic!("harness: no wasmtime engine: {err:?}"));
        let module = Module::from_file(&engine, &path)
            .unwrap_or_else(|err| panic!("{} is not a loadable wasm module: {err:?}", path.display()));
        (engine, module)
    })
}

/// The module's imports as sorted `module::name` strings.
pub fn imports() -> Vec<String> {
    let (_, module) = compiled();
    let mut names: Vec<String> = module
        .imports()
        .map(|i| format!("{}::{}", i.module(), i.name()))
        .collect();
    names.sort();
    names
}

/// The module's exports as sorted names.
pub fn exports() -> Vec<String> {
    let (_, module) = compiled();
    let mut names: Vec<String> = module.exports().map(|e| e.name().to_owned()).collect();
    names.sort();
    names
}
