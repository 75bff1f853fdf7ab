//! Issuing access tokens.

use serde_json::json;

use crate::claims::AccessClaims;
use crate::keys::{Material, SigningKey};
use crate::verify::MAX_TOKEN_BYTES;
use crate::{TokenError, jwt, paseto};

/// Issues an access token with `key`, in the key's format.
///
/// JWT (RFC 9068): header `{"alg","typ":"at+jwt","kid"}`, numeric dates.
/// PASETO v4: RFC 3339 dates, footer `{"kid":"k4.pid..."|"k4.lid..."}`,
/// empty implicit assertion. Tokens larger than [`MAX_TOKEN_BYTES`] are
/// refused (`TooLarge`) since they could not be verified.
pub fn issue(key: &SigningKey, claims: &AccessClaims) -> Result<String, TokenError> {
    for (value, name) in [
        (&claims.iss, "iss"),
        (&claims.sub, "sub"),
        (&claims.jti, "jti"),
        (&claims.client_id, "client_id"),
    ] {
        if value.is_empty() {
            return Err(TokenError::MissingClaim(name));
        }
    }
    let token = match key.material() {
        Material::Ed25519 { .. } | Material::Es256 { .. } | Material::Rs256 { .. } => {
            let alg = jwt::key_alg(key).ok_or(TokenError::AlgorithmMismatch)?;
            let header = json!({ "alg": alg.as_str(), "typ": "at+jwt", "kid": key.kid() });
            let header = serde_json::to_vec(&header).map_err(|_| TokenError::Malformed)?;
            jwt::sign(key, &header, &claims.to_jwt_payload()?)?
        }
        Material::PasetoPublic { secret, .. } => {
            paseto::sign_public(secret, &claims.to_paseto_payload()?, &footer(key)?, b"")?
        }
        Material::PasetoLocal { key: k } => {
            paseto::encrypt_local(k, &claims.to_paseto_payload()?, &footer(key)?, b"")?
        }
    };
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    Ok(token)
}

fn footer(key: &SigningKey) -> Result<Vec<u8>, TokenError> {
    serde_json::to_vec(&json!({ "kid": key.kid() })).map_err(|_| TokenError::Malformed)
}
