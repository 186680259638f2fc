//! One listening service port: bind (retrying with backoff), accept, forward each connection.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skiff_api::wait::Backoff;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::backends::ServicePortKey;
use super::balancer::Balancer;
use super::config::ProxyConfig;
use super::dial::{connect_tcp, dial, lock};

/// Pause after a failed `accept` (e.g. out of file descriptors) before accepting again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// What the accept loop and its connections share.
struct PortContext {
    /// Which service port this is, for log fields and errors.
    key: ServicePortKey,
    /// The node address listened on.
    address: SocketAddr,
    /// The endpoints and the choice among them; updated in place by the proxy's writer.
    balancer: Arc<Mutex<Balancer>>,
    /// Bind retries and connect timeout.
    config: Arc<ProxyConfig>,
}

/// A running listener of one service port, owned by the proxy state.
pub(crate) struct PortListener {
    /// The endpoints; the proxy updates them here and new connections see them at once.
    balancer: Arc<Mutex<Balancer>>,
    /// The node address listened on.
    address: SocketAddr,
    /// Stops the accept loop (not the connections already forwarded).
    stop: CancellationToken,
    /// True while the port is bound.
    bound: watch::Receiver<bool>,
    /// The accept loop, awaited on shutdown so the port is free when the proxy returns.
    task: JoinHandle<()>,
}

impl PortListener {
    /// Starts listening for `key` on `address`; connections end when `connections` is cancelled.
    pub(crate) fn start(
        key: ServicePortKey,
        address: SocketAddr,
        balancer: Balancer,
        config: Arc<ProxyConfig>,
        connections: &CancellationToken,
    ) -> Self {
        let balancer = Arc::new(Mutex::new(balancer));
        let stop = connections.child_token();
        let (bound_tx, bound) = watch::channel(false);
        let context = Arc::new(PortContext {
            key,
            address,
            balancer: Arc::clone(&balancer),
            config,
        });
        let task = tokio::spawn(serve(context, stop.clone(), connections.clone(), bound_tx));
        PortListener {
            balancer,
            address,
            stop,
            bound,
            task,
        }
    }

    /// The endpoints and their choice state, shared with the accept loop.
    pub(crate) fn balancer(&self) -> &Mutex<Balancer> {
        &self.balancer
    }

    /// The node address listened on.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// True while the port is bound and accepting.
    pub(crate) fn is_bound(&self) -> bool {
        *self.bound.borrow()
    }

    /// Replaces the endpoints and affinity for new connections; true when the endpoints changed.
    pub(crate) fn update(&self, backends: Vec<SocketAddr>, affinity: Option<Duration>) -> bool {
        let mut balancer = lock(&self.balancer);
        let changed = balancer.backends() != backends.as_slice();
        balancer.set_backends(backends);
        balancer.set_affinity(affinity);
        changed
    }

    /// Stops accepting; connections already forwarded go on until they end.
    pub(crate) fn stop(&self) {
        self.stop.cancel();
    }

    /// Stops accepting and waits until the port is released.
    pub(crate) async fn stop_and_wait(self) {
        self.stop.cancel();
        // A panicked or aborted accept loop has released its port too.
        let _ = self.task.await;
    }
}

/// The accept loop: bind with backoff, then accept until `stop`, one task per connection.
async fn serve(
    context: Arc<PortContext>,
    stop: CancellationToken,
    connections: CancellationToken,
    bound: watch::Sender<bool>,
) {
    let service = context.key.service();
    let port = context.key.port_label();
    let address = context.address;
    let Some(listener) = bind(&context, &stop).await else {
        info!(%service, %port, %address, "stopped trying to listen");
        return;
    };
    bound.send_replace(true);
    info!(%service, %port, %address, "listening");
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(forward(Arc::clone(&context), stream, peer, connections.clone()));
                }
                Err(error) => {
                    warn!(%service, %port, %address, %error, "accept failed");
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                    }
                }
            },
        }
    }
    drop(listener);
    bound.send_replace(false);
    info!(%service, %port, %address, "stopped listening");
}

/// Binds the port, retrying with backoff; logs the first failure once. None when stopped first.
async fn bind(context: &PortContext, stop: &CancellationToken) -> Option<TcpListener> {
    let mut backoff = Backoff::new(
        context.config.bind_retry_base,
        context.config.bind_retry_cap,
        0.2,
    );
    loop {
        match TcpListener::bind(context.address).await {
            Ok(listener) => return Some(listener),
            Err(error) => {
                let delay = backoff.next_delay();
                if backoff.attempts() == 1 {
                    warn!(
                        service = %context.key.service(),
                        port = %context.key.port_label(),
                        address = %context.address,
                        %error,
                        "cannot listen on the service port; retrying in the background"
                    );
                } else {
                    debug!(
                        service = %context.key.service(),
                        port = %context.key.port_label(),
                        address = %context.address,
                        %error,
                        retry_ms = delay.as_millis(),
                        "still cannot listen on the service port"
                    );
                }
                tokio::select! {
                    () = stop.cancelled() => return None,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Forwards one accepted connection to an endpoint until either side closes or the proxy stops.
async fn forward(
    context: Arc<PortContext>,
    mut client: TcpStream,
    peer: SocketAddr,
    connections: CancellationToken,
) {
    let service = context.key.service();
    let port = context.key.port_label();
    let dialed = dial(
        &context.key,
        &context.balancer,
        peer.ip(),
        context.config.connect_timeout,
        connect_tcp,
    )
    .await;
    let (mut backend, endpoint) = match dialed {
        Ok(reached) => reached,
        Err(error) => {
            debug!(%service, %port, client = %peer, %error, "closing the client connection");
            return;
        }
    };
    debug!(%service, %port, %endpoint, client = %peer, "forwarding connection");
    // Latency matters more than packet count for proxied request/response traffic.
    let _ = client.set_nodelay(true);
    let _ = backend.set_nodelay(true);
    tokio::select! {
        () = connections.cancelled() => {
            debug!(%service, %port, %endpoint, client = %peer, "connection closed by proxy shutdown");
        }
        copied = tokio::io::copy_bidirectional(&mut client, &mut backend) => match copied {
            Ok((sent, received)) => debug!(
                %service, %port, %endpoint, client = %peer, sent, received, "connection closed"
            ),
            Err(error) => debug!(
                %service, %port, %endpoint, client = %peer, %error, "connection ended with an error"
            ),
        },
    }
}
