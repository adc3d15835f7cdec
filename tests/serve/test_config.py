"""serve.toml: the shipped example loads as is; every mistake is refused naming its setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from radedge.errors import ServeConfigError
from radedge.serve.config import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "serve.toml"


def _config(tmp_path: Path, text: str):
    path = tmp_path / "serve.toml"
    path.write_text(text)
    return load_config(path)


def test_the_example_configuration_loads_with_the_documented_defaults():
    config = load_config(EXAMPLE)
    assert (config.receiver.ae_title, config.receiver.host, config.receiver.port) == ("RADEDGE", "127.0.0.1", 11112)
    assert (config.forward.ae_title, config.forward.host, config.forward.port) == ("PACS", "127.0.0.1", 11113)
    assert (config.page.host, config.page.port, config.page.token) == ("127.0.0.1", 8642, None)
    assert config.models.bundles == () and config.folder is None
    assert config.audit.path == Path("audit.jsonl")


def test_an_empty_file_gives_a_receiver_on_loopback_and_no_forwarding(tmp_path):
    config = _config(tmp_path, "")
    assert config.receiver.enabled and config.receiver.host == "127.0.0.1"
    assert config.forward is None and config.page.enabled


@pytest.mark.parametrize("text, setting", [
    ("[receiver]\nalowed_calling_ae_titles = ['X']\n", "alowed_calling_ae_titles"),
    ("[recevier]\n", "recevier"),
    ("[receiver]\nport = 70000\n", "receiver.port"),
    ("[receiver]\nport = '11112'\n", "receiver.port"),
    ("[receiver]\nae_title = 'A_TITLE_LONGER_THAN_16'\n", "receiver.ae_title"),
    ("[receiver]\nae_title = 'BACK\\\\SLASH'\n", "receiver.ae_title"),
    ("[receiver]\nallowed_calling_ae_titles = 'ROOM1'\n", "receiver.allowed_calling_ae_titles"),
    ("[analysis]\ntime_budget_s = 0\n", "analysis.time_budget_s"),
    ("[analysis]\nmax_queue = true\n", "analysis.max_queue"),
    ("[forward]\nae_title = 'PACS'\nhost = 'pacs'\n", "forward.port is required"),
    ("[forward]\nae_title = 'PACS'\nhost = 'pacs'\nport = 104\nretry_initial_s = 10\nretry_max_s = 5\n",
     "retry_max_s"),
    ("[models]\nbundles = ['no-such-bundle']\n", "models.bundles"),
    ("[models]\nprecision = 'fp8'\n", "models.precision"),
    ("[folder]\npath = 'no-such-folder'\n", "folder.path"),
    ("[page]\nhost = '0.0.0.0'\n", "page.token"),
    ("[page]\ntoken = 'short'\n", "page.token"),
    ("[receiver]\nenabled = false\n", "nothing would ever arrive"),
    ("[analysis]\ndicom_outputs = false\n[forward]\nae_title = 'P'\nhost = 'h'\nport = 1\n", "dicom_outputs"),
    ("receiver = 3\n", "receiver must be a table"),
    ("[receiver\n", "not valid TOML"),
])
def test_a_mistake_is_refused_naming_the_setting(tmp_path, text, setting):
    with pytest.raises(ServeConfigError, match=setting.replace(".", r"\.").replace("[", r"\[")):
        _config(tmp_path, text)


def test_a_token_is_never_quoted_in_an_error(tmp_path):
    with pytest.raises(ServeConfigError) as caught:
        _config(tmp_path, "[page]\ntoken = 12345678901234567890\n")
    assert "12345678901234567890" not in str(caught.value)


def test_an_exposed_page_with_a_token_file_is_accepted(tmp_path):
    (tmp_path / "token").write_text("a-long-random-token-for-the-page\n")
    config = _config(tmp_path, "[page]\nhost = '0.0.0.0'\ntoken_file = 'token'\n")
    assert config.page.token == "a-long-random-token-for-the-page"
    assert "a-long-random" not in repr(config)


def test_relative_paths_are_read_from_the_configuration_folder(tmp_path):
    (tmp_path / "drop").mkdir()
    config = _config(tmp_path, "[folder]\npath = 'drop'\n")
    assert config.folder.path == tmp_path / "drop"


def _serve_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "radedge", "serve", *args], capture_output=True, text=True,
                          timeout=120)


def test_check_accepts_the_example_and_says_what_it_sets_up(tmp_path):
    result = _serve_check("--config", str(EXAMPLE), "--state", str(tmp_path / "state"), "--check")
    assert result.returncode in (0, 6), result.stderr
    assert "receiver: AE title RADEDGE on 127.0.0.1:11112" in result.stdout
    assert "forward: to AE title PACS at 127.0.0.1:11113" in result.stdout
    # Only a port held by another program may stop it here; it says which.
    assert result.returncode == 0 or "cannot listen" in result.stdout


def test_check_refuses_a_bad_configuration_with_status_2(tmp_path):
    path = tmp_path / "serve.toml"
    path.write_text("[receiver]\nport = -1\n")
    result = _serve_check("--config", str(path), "--check")
    assert result.returncode == 2
    assert "receiver.port must be a TCP port" in result.stderr
