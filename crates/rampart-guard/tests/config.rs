//! Configuration validation of `Guard::new`.

use rampart_guard::{Guard, GuardConfig, GuardError, IssuerConfig};
use secrecy::SecretString;

fn guard(ic: IssuerConfig) -> Result<Guard, GuardError> {
    Guard::new(GuardConfig::new(vec![ic]))
}

#[test]
fn defaults() {
    let c = GuardConfig::new(vec![]);
    assert_eq!(c.leeway_secs, 30);
    assert_eq!(c.key_refresh_min_interval.as_secs(), 10);
    assert_eq!(c.key_max_age.as_secs(), 300);
    assert_eq!(c.introspection_ttl.as_secs(), 60);
    assert_eq!(c.negative_ttl.as_secs(), 5);
    assert_eq!(c.http_timeout.as_secs(), 5);
    assert_eq!(c.max_cache_entries, 100_000);
    let ic = IssuerConfig::new("https://idp.example/");
    assert_eq!(ic.jwks_url(), "https://idp.example/jwks.json");
    assert_eq!(ic.paserk_url(), "https://idp.example/paserk.json");
}

#[test]
fn https_and_loopback_http_accepted() {
    assert!(guard(IssuerConfig::new("https://idp.example")).is_ok());
    assert!(guard(IssuerConfig::new("http://127.0.0.1:9999")).is_ok());
    assert!(guard(IssuerConfig::new("http://localhost:9999")).is_ok());
    assert!(guard(IssuerConfig::new("http://[::1]:9999")).is_ok());
}

#[test]
fn http_to_non_loopback_rejected() {
    assert!(matches!(
        guard(IssuerConfig::new("http://idp.example")),
        Err(GuardError::HttpNotAllowed { .. })
    ));
    let mut ic = IssuerConfig::new("https://idp.example");
    ic.introspection_uri = Some("http://10.1.2.3/introspect".into());
    assert!(matches!(guard(ic), Err(GuardError::HttpNotAllowed { .. })));
    let mut ic = IssuerConfig::new("https://idp.example");
    ic.jwks_uri = Some("http://192.168.1.1/jwks.json".into());
    assert!(matches!(guard(ic), Err(GuardError::HttpNotAllowed { .. })));
}

#[test]
fn other_config_errors() {
    let mut ic = IssuerConfig::new("https://idp.example");
    ic.ca_pem = Some("not a pem".into());
    assert!(matches!(guard(ic), Err(GuardError::BadCaPem { .. })));
    let mut ic = IssuerConfig::new("https://idp.example");
    ic.ca_pem = Some("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n".into());
    assert!(matches!(guard(ic), Err(GuardError::BadCaPem { .. })));
    let mut ic = IssuerConfig::new("https://idp.example");
    ic.client_id = Some("gw".into());
    assert!(matches!(
        guard(ic),
        Err(GuardError::IncompleteCredentials(_))
    ));
    let dup = GuardConfig::new(vec![
        IssuerConfig::new("https://idp.example"),
        IssuerConfig::new("https://idp.example"),
    ]);
    assert!(matches!(Guard::new(dup), Err(GuardError::BadIssuer(_))));
    assert!(matches!(
        guard(IssuerConfig::new("")),
        Err(GuardError::BadIssuer(_))
    ));
    let mut ic = IssuerConfig::new("https://idp.example");
    ic.jwks_uri = Some("https://user:pw@idp.example/jwks.json".into());
    assert!(matches!(guard(ic), Err(GuardError::BadUrl { .. })));
}

#[test]
fn debug_never_prints_the_secret() {
    let mut ic = IssuerConfig::new("https://idp.example");
    ic.introspection_uri = Some("https://idp.example/introspect".into());
    ic.client_id = Some("gw".into());
    ic.client_secret = Some(SecretString::from("super-secret-value"));
    let s = format!("{ic:?}");
    assert!(!s.contains("super-secret-value"), "{s}");
    let cfg = GuardConfig::new(vec![ic]);
    assert!(!format!("{cfg:?}").contains("super-secret-value"));
    let g = Guard::new(cfg).unwrap();
    let s = format!("{g:?}");
    assert!(!s.contains("super-secret-value"), "{s}");
    assert!(s.contains("idp.example"), "{s}");
}
