"""Recommending registered models for a need said in words, a vector, or an uploaded data set.

Every candidate is scored by brute-force cosine in numpy against the unit vectors stored
with each version (registry/embeddings.py): the card's ``embedding`` for a query or a
vector, and for a data set a blend of the version's ``data_embedding`` (its training
data) and card. The cosine itself takes milliseconds even over 100k versions; what
grows is reading the stored JSON vectors (about 0.1 ms each): about 0.13 s a query at
1k versions, 1 s at 10k, 10 s at 100k (``benchmarks/recommend_scale.py`` prints them).
Past a few thousand, keep the matrix in memory or move to a vector index.

Two small, documented boosts sit on top of the cosine, because they are facts the
embedding only hints at: the same language (a Chinese data set wants a Chinese model,
and MiniLM, trained on English, tells Chinese texts apart poorly) and the same label
set. Every answer says in words what matched.

Versions registered before embeddings existed get their card embedding computed on
first use and stored (so they are not silently left out); one without any usable vector
is skipped with a log line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import literal, select
from sqlalchemy.orm import Session

from loraforge.auth.users import UserRecord
from loraforge.data import store
from loraforge.data.loading import Columns, read_table, select_columns
from loraforge.db.engine import session_scope
from loraforge.db.models import Experiment, ModelVersion
from loraforge.errors import DatasetError, InvalidRequest
from loraforge.registry import embeddings
from loraforge.registry.records import VersionInfo, version_infos
from loraforge.registry.search import check_stage, language_code
from loraforge.registry.versions import NONE, PRODUCTION, STAGING
from loraforge.settings import Settings

log = logging.getLogger(__name__)

MAX_LIMIT = 100
MAX_QUERY = 2000
SAMPLE_SIZE = 200  # texts read from a data set; its centroid is stable well before that
SAMPLE_SEED = 0  # the same data set always gives the same vector

# For a data set: how much its cosine with a version's training data counts against its
# cosine with the card (the rest). The training data is the closer description of what a
# model has seen; the card adds the task's words. Chosen with embeddings.TEXT_WEIGHT by
# the same measurement (tests/test_registry_recommend.py).
DATA_WEIGHT = 0.7
# Added to the cosine when the language is the same. Between a card that fits a need and
# one for the same kind of task in another language ("which model tells if a customer
# review is happy or angry": an English airline-tweet model, a Chinese product-review
# model) the cosine differs by about 0.1, in the wrong direction there; cosines with
# unrelated cards are 0.3-0.5 lower. 0.15 orders the former by the fact and cannot lift
# an unrelated card over a match.
LANGUAGE_BOOST = 0.15
LABEL_BOOST = 0.10  # times the Jaccard overlap of the label sets
# A version the team has vetted ranks above an unvetted one of the same fit: versions of
# one model differ by a few hundredths in cosine (their cards share most words), so this
# orders them by stage, and is too small to lift an unrelated model over a matching one.
STAGE_BOOST = {PRODUCTION: 0.05, STAGING: 0.02}

# Archived versions only when asked for (stage="Archived" or include_archived).
DEFAULT_STAGES = (PRODUCTION, STAGING, NONE)


@dataclass(frozen=True)
class Recommendation:
    version: VersionInfo
    score: float
    reasons: list[str]


@dataclass(frozen=True)
class _Target:
    """What the candidates are compared with."""

    vector: np.ndarray
    kind: str  # "query" | "embedding" | "dataset"
    query: str | None = None
    language: str | None = None  # what the query or data set is written in / names
    language_named: bool = False  # the query names the language ("Chinese", "中文")
    labels: tuple[str, ...] = ()  # a data set's label names
    dataset_name: str | None = None


# --- input checks -----------------------------------------------------------------------


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(
            f"limit must be a whole number from 1 to {MAX_LIMIT}, not {limit!r}", field="limit"
        )


def _check_embedding(embedding: Any) -> np.ndarray:
    size = embeddings.DIMENSION
    hint = (
        f"Send {size} finite numbers, e.g. a vector from the {embeddings.MODEL_NAME} "
        "sentence model (mean pooling)."
    )
    if not isinstance(embedding, (list, tuple)):
        raise InvalidRequest("embedding must be a list of numbers", hint=hint, field="embedding")
    if len(embedding) != size:
        raise InvalidRequest(
            f"embedding has {len(embedding)} numbers; expected {size}", hint=hint, field="embedding"
        )
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in embedding):
        raise InvalidRequest("embedding must hold only numbers", hint=hint, field="embedding")
    vector = np.asarray(embedding, dtype=np.float64)
    if not np.isfinite(vector).all():
        raise InvalidRequest(
            "embedding holds NaN or infinite numbers", hint=hint, field="embedding"
        )
    # Scaled first so that huge (finite) numbers do not overflow the norm.
    peak = float(np.abs(vector).max())
    if peak == 0.0:
        raise InvalidRequest(
            "embedding is all zeros: it has no direction", hint=hint, field="embedding"
        )
    vector = vector / peak
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def _check_query(query: Any) -> str:
    if not isinstance(query, str) or not query.strip():
        raise InvalidRequest(
            "the query is empty", hint="Describe in words what the model should do.", field="query"
        )
    if len(query) > MAX_QUERY:
        raise InvalidRequest(
            f"the query has {len(query)} characters; at most {MAX_QUERY}", field="query"
        )
    return query.strip()


# --- languages and words ----------------------------------------------------------------

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_LATIN = re.compile(r"[A-Za-z]")
# Words in a query that name a language (the code experiments store).
_LANGUAGE_NAMES = {
    "english": "en",
    "英文": "en",
    "英语": "en",
    "chinese": "zh",
    "mandarin": "zh",
    "中文": "zh",
    "汉语": "zh",
    "漢語": "zh",
    "german": "de",
    "french": "fr",
    "spanish": "es",
    "japanese": "ja",
    "korean": "ko",
}


def script_language(texts: Iterable[str]) -> str | None:
    """The language a set of texts is written in, by script: zh, ja, ko, en or None.

    Counting characters is enough to tell the scripts apart (all this is used for); it
    cannot tell English from French, so Latin script reads as "en" only when nearly all
    of it is plain ASCII letters.
    """
    counts = {"cjk": 0, "kana": 0, "hangul": 0, "latin": 0, "other": 0}
    for text in texts:
        for char in str(text):
            if not char.isalpha():
                continue
            if _KANA.match(char):
                counts["kana"] += 1
            elif _CJK.match(char):
                counts["cjk"] += 1
            elif _HANGUL.match(char):
                counts["hangul"] += 1
            elif _LATIN.match(char):
                counts["latin"] += 1
            else:
                counts["other"] += 1
    total = sum(counts.values())
    if total == 0:
        return None
    if counts["kana"] / total > 0.1:
        return "ja"
    if counts["hangul"] / total > 0.3:
        return "ko"
    if counts["cjk"] / total > 0.3:
        return "zh"
    if counts["latin"] / total > 0.95:
        return "en"
    return None


def _has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def _mentions(query: str, word: str) -> bool:
    """Whether ``word`` appears in ``query`` (both lower case): as a whole word (plurals
    too) in Latin script, as a substring in Chinese, which has no spaces between words."""
    word = word.strip().lower()
    if not word:
        return False
    if _has_cjk(word):
        return word in query
    return re.search(rf"(?<!\w){re.escape(word)}(?:s|es)?(?!\w)", query) is not None


def _words_of(text: str) -> list[str]:
    """The words of a name or task worth looking for in a query (3+ letters, or Chinese)."""
    return [w for w in re.split(r"[^\w]+|_", text.lower()) if len(w) >= 3 or _has_cjk(w)]


def _named_language(query: str) -> str | None:
    lowered = query.lower()
    for word, code in _LANGUAGE_NAMES.items():
        if _mentions(lowered, word):
            return code
    return None


def _label_names(labels: Iterable[Any]) -> list[str]:
    names = []
    for label in labels or []:
        if isinstance(label, dict):
            label = label.get("name", label.get("label"))
        if label is not None and str(label).strip():
            names.append(str(label).strip())
    return names


def _quote_list(values: Iterable[str]) -> str:
    return ", ".join(str(v) for v in values)


# --- targets ----------------------------------------------------------------------------


def _query_target(query: str) -> _Target:
    named = _named_language(query)
    # Unless it names one, a query asks for the language it is written in: whoever asks
    # in English about "customer reviews" most likely has English reviews to classify.
    language = named or script_language([query])
    return _Target(
        vector=embeddings.embed([query])[0],
        kind="query",
        query=query,
        language=language,
        language_named=named is not None,
    )


def read_dataset_sample(
    settings: Settings, *, dataset_id: str, user: UserRecord
) -> tuple[str, list[str], list[str]]:
    """(display name, ≤ SAMPLE_SIZE texts chosen with a fixed seed, label names) of an
    upload the user may read: their own, or any for an admin; others are NotFound."""
    with session_scope(settings.resolved_database_url()) as session:
        record = store.get_dataset(
            session, dataset_id=dataset_id, user_id=user.id, is_admin=user.is_admin
        )
        path = store.dataset_path(
            record, datasets_dir=settings.resolved_datasets_dir(), session=session
        )
    if not path.is_file():
        raise DatasetError(
            f"the stored file of data set {record.name} ({record.id}) is missing",
            hint="Upload the data set again, or ask an administrator to restore the file.",
        )
    # Read outside the transaction: a large file takes a while.
    try:
        frame = select_columns(
            read_table(path),
            Columns(text=record.text_column, label=record.label_column),
            source=record.name,
        )
    except DatasetError as error:
        # The stored file's generated path means nothing to the user (and is the server's).
        raise DatasetError(
            str(error.message).replace(str(path), record.name), hint=error.hint
        ) from None
    texts = frame["text"].dropna().map(str)
    texts = texts[texts.str.strip() != ""]
    if len(texts) > SAMPLE_SIZE:
        texts = texts.sample(n=SAMPLE_SIZE, random_state=SAMPLE_SEED)
    # Most frequent first, as the upload's report counted them.
    labels = [str(k) for k, _ in sorted(record.label_counts.items(), key=lambda kv: -kv[1])]
    if not labels:
        labels = [str(v) for v in frame["label"].dropna().unique()]
    return record.name, list(texts), labels


def _dataset_target(name: str, texts: list[str], labels: list[str]) -> _Target:
    if not texts:
        raise InvalidRequest(
            f"data set {name} has no texts to compare with",
            hint="Upload a data set with a non-empty text column.",
            field="dataset_id",
        )
    vector = np.asarray(embeddings.dataset_embedding(texts, labels), dtype=np.float32)
    return _Target(
        vector=vector,
        kind="dataset",
        language=script_language(texts),
        labels=tuple(labels),
        dataset_name=name,
    )


# --- candidates -------------------------------------------------------------------------


def _card_fields(info: VersionInfo) -> dict[str, Any]:
    """The card keys ``embeddings.card_text`` reads, from a version (as the service's card
    would hold them): for versions registered before they had an embedding."""
    return {
        "name": info.name,
        "description": info.description,
        "task": info.task,
        "language": info.language,
        "labels": info.labels,
        "tags": info.tags,
        "intended_use": info.intended_use,
        "base_model": info.base_model,
    }


def _fill_missing_embeddings(session: Session, rows: list[ModelVersion]) -> None:
    """Compute and store the card embedding of versions registered without one. Two
    requests doing it at once write the same vector: harmless."""
    if not rows:
        return
    infos = version_infos(session, rows)
    vectors = embeddings.embed([embeddings.card_text(_card_fields(i)) for i in infos])
    for row, vector in zip(rows, vectors, strict=True):
        row.embedding = embeddings.as_stored(vector)
    session.flush()
    log.info("computed the card embedding of %d registered version(s) without one", len(rows))


def _as_vector(value: Any) -> np.ndarray | None:
    if not isinstance(value, list) or len(value) != embeddings.DIMENSION:
        return None
    vector = np.asarray(value, dtype=np.float32)
    if not np.isfinite(vector).all():
        return None
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else None


def _matrix(vectors: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """Rows stacked (zeros where missing) and a mask of the rows present."""
    present = np.array([v is not None for v in vectors], dtype=bool)
    matrix = np.zeros((len(vectors), embeddings.DIMENSION), dtype=np.float32)
    for i, vector in enumerate(vectors):
        if vector is not None:
            matrix[i] = vector
    return matrix, present


def _label_jaccard(ours: Iterable[str], theirs: Iterable[str]) -> float:
    a = {str(x).strip().lower() for x in ours}
    b = {str(x).strip().lower() for x in theirs}
    return len(a & b) / len(a | b) if a and b else 0.0


# --- reasons ----------------------------------------------------------------------------


def _query_reasons(info: VersionInfo, target: _Target) -> list[str]:
    query = (target.query or "").lower()
    reasons = []
    if info.task and any(_mentions(query, w) for w in [*_words_of(info.task), info.task]):
        reasons.append(f"task '{info.task}' appears in your query")
    if target.language and info.language == target.language:
        word = embeddings.language_word(info.language)
        how = "is named in" if target.language_named else "is the language of"
        reasons.append(f"language {word} ({info.language}) {how} your query")
    labels = [lab for lab in _label_names(info.labels) if _mentions(query, lab)]
    if len(labels) == 1:
        reasons.append(f"label {labels[0]} appears in your query")
    elif labels:
        reasons.append(f"labels {_quote_list(labels)} appear in your query")
    name_words = [w for w in _words_of(info.name) if _mentions(query, w)]
    if name_words:
        reasons.append(f"name '{info.name}' matches '{_quote_list(name_words)}' in your query")
    tags = [f"{k}={v}" for k, v in info.tags.items() if _mentions(query, v) or _mentions(query, k)]
    if tags:
        many = len(tags) > 1
        reasons.append(
            f"{'tags' if many else 'tag'} {_quote_list(tags)} {'match' if many else 'matches'} "
            "your query"
        )
    return reasons


def _dataset_reasons(info: VersionInfo, target: _Target) -> list[str]:
    reasons = []
    if target.language and info.language == target.language:
        reasons.append(f"language matches the data set ({info.language})")
    ours = _label_names(info.labels)
    shared = sorted({lab.lower() for lab in ours} & {lab.lower() for lab in target.labels}, key=str)
    if shared and _label_jaccard(ours, target.labels) == 1.0:
        reasons.append(f"labels {_quote_list(ours)} match the data set's labels")
    elif shared:
        reasons.append(
            f"labels {_quote_list(shared)} are shared with the data set "
            f"(it has {_quote_list(target.labels)}; the model {_quote_list(ours)})"
        )
    return reasons


# --- the ranking --------------------------------------------------------------------------


def _candidate_rows(
    session: Session, *, language: str | None, stages: tuple[str, ...] | None, with_data: bool
) -> list[tuple[Any, ...]]:
    """(id, card vector, data vector or None, language, labels, stage) of every candidate; the
    training-data vectors are only read (JSON decoding is most of the cost) when needed."""
    statement = select(
        ModelVersion.id,
        ModelVersion.embedding,
        ModelVersion.data_embedding if with_data else literal(None),
        Experiment.language,
        Experiment.labels,
        ModelVersion.stage,
    ).join(Experiment, Experiment.id == ModelVersion.experiment_id)
    if stages is not None:
        statement = statement.where(ModelVersion.stage.in_(stages))
    if language:
        statement = statement.where(Experiment.language == language)
    # In id order: equal scores then rank the older registration first, every time.
    return list(session.execute(statement.order_by(ModelVersion.id)).all())


def _rank(
    session: Session,
    target: _Target,
    *,
    language: str | None,
    stages: tuple[str, ...] | None,
    limit: int,
) -> list[Recommendation]:
    with_data = target.kind == "dataset"
    rows = _candidate_rows(session, language=language, stages=stages, with_data=with_data)
    if not rows:
        return []
    ids = [r[0] for r in rows]
    card_vectors = [_as_vector(r[1]) for r in rows]
    # Missing (registered before embeddings) or unusable (wrong size): computed now, stored.
    missing_ids = [row_id for row_id, v in zip(ids, card_vectors, strict=True) if v is None]
    if missing_ids:
        missing = list(
            session.scalars(select(ModelVersion).where(ModelVersion.id.in_(missing_ids)))
        )
        _fill_missing_embeddings(session, missing)
        filled = {row.id: _as_vector(row.embedding) for row in missing}
        card_vectors = [
            filled.get(i) if v is None else v for i, v in zip(ids, card_vectors, strict=True)
        ]

    cards, has_card = _matrix(card_vectors)
    card_cos = cards @ target.vector
    score = card_cos.copy()
    data_cos = np.zeros_like(card_cos)
    has_data = np.zeros(len(rows), dtype=bool)
    if with_data:
        data, has_data = _matrix([_as_vector(r[2]) for r in rows])
        data_cos = data @ target.vector
        both = has_card & has_data
        score = np.where(both, DATA_WEIGHT * data_cos + (1 - DATA_WEIGHT) * card_cos, score)
        score = np.where(has_data & ~has_card, data_cos, score)
    usable = has_card | has_data
    for row_id, ok in zip(ids, usable, strict=True):
        if not ok:
            log.warning("registered version id %s has no usable embedding: skipped", row_id)

    for i, (_, _, _, row_language, row_labels, row_stage) in enumerate(rows):
        score[i] += STAGE_BOOST.get(row_stage, 0.0)
        if target.language and row_language == target.language:
            score[i] += LANGUAGE_BOOST
        if target.labels:
            score[i] += LABEL_BOOST * _label_jaccard(_label_names(row_labels or []), target.labels)

    order = [i for i in np.argsort(-score, kind="stable") if usable[i]][:limit]
    if not order:
        return []
    top = {
        row.id: row
        for row in session.scalars(
            select(ModelVersion).where(ModelVersion.id.in_([ids[i] for i in order]))
        )
    }
    infos = version_infos(session, [top[ids[i]] for i in order])
    out = []
    for i, info in zip(order, infos, strict=True):
        if target.kind == "query":
            reasons = _query_reasons(info, target)
        elif target.kind == "dataset":
            reasons = _dataset_reasons(info, target)
        else:
            reasons = []
        if info.stage in STAGE_BOOST:
            reasons.append(f"in {info.stage}")
        if has_data[i]:
            reasons.append(f"cosine {data_cos[i]:.2f} with its training data")
        if has_card[i]:
            reasons.append(f"cosine {card_cos[i]:.2f} with the card")
        out.append(Recommendation(version=info, score=round(float(score[i]), 4), reasons=reasons))
    return out


def recommend(
    settings: Settings,
    *,
    query: str | None = None,
    embedding: list[float] | None = None,
    dataset_id: str | None = None,
    user: UserRecord,
    language: str | None = None,
    stage: str | None = None,
    include_archived: bool = False,
    limit: int = 5,
) -> list[Recommendation]:
    """Registered versions ranked for a need: exactly one of a query in words, a
    384-number vector, or an uploaded data set's id (the user's own, or any for an admin).

    Hard filters: ``language`` (code or word) and ``stage``; by default Production,
    Staging and unstaged versions, Archived only when ``stage="Archived"`` or
    ``include_archived``. Each answer carries its score and the reasons in words.
    """
    given = [
        n
        for n, v in (("query", query), ("embedding", embedding), ("dataset_id", dataset_id))
        if v is not None
    ]
    if len(given) != 1:
        raise InvalidRequest(
            "give exactly one of query, embedding or dataset_id"
            + (f" (got {', '.join(given)})" if given else ""),
            hint="A query in words, a 384-number embedding, or the id of an uploaded data set.",
        )
    _check_limit(limit)
    stage = check_stage(stage)
    if stage is not None:
        stages: tuple[str, ...] | None = (stage,)
    elif include_archived:
        stages = None
    else:
        stages = DEFAULT_STAGES
    wanted_language = language_code(language)

    # The model runs before any transaction is opened: it takes a second or two.
    if query is not None:
        target = _query_target(_check_query(query))
    elif embedding is not None:
        target = _Target(vector=_check_embedding(embedding), kind="embedding")
    else:
        if not isinstance(dataset_id, str) or not dataset_id.strip():
            raise InvalidRequest("dataset_id must be a data set's id", field="dataset_id")
        name, texts, labels = read_dataset_sample(
            settings, dataset_id=dataset_id.strip(), user=user
        )
        target = _dataset_target(name, texts, labels)
    with session_scope(settings.resolved_database_url()) as session:
        return _rank(session, target, language=wanted_language, stages=stages, limit=limit)
