//! Records and enums exchanged with the stores.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How a client authenticates at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// HTTP Basic with `client_id:client_secret`.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A JWT assertion signed with a key from the client's JWKS.
    PrivateKeyJwt,
    /// A public client (RFC 6749 §2.1): no secret, PKCE only.
    None,
}

impl ClientAuthMethod {
    /// The canonical string (`"client_secret_basic"`, `"client_secret_post"`,
    /// `"private_key_jwt"`, `"none"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
            ClientAuthMethod::PrivateKeyJwt => "private_key_jwt",
            ClientAuthMethod::None => "none",
        }
    }

    /// Parses the canonical string; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "client_secret_basic" => Some(ClientAuthMethod::ClientSecretBasic),
            "client_secret_post" => Some(ClientAuthMethod::ClientSecretPost),
            "private_key_jwt" => Some(ClientAuthMethod::PrivateKeyJwt),
            "none" => Some(ClientAuthMethod::None),
            _ => None,
        }
    }
}

impl fmt::Display for ClientAuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The format of access tokens issued to a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClientTokenFormat {
    /// Signed JWT (`"jwt"`).
    #[serde(rename = "jwt")]
    Jwt,
    /// PASETO v4.public (`"paseto-public"`).
    #[serde(rename = "paseto-public")]
    PasetoPublic,
    /// PASETO v4.local (`"paseto-local"`).
    #[serde(rename = "paseto-local")]
    PasetoLocal,
}

impl ClientTokenFormat {
    /// The canonical string (`"jwt"`, `"paseto-public"`, `"paseto-local"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ClientTokenFormat::Jwt => "jwt",
            ClientTokenFormat::PasetoPublic => "paseto-public",
            ClientTokenFormat::PasetoLocal => "paseto-local",
        }
    }

    /// Parses the canonical string; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "jwt" => Some(ClientTokenFormat::Jwt),
            "paseto-public" => Some(ClientTokenFormat::PasetoPublic),
            "paseto-local" => Some(ClientTokenFormat::PasetoLocal),
            _ => None,
        }
    }
}

impl fmt::Display for ClientTokenFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registered OAuth2 client.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientRecord {
    /// Unique client identifier.
    pub client_id: String,
    /// Human-readable name.
    pub name: String,
    /// Keyed hash of the client secret; `None` for `private_key_jwt`.
    pub secret_hash: Option<Vec<u8>>,
    /// Token endpoint authentication method.
    pub auth_method: ClientAuthMethod,
    /// Public JWKS JSON for `private_key_jwt`.
    pub jwks: Option<String>,
    /// Scopes the client may request.
    pub scopes: Vec<String>,
    /// Audiences the client may request tokens for.
    pub audiences: Vec<String>,
    /// Access token format issued to this client.
    pub token_format: ClientTokenFormat,
    /// Access token lifetime in seconds.
    pub access_token_ttl_secs: i64,
    /// Grant types the client may use (`client_credentials`, `authorization_code`,
    /// `refresh_token`).
    pub grant_types: Vec<String>,
    /// Redirect URIs registered for the authorization code flow, matched exactly.
    pub redirect_uris: Vec<String>,
    /// A first-party client: its users are not asked for consent.
    pub first_party: bool,
    /// Every sign-in for this client needs a second factor.
    pub require_mfa: bool,
    /// Authorization requests must be pushed first (RFC 9126).
    pub require_par: bool,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Last modification time, unix seconds.
    pub updated_at: i64,
}

/// Lifecycle state of a signing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// Published but not yet used for signing.
    Next,
    /// Used for signing.
    Active,
    /// No longer signing; still published until tokens expire.
    Retired,
}

impl KeyState {
    /// The canonical string (`"next"`, `"active"`, `"retired"`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }

    /// Parses the canonical string; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "next" => Some(KeyState::Next),
            "active" => Some(KeyState::Active),
            "retired" => Some(KeyState::Retired),
            _ => None,
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signing key as persisted: its private part is sealed by the caller.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredKey {
    /// Unique key identifier.
    pub kid: String,
    /// Key kind, e.g. `"jwt-EdDSA"` or `"paseto-v4.public"` (opaque to the store).
    pub kind: String,
    /// Lifecycle state.
    pub state: KeyState,
    /// Private key material sealed by the caller (opaque bytes).
    pub sealed_secret: Vec<u8>,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// When the key became active, unix seconds.
    pub activated_at: Option<i64>,
    /// When the key was retired, unix seconds.
    pub retired_at: Option<i64>,
}

/// One change in an atomic batch passed to [`crate::KeyStore::apply_key_changes`].
#[derive(Clone, Debug, PartialEq)]
pub enum KeyChange {
    /// Insert a new key (`Conflict` if the kid exists).
    Insert(StoredKey),
    /// Change a key's state (`NotFound` if absent). Sets `activated_at = at`
    /// when the new state is `Active`, `retired_at = at` when `Retired`.
    SetState {
        /// Key to change.
        kid: String,
        /// New state.
        state: KeyState,
        /// Time of the transition, unix seconds.
        at: i64,
    },
    /// Delete a key (`NotFound` if absent).
    Delete {
        /// Key to delete.
        kid: String,
    },
}

/// An API key as persisted: only a keyed hash of the key itself is stored.
///
/// `Debug` prints the public fields only (never `key_hash`).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Public, random identifier used to manage the key (never the key itself).
    pub key_id: String,
    /// Keyed hash (HMAC-SHA256) of the full key; unique, and the lookup key.
    pub key_hash: Vec<u8>,
    /// Human-readable name.
    pub name: String,
    /// The subject the key acts for (reported as `sub` and `client_id`).
    pub owner: String,
    /// Scopes granted to the key.
    pub scopes: Vec<String>,
    /// Audiences the key is valid for.
    pub audiences: Vec<String>,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Expiry, unix seconds; `None` for a key that does not expire.
    pub expires_at: Option<i64>,
    /// Revocation time, unix seconds; `None` while not revoked.
    pub revoked_at: Option<i64>,
}

impl ApiKeyRecord {
    /// Whether the key is usable at `now`: not revoked and not expired
    /// (`now < expires_at`).
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|exp| now < exp)
    }
}

impl fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("key_id", &self.key_id)
            .field("name", &self.name)
            .field("owner", &self.owner)
            .field("scopes", &self.scopes)
            .field("audiences", &self.audiences)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_strings_round_trip_and_match_serde() {
        for m in [
            ClientAuthMethod::ClientSecretBasic,
            ClientAuthMethod::ClientSecretPost,
            ClientAuthMethod::PrivateKeyJwt,
            ClientAuthMethod::None,
        ] {
            assert_eq!(ClientAuthMethod::parse(m.as_str()), Some(m));
            let json = serde_json::to_string(&m).expect("serialize");
            assert_eq!(json, format!("\"{}\"", m.as_str()));
        }
        for f in [
            ClientTokenFormat::Jwt,
            ClientTokenFormat::PasetoPublic,
            ClientTokenFormat::PasetoLocal,
        ] {
            assert_eq!(ClientTokenFormat::parse(f.as_str()), Some(f));
            let json = serde_json::to_string(&f).expect("serialize");
            assert_eq!(json, format!("\"{}\"", f.as_str()));
        }
        for s in [KeyState::Next, KeyState::Active, KeyState::Retired] {
            assert_eq!(KeyState::parse(s.as_str()), Some(s));
        }
        assert_eq!(ClientAuthMethod::parse("None"), None);
        assert_eq!(ClientTokenFormat::parse("JWT"), None);
        assert_eq!(KeyState::parse(""), None);
    }

    #[test]
    fn api_key_activity_and_redacted_debug() {
        let mut key = ApiKeyRecord {
            key_id: "kid1".into(),
            key_hash: vec![0xAB; 32],
            name: "n".into(),
            owner: "svc".into(),
            scopes: vec![],
            audiences: vec!["https://a".into()],
            created_at: 10,
            expires_at: Some(20),
            revoked_at: None,
        };
        assert!(key.is_active(19));
        assert!(!key.is_active(20));
        key.expires_at = None;
        assert!(key.is_active(i64::MAX));
        key.revoked_at = Some(15);
        assert!(!key.is_active(11));
        let debug = format!("{key:?}");
        assert!(debug.contains("kid1"));
        assert!(!debug.contains("key_hash"));
        assert!(!debug.contains("171")); // 0xAB
    }
}
