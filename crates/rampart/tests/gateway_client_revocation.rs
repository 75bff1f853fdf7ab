//! Client certificate revocation and CA rotation without a restart, end to end: the real
//! binary with `client_ca_file` and `client_crl_file`; the files are rewritten while it serves
//! and new handshakes follow them (the gateway watches both files).

mod gateway_support;

use std::time::Duration;

use gateway_support::{GatewayProcess, display, wait_until};
use rampart_pki::{DevCa, ExposeSecret, IssuedCert};
use tokio::io::AsyncWriteExt;

const DAY: Duration = Duration::from_secs(86_400);
const REQUEST: &[u8] = b"GET /svc/x HTTP/1.1\r\nHost: gw\r\n\r\n";

/// One request over a new TLS connection presenting `cert`: the status, or `None` when the
/// gateway refused the certificate (handshake, or the first read, failed).
async fn status_with(gw: &GatewayProcess, cert: &IssuedCert) -> Option<u16> {
    let ca = std::fs::read_to_string(&gw.ca_path).unwrap();
    let tls = rampart_pki::client_config_with_client_cert(
        &ca,
        &cert.chain_pem,
        cert.key_pem.expose_secret(),
        &[b"http/1.1"],
    )
    .unwrap();
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(gw.addr.ip().into());
    // TLS 1.3: the server checks the client certificate after the client's side of the
    // handshake is done, so a refusal may show only when reading.
    let mut stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .ok()?;
    stream.write_all(REQUEST).await.ok()?;
    // The response head, byte by byte; nothing at all means the certificate was refused.
    let head = tokio::time::timeout(Duration::from_secs(5), async {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match tokio::io::AsyncReadExt::read(&mut stream, &mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
        head
    })
    .await
    .expect("the gateway neither answered nor closed");
    let head = String::from_utf8_lossy(&head);
    head.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn revoked_client_certificates_and_a_rotated_ca_apply_without_restart() {
    let up = gateway_support::ok_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let ca1 = DevCa::generate("clients CA 1").unwrap();
    let ca2 = DevCa::generate("clients CA 2").unwrap();
    let alice = ca1
        .issue_client_cert(&["spiffe://t/alice".into()], DAY)
        .unwrap();
    let bob = ca1
        .issue_client_cert(&["spiffe://t/bob".into()], DAY)
        .unwrap();
    let carol = ca2
        .issue_client_cert(&["spiffe://t/carol".into()], DAY)
        .unwrap();
    let ca_file = dir.path().join("clients-ca.pem");
    let crl_file = dir.path().join("clients.crl.pem");
    std::fs::write(&ca_file, ca1.cert_pem()).unwrap();
    std::fs::write(&crl_file, ca1.issue_crl(&[], 1, DAY).unwrap()).unwrap();
    let mut gw = GatewayProcess::start(&format!(
        r#"
[gateway]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
client_ca_file = "{}"
client_crl_file = "{}"
[gateway.limits]
# Each probe below is a new connection.
max_connections = 1000

[[gateway.routes]]
id = "svc"
match = {{ path_prefix = "/svc" }}
upstreams = ["http://{up}"]
auth = ["mtls"]
audience = "api://svc"
"#,
        display(&ca_file),
        display(&crl_file)
    ));
    assert_eq!(status_with(&gw, &alice).await, Some(200));
    assert_eq!(status_with(&gw, &bob).await, Some(200));
    assert_eq!(
        status_with(&gw, &carol).await,
        None,
        "CA 2 is not trusted yet"
    );
    // A client without a certificate still completes TLS, and the mtls route says 401.
    assert_eq!(gw.get("/svc/x").await.0, 401);

    // Alice's certificate is revoked: a new list, written while the gateway serves.
    std::fs::write(
        &crl_file,
        ca1.issue_crl(&[&alice.cert_pem], 2, DAY).unwrap(),
    )
    .unwrap();
    wait_until("alice refused after the CRL update", 10, || async {
        status_with(&gw, &alice).await.is_none()
    })
    .await;
    assert_eq!(
        status_with(&gw, &bob).await,
        Some(200),
        "bob is not revoked"
    );

    // A broken list is rejected; the previous one stays in effect.
    std::fs::write(&crl_file, "not a CRL").unwrap();
    assert!(
        gw.wait_stderr("CRL file rejected", 10).await,
        "{}",
        gw.stderr()
    );
    assert_eq!(status_with(&gw, &alice).await, None);
    assert_eq!(status_with(&gw, &bob).await, Some(200));

    // CA rotation: CA 2 joins the bundle, with its own (empty) list next to CA 1's.
    let lists = format!(
        "{}{}",
        ca1.issue_crl(&[&alice.cert_pem], 3, DAY).unwrap(),
        ca2.issue_crl(&[], 1, DAY).unwrap()
    );
    std::fs::write(&crl_file, lists).unwrap();
    std::fs::write(&ca_file, format!("{}{}", ca1.cert_pem(), ca2.cert_pem())).unwrap();
    wait_until("carol accepted after the CA rotation", 10, || async {
        status_with(&gw, &carol).await == Some(200)
    })
    .await;
    assert_eq!(status_with(&gw, &alice).await, None, "still revoked");
    assert_eq!(status_with(&gw, &bob).await, Some(200));
    gw.assert_running();
}
