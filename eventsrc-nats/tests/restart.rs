//! A NATS server of the test's own, stopped and started again while the relay publishes: the
//! relay waits for it (nothing parked, nothing lost, nothing twice) and finishes once it is
//! back. A server of its own, because stopping the shared one would fail other tests.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use eventsrc::nats::JetStream;
use eventsrc::relay::{Relay, Subjects};
use eventsrc::runner::Retry;
use eventsrc::store::ReadAll;
use eventsrc::{CheckpointStore, EventStore, GlobalPosition, MemoryStore, Runner};
use support::{TempDir, append_many, check_exactly_once_in_order, read_all, run, wait_until};

/// `nats-server` with JetStream on `port`, keeping its data in `dir`.
struct Server {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl Server {
    fn start(port: u16, dir: &std::path::Path) -> Self {
        let mut server = Self {
            port,
            dir: dir.to_owned(),
            child: None,
        };
        server.restart();
        server
    }

    fn restart(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (Debian's package nats-server) starts");
        self.child = Some(child);
    }

    /// Stops it as an operator would (SIGTERM: it writes what it holds, then exits).
    fn stop(&mut self) {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        child.wait().unwrap();
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_server_restart_mid_run_loses_nothing_and_parks_nothing() {
    run(async {
        let dir = TempDir::new("eventsrc-nats-restart");
        let mut server = Server::start(free_port(), &dir.0);
        let url = server.url();
        wait_until(
            "the server accepts connections",
            Duration::from_secs(20),
            || {
                let url = url.clone();
                async move { JetStream::connect(&url).await.is_ok() }
            },
        )
        .await;
        let nats = JetStream::connect(&url).await.unwrap();
        nats.ensure_stream("RESTART", &["restart.>"], Duration::from_secs(300))
            .await
            .unwrap();

        let store = MemoryStore::new();
        append_many(&store, 20, 10).await;
        let relay = Relay::new("relay", nats.clone(), store.clone())
            .subjects(Subjects::template("restart.{category}").unwrap())
            // A refusal would park at once: so nothing parked means the outage was not
            // taken for one.
            .retry(Retry::never());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(
            Runner::new(store.clone(), relay)
                .batch_size(25)
                .poll_interval(Duration::from_millis(5))
                .run(async {
                    let _ = stopped.await;
                }),
        );
        wait_until("the relay publishes", Duration::from_secs(20), || {
            let store = store.clone();
            async move { store.load_checkpoint("relay").await.unwrap().is_some() }
        })
        .await;

        server.stop();
        // Appended while the server is down: the relay cannot publish them yet.
        append_many(&store, 20, 5).await;
        let head = store.head_position().await.unwrap();
        // The server stays down a while, the relay trying (pacing: no outcome waited for).
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_ne!(store.load_checkpoint("relay").await.unwrap(), Some(head));
        server.restart();
        wait_until(
            "the relay reaches the head",
            Duration::from_secs(60),
            || {
                let store = store.clone();
                async move { store.load_checkpoint("relay").await.unwrap() == Some(head) }
            },
        )
        .await;
        stop.send(()).unwrap();
        let relay = running.await.unwrap().unwrap();
        assert!(relay.parked().await.unwrap().is_empty(), "nothing parked");

        let stored = store
            .read_all(ReadAll::after(GlobalPosition::START).limit(10_000))
            .await
            .unwrap();
        let received = read_all(&nats, "RESTART").await;
        check_exactly_once_in_order(&received, &stored);
    });
}
