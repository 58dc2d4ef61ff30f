import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from loraforge.cli import app
from loraforge.data.analysis import analyze_frame
from loraforge.data.loading import Columns, read_table, select_columns
from loraforge.data.validation import load_labelled, validate_file
from loraforge.data.versioning import dataset_version
from loraforge.errors import DatasetError

runner = CliRunner()


def whitespace_tokens(texts):
    return [len(t.split()) for t in texts]


def csv(tmp_path, content: str | bytes, name="data.csv"):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


GOOD = "text,label\nI loved it,pos\nI hated it,neg\nquite nice,pos\nso bad,neg\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"text,label\nna\xefve caf\xe9,pos\nbad,neg\n", "not UTF-8"),
        ("words,label\nhello,pos\nbye,neg\n", "no column 'text'"),
        ("text,sentiment\nhello,pos\nbye,neg\n", "no column 'label'"),
    ],
)
def test_unreadable_files_are_refused(tmp_path, content, message):
    with pytest.raises(DatasetError, match=message):
        validate_file(csv(tmp_path, content))


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        validate_file(tmp_path / "absent.csv")


def test_unsupported_extension_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="unsupported file type"):
        validate_file(csv(tmp_path, GOOD, name="data.xlsx"))


def test_malformed_jsonl_names_the_line(tmp_path):
    path = csv(tmp_path, '{"text": "a", "label": 1}\n{"text": "b", label: 0}\n', name="d.jsonl")
    with pytest.raises(DatasetError, match="line 2 is not valid JSON"):
        validate_file(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("text,label\n", "header but no rows"),
        ("text,label\na,pos\nb,pos\nc,pos\n", "at least 2 classes; found 1"),
        ("text,label\na,pos\n ,neg\nc,neg\n,pos\n", "2 empty text(s) at row(s) 2, 4"),
        ("text,label\na,pos\nb,\nc,neg\n", "1 missing label(s) at row(s) 2"),
    ],
)
def test_content_problems_are_errors(tmp_path, content, message):
    report = validate_file(csv(tmp_path, content))
    assert not report.ok
    assert any(message in e for e in report.errors), report.errors
    with pytest.raises(DatasetError, match="cannot be used for training"):
        load_labelled(csv(tmp_path, content))


def test_warnings_for_duplicates_conflicts_length_and_imbalance(tmp_path):
    rows = ["text,label"] + [f"positive text number {i},pos" for i in range(24)]
    rows += ["neg one,neg", "neg one,neg", "positive text number 0,neg"]
    rows += ["a very long negative text with many many words in it,neg"]
    report = validate_file(
        csv(tmp_path, "\n".join(rows) + "\n"), max_length=8, count_tokens=whitespace_tokens
    )
    assert report.ok
    text = "\n".join(report.warnings)
    assert "1 duplicate row(s)" in text
    assert "share a text with a different label" in text
    assert "longer than max_length=8 tokens" in text
    assert "strong class imbalance" in text
    assert "fewer than 10 examples" in text


def test_clean_file_has_no_warnings(tmp_path):
    rows = [f"nice thing {i},pos\nbad thing {i},neg" for i in range(10)]
    content = "text,label\n" + "\n".join(rows) + "\n"
    report = validate_file(csv(tmp_path, content), max_length=8, count_tokens=whitespace_tokens)
    assert report.ok and report.warnings == []
    assert report.label_counts == {"pos": 10, "neg": 10}


def test_formats_and_custom_columns(tmp_path):
    frame = pd.DataFrame({"review": ["NA", "null", "good", "bad"], "stars": [1, 0, 1, 0], "x": 1})
    frame.to_parquet(tmp_path / "d.parquet")
    with (tmp_path / "d.jsonl").open("w") as handle:
        for record in frame.to_dict("records"):
            handle.write(json.dumps(record) + "\n")
    columns = Columns(text="review", label="stars")
    versions = set()
    for name in ("d.parquet", "d.jsonl"):
        loaded, report = load_labelled(tmp_path / name, columns=columns)
        # "NA" and "null" are texts, not missing values; whole-number labels stay ints.
        assert list(loaded["text"]) == ["NA", "null", "good", "bad"]
        assert list(loaded["label"]) == [1, 0, 1, 0]
        versions.add(report.version)
    assert len(versions) == 1


def test_version_follows_content_not_file_name(tmp_path):
    a = csv(tmp_path, GOOD, name="a.csv")
    b = csv(tmp_path, GOOD.replace("\n", "\r\n"), name="b.csv")
    with_extra_column = csv(
        tmp_path,
        "id,text,label\n1,I loved it,pos\n2,I hated it,neg\n3,quite nice,pos\n4,so bad,neg\n",
        name="c.csv",
    )
    changed = csv(tmp_path, GOOD.replace("so bad", "so very bad"), name="d.csv")
    versions = [validate_file(p).version for p in (a, b, with_extra_column)]
    assert len(set(versions)) == 1
    assert validate_file(changed).version != versions[0]
    assert dataset_version(["x", "y"], [1, 0]) != dataset_version(["y", "x"], [0, 1])


def test_analysis_reports_distribution_and_lengths(tmp_path):
    frame = select_columns(read_table(csv(tmp_path, GOOD)), Columns(), source="data.csv")
    result = analyze_frame(frame, count_tokens=whitespace_tokens)
    assert result["rows"] == 4
    assert result["labels"]["pos"] == {"count": 2, "share": 0.5}
    assert result["chars"]["max"] == len("I hated it")
    assert result["tokens"]["min"] == 2


def test_cli_validate_refuses_with_exit_2_and_no_traceback(tmp_path):
    path = csv(tmp_path, "text,label\na,pos\nb,pos\n")
    result = runner.invoke(app, ["data", "validate", str(path), "--model", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "at least 2 classes" in result.output
    assert "Traceback" not in result.output


def test_cli_validate_missing_file_exit_2(tmp_path):
    result = runner.invoke(app, ["data", "validate", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_validate_warns_but_exits_0(tmp_path, tiny_model_dir):
    content = GOOD + "I loved it,pos\n"
    result = runner.invoke(
        app,
        ["data", "validate", str(csv(tmp_path, content)), "--model", str(tiny_model_dir), "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] and any("duplicate" in w for w in report["warnings"])


def test_cli_analyze_json(tmp_path, tiny_model_dir):
    result = runner.invoke(
        app, ["data", "analyze", str(csv(tmp_path, GOOD)), "--model", str(tiny_model_dir), "--json"]
    )
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.output)
    assert parsed["rows"] == 4 and parsed["tokens"]["max"] >= 3


def test_length_histogram_bins_span_equal_whole_numbers():
    from loraforge.data.analysis import length_histogram

    bins = length_histogram([1, 2, 3, 3, 4, 18, 19, 20, 35])
    assert {b["end"] - b["start"] for b in bins} == {2}
    assert bins[0]["start"] == 1 and bins[-1]["start"] <= 35 < bins[-1]["end"]
    assert sum(b["count"] for b in bins) == 9
    assert length_histogram([7, 7, 7]) == [{"start": 7, "end": 8, "count": 3}]
