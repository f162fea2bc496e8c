//! A group of spawned tasks stopped together. (tokio's `JoinSet` has no madsim counterpart;
//! this works on both runtimes.)

use std::future::Future;
use tokio::task::{AbortHandle, JoinHandle};

/// Tasks spawned together and aborted together; dropping the group aborts them all.
#[derive(Debug, Default)]
pub(crate) struct TaskGroup {
    handles: Vec<JoinHandle<()>>,
}

impl TaskGroup {
    /// Spawns `task` into the group (forgetting tasks that have finished, so the group stays
    /// as large as what is running).
    pub(crate) fn spawn<F>(&mut self, task: F) -> AbortHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.handles.retain(|handle| !handle.is_finished());
        let handle = tokio::spawn(task);
        let abort = handle.abort_handle();
        self.handles.push(handle);
        abort
    }

    /// Aborts every task and waits until each has stopped (its resources are released).
    pub(crate) async fn shutdown(&mut self) {
        for handle in &self.handles {
            handle.abort();
        }
        for handle in self.handles.drain(..) {
            let _ = handle.await;
        }
    }
}

impl Drop for TaskGroup {
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}
