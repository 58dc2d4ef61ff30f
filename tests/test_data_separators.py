"""Delimited files are read with the separator they use, a file's header is read without
the rest of it, and a missing column is explained in the words of where the user is."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import sessionmaker
from typer.testing import CliRunner

from loraforge.api.app import create_app
from loraforge.auth import users
from loraforge.cli import app
from loraforge.data.loading import (
    COLUMNS_HINTS,
    Columns,
    likely_column,
    read_header,
    read_table,
    sniff_separator,
)
from loraforge.data.validation import load_labelled, validate_file
from loraforge.db.engine import get_engine
from loraforge.errors import DatasetError
from loraforge.settings import Settings

runner = CliRunner()
ROWS = [("I loved it, really", "pos"), ("I hated it", "neg"), ("quite nice", "pos")] * 4


def delimited(separator: str, rows=ROWS, header=("text", "label")) -> str:
    lines = [separator.join(header)] + [separator.join(row) for row in rows]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("name", "separator"),
    [("semi.csv", ";"), ("tabs.csv", "\t"), ("pipes.txt", "|"), ("commas.tsv", ",")],
)
def test_the_separator_is_sniffed_whatever_the_extension(tmp_path, name, separator):
    # Texts hold commas: a semicolon file must not be split on them.
    rows = [(text, label) for text, label in ROWS]
    if separator == ",":
        rows = [(f'"{text}"', label) for text, label in rows]
    path = tmp_path / name
    path.write_text(delimited(separator, rows), encoding="utf-8")
    frame, _ = load_labelled(path)
    assert list(frame["text"])[:2] == ["I loved it, really", "I hated it"]
    report = validate_file(path)
    assert report.separator == separator
    # Said in the report (CLI, API answer, UI) when it is not what the extension promises.
    assert f"(separator: {separator!r})" in report.warnings[0]


def test_a_plain_comma_csv_says_nothing_about_its_separator(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text(delimited(",", [("good", "pos"), ("bad", "neg")] * 6), encoding="utf-8")
    report = validate_file(path)
    assert report.separator == ","
    assert not any("separator" in w for w in report.warnings), report.warnings


def test_commas_in_texts_do_not_beat_the_header(tmp_path):
    # Many commas inside texts, one semicolon per line: the header and rows agree on ';'.
    sample = "text;label\n" + "a, b, c, d;pos\ne, f, g;neg\n" * 5
    assert sniff_separator(sample, expected=",") == ";"
    assert sniff_separator("text,label\na;b,pos\nc;d,neg\n", expected=",") == ","


def test_cli_validate_says_which_separator_it_found(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text(delimited(";"), encoding="utf-8")
    result = runner.invoke(app, ["data", "validate", str(path), "--model", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    assert "separator: ';'" in result.output
    result = runner.invoke(
        app, ["data", "validate", str(path), "--json", "--model", str(tmp_path / "x")]
    )
    assert json.loads(result.output)["separator"] == ";"


def test_a_file_that_cannot_be_parsed_names_the_line_and_the_separator(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text(
        "text,label\n" + "fine,pos\nalso fine,neg\n" * 10 + "too,many,fields,pos\nok,neg\n",
        encoding="utf-8",
    )
    with pytest.raises(DatasetError) as caught:
        read_table(path)
    assert "line 22 has 4 fields where the header has 2" in caught.value.message
    assert "separator: ','" in caught.value.message
    assert "Traceback" not in str(caught.value) and "C error" not in str(caught.value)
    result = runner.invoke(app, ["data", "validate", str(path)])
    assert result.exit_code == 2
    assert "line 22 has 4 fields" in result.output


def test_an_unclosed_quote_names_its_line(tmp_path):
    path = tmp_path / "quote.csv"
    path.write_text('text,label\nfine,pos\n"never closed,neg\nmore,pos\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="quote opened on line 3 is never closed"):
        read_table(path)


def test_the_header_is_read_without_the_rest_of_the_file():
    header = read_header(delimited(";").encode(), "reviews.csv")
    assert (header.format, header.columns, header.separator) == ("csv", ["text", "label"], ";")
    # A huge file: only its beginning is looked at, even cut through a character.
    big = ("review\tstars\n" + "très bien\t5\n" * 200_000).encode()
    assert read_header(big, "big.tsv").columns == ["review", "stars"]
    jsonl = b'{"sentence": "a", "target": 1}\n{"sentence": "b", "target": 0, "id": 3}\n'
    assert read_header(jsonl, "d.jsonl").columns == ["sentence", "target", "id"]
    buffer = io.BytesIO()
    pd.DataFrame({"tweet": ["x"], "class": [1]}).to_parquet(buffer)
    assert read_header(buffer.getvalue(), "d.parquet").columns == ["tweet", "class"]


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "e.csv", "is empty"),
        (b"text,label\nna\xefve,pos\n", "l.csv", "not UTF-8"),
        (b'{"text": "a"}\n[1, 2]\n', "d.jsonl", "line 2 is not a JSON object"),
        (b"text,label\n", "d.xlsx", "unsupported file type"),
    ],
)
def test_a_header_that_cannot_be_read_is_refused_in_words(content, name, message):
    with pytest.raises(DatasetError, match=message):
        read_header(content, name)


def test_likely_columns_are_offered_first():
    assert likely_column(["id", "Review", "Sentiment"], ("text", "review")) == "Review"
    assert likely_column(["id", "tweet_text", "airline_sentiment"], ("text",)) == "tweet_text"
    assert likely_column(["a", "b"], ("label",)) is None
    # The text column is not offered as the label too.
    assert likely_column(["text"], ("text",), besides="text") is None


def test_a_missing_column_is_explained_for_the_cli(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text(delimited(",", header=("review", "label")), encoding="utf-8")
    result = runner.invoke(app, ["data", "validate", str(path), "--model", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "no column 'text' (columns found: review, label)" in result.output
    assert "--text-column" in result.output
    # Training reads a config: its words are the config's keys.
    with pytest.raises(DatasetError) as caught:
        load_labelled(path, columns=Columns())
    assert "data.text_column" in caught.value.hint and "--text-column" not in caught.value.hint


def test_a_missing_column_is_explained_for_the_api(tmp_path):
    settings = Settings(data_dir=tmp_path / "state", results_dir=tmp_path / "results")
    with sessionmaker(bind=get_engine(settings.resolved_database_url()))() as session:
        users.create_user(session, username="alice", password="correct horse battery")
        session.commit()
    with TestClient(create_app(settings)) as client:
        token = client.post(
            "/login", data={"username": "alice", "password": "correct horse battery"}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        content = delimited(";", header=("review", "label")).encode()
        refused = client.post(
            "/datasets", headers=headers, files={"file": ("r.csv", io.BytesIO(content))}
        )
        assert refused.status_code == 422
        body = refused.json()
        assert "no column 'text' (columns found: review, label)" in body["detail"]
        assert body["hint"] == COLUMNS_HINTS["api"]
        assert "--text-column" not in json.dumps(body)
        # The right column by its form field, and the separator the answer found.
        stored = client.post(
            "/datasets",
            headers=headers,
            files={"file": ("r.csv", io.BytesIO(content))},
            data={"text_column": "review"},
        )
        assert stored.status_code == 201, stored.text
        assert any("separator: ';'" in w for w in stored.json()["warnings"])
