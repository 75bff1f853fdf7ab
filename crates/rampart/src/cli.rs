//! `rampart client ...`, `rampart key ...` and `rampart api-key ...`: the same operations as
//! the admin API,
//! working directly on the data directory (also while `serve` runs on it: the server
//! notices the change within its poll interval).

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use rampart_crypto::ExposeSecret;
use rampart_idp::api_keys::NewApiKey;
use rampart_idp::clients::{FlowSettings, NewClient};
use rampart_idp::endpoints::admin::{ApiKeyView, ClientView, key_views, parse_jwt_alg};
use rampart_idp::keys::KeyFamily;
use rampart_idp::{ApiKeyRegistry, ClientRegistry, KeyManager, unix_now};
use rampart_store::{ClientAuthMethod, ClientTokenFormat};

use crate::DataArgs;
use crate::serve::{DataDir, open_data_dir};

/// Token formats on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TokenFormatArg {
    /// JWT (RFC 9068).
    Jwt,
    /// PASETO v4.public.
    PasetoPublic,
    /// PASETO v4.local (only the server can read it; gateways introspect it).
    PasetoLocal,
}

/// Client authentication methods on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum AuthMethodArg {
    /// HTTP Basic with client id and secret.
    ClientSecretBasic,
    /// Client id and secret in the form body.
    ClientSecretPost,
    /// A JWT signed with the client's private key (RFC 7523).
    PrivateKeyJwt,
}

/// Grant types on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum GrantTypeArg {
    /// Service to service, with the client's own credentials.
    ClientCredentials,
    /// People signing in through the browser (with PKCE).
    AuthorizationCode,
    /// Refresh tokens (needs authorization_code).
    RefreshToken,
}

impl GrantTypeArg {
    fn as_str(self) -> &'static str {
        match self {
            GrantTypeArg::ClientCredentials => "client_credentials",
            GrantTypeArg::AuthorizationCode => "authorization_code",
            GrantTypeArg::RefreshToken => "refresh_token",
        }
    }
}

/// `rampart client ...`.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Register a client; prints its id and secret (the secret only this once).
    Create {
        #[command(flatten)]
        data: DataArgs,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Space-separated scopes the client may request.
        #[arg(long, default_value = "")]
        scope: String,
        /// An audience (resource URI) the client may get tokens for; repeatable. Required
        /// with client_credentials.
        #[arg(long = "audience")]
        audiences: Vec<String>,
        /// Access-token format.
        #[arg(long, value_enum, default_value = "jwt")]
        token_format: TokenFormatArg,
        /// Token endpoint authentication method [default: client_secret_basic].
        #[arg(long, value_enum)]
        auth_method: Option<AuthMethodArg>,
        /// The client's public JWKS, for private_key_jwt.
        #[arg(long, value_name = "F")]
        jwks_file: Option<PathBuf>,
        /// A grant type the client may use; repeatable [default: client_credentials].
        #[arg(long = "grant-type", value_enum, value_name = "G")]
        grant_types: Vec<GrantTypeArg>,
        /// A redirect URI for the authorization code flow (exact match); repeatable.
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// A public client (browser or native app): auth method none, no secret, PKCE only.
        #[arg(long, conflicts_with_all = ["auth_method", "jwks_file"])]
        public: bool,
        /// A first-party client: its users are not asked for consent.
        #[arg(long)]
        first_party: bool,
        /// Every sign-in for this client needs a second factor.
        #[arg(long)]
        require_mfa: bool,
        /// Authorization requests must be pushed first (PAR, RFC 9126).
        #[arg(long)]
        require_par: bool,
        /// Access-token lifetime in seconds.
        #[arg(long)]
        ttl: Option<i64>,
        /// A chosen client id (default: random).
        #[arg(long)]
        client_id: Option<String>,
        /// Print a JSON object with client_id and client_secret.
        #[arg(long)]
        json: bool,
    },
    /// List clients.
    List {
        #[command(flatten)]
        data: DataArgs,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Show one client.
    Show {
        #[command(flatten)]
        data: DataArgs,
        /// The client id.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Delete a client; its tokens stop being issued at once.
    Delete {
        #[command(flatten)]
        data: DataArgs,
        /// The client id.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Replace a client's secret; prints the new one once.
    RotateSecret {
        #[command(flatten)]
        data: DataArgs,
        /// The client id.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// `rampart key ...`.
#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Rotate signing keys: next becomes active, active becomes retired.
    Rotate {
        #[command(flatten)]
        data: DataArgs,
        /// Only this family: jwt, id-token, paseto-public or paseto-local.
        #[arg(long)]
        family: Option<String>,
        /// Algorithm of the new JWT or ID-token key: EdDSA, ES256 or RS256.
        #[arg(long)]
        alg: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// List keys and their states.
    List {
        #[command(flatten)]
        data: DataArgs,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// `rampart api-key ...`.
#[derive(Subcommand, Debug)]
pub enum ApiKeyCommand {
    /// Create an API key; prints its id and the key (the key only this once).
    Create {
        #[command(flatten)]
        data: DataArgs,
        /// Display name.
        #[arg(long)]
        name: String,
        /// The subject the key acts for (reported as `sub` and `client_id`).
        #[arg(long)]
        owner: String,
        /// Space-separated scopes granted to the key.
        #[arg(long, default_value = "")]
        scope: String,
        /// An audience (resource URI) the key is valid for; repeatable.
        #[arg(long = "audience", required = true)]
        audiences: Vec<String>,
        /// Lifetime in seconds (default: no expiry).
        #[arg(long)]
        ttl: Option<i64>,
        /// Print a JSON object with key_id and api_key.
        #[arg(long)]
        json: bool,
    },
    /// List API keys (never the keys themselves).
    List {
        #[command(flatten)]
        data: DataArgs,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API key; a running server stops accepting it within its poll interval.
    Revoke {
        #[command(flatten)]
        data: DataArgs,
        /// The key id (not the key).
        #[arg(allow_hyphen_values = true)]
        key_id: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Delete an API key.
    Delete {
        #[command(flatten)]
        data: DataArgs,
        /// The key id (not the key).
        #[arg(allow_hyphen_values = true)]
        key_id: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

fn registry(data: &DataDir) -> ClientRegistry {
    let config = data.settings.idp_config(String::new());
    ClientRegistry::new(data.store.clone(), data.master.secret_hasher(), &config)
}

pub(crate) fn print_json(value: &impl serde::Serialize) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}

fn print_client(view: &ClientView) {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    println!("client_id:     {}", view.client_id);
    println!("name:          {}", view.name);
    println!("auth_method:   {}", view.auth_method.as_str());
    println!("scope:         {}", view.scopes.join(" "));
    println!("audiences:     {}", view.audiences.join(" "));
    println!("token_format:  {}", view.token_format.as_str());
    println!("ttl:           {} s", view.access_token_ttl_secs);
    println!("grant_types:   {}", view.grant_types.join(" "));
    println!("redirect_uris: {}", view.redirect_uris.join(" "));
    println!("first_party:   {}", yes_no(view.first_party));
    println!("require_mfa:   {}", yes_no(view.require_mfa));
    println!("require_par:   {}", yes_no(view.require_par));
}

/// Runs a client command.
pub async fn client(command: ClientCommand) -> Result<(), String> {
    match command {
        ClientCommand::Create {
            data,
            name,
            scope,
            audiences,
            token_format,
            auth_method,
            jwks_file,
            grant_types,
            redirect_uris,
            public,
            first_party,
            require_mfa,
            require_par,
            ttl,
            client_id,
            json,
        } => {
            let dir = open_data_dir(&data).await?;
            let jwks = match &jwks_file {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|e| format!("--jwks-file {}: {e}", path.display()))?,
                ),
                None => None,
            };
            let new = NewClient {
                client_id,
                name,
                scopes: vec![scope],
                audiences,
                token_format: match token_format {
                    TokenFormatArg::Jwt => ClientTokenFormat::Jwt,
                    TokenFormatArg::PasetoPublic => ClientTokenFormat::PasetoPublic,
                    TokenFormatArg::PasetoLocal => ClientTokenFormat::PasetoLocal,
                },
                auth_method: match (public, auth_method) {
                    (true, _) => ClientAuthMethod::None,
                    (false, None | Some(AuthMethodArg::ClientSecretBasic)) => {
                        ClientAuthMethod::ClientSecretBasic
                    }
                    (false, Some(AuthMethodArg::ClientSecretPost)) => {
                        ClientAuthMethod::ClientSecretPost
                    }
                    (false, Some(AuthMethodArg::PrivateKeyJwt)) => ClientAuthMethod::PrivateKeyJwt,
                },
                jwks,
                ttl_secs: ttl,
                flows: FlowSettings {
                    grant_types: grant_types.iter().map(|g| g.as_str().to_owned()).collect(),
                    redirect_uris,
                    first_party,
                    require_mfa,
                    require_par,
                },
            };
            let created = registry(&dir)
                .create(new, unix_now())
                .await
                .map_err(|e| e.to_string())?;
            let secret = created
                .secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned());
            if json {
                print_json(&serde_json::json!({
                    "client_id": created.record.client_id,
                    "client_secret": secret,
                    "token_endpoint_auth_method": created.record.auth_method,
                    "grant_types": created.record.grant_types,
                }))?;
            } else {
                println!("client_id:     {}", created.record.client_id);
                if let Some(secret) = secret {
                    println!("client_secret: {secret}");
                    println!("(the secret is shown only now; it is stored as a keyed hash)");
                } else if created.record.auth_method == ClientAuthMethod::None {
                    println!("(a public client: no secret; it must use PKCE)");
                }
            }
            dir.store.close().await;
            Ok(())
        }
        ClientCommand::List { data, json } => {
            let dir = open_data_dir(&data).await?;
            let clients = registry(&dir).list().await.map_err(|e| e.to_string())?;
            let views: Vec<ClientView> = clients.iter().map(ClientView::from).collect();
            if json {
                print_json(&views)?;
            } else {
                for v in &views {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        v.client_id,
                        v.name,
                        v.token_format.as_str(),
                        v.scopes.join(" "),
                        v.auth_method.as_str(),
                        v.grant_types.join(",")
                    );
                }
            }
            dir.store.close().await;
            Ok(())
        }
        ClientCommand::Show {
            data,
            client_id,
            json,
        } => {
            let dir = open_data_dir(&data).await?;
            let record = registry(&dir)
                .get(&client_id)
                .await
                .map_err(|e| e.to_string())?;
            let view = ClientView::from(&record);
            if json {
                print_json(&view)?;
            } else {
                print_client(&view);
            }
            dir.store.close().await;
            Ok(())
        }
        ClientCommand::Delete { data, client_id } => {
            let dir = open_data_dir(&data).await?;
            registry(&dir)
                .delete(&client_id)
                .await
                .map_err(|e| e.to_string())?;
            println!("deleted {client_id}");
            dir.store.close().await;
            Ok(())
        }
        ClientCommand::RotateSecret {
            data,
            client_id,
            json,
        } => {
            let dir = open_data_dir(&data).await?;
            let secret = registry(&dir)
                .rotate_secret(&client_id, unix_now())
                .await
                .map_err(|e| e.to_string())?;
            if json {
                print_json(&serde_json::json!({
                    "client_id": client_id,
                    "client_secret": secret.expose_secret(),
                }))?;
            } else {
                println!("client_id:     {client_id}");
                println!("client_secret: {}", secret.expose_secret());
            }
            dir.store.close().await;
            Ok(())
        }
    }
}

/// Runs a key command.
pub async fn key(command: KeyCommand) -> Result<(), String> {
    match command {
        KeyCommand::Rotate {
            data,
            family,
            alg,
            json,
        } => {
            let dir = open_data_dir(&data).await?;
            let families = match family.as_deref() {
                None => KeyFamily::ALL.to_vec(),
                Some(name) => vec![
                    KeyFamily::parse(name)
                        .ok_or("--family: one of jwt, id-token, paseto-public, paseto-local")?,
                ],
            };
            let alg = match alg.as_deref() {
                None => None,
                Some(name) => Some(parse_jwt_alg(name).ok_or("--alg: one of EdDSA, ES256, RS256")?),
            };
            let manager = open_keys(&dir).await?;
            let rotations = manager
                .rotate(&families, alg, unix_now())
                .await
                .map_err(|e| e.to_string())?;
            if json {
                print_json(&rotations)?;
            } else {
                for r in rotations {
                    println!(
                        "{}: active {} (retired {}), next {}",
                        r.family,
                        r.activated,
                        r.retired.as_deref().unwrap_or("-"),
                        r.next
                    );
                }
            }
            dir.store.close().await;
            Ok(())
        }
        KeyCommand::List { data, json } => {
            let dir = open_data_dir(&data).await?;
            let manager = open_keys(&dir).await?;
            let views = key_views(&manager);
            if json {
                print_json(&views)?;
            } else {
                for v in views {
                    println!("{}\t{}\t{}\t{}", v.family, v.state, v.kind, v.kid);
                }
            }
            dir.store.close().await;
            Ok(())
        }
    }
}

async fn open_keys(dir: &DataDir) -> Result<KeyManager, String> {
    let config = dir.settings.idp_config(String::new());
    KeyManager::load(
        dir.store.clone(),
        dir.master.envelope(),
        &config,
        unix_now(),
    )
    .await
    .map_err(|e| e.to_string())
}

fn api_key_registry(data: &DataDir) -> ApiKeyRegistry {
    ApiKeyRegistry::new(data.store.clone(), data.master.secret_hasher())
}

fn print_api_key(view: &ApiKeyView) {
    let time = |t: Option<i64>| t.map_or_else(|| "-".to_owned(), |t| t.to_string());
    println!("key_id:     {}", view.key_id);
    println!("name:       {}", view.name);
    println!("owner:      {}", view.owner);
    println!("scope:      {}", view.scopes.join(" "));
    println!("audiences:  {}", view.audiences.join(" "));
    println!("created_at: {}", view.created_at);
    println!("expires_at: {}", time(view.expires_at));
    println!("revoked_at: {}", time(view.revoked_at));
    println!("status:     {}", view.status);
}

/// Runs an API key command.
pub async fn api_key(command: ApiKeyCommand) -> Result<(), String> {
    match command {
        ApiKeyCommand::Create {
            data,
            name,
            owner,
            scope,
            audiences,
            ttl,
            json,
        } => {
            let dir = open_data_dir(&data).await?;
            let new = NewApiKey {
                name,
                owner,
                scopes: vec![scope],
                audiences,
                ttl_secs: ttl,
            };
            let created = api_key_registry(&dir)
                .create(new, unix_now())
                .await
                .map_err(|e| e.to_string())?;
            if json {
                print_json(&serde_json::json!({
                    "key_id": created.record.key_id,
                    "api_key": created.key.expose_secret(),
                }))?;
            } else {
                println!("key_id:  {}", created.record.key_id);
                println!("api_key: {}", created.key.expose_secret());
                println!("(the key is shown only now; it is stored as a keyed hash)");
            }
            dir.store.close().await;
            Ok(())
        }
        ApiKeyCommand::List { data, json } => {
            let dir = open_data_dir(&data).await?;
            let keys = api_key_registry(&dir)
                .list()
                .await
                .map_err(|e| e.to_string())?;
            let now = unix_now();
            let views: Vec<ApiKeyView> = keys.iter().map(|k| ApiKeyView::new(k, now)).collect();
            if json {
                print_json(&views)?;
            } else {
                for v in &views {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        v.key_id,
                        v.status,
                        v.owner,
                        v.name,
                        v.scopes.join(" ")
                    );
                }
            }
            dir.store.close().await;
            Ok(())
        }
        ApiKeyCommand::Revoke { data, key_id, json } => {
            let dir = open_data_dir(&data).await?;
            let now = unix_now();
            let record = api_key_registry(&dir)
                .revoke(&key_id, now)
                .await
                .map_err(|e| api_key_error(e, &key_id))?;
            let view = ApiKeyView::new(&record, now);
            if json {
                print_json(&view)?;
            } else {
                print_api_key(&view);
            }
            dir.store.close().await;
            Ok(())
        }
        ApiKeyCommand::Delete { data, key_id, json } => {
            let dir = open_data_dir(&data).await?;
            api_key_registry(&dir)
                .delete(&key_id)
                .await
                .map_err(|e| api_key_error(e, &key_id))?;
            if json {
                print_json(&serde_json::json!({ "deleted": key_id }))?;
            } else {
                println!("deleted {key_id}");
            }
            dir.store.close().await;
            Ok(())
        }
    }
}

/// "no such API key", with a hint when the key itself was passed instead of its id (the
/// key is not echoed).
fn api_key_error(e: rampart_idp::clients::RegistryError, key_id: &str) -> String {
    match e {
        rampart_idp::clients::RegistryError::NotFound
            if key_id.starts_with(rampart_idp::api_keys::API_KEY_PREFIX) =>
        {
            "no such API key (pass the key_id, not the key)".to_owned()
        }
        rampart_idp::clients::RegistryError::NotFound => "no such API key".to_owned(),
        other => other.to_string(),
    }
}
