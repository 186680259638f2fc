//! Replication, endpoints and node lifecycle controllers, all API clients.
