#!/usr/bin/env python3
"""Checks the Kubernetes manifests beyond their schema (kubernetes-validate does that):

* every SyncPair embedded in a ConfigMap passes `ctsync validate` (one topology per ConfigMap,
  as the pod mounts it), so a sample cannot crash-loop the pod;
* every pod template meets the "restricted" Pod Security Standard's rules we rely on.

Usage: manifests.py CTSYNC_BINARY MANIFEST...
"""
import os
import subprocess
import sys
import tempfile

import yaml

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}


def pod_problems(where, spec):
    problems = []
    pod_ctx = spec.get("securityContext") or {}
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        name = f"{where} container {c.get('name')}"
        ctx = c.get("securityContext") or {}
        if not (ctx.get("runAsNonRoot") or pod_ctx.get("runAsNonRoot")):
            problems.append(f"{name}: runAsNonRoot is not set")
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation must be false")
        if "ALL" not in ((ctx.get("capabilities") or {}).get("drop") or []):
            problems.append(f"{name}: capabilities.drop must contain ALL")
        seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile must be RuntimeDefault")
        if ctx.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: readOnlyRootFilesystem must be true")
        mounts = {m.get("mountPath"): m.get("name") for m in c.get("volumeMounts") or []}
        if "emptyDir" not in volumes.get(mounts.get("/tmp"), {}):
            problems.append(f"{name}: /tmp must be a writable emptyDir (the root is read-only)")
        if not c.get("imagePullPolicy"):
            problems.append(f"{name}: imagePullPolicy is not set")
    return problems


def main():
    binary, manifests = sys.argv[1], sys.argv[2:]
    problems, pairs = [], 0
    with tempfile.TemporaryDirectory(prefix="ctsync-manifest-pairs-") as scratch:
        for path in manifests:
            for doc in yaml.safe_load_all(open(path, encoding="utf-8")):
                if not isinstance(doc, dict):
                    continue
                kind, name = doc.get("kind"), (doc.get("metadata") or {}).get("name")
                where = f"{path}: {kind}/{name}"
                if kind in WORKLOADS:
                    template = (doc.get("spec") or {}).get("template") or {}
                    problems += pod_problems(where, template.get("spec") or {})
                if kind != "ConfigMap":
                    continue
                folder = os.path.join(scratch, os.path.basename(path), str(name))
                found = False
                for key, text in (doc.get("data") or {}).items():
                    if not key.endswith((".yaml", ".yml")) or "kind: SyncPair" not in text:
                        continue
                    os.makedirs(folder, exist_ok=True)
                    with open(os.path.join(folder, key), "w", encoding="utf-8") as f:
                        f.write(text)
                    found = True
                    pairs += 1
                if not found:
                    continue
                result = subprocess.run([binary, "validate", "--config", folder],
                                        capture_output=True, text=True)
                if result.returncode != 0:
                    problems.append(f"{where}: embedded pairs rejected by ctsync validate:\n"
                                    + result.stdout + result.stderr)
                else:
                    print(f"{where}: {result.stdout.strip().splitlines()[-1]}")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        sys.exit(f"{len(problems)} manifest problem(s)")
    print(f"manifests: {pairs} embedded pair(s) valid, pod templates restricted")


if __name__ == "__main__":
    main()
