//! A tansu broker process for the tests against a real broker (the end-to-end suite and the
//! kill -9 loop against tansu): started on a free port of 127.0.0.1 with the given storage,
//! stopped with a signal and started again on the same port and storage, optionally requiring
//! SASL authentication (with its SCRAM users) or advertising a proxy's port; and topic creation
//! through the admin API (tansu does not auto-create topics).

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Creates the topics through the admin API (tansu supports CreateTopics).
pub fn create_topics(brokers: &str, names: &[String], partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(10)));
    let results = runtime()
        .block_on(admin.create_topics(&topics, &options))
        .expect("CreateTopics answered");
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => panic!("could not create topic {topic}: {code}"),
        }
    }
}


fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A tansu broker process on a fixed port of 127.0.0.1, working in `dir` (its log, and the
/// SQLite file of `sqlite://` storage, are there), restartable on both.
pub struct Broker {
    binary: PathBuf,
    dir: PathBuf,
    storage: String,
    port: u16,
    child: Option<Child>,
    /// How many times it was started.
    pub starts: usize,
    /// Start it requiring SASL authentication (`--authentication`; users with
    /// [`Broker::create_user`]).
    pub authentication: bool,
    /// Advertise this port of 127.0.0.1 to clients instead of its own (a proxy in front).
    pub advertised_port: Option<u16>,
}

impl Broker {
    /// `storage` is tansu's `--storage-engine` (`memory://tansu/`, `sqlite://tansu.db`).
    pub fn new(binary: PathBuf, dir: PathBuf, storage: &str) -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        Broker {
            binary,
            dir,
            storage: storage.to_string(),
            port,
            child: None,
            starts: 0,
            authentication: false,
            advertised_port: None,
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("tansu.log")
    }

    /// Starts the broker and waits until it accepts connections.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("tansu log");
        let url = format!("tcp://{}", self.address());
        let advertised = match self.advertised_port {
            Some(port) => format!("tcp://127.0.0.1:{port}"),
            None => url.clone(),
        };
        let child = Command::new(&self.binary)
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &advertised])
            .args(["--storage-engine", &self.storage])
            .args(self.authentication.then_some("--authentication"))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("tansu log"))
            .stderr(log)
            .spawn()
            .expect("tansu starts");
        self.child = Some(child);
        self.starts += 1;
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().and_then(|child| child.try_wait().expect("wait")) {
                panic!("tansu exited at start ({status}):\n{}", self.log_tail());
            }
            if std::net::TcpStream::connect(self.address()).is_ok() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "tansu does not accept connections after 30 s:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends `signal` (`TERM` or `KILL`) and waits for the broker to exit.
    pub fn stop(&mut self, signal: &str) {
        let Some(mut child) = self.child.take() else { return };
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "could not signal tansu");
        let started = Instant::now();
        while child.try_wait().expect("wait").is_none() {
            if started.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("tansu did not exit within 20 s of SIG{signal}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Creates a SCRAM user (`mechanism`: tansu's `scram256` or `scram512`) through the broker,
    /// which must be running without authentication (tansu keeps users in its storage).
    pub fn create_user(&self, name: &str, password: &str, mechanism: &str) {
        let output = Command::new(&self.binary)
            .args(["user", "create", "--broker", &format!("tcp://{}", self.address())])
            .args(["--mechanism", mechanism, name, password])
            .stdin(Stdio::null())
            .output()
            .expect("tansu user create runs");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && !said.contains("Error"),
            "tansu user create failed ({}): {said}",
            output.status
        );
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
