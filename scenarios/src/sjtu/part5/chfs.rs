//! SJTU 2022 part 5: ChFS over the replicated extent store (`LAB_SCENARIOS.md` §4, "Part 5,
//! 2022: fault-tolerant ChFS filesystem").
//!
//! In the lab, `extent_server_dist` runs a 3-node Raft group whose state machine is an
//! in-memory `extent_server`; the FUSE `chfs_client` turns file operations into extent RPCs,
//! each of which becomes a log command submitted to the leader (reads too). Here every node
//! hosts [`ExtentStore`] as a simulated service, and the filesystem layer ([`Fs`]) reaches it
//! through [`SimExtents`], a client that sends each extent operation to the leader with
//! [`Tester::call`] and retries it (same request id, so it takes effect once) until it is
//! answered. The lab's snapshots are empty and recovery is by log replay only, so the service
//! never snapshots.

use serde::de::DeserializeOwned;
use services::extent::{
    ExtentCommand, ExtentOp, ExtentOutput, ExtentReply, ExtentStore, RequestId,
};
use services::fs::{CallError, ExtentClient, Fs, FsError, Inum};
use sim::service::Typed;
use sim::tester::AppKind;
use sim::{
    ClientId, Lab, Scenario, ScenarioFuture, Service, ServiceSpec, Setup, TestError, TestResult,
    Tester, bail, ensure,
};
use std::collections::BTreeMap;
use std::future::Future;

/// The filesystem scenarios, in the lab's order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "sjtu/part5/chfs_basic",
        lab: Lab::Sjtu,
        part: "part5",
        summary: "the Perl test's files through ChFS on 3 replicas: create 30, write, overwrite, \
                  append, write at an offset, a missing file stays missing",
        setup: CHFS_SETUP,
        run: chfs_basic,
    },
    Scenario {
        name: "sjtu/part5/chfs_persist",
        lab: Lab::Sjtu,
        part: "part5",
        summary: "3 files written, one unlinked, all 3 replicas restarted: contents survive by \
                  log replay and the unlinked file stays gone",
        setup: CHFS_SETUP,
        run: chfs_persist,
    },
];

fn extent_service() -> Box<dyn Service> {
    Box::new(Typed(ExtentStore::new()))
}

/// The extent store on every node. It never snapshots: the lab's ChFS snapshot is empty.
pub const EXTENT_SERVICE: ServiceSpec = ServiceSpec {
    name: "extent",
    make: extent_service,
    max_raft_state: None,
};

/// SJTU's 3-node `raft_group` hosting the extent store.
const CHFS_SETUP: Setup = Setup {
    app: AppKind::Service(EXTENT_SERVICE),
    ..Setup::sjtu(3)
};

/// How long one extent operation may take, retries included, before the filesystem reports
/// the service unavailable (the lab leaves the deadline to the student; this is `one()`'s).
pub const CALL_BUDGET_MS: u64 = 10_000;

/// The most one attempt waits for its reply (the servers answer or time out sooner).
pub const ATTEMPT_MS: u64 = 2_500;

/// The pause before retrying a refused or failed attempt.
pub const RETRY_PAUSE_MS: u64 = 50;

/// The simulator's extent client: finds the leader the way the lab's `extent_server_dist`
/// does (`check_exact_one_leader`), sends it the command, and retries on a wrong leader, a
/// timeout or a lost message, asking for the leader again after every failure (and only
/// then: the lab asks every time, which SJTU's tester answers at once while a leader exists). Each command carries this client's id and a fresh sequence
/// number, so a retry that reaches the store twice is applied once.
pub struct SimExtents {
    t: Tester,
    client: ClientId,
    seq: u64,
    /// Why the service was last unavailable, as the tester said it (no leader, two leaders).
    failure: Option<TestError>,
    /// Whether commands carry request ids (off only to show, in tests, what they prevent).
    request_ids: bool,
    /// The server that answered last, tried first next time.
    leader: Option<usize>,
}

impl SimExtents {
    /// A client connected to every server.
    #[must_use]
    pub fn new(t: &Tester) -> SimExtents {
        SimExtents {
            t: t.clone(),
            client: t.make_client_to_all(),
            seq: 0,
            failure: None,
            request_ids: true,
            leader: None,
        }
    }

    async fn attempt(&mut self, request: &[u8]) -> Result<Vec<u8>, String> {
        let leader = match self.leader {
            Some(leader) => leader,
            None => match self.t.check_one_leader().await {
                Ok(leader) => leader,
                Err(error) => {
                    let why = error.message.clone();
                    self.failure = Some(error);
                    return Err(why);
                }
            },
        };
        let call = self.t.call(self.client, leader, request.to_vec());
        let result = match self.t.timeout(ATTEMPT_MS, call).await {
            Some(Ok(reply)) => Ok(reply),
            Some(Err(error)) => Err(format!("server {leader}: {error}")),
            None => Err(format!("server {leader}: no reply in {ATTEMPT_MS} ms")),
        };
        // Ask the tester again after any failure: the leader may have changed.
        self.leader = result.is_ok().then_some(leader);
        result
    }
}

fn decode<T: DeserializeOwned>(reply: &[u8]) -> Result<T, CallError> {
    postcard::from_bytes(reply).map_err(|e| CallError::Unexpected {
        op: "reply",
        answer: format!("{} bytes that do not decode: {e}", reply.len()),
    })
}

impl ExtentClient for SimExtents {
    fn call(&mut self, op: ExtentOp) -> impl Future<Output = Result<ExtentReply, CallError>> {
        self.seq += 1;
        let command = ExtentCommand {
            request: self.request_ids.then_some(RequestId {
                client: u64::from(self.client.0),
                seq: self.seq,
            }),
            time_us: self.t.now().as_us(),
            op,
        };
        let request = raft::encode_command(&command);
        async move {
            self.failure = None;
            let started = self.t.now();
            let mut last = String::from("never tried");
            while self.t.now().since_us(started) < CALL_BUDGET_MS * sim::US_PER_MS {
                match self.attempt(&request).await {
                    Ok(reply) => {
                        let output: ExtentOutput = decode(&reply)?;
                        return output.map_err(CallError::from);
                    }
                    Err(why) => last = why,
                }
                self.t.sleep_ms(RETRY_PAUSE_MS).await;
            }
            Err(CallError::Unavailable(format!(
                "request {} unanswered for {CALL_BUDGET_MS} ms (last: {last})",
                self.seq
            )))
        }
    }
}

/// The filesystem as the scenarios use it, with the Perl test's helpers.
struct Chfs {
    t: Tester,
    fs: Fs<SimExtents>,
    /// The Perl script's `$files`: what each checked file must hold.
    files: BTreeMap<String, Vec<u8>>,
}

/// A failed filesystem operation as the test reports it: an unavailable service is a liveness
/// failure (the tester's own words when it had them); anything else fails the lab's check.
fn failure(fs: &mut Fs<SimExtents>, context: &str, error: FsError) -> TestError {
    match error {
        FsError::Unavailable(why) => match fs.client_mut().failure.take() {
            Some(tester) => TestError {
                kind: tester.kind,
                message: format!("{context}: {}", tester.message),
            },
            None => TestError::liveness(format!("{context}: {why}")),
        },
        other => TestError::check(format!("{context}: {other} ({})", other.errno())),
    }
}

/// What `open(2)` does to the file before the test reads or writes it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    /// `O_RDWR` or `O_RDONLY`: the file must exist.
    Existing,
    /// `O_CREAT | O_TRUNC`: created if missing, emptied if not.
    CreateTruncate,
}

/// FUSE's largest read or write (without `big_writes`): the kernel splits larger ones.
const FUSE_CHUNK: usize = 4096;

impl Chfs {
    fn mount(t: &Tester) -> Chfs {
        Chfs {
            t: t.clone(),
            fs: Fs::new(SimExtents::new(t)),
            files: BTreeMap::new(),
        }
    }

    fn root(&self) -> Inum {
        self.fs.root()
    }

    /// Perl's `rand()` as a string: a decimal in [0, 1) with up to 15 digits.
    fn rand(&self) -> String {
        let digits = format!("{:015}", self.t.random_below(1_000_000_000_000_000));
        let digits = digits.trim_end_matches('0');
        if digits.is_empty() {
            "0".to_string()
        } else {
            format!("0.{digits}")
        }
    }

    /// Perl's `$contents .= rand()` until `len`, cut to `len`.
    fn contents(&self, len: usize) -> Vec<u8> {
        let mut contents = String::new();
        while contents.len() < len {
            contents.push_str(&self.rand());
        }
        contents.truncate(len);
        contents.into_bytes()
    }

    async fn open(&mut self, name: &str, mode: Open, context: &str) -> TestResult<Inum> {
        let root = self.root();
        match self.fs.lookup(root, name).await {
            Ok(inum) => {
                if mode == Open::CreateTruncate {
                    let truncated = self.fs.truncate(inum, 0).await;
                    truncated.map_err(|e| failure(&mut self.fs, context, e))?;
                }
                Ok(inum)
            }
            Err(FsError::NotFound(_)) if mode == Open::CreateTruncate => {
                let created = self.fs.create(root, name).await;
                created.map_err(|e| failure(&mut self.fs, context, e))
            }
            Err(error) => Err(failure(&mut self.fs, context, error)),
        }
    }

    async fn write_at(
        &mut self,
        inum: Inum,
        offset: usize,
        data: &[u8],
        context: &str,
    ) -> TestResult {
        for (i, chunk) in data.chunks(FUSE_CHUNK).enumerate() {
            let at = (offset + i * FUSE_CHUNK) as u64;
            let written = self.fs.write(inum, at, chunk).await;
            let written = written.map_err(|e| failure(&mut self.fs, context, e))?;
            ensure!(
                written == chunk.len() as u64,
                "{context}: wrote {written} of {} bytes",
                chunk.len()
            );
        }
        Ok(())
    }

    /// `createone`: `open(F, ">$dir1/$name")` on a fresh name, then close.
    async fn createone(&mut self, pid: u64, seq: usize) -> TestResult<String> {
        let mut name = String::from("file -\n-\t-");
        for _ in 0..40 {
            name.push(char::from(b'a' + self.t.random_below(26) as u8));
        }
        name.push_str(&format!("-{pid}-{seq}"));
        self.open(
            &name,
            Open::CreateTruncate,
            &format!("cannot create {name:?}"),
        )
        .await?;
        Ok(name)
    }

    /// `writeone`: `sysopen` with `O_TRUNC|O_RDWR|O_CREAT`, write `len` fresh bytes.
    async fn writeone(&mut self, name: &str, len: usize) -> TestResult {
        let context = format!("cannot create {name}");
        let inum = self.open(name, Open::CreateTruncate, &context).await?;
        let contents = self.contents(len);
        self.files.insert(name.to_string(), contents.clone());
        self.write_at(inum, 0, &contents, &format!("cannot write to {name}"))
            .await
    }

    /// `checkcontent`: read the whole file (until a read returns nothing) and compare.
    async fn checkcontent(&mut self, name: &str) -> TestResult {
        let context = format!("could not open {name} for reading");
        let inum = self.open(name, Open::Existing, &context).await?;
        let mut read = Vec::new();
        loop {
            let chunk = self
                .fs
                .read(inum, read.len() as u64, FUSE_CHUNK as u64)
                .await
                .map_err(|e| failure(&mut self.fs, &format!("cannot read {name}"), e))?;
            if chunk.is_empty() {
                break;
            }
            read.extend_from_slice(&chunk);
        }
        let expected = self.files.get(name).map(Vec::as_slice).unwrap_or_default();
        ensure!(
            read == expected,
            "content of {name} is incorrect: read {} bytes, expected {}",
            read.len(),
            expected.len()
        );
        Ok(())
    }

    /// `append`: `sysopen` with `O_RDWR`, seek to the end, write `n` fresh bytes.
    async fn append(&mut self, name: &str, n: usize) -> TestResult {
        let context = format!("cannot open {name} for append");
        let inum = self.open(name, Open::Existing, &context).await?;
        let end = self.fs.getattr(inum).await;
        let end = end.map_err(|e| failure(&mut self.fs, &context, e))?.size;
        let contents = self.contents(n);
        self.files
            .entry(name.to_string())
            .or_default()
            .extend_from_slice(&contents);
        let end = usize::try_from(end).unwrap_or(usize::MAX);
        self.write_at(inum, end, &contents, &format!("cannot append to {name}"))
            .await
    }

    /// `writeat`: `sysopen` with `O_RDWR`, seek to `off`, write one `rand()` string. The
    /// expected copy is NUL-padded if the write goes past the end.
    async fn writeat(&mut self, name: &str, off: usize) -> TestResult {
        let context = format!("cannot open {name} for read/write");
        let inum = self.open(name, Open::Existing, &context).await?;
        let contents = self.rand().into_bytes();
        let expected = self.files.entry(name.to_string()).or_default();
        if expected.len() < off + contents.len() {
            expected.resize(off + contents.len(), 0);
        }
        expected[off..off + contents.len()].copy_from_slice(&contents);
        self.write_at(
            inum,
            off,
            &contents,
            &format!("cannot write {name} at offset {off}"),
        )
        .await
    }

    /// `checknot`: opening `name` must fail because it does not exist.
    async fn checknot(&mut self, name: &str) -> TestResult {
        let root = self.root();
        match self.fs.lookup(root, name).await {
            Err(FsError::NotFound(_)) => Ok(()),
            Ok(inum) => bail!("{name} exists but should not (inode {inum})"),
            Err(error) => Err(failure(&mut self.fs, &format!("open {name}"), error)),
        }
    }
}

/// test-lab3-part5-a.pl ("basic chfs raft"): 30 files with a space, a newline and a tab in
/// their names; a file written (600 bytes) and read back; a second file (411) and both read
/// back; the first overwritten shorter (275, `O_TRUNC`) and both read back; the first
/// rewritten (819) and appended to (1025); a `rand()` string written at offset 190; and a
/// missing file that cannot be opened. Contents are Perl-`rand()`-like decimal strings.
///
/// Differs: the file operations are those FUSE would send to `chfs_client` (an open with
/// `O_CREAT` is a lookup then a create, `O_TRUNC` a truncate to 0, a read is 4096-byte reads
/// until one returns nothing, the seek to the end a getattr), made on [`Fs`] directly; the
/// process id in the names is drawn from the seed. One check is added: the script's own
/// `dircheck` (every created file listed exactly once in the directory), which it defines but
/// does not call. Checking that the client process survived has no counterpart.
fn chfs_basic(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let mut chfs = Chfs::mount(&t);
        let pid = 1_000 + t.random_below(31_000);
        let f1 = format!("a{pid}");
        let f2 = format!("b{pid}");
        let mut created = Vec::new();
        for seq in 0..30 {
            created.push(chfs.createone(pid, seq).await?);
        }

        // "Write and read one file"
        chfs.writeone(&f1, 600).await?;
        chfs.checkcontent(&f1).await?;
        // "Write and read a second file"
        chfs.writeone(&f2, 411).await?;
        chfs.checkcontent(&f2).await?;
        chfs.checkcontent(&f1).await?;
        // "Overwrite an existing file"
        chfs.writeone(&f1, 275).await?;
        chfs.checkcontent(&f1).await?;
        chfs.checkcontent(&f2).await?;
        // "Append to an existing file"
        chfs.writeone(&f1, 819).await?;
        chfs.append(&f1, 1025).await?;
        chfs.checkcontent(&f1).await?;
        // "Write into the middle of an existing file"
        chfs.writeat(&f1, 190).await?;
        chfs.checkcontent(&f1).await?;
        // "Check that one cannot open non-existant file"
        chfs.checknot(&format!("z-{pid}-z")).await?;

        // dircheck: every file appears once.
        let root = chfs.root();
        let listed = chfs.fs.readdir(root).await;
        let listed = listed.map_err(|e| failure(&mut chfs.fs, "readdir", e))?;
        let mut names: Vec<&str> = listed.iter().map(|(name, _)| name.as_str()).collect();
        let count = names.len();
        names.dedup();
        ensure!(
            names.len() == count,
            "a name appears more than once in the directory"
        );
        created.push(f1);
        created.push(f2);
        for name in &created {
            ensure!(
                names.contains(&name.as_str()),
                "{name:?} is missing from the directory"
            );
        }
        ensure!(
            count == created.len(),
            "the directory lists {count} entries, {} were created",
            created.len()
        );
        Ok(())
    })
}

/// test-lab3-part5-b ("chfs persist"): three files named `file-` and 10 random letters, each
/// created in the root (after an `isdir(1)`), its attributes read, and its own name written
/// into it; the first unlinked; every node disabled and restarted (a crash of the whole group:
/// the extent store is rebuilt by log replay); 2 s later the other two files must read back
/// their names and the first must not be found.
///
/// Differs: the original ignores the results of `isdir` and `unlink`; here the root must be a
/// directory and the unlink must succeed (a failed unlink would otherwise pass the final
/// lookup check only by luck).
fn chfs_persist(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let mut chfs = Chfs::mount(&t);
        let root = chfs.root();
        let mut files: Vec<(String, Inum)> = Vec::new();
        for _ in 0..3 {
            let mut name = String::from("file-");
            for _ in 0..10 {
                name.push(char::from(b'a' + t.random_below(26) as u8));
            }
            let is_dir = chfs.fs.is_dir(root).await;
            let is_dir = is_dir.map_err(|e| failure(&mut chfs.fs, "isdir(1)", e))?;
            ensure!(is_dir, "the root is not a directory");
            let inum = chfs.fs.create(root, &name).await;
            let inum = inum.map_err(|e| failure(&mut chfs.fs, "error creating file", e))?;
            ensure!(inum.0 != 0, "error creating file: inode 0");
            let attr = chfs.fs.getattr(inum).await;
            let attr = attr.map_err(|e| failure(&mut chfs.fs, "error getting attr", e))?;
            ensure!(
                attr.kind == services::extent::ExtentType::File,
                "error getting attr: {inum} is not a file"
            );
            let written = chfs.fs.write(inum, 0, name.as_bytes()).await;
            let written = written.map_err(|e| failure(&mut chfs.fs, "error writing", e))?;
            ensure!(
                written == name.len() as u64,
                "error writing size: {written} of {}",
                name.len()
            );
            files.push((name, inum));
        }
        let unlinked = chfs.fs.unlink(root, &files[0].0).await;
        unlinked.map_err(|e| failure(&mut chfs.fs, "unlink", e))?;

        // "begin crash"
        for server in 0..t.servers() {
            t.disconnect(server);
            t.restart(server);
        }
        t.sleep_ms(2000).await;

        for (name, inum) in &files[1..] {
            let read = chfs.fs.read(*inum, 0, name.len() as u64).await;
            let read = read.map_err(|e| failure(&mut chfs.fs, "error reading after crash", e))?;
            ensure!(
                read == name.as_bytes(),
                "error reading after crash: {inum} holds {:?}, expected {name:?}",
                String::from_utf8_lossy(&read)
            );
        }
        match chfs.fs.lookup(root, &files[0].0).await {
            Err(FsError::NotFound(_)) => Ok(()),
            Ok(inum) => bail!("error unlink after crash: {:?} found as {inum}", files[0].0),
            Err(error) => Err(failure(&mut chfs.fs, "lookup after crash", error)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::RunOptions;

    /// Creates 40 files over MIT's unreliable network (10 % of requests and of replies lost,
    /// the latter after the server acted) and checks that each create made exactly one extent:
    /// ids are allocated lowest-first, so the files must be inodes 2..=41 with no gap.
    async fn create_files(t: Tester, request_ids: bool) -> TestResult {
        let mut client = SimExtents::new(&t);
        client.request_ids = request_ids;
        let mut fs = Fs::new(client);
        let root = fs.root();
        let mut inums = Vec::new();
        for i in 0..40 {
            let inum = fs.create(root, &format!("f{i}")).await;
            inums.push(inum.map_err(|e| failure(&mut fs, "create", e))?);
        }
        let listed = fs.readdir(root).await;
        let listed = listed.map_err(|e| failure(&mut fs, "readdir", e))?;
        ensure!(listed.len() == 40, "{} entries listed", listed.len());
        inums.sort();
        let expected: Vec<Inum> = (2..=41).map(services::extent::ExtentId).collect();
        ensure!(
            inums == expected,
            "a retried create made another extent: {inums:?}"
        );
        Ok(())
    }

    fn with_ids(t: Tester) -> ScenarioFuture {
        Box::pin(create_files(t, true))
    }

    fn without_ids(t: Tester) -> ScenarioFuture {
        Box::pin(create_files(t, false))
    }

    fn lossy(run: fn(Tester) -> ScenarioFuture) -> Scenario {
        Scenario {
            name: "sjtu/part5/chfs_lossy_creates",
            lab: Lab::Sjtu,
            part: "part5",
            summary: "creates over a lossy network",
            setup: Setup {
                app: AppKind::Service(EXTENT_SERVICE),
                ..Setup::mit(3).unreliable()
            },
            run,
        }
    }

    #[test]
    fn retried_creates_take_effect_once() {
        let scenario = lossy(with_ids);
        for seed in 0..10 {
            let report = sim::run(&scenario, seed, &RunOptions::default());
            assert!(report.passed(), "seed {seed}: {:?}", report.failure);
        }
    }

    /// Crashes a random server every 1–2 s and restarts it 0.5–1 s later, until `stop`.
    async fn nemesis(t: Tester, stop: std::rc::Rc<std::cell::Cell<bool>>) -> TestResult {
        while !stop.get() {
            t.sleep_ms(1_000 + t.random_below(1_000)).await;
            let victim = t.random_server();
            t.crash(victim);
            t.sleep_ms(500 + t.random_below(500)).await;
            t.restart(victim);
            t.connect(victim);
        }
        Ok(())
    }

    /// 60 random file operations (create, write at an offset, read, truncate, unlink) on a
    /// few names, over MIT's unreliable network while servers crash and restart, each checked
    /// against a map of what every file must hold.
    fn files_survive_faults(t: Tester) -> ScenarioFuture {
        Box::pin(async move {
            let stop = std::rc::Rc::new(std::cell::Cell::new(false));
            let nemesis = t.spawn(nemesis(t.clone(), std::rc::Rc::clone(&stop)));
            let mut fs = Fs::new(SimExtents::new(&t));
            let root = fs.root();
            let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            for step in 0..60 {
                let name = format!("n {}\t", t.random_below(4));
                let context = format!("step {step} on {name:?}");
                let inum = match fs.lookup(root, &name).await {
                    Ok(inum) => Some(inum),
                    Err(FsError::NotFound(_)) => None,
                    Err(e) => return Err(failure(&mut fs, &context, e)),
                };
                ensure!(
                    inum.is_some() == model.contains_key(&name),
                    "{context}: lookup found {inum:?}"
                );
                let Some(inum) = inum else {
                    let created = fs.create(root, &name).await;
                    created.map_err(|e| failure(&mut fs, &context, e))?;
                    model.insert(name, Vec::new());
                    continue;
                };
                let expected = model.entry(name.clone()).or_default();
                let offset = t.random_below(700);
                match t.random_below(4) {
                    0 => {
                        let data =
                            vec![b'a' + t.random_below(26) as u8; 1 + t.random_below(300) as usize];
                        let written = fs.write(inum, offset, &data).await;
                        written.map_err(|e| failure(&mut fs, &context, e))?;
                        let end = offset as usize + data.len();
                        if expected.len() < end {
                            expected.resize(end, 0);
                        }
                        expected[offset as usize..end].copy_from_slice(&data);
                    }
                    1 => {
                        let read = fs.read(inum, 0, 10_000).await;
                        let read = read.map_err(|e| failure(&mut fs, &context, e))?;
                        ensure!(
                            read == *expected,
                            "{context}: read {} bytes, expected {}",
                            read.len(),
                            expected.len()
                        );
                    }
                    2 => {
                        let truncated = fs.truncate(inum, offset).await;
                        truncated.map_err(|e| failure(&mut fs, &context, e))?;
                        expected.resize(offset as usize, 0);
                    }
                    _ => {
                        let unlinked = fs.unlink(root, &name).await;
                        unlinked.map_err(|e| failure(&mut fs, &context, e))?;
                        model.remove(&name);
                    }
                }
            }
            stop.set(true);
            nemesis.await;
            let listed = fs.readdir(root).await;
            let listed = listed.map_err(|e| failure(&mut fs, "final readdir", e))?;
            let names: Vec<&String> = listed.iter().map(|(name, _)| name).collect();
            ensure!(
                names == model.keys().collect::<Vec<_>>(),
                "directory lists {names:?}"
            );
            Ok(())
        })
    }

    fn faults(spec: ServiceSpec, run: fn(Tester) -> ScenarioFuture) -> Scenario {
        Scenario {
            name: "sjtu/part5/chfs_faults",
            lab: Lab::Sjtu,
            part: "part5",
            summary: "random file operations under faults",
            setup: Setup {
                app: AppKind::Service(spec),
                ..Setup::mit(3).unreliable()
            },
            run,
        }
    }

    #[test]
    fn files_survive_a_lossy_network_and_crashes() {
        let scenario = faults(EXTENT_SERVICE, files_survive_faults);
        for seed in 0..30 {
            let report = sim::run(&scenario, seed, &RunOptions::default());
            assert!(report.passed(), "seed {seed}: {:?}", report.failure);
        }
    }

    /// The same with the store snapshotting whenever a node's Raft state passes 8 000 bytes
    /// (the lab never does): restarts restore the snapshot, laggards install it.
    fn files_survive_faults_snapshotting(t: Tester) -> ScenarioFuture {
        Box::pin(async move {
            files_survive_faults(t.clone()).await?;
            ensure!(t.snapshot_size() > 0, "no snapshot was taken");
            ensure!(t.log_size() < 3 * 8_000, "log of {} bytes", t.log_size());
            Ok(())
        })
    }

    #[test]
    fn files_survive_faults_with_snapshots() {
        let spec = ServiceSpec {
            max_raft_state: Some(8_000),
            ..EXTENT_SERVICE
        };
        let scenario = faults(spec, files_survive_faults_snapshotting);
        for seed in 0..30 {
            let report = sim::run(&scenario, seed, &RunOptions::default());
            assert!(report.passed(), "seed {seed}: {:?}", report.failure);
        }
    }

    #[test]
    fn without_request_ids_a_lost_reply_creates_twice() {
        // The same runs with request ids off: some lost reply to a create makes its retry
        // allocate a second extent. This is what the dedup table is for.
        let scenario = lossy(without_ids);
        let caught = (0..10).any(|seed| {
            let report = sim::run(&scenario, seed, &RunOptions::default());
            report
                .failure
                .is_some_and(|f| f.message.contains("another extent"))
        });
        assert!(caught, "no run lost a create's reply");
    }
}
