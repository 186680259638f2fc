//! A tiny scripted HTTP/1.1 server on a loopback address for prober tests: it records every
//! request head and answers each with whatever the test's handler says, including not at all.

use std::sync::{Arc, Mutex};

use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// One request head as the server saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// The request method.
    pub method: String,
    /// The request target (path and query).
    pub path: String,
    /// Headers in order, names lowercased.
    pub headers: Vec<(String, String)>,
}

impl SeenRequest {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What to answer.
pub enum Reply {
    /// A complete response, then close.
    Full {
        /// The status code.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
    /// Headers promising `content_length` bytes, `sent` of them, then silence (never closes).
    Partial {
        /// The status code.
        status: u16,
        /// The Content-Length announced.
        content_length: usize,
        /// The bytes actually sent.
        sent: usize,
    },
    /// Read the request and never answer.
    Hang,
}

impl Reply {
    /// A complete response with `body`.
    pub fn status(status: u16, body: &str) -> Reply {
        Reply::Full {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    /// A 302 to `location`.
    pub fn redirect(location: &str) -> Reply {
        Reply::Full {
            status: 302,
            headers: vec![("Location".into(), location.into())],
            body: Vec::new(),
        }
    }
}

/// The handler type: request → reply.
type Handler = Arc<dyn Fn(&SeenRequest) -> Reply + Send + Sync>;

/// A running test server; stops (with every open connection) when dropped.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Every request head so far.
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    /// The accept loop; it owns the connection tasks.
    task: JoinHandle<()>,
}

impl TestServer {
    /// Listens on `ip`, port chosen by the OS, answering with `handler`.
    pub async fn start(
        ip: &str,
        handler: impl Fn(&SeenRequest) -> Reply + Send + Sync + 'static,
    ) -> TestServer {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let task = tokio::spawn(accept_loop(listener, seen.clone(), handler));
        TestServer { addr, seen, task }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request head so far.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections until aborted; aborting drops the JoinSet and with it every connection.
async fn accept_loop(listener: TcpListener, seen: Arc<Mutex<Vec<SeenRequest>>>, handler: Handler) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        connections.spawn(serve(stream, seen.clone(), handler.clone()));
        while connections.try_join_next().is_some() {}
    }
}

/// Reads one request head, records it and replies.
async fn serve(mut stream: TcpStream, seen: Arc<Mutex<Vec<SeenRequest>>>, handler: Handler) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let request = SeenRequest {
        method: first.next().unwrap_or_default().to_string(),
        path: first.next().unwrap_or_default().to_string(),
        headers: lines
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_string()))
            .collect(),
    };
    seen.lock().unwrap().push(request.clone());
    match handler(&request) {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&body).await;
            let _ = stream.shutdown().await;
        }
        Reply::Partial {
            status,
            content_length,
            sent,
        } => {
            let head = format!("HTTP/1.1 {status} X\r\nContent-Length: {content_length}\r\n\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&vec![b'y'; sent]).await;
            let _ = stream.flush().await;
            std::future::pending::<()>().await;
        }
        Reply::Hang => std::future::pending::<()>().await,
    }
}

/// A loopback port nothing listens on (bound, then released).
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// A fake runtime with one running container; returns both.
pub async fn running_container() -> (crate::runtime::fake::FakeRuntime, String) {
    use crate::runtime::{ContainerConfig, ContainerRuntime, ImageRef};
    let runtime = crate::runtime::fake::FakeRuntime::new();
    let image = ImageRef::parse("skiff-test/busybox:latest").unwrap();
    runtime.add_image(&image);
    let id = runtime
        .create_container(&ContainerConfig::new("probe-target", image))
        .await
        .unwrap();
    runtime.start_container(&id).await.unwrap();
    (runtime, id)
}
