//! The key/value service's client: finds the leader, retries, and never applies a command twice.
//!
//! A [`Clerk`] talks to the servers through a [`Transport`] (the simulator's client calls, or a
//! real network later). It sends each operation as a [`Command`] with the clerk's id and a fresh
//! sequence number, to the server it last saw as leader. On any failure (wrong leader, the
//! server's timeout, a lost request or reply) it moves to the next server and sends the **same**
//! command again; after a whole round of failures it pauses ([`Transport::pause`]) so that a
//! cluster without a leader is not hammered. Because a retry reuses the sequence number, the
//! store's dedup table ([`crate::kv`]) applies the command once however many copies commit.
//!
//! The clerk is used by one task at a time (`&mut self`): one command in flight per clerk, which
//! is what lets the store remember only each clerk's latest reply.

use crate::kv::{Command, Op, Output, Reply};
use std::fmt;
use std::future::Future;

/// Why a call to one server brought no reply. Every kind is retried at the next server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The request or the reply was lost, or the server is down: the command may or may not
    /// have been applied.
    Unreachable,
    /// The server is not the leader, or lost leadership before the command committed.
    WrongLeader,
    /// The leader did not see the command commit in time (e.g. it is in a minority).
    Timeout,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CallError::Unreachable => "unreachable",
            CallError::WrongLeader => "wrong leader",
            CallError::Timeout => "timeout",
        })
    }
}

/// How a clerk reaches the servers. Servers are numbered `0..servers()` in the clerk's own
/// order (which need not be the cluster's).
pub trait Transport {
    /// How many servers the clerk knows.
    fn servers(&self) -> usize;

    /// Sends `request` (an encoded [`Command`]) to `server` and resolves to its reply bytes (an
    /// encoded [`Output`]) or to why there is none.
    fn call(
        &mut self,
        server: usize,
        request: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, CallError>>;

    /// Waits a little before the next round of attempts (every server has just failed).
    fn pause(&mut self) -> impl Future<Output = ()>;

    /// The current time in microseconds, for [`Clerk::execute_by`]'s deadline.
    fn now_us(&self) -> u64;
}

/// What a clerk operation can fail with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClerkError {
    /// The deadline passed before a reply came: the command may or may not take effect.
    #[error("gave up after {attempts} attempts; the outcome is unknown")]
    GaveUp {
        /// Calls made.
        attempts: u64,
    },
    /// The transport knows no server.
    #[error("the clerk knows no server")]
    NoServers,
    /// A server's reply does not decode (a server bug).
    #[error("reply does not decode: {0}")]
    BadReply(String),
    /// The store says this command is older than one it already applied for this clerk (a
    /// server bug, or two clerks sharing an id).
    #[error("command {seq} is stale: the store has applied {last_seq} for this clerk")]
    Stale {
        /// The command's sequence number.
        seq: u64,
        /// The store's latest for this clerk.
        last_seq: u64,
    },
}

/// A key/value client over a [`Transport`] (see the module docs).
#[derive(Debug)]
pub struct Clerk<T> {
    transport: T,
    client: u64,
    seq: u64,
    leader: usize,
}

impl<T: Transport> Clerk<T> {
    /// A clerk with id `client`, which must be unique among the service's clerks (a random
    /// 62-bit number will do; the store assumes nothing else about it).
    pub fn new(transport: T, client: u64) -> Clerk<T> {
        Clerk {
            transport,
            client,
            seq: 0,
            leader: 0,
        }
    }

    /// The clerk's id.
    #[must_use]
    pub fn id(&self) -> u64 {
        self.client
    }

    /// The sequence number of the last command issued (0 before the first).
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.seq
    }

    /// The server the clerk will try first.
    #[must_use]
    pub fn leader(&self) -> usize {
        self.leader
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, mutably.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// MIT `Get`: the value of `key`, `""` if missing. Retries until it succeeds.
    pub async fn get(&mut self, key: &str) -> Result<String, ClerkError> {
        let op = Op::Get { key: key.into() };
        Ok(self.execute(op).await?.value)
    }

    /// `Put(key, value)`. Retries until it succeeds; the reply says whether the key was new
    /// (SJTU: `succ` true and the new value) or replaced (`succ` false and the old value).
    pub async fn put(&mut self, key: &str, value: &str) -> Result<Reply, ClerkError> {
        let op = Op::Put {
            key: key.into(),
            value: value.into(),
        };
        self.execute(op).await
    }

    /// MIT `Append(key, value)`. Retries until it succeeds.
    pub async fn append(&mut self, key: &str, value: &str) -> Result<Reply, ClerkError> {
        let op = Op::Append {
            key: key.into(),
            value: value.into(),
        };
        self.execute(op).await
    }

    /// SJTU `DEL key`. Retries until it succeeds; `succ` says whether the key was present.
    pub async fn delete(&mut self, key: &str) -> Result<Reply, ClerkError> {
        self.execute(Op::Delete { key: key.into() }).await
    }

    /// Runs `op` exactly once, retrying for as long as it takes.
    pub async fn execute(&mut self, op: Op) -> Result<Reply, ClerkError> {
        self.execute_by(op, u64::MAX).await
    }

    /// Runs `op` exactly once, retrying until `deadline_us` (by [`Transport::now_us`]), checked
    /// before each attempt: an attempt under way when it passes is finished first. On
    /// [`ClerkError::GaveUp`] the command may still take effect later (it may have committed
    /// already, or commit from a server's log); it never takes effect twice.
    pub async fn execute_by(&mut self, op: Op, deadline_us: u64) -> Result<Reply, ClerkError> {
        let servers = self.transport.servers();
        if servers == 0 {
            return Err(ClerkError::NoServers);
        }
        self.seq += 1;
        let command = Command {
            client: self.client,
            seq: self.seq,
            op,
        };
        let request = raft::encode_command(&command);
        let mut attempts = 0u64;
        let mut failures_in_round = 0;
        loop {
            if self.transport.now_us() >= deadline_us {
                return Err(ClerkError::GaveUp { attempts });
            }
            attempts += 1;
            let server = self.leader % servers;
            match self.transport.call(server, request.clone()).await {
                Ok(bytes) => return self.decode(&bytes),
                Err(CallError::Unreachable | CallError::WrongLeader | CallError::Timeout) => {
                    self.leader = (server + 1) % servers;
                    failures_in_round += 1;
                    if failures_in_round == servers {
                        failures_in_round = 0;
                        self.transport.pause().await;
                    }
                }
            }
        }
    }

    fn decode(&self, bytes: &[u8]) -> Result<Reply, ClerkError> {
        match postcard::from_bytes::<Output>(bytes) {
            Ok(Output::Reply(reply)) => Ok(reply),
            Ok(Output::Stale { last_seq }) => Err(ClerkError::Stale {
                seq: self.seq,
                last_seq,
            }),
            Err(error) => Err(ClerkError::BadReply(error.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KvStore;
    use raft::{Index, StateMachine};
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    /// Runs a future whose every await is ready at once (the fake transport never waits).
    fn block_on<F: Future>(future: F) -> F::Output {
        let mut future = pin!(future);
        let mut context = Context::from_waker(Waker::noop());
        match future.as_mut().poll(&mut context) {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("the fake transport never waits"),
        }
    }

    /// Three servers sharing one store; `leader` applies, the others refuse. Replies listed in
    /// `drop_replies` (by call number) are lost after the store applied the command.
    struct Fake {
        store: KvStore,
        index: u64,
        leader: usize,
        calls: Vec<usize>,
        drop_replies: Vec<usize>,
        now_us: u64,
        pauses: u64,
    }

    impl Fake {
        fn new(leader: usize) -> Fake {
            Fake {
                store: KvStore::new(),
                index: 0,
                leader,
                calls: Vec::new(),
                drop_replies: Vec::new(),
                now_us: 0,
                pauses: 0,
            }
        }
    }

    impl Transport for Fake {
        fn servers(&self) -> usize {
            3
        }

        async fn call(&mut self, server: usize, request: Vec<u8>) -> Result<Vec<u8>, CallError> {
            let call = self.calls.len();
            self.calls.push(server);
            self.now_us += 1_000;
            if server != self.leader {
                return Err(CallError::WrongLeader);
            }
            let command: Command = postcard::from_bytes(&request).expect("a command");
            self.index += 1;
            let output = self.store.apply(Index(self.index), command);
            if self.drop_replies.contains(&call) {
                return Err(CallError::Unreachable);
            }
            Ok(postcard::to_allocvec(&output).expect("encodes"))
        }

        async fn pause(&mut self) {
            self.pauses += 1;
            self.now_us += 100_000;
        }

        fn now_us(&self) -> u64 {
            self.now_us
        }
    }

    #[test]
    fn a_retry_after_a_dropped_reply_does_not_apply_twice() {
        let mut fake = Fake::new(0);
        fake.drop_replies = vec![0];
        let mut clerk = Clerk::new(fake, 7);
        let reply = block_on(clerk.append("k", "x 0 0 y")).unwrap();
        // Applied at call 0 (reply lost), retried at 1 and 2 (wrong leader), then 0 again:
        // the store committed the command twice and applied it once.
        assert_eq!(clerk.transport().calls, vec![0, 1, 2, 0]);
        assert_eq!(clerk.transport().index, 2);
        assert!(!reply.succ, "the retry got the first application's reply");
        assert_eq!(clerk.transport().store.value("k"), Some("x 0 0 y"));
        assert_eq!(block_on(clerk.get("k")).unwrap(), "x 0 0 y");
    }

    #[test]
    fn the_clerk_finds_the_leader_and_remembers_it() {
        let mut clerk = Clerk::new(Fake::new(2), 1);
        block_on(clerk.put("a", "1")).unwrap();
        assert_eq!(clerk.leader(), 2);
        block_on(clerk.put("b", "2")).unwrap();
        assert_eq!(clerk.transport().calls, vec![0, 1, 2, 2]);
        assert_eq!(clerk.last_seq(), 2);
        let replaced = block_on(clerk.put("a", "3")).unwrap();
        assert_eq!((replaced.succ, replaced.value.as_str()), (false, "1"));
        let deleted = block_on(clerk.delete("b")).unwrap();
        assert_eq!((deleted.succ, deleted.value.as_str()), (true, "2"));
        assert_eq!(block_on(clerk.get("b")).unwrap(), "");
    }

    #[test]
    fn without_a_leader_the_deadline_variant_gives_up_after_pausing_each_round() {
        let mut clerk = Clerk::new(Fake::new(usize::MAX), 1);
        let op = Op::Put {
            key: "k".into(),
            value: "v".into(),
        };
        let result = block_on(clerk.execute_by(op, 250_000));
        // Rounds of 3 calls (1 ms each) and a 100 ms pause: the deadline passes after 3 rounds.
        assert_eq!(result, Err(ClerkError::GaveUp { attempts: 9 }));
        assert_eq!(clerk.transport().pauses, 3);
        assert!(clerk.transport().store.is_empty());
    }

    #[test]
    fn bad_and_stale_replies_are_typed_errors() {
        struct Garbage;
        impl Transport for Garbage {
            fn servers(&self) -> usize {
                1
            }
            async fn call(&mut self, _: usize, _: Vec<u8>) -> Result<Vec<u8>, CallError> {
                Ok(vec![0xff; 3])
            }
            async fn pause(&mut self) {}
            fn now_us(&self) -> u64 {
                0
            }
        }
        let mut clerk = Clerk::new(Garbage, 1);
        assert!(matches!(
            block_on(clerk.get("k")),
            Err(ClerkError::BadReply(_))
        ));

        // Two clerks sharing an id: the second one's first command is stale.
        let mut first = Clerk::new(Fake::new(0), 5);
        block_on(first.put("a", "1")).unwrap();
        block_on(first.put("a", "2")).unwrap();
        let fake = std::mem::replace(first.transport_mut(), Fake::new(0));
        let mut second = Clerk::new(fake, 5);
        assert_eq!(
            block_on(second.get("a")),
            Err(ClerkError::Stale {
                seq: 1,
                last_seq: 2
            })
        );
    }

    #[test]
    fn a_clerk_without_servers_says_so() {
        struct Empty;
        impl Transport for Empty {
            fn servers(&self) -> usize {
                0
            }
            async fn call(&mut self, _: usize, _: Vec<u8>) -> Result<Vec<u8>, CallError> {
                Err(CallError::Unreachable)
            }
            async fn pause(&mut self) {}
            fn now_us(&self) -> u64 {
                0
            }
        }
        let mut clerk = Clerk::new(Empty, 1);
        assert_eq!(block_on(clerk.get("k")), Err(ClerkError::NoServers));
    }
}
