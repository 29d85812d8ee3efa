//! What the `serve` tests share: a served bundled scenario on its own runtime, and a raw
//! HTTP/1.1 client that shows exactly what is on the wire.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use pipetape_replayer::analysis::fold::{Fold, RunModel};
use pipetape_replayer::serve::{Faults, Mode, Options, Server};
use pipetape_testkit::scenario::bundled;
use serde_json::Value;

pub fn model(name: &str) -> RunModel {
    let (recs, start) = bundled(name).unwrap().records("r");
    let mut f = Fold::new("r".into(), start);
    for r in recs {
        f.push(r);
    }
    f.finish()
}

/// Starts a server on its own runtime thread; returns its address.
pub fn start(m: RunModel, mode: Mode, faults: Faults) -> SocketAddr {
    let (addr, stop) = start_stoppable(m, mode, faults);
    // Serves until the test process ends.
    std::mem::forget(stop);
    addr
}

/// Starts a server that stops when the returned sender is used or dropped.
pub fn start_stoppable(
    m: RunModel,
    mode: Mode,
    faults: Faults,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let opts = Options {
                mode,
                faults,
                bookmark_every: Duration::from_millis(200),
                ..Default::default()
            };
            let s = Server::bind(m, opts).await.unwrap();
            tx.send(s.addr()).unwrap();
            s.run(async move {
                let _ = stop_rx.await;
            })
            .await;
        });
    });
    (rx.recv().unwrap(), stop_tx)
}

pub struct Resp {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

pub fn request(addr: SocketAddr, method: &str, path: &str, accept: &str) -> Resp {
    request_with(addr, method, path, &[("Accept", accept)])
}

/// A request with the given headers (plus Host and Connection: close); the whole response.
pub fn request_with(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let headers = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = headers.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .to_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

pub fn get(addr: SocketAddr, path: &str) -> Resp {
    request(addr, "GET", path, "application/json")
}

pub fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[nl + 2 + n + 2..];
    }
    out
}

/// Opens a watch and collects events until `until` says stop, the stream ends, or `max`
/// passes. Returns the events and whether the server closed the stream.
pub fn watch(
    addr: SocketAddr,
    path: &str,
    max: Duration,
    until: impl Fn(&[Value]) -> bool,
) -> (Vec<Value>, bool) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
    }
    let deadline = Instant::now() + max;
    let mut events = Vec::new();
    let mut pending = String::new();
    loop {
        if Instant::now() > deadline || until(&events) {
            return (events, false);
        }
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => return (events, true),
            Ok(_) => {
                // Chunk-size lines are hex; data lines are JSON.
                let t = line.trim_end();
                if t.starts_with('{') || !pending.is_empty() {
                    pending.push_str(t);
                    if let Ok(v) = serde_json::from_str::<Value>(&pending) {
                        // The type before the object, as the API server writes them: clients
                        // that decode as they read (kube-rs) need the type first.
                        assert!(
                            pending.starts_with(r#"{"type":"#),
                            "a watch line that does not start with its type: {pending}"
                        );
                        events.push(v);
                        pending.clear();
                    }
                } else if t == "0" {
                    return (events, true);
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (events, true),
        }
    }
}

pub fn fixture(name: &str) -> Vec<Value> {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/real")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

pub fn body_of(x: &Value) -> Value {
    serde_json::from_str(x["response_body"].as_str().unwrap()).unwrap()
}

pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}
