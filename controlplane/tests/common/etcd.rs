//! A private etcd process for tests: free loopback ports, a temporary data directory, and
//! cleanup both on drop and when the test process exits.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long etcd may take to report healthy.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How many times to retry with new ports (a free port can be taken before etcd binds it).
const START_ATTEMPTS: usize = 3;

/// Runs etcd in the background and kills it as soon as its stdin (a pipe held by the test
/// process) closes: on drop, and also when the test process exits without running
/// destructors (statics, aborts).
const WATCHDOG_SCRIPT: &str = r#"
exec 3<&0
etcd "$@" >"$ETCD_LOG" 2>&1 &
pid=$!
(cat <&3 >/dev/null; kill "$pid" 2>/dev/null) &
wait "$pid"
"#;

/// One running etcd; killed on drop.
pub struct EtcdServer {
    /// Client URL, e.g. `http://127.0.0.1:41234`.
    pub endpoint: String,
    /// The watchdog shell that owns the etcd process.
    child: Child,
    /// Write end of the watchdog's stdin; closing it stops etcd.
    stdin: Option<ChildStdin>,
    /// Data directory and log file; removed on drop.
    _dir: TempDir,
}

impl EtcdServer {
    /// The etcd shared by all tests of this test binary (each test uses its own key prefix).
    pub fn shared() -> &'static EtcdServer {
        static SHARED: OnceLock<EtcdServer> = OnceLock::new();
        SHARED.get_or_init(EtcdServer::start)
    }

    /// Starts a private etcd, for tests that must not disturb others (e.g. compaction).
    pub fn start() -> EtcdServer {
        require_etcd_on_path();
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start() {
                Ok(server) => return server,
                Err(log) => last_log = log,
            }
        }
        panic!("etcd did not become healthy after {START_ATTEMPTS} attempts; its log:\n{last_log}");
    }

    /// One attempt on fresh ports; on failure, etcd's log.
    fn try_start() -> Result<EtcdServer, String> {
        let dir = tempfile::tempdir().expect("temporary directory for etcd");
        let client_port = free_port();
        let peer_port = free_port();
        let endpoint = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let log_path = dir.path().join("etcd.log");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("etcd-watchdog")
            .args(["--name", "conformance"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &endpoint])
            .args(["--advertise-client-urls", &endpoint])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("conformance={peer}")])
            .args(["--logger", "zap", "--log-level", "warn"])
            .env("ETCD_LOG", &log_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh to run etcd");
        let stdin = child.stdin.take();
        let mut server = EtcdServer {
            endpoint,
            child,
            stdin,
            _dir: dir,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if server.healthy(client_port) {
                return Ok(server);
            }
            if let Ok(Some(_)) = server.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = read_log(&log_path);
        server.stop();
        Err(log)
    }

    /// Whether etcd answers `GET /health` with `"health":"true"`.
    fn healthy(&self, port: u16) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        if stream
            .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response.contains(r#""health":"true""#)
    }

    /// Stops etcd: closing the watchdog's stdin makes it kill etcd; kill the watchdog if it
    /// does not finish in time.
    fn stop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Fails the test with instructions when etcd is not installed.
fn require_etcd_on_path() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir: PathBuf| dir.join("etcd"))
        .any(|candidate| candidate.is_file());
    assert!(
        found,
        "`etcd` is not on PATH: the etcd storage conformance tests start their own etcd. \
         Run the tests through `scripts/test`, which installs the test prerequisites."
    );
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind a free loopback port")
}

/// etcd's log, for failure messages.
fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(no log at {}: {e})", path.display()))
}
