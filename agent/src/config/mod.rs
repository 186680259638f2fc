//! Desired-state sources: the manifest directory and the controlplane, merged.
