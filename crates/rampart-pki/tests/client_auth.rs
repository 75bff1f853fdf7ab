//! Client certificates: issuing, identities, and the optional client-auth server config.

use std::sync::Arc;
use std::time::Duration;

use rampart_pki::{
    DevCa, PkiError, client_config, client_config_with_client_cert, client_identity, server_config,
    server_config_with_client_auth, with_client_auth,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

const DAY: Duration = Duration::from_secs(86400);

fn der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .as_ref()
        .to_vec()
}

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn client_cert_properties_and_identity() {
    let ca = DevCa::generate("client ca").unwrap();
    let cert = ca
        .issue_client_cert(
            &names(&["spiffe://demo/orders-worker", "worker.local"]),
            DAY,
        )
        .unwrap();
    let leaf = der(&cert.cert_pem);
    let (_, x509) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    let eku = x509.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth);
    assert!(!eku.server_auth);
    assert!(!x509.is_ca());
    assert_eq!(
        client_identity(&leaf).as_deref(),
        Some("spiffe://demo/orders-worker")
    );
    assert!(cert.chain_pem.ends_with(ca.cert_pem()));

    // DNS only.
    let dns = ca
        .issue_client_cert(&names(&["worker.local"]), DAY)
        .unwrap();
    assert_eq!(
        client_identity(&der(&dns.cert_pem)).as_deref(),
        Some("worker.local")
    );
    // A server certificate has no URI SAN: its DNS name.
    let server = ca
        .issue_server_cert(&names(&["svc.local"]), &[], DAY)
        .unwrap();
    assert_eq!(
        client_identity(&der(&server.cert_pem)).as_deref(),
        Some("svc.local")
    );
    // No SAN at all: the subject CN (the CA certificate).
    assert_eq!(
        client_identity(&der(ca.cert_pem())).as_deref(),
        Some("client ca")
    );
    assert_eq!(client_identity(b"not a certificate"), None);
}

#[test]
fn issue_client_cert_rejects_bad_input() {
    let ca = DevCa::generate("client ca").unwrap();
    assert!(matches!(
        ca.issue_client_cert(&[], DAY),
        Err(PkiError::NoClientNames)
    ));
    assert!(matches!(
        ca.issue_client_cert(&names(&["a"]), Duration::ZERO),
        Err(PkiError::InvalidValidity)
    ));
    assert!(matches!(
        ca.issue_client_cert(&names(&["spiffe://dé/x"]), DAY),
        Err(PkiError::InvalidUri(_))
    ));
    assert!(matches!(
        ca.issue_client_cert(&names(&["dé.local"]), DAY),
        Err(PkiError::InvalidDnsName(_))
    ));
}

/// Handshakes and returns the client identity the server saw.
async fn handshake(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
) -> Result<Option<String>, std::io::Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(server);
    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = acceptor.accept(tcp).await?;
        let identity = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| client_identity(c.as_ref()));
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        tls.write_all(&buf).await?;
        tls.shutdown().await?;
        Ok::<_, std::io::Error>(identity)
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let connector = TlsConnector::from(client);
    let result = async {
        let mut tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await?;
        tls.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        Ok::<_, std::io::Error>(())
    }
    .await;
    let server_result = server_task.await.unwrap();
    result?;
    server_result
}

#[tokio::test]
async fn optional_client_auth() {
    let server_ca = DevCa::generate("server ca").unwrap();
    let server_cert = server_ca
        .issue_server_cert(&names(&["localhost"]), &[], DAY)
        .unwrap();
    let client_ca = DevCa::generate("client ca").unwrap();
    let other_ca = DevCa::generate("other ca").unwrap();
    let good = client_ca
        .issue_client_cert(&names(&["spiffe://demo/orders-worker"]), DAY)
        .unwrap();
    let foreign = other_ca
        .issue_client_cert(&names(&["spiffe://demo/evil"]), DAY)
        .unwrap();
    let key = |c: &rampart_pki::IssuedCert| {
        use rampart_pki::ExposeSecret;
        c.key_pem.expose_secret().to_owned()
    };
    let server = server_config_with_client_auth(
        &server_cert.chain_pem,
        &key(&server_cert),
        &[b"http/1.1"],
        client_ca.cert_pem(),
    )
    .unwrap();
    let with_cert = |c: &rampart_pki::IssuedCert| {
        client_config_with_client_cert(server_ca.cert_pem(), &c.chain_pem, &key(c), &[]).unwrap()
    };

    // Verified certificate: its identity.
    assert_eq!(
        handshake(server.clone(), with_cert(&good)).await.unwrap(),
        Some("spiffe://demo/orders-worker".to_owned())
    );
    // No certificate: allowed, no identity.
    assert_eq!(
        handshake(server.clone(), client_config(server_ca.cert_pem()).unwrap())
            .await
            .unwrap(),
        None
    );
    // A certificate of another CA: the handshake fails.
    assert!(
        handshake(server.clone(), with_cert(&foreign))
            .await
            .is_err()
    );

    // Derived from a plain server config: same behaviour, same ALPN.
    let plain = server_config(&server_cert.chain_pem, &key(&server_cert), &[b"h2"]).unwrap();
    let derived = with_client_auth(&plain, client_ca.cert_pem()).unwrap();
    assert_eq!(derived.alpn_protocols, vec![b"h2".to_vec()]);
    assert_eq!(
        handshake(derived.clone(), with_cert(&good)).await.unwrap(),
        Some("spiffe://demo/orders-worker".to_owned())
    );
    assert!(handshake(derived, with_cert(&foreign)).await.is_err());
    // The plain config never asks: a client certificate is not even sent.
    assert_eq!(handshake(plain, with_cert(&good)).await.unwrap(), None);
}

#[test]
fn bad_client_ca_is_rejected() {
    assert!(rampart_pki::client_cert_verifier("nope").is_err());
}
