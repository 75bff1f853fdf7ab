//! Passwords: the policy for new passwords and Argon2id hashing on a bounded
//! pool.
//!
//! Hashing and verification run on tokio's blocking pool, never on the async
//! workers, and at most [`HashingLimits::max_concurrent`] at a time. At most
//! [`HashingLimits::max_queued`] more may wait for a slot; past that a job
//! fails at once with [`PasswordError::Busy`] (answer 429/503 with
//! `Retry-After`), so a flood of logins cannot build an unbounded queue.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use argon2::password_hash::phc::PasswordHash;
use argon2::{
    Algorithm, Argon2, ParamsBuilder, PasswordHasher as _, PasswordVerifier as _, Version,
};
use rampart_crypto::{ExposeSecret, SecretString, random_bytes};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// Minimum length of a new password, in characters (Unicode scalar values).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Maximum length of a new password, in bytes of UTF-8.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Largest accepted Argon2 memory cost (1 GiB), for our parameters and for
/// stored hashes: a stored hash cannot make a verification use more.
pub const MAX_M_COST_KIB: u32 = 1024 * 1024;
/// Largest accepted Argon2 time cost (iterations).
pub const MAX_T_COST: u32 = 64;
/// Largest accepted Argon2 parallelism (lanes).
pub const MAX_P_COST: u32 = 64;
/// Largest accepted stored PHC string, in bytes.
pub const MAX_PHC_BYTES: usize = 512;
/// Largest accepted [`HashingLimits::max_concurrent`].
pub const MAX_CONCURRENT_LIMIT: usize = 1024;

/// Salt length of new hashes, in bytes (128 bits).
const SALT_LEN: usize = 16;
/// Output length of new hashes, in bytes.
const OUTPUT_LEN: usize = 32;
/// Argon2 version 0x13 as written in PHC strings.
const ARGON2_VERSION: u32 = 0x13;

/// Argon2id cost parameters.
///
/// The default is the OWASP recommendation: 19 MiB of memory, 2 iterations,
/// 1 lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory cost in KiB.
    pub m_cost_kib: u32,
    /// Time cost (number of passes).
    pub t_cost: u32,
    /// Parallelism (number of lanes).
    pub p_cost: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Argon2Params {
            m_cost_kib: 19_456,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

impl Argon2Params {
    fn to_argon2(self) -> Result<argon2::Params, PasswordError> {
        if self.m_cost_kib > MAX_M_COST_KIB || self.t_cost > MAX_T_COST || self.p_cost > MAX_P_COST
        {
            return Err(PasswordError::InvalidConfig(
                "Argon2 parameters above the accepted maximum",
            ));
        }
        ParamsBuilder::new()
            .m_cost(self.m_cost_kib)
            .t_cost(self.t_cost)
            .p_cost(self.p_cost)
            .output_len(OUTPUT_LEN)
            .build()
            .map_err(|_| PasswordError::InvalidConfig("invalid Argon2 parameters"))
    }
}

/// Bounds of the hashing pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashingLimits {
    /// Jobs running at the same time (each on a blocking thread).
    pub max_concurrent: usize,
    /// Jobs allowed to wait for a slot; one more fails with
    /// [`PasswordError::Busy`].
    pub max_queued: usize,
}

impl Default for HashingLimits {
    /// `max_concurrent` = the available parallelism (at least 1),
    /// `max_queued` = 4 × `max_concurrent`.
    fn default() -> Self {
        let max_concurrent = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1)
            .clamp(1, MAX_CONCURRENT_LIMIT);
        HashingLimits {
            max_concurrent,
            max_queued: max_concurrent.saturating_mul(4),
        }
    }
}

/// Result of [`PasswordHasher::verify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasswordCheck {
    /// The password matches the stored hash.
    pub valid: bool,
    /// The stored hash was made with other parameters (or another
    /// algorithm or version) than the current ones: after a successful
    /// login, hash the password again and store the new hash.
    pub needs_rehash: bool,
}

/// Errors of [`PasswordHasher`]. Messages never contain secret material.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The hashing pool and its queue are full: answer fast (429/503 with
    /// `Retry-After`) rather than wait.
    #[error("password hashing is busy, try again later")]
    Busy,
    /// Hashing failed (random generator, runtime or internal error).
    #[error("password hashing failed")]
    Hashing,
    /// The stored hash is not a usable Argon2 PHC string (malformed, unknown
    /// algorithm, or parameters above the accepted maximum).
    #[error("invalid stored password hash")]
    InvalidHash,
    /// The parameters or limits given to [`PasswordHasher::new`] are invalid.
    #[error("invalid password hashing configuration: {0}")]
    InvalidConfig(&'static str),
}

/// Argon2id password hashing on a bounded pool of dedicated threads.
///
/// Cheap to clone: clones share the pool and its limits.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    params: Argon2Params,
    argon2_params: argon2::Params,
    semaphore: Arc<Semaphore>,
    max_queued: usize,
    /// Jobs waiting for a permit.
    waiting: AtomicUsize,
    /// Jobs admitted and not finished (running or waiting).
    in_flight: AtomicUsize,
    /// Hash of a random password with the current parameters, verified
    /// against for unknown users.
    dummy: PasswordHash,
    /// Feeds the dedicated hashing threads.
    workers: std::sync::Mutex<std::sync::mpsc::Sender<Work>>,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.inner.params)
            .field("max_queued", &self.inner.max_queued)
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            self.argon2_params.clone(),
        )
    }
}

/// Decrements a counter when dropped.
struct CountGuard {
    inner: Arc<Inner>,
    which: fn(&Inner) -> &AtomicUsize,
}

impl Drop for CountGuard {
    fn drop(&mut self) {
        (self.which)(&self.inner).fetch_sub(1, Ordering::AcqRel);
    }
}

fn hash_with(argon2: &Argon2<'_>, password: &[u8]) -> Result<String, PasswordError> {
    let mut salt = [0u8; SALT_LEN];
    random_bytes(&mut salt).map_err(|_| PasswordError::Hashing)?;
    argon2
        .hash_password_with_salt(password, &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hashing)
}

impl PasswordHasher {
    /// Creates a hasher with these parameters and pool limits.
    ///
    /// Computes the dummy hash used for unknown users, which costs one
    /// Argon2 run on the calling thread: construct it at start-up (or in
    /// `spawn_blocking`), not per request.
    pub fn new(params: Argon2Params, limits: HashingLimits) -> Result<Self, PasswordError> {
        if limits.max_concurrent == 0 || limits.max_concurrent > MAX_CONCURRENT_LIMIT {
            return Err(PasswordError::InvalidConfig(
                "max_concurrent must be between 1 and 1024",
            ));
        }
        let argon2_params = params.to_argon2()?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2_params.clone());
        let mut dummy_password = zeroize::Zeroizing::new([0u8; 32]);
        random_bytes(&mut dummy_password[..]).map_err(|_| PasswordError::Hashing)?;
        let dummy = hash_with(&argon2, &dummy_password[..])?;
        let dummy = PasswordHash::new(&dummy).map_err(|_| PasswordError::Hashing)?;
        Ok(PasswordHasher {
            inner: Arc::new(Inner {
                params,
                argon2_params,
                semaphore: Arc::new(Semaphore::new(limits.max_concurrent)),
                max_queued: limits.max_queued,
                waiting: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                dummy,
                workers: std::sync::Mutex::new(start_workers(limits.max_concurrent)?),
            }),
        })
    }

    /// The current parameters (those of new hashes).
    pub fn params(&self) -> Argon2Params {
        self.inner.params
    }

    /// Hash/verify jobs running or waiting right now (for metrics).
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Acquire)
    }

    /// Hashes `password` with Argon2id, the current parameters and a random
    /// 128-bit salt, and returns the PHC string
    /// (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
    ///
    /// Runs on tokio's blocking pool under the limits; fails with
    /// [`PasswordError::Busy`] at once when the pool and queue are full.
    /// Must be called within a tokio runtime ([`PasswordError::Hashing`]
    /// otherwise).
    pub async fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        let password = password.clone();
        self.run(move |inner| hash_with(&inner.argon2(), password.expose_secret().as_bytes()))
            .await
    }

    /// Verifies `password` against a stored PHC string.
    ///
    /// `phc = None` (unknown user) verifies against a dummy hash made with
    /// the same parameters at construction, so unknown users cost the same
    /// time; the result is then always `valid: false`. `needs_rehash` is
    /// set when the stored hash is not Argon2id v19 with the current
    /// parameters and output length.
    ///
    /// A stored hash that does not parse, is not Argon2, or has parameters
    /// above [`MAX_M_COST_KIB`] / [`MAX_T_COST`] / [`MAX_P_COST`] gives
    /// [`PasswordError::InvalidHash`] (before any work). Fails with
    /// [`PasswordError::Busy`] at once when the pool and queue are full.
    pub async fn verify(
        &self,
        phc: Option<&str>,
        password: &SecretString,
    ) -> Result<PasswordCheck, PasswordError> {
        self.verify_queued(self.inner.max_queued, phc, password)
            .await
    }

    /// [`Self::verify`] for a sign-in from a trusted device (one where the user signed in
    /// before): it may wait in a queue twice as long, so that a flood of guesses from
    /// elsewhere, which fills the ordinary queue and gets `Busy`, does not lock out the
    /// people who own the accounts.
    pub async fn verify_trusted(
        &self,
        phc: Option<&str>,
        password: &SecretString,
    ) -> Result<PasswordCheck, PasswordError> {
        let limit = self.inner.max_queued.saturating_mul(2).max(1);
        self.verify_queued(limit, phc, password).await
    }

    async fn verify_queued(
        &self,
        max_queued: usize,
        phc: Option<&str>,
        password: &SecretString,
    ) -> Result<PasswordCheck, PasswordError> {
        let stored = match phc {
            None => None,
            Some(s) => Some(self.parse_stored(s)?),
        };
        let password = password.clone();
        self.run_queued(max_queued, move |inner| {
            let pw = password.expose_secret().as_bytes();
            match stored {
                None => {
                    // Same work as a real check; the outcome is irrelevant.
                    let _ = inner.argon2().verify_password(pw, &inner.dummy);
                    Ok(PasswordCheck {
                        valid: false,
                        needs_rehash: false,
                    })
                }
                Some((hash, needs_rehash)) => match inner.argon2().verify_password(pw, &hash) {
                    Ok(()) => Ok(PasswordCheck {
                        valid: true,
                        needs_rehash,
                    }),
                    Err(argon2::password_hash::Error::PasswordInvalid) => Ok(PasswordCheck {
                        valid: false,
                        needs_rehash,
                    }),
                    Err(
                        argon2::password_hash::Error::OutOfMemory
                        | argon2::password_hash::Error::Internal
                        | argon2::password_hash::Error::RngFailure,
                    ) => Err(PasswordError::Hashing),
                    Err(_) => Err(PasswordError::InvalidHash),
                },
            }
        })
        .await
    }

    /// Parses and bounds a stored hash; returns it with its `needs_rehash`.
    fn parse_stored(&self, s: &str) -> Result<(PasswordHash, bool), PasswordError> {
        if s.len() > MAX_PHC_BYTES {
            return Err(PasswordError::InvalidHash);
        }
        let hash = PasswordHash::new(s).map_err(|_| PasswordError::InvalidHash)?;
        let algorithm =
            Algorithm::new(hash.algorithm.as_str()).map_err(|_| PasswordError::InvalidHash)?;
        let params = argon2::Params::try_from(&hash).map_err(|_| PasswordError::InvalidHash)?;
        if params.m_cost() > MAX_M_COST_KIB
            || params.t_cost() > MAX_T_COST
            || params.p_cost() > MAX_P_COST
        {
            return Err(PasswordError::InvalidHash);
        }
        if hash.salt.is_none() || hash.hash.is_none() {
            return Err(PasswordError::InvalidHash);
        }
        let current = self.inner.params;
        let needs_rehash = algorithm != Algorithm::Argon2id
            || hash.version != Some(ARGON2_VERSION)
            || params.m_cost() != current.m_cost_kib
            || params.t_cost() != current.t_cost
            || params.p_cost() != current.p_cost
            || params.output_len() != Some(OUTPUT_LEN);
        Ok((hash, needs_rehash))
    }

    /// Runs `job` on the hashing threads under the limits.
    ///
    /// The permit and the in-flight count move into the blocking closure, so
    /// they are released when the work really ends, even if the caller's
    /// future is dropped meanwhile.
    async fn run<T, F>(&self, job: F) -> Result<T, PasswordError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, PasswordError> + Send + 'static,
    {
        self.run_queued(self.inner.max_queued, job).await
    }

    /// [`Self::run`] with an explicit limit of waiting jobs.
    async fn run_queued<T, F>(&self, max_queued: usize, job: F) -> Result<T, PasswordError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, PasswordError> + Send + 'static,
    {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| PasswordError::Hashing)?;
        let inner = &self.inner;
        let permit: OwnedSemaphorePermit = match inner.semaphore.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return Err(PasswordError::Hashing),
            Err(TryAcquireError::NoPermits) => {
                inner
                    .waiting
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                        (w < max_queued).then_some(w + 1)
                    })
                    .map_err(|_| PasswordError::Busy)?;
                let waiting = CountGuard {
                    inner: inner.clone(),
                    which: |i| &i.waiting,
                };
                inner.in_flight.fetch_add(1, Ordering::AcqRel);
                let in_flight = CountGuard {
                    inner: inner.clone(),
                    which: |i| &i.in_flight,
                };
                let permit = inner
                    .semaphore
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| PasswordError::Hashing)?;
                drop(waiting);
                return Self::spawn(runtime, inner.clone(), permit, in_flight, job).await;
            }
        };
        inner.in_flight.fetch_add(1, Ordering::AcqRel);
        let in_flight = CountGuard {
            inner: inner.clone(),
            which: |i| &i.in_flight,
        };
        Self::spawn(runtime, inner.clone(), permit, in_flight, job).await
    }

    async fn spawn<T, F>(
        _runtime: tokio::runtime::Handle,
        inner: Arc<Inner>,
        permit: OwnedSemaphorePermit,
        in_flight: CountGuard,
        job: F,
    ) -> Result<T, PasswordError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, PasswordError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let worker_inner = inner.clone();
        let work: Work = Box::new(move || {
            let result = job(&worker_inner);
            // Released before the answer, so that a caller sees the slot free once answered.
            drop(in_flight);
            drop(permit);
            let _ = tx.send(result);
        });
        let sent = inner
            .workers
            .lock()
            .map_err(|_| PasswordError::Hashing)?
            .send(work);
        if sent.is_err() {
            return Err(PasswordError::Hashing);
        }
        rx.await.map_err(|_| PasswordError::Hashing)?
    }
}

/// A job for the hashing threads.
type Work = Box<dyn FnOnce() + Send + 'static>;

/// Starts `n` dedicated hashing threads and returns the sender that feeds them.
///
/// Dedicated threads rather than tokio's blocking pool: each thread's allocator arena keeps
/// the memory of the last Argon2 run (19 MiB and more), and the blocking pool may grow to
/// hundreds of threads under a flood of logins, so memory would grow with it. With a fixed
/// set of threads it stays at about `n` times the Argon2 memory cost.
fn start_workers(n: usize) -> Result<std::sync::mpsc::Sender<Work>, PasswordError> {
    let (tx, rx) = std::sync::mpsc::channel::<Work>();
    let rx = Arc::new(std::sync::Mutex::new(rx));
    for i in 0..n {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("rampart-argon2-{i}"))
            .spawn(move || {
                loop {
                    // The lock is held only to take one job; the sender closing ends the thread.
                    let next = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    match next {
                        Ok(work) => work(),
                        Err(_) => return,
                    }
                }
            })
            .map_err(|_| PasswordError::InvalidConfig("could not start hashing threads"))?;
    }
    Ok(tx)
}

/// Why [`check_new_password`] refused a new password. The messages are fit
/// to show to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejection {
    /// Fewer than `min` characters.
    #[error("the password must have at least {min} characters")]
    TooShort {
        /// The minimum number of characters.
        min: usize,
    },
    /// More than `max` bytes.
    #[error("the password must not be longer than {max} bytes")]
    TooLong {
        /// The maximum number of bytes.
        max: usize,
    },
    /// A known breached password, a variant of one with digits or
    /// punctuation appended, or a trivial pattern.
    #[error("this password is too common or too simple")]
    Common,
    /// Contains the username, the e-mail address or similar.
    #[error("the password must not contain your username or e-mail address")]
    ContainsUserData,
}

/// Context strings shorter than this (in characters) are not checked.
const MIN_CONTEXT_CHARS: usize = 4;

/// The shipped list of common breached passwords (lower case, one a line).
const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON_PASSWORDS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    })
}

/// Number of entries in the shipped list of common passwords.
pub fn common_password_count() -> usize {
    common_passwords().len()
}

/// Checks a new password (at registration or change) against the policy:
///
/// - at least [`MIN_PASSWORD_CHARS`] characters and at most
///   [`MAX_PASSWORD_BYTES`] bytes;
/// - [`Common`](PasswordRejection::Common) if, lower-cased, it is in the
///   shipped list of common breached passwords, or is after removing a
///   trailing run of digits, punctuation and spaces (`password12345678`), or
///   it (or what is left after that removal, if 4 characters or more) is a
///   single repeated character, a repetition of a unit of up to 4
///   characters, or an ascending or descending sequence (`abcdefghijkl`,
///   `123456789012`);
/// - [`ContainsUserData`](PasswordRejection::ContainsUserData) if it
///   contains, ignoring case, any `context` string of 4 characters or more
///   (pass the username and the e-mail address or its local part; for a
///   string with an `@`, its local part is checked as well).
pub fn check_new_password(password: &str, context: &[&str]) -> Result<(), PasswordRejection> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordRejection::TooLong {
            max: MAX_PASSWORD_BYTES,
        });
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordRejection::TooShort {
            min: MIN_PASSWORD_CHARS,
        });
    }
    let lower = password.to_lowercase();
    if is_common(&lower) {
        return Err(PasswordRejection::Common);
    }
    if contains_user_data(&lower, context) {
        return Err(PasswordRejection::ContainsUserData);
    }
    Ok(())
}

fn is_common(lower: &str) -> bool {
    let list = common_passwords();
    if list.contains(lower) || is_trivial_pattern(lower) {
        return true;
    }
    let stripped = lower.trim_end_matches(|c: char| {
        c.is_ascii_digit() || c.is_ascii_punctuation() || c.is_whitespace()
    });
    if stripped.len() == lower.len() || stripped.is_empty() {
        return false;
    }
    list.contains(stripped)
        || (stripped.chars().count() >= MIN_CONTEXT_CHARS && is_trivial_pattern(stripped))
}

/// A repetition of a unit of 1 to 4 characters, or a sequence of
/// consecutive characters going up or down by one (digits wrap: `890123`).
fn is_trivial_pattern(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() < 2 {
        return true;
    }
    let repeated = (1..=4usize)
        .filter(|&p| p < chars.len())
        .any(|p| chars.iter().skip(p).zip(&chars).all(|(a, b)| a == b));
    if repeated {
        return true;
    }
    let step = |a: char, b: char| -> i64 {
        match (a.to_digit(10), b.to_digit(10)) {
            (Some(x), Some(y)) => match (i64::from(y) - i64::from(x)).rem_euclid(10) {
                1 => 1,
                9 => -1,
                _ => 0,
            },
            _ => i64::from(u32::from(b)) - i64::from(u32::from(a)),
        }
    };
    let first = step(chars[0], chars[1]);
    (first == 1 || first == -1) && chars.windows(2).all(|w| step(w[0], w[1]) == first)
}

fn contains_user_data(lower: &str, context: &[&str]) -> bool {
    let hit = |s: &str| {
        let s = s.trim().to_lowercase();
        s.chars().count() >= MIN_CONTEXT_CHARS && lower.contains(&s)
    };
    context.iter().any(|c| {
        // Context strings come from our own records; bound the work anyway.
        let c = if c.len() > MAX_PASSWORD_BYTES { "" } else { c };
        hit(c) || c.split_once('@').is_some_and(|(local, _)| hit(local))
    })
}

#[cfg(test)]
mod tests;
