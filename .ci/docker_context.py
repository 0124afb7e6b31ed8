#!/usr/bin/env python3
"""Builds the Docker image's build stage without Docker.

CI has no Docker daemon, so this replays deploy/Dockerfile's first stage in a scratch folder:
exactly the files its COPY lines bring (filtered by deploy/Dockerfile.dockerignore, as BuildKit
does), then its own RUN lines in order. A file the build needs but the Dockerfile does not copy
fails here as it would in `docker build`.

One substitution keeps CI fast on two cores: `cargo build --release` becomes `cargo check`,
sharing the repository's CARGO_TARGET_DIR (dependencies already checked by clippy are reused;
`check` uplifts no binary, so target/debug/ctsync is never clobbered). What the image build can
get wrong that the test build cannot is which files are present, and `check` sees all of them:
`include_str!`, modules, benches declared in Cargo.toml, `--locked`. Code generation and linking
are the same as the test build's, which CI runs anyway.

Usage: docker_context.py DOCKERFILE CONTEXT_DIR TARGET_DIR
"""
import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys


def instructions(text):
    """(keyword, argument) pairs, continuation lines joined, comments dropped."""
    out, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, rest = current.partition(" ")
        out.append((keyword.upper(), rest.strip()))
        current = ""
    return out


def ignore_patterns(path):
    if not os.path.exists(path):
        return []
    patterns = []
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        patterns.append((negate, pattern.strip("/")))
    return patterns


def ignored(rel, patterns):
    """Docker's rule: the last matching pattern wins; a pattern matching a parent matches."""
    parts = rel.split("/")
    verdict = False
    for negate, pattern in patterns:
        for i in range(1, len(parts) + 1):
            if fnmatch.fnmatchcase("/".join(parts[:i]), pattern):
                verdict = not negate
                break
    return verdict


def copy(context, patterns, source, dest):
    src = os.path.join(context, source)
    if not os.path.exists(src):
        sys.exit(f"docker context: COPY {source}: not in the context")
    files = []
    if os.path.isdir(src):
        for root, _, names in os.walk(src):
            for name in names:
                full = os.path.join(root, name)
                files.append(os.path.relpath(full, context))
    else:
        files.append(source)
    kept = [f for f in files if not ignored(f, patterns)]
    if not kept:
        sys.exit(f"docker context: COPY {source}: everything is excluded by the .dockerignore")
    for f in kept:
        if os.path.isdir(src):
            out = os.path.join(dest, os.path.relpath(f, source))
        elif dest.endswith("/"):
            out = os.path.join(dest, os.path.basename(f))
        else:
            out = dest
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        shutil.copy2(os.path.join(context, f), out)


def main():
    dockerfile, context, target_dir = sys.argv[1:4]
    patterns = ignore_patterns(dockerfile + ".dockerignore")
    for must_skip in ("target/release/ctsync", ".git/HEAD"):
        if not ignored(must_skip, patterns):
            sys.exit(f"docker context: {must_skip} would be sent to the daemon; fix the .dockerignore")
    stages = [[]]
    for keyword, arg in instructions(open(dockerfile, encoding="utf-8").read()):
        if keyword == "FROM" and stages[-1]:
            stages.append([])
        stages[-1].append((keyword, arg))
    build = stages[0]
    # A fixed place under the target dir: the same package path on every run keeps cargo's
    # fingerprints (and the disk) from growing with each CI run.
    scratch = os.path.join(target_dir, "docker-context")
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    workdir = "/"
    env = dict(os.environ, CARGO_TARGET_DIR=target_dir)
    ran_cargo = False
    try:
        for keyword, arg in build:
            if keyword == "WORKDIR":
                workdir = arg
            elif keyword == "COPY":
                words = shlex.split(arg)
                if any(w.startswith("--from") for w in words):
                    continue
                words = [w for w in words if not w.startswith("--")]
                *sources, dest = words
                base = os.path.join(scratch, workdir.lstrip("/"))
                target = os.path.join(base, dest) if not os.path.isabs(dest) else os.path.join(scratch, dest.lstrip("/"))
                if dest.endswith("/"):
                    target += "/" if not target.endswith("/") else ""
                for source in sources:
                    copy(context, patterns, source, target)
            elif keyword == "RUN":
                command, n = re.subn(r"cargo build --release", "cargo check", arg)
                ran_cargo |= n > 0
                cwd = os.path.join(scratch, workdir.lstrip("/"))
                os.makedirs(cwd, exist_ok=True)
                print(f"docker context: RUN {command}", flush=True)
                subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=cwd, env=env, check=True)
        if not ran_cargo:
            sys.exit("docker context: the build stage has no `cargo build --release`")
        print("docker context: the build stage builds from exactly what the Dockerfile copies")
    except subprocess.CalledProcessError as e:
        sys.exit(f"docker context: the build stage fails (exit {e.returncode})")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
