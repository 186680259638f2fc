//! Polling with deadlines, jitter and exponential backoff.
