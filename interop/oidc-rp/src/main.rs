//! Interop check with the `openidconnect` crate, a relying party nobody on Rampart wrote:
//! discovery and JWKS are accepted, a client-credentials token is obtained with the crate's
//! own token request, and the JWT access token's signature verifies with the crate's own
//! JWK implementation (and fails once tampered).
//!
//! Usage: oidc-rp ISSUER CA_PEM CLIENT_ID CLIENT_SECRET SCOPE

use base64::Engine;
use openidconnect::core::{CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata};
use openidconnect::{ClientId, ClientSecret, IssuerUrl, JsonWebKey, Scope};

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("oidc-rp: FAIL: {msg}");
    std::process::exit(1)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        fail("usage: oidc-rp ISSUER CA_PEM CLIENT_ID CLIENT_SECRET SCOPE");
    }
    let (issuer, ca, client_id, secret, scope) = (&args[1], &args[2], &args[3], &args[4], &args[5]);
    let ca_pem = std::fs::read(ca).unwrap_or_else(|e| fail(format!("read CA: {e}")));
    let http = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).unwrap_or_else(|e| fail(e)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| fail(e));

    let issuer_url = IssuerUrl::new(issuer.clone()).unwrap_or_else(|e| fail(e));
    let metadata = CoreProviderMetadata::discover_async(issuer_url, &http)
        .await
        .unwrap_or_else(|e| fail(format!("discovery rejected: {e:?}")));
    if metadata.issuer().as_str() != issuer {
        fail("issuer mismatch");
    }
    let jwks = metadata.jwks().clone();
    if jwks.keys().is_empty() {
        fail("empty JWKS");
    }
    println!("discovery ok: {} keys in JWKS", jwks.keys().len());

    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.clone()),
        Some(ClientSecret::new(secret.clone())),
    );
    let token_request = client
        .exchange_client_credentials()
        .unwrap_or_else(|e| fail(format!("no token endpoint: {e:?}")));
    let response = token_request
        .add_scope(Scope::new(scope.clone()))
        .request_async(&http)
        .await
        .unwrap_or_else(|e| fail(format!("token request failed: {e:?}")));
    let token = openidconnect::OAuth2TokenResponse::access_token(&response).secret().clone();

    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        fail("access token is not a JWS");
    }
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[0]).unwrap_or_else(|e| fail(e))).unwrap_or_else(|e| fail(e));
    let kid = header["kid"].as_str().unwrap_or_else(|| fail("no kid"));
    let alg: CoreJwsSigningAlgorithm =
        serde_json::from_value(header["alg"].clone()).unwrap_or_else(|e| fail(format!("alg: {e}")));
    let key = jwks
        .keys()
        .iter()
        .find(|k| k.key_id().map(|id| id.as_str()) == Some(kid))
        .unwrap_or_else(|| fail("kid not in JWKS"));
    let message = format!("{}.{}", parts[0], parts[1]);
    let signature = b64.decode(parts[2]).unwrap_or_else(|e| fail(e));
    key.verify_signature(&alg, message.as_bytes(), &signature)
        .unwrap_or_else(|e| fail(format!("signature rejected: {e:?}")));

    let mut payload = b64.decode(parts[1]).unwrap_or_else(|e| fail(e));
    if let Some(byte) = payload.iter_mut().find(|b| **b == b'"') {
        *byte = b'\'';
    }
    let tampered = format!("{}.{}", parts[0], b64.encode(&payload));
    if key.verify_signature(&alg, tampered.as_bytes(), &signature).is_ok() {
        fail("tampered token verified");
    }
    println!("OK token verified by openidconnect: kid={kid} alg={}", header["alg"]);
}
