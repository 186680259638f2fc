//! The proxy with real sockets: backends on 127.0.0.1, the proxy's state fed Service and
//! Endpoints values by hand (no apiserver).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use skiff_api::runtime::{Store, Writer};
use skiff_api::types::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectMeta, Service, ServicePort,
    ServiceSpec, WatchEvent,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};
use tokio_util::sync::CancellationToken;

use super::fake_apiserver::FakeApiserver;
use super::{Proxy, ProxyConfig};

/// How long any awaited condition may take.
const DEADLINE: Duration = Duration::from_secs(10);

/// A backend on 127.0.0.1 that greets with its name, then echoes.
struct Backend {
    /// Where it listens.
    addr: SocketAddr,
    /// The accept loop, stopped on drop.
    task: JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn backend(name: &'static str) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                stream.write_all(format!("{name}\n").as_bytes()).await?;
                let (mut read, mut write) = stream.split();
                tokio::io::copy(&mut read, &mut write).await?;
                Ok::<_, std::io::Error>(())
            });
        }
    });
    Backend { addr, task }
}

/// A 127.0.0.1 port nothing listens on (just released).
fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A client connection through the proxy that has learned which backend it reached.
struct Conn {
    /// The stream, buffered for line reads.
    stream: BufReader<TcpStream>,
    /// The backend's greeting.
    backend: String,
}

impl Conn {
    /// Sends a line and checks it comes back: the connection is still forwarded.
    async fn echo(&mut self, text: &str) {
        self.stream
            .get_mut()
            .write_all(format!("{text}\n").as_bytes())
            .await
            .unwrap();
        let mut line = String::new();
        timeout(DEADLINE, self.stream.read_line(&mut line))
            .await
            .expect("echo timed out")
            .unwrap();
        assert_eq!(line, format!("{text}\n"), "through {}", self.backend);
    }
}

/// Connects through the proxy; None when the proxy closed the connection without a backend.
async fn try_connect(addr: SocketAddr) -> Option<Conn> {
    let stream = timeout(DEADLINE, TcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .unwrap();
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    let read = timeout(DEADLINE, stream.read_line(&mut line))
        .await
        .expect("greeting timed out");
    match read {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(Conn {
            stream,
            backend: line.trim().to_string(),
        }),
    }
}

/// The backend a new connection to `addr` reaches; None when refused or closed.
async fn probe(addr: SocketAddr) -> Option<String> {
    let stream = timeout(DEADLINE, TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    match timeout(DEADLINE, stream.read_line(&mut line)).await {
        Ok(Ok(n)) if n > 0 => Some(line.trim().to_string()),
        _ => None,
    }
}

async fn connect(addr: SocketAddr) -> Conn {
    try_connect(addr)
        .await
        .expect("the proxy closed the connection")
}

/// A proxy fed by hand, with the writers that feed it.
struct Fixture {
    /// The proxy under test.
    proxy: Proxy,
    /// Feeds services.
    services: Writer<Service>,
    /// Feeds endpoints.
    endpoints: Writer<Endpoints>,
    /// The caller's stop signal the proxy hangs off (the proxy also stops when dropped).
    shutdown: CancellationToken,
}

fn test_config() -> ProxyConfig {
    ProxyConfig {
        bind_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        connect_timeout: Duration::from_millis(500),
        session_affinity_timeout: Duration::from_secs(60),
        bind_retry_base: Duration::from_millis(50),
        bind_retry_cap: Duration::from_millis(200),
    }
}

fn fixture() -> Fixture {
    let (services, service_store): (Writer<Service>, Store<Service>) = Writer::new();
    let (endpoints, endpoints_store) = Writer::new();
    let shutdown = CancellationToken::new();
    let proxy = Proxy::new(test_config(), service_store, endpoints_store, &shutdown);
    Fixture {
        proxy,
        services,
        endpoints,
        shutdown,
    }
}

impl Fixture {
    fn apply_service(&mut self, service: Service) {
        let (ns, name) = names(&service.metadata);
        self.services.apply(service);
        self.proxy.sync_service(&ns, &name);
    }

    fn delete_service(&mut self, service: &Service) {
        let (ns, name) = names(&service.metadata);
        self.services.delete(service);
        self.proxy.sync_service(&ns, &name);
    }

    fn apply_endpoints(&mut self, endpoints: Endpoints) {
        let (ns, name) = names(&endpoints.metadata);
        self.endpoints.apply(endpoints);
        self.proxy.sync_service(&ns, &name);
    }

    /// Waits until the service's port `port_name` is bound; returns its address.
    async fn bound(&self, ns: &str, name: &str, port_name: &str) -> SocketAddr {
        let start = Instant::now();
        loop {
            if let Some(status) = self.proxy.port(ns, name, port_name)
                && status.bound
            {
                return status.address;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{ns}/{name} port {port_name:?} never bound: {:?}",
                self.proxy.ports()
            );
            sleep(Duration::from_millis(10)).await;
        }
    }
}

fn names(meta: &ObjectMeta) -> (String, String) {
    (
        meta.namespace_or_empty().to_string(),
        meta.name_or_empty().to_string(),
    )
}

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(ns.into()),
        ..Default::default()
    }
}

/// A service with one TCP port named `port_name` listening on `listen` (as its nodePort).
fn service(ns: &str, name: &str, port_name: &str, listen: SocketAddr, affinity: bool) -> Service {
    Service {
        metadata: meta(ns, name),
        spec: ServiceSpec {
            ports: vec![ServicePort {
                name: Some(port_name.into()),
                port: 80,
                node_port: Some(i32::from(listen.port())),
                ..Default::default()
            }],
            session_affinity: affinity.then(|| "ClientIP".to_string()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Endpoints with one ready 127.0.0.1 address per backend (one subset each, as their ports
/// differ) and one not-ready address that must never be used.
fn endpoints(ns: &str, name: &str, port_name: &str, backends: &[SocketAddr]) -> Endpoints {
    let mut subsets: Vec<EndpointSubset> = backends
        .iter()
        .map(|b| EndpointSubset {
            addresses: vec![EndpointAddress {
                ip: b.ip().to_string(),
                ..Default::default()
            }],
            not_ready_addresses: vec![],
            ports: vec![EndpointPort {
                name: Some(port_name.into()),
                port: i32::from(b.port()),
                protocol: Some("TCP".into()),
            }],
        })
        .collect();
    subsets.push(EndpointSubset {
        addresses: vec![],
        not_ready_addresses: vec![EndpointAddress {
            ip: "127.0.0.1".into(),
            ..Default::default()
        }],
        ports: vec![EndpointPort {
            name: Some(port_name.into()),
            port: 1,
            protocol: None,
        }],
    });
    Endpoints {
        metadata: meta(ns, name),
        subsets,
        ..Default::default()
    }
}

/// Waits until connecting to `addr` is refused (nothing listens there any more).
async fn until_refused(addr: SocketAddr) {
    let start = Instant::now();
    while TcpStream::connect(addr).await.is_ok() {
        assert!(start.elapsed() < DEADLINE, "{addr} still accepts");
        sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn proxy_forwards_round_robin_skipping_a_refusing_endpoint() {
    let a = backend("a").await;
    let b = backend("b").await;
    let refusing = free_addr();
    let listen = free_addr();
    let mut f = fixture();
    let mut svc = service("rr", "web", "http", listen, false);
    svc.spec.ports.push(ServicePort {
        name: Some("dns".into()),
        protocol: Some("UDP".into()),
        port: 53,
        ..Default::default()
    });
    f.apply_service(svc);
    f.apply_endpoints(endpoints("rr", "web", "http", &[a.addr, refusing, b.addr]));
    let addr = f.bound("rr", "web", "http").await;
    assert_eq!(addr, listen, "listens on the nodePort");
    assert_eq!(f.proxy.ports().len(), 1, "the UDP port is skipped");
    assert_eq!(
        f.proxy.port("rr", "web", "http").unwrap().backends,
        vec![a.addr, refusing, b.addr]
    );

    let mut reached = Vec::new();
    for i in 0..6 {
        let mut conn = connect(addr).await;
        conn.echo(&format!("hello {i}")).await;
        reached.push(conn.backend);
    }
    assert_eq!(reached, vec!["a", "b", "a", "b", "a", "b"]);

    // Only a refusing endpoint left: the client connection is closed.
    f.apply_endpoints(endpoints("rr", "web", "http", &[refusing]));
    assert!(try_connect(addr).await.is_none());
    // No endpoints at all: closed too; the port keeps listening.
    f.apply_endpoints(endpoints("rr", "web", "http", &[]));
    assert!(try_connect(addr).await.is_none());
    f.apply_endpoints(endpoints("rr", "web", "http", &[b.addr]));
    assert_eq!(connect(addr).await.backend, "b");
    f.proxy.shutdown().await;
}

#[tokio::test]
async fn endpoint_changes_reach_new_connections_and_spare_established_ones() {
    let a = backend("a").await;
    let b = backend("b").await;
    let listen = free_addr();
    let mut f = fixture();
    f.apply_service(service("chg", "web", "http", listen, false));
    f.apply_endpoints(endpoints("chg", "web", "http", &[a.addr]));
    let addr = f.bound("chg", "web", "http").await;

    let mut first = connect(addr).await;
    assert_eq!(first.backend, "a");
    f.apply_endpoints(endpoints("chg", "web", "http", &[b.addr]));
    let mut second = connect(addr).await;
    assert_eq!(second.backend, "b");
    first.echo("still there").await;

    f.apply_endpoints(endpoints("chg", "web", "http", &[]));
    assert!(try_connect(addr).await.is_none());
    first.echo("a keeps going").await;
    second.echo("b keeps going").await;
    f.proxy.shutdown().await;
}

#[tokio::test]
async fn changed_or_removed_ports_stop_listening_while_connections_finish() {
    let a = backend("a").await;
    let old_port = free_addr();
    let new_port = free_addr();
    let mut f = fixture();
    f.apply_endpoints(endpoints("mv", "web", "http", &[a.addr]));
    f.apply_service(service("mv", "web", "http", old_port, false));
    assert_eq!(f.bound("mv", "web", "http").await, old_port);
    let mut before = connect(old_port).await;

    // The port moves: the old one is released, the new one serves, the old connection lives.
    f.apply_service(service("mv", "web", "http", new_port, false));
    assert_eq!(f.bound("mv", "web", "http").await, new_port);
    until_refused(old_port).await;
    let mut after = connect(new_port).await;
    assert_eq!(after.backend, "a");
    before.echo("across the port change").await;

    // The service goes: nothing listens any more; established connections still work.
    f.delete_service(&service("mv", "web", "http", new_port, false));
    assert!(f.proxy.ports().is_empty());
    until_refused(new_port).await;
    before.echo("after delete").await;
    after.echo("after delete").await;
    f.proxy.shutdown().await;
}

#[tokio::test]
async fn client_ip_affinity_keeps_a_client_on_one_endpoint() {
    let a = backend("a").await;
    let b = backend("b").await;
    let listen = free_addr();
    let mut f = fixture();
    f.apply_service(service("aff", "web", "http", listen, true));
    f.apply_endpoints(endpoints("aff", "web", "http", &[a.addr, b.addr]));
    let addr = f.bound("aff", "web", "http").await;

    let first = connect(addr).await.backend;
    for _ in 0..4 {
        assert_eq!(connect(addr).await.backend, first);
    }
    // Its endpoint leaves: the client moves to the other one and stays there.
    let remaining = if first == "a" { b.addr } else { a.addr };
    let other = if first == "a" { "b" } else { "a" };
    f.apply_endpoints(endpoints("aff", "web", "http", &[remaining]));
    assert_eq!(connect(addr).await.backend, other);
    f.apply_endpoints(endpoints("aff", "web", "http", &[a.addr, b.addr]));
    for _ in 0..4 {
        assert_eq!(connect(addr).await.backend, other);
    }
    // Affinity turned off: plain round robin again.
    f.apply_service(service("aff", "web", "http", listen, false));
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..4 {
        seen.push(connect(addr).await.backend);
    }
    assert!(seen.contains(&"a".to_string()) && seen.contains(&"b".to_string()));
    f.proxy.shutdown().await;
}

#[tokio::test]
async fn a_busy_port_is_retried_while_other_services_work() {
    let a = backend("a").await;
    let occupant = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = occupant.local_addr().unwrap();
    let fine = free_addr();
    let mut f = fixture();
    f.apply_endpoints(endpoints("busy", "one", "http", &[a.addr]));
    f.apply_endpoints(endpoints("busy", "two", "http", &[a.addr]));
    f.apply_service(service("busy", "one", "http", busy, false));
    f.apply_service(service("busy", "two", "http", fine, false));

    let addr = f.bound("busy", "two", "http").await;
    assert_eq!(connect(addr).await.backend, "a");
    assert!(!f.proxy.port("busy", "one", "http").unwrap().bound);

    drop(occupant);
    let addr = f.bound("busy", "one", "http").await;
    assert_eq!(addr, busy);
    assert_eq!(connect(addr).await.backend, "a");
    f.proxy.shutdown().await;
}

#[tokio::test]
async fn shutdown_releases_ports_and_closes_forwarded_connections() {
    let a = backend("a").await;
    let mut f = fixture();
    for (name, listen) in [("one", free_addr()), ("two", free_addr())] {
        f.apply_service(service("stop", name, "http", listen, false));
        f.apply_endpoints(endpoints("stop", name, "http", &[a.addr]));
    }
    let one = f.bound("stop", "one", "http").await;
    let two = f.bound("stop", "two", "http").await;
    let mut conn = connect(one).await;
    conn.echo("before").await;

    // The caller's token stops listeners and forwarded connections.
    f.shutdown.cancel();
    let mut line = String::new();
    let n = timeout(DEADLINE, conn.stream.read_line(&mut line))
        .await
        .expect("the forwarded connection was not closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "got {line:?}");
    until_refused(two).await;
    // Once shutdown returns, every port is free to bind again.
    f.proxy.shutdown().await;
    std::net::TcpListener::bind(one).unwrap();
    std::net::TcpListener::bind(two).unwrap();
}

#[tokio::test]
async fn run_returns_when_shut_down_even_without_a_controlplane() {
    let client = skiff_api::client::Client::new(&format!("http://{}", free_addr())).unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(super::run(client, test_config(), shutdown.clone()));
    sleep(Duration::from_millis(100)).await;
    assert!(!task.is_finished(), "run keeps retrying the watches");
    shutdown.cancel();
    let result = timeout(DEADLINE, task)
        .await
        .expect("run did not stop")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
}

/// Waits until a connection to `addr` reaches the backend named `want`.
async fn until_served_by(addr: SocketAddr, want: &str) {
    let start = Instant::now();
    loop {
        if probe(addr).await.as_deref() == Some(want) {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "{addr} never reached {want}");
        sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn run_serves_what_the_apiserver_lists_and_follows_its_watch() {
    let a = backend("a").await;
    let b = backend("b").await;
    let one = free_addr();
    let two = free_addr();
    let server = FakeApiserver::start(
        vec![service("run", "one", "http", one, false)],
        vec![endpoints("run", "one", "http", &[a.addr])],
    )
    .await;
    let client = skiff_api::client::Client::new(&format!("http://{}", server.addr)).unwrap();
    let shutdown = CancellationToken::new();
    let _stop_on_panic = shutdown.clone().drop_guard();
    let task = tokio::spawn(super::run(client, test_config(), shutdown.clone()));

    // The listed state is served.
    until_served_by(one, "a").await;
    let start = Instant::now();
    while server.watchers() < 2 {
        assert!(
            start.elapsed() < DEADLINE,
            "the proxy never watched both kinds"
        );
        sleep(Duration::from_millis(10)).await;
    }
    let mut established = connect(one).await;

    // Changes arrive over the watches.
    server.push(WatchEvent::Modified(endpoints(
        "run",
        "one",
        "http",
        &[b.addr],
    )));
    until_served_by(one, "b").await;
    server.push(WatchEvent::Added(service("run", "two", "http", two, false)));
    server.push(WatchEvent::Added(endpoints(
        "run",
        "two",
        "http",
        &[a.addr],
    )));
    until_served_by(two, "a").await;
    server.push(WatchEvent::Deleted(service(
        "run", "one", "http", one, false,
    )));
    until_refused(one).await;
    established.echo("outlives its service").await;
    until_served_by(two, "a").await;

    shutdown.cancel();
    let result = timeout(DEADLINE, task)
        .await
        .expect("run did not stop")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    std::net::TcpListener::bind(two).unwrap();
}
