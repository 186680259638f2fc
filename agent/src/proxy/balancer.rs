//! Choosing the endpoint of a new connection: round robin, with optional `ClientIP` affinity.
//!
//! Pure and clock-free (callers pass `now`), so the choices are tested without sockets.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// How often at most expired affinities are swept out.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Where one client went last, for `ClientIP` session affinity.
#[derive(Clone, Copy, Debug)]
struct Affinity {
    /// The endpoint the client's last connection reached.
    backend: SocketAddr,
    /// When the client last connected; the affinity expires a timeout after it.
    last_used: Instant,
}

/// The endpoints of one service port and the state of the choice among them.
#[derive(Debug)]
pub struct Balancer {
    /// The ready endpoints, in the Endpoints object's order.
    backends: Vec<SocketAddr>,
    /// Index of the next round-robin choice.
    next: usize,
    /// The idle timeout of `ClientIP` affinity; None when the service has no affinity.
    affinity_timeout: Option<Duration>,
    /// Last endpoint per client IP, while affinity is on.
    clients: HashMap<IpAddr, Affinity>,
    /// When expired affinities were last swept out.
    last_prune: Option<Instant>,
}

impl Balancer {
    /// A balancer over `backends`; `affinity_timeout` turns on `ClientIP` affinity.
    pub fn new(backends: Vec<SocketAddr>, affinity_timeout: Option<Duration>) -> Self {
        Balancer {
            backends,
            next: 0,
            affinity_timeout,
            clients: HashMap::new(),
            last_prune: None,
        }
    }

    /// The current endpoints.
    pub fn backends(&self) -> &[SocketAddr] {
        &self.backends
    }

    /// Replaces the endpoints; affinities to endpoints that left are forgotten, the others kept.
    pub fn set_backends(&mut self, backends: Vec<SocketAddr>) {
        if backends == self.backends {
            return;
        }
        self.clients.retain(|_, a| backends.contains(&a.backend));
        self.next %= backends.len().max(1);
        self.backends = backends;
    }

    /// Turns `ClientIP` affinity on (with its idle timeout) or off.
    pub fn set_affinity(&mut self, timeout: Option<Duration>) {
        if timeout.is_none() {
            self.clients.clear();
        }
        self.affinity_timeout = timeout;
    }

    /// The endpoint to try next for a connection from `client`, leaving out those in `tried`
    /// (they refused or timed out); None when every endpoint has been tried.
    pub fn pick(
        &mut self,
        client: IpAddr,
        now: Instant,
        tried: &[SocketAddr],
    ) -> Option<SocketAddr> {
        if let Some(timeout) = self.affinity_timeout {
            self.prune(now, timeout);
            if let Some(a) = self.clients.get(&client)
                && now.saturating_duration_since(a.last_used) < timeout
                && !tried.contains(&a.backend)
                && self.backends.contains(&a.backend)
            {
                return Some(a.backend);
            }
        }
        let len = self.backends.len();
        for _ in 0..len {
            let candidate = self.backends.get(self.next % len).copied();
            self.next = (self.next + 1) % len;
            match candidate {
                Some(c) if !tried.contains(&c) => return Some(c),
                _ => {}
            }
        }
        None
    }

    /// Records that `client` reached `backend`, so affinity sends it there again.
    pub fn connected(&mut self, client: IpAddr, backend: SocketAddr, now: Instant) {
        if self.affinity_timeout.is_some() {
            self.clients.insert(
                client,
                Affinity {
                    backend,
                    last_used: now,
                },
            );
        }
    }

    /// How many clients currently have an affinity.
    pub fn affinity_count(&self) -> usize {
        self.clients.len()
    }

    /// Drops expired affinities, at most once per [`PRUNE_EVERY`].
    fn prune(&mut self, now: Instant, timeout: Duration) {
        let due = self
            .last_prune
            .is_none_or(|last| now.saturating_duration_since(last) >= PRUNE_EVERY.min(timeout));
        if due {
            self.clients
                .retain(|_, a| now.saturating_duration_since(a.last_used) < timeout);
            self.last_prune = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 168, 0, last])
    }

    /// Picks and connects `n` times for `client`, returning the ports reached.
    fn run(b: &mut Balancer, client: IpAddr, now: Instant, n: usize) -> Vec<u16> {
        (0..n)
            .map(|_| {
                let chosen = b.pick(client, now, &[]).unwrap();
                b.connected(client, chosen, now);
                chosen.port()
            })
            .collect()
    }

    #[test]
    fn round_robin_cycles_through_every_endpoint_in_order() {
        let mut b = Balancer::new(vec![sa(1), sa(2), sa(3)], None);
        let now = Instant::now();
        assert_eq!(run(&mut b, ip(1), now, 7), vec![1, 2, 3, 1, 2, 3, 1]);
        // Without affinity, a second client just continues the rotation.
        assert_eq!(run(&mut b, ip(2), now, 2), vec![2, 3]);
        assert_eq!(b.affinity_count(), 0);
    }

    #[test]
    fn no_endpoints_means_no_choice() {
        let mut b = Balancer::new(vec![], Some(Duration::from_secs(10)));
        assert_eq!(b.pick(ip(1), Instant::now(), &[]), None);
    }

    #[test]
    fn tried_endpoints_are_skipped_until_none_is_left() {
        let mut b = Balancer::new(vec![sa(1), sa(2), sa(3)], None);
        let now = Instant::now();
        let mut tried = Vec::new();
        while let Some(next) = b.pick(ip(1), now, &tried) {
            tried.push(next);
        }
        assert_eq!(tried, vec![sa(1), sa(2), sa(3)]);
        // The rotation continued past the refused endpoints.
        assert_eq!(b.pick(ip(1), now, &[sa(2)]), Some(sa(1)));
        assert_eq!(b.pick(ip(1), now, &[sa(2)]), Some(sa(3)));
    }

    #[test]
    fn changed_endpoints_apply_to_the_next_pick() {
        let mut b = Balancer::new(vec![sa(1), sa(2), sa(3)], None);
        let now = Instant::now();
        assert_eq!(run(&mut b, ip(1), now, 2), vec![1, 2]);
        b.set_backends(vec![sa(4)]);
        assert_eq!(run(&mut b, ip(1), now, 2), vec![4, 4]);
        b.set_backends(vec![sa(4), sa(5)]);
        let seen = run(&mut b, ip(1), now, 4);
        assert_eq!(seen.iter().filter(|p| **p == 4).count(), 2);
        assert_eq!(seen.iter().filter(|p| **p == 5).count(), 2);
    }

    #[test]
    fn client_ip_affinity_sticks_per_client_and_expires_when_idle() {
        let timeout = Duration::from_secs(100);
        let mut b = Balancer::new(vec![sa(1), sa(2), sa(3)], Some(timeout));
        let t0 = Instant::now();
        assert_eq!(run(&mut b, ip(1), t0, 3), vec![1, 1, 1]);
        assert_eq!(run(&mut b, ip(2), t0, 3), vec![2, 2, 2]);
        assert_eq!(run(&mut b, ip(3), t0, 1), vec![3]);
        // Each use refreshes the idle timer.
        let t1 = t0 + Duration::from_secs(90);
        assert_eq!(run(&mut b, ip(1), t1, 1), vec![1]);
        let t2 = t1 + Duration::from_secs(90);
        assert_eq!(run(&mut b, ip(1), t2, 1), vec![1]);
        // ip(2) has been idle for 180 s: it goes wherever round robin says and sticks there.
        let again = run(&mut b, ip(2), t2, 2);
        assert_eq!(again[0], again[1]);
        assert_eq!(b.pick(ip(2), t2, &[]).unwrap().port(), again[0]);
    }

    #[test]
    fn affinity_moves_when_its_endpoint_leaves_or_refuses() {
        let mut b = Balancer::new(vec![sa(1), sa(2)], Some(Duration::from_secs(100)));
        let now = Instant::now();
        assert_eq!(run(&mut b, ip(1), now, 1), vec![1]);
        // The endpoint refuses: the next one is tried and becomes the affinity.
        let first = b.pick(ip(1), now, &[]).unwrap();
        assert_eq!(first, sa(1));
        let second = b.pick(ip(1), now, &[first]).unwrap();
        assert_eq!(second, sa(2));
        b.connected(ip(1), second, now);
        assert_eq!(run(&mut b, ip(1), now, 2), vec![2, 2]);
        // The endpoint leaves the set: its clients are forgotten and rebalanced.
        b.set_backends(vec![sa(1), sa(3)]);
        assert_eq!(b.affinity_count(), 0);
        let moved = run(&mut b, ip(1), now, 3);
        assert!(moved[0] == 1 || moved[0] == 3);
        assert!(moved.iter().all(|p| *p == moved[0]));
    }

    #[test]
    fn turning_affinity_off_forgets_clients() {
        let mut b = Balancer::new(vec![sa(1), sa(2)], Some(Duration::from_secs(100)));
        let now = Instant::now();
        assert_eq!(run(&mut b, ip(1), now, 2), vec![1, 1]);
        b.set_affinity(None);
        assert_eq!(b.affinity_count(), 0);
        assert_eq!(run(&mut b, ip(1), now, 2), vec![2, 1]);
    }

    #[test]
    fn expired_affinities_are_swept_out() {
        let timeout = Duration::from_secs(10);
        let mut b = Balancer::new(vec![sa(1)], Some(timeout));
        let t0 = Instant::now();
        for last in 1..=5 {
            run(&mut b, ip(last), t0, 1);
        }
        assert_eq!(b.affinity_count(), 5);
        let later = t0 + Duration::from_secs(11);
        run(&mut b, ip(9), later, 1);
        assert_eq!(b.affinity_count(), 1);
    }
}
