//! Pod workers: desired versus actual, create/kill/restart, restart policy, backoff.
