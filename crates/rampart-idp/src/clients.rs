//! Client registration and the in-memory client cache.
//!
//! Client records are read on every token request, so they are cached in memory. Another
//! process (the `rampart client ...` CLI) may change the same database while the server runs:
//! the cache is dropped whenever the store's client generation counter moves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use rampart_crypto::{SecretHasher, SecretString, generate_client_secret, random_identifier};
use rampart_store::{ClientAuthMethod, ClientRecord, ClientStore, ClientTokenFormat, StoreError};
use rampart_token::KeySet;

use crate::config::IdpConfig;

/// Most scopes a client may hold.
const MAX_SCOPES: usize = 64;
/// Most audiences a client may hold.
const MAX_AUDIENCES: usize = 16;
/// Longest scope token, audience, name or client id.
const MAX_ITEM_LEN: usize = 256;
/// Largest registered JWKS for `private_key_jwt`.
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Errors of client registration.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The request is invalid; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// A client with this id exists.
    #[error("a client with this id already exists")]
    Conflict,
    /// No such client.
    #[error("no such client")]
    NotFound,
    /// The operation does not apply to this client.
    #[error("{0}")]
    NotApplicable(&'static str),
    /// The store failed.
    #[error("storage failed")]
    Store(#[source] StoreError),
    /// Randomness was unavailable.
    #[error("could not generate a secret")]
    Crypto,
}

impl From<StoreError> for RegistryError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => RegistryError::Conflict,
            StoreError::NotFound => RegistryError::NotFound,
            other => RegistryError::Store(other),
        }
    }
}

/// What a caller asks for when registering a client.
#[derive(Clone, Debug)]
pub struct NewClient {
    /// A chosen client id; a random one when `None`.
    pub client_id: Option<String>,
    /// A display name.
    pub name: String,
    /// Scopes the client may request.
    pub scopes: Vec<String>,
    /// Audiences (resource URIs) the client may request tokens for; at least one.
    pub audiences: Vec<String>,
    /// Format of the access tokens it gets.
    pub token_format: ClientTokenFormat,
    /// How it authenticates at the token endpoint.
    pub auth_method: ClientAuthMethod,
    /// Its public JWKS (JSON), required for and only for `private_key_jwt`.
    pub jwks: Option<String>,
    /// Access-token lifetime in seconds; the server default when `None`.
    pub ttl_secs: Option<i64>,
    /// Grant types and the settings of the flows for people.
    pub flows: FlowSettings,
}

/// The grants a client may use and how its users sign in.
#[derive(Clone, Debug, Default)]
pub struct FlowSettings {
    /// Grant types; `["client_credentials"]` when empty.
    pub grant_types: Vec<String>,
    /// Redirect URIs for the authorization code flow (exact match).
    pub redirect_uris: Vec<String>,
    /// Skip the consent page.
    pub first_party: bool,
    /// Every sign-in for this client needs a second factor.
    pub require_mfa: bool,
    /// Authorization requests must be pushed (RFC 9126).
    pub require_par: bool,
}

/// Grant types a client may be registered for.
pub const GRANT_TYPES: [&str; 3] = ["client_credentials", "authorization_code", "refresh_token"];
/// Most redirect URIs per client.
const MAX_REDIRECT_URIS: usize = 16;
/// Longest redirect URI.
const MAX_REDIRECT_URI_LEN: usize = 1024;

/// A newly registered client and, for secret-based methods, its secret (shown once).
#[derive(Debug)]
pub struct CreatedClient {
    /// The stored record.
    pub record: ClientRecord,
    /// The generated secret; never stored in plaintext.
    pub secret: Option<SecretString>,
}

/// A client as the token endpoint sees it: the record and, for `private_key_jwt`, its
/// parsed keys.
pub struct RegisteredClient {
    /// The stored record.
    pub record: ClientRecord,
    /// Keys that verify its client assertions.
    pub assertion_keys: Option<KeySet>,
}

impl std::fmt::Debug for RegisteredClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredClient")
            .field("client_id", &self.record.client_id)
            .field("auth_method", &self.record.auth_method)
            .finish_non_exhaustive()
    }
}

/// Registers clients and serves cached lookups.
pub struct ClientRegistry {
    store: Arc<dyn ClientStore>,
    hasher: SecretHasher,
    default_ttl: i64,
    max_ttl: i64,
    cache: RwLock<HashMap<String, Arc<RegisteredClient>>>,
    seen_generation: AtomicI64,
}

impl ClientRegistry {
    /// A registry over `store`; secrets are hashed with `hasher`.
    pub fn new(store: Arc<dyn ClientStore>, hasher: SecretHasher, config: &IdpConfig) -> Self {
        Self {
            store,
            hasher,
            default_ttl: config.default_access_token_ttl,
            max_ttl: config.max_access_token_ttl,
            cache: RwLock::new(HashMap::new()),
            seen_generation: AtomicI64::new(i64::MIN),
        }
    }

    /// The hasher that checks client secrets.
    pub fn hasher(&self) -> &SecretHasher {
        &self.hasher
    }

    /// Validates and stores a new client. The write is durable when this returns.
    pub async fn create(&self, new: NewClient, now: i64) -> Result<CreatedClient, RegistryError> {
        let client_id = match new.client_id {
            Some(id) => {
                validate_client_id(&id)?;
                id
            }
            None => random_identifier(16).map_err(|_| RegistryError::Crypto)?,
        };
        let name = new.name.trim().to_owned();
        if name.is_empty() || name.len() > MAX_ITEM_LEN || name.chars().any(char::is_control) {
            return Err(RegistryError::Invalid(
                "name: must be 1 to 256 printable characters".into(),
            ));
        }
        let scopes = validate_scopes(&new.scopes)?;
        let flows = validate_flows(new.flows, new.auth_method)?;
        let audiences = if new.audiences.is_empty()
            && !flows.grant_types.iter().any(|g| g == "client_credentials")
        {
            Vec::new()
        } else {
            validate_audiences(&new.audiences)?
        };
        let ttl = new.ttl_secs.unwrap_or(self.default_ttl);
        if ttl < 1 || ttl > self.max_ttl {
            return Err(RegistryError::Invalid(format!(
                "ttl: must be between 1 and {} seconds",
                self.max_ttl
            )));
        }
        let (secret, secret_hash, jwks) = match new.auth_method {
            ClientAuthMethod::PrivateKeyJwt => {
                let jwks = new.jwks.ok_or_else(|| {
                    RegistryError::Invalid("jwks: private_key_jwt needs the client's JWKS".into())
                })?;
                parse_client_jwks(&jwks)?;
                (None, None, Some(jwks))
            }
            ClientAuthMethod::None => {
                if new.jwks.is_some() {
                    return Err(RegistryError::Invalid(
                        "jwks: only private_key_jwt clients have a JWKS".into(),
                    ));
                }
                (None, None, None)
            }
            ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost => {
                if new.jwks.is_some() {
                    return Err(RegistryError::Invalid(
                        "jwks: only private_key_jwt clients have a JWKS".into(),
                    ));
                }
                let secret = generate_client_secret().map_err(|_| RegistryError::Crypto)?;
                let hash = self
                    .hasher
                    .hash(rampart_crypto::ExposeSecret::expose_secret(&secret).as_bytes());
                (Some(secret), Some(hash.to_vec()), None)
            }
        };
        let record = ClientRecord {
            client_id,
            name,
            secret_hash,
            auth_method: new.auth_method,
            jwks,
            scopes,
            audiences,
            token_format: new.token_format,
            access_token_ttl_secs: ttl,
            grant_types: flows.grant_types,
            redirect_uris: flows.redirect_uris,
            first_party: flows.first_party,
            require_mfa: flows.require_mfa,
            require_par: flows.require_par,
            created_at: now,
            updated_at: now,
        };
        self.store.create_client(&record).await?;
        Ok(CreatedClient { record, secret })
    }

    /// Replaces a client's secret with a new one, returned once. The old secret stops
    /// working at once.
    pub async fn rotate_secret(
        &self,
        client_id: &str,
        now: i64,
    ) -> Result<SecretString, RegistryError> {
        let record = self
            .store
            .get_client(client_id)
            .await?
            .ok_or(RegistryError::NotFound)?;
        match record.auth_method {
            ClientAuthMethod::PrivateKeyJwt => {
                return Err(RegistryError::NotApplicable(
                    "this client authenticates with private_key_jwt and has no secret",
                ));
            }
            ClientAuthMethod::None => {
                return Err(RegistryError::NotApplicable(
                    "this is a public client and has no secret",
                ));
            }
            ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost => {}
        }
        let secret = generate_client_secret().map_err(|_| RegistryError::Crypto)?;
        let hash = self
            .hasher
            .hash(rampart_crypto::ExposeSecret::expose_secret(&secret).as_bytes());
        self.store
            .set_client_secret_hash(client_id, &hash, now)
            .await?;
        self.forget(client_id);
        Ok(secret)
    }

    /// Deletes a client; its secret stops working at once.
    pub async fn delete(&self, client_id: &str) -> Result<(), RegistryError> {
        self.store.delete_client(client_id).await?;
        self.forget(client_id);
        Ok(())
    }

    /// All clients, from the store.
    pub async fn list(&self) -> Result<Vec<ClientRecord>, RegistryError> {
        Ok(self.store.list_clients().await?)
    }

    /// One client, from the store.
    pub async fn get(&self, client_id: &str) -> Result<ClientRecord, RegistryError> {
        self.store
            .get_client(client_id)
            .await?
            .ok_or(RegistryError::NotFound)
    }

    /// A client for authentication: from the cache, else from the store.
    pub async fn lookup(
        &self,
        client_id: &str,
    ) -> Result<Option<Arc<RegisteredClient>>, StoreError> {
        if let Some(hit) = self.cache_read().get(client_id) {
            return Ok(Some(hit.clone()));
        }
        let Some(record) = self.store.get_client(client_id).await? else {
            return Ok(None);
        };
        let assertion_keys = match (&record.auth_method, &record.jwks) {
            (ClientAuthMethod::PrivateKeyJwt, Some(jwks)) => parse_client_jwks(jwks).ok(),
            _ => None,
        };
        let entry = Arc::new(RegisteredClient {
            record,
            assertion_keys,
        });
        let mut cache = self.cache_write();
        // Bounded: a cache larger than any real deployment's client count is reset instead
        // of growing without limit.
        if cache.len() >= 100_000 {
            cache.clear();
        }
        cache.insert(client_id.to_owned(), entry.clone());
        Ok(Some(entry))
    }

    /// Drops the cache when another process changed a client.
    pub async fn refresh_if_changed(&self) -> Result<bool, StoreError> {
        let generation = self.store.clients_generation().await?;
        let seen = self.seen_generation.swap(generation, Ordering::AcqRel);
        if seen != generation {
            self.cache_write().clear();
            return Ok(true);
        }
        Ok(false)
    }

    fn forget(&self, client_id: &str) {
        self.cache_write().remove(client_id);
    }

    fn cache_read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<RegisteredClient>>> {
        self.cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cache_write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<RegisteredClient>>> {
        self.cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Client ids: unreserved URI characters only, so they are safe in URLs, headers and logs.
fn validate_client_id(id: &str) -> Result<(), RegistryError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::Invalid(
            "client_id: 1 to 128 characters of A-Z a-z 0-9 - . _ ~".into(),
        ))
    }
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ITEM_LEN
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Validates and de-duplicates scope tokens (space-separated lists are split).
pub(crate) fn validate_scopes(scopes: &[String]) -> Result<Vec<String>, RegistryError> {
    let mut out: Vec<String> = Vec::new();
    for scope in scopes
        .iter()
        .flat_map(|s| s.split(' '))
        .filter(|s| !s.is_empty())
    {
        if !is_scope_token(scope) {
            return Err(RegistryError::Invalid(format!(
                "scope: '{}' is not a valid scope token",
                scope.escape_default()
            )));
        }
        if !out.iter().any(|s| s == scope) {
            if out.len() == MAX_SCOPES {
                return Err(RegistryError::Invalid(format!(
                    "scope: at most {MAX_SCOPES} scopes"
                )));
            }
            out.push(scope.to_owned());
        }
    }
    Ok(out)
}

/// An audience is an absolute URI without a fragment (RFC 8707 §2).
pub fn is_valid_audience(s: &str) -> bool {
    s.len() <= MAX_ITEM_LEN && url::Url::parse(s).is_ok_and(|u| u.fragment().is_none())
}

/// Validates and de-duplicates audiences: absolute URIs without fragment, 1 to 16.
pub(crate) fn validate_audiences(audiences: &[String]) -> Result<Vec<String>, RegistryError> {
    if audiences.is_empty() {
        return Err(RegistryError::Invalid(
            "audience: at least one audience is required".into(),
        ));
    }
    if audiences.len() > MAX_AUDIENCES {
        return Err(RegistryError::Invalid(format!(
            "audience: at most {MAX_AUDIENCES} audiences"
        )));
    }
    let mut out: Vec<String> = Vec::new();
    for aud in audiences {
        if !is_valid_audience(aud) {
            return Err(RegistryError::Invalid(format!(
                "audience: '{}' is not an absolute URI without fragment",
                aud.chars()
                    .take(MAX_ITEM_LEN)
                    .collect::<String>()
                    .escape_default()
            )));
        }
        if !out.contains(aud) {
            out.push(aud.clone());
        }
    }
    Ok(out)
}

/// Checks grant types against each other and the authentication method, and the redirect
/// URIs (RFC 9700 §4.1: exact, absolute, no fragment; `http` only on loopback, RFC 8252).
fn validate_flows(
    mut flows: FlowSettings,
    auth_method: ClientAuthMethod,
) -> Result<FlowSettings, RegistryError> {
    if flows.grant_types.is_empty() {
        flows.grant_types.push("client_credentials".to_owned());
    }
    let mut grants: Vec<String> = Vec::new();
    for g in &flows.grant_types {
        if !GRANT_TYPES.contains(&g.as_str()) {
            return Err(RegistryError::Invalid(format!(
                "grant_type: '{}' is not one of client_credentials, authorization_code, refresh_token",
                g.chars().take(64).collect::<String>().escape_default()
            )));
        }
        if !grants.contains(g) {
            grants.push(g.clone());
        }
    }
    let has = |g: &str| grants.iter().any(|x| x == g);
    if has("refresh_token") && !has("authorization_code") {
        return Err(RegistryError::Invalid(
            "grant_type: refresh_token needs authorization_code".into(),
        ));
    }
    if auth_method == ClientAuthMethod::None && has("client_credentials") {
        return Err(RegistryError::Invalid(
            "grant_type: a public client cannot use client_credentials".into(),
        ));
    }
    if has("authorization_code") && flows.redirect_uris.is_empty() {
        return Err(RegistryError::Invalid(
            "redirect_uri: authorization_code needs at least one redirect URI".into(),
        ));
    }
    if !has("authorization_code")
        && (!flows.redirect_uris.is_empty()
            || flows.first_party
            || flows.require_mfa
            || flows.require_par)
    {
        return Err(RegistryError::Invalid(
            "redirect_uri: redirect URIs, first_party, require_mfa and require_par need authorization_code".into(),
        ));
    }
    if flows.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(RegistryError::Invalid(format!(
            "redirect_uri: at most {MAX_REDIRECT_URIS}"
        )));
    }
    let mut uris: Vec<String> = Vec::new();
    for uri in &flows.redirect_uris {
        validate_redirect_uri(uri)?;
        if !uris.contains(uri) {
            uris.push(uri.clone());
        }
    }
    flows.grant_types = grants;
    flows.redirect_uris = uris;
    Ok(flows)
}

/// A registrable redirect URI: absolute, no fragment, no userinfo; `https`, `http` on a
/// loopback host, or a private-use scheme with a dot (native apps, RFC 8252 §7.1).
pub fn validate_redirect_uri(uri: &str) -> Result<(), RegistryError> {
    let bad = |why: &str| {
        RegistryError::Invalid(format!(
            "redirect_uri: '{}' {why}",
            uri.chars().take(128).collect::<String>().escape_default()
        ))
    };
    if uri.len() > MAX_REDIRECT_URI_LEN {
        return Err(bad("is longer than 1024 bytes"));
    }
    let parsed = url::Url::parse(uri).map_err(|_| bad("is not an absolute URI"))?;
    if parsed.fragment().is_some() {
        return Err(bad("has a fragment"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("has user information"));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => match parsed.host() {
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Domain("localhost")) => Ok(()),
            _ => Err(bad("uses http on a host that is not loopback")),
        },
        "javascript" | "data" | "file" | "vbscript" | "blob" => Err(bad("has a forbidden scheme")),
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(bad(
            "needs https, loopback http or a private-use scheme like com.example.app",
        )),
    }
}

fn parse_client_jwks(jwks: &str) -> Result<KeySet, RegistryError> {
    if jwks.len() > MAX_JWKS_BYTES {
        return Err(RegistryError::Invalid("jwks: larger than 64 KiB".into()));
    }
    let keys = KeySet::from_jwks(jwks.as_bytes())
        .map_err(|e| RegistryError::Invalid(format!("jwks: {e}")))?;
    if keys.is_empty() {
        return Err(RegistryError::Invalid(
            "jwks: no usable signing key (EdDSA, ES256 or RS256 with kid)".into(),
        ));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_tokens() {
        assert!(is_scope_token("orders:read"));
        assert!(!is_scope_token("a\"b"));
        assert!(!is_scope_token("a\\b"));
        assert!(!is_scope_token(""));
    }

    #[test]
    fn audiences() {
        assert!(is_valid_audience("https://api.example.com/orders"));
        assert!(is_valid_audience("api://orders"));
        assert!(is_valid_audience("urn:rampart:admin"));
        assert!(!is_valid_audience("orders"));
        assert!(!is_valid_audience("https://a/#frag"));
    }
}
