"""Registry search: filters, the metric floor, sorting, paging, archived hidden, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from services import available, fresh_postgres_database
from sqlalchemy import update

from loraforge.auth.users import UserRecord
from loraforge.db.engine import session_scope
from loraforge.db.models import Experiment, ModelVersion, User
from loraforge.errors import InvalidRequest
from loraforge.registry import search as registry_search
from loraforge.registry import versions
from loraforge.settings import Settings

NOW = datetime(2026, 11, 29, tzinfo=UTC)

# name, base model, language, task, tags, f1, accuracy, stage
ROWS = [
    ("airline_sentiment", "minilm-l6", "en", "sentiment", {"team": "cx"}, 0.81, 0.85, "Production"),
    ("airline_sentiment", "minilm-l6", "en", "sentiment", {"team": "cx"}, 0.86, 0.88, "Staging"),
    ("airline_sentiment", "minilm-l6", "en", "sentiment", {"team": "cx"}, 0.70, 0.75, "Archived"),
    (
        "news-topics",
        "roberta-base",
        "en",
        "Topic classification",
        {"team": "news"},
        0.90,
        0.91,
        "none",
    ),
    (
        "zh-reviews",
        "bert-base-chinese",
        "zh",
        "sentiment",
        {"team": "cx", "shop": "tmall"},
        0.77,
        0.80,
        "Staging",
    ),
    ("spam.filter", "minilm-l6", "en", "spam detection", {}, None, None, "none"),
    ("airlinexsentiment", "minilm-l6", "en", None, {}, 0.60, 0.65, "none"),
]


def add_user(url: str, username: str, role: str = "user") -> UserRecord:
    with session_scope(url) as session:
        row = User(username=username, password_hash="x", role=role, is_active=True, created_at=NOW)
        session.add(row)
        session.flush()
        return UserRecord.from_row(row)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def settings(request, tmp_path_factory) -> Iterator[Settings]:
    """Seven versions of five models, registered one day apart (row i on day i), in
    SQLite and (when a server answers) PostgreSQL: the filters are SQL in part."""
    root = tmp_path_factory.mktemp("search")
    if request.param == "sqlite":
        yield _populated(Settings(data_dir=root / "state", results_dir=root / "results"))
        return
    if not available(5432, "PostgreSQL"):
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432")
    with fresh_postgres_database() as url:
        yield _populated(
            Settings(data_dir=root / "state", results_dir=root / "results", database_url=url)
        )


def _populated(settings: Settings) -> Settings:
    url = settings.resolved_database_url()
    alice = add_user(url, "alice")
    for i, (name, base, language, task, tags, f1, accuracy, stage) in enumerate(ROWS):
        final = {} if f1 is None else {"f1_macro": f1, "accuracy": accuracy}
        with session_scope(url) as session:
            session.add(
                Experiment(
                    id=f"exp{i}",
                    name=name,
                    status="succeeded",
                    created_at=NOW,
                    base_model=base,
                    language=language,
                    labels=["a", "b"],
                    config={},
                    eval_dataset_version="e" * 64,
                    metrics={"final": final},
                    results_dir="/r",
                    owner_id=alice.id,
                )
            )
        with session_scope(url) as session:
            info = versions.register(
                session, experiment_id=f"exp{i}", name=name, tags=tags, user=alice
            )
            # Stages and dates set directly: the transitions themselves are tested elsewhere.
            session.execute(
                update(ModelVersion)
                .where(ModelVersion.name == name, ModelVersion.version == info.version)
                .values(task=task, stage=stage, created_at=NOW + timedelta(days=i))
            )
    return settings


def refs(page) -> list[str]:
    return [v.reference for v in page.items]


def find(settings, **kw):
    return registry_search.search(settings, **kw)


def test_default_is_every_visible_version_best_f1_first_archived_hidden(settings):
    page = find(settings)
    assert refs(page) == [
        "news-topics:1",
        "airline_sentiment:2",
        "airline_sentiment:1",
        "zh-reviews:1",
        "airlinexsentiment:1",
        "spam.filter:1",  # no metric: last
    ]
    assert (page.total, page.limit, page.offset) == (6, 20, 0)
    first = page.items[0]
    assert (first.base_model, first.language, first.task, first.stage) == (
        "roberta-base",
        "en",
        "Topic classification",
        "none",
    )


def test_name_is_a_case_insensitive_substring_without_wildcards(settings):
    assert refs(find(settings, name="AIRLINE_")) == ["airline_sentiment:2", "airline_sentiment:1"]
    assert refs(find(settings, name="M.F")) == ["spam.filter:1"]
    assert refs(find(settings, name="%")) == []
    assert refs(find(settings, name="nothing-like-it")) == []


def test_base_model_language_task_and_tags(settings):
    assert refs(find(settings, base_model="BERT-base-chinese")) == ["zh-reviews:1"]
    assert refs(find(settings, base_model="bert")) == []  # a name, not a part of one
    assert refs(find(settings, language="zh")) == ["zh-reviews:1"]
    assert refs(find(settings, language="Chinese")) == ["zh-reviews:1"]
    assert refs(find(settings, task="TOPIC")) == ["news-topics:1"]
    assert refs(find(settings, task="sentiment", language="en")) == [
        "airline_sentiment:2",
        "airline_sentiment:1",
    ]
    assert refs(find(settings, tags={"team": "cx"})) == [
        "airline_sentiment:2",
        "airline_sentiment:1",
        "zh-reviews:1",
    ]
    assert refs(find(settings, tags={"team": "cx", "shop": "tmall"})) == ["zh-reviews:1"]
    assert refs(find(settings, tags={"team": "CX"})) == []


def test_stage_and_archived(settings):
    assert refs(find(settings, stage="Production")) == ["airline_sentiment:1"]
    assert refs(find(settings, stage="staging")) == ["airline_sentiment:2", "zh-reviews:1"]
    assert refs(find(settings, stage="Archived")) == ["airline_sentiment:3"]
    everything = find(settings, include_archived=True)
    assert everything.total == 7 and "airline_sentiment:3" in refs(everything)
    assert refs(find(settings, name="airline_", include_archived=True)) == [
        "airline_sentiment:2",
        "airline_sentiment:1",
        "airline_sentiment:3",
    ]


def test_min_metric_and_accuracy(settings):
    assert refs(find(settings, min_metric=0.8)) == [
        "news-topics:1",
        "airline_sentiment:2",
        "airline_sentiment:1",
    ]
    assert refs(find(settings, metric="accuracy", min_metric=0.85)) == [
        "news-topics:1",
        "airline_sentiment:2",
        "airline_sentiment:1",
    ]
    assert find(settings, min_metric=0.0).total == 5  # the one without a metric drops out


def test_sorting(settings):
    ascending = refs(find(settings, descending=False))
    assert ascending[0] == "airlinexsentiment:1"
    assert ascending[-1] == "spam.filter:1"  # without the metric: last either way
    assert refs(find(settings, sort="date")) == [
        "airlinexsentiment:1",
        "spam.filter:1",
        "zh-reviews:1",
        "news-topics:1",
        "airline_sentiment:2",
        "airline_sentiment:1",
    ]
    assert refs(find(settings, sort="date", descending=False))[0] == "airline_sentiment:1"


def test_paging(settings):
    whole = refs(find(settings))
    pages = [find(settings, limit=4, offset=offset) for offset in (0, 4, 8)]
    assert [refs(p) for p in pages] == [whole[:4], whole[4:], []]
    assert all(p.total == 6 for p in pages)
    assert (pages[1].limit, pages[1].offset) == (4, 4)


def test_every_user_sees_every_version(settings):
    # No user argument at all: the registry is the team's. Versions of alice's
    # experiments are what everybody finds.
    assert {v.owner for v in find(settings, include_archived=True).items} == {"alice"}


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"metric": "loss"}, "unknown metric 'loss'"),
        ({"stage": "Live"}, "unknown stage 'Live'"),
        ({"sort": "name"}, "unknown sort 'name'"),
        ({"limit": 0}, "limit must be a whole number from 1 to 100"),
        ({"limit": 101}, "limit must be"),
        ({"limit": True}, "limit must be"),
        ({"offset": -1}, "offset must be 0 or more"),
        ({"min_metric": float("nan")}, "min_metric must be a number"),
        ({"min_metric": "high"}, "min_metric must be a number"),
        ({"tags": {"team": 3}}, "tags must map text keys to text values"),
    ],
)
def test_refusals(settings, kw, message):
    with pytest.raises(InvalidRequest, match=message) as caught:
        find(settings, **kw)
    if "metric" in kw:
        assert caught.value.hint == "Use one of accuracy, f1_macro."
        assert caught.value.field == "metric"
