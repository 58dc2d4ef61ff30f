"""`loraforge registry …`, `loraforge predict --model` and `registry.register_as` in a
training config, through typer's CliRunner on a real (tiny) run; the exit codes of
refusals (3 not found, 4 forbidden, 7 conflict, 9 MLflow unreachable).

Sentence embeddings are the fast stand-in of tests/test_api_registry.py.
"""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from sqlalchemy import inspect
from test_api_registry import fake_embed
from typer.testing import CliRunner

from loraforge.cli.app import app
from loraforge.db.engine import session_scope
from loraforge.db.models import Experiment
from loraforge.registry import embeddings
from loraforge.settings import Settings, get_settings

runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_model_dir, data_files):
    """`loraforge train` of a config that asks to be registered as `trained`, plus a copy
    of its experiment with a worse score, in this module's own data directory."""
    from conftest import tiny_config_tree

    root = tmp_path_factory.mktemp("registry-cli")
    patch = pytest.MonkeyPatch()
    patch.setattr(embeddings, "embed", fake_embed)
    patch.setenv("LORAFORGE_DATA_DIR", str(root / "state"))
    patch.setenv("LORAFORGE_RESULTS_DIR", str(root / "results"))
    get_settings.cache_clear()
    tree = tiny_config_tree(tiny_model_dir, data_files, epochs=1)
    tree["registry"] = {"register_as": "trained", "task": "sentiment"}
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump(tree))
    trained = cli("train", str(config))
    assert trained.exit_code == 0, trained.output
    settings = Settings(data_dir=root / "state", results_dir=root / "results")
    with session_scope(settings.resolved_database_url()) as session:
        [source] = session.query(Experiment).all()
        columns = {a.key: getattr(source, a.key) for a in inspect(Experiment).column_attrs}
        metrics = copy.deepcopy(columns["metrics"])
        metrics["final"]["f1_macro"] = 0.01
        session.add(Experiment(**{**columns, "id": "worse", "metrics": metrics}))
    yield {"train_output": trained.output, "experiment": source.id, "settings": settings}
    patch.undo()
    get_settings.cache_clear()


def test_train_registers_when_the_config_asks(world):
    assert "registered  trained:1 (stage none)" in world["train_output"]
    shown = json.loads(cli("registry", "show", "trained", "--version", "1", "--json").output)
    assert shown["experiment_id"] == world["experiment"] and shown["task"] == "sentiment"
    assert shown["owner"].startswith("cli:")  # the machine's operator


def test_register_promote_and_history(world):
    done = cli(
        "registry", "register", "latest", "--name", "flow", "--tag", "team=support", "--json"
    )
    assert done.exit_code == 0, done.output
    body = json.loads(done.output)
    assert (body["reference"], body["stage"], body["tags"]) == (
        "flow:1",
        "none",
        {"team": "support"},
    )
    assert "model_dir" not in body
    text = cli("registry", "register", world["experiment"], "--name", "flow")
    assert text.exit_code == 0 and "registered flow version 2" in text.output
    assert "registry promote flow 2 --stage Staging" in text.output

    staged = cli("registry", "promote", "flow", "1", "--stage", "staging")  # any case
    assert staged.exit_code == 0 and "flow version 1 is now Staging" in staged.output
    assert cli("registry", "promote", "flow", "1", "--stage", "Production").exit_code == 0
    history = cli("registry", "history", "flow")
    assert history.exit_code == 0
    assert "Staging → Production" in history.output and "registered" in history.output
    steps = json.loads(cli("registry", "history", "flow", "--json").output)
    assert [(s["version"], s["to_stage"]) for s in steps] == [
        (1, "Production"),
        (1, "Staging"),
        (2, "none"),
        (1, "none"),
    ]
    assert steps[0]["actor"].startswith("cli:")

    listed = cli("registry", "list")
    assert listed.exit_code == 0 and "flow" in listed.output and "v1 (macro-F1" in listed.output
    shown = cli("registry", "show", "flow")
    assert "Production" in shown.output and world["experiment"] in shown.output
    assert json.loads(cli("registry", "list", "--json").output)[0]["name"] == "flow"


def test_refusals_have_their_exit_codes(world, monkeypatch):
    cli("registry", "register", "worse", "--name", "gate")
    cli("registry", "register", world["experiment"], "--name", "gate")
    for version in ("1", "2"):
        cli("registry", "promote", "gate", version, "--stage", "Staging")
    assert cli("registry", "promote", "gate", "2", "--stage", "Production").exit_code == 0

    # 7: the gate, with both numbers; then forced with a reason.
    gated = cli("registry", "promote", "gate", "1", "--stage", "Production")
    assert gated.exit_code == 7, gated.output
    assert "0.0100" in gated.output and "force" in gated.output
    no_reason = cli("registry", "promote", "gate", "1", "--stage", "Production", "--force")
    assert no_reason.exit_code == 2 and "reason" in no_reason.output
    forced = cli(
        "registry", "promote", "gate", "1", "--stage", "Production", "--force", "--reason", "ok"
    )
    assert forced.exit_code == 0 and "(forced)" in forced.output
    # 7: a move not in the table, naming the allowed ones.
    jump = cli("registry", "promote", "gate", "1", "--stage", "Staging")
    assert jump.exit_code == 7 and "Archived" in jump.output
    # 3: no such model or version.
    assert cli("registry", "show", "nothing").exit_code == 3
    assert cli("registry", "promote", "gate", "9", "--stage", "Staging").exit_code == 3
    assert cli("registry", "register", "no-such-run", "--name", "x").exit_code == 3
    assert cli("registry", "register", "latest", "--name", "x", "--owner", "ghost").exit_code == 3
    # 2: bad input, refused before anything runs.
    assert cli("registry", "promote", "gate", "1", "--stage", "Nowhere").exit_code == 2
    assert cli("registry", "register", "latest", "--name", "bad name").exit_code == 2
    assert cli("registry", "register", "latest", "--name", "x", "--tag", "novalue").exit_code == 2

    # 4: an operator without the admin role (not the CLI's own; the mapping is the point).
    from loraforge.auth.users import UserRecord, local_operator

    plain = UserRecord(**{**local_operator().__dict__, "role": "user"})
    monkeypatch.setattr("loraforge.auth.users.local_operator", lambda: plain)
    forbidden = cli("registry", "promote", "gate", "1", "--stage", "Archived")
    assert forbidden.exit_code == 4, forbidden.output
    monkeypatch.undo()

    # 9: MLflow unreachable; nothing changed.
    from loraforge.tracking import mlflow_bridge

    def unreachable(uri):
        raise ConnectionError("connection refused")

    monkeypatch.setattr(mlflow_bridge, "_client", unreachable)
    offline = cli("registry", "promote", "gate", "1", "--stage", "Archived")
    assert offline.exit_code == 9, offline.output
    assert "MLflow" in offline.output
    monkeypatch.undo()
    shown = json.loads(cli("registry", "show", "gate", "--version", "1", "--json").output)
    assert shown["stage"] == "Production"  # neither refusal changed anything


def test_cards_as_text_markdown_and_json_and_their_edits(world):
    cli("registry", "register", "latest", "--name", "card")
    markdown = cli("registry", "card", "card", "1", "--markdown")
    assert markdown.exit_code == 0 and markdown.output.startswith("---\n")
    assert "library_name: peft" in markdown.output
    shown = cli("registry", "card", "card", "1")
    assert shown.exit_code == 0 and "library_name" not in shown.output  # the body, rendered
    data = json.loads(cli("registry", "card", "card", "1", "--json").output)
    assert {"base_model", "metrics", "embedding"} <= set(data)
    edited = cli("registry", "card", "card", "1", "--intended-use", "Tiny demos.", "--json")
    assert edited.exit_code == 0 and json.loads(edited.output)["intended_use"] == "Tiny demos."


def test_search_and_recommend(world):
    cli("registry", "register", "latest", "--name", "lookup", "--tag", "domain=tiny")
    found = json.loads(
        cli("registry", "search", "--name", "lookup", "--tag", "domain=tiny", "--json").output
    )
    assert found["total"] == 1 and found["data"][0]["reference"] == "lookup:1"
    table = cli("registry", "search", "--name", "lookup")
    assert table.exit_code == 0 and "lookup" in table.output and "1-1 of 1" in table.output
    assert cli("registry", "search", "--metric", "loss").exit_code == 2

    ranked = cli("registry", "recommend", "tiny sentiment", "--limit", "50", "--json")
    assert ranked.exit_code == 0, ranked.output
    answers = json.loads(ranked.output)
    assert "lookup:1" in [a["model"]["reference"] for a in answers]
    assert all(a["reasons"] for a in answers)
    assert cli("registry", "recommend").exit_code == 2  # neither a text nor --dataset
    assert cli("registry", "recommend", "x", "--dataset", "y").exit_code == 2
    assert cli("registry", "recommend", "--dataset", "no-such-upload").exit_code == 3


def test_predict_with_a_registry_reference(world):
    cli("registry", "register", "latest", "--name", "served")
    cli("registry", "promote", "served", "1", "--stage", "Staging")
    for reference in ("served@staging", "served:1"):
        done = cli("predict", "--model", reference, "good flight")
        assert done.exit_code == 0, done.output
        answer = json.loads(done.output.strip())
        assert answer["text"] == "good flight" and answer["label"] in ("positive", "negative")
    missing = cli("predict", "--model", "served@production", "good flight")
    assert missing.exit_code == 3 and "no Production version" in missing.output
    both = cli("predict", "--model", "served:1", "--experiment", "latest", "x")
    assert both.exit_code == 2


def test_sync_reports_what_it_checked(world):
    done = cli("registry", "sync", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["models"] >= 1 and report["versions"] >= 1 and "in_step" in report


def test_register_on_behalf_of_a_user(world):
    from loraforge.auth import users

    url = world["settings"].resolved_database_url()
    with session_scope(url) as session:
        alice = users.create_user(session, username="alice", password="long enough password")
        source = session.get(Experiment, world["experiment"])
        columns = {a.key: getattr(source, a.key) for a in inspect(Experiment).column_attrs}
        session.add(Experiment(**{**columns, "id": "alices", "owner_id": alice.id}))
    done = cli("registry", "register", "alices", "--name", "hers", "--owner", "alice", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["owner"] == "alice"
    # Only her own experiments: the operator's run reads as missing to her.
    theirs = cli("registry", "register", world["experiment"], "--name", "x", "--owner", "alice")
    assert theirs.exit_code == 3
