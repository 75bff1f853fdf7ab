//! Low-level PASETO v4 operations (thin wrappers over `pasetors`).
//!
//! These functions are used both by the production [`crate::issue`] /
//! [`crate::verify`] paths and by the official test vectors. They perform no
//! claim validation: they only sign / verify / encrypt / decrypt.
//!
//! An empty `footer` means "no footer": verification then rejects tokens
//! that carry one. A non-empty `footer` must match the token's footer
//! exactly (constant-time comparison inside `pasetors`).

use pasetors::errors::Error as PasetoError;
use pasetors::keys::{AsymmetricPublicKey, AsymmetricSecretKey, SymmetricKey};
use pasetors::paserk::{FormatAsPaserk, Id};
use pasetors::token::{Local, Public, UntrustedToken};
use pasetors::version4::{LocalToken, PublicToken, V4};

use crate::TokenError;

/// Prefix of PASETO v4 public tokens.
pub const V4_PUBLIC_PREFIX: &str = "v4.public.";
/// Prefix of PASETO v4 local tokens.
pub const V4_LOCAL_PREFIX: &str = "v4.local.";

fn map_err(e: PasetoError) -> TokenError {
    match e {
        PasetoError::TokenValidation => TokenError::BadSignature,
        PasetoError::Key | PasetoError::KeyGeneration => TokenError::key("invalid PASETO key"),
        _ => TokenError::Malformed,
    }
}

fn opt(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.is_empty() { None } else { Some(bytes) }
}

/// Signs `payload` as a `v4.public` token with a 64-byte Ed25519 secret key
/// (seed || public key).
pub fn sign_v4_public(
    secret_key: &[u8],
    payload: &[u8],
    footer: &[u8],
    implicit: &[u8],
) -> Result<String, TokenError> {
    let sk = AsymmetricSecretKey::<V4>::from(secret_key)
        .map_err(|_| TokenError::key("invalid PASETO v4 secret key"))?;
    sign_public(&sk, payload, footer, implicit)
}

/// Verifies a `v4.public` token with a 32-byte Ed25519 public key and
/// returns its payload.
pub fn verify_v4_public(
    public_key: &[u8],
    token: &str,
    footer: &[u8],
    implicit: &[u8],
) -> Result<Vec<u8>, TokenError> {
    let pk = AsymmetricPublicKey::<V4>::from(public_key)
        .map_err(|_| TokenError::key("invalid PASETO v4 public key"))?;
    verify_public(&pk, token, footer, implicit)
}

/// Encrypts `payload` as a `v4.local` token with a 32-byte key (random nonce).
pub fn encrypt_v4_local(
    key: &[u8],
    payload: &[u8],
    footer: &[u8],
    implicit: &[u8],
) -> Result<String, TokenError> {
    let k = SymmetricKey::<V4>::from(key)
        .map_err(|_| TokenError::key("invalid PASETO v4 local key"))?;
    encrypt_local(&k, payload, footer, implicit)
}

/// Authenticates and decrypts a `v4.local` token with a 32-byte key and
/// returns its payload.
pub fn decrypt_v4_local(
    key: &[u8],
    token: &str,
    footer: &[u8],
    implicit: &[u8],
) -> Result<Vec<u8>, TokenError> {
    let k = SymmetricKey::<V4>::from(key)
        .map_err(|_| TokenError::key("invalid PASETO v4 local key"))?;
    decrypt_local(&k, token, footer, implicit)
}

/// PASERK `k4.public.` serialization of a raw 32-byte Ed25519 public key.
pub fn paserk_public(public_key: &[u8]) -> Result<String, TokenError> {
    let pk = AsymmetricPublicKey::<V4>::from(public_key)
        .map_err(|_| TokenError::key("invalid PASETO v4 public key"))?;
    Ok(public_key_paserk(&pk))
}

/// PASERK `k4.pid.` identifier of a raw 32-byte Ed25519 public key.
pub fn paserk_pid(public_key: &[u8]) -> Result<String, TokenError> {
    let pk = AsymmetricPublicKey::<V4>::from(public_key)
        .map_err(|_| TokenError::key("invalid PASETO v4 public key"))?;
    Ok(public_key_id(&pk))
}

/// PASERK `k4.lid.` identifier of a raw 32-byte symmetric key.
pub fn paserk_lid(key: &[u8]) -> Result<String, TokenError> {
    let k = SymmetricKey::<V4>::from(key)
        .map_err(|_| TokenError::key("invalid PASETO v4 local key"))?;
    Ok(local_key_id(&k))
}

fn paserk_string(value: &dyn FormatAsPaserk) -> String {
    let mut s = String::new();
    // Writing into a String cannot fail.
    let _ = value.fmt(&mut s);
    s
}

pub(crate) fn public_key_paserk(pk: &AsymmetricPublicKey<V4>) -> String {
    paserk_string(pk)
}

pub(crate) fn public_key_id(pk: &AsymmetricPublicKey<V4>) -> String {
    paserk_string(&Id::from(pk))
}

pub(crate) fn local_key_id(key: &SymmetricKey<V4>) -> String {
    paserk_string(&Id::from(key))
}

/// Parses a `k4.public.` PASERK into a public key.
pub(crate) fn parse_public_paserk(paserk: &str) -> Result<AsymmetricPublicKey<V4>, TokenError> {
    if paserk.len() > 128 {
        return Err(TokenError::key("invalid PASERK"));
    }
    AsymmetricPublicKey::<V4>::try_from(paserk).map_err(|_| TokenError::key("invalid PASERK"))
}

pub(crate) fn sign_public(
    sk: &AsymmetricSecretKey<V4>,
    payload: &[u8],
    footer: &[u8],
    implicit: &[u8],
) -> Result<String, TokenError> {
    PublicToken::sign(sk, payload, opt(footer), opt(implicit)).map_err(map_err)
}

pub(crate) fn verify_public(
    pk: &AsymmetricPublicKey<V4>,
    token: &str,
    footer: &[u8],
    implicit: &[u8],
) -> Result<Vec<u8>, TokenError> {
    if !token.starts_with(V4_PUBLIC_PREFIX) {
        return Err(TokenError::UnsupportedFormat);
    }
    let untrusted = UntrustedToken::<Public, V4>::try_from(token).map_err(map_err)?;
    if footer.is_empty() && !untrusted.untrusted_footer().is_empty() {
        return Err(TokenError::BadSignature);
    }
    let trusted =
        PublicToken::verify(pk, &untrusted, opt(footer), opt(implicit)).map_err(map_err)?;
    Ok(trusted.payload().as_bytes().to_vec())
}

pub(crate) fn encrypt_local(
    key: &SymmetricKey<V4>,
    payload: &[u8],
    footer: &[u8],
    implicit: &[u8],
) -> Result<String, TokenError> {
    LocalToken::encrypt(key, payload, opt(footer), opt(implicit)).map_err(map_err)
}

pub(crate) fn decrypt_local(
    key: &SymmetricKey<V4>,
    token: &str,
    footer: &[u8],
    implicit: &[u8],
) -> Result<Vec<u8>, TokenError> {
    if !token.starts_with(V4_LOCAL_PREFIX) {
        return Err(TokenError::UnsupportedFormat);
    }
    let untrusted = UntrustedToken::<Local, V4>::try_from(token).map_err(map_err)?;
    if footer.is_empty() && !untrusted.untrusted_footer().is_empty() {
        return Err(TokenError::BadSignature);
    }
    let trusted =
        LocalToken::decrypt(key, &untrusted, opt(footer), opt(implicit)).map_err(map_err)?;
    Ok(trusted.payload().as_bytes().to_vec())
}
