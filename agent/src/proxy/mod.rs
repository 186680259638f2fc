//! Userspace service proxy over services and endpoints.
