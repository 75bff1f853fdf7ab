"""Authlib (not written here) as an OpenID Connect relying party of Rampart: the authorization
code flow for a confidential, third-party client (client_secret_basic, PKCE S256), with
requests.Session playing the browser (cookies kept, every redirect followed by hand, forms read
with html.parser), the consent page allowed, the ID token verified with authlib.jose against
the published JWKS (iss, aud, nonce, at_hash, exp, iat), userinfo, refresh-token rotation, and
RP-initiated logout through the end_session_endpoint's confirmation form.

Usage: authlib_code_flow.py ISSUER CA_PEM CLIENT_ID REDIRECT_URI USERNAME
The client secret comes from the environment (RP_CLIENT_SECRET), the password from the first
line of stdin. On success stdout is one JSON line; any failure raises (non-zero exit).
"""
import json
import os
import sys
import time
import warnings
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, JsonWebToken
from authlib.jose.errors import JoseError
from authlib.integrations.base_client import OAuthError
from authlib.oidc.core import CodeIDToken

warnings.simplefilter("ignore", DeprecationWarning)  # authlib.jose points to joserfc

issuer, ca, client_id, redirect_uri, username = sys.argv[1:6]
client_secret = os.environ["RP_CLIENT_SECRET"]
password = sys.stdin.readline().rstrip("\r\n")
assert password, "no password on stdin"
# requests lets REQUESTS_CA_BUNDLE override a session's verify; every call below passes
# verify=ca, and the variable is pointed at the same CA so nothing falls back to the system store.
os.environ["REQUESTS_CA_BUNDLE"] = ca
os.environ["CURL_CA_BUNDLE"] = ca
issuer_origin = "{0.scheme}://{0.netloc}".format(urlsplit(issuer))


def check(cond, what, detail=""):
    if not cond:
        raise SystemExit(f"authlib_code_flow: FAIL: {what} {detail}")


# --- discovery -------------------------------------------------------------------------
meta = requests.get(f"{issuer}/.well-known/openid-configuration", verify=ca, timeout=20).json()
check(meta["issuer"] == issuer, "issuer in discovery", meta["issuer"])
for field in ["authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
              "end_session_endpoint"]:
    check(meta.get(field, "").startswith(issuer), f"discovery {field}", meta.get(field))
check("code" in meta["response_types_supported"], "response_types_supported", meta)
check("S256" in meta["code_challenge_methods_supported"], "S256 supported", meta)
check("client_secret_basic" in meta["token_endpoint_auth_methods_supported"], "basic", meta)
check(meta.get("authorization_response_iss_parameter_supported") is True, "RFC 9207 flag", meta)
id_token_algs = meta["id_token_signing_alg_values_supported"]
check(id_token_algs and "none" not in id_token_algs, "id_token algs", id_token_algs)


# --- the browser -----------------------------------------------------------------------
class Forms(HTMLParser):
    """Every <form> of a page: method, action, inputs (name, type, value) and named submit
    buttons (name, value)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self._current = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._current = {"method": a.get("method", "get").lower(), "action": a.get("action", ""),
                             "inputs": [], "buttons": []}
            self.forms.append(self._current)
        elif self._current is not None and tag == "input" and "name" in a:
            self._current["inputs"].append((a["name"], a.get("type", "text").lower(), a.get("value", "")))
        elif (self._current is not None and tag == "button" and "name" in a
              and a.get("type", "submit").lower() == "submit"):
            self._current["buttons"].append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def forms_of(html):
    parser = Forms()
    parser.feed(html)
    parser.close()
    return parser.forms


def hidden(form):
    return {name: value for name, kind, value in form["inputs"] if kind == "hidden"}


browser = requests.Session()
browser.verify = ca
browser.headers["User-Agent"] = "authlib-code-flow-interop"


def get(url):
    return browser.get(url, allow_redirects=False, verify=ca, timeout=20)


def post_form(page, form, fields):
    target = urljoin(page.url, form["action"] or page.url)
    check(target.startswith(issuer_origin + "/"), "form posts off the issuer", target)
    return browser.post(target, data=fields, allow_redirects=False, verify=ca, timeout=20,
                        headers={"Origin": issuer_origin})


def only_form(page, predicate, what):
    found = [f for f in forms_of(page.text) if f["method"] == "post" and predicate(f)]
    check(len(found) == 1, f"one {what} form on {page.url}", page.text)
    return found[0]


def drive(start_url, expect_consent):
    """Follows the browser from start_url to the redirect back to the client; returns that
    URL and the pages seen."""
    seen = []
    consented = False
    page = get(start_url)
    for _ in range(10):
        seen.append(f"{page.status_code} {urlsplit(page.url).path}")
        if page.status_code in (302, 303):
            check(page.status_code == 303, "303 See Other after a form post or redirect", page.url)
            nxt = urljoin(page.url, page.headers["Location"])
            if nxt.split("?")[0] == redirect_uri:
                check(consented == expect_consent, "consent page shown", seen)
                return nxt, seen
            check(nxt.startswith(issuer_origin + "/"), "redirect stays on the issuer", nxt)
            page = get(nxt)
        elif page.status_code == 200:
            kinds = [(n, k) for f in forms_of(page.text) for n, k, _ in f["inputs"]]
            if ("password", "password") in kinds:
                form = only_form(page, lambda f: any(n == "password" for n, _, _ in f["inputs"]), "sign-in")
                fields = hidden(form)
                check(fields.get("request") and fields.get("csrf_token"), "login form hidden fields", fields)
                fields.update(username=username, password=password)
                page = post_form(page, form, fields)
            elif any(("decision", "allow") in f["buttons"] for f in forms_of(page.text)):
                form = only_form(page, lambda f: ("decision", "allow") in f["buttons"], "consent")
                fields = hidden(form)
                check(fields.get("request") and fields.get("csrf_token"), "consent hidden fields", fields)
                fields["decision"] = "allow"
                consented = True
                page = post_form(page, form, fields)
            else:
                check(False, f"a sign-in or consent form at {page.url}", page.text)
        else:
            check(False, f"unexpected {page.status_code} at {page.url}", page.text)
    check(False, "too many steps", seen)


# --- the relying party -----------------------------------------------------------------
client = OAuth2Session(client_id, client_secret, scope="openid profile email",
                       redirect_uri=redirect_uri, code_challenge_method="S256",
                       token_endpoint_auth_method="client_secret_basic")
client.verify = ca
code_verifier = generate_token(48)
nonce = generate_token(20)
auth_url, state = client.create_authorization_url(meta["authorization_endpoint"],
                                                  code_verifier=code_verifier, nonce=nonce)
started = int(time.time())
back, seen = drive(auth_url, expect_consent=True)
params = parse_qs(urlsplit(back).query)
check("error" not in params, "authorization error", back)
check(params.get("state") == [state], "state round trip", back)
check(params.get("iss") == [issuer], "iss in the authorization response (RFC 9207)", back)
check(len(params.get("code", [])) == 1, "one code", back)

token = client.fetch_token(meta["token_endpoint"], authorization_response=back,
                           code_verifier=code_verifier, verify=ca)
check(token["token_type"].lower() == "bearer", "token_type", token)
for field in ["access_token", "id_token", "refresh_token", "expires_in"]:
    check(field in token, f"{field} in the token response", list(token))

# The ID token, against the published JWKS, with only the advertised algorithms.
jwks = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], verify=ca, timeout=20).json())
jwt = JsonWebToken(id_token_algs)
essential = {"essential": True}
claims = jwt.decode(
    token["id_token"], key=jwks, claims_cls=CodeIDToken,
    claims_options={"iss": {"essential": True, "value": issuer},
                    "aud": {"essential": True, "value": client_id},
                    "sub": essential, "exp": essential, "iat": essential, "nonce": essential,
                    "auth_time": essential, "at_hash": essential},
    claims_params={"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]},
)
claims.validate(leeway=5)
check(claims["aud"] in (client_id, [client_id]), "aud is only this client", claims["aud"])
check(claims.get("azp") in (None, client_id), "azp", claims.get("azp"))
check(abs(claims["iat"] - time.time()) < 120, "iat is now", claims["iat"])
check(started - 5 <= claims["auth_time"] <= time.time() + 5, "auth_time is this sign-in", claims["auth_time"])
check(claims.get("email"), "email claim (scope email)", dict(claims))
check(isinstance(claims.get("amr"), list) and claims["amr"], "amr", claims.get("amr"))
alg = claims.header["alg"]

# The access token is a JWT too (RFC 9068): verified with the same JWKS, and it carries the
# user's roles and groups (RFC 9068 §7.2.1.1) for resource servers.
access = JsonWebToken(["EdDSA", "ES256", "RS256"]).decode(
    token["access_token"], key=jwks,
    claims_options={"iss": {"essential": True, "value": issuer}, "sub": essential,
                    "exp": essential, "client_id": {"essential": True, "value": client_id}},
)
access.validate(leeway=5)
check(access.header.get("typ") == "at+jwt", "access token typ", access.header)
check(access["sub"] == claims["sub"], "access token sub", access["sub"])
check(alg in id_token_algs, "alg advertised", alg)

# A forged ID token fails the same checks.
head, body, sig = token["id_token"].split(".")
flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
for forged in [f"{head}.{body}.{flipped}", f"{head}.{body}."]:
    try:
        jwt.decode(forged, key=jwks, claims_cls=CodeIDToken).validate()
        check(False, "forged ID token accepted", forged)
    except JoseError:
        pass
wrong_nonce = jwt.decode(token["id_token"], key=jwks, claims_cls=CodeIDToken,
                         claims_params={"nonce": "other", "client_id": client_id})
try:
    wrong_nonce.validate()
    check(False, "ID token accepted with another nonce")
except JoseError:
    pass

# userinfo with Authlib's bearer auth.
info = client.get(meta["userinfo_endpoint"], verify=ca, timeout=20)
check(info.status_code == 200, "userinfo", info.text)
info = info.json()
check(info["sub"] == claims["sub"], "userinfo sub", info)
check(info.get("email") == claims["email"], "userinfo email", info)

# Refresh: Authlib keeps the old refresh token when none comes back, so check rotation here.
r1 = token["refresh_token"]
refreshed = client.refresh_token(meta["token_endpoint"], refresh_token=r1, verify=ca)
r2 = refreshed["refresh_token"]
check(r2 != r1, "refresh token rotated")
check(refreshed["access_token"] != token["access_token"], "new access token")
if "id_token" in refreshed:
    again = jwt.decode(refreshed["id_token"], key=jwks, claims_cls=CodeIDToken,
                       claims_options={"iss": {"essential": True, "value": issuer},
                                       "aud": {"essential": True, "value": client_id}},
                       claims_params={"client_id": client_id, "access_token": refreshed["access_token"]})
    again.validate(leeway=5)
    check(again["sub"] == claims["sub"], "refreshed ID token sub")
    check(again.get("auth_time") == claims["auth_time"], "refreshed ID token auth_time (OIDC Core 12.2)")
try:
    client.refresh_token(meta["token_endpoint"], refresh_token=r1, verify=ca)
    check(False, "the old refresh token still works after rotation")
except OAuthError as e:
    check(e.error == "invalid_grant", "old refresh token: invalid_grant", e.error)

# The same browser signs in again without a password or a consent page (SSO, consent kept);
# its tokens are the ones the logout must end (the first family was revoked by the reuse).
client2 = OAuth2Session(client_id, client_secret, scope="openid profile email",
                        redirect_uri=redirect_uri, code_challenge_method="S256",
                        token_endpoint_auth_method="client_secret_basic")
client2.verify = ca
verifier2, nonce2 = generate_token(48), generate_token(20)
url2, state2 = client2.create_authorization_url(meta["authorization_endpoint"],
                                                code_verifier=verifier2, nonce=nonce2)
back2, seen2 = drive(url2, expect_consent=False)
check(len(seen2) == 1, "single sign-on without pages", seen2)
params2 = parse_qs(urlsplit(back2).query)
check(params2.get("state") == [state2] and params2.get("iss") == [issuer], "state and iss on SSO", back2)
token2 = client2.fetch_token(meta["token_endpoint"], authorization_response=back2,
                             code_verifier=verifier2, verify=ca)
claims2 = jwt.decode(
    token2["id_token"], key=jwks, claims_cls=CodeIDToken,
    claims_options={"iss": {"essential": True, "value": issuer},
                    "aud": {"essential": True, "value": client_id}, "nonce": essential},
    claims_params={"nonce": nonce2, "client_id": client_id, "access_token": token2["access_token"]},
)
claims2.validate(leeway=5)
check(claims2["sub"] == claims["sub"], "SSO sub")
check(claims2["auth_time"] == claims["auth_time"], "SSO keeps the original auth_time",
      (claims2["auth_time"], claims["auth_time"]))
check(claims2.get("sid") is None or claims2.get("sid") == claims.get("sid"), "same session id")

# RP-initiated logout: the end_session_endpoint asks first; its form signs out.
confirm = browser.get(meta["end_session_endpoint"], verify=ca, timeout=20, allow_redirects=False, params={
    "id_token_hint": token2["id_token"], "post_logout_redirect_uri": redirect_uri, "state": "bye-1"})
check(confirm.status_code == 200, "logout confirmation page", confirm.status_code)
form = only_form(confirm, lambda f: "csrf_token" in hidden(f), "logout")
fields = hidden(form)
check(fields.get("post_logout_redirect_uri") == redirect_uri, "logout form keeps the redirect", fields)
out = post_form(confirm, form, fields)
check(out.status_code == 303, "logout redirect", f"{out.status_code} {out.text}")
location = out.headers["Location"]
check(location.split("?")[0] == redirect_uri, "back to the client", location)
check(parse_qs(urlsplit(location).query).get("state") == ["bye-1"], "logout state", location)
check(not any(c.name == "__Host-rampart-session" for c in browser.cookies), "session cookie cleared",
      [c.name for c in browser.cookies])
try:
    client2.refresh_token(meta["token_endpoint"], refresh_token=token2["refresh_token"], verify=ca)
    check(False, "a refresh token outlived logout")
except OAuthError as e:
    check(e.error == "invalid_grant", "refresh after logout: invalid_grant", e.error)
url3, _ = client.create_authorization_url(meta["authorization_endpoint"],
                                           code_verifier=generate_token(48), nonce=generate_token(20))
after = get(url3)
check(after.status_code == 303 and urlsplit(urljoin(after.url, after.headers["Location"])).path == "/login",
      "signed out: the next authorization asks to sign in", after.headers.get("Location"))

print(json.dumps({"ok": True, "sub": claims["sub"], "email": claims["email"], "amr": claims["amr"],
                  "access_roles": access.get("roles"), "access_groups": access.get("groups"),
                  "acr": claims.get("acr"), "alg": alg, "consent": True, "refresh_rotated": True,
                  "refreshed_id_token": "id_token" in refreshed, "logout": True, "browser": seen}))
