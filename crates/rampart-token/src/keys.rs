//! Signing keys, key kinds and deterministic key identifiers.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair,
    RsaPublicKeyComponents,
};
use pasetors::keys::{AsymmetricPublicKey, AsymmetricSecretKey, SymmetricKey};
use pasetors::version4::V4;
use serde_json::json;
use zeroize::Zeroizing;

use crate::{TokenError, b64, paseto};

/// Minimum accepted RSA modulus size, in bytes (2048 bits).
pub(crate) const RSA_MIN_MODULUS_BYTES: usize = 256;
/// Maximum accepted RSA modulus size, in bytes (8192 bits).
pub(crate) const RSA_MAX_MODULUS_BYTES: usize = 1024;

/// JWT signature algorithms supported by Rampart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JwtAlg {
    /// Ed25519 (RFC 8037).
    EdDSA,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, modulus of at least 2048 bits.
    RS256,
}

impl JwtAlg {
    /// The JOSE `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlg::EdDSA => "EdDSA",
            JwtAlg::ES256 => "ES256",
            JwtAlg::RS256 => "RS256",
        }
    }

    /// Parses a JOSE `alg` name (exact, case-sensitive). Only supported
    /// asymmetric algorithms are accepted.
    pub fn parse(s: &str) -> Option<JwtAlg> {
        match s {
            "EdDSA" => Some(JwtAlg::EdDSA),
            "ES256" => Some(JwtAlg::ES256),
            "RS256" => Some(JwtAlg::RS256),
            _ => None,
        }
    }

    pub(crate) fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            JwtAlg::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            JwtAlg::ES256 => jsonwebtoken::Algorithm::ES256,
            JwtAlg::RS256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

/// What a key is for: a JWT signature algorithm or a PASETO v4 purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// JWT signing key for the given algorithm.
    Jwt(JwtAlg),
    /// PASETO `v4.public` (Ed25519) signing key.
    PasetoV4Public,
    /// PASETO `v4.local` (symmetric) key.
    PasetoV4Local,
}

/// Token formats produced and accepted by Rampart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenFormat {
    /// JWS compact serialization (RFC 7515 / RFC 9068).
    Jwt,
    /// PASETO `v4.public`.
    PasetoV4Public,
    /// PASETO `v4.local`.
    PasetoV4Local,
}

impl KeyKind {
    /// Stable name: `jwt-EdDSA`, `jwt-ES256`, `jwt-RS256`, `paseto-v4.public`
    /// or `paseto-v4.local`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Jwt(JwtAlg::EdDSA) => "jwt-EdDSA",
            KeyKind::Jwt(JwtAlg::ES256) => "jwt-ES256",
            KeyKind::Jwt(JwtAlg::RS256) => "jwt-RS256",
            KeyKind::PasetoV4Public => "paseto-v4.public",
            KeyKind::PasetoV4Local => "paseto-v4.local",
        }
    }

    /// Parses a name produced by [`KeyKind::as_str`].
    pub fn parse(s: &str) -> Result<KeyKind, TokenError> {
        match s {
            "jwt-EdDSA" => Ok(KeyKind::Jwt(JwtAlg::EdDSA)),
            "jwt-ES256" => Ok(KeyKind::Jwt(JwtAlg::ES256)),
            "jwt-RS256" => Ok(KeyKind::Jwt(JwtAlg::RS256)),
            "paseto-v4.public" => Ok(KeyKind::PasetoV4Public),
            "paseto-v4.local" => Ok(KeyKind::PasetoV4Local),
            _ => Err(TokenError::key("unknown key kind")),
        }
    }

    /// The token format this kind of key produces.
    pub fn token_format(self) -> TokenFormat {
        match self {
            KeyKind::Jwt(_) => TokenFormat::Jwt,
            KeyKind::PasetoV4Public => TokenFormat::PasetoV4Public,
            KeyKind::PasetoV4Local => TokenFormat::PasetoV4Local,
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Key material, already parsed. Never printed.
pub(crate) enum Material {
    Ed25519 {
        pkcs8: Zeroizing<Vec<u8>>,
        pair: Ed25519KeyPair,
    },
    Es256 {
        pkcs8: Zeroizing<Vec<u8>>,
        pair: EcdsaKeyPair,
    },
    Rs256 {
        pkcs8: Zeroizing<Vec<u8>>,
        pair: RsaKeyPair,
        n: Vec<u8>,
        e: Vec<u8>,
    },
    PasetoPublic {
        secret: AsymmetricSecretKey<V4>,
        public: AsymmetricPublicKey<V4>,
    },
    PasetoLocal {
        key: SymmetricKey<V4>,
    },
}

struct Inner {
    kind: KeyKind,
    kid: String,
    material: Material,
}

/// A private signing (or, for `v4.local`, symmetric) key with its kind and
/// deterministic key id.
///
/// `Debug` prints only the key id and kind; cloning is cheap (shared).
#[derive(Clone)]
pub struct SigningKey {
    inner: Arc<Inner>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.inner.kid)
            .field("kind", &self.inner.kind)
            .finish_non_exhaustive()
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn thumbprint(canonical_json: &str) -> String {
    b64::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        canonical_json.as_bytes(),
    ))
}

/// RFC 7638 thumbprint of an OKP Ed25519 public key.
pub(crate) fn okp_thumbprint(x: &[u8]) -> String {
    thumbprint(&format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        b64::encode(x)
    ))
}

/// RFC 7638 thumbprint of an EC P-256 public key (uncompressed point).
pub(crate) fn ec_thumbprint(point: &[u8]) -> Result<String, TokenError> {
    let (x, y) = ec_coordinates(point)?;
    Ok(thumbprint(&format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        b64::encode(x),
        b64::encode(y)
    )))
}

/// RFC 7638 thumbprint of an RSA public key.
pub(crate) fn rsa_thumbprint(n: &[u8], e: &[u8]) -> String {
    thumbprint(&format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        b64::encode(strip_leading_zeros(e)),
        b64::encode(strip_leading_zeros(n))
    ))
}

fn ec_coordinates(point: &[u8]) -> Result<(&[u8], &[u8]), TokenError> {
    match point {
        [4, rest @ ..] if rest.len() == 64 => Ok(rest.split_at(32)),
        _ => Err(TokenError::key("unexpected EC public key encoding")),
    }
}

impl SigningKey {
    fn from_material(kind: KeyKind, material: Material) -> Result<SigningKey, TokenError> {
        let kid = match &material {
            Material::Ed25519 { pair, .. } => okp_thumbprint(pair.public_key().as_ref()),
            Material::Es256 { pair, .. } => ec_thumbprint(pair.public_key().as_ref())?,
            Material::Rs256 { n, e, .. } => rsa_thumbprint(n, e),
            Material::PasetoPublic { public, .. } => paseto::public_key_id(public),
            Material::PasetoLocal { key } => paseto::local_key_id(key),
        };
        Ok(SigningKey {
            inner: Arc::new(Inner {
                kind,
                kid,
                material,
            }),
        })
    }

    /// Generates a fresh key of the given kind (RS256 keys are 2048-bit).
    pub fn generate(kind: KeyKind) -> Result<SigningKey, TokenError> {
        let rng = SystemRandom::new();
        let failed = || TokenError::key("key generation failed");
        match kind {
            KeyKind::Jwt(JwtAlg::EdDSA) => {
                let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| failed())?;
                Self::from_secret_bytes(kind, doc.as_ref())
            }
            KeyKind::Jwt(JwtAlg::ES256) => {
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| failed())?;
                Self::from_secret_bytes(kind, doc.as_ref())
            }
            KeyKind::Jwt(JwtAlg::RS256) => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| failed())?;
                let der = pair.as_der().map_err(|_| failed())?;
                Self::from_secret_bytes(kind, der.as_ref())
            }
            KeyKind::PasetoV4Public => {
                let mut secret = Zeroizing::new([0u8; 64]);
                aws_lc_rs::rand::fill(&mut secret[..32]).map_err(|_| failed())?;
                let pair =
                    Ed25519KeyPair::from_seed_unchecked(&secret[..32]).map_err(|_| failed())?;
                secret[32..].copy_from_slice(pair.public_key().as_ref());
                Self::from_secret_bytes(kind, &secret[..])
            }
            KeyKind::PasetoV4Local => {
                let mut key = Zeroizing::new([0u8; 32]);
                aws_lc_rs::rand::fill(&mut key[..]).map_err(|_| failed())?;
                Self::from_secret_bytes(kind, &key[..])
            }
        }
    }

    /// Imports a key from the bytes returned by [`SigningKey::secret_bytes`]:
    /// PKCS#8 DER for JWT keys, the 64-byte Ed25519 secret (seed || public
    /// key) for `PasetoV4Public`, 32 bytes for `PasetoV4Local`.
    ///
    /// RSA keys smaller than 2048 bits are rejected.
    pub fn from_secret_bytes(kind: KeyKind, secret: &[u8]) -> Result<SigningKey, TokenError> {
        let material = match kind {
            KeyKind::Jwt(JwtAlg::EdDSA) => Material::Ed25519 {
                pair: Ed25519KeyPair::from_pkcs8(secret)
                    .map_err(|_| TokenError::key("invalid Ed25519 PKCS#8 key"))?,
                pkcs8: Zeroizing::new(secret.to_vec()),
            },
            KeyKind::Jwt(JwtAlg::ES256) => Material::Es256 {
                pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, secret)
                    .map_err(|_| TokenError::key("invalid P-256 PKCS#8 key"))?,
                pkcs8: Zeroizing::new(secret.to_vec()),
            },
            KeyKind::Jwt(JwtAlg::RS256) => {
                let pair = RsaKeyPair::from_pkcs8(secret)
                    .map_err(|_| TokenError::key("invalid RSA PKCS#8 key"))?;
                let len = pair.public_modulus_len();
                if len < RSA_MIN_MODULUS_BYTES {
                    return Err(TokenError::key("RSA key smaller than 2048 bits"));
                }
                if len > RSA_MAX_MODULUS_BYTES {
                    return Err(TokenError::key("RSA key larger than 8192 bits"));
                }
                let comps = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                Material::Rs256 {
                    n: strip_leading_zeros(&comps.n).to_vec(),
                    e: strip_leading_zeros(&comps.e).to_vec(),
                    pair,
                    pkcs8: Zeroizing::new(secret.to_vec()),
                }
            }
            KeyKind::PasetoV4Public => {
                let secret = AsymmetricSecretKey::<V4>::from(secret)
                    .map_err(|_| TokenError::key("invalid PASETO v4 secret key"))?;
                let public = AsymmetricPublicKey::<V4>::try_from(&secret)
                    .map_err(|_| TokenError::key("invalid PASETO v4 secret key"))?;
                Material::PasetoPublic { secret, public }
            }
            KeyKind::PasetoV4Local => Material::PasetoLocal {
                key: SymmetricKey::<V4>::from(secret)
                    .map_err(|_| TokenError::key("invalid PASETO v4 local key"))?,
            },
        };
        Self::from_material(kind, material)
    }

    /// The secret key bytes, in the format accepted by
    /// [`SigningKey::from_secret_bytes`]. Zeroized on drop.
    pub fn secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        match &self.inner.material {
            Material::Ed25519 { pkcs8, .. }
            | Material::Es256 { pkcs8, .. }
            | Material::Rs256 { pkcs8, .. } => Zeroizing::new(pkcs8.to_vec()),
            Material::PasetoPublic { secret, .. } => Zeroizing::new(secret.as_bytes().to_vec()),
            Material::PasetoLocal { key } => Zeroizing::new(key.as_bytes().to_vec()),
        }
    }

    /// Deterministic key id: RFC 7638 JWK thumbprint (SHA-256, base64url)
    /// for JWT keys, PASERK `k4.pid.` / `k4.lid.` for PASETO keys.
    pub fn kid(&self) -> &str {
        &self.inner.kid
    }

    /// The kind of this key.
    pub fn kind(&self) -> KeyKind {
        self.inner.kind
    }

    pub(crate) fn material(&self) -> &Material {
        &self.inner.material
    }

    /// The public JWK (`kty`, key parameters, `kid`, `alg`, `use: sig`) of a
    /// JWT key; `None` for PASETO keys.
    pub fn public_jwk(&self) -> Option<serde_json::Value> {
        let kid = self.kid();
        match &self.inner.material {
            Material::Ed25519 { pair, .. } => Some(json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64::encode(pair.public_key().as_ref()),
                "kid": kid,
                "alg": "EdDSA",
                "use": "sig",
            })),
            Material::Es256 { pair, .. } => {
                let (x, y) = ec_coordinates(pair.public_key().as_ref()).ok()?;
                Some(json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": b64::encode(x),
                    "y": b64::encode(y),
                    "kid": kid,
                    "alg": "ES256",
                    "use": "sig",
                }))
            }
            Material::Rs256 { n, e, .. } => Some(json!({
                "kty": "RSA",
                "n": b64::encode(n),
                "e": b64::encode(e),
                "kid": kid,
                "alg": "RS256",
                "use": "sig",
            })),
            Material::PasetoPublic { .. } | Material::PasetoLocal { .. } => None,
        }
    }

    /// The PASERK `k4.public.` serialization of a `PasetoV4Public` key's
    /// public half; `None` for other kinds.
    pub fn public_paserk(&self) -> Option<String> {
        match &self.inner.material {
            Material::PasetoPublic { public, .. } => Some(paseto::public_key_paserk(public)),
            _ => None,
        }
    }

    /// The verification half of this key, pinned to its algorithm / format.
    pub(crate) fn verification_key(&self) -> crate::verify::VerifyKey {
        use crate::verify::VerifyKey;
        use jsonwebtoken::DecodingKey;
        match &self.inner.material {
            Material::Ed25519 { pair, .. } => VerifyKey::jwt(
                JwtAlg::EdDSA,
                DecodingKey::from_ed_der(pair.public_key().as_ref()),
            ),
            Material::Es256 { pair, .. } => VerifyKey::jwt(
                JwtAlg::ES256,
                DecodingKey::from_ec_der(pair.public_key().as_ref()),
            ),
            Material::Rs256 { n, e, .. } => {
                VerifyKey::jwt(JwtAlg::RS256, DecodingKey::from_rsa_raw_components(n, e))
            }
            Material::PasetoPublic { public, .. } => VerifyKey::PasetoPublic(public.clone()),
            Material::PasetoLocal { key } => VerifyKey::PasetoLocal(Arc::new(key.clone())),
        }
    }
}
