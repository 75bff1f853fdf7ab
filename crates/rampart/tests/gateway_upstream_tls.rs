//! `https://` upstreams end to end (`[gateway.upstream_tls]`): the real binary proxies to TLS
//! upstreams whose certificates chain to `ca_file` and name the host of the upstream URL, and
//! presents its own client certificate (mutual TLS); an upstream with a certificate from another
//! CA, or for another name, gets no request (502).

mod gateway_support;

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use gateway_support::{GatewayProcess, display};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rampart_pki::DevCa;

const DAY: Duration = Duration::from_secs(86_400);
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A TLS upstream with a certificate for 127.0.0.1 and `dns_names` from `ca`, asking clients for a
/// certificate from `client_ca` (optional). Answers with the client certificate identity it
/// verified (`client=<identity>` or `client=none`); counts the requests it answered.
async fn tls_upstream(
    ca: &DevCa,
    dns_names: &[String],
    client_ca: &DevCa,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let leaf = ca.issue_server_cert(dns_names, &[LOOPBACK], DAY).unwrap();
    let config = rampart_pki::server_config_with_client_auth(
        &leaf.chain_pem,
        secrecy::ExposeSecret::expose_secret(&leaf.key_pem),
        &[b"http/1.1"],
        client_ca.cert_pem(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = tokio::net::TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let identity = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|leaf| rampart_pki::client_identity(leaf.as_ref()))
                    .unwrap_or_else(|| "none".into());
                let service = service_fn(move |_req| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let body = format!("client={identity}");
                    async move {
                        Ok::<_, Infallible>(hyper::Response::new(http_body_util::Full::new(
                            Bytes::from(body),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, hits)
}

#[tokio::test]
async fn https_upstreams_are_verified_and_get_the_gateway_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let upstream_ca = DevCa::generate("upstream CA").unwrap();
    let rogue_ca = DevCa::generate("rogue CA").unwrap();
    let (good, good_hits) = tls_upstream(&upstream_ca, &[], &upstream_ca).await;
    let (rogue, rogue_hits) = tls_upstream(&rogue_ca, &[], &upstream_ca).await;
    let (named, named_hits) = tls_upstream(&upstream_ca, &["localhost".into()], &upstream_ca).await;
    // The gateway's identity towards upstreams, from the CA the upstreams trust for clients.
    let client = upstream_ca
        .issue_client_cert(&["spiffe://test/gateway".into()], DAY)
        .unwrap();
    let (ca_file, cert_file, key_file) = (
        dir.path().join("upstream-ca.pem"),
        dir.path().join("gw-client.pem"),
        dir.path().join("gw-client.key"),
    );
    std::fs::write(&ca_file, upstream_ca.cert_pem()).unwrap();
    std::fs::write(&cert_file, &client.chain_pem).unwrap();
    std::fs::write(
        &key_file,
        secrecy::ExposeSecret::expose_secret(&client.key_pem),
    )
    .unwrap();
    let gw = GatewayProcess::start(&format!(
        r#"
[gateway]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[gateway.upstream_tls]
ca_file = "{}"
cert_file = "{}"
key_file = "{}"

[[gateway.routes]]
id = "good"
match = {{ path_prefix = "/good" }}
upstreams = ["https://{good}"]
auth = ["public"]

# A certificate from a CA the gateway does not trust.
[[gateway.routes]]
id = "rogue"
match = {{ path_prefix = "/rogue" }}
upstreams = ["https://{rogue}"]
auth = ["public"]

# The trusted upstream under a name its certificate does not carry.
[[gateway.routes]]
id = "misnamed"
match = {{ path_prefix = "/misnamed" }}
upstreams = ["https://localhost:{}"]
auth = ["public"]

# The same name, on an upstream whose certificate carries it.
[[gateway.routes]]
id = "named"
match = {{ path_prefix = "/named" }}
upstreams = ["https://localhost:{}"]
auth = ["public"]
"#,
        display(&ca_file),
        display(&cert_file),
        display(&key_file),
        good.port(),
        named.port()
    ));

    let (status, body) = gw.get("/good/x").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "client=spiffe://test/gateway")
    );
    assert_eq!(good_hits.load(Ordering::SeqCst), 1);

    let (status, body) = gw.get("/rogue/x").await;
    assert_eq!(status, 502, "{body}");
    assert!(
        !body.contains("certificate") && !body.contains("rustls"),
        "no internals: {body}"
    );
    assert_eq!(
        rogue_hits.load(Ordering::SeqCst),
        0,
        "no request reached it"
    );

    let (status, _) = gw.get("/misnamed/x").await;
    assert_eq!(status, 502);
    assert_eq!(
        good_hits.load(Ordering::SeqCst),
        1,
        "no request under a wrong name"
    );
    // The name resolves and is checked: the upstream whose certificate names it answers.
    assert_eq!(gw.get("/named/x").await.0, 200);
    assert_eq!(named_hits.load(Ordering::SeqCst), 1);

    // Keep-alive to the good upstream: more requests, all answered by it.
    for _ in 0..5 {
        assert_eq!(gw.get("/good/y").await.0, 200);
    }
    assert_eq!(good_hits.load(Ordering::SeqCst), 6);
}
