"""Legitimate sign-ins during a credential-stuffing flood (benches/login/run.sh).

Each sign-in is a new browser session: GET /authorize -> login page -> POST /login ->
redirect with a code; returning users (RETURNING=1, the default) bring the device cookie of
their previous sign-in. Runs WORKERS concurrent users from a separate source address (the flood comes
from 127.0.0.1) for DURATION seconds and prints one JSON line: attempts, successes,
sign-ins/s, p50 and p99 latency of the password step.
"""

import json
import os
import sys
import threading
import time
from html.parser import HTMLParser

import httpx

BASE = os.environ["BASE"]
CA = os.environ["CA"]
CLIENT_ID = os.environ.get("CLIENT_ID", "bench-web")
USERNAME = os.environ.get("LEGIT_USER", "alice")
PASSWORD = os.environ["LEGIT_PASSWORD"]
SOURCE = os.environ.get("SOURCE_ADDRESS", "127.0.0.2")
WORKERS = int(os.environ.get("WORKERS", "4"))
DURATION = float(os.environ.get("DURATION", "10"))
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
# Returning users keep the device cookie of their previous sign-in (RETURNING=1).
RETURNING = os.environ.get("RETURNING", "1") == "1"


class Hidden(HTMLParser):
    def __init__(self):
        super().__init__()
        self.fields = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("type") == "hidden":
            self.fields[a.get("name")] = a.get("value")


results = []
lock = threading.Lock()


def sign_in_once(device):
    """One sign-in in a new browser; `device` is the device cookie of a returning user
    (None for a first visit). Returns (ok, seconds, status, device cookie)."""
    transport = httpx.HTTPTransport(local_address=SOURCE, verify=CA)
    cookies = {"__Host-rampart-device": device} if device else None
    with httpx.Client(base_url=BASE, transport=transport, timeout=30.0, cookies=cookies) as c:
        r = c.get(
            "/authorize",
            params={
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": "http://127.0.0.1:9/cb",
                "scope": "openid",
                "state": "s",
                "code_challenge": CHALLENGE,
                "code_challenge_method": "S256",
            },
        )
        page = c.get(r.headers["location"])
        p = Hidden()
        p.feed(page.text)
        t0 = time.perf_counter()
        r = c.post(
            "/login",
            data={
                "request": p.fields["request"],
                "csrf_token": p.fields["csrf_token"],
                "username": USERNAME,
                "password": PASSWORD,
            },
        )
        elapsed = time.perf_counter() - t0
        ok = r.status_code == 303 and "code=" in r.headers.get("location", "")
        new_device = None
        for cookie in c.cookies.jar:
            if cookie.name == "__Host-rampart-device":
                new_device = cookie.value
        return ok, elapsed, r.status_code, new_device or device


def worker(deadline):
    device = None
    while time.time() < deadline:
        sent = None
        try:
            sent = device if RETURNING else None
            ok, elapsed, status, device = sign_in_once(sent)
        except Exception as e:  # a timeout or reset counts as a failed sign-in
            ok, elapsed, status = False, 30.0, repr(e)[:40]
        with lock:
            results.append((ok, elapsed, status, sent is not None))


def main():
    deadline = time.time() + DURATION
    threads = [threading.Thread(target=worker, args=(deadline,)) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok_times = sorted(e for ok, e, _, _ in results if ok)
    statuses = {}
    for _, _, s, _ in results:
        statuses[str(s)] = statuses.get(str(s), 0) + 1

    def pct(q):
        return round(ok_times[min(len(ok_times) - 1, int(q * len(ok_times)))] * 1000, 1) if ok_times else None

    print(
        json.dumps(
            {
                "attempts": len(results),
                "succeeded": len(ok_times),
                "sign_ins_per_s": round(len(ok_times) / DURATION, 1),
                "p50_ms": pct(0.50),
                "p99_ms": pct(0.99),
                "statuses": statuses,
                "with_device_cookie": sum(1 for r in results if r[3]),
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
