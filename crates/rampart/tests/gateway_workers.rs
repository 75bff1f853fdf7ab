//! `gateway.workers` end to end: the real binary serves its listener on that many threads,
//! and `gateway.limits.max_connections` bounds the connections of all of them together (a
//! limit per worker would let `workers ×` as many in).

mod gateway_support;

use std::time::Duration;

use gateway_support::{GatewayProcess, connect, read_response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REQUEST: &[u8] = b"GET /svc/x HTTP/1.1\r\nHost: gw\r\n\r\n";

fn gateway(up: std::net::SocketAddr, workers: usize, max_connections: usize) -> GatewayProcess {
    GatewayProcess::start(&format!(
        r#"
[gateway]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
workers = {workers}
[gateway.limits]
max_connections = {max_connections}

[[gateway.routes]]
id = "svc"
match = {{ path_prefix = "/svc" }}
upstreams = ["http://{up}"]
auth = ["public"]
"#
    ))
}

/// Names of the threads of process `pid`.
fn thread_names(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .collect()
}

#[tokio::test]
async fn the_listener_runs_on_the_configured_number_of_worker_threads() {
    let up = gateway_support::ok_upstream().await;
    let mut gw = gateway(up, 3, 100);
    // A thread names itself once it runs: wait (bounded) for all three.
    let pid = gw.pid();
    let workers = || {
        let mut names: Vec<String> = thread_names(pid)
            .into_iter()
            .filter(|n| n.starts_with("gw-worker-"))
            .collect();
        names.sort();
        names
    };
    gateway_support::wait_until("three named worker threads", 5, || async {
        workers().len() >= 3
    })
    .await;
    assert_eq!(workers(), ["gw-worker-0", "gw-worker-1", "gw-worker-2"]);
    // Many connections, spread by the kernel over the workers, all served.
    let mut handles = Vec::new();
    for _ in 0..12 {
        let http = gw.http.clone();
        let url = format!("{}/svc/x", gw.url);
        handles.push(tokio::spawn(async move {
            http.get(url).send().await.map(|r| r.status().as_u16())
        }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap().unwrap(), 200);
    }
    gw.assert_running();
}

#[tokio::test]
async fn max_connections_bounds_all_workers_together() {
    let up = gateway_support::ok_upstream().await;
    let mut gw = gateway(up, 2, 3);
    // Three connections, each proven served (so each holds its permit), kept open.
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut tls = connect(&gw, &[b"http/1.1"]).await;
        tls.write_all(REQUEST).await.unwrap();
        assert_eq!(read_response(&mut tls).await, 200);
        open.push(tls);
    }
    // A fourth is accepted by the kernel and closed by the gateway before any TLS, whichever
    // worker takes it. Several tries, so both workers are asked.
    for attempt in 0..4 {
        let ca = std::fs::read_to_string(&gw.ca_path).unwrap();
        let tls = rampart_pki::client_config_with_alpn(&ca, &[b"http/1.1"]).unwrap();
        let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::IpAddress(gw.addr.ip().into());
        let handshake = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_rustls::TlsConnector::from(tls).connect(name, tcp),
        )
        .await
        .expect("the gateway neither served nor closed the connection");
        assert!(
            handshake.is_err(),
            "connection {} over the limit of 3 was served (attempt {attempt})",
            4 + attempt
        );
    }
    assert!(
        gw.stderr().contains("connection limit reached"),
        "refusals are logged: {}",
        gw.stderr()
    );
    // Closing one frees a permit for the next connection.
    let mut first = open.remove(0);
    first.shutdown().await.unwrap();
    let mut rest = Vec::new();
    let _ = first.read_to_end(&mut rest).await;
    drop(first);
    gateway_support::wait_until("a freed connection slot", 10, || async {
        let ca = std::fs::read_to_string(&gw.ca_path).unwrap();
        let tls = rampart_pki::client_config_with_alpn(&ca, &[b"http/1.1"]).unwrap();
        let Ok(tcp) = tokio::net::TcpStream::connect(gw.addr).await else {
            return false;
        };
        let name = rustls::pki_types::ServerName::IpAddress(gw.addr.ip().into());
        match tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
        {
            Ok(mut tls) => {
                tls.write_all(REQUEST).await.is_ok() && read_response(&mut tls).await == 200
            }
            Err(_) => false,
        }
    })
    .await;
    gw.assert_running();
}
