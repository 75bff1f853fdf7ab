//! Shared by the gateway's integration tests.

use rampart_guard::{Accepted, AuthError, Authenticator, Principal};

/// An authenticator that refuses every credential, for routes that do not authenticate.
pub struct NoAuth;

#[async_trait::async_trait]
impl Authenticator for NoAuth {
    async fn authenticate(
        &self,
        _: &str,
        _: &str,
        _: Accepted,
    ) -> Result<std::sync::Arc<Principal>, AuthError> {
        Err(AuthError::Invalid)
    }
}
