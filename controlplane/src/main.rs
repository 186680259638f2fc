//! skiff-controlplane binary.
fn main() {}
