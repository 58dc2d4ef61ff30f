"""Invalid LORAFORGE_* settings are reported in our words, naming the variable: no
pydantic `[type=value_error, input_value=…]`, no link, no traceback, exit 2, from every
command that starts something (api, worker, ui, up) and from the others."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from loraforge.cli.app import app
from loraforge.errors import ConfigError
from loraforge.settings import get_settings, load_settings

runner = CliRunner()

# Each command is refused before it starts anything: settings are read first.
COMMANDS = [
    ["experiments", "list"],
    ["api", "--port", "1"],
    ["worker"],
    ["ui", "--port", "1"],
    ["up", "--api-port", "1", "--ui-port", "2"],
]


@pytest.fixture
def environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env of the working tree
    monkeypatch.setenv("LORAFORGE_DATA_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def assert_our_words(output: str) -> None:
    assert "type=" not in output and "input_value" not in output
    assert "errors.pydantic.dev" not in output and "Traceback" not in output
    assert "hint: Settings come from LORAFORGE_* environment variables or a .env file" in output


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_production_without_a_secret_says_so_in_our_words(environment, command):
    environment.setenv("LORAFORGE_ENV", "production")
    result = runner.invoke(app, command)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(
        "error: LORAFORGE_ENV=production needs LORAFORGE_JWT_SECRET set to a random value of at "
        "least 32 characters (e.g. `openssl rand -hex 32`)\n"
    )
    assert_our_words(result.output)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_an_invalid_value_names_its_variable(environment, command):
    environment.setenv("LORAFORGE_JWT_EXPIRE_MINUTES", "abc")
    result = runner.invoke(app, command)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: LORAFORGE_JWT_EXPIRE_MINUTES must be a whole number\n")
    assert_our_words(result.output)


def test_several_invalid_values_are_listed_together(environment):
    environment.setenv("LORAFORGE_ENV", "prod")
    environment.setenv("LORAFORGE_MAX_UPLOAD_MB", "0")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.message == (
        "invalid settings:\n"
        "  - LORAFORGE_ENV must be one of: development, production\n"
        "  - LORAFORGE_MAX_UPLOAD_MB must be greater than 0"
    )
