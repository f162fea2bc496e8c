//! The event queue: every future happening of a run, ordered by `(time, sequence number)`.
//!
//! Two events at the same virtual time run in the order they were scheduled (the sequence number
//! breaks the tie), so the order never depends on heap internals, addresses or hashing.

use crate::clock::SimTime;
use crate::network::InFlight;
use crate::service::{ClientId, RpcError};
use raft::NodeId;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::task::Waker;

/// One incarnation of a node: bumped every time the node crashes, so events aimed at an earlier
/// incarnation (its ticks, messages to and from it) are recognised as stale.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Incarnation(pub u32);

/// A task of the scenario's executor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub u64);

/// Something scheduled to happen at a virtual time.
#[derive(Debug)]
pub enum Event {
    /// A node's clock ticks (ignored if the node has crashed since it was scheduled).
    Tick {
        /// The node.
        node: NodeId,
        /// The incarnation the tick belongs to.
        incarnation: Incarnation,
    },
    /// A message arrives (if its link and both endpoints are still the same).
    Deliver(InFlight),
    /// A client's request reaches its server.
    RpcRequest(RpcRequest),
    /// A client call completes (a reply or a failure reaches the caller).
    RpcDone {
        /// The call.
        rpc: u64,
        /// The calling client.
        client: ClientId,
        /// The server called.
        server: NodeId,
        /// What the caller gets.
        result: Result<Vec<u8>, RpcError>,
    },
    /// A server gives up on a request it proposed (it answers `Timeout`).
    RpcExpire {
        /// The server.
        server: NodeId,
        /// The call.
        rpc: u64,
    },
    /// A sleeping task's timer fires.
    Wake {
        /// The task that slept.
        task: TaskId,
        /// How to wake it.
        waker: Waker,
    },
}

/// A client request on its way to a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcRequest {
    /// The call.
    pub rpc: u64,
    /// The calling client.
    pub client: ClientId,
    /// The server called.
    pub server: NodeId,
    /// The server's incarnation when the call was made (a restarted server never sees it).
    pub server_incarnation: Incarnation,
    /// The command to propose.
    pub request: Vec<u8>,
}

/// An event with its place in the order.
#[derive(Debug)]
pub struct Scheduled {
    /// When it happens.
    pub at: SimTime,
    /// Its position among events at the same time (unique per run).
    pub seq: u64,
    /// What happens.
    pub event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Scheduled) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Scheduled) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Scheduled) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The queue was asked to hold more events than its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the event queue is full ({limit} pending events)")]
pub struct QueueFull {
    /// The limit that was hit.
    pub limit: usize,
}

/// A min-queue of events by `(time, sequence number)`, with a bound on its length.
#[derive(Debug)]
pub struct EventQueue {
    /// `(time, sequence number, slot in `events`)`: small keys, so sifting moves 24 bytes per
    /// step rather than whole events.
    heap: BinaryHeap<Reverse<(SimTime, u64, usize)>>,
    /// The pending events, by slot; `None` marks a free slot.
    events: Vec<Option<Event>>,
    /// Free slots of `events`, reused before it grows.
    free: Vec<usize>,
    next_seq: u64,
    pending_max: usize,
}

impl EventQueue {
    /// An empty queue holding at most `pending_max` events.
    #[must_use]
    pub fn new(pending_max: usize) -> EventQueue {
        EventQueue {
            heap: BinaryHeap::with_capacity(pending_max.min(1024)),
            events: Vec::with_capacity(pending_max.min(1024)),
            free: Vec::new(),
            next_seq: 0,
            pending_max,
        }
    }

    /// Schedules `event` at `at`. Events at equal times keep their scheduling order.
    pub fn push(&mut self, at: SimTime, event: Event) -> Result<(), QueueFull> {
        if self.heap.len() >= self.pending_max {
            return Err(QueueFull {
                limit: self.pending_max,
            });
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.events[slot] = Some(event);
                slot
            }
            None => {
                self.events.push(Some(event));
                self.events.len() - 1
            }
        };
        self.heap.push(Reverse((at, seq, slot)));
        Ok(())
    }

    /// Removes and returns the earliest event.
    pub fn pop(&mut self) -> Option<Scheduled> {
        let Reverse((at, seq, slot)) = self.heap.pop()?;
        let event = self.events.get_mut(slot).and_then(Option::take)?;
        self.free.push(slot);
        Some(Scheduled { at, seq, event })
    }

    /// The time of the earliest event.
    #[must_use]
    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// How many events are pending.
    #[must_use]
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is pending.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(node: u32) -> Event {
        Event::Tick {
            node: NodeId(node),
            incarnation: Incarnation(0),
        }
    }

    fn node_of(scheduled: &Scheduled) -> u32 {
        match &scheduled.event {
            Event::Tick { node, .. } => node.0,
            _ => u32::MAX,
        }
    }

    #[test]
    fn orders_by_time_then_insertion() {
        let mut queue = EventQueue::new(16);
        queue.push(SimTime(5), tick(0)).unwrap();
        queue.push(SimTime(3), tick(1)).unwrap();
        queue.push(SimTime(5), tick(2)).unwrap();
        queue.push(SimTime(3), tick(3)).unwrap();
        let order: Vec<u32> = std::iter::from_fn(|| queue.pop())
            .map(|s| node_of(&s))
            .collect();
        assert_eq!(order, vec![1, 3, 0, 2]);
    }

    #[test]
    fn reused_slots_keep_time_then_insertion_order() {
        let mut queue = EventQueue::new(16);
        queue.push(SimTime(4), tick(0)).unwrap();
        queue.push(SimTime(2), tick(1)).unwrap();
        assert_eq!(queue.pop().map(|s| node_of(&s)), Some(1));
        // Reuses the slot node 1 left, yet sorts after the earlier-pushed node 0.
        queue.push(SimTime(4), tick(2)).unwrap();
        queue.push(SimTime(3), tick(3)).unwrap();
        assert_eq!(queue.peek_time(), Some(SimTime(3)));
        let order: Vec<(u64, u32)> = std::iter::from_fn(|| queue.pop())
            .map(|s| (s.at.0, node_of(&s)))
            .collect();
        assert_eq!(order, vec![(3, 3), (4, 0), (4, 2)]);
        assert!(queue.is_empty());
        assert_eq!(
            queue.events.len(),
            3,
            "slots are reused before the store grows"
        );
    }

    #[test]
    fn refuses_beyond_limit() {
        let mut queue = EventQueue::new(2);
        queue.push(SimTime(1), tick(0)).unwrap();
        queue.push(SimTime(1), tick(0)).unwrap();
        assert_eq!(queue.push(SimTime(1), tick(0)), Err(QueueFull { limit: 2 }));
    }
}
