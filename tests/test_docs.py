"""The documents that describe the code are the code's: docs/api.md is what
docs/make_api_reference.py writes from the docstrings, and every public name is documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_api_reference_is_what_the_docstrings_say():
    done = subprocess.run([sys.executable, str(ROOT / "docs/make_api_reference.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_every_public_name_and_member_has_a_docstring():
    assert "(undocumented)" not in (ROOT / "docs/api.md").read_text()


def test_the_changelog_names_the_version_being_built():
    import radedge

    assert f"## {radedge.__version__} " in (ROOT / "CHANGELOG.md").read_text()
