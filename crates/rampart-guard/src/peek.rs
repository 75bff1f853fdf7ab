//! Reading the unverified `iss` of a token, only to choose which issuer's keys verify it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_token::TokenFormat;
use serde::Deserialize;

use crate::AuthError;
use crate::config::MAX_URL_LEN;

/// Length of an Ed25519 signature at the end of a `v4.public` body.
const ED25519_SIG_LEN: usize = 64;

/// The `iss` claim of a JWT or `v4.public` token, **unverified**. Fails with `Malformed` when
/// the payload cannot be decoded or has no string `iss` of a sane length.
pub(crate) fn unverified_issuer(token: &str, format: TokenFormat) -> Result<String, AuthError> {
    let payload_b64 = match format {
        TokenFormat::Jwt => token.split('.').nth(1),
        TokenFormat::PasetoV4Public => token
            .strip_prefix("v4.public.")
            .and_then(|rest| rest.split('.').next()),
        TokenFormat::PasetoV4Local => None,
    }
    .ok_or(AuthError::Malformed)?;
    let decoded = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| AuthError::Malformed)?;
    let message = match format {
        TokenFormat::Jwt => &decoded[..],
        _ => {
            let len = decoded
                .len()
                .checked_sub(ED25519_SIG_LEN)
                .ok_or(AuthError::Malformed)?;
            &decoded[..len]
        }
    };
    #[derive(Deserialize)]
    struct Peek {
        iss: String,
    }
    let peek: Peek = serde_json::from_slice(message).map_err(|_| AuthError::Malformed)?;
    if peek.iss.is_empty() || peek.iss.len() > MAX_URL_LEN {
        return Err(AuthError::Malformed);
    }
    Ok(peek.iss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_and_paseto() {
        let p = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://i","sub":"x"}"#);
        let jwt = format!("eyJhbGciOiJub25lIn0.{p}.");
        assert_eq!(
            unverified_issuer(&jwt, TokenFormat::Jwt).as_deref(),
            Ok("https://i")
        );
        let mut body = br#"{"iss":"https://p"}"#.to_vec();
        body.extend_from_slice(&[0u8; 64]);
        let pas = format!("v4.public.{}.e30", URL_SAFE_NO_PAD.encode(&body));
        assert_eq!(
            unverified_issuer(&pas, TokenFormat::PasetoV4Public).as_deref(),
            Ok("https://p")
        );
        let short = format!("v4.public.{}", URL_SAFE_NO_PAD.encode([1u8; 10]));
        assert_eq!(
            unverified_issuer(&short, TokenFormat::PasetoV4Public),
            Err(AuthError::Malformed)
        );
        let no_iss = format!("a.{}.b", URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#));
        assert_eq!(
            unverified_issuer(&no_iss, TokenFormat::Jwt),
            Err(AuthError::Malformed)
        );
        let dup = format!(
            "a.{}.b",
            URL_SAFE_NO_PAD.encode(br#"{"iss":"a","iss":"b"}"#)
        );
        assert_eq!(
            unverified_issuer(&dup, TokenFormat::Jwt),
            Err(AuthError::Malformed)
        );
    }
}
