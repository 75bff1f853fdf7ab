#!/usr/bin/env python3
"""Open N keep-alive TLS connections to HOST:PORT (loopback only), send one GET on each, read
the response, keep every connection open and idle, and report the server's resident memory
(VmRSS of PID and its children, from /proc) before and with the connections open.

Usage: idle_conns.py PORT PATH PID [N] [BEARER]
Prints lines "RSS_BEFORE_KIB=...", "OPEN=... STATUS200=... FAILED=...", "RSS_OPEN_KIB=...",
and "STILL_OPEN_AFTER_<s>S=..." (how many the server kept after more idle time).
Bounded: the whole run is cut after 180 s.
"""
import asyncio
import os
import resource
import ssl
import sys
import time

HOST = "127.0.0.1"
PORT = int(sys.argv[1])
PATH = sys.argv[2]
PID = int(sys.argv[3])
N = int(sys.argv[4]) if len(sys.argv) > 4 else 10000
BEARER = sys.argv[5] if len(sys.argv) > 5 else ""
PARALLEL_HANDSHAKES = 200
LATER = 12  # seconds of extra idle time before counting survivors again


def tree(pid):
    """pid and all its descendants (nginx: master and workers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def rss_kib(pid):
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


async def one(ctx, sem, req):
    async with sem:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(HOST, PORT, ssl=ctx, server_hostname="localhost"), 20)
        writer.write(req)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        if length:
            await asyncio.wait_for(reader.readexactly(length), 20)
        return status, reader, writer


async def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # nginx uses a throwaway self-signed certificate
    auth = f"Authorization: Bearer {BEARER}\r\n" if BEARER else ""
    req = f"GET {PATH} HTTP/1.1\r\nHost: {HOST}:{PORT}\r\n{auth}\r\n".encode()
    print(f"RSS_BEFORE_KIB={rss_kib(PID)}", flush=True)
    sem = asyncio.Semaphore(PARALLEL_HANDSHAKES)
    t0 = time.monotonic()
    results = await asyncio.gather(*(one(ctx, sem, req) for _ in range(N)), return_exceptions=True)
    conns = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, BaseException)]
    ok = sum(1 for s, _, _ in conns if s == 200)
    print(f"OPEN={len(conns)} STATUS200={ok} FAILED={len(failed)} "
          f"open_time_s={time.monotonic() - t0:.1f}", flush=True)
    if failed:
        kinds = {}
        for e in failed:
            kinds[type(e).__name__] = kinds.get(type(e).__name__, 0) + 1
        print(f"FAILURES={kinds}", flush=True)
    await asyncio.sleep(1)
    alive = sum(1 for _, r, w in conns if not r.at_eof() and not w.is_closing())
    print(f"RSS_OPEN_KIB={rss_kib(PID)} STILL_OPEN={alive}", flush=True)
    await asyncio.sleep(LATER)
    alive = sum(1 for _, r, w in conns if not r.at_eof() and not w.is_closing())
    print(f"STILL_OPEN_AFTER_{LATER + 1}S={alive} RSS_KIB={rss_kib(PID)}", flush=True)
    for _, _, w in conns:
        w.close()


asyncio.run(asyncio.wait_for(main(), 180))
