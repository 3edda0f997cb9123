//! The module's contract with its host: exactly which imports it needs and
//! which callbacks it exports. A new host dependency must be a deliberate,
//! visible change to this list (and to tests/harness/imports/).

use crate::wasmhost::{imports, wasm, HostState};
use wasmtime::{Linker, Module, Store};

/// Every import of vrata_mirror.wasm as `make build` makes it (opt-level
/// "z": the optimiser drops some of the SDK's unused default methods, and
/// their imports with them), sorted. Those in `imports::NEVER_CALLED` and the
/// `proxy_grpc_*` ones are referenced only by the SDK's default trait
/// methods; the harness makes them trap.
const EXPECTED_IMPORTS: &[&str] = &[
    "env::proxy_call_foreign_function",
    "env::proxy_define_metric",
    "env::proxy_dequeue_shared_queue",
    "env::proxy_done",
    "env::proxy_enqueue_shared_queue",
    "env::proxy_get_buffer_bytes",
    "env::proxy_get_current_time_nanoseconds",
    "env::proxy_get_header_map_pairs",
    "env::proxy_get_header_map_value",
    "env::proxy_get_log_level",
    "env::proxy_get_property",
    // The rate cap's token bucket (`maxRequestsPerSecond`), through the
    // filter's own typed calls; before it, only the SDK referenced these.
    "env::proxy_get_shared_data",
    "env::proxy_get_status",
    "env::proxy_grpc_call",
    "env::proxy_grpc_cancel",
    "env::proxy_grpc_close",
    "env::proxy_grpc_send",
    "env::proxy_grpc_stream",
    "env::proxy_http_call",
    "env::proxy_increment_metric",
    "env::proxy_log",
    "env::proxy_record_metric",
    "env::proxy_register_shared_queue",
    "env::proxy_resolve_shared_queue",
    "env::proxy_set_effective_context",
    "env::proxy_set_property",
    "env::proxy_set_shared_data", // the rate cap, as above
    "env::proxy_set_tick_period_milliseconds",
    "wasi_snapshot_preview1::environ_get",
    "wasi_snapshot_preview1::environ_sizes_get",
    "wasi_snapshot_preview1::fd_write",
    "wasi_snapshot_preview1::proc_exit",
    "wasi_snapshot_preview1::random_get",
];

/// Callbacks the harness (and Envoy) drive.
const REQUIRED_EXPORTS: &[&str] = &[
    "_initialize",
    "memory",
    "proxy_abi_version_0_2_1",
    "proxy_on_memory_allocate",
    "proxy_on_context_create",
    "proxy_on_vm_start",
    "proxy_on_configure",
    "proxy_on_request_headers",
    "proxy_on_request_body",
    "proxy_on_request_trailers",
    "proxy_on_delete",
    "proxy_on_http_call_response",
    "proxy_on_queue_ready",
    "proxy_on_tick",
];

#[test]
fn the_modules_imports_are_exactly_the_known_list() {
    assert_eq!(
        wasm::imports(),
        EXPECTED_IMPORTS,
        "the module's host dependencies changed: update EXPECTED_IMPORTS deliberately, and implement any new \
         import in tests/harness/imports/"
    );
}

#[test]
fn the_module_exports_every_callback_the_host_drives() {
    let exports = wasm::exports();
    let missing: Vec<&&str> = REQUIRED_EXPORTS
        .iter()
        .filter(|e| !exports.iter().any(|x| x == **e))
        .collect();
    assert!(missing.is_empty(), "missing exports: {missing:?}");
}

/// `make build` removes these: the filter does nothing in them, and Envoy
/// calls every exported callback on every request.
const TRIMMED_EXPORTS: &[&str] = &[
    "proxy_on_response_headers",
    "proxy_on_response_body",
    "proxy_on_response_trailers",
    "proxy_on_log",
    "proxy_on_done",
];

#[test]
fn callbacks_the_filter_does_not_use_are_not_exported() {
    let exports = wasm::exports();
    let present: Vec<&&str> = TRIMMED_EXPORTS
        .iter()
        .filter(|e| exports.iter().any(|x| x == **e))
        .collect();
    assert!(
        present.is_empty(),
        "{present:?} still exported: build the module with `make build` (it trims them)"
    );
}

#[test]
fn every_import_is_implemented_or_known_to_be_unused() {
    // So that no import falls through to the generic "not implemented" trap.
    for import in wasm::imports() {
        let never_called = import
            .strip_prefix("env::")
            .is_some_and(|name| imports::NEVER_CALLED.contains(&name) || name.starts_with("proxy_grpc_"));
        assert!(
            imports::IMPLEMENTED.contains(&import.as_str()) || never_called,
            "{import} is neither implemented by the harness nor known to be unused"
        );
    }
    for name in imports::NEVER_CALLED {
        assert!(
            !imports::IMPLEMENTED.contains(&format!("env::{name}").as_str()),
            "{name} is both"
        );
    }
}

/// A minimal module importing one known-unused and one unknown function,
/// exporting a caller for each: the binary format written out by hand so
/// the test needs no wat compiler.
fn probe_module() -> Vec<u8> {
    fn section(id: u8, content: &[u8]) -> Vec<u8> {
        assert!(content.len() < 128, "one-byte LEB128 sizes only");
        let mut out = vec![id, content.len() as u8];
        out.extend_from_slice(content);
        out
    }
    fn name(text: &str) -> Vec<u8> {
        let mut out = vec![text.len() as u8];
        out.extend_from_slice(text.as_bytes());
        out
    }
    let mut imports = vec![2u8];
    for import in ["proxy_done", "proxy_brand_new_thing"] {
        imports.extend(name("env"));
        imports.extend(name(import));
        imports.extend([0x00, 0x00]); // a function of type 0
    }
    let mut exports = vec![2u8];
    for (export, index) in [("call_done", 2u8), ("call_new", 3u8)] {
        exports.extend(name(export));
        exports.extend([0x00, index]);
    }
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    wasm.extend(section(1, &[1, 0x60, 0, 1, 0x7f])); // type 0: () -> i32
    wasm.extend(section(2, &imports));
    wasm.extend(section(3, &[2, 0, 0])); // two functions of type 0
    wasm.extend(section(7, &exports));
    // Bodies: no locals, `call 0` / `call 1`, end.
    wasm.extend(section(10, &[2, 4, 0, 0x10, 0, 0x0b, 4, 0, 0x10, 1, 0x0b]));
    wasm
}

#[test]
fn imports_the_harness_does_not_implement_trap_naming_themselves() {
    let (engine, _) = wasm::compiled();
    let module = Module::new(engine, probe_module()).unwrap();
    let mut store = Store::new(engine, HostState::new(Vec::new(), 2, 1));
    // The engine counts fuel (cost.rs): a store starts with none.
    store.set_fuel(u64::MAX).unwrap();
    let mut linker = Linker::new(engine);
    imports::link(&mut linker, &mut store, &module).unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();

    let call = |store: &mut Store<HostState>, export: &str| -> String {
        let func = instance.get_typed_func::<(), i32>(&mut *store, export).unwrap();
        let err = func.call(&mut *store, ()).expect_err("the stub must trap");
        format!("{err:?}")
    };
    let done = call(&mut store, "call_done");
    assert!(
        done.contains("env::proxy_done") && done.contains("must never call it"),
        "{done}"
    );
    let new = call(&mut store, "call_new");
    assert!(
        new.contains("env::proxy_brand_new_thing") && new.contains("new host dependency"),
        "{new}"
    );
}
