"""The official Python client (PyPI `kubernetes`) against `pipetape replay serve`.

Usage: typed_clients.py KUBECONFIG list|watch

list:  lists every kind the server's discovery offers through the client's typed API
       (CoreV1Api.list_node, AppsV1Api.list_deployment_for_all_namespaces, ... and
       CustomObjectsApi for custom resources), so every object is deserialised into the
       client's models; prints one line per kind, exits 1 if any list fails.
watch: follows a pod watch until the server ends it; prints the event count, exits 1 if the
       stream ends with an error (an incomplete chunked read, a reset).
"""
import re
import sys

from kubernetes import client, config, watch


def snake(kind):
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", kind)
    return s.lower()


def api_class(group, version):
    if group == "":
        name = "Core"
    else:
        base = group[: -len(".k8s.io")] if group.endswith(".k8s.io") else group
        name = "".join(p[:1].upper() + p[1:] for p in re.split(r"[.-]", base))
    return getattr(client, f"{name}{version[:1].upper()}{version[1:]}Api", None)


def builtin(group):
    return group == "" or group.endswith(".k8s.io") or "." not in group


def list_all(kc):
    config.load_kube_config(config_file=kc)
    api = client.ApiClient()
    groups = [("", "v1")]
    for g in client.ApisApi(api).get_api_versions().groups:
        for v in g.versions:
            groups.append((g.name, v.version))
    failures = 0
    for group, version in groups:
        if group == "":
            res = client.CoreV1Api(api).get_api_resources().resources
        else:
            res = client.CustomObjectsApi(api).get_api_resources(group, version).resources
        for r in res:
            if "/" in r.name or "list" not in (r.verbs or []):
                continue
            label = f"{group or 'core'}/{version} {r.name}"
            try:
                if builtin(group):
                    cls = api_class(group, version)
                    method = f"list_{snake(r.kind)}" + ("_for_all_namespaces" if r.namespaced else "")
                    fn = getattr(cls(api), method, None) if cls else None
                    if fn is None:
                        # This client release has no typed API for it (a newer or older
                        # version): read it untyped.
                        n = len(client.CustomObjectsApi(api).list_cluster_custom_object(group, version, r.name)["items"]) if group else 0
                        print(f"untyped {label} {n}")
                        continue
                    items = fn().items
                else:
                    items = client.CustomObjectsApi(api).list_cluster_custom_object(group, version, r.name)["items"]
                print(f"ok {label} {len(items)}")
            except Exception as e:  # noqa: BLE001 - every failure is reported
                failures += 1
                print(f"FAILED {label}: {type(e).__name__}: {str(e)[:300]}")
    return 1 if failures else 0


def follow(kc):
    config.load_kube_config(config_file=kc)
    v1 = client.CoreV1Api()
    n = 0
    w = watch.Watch()
    for _ in w.stream(v1.list_pod_for_all_namespaces, timeout_seconds=120):
        n += 1
    print(f"events {n}")
    return 0


if __name__ == "__main__":
    kc, what = sys.argv[1], sys.argv[2]
    sys.exit(list_all(kc) if what == "list" else follow(kc))
