//! Criterion benchmarks: next occurrence for many schedules, ready children in a large DAG.
fn main() {}
