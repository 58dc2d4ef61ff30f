# Chinese texts use full-width commas and exclamation marks, as real reviews do.
# ruff: noqa: RUF001
"""The data's language: short texts, tweet noise, mixed data sets, texts without language.

Accuracy and speed are measured by benchmarks/language_detect.py; these tests pin the
behaviour (codes, shares, sampling, what has no language), never a timing.
"""

from __future__ import annotations

import json

import pytest

from loraforge.data.language import (
    LanguageReport,
    detect_languages,
    detect_text,
    language_name,
    normalize_code,
    strip_noise,
)
from loraforge.errors import ConfigError

ENGLISH = [
    "Thank you @united, the crew was wonderful and we landed early!",
    "Two hours on the tarmac and now they lost my bag. Never again.",
    "The battery lasts all day, really happy with it.",
    "Great coffee, friendly staff, will come back.",
]
CHINESE = [
    "物流很快，包装完好，非常满意！",
    "质量一般，跟图片差距有点大。",
    "客服态度太差了，再也不会来了。",
    "这家店的火锅真的太好吃了！#美食#",
    "這家餐廳的服務很好，菜也很好吃。",  # traditional characters: still "zh"
    "航班又延误了两个小时，真无语 😤",
    "孩子很喜欢这个玩具，每天都在玩。",
]
GERMAN = [
    "Schnelle Lieferung, alles bestens.",
    "Leider nach zwei Wochen kaputt.",
    "@DB_Bahn Warum hat der ICE schon wieder 40 Minuten Verspätung?",
]
OTHERS = {
    "ja": "配送が早くて助かりました。",
    "ru": "Доставка быстрая, всё пришло целым.",
    "fr": "Très bon produit, je recommande !",
    "es": "La comida estaba buenísima pero tardaron mucho.",
}
NO_LANGUAGE = [
    "",
    "   ",
    "😀😀🎉",
    "👍🏽❤️",
    "http://t.co/qPzZUd1PqJ",
    "https://example.com/a/b?c=1 www.example.org",
    "12345 678,90",
    "!!! ??? ...",
    "@united @JetBlue",
    "2015-03-01 10:42 :) <3",
]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        *((t, "en") for t in ENGLISH),
        *((t, "zh") for t in CHINESE),
        *((t, "de") for t in GERMAN),
        *((t, c) for c, t in OTHERS.items()),
    ],
)
def test_short_texts_get_their_language(text, code):
    assert detect_text(text) == code


@pytest.mark.parametrize("text", NO_LANGUAGE)
def test_texts_without_letters_have_no_language(text):
    assert detect_text(text) is None


def test_tweet_noise_is_stripped_before_detecting():
    text = "RT @kmo50Moyer: so ready for the weekend 🎉🎉 #Coachella2015 http://t.co/EKYltqRRMm"
    assert strip_noise(text) == ": so ready for the weekend"
    assert strip_noise("mail me at jo.doe@example.com 👍🏽") == "mail me at"
    # Weibo topics end with a second '#'.
    assert strip_noise("今天终于考完试了！#开心#") == "今天终于考完试了！"


def test_hashtags_are_the_text_when_nothing_else_has_letters():
    assert strip_noise("#love #summer_vibes 😎") == "love summer vibes"
    assert detect_text("#love #summer_vibes 😎") is not None


@pytest.mark.parametrize(
    ("tag", "code"),
    [
        *(("zh-CN", "zh"), ("zh_TW", "zh"), ("zh-Hant", "zh"), ("cmn", "zh"), ("YUE", "zh")),
        *(("wuu", "zh"), ("en-US", "en"), ("arz", "ar"), ("de", "de"), ("pcm", "pcm")),
    ],
)
def test_codes_are_iso_639_1(tag, code):
    assert normalize_code(tag) == code


def test_language_names_are_english():
    assert language_name("zh") == "Chinese"
    assert language_name("zh-TW") == "Chinese"
    assert language_name("en") == "English"
    assert language_name("de") == "German"
    assert language_name("ja") == "Japanese"
    assert language_name("xx") == "xx"  # unknown: shown as it is, never an error


def test_a_mixed_set_shows_both_languages_and_the_larger_one_dominates():
    texts = [CHINESE[i % len(CHINESE)] for i in range(70)]
    texts += [ENGLISH[i % len(ENGLISH)] for i in range(30)]
    report = detect_languages(texts)
    assert report.dominant == "zh"
    assert report.shares == {"zh": 0.7, "en": 0.3}
    assert list(report.shares) == ["zh", "en"]  # descending
    assert (report.sampled, report.undetermined) == (100, 0)
    assert report.words() == "Chinese 70 %, English 30 %"


def test_rare_languages_fold_into_other():
    texts = [ENGLISH[i % len(ENGLISH)] for i in range(199)] + [GERMAN[0]]
    report = detect_languages(texts)
    assert report.dominant == "en"
    assert report.shares == {"en": 0.995, "other": 0.005}
    assert report.words() == "English >99 %, other <1 %"


def test_texts_without_language_are_counted_not_guessed():
    texts = [*(ENGLISH * 2), "😀😀", "http://t.co/x", "1234", None, float("nan")]
    report = detect_languages(texts)  # type: ignore[arg-type]  # a CSV's empty cells
    assert report.dominant == "en"
    assert (report.sampled, report.undetermined) == (13, 5)
    assert report.shares == {"en": 8 / 13}
    assert report.words() == "English 62 %, no language 38 %"


def test_only_emoji_gives_no_dominant_language():
    report = detect_languages(["😀", "🎉🎉", "12"])
    assert report.dominant is None
    assert report.shares == {}
    assert report.undetermined == 3


def test_empty_input_gives_no_dominant_language():
    report = detect_languages([])
    assert report == LanguageReport(dominant=None, shares={}, sampled=0, undetermined=0)
    assert report.words() == "no texts"
    assert json.loads(json.dumps(report.to_dict()))["dominant"] is None


def test_the_sample_is_deterministic_and_bounded():
    texts = [CHINESE[i % 7] if i % 3 else ENGLISH[i % 4] + f" #{i}" for i in range(3000)]
    first = detect_languages(texts, sample=500)
    assert first.sampled == 500
    assert detect_languages(texts, sample=500) == first
    assert detect_languages(list(texts), sample=500, seed=0) == first
    other_seed = detect_languages(texts, sample=500, seed=1)
    assert other_seed == detect_languages(texts, sample=500, seed=1)
    assert set(other_seed.shares) == set(first.shares) == {"zh", "en"}


def test_to_dict_is_json():
    report = detect_languages(CHINESE + ENGLISH[:1])
    data = json.loads(json.dumps(report.to_dict()))
    assert data["dominant"] == "zh"
    assert data["dominant_name"] == "Chinese"
    assert data["shares"] == {"zh": 0.875, "en": 0.125}
    assert (data["sampled"], data["undetermined"]) == (8, 0)


@pytest.mark.parametrize("sample", [0, -5, 2.5, True])
def test_a_bad_sample_size_is_a_config_error(sample):
    with pytest.raises(ConfigError, match="positive number"):
        detect_languages(ENGLISH, sample=sample)
