//! Helpers for end-to-end tests that start real skiff binaries against Docker, etcd and a
//! local registry.
