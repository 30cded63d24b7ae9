"""Settings: defaults < TOML < environment < flags, with errors that name the layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.errors import ConfigError
from worker.settings import load_settings


def test_each_layer_overrides_the_one_below(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('rate = 5.0\nconcurrency = 3\nmax_attempts = 2\norg_id = "org-from-toml"\n')
    env = {
        "DEVIN_TERMINATE_CONCURRENCY": "4",
        "DEVIN_TERMINATE_MAX_ATTEMPTS": "7",
        "DEVIN_ORG_ID": "org-from-env",
        "DEVIN_API_KEY": "cog_x",
    }
    settings = load_settings({"max_attempts": 9}, config=str(toml), environ=env)
    assert settings.rate == 5.0  # TOML over the default
    assert settings.concurrency == 4  # env over TOML
    assert settings.max_attempts == 9  # flag over env
    assert settings.org_id == "org-from-env"
    assert settings.timeout == 30.0  # the default
    assert settings.token is not None and settings.token.get_secret_value() == "cog_x"
    assert "token" not in settings.public() and "cog_x" not in repr(settings)


def test_a_bad_value_names_its_layer(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"concurrency \(from DEVIN_TERMINATE_CONCURRENCY\)"):
        load_settings({}, environ={"DEVIN_TERMINATE_CONCURRENCY": "many"})
    toml = tmp_path / "c.toml"
    toml.write_text("retries = 3\n")
    with pytest.raises(ConfigError, match="unknown setting 'retries'"):
        load_settings({}, config=str(toml), environ={})


def test_the_token_is_never_read_from_toml(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('token = "cog_in_a_file"\n')
    with pytest.raises(ConfigError, match="must not be stored") as info:
        load_settings({}, config=str(toml), environ={})
    assert "cog_in_a_file" not in str(info.value)


def test_token_file(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text("cog_from_file\n")
    path.chmod(0o600)
    settings = load_settings({"token_file": str(path)}, environ={"DEVIN_API_KEY": "cog_env"})
    assert settings.token is not None and settings.token.get_secret_value() == "cog_from_file"


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://api.devin.ai", True),
        ("http://127.0.0.1:8080", True),
        ("http://localhost:1", True),
        ("http://[::1]:8080", True),
        ("http://api.devin.ai", False),
        ("http://10.0.0.5", False),
        ("ftp://api.devin.ai", False),
    ],
)
def test_plain_http_only_to_loopback(url: str, ok: bool) -> None:
    if ok:
        assert load_settings({"base_url": url}, environ={}).base_url == url
    else:
        with pytest.raises(ConfigError):
            load_settings({"base_url": url}, environ={})


def test_org_id_must_look_like_one() -> None:
    with pytest.raises(ConfigError, match="org_id"):
        load_settings({"org_id": "acme"}, environ={})


@pytest.mark.parametrize(
    ("value", "expected"),
    [("auto", "auto"), (" Auto ", "auto"), ("16", 16), (1, 1), (1024, 1024), ("1024", 1024)],
)
def test_concurrency_is_a_count_or_auto(value: object, expected: object) -> None:
    settings = load_settings({"concurrency": value}, environ={})
    assert settings.concurrency == expected
    assert settings.public()["concurrency"] == expected
    assert settings.in_flight_max == (256 if expected == "auto" else expected)


@pytest.mark.parametrize("value", ["0", 0, 1025, "many", "8.5", 8.5, True, "auto\n8", ""])
def test_concurrency_out_of_bounds_says_what_it_takes(value: object) -> None:
    with pytest.raises(ConfigError, match=r"from 1 to 1024, or auto, not"):
        load_settings({"concurrency": value}, environ={})


def test_concurrency_is_auto_by_default() -> None:
    assert load_settings({}, environ={}).concurrency == "auto"


def test_a_toml_switch_must_be_a_toml_boolean(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('archive = "yes"\n')
    with pytest.raises(ConfigError, match=r"archive \(from .*c\.toml\): must be true or false"):
        load_settings({}, config=str(toml), environ={})
    toml.write_text("archive = true\n")
    assert load_settings({}, config=str(toml), environ={}).archive is True


def test_an_unknown_variable_of_ours_is_one_warning_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from worker.output.logs import configure_logging

    configure_logging()
    env = {"DEVIN_TERMINATE_MAX_ATEMPTS": "3", "DEVIN_TERMINATE_REDIS_URL": "redis://h/0"}
    settings = load_settings({}, environ=env)
    assert settings.max_attempts == 10
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "DEVIN_TERMINATE_MAX_ATEMPTS" in lines[0]
    assert "did you mean DEVIN_TERMINATE_MAX_ATTEMPTS?" in lines[0]


@pytest.mark.parametrize(
    "url",
    [
        "HTTPS://API.Devin.AI",
        "https://api.devin.ai:443/",
        "https://api.devin.ai///",
        " https://api.devin.ai",
    ],
)
def test_one_api_has_one_name(url: str) -> None:
    assert load_settings({"base_url": url}, environ={}).base_url == "https://api.devin.ai"
    kept = load_settings({"base_url": "http://127.0.0.1:8080/x/"}, environ={}).base_url
    assert kept == "http://127.0.0.1:8080/x"
