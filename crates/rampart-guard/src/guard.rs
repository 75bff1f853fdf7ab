//! The [`Guard`]: an [`Authenticator`] verifying JWT / `v4.public` tokens locally and
//! introspecting the others, with bounded caches.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rampart_token::{
    AccessClaims, AudienceCheck, MAX_TOKEN_BYTES, TokenError, TokenFormat, Validation, peek_format,
    verify,
};

use crate::cache::{ExpiringCache, TokenKey, now_millis, token_key};
use crate::config::{GuardConfig, GuardError, MAX_ISSUERS, MAX_URL_LEN, check_url};
use crate::http::build_client;
use crate::introspection::{ActiveToken, Introspected, Introspector};
use crate::jwks::{IssuerKeys, Refresh};
use crate::peek::unverified_issuer;
use crate::{Accepted, AuthError, AuthMethod, Authenticator, Principal};

/// A verified principal in the cache, with what is needed to re-check it on a hit.
#[derive(Clone)]
struct Cached {
    principal: Arc<Principal>,
    /// `nbf` in unix seconds (`i64::MIN` when unknown).
    nbf: i64,
}

struct Inner {
    issuers: HashMap<String, IssuerKeys>,
    introspector: Option<Introspector>,
    verified: ExpiringCache<Cached>,
    inactive: ExpiringCache<()>,
    leeway_secs: i64,
    introspection_ttl: Duration,
    negative_ttl: Duration,
}

/// Verifies bearer tokens against the configured issuers. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Guard {
    inner: Arc<Inner>,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut issuers: Vec<&str> = self.inner.issuers.keys().map(String::as_str).collect();
        issuers.sort_unstable();
        f.debug_struct("Guard")
            .field("issuers", &issuers)
            .field("introspector", &self.inner.introspector)
            .field("leeway_secs", &self.inner.leeway_secs)
            .finish_non_exhaustive()
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Guard {
    /// Validates the configuration and builds the HTTP clients. Keys are fetched lazily on
    /// first use (see [`Guard::prefetch`]). URLs must be https, except http to a loopback host.
    pub fn new(config: GuardConfig) -> Result<Guard, GuardError> {
        if config.issuers.len() > MAX_ISSUERS {
            return Err(GuardError::TooManyIssuers);
        }
        if config.http_timeout.is_zero() {
            return Err(GuardError::BadLimit("http_timeout must not be zero"));
        }
        if config.key_max_age.is_zero() {
            return Err(GuardError::BadLimit("key_max_age must not be zero"));
        }
        let default_client = build_client("(default)", None, config.http_timeout)?;
        let mut issuers = HashMap::new();
        let mut introspector = None;
        for ic in &config.issuers {
            let name = ic.issuer.clone();
            if name.is_empty() || name.len() > MAX_URL_LEN || issuers.contains_key(&name) {
                return Err(GuardError::BadIssuer(name));
            }
            let jwks_url = check_url(&name, &ic.jwks_url())?;
            let paserk_url = check_url(&name, &ic.paserk_url())?;
            let introspection_url = ic
                .introspection_uri
                .as_deref()
                .map(|u| check_url(&name, u))
                .transpose()?;
            let client = match &ic.ca_pem {
                Some(pem) => build_client(&name, Some(pem), config.http_timeout)?,
                None => default_client.clone(),
            };
            let credentials = match (&ic.client_id, &ic.client_secret) {
                (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
                (None, None) => None,
                _ => return Err(GuardError::IncompleteCredentials(name)),
            };
            if introspector.is_none()
                && let Some(url) = introspection_url
            {
                introspector = Some(Introspector::new(
                    name.clone(),
                    url,
                    client.clone(),
                    credentials,
                    config.http_timeout,
                ));
            }
            let keys = IssuerKeys::new(
                name.clone(),
                jwks_url,
                paserk_url,
                client,
                config.key_refresh_min_interval,
                config.key_max_age,
                config.http_timeout,
            );
            issuers.insert(name, keys);
        }
        Ok(Guard {
            inner: Arc::new(Inner {
                issuers,
                introspector,
                verified: ExpiringCache::new(config.max_cache_entries),
                inactive: ExpiringCache::new(config.max_cache_entries),
                leeway_secs: i64::try_from(config.leeway_secs).unwrap_or(i64::MAX),
                introspection_ttl: config.introspection_ttl,
                negative_ttl: config.negative_ttl,
            }),
        })
    }

    /// Fetches the keys of every issuer now; failures are logged (and retried on use).
    pub async fn prefetch(&self) {
        for (name, keys) in &self.inner.issuers {
            if keys.keys().await.is_none() {
                tracing::warn!(issuer = %name, "could not prefetch issuer keys");
            }
        }
    }

    /// Issuers whose keys have never been fetched (sorted): a readiness check (keys are
    /// fetched by [`Guard::prefetch`] or on first use).
    pub fn issuers_without_keys(&self) -> Vec<String> {
        let mut missing: Vec<String> = self
            .inner
            .issuers
            .iter()
            .filter(|(_, keys)| !keys.fetched())
            .map(|(name, _)| name.clone())
            .collect();
        missing.sort_unstable();
        missing
    }

    /// Takes over the keys `previous` fetched for `issuer` (a guard replaced by this one, e.g.
    /// on a configuration reload) when both fetch them from the same URLs and this guard has
    /// none yet, so the first requests after a reload need no fetch. The caller decides that
    /// the issuer's trust settings (CA bundle) are unchanged. Returns whether keys were taken.
    pub fn inherit_keys(&self, previous: &Guard, issuer: &str) -> bool {
        match (
            self.inner.issuers.get(issuer),
            previous.inner.issuers.get(issuer),
        ) {
            (Some(mine), Some(theirs)) => mine.adopt(theirs),
            _ => false,
        }
    }

    /// Number of entries in the verified-token cache (for metrics).
    pub fn cached_tokens(&self) -> usize {
        self.inner.verified.len()
    }
}

/// Maps a verification error to an authentication error.
fn map_token_error(e: &TokenError) -> AuthError {
    match e {
        TokenError::Expired | TokenError::NotYetValid => AuthError::Expired,
        TokenError::WrongAudience => AuthError::WrongAudience,
        TokenError::WrongIssuer => AuthError::UntrustedIssuer,
        _ => AuthError::Invalid,
    }
}

fn split_scopes(scope: Option<&str>) -> Vec<String> {
    scope
        .map(|s| {
            s.split(' ')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

impl Inner {
    /// Re-checks a cached principal: time (with leeway) and audience.
    fn check_cached(
        &self,
        c: Cached,
        audience: &str,
        now_s: i64,
    ) -> Result<Arc<Principal>, AuthError> {
        if now_s >= c.principal.expires_at.saturating_add(self.leeway_secs)
            || c.nbf > now_s.saturating_add(self.leeway_secs)
        {
            return Err(AuthError::Expired);
        }
        if !c.principal.audiences.iter().any(|a| a == audience) {
            return Err(AuthError::WrongAudience);
        }
        Ok(c.principal)
    }

    async fn verify_local(
        &self,
        token: &str,
        format: TokenFormat,
        audience: &str,
        key: TokenKey,
    ) -> Result<Arc<Principal>, AuthError> {
        let iss = unverified_issuer(token, format)?;
        let issuer = self.issuers.get(&iss).ok_or(AuthError::UntrustedIssuer)?;
        let validation = Validation {
            issuer: iss.clone(),
            audience: AudienceCheck::OneOf(vec![audience.to_owned()]),
            leeway_secs: u64::try_from(self.leeway_secs).unwrap_or(0),
            now: None,
        };
        let (keys, generation) = issuer.keys().await.ok_or(AuthError::Unavailable)?;
        let verified = match verify(token, &keys, &validation) {
            Err(TokenError::UnknownKey) => match issuer.refresh(generation).await {
                Refresh::Fetched(keys, _) => verify(token, &keys, &validation),
                Refresh::RateLimited => Err(TokenError::UnknownKey),
                Refresh::Failed => return Err(AuthError::Unavailable),
            },
            other => other,
        }
        .map_err(|e| {
            tracing::debug!(issuer = %iss, error = %e, "token rejected");
            map_token_error(&e)
        })?;
        let method = match verified.format() {
            TokenFormat::Jwt => AuthMethod::Jwt,
            TokenFormat::PasetoV4Public => AuthMethod::Paseto,
            // The key set holds public keys only; a local token can never verify here.
            TokenFormat::PasetoV4Local => return Err(AuthError::Invalid),
        };
        let claims: AccessClaims = verified.into_claims();
        let principal = Arc::new(Principal {
            subject: claims.sub,
            client_id: Some(claims.client_id).filter(|c| !c.is_empty()),
            scopes: split_scopes(claims.scope.as_deref()),
            roles: claims.roles,
            groups: claims.groups,
            audiences: claims.aud,
            issuer: claims.iss,
            expires_at: claims.exp,
            token_id: Some(claims.jti).filter(|j| !j.is_empty()),
            method,
        });
        let now_ms = now_millis();
        let until = principal
            .expires_at
            .saturating_add(self.leeway_secs)
            .saturating_mul(1000);
        self.verified.insert(
            key,
            Cached {
                principal: Arc::clone(&principal),
                nbf: claims.nbf,
            },
            until,
            now_ms,
        );
        Ok(principal)
    }

    async fn introspect(
        &self,
        token: &str,
        audience: &str,
        key: TokenKey,
    ) -> Result<Arc<Principal>, AuthError> {
        let now_ms = now_millis();
        if self.inactive.get(&key, now_ms).is_some() {
            return Err(AuthError::Inactive);
        }
        let introspector = self
            .introspector
            .as_ref()
            .ok_or(AuthError::UntrustedIssuer)?;
        let active = match introspector.introspect(token).await {
            Ok(Introspected::Active(a)) => *a,
            Ok(Introspected::Inactive) => {
                let now_ms = now_millis();
                let until = now_ms.saturating_add(millis(self.negative_ttl));
                self.inactive.insert(key, (), until, now_ms);
                return Err(AuthError::Inactive);
            }
            Err(e) => {
                tracing::warn!(issuer = %introspector.issuer, error = %e, "introspection failed");
                return Err(AuthError::Unavailable);
            }
        };
        let (principal, nbf) = self.active_principal(active, &introspector.issuer)?;
        let now_ms = now_millis();
        let until = principal
            .expires_at
            .saturating_mul(1000)
            .min(now_ms.saturating_add(millis(self.introspection_ttl)));
        let cached = Cached {
            principal: Arc::new(principal),
            nbf: nbf.unwrap_or(i64::MIN),
        };
        self.verified.insert(key, cached.clone(), until, now_ms);
        self.check_cached(cached, audience, now_ms / 1000)
    }

    /// Builds the principal of an active token: `iss` (if present) must be the issuer, `exp`
    /// must be present and in the future, and there must be a subject.
    fn active_principal(
        &self,
        a: ActiveToken,
        issuer: &str,
    ) -> Result<(Principal, Option<i64>), AuthError> {
        if a.iss.as_deref().is_some_and(|i| i != issuer) {
            return Err(AuthError::UntrustedIssuer);
        }
        let exp = a.exp.ok_or(AuthError::Invalid)?;
        let now_s = now_millis() / 1000;
        if now_s >= exp.saturating_add(self.leeway_secs) {
            return Err(AuthError::Expired);
        }
        let subject = a
            .sub
            .clone()
            .or_else(|| a.client_id.clone())
            .filter(|s| !s.is_empty())
            .ok_or(AuthError::Invalid)?;
        let method = if a.token_type.as_deref() == Some("api_key") {
            AuthMethod::ApiKey
        } else {
            AuthMethod::Introspection
        };
        let principal = Principal {
            subject,
            client_id: a.client_id,
            scopes: split_scopes(a.scope.as_deref()),
            roles: a.roles,
            groups: a.groups,
            audiences: a.aud,
            issuer: issuer.to_owned(),
            expires_at: exp,
            token_id: a.jti,
            method,
        };
        Ok((principal, a.nbf))
    }
}

#[async_trait::async_trait]
impl Authenticator for Guard {
    async fn authenticate(
        &self,
        token: &str,
        audience: &str,
        accepted: Accepted,
    ) -> Result<Arc<Principal>, AuthError> {
        let (key, format) = match self.decide_now(token, audience, accepted) {
            Now::Decided(result) => return result,
            Now::Verify(key, format) => (key, format),
        };
        let principal = self.authenticate_any(token, format, audience, key).await?;
        accepted_kind(principal, accepted)
    }

    fn authenticate_now(
        &self,
        token: &str,
        audience: &str,
        accepted: Accepted,
    ) -> Option<Result<Arc<Principal>, AuthError>> {
        match self.decide_now(token, audience, accepted) {
            Now::Decided(result) => Some(result),
            Now::Verify(..) => None,
        }
    }
}

/// What is known of a token before any wait.
enum Now {
    /// The answer: malformed, not accepted, or found in the cache.
    Decided(Result<Arc<Principal>, AuthError>),
    /// Not cached and of an accepted kind: verify it (its cache key and format).
    Verify(TokenKey, Option<TokenFormat>),
}

impl Guard {
    /// The checks both [`Authenticator`] methods make before any wait, in one place so
    /// that the two cannot disagree.
    fn decide_now(&self, token: &str, audience: &str, accepted: Accepted) -> Now {
        if token.is_empty() {
            return Now::Decided(Err(AuthError::Missing));
        }
        if token.len() > MAX_TOKEN_BYTES
            || !crate::all_bytes(token.as_bytes(), |b| b.is_ascii_graphic())
        {
            return Now::Decided(Err(AuthError::Malformed));
        }
        // A token verified before is found by its hash alone; its recorded method decides
        // whether this caller accepts it (below), as for a fresh verification.
        let key = token_key(token);
        let now_ms = now_millis();
        if let Some(cached) = self.inner.verified.get(&key, now_ms) {
            return Now::Decided(
                self.inner
                    .check_cached(cached, audience, now_ms / 1000)
                    .and_then(|p| accepted_kind(p, accepted)),
            );
        }
        let format = peek_format(token);
        let allowed = match format {
            Some(TokenFormat::Jwt) => accepted.jwt,
            Some(TokenFormat::PasetoV4Public) => accepted.paseto,
            _ => accepted.introspection || accepted.api_key,
        };
        if !allowed {
            return Now::Decided(Err(AuthError::NotAccepted));
        }
        Now::Verify(key, format)
    }
}

/// `principal`, if the caller accepts its kind. Introspection tells an API key from an access
/// token: each is accepted only where the caller accepts that kind (a key is no bearer token,
/// and vice versa).
fn accepted_kind(
    principal: Arc<Principal>,
    accepted: Accepted,
) -> Result<Arc<Principal>, AuthError> {
    let kind_allowed = match principal.method {
        AuthMethod::Jwt => accepted.jwt,
        AuthMethod::Paseto => accepted.paseto,
        AuthMethod::Introspection => accepted.introspection,
        AuthMethod::ApiKey => accepted.api_key,
        AuthMethod::Mtls => false,
    };
    if !kind_allowed {
        return Err(AuthError::NotAccepted);
    }
    Ok(principal)
}

impl Guard {
    /// Authenticates a token of any kind that is not in the cache (`key`: its cache key); the
    /// caller checks that the kind is accepted.
    async fn authenticate_any(
        &self,
        token: &str,
        format: Option<TokenFormat>,
        audience: &str,
        key: TokenKey,
    ) -> Result<Arc<Principal>, AuthError> {
        let inner = &self.inner;
        match format {
            Some(f @ (TokenFormat::Jwt | TokenFormat::PasetoV4Public)) => {
                inner.verify_local(token, f, audience, key).await
            }
            _ => inner.introspect(token, audience, key).await,
        }
    }
}
