//! HTTP routing, discovery, content types, watches and Status errors.
