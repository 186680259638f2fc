//! What the transport knows about the peer of a request; the server puts one [`PeerInfo`]
//! into every request's extensions, and authentication starts from it.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;

/// The connection a request arrived on.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// The client's address.
    pub remote: SocketAddr,
    /// How the connection is secured, and the client certificate it presented.
    pub transport: Transport,
}

/// How a connection is secured.
#[derive(Clone, Debug)]
pub enum Transport {
    /// `--insecure-http`: plain HTTP on loopback only, trusted as the admin (tests, local use).
    InsecureLoopback,
    /// TLS; the client's certificate chain when it sent one (already verified by rustls
    /// against the trusted client CAs).
    Tls {
        /// Leaf first, as the client sent it.
        client_chain: Option<Arc<Vec<CertificateDer<'static>>>>,
    },
}

impl PeerInfo {
    /// A loopback peer on the insecure listener (what tests of the router insert).
    pub fn insecure_loopback() -> Self {
        PeerInfo {
            remote: SocketAddr::from(([127, 0, 0, 1], 0)),
            transport: Transport::InsecureLoopback,
        }
    }
}
