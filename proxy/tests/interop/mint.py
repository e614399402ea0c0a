"""Mints a JWT with PyJWT, an implementation independent of Ficus's jsonwebtoken.

usage: mint.py ALG KEY KID CLAIMS_JSON
  ALG     HS256 | RS256 | ES256
  KEY     path to a PEM private key, or for HS256 the secret itself
  KID     key id for the header, or "-" for none
  CLAIMS  JSON object; "exp"/"nbf"/"iat" given as "+N"/"-N" are seconds from now
Prints the token on stdout. Used by proxy/tests/security.rs (interop test).
"""
import json
import sys
import time

import jwt  # PyJWT, installed by scripts/test

alg, key, kid, claims = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
now = int(time.time())
for k in ("exp", "nbf", "iat"):
    v = claims.get(k)
    if isinstance(v, str) and v[:1] in "+-":
        claims[k] = now + int(v)
if alg != "HS256":
    with open(key, "rb") as f:
        key = f.read()
headers = {} if kid == "-" else {"kid": kid}
print(jwt.encode(claims, key, algorithm=alg, headers=headers))
