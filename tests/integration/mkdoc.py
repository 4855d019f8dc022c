#!/usr/bin/env python3
"""Test helper: turn a short JSON spec (stdin) into an unsigned desired-state document v1
(stdout), sorted and complete as the strict decoder wants it. Passwords in the spec become
SCRAM verifiers through doctool, so the agent only ever sees verifiers.

spec: {"host": "db1", "revision": 1, "databases": [{"name": "accounts-db", "cpu": 4,
        "port": 5432, "roles": [{"name": "auth-api", "access": "read-write",
        "clients": ["10.99.0.3/32"], "password": "pw"}]}]}
"""
import json
import os
import subprocess
import sys

spec = json.load(sys.stdin)
doctool = os.environ["DOCTOOL"]
identity = {"organization": "fincorp", "organizationalUnit": "retail-banking",
            "environment": "development", "project": "login-svc"}


def verifier(password):
    return subprocess.run([doctool, "verifier", password], check=True, capture_output=True,
                          text=True).stdout.strip()


dbs = []
for d in sorted(spec.get("databases", []), key=lambda d: d["name"]):
    hostname = f'{d["name"]}.login-svc.development.retail-banking.fincorp.infrastream.internal'
    roles = []
    for r in sorted(d.get("roles", []), key=lambda r: r["name"]):
        role = {"name": r["name"], "application": r.get("application", "app"),
                "access": r.get("access", "read-only"), "clients": sorted(r.get("clients", []))}
        if "password" in r:
            role["scramVerifier"] = verifier(r["password"])
        roles.append(role)
    allow = sorted({c for r in roles for c in r["clients"]})
    dbs.append({"name": d["name"], "identity": identity, "hostname": hostname,
                "postgresVersion": 15, "cpuCount": d.get("cpu", 2), "clusterSize": 1,
                "port": d.get("port", 5432), "tlsNames": [hostname],
                "backup": {"enabled": False, "schedule": "daily", "retentionDays": 7},
                "roles": roles, "allow": allow})

doc = {"apiVersion": "infrastream.io/v1", "kind": "DesiredState", "host": spec.get("host", "db1"),
       "role": "database", "revision": spec["revision"], "commit": spec.get("commit", ""),
       "databases": dbs, "applications": []}
json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
print()
