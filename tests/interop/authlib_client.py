"""Authlib (not written here) as an OAuth 2.0 client of Rampart: client credentials with
client_secret_basic, client_secret_post and private_key_jwt (EdDSA assertion signed by
Authlib), then introspection and revocation through Authlib's own helpers.

Usage: authlib_client.py ISSUER CA_PEM RAMPART_BIN DATA_DIR
"""
import json
import os
import subprocess
import sys
import tempfile

from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey
from authlib.oauth2.rfc7523 import PrivateKeyJWT

issuer, ca, rampart, data_dir = sys.argv[1:5]
# Authlib's token requests pass verify=True explicitly; requests then trusts this bundle.
os.environ["REQUESTS_CA_BUNDLE"] = ca
token_url = f"{issuer}/token"
meta = OAuth2Session().get(f"{issuer}/.well-known/oauth-authorization-server", verify=ca, withhold_token=True).json()
assert meta["token_endpoint"] == token_url, meta


def create_client(*extra):
    out = subprocess.run([rampart, "client", "create", "--data-dir", data_dir, "--json", "--name", "authlib",
                          "--scope", "orders:read", "--audience", "https://api.example.com/orders", *extra],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


tokens = []
for method in ["client_secret_basic", "client_secret_post"]:
    c = create_client("--auth-method", method)
    session = OAuth2Session(c["client_id"], c["client_secret"], scope="orders:read",
                            token_endpoint_auth_method=method)
    session.verify = ca
    token = session.fetch_token(token_url, grant_type="client_credentials")
    assert token["token_type"] == "Bearer" and token["scope"] == "orders:read", token
    tokens.append((session, token["access_token"]))

# private_key_jwt: Authlib signs the assertion with its own Ed25519 key.
key = JsonWebKey.generate_key("OKP", "Ed25519", is_private=True)
public = key.as_dict(is_private=False)
public.update({"kid": "authlib-key-1", "alg": "EdDSA", "use": "sig"})
with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
    json.dump({"keys": [public]}, f)
    jwks_file = f.name
c = create_client("--auth-method", "private_key_jwt", "--jwks-file", jwks_file)
private = key.as_dict(is_private=True)
private["kid"] = "authlib-key-1"
session = OAuth2Session(c["client_id"], private, scope="orders:read",
                        token_endpoint_auth_method=PrivateKeyJWT(token_url, alg="EdDSA"))
session.verify = ca
token = session.fetch_token(token_url, grant_type="client_credentials")
assert token["token_type"] == "Bearer", token

# Introspection and revocation with Authlib's helpers (client_secret_basic).
session, access = tokens[0]
result = session.introspect_token(f"{issuer}/introspect", token=access).json()
assert result["active"] is True, result
revoked = session.revoke_token(f"{issuer}/revoke", token=access)
assert revoked.status_code == 200, revoked.text
result = session.introspect_token(f"{issuer}/introspect", token=access).json()
assert result == {"active": False}, result
print("OK authlib: basic, post, private_key_jwt, introspect, revoke")
