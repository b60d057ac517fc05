//! `flowwatch replay --serve`: the binary replays, prints the URL, serves the page and the API
//! over the replayed state on 127.0.0.1, and stops cleanly on SIGTERM. Every wait is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// Kills the server if a test fails before stopping it.
struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One HTTP/1.1 GET, answered as (status line, headers and body as text).
pub(crate) fn get(address: &str, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(address).expect("connect to the server");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    let status = response.lines().next().unwrap_or_default().to_string();
    (status, response)
}

#[test]
fn serves_the_page_and_the_api_over_the_replay_and_stops_on_sigterm() {
    let child = Command::new(env!("CARGO_BIN_EXE_flowwatch"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "replay",
            "--flows",
            "flows",
            "--input",
            "tests/examples/hostile-payload.jsonl",
            "--until",
            "2026-01-05T17:00:00Z",
            "--serve",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the flowwatch binary starts");
    let mut server = Server(Some(child));
    let stderr = server
        .0
        .as_mut()
        .and_then(|child| child.stderr.take())
        .expect("piped stderr");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let line = receiver
        .recv_timeout(WAIT)
        .expect("the server says where it listens");
    let address = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();

    let (status, page) = get(&address, "/");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(page.contains("content-security-policy: default-src 'self'"));
    assert!(page.contains("<script src=\"/assets/app.js\" defer></script>"));
    let (status, script) = get(&address, "/assets/diagram.js");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(script.contains("function layoutDiagram"));

    let (status, flows) = get(&address, "/api/v1/flows");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(flows.contains(r#""name":"order-fulfillment""#), "{flows}");
    let (status, instance) = get(
        &address,
        "/api/v1/flows/order-fulfillment/instances/ord-9001",
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        instance.contains(r#""note":"<script>alert('xss-script')</script>""#),
        "the served replay keeps the audit trail with payloads: {instance}"
    );

    let mut child = server.0.take().expect("the server runs");
    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let (done_sender, done_receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_sender.send(child.wait().map(|status| status.code()));
    });
    let code = match done_receiver.recv_timeout(WAIT) {
        Ok(waited) => waited.expect("wait succeeds"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("the server did not stop within {WAIT:?} after SIGTERM");
        }
    };
    assert_eq!(code, Some(0), "a clean shutdown exits 0");
}
