//! A three-server NATS JetStream cluster on loopback for tests: Debian's
//! `nats-server` (installed by tests/cluster/nats-server.sh when missing), started in
//! a temporary directory and killed when dropped. Shared by tests/cluster_nats.rs and
//! the engine's cluster-mode tests (tests/api/cluster.rs).

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use deltran::cluster::{self, Leases, Log, TransportSettings};

pub fn nats_server() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cluster/nats-server.sh");
        let out = Command::new(script)
            .stderr(Stdio::inherit())
            .output()
            .expect("tests/cluster/nats-server.sh runs");
        assert!(out.status.success(), "nats-server is not available");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `n` distinct free ports: all held at once while they are chosen.
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// Three JetStream servers clustered on loopback, killed when dropped.
pub struct NatsCluster {
    dir: PathBuf,
    client_ports: Vec<u16>,
    servers: Vec<Option<Child>>,
}

impl NatsCluster {
    /// Starts the three servers. A port chosen free can be taken by another process
    /// before its server binds it (tests run in parallel): a server that exits at
    /// once is a lost race, and the cluster starts again on other ports.
    pub fn start() -> Self {
        static CLUSTERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        for _attempt in 0..5 {
            let n = CLUSTERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("deltran-nats-{}-{n}", std::process::id()));
            let mut cluster = Self::start_in(dir);
            if cluster.listening(Duration::from_secs(10)) {
                return cluster;
            }
            eprintln!("a NATS server did not start (a port taken?); starting again");
        }
        panic!("the NATS cluster did not start in 5 attempts");
    }

    fn start_in(dir: PathBuf) -> Self {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ports = free_ports(6);
        let (client_ports, route_ports) = (ports[..3].to_vec(), ports[3..].to_vec());
        for i in 0..3 {
            let routes: Vec<String> = (0..3)
                .filter(|&j| j != i)
                .map(|j| format!("nats-route://127.0.0.1:{}", route_ports[j]))
                .collect();
            let config = format!(
                "server_name: n{i}\nlisten: 127.0.0.1:{}\njetstream {{ store_dir: \"{}\" }}\n\
                 cluster {{\n  name: deltran\n  listen: 127.0.0.1:{}\n  routes: [{}]\n}}\n",
                client_ports[i],
                dir.join(format!("n{i}")).display(),
                route_ports[i],
                routes.join(", ")
            );
            std::fs::write(dir.join(format!("n{i}.conf")), config).unwrap();
        }
        let mut cluster = NatsCluster {
            dir,
            client_ports,
            servers: vec![None, None, None],
        };
        for i in 0..3 {
            cluster.start_server(i);
        }
        cluster
    }

    /// Whether every server is running and takes connections within `wait`.
    fn listening(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            let up = self
                .client_ports
                .iter()
                .all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok());
            let running = self
                .servers
                .iter_mut()
                .all(|s| s.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None))));
            if !running {
                return false;
            }
            if up {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn start_server(&mut self, i: usize) {
        let log = std::fs::File::create(self.dir.join(format!("n{i}.log"))).unwrap();
        let child = Command::new(nats_server())
            .arg("-c")
            .arg(self.dir.join(format!("n{i}.conf")))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        self.servers[i] = Some(child);
    }

    /// SIGKILL: the server gets no chance to hand anything over.
    pub fn kill_server(&mut self, i: usize) {
        if let Some(mut child) = self.servers[i].take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn urls(&self) -> String {
        self.client_ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A client's view: the log and the leases, once the cluster has elected its
    /// JetStream leaders (retried up to a deadline).
    pub async fn connect(&self, settings: &TransportSettings) -> (Log, Leases) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let attempt = async {
                let client = cluster::connect(&self.urls()).await?;
                let js = async_nats::jetstream::new(client);
                let log = Log::open(js.clone(), settings.clone()).await?;
                let leases = Leases::open(&js, settings).await?;
                Ok::<_, cluster::ClusterError>((log, leases))
            };
            match attempt.await {
                Ok(opened) => return opened,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("cluster not ready yet: {e}");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("the NATS cluster did not come up: {e}"),
            }
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..3 {
            self.kill_server(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
