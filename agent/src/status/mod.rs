//! Pod and node status reporting to the controlplane.
