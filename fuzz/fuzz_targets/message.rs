//! Bytes → a message decoded the way a real transport would, stepped into a node in each role.
//! Decoding must fail with a typed error, never a panic; whatever decodes, however nonsensical,
//! must be handled without a panic (and the node's debug assertions must hold).

#![no_main]

use libfuzzer_sys::fuzz_target;
use raft::{Config, Input, Message, Node, NodeId};

fuzz_target!(|data: &[u8]| {
    let Ok(message) = Message::decode(data) else {
        return;
    };
    let voters = vec![NodeId(1), NodeId(2), NodeId(3)];
    let mut node = Node::new(Config::new(NodeId(1), voters, 7)).expect("a valid config");
    for from in [NodeId(2), NodeId(3), NodeId(9)] {
        let _ = node.step(Input::Receive {
            from,
            message: message.clone(),
        });
        // Ticks move it through follower, candidate and (maybe) leader with the message's effects.
        for _ in 0..100 {
            let _ = node.step(Input::Tick);
        }
    }
});
