"""The journal and the audit log: every state change all or nothing, and what a restart finds."""

from __future__ import annotations

import json
import time

import pytest
from radedge.serve.audit import AuditLog
from radedge.serve.journal import (
    ANALYSING,
    DONE,
    FAILED,
    GAVE_UP,
    MAX_ATTEMPTS,
    NOT_ANALYSED,
    PENDING,
    RECEIVED,
    REFUSED,
    SENT,
    Journal,
)

DESCRIBED = {"sop_class": "1.2.840.10008.5.1.4.1.1.1.1", "modality": "DX", "body_part": "KNEE", "view": "AP"}


def _receive(journal: Journal, number: int) -> bool:
    return journal.receive(uid=f"1.2.3.{number}", key=f"{number:032x}", via="c-store", caller="MODALITY",
                           file=f"{number:032x}.dcm", described=DESCRIBED)


def _finish(journal: Journal, seq: int, objects: int = 2, state: str = DONE) -> None:
    outbox = [("sr", f"outputs/{seq}/{n}.dcm", "1.2.840.10008.5.1.4.1.1.88.33", f"2.25.{seq}{n}")
              for n in range(objects)]
    journal.finish(seq, state=state, reason=None, summary={"flags": [], "flagged_at": 1.0}, outbox=outbox,
                   audit={"instance": f"{seq:032x}", "outcome": state})


@pytest.fixture
def journal(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite")
    yield journal
    journal.close()


def test_an_instance_is_received_once_and_counted_when_sent_again(journal):
    assert _receive(journal, 1)
    assert not _receive(journal, 1)
    [instance] = journal.all_instances()
    assert (instance.state, instance.duplicates, instance.modality) == (RECEIVED, 1, "DX")
    assert journal.waiting() == 1


def test_a_refused_instance_sent_again_is_received(journal):
    journal.refuse(uid="1.2.3.1", key="1" * 32, via="c-store", caller="M", reason="no pixel data",
                   described={})
    assert not journal.has("1.2.3.1")
    assert _receive(journal, 1)
    [instance] = journal.all_instances()
    assert instance.state == RECEIVED and instance.reason is None


def test_a_refusal_does_not_overwrite_a_received_instance(journal):
    _receive(journal, 1)
    journal.refuse(uid="1.2.3.1", key="1" * 32, via="c-store", caller="M", reason="later junk", described={})
    assert journal.all_instances()[0].state == RECEIVED


def test_claims_go_oldest_first_and_attempts_count_when_the_models_start(journal):
    for number in (1, 2, 3):
        _receive(journal, number)
    first, second = journal.claim_next(), journal.claim_next()
    assert (first.uid, second.uid) == ("1.2.3.1", "1.2.3.2")
    assert journal.instance_by_seq(first.seq).state == ANALYSING
    assert journal.instance_by_seq(first.seq).attempts == 0
    assert journal.attempt(first.seq) == 1 and journal.attempt(first.seq) == 2
    assert journal.counts()[RECEIVED] == 1 and journal.counts()[ANALYSING] == 2


def test_a_finished_analysis_commits_its_outbox_and_audit_line_together(journal):
    _receive(journal, 1)
    instance = journal.claim_next()
    _finish(journal, instance.seq, objects=3)
    assert journal.instance_by_seq(instance.seq).state == DONE
    assert [item.state for item in journal.outbox()] == [PENDING] * 3
    [line] = journal.audit_after(0)
    assert json.loads(line) == {"seq": 1, "instance": f"{instance.seq:032x}", "outcome": DONE}
    with pytest.raises(RuntimeError, match="not recorded twice"):
        _finish(journal, instance.seq)
    assert len(journal.outbox()) == 3 and len(journal.audit_after(0)) == 1


def test_a_failing_commit_leaves_nothing_behind(journal):
    _receive(journal, 1)
    instance = journal.claim_next()
    # The second object repeats the first one's SOP Instance UID: the whole commit fails.
    outbox = [("sr", "a.dcm", "1.2", "2.25.7"), ("gsps", "b.dcm", "1.2", "2.25.7")]
    with pytest.raises(Exception, match="UNIQUE"):
        journal.finish(instance.seq, state=DONE, reason=None, summary={}, outbox=outbox, audit={})
    assert journal.instance_by_seq(instance.seq).state == ANALYSING
    assert journal.outbox() == [] and journal.audit_after(0) == []


def test_recovery_resumes_interrupted_analyses_and_gives_up_on_a_repeat_killer(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite")
    _receive(journal, 1)
    _receive(journal, 2)
    journal.attempt(journal.claim_next().seq)
    journal.close()
    # Killed during its first analysis, and again during each analysis after a restart.
    for restart in range(MAX_ATTEMPTS - 1):
        journal = Journal(tmp_path / "journal.sqlite")
        recovery = journal.recover()
        assert recovery.resumed == 1 and recovery.given_up == 0
        claimed = journal.claim_next()
        assert claimed.uid == "1.2.3.1" and journal.attempt(claimed.seq) == restart + 2
        journal.close()
    journal = Journal(tmp_path / "journal.sqlite")
    recovery = journal.recover()
    instance = journal.all_instances()[0]
    assert recovery.given_up == 1 and instance.state == FAILED and f"{MAX_ATTEMPTS} times" in instance.reason
    assert journal.claim_next().uid == "1.2.3.2"
    journal.close()


def test_states_other_than_the_three_outcomes_are_refused(journal):
    _receive(journal, 1)
    instance = journal.claim_next()
    for state in (RECEIVED, REFUSED, "lost"):
        with pytest.raises(ValueError):
            journal.finish(instance.seq, state=state, reason=None, summary={}, outbox=[], audit={})
    _finish(journal, instance.seq, state=NOT_ANALYSED, objects=0)
    assert journal.counts()[NOT_ANALYSED] == 1


def test_outbox_retries_back_off_and_refusals_give_up(journal):
    _receive(journal, 1)
    instance = journal.claim_next()
    _finish(journal, instance.seq, objects=2)
    assert journal.due(now=0.0) == []
    first, second = journal.due(now=time.time())
    assert not journal.retry(first.id, error="unreachable", next_attempt_at=1e12, refused=False,
                             refusals_before_giving_up=2)
    assert [item.id for item in journal.due(now=1e11)] == [second.id]
    journal.sent(second.id)
    assert journal.next_due_at() == 1e12
    # Unreachable does not count towards giving up; two refusals in a row do.
    assert not journal.retry(first.id, error="refused", next_attempt_at=1.0, refused=True, refusals_before_giving_up=2)
    assert journal.retry(first.id, error="refused", next_attempt_at=1.0, refused=True, refusals_before_giving_up=2)
    assert journal.outbox_counts() == {PENDING: 0, SENT: 1, GAVE_UP: 1}
    assert journal.due(now=1e13) == []


def test_the_journal_keeps_no_uid_in_what_the_page_sees(journal):
    _receive(journal, 1)
    shown = json.dumps(journal.all_instances()[0].to_dict())
    assert "1.2.3.1" not in shown and f"{1:032x}" in shown


def _audit_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_audit_log_gets_each_line_once_across_restarts(tmp_path, journal):
    path = tmp_path / "audit.jsonl"
    for number in (1, 2, 3):
        _receive(journal, number)
        _finish(journal, journal.claim_next().seq, objects=0)
    assert AuditLog(path, journal).flush() == 3
    assert AuditLog(path, journal).flush() == 0
    _receive(journal, 4)
    _finish(journal, journal.claim_next().seq, objects=0)
    assert AuditLog(path, journal).flush() == 1
    assert [line["seq"] for line in _audit_lines(path)] == [1, 2, 3, 4]


def test_a_line_torn_by_a_kill_is_replaced_whole(tmp_path, journal):
    path = tmp_path / "audit.jsonl"
    for number in (1, 2):
        _receive(journal, number)
        _finish(journal, journal.claim_next().seq, objects=0)
    AuditLog(path, journal).flush()
    # A kill in the middle of appending the next line leaves part of it.
    _receive(journal, 3)
    _finish(journal, journal.claim_next().seq, objects=0)
    whole = journal.audit_after(2)[0]
    with open(path, "a") as stream:
        stream.write(whole[: len(whole) // 2])
    assert AuditLog(path, journal).flush() == 1
    assert [line["seq"] for line in _audit_lines(path)] == [1, 2, 3]
