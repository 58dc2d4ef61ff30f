"""The monitoring files under deploy/: Prometheus' config and alert rules (checked and
unit-tested by promtool, Debian's prometheus package) and Grafana's provisioning and
dashboard (every query parsed, by promql-parser and by Prometheus' own parser). Offline,
no server started."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import promql_parser
import pytest
import yaml
from dashboard_queries import DASHBOARD, panel_queries, panels
from prometheus_client.parser import text_string_to_metric_families
from services import required

ROOT = Path(__file__).parents[1]
PROMETHEUS = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}

# The seed dashboard's five panels: their titles and queries, which must stay as they were.
SEED_PANELS = {
    "Task success/failure": [
        "increase(task_success_total[5m])",
        "increase(task_failure_total[5m])",
    ],
    "Queue length": ["task_queue_length"],
    "Mean task duration": [
        "rate(task_duration_seconds_sum[5m]) / rate(task_duration_seconds_count[5m])"
    ],
    "CPU": ["system_cpu_percent"],
    "Memory": ["system_memory_usage_gigabytes"],
}
# Read from the jobs table by every API replica, so the same value comes from each.
TABLE_SERIES = {
    "task_success_total",
    "task_failure_total",
    "task_queue_length",
    "task_duration_seconds_bucket",
    "task_duration_seconds_sum",
    "task_duration_seconds_count",
    "loraforge_jobs",
    "loraforge_job_stale_seconds",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool (Debian's prometheus package) is not installed"
        if required():  # .ci/run installs it, so missing there is a failure
            pytest.fail(f"{message}; .ci/run installs it (LORAFORGE_TEST_REQUIRE_SERVICES=1)")
        pytest.skip(f"{message}: apt-get install --no-install-recommends prometheus")
    return found


def run_promtool(promtool: str, *args: str, cwd: Path = PROMETHEUS) -> str:
    done = subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict]:
    groups = load_yaml(PROMETHEUS / "alerts.yml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alert_queries() -> list[tuple[str, str]]:
    return [(rule["alert"], rule["expr"]) for rule in alert_rules()]


def selectors(expr: str) -> list[tuple[str, str | None]]:
    """(series name, innermost aggregation around it or None) of every selector."""
    found: list[tuple[str, str | None]] = []
    around: list[str] = []

    def enter(node):
        if isinstance(node, promql_parser.AggregateExpr):
            around.append(str(node.op))
        elif isinstance(node, promql_parser.VectorSelector):
            found.append((node.name, around[-1] if around else None))

    def leave(node):
        if isinstance(node, promql_parser.AggregateExpr):
            around.pop()

    promql_parser.walk(promql_parser.parse(expr), enter, leave)
    return found


# --- Prometheus --------------------------------------------------------------------------


def test_promtool_accepts_the_config_and_its_rule_file(promtool):
    output = run_promtool(promtool, "check", "config", "prometheus.yml")
    assert "1 rule files found" in output


def test_the_config_scrapes_api_workers_and_prediction_server():
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    expected = {
        "loraforge-api": ("api", 8000),
        "loraforge-worker": ("worker", 9101),
        "loraforge-serve": ("serve", 8100),
    }
    assert set(jobs) == set(expected)
    for name, (host, port) in expected.items():
        assert jobs[name].get("metrics_path", "/metrics") == "/metrics"
        # DNS: every replica of a scaled compose service becomes a target of its own.
        (discovery,) = jobs[name]["dns_sd_configs"]
        assert (discovery["names"], discovery["type"], discovery["port"]) == ([host], "A", port)


def test_promtool_accepts_the_kubernetes_config(promtool, tmp_path):
    config = load_yaml(PROMETHEUS / "prometheus.kubernetes.yml")
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = config["scrape_configs"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    # Debian's Prometheus is built without Kubernetes discovery: the rest of the config
    # (relabelling regexes and actions included) is checked with a static target instead.
    del job["kubernetes_sd_configs"]
    job["static_configs"] = [{"targets": ["10.0.0.1:8000"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path / "alerts.yml")
    run_promtool(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)
    renamed = [rule for rule in job["relabel_configs"] if rule.get("target_label") == "job"]
    assert [rule["replacement"] for rule in renamed] == ["loraforge-$1"]


def test_promtool_accepts_the_alert_rules(promtool):
    output = run_promtool(promtool, "check", "rules", "alerts.yml")
    assert f"{len(alert_rules())} rules found" in output


def test_alert_unit_tests_pass(promtool):
    run_promtool(promtool, "test", "rules", "alerts.test.yml")


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_does_not():
    cases: dict[str, set[bool]] = {}
    for test in load_yaml(PROMETHEUS / "alerts.test.yml")["tests"]:
        for check in test.get("alert_rule_test", []):
            cases.setdefault(check["alertname"], set()).add(bool(check.get("exp_alerts")))
    assert {rule["alert"]: {True, False} for rule in alert_rules()} == cases


def test_every_alert_waits_has_a_severity_and_says_what_to_do():
    rules = alert_rules()
    assert len(rules) >= 6
    assert len({rule["alert"] for rule in rules}) == len(rules)
    for rule in rules:
        name = rule["alert"]
        assert name.startswith("Loraforge"), name
        assert rule.get("for"), f"{name}: no `for:`, one bad scrape would page"
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook"} <= set(annotations), name
        assert len(annotations["runbook"]) > 80, f"{name}: the runbook says too little"
        promql_parser.parse(rule["expr"])


def test_alerts_combine_the_jobs_table_series_with_max_not_sum():
    for name, expr in alert_queries():
        for series, aggregation in selectors(expr):
            if series in TABLE_SERIES:
                assert aggregation == "max", f"{name}: {series} under {aggregation}"


# --- Grafana -----------------------------------------------------------------------------


def test_grafana_datasource_is_prometheus_with_the_uid_the_dashboard_uses():
    (source,) = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")[
        "datasources"
    ]
    assert (source["type"], source["uid"]) == ("prometheus", "prometheus")
    assert source["url"] == "http://prometheus:9090"


def test_grafana_loads_the_dashboards_folder():
    (provider,) = load_yaml(GRAFANA / "provisioning" / "dashboards" / "loraforge.yml")["providers"]
    assert provider["type"] == "file"
    # Where deploy/compose.yaml mounts deploy/grafana/dashboards.
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_dashboard_panels_each_query_prometheus():
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] == "loraforge"
    assert 36 <= dashboard["schemaVersion"] <= 41
    found = list(panels(dashboard))
    ids = [panel["id"] for panel in found]
    assert len(ids) == len(set(ids)), f"panel ids repeat: {ids}"
    for panel in found:
        title = panel["title"]
        assert panel["type"] in {"timeseries", "stat"}, title
        assert panel["datasource"] == DATASOURCE, title
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{title}: no unit"
        assert panel["targets"], f"{title}: no query"
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), title
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, title
            assert target["expr"].strip(), title


def test_dashboard_panels_do_not_overlap():
    cells: dict[tuple[int, int], str] = {}
    for panel in panels(json.loads(DASHBOARD.read_text(encoding="utf-8"))):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_dashboard_query_parses():
    queries = panel_queries(DASHBOARD)
    assert len(queries) >= 20
    for title, expr in queries:
        try:
            promql_parser.parse(expr)
        except ValueError as error:
            pytest.fail(f"{title}: {expr!r} does not parse: {error}")


def test_the_seed_panels_keep_their_queries_verbatim():
    queries: dict[str, list[str]] = {}
    for title, expr in panel_queries(DASHBOARD):
        queries.setdefault(title, []).append(expr)
    for title, expected in SEED_PANELS.items():
        assert queries.get(title) == expected, title


def test_the_dashboard_covers_api_predictions_training_and_alerts():
    series = {name for _, expr in panel_queries(DASHBOARD) for name, _ in selectors(expr)}
    assert {
        "loraforge_http_request_duration_seconds_bucket",
        "loraforge_http_requests_total",
        "lf_serve_request_duration_seconds_bucket",
        "lf_serve_request_count_total",
        "loraforge_training_samples_per_second",
        "loraforge_training_tokens_per_second",
        "ALERTS",
    } <= series


def test_prometheus_own_parser_accepts_every_dashboard_and_alert_query(promtool, tmp_path):
    # promql-parser is a reimplementation; Prometheus' parser (through recording rules)
    # also checks the types, e.g. a range vector where an instant vector belongs.
    queries = panel_queries(DASHBOARD) + alert_queries()
    rules = [
        {"record": f"loraforge:query_{i}", "expr": expr} for i, (_, expr) in enumerate(queries)
    ]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "queries", "rules": rules}]}))
    run_promtool(promtool, "check", "rules", str(path), cwd=tmp_path)


def exported_series(text: str) -> set[str]:
    """The series names an exposition can produce, also of families without samples yet
    (labelled metrics that nothing has observed)."""
    suffixes = {
        "counter": ["_total", "_created"],
        "histogram": ["_bucket", "_sum", "_count", "_created"],
        "summary": ["_sum", "_count", "_created", ""],
        "gauge": [""],
    }
    names = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in suffixes.get(family.type, [""]))
        names.update(sample.name for sample in family.samples)
    return names


def test_every_series_queried_is_one_loraforge_exports(tmp_path):
    from prometheus_client import CollectorRegistry, generate_latest

    from loraforge.monitoring.metrics import exposition
    from loraforge.monitoring.system_metrics import SystemCollector
    from loraforge.monitoring.worker_metrics import WorkerJobsCollector
    from loraforge.serving.metrics import ServeMetrics

    database_url = f"sqlite:///{tmp_path / 'loraforge.db'}"
    worker = CollectorRegistry(auto_describe=False)
    worker.register(SystemCollector())
    worker.register(WorkerJobsCollector(database_url))
    texts = [
        exposition(database_url)[0],
        ServeMetrics().exposition()[0],
        generate_latest(worker),
    ]
    # Prometheus' own: a target's `up` and the rule engine's ALERTS.
    known = {"up", "ALERTS"}
    for text in texts:
        known |= exported_series(text.decode())
    for title, expr in panel_queries(DASHBOARD) + alert_queries():
        for series, _ in selectors(expr):
            assert series in known, f"{title}: {series} is not exported by loraforge"
