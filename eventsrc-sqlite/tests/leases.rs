//! Leases on a SQLite file exclude other processes: each test runs this test binary again as
//! a second process (the holder), which opens the same file and takes or releases a lease
//! when told to on its standard input, answering on its standard output.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::PoisonError;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use eventsrc::backend::{Lease, Leases};
use eventsrc_sqlite::SqliteEventStore;
use eventsrc_testing::eventually;

/// Set in the holder process: the database file it opens.
const HOLDER_DB: &str = "EVENTSRC_LEASE_HOLDER_DB";
/// How long anything in these tests may take.
const DEADLINE: Duration = Duration::from_secs(20);
const NAME: &str = "projector";

/// The holder's side: opens the file, then obeys `take`, `release` and `try` line by line
/// until its input closes, printing each outcome as a line starting with `lease:`.
fn hold(db: &Path) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let store = SqliteEventStore::open(db).await.expect("the holder opens");
        let mut held: Option<Lease> = None;
        for command in std::io::stdin().lock().lines() {
            let command = command.expect("a command");
            let answer = match command.as_str() {
                "take" | "try" => match store.try_acquire(NAME).await.expect("try_acquire") {
                    Some(lease) => {
                        if command == "take" {
                            held = Some(lease);
                        }
                        "acquired"
                    }
                    None => "taken",
                },
                "release" => {
                    held = None;
                    "released"
                }
                other => panic!("unknown command {other}"),
            };
            println!("lease: {answer}");
        }
        drop(held);
    });
}

/// Runs the holder role when this process is one; `true` then.
fn as_holder() -> bool {
    match std::env::var_os(HOLDER_DB) {
        Some(db) => {
            hold(Path::new(&db));
            true
        }
        None => false,
    }
}

/// The test side of a holder process.
struct Holder {
    child: Child,
    input: Option<ChildStdin>,
    answers: Receiver<String>,
}

impl Holder {
    /// Starts this binary again running only `test`, as the holder of leases on `db`.
    fn spawn(test: &str, db: &Path) -> Self {
        let mut child = Command::new(std::env::current_exe().expect("the test binary"))
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(HOLDER_DB, db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the holder process starts");
        let input = child.stdin.take();
        let output = child.stdout.take().expect("the holder's output");
        let (sender, answers) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines() {
                let Ok(line) = line else { return };
                // The test harness prints its own lines; the holder's answers are marked.
                if let Some((_, answer)) = line.split_once("lease: ")
                    && sender.send(answer.to_owned()).is_err()
                {
                    return;
                }
            }
        });
        Self {
            child,
            input,
            answers,
        }
    }

    /// Sends `command` and waits (with the deadline) for the holder's answer.
    fn ask(&mut self, command: &str) -> String {
        let input = self.input.as_mut().expect("the holder's input is open");
        writeln!(input, "{command}").expect("the holder reads commands");
        input.flush().expect("the holder reads commands");
        match self.answers.recv_timeout(DEADLINE) {
            Ok(answer) => answer,
            Err(RecvTimeoutError::Timeout) => panic!("no answer to `{command}` in {DEADLINE:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the holder ended before `{command}`"),
        }
    }

    /// Closes its input: it drops its lease and exits; waits for that, with the deadline.
    fn finish(mut self) {
        drop(self.input.take());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("the holder's status") {
                assert!(status.success(), "the holder failed: {status}");
                return;
            }
            assert!(started.elapsed() < DEADLINE, "the holder did not exit");
            // Waiting for another process's exit: nothing to block on with a timeout in std.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // A failed test must not leave the holder behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn db_path(store: &SqliteEventStore) -> PathBuf {
    store.path().expect("a file-backed store").to_owned()
}

/// Tries for `name` until it is granted, within the deadline.
async fn acquire_eventually(store: &SqliteEventStore, name: &str) -> Lease {
    let granted = std::sync::Mutex::new(None);
    eventually(DEADLINE, || async {
        match store.try_acquire(name).await {
            Ok(Some(lease)) => {
                *granted.lock().unwrap_or_else(PoisonError::into_inner) = Some(lease);
                Ok(())
            }
            Ok(None) => Err("still held by the other process".to_owned()),
            Err(error) => Err(error.to_string()),
        }
    })
    .await;
    granted
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .expect("granted")
}

#[test]
fn a_lease_held_by_a_killed_process_is_granted_to_another() {
    if as_holder() {
        return;
    }
    runtime().block_on(async {
        let store = SqliteEventStore::open_temporary().await.expect("a store");
        let mut holder = Holder::spawn(
            "a_lease_held_by_a_killed_process_is_granted_to_another",
            &db_path(&store),
        );
        assert_eq!(holder.ask("take"), "acquired");

        let refused = store.try_acquire(NAME).await.expect("try_acquire");
        assert!(refused.is_none(), "the other process holds the lease");
        let other = store.try_acquire("reactor").await.expect("try_acquire");
        assert!(other.is_some(), "another name is free");

        // SIGKILL on Unix: the holder gets no chance to release anything itself.
        holder.child.kill().expect("the holder is killed");
        holder.child.wait().expect("the holder ended");
        let lease = acquire_eventually(&store, NAME).await;
        assert!(lease.is_held());
    });
}

#[test]
fn a_lease_released_by_another_process_is_granted_while_that_process_lives() {
    if as_holder() {
        return;
    }
    runtime().block_on(async {
        let store = SqliteEventStore::open_temporary().await.expect("a store");
        let mut holder = Holder::spawn(
            "a_lease_released_by_another_process_is_granted_while_that_process_lives",
            &db_path(&store),
        );
        assert_eq!(holder.ask("take"), "acquired");
        assert!(store.try_acquire(NAME).await.expect("try").is_none());
        assert_eq!(holder.ask("release"), "released");

        let lease = acquire_eventually(&store, NAME).await;
        assert_eq!(holder.ask("try"), "taken", "this process now holds it");
        drop(lease);
        assert_eq!(
            holder.ask("take"),
            "acquired",
            "released by dropping it here"
        );
        holder.finish();
    });
}

#[test]
fn a_lease_whose_lock_file_is_removed_reports_itself_lost() {
    runtime().block_on(async {
        let store = SqliteEventStore::open_temporary().await.expect("a store");
        let mut lease = store.try_acquire(NAME).await.expect("try").expect("free");
        let mut dir = db_path(&store).into_os_string();
        dir.push("-leases");
        assert!(
            Path::new(&dir).is_dir(),
            "lock files live beside the database"
        );
        std::fs::remove_dir_all(&dir).expect("the lock files are removed");

        tokio::time::timeout(DEADLINE, lease.lost())
            .await
            .expect("the loss is noticed within the deadline");
        assert!(!lease.is_held());
    });
}

#[test]
fn in_memory_leases_are_per_store() {
    runtime().block_on(async {
        let one = SqliteEventStore::open_in_memory().await.expect("a store");
        let two = SqliteEventStore::open_in_memory().await.expect("a store");
        let held = one.try_acquire(NAME).await.expect("try").expect("free");
        assert!(one.try_acquire(NAME).await.expect("try").is_none());
        assert!(
            two.try_acquire(NAME).await.expect("try").is_some(),
            "another in-memory database has leases of its own"
        );
        drop(held);
    });
}
