#!/usr/bin/env python3
"""Test helper: turn a short JSON spec (stdin) into an unsigned desired-state document v1
(stdout), sorted and complete as the strict decoder wants it. Passwords in the spec become
SCRAM verifiers through doctool, so the agent only ever sees verifiers.

spec: {"host": "db1", "revision": 1, "databases": [{"name": "accounts-db", "cpu": 4,
        "port": 5432, "roles": [{"name": "auth-api", "access": "read-write",
        "clients": ["10.99.0.3/32"], "password": "pw"}]}]}

A database may carry "tlsCertificateFile": a PEM file that becomes its tlsCertificate, and
"backup": {"enabled": true, "schedule": "daily", "retentionDays": 7, "passphrase": "..."}
(each optional; without "backup", backups are disabled). With backups enabled, "passphrase"
defaults to TEST_PASSPHRASE below; null leaves it out (a document the agent must refuse to back up
from); with backups disabled it is left out unless given (which the decoder refuses).
A member of a replicated database (clusterSize = members) carries "replication": {"role":
"primary"|"standby", "primary": "db1", "members": [{"host": "db1", "address": "10.99.0.2"}, ...],
"password": "..."}: the primary's document gets the password's SCRAM verifier, a standby's the
password itself; the other members' addresses join "allow".
An application host: {"host": "app1", "role": "application", "revision": 1,
        "applications": [{"name": "auth-api", "unit": "auth-api.service", "env": [
        {"name": "DATABASE_CONNECTION_STRING", "database": "accounts-db", "role": "auth-api",
         "password": "pw"}]}]}
(env: "dbHostname" defaults to the database's name as above, "dbAddress" to 10.99.0.2, "port"
to 5432, "access" to read-write; "password" is delivered as is, as the controller does for
application hosts, and omitted when absent.)
"""
import json
import os
import subprocess
import sys

spec = json.load(sys.stdin)
doctool = os.environ["DOCTOOL"]
# 43 characters of base64url, the shape the controller generates: the tests' repository passphrase.
TEST_PASSPHRASE = "dGVzdC1yZXBvc2l0b3J5LXBhc3NwaHJhc2UtMDEyMzQ"
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
    allow = {c for r in roles for c in r["clients"]}
    replication = None
    if "replication" in d:
        rs = d["replication"]
        members = sorted(rs["members"], key=lambda m: m["host"])
        replication = {"role": rs["role"], "primary": rs["primary"],
                       "members": [{"host": m["host"], "address": m["address"]} for m in members]}
        if rs["role"] == "primary":
            replication["verifier"] = verifier(rs["password"])
        else:
            replication["password"] = rs["password"]
        me = spec.get("host", "db1")
        allow |= {m["address"] + ("/128" if ":" in m["address"] else "/32") for m in members if m["host"] != me}
    allow = sorted(allow)
    db = {"name": d["name"], "identity": identity, "hostname": hostname,
          "postgresVersion": 15, "cpuCount": d.get("cpu", 2),
          "clusterSize": len(replication["members"]) if replication else 1,
          "port": d.get("port", 5432), "tlsNames": [hostname]}
    if "tlsCertificateFile" in d:
        with open(d["tlsCertificateFile"]) as f:
            db["tlsCertificate"] = f.read()
    b = d.get("backup", {"enabled": False})
    backup = {"enabled": b.get("enabled", True), "schedule": b.get("schedule", "daily"),
              "retentionDays": b.get("retentionDays", 7)}
    passphrase = b.get("passphrase", TEST_PASSPHRASE if backup["enabled"] else None)
    if passphrase is not None:
        backup["passphrase"] = passphrase
    db.update({"backup": backup, "roles": roles, "allow": allow})
    if replication:
        db["replication"] = replication
    dbs.append(db)

apps = []
for a in sorted(spec.get("applications", []), key=lambda a: a["name"]):
    env = []
    for e in sorted(a.get("env", []), key=lambda e: e["name"]):
        hostname = e.get("dbHostname",
                         f'{e["database"]}.login-svc.development.retail-banking.fincorp.infrastream.internal')
        item = {"name": e["name"], "database": e["database"], "dbHostname": hostname,
                "dbAddress": e.get("dbAddress", "10.99.0.2"), "port": e.get("port", 5432),
                "role": e.get("role", a["name"]), "access": e.get("access", "read-write")}
        if "dbAddresses" in e:
            item["dbAddresses"] = e["dbAddresses"]
        if "password" in e:
            item["password"] = e["password"]
        env.append(item)
    apps.append({"name": a["name"], "identity": identity, "unit": a.get("unit", a["name"] + ".service"),
                 "env": env})

doc = {"apiVersion": "infrastream.io/v1", "kind": "DesiredState", "host": spec.get("host", "db1"),
       "role": spec.get("role", "database"), "revision": spec["revision"], "commit": spec.get("commit", ""),
       "databases": dbs, "applications": apps}
json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
print()
