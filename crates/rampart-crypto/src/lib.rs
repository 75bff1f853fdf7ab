//! Rampart keys at rest.
//!
//! This crate holds the process master key ([`MasterKey`]), envelope
//! encryption of secrets stored on disk or in the database ([`Envelope`]),
//! keyed hashing of client secrets and tokens ([`SecretHasher`]) and a few
//! helpers for randomness and constant-time comparison.
//!
//! Every primitive comes from `aws-lc-rs`; nothing here is hand-written
//! cryptography. Secret-bearing types never print their contents through
//! `Debug`, and key material is zeroized when dropped.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, Nonce, RandomizedNonceKey};
use aws_lc_rs::{constant_time, hkdf, hmac, rand};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use zeroize::{Zeroize, Zeroizing};

pub use secrecy::{ExposeSecret, SecretString};

/// Length in bytes of the master key and of every derived key.
pub const KEY_LEN: usize = 32;

/// Errors returned by this crate. Messages never contain secret material.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The master key could not be decoded or has the wrong length.
    #[error("invalid master key: {0}")]
    InvalidMasterKey(&'static str),
    /// An I/O error while reading or writing a key file.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A key file is readable or writable by group or others.
    #[error(
        "refusing to use key file {} with insecure permissions {mode:04o} (expected 0600 or stricter)",
        path.display()
    )]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits (`mode & 0o7777`).
        mode: u32,
    },
    /// Encryption failed.
    #[error("encryption failed")]
    Seal,
    /// Decryption failed: wrong key, tampered or truncated data, unknown
    /// format version, or wrong context.
    #[error("decryption failed")]
    Open,
    /// The system random number generator failed.
    #[error("random number generator failure")]
    Random,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CryptoError + '_ {
    move |source| CryptoError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Compares two byte strings in constant time (with respect to their
/// contents; a length mismatch returns `false` immediately).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// Fills `buf` with cryptographically secure random bytes.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    rand::fill(buf).map_err(|_| CryptoError::Random)
}

/// Returns `n_bytes` random bytes encoded as base64url without padding.
pub fn random_token(n_bytes: usize) -> Result<String, CryptoError> {
    let mut buf = Zeroizing::new(vec![0u8; n_bytes]);
    random_bytes(&mut buf)?;
    Ok(URL_SAFE_NO_PAD.encode(&*buf))
}

/// Returns an identifier of `n_bytes` random bytes, base64url without padding, that does not
/// start with `-`: ids are typed into command lines, where a leading `-` reads as an option.
/// Redrawing the 1 in 64 that would costs under 0.03 bits of the identifier's entropy.
pub fn random_identifier(n_bytes: usize) -> Result<String, CryptoError> {
    loop {
        let id = random_token(n_bytes)?;
        if !id.starts_with('-') {
            return Ok(id);
        }
    }
}

/// Generates an OAuth2 client secret: 32 random bytes (256 bits) encoded as
/// base64url without padding (43 characters).
pub fn generate_client_secret() -> Result<SecretString, CryptoError> {
    random_token(KEY_LEN).map(SecretString::from)
}

/// Lenient decoder: either padding style accepted.
const fn lenient(alphabet: &alphabet::Alphabet) -> GeneralPurpose {
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    )
}
const URL_SAFE_LENIENT: GeneralPurpose = lenient(&alphabet::URL_SAFE);
const STANDARD_LENIENT: GeneralPurpose = lenient(&alphabet::STANDARD);

/// HKDF salt used for every key derived from the master key.
const HKDF_SALT: &[u8] = b"rampart";
/// Prefix of the HKDF info string; the purpose is appended.
const HKDF_INFO_PREFIX: &[u8] = b"rampart/v1/";

/// The 256-bit root key of a Rampart installation.
///
/// All other keys (envelope KEK, secret-hash key, ...) are derived from it
/// with HKDF-SHA256. The bytes live on the heap and are zeroized on drop.
/// `Debug` prints `MasterKey([REDACTED])`; there is no `Display`.
pub struct MasterKey {
    bytes: Box<[u8; KEY_LEN]>,
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

impl MasterKey {
    /// Generates a fresh random master key.
    pub fn generate() -> Result<MasterKey, CryptoError> {
        let mut bytes = Box::new([0u8; KEY_LEN]);
        if let Err(e) = random_bytes(&mut bytes[..]) {
            bytes.zeroize();
            return Err(e);
        }
        Ok(MasterKey { bytes })
    }

    /// Parses a master key from base64.
    ///
    /// Surrounding whitespace is ignored. Both base64url and standard base64
    /// are accepted, with or without padding. The decoded value must be
    /// exactly 32 bytes.
    pub fn from_base64(s: &str) -> Result<MasterKey, CryptoError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(CryptoError::InvalidMasterKey("empty"));
        }
        let decoded: Zeroizing<Vec<u8>> = URL_SAFE_LENIENT
            .decode(s)
            .or_else(|_| STANDARD_LENIENT.decode(s))
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::InvalidMasterKey("not valid base64"))?;
        if decoded.len() != KEY_LEN {
            return Err(CryptoError::InvalidMasterKey(
                "must decode to exactly 32 bytes",
            ));
        }
        let mut bytes = Box::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(&decoded);
        Ok(MasterKey { bytes })
    }

    /// Encodes the key as base64url without padding.
    pub fn to_base64(&self) -> SecretString {
        SecretString::from(URL_SAFE_NO_PAD.encode(&self.bytes[..]))
    }

    /// Loads the master key from `path`, or creates it there if the file
    /// does not exist. Returns the key and whether it was created.
    ///
    /// Creation writes the key (base64url plus a newline) to a temporary
    /// file created with mode `0600` in the same directory, fsyncs it, links
    /// it into place without ever overwriting an existing file, and fsyncs
    /// the directory. The parent directory must already exist.
    ///
    /// Loading refuses files whose mode grants any access to group or
    /// others ([`CryptoError::InsecurePermissions`]).
    pub fn load_or_create(path: &Path) -> Result<(MasterKey, bool), CryptoError> {
        match fs::metadata(path) {
            Ok(_) => Ok((Self::load(path)?, false)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => match Self::create(path)? {
                Some(key) => Ok((key, true)),
                // Someone else created it concurrently: use theirs.
                None => Ok((Self::load(path)?, false)),
            },
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// Loads a key file, checking its permissions first.
    fn load(path: &Path) -> Result<MasterKey, CryptoError> {
        let mut file = File::open(path).map_err(io_err(path))?;
        let meta = file.metadata().map_err(io_err(path))?;
        if !meta.is_file() {
            return Err(io_err(path)(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(CryptoError::InsecurePermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        // A base64 key is 44 bytes; anything much larger is not a key file.
        let mut contents = Zeroizing::new(String::with_capacity(128));
        (&mut file)
            .take(4096)
            .read_to_string(&mut contents)
            .map_err(io_err(path))?;
        Self::from_base64(&contents)
    }

    /// Creates a new key file. Returns `None` if the file appeared meanwhile.
    fn create(path: &Path) -> Result<Option<MasterKey>, CryptoError> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let file_name = path.file_name().ok_or_else(|| {
            io_err(path)(io::Error::new(
                io::ErrorKind::InvalidInput,
                "key path has no file name",
            ))
        })?;
        let key = Self::generate()?;

        let mut suffix = [0u8; 8];
        random_bytes(&mut suffix)?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(format!(".tmp-{}", URL_SAFE_NO_PAD.encode(suffix)));
        let tmp = TempPath(dir.join(tmp_name));

        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp.0)
            .map_err(io_err(&tmp.0))?;
        // The umask can only remove bits; make sure nothing else is set.
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io_err(&tmp.0))?;
        let mut line = Zeroizing::new(String::with_capacity(KEY_LEN * 2));
        line.push_str(key.to_base64().expose_secret());
        line.push('\n');
        file.write_all(line.as_bytes()).map_err(io_err(&tmp.0))?;
        file.sync_all().map_err(io_err(&tmp.0))?;
        drop(file);

        // hard_link fails if the destination exists, so an existing key is
        // never overwritten.
        match fs::hard_link(&tmp.0, path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(io_err(path)(e)),
        }
        drop(tmp);
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&dir))?;
        Ok(Some(key))
    }

    /// Returns the envelope encryptor keyed by this master key.
    pub fn envelope(&self) -> Envelope {
        Envelope::new(self.derive_key("envelope-kek"))
    }

    /// Returns the keyed hasher for client secrets and tokens.
    pub fn secret_hasher(&self) -> SecretHasher {
        self.keyed_hasher("secret-hash")
    }

    /// A keyed hasher with a key of its own for `purpose` (e.g. session cookies, CSRF
    /// tokens), so that a hash made for one purpose is worthless for another.
    pub fn keyed_hasher(&self, purpose: &str) -> SecretHasher {
        let key = self.derive_key(purpose);
        SecretHasher {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key[..]),
        }
    }

    /// Derives a 32-byte subkey for `purpose` with HKDF-SHA256
    /// (salt `"rampart"`, info `"rampart/v1/" + purpose`).
    ///
    /// Deterministic: the same master key and purpose always give the same
    /// subkey; different purposes give independent subkeys.
    pub fn derive_key(&self, purpose: &str) -> Zeroizing<[u8; KEY_LEN]> {
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(&self.bytes[..]);
        let info = [HKDF_INFO_PREFIX, purpose.as_bytes()];
        // Neither call can fail: 32 bytes is far below the HKDF limit of
        // 255 * 32 bytes, and `out` has exactly the requested length.
        let filled = prk
            .expand(&info, hkdf::HKDF_SHA256)
            .and_then(|okm| okm.fill(&mut out[..]));
        #[allow(clippy::expect_used)]
        filled.expect("HKDF-SHA256 expansion to 32 bytes is infallible");
        out
    }
}

/// Removes a temporary file when dropped.
struct TempPath(PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Envelope encryption keyed by a KEK derived from the master key.
///
/// Each [`seal`](Envelope::seal) draws a fresh 256-bit data key (DEK),
/// encrypts the plaintext with AES-256-GCM under it and wraps the DEK with
/// AES-256-GCM under the KEK. Both layers use random 96-bit nonces and take
/// `context` as additional authenticated data, so a blob only opens with the
/// context it was sealed with (e.g. `b"signing-key:<kid>"`).
///
/// Format: `0x01 | wrap nonce (12) | wrapped DEK (48) | data nonce (12) |
/// ciphertext + tag (16)`.
///
/// Cheap to clone (the KEK is shared and zeroized when the last clone is
/// dropped). `Debug` is redacted.
#[derive(Clone)]
pub struct Envelope {
    kek: Arc<Zeroizing<[u8; KEY_LEN]>>,
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Envelope([REDACTED])")
    }
}

const ENVELOPE_VERSION: u8 = 0x01;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const WRAPPED_DEK_LEN: usize = KEY_LEN + TAG_LEN;
/// Size of everything before the data ciphertext.
pub const ENVELOPE_HEADER_LEN: usize = 1 + NONCE_LEN + WRAPPED_DEK_LEN + NONCE_LEN;
/// Per-blob overhead of [`Envelope::seal`] over the plaintext length.
pub const ENVELOPE_OVERHEAD: usize = ENVELOPE_HEADER_LEN + TAG_LEN;

impl Envelope {
    fn new(kek: Zeroizing<[u8; KEY_LEN]>) -> Envelope {
        Envelope { kek: Arc::new(kek) }
    }

    fn kek(&self) -> Option<RandomizedNonceKey> {
        RandomizedNonceKey::new(&AES_256_GCM, &self.kek[..]).ok()
    }

    /// Encrypts `plaintext`, binding it to `context`.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut dek = Zeroizing::new([0u8; KEY_LEN]);
        random_bytes(&mut dek[..])?;
        let data_key =
            RandomizedNonceKey::new(&AES_256_GCM, &dek[..]).map_err(|_| CryptoError::Seal)?;

        // Wrap the DEK in place.
        let mut wrapped = Zeroizing::new([0u8; KEY_LEN]);
        wrapped.copy_from_slice(&dek[..]);
        let (wrap_nonce, wrap_tag) = self
            .kek()
            .ok_or(CryptoError::Seal)?
            .seal_in_place_separate_tag(Aad::from(context), &mut wrapped[..])
            .map_err(|_| CryptoError::Seal)?;

        // Pre-size the output so the plaintext copy is never reallocated, and
        // keep it zeroizing until it holds only ciphertext.
        let mut out = Zeroizing::new(Vec::with_capacity(ENVELOPE_OVERHEAD + plaintext.len()));
        out.push(ENVELOPE_VERSION);
        out.extend_from_slice(wrap_nonce.as_ref());
        out.extend_from_slice(&wrapped[..]);
        out.extend_from_slice(wrap_tag.as_ref());
        out.extend_from_slice(&[0u8; NONCE_LEN]);
        out.extend_from_slice(plaintext);
        let (header, body) = out
            .split_at_mut_checked(ENVELOPE_HEADER_LEN)
            .ok_or(CryptoError::Seal)?;
        let (data_nonce, data_tag) = data_key
            .seal_in_place_separate_tag(Aad::from(context), body)
            .map_err(|_| CryptoError::Seal)?;
        header
            .last_chunk_mut::<NONCE_LEN>()
            .ok_or(CryptoError::Seal)?
            .copy_from_slice(data_nonce.as_ref());
        out.extend_from_slice(data_tag.as_ref());
        Ok(std::mem::take(&mut *out))
    }

    /// Decrypts a blob produced by [`seal`](Envelope::seal) with the same
    /// master key and `context`.
    ///
    /// Any failure (wrong key or context, tampering, truncation, unknown
    /// version) yields [`CryptoError::Open`].
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < ENVELOPE_OVERHEAD {
            return Err(CryptoError::Open);
        }
        let (&version, rest) = sealed.split_first().ok_or(CryptoError::Open)?;
        if version != ENVELOPE_VERSION {
            return Err(CryptoError::Open);
        }
        let (wrap_nonce, rest) = rest
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(CryptoError::Open)?;
        let (wrapped, rest) = rest
            .split_first_chunk::<WRAPPED_DEK_LEN>()
            .ok_or(CryptoError::Open)?;
        let (data_nonce, ciphertext) = rest
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(CryptoError::Open)?;

        let mut dek_buf = Zeroizing::new(*wrapped);
        let dek = self
            .kek()
            .ok_or(CryptoError::Open)?
            .open_in_place(
                Nonce::assume_unique_for_key(*wrap_nonce),
                Aad::from(context),
                &mut dek_buf[..],
            )
            .map_err(|_| CryptoError::Open)?;
        let data_key = RandomizedNonceKey::new(&AES_256_GCM, dek).map_err(|_| CryptoError::Open)?;

        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let len = data_key
            .open_in_place(
                Nonce::assume_unique_for_key(*data_nonce),
                Aad::from(context),
                &mut buf[..],
            )
            .map_err(|_| CryptoError::Open)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// Keyed hashing (HMAC-SHA256) of secrets such as client secrets and
/// refresh tokens, so that only hashes are stored.
///
/// The key is derived from the master key, so a leaked database alone does
/// not allow offline guessing. `Debug` is redacted.
#[derive(Clone)]
pub struct SecretHasher {
    key: hmac::Key,
}

impl fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHasher([REDACTED])")
    }
}

impl SecretHasher {
    /// Returns HMAC-SHA256(key, secret).
    pub fn hash(&self, secret: &[u8]) -> [u8; 32] {
        let tag = hmac::sign(&self.key, secret);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Checks in constant time that `expected` is the hash of `secret`.
    pub fn verify(&self, secret: &[u8], expected: &[u8]) -> bool {
        hmac::verify(&self.key, secret, expected).is_ok()
    }
}

#[cfg(test)]
mod tests;
