//! Placement benchmark (filled in by the allocator work).
fn main() {}
