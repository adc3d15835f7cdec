"""The fuzz runner counts each kind of failure as what it is and saves what failed."""

from __future__ import annotations

import json

from tests.fuzz import faulty
from tests.fuzz.mutators import Case
from tests.fuzz.runner import FAILURES, Limits, describe, run_cases


def test_every_failure_is_counted_as_what_it_is_and_saved(tmp_path):
    limits = Limits(time_limit_s=1.0, memory_limit_bytes=1 << 30, generation_allowance_s=1.0)
    tally = run_cases(
        range(14), master_seed=0, workers=2, limits=limits, save=tmp_path,
        regenerate=lambda number: Case(number, "seed", ("regenerated",), b"bytes of case %d" % number),
        case_function=faulty.case, initializer=faulty.nothing_to_prepare,
    )
    assert dict(tally.outcomes) == {"analysed": 2, "untyped": 2, "crash": 2, "hang": 4, "memory": 2, "refused": 2}
    assert tally.failed == 10 and {report.outcome for report in tally.failures} == set(FAILURES) - {"bad result"}
    for report in tally.failures:
        saved = tmp_path / f"{report.outcome}-{report.case}"
        assert saved.with_suffix(".bin").read_bytes() == b"bytes of case %d" % report.case
        assert json.loads(saved.with_suffix(".json").read_text())["mutations"] == ["regenerated"]
    table = describe(tally, elapsed_s=1.0, workers=2, limits=limits)
    assert any(report.detail.startswith("took 30.0 s") for report in tally.failures)
    assert "hang                 4  <- failure" in table and "refused              2" in table
