//! Shared by the gateway's integration tests.

use std::sync::Arc;

use rampart_guard::{Accepted, AuthError, Authenticator, Principal};

/// An authenticator that refuses every credential with one error.
pub struct Refuse(pub AuthError);

/// For routes that do not authenticate: every credential is invalid.
// Each test binary compiles this module; not all of them use every item.
#[allow(dead_code)]
pub const NO_AUTH: Refuse = Refuse(AuthError::Invalid);

#[async_trait::async_trait]
impl Authenticator for Refuse {
    async fn authenticate(
        &self,
        _: &str,
        _: &str,
        _: Accepted,
    ) -> Result<Arc<Principal>, AuthError> {
        Err(self.0.clone())
    }
}
