//! Every network fault has the effect it claims, measured.
//!
//! The first half drives [`Network::route`] directly over 100 000 messages per class and checks
//! drop rates, delay ranges and distributions, duplication and long reordering against the labs'
//! numbers within a statistical tolerance (about six standard deviations: a real change of rate
//! fails, noise does not; the streams are seeded, so the tests are deterministic anyway). The
//! second half runs scenarios that cut nodes and links, and checks through the labs' counters,
//! the nodes' state and the trace that nothing crossed a cut, and that duplication doubles what
//! is delivered.

mod common;

use common::{Delivery, SEEDS, deliveries, first_event, run_passing, run_traced, scenario};
use raft::{Index, NodeId};
use sim::network::{LinkFaults, LostReason, Network, Route};
use sim::rng::{Purpose, SimRng};
use sim::trace::EventKind;
use sim::{NetworkProfile, ScenarioFuture, Setup, Tester, US_PER_MS, cmd, ensure};

/// Messages routed per class in the statistical tests.
const MESSAGES: u64 = 100_000;

// ----- Route-level measurements -----

/// What the network decided for `MESSAGES` messages of one class.
#[derive(Debug, Default)]
struct Tally {
    dropped: u64,
    /// Delay of each delivered first copy, in send order (dropped messages are skipped).
    delays_us: Vec<u64>,
    /// Send time in ms of each delivered first copy (one message is sent per ms).
    sent_ms: Vec<u64>,
    duplicates: u64,
    duplicate_delays_us: Vec<u64>,
}

impl Tally {
    fn delivered(&self) -> u64 {
        self.delays_us.len() as u64
    }
}

/// Routes `MESSAGES` messages from node 0 to node 1, one per virtual millisecond.
fn tally(profile: NetworkProfile, long_reordering: bool, is_request: bool, seed: u64) -> Tally {
    let mut network = Network::new(2, profile);
    network.set_long_reordering(long_reordering);
    let mut rng = SimRng::new(seed, Purpose::Network);
    let mut tally = Tally::default();
    for sent_ms in 0..MESSAGES {
        match network.route(&mut rng, NodeId(0), NodeId(1), is_request, 40, true) {
            Route::Lost(LostReason::Dropped) => tally.dropped += 1,
            Route::Lost(other) => panic!("a connected, live link lost a message: {other:?}"),
            Route::Deliver {
                delay_us,
                duplicate_delay_us,
            } => {
                tally.delays_us.push(delay_us);
                tally.sent_ms.push(sent_ms);
                if let Some(delay_us) = duplicate_delay_us {
                    tally.duplicates += 1;
                    tally.duplicate_delays_us.push(delay_us);
                }
            }
        }
    }
    let counters = network.counters();
    assert_eq!(counters.messages_sent, MESSAGES);
    assert_eq!(counters.messages_lost, tally.dropped, "drops are counted");
    let expected_rpcs = if is_request { MESSAGES } else { 0 };
    assert_eq!(counters.rpc_total, expected_rpcs, "only requests are RPCs");
    tally
}

/// Asserts `count` out of `MESSAGES` is `per_mille` ‰ within `tolerance_per_mille` ‰.
fn assert_rate(what: &str, count: u64, per_mille: u64, tolerance_per_mille: u64) {
    let measured = count as f64 * 1000.0 / MESSAGES as f64;
    let low = (per_mille.saturating_sub(tolerance_per_mille)) * MESSAGES / 1000;
    let high = (per_mille + tolerance_per_mille) * MESSAGES / 1000;
    println!("{what}: {count}/{MESSAGES} = {measured:.2} per mille (expected {per_mille})");
    assert!(
        (low..=high).contains(&count),
        "{what}: {count} of {MESSAGES} ({measured:.2} per mille), expected {per_mille} ± \
         {tolerance_per_mille} per mille"
    );
}

/// Asserts request delays are labrpc's `rand() % 27` ms: inside 0..=26 ms, reaching both ends,
/// and spread evenly over the 26 whole milliseconds.
fn assert_request_delays_uniform_0_to_26_ms(delays_us: &[u64]) {
    let max_us = 26 * US_PER_MS;
    assert!(
        delays_us.iter().all(|&d| d <= max_us),
        "a delay above 26 ms"
    );
    let min = delays_us.iter().copied().min().unwrap_or(u64::MAX);
    let max = delays_us.iter().copied().max().unwrap_or(0);
    assert!(
        min < 100,
        "shortest request delay {min} us: 0 ms is never drawn"
    );
    assert!(
        max > max_us - 100,
        "longest request delay {max} us: 26 ms is never drawn"
    );
    let mean = delays_us.iter().sum::<u64>() as f64 / delays_us.len() as f64;
    println!("request delays: min {min} us, max {max} us, mean {mean:.0} us");
    // Uniform on [0, 26000]: mean 13000 us, standard error about 25 us here.
    assert!(
        (12_800.0..=13_200.0).contains(&mean),
        "mean delay {mean} us"
    );
    let mut per_ms = [0u64; 26];
    for &delay in delays_us {
        let bucket = usize::try_from(delay / US_PER_MS).unwrap_or(25).min(25);
        per_ms[bucket] += 1;
    }
    let expected = delays_us.len() as f64 / 26.0;
    for (ms, &count) in per_ms.iter().enumerate() {
        let ratio = count as f64 / expected;
        assert!(
            (0.85..=1.15).contains(&ratio),
            "delays in [{ms}, {}) ms: {count}, expected about {expected:.0}",
            ms + 1
        );
    }
}

#[test]
fn mit_unreliable_drops_a_tenth_of_requests_and_a_tenth_of_replies() {
    let requests = tally(NetworkProfile::MIT_UNRELIABLE, false, true, 11);
    let replies = tally(NetworkProfile::MIT_UNRELIABLE, false, false, 12);
    assert_rate("mit-unreliable requests dropped", requests.dropped, 100, 6);
    assert_rate("mit-unreliable replies dropped", replies.dropped, 100, 6);
    assert_request_delays_uniform_0_to_26_ms(&requests.delays_us);
    assert!(
        replies
            .delays_us
            .iter()
            .all(|&d| d == sim::network::BASE_LATENCY_US),
        "replies are not delayed beyond the base latency"
    );
    assert_eq!(
        requests.duplicates + replies.duplicates,
        0,
        "labrpc never duplicates"
    );
}

#[test]
fn sjtu_unreliable_drops_a_tenth_of_requests_and_no_replies() {
    let requests = tally(NetworkProfile::SJTU_UNRELIABLE, false, true, 21);
    let replies = tally(NetworkProfile::SJTU_UNRELIABLE, false, false, 22);
    assert_rate("sjtu-unreliable requests dropped", requests.dropped, 100, 6);
    assert_eq!(replies.dropped, 0, "SJTU never drops a reply");
    assert_eq!(replies.delivered(), MESSAGES);
    assert_request_delays_uniform_0_to_26_ms(&requests.delays_us);
    assert!(
        replies
            .delays_us
            .iter()
            .all(|&d| d == sim::network::BASE_LATENCY_US),
        "replies are not delayed beyond the base latency"
    );
}

#[test]
fn reliable_profiles_drop_and_delay_nothing() {
    for profile in [NetworkProfile::MIT_RELIABLE, NetworkProfile::SJTU_RELIABLE] {
        for is_request in [true, false] {
            let tally = tally(profile, false, is_request, 31);
            assert_eq!(tally.dropped, 0, "{} dropped a message", profile.name);
            assert_eq!(tally.duplicates, 0, "{} duplicated a message", profile.name);
            assert!(
                tally
                    .delays_us
                    .iter()
                    .all(|&d| d == sim::network::BASE_LATENCY_US),
                "{} delayed a message beyond the base latency",
                profile.name
            );
        }
    }
}

/// A profile that duplicates every message of both classes and otherwise behaves reliably.
const DUPLICATE_ALL: NetworkProfile = NetworkProfile {
    name: "duplicate-all",
    request: LinkFaults {
        dup_per_mille: 1000,
        ..LinkFaults::RELIABLE
    },
    reply: LinkFaults {
        dup_per_mille: 1000,
        ..LinkFaults::RELIABLE
    },
};

#[test]
fn duplication_rate_is_the_profiles() {
    let all = tally(DUPLICATE_ALL, false, true, 41);
    assert_eq!(
        all.duplicates, MESSAGES,
        "dup_per_mille = 1000 duplicates every message"
    );
    let half = NetworkProfile {
        name: "duplicate-half",
        request: LinkFaults {
            delay_us_min: 0,
            delay_us_max: 26 * US_PER_MS,
            drop_per_mille: 0,
            dup_per_mille: 500,
        },
        reply: LinkFaults::RELIABLE,
    };
    let requests = tally(half, false, true, 42);
    assert_rate(
        "duplicate-half requests duplicated",
        requests.duplicates,
        500,
        10,
    );
    // A duplicate draws its own delay from the same range.
    assert_request_delays_uniform_0_to_26_ms(&requests.duplicate_delays_us);
    let replies = tally(half, false, false, 43);
    assert_eq!(replies.duplicates, 0, "the reply class has no duplication");
}

/// How many times a message arrives before the one sent just before it.
fn consecutive_inversions(tally: &Tally) -> u64 {
    let arrivals: Vec<u64> = tally
        .sent_ms
        .iter()
        .zip(&tally.delays_us)
        .map(|(&sent_ms, &delay_us)| sent_ms * US_PER_MS + delay_us)
        .collect();
    arrivals.windows(2).filter(|pair| pair[1] < pair[0]).count() as u64
}

#[test]
fn long_reordering_holds_two_thirds_of_replies_for_200_to_2200_ms() {
    let replies = tally(NetworkProfile::MIT_RELIABLE, true, false, 51);
    let long: Vec<u64> = replies
        .delays_us
        .iter()
        .copied()
        .filter(|&d| d > sim::network::BASE_LATENCY_US)
        .collect();
    let short = replies.delivered() - long.len() as u64;
    assert_rate("long-reordered replies", long.len() as u64, 667, 8);
    assert!(
        replies
            .delays_us
            .iter()
            .all(|&d| d == sim::network::BASE_LATENCY_US || d >= 200 * US_PER_MS),
        "a reply is neither on time nor held for at least 200 ms"
    );
    let min = long.iter().copied().min().unwrap_or(0);
    let max = long.iter().copied().max().unwrap_or(0);
    assert!(
        (200 * US_PER_MS..201 * US_PER_MS).contains(&min),
        "shortest hold {min} us"
    );
    assert!(
        (2100 * US_PER_MS..2200 * US_PER_MS).contains(&max),
        "longest hold {max} us"
    );
    // 200 + U[0, 1 + U[0, 2000)) ms has mean about 700 ms.
    let mean_ms = long.iter().sum::<u64>() as f64 / long.len() as f64 / US_PER_MS as f64;
    println!(
        "long holds: {} (short {short}), {min}..={max} us, mean {mean_ms:.1} ms",
        long.len()
    );
    assert!((680.0..=720.0).contains(&mean_ms), "mean hold {mean_ms} ms");

    // Sent one per millisecond, about 4 in 9 replies overtake the one before them.
    let inversions = consecutive_inversions(&replies);
    println!("long reordering: {inversions} of {MESSAGES} replies overtake their predecessor");
    assert_rate("replies out of send order", inversions, 444, 15);
    let in_order = tally(NetworkProfile::MIT_RELIABLE, false, false, 51);
    assert_eq!(
        consecutive_inversions(&in_order),
        0,
        "without it, replies stay in order"
    );

    let requests = tally(NetworkProfile::MIT_RELIABLE, true, true, 52);
    assert!(
        requests
            .delays_us
            .iter()
            .all(|&d| d == sim::network::BASE_LATENCY_US),
        "long reordering touches replies only"
    );
}

#[test]
fn cut_links_and_dead_receivers_lose_messages_before_any_fault_is_drawn() {
    let mut network = Network::new(3, DUPLICATE_ALL);
    let mut rng = SimRng::new(61, Purpose::Network);
    network.set_link_cut(NodeId(0), NodeId(1), true);
    network.set_connected(NodeId(2), false);
    for is_request in [true, false] {
        let route = |network: &mut Network, rng: &mut SimRng, from: u32, to: u32, up: bool| {
            network.route(rng, NodeId(from), NodeId(to), is_request, 8, up)
        };
        let down = Route::Lost(LostReason::LinkDown);
        assert_eq!(
            route(&mut network, &mut rng, 0, 1, true),
            down,
            "cut 0 -> 1"
        );
        assert_eq!(
            route(&mut network, &mut rng, 0, 2, true),
            down,
            "2 is disconnected"
        );
        assert_eq!(
            route(&mut network, &mut rng, 2, 0, true),
            down,
            "2 is disconnected"
        );
        let gone = Route::Lost(LostReason::ReceiverGone);
        assert_eq!(
            route(&mut network, &mut rng, 1, 0, false),
            gone,
            "receiver down"
        );
        let Route::Deliver {
            duplicate_delay_us, ..
        } = route(&mut network, &mut rng, 1, 0, true)
        else {
            panic!("the reverse direction 1 -> 0 of a one-way cut must pass");
        };
        assert!(duplicate_delay_us.is_some());
    }
    // Lost messages draw nothing, and neither does a delivery with a fixed delay and certain
    // duplication: the stream is untouched.
    let mut fresh = SimRng::new(61, Purpose::Network);
    assert_eq!(rng.next_u64(), fresh.next_u64());
}

// ----- Partitions, in running clusters -----

/// The server after `leader`, as a follower to cut off.
fn follower_of(t: &Tester, leader: usize) -> usize {
    (leader + 1) % t.servers()
}

fn term_of(t: &Tester, server: usize) -> Result<u64, sim::TestError> {
    t.get_state(server)
        .map(|(term, _)| term)
        .ok_or_else(|| sim::TestError::check(format!("server {server} is down")))
}

/// A disconnected follower receives nothing and campaigns alone: its term rises, nobody else's
/// does, and the leader keeps its term; reconnected, it is heard again.
fn disconnected_follower(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let leader = t.check_one_leader().await?;
        let cut = follower_of(&t, leader);
        let term = term_of(&t, leader)?;
        t.disconnect(cut);
        let received = t.rpc_count(cut);
        t.sleep_ms(5_000).await;
        ensure!(
            t.rpc_count(cut) == received,
            "a request reached disconnected server {cut}"
        );
        let cut_term = term_of(&t, cut)?;
        // 5 s of 300–600 ms election timeouts: at least 8 lonely campaigns.
        ensure!(
            cut_term >= term + 8,
            "isolated {cut} only reached term {cut_term} from {term}"
        );
        ensure!(!t.is_leader(cut), "isolated {cut} became leader alone");
        for other in (0..t.servers()).filter(|&s| s != cut) {
            let other_term = term_of(&t, other)?;
            ensure!(
                other_term == term,
                "server {other} moved to term {other_term} from {term}"
            );
        }
        ensure!(
            t.is_leader(leader),
            "leader {leader} lost leadership without contact"
        );
        t.connect(cut);
        // Back in contact: one leader, and every server (the reconnected one too) agrees on a
        // term at least the isolated one's. With empty logs the reconnected candidate may win
        // that election itself, and then it sends requests rather than receives them.
        let _ = t.check_one_leader().await?;
        let agreed = t.check_terms()?;
        ensure!(
            agreed >= cut_term,
            "the cluster settled on term {agreed}, below the isolated {cut_term}"
        );
        ensure!(
            term_of(&t, leader)? >= cut_term,
            "the leader never heard the higher term"
        );
        Ok(())
    })
}

#[test]
fn a_disconnected_node_receives_nothing_and_only_its_term_rises() {
    let scenario = scenario("faults/disconnect", Setup::mit(3), disconnected_follower);
    for seed in SEEDS {
        let (_, records) = run_traced(&scenario, seed);
        let cut = disconnect_event(&records);
        let connect = first_event(&records, Some(cut.1), EventKind::Connect).expect("connect");
        let crossing = deliveries(&records)
            .into_iter()
            .filter(|d| d.event > cut.0 && d.event < connect)
            .find(|d| d.from == cut.1 || d.to == cut.1);
        assert_eq!(
            crossing, None,
            "seed {seed}: a message crossed the disconnect"
        );
    }
}

/// The event and node of the first `Disconnect` in `records`.
fn disconnect_event(records: &[sim::trace::TraceRecord]) -> (u64, u32) {
    records
        .iter()
        .find(|r| r.kind == EventKind::Disconnect)
        .and_then(|r| Some((r.event, r.node?)))
        .expect("the scenario disconnects a node")
}

/// A follower whose outgoing links are cut still receives everything: it keeps the leader's term
/// and log, but the leader never hears its acknowledgements.
fn outgoing_cut(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let leader = t.check_one_leader().await?;
        let mute = follower_of(&t, leader);
        let index = t.one(cmd(1), 3, false).await?;
        let term = term_of(&t, leader)?;
        for other in (0..t.servers()).filter(|&s| s != mute) {
            t.set_link(mute, other, false);
        }
        let received = t.rpc_count(mute);
        // Replicated to the leader and the other follower (a majority) and sent to `mute` too.
        let next = t.one(cmd(2), 2, false).await?;
        ensure!(
            next == index + 1,
            "second command at {next}, expected {}",
            index + 1
        );
        t.sleep_ms(3_000).await;
        let heard = t.rpc_count(mute) - received;
        // 3 s of heartbeats every 100 ms.
        ensure!(
            heard >= 25,
            "muted {mute} received only {heard} requests in 3 s"
        );
        ensure!(
            term_of(&t, mute)? == term,
            "muted {mute} left term {term} though it hears all"
        );
        ensure!(t.is_leader(leader), "leader {leader} lost leadership");
        let mute_log = t.with_node(mute, |n| (n.log().last_index(), n.commit_index()));
        ensure!(
            mute_log == Some((Index(next), Index(next))),
            "muted {mute} has (last, commit) {mute_log:?}, expected both at {next}"
        );
        let matched = t.with_node(leader, |n| n.progress(raft::NodeId(mute as u32)).cloned());
        let matched = matched.flatten().map(|p| p.match_index);
        ensure!(
            matched == Some(Index(index)),
            "the leader saw {mute} match {matched:?}, but its replies are cut (expected {index})"
        );
        Ok(())
    })
}

#[test]
fn a_node_with_cut_outgoing_links_still_receives_but_is_never_heard() {
    let scenario = scenario("faults/outgoing-cut", Setup::mit(3), outgoing_cut);
    for seed in SEEDS {
        let (_, records) = run_traced(&scenario, seed);
        let cuts = link_cuts(&records);
        let (cut_at, mute) = (last_cut(&cuts), cuts[0].from);
        assert!(
            cuts.iter().all(|c| c.from == mute),
            "only {mute}'s outgoing links are cut"
        );
        let after: Vec<Delivery> = deliveries(&records)
            .into_iter()
            .filter(|d| d.event > cut_at)
            .collect();
        assert!(
            after.iter().all(|d| d.from != mute),
            "seed {seed}: a message from muted {mute} was delivered after the cut"
        );
        let heard = after.iter().filter(|d| d.to == mute).count();
        assert!(
            heard >= 25,
            "seed {seed}: muted {mute} received {heard} messages"
        );
    }
}

/// A one-way link cut read back from the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LinkCut {
    event: u64,
    from: u32,
    to: u32,
}

/// Every link cut in `records`, in order; fails the test if there is none.
fn link_cuts(records: &[sim::trace::TraceRecord]) -> Vec<LinkCut> {
    let cuts: Vec<LinkCut> = records
        .iter()
        .filter_map(|r| match (r.kind, r.node) {
            (EventKind::Link { to, cut: true }, Some(from)) => Some(LinkCut {
                event: r.event,
                from,
                to,
            }),
            _ => None,
        })
        .collect();
    assert!(!cuts.is_empty(), "the scenario cuts links");
    cuts
}

/// The event of the last cut in `cuts` (the partition is complete from there on).
fn last_cut(cuts: &[LinkCut]) -> u64 {
    cuts.iter().map(|c| c.event).max().unwrap_or(0)
}

/// A follower whose incoming links are cut hears nothing, times out and campaigns; its requests
/// still get out and drag everyone else's term up, but it can never win.
fn incoming_cut(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let leader = t.check_one_leader().await?;
        let deaf = follower_of(&t, leader);
        let term = term_of(&t, leader)?;
        for other in (0..t.servers()).filter(|&s| s != deaf) {
            t.set_link(other, deaf, false);
        }
        let received = t.rpc_count(deaf);
        t.sleep_ms(3_000).await;
        ensure!(
            t.rpc_count(deaf) == received,
            "a request reached deaf {deaf}"
        );
        let deaf_term = term_of(&t, deaf)?;
        ensure!(
            deaf_term > term,
            "deaf {deaf} never campaigned (term {deaf_term})"
        );
        ensure!(
            !t.is_leader(deaf),
            "deaf {deaf} became leader without hearing votes"
        );
        for other in (0..t.servers()).filter(|&s| s != deaf) {
            let other_term = term_of(&t, other)?;
            ensure!(
                other_term > term,
                "{deaf}'s requests never reached {other} (t{other_term})"
            );
        }
        Ok(())
    })
}

#[test]
fn a_node_with_cut_incoming_links_is_heard_but_hears_nothing() {
    let scenario = scenario("faults/incoming-cut", Setup::mit(3), incoming_cut);
    for seed in SEEDS {
        let (_, records) = run_traced(&scenario, seed);
        let cuts = link_cuts(&records);
        let (cut_at, deaf) = (last_cut(&cuts), cuts[0].to);
        assert!(
            cuts.iter().all(|c| c.to == deaf),
            "only {deaf}'s incoming links are cut"
        );
        let after: Vec<Delivery> = deliveries(&records)
            .into_iter()
            .filter(|d| d.event > cut_at)
            .collect();
        assert!(
            after.iter().all(|d| d.to != deaf),
            "seed {seed}: a message reached deaf {deaf} after the cut"
        );
        assert!(
            after.iter().any(|d| d.from == deaf),
            "seed {seed}: nothing from deaf {deaf} was delivered"
        );
    }
}

/// Five servers split into {leader, one follower} and the other three, both directions cut: the
/// majority elects a new leader in a higher term while the minority's old leader commits nothing;
/// healed, the old leader steps down and the cluster agrees again.
fn split_brain(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let old = t.check_one_leader().await?;
        let minority = [old, (old + 1) % 5];
        let majority: Vec<usize> = (0..5).filter(|s| !minority.contains(s)).collect();
        let term = term_of(&t, old)?;
        for &a in &minority {
            for &b in &majority {
                t.set_link(a, b, false);
                t.set_link(b, a, false);
            }
        }
        let stale = t.start(old, cmd(7));
        ensure!(stale.is_some(), "the old leader no longer accepts commands");
        t.sleep_ms(2_000).await;
        let new = t.check_one_leader().await?;
        ensure!(
            majority.contains(&new),
            "new leader {new} is not in the majority"
        );
        ensure!(
            term_of(&t, new)? > term,
            "the majority's leader kept term {term}"
        );
        ensure!(
            term_of(&t, old)? == term,
            "the cut-off leader heard of a new term"
        );
        ensure!(
            t.is_leader(old),
            "the cut-off leader stepped down without news"
        );
        let Some((index, _)) = t.start(new, cmd(8)) else {
            sim::bail!("new leader {new} refused a command");
        };
        let _ = t.wait(index, 3, None).await?;
        t.sleep_ms(500).await;
        let (count, _) = t.n_committed(index)?;
        ensure!(
            count == 3,
            "{count} servers applied {index}; only the majority can"
        );
        t.heal_links();
        let after = t.one(cmd(9), 5, true).await?;
        ensure!(
            after > index,
            "agreement after healing at {after}, before {index}"
        );
        ensure!(
            !t.is_leader(old) || term_of(&t, old)? > term,
            "the old leader never stepped down"
        );
        Ok(())
    })
}

#[test]
fn a_two_way_partition_delivers_nothing_across_the_cut_until_healed() {
    let scenario = scenario("faults/split-brain", Setup::mit(5), split_brain);
    for seed in SEEDS {
        let (_, records) = run_traced(&scenario, seed);
        let cuts = link_cuts(&records);
        assert_eq!(cuts.len(), 12, "2 x 3 pairs, both directions");
        let cut_at = last_cut(&cuts);
        let cuts: Vec<(u32, u32)> = cuts.iter().map(|c| (c.from, c.to)).collect();
        let heal = first_event(&records, None, EventKind::HealLinks).expect("the scenario heals");
        let all = deliveries(&records);
        let crossing = all
            .iter()
            .filter(|d| d.event > cut_at && d.event < heal)
            .find(|d| cuts.contains(&(d.from, d.to)));
        assert_eq!(
            crossing, None,
            "seed {seed}: a message crossed the partition"
        );
        let healed = all
            .iter()
            .filter(|d| d.event > heal && cuts.contains(&(d.from, d.to)))
            .count();
        assert!(healed > 0, "seed {seed}: nothing crossed after healing");
    }
}

// ----- Duplication, in a running cluster -----

/// Requests delivered (MIT `rpcCount` summed) and requests sent (MIT `rpcTotal`).
fn request_counts(t: &Tester) -> (u64, u64) {
    let delivered = (0..t.servers()).map(|s| t.rpc_count(s)).sum();
    (delivered, t.rpc_total())
}

/// Every request duplicated: the same heartbeat traffic is sent, and twice as much delivered.
fn duplicated_requests(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let leader = t.check_one_leader().await?;
        let term = term_of(&t, leader)?;
        let (delivered0, sent0) = request_counts(&t);
        t.sleep_ms(5_000).await;
        let (delivered1, sent1) = request_counts(&t);
        t.set_network(NetworkProfile {
            name: "duplicate-requests",
            request: LinkFaults {
                dup_per_mille: 1000,
                ..LinkFaults::RELIABLE
            },
            reply: LinkFaults::RELIABLE,
        });
        t.sleep_ms(5_000).await;
        let (delivered2, sent2) = request_counts(&t);
        let (reliable_sent, reliable_delivered) = (sent1 - sent0, delivered1 - delivered0);
        let (dup_sent, dup_delivered) = (sent2 - sent1, delivered2 - delivered1);
        println!(
            "5 s idle, 3 servers: reliable sent {reliable_sent} delivered {reliable_delivered}; \
             duplicating sent {dup_sent} delivered {dup_delivered}"
        );
        ensure!(
            term_of(&t, leader)? == term && t.is_leader(leader),
            "leadership changed"
        );
        // 2 followers x 10 heartbeats a second x 5 s, give or take one in flight at the edges.
        ensure!(
            reliable_sent.abs_diff(100) <= 2,
            "reliable: {reliable_sent} sent"
        );
        ensure!(
            reliable_delivered.abs_diff(reliable_sent) <= 2,
            "reliable: lost some"
        );
        ensure!(
            dup_sent.abs_diff(reliable_sent) <= 2,
            "duplication changed what is sent"
        );
        ensure!(
            dup_delivered.abs_diff(2 * dup_sent) <= 4,
            "duplicating: {dup_delivered} delivered for {dup_sent} sent, expected twice"
        );
        // Duplicated appends are harmless: agreement still works, once per command.
        let index = t.one(cmd(5), 3, false).await?;
        ensure!(t.max_index() == index, "a duplicate append added an entry");
        Ok(())
    })
}

#[test]
fn full_duplication_doubles_delivered_requests() {
    let scenario = scenario("faults/duplicate", Setup::mit(3), duplicated_requests);
    for seed in SEEDS {
        let _ = run_passing(&scenario, seed);
    }
}
