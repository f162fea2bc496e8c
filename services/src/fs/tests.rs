use super::*;
use crate::extent::INODE_NUM;
use proptest::prelude::*;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Runs a future over [`LocalExtents`], which never waits.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a local extent call waited"),
    }
}

fn fs() -> Fs<LocalExtents> {
    Fs::new(LocalExtents::new())
}

const ROOT: Inum = ExtentId::ROOT;

#[test]
fn names_with_spaces_tabs_and_newlines_are_ordinary_names() {
    let mut fs = fs();
    let names = ["file -\n-\t-abc-42-0", " ", "\t", "\n", "a b", "é"];
    let mut inums = Vec::new();
    for name in names {
        inums.push(block_on(fs.create(ROOT, name)).unwrap());
    }
    for (name, inum) in names.iter().zip(&inums) {
        assert_eq!(block_on(fs.lookup(ROOT, name)), Ok(*inum), "{name:?}");
    }
    let listed = block_on(fs.readdir(ROOT)).unwrap();
    let mut expected: Vec<(String, Inum)> = names
        .iter()
        .map(|n| n.to_string())
        .zip(inums.iter().copied())
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
    // A prefix or a near miss is another name.
    assert_eq!(
        block_on(fs.lookup(ROOT, "file -\n-\t-abc-42-")),
        Err(FsError::NotFound("file -\n-\t-abc-42-".to_string()))
    );
}

#[test]
fn bad_names_are_refused_with_typed_errors() {
    let mut fs = fs();
    let long = "x".repeat(NAME_MAX_BYTES + 1);
    let cases = [
        ("", NameError::Empty, "EINVAL"),
        ("/", NameError::Slash, "EINVAL"),
        ("a/b", NameError::Slash, "EINVAL"),
        ("a\0b", NameError::Nul, "EINVAL"),
        (".", NameError::Reserved(".".to_string()), "EINVAL"),
        ("..", NameError::Reserved("..".to_string()), "EINVAL"),
        (
            long.as_str(),
            NameError::TooLong(NAME_MAX_BYTES + 1),
            "ENAMETOOLONG",
        ),
    ];
    for (name, error, errno) in cases {
        let refusal = FsError::InvalidName(error);
        assert_eq!(refusal.errno(), errno);
        let expected = Err(refusal);
        assert_eq!(block_on(fs.create(ROOT, name)), expected, "{name:?}");
        assert_eq!(block_on(fs.mkdir(ROOT, name)), expected);
        assert_eq!(block_on(fs.lookup(ROOT, name)), expected);
        assert_eq!(block_on(fs.unlink(ROOT, name)).map(|()| ROOT), expected);
    }
    assert_eq!(block_on(fs.readdir(ROOT)), Ok(Vec::new()));
    let longest = "y".repeat(NAME_MAX_BYTES);
    assert!(block_on(fs.create(ROOT, &longest)).is_ok());
}

#[test]
fn create_mkdir_and_lookup_errors() {
    let mut fs = fs();
    let file = block_on(fs.create(ROOT, "f")).unwrap();
    let dir = block_on(fs.mkdir(ROOT, "d")).unwrap();
    assert_ne!(file, dir);
    assert_eq!(
        block_on(fs.create(ROOT, "f")),
        Err(FsError::Exists("f".into()))
    );
    assert_eq!(
        block_on(fs.mkdir(ROOT, "f")),
        Err(FsError::Exists("f".into()))
    );
    assert_eq!(
        block_on(fs.create(ROOT, "d")),
        Err(FsError::Exists("d".into()))
    );
    assert_eq!(block_on(fs.create(file, "x")), Err(FsError::NotDir(file)));
    assert_eq!(block_on(fs.lookup(file, "x")), Err(FsError::NotDir(file)));
    assert_eq!(block_on(fs.readdir(file)), Err(FsError::NotDir(file)));
    assert_eq!(
        block_on(fs.lookup(dir, "f")),
        Err(FsError::NotFound("f".into()))
    );
    assert_eq!(
        block_on(fs.lookup(ExtentId(77), "f")),
        Err(FsError::NoInode(ExtentId(77)))
    );
    // Nested: an entry lives in its own directory only.
    let inner = block_on(fs.create(dir, "f")).unwrap();
    assert_eq!(block_on(fs.lookup(dir, "f")), Ok(inner));
    assert_eq!(block_on(fs.lookup(ROOT, "f")), Ok(file));
    assert_eq!(
        block_on(fs.readdir(dir)),
        Ok(vec![("f".to_string(), inner)])
    );
    assert!(block_on(fs.is_dir(dir)).unwrap());
    assert!(!block_on(fs.is_dir(file)).unwrap());
    assert_eq!(block_on(fs.getattr(dir)).unwrap().kind, ExtentType::Dir);
}

#[test]
fn sparse_writes_fill_holes_with_zeros() {
    let mut fs = fs();
    let f = block_on(fs.create(ROOT, "sparse")).unwrap();
    assert_eq!(block_on(fs.write(f, 1000, b"tail")), Ok(4));
    assert_eq!(block_on(fs.getattr(f)).unwrap().size, 1004);
    let all = block_on(fs.read(f, 0, 5000)).unwrap();
    assert_eq!(all.len(), 1004);
    assert!(all[..1000].iter().all(|&b| b == 0));
    assert_eq!(&all[1000..], b"tail");
    // A write inside the file overwrites in place and keeps the size.
    assert_eq!(block_on(fs.write(f, 2, b"ab")), Ok(2));
    assert_eq!(block_on(fs.read(f, 0, 5)), Ok(vec![0, 0, b'a', b'b', 0]));
    assert_eq!(block_on(fs.getattr(f)).unwrap().size, 1004);
    // A write that straddles the end extends by the part past it.
    assert_eq!(block_on(fs.write(f, 1002, b"XYZW")), Ok(4));
    assert_eq!(block_on(fs.read(f, 998, 100)), Ok(b"\0\0taXYZW".to_vec()));
    // Writing nothing past the end does not extend.
    assert_eq!(block_on(fs.write(f, 5000, b"")), Ok(0));
    assert_eq!(block_on(fs.getattr(f)).unwrap().size, 1006);
}

#[test]
fn reads_stop_at_the_end_of_the_file() {
    let mut fs = fs();
    let f = block_on(fs.create(ROOT, "r")).unwrap();
    block_on(fs.write(f, 0, b"0123456789")).unwrap();
    assert_eq!(block_on(fs.read(f, 3, 4)), Ok(b"3456".to_vec()));
    assert_eq!(block_on(fs.read(f, 8, 100)), Ok(b"89".to_vec()));
    assert_eq!(block_on(fs.read(f, 10, 1)), Ok(Vec::new()));
    assert_eq!(block_on(fs.read(f, u64::MAX, u64::MAX)), Ok(Vec::new()));
    assert_eq!(block_on(fs.read(f, 0, 0)), Ok(Vec::new()));
}

#[test]
fn files_are_bounded_by_the_extent_size() {
    let mut fs = fs();
    let f = block_on(fs.create(ROOT, "big")).unwrap();
    let max = MAX_EXTENT_BYTES;
    assert_eq!(
        block_on(fs.write(f, max, b"x")),
        Err(FsError::FileTooLarge { end: max + 1, max })
    );
    assert_eq!(
        block_on(fs.write(f, u64::MAX, b"x")),
        Err(FsError::FileTooLarge { end: u64::MAX, max })
    );
    assert_eq!(
        block_on(fs.truncate(f, max + 1)),
        Err(FsError::FileTooLarge { end: max + 1, max })
    );
    assert_eq!(block_on(fs.getattr(f)).unwrap().size, 0);
    assert_eq!(block_on(fs.write(f, max - 1, b"x")), Ok(1));
    assert_eq!(block_on(fs.getattr(f)).unwrap().size, max);
    assert_eq!(
        block_on(fs.write(f, max - 1, b"xy")).unwrap_err().errno(),
        "EFBIG"
    );
}

#[test]
fn truncate_grows_with_zeros_and_shrinks() {
    let mut fs = fs();
    let f = block_on(fs.create(ROOT, "t")).unwrap();
    block_on(fs.write(f, 0, b"abcdef")).unwrap();
    block_on(fs.truncate(f, 3)).unwrap();
    assert_eq!(block_on(fs.read(f, 0, 100)), Ok(b"abc".to_vec()));
    block_on(fs.truncate(f, 6)).unwrap();
    assert_eq!(block_on(fs.read(f, 0, 100)), Ok(b"abc\0\0\0".to_vec()));
    block_on(fs.truncate(f, 0)).unwrap();
    assert_eq!(block_on(fs.getattr(f)).unwrap().size, 0);
    let d = block_on(fs.mkdir(ROOT, "d")).unwrap();
    assert_eq!(block_on(fs.truncate(d, 0)), Err(FsError::IsDir(d)));
    assert_eq!(block_on(fs.write(d, 0, b"x")), Err(FsError::IsDir(d)));
    assert_eq!(block_on(fs.read(d, 0, 1)), Err(FsError::IsDir(d)));
}

#[test]
fn unlink_removes_the_entry_and_frees_the_extent() {
    let mut fs = fs();
    let f = block_on(fs.create(ROOT, "gone soon")).unwrap();
    let kept = block_on(fs.create(ROOT, "kept")).unwrap();
    block_on(fs.write(f, 0, b"data")).unwrap();
    assert_eq!(fs.client().store().extent_count(), 3);
    block_on(fs.unlink(ROOT, "gone soon")).unwrap();
    assert_eq!(
        block_on(fs.lookup(ROOT, "gone soon")),
        Err(FsError::NotFound("gone soon".into()))
    );
    assert_eq!(fs.client().store().extent_count(), 2);
    assert_eq!(block_on(fs.getattr(f)), Err(FsError::NoInode(f)));
    assert_eq!(block_on(fs.readdir(ROOT)), Ok(vec![("kept".into(), kept)]));
    assert_eq!(
        block_on(fs.unlink(ROOT, "gone soon")),
        Err(FsError::NotFound("gone soon".into()))
    );
    // Directories are not unlinked.
    let d = block_on(fs.mkdir(ROOT, "dir")).unwrap();
    assert_eq!(block_on(fs.unlink(ROOT, "dir")), Err(FsError::IsDir(d)));
    assert_eq!(block_on(fs.lookup(ROOT, "dir")), Ok(d));
    // The name can be used again.
    let again = block_on(fs.create(ROOT, "gone soon")).unwrap();
    assert_eq!(block_on(fs.read(again, 0, 10)), Ok(Vec::new()));
}

#[test]
fn readdir_order_does_not_depend_on_creation_order() {
    let names = ["b", "a", "c c", "\tz", "B", "aa"];
    let mut first = fs();
    for name in names {
        block_on(first.create(ROOT, name)).unwrap();
    }
    let mut second = fs();
    for name in names.iter().rev() {
        block_on(second.create(ROOT, name)).unwrap();
    }
    let list = |fs: &mut Fs<LocalExtents>| -> Vec<String> {
        block_on(fs.readdir(ROOT))
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    };
    let expected = vec!["\tz", "B", "a", "aa", "b", "c c"];
    assert_eq!(list(&mut first), expected);
    assert_eq!(list(&mut second), expected);
}

#[test]
fn writes_stamp_mtime_and_reads_stamp_atime() {
    let mut fs = fs();
    fs.client_mut().set_time_us(1_000);
    let f = block_on(fs.create(ROOT, "times")).unwrap();
    let created = block_on(fs.getattr(f)).unwrap();
    fs.client_mut().set_time_us(5_000);
    block_on(fs.write(f, 0, b"x")).unwrap();
    let written = block_on(fs.getattr(f)).unwrap();
    assert!(written.mtime_us > created.mtime_us);
    assert_eq!(written.ctime_us, written.mtime_us);
    fs.client_mut().set_time_us(9_000);
    block_on(fs.read(f, 0, 1)).unwrap();
    let read = block_on(fs.getattr(f)).unwrap();
    assert!(read.atime_us >= 9_000);
    assert_eq!(read.mtime_us, written.mtime_us);
}

#[test]
fn a_corrupt_directory_is_an_io_error_not_a_panic() {
    let mut fs = fs();
    block_on(fs.client_mut().put(ROOT, vec![0xff, 0xff, 0xff])).unwrap();
    let error = block_on(fs.readdir(ROOT)).unwrap_err();
    assert!(matches!(error, FsError::CorruptDirectory { dir, .. } if dir == ROOT));
    assert_eq!(error.errno(), "EIO");
    assert!(block_on(fs.create(ROOT, "x")).is_err());

    let one = Entries::from([("b".to_string(), ExtentId(2))]);
    assert_eq!(decode_dir(&encode_dir(&one)), Ok(one));
    let pair = |name: &str, inum: u64| DirEntry {
        name: name.to_string(),
        inum: ExtentId(inum),
    };
    let encode = |list: Vec<DirEntry>| postcard::to_allocvec(&list).unwrap();
    assert!(decode_dir(&encode(vec![pair("b", 2), pair("a", 3)])).is_err());
    assert!(decode_dir(&encode(vec![pair("a", 2), pair("a", 3)])).is_err());
    assert!(decode_dir(&encode(vec![pair("a/b", 2)])).is_err());
    assert!(decode_dir(&encode(vec![pair("", 2)])).is_err());
    let mut trailing = encode(vec![pair("a", 2)]);
    trailing.push(0);
    assert!(decode_dir(&trailing).is_err());
    assert_eq!(decode_dir(&[]), Ok(Entries::new()));
}

#[test]
fn running_out_of_inodes_is_enospc() {
    let mut fs = fs();
    for i in 0..INODE_NUM - 2 {
        block_on(fs.create(ROOT, &format!("{i}"))).unwrap();
    }
    let error = block_on(fs.create(ROOT, "one too many")).unwrap_err();
    assert_eq!(error, FsError::NoSpace(ExtentError::OutOfExtents));
    assert_eq!(error.errno(), "ENOSPC");
    assert_eq!(
        block_on(fs.lookup(ROOT, "one too many")),
        Err(FsError::NotFound("one too many".into()))
    );
}

#[test]
fn a_full_directory_table_is_enospc_and_leaves_no_orphan() {
    let mut fs = fs();
    // Entries of 255-byte names: about 450 fill the directory's extent.
    let mut created = 0;
    let error = loop {
        let name = format!("{created:0>255}");
        match block_on(fs.create(ROOT, &name)) {
            Ok(_) => created += 1,
            Err(error) => break error,
        }
    };
    assert!(matches!(
        error,
        FsError::NoSpace(ExtentError::TooLarge { .. })
    ));
    assert!(created > 400, "only {created} entries fit");
    assert_eq!(fs.client().store().extent_count(), created + 1);
}

/// A client that fails the calls whose numbers (from 0) are listed in `fail` before they
/// reach the store, and loses the replies of those in `lose_reply` after the store applied them.
struct Flaky {
    inner: LocalExtents,
    calls: usize,
    fail: Vec<usize>,
    lose_reply: Vec<usize>,
}

impl ExtentClient for Flaky {
    fn call(&mut self, op: ExtentOp) -> impl Future<Output = Result<ExtentReply, CallError>> {
        let number = self.calls;
        self.calls += 1;
        let failed = self.fail.contains(&number);
        let lost = self.lose_reply.contains(&number);
        async move {
            if failed {
                return Err(CallError::Unavailable(format!("call {number} lost")));
            }
            let reply = self.inner.call(op).await;
            if lost {
                return Err(CallError::Unavailable(format!("reply {number} lost")));
            }
            reply
        }
    }
}

#[test]
fn a_create_whose_directory_update_lost_its_reply_never_lets_two_names_share_an_inode() {
    // create = getattr(parent), get(parent), create, put(parent): the put applies, its reply
    // is lost. The entry may exist, so its extent must stay allocated.
    let mut fs = Fs::new(Flaky {
        inner: LocalExtents::new(),
        calls: 0,
        fail: Vec::new(),
        lose_reply: vec![3],
    });
    let error = block_on(fs.create(ROOT, "f")).unwrap_err();
    assert_eq!(error, FsError::Unavailable("reply 3 lost".into()));
    let f = block_on(fs.lookup(ROOT, "f")).expect("the put took effect");
    assert!(block_on(fs.getattr(f)).is_ok(), "f names a live extent");
    let g = block_on(fs.create(ROOT, "g")).unwrap();
    assert_ne!(f, g, "two names share one inode");
    block_on(fs.write(g, 0, b"secret of g")).unwrap();
    assert_eq!(block_on(fs.read(f, 0, 100)), Ok(Vec::new()));
}

#[test]
fn a_failed_call_is_unavailable_and_create_keeps_its_extent_when_unsure() {
    // create = getattr(parent), get(parent), create, put(parent): fail the put. Without an
    // answer the put might have applied, so the new extent stays (an orphan, not a reuse).
    let mut fs = Fs::new(Flaky {
        inner: LocalExtents::new(),
        calls: 0,
        fail: vec![3],
        lose_reply: Vec::new(),
    });
    let error = block_on(fs.create(ROOT, "f")).unwrap_err();
    assert_eq!(error, FsError::Unavailable("call 3 lost".into()));
    assert_eq!(error.errno(), "EIO");
    assert_eq!(
        fs.client().inner.store().extent_count(),
        2,
        "root and the orphan"
    );
    assert_eq!(block_on(fs.readdir(ROOT)), Ok(Vec::new()));
    // Every single lost call of a write makes the write fail, never panic.
    for lost in 0..4 {
        let mut fs = Fs::new(Flaky {
            inner: LocalExtents::new(),
            calls: 0,
            fail: Vec::new(),
            lose_reply: Vec::new(),
        });
        let f = block_on(fs.create(ROOT, "f")).unwrap();
        fs.client_mut().fail = vec![fs.client().calls + lost];
        let result = block_on(fs.write(f, 0, b"abc"));
        if lost < 3 {
            assert!(matches!(result, Err(FsError::Unavailable(_))), "{result:?}");
        } else {
            assert_eq!(result, Ok(3), "a fourth call is not made");
        }
    }
}

#[test]
fn errors_from_the_store_map_to_posix_errors() {
    let cases = [
        (
            CallError::Extent(ExtentError::NotFound(ExtentId(3))),
            "ENOENT",
        ),
        (CallError::Extent(ExtentError::OutOfExtents), "ENOSPC"),
        (
            CallError::Extent(ExtentError::NoSpace { needed: 1, free: 0 }),
            "ENOSPC",
        ),
        (
            CallError::Extent(ExtentError::TooLarge { size: 9, max: 8 }),
            "EFBIG",
        ),
        (CallError::Extent(ExtentError::RemoveRoot), "EIO"),
        (CallError::Unavailable("x".into()), "EIO"),
        (
            CallError::Unexpected {
                op: "get",
                answer: "Put".into(),
            },
            "EIO",
        ),
    ];
    for (call, errno) in cases {
        assert_eq!(FsError::from(call.clone()).errno(), errno, "{call:?}");
    }
}

// ----- Property test against an in-memory tree -----

#[derive(Clone, Debug, PartialEq)]
enum Node {
    File(Vec<u8>),
    Dir(BTreeMap<String, Node>),
}

const NAMES: [&str; 4] = ["a", "b c", "\t", "x\ny"];

#[derive(Clone, Debug)]
enum Op {
    Create(Vec<usize>, usize),
    Mkdir(Vec<usize>, usize),
    Write(Vec<usize>, u64, Vec<u8>),
    Read(Vec<usize>, u64, u64),
    Truncate(Vec<usize>, u64),
    Unlink(Vec<usize>, usize),
    Readdir(Vec<usize>),
    Getattr(Vec<usize>),
}

fn path() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0..NAMES.len(), 0..3)
}

fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..1500,
        1 => (MAX_EXTENT_BYTES - 8)..(MAX_EXTENT_BYTES + 8),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let name = 0..NAMES.len();
    prop_oneof![
        3 => (path(), name.clone()).prop_map(|(p, n)| Op::Create(p, n)),
        2 => (path(), name.clone()).prop_map(|(p, n)| Op::Mkdir(p, n)),
        4 => (path(), offset(), proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(p, o, d)| Op::Write(p, o, d)),
        3 => (path(), offset(), 0u64..2000).prop_map(|(p, o, l)| Op::Read(p, o, l)),
        2 => (path(), offset()).prop_map(|(p, s)| Op::Truncate(p, s)),
        2 => (path(), name).prop_map(|(p, n)| Op::Unlink(p, n)),
        1 => path().prop_map(Op::Readdir),
        1 => path().prop_map(Op::Getattr),
    ]
}

/// What an operation returned, comparable between the filesystem and the model.
#[derive(Debug, PartialEq)]
enum Seen {
    Done,
    Data(Vec<u8>),
    Names(Vec<String>),
    Attr(ExtentType, u64),
    Error(&'static str),
}

fn model_resolve<'a>(root: &'a mut Node, path: &[usize]) -> Result<&'a mut Node, &'static str> {
    let mut node = root;
    for &component in path {
        match node {
            Node::Dir(entries) => {
                node = entries.get_mut(NAMES[component]).ok_or("ENOENT")?;
            }
            Node::File(_) => return Err("ENOTDIR"),
        }
    }
    Ok(node)
}

fn model_dir<'a>(
    root: &'a mut Node,
    path: &[usize],
) -> Result<&'a mut BTreeMap<String, Node>, &'static str> {
    match model_resolve(root, path)? {
        Node::Dir(entries) => Ok(entries),
        Node::File(_) => Err("ENOTDIR"),
    }
}

fn model_file<'a>(root: &'a mut Node, path: &[usize]) -> Result<&'a mut Vec<u8>, &'static str> {
    match model_resolve(root, path)? {
        Node::File(data) => Ok(data),
        Node::Dir(_) => Err("EISDIR"),
    }
}

fn model_step(root: &mut Node, op: &Op) -> Seen {
    let max = MAX_EXTENT_BYTES;
    let result: Result<Seen, &'static str> = (|| match op {
        Op::Create(path, name) | Op::Mkdir(path, name) => {
            let entries = model_dir(root, path)?;
            if entries.contains_key(NAMES[*name]) {
                return Err("EEXIST");
            }
            let node = if matches!(op, Op::Create(..)) {
                Node::File(Vec::new())
            } else {
                Node::Dir(BTreeMap::new())
            };
            entries.insert(NAMES[*name].to_string(), node);
            Ok(Seen::Done)
        }
        Op::Write(path, offset, bytes) => {
            model_resolve(root, path)?;
            if offset.saturating_add(bytes.len() as u64) > max {
                return Err("EFBIG");
            }
            let data = model_file(root, path)?;
            if !bytes.is_empty() {
                let end = *offset as usize + bytes.len();
                if data.len() < end {
                    data.resize(end, 0);
                }
                data[*offset as usize..end].copy_from_slice(bytes);
            }
            Ok(Seen::Done)
        }
        Op::Read(path, offset, len) => {
            let data = model_file(root, path)?;
            let start = (*offset as usize).min(data.len());
            let end = (offset + len).min(data.len() as u64) as usize;
            Ok(Seen::Data(data[start..end].to_vec()))
        }
        Op::Truncate(path, size) => {
            model_resolve(root, path)?;
            if *size > max {
                return Err("EFBIG");
            }
            model_file(root, path)?.resize(*size as usize, 0);
            Ok(Seen::Done)
        }
        Op::Unlink(path, name) => {
            let entries = model_dir(root, path)?;
            match entries.get(NAMES[*name]) {
                None => Err("ENOENT"),
                Some(Node::Dir(_)) => Err("EISDIR"),
                Some(Node::File(_)) => {
                    entries.remove(NAMES[*name]);
                    Ok(Seen::Done)
                }
            }
        }
        Op::Readdir(path) => Ok(Seen::Names(
            model_dir(root, path)?.keys().cloned().collect(),
        )),
        Op::Getattr(path) => Ok(match model_resolve(root, path)? {
            Node::File(data) => Seen::Attr(ExtentType::File, data.len() as u64),
            Node::Dir(_) => Seen::Attr(ExtentType::Dir, 0),
        }),
    })();
    result.unwrap_or_else(Seen::Error)
}

async fn fs_resolve(fs: &mut Fs<LocalExtents>, path: &[usize]) -> Result<Inum, FsError> {
    let mut inum = ROOT;
    for &component in path {
        inum = fs.lookup(inum, NAMES[component]).await?;
    }
    Ok(inum)
}

async fn fs_step(fs: &mut Fs<LocalExtents>, op: &Op) -> Result<Seen, FsError> {
    match op {
        Op::Create(path, name) => {
            let dir = fs_resolve(fs, path).await?;
            fs.create(dir, NAMES[*name]).await.map(|_| Seen::Done)
        }
        Op::Mkdir(path, name) => {
            let dir = fs_resolve(fs, path).await?;
            fs.mkdir(dir, NAMES[*name]).await.map(|_| Seen::Done)
        }
        Op::Write(path, offset, bytes) => {
            let file = fs_resolve(fs, path).await?;
            let written = fs.write(file, *offset, bytes).await?;
            assert_eq!(written, bytes.len() as u64);
            Ok(Seen::Done)
        }
        Op::Read(path, offset, len) => {
            let file = fs_resolve(fs, path).await?;
            fs.read(file, *offset, *len).await.map(Seen::Data)
        }
        Op::Truncate(path, size) => {
            let file = fs_resolve(fs, path).await?;
            fs.truncate(file, *size).await.map(|()| Seen::Done)
        }
        Op::Unlink(path, name) => {
            let dir = fs_resolve(fs, path).await?;
            fs.unlink(dir, NAMES[*name]).await.map(|()| Seen::Done)
        }
        Op::Readdir(path) => {
            let dir = fs_resolve(fs, path).await?;
            let names = fs.readdir(dir).await?.into_iter().map(|(n, _)| n).collect();
            Ok(Seen::Names(names))
        }
        Op::Getattr(path) => {
            let inum = fs_resolve(fs, path).await?;
            let attr = fs.getattr(inum).await?;
            // A directory's size is its table's; the model does not know it.
            let size = if attr.kind == ExtentType::Dir {
                0
            } else {
                attr.size
            };
            Ok(Seen::Attr(attr.kind, size))
        }
    }
}

/// Files and directories reachable from the root, counted like the store's extents.
fn count_nodes(node: &Node) -> usize {
    match node {
        Node::File(_) => 1,
        Node::Dir(entries) => 1 + entries.values().map(count_nodes).sum::<usize>(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_filesystem_behaves_like_a_tree(ops in proptest::collection::vec(op(), 1..80)) {
        let mut fs = fs();
        let mut model = Node::Dir(BTreeMap::new());
        for op in &ops {
            let expected = model_step(&mut model, op);
            let got = block_on(fs_step(&mut fs, op)).unwrap_or_else(|e| Seen::Error(e.errno()));
            prop_assert_eq!(got, expected, "{:?}", op);
        }
        // No extent leaked: every extent is reachable, and nothing else exists.
        prop_assert_eq!(fs.client().store().extent_count(), count_nodes(&model));
    }
}
