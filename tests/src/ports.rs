//! Free loopback ports, so parallel tests never share a listen address.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;

/// Ports this test process already handed out; never hand one out twice.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A TCP port on 127.0.0.1 that was free a moment ago and that no other caller in this process
/// has received. Panics when no port can be bound.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .unwrap_or_else(|err| panic!("cannot bind 127.0.0.1:0 to find a free port: {err}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|err| panic!("cannot read the address of a bound socket: {err}"))
            .port();
        let mut handed_out = HANDED_OUT
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if handed_out.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
    panic!("no fresh free port on 127.0.0.1 after 100 attempts");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_bindable_and_distinct() {
        let a = free_port();
        let b = free_port();
        assert_ne!(a, b);
        assert_ne!(a, 0);
        TcpListener::bind(("127.0.0.1", a)).expect("port should be free");
    }
}
