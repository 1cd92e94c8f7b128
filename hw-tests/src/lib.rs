//! Tests that need a real NVIDIA GPU; built everywhere, run on a GPU machine. (Built by the GPU and NUMA issue.)
