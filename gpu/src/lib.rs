//! NVIDIA GPUs: discovery through NVML behind a trait, a fixture-backed inventory, device-cgroup rules, GPU selection. (Built by the GPU and NUMA issue.)
