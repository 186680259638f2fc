//! Validation that accumulates every error with its field path.
