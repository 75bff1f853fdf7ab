//! The signing keyring: keys in three states, `next` → `active` → `retired`, per family.
//!
//! Only the `active` key of a family signs. The `next` key is published before it signs so
//! that verifiers caching the JWKS already know it at rotation time; a `retired` key stays
//! published and usable for verification until every token it signed has expired
//! ([`IdpConfig::key_retention_secs`]). Private keys are stored sealed under the master key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use rampart_crypto::Envelope;
use rampart_store::{KeyChange, KeyState, KeyStore, StoreError, StoredKey};
use rampart_token::{JwtAlg, KeyKind, KeySet, SigningKey, TokenFormat};

use crate::config::IdpConfig;

/// A family of keys that rotate together; each has one active key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyFamily {
    /// JWT access-token signing keys (EdDSA, ES256 or RS256).
    Jwt,
    /// OpenID Connect ID-token signing keys (RS256 unless configured otherwise: OIDC Core
    /// §15.1 makes RS256 the algorithm every relying party can verify).
    IdToken,
    /// PASETO v4.public signing keys.
    PasetoPublic,
    /// PASETO v4.local encryption keys (never published).
    PasetoLocal,
}

/// Prefix of the stored kind of ID-token keys (`id-jwt-RS256`): the same key kinds as access
/// tokens, in a family of their own.
const ID_TOKEN_KIND_PREFIX: &str = "id-";

impl KeyFamily {
    /// Every family.
    pub const ALL: [KeyFamily; 4] = [
        KeyFamily::Jwt,
        KeyFamily::IdToken,
        KeyFamily::PasetoPublic,
        KeyFamily::PasetoLocal,
    ];

    /// The family and kind of a stored key kind (`KeyKind::as_str`, with `id-` in front for
    /// ID-token keys).
    fn parse_stored_kind(stored: &str) -> Result<(KeyFamily, KeyKind), String> {
        if let Some(kind) = stored.strip_prefix(ID_TOKEN_KIND_PREFIX) {
            return match KeyKind::parse(kind) {
                Ok(kind @ KeyKind::Jwt(_)) => Ok((KeyFamily::IdToken, kind)),
                Ok(_) => Err(format!("{stored}: ID-token keys are JWT keys")),
                Err(e) => Err(e.to_string()),
            };
        }
        let kind = KeyKind::parse(stored).map_err(|e| e.to_string())?;
        let family = match kind {
            KeyKind::Jwt(_) => KeyFamily::Jwt,
            KeyKind::PasetoV4Public => KeyFamily::PasetoPublic,
            KeyKind::PasetoV4Local => KeyFamily::PasetoLocal,
        };
        Ok((family, kind))
    }

    /// The stored kind of a key of this family.
    fn stored_kind(self, kind: KeyKind) -> String {
        match self {
            KeyFamily::IdToken => format!("{ID_TOKEN_KIND_PREFIX}{}", kind.as_str()),
            _ => kind.as_str().to_owned(),
        }
    }

    /// The family that signs tokens of a format.
    pub fn for_format(format: TokenFormat) -> Self {
        match format {
            TokenFormat::Jwt => KeyFamily::Jwt,
            TokenFormat::PasetoV4Public => KeyFamily::PasetoPublic,
            TokenFormat::PasetoV4Local => KeyFamily::PasetoLocal,
        }
    }

    /// Name used on the command line and in the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyFamily::Jwt => "jwt",
            KeyFamily::IdToken => "id-token",
            KeyFamily::PasetoPublic => "paseto-public",
            KeyFamily::PasetoLocal => "paseto-local",
        }
    }

    /// Parses [`KeyFamily::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        KeyFamily::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// Errors of the keyring.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The store failed.
    #[error("key storage failed")]
    Store(#[from] StoreError),
    /// A stored key could not be unsealed (wrong master key or tampering).
    #[error("key {kid} could not be unsealed: wrong master key or corrupted data")]
    Unseal {
        /// The key id.
        kid: String,
    },
    /// A stored key is unusable.
    #[error("key {kid} is invalid: {reason}")]
    Invalid {
        /// The key id.
        kid: String,
        /// Why.
        reason: String,
    },
    /// Key generation or sealing failed.
    #[error("key generation failed: {0}")]
    Generate(String),
}

/// One key with its lifecycle.
#[derive(Clone, Debug)]
pub struct KeyEntry {
    /// The key.
    pub key: SigningKey,
    /// What it signs.
    pub family: KeyFamily,
    /// Its state.
    pub state: KeyState,
    /// Created, unix seconds.
    pub created_at: i64,
    /// Became active, unix seconds.
    pub activated_at: Option<i64>,
    /// Retired, unix seconds.
    pub retired_at: Option<i64>,
}

/// Order of active keys of one family: the earliest activated (then the smallest kid) is
/// the one that signs.
fn active_rank(entry: &KeyEntry) -> (i64, &str) {
    (
        entry.activated_at.unwrap_or(entry.created_at),
        entry.key.kid(),
    )
}

/// The changes [`KeyManager::repair_duplicates`] applies.
/// How often a keyring change planned on a keyring another server changed meanwhile is
/// planned again before the error is returned.
const STALE_RETRIES: usize = 3;

fn duplicate_fixes(snapshot: &KeyringSnapshot, now: i64) -> Vec<KeyChange> {
    let mut changes = Vec::new();
    for family in KeyFamily::ALL {
        let of = |state| {
            let mut keys: Vec<&KeyEntry> = snapshot
                .entries
                .iter()
                .filter(|e| e.family == family && e.state == state)
                .collect();
            keys.sort_by(|a, b| match state {
                KeyState::Active => active_rank(a).cmp(&active_rank(b)),
                _ => (a.created_at, a.key.kid()).cmp(&(b.created_at, b.key.kid())),
            });
            keys
        };
        for extra in of(KeyState::Active).into_iter().skip(1) {
            changes.push(KeyChange::SetState {
                kid: extra.key.kid().to_owned(),
                state: KeyState::Retired,
                at: now,
            });
        }
        for extra in of(KeyState::Next).into_iter().skip(1) {
            changes.push(KeyChange::Delete {
                kid: extra.key.kid().to_owned(),
            });
        }
    }
    changes
}

/// An immutable view of the keyring, swapped whole on every change.
pub struct KeyringSnapshot {
    entries: Vec<KeyEntry>,
    active: HashMap<KeyFamily, SigningKey>,
    verify: KeySet,
}

impl KeyringSnapshot {
    fn build(entries: Vec<KeyEntry>) -> Self {
        let mut active: HashMap<KeyFamily, &KeyEntry> = HashMap::new();
        let mut verify = KeySet::new();
        for entry in &entries {
            verify.insert(&entry.key);
            if entry.state == KeyState::Active {
                // Two active keys (servers that bootstrapped at once): every server signs with
                // the same one, the one that `duplicate_fixes` keeps.
                let family = entry.family;
                match active.get(&family) {
                    Some(kept) if active_rank(kept) <= active_rank(entry) => {}
                    _ => {
                        active.insert(family, entry);
                    }
                }
            }
        }
        let active = active
            .into_iter()
            .map(|(family, entry)| (family, entry.key.clone()))
            .collect();
        Self {
            entries,
            active,
            verify,
        }
    }

    /// The key that signs tokens of `family` now.
    pub fn active(&self, family: KeyFamily) -> Option<&SigningKey> {
        self.active.get(&family)
    }

    /// Every key that may have signed a live token, for verification.
    pub fn verification_keys(&self) -> &KeySet {
        &self.verify
    }

    /// Every key with its state.
    pub fn entries(&self) -> &[KeyEntry] {
        &self.entries
    }

    /// Keys to publish: next, active and retired (not yet pruned).
    pub fn published(&self) -> impl Iterator<Item = &SigningKey> {
        self.entries.iter().map(|e| &e.key)
    }
}

/// What a rotation did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Rotation {
    /// The rotated family.
    pub family: &'static str,
    /// The key that became active.
    pub activated: String,
    /// The key that was retired, if any.
    pub retired: Option<String>,
    /// The new next key.
    pub next: String,
}

/// Loads, rotates and serves the keyring.
pub struct KeyManager {
    store: Arc<dyn KeyStore>,
    envelope: Envelope,
    jwt_alg: JwtAlg,
    id_token_alg: JwtAlg,
    retention_secs: i64,
    rotation_interval_secs: i64,
    snapshot: RwLock<Arc<KeyringSnapshot>>,
    seen_generation: AtomicI64,
}

impl KeyManager {
    /// Loads the keyring, creating the missing active and next keys of every family.
    pub async fn load(
        store: Arc<dyn KeyStore>,
        envelope: Envelope,
        config: &IdpConfig,
        now: i64,
    ) -> Result<Self, KeyError> {
        let manager = Self {
            store,
            envelope,
            jwt_alg: config.jwt_alg,
            id_token_alg: config.id_token_alg,
            retention_secs: config.key_retention_secs(),
            rotation_interval_secs: config.key_rotation_interval_secs,
            snapshot: RwLock::new(Arc::new(KeyringSnapshot::build(Vec::new()))),
            seen_generation: AtomicI64::new(i64::MIN),
        };
        manager.reload().await?;
        manager.bootstrap(now).await?;
        Ok(manager)
    }

    /// The current keyring.
    pub fn snapshot(&self) -> Arc<KeyringSnapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Re-reads every key from the store.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let generation = self.store.keys_generation().await?;
        let stored = self.store.list_keys().await?;
        let mut entries = Vec::with_capacity(stored.len());
        for row in stored {
            entries.push(self.unseal(row)?);
        }
        let snapshot = Arc::new(KeyringSnapshot::build(entries));
        *self
            .snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = snapshot;
        self.seen_generation.store(generation, Ordering::Release);
        Ok(())
    }

    /// Reloads when another process changed the keyring.
    pub async fn refresh_if_changed(&self) -> Result<bool, KeyError> {
        let generation = self.store.keys_generation().await?;
        if generation != self.seen_generation.load(Ordering::Acquire) {
            self.reload().await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Rotates `family` (or every family): next becomes active, active becomes retired, a
    /// new next key is generated, and retired keys past retention are deleted, all in one
    /// transaction. `jwt_alg` chooses the algorithm of a new JWT key.
    pub async fn rotate(
        &self,
        families: &[KeyFamily],
        jwt_alg: Option<JwtAlg>,
        now: i64,
    ) -> Result<Vec<Rotation>, KeyError> {
        self.reload().await?;
        let snapshot = self.snapshot();
        let mut changes = Vec::new();
        let mut rotations = Vec::new();
        for &family in families {
            let in_family: Vec<&KeyEntry> = snapshot
                .entries
                .iter()
                .filter(|e| e.family == family)
                .collect();
            // Every active key retires, also a second one left by servers that bootstrapped
            // at once: afterwards the promoted key is the family's only active key.
            let mut active: Vec<&KeyEntry> = in_family
                .iter()
                .copied()
                .filter(|e| e.state == KeyState::Active)
                .collect();
            active.sort_by(|a, b| active_rank(a).cmp(&active_rank(b)));
            let next = in_family.iter().find(|e| e.state == KeyState::Next);
            let promoted = match next {
                Some(next) => next.key.kid().to_owned(),
                None => {
                    let (kid, insert) = self.new_key(family, jwt_alg, KeyState::Next, now)?;
                    changes.push(insert);
                    kid
                }
            };
            for retiring in &active {
                changes.push(KeyChange::SetState {
                    kid: retiring.key.kid().to_owned(),
                    state: KeyState::Retired,
                    at: now,
                });
            }
            changes.push(KeyChange::SetState {
                kid: promoted.clone(),
                state: KeyState::Active,
                at: now,
            });
            let (new_next, insert) = self.new_key(family, jwt_alg, KeyState::Next, now)?;
            changes.push(insert);
            rotations.push(Rotation {
                family: family.as_str(),
                activated: promoted,
                // The key that was signing.
                retired: active.first().map(|a| a.key.kid().to_owned()),
                next: new_next,
            });
        }
        changes.extend(self.expired_deletions(&snapshot, now));
        self.store.apply_key_changes(&changes).await?;
        self.reload().await?;
        Ok(rotations)
    }

    /// Scheduled work: rotates families whose active key is older than the rotation
    /// interval and deletes retired keys past retention.
    pub async fn maintain(&self, now: i64) -> Result<Vec<Rotation>, KeyError> {
        self.repair_duplicates(now).await?;
        let snapshot = self.snapshot();
        let due: Vec<KeyFamily> = if self.rotation_interval_secs > 0 {
            snapshot
                .entries
                .iter()
                .filter(|e| e.state == KeyState::Active)
                .filter(|e| {
                    e.activated_at.unwrap_or(e.created_at) + self.rotation_interval_secs <= now
                })
                .map(|e| e.family)
                .collect()
        } else {
            Vec::new()
        };
        if !due.is_empty() {
            return self.rotate(&due, None, now).await;
        }
        // Another server pruning at the same moment deletes the same keys.
        self.apply_fresh(|snapshot| self.expired_deletions(snapshot, now))
            .await?;
        Ok(Vec::new())
    }

    /// Restores one active and one next key per family after servers sharing a database
    /// bootstrapped (or rotated) at the same moment and each created keys: the oldest
    /// active key stays active and the other active keys retire (they stay published for
    /// the retention, so what they signed still verifies); extra next keys, which never
    /// signed anything, are deleted. Applied at start and by every maintenance run.
    ///
    /// Servers that start together repair together: their fixes are the same (chosen by the
    /// same order), so the one that commits second finds a key it would change already
    /// changed (`NotFound`, nothing of its transaction applied). It then reads the keyring
    /// again and repairs what is left, which is normally nothing.
    pub async fn repair_duplicates(&self, now: i64) -> Result<usize, KeyError> {
        self.apply_fresh(|snapshot| duplicate_fixes(snapshot, now))
            .await
    }

    /// Applies the changes `plan` makes of the current keyring in one transaction; when one of
    /// them finds its key gone or changed by another server (`NotFound`), reads the keyring
    /// again and plans anew, at most [`STALE_RETRIES`] times. Returns how many changes were
    /// applied.
    async fn apply_fresh(
        &self,
        plan: impl Fn(&KeyringSnapshot) -> Vec<KeyChange>,
    ) -> Result<usize, KeyError> {
        let mut retries = 0;
        loop {
            let changes = plan(&self.snapshot());
            if changes.is_empty() {
                return Ok(0);
            }
            match self.store.apply_key_changes(&changes).await {
                Ok(()) => {
                    self.reload().await?;
                    return Ok(changes.len());
                }
                Err(StoreError::NotFound) if retries < STALE_RETRIES => {
                    retries += 1;
                    self.reload().await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn expired_deletions(&self, snapshot: &KeyringSnapshot, now: i64) -> Vec<KeyChange> {
        snapshot
            .entries
            .iter()
            .filter(|e| e.state == KeyState::Retired)
            .filter(|e| e.retired_at.unwrap_or(now) + self.retention_secs < now)
            .map(|e| KeyChange::Delete {
                kid: e.key.kid().to_owned(),
            })
            .collect()
    }

    async fn bootstrap(&self, now: i64) -> Result<(), KeyError> {
        let snapshot = self.snapshot();
        let mut changes = Vec::new();
        for family in KeyFamily::ALL {
            let has = |state| {
                snapshot
                    .entries
                    .iter()
                    .any(|e| e.family == family && e.state == state)
            };
            for state in [KeyState::Active, KeyState::Next] {
                if !has(state) {
                    changes.push(self.new_key(family, None, state, now)?.1);
                }
            }
        }
        if !changes.is_empty() {
            self.store.apply_key_changes(&changes).await?;
            self.reload().await?;
        }
        self.repair_duplicates(now).await?;
        Ok(())
    }

    /// A new key of `family` in `state`: its id and the store insert (sealed).
    fn new_key(
        &self,
        family: KeyFamily,
        jwt_alg: Option<JwtAlg>,
        state: KeyState,
        now: i64,
    ) -> Result<(String, KeyChange), KeyError> {
        let key = self.generate(family, jwt_alg)?;
        let insert = KeyChange::Insert(self.seal(family, &key, state, now)?);
        Ok((key.kid().to_owned(), insert))
    }

    fn generate(&self, family: KeyFamily, jwt_alg: Option<JwtAlg>) -> Result<SigningKey, KeyError> {
        let kind = match family {
            KeyFamily::Jwt => KeyKind::Jwt(jwt_alg.unwrap_or(self.jwt_alg)),
            KeyFamily::IdToken => KeyKind::Jwt(jwt_alg.unwrap_or(self.id_token_alg)),
            KeyFamily::PasetoPublic => KeyKind::PasetoV4Public,
            KeyFamily::PasetoLocal => KeyKind::PasetoV4Local,
        };
        SigningKey::generate(kind).map_err(|e| KeyError::Generate(e.to_string()))
    }

    fn seal(
        &self,
        family: KeyFamily,
        key: &SigningKey,
        state: KeyState,
        now: i64,
    ) -> Result<StoredKey, KeyError> {
        let kind = family.stored_kind(key.kind());
        let context = seal_context(&kind, key.kid());
        let sealed = self
            .envelope
            .seal(&key.secret_bytes(), context.as_bytes())
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        Ok(StoredKey {
            kid: key.kid().to_owned(),
            kind,
            state,
            sealed_secret: sealed,
            created_at: now,
            activated_at: (state == KeyState::Active).then_some(now),
            retired_at: None,
        })
    }

    fn unseal(&self, row: StoredKey) -> Result<KeyEntry, KeyError> {
        let invalid = |reason: String| KeyError::Invalid {
            kid: row.kid.clone(),
            reason,
        };
        let (family, kind) = KeyFamily::parse_stored_kind(&row.kind).map_err(invalid)?;
        let context = seal_context(&row.kind, &row.kid);
        let secret = self
            .envelope
            .open(&row.sealed_secret, context.as_bytes())
            .map_err(|_| KeyError::Unseal {
                kid: row.kid.clone(),
            })?;
        let key =
            SigningKey::from_secret_bytes(kind, &secret).map_err(|e| invalid(e.to_string()))?;
        if key.kid() != row.kid {
            return Err(invalid("the key does not match its id".into()));
        }
        Ok(KeyEntry {
            key,
            family,
            state: row.state,
            created_at: row.created_at,
            activated_at: row.activated_at,
            retired_at: row.retired_at,
        })
    }
}

/// The AEAD context binding a sealed key to its row: a sealed key moved to another row
/// does not open.
fn seal_context(stored_kind: &str, kid: &str) -> String {
    format!("rampart/signing-key/{stored_kind}/{kid}")
}
