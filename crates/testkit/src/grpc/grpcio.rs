//! The grpc-core shadow: Python grpcio (crates/testkit/grpcio_server.py)
//! in a child process, the gRPC stack that refuses calls without
//! `te: trailers`.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One call as the grpc-core (Python grpcio) server handled it.
#[derive(Clone, Debug)]
pub struct GrpcioCall {
    pub path: String,
    /// Invocation metadata as grpc-core hands it to the application
    /// (grpc-core consumes te, content-type, grpc-timeout and the like).
    pub metadata: Vec<(String, String)>,
    pub messages: Vec<Vec<u8>>,
    /// `context.time_remaining()` when the call arrived: the deadline
    /// grpc-core read from `grpc-timeout`, if any.
    pub time_remaining: Option<f64>,
}

impl GrpcioCall {
    pub fn metadata(&self, name: &str) -> Option<&str> {
        self.metadata.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// The python of the project's .venv with grpcio, from scripts/ensure-grpcio.sh
/// (which installs the pinned grpcio if missing). Fails loudly.
pub fn grpcio_python() -> std::path::PathBuf {
    let root = crate::repo_root();
    let script = root.join("scripts/ensure-grpcio.sh");
    let output = Command::new(&script)
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "the grpc-core shadow needs grpcio in .venv: run ./scripts/ensure-grpcio.sh\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::path::PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// crates/testkit/grpcio_server.py in a child process on 127.0.0.1: it prints
/// its port, then one JSON line per call. Dropping it kills it.
pub struct GrpcioServer {
    pub port: u16,
    child: Child,
    calls: Arc<Mutex<Vec<GrpcioCall>>>,
    output: Arc<Mutex<Vec<String>>>,
}

impl GrpcioServer {
    pub fn start() -> GrpcioServer {
        let python = grpcio_python();
        let script = crate::repo_root().join("crates/testkit/grpcio_server.py");
        let mut child = Command::new(python)
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn grpcio server");
        let stdout = child.stdout.take().expect("stdout");
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let output = Arc::new(Mutex::new(Vec::new()));
        let (reader_calls, reader_output) = (calls.clone(), output.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                reader_output.lock().unwrap().push(line.clone());
                let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if let Some(port) = json["port"].as_u64() {
                    let _ = port_tx.send(port as u16);
                } else if let Some(call) = parse_grpcio_call(&json) {
                    reader_calls.lock().unwrap().push(call);
                }
            }
        });
        let port = port_rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
            panic!(
                "the grpcio server did not print its port; it printed {:?}",
                output.lock().unwrap()
            )
        });
        GrpcioServer {
            port,
            child,
            calls,
            output,
        }
    }

    pub fn calls(&self) -> Vec<GrpcioCall> {
        self.calls.lock().unwrap().clone()
    }

    /// Everything the server printed (for failure messages).
    pub fn output(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<GrpcioCall> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.calls().len() < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.calls()
    }
}

impl Drop for GrpcioServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_grpcio_call(json: &serde_json::Value) -> Option<GrpcioCall> {
    let path = json["path"].as_str()?.to_owned();
    let metadata = json["metadata"]
        .as_array()?
        .iter()
        .filter_map(|pair| Some((pair[0].as_str()?.to_owned(), pair[1].as_str()?.to_owned())))
        .collect();
    let messages = json["messages"]
        .as_array()?
        .iter()
        .filter_map(|hex| decode_hex(hex.as_str()?))
        .collect();
    Some(GrpcioCall {
        path,
        metadata,
        messages,
        time_remaining: json["time_remaining"].as_f64(),
    })
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
