//! Helpers shared by the controlplane integration tests.

pub mod etcd;
