//! The skiff controlplane.
