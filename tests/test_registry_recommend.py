# Chinese texts are written with full-width commas and colons, as real reviews are.
# ruff: noqa: RUF001
"""Recommendation: the right registered model comes first for a need in words, a vector or
an uploaded data set, with the real bundled MiniLM; and the refusals."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import update

from loraforge.auth.users import UserRecord
from loraforge.data import store
from loraforge.data.loading import Columns
from loraforge.db.engine import session_scope
from loraforge.db.models import Experiment, ModelVersion, User
from loraforge.errors import DatasetError, InvalidRequest, NotFound
from loraforge.registry import embeddings, recommend, versions
from loraforge.registry.recommend import Recommendation
from loraforge.settings import Settings

NOW = datetime(2026, 11, 29, tzinfo=UTC)


@dataclass
class Task:
    """One registered model: its card words, training texts and texts it has never seen."""

    name: str
    task: str
    language: str
    description: str
    labels: dict[str, list[str]]  # label → training texts
    unseen: dict[str, list[str]]  # label → texts for an uploaded data set
    tags: dict[str, str] = field(default_factory=dict)
    intended_use: str | None = None
    base_model: str = "minilm-l6"


AIRLINE = Task(
    name="airline-sentiment",
    task="sentiment",
    language="en",
    description="Sentiment of customer tweets about US airlines: positive, negative or neutral.",
    tags={"domain": "airlines", "source": "twitter"},
    intended_use="Triage of customer-service mentions on social media.",
    labels={
        "positive": [
            "@united thanks for the smooth flight to Denver, the crew was fantastic",
            "@SouthwestAir love the free snacks and the friendly gate agents!",
            "@JetBlue great legroom and the wifi actually worked, impressed",
            "@AmericanAir the pilot kept us updated the whole time, much appreciated",
            "@VirginAmerica best landing ever, smooth as butter",
            "@Delta upgraded to first class on my birthday, you made my day",
            "@united the agent in Newark rebooked me in two minutes, thank you",
            "@SouthwestAir on time departure and early arrival, perfect",
        ],
        "negative": [
            "@united lost my bag again, third time this year",
            "@AmericanAir delayed 4 hours and nobody at the gate knows anything",
            "@USAirways on hold for two hours, this customer service is a joke",
            "@JetBlue flight cancelled and no hotel voucher, stranded in Boston",
            "@Delta rude flight attendant and a broken seat, never again",
            "@united charged me $200 to change a flight that you delayed",
            "@SouthwestAir missed my connection because of your late departure",
            "@AmericanAir the app crashed at check-in and I missed boarding",
        ],
        "neutral": [
            "@united what is the baggage allowance for international flights?",
            "@JetBlue do you fly from Austin to Fort Lauderdale in March?",
            "@Delta can I bring a stroller on board?",
            "@SouthwestAir is there a fare sale this weekend?",
            "@AmericanAir flight 1234 now boarding from gate B12",
            "@VirginAmerica when do you start flying to Hawaii?",
            "@USAirways how early should I arrive for a domestic flight?",
            "@united changing planes in Chicago tomorrow",
        ],
    },
    unseen={
        "positive": [
            "@JetBlue your team at JFK went above and beyond today, thanks!",
            "@Delta fastest boarding I've ever seen, well done",
            "@united the new seats are so comfortable, loved the flight",
            "@SouthwestAir flight attendants sang happy birthday to my daughter",
        ],
        "negative": [
            "@AmericanAir sitting on the tarmac for 3 hours with no water",
            "@united my flight got cancelled and the rebooking line hung up on me",
            "@Delta worst airline experience, dirty cabin and late again",
            "@USAirways still waiting for my refund after six weeks",
        ],
        "neutral": [
            "@SouthwestAir are pets allowed in the cabin?",
            "@JetBlue which terminal do you use at LaGuardia?",
            "@united is the 7am flight to Houston still on schedule?",
            "@AmericanAir do you sell gift cards?",
        ],
    },
)

AIRLINE_TOPICS = Task(
    name="airline-complaint-topics",
    task="complaint routing",
    language="en",
    description="What an airline customer's tweet is about: baggage, delay, booking or staff.",
    tags={"domain": "airlines", "source": "twitter"},
    intended_use="Sending each complaint to the team that handles it.",
    labels={
        "baggage": [
            "@united my suitcase never made it to Denver, where is it?",
            "@AmericanAir bag arrived with a broken handle and wet clothes",
            "@Delta waited 90 minutes at the carousel for our luggage",
            "@JetBlue you charged me for a second checked bag that was never loaded",
            "@SouthwestAir my golf clubs went to Phoenix instead of Dallas",
        ],
        "delay": [
            "@united flight 455 delayed again, now leaving at 11pm",
            "@AmericanAir three hour delay and still no new departure time",
            "@Delta we've been stuck on the tarmac for 2 hours",
            "@JetBlue missed my connection because the first leg left late",
            "@SouthwestAir why is the 6am flight to Vegas always late?",
        ],
        "booking": [
            "@united the website won't let me pick a seat for my return flight",
            "@AmericanAir I was charged twice for the same ticket",
            "@Delta how do I change the name on my reservation?",
            "@JetBlue my confirmation email never arrived after booking",
            "@USAirways can't redeem miles for the flight I want online",
        ],
        "staff": [
            "@united the gate agent in Houston was incredibly rude to my mother",
            "@AmericanAir flight attendant ignored my call button for an hour",
            "@Delta the crew on DL89 were so kind to my kids",
            "@JetBlue the check-in staff yelled at a passenger in front of everyone",
            "@SouthwestAir shoutout to the agent who helped me find my gate",
        ],
    },
    unseen={
        "baggage": [
            "@Delta my bag is still in Atlanta, I landed in Miami yesterday",
            "@united the stroller we gate-checked came back bent",
        ],
        "delay": [
            "@AmericanAir now delayed for the fourth time tonight",
            "@JetBlue pilot says we are waiting for a crew, 2 hours so far",
        ],
        "booking": [
            "@SouthwestAir the app shows my flight but not my seat",
            "@united I paid for an upgrade that isn't on my ticket",
        ],
        "staff": [
            "@Delta the lady at the counter was so patient with us",
            "@AmericanAir the attendant refused to help me with my bag",
        ],
    },
)

NEWS = Task(
    name="news-topics",
    task="topic classification",
    language="en",
    description="Topic of a news headline: sports, politics or technology.",
    tags={"domain": "news"},
    intended_use="Routing wire headlines to the right desk.",
    labels={
        "sports": [
            "Lakers beat Celtics 112-104 as James scores 35",
            "Manchester United sack manager after fifth straight defeat",
            "Williams advances to Wimbledon quarter-finals",
            "Olympic committee confirms swimming schedule for Paris games",
            "Yankees sign ace pitcher to record seven-year contract",
            "Pogacar takes the yellow jersey on mountain stage of the Tour de France",
            "NFL suspends linebacker for helmet-to-helmet hit",
            "India win cricket test series against Australia",
        ],
        "politics": [
            "Senate passes budget bill after all-night session",
            "Prime minister calls snap election for June",
            "Governor vetoes controversial voting rights measure",
            "Parliament debates new immigration law amid protests",
            "President meets NATO leaders to discuss defense spending",
            "Opposition party wins majority in regional elections",
            "Supreme Court to hear challenge to campaign finance rules",
            "Trade talks stall as ministers fail to agree on tariffs",
        ],
        "technology": [
            "Apple unveils new iPhone with faster chip and better camera",
            "Google releases open-source AI model for developers",
            "Microsoft patches critical Windows security flaw",
            "Startup raises $50 million to build quantum computers",
            "Tesla recalls cars over autopilot software bug",
            "Meta launches virtual reality headset for the office",
            "Researchers develop a battery that charges in five minutes",
            "Amazon expands cloud data centers in Europe",
        ],
    },
    unseen={
        "sports": [
            "Real Madrid clinch league title with win over Barcelona",
            "Golden State Warriors trade star guard before deadline",
            "Marathon world record broken in Berlin",
        ],
        "politics": [
            "Chancellor survives confidence vote in parliament",
            "Congress delays vote on infrastructure package",
            "Mayor announces run for state senate seat",
        ],
        "technology": [
            "Samsung shows foldable laptop at electronics fair",
            "Hackers steal data of millions in cloud breach",
            "Nvidia reports record sales of AI chips",
        ],
    },
)

SPAM = Task(
    name="sms-spam-filter",
    task="spam detection",
    language="en",
    description="Flags unwanted text messages: spam or ham.",
    tags={"domain": "sms"},
    intended_use="Filtering SMS before they reach the inbox.",
    labels={
        "spam": [
            "WINNER!! You have been selected to receive a £900 prize reward. Call 09061701461",
            "Free entry in 2 a wkly comp to win FA Cup final tkts. Text FA to 87121",
            "URGENT! Your mobile number has won a $2000 bonus. Reply CLAIM to collect",
            "Congratulations, you've won a free cruise! Click http://bit.ly/xyz to claim",
            "Get cheap loans today, no credit check, text LOAN to 80080",
            "Your account has been suspended, verify your details at secure-bank-login.com",
            "Hot singles in your area want to meet you, reply YES",
            "You are pre-approved for a credit card with 0% APR, call now",
        ],
        "ham": [
            "Hey are we still on for dinner tonight?",
            "I'll be home late, can you pick up the kids from school",
            "Ok lar... joking wif u oni",
            "Did you finish the report for tomorrow's meeting?",
            "Happy birthday mom, love you!",
            "Running 10 min late, save me a seat",
            "Can you send me the photos from the weekend",
            "Don't forget to buy milk on the way back",
        ],
    },
    unseen={
        "spam": [
            "You have won a Nokia phone! Text WIN to 85233 to claim your prize",
            "Final notice: your parcel is on hold, pay the fee at dhl-track-now.info",
            "Claim your free ringtones now, reply STOP to unsubscribe",
            "Cash prize of £5000 waiting for you, call 0800 123 456",
        ],
        "ham": [
            "See you at the station at 6",
            "Thanks for yesterday, had a great time",
            "Can you call me when you get this?",
            "Where did you park the car?",
        ],
    },
)

ZH_REVIEWS = Task(
    name="zh-review-sentiment",
    task="sentiment",
    language="zh",
    description="中文商品评论情感分析：判断评论是正面还是负面 (Chinese product reviews).",
    tags={"domain": "e-commerce"},
    intended_use="电商评论监控 (monitoring shop reviews).",
    base_model="bert-base-chinese",
    labels={
        "正面": [
            "质量非常好，物流也很快，下次还会再买",
            "手机运行流畅，拍照效果很清晰，很满意",
            "衣服面料舒服，尺码标准，穿着很合身",
            "客服态度很好，耐心解答问题，五星好评",
            "包装精美，送给朋友很有面子",
            "性价比很高，用了一个月没有任何问题",
            "味道很好吃，孩子特别喜欢",
            "电池很耐用，充一次电能用两天",
        ],
        "负面": [
            "收到的东西有破损，联系客服也不理人",
            "质量太差了，用了两天就坏了",
            "物流太慢，等了半个月才到",
            "和描述的完全不一样，颜色差别很大",
            "鞋子穿着磨脚，尺码偏小，不推荐",
            "耳机有杂音，退货还要自己出运费",
            "屏幕有坏点，申请换货被拒绝",
            "味道很奇怪，吃了肚子不舒服",
        ],
    },
    unseen={
        "正面": [
            "发货速度快，东西和图片一样，好评",
            "做工精细，老人用着很方便",
            "音质很棒，降噪效果出乎意料",
            "第二次购买了，一如既往的好",
        ],
        "负面": [
            "用了一周就充不进电了，太失望",
            "卖家发错了颜色，还不给换",
            "尺寸不对，根本装不上",
            "有一股很重的异味，不敢给孩子用",
        ],
    },
)

TASKS = (AIRLINE, AIRLINE_TOPICS, NEWS, SPAM, ZH_REVIEWS)

# A plain-words need and the model that should answer it.
QUERIES = [
    ("which model tells if a customer review is happy or angry", AIRLINE),
    ("classify news headlines by topic", NEWS),
    ("中文评论情感", ZH_REVIEWS),
    ("detect spam in text messages", SPAM),
    ("how do passengers feel about our airline: positive or negative?", AIRLINE),
    ("Chinese product reviews: positive or negative", ZH_REVIEWS),
    ("is this article about sports, politics or tech", NEWS),
    ("route airline complaints: lost luggage, late flights, bookings", AIRLINE_TOPICS),
]


def texts_of(groups: dict[str, list[str]]) -> list[str]:
    return [t for texts in groups.values() for t in texts]


def card_of(task: Task) -> dict:
    """A card dict with the keys the service's cards carry (labels with class counts)."""
    return {
        "name": task.name,
        "description": task.description,
        "task": task.task,
        "language": task.language,
        "labels": [
            {"name": k, "train_count": len(v), "eval_count": len(v) // 4}
            for k, v in task.labels.items()
        ],
        "tags": task.tags,
        "intended_use": task.intended_use,
        "base_model": task.base_model,
        "metrics": {"f1_macro": 0.9},
    }


@dataclass
class Registry:
    settings: Settings
    alice: UserRecord
    bob: UserRecord
    admin: UserRecord
    uploads: dict[str, str]  # task name → alice's uploaded data set of unseen texts


def add_user(url: str, username: str, role: str = "user") -> UserRecord:
    with session_scope(url) as session:
        row = User(username=username, password_hash="x", role=role, is_active=True, created_at=NOW)
        session.add(row)
        session.flush()
        return UserRecord.from_row(row)


def register_task(url: str, task: Task, owner: UserRecord, *, stage: str | None = None) -> None:
    """The rows the core service writes: experiment, version, and the two embeddings."""
    experiment_id = f"exp-{task.name}"
    with session_scope(url) as session:
        session.add(
            Experiment(
                id=experiment_id,
                name=task.name,
                status="succeeded",
                created_at=NOW,
                base_model=task.base_model,
                language=task.language,
                labels=list(task.labels),
                config={},
                eval_dataset_version="e" * 64,
                metrics={"final": {"accuracy": 0.9, "f1_macro": 0.88}},
                results_dir="/r",
                owner_id=owner.id,
            )
        )
    with session_scope(url) as session:
        info = versions.register(
            session,
            experiment_id=experiment_id,
            name=task.name,
            description=task.description,
            tags=task.tags,
            user=owner,
        )
        card = embeddings.embed([embeddings.card_text(card_of(task))])[0]
        data = embeddings.dataset_embedding(texts_of(task.labels), list(task.labels))
        values = {
            "task": task.task,
            "intended_use": task.intended_use,
            "embedding": embeddings.as_stored(card),
            "data_embedding": data,
        }
        if stage is not None:
            values["stage"] = stage
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.name == info.name, ModelVersion.version == info.version)
            .values(**values)
        )


def upload(settings: Settings, owner: UserRecord, name: str, groups: dict[str, list[str]]) -> str:
    frame = pd.DataFrame(
        [{"text": t, "label": label} for label, texts in groups.items() for t in texts]
    )
    content = io.BytesIO(frame.to_csv(index=False).encode())
    with session_scope(settings.resolved_database_url()) as session:
        record = store.store_upload(
            session,
            owner_id=owner.id,
            file_name=f"{name}.csv",
            content=content,
            columns=Columns(),
            datasets_dir=settings.resolved_datasets_dir(),
            max_bytes=10 * 1024 * 1024,
        )
    return record.id


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Registry:
    root = tmp_path_factory.mktemp("recommend")
    settings = Settings(data_dir=root / "state", results_dir=root / "results")
    url = settings.resolved_database_url()
    alice, bob, admin = (
        add_user(url, "alice"),
        add_user(url, "bob"),
        add_user(url, "root", "admin"),
    )
    for task in TASKS:
        register_task(url, task, alice)
    uploads = {task.name: upload(settings, alice, task.name, task.unseen) for task in TASKS}
    return Registry(settings, alice, bob, admin, uploads)


def ask(registry: Registry, **kw) -> list[Recommendation]:
    kw.setdefault("user", registry.alice)
    return recommend.recommend(registry.settings, **kw)


def describe(answers: list[Recommendation]) -> str:
    return "; ".join(f"{a.version.name} {a.score:.3f}" for a in answers)


@pytest.mark.parametrize(("query", "expected"), QUERIES, ids=[q for q, _ in QUERIES])
def test_a_query_in_plain_words_ranks_the_right_model_first(registry, query, expected):
    answers = ask(registry, query=query, limit=4)
    assert answers[0].version.name == expected.name, describe(answers)
    assert answers[0].reasons[-1].startswith("cosine "), answers[0].reasons
    assert [a.score for a in answers] == sorted((a.score for a in answers), reverse=True)


@pytest.mark.parametrize("task", TASKS, ids=[t.name for t in TASKS])
def test_an_uploaded_data_set_of_unseen_texts_ranks_its_model_first(registry, task):
    answers = ask(registry, dataset_id=registry.uploads[task.name], limit=4)
    assert answers[0].version.name == task.name, describe(answers)
    reasons = answers[0].reasons
    assert f"language matches the data set ({task.language})" in reasons
    assert f"labels {', '.join(task.labels)} match the data set's labels" in reasons
    assert any(r.startswith("cosine ") and r.endswith("with its training data") for r in reasons)


def test_reasons_say_which_fields_matched(registry):
    top = ask(registry, query="sentiment of airline tweets, positive or negative")[0]
    assert top.version.name == AIRLINE.name
    assert "task 'sentiment' appears in your query" in top.reasons
    assert "labels positive, negative appear in your query" in top.reasons
    assert "name 'airline-sentiment' matches 'airline, sentiment' in your query" in top.reasons
    zh = ask(registry, query="评论情感分析")[0]
    assert zh.version.name == ZH_REVIEWS.name
    assert "language Chinese (zh) is the language of your query" in zh.reasons
    named = ask(registry, query="a Chinese sentiment model")[0]
    assert named.version.name == ZH_REVIEWS.name
    assert "language Chinese (zh) is named in your query" in named.reasons


def test_an_embedding_is_compared_with_the_cards(registry):
    vector = embeddings.embed(["news headline topics: sports, politics, technology"])[0]
    answers = ask(registry, embedding=[float(x) * 3 for x in vector])  # any norm: it is normalised
    assert answers[0].version.name == NEWS.name
    assert answers[0].reasons == [answers[0].reasons[-1]]
    assert answers[0].reasons[0].startswith("cosine ")


def test_hard_filters_language_and_stage(registry):
    url = registry.settings.resolved_database_url()
    zh = ask(registry, query="classify news headlines by topic", language="Chinese")
    assert [a.version.name for a in zh] == [ZH_REVIEWS.name]
    assert ask(registry, query="news", language="fr") == []
    assert ask(registry, query="news", stage="Production") == []
    with session_scope(url) as session:
        session.execute(
            update(ModelVersion).where(ModelVersion.name == NEWS.name).values(stage="Archived")
        )
    try:
        default = ask(registry, query="classify news headlines by topic", limit=10)
        assert NEWS.name not in [a.version.name for a in default]
        archived = ask(registry, query="classify news headlines by topic", stage="archived")
        assert [a.version.name for a in archived] == [NEWS.name]
        everything = ask(registry, query="classify news headlines", include_archived=True)
        assert everything[0].version.name == NEWS.name
    finally:
        with session_scope(url) as session:
            session.execute(
                update(ModelVersion).where(ModelVersion.name == NEWS.name).values(stage="none")
            )


def test_a_data_set_is_visible_to_its_owner_and_admins_only(registry):
    dataset_id = registry.uploads[SPAM.name]
    assert ask(registry, dataset_id=dataset_id, user=registry.admin)[0].version.name == SPAM.name
    with pytest.raises(NotFound, match="does not exist"):
        ask(registry, dataset_id=dataset_id, user=registry.bob)
    with pytest.raises(NotFound):
        ask(registry, dataset_id="no-such-data-set")


def test_a_version_without_embedding_gets_one_computed_and_stored(registry):
    url = registry.settings.resolved_database_url()
    with session_scope(url) as session:
        stored = session.query(ModelVersion).filter_by(name=SPAM.name).one().embedding
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.name == SPAM.name)
            .values(embedding=None, data_embedding=None)
        )
    try:
        answers = ask(registry, query="detect spam in text messages")
        assert answers[0].version.name == SPAM.name
        with session_scope(url) as session:
            filled = session.query(ModelVersion).filter_by(name=SPAM.name).one().embedding
        assert filled is not None and len(filled) == 384
        # The same text as the service's card (intended use, labels, tags included).
        assert float(np.dot(filled, stored)) > 0.99
    finally:
        with session_scope(url) as session:
            session.execute(
                update(ModelVersion)
                .where(ModelVersion.name == SPAM.name)
                .values(
                    embedding=stored,
                    data_embedding=embeddings.dataset_embedding(
                        texts_of(SPAM.labels), list(SPAM.labels)
                    ),
                )
            )


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({}, "exactly one of query, embedding or dataset_id"),
        ({"query": "x", "embedding": [0.1] * 384}, r"\(got query, embedding\)"),
        ({"query": "   "}, "the query is empty"),
        ({"query": "x" * 2001}, "at most 2000"),
        ({"embedding": [0.1] * 10}, "embedding has 10 numbers; expected 384"),
        ({"embedding": [0.1] * 383 + [math.nan]}, "NaN or infinite"),
        ({"embedding": [0.1] * 383 + [math.inf]}, "NaN or infinite"),
        ({"embedding": [0.0] * 384}, "all zeros"),
        ({"embedding": ["a"] * 384}, "only numbers"),
        ({"embedding": [True] * 384}, "only numbers"),
        ({"embedding": "0.1,0.2"}, "list of numbers"),
        ({"query": "x", "limit": 0}, "limit must be"),
        ({"query": "x", "limit": 101}, "limit must be"),
        ({"query": "x", "stage": "Live"}, "unknown stage 'Live'"),
    ],
)
def test_refusals(registry, kw, message):
    with pytest.raises(InvalidRequest, match=message):
        ask(registry, **kw)


def test_huge_finite_numbers_do_not_overflow(registry):
    answers = ask(registry, embedding=[1e308] * 384, limit=1)
    assert len(answers) == 1 and math.isfinite(answers[0].score)


def test_script_language():
    assert recommend.script_language(["质量非常好"]) == "zh"
    assert recommend.script_language(["great flight, thanks"]) == "en"
    assert recommend.script_language(["これはペンです"]) == "ja"
    assert recommend.script_language(["12345 !!"]) is None


# The uploads' labels under other names: what a data set made elsewhere would call them.
RENAMED = {
    AIRLINE.name: ["good", "bad", "neutral"],
    AIRLINE_TOPICS.name: ["luggage", "late", "reservation", "crew"],
    NEWS.name: ["sport", "world", "tech"],
    SPAM.name: ["junk", "normal"],
    ZH_REVIEWS.name: ["好评", "差评"],
}
SCENARIOS = ("same labels", "renamed labels", "numeric labels")


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def _smallest_lead(text_weight: float, data_weight: float, scenario: str, parts: dict) -> float:
    """The smallest lead (score of the right model minus the best other) over the five
    uploads of unseen texts, without the boosts, as recommend.py and embeddings.py score."""
    leads = []
    for task in TASKS:
        mine = parts[task.name]
        if scenario == "numeric labels":  # label names like "0, 1" are not embedded
            target = mine["unseen_texts"]
        else:
            labels = mine["unseen_labels" if scenario == "same labels" else "renamed_labels"]
            target = _unit(text_weight * mine["unseen_texts"] + (1 - text_weight) * labels)
        scores = {}
        for other in TASKS:
            theirs = parts[other.name]
            data = _unit(
                text_weight * theirs["train_texts"] + (1 - text_weight) * theirs["train_labels"]
            )
            scores[other.name] = data_weight * float(data @ target) + (1 - data_weight) * float(
                theirs["card"] @ target
            )
        right = scores.pop(task.name)
        leads.append(right - max(scores.values()))
    return min(leads)


def test_weights_were_chosen_by_measurement(capsys):
    """Prints, for a grid of (TEXT_WEIGHT, DATA_WEIGHT), the smallest lead of the right
    model over three kinds of upload. The chosen pair was picked from this table: its
    worst case within 10% of the best worst case, positive at the neighbouring grid points
    too (a plateau, not a lucky ridge), and among those the best average lead."""
    # One call to the model for everything: a forward per text would be slower.
    pieces: list[tuple[str, str, int]] = []  # (task, part, number of texts)
    texts: list[str] = []
    for task in TASKS:
        for part, group in (
            ("train_texts", texts_of(task.labels)),
            ("unseen_texts", texts_of(task.unseen)),
            ("train_labels", [", ".join(task.labels)]),
            ("unseen_labels", [", ".join(task.unseen)]),
            ("renamed_labels", [", ".join(RENAMED[task.name])]),
            ("card", [embeddings.card_text(card_of(task))]),
        ):
            pieces.append((task.name, part, len(group)))
            texts.extend(group)
    vectors = embeddings.embed(texts)
    parts: dict[str, dict[str, np.ndarray]] = {task.name: {} for task in TASKS}
    start = 0
    for name, part, count in pieces:
        block = vectors[start : start + count]
        parts[name][part] = _unit(block.mean(axis=0)) if part.endswith("_texts") else block[0]
        start += count
    grid = [0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    leads = {
        (t, d): [_smallest_lead(t, d, scenario, parts) for scenario in SCENARIOS]
        for t in grid
        for d in grid
    }
    with capsys.disabled():
        print("\nworst lead of the right model (same / renamed / numeric labels)")
        print("text\\data " + " ".join(f"{d:>6}" for d in grid))
        for t in grid:
            print(f"{t:>9} " + " ".join(f"{min(leads[(t, d)]):6.3f}" for d in grid))
    best_worst = max(min(v) for v in leads.values())
    chosen = leads[(embeddings.TEXT_WEIGHT, recommend.DATA_WEIGHT)]
    assert min(chosen) > 0, chosen
    assert min(chosen) >= 0.9 * best_worst, (chosen, best_worst)

    def steady(t: int, d: int) -> bool:
        around = [(t + dt, d + dd) for dt, dd in ((-1, 0), (1, 0), (0, -1), (0, 1))]
        return all(
            min(leads[(grid[a], grid[b])]) > 0
            for a, b in around
            if 0 <= a < len(grid) and 0 <= b < len(grid)
        )

    candidates = {
        (grid[t], grid[d]): float(np.mean(leads[(grid[t], grid[d])]))
        for t in range(len(grid))
        for d in range(len(grid))
        if min(leads[(grid[t], grid[d])]) >= 0.9 * best_worst and steady(t, d)
    }
    assert max(candidates, key=candidates.__getitem__) == (
        embeddings.TEXT_WEIGHT,
        recommend.DATA_WEIGHT,
    ), candidates


def test_a_data_set_with_numeric_labels_is_matched_by_its_texts(registry):
    numbered = {str(i): texts for i, texts in enumerate(SPAM.unseen.values())}
    dataset_id = upload(registry.settings, registry.alice, "numbered", numbered)
    answers = ask(registry, dataset_id=dataset_id)
    assert answers[0].version.name == SPAM.name, describe(answers)
    assert not any("label" in reason for reason in answers[0].reasons)


def test_a_data_set_is_read_as_a_fixed_sample_of_at_most_200_texts(registry):
    groups = {"spam": [f"win a prize number {i}" for i in range(300)], "ham": ["see you"] * 5}
    dataset_id = upload(registry.settings, registry.alice, "big", groups)
    samples = [
        recommend.read_dataset_sample(registry.settings, dataset_id=dataset_id, user=registry.alice)
        for _ in range(2)
    ]
    assert samples[0] == samples[1]
    name, texts, labels = samples[0]
    assert (name, len(texts), labels) == ("big.csv", 200, ["spam", "ham"])


def test_an_unreadable_upload_is_named_by_its_name_not_the_server_path(registry):
    dataset_id = upload(registry.settings, registry.alice, "gone", SPAM.unseen)
    stored = next(registry.settings.resolved_datasets_dir().glob(f"{dataset_id}.*"))
    stored.unlink()
    with pytest.raises(DatasetError, match=r"gone\.csv") as caught:
        ask(registry, dataset_id=dataset_id)
    assert str(registry.settings.resolved_datasets_dir()) not in str(caught.value)
