//! The simulated network: one-way messages with delays, drops, duplication, reordering,
//! per-node connectivity and per-link cuts, and the labs' RPC and byte counters.
//!
//! The core sends one-way messages; the network knows requests from replies
//! ([`raft::Payload::is_request`]) and treats them as the labs' RPC layers treat calls and their
//! answers. A message is delivered only if its link is up when it is sent *and* when it arrives,
//! and neither endpoint has crashed or restarted in between (the cluster checks incarnations).
//!
//! # Latency
//!
//! Every profile has a small fixed latency of [`BASE_LATENCY_US`] (500 µs) for messages the lab
//! does not delay, standing in for labrpc's goroutine hand-off. The unreliable profiles delay
//! *requests* uniformly in 0..=26 ms instead (labrpc's and SJTU rpcs' `rand() % 27` ms, drawn in
//! microseconds), and replies keep the base latency. With long reordering on, 600 of every 900
//! replies are held for `200 + U[0, 1 + U[0, 2000))` ms, exactly as labrpc does.

use crate::clock::{SimTime, US_PER_MS};
use crate::engine::Incarnation;
use crate::rng::SimRng;
use raft::{Message, NodeId};
use serde::Serialize;

/// The latency of a message the profile does not otherwise delay.
pub const BASE_LATENCY_US: u64 = 500;

/// What happens to messages of one class (requests or replies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkFaults {
    /// Shortest delay, in microseconds.
    pub delay_us_min: u64,
    /// Longest delay, in microseconds (uniform between min and max, inclusive).
    pub delay_us_max: u64,
    /// Chance of losing a message, per mille.
    pub drop_per_mille: u32,
    /// Chance of delivering a second copy (with its own delay), per mille.
    pub dup_per_mille: u32,
}

impl LinkFaults {
    /// No faults: the base latency only.
    pub const RELIABLE: LinkFaults = LinkFaults {
        delay_us_min: BASE_LATENCY_US,
        delay_us_max: BASE_LATENCY_US,
        drop_per_mille: 0,
        dup_per_mille: 0,
    };
}

/// Extra delays that reorder messages beyond a profile's own spread: each message, with chance
/// `per_mille`, is held back by a further `U[0, delay_us_max]`. Off by default; the swarm
/// scenarios turn it on. A disabled reorder draws no randomness, so runs without it are
/// unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reorder {
    /// Chance that a message (or a duplicate copy) is held back, per mille.
    pub per_mille: u32,
    /// The longest extra delay, in microseconds.
    pub delay_us_max: u64,
}

impl Reorder {
    /// No extra reordering.
    pub const OFF: Reorder = Reorder {
        per_mille: 0,
        delay_us_max: 0,
    };
}

/// A named fault profile for the whole network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkProfile {
    /// A short name for traces and reports.
    pub name: &'static str,
    /// Faults applied to requests (RequestVote, AppendEntries, InstallSnapshot).
    pub request: LinkFaults,
    /// Faults applied to replies.
    pub reply: LinkFaults,
}

impl NetworkProfile {
    /// labrpc with `reliable = true`: every message arrives after the base latency.
    pub const MIT_RELIABLE: NetworkProfile = NetworkProfile {
        name: "mit-reliable",
        request: LinkFaults::RELIABLE,
        reply: LinkFaults::RELIABLE,
    };

    /// labrpc with `reliable = false`: requests wait 0–26 ms, then 10 % are dropped before the
    /// handler runs; 10 % of replies are dropped after it ran.
    pub const MIT_UNRELIABLE: NetworkProfile = NetworkProfile {
        name: "mit-unreliable",
        request: LinkFaults {
            delay_us_min: 0,
            delay_us_max: 26 * US_PER_MS,
            drop_per_mille: 100,
            dup_per_mille: 0,
        },
        reply: LinkFaults {
            drop_per_mille: 100,
            ..LinkFaults::RELIABLE
        },
    };

    /// SJTU rpcs, reliable: the base latency only.
    pub const SJTU_RELIABLE: NetworkProfile = NetworkProfile {
        name: "sjtu-reliable",
        request: LinkFaults::RELIABLE,
        reply: LinkFaults::RELIABLE,
    };

    /// SJTU rpcs with `reliable = false`: requests wait 0–26 ms and 10 % are dropped; replies are
    /// never dropped.
    pub const SJTU_UNRELIABLE: NetworkProfile = NetworkProfile {
        name: "sjtu-unreliable",
        request: LinkFaults {
            delay_us_min: 0,
            delay_us_max: 26 * US_PER_MS,
            drop_per_mille: 100,
            dup_per_mille: 0,
        },
        reply: LinkFaults::RELIABLE,
    };
}

/// Why a message was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum LostReason {
    /// The link was down (a disconnected endpoint or a cut link), at send or at delivery.
    LinkDown,
    /// The profile dropped it.
    Dropped,
    /// The receiver was down, or has crashed or restarted since the message was sent.
    ReceiverGone,
    /// The sender has crashed or restarted since it sent the message.
    SenderGone,
}

/// A message on its way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlight {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The sender's incarnation when it sent the message.
    pub from_incarnation: Incarnation,
    /// The incarnation the message is addressed to: the receiver's at send time, or, for a
    /// reply, the incarnation that sent the request (a reply never reaches a later one).
    pub to_incarnation: Incarnation,
    /// When it was sent.
    pub sent_at: SimTime,
    /// Its postcard size in bytes.
    pub bytes: u64,
    /// The message.
    pub message: Message,
}

/// The network's decision for one message at send time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Not delivered.
    Lost(LostReason),
    /// Delivered after `delay_us`, and a second copy after `duplicate_delay_us` if set.
    Deliver {
        /// The delay of the first copy.
        delay_us: u64,
        /// The delay of a duplicate, if the message is duplicated.
        duplicate_delay_us: Option<u64>,
    },
}

/// The labs' counters, plus totals for reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// MIT `rpcCount(i)`: requests delivered to node i's current incarnation.
    pub delivered_requests: Vec<u64>,
    /// SJTU `rpc_count`: request send attempts by node i's current incarnation (every attempt,
    /// including those to disabled or crashed nodes).
    pub attempted_requests: Vec<u64>,
    /// MIT `GetTotalCount`: every request send attempt, network-wide, never reset.
    pub rpc_total: u64,
    /// MIT `GetTotalBytes`: request bytes of every attempt plus reply bytes of every delivered
    /// reply.
    pub bytes_total: u64,
    /// Messages handed to the network.
    pub messages_sent: u64,
    /// Messages (copies) delivered to a node.
    pub messages_delivered: u64,
    /// Messages (copies) lost, at send or at delivery.
    pub messages_lost: u64,
}

/// Connectivity, faults and counters of the simulated network.
#[derive(Clone, Debug)]
pub struct Network {
    nodes: usize,
    /// Per node: MIT `connected[i]`, SJTU `reachable`.
    connected: Vec<bool>,
    /// `cut[from * nodes + to]`: messages from `from` to `to` are lost (one direction).
    cut: Vec<bool>,
    profile: NetworkProfile,
    long_reordering: bool,
    reorder: Reorder,
    counters: Counters,
}

impl Network {
    /// A network of `nodes` nodes, all connected, with `profile`.
    #[must_use]
    pub fn new(nodes: usize, profile: NetworkProfile) -> Network {
        Network {
            nodes,
            connected: vec![true; nodes],
            cut: vec![false; nodes * nodes],
            profile,
            long_reordering: false,
            reorder: Reorder::OFF,
            counters: Counters {
                delivered_requests: vec![0; nodes],
                attempted_requests: vec![0; nodes],
                ..Counters::default()
            },
        }
    }

    /// The current fault profile.
    #[must_use]
    pub fn profile(&self) -> NetworkProfile {
        self.profile
    }

    /// Replaces the fault profile (in-flight messages keep the delays they were given).
    pub fn set_profile(&mut self, profile: NetworkProfile) {
        self.profile = profile;
    }

    /// Whether labrpc's long reordering of replies is on.
    #[must_use]
    pub fn long_reordering(&self) -> bool {
        self.long_reordering
    }

    /// Turns labrpc's long reordering of replies on or off.
    pub fn set_long_reordering(&mut self, on: bool) {
        self.long_reordering = on;
    }

    /// The extra reordering in force.
    #[must_use]
    pub fn reorder(&self) -> Reorder {
        self.reorder
    }

    /// Sets the extra reordering (in-flight messages keep their delays).
    pub fn set_reorder(&mut self, reorder: Reorder) {
        self.reorder = reorder;
    }

    /// Whether `node` is connected (MIT) / reachable (SJTU).
    #[must_use]
    pub fn is_connected(&self, node: NodeId) -> bool {
        self.connected.get(slot(node)).copied().unwrap_or(false)
    }

    /// Connects or disconnects `node` from everyone.
    pub fn set_connected(&mut self, node: NodeId, connected: bool) {
        if let Some(flag) = self.connected.get_mut(slot(node)) {
            *flag = connected;
        }
    }

    /// Cuts (or restores) the one-way link `from → to`.
    pub fn set_link_cut(&mut self, from: NodeId, to: NodeId, cut: bool) {
        if let Some(index) = self.link(from, to) {
            self.cut[index] = cut;
        }
    }

    /// Restores every cut link (node connectivity is unchanged).
    pub fn heal_links(&mut self) {
        self.cut.iter_mut().for_each(|c| *c = false);
    }

    /// Whether a message from `from` to `to` can pass right now.
    #[must_use]
    pub fn link_up(&self, from: NodeId, to: NodeId) -> bool {
        match self.link(from, to) {
            Some(index) => self.is_connected(from) && self.is_connected(to) && !self.cut[index],
            None => false,
        }
    }

    /// The counters.
    #[must_use]
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Resets `node`'s per-incarnation counters (it restarted: labrpc and rpcs recreate its
    /// server and clients).
    pub fn reset_node_counters(&mut self, node: NodeId) {
        if let Some(count) = self.counters.delivered_requests.get_mut(slot(node)) {
            *count = 0;
        }
        if let Some(count) = self.counters.attempted_requests.get_mut(slot(node)) {
            *count = 0;
        }
    }

    /// Decides the fate of one message at send time and counts it. `receiver_up` says whether the
    /// receiver's current incarnation is the one the message is addressed to.
    pub fn route(
        &mut self,
        rng: &mut SimRng,
        from: NodeId,
        to: NodeId,
        is_request: bool,
        bytes: u64,
        receiver_up: bool,
    ) -> Route {
        self.counters.messages_sent += 1;
        if is_request {
            self.counters.rpc_total += 1;
            self.counters.bytes_total += bytes;
            if let Some(count) = self.counters.attempted_requests.get_mut(slot(from)) {
                *count += 1;
            }
        }
        let route = self.draw_route(rng, from, to, is_request, receiver_up);
        if let Route::Lost(_) = route {
            self.counters.messages_lost += 1;
        }
        route
    }

    fn draw_route(
        &mut self,
        rng: &mut SimRng,
        from: NodeId,
        to: NodeId,
        is_request: bool,
        receiver_up: bool,
    ) -> Route {
        if !self.link_up(from, to) {
            return Route::Lost(LostReason::LinkDown);
        }
        if !receiver_up {
            return Route::Lost(LostReason::ReceiverGone);
        }
        let faults = if is_request {
            self.profile.request
        } else {
            self.profile.reply
        };
        if rng.chance_per_mille(faults.drop_per_mille) {
            return Route::Lost(LostReason::Dropped);
        }
        let delay_us = self.draw_delay(rng, &faults, is_request);
        let duplicate_delay_us = rng
            .chance_per_mille(faults.dup_per_mille)
            .then(|| self.draw_delay(rng, &faults, is_request));
        Route::Deliver {
            delay_us,
            duplicate_delay_us,
        }
    }

    fn draw_delay(&self, rng: &mut SimRng, faults: &LinkFaults, is_request: bool) -> u64 {
        if self.long_reordering && !is_request && rng.chance(600, 900) {
            // labrpc: 200 + rand.Intn(1 + rand.Intn(2000)) milliseconds.
            let spread_ms = rng.below(2000);
            let extra_ms = rng.below(1 + spread_ms);
            return (200 + extra_ms) * US_PER_MS;
        }
        let delay_us = rng.between(faults.delay_us_min, faults.delay_us_max);
        if rng.chance_per_mille(self.reorder.per_mille) {
            return delay_us.saturating_add(rng.between(0, self.reorder.delay_us_max));
        }
        delay_us
    }

    /// Counts one delivered copy (MIT counts delivered requests per receiver and reply bytes
    /// only on delivery).
    pub fn on_delivered(&mut self, to: NodeId, is_request: bool, bytes: u64) {
        self.counters.messages_delivered += 1;
        if is_request {
            if let Some(count) = self.counters.delivered_requests.get_mut(slot(to)) {
                *count += 1;
            }
        } else {
            self.counters.bytes_total += bytes;
        }
    }

    /// Counts a client's request (labrpc counts every call, Raft's and clients' alike).
    pub fn count_client_request(&mut self, bytes: u64) {
        self.counters.rpc_total += 1;
        self.counters.bytes_total += bytes;
    }

    /// Counts the bytes of a client reply that was sent.
    pub fn count_client_reply(&mut self, bytes: u64) {
        self.counters.bytes_total += bytes;
    }

    /// Counts one copy lost at delivery time.
    pub fn on_lost_in_flight(&mut self) {
        self.counters.messages_lost += 1;
    }

    fn link(&self, from: NodeId, to: NodeId) -> Option<usize> {
        let (from, to) = (slot(from), slot(to));
        (from < self.nodes && to < self.nodes).then(|| from * self.nodes + to)
    }
}

/// A node id as a vector slot (ids are 0..n; an id too large for `usize` maps out of range).
#[must_use]
pub fn slot(node: NodeId) -> usize {
    usize::try_from(node.0).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Purpose;

    fn n(i: u32) -> NodeId {
        NodeId(i)
    }

    #[test]
    fn cuts_are_directional_and_disconnect_is_total() {
        let mut net = Network::new(3, NetworkProfile::MIT_RELIABLE);
        net.set_link_cut(n(0), n(1), true);
        assert!(!net.link_up(n(0), n(1)));
        assert!(net.link_up(n(1), n(0)));
        net.set_connected(n(2), false);
        assert!(!net.link_up(n(2), n(0)) && !net.link_up(n(0), n(2)));
        net.heal_links();
        assert!(net.link_up(n(0), n(1)));
        assert!(!net.link_up(n(5), n(0)));
    }

    fn delays(net: &mut Network, count: usize) -> Vec<u64> {
        let mut rng = SimRng::new(9, Purpose::Network);
        (0..count)
            .map(|_| match net.route(&mut rng, n(0), n(1), true, 10, true) {
                Route::Deliver { delay_us, .. } => delay_us,
                Route::Lost(_) => u64::MAX,
            })
            .collect()
    }

    #[test]
    fn reordering_holds_some_messages_back_and_is_free_when_off() {
        let profile = NetworkProfile::MIT_UNRELIABLE;
        let plain = delays(&mut Network::new(2, profile), 2000);
        let mut off = Network::new(2, profile);
        off.set_reorder(Reorder::OFF);
        assert_eq!(
            delays(&mut off, 2000),
            plain,
            "an off reorder drew randomness"
        );
        let mut on = Network::new(2, profile);
        on.set_reorder(Reorder {
            per_mille: 500,
            delay_us_max: 1_000_000,
        });
        let held: Vec<u64> = delays(&mut on, 2000)
            .into_iter()
            .filter(|&d| d != u64::MAX)
            .collect();
        let late = held.iter().filter(|&&d| d > 26 * US_PER_MS).count();
        assert!(held.iter().all(|&d| d <= 26 * US_PER_MS + 1_000_000));
        // About half of the delivered messages, each held back by U[0, 1 s]: most land late.
        assert!(
            late > held.len() / 4 && late < held.len() / 2 + 100,
            "{late} of {}",
            held.len()
        );
    }

    #[test]
    fn requests_to_disconnected_nodes_are_counted_but_lost() {
        let mut net = Network::new(2, NetworkProfile::MIT_RELIABLE);
        let mut rng = SimRng::new(1, Purpose::Network);
        net.set_connected(n(1), false);
        let route = net.route(&mut rng, n(0), n(1), true, 10, true);
        assert_eq!(route, Route::Lost(LostReason::LinkDown));
        assert_eq!(net.counters().rpc_total, 1);
        assert_eq!(net.counters().bytes_total, 10);
        assert_eq!(net.counters().attempted_requests, vec![1, 0]);
        assert_eq!(net.counters().delivered_requests, vec![0, 0]);
    }
}
