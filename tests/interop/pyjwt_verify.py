"""PyJWT (not written here) verifies Rampart's JWT access tokens from the published JWKS.

Usage: pyjwt_verify.py ISSUER CA_PEM CLIENT_ID CLIENT_SECRET AUDIENCE
"""
import sys

import jwt
import requests

issuer, ca, client_id, secret, audience = sys.argv[1:6]

resp = requests.post(f"{issuer}/token", auth=(client_id, secret),
                     data={"grant_type": "client_credentials", "resource": audience}, verify=ca, timeout=10)
resp.raise_for_status()
token = resp.json()["access_token"]

jwks = requests.get(f"{issuer}/jwks.json", verify=ca, timeout=10).json()
keyset = jwt.PyJWKSet.from_dict(jwks)
header = jwt.get_unverified_header(token)
assert header["typ"] == "at+jwt", header
key = next(k for k in keyset.keys if k.key_id == header["kid"])
claims = jwt.decode(token, key=key.key, algorithms=[key.algorithm_name], audience=audience, issuer=issuer,
                    options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]})
assert claims["client_id"] == client_id, claims
assert claims["sub"] == client_id, claims

# Negative cases PyJWT must reject too.
try:
    jwt.decode(token, key=key.key, algorithms=[key.algorithm_name], audience="https://other.example", issuer=issuer)
    raise SystemExit("FAIL: wrong audience accepted")
except jwt.InvalidAudienceError:
    pass
head, payload, sig = token.split(".")
tampered = ".".join([head, payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB"), sig])
try:
    jwt.decode(tampered, key=key.key, algorithms=[key.algorithm_name], audience=audience, issuer=issuer)
    raise SystemExit("FAIL: tampered token accepted")
except (jwt.InvalidSignatureError, jwt.DecodeError):
    pass

print(f"OK pyjwt verified alg={key.algorithm_name} kid={header['kid']}")
