//! The agent HTTP API: /healthz, /pods, /metrics.
