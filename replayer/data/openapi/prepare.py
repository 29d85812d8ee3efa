#!/usr/bin/env python3
"""Builds the OpenAPI v2 documents that `pipetape replay serve` ships (replayer/data/openapi).

Input: a directory of `swagger-1.NN.json` files, each Kubernetes' own published document
(kubernetes/kubernetes, `api/openapi-spec/swagger.json` at tag v1.NN.x; this copy was taken
from the kube-rs/k8s-pb repository's history, which downloads it per release and rewrites the
group-version-kind of the connect operations: that rewrite is undone here). Output, next to
this script: `v1.NN.json.zst` for the newest version (minified, zstd -19 --long) and, for every
other version, `v1.NN.patch.zst`, zstd's --patch-from against the newest (a few KiB each).

Usage: prepare.py DIR_WITH_SWAGGER_FILES
"""
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

# Upstream names the options kind of each connect subresource; k8s-pb's patch renamed them to
# the parent kind. Restore the upstream names.
CONNECT = [
    (re.compile(r"^/api/v1/namespaces/\{namespace\}/pods/\{name\}/attach$"), "PodAttachOptions"),
    (re.compile(r"^/api/v1/namespaces/\{namespace\}/pods/\{name\}/exec$"), "PodExecOptions"),
    (re.compile(r"^/api/v1/namespaces/\{namespace\}/pods/\{name\}/portforward$"), "PodPortForwardOptions"),
    (re.compile(r"^/api/v1/namespaces/\{namespace\}/pods/\{name\}/proxy(/\{path\})?$"), "PodProxyOptions"),
    (re.compile(r"^/api/v1/nodes/\{name\}/proxy(/\{path\})?$"), "NodeProxyOptions"),
    (re.compile(r"^/api/v1/namespaces/\{namespace\}/services/\{name\}/proxy(/\{path\})?$"), "ServiceProxyOptions"),
]


def unpatch(doc):
    for path, item in doc["paths"].items():
        for rx, kind in CONNECT:
            if rx.match(path):
                for op in item.values():
                    if isinstance(op, dict) and op.get("x-kubernetes-action") == "connect":
                        op["x-kubernetes-group-version-kind"]["kind"] = kind
    return doc


def minified(path):
    with open(path) as f:
        doc = unpatch(json.load(f))
    return json.dumps(doc, separators=(",", ":")).encode()


def main(src):
    found = {}
    for name in os.listdir(src):
        m = re.fullmatch(r"swagger-1\.(\d+)\.json", name)
        if m:
            found[int(m.group(1))] = os.path.join(src, name)
    if not found:
        sys.exit(f"no swagger-1.NN.json in {src}")
    newest = max(found)
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, f"v1.{newest}.json")
        with open(base, "wb") as f:
            f.write(minified(found[newest]))
        subprocess.run(["zstd", "-q", "-f", "-19", "--long=27", base, "-o",
                        os.path.join(HERE, f"v1.{newest}.json.zst")], check=True)
        for minor, path in sorted(found.items()):
            if minor == newest:
                continue
            mine = os.path.join(tmp, f"v1.{minor}.json")
            with open(mine, "wb") as f:
                f.write(minified(path))
            subprocess.run(["zstd", "-q", "-f", "-19", f"--patch-from={base}", mine, "-o",
                            os.path.join(HERE, f"v1.{minor}.patch.zst")], check=True,
                           stderr=subprocess.DEVNULL)
    print("versions:", ", ".join(f"1.{m}" for m in sorted(found)), "base: 1.%d" % newest)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
