//! DevCa issuance and real TLS handshakes over loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rampart_pki::{
    DevCa, ExposeSecret, PkiError, TLS_VERSIONS, cert_not_after_unix, client_config,
    client_config_with_alpn, crypto_provider, server_config,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ProtocolVersion, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn localhost_sans() -> (Vec<String>, Vec<IpAddr>) {
    (
        vec!["localhost".to_string()],
        vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ],
    )
}

fn der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// Runs one TLS handshake + echo. Returns the negotiated version and ALPN.
async fn handshake(
    server: Arc<rustls::ServerConfig>,
    client: Arc<ClientConfig>,
    name: &'static str,
) -> Result<(ProtocolVersion, Option<Vec<u8>>), std::io::Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(server);
    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = acceptor.accept(tcp).await?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        tls.write_all(&buf).await?;
        tls.shutdown().await?;
        Ok::<_, std::io::Error>(())
    });

    let tcp = TcpStream::connect(addr).await.unwrap();
    let connector = TlsConnector::from(client);
    let server_name = ServerName::try_from(name).unwrap();
    let result = async {
        let mut tls = connector.connect(server_name, tcp).await?;
        tls.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"ping");
        let (_, conn) = tls.get_ref();
        Ok((
            conn.protocol_version().unwrap(),
            conn.alpn_protocol().map(<[u8]>::to_vec),
        ))
    }
    .await;
    let server_result = server_task.await.unwrap();
    if result.is_ok() {
        server_result.unwrap();
    } else {
        assert!(server_result.is_err(), "server should also fail");
    }
    result
}

#[test]
fn ca_properties() {
    let ca = DevCa::generate("Rampart Dev CA").unwrap();
    let der = der(ca.cert_pem());
    let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(
        x.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "Rampart Dev CA"
    );
    assert_eq!(x.subject(), x.issuer());
    let bc = x.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca);
    assert_eq!(bc.path_len_constraint, Some(0));
    let ku = x.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.crl_sign());
    assert_eq!(
        x.public_key().algorithm.algorithm,
        oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY
    );
    let now = now_unix();
    let nb = x.validity().not_before.timestamp();
    let na = x.validity().not_after.timestamp();
    assert!((now - 3600 - nb).abs() < 60, "backdated one hour");
    assert!((na - (now + 5 * 365 * 86400)).abs() < 60, "five years");
    assert_eq!(ca.not_after_unix(), na);
    assert!(ca.key_pem().expose_secret().contains("BEGIN PRIVATE KEY"));
}

#[test]
fn server_cert_properties() {
    let ca = DevCa::generate("Rampart Dev CA").unwrap();
    let (dns, ips) = localhost_sans();
    let issued = ca.issue_server_cert(&dns, &ips, 30 * DAY).unwrap();
    assert!(issued.chain_pem.starts_with(&issued.cert_pem));
    assert!(issued.chain_pem.ends_with(ca.cert_pem()));
    assert!(issued.key_pem.expose_secret().contains("BEGIN PRIVATE KEY"));

    let der = der(&issued.cert_pem);
    let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(
        x.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "localhost"
    );
    let ca_der = self::der(ca.cert_pem());
    let (_, ca_x) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    assert_eq!(x.issuer(), ca_x.subject());
    let eku = x.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth);
    let san = x.subject_alternative_name().unwrap().unwrap().value;
    let names: Vec<String> = san
        .general_names
        .iter()
        .map(|g| match g {
            GeneralName::DNSName(n) => n.to_string(),
            GeneralName::IPAddress(b) => format!("ip:{}", b.len()),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(names, ["localhost", "ip:4", "ip:16"]);
    let bc = x.basic_constraints().unwrap();
    assert!(bc.is_none_or(|b| !b.value.ca));

    let not_after = cert_not_after_unix(&issued.cert_pem).unwrap();
    let expected = now_unix() + 30 * 86400;
    assert!(
        (not_after - expected).abs() < 60,
        "{not_after} vs {expected}"
    );
    // The chain's first certificate is the leaf.
    assert_eq!(cert_not_after_unix(&issued.chain_pem).unwrap(), not_after);
}

#[test]
fn leaf_validity_is_capped_by_ca() {
    let ca = DevCa::generate("ca").unwrap();
    let issued = ca
        .issue_server_cert(&["a.test".into()], &[], 100 * 365 * DAY)
        .unwrap();
    assert_eq!(
        cert_not_after_unix(&issued.cert_pem).unwrap(),
        ca.not_after_unix()
    );
}

#[test]
fn issue_rejects_bad_input() {
    let ca = DevCa::generate("ca").unwrap();
    assert!(matches!(
        ca.issue_server_cert(&[], &[], DAY),
        Err(PkiError::NoSubjectNames)
    ));
    assert!(matches!(
        ca.issue_server_cert(&["a.test".into()], &[], Duration::ZERO),
        Err(PkiError::InvalidValidity)
    ));
    assert!(matches!(
        ca.issue_server_cert(&["bad\u{e9}.test".into()], &[], DAY),
        Err(PkiError::InvalidDnsName(_))
    ));
    // IP-only certificate: CN is the IP.
    let issued = ca
        .issue_server_cert(&[], &[IpAddr::V4(Ipv4Addr::LOCALHOST)], DAY)
        .unwrap();
    let der = der(&issued.cert_pem);
    let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(
        x.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "127.0.0.1"
    );
}

#[test]
fn debug_redacts_private_keys() {
    let ca = DevCa::generate("ca").unwrap();
    let issued = ca
        .issue_server_cert(&["localhost".into()], &[], DAY)
        .unwrap();
    let ca_dbg = format!("{ca:?}");
    let leaf_dbg = format!("{issued:?}");
    for (dbg, key) in [
        (&ca_dbg, ca.key_pem().expose_secret()),
        (&leaf_dbg, issued.key_pem.expose_secret()),
    ] {
        assert!(dbg.contains("REDACTED"));
        assert!(!dbg.contains("PRIVATE KEY"));
        let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
        for line in key.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!dbg.contains(line));
        }
        assert!(!dbg.contains(&body));
    }
}

#[test]
fn from_pem_round_trip_and_checks() {
    let ca = DevCa::generate("Round Trip CA").unwrap();
    let loaded = DevCa::from_pem(ca.cert_pem(), ca.key_pem().expose_secret()).unwrap();
    assert_eq!(loaded.cert_pem(), ca.cert_pem());
    assert_eq!(
        loaded.key_pem().expose_secret(),
        ca.key_pem().expose_secret()
    );
    assert_eq!(loaded.not_after_unix(), ca.not_after_unix());

    // Wrong key for the certificate.
    let other = DevCa::generate("Other CA").unwrap();
    assert!(matches!(
        DevCa::from_pem(ca.cert_pem(), other.key_pem().expose_secret()),
        Err(PkiError::KeyMismatch)
    ));
    // A leaf is not a CA.
    let leaf = ca.issue_server_cert(&["x.test".into()], &[], DAY).unwrap();
    assert!(matches!(
        DevCa::from_pem(&leaf.cert_pem, leaf.key_pem.expose_secret()),
        Err(PkiError::NotACa)
    ));
    // Garbage.
    assert!(DevCa::from_pem("nope", "nope").is_err());
    assert!(DevCa::from_pem(ca.cert_pem(), "nope").is_err());
    let err = DevCa::from_pem(
        ca.cert_pem(),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap_err();
    assert!(!err.to_string().contains("AAAA"));
}

#[test]
fn server_config_versions_and_alpn() {
    assert_eq!(TLS_VERSIONS.len(), 2);
    let versions: Vec<ProtocolVersion> = TLS_VERSIONS.iter().map(|v| v.version).collect();
    assert!(versions.contains(&ProtocolVersion::TLSv1_3));
    assert!(versions.contains(&ProtocolVersion::TLSv1_2));

    let ca = DevCa::generate("ca").unwrap();
    let (dns, ips) = localhost_sans();
    let issued = ca.issue_server_cert(&dns, &ips, DAY).unwrap();
    let cfg = server_config(
        &issued.chain_pem,
        issued.key_pem.expose_secret(),
        &[b"h2", b"http/1.1"],
    )
    .unwrap();
    assert_eq!(cfg.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    let dbg = format!("{cfg:?}");
    assert!(dbg.contains("TLSv1_2") && dbg.contains("TLSv1_3"), "{dbg}");
    assert!(!dbg.contains("TLSv1_1") && !dbg.contains("TLSv1_0"));

    // Mismatched key and certificate.
    let other = ca.issue_server_cert(&dns, &ips, DAY).unwrap();
    assert!(server_config(&issued.chain_pem, other.key_pem.expose_secret(), &[]).is_err());
    assert!(matches!(
        server_config("", issued.key_pem.expose_secret(), &[]),
        Err(PkiError::NoCertificate)
    ));
    assert!(matches!(
        server_config(&issued.chain_pem, "", &[]),
        Err(PkiError::NoPrivateKey)
    ));
    assert!(matches!(client_config(""), Err(PkiError::NoCertificate)));
}

fn setup() -> (DevCa, Arc<rustls::ServerConfig>) {
    let ca = DevCa::generate("Rampart Dev CA").unwrap();
    let (dns, ips) = localhost_sans();
    let issued = ca.issue_server_cert(&dns, &ips, 7 * DAY).unwrap();
    let server =
        server_config(&issued.chain_pem, issued.key_pem.expose_secret(), &[b"h2"]).unwrap();
    (ca, server)
}

#[tokio::test]
async fn tls_handshake_by_name_and_ip() {
    let (ca, server) = setup();
    let client = client_config_with_alpn(ca.cert_pem(), &[b"h2"]).unwrap();
    for name in ["localhost", "127.0.0.1", "::1"] {
        let (version, alpn) = handshake(server.clone(), client.clone(), name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            version == ProtocolVersion::TLSv1_3 || version == ProtocolVersion::TLSv1_2,
            "{version:?}"
        );
        assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    }
    // Plain client_config, no ALPN.
    let plain = client_config(ca.cert_pem()).unwrap();
    let (version, alpn) = handshake(server, plain, "localhost").await.unwrap();
    assert_eq!(version, ProtocolVersion::TLSv1_3);
    assert_eq!(alpn, None);
}

#[tokio::test]
async fn tls12_only_client_is_accepted() {
    let (ca, server) = setup();
    let mut roots = RootCertStore::empty();
    roots.add(der(ca.cert_pem()).into()).unwrap();
    let client = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let (version, _) = handshake(server, Arc::new(client), "localhost")
        .await
        .unwrap();
    assert_eq!(version, ProtocolVersion::TLSv1_2);
}

#[tokio::test]
async fn client_trusting_other_ca_fails() {
    let (_ca, server) = setup();
    let other = DevCa::generate("Other CA").unwrap();
    let client = client_config(other.cert_pem()).unwrap();
    let err = handshake(server, client, "localhost").await.unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}

#[tokio::test]
async fn wrong_server_name_fails() {
    let (ca, server) = setup();
    let client = client_config(ca.cert_pem()).unwrap();
    assert!(handshake(server, client, "example.com").await.is_err());
}

#[tokio::test]
async fn reloaded_ca_issues_verifiable_certs() {
    let ca = DevCa::generate("Rampart Dev CA").unwrap();
    let reloaded = DevCa::from_pem(ca.cert_pem(), ca.key_pem().expose_secret()).unwrap();
    let (dns, ips) = localhost_sans();
    let issued = reloaded.issue_server_cert(&dns, &ips, DAY).unwrap();
    let server = server_config(&issued.chain_pem, issued.key_pem.expose_secret(), &[]).unwrap();
    // Trust the original CA PEM: the reloaded CA signs with the same key/name.
    let client = client_config(ca.cert_pem()).unwrap();
    let (version, _) = handshake(server, client, "127.0.0.1").await.unwrap();
    assert_eq!(version, ProtocolVersion::TLSv1_3);
}

#[test]
fn types_are_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<DevCa>();
    check::<rampart_pki::IssuedCert>();
    check::<PkiError>();
}
