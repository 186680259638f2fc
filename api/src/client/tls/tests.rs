//! https and wss against a local TLS server whose certificate is made for the test.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

use crate::client::{Client, ClientConfig, ClientError};
use crate::types::{ContainerManifestList, WatchEvent};

/// The node every request of these tests is about.
const NODE: &str = "edge-1";

/// What the server answers on each connection.
#[derive(Clone, Copy)]
enum Serve {
    /// One HTTP/1.1 response with the node's manifest list.
    Http,
    /// A websocket that sends one ADDED event with the node's manifest list.
    WebSocket,
}

/// A TLS server on 127.0.0.1 with a fresh self-signed certificate for `127.0.0.1`.
struct TlsServer {
    /// Where it listens.
    addr: SocketAddr,
    /// The certificate in PEM, the only CA a client needs to trust it.
    ca_file: tempfile::NamedTempFile,
    /// The `Authorization` header of every request that got through the handshake.
    authorizations: mpsc::UnboundedReceiver<Option<String>>,
}

impl TlsServer {
    async fn start(serve: Serve) -> TlsServer {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let mut ca_file = tempfile::NamedTempFile::new().unwrap();
        ca_file.write_all(certified.cert.pem().as_bytes()).unwrap();
        let cert: CertificateDer<'static> = certified.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (sender, authorizations) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, sender) = (acceptor.clone(), sender.clone());
                tokio::spawn(async move {
                    // A client that does not trust the certificate aborts the handshake here.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    match serve {
                        Serve::Http => answer_http(tls, sender).await,
                        Serve::WebSocket => answer_websocket(tls, sender).await,
                    }
                });
            }
        });
        TlsServer {
            addr,
            ca_file,
            authorizations,
        }
    }

    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

/// The manifest list the server sends.
fn manifests() -> ContainerManifestList {
    ContainerManifestList {
        api_version: "v1".to_string(),
        kind: "ContainerManifestList".to_string(),
        node_name: Some(NODE.to_string()),
        ..ContainerManifestList::default()
    }
}

/// Reads one request head, reports its `Authorization` header and answers with the list.
async fn answer_http<S>(mut stream: S, sender: mpsc::UnboundedSender<Option<String>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let authorization = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("authorization")
            .then(|| value.trim().to_string())
    });
    let _ = sender.send(authorization);
    let body = serde_json::to_vec(&manifests()).unwrap();
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
}

/// Accepts a websocket, reports its `Authorization` header and sends one ADDED event.
async fn answer_websocket<S>(stream: S, sender: mpsc::UnboundedSender<Option<String>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    // The callback's type, with its large error response, is tungstenite's.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| {
        let authorization = request
            .headers()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let _ = sender.send(authorization);
        Ok(response)
    };
    let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let event = serde_json::to_string(&WatchEvent::Added(manifests())).unwrap();
    let _ = socket.send(Message::text(event)).await;
    let _ = socket.close(None).await;
}

#[tokio::test]
async fn https_get_succeeds_with_the_servers_ca_and_sends_the_bearer_token() {
    let mut server = TlsServer::start(Serve::Http).await;
    let client = ClientConfig::new(server.url())
        .with_ca_file(server.ca_file.path())
        .with_bearer_token("t0ken")
        .build()
        .unwrap();
    let list = client.manifests(NODE).await.unwrap();
    assert_eq!(list.node_name.as_deref(), Some(NODE));
    assert_eq!(
        server.authorizations.recv().await.unwrap().as_deref(),
        Some("Bearer t0ken")
    );
}

#[tokio::test]
async fn https_get_fails_with_a_tls_error_without_the_servers_ca() {
    let server = TlsServer::start(Serve::Http).await;
    let client = Client::new(&server.url()).unwrap();
    let err = client.manifests(NODE).await.unwrap_err();
    assert!(matches!(err, ClientError::Tls { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("certificate"), "{message}");
    assert!(message.contains(&server.url()), "{message}");
    assert!(err.is_transport());
}

#[tokio::test]
async fn wss_watch_succeeds_with_the_servers_ca_and_sends_the_bearer_token() {
    let mut server = TlsServer::start(Serve::WebSocket).await;
    let client = ClientConfig::new(server.url())
        .with_ca_file(server.ca_file.path())
        .with_bearer_token("t0ken")
        .build()
        .unwrap();
    let mut events = client.watch_manifests(NODE, None).await.unwrap();
    match events.next().await {
        Some(Ok(WatchEvent::Added(list))) => assert_eq!(list.node_name.as_deref(), Some(NODE)),
        other => panic!("expected an ADDED event, got {other:?}"),
    }
    assert_eq!(
        server.authorizations.recv().await.unwrap().as_deref(),
        Some("Bearer t0ken")
    );
}

#[tokio::test]
async fn wss_watch_fails_with_a_tls_error_without_the_servers_ca() {
    let server = TlsServer::start(Serve::WebSocket).await;
    let client = Client::new(&server.url()).unwrap();
    let err = match client.watch_manifests(NODE, None).await {
        Ok(_) => panic!("the watch connected to a server it should not trust"),
        Err(err) => err,
    };
    assert!(matches!(err, ClientError::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[test]
fn a_file_without_certificates_is_refused() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"not a certificate\n").unwrap();
    let err = super::rustls_config("https://127.0.0.1:1", Some(file.path())).unwrap_err();
    assert!(matches!(err, ClientError::CaBundle { .. }), "{err}");
    assert!(err.to_string().contains("no certificate"), "{err}");
}
