//! Per-issuer cache of verification keys (JWKS + PASERK), fetched lazily, refreshed when too
//! old or when a token names an unknown kid (rate limited, one fetch at a time).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rampart_token::{KeySet, MAX_JWKS_BYTES, MAX_JWKS_KEYS};
use reqwest::{Client, StatusCode};
use serde::Deserialize;
use url::Url;

use crate::http::{FetchError, read_ok_body};

/// Keys of one issuer and when they were fetched.
#[derive(Clone, Default)]
struct KeyState {
    /// The last successfully fetched keys.
    keys: Option<Arc<KeySet>>,
    /// When `keys` were fetched.
    fetched_at: Option<Instant>,
    /// Incremented on every successful fetch.
    generation: u64,
    /// When the last fetch (successful or not) started.
    last_attempt: Option<Instant>,
}

/// Result of [`IssuerKeys::refresh`].
pub(crate) enum Refresh {
    /// New keys and their generation (fetched by this caller or by a concurrent one).
    Fetched(Arc<KeySet>, u64),
    /// A fetch happened less than the minimum interval ago; nothing was fetched.
    RateLimited,
    /// The fetch failed.
    Failed,
}

/// The key cache of one issuer.
pub(crate) struct IssuerKeys {
    issuer: String,
    jwks_url: Url,
    paserk_url: Url,
    client: Client,
    min_interval: Duration,
    max_age: Duration,
    timeout: Duration,
    state: RwLock<KeyState>,
    /// Held while fetching: concurrent callers wait for the fetch in progress.
    fetch_lock: tokio::sync::Mutex<()>,
}

impl IssuerKeys {
    /// A key cache with no keys yet.
    pub(crate) fn new(
        issuer: String,
        jwks_url: Url,
        paserk_url: Url,
        client: Client,
        min_interval: Duration,
        max_age: Duration,
        timeout: Duration,
    ) -> Self {
        IssuerKeys {
            issuer,
            jwks_url,
            paserk_url,
            client,
            min_interval,
            max_age,
            timeout,
            state: RwLock::new(KeyState::default()),
            fetch_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether keys were ever fetched successfully.
    pub(crate) fn fetched(&self) -> bool {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys
            .is_some()
    }

    /// Takes the keys of `previous` when it fetches from the same URLs and these have none yet.
    pub(crate) fn adopt(&self, previous: &IssuerKeys) -> bool {
        if previous.issuer != self.issuer
            || previous.jwks_url != self.jwks_url
            || previous.paserk_url != self.paserk_url
        {
            return false;
        }
        let theirs = previous.snapshot();
        if theirs.keys.is_none() {
            return false;
        }
        let mut mine = self.state.write().unwrap_or_else(|e| e.into_inner());
        if mine.keys.is_some() {
            return false;
        }
        *mine = theirs;
        true
    }

    fn snapshot(&self) -> KeyState {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The current keys and their generation, fetching them when absent or older than the
    /// maximum age. Keys whose refresh fails stay usable for one more maximum age; after that,
    /// or with no keys at all, `None` (the caller fails closed).
    pub(crate) async fn keys(&self) -> Option<(Arc<KeySet>, u64)> {
        let snap = self.snapshot();
        if let (Some(keys), Some(at)) = (&snap.keys, snap.fetched_at)
            && at.elapsed() < self.max_age
        {
            return Some((keys.clone(), snap.generation));
        }
        match self.refresh(snap.generation).await {
            Refresh::Fetched(keys, generation) => Some((keys, generation)),
            Refresh::RateLimited | Refresh::Failed => {
                let snap = self.snapshot();
                match (snap.keys, snap.fetched_at) {
                    (Some(keys), Some(at)) if at.elapsed() < self.max_age.saturating_mul(2) => {
                        Some((keys, snap.generation))
                    }
                    _ => None,
                }
            }
        }
    }

    /// Fetches the keys again, unless another caller fetched them since generation
    /// `seen_generation` was observed (then its keys are returned) or a fetch started less than
    /// the minimum interval ago. One fetch at a time: concurrent callers wait for it.
    pub(crate) async fn refresh(&self, seen_generation: u64) -> Refresh {
        let _fetching = self.fetch_lock.lock().await;
        let snap = self.snapshot();
        if snap.generation != seen_generation
            && let Some(keys) = snap.keys
        {
            return Refresh::Fetched(keys, snap.generation);
        }
        if snap
            .last_attempt
            .is_some_and(|t| t.elapsed() < self.min_interval)
        {
            return Refresh::RateLimited;
        }
        let started = Instant::now();
        self.state
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .last_attempt = Some(started);
        let fetched = tokio::time::timeout(self.timeout, self.fetch()).await;
        match fetched {
            Ok(Ok(keys)) => {
                tracing::debug!(issuer = %self.issuer, keys = keys.len(), "fetched issuer keys");
                let keys = Arc::new(keys);
                let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
                state.keys = Some(keys.clone());
                state.fetched_at = Some(started);
                state.generation = state.generation.wrapping_add(1);
                Refresh::Fetched(keys, state.generation)
            }
            Ok(Err(e)) => {
                tracing::warn!(issuer = %self.issuer, error = %e, "fetching issuer keys failed");
                Refresh::Failed
            }
            Err(_) => {
                tracing::warn!(issuer = %self.issuer, "fetching issuer keys timed out");
                Refresh::Failed
            }
        }
    }

    /// Fetches JWKS and PASERK documents concurrently. A 404 counts as an empty document; any
    /// other failure fails the whole fetch, so a partial key set never replaces a full one.
    async fn fetch(&self) -> Result<KeySet, FetchError> {
        let (jwks, paserk) = tokio::join!(
            self.get_document(&self.jwks_url),
            self.get_document(&self.paserk_url)
        );
        let mut set = match jwks? {
            Some(body) => KeySet::from_jwks(&body).map_err(|_| FetchError::Malformed)?,
            None => KeySet::new(),
        };
        if let Some(body) = paserk? {
            add_paserk_keys(&mut set, &body, &self.issuer)?;
        }
        if set.is_empty() {
            return Err(FetchError::Malformed);
        }
        Ok(set)
    }

    async fn get_document(&self, url: &Url) -> Result<Option<Vec<u8>>, FetchError> {
        let resp = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        read_ok_body(resp, MAX_JWKS_BYTES).await.map(Some)
    }
}

/// Adds the keys of a `{"keys":[{"kid":"k4.pid...","paserk":"k4.public..."}]}` document.
/// Entries that do not parse, or whose kid is already taken, are skipped.
fn add_paserk_keys(set: &mut KeySet, body: &[u8], issuer: &str) -> Result<(), FetchError> {
    #[derive(Deserialize)]
    struct Entry {
        kid: String,
        paserk: String,
    }
    #[derive(Deserialize)]
    struct Doc {
        keys: Vec<serde_json::Value>,
    }
    let doc: Doc = serde_json::from_slice(body).map_err(|_| FetchError::Malformed)?;
    if doc.keys.len() > MAX_JWKS_KEYS {
        return Err(FetchError::TooLarge);
    }
    for value in doc.keys {
        let Ok(entry) = serde_json::from_value::<Entry>(value) else {
            tracing::debug!(issuer, "skipping malformed PASERK entry");
            continue;
        };
        if set.contains(&entry.kid) {
            tracing::debug!(issuer, "skipping PASERK entry with a kid already present");
            continue;
        }
        if set.insert_paserk_public(&entry.kid, &entry.paserk).is_err() {
            tracing::debug!(issuer, "skipping unusable PASERK entry");
        }
    }
    Ok(())
}
