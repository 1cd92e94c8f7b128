//! gantry-agentd as a library: the agent's parts, so that `gantry dev` and tests can embed it.

pub mod containerizer;
