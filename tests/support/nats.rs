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

/// Three JetStream servers clustered on loopback, killed when dropped.
pub struct NatsCluster {
    dir: PathBuf,
    client_ports: Vec<u16>,
    servers: Vec<Option<Child>>,
}

impl NatsCluster {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "deltran-nats-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let client_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
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
