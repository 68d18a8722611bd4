"""Checks deploy/: every Kubernetes manifest (and every Deployment rendered from the
channel templates) against the Kubernetes API schemas of kubernetes-validate (strict: no
unknown fields), for the oldest and newest Kubernetes versions we support; that the
validator rejects broken copies (so a pass means something); that the manifests agree
with the program (flags affect-annotate knows, --shards = completions, probe port = health
port, GPU request with the CUDA provider, ConfigMap keys); and that the Containerfile pins
the ONNX Runtime of scripts/setup.sh.

usage: python check_manifests.py REPO_ROOT AFFECT_ANNOTATE_BINARY
"""
import copy
import pathlib
import re
import subprocess
import sys

import kubernetes_validate
import yaml

VERSIONS = ["1.30.0", "1.37.0"]


def fail(msg):
    sys.exit(f"check_manifests: {msg}")


def validate(doc, where):
    for v in VERSIONS:
        try:
            kubernetes_validate.validate(doc, v, strict=True)
        except kubernetes_validate.ValidationError as e:
            fail(f"{where}: {doc.get('kind')}/{doc['metadata']['name']} is not valid for Kubernetes {v}: {e.message} at {list(e.path)}")


def rejected(doc):
    try:
        kubernetes_validate.validate(doc, VERSIONS[0], strict=True)
    except kubernetes_validate.ValidationError:
        return True
    return False


def containers(doc):
    spec = doc["spec"]["template"]["spec"]
    return spec["containers"]


def main():
    root = pathlib.Path(sys.argv[1])
    binary = sys.argv[2]
    kdir = root / "deploy" / "kubernetes"
    docs = []
    for f in sorted(kdir.glob("*.yaml")):
        if "@CHANNEL@" in f.read_text():
            continue  # templates: checked through their rendered Deployments below
        docs += [(f.name, d) for d in yaml.safe_load_all(f.read_text()) if d]
    cm = next(d for _, d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "affect-channels")
    for template in ["live-channel.template.yaml", "live-channel-gpu.template.yaml"]:
        out = subprocess.run(
            ["bash", str(kdir / "render-channels.sh"), str(kdir / "live-channels.configmap.yaml"), str(kdir / template)],
            check=True, capture_output=True, text=True,
        ).stdout
        rendered = [d for d in yaml.safe_load_all(out) if d]
        if len(rendered) != len(cm["data"]):
            fail(f"{template}: {len(rendered)} Deployments for {len(cm['data'])} channels")
        docs += [(f"{template} (rendered)", d) for d in rendered]
    for where, d in docs:
        validate(d, where)

    # The validator can fail: broken copies are rejected.
    job = next(d for _, d in docs if d["kind"] == "Job")
    broken = copy.deepcopy(job)
    broken["spec"]["template"]["spec"]["containers"][0]["resorces"] = {}
    broken2 = copy.deepcopy(job)
    broken2["spec"]["completions"] = "sixteen"
    if not (rejected(broken) and rejected(broken2)):
        fail("the validator accepted a broken Job")

    # The manifests agree with the program.
    help_text = subprocess.run([binary, "--help"], check=True, capture_output=True, text=True).stdout
    known = set(re.findall(r"--[a-z][a-z0-9-]*", help_text))
    for where, d in docs:
        if d["kind"] not in ("Job", "Deployment"):
            continue
        for c in containers(d):
            for a in c.get("args", []):
                if a.startswith("--") and a not in known:
                    fail(f"{where}: affect-annotate has no option {a}")
    spec = job["spec"]
    args = containers(job)[0]["args"]
    if spec["completionMode"] != "Indexed":
        fail("the archive Job is not Indexed")
    if int(args[args.index("--shards") + 1]) != spec["completions"]:
        fail("--shards differs from the Job's completions")
    if spec["parallelism"] > spec["completions"]:
        fail("parallelism above completions")
    deployments = [(w, d) for w, d in docs if d["kind"] == "Deployment"]
    for where, d in deployments:
        c = containers(d)[0]
        a = c["args"]
        port = int(a[a.index("--health-port") + 1])
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        for probe in ("livenessProbe", "startupProbe"):
            p = c[probe]["httpGet"]["port"]
            if ports.get(p, p) != port:
                fail(f"{where}: {probe} does not ask the health port {port}")
        key = c["env"][0]["valueFrom"]["configMapKeyRef"]["key"]
        if key not in cm["data"] or a[a.index("--live") + 1] != "$(STREAM_URI)":
            fail(f"{where}: the stream URI does not come from the ConfigMap key {key}")
        gpu = "nvidia.com/gpu" in c["resources"].get("limits", {})
        cuda = "--props" in a and "execution-provider=cuda" in a[a.index("--props") + 1]
        if gpu != cuda:
            fail(f"{where}: a GPU request needs the CUDA provider and the other way round")
    if not any("nvidia.com/gpu" in containers(d)[0]["resources"].get("limits", {}) for _, d in deployments):
        fail("no GPU variant")

    # The image pins the ONNX Runtime that make setup installs.
    setup = (root / "scripts" / "setup.sh").read_text()
    cf = (root / "deploy" / "Containerfile").read_text()
    for var in ("ORT_VERSION", "ORT_SHA256"):
        want = re.search(rf"^{var}=(\S+)", setup, re.M).group(1)
        got = re.search(rf"^ARG {var}=(\S+)", cf, re.M).group(1)
        if want != got:
            fail(f"Containerfile {var}={got}, scripts/setup.sh says {want}")
    print(f"check_manifests: {len(docs)} resources valid for Kubernetes {', '.join(VERSIONS)}; broken copies rejected; consistent with affect-annotate and setup.sh")


if __name__ == "__main__":
    main()
