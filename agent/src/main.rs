//! skiff-agent binary.
fn main() {}
