//! gantry-masterd: the master daemon.
fn main() {}
