//! HTTP, TCP and exec probes; liveness and readiness workers.
