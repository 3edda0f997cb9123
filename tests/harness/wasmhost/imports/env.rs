//! The proxy-wasm host functions (`env` module) the filter calls, each doing
//! what Envoy 1.40 does (see shared/notes/envoy-1.40-facts.md), recording
//! what the module asked for, and honouring the test's fault knobs.

use crate::wasmhost::abi::{buffer, map, MetricKind, Status};
use crate::wasmhost::guest;
use crate::wasmhost::state::{
    lock, DispatchedCall, Event, HostState, LogLine, MetricDefinition, Queue, RawPair, RefusedCall,
};
use crate::wasmhost::wire::{decode_pairs, encode_pairs};
use wasmtime::{Caller, Linker, Result};

type Ctx<'a> = Caller<'a, HostState>;

fn status(s: Status) -> Result<i32> {
    Ok(s.code())
}

pub fn define(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap("env", "proxy_log", proxy_log)?;
    linker.func_wrap("env", "proxy_get_log_level", proxy_get_log_level)?;
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        proxy_get_current_time_nanoseconds,
    )?;
    linker.func_wrap("env", "proxy_get_buffer_bytes", proxy_get_buffer_bytes)?;
    linker.func_wrap("env", "proxy_get_header_map_pairs", proxy_get_header_map_pairs)?;
    linker.func_wrap("env", "proxy_get_header_map_value", proxy_get_header_map_value)?;
    linker.func_wrap("env", "proxy_get_property", proxy_get_property)?;
    linker.func_wrap("env", "proxy_get_shared_data", proxy_get_shared_data)?;
    linker.func_wrap("env", "proxy_set_shared_data", proxy_set_shared_data)?;
    linker.func_wrap("env", "proxy_register_shared_queue", proxy_register_shared_queue)?;
    linker.func_wrap("env", "proxy_enqueue_shared_queue", proxy_enqueue_shared_queue)?;
    linker.func_wrap("env", "proxy_dequeue_shared_queue", proxy_dequeue_shared_queue)?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        proxy_set_tick_period_milliseconds,
    )?;
    linker.func_wrap("env", "proxy_define_metric", proxy_define_metric)?;
    linker.func_wrap("env", "proxy_increment_metric", proxy_increment_metric)?;
    linker.func_wrap("env", "proxy_record_metric", proxy_record_metric)?;
    linker.func_wrap("env", "proxy_http_call", proxy_http_call)?;
    linker.func_wrap("env", "proxy_set_effective_context", proxy_set_effective_context)?;
    Ok(())
}

fn proxy_log(mut caller: Ctx<'_>, level: i32, ptr: i32, len: i32) -> Result<i32> {
    caller.data_mut().count_import("proxy_log");
    let message = guest::read_string(&mut caller, ptr, len)?;
    caller.data_mut().records.logs.push(LogLine {
        level: level as u32,
        message,
    });
    status(Status::Ok)
}

fn proxy_get_log_level(mut caller: Ctx<'_>, level_out: i32) -> Result<i32> {
    caller.data_mut().count_import("proxy_get_log_level");
    let level = caller.data().log_level;
    guest::write_u32(&mut caller, level_out, level)?;
    status(Status::Ok)
}

fn proxy_get_current_time_nanoseconds(mut caller: Ctx<'_>, time_out: i32) -> Result<i32> {
    caller.data_mut().count_import("proxy_get_current_time_nanoseconds");
    if let Some(fault) = caller.data().faults.clock {
        return status(fault);
    }
    let now = caller.data().clock_ns;
    guest::write_u64(&mut caller, time_out, now)?;
    status(Status::Ok)
}

fn proxy_get_buffer_bytes(
    mut caller: Ctx<'_>,
    buffer_type: i32,
    start: i32,
    max_size: i32,
    data_out: i32,
    size_out: i32,
) -> Result<i32> {
    caller.data_mut().count_import("proxy_get_buffer_bytes");
    let state = caller.data();
    let whole: Vec<u8> = match buffer_type {
        buffer::REQUEST_BODY => {
            if let Some(fault) = state.faults.request_body {
                return status(fault);
            }
            match state.active_stream().and_then(|s| s.body_chunk.clone()) {
                Some(chunk) => chunk,
                None => return status(Status::NotFound),
            }
        }
        buffer::RESPONSE_BODY => match state.active_stream().and_then(|s| s.response_body_chunk.clone()) {
            Some(chunk) => chunk,
            None => return status(Status::NotFound),
        },
        buffer::HTTP_CALL_RESPONSE_BODY => match &state.call_response {
            Some(response) => response.body.clone(),
            None => return status(Status::NotFound),
        },
        buffer::VM_CONFIGURATION => Vec::new(),
        buffer::PLUGIN_CONFIGURATION => state.plugin_config.clone(),
        _ => return status(Status::BadArgument),
    };
    let (start, max_size) = (start as u32 as usize, max_size as u32 as usize);
    if start > whole.len() {
        return status(Status::BadArgument);
    }
    let end = start.saturating_add(max_size).min(whole.len());
    // Like proxy-wasm-cpp-host: nothing to copy means Ok with the
    // out-parameters left untouched.
    if end > start {
        guest::return_bytes(&mut caller, &whole[start..end], data_out, size_out)?;
    }
    status(Status::Ok)
}

/// The header map of `map_type` visible to the running callback, or the
/// status Envoy answers when it is not available there.
fn header_map(state: &HostState, map_type: i32) -> std::result::Result<Vec<RawPair>, Status> {
    let as_bytes = |pairs: &[(String, String)]| -> Vec<RawPair> {
        pairs
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    };
    match map_type {
        map::REQUEST_HEADERS => state
            .active_stream()
            .map(|s| s.headers.clone())
            .ok_or(Status::BadArgument),
        map::REQUEST_TRAILERS => state
            .active_stream()
            .and_then(|s| s.trailers.clone())
            .ok_or(Status::BadArgument),
        map::RESPONSE_HEADERS => state
            .active_stream()
            .and_then(|s| s.response_headers.clone())
            .ok_or(Status::BadArgument),
        map::RESPONSE_TRAILERS => state
            .active_stream()
            .and_then(|s| s.response_trailers.clone())
            .ok_or(Status::BadArgument),
        map::HTTP_CALL_RESPONSE_HEADERS => state
            .call_response
            .as_ref()
            .map(|r| as_bytes(&r.headers))
            .ok_or(Status::BadArgument),
        map::HTTP_CALL_RESPONSE_TRAILERS => state
            .call_response
            .as_ref()
            .map(|r| as_bytes(&r.trailers))
            .ok_or(Status::BadArgument),
        _ => Err(Status::BadArgument),
    }
}

fn proxy_get_header_map_pairs(mut caller: Ctx<'_>, map_type: i32, data_out: i32, size_out: i32) -> Result<i32> {
    caller.data_mut().count_import("proxy_get_header_map_pairs");
    if map_type == map::REQUEST_HEADERS {
        if let Some(fault) = caller.data().faults.request_headers {
            return status(fault);
        }
    }
    let pairs = match header_map(caller.data(), map_type) {
        Ok(pairs) => pairs,
        Err(refused) => return status(refused),
    };
    // An empty map goes back as a null pointer and size 0, as in cpp-host.
    let bytes = if pairs.is_empty() {
        Vec::new()
    } else {
        encode_pairs(&pairs)
    };
    guest::return_bytes(&mut caller, &bytes, data_out, size_out)?;
    status(Status::Ok)
}

fn proxy_get_header_map_value(
    mut caller: Ctx<'_>,
    map_type: i32,
    key_ptr: i32,
    key_len: i32,
    value_out: i32,
    size_out: i32,
) -> Result<i32> {
    caller.data_mut().count_import("proxy_get_header_map_value");
    let key = guest::read(&mut caller, key_ptr, key_len)?;
    let pairs = match header_map(caller.data(), map_type) {
        Ok(pairs) => pairs,
        Err(refused) => return status(refused),
    };
    // Envoy looks names up case-insensitively and answers the first value.
    match pairs.iter().find(|(name, _)| name.eq_ignore_ascii_case(&key)) {
        Some((_, value)) => {
            guest::return_bytes(&mut caller, value, value_out, size_out)?;
            status(Status::Ok)
        }
        None => status(Status::NotFound),
    }
}

fn proxy_get_property(mut caller: Ctx<'_>, path_ptr: i32, path_len: i32, value_out: i32, size_out: i32) -> Result<i32> {
    caller.data_mut().count_import("proxy_get_property");
    let path = guest::read(&mut caller, path_ptr, path_len)?;
    let state = caller.data();
    if let Some(fault) = state.faults.property {
        return status(fault);
    }
    let value = state
        .active_stream()
        .and_then(|s| s.properties.get(&path))
        .or_else(|| state.properties.get(&path))
        .cloned();
    match value {
        Some(value) => {
            guest::return_bytes(&mut caller, &value, value_out, size_out)?;
            status(Status::Ok)
        }
        None => status(Status::NotFound),
    }
}

fn proxy_get_shared_data(
    mut caller: Ctx<'_>,
    key_ptr: i32,
    key_len: i32,
    value_out: i32,
    size_out: i32,
    cas_out: i32,
) -> Result<i32> {
    caller.data_mut().count_import("proxy_get_shared_data");
    let key = guest::read(&mut caller, key_ptr, key_len)?;
    if let Some(fault) = caller.data().faults.get_shared_data {
        return status(fault);
    }
    let found = lock(&caller.data().shared_data).get(&key);
    let Some((value, cas)) = found else {
        return status(Status::NotFound);
    };
    guest::return_bytes(&mut caller, &value, value_out, size_out)?;
    guest::write_u32(&mut caller, cas_out, cas)?;
    status(Status::Ok)
}

fn proxy_set_shared_data(
    mut caller: Ctx<'_>,
    key_ptr: i32,
    key_len: i32,
    value_ptr: i32,
    value_len: i32,
    cas: i32,
) -> Result<i32> {
    caller.data_mut().count_import("proxy_set_shared_data");
    let key = guest::read(&mut caller, key_ptr, key_len)?;
    let value = guest::read(&mut caller, value_ptr, value_len)?;
    if let Some(fault) = caller.data().faults.set_shared_data {
        return status(fault);
    }
    let faults = &mut caller.data_mut().faults;
    if faults.set_shared_data_conflicts > 0 {
        faults.set_shared_data_conflicts -= 1;
        return status(Status::CasMismatch);
    }
    let written = lock(&caller.data().shared_data).set(&key, &value, cas as u32);
    status(written)
}

fn proxy_register_shared_queue(mut caller: Ctx<'_>, name_ptr: i32, name_len: i32, id_out: i32) -> Result<i32> {
    caller.data_mut().count_import("proxy_register_shared_queue");
    let name = guest::read_string(&mut caller, name_ptr, name_len)?;
    let state = caller.data_mut();
    if let Some(fault) = state.faults.register_queue {
        return status(fault);
    }
    let owner = state.active_context;
    // Registering a taken name takes it over (as in Envoy): same id, new owner.
    let id = match state.queues.iter().position(|q| q.name == name) {
        Some(index) => {
            if let Some(queue) = state.queues.get_mut(index) {
                queue.owner = owner;
            }
            index + 1
        }
        None => {
            state.queues.push(Queue {
                name,
                owner,
                items: Default::default(),
            });
            state.queues.len()
        }
    };
    guest::write_u32(&mut caller, id_out, id as u32)?;
    status(Status::Ok)
}

fn proxy_enqueue_shared_queue(mut caller: Ctx<'_>, queue_id: i32, data_ptr: i32, data_len: i32) -> Result<i32> {
    caller.data_mut().count_import("proxy_enqueue_shared_queue");
    let item = guest::read(&mut caller, data_ptr, data_len)?;
    let state = caller.data_mut();
    if let Some(fault) = state.faults.enqueue {
        return status(fault);
    }
    let Some(queue) = state.queues.get_mut((queue_id as u32 as usize).wrapping_sub(1)) else {
        return status(Status::NotFound);
    };
    queue.items.push_back(item);
    // Envoy posts one on_queue_ready per enqueue to the owner's event loop:
    // it runs after the current callback returns, never inside it.
    let owner = queue.owner;
    state.events.push_back(Event::QueueReady {
        owner,
        queue_id: queue_id as u32,
    });
    status(Status::Ok)
}

fn proxy_dequeue_shared_queue(mut caller: Ctx<'_>, queue_id: i32, data_out: i32, size_out: i32) -> Result<i32> {
    caller.data_mut().count_import("proxy_dequeue_shared_queue");
    let state = caller.data_mut();
    let Some(queue) = state.queues.get_mut((queue_id as u32 as usize).wrapping_sub(1)) else {
        return status(Status::NotFound);
    };
    let Some(item) = queue.items.pop_front() else {
        return status(Status::Empty);
    };
    guest::return_bytes(&mut caller, &item, data_out, size_out)?;
    status(Status::Ok)
}

fn proxy_set_tick_period_milliseconds(mut caller: Ctx<'_>, period: i32) -> Result<i32> {
    caller.data_mut().count_import("proxy_set_tick_period_milliseconds");
    let state = caller.data_mut();
    if let Some(fault) = state.faults.set_tick {
        return status(fault);
    }
    // From any context, Envoy arms the tick of the root context.
    state.tick_period_ms = period as u32;
    status(Status::Ok)
}

fn proxy_define_metric(mut caller: Ctx<'_>, kind: i32, name_ptr: i32, name_len: i32, id_out: i32) -> Result<i32> {
    caller.data_mut().count_import("proxy_define_metric");
    let name = guest::read_string(&mut caller, name_ptr, name_len)?;
    let state = caller.data_mut();
    let Some(kind) = MetricKind::from_code(kind) else {
        return status(Status::BadArgument);
    };
    if let Some((fault, filter)) = &state.faults.define_metric {
        if name.contains(filter.as_str()) {
            return status(*fault);
        }
    }
    // Envoy hands out a new id on every call, even for a name it knows.
    let id = state.next_metric_id;
    state.next_metric_id += 1;
    state.metric_kinds.insert(id, (kind, name.clone()));
    state.records.definitions.push(MetricDefinition { id, kind, name });
    guest::write_u32(&mut caller, id_out, id)?;
    status(Status::Ok)
}

fn proxy_increment_metric(mut caller: Ctx<'_>, id: i32, delta: i64) -> Result<i32> {
    caller.data_mut().count_import("proxy_increment_metric");
    let state = caller.data_mut();
    let Some((kind, name)) = state.metric_kinds.get(&(id as u32)).cloned() else {
        state
            .records
            .refused_metric_ops
            .push(("proxy_increment_metric", id as u32, delta));
        return status(Status::NotFound);
    };
    let refused = match kind {
        // Envoy's counters only go up: a delta of 0 or less is refused.
        MetricKind::Counter => delta <= 0,
        MetricKind::Gauge => false,
        MetricKind::Histogram => true,
    };
    if refused {
        state
            .records
            .refused_metric_ops
            .push(("proxy_increment_metric", id as u32, delta));
        return status(Status::BadArgument);
    }
    *state.records.values.entry(name).or_default() += delta;
    status(Status::Ok)
}

fn proxy_record_metric(mut caller: Ctx<'_>, id: i32, value: i64) -> Result<i32> {
    caller.data_mut().count_import("proxy_record_metric");
    let state = caller.data_mut();
    let Some((kind, name)) = state.metric_kinds.get(&(id as u32)).cloned() else {
        state
            .records
            .refused_metric_ops
            .push(("proxy_record_metric", id as u32, value));
        return status(Status::NotFound);
    };
    match kind {
        MetricKind::Counter => *state.records.values.entry(name).or_default() += value,
        MetricKind::Gauge => {
            state.records.values.insert(name, value);
        }
        MetricKind::Histogram => state.records.samples.entry(name).or_default().push(value as u64),
    }
    status(Status::Ok)
}

fn text_pairs(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(String, String)> {
    pairs
        .into_iter()
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(&n).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect()
}

#[allow(clippy::too_many_arguments)] // the ABI's shape
fn proxy_http_call(
    mut caller: Ctx<'_>,
    upstream_ptr: i32,
    upstream_len: i32,
    headers_ptr: i32,
    headers_len: i32,
    body_ptr: i32,
    body_len: i32,
    trailers_ptr: i32,
    trailers_len: i32,
    timeout_ms: i32,
    token_out: i32,
) -> Result<i32> {
    caller.data_mut().count_import("proxy_http_call");
    let cluster = guest::read_string(&mut caller, upstream_ptr, upstream_len)?;
    let raw_headers = guest::read(&mut caller, headers_ptr, headers_len)?;
    let body = guest::read(&mut caller, body_ptr, body_len)?;
    let raw_trailers = guest::read(&mut caller, trailers_ptr, trailers_len)?;
    let state = caller.data_mut();
    let (Some(headers), Some(trailers)) = (decode_pairs(&raw_headers), decode_pairs(&raw_trailers)) else {
        state.records.refused_calls.push(RefusedCall {
            cluster,
            headers: Vec::new(),
            status: Status::BadArgument,
        });
        return status(Status::BadArgument);
    };
    let header_bytes = headers.clone();
    let (headers, trailers) = (text_pairs(headers), text_pairs(trailers));
    let lacks = |name: &str| !headers.iter().any(|(n, _)| n == name);
    let verdict = if let Some(fault) = state.faults.dispatch {
        Some(fault)
    } else if !state.clusters.contains(&cluster) || lacks(":method") || lacks(":path") || lacks(":authority") {
        // Envoy refuses at once: unknown cluster, or a required pseudo-header missing.
        Some(Status::BadArgument)
    } else {
        None
    };
    if let Some(refused) = verdict {
        state.records.refused_calls.push(RefusedCall {
            cluster,
            headers,
            status: refused,
        });
        return status(refused);
    }
    let token = state.next_token;
    state.next_token += 1;
    let at_ms = state.now_ms();
    state.records.calls.push(DispatchedCall {
        token,
        cluster,
        headers,
        raw_headers: header_bytes,
        body,
        trailers,
        timeout_ms: timeout_ms as u32,
        at_ms,
    });
    guest::write_u32(&mut caller, token_out, token)?;
    status(Status::Ok)
}

fn proxy_set_effective_context(mut caller: Ctx<'_>, context_id: i32) -> Result<i32> {
    caller.data_mut().count_import("proxy_set_effective_context");
    let state = caller.data_mut();
    if !state.live_contexts.contains(&(context_id as u32)) {
        return status(Status::BadArgument);
    }
    state.active_context = context_id as u32;
    status(Status::Ok)
}
