#!/usr/bin/env python3
"""N authenticated GETs, one after another, over one keep-alive TLS connection to 127.0.0.1:PORT
(certificate not verified: loopback benchmark only). Every response must be 200.

Usage: seq_requests.py PORT N BEARER [PATH]   (PATH default /orders/1)
Used by run.sh's CALLGRIND mode, where a steady, sequential load makes instruction counts per
request repeatable.
"""
import socket, ssl, sys, time
port = int(sys.argv[1])
n = int(sys.argv[2])
token = sys.argv[3]
path = sys.argv[4] if len(sys.argv) > 4 else "/orders/1"
ctx=ssl.create_default_context(); ctx.check_hostname=False; ctx.verify_mode=ssl.CERT_NONE
s=ctx.wrap_socket(socket.create_connection(("127.0.0.1",port)))
req=(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n").encode()
buf=b""
t=time.time()
for i in range(n):
    s.sendall(req)
    while True:
        i1=buf.find(b"\r\n\r\n")
        if i1>=0:
            head=buf[:i1].decode()
            cl=0
            for l in head.split("\r\n")[1:]:
                k,v=l.split(":",1)
                if k.lower()=="content-length": cl=int(v)
            if len(buf)>=i1+4+cl:
                if not head.startswith("HTTP/1.1 200"): print(head); sys.exit(1)
                buf=buf[i1+4+cl:]; break
        buf+=s.recv(65536)
print("done", n, time.time()-t)
