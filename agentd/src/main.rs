//! gantry-agentd: the agent daemon.
fn main() {}
