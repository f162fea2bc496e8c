use super::*;
use proptest::prelude::*;

fn cmd(time_us: u64, op: ExtentOp) -> ExtentCommand {
    ExtentCommand {
        request: None,
        time_us,
        op,
    }
}

fn req(client: u64, seq: u64, time_us: u64, op: ExtentOp) -> ExtentCommand {
    ExtentCommand {
        request: Some(RequestId { client, seq }),
        time_us,
        op,
    }
}

fn create(store: &mut ExtentStore, kind: ExtentType) -> ExtentId {
    match store.execute(cmd(0, ExtentOp::Create(kind))) {
        Ok(ExtentReply::Created(id)) => id,
        other => panic!("create answered {other:?}"),
    }
}

fn attr(store: &mut ExtentStore, id: ExtentId) -> ExtentAttr {
    match store.execute(cmd(0, ExtentOp::GetAttr(id))) {
        Ok(ExtentReply::Attr(attr)) => attr,
        other => panic!("getattr answered {other:?}"),
    }
}

#[test]
fn a_new_store_holds_only_an_empty_root_directory() {
    let mut store = ExtentStore::new();
    assert_eq!(store.extent_count(), 1);
    assert_eq!(store.ids().collect::<Vec<_>>(), vec![ExtentId::ROOT]);
    let root = attr(&mut store, ExtentId::ROOT);
    assert_eq!(root.kind, ExtentType::Dir);
    assert_eq!(root.size, 0);
    assert_eq!(store.used_blocks(), 0);
    assert_eq!(store.applied_index(), Index(0));
}

#[test]
fn create_takes_the_lowest_free_id() {
    let mut store = ExtentStore::new();
    assert_eq!(create(&mut store, ExtentType::File), ExtentId(2));
    assert_eq!(create(&mut store, ExtentType::Dir), ExtentId(3));
    assert_eq!(create(&mut store, ExtentType::File), ExtentId(4));
    assert_eq!(
        store.execute(cmd(0, ExtentOp::Remove(ExtentId(3)))),
        Ok(ExtentReply::Removed)
    );
    assert_eq!(create(&mut store, ExtentType::File), ExtentId(3));
    assert_eq!(create(&mut store, ExtentType::File), ExtentId(5));
    assert_eq!(attr(&mut store, ExtentId(3)).kind, ExtentType::File);
}

#[test]
fn put_get_and_the_three_timestamps() {
    let mut store = ExtentStore::new();
    let Ok(ExtentReply::Created(id)) = store.execute(cmd(10, ExtentOp::Create(ExtentType::File)))
    else {
        panic!("create failed");
    };
    let created = attr(&mut store, id);
    assert_eq!(
        (created.atime_us, created.mtime_us, created.ctime_us),
        (10, 10, 10)
    );
    let put = store.execute(cmd(20, ExtentOp::Put(id, b"hello".to_vec())));
    assert_eq!(put, Ok(ExtentReply::Put));
    let written = attr(&mut store, id);
    assert_eq!(written.size, 5);
    assert_eq!(
        (written.atime_us, written.mtime_us, written.ctime_us),
        (10, 20, 20)
    );
    let got = store.execute(cmd(30, ExtentOp::Get(id)));
    assert_eq!(got, Ok(ExtentReply::Data(b"hello".to_vec())));
    let read = attr(&mut store, id);
    assert_eq!((read.atime_us, read.mtime_us, read.ctime_us), (30, 20, 20));
    // GetAttr itself changes nothing.
    let again = store.execute(cmd(40, ExtentOp::GetAttr(id)));
    assert_eq!(again, Ok(ExtentReply::Attr(read)));
}

#[test]
fn operations_on_a_missing_extent_fail_and_change_nothing() {
    let mut store = ExtentStore::new();
    create(&mut store, ExtentType::File);
    let before = store.clone();
    let missing = ExtentId(7);
    for op in [
        ExtentOp::Put(missing, vec![1]),
        ExtentOp::Get(missing),
        ExtentOp::GetAttr(missing),
        ExtentOp::Remove(missing),
        ExtentOp::Get(ExtentId(0)),
        ExtentOp::Put(ExtentId(u64::MAX), vec![]),
    ] {
        let id = match &op {
            ExtentOp::Put(id, _)
            | ExtentOp::Get(id)
            | ExtentOp::GetAttr(id)
            | ExtentOp::Remove(id) => *id,
            ExtentOp::Create(_) => unreachable!(),
        };
        assert_eq!(store.execute(cmd(5, op)), Err(ExtentError::NotFound(id)));
    }
    assert_eq!(store, before);
}

#[test]
fn the_root_cannot_be_removed() {
    let mut store = ExtentStore::new();
    assert_eq!(
        store.execute(cmd(0, ExtentOp::Remove(ExtentId::ROOT))),
        Err(ExtentError::RemoveRoot)
    );
    assert_eq!(store.extent_count(), 1);
}

#[test]
fn block_accounting_follows_the_inode_layout() {
    assert_eq!(MAX_EXTENT_BYTES, 116_736);
    assert_eq!(DATA_BLOCKS, 32_768 - 1_035);
    assert_eq!(blocks_for(0), 0);
    assert_eq!(blocks_for(1), 1);
    assert_eq!(blocks_for(512), 1);
    assert_eq!(blocks_for(513), 2);
    assert_eq!(blocks_for(100 * 512), 100);
    assert_eq!(blocks_for(100 * 512 + 1), 102, "the indirect block counts");
    assert_eq!(blocks_for(MAX_EXTENT_BYTES), MAX_FILE_BLOCKS + 1);
}

#[test]
fn an_extent_holds_at_most_maxfile_blocks() {
    let mut store = ExtentStore::new();
    let id = create(&mut store, ExtentType::File);
    let full = vec![7u8; usize::try_from(MAX_EXTENT_BYTES).unwrap()];
    assert_eq!(
        store.execute(cmd(1, ExtentOp::Put(id, full.clone()))),
        Ok(ExtentReply::Put)
    );
    assert_eq!(store.used_blocks(), MAX_FILE_BLOCKS + 1);
    let mut over = full;
    over.push(0);
    let before = store.clone();
    assert_eq!(
        store.execute(cmd(2, ExtentOp::Put(id, over))),
        Err(ExtentError::TooLarge {
            size: MAX_EXTENT_BYTES + 1,
            max: MAX_EXTENT_BYTES
        })
    );
    assert_eq!(store, before);
    // Shrinking gives the blocks back.
    assert_eq!(
        store.execute(cmd(3, ExtentOp::Put(id, vec![1; 513]))),
        Ok(ExtentReply::Put)
    );
    assert_eq!(store.used_blocks(), 2);
    store.execute(cmd(4, ExtentOp::Remove(id))).unwrap();
    assert_eq!(store.used_blocks(), 0);
}

#[test]
fn ids_run_out_at_inode_num() {
    let mut store = ExtentStore::new();
    for expected in 2..INODE_NUM {
        assert_eq!(create(&mut store, ExtentType::File), ExtentId(expected));
    }
    assert_eq!(store.extent_count() as u64, INODE_NUM - 1);
    assert_eq!(
        store.execute(cmd(0, ExtentOp::Create(ExtentType::Dir))),
        Err(ExtentError::OutOfExtents)
    );
    store
        .execute(cmd(0, ExtentOp::Remove(ExtentId(500))))
        .unwrap();
    assert_eq!(create(&mut store, ExtentType::Dir), ExtentId(500));
}

#[test]
fn the_disk_fills_up_and_removal_frees_it() {
    let mut store = ExtentStore::new();
    let full = vec![1u8; usize::try_from(MAX_EXTENT_BYTES).unwrap()];
    let per_file = MAX_FILE_BLOCKS + 1;
    let fits = DATA_BLOCKS / per_file;
    let mut ids = Vec::new();
    for _ in 0..fits {
        let id = create(&mut store, ExtentType::File);
        assert_eq!(
            store.execute(cmd(0, ExtentOp::Put(id, full.clone()))),
            Ok(ExtentReply::Put)
        );
        ids.push(id);
    }
    let last = create(&mut store, ExtentType::File);
    let free = DATA_BLOCKS - fits * per_file;
    assert_eq!(
        store.execute(cmd(0, ExtentOp::Put(last, full.clone()))),
        Err(ExtentError::NoSpace {
            needed: per_file,
            free
        })
    );
    assert_eq!(store.used_blocks(), fits * per_file);
    // What still fits is accepted: past NDIRECT blocks, one of the free ones is the indirect.
    assert!(free > NDIRECT + 1);
    let small = vec![2u8; usize::try_from((free - 1) * BLOCK_SIZE).unwrap()];
    assert_eq!(
        store.execute(cmd(0, ExtentOp::Put(last, small))),
        Ok(ExtentReply::Put)
    );
    assert_eq!(store.used_blocks(), DATA_BLOCKS);
    store.execute(cmd(0, ExtentOp::Remove(ids[0]))).unwrap();
    assert_eq!(
        store.execute(cmd(0, ExtentOp::Put(ids[1], vec![]))),
        Ok(ExtentReply::Put)
    );
    assert_eq!(
        store.execute(cmd(0, ExtentOp::Put(last, full))),
        Ok(ExtentReply::Put)
    );
}

#[test]
fn a_retried_request_takes_effect_once() {
    let mut store = ExtentStore::new();
    let first = store.execute(req(9, 1, 0, ExtentOp::Create(ExtentType::File)));
    assert_eq!(first, Ok(ExtentReply::Created(ExtentId(2))));
    let retry = store.execute(req(9, 1, 50, ExtentOp::Create(ExtentType::File)));
    assert_eq!(retry, first);
    assert_eq!(store.extent_count(), 2, "the retry created nothing");
    // Another client's request with the same number is its own.
    let other = store.execute(req(4, 1, 0, ExtentOp::Create(ExtentType::File)));
    assert_eq!(other, Ok(ExtentReply::Created(ExtentId(3))));
    // A retried read answers what the first copy read, not the state now.
    let read = store.execute(req(9, 2, 0, ExtentOp::Get(ExtentId(2))));
    assert_eq!(read, Ok(ExtentReply::Data(Vec::new())));
    store
        .execute(req(4, 2, 0, ExtentOp::Put(ExtentId(2), vec![5])))
        .unwrap();
    assert_eq!(
        store.execute(req(9, 2, 0, ExtentOp::Get(ExtentId(2)))),
        read
    );
    // An older request is refused and does nothing.
    let before = store.clone();
    assert_eq!(
        store.execute(req(9, 1, 0, ExtentOp::Remove(ExtentId(2)))),
        Err(ExtentError::Stale {
            client: 9,
            seq: 1,
            last: 2
        })
    );
    assert_eq!(store, before);
    // Failures are remembered like successes.
    let failed = store.execute(req(9, 3, 0, ExtentOp::Get(ExtentId(99))));
    store
        .execute(req(4, 3, 0, ExtentOp::Create(ExtentType::File)))
        .unwrap();
    assert_eq!(
        store.execute(req(9, 3, 0, ExtentOp::Get(ExtentId(99)))),
        failed
    );
}

#[test]
fn commands_without_a_request_id_apply_every_time() {
    let mut store = ExtentStore::new();
    create(&mut store, ExtentType::File);
    create(&mut store, ExtentType::File);
    assert_eq!(store.extent_count(), 3);
}

#[test]
fn apply_records_the_index() {
    let mut store = ExtentStore::new();
    let out = StateMachine::apply(
        &mut store,
        Index(3),
        req(1, 1, 0, ExtentOp::Create(ExtentType::Dir)),
    );
    assert_eq!(out, Ok(ExtentReply::Created(ExtentId(2))));
    assert_eq!(store.applied_index(), Index(3));
}

fn busy_store() -> ExtentStore {
    let mut store = ExtentStore::new();
    StateMachine::apply(
        &mut store,
        Index(1),
        req(1, 1, 10, ExtentOp::Create(ExtentType::File)),
    )
    .unwrap();
    StateMachine::apply(
        &mut store,
        Index(2),
        req(
            1,
            2,
            20,
            ExtentOp::Put(ExtentId(2), b"data with\nnewline".to_vec()),
        ),
    )
    .unwrap();
    StateMachine::apply(
        &mut store,
        Index(3),
        req(2, 1, 30, ExtentOp::Create(ExtentType::Dir)),
    )
    .unwrap();
    store
}

#[test]
fn a_snapshot_carries_the_index_the_extents_and_the_answers() {
    let store = busy_store();
    let bytes = store.snapshot();
    let mut restored = ExtentStore::new();
    restored.restore(&bytes).unwrap();
    assert_eq!(restored, store);
    assert_eq!(restored.applied_index(), Index(3));
    assert_eq!(restored.used_blocks(), 1);
    // The dedup table came along: a retry after the restore gets the first answer.
    assert_eq!(
        restored.execute(req(2, 1, 99, ExtentOp::Create(ExtentType::Dir))),
        Ok(ExtentReply::Created(ExtentId(3)))
    );
    assert_eq!(restored.extent_count(), 3);
}

fn encode(data: &SnapshotData) -> Vec<u8> {
    postcard::to_allocvec(data).unwrap()
}

fn snapshot_data(store: &ExtentStore) -> SnapshotData {
    postcard::from_bytes(&store.snapshot()).unwrap()
}

#[test]
fn restore_rejects_garbage_and_keeps_the_state() {
    let good = busy_store();
    let mut store = good.clone();
    let rejected = |store: &mut ExtentStore, bytes: &[u8]| -> ExtentSnapshotError {
        let error = ExtentStore::decode(bytes).expect_err("garbage restored");
        assert!(store.restore(bytes).is_err());
        error
    };
    assert!(matches!(
        rejected(&mut store, &[]),
        ExtentSnapshotError::Decode(_)
    ));
    assert!(matches!(
        rejected(&mut store, &[0xff; 3]),
        ExtentSnapshotError::Decode(_)
    ));
    assert!(matches!(
        rejected(&mut store, b"EXT0 not a snapshot at all"),
        ExtentSnapshotError::Format { .. } | ExtentSnapshotError::Decode(_)
    ));
    let mut trailing = good.snapshot();
    trailing.push(0);
    assert_eq!(
        rejected(&mut store, &trailing),
        ExtentSnapshotError::TrailingBytes(1)
    );
    let truncated = &good.snapshot()[..good.snapshot().len() - 1];
    assert!(matches!(
        rejected(&mut store, truncated),
        ExtentSnapshotError::Decode(_)
    ));

    let mut wrong_format = snapshot_data(&good);
    wrong_format.format = 7;
    assert_eq!(
        rejected(&mut store, &encode(&wrong_format)),
        ExtentSnapshotError::Format {
            found: 7,
            expected: SNAPSHOT_FORMAT
        }
    );
    let mut no_root = snapshot_data(&good);
    no_root.extents.retain(|(id, _)| *id != ExtentId::ROOT);
    assert!(matches!(
        rejected(&mut store, &encode(&no_root)),
        ExtentSnapshotError::Invalid(_)
    ));
    let mut file_root = snapshot_data(&good);
    file_root.extents[0].1.kind = ExtentType::File;
    assert!(matches!(
        rejected(&mut store, &encode(&file_root)),
        ExtentSnapshotError::Invalid(_)
    ));
    let mut out_of_range = snapshot_data(&good);
    out_of_range.extents[1].0 = ExtentId(INODE_NUM);
    assert!(matches!(
        rejected(&mut store, &encode(&out_of_range)),
        ExtentSnapshotError::Invalid(_)
    ));
    let mut twice = snapshot_data(&good);
    let copy = twice.extents[1].clone();
    twice.extents.push(copy);
    assert!(matches!(
        rejected(&mut store, &encode(&twice)),
        ExtentSnapshotError::Invalid(_)
    ));
    let mut too_big = snapshot_data(&good);
    too_big.extents[1].1.data = vec![0; usize::try_from(MAX_EXTENT_BYTES).unwrap() + 1];
    assert!(matches!(
        rejected(&mut store, &encode(&too_big)),
        ExtentSnapshotError::Invalid(_)
    ));
    let mut client_twice = snapshot_data(&good);
    let copy = client_twice.answered[0].clone();
    client_twice.answered.push(copy);
    assert!(matches!(
        rejected(&mut store, &encode(&client_twice)),
        ExtentSnapshotError::Invalid(_)
    ));
    assert_eq!(store, good, "a failed restore changed the store");
}

// ----- Property test against a reference model -----

/// The simplest store that could work: a map, a linear search for free ids, and a sum of
/// blocks computed from scratch.
#[derive(Default)]
struct Model {
    extents: BTreeMap<u64, (ExtentType, Vec<u8>, [u64; 3])>,
    answered: BTreeMap<u64, (u64, ExtentOutput)>,
}

impl Model {
    fn new() -> Model {
        let mut model = Model::default();
        model
            .extents
            .insert(1, (ExtentType::Dir, Vec::new(), [0, 0, 0]));
        model
    }

    fn blocks(size: usize) -> u64 {
        let data = (size as u64).div_ceil(512);
        data + u64::from(data > 100)
    }

    fn run(&mut self, command: &ExtentCommand) -> ExtentOutput {
        if let Some(r) = command.request {
            if let Some((seq, out)) = self.answered.get(&r.client) {
                if r.seq == *seq {
                    return out.clone();
                }
                if r.seq < *seq {
                    return Err(ExtentError::Stale {
                        client: r.client,
                        seq: r.seq,
                        last: *seq,
                    });
                }
            }
            let out = self.perform(command.time_us, &command.op);
            self.answered.insert(r.client, (r.seq, out.clone()));
            return out;
        }
        self.perform(command.time_us, &command.op)
    }

    fn perform(&mut self, t: u64, op: &ExtentOp) -> ExtentOutput {
        let missing = |id: &ExtentId| Err(ExtentError::NotFound(*id));
        match op {
            ExtentOp::Create(kind) => {
                let Some(id) = (1..1024).find(|i| !self.extents.contains_key(i)) else {
                    return Err(ExtentError::OutOfExtents);
                };
                self.extents.insert(id, (*kind, Vec::new(), [t, t, t]));
                Ok(ExtentReply::Created(ExtentId(id)))
            }
            ExtentOp::Put(id, data) => {
                if data.len() > 116_736 {
                    return Err(ExtentError::TooLarge {
                        size: data.len() as u64,
                        max: 116_736,
                    });
                }
                if !self.extents.contains_key(&id.0) {
                    return missing(id);
                }
                let others: u64 = self
                    .extents
                    .iter()
                    .filter(|(other, _)| **other != id.0)
                    .map(|(_, e)| Model::blocks(e.1.len()))
                    .sum();
                let used: u64 = self
                    .extents
                    .values()
                    .map(|e| Model::blocks(e.1.len()))
                    .sum();
                let now = Model::blocks(self.extents[&id.0].1.len());
                if others + Model::blocks(data.len()) > DATA_BLOCKS {
                    return Err(ExtentError::NoSpace {
                        needed: Model::blocks(data.len()).saturating_sub(now),
                        free: DATA_BLOCKS - used,
                    });
                }
                let extent = self.extents.get_mut(&id.0).unwrap();
                extent.1 = data.clone();
                extent.2[1] = t;
                extent.2[2] = t;
                Ok(ExtentReply::Put)
            }
            ExtentOp::Get(id) => match self.extents.get_mut(&id.0) {
                Some(extent) => {
                    extent.2[0] = t;
                    Ok(ExtentReply::Data(extent.1.clone()))
                }
                None => missing(id),
            },
            ExtentOp::GetAttr(id) => match self.extents.get(&id.0) {
                Some((kind, data, [a, m, c])) => Ok(ExtentReply::Attr(ExtentAttr {
                    kind: *kind,
                    size: data.len() as u64,
                    atime_us: *a,
                    mtime_us: *m,
                    ctime_us: *c,
                })),
                None => missing(id),
            },
            ExtentOp::Remove(id) => {
                if id.0 == 1 {
                    return Err(ExtentError::RemoveRoot);
                }
                match self.extents.remove(&id.0) {
                    Some(_) => Ok(ExtentReply::Removed),
                    None => missing(id),
                }
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Step {
    Op {
        op: ExtentOp,
        /// `None`: no request id; `Some((client, how))`: 0 next number, 1 repeat, 2 older.
        request: Option<(u64, u8)>,
        advance_us: u64,
    },
    SnapshotRoundTrip,
}

fn op_strategy() -> impl Strategy<Value = ExtentOp> {
    let id = (0u64..8).prop_map(ExtentId);
    let data = prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..1200),
        1 => (any::<u8>(), prop_oneof![Just(116_736usize), Just(116_737usize)])
            .prop_map(|(byte, len)| vec![byte; len]),
    ];
    prop_oneof![
        3 => prop_oneof![Just(ExtentType::File), Just(ExtentType::Dir)].prop_map(ExtentOp::Create),
        3 => (id.clone(), data).prop_map(|(id, data)| ExtentOp::Put(id, data)),
        2 => id.clone().prop_map(ExtentOp::Get),
        2 => id.clone().prop_map(ExtentOp::GetAttr),
        2 => id.prop_map(ExtentOp::Remove),
    ]
}

fn step_strategy() -> impl Strategy<Value = Step> {
    let request = proptest::option::of((0u64..3, 0u8..3));
    prop_oneof![
        12 => (op_strategy(), request, 0u64..1000)
            .prop_map(|(op, request, advance_us)| Step::Op { op, request, advance_us }),
        1 => Just(Step::SnapshotRoundTrip),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_store_behaves_like_the_model(steps in proptest::collection::vec(step_strategy(), 1..60)) {
        let mut store = ExtentStore::new();
        let mut model = Model::new();
        let mut seqs: BTreeMap<u64, u64> = BTreeMap::new();
        let mut now = 0;
        let mut index = 0;
        for step in steps {
            match step {
                Step::SnapshotRoundTrip => {
                    let mut restored = ExtentStore::new();
                    restored.restore(&store.snapshot()).unwrap();
                    prop_assert_eq!(&restored, &store);
                    store = restored;
                }
                Step::Op { op, request, advance_us } => {
                    now += advance_us;
                    let request = request.map(|(client, how)| {
                        let last = seqs.get(&client).copied().unwrap_or(0);
                        let seq = match how {
                            0 => last + 1,
                            1 => last.max(1),
                            _ => last.saturating_sub(1).max(1),
                        };
                        seqs.insert(client, last.max(seq));
                        RequestId { client, seq }
                    });
                    let command = ExtentCommand { request, time_us: now, op };
                    index += 1;
                    let expected = model.run(&command);
                    let got = StateMachine::apply(&mut store, Index(index), command);
                    prop_assert_eq!(got, expected);
                }
            }
            let ids: Vec<u64> = store.ids().map(|id| id.0).collect();
            let model_ids: Vec<u64> = model.extents.keys().copied().collect();
            prop_assert_eq!(ids, model_ids);
            let used: u64 = model.extents.values().map(|e| Model::blocks(e.1.len())).sum();
            prop_assert_eq!(store.used_blocks(), used);
        }
        for id in 0..8 {
            let probe = cmd(0, ExtentOp::GetAttr(ExtentId(id)));
            prop_assert_eq!(store.clone().execute(probe.clone()), model.run(&probe));
        }
    }
}
