//! A single-threaded executor for scenario code: the test body and the clients it spawns are
//! `async` tasks that sleep in virtual time. No OS threads: a task runs only when the run loop
//! polls it, between two events of the cluster, in the order tasks were woken.
//!
//! Wakers are `Arc`-based because `std::task::Waker` requires `Send + Sync`; the mutex they lock
//! is never contended (there is one thread).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use crate::engine::TaskId;

type Task = Pin<Box<dyn Future<Output = ()>>>;

/// The queue of woken tasks, shared with their wakers.
#[derive(Debug, Default)]
struct ReadyQueue(Mutex<VecDeque<u64>>);

impl ReadyQueue {
    fn push(&self, task: u64) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(task);
    }

    fn pop(&self) -> Option<u64> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }

    fn clear(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

struct TaskWaker {
    task: u64,
    ready: Arc<ReadyQueue>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.ready.push(self.task);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.push(self.task);
    }
}

struct Inner {
    /// Tasks by id; a finished task's slot is `None`.
    tasks: RefCell<Vec<Option<Task>>>,
    /// Wakers by task id (made once per task).
    wakers: RefCell<Vec<Waker>>,
    ready: Arc<ReadyQueue>,
    /// The task being polled.
    current: Cell<TaskId>,
}

/// The executor of one run. Cloning shares it.
#[derive(Clone)]
pub struct Executor {
    inner: Rc<Inner>,
}

impl Default for Executor {
    fn default() -> Executor {
        Executor::new()
    }
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("tasks", &self.inner.tasks.borrow().len())
            .finish()
    }
}

/// Whether the main task has finished.
#[derive(Clone, Debug, Default)]
pub struct MainHandle {
    done: Rc<Cell<bool>>,
}

impl MainHandle {
    /// True once the scenario's body has returned.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.done.get()
    }
}

impl Executor {
    /// An executor with no tasks.
    #[must_use]
    pub fn new() -> Executor {
        Executor {
            inner: Rc::new(Inner {
                tasks: RefCell::new(Vec::new()),
                wakers: RefCell::new(Vec::new()),
                ready: Arc::new(ReadyQueue::default()),
                current: Cell::new(TaskId(0)),
            }),
        }
    }

    /// Adds a task and marks it ready; tasks are numbered in spawn order.
    pub fn spawn(&self, future: impl Future<Output = ()> + 'static) -> TaskId {
        let mut tasks = self.inner.tasks.borrow_mut();
        let id = tasks.len() as u64;
        tasks.push(Some(Box::pin(future)));
        self.inner
            .wakers
            .borrow_mut()
            .push(Waker::from(Arc::new(TaskWaker {
                task: id,
                ready: Arc::clone(&self.inner.ready),
            })));
        self.inner.ready.push(id);
        TaskId(id)
    }

    /// Spawns the scenario's body; the handle says when it has finished.
    pub fn spawn_main<F>(&self, body: F, on_done: impl FnOnce(F::Output) + 'static) -> MainHandle
    where
        F: Future + 'static,
    {
        let handle = MainHandle::default();
        let done = Rc::clone(&handle.done);
        self.spawn(async move {
            let output = body.await;
            on_done(output);
            done.set(true);
        });
        handle
    }

    /// The task being polled (the one a timer must wake).
    #[must_use]
    pub fn current(&self) -> TaskId {
        self.inner.current.get()
    }

    /// Polls every woken task, including tasks woken or spawned while polling, until none is
    /// ready.
    pub fn poll_ready(&self) {
        while let Some(id) = self.inner.ready.pop() {
            let Ok(slot) = usize::try_from(id) else {
                continue;
            };
            // Take the task out so it can spawn others while it runs.
            let Some(mut task) = self
                .inner
                .tasks
                .borrow_mut()
                .get_mut(slot)
                .and_then(Option::take)
            else {
                continue; // Finished, or already being polled (a duplicate wake).
            };
            let waker = self.inner.wakers.borrow()[slot].clone();
            self.inner.current.set(TaskId(id));
            let mut context = Context::from_waker(&waker);
            if task.as_mut().poll(&mut context).is_pending() {
                self.inner.tasks.borrow_mut()[slot] = Some(task);
            }
        }
    }

    /// Drops every task (they hold the tester, which holds this executor: dropping them breaks
    /// the cycle).
    pub fn shutdown(&self) {
        let tasks = std::mem::take(&mut *self.inner.tasks.borrow_mut());
        drop(tasks);
        self.inner.wakers.borrow_mut().clear();
        self.inner.ready.clear();
    }
}

/// The result slot of a spawned task.
struct JoinState<T> {
    result: Option<T>,
    finished: bool,
    waiter: Option<Waker>,
}

/// Awaits a spawned task's result (`None` if the task failed; its failure ends the run).
pub struct JoinHandle<T> {
    state: Rc<RefCell<JoinState<T>>>,
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.state.borrow().finished)
            .finish()
    }
}

impl<T> JoinHandle<T> {
    /// True once the task has returned.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.state.borrow().finished
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.state.borrow_mut();
        if state.finished {
            return Poll::Ready(state.result.take());
        }
        state.waiter = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Executor {
    /// Spawns `future`; its output (when `Some`) is handed to the [`JoinHandle`].
    pub fn spawn_joinable<T: 'static>(
        &self,
        future: impl Future<Output = Option<T>> + 'static,
    ) -> JoinHandle<T> {
        let state = Rc::new(RefCell::new(JoinState {
            result: None,
            finished: false,
            waiter: None,
        }));
        let shared = Rc::clone(&state);
        self.spawn(async move {
            let result = future.await;
            let waiter = {
                let mut state = shared.borrow_mut();
                state.result = result;
                state.finished = true;
                state.waiter.take()
            };
            if let Some(waiter) = waiter {
                waiter.wake();
            }
        });
        JoinHandle { state }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields once: pending on the first poll (waking itself), ready on the second.
    struct YieldOnce(bool);

    impl Future for YieldOnce {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[test]
    fn tasks_run_in_wake_order_and_join_returns_results() {
        let executor = Executor::new();
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut handles = Vec::new();
        for i in 0..3 {
            let log = Rc::clone(&log);
            handles.push(executor.spawn_joinable(async move {
                log.borrow_mut().push(i);
                YieldOnce(false).await;
                log.borrow_mut().push(10 + i);
                Some(i * 2)
            }));
        }
        let total = Rc::new(Cell::new(0));
        let sum = Rc::clone(&total);
        let main = executor.spawn_main(
            async move {
                let mut acc = 0;
                for handle in handles {
                    acc += handle.await.unwrap_or(100);
                }
                acc
            },
            move |acc| sum.set(acc),
        );
        executor.poll_ready();
        assert!(main.is_finished());
        assert_eq!(total.get(), 6);
        assert_eq!(*log.borrow(), vec![0, 1, 2, 10, 11, 12]);
        executor.shutdown();
    }
}
