//! Finding a task's container again: by its id after an agent restart (still running, or how it
//! ended), or by the task's label when the agent died before it checkpointed the container; and
//! how an ended container's state reads as the task's termination.

use super::create::TASK_LABEL;
use crate::containerizer::Termination;
use bollard::models::ContainerState;
use bollard::query_parameters::ListContainersOptions;
use bollard::Docker;
use gantry_proto::Reason;
use std::collections::HashMap;

/// What the daemon says of a container.
#[derive(Debug, PartialEq)]
pub enum Found {
    Running,
    Ended(Termination),
    /// The daemon does not know it (removed from outside).
    Gone,
    /// The daemon did not answer.
    Unreachable(String),
}

/// Inspects container `id`.
pub async fn inspect(docker: &Docker, id: &str) -> Found {
    match docker.inspect_container(id, None).await {
        Ok(c) => match c.state {
            Some(s) if s.running == Some(true) || s.restarting == Some(true) => Found::Running,
            Some(s) => Found::Ended(termination(&s)),
            None => Found::Ended(termination(&ContainerState::default())),
        },
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Found::Gone,
        Err(e) => Found::Unreachable(e.to_string()),
    }
}

/// How an ended container ended.
pub fn termination(s: &ContainerState) -> Termination {
    let code = s.exit_code.and_then(|c| i32::try_from(c).ok());
    let oom = s.oom_killed == Some(true);
    let mut message = match code {
        Some(c) => format!("Docker container exited with status {c}"),
        None => "Docker container ended without an exit status".to_string(),
    };
    if let Some(c) = code.filter(|c| (129..=192).contains(c)) {
        message.push_str(&format!(" (killed by signal {})", c - 128));
    }
    if oom {
        message.push_str("; it ran out of memory (OOM killed)");
    }
    if let Some(e) = s.error.as_deref().filter(|e| !e.is_empty()) {
        message.push_str(&format!("; Docker: {e}"));
    }
    Termination {
        exit_code: code,
        signal: None,
        limitation: oom.then_some(Reason::ReasonContainerLimitationMemory),
        message,
    }
}

/// The termination of a container that vanished from the daemon.
pub fn gone() -> Termination {
    Termination {
        exit_code: None,
        signal: None,
        limitation: None,
        message: "The task's Docker container is gone (removed outside Gantry)".into(),
    }
}

/// Ids of every container (running or not) labelled with `task_id`.
pub async fn containers_of(docker: &Docker, task_id: &str) -> Result<Vec<String>, String> {
    let mut filters = HashMap::new();
    filters.insert("label".to_string(), vec![format!("{TASK_LABEL}={task_id}")]);
    let opts = ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..ListContainersOptions::default()
    };
    let list = docker
        .list_containers(Some(opts))
        .await
        .map_err(|e| e.to_string())?;
    Ok(list.into_iter().filter_map(|c| c.id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn killed_and_oom_containers_say_so() {
        let t = termination(&ContainerState {
            exit_code: Some(137),
            ..ContainerState::default()
        });
        assert_eq!(t.exit_code, Some(137));
        assert!(t.message.contains("signal 9"), "{}", t.message);
        let t = termination(&ContainerState {
            exit_code: Some(137),
            oom_killed: Some(true),
            ..ContainerState::default()
        });
        assert_eq!(t.limitation, Some(Reason::ReasonContainerLimitationMemory));
        assert!(termination(&ContainerState {
            exit_code: Some(0),
            ..ContainerState::default()
        })
        .succeeded());
    }
}
