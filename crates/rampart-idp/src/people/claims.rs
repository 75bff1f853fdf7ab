//! Claims about a user for ID tokens and the userinfo endpoint, chosen by scope
//! (OpenID Connect Core §5.4). Roles and groups are always included when present.

use serde_json::{Map, Value, json};

use crate::users::User;

/// The user claims that the scopes release.
pub fn user_claims(user: &User, scopes: &[String]) -> Map<String, Value> {
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let mut claims = Map::new();
    if has("profile") {
        claims.insert("preferred_username".into(), json!(user.record.username));
        if let Some(name) = &user.profile.name {
            claims.insert("name".into(), json!(name));
        }
        claims.insert("updated_at".into(), json!(user.record.updated_at));
    }
    if has("email") {
        claims.insert("email".into(), json!(user.profile.email));
        claims.insert("email_verified".into(), json!(user.profile.email_verified));
    }
    if !user.record.roles.is_empty() {
        claims.insert("roles".into(), json!(user.record.roles));
    }
    if !user.record.groups.is_empty() {
        claims.insert("groups".into(), json!(user.record.groups));
    }
    claims
}
