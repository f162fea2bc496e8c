use super::*;
use raft::{Payload, Term};
use tokio::io::AsyncReadExt;

/// Failure bound for waits on real sockets: tests never depend on it to pass, only to end.
const BOUND: Duration = Duration::from_secs(10);

fn message(term: u64) -> Message {
    Message {
        term: Term(term),
        payload: Payload::RequestVoteReply { granted: true },
    }
}

fn fast() -> TransportConfig {
    TransportConfig {
        backoff_min: Duration::from_millis(1),
        backoff_max: Duration::from_millis(20),
        ..TransportConfig::default()
    }
}

async fn listeners(n: usize) -> Vec<TcpListener> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    out
}

fn addresses(listeners: &[TcpListener]) -> BTreeMap<NodeId, SocketAddr> {
    listeners
        .iter()
        .enumerate()
        .map(|(i, l)| (NodeId(i as u32 + 1), l.local_addr().unwrap()))
        .collect()
}

async fn recv(rx: &mut mpsc::Receiver<Inbound>) -> Inbound {
    tokio::time::timeout(BOUND, rx.recv())
        .await
        .expect("message within the bound")
        .expect("channel open")
}

#[tokio::test]
async fn peers_exchange_messages_in_order() {
    let ls = listeners(2).await;
    let peers = addresses(&ls);
    let mut ls = ls.into_iter();
    let (a, mut a_rx) = Transport::start(NodeId(1), ls.next().unwrap(), &peers, fast()).unwrap();
    let (b, mut b_rx) = Transport::start(NodeId(2), ls.next().unwrap(), &peers, fast()).unwrap();
    for term in 1..=50 {
        a.send(NodeId(2), message(term)).unwrap();
    }
    for term in 1..=50 {
        assert_eq!(
            recv(&mut b_rx).await,
            Inbound {
                from: NodeId(1),
                message: message(term)
            }
        );
    }
    b.send(NodeId(1), message(99)).unwrap();
    assert_eq!(recv(&mut a_rx).await.message, message(99));
    assert_eq!(
        a.send(NodeId(7), message(1)),
        Err(SendError::UnknownPeer(NodeId(7)))
    );
    assert_eq!(a.stats().sent.load(Ordering::Relaxed), 50);
    assert_eq!(b.stats().received.load(Ordering::Relaxed), 50);
}

#[tokio::test]
async fn reconnects_after_the_peer_restarts() {
    let ls = listeners(2).await;
    let peers = addresses(&ls);
    let b_addr = peers[&NodeId(2)];
    let mut ls = ls.into_iter();
    let (a, _a_rx) = Transport::start(NodeId(1), ls.next().unwrap(), &peers, fast()).unwrap();
    let (mut b, mut b_rx) =
        Transport::start(NodeId(2), ls.next().unwrap(), &peers, fast()).unwrap();
    a.send(NodeId(2), message(1)).unwrap();
    assert_eq!(recv(&mut b_rx).await.message, message(1));
    b.shutdown().await;
    drop(b_rx);

    let listener = TcpListener::bind(b_addr).await.unwrap();
    let (_b, mut b_rx) = Transport::start(NodeId(2), listener, &peers, fast()).unwrap();
    // Messages written into the dead connection are lost; keep sending until one arrives.
    let arrived = tokio::time::timeout(BOUND, async {
        let mut term = 2;
        loop {
            a.send(NodeId(2), message(term)).unwrap();
            tokio::select! {
                got = b_rx.recv() => break got.unwrap(),
                () = tokio::time::sleep(Duration::from_millis(5)) => term += 1,
            }
        }
    })
    .await
    .expect("a message after the restart");
    assert!(arrived.message.term >= Term(2));
    assert!(a.stats().connects.load(Ordering::Relaxed) >= 2);
}

#[test]
fn full_queue_drops_the_oldest() {
    let queue = PeerQueue::new(3);
    for term in 1..=3 {
        assert!(!queue.push(message(term)));
    }
    assert!(queue.push(message(4)));
    assert!(queue.push(message(5)));
    let terms: Vec<u64> = queue.take(10).iter().map(|m| m.term.0).collect();
    assert_eq!(terms, vec![3, 4, 5]);
    assert!(queue.is_empty());
}

/// Connects to `addr` as a raw client and says hello as `from`.
async fn raw_client(addr: SocketAddr, from: u32) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    frame::write(&mut stream, &Wire::Hello { from: NodeId(from) }, 1 << 20)
        .await
        .unwrap();
    stream
}

/// Waits for the server to close `stream` (EOF or reset), within the bound.
async fn closed_by_server(stream: &mut TcpStream) {
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(BOUND, stream.read(&mut byte)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
}

#[tokio::test]
async fn bad_frames_close_the_connection_and_the_transport_carries_on() {
    let ls = listeners(2).await;
    let peers = addresses(&ls);
    let a_addr = peers[&NodeId(1)];
    let mut ls = ls.into_iter();
    let config = TransportConfig {
        max_frame_bytes: 1024,
        ..fast()
    };
    let (a, mut a_rx) = Transport::start(NodeId(1), ls.next().unwrap(), &peers, config).unwrap();
    drop(ls);

    // An oversized frame: only the prefix is sent; the receiver must not wait for the payload.
    let mut stream = raw_client(a_addr, 2).await;
    stream.write_all(&4096u32.to_le_bytes()).await.unwrap();
    closed_by_server(&mut stream).await;

    // A malformed payload.
    let mut stream = raw_client(a_addr, 2).await;
    stream
        .write_all(&[3, 0, 0, 0, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    closed_by_server(&mut stream).await;

    // A hello from a stranger.
    let mut stream = raw_client(a_addr, 9).await;
    closed_by_server(&mut stream).await;
    assert_eq!(a.stats().inbound_errors.load(Ordering::Relaxed), 3);

    // A well-behaved peer still gets through.
    let mut stream = raw_client(a_addr, 2).await;
    frame::write(&mut stream, &Wire::Raft(message(5)), 1024)
        .await
        .unwrap();
    assert_eq!(
        recv(&mut a_rx).await,
        Inbound {
            from: NodeId(2),
            message: message(5)
        }
    );

    // An outgoing message above the limit is refused at the sender.
    let big = Message {
        term: Term(1),
        payload: Payload::InstallSnapshot {
            snapshot: raft::Snapshot {
                index: raft::Index(1),
                term: Term(1),
                data: vec![0; 4096],
            },
        },
    };
    assert!(matches!(
        a.send(NodeId(2), big),
        Err(SendError::TooLarge { max: 1024, .. })
    ));
    assert_eq!(a.stats().dropped_too_large.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_newer_connection_from_a_peer_replaces_the_older() {
    let ls = listeners(2).await;
    let peers = addresses(&ls);
    let a_addr = peers[&NodeId(1)];
    let mut ls = ls.into_iter();
    let (_a, mut a_rx) = Transport::start(NodeId(1), ls.next().unwrap(), &peers, fast()).unwrap();
    let mut old = raw_client(a_addr, 2).await;
    frame::write(&mut old, &Wire::Raft(message(1)), 1024)
        .await
        .unwrap();
    assert_eq!(recv(&mut a_rx).await.message, message(1));
    let mut new = raw_client(a_addr, 2).await;
    frame::write(&mut new, &Wire::Raft(message(2)), 1024)
        .await
        .unwrap();
    assert_eq!(recv(&mut a_rx).await.message, message(2));
    closed_by_server(&mut old).await;
}

#[tokio::test]
async fn a_peer_that_connects_cuts_our_backoff_towards_it_short() {
    let ls = listeners(2).await;
    let peers = addresses(&ls);
    let mut ls = ls.into_iter();
    let a_listener = ls.next().unwrap();
    drop(ls); // B is down: its port refuses connections.
    let slow = TransportConfig {
        backoff_min: Duration::from_secs(60),
        backoff_max: Duration::from_secs(60),
        ..TransportConfig::default()
    };
    let (a, _a_rx) = Transport::start(NodeId(1), a_listener, &peers, slow).unwrap();
    tokio::time::timeout(BOUND, async {
        while a.stats().connect_failures.load(Ordering::Relaxed) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("A tried B once and is now backing off for a minute");
    a.send(NodeId(2), message(7)).unwrap();

    // B comes up and connects to A: A's link to B must not wait out its minute.
    let b_listener = TcpListener::bind(peers[&NodeId(2)]).await.unwrap();
    let (_b, mut b_rx) = Transport::start(NodeId(2), b_listener, &peers, fast()).unwrap();
    assert_eq!(recv(&mut b_rx).await.message, message(7));
}
