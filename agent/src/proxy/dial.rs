//! Reaching an endpoint for a new connection: the balancer's choice first, then the next
//! ones when an endpoint refuses or does not answer in time.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tracing::debug;

use super::backends::ServicePortKey;
use super::balancer::Balancer;
use super::error::ForwardError;

/// Connects to the endpoint the balancer picks for `client`, skipping endpoints that refuse
/// or do not connect within `timeout`, until one works or all have been tried.
pub(crate) async fn dial<C, F, S>(
    key: &ServicePortKey,
    balancer: &Mutex<Balancer>,
    client: IpAddr,
    timeout: Duration,
    mut connect: C,
) -> Result<(S, SocketAddr), ForwardError>
where
    C: FnMut(SocketAddr) -> F,
    F: Future<Output = io::Result<S>>,
{
    let mut tried: Vec<SocketAddr> = Vec::new();
    loop {
        let Some(endpoint) = lock(balancer).pick(client, Instant::now(), &tried) else {
            return Err(if tried.is_empty() {
                ForwardError::NoEndpoints {
                    service: key.service(),
                    port: key.port_label(),
                }
            } else {
                ForwardError::AllEndpointsFailed {
                    service: key.service(),
                    port: key.port_label(),
                    tried,
                }
            });
        };
        match tokio::time::timeout(timeout, connect(endpoint)).await {
            Ok(Ok(stream)) => {
                lock(balancer).connected(client, endpoint, Instant::now());
                return Ok((stream, endpoint));
            }
            Ok(Err(error)) => debug!(
                service = %key.service(),
                port = %key.port_label(),
                endpoint = %endpoint,
                error = %error,
                "endpoint refused the connection, trying the next"
            ),
            Err(_) => debug!(
                service = %key.service(),
                port = %key.port_label(),
                endpoint = %endpoint,
                timeout_ms = timeout.as_millis(),
                "endpoint did not connect in time, trying the next"
            ),
        }
        tried.push(endpoint);
    }
}

/// A plain TCP connect, the connector used outside tests.
pub(crate) async fn connect_tcp(endpoint: SocketAddr) -> io::Result<TcpStream> {
    TcpStream::connect(endpoint).await
}

/// Takes the balancer's lock; its critical sections cannot panic half-way, so poison is ignored.
pub(crate) fn lock(balancer: &Mutex<Balancer>) -> MutexGuard<'_, Balancer> {
    balancer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn key() -> ServicePortKey {
        ServicePortKey {
            namespace: "default".into(),
            name: "web".into(),
            port_name: "http".into(),
            listen_port: 8080,
        }
    }

    fn sa(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 1));

    /// A fake connector: `refusing` ports fail at once, `hanging` ports never answer,
    /// others succeed with their own address; every attempt is recorded.
    fn connector(
        refusing: &'static [u16],
        hanging: &'static [u16],
        attempts: &Mutex<Vec<u16>>,
    ) -> impl FnMut(SocketAddr) -> std::pin::Pin<Box<dyn Future<Output = io::Result<SocketAddr>>>>
    {
        move |addr: SocketAddr| {
            attempts.lock().unwrap().push(addr.port());
            Box::pin(async move {
                if refusing.contains(&addr.port()) {
                    Err(io::Error::from(io::ErrorKind::ConnectionRefused))
                } else if hanging.contains(&addr.port()) {
                    std::future::pending().await
                } else {
                    Ok(addr)
                }
            })
        }
    }

    #[tokio::test]
    async fn refused_and_silent_endpoints_are_skipped() {
        let balancer = Mutex::new(Balancer::new(vec![sa(1), sa(2), sa(3)], None));
        let attempts = Mutex::new(Vec::new());
        let timeout = Duration::from_millis(50);
        let mut reached = Vec::new();
        for _ in 0..3 {
            let (stream, endpoint) = dial(
                &key(),
                &balancer,
                CLIENT,
                timeout,
                connector(&[1], &[2], &attempts),
            )
            .await
            .unwrap();
            assert_eq!(stream, endpoint);
            reached.push(endpoint.port());
        }
        assert_eq!(reached, vec![3, 3, 3]);
        assert_eq!(
            attempts.lock().unwrap().clone(),
            vec![1, 2, 3, 1, 2, 3, 1, 2, 3]
        );
    }

    #[tokio::test]
    async fn every_endpoint_failing_is_an_error_naming_them() {
        let balancer = Mutex::new(Balancer::new(vec![sa(1), sa(2)], None));
        let attempts = Mutex::new(Vec::new());
        let err = dial(
            &key(),
            &balancer,
            CLIENT,
            Duration::from_millis(20),
            connector(&[1], &[2], &attempts),
        )
        .await
        .unwrap_err();
        match err {
            ForwardError::AllEndpointsFailed { tried, .. } => {
                assert_eq!(
                    tried.into_iter().collect::<HashSet<_>>(),
                    HashSet::from([sa(1), sa(2)])
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        let empty = Mutex::new(Balancer::new(vec![], None));
        let err = dial(
            &key(),
            &empty,
            CLIENT,
            Duration::from_millis(20),
            connector(&[], &[], &attempts),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ForwardError::NoEndpoints { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn affinity_follows_the_endpoint_that_answered() {
        let balancer = Mutex::new(Balancer::new(
            vec![sa(1), sa(2), sa(3)],
            Some(Duration::from_secs(60)),
        ));
        let attempts = Mutex::new(Vec::new());
        let timeout = Duration::from_millis(50);
        for _ in 0..3 {
            let (_, endpoint) = dial(
                &key(),
                &balancer,
                CLIENT,
                timeout,
                connector(&[1], &[], &attempts),
            )
            .await
            .unwrap();
            assert_eq!(endpoint, sa(2));
        }
        // Refused once, then the client stuck to the endpoint that answered.
        assert_eq!(attempts.lock().unwrap().clone(), vec![1, 2, 2, 2]);
    }
}
