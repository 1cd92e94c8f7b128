//! `gantry`: the command-line client and one-process dev cluster.
fn main() {}
