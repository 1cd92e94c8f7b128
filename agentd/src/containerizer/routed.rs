//! Two back ends behind one `Containerizer`: tasks with a `container.docker` (and checkpoints of
//! Docker containers) go to the Docker containerizer, every other task to the agent's default
//! (native or process), as Mesos's `--containerizers=mesos,docker` does.

use super::docker::{DockerContainerizer, CHECKPOINT_PREFIX};
use super::{
    BoxFuture, Checkpoint, ContainerError, Containerizer, LaunchSpec, Recovered, RunAs,
    Termination, Usage,
};
use gantry_proto::TaskInfo;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The default back end with Docker next to it.
pub struct RoutedContainerizer {
    default: Arc<dyn Containerizer>,
    docker: Arc<DockerContainerizer>,
}

impl RoutedContainerizer {
    pub fn new(default: Arc<dyn Containerizer>, docker: Arc<DockerContainerizer>) -> Self {
        Self { default, docker }
    }

    fn for_task(&self, task: &TaskInfo) -> &dyn Containerizer {
        if task.container.docker.is_some() {
            self.docker.as_ref()
        } else {
            self.default.as_ref()
        }
    }

    fn for_ckpt(&self, ckpt: &Checkpoint) -> &dyn Containerizer {
        if ckpt.container_id.starts_with(CHECKPOINT_PREFIX) {
            self.docker.as_ref()
        } else {
            self.default.as_ref()
        }
    }
}

impl Containerizer for RoutedContainerizer {
    fn name(&self) -> &'static str {
        self.default.name()
    }
    fn names(&self) -> Vec<&'static str> {
        vec![self.default.name(), self.docker.name()]
    }
    fn run_as(&self, task: &TaskInfo) -> Result<RunAs, ContainerError> {
        self.for_task(task).run_as(task)
    }
    fn launch(&self, spec: &LaunchSpec) -> Result<Checkpoint, ContainerError> {
        self.for_task(&spec.task).launch(spec)
    }
    fn wait(&self, ckpt: &Checkpoint) -> BoxFuture<Termination> {
        self.for_ckpt(ckpt).wait(ckpt)
    }
    fn kill(&self, ckpt: &Checkpoint, grace: Duration) -> BoxFuture<()> {
        self.for_ckpt(ckpt).kill(ckpt, grace)
    }
    fn recover(&self, ckpt: &Checkpoint) -> Recovered {
        self.for_ckpt(ckpt).recover(ckpt)
    }
    fn usage(&self, ckpt: &Checkpoint) -> Result<Usage, ContainerError> {
        self.for_ckpt(ckpt).usage(ckpt)
    }
    fn cleanup(&self, ckpt: &Checkpoint) {
        self.for_ckpt(ckpt).cleanup(ckpt)
    }
    fn destroy_unrecorded(&self, task: &TaskInfo, meta_dir: &Path) {
        self.for_task(task).destroy_unrecorded(task, meta_dir)
    }
}
