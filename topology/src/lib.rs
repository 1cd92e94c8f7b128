//! CPU and memory topology through hwloc: packages, NUMA nodes, cores, cpusets, GPU locality. (Built by the GPU and NUMA issue.)
