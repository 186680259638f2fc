//! Last-known desired state on disk, for running while a source is away.
