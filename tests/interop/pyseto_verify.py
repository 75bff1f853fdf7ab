"""pyseto (not written here) verifies Rampart's PASETO v4.public tokens with the key
published at /paserk.json, and fails on tampering and on a v4.local token.

Usage: pyseto_verify.py ISSUER CA_PEM PUBLIC_CLIENT_ID SECRET LOCAL_CLIENT_ID SECRET
"""
import json
import sys

import pyseto
import requests
from pyseto import Key

issuer, ca, pub_id, pub_secret, local_id, local_secret = sys.argv[1:7]


def token_for(cid, secret):
    r = requests.post(f"{issuer}/token", auth=(cid, secret), data={"grant_type": "client_credentials"},
                      verify=ca, timeout=10)
    r.raise_for_status()
    return r.json()["access_token"]


token = token_for(pub_id, pub_secret)
assert token.startswith("v4.public."), token
keys = requests.get(f"{issuer}/paserk.json", verify=ca, timeout=10).json()["keys"]
footer = pyseto.decode([Key.from_paserk(k["paserk"]) for k in keys], token, deserializer=json).footer
if isinstance(footer, (bytes, str)):
    footer = json.loads(footer)
entry = next(k for k in keys if k["kid"] == footer["kid"])
key = Key.from_paserk(entry["paserk"])
assert key.to_paserk_id() == entry["kid"], "kid is the PASERK id of the key"
decoded = pyseto.decode(key, token, deserializer=json)
claims = decoded.payload
assert claims["iss"] == issuer and claims["client_id"] == pub_id, claims
assert claims["aud"] == "https://api.example.com/orders", claims

tampered = token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")
try:
    pyseto.decode(key, tampered, deserializer=json)
    raise SystemExit("FAIL: tampered token accepted")
except (pyseto.VerifyError, pyseto.DecryptError, ValueError):
    pass

local = token_for(local_id, local_secret)
assert local.startswith("v4.local."), local
try:
    pyseto.decode(key, local, deserializer=json)
    raise SystemExit("FAIL: v4.local token accepted with a public key")
except (pyseto.VerifyError, pyseto.DecryptError, ValueError):
    pass
print(f"OK pyseto verified kid={footer['kid']}")
