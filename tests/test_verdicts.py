"""The one verdict order and the one reason shape (issue 10 §0): every branch of the judge gives a
Reason with every field, and its JSON object is the one the CLI printed before the type existed."""

import json
import math
import subprocess
import sys
from dataclasses import fields, replace
from pathlib import Path

import pytest

from dashboard.catalog import beyond_top_bucket
from dashboard.sources.base import SourceWarning
from dashboard.verdicts import NO_DATA, RANKS, NoData, Reason, Verdict, listing_order
from tests.test_health_judge import GKE, healthy_kubelet, judge_rows, rows, verdict_of

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_rank_order_is_unhealthy_unknown_degraded_healthy():
    assert Verdict.UNHEALTHY.rank > Verdict.UNKNOWN.rank > Verdict.DEGRADED.rank > Verdict.HEALTHY.rank == 0
    assert Verdict.worst_first() == (Verdict.UNHEALTHY, Verdict.UNKNOWN, Verdict.DEGRADED, Verdict.HEALTHY)
    assert [RANKS[verdict] for verdict in Verdict] == [0, 1, 2, 3]
    assert RANKS["unknown"] == 2  # a word looks up like its member


def test_readme_and_help_state_the_enum_order():
    documented = " < ".join(Verdict)
    assert documented == "healthy < degraded < unknown < unhealthy"
    assert f"in the order {documented}" in README.read_text()
    shown = subprocess.run([sys.executable, "-m", "dashboard", "health", "--help"], capture_output=True, text=True,
                           timeout=60, cwd=README.parent, check=True).stdout
    assert f"the order is {documented}," in " ".join(shown.split())


def test_verdicts_are_their_words():
    assert Verdict.HEALTHY == "healthy" and str(Verdict.UNKNOWN) == "unknown" and f"{Verdict.DEGRADED}" == "degraded"
    assert json.dumps([Verdict.UNHEALTHY, NO_DATA]) == '["unhealthy", "no data"]'
    assert {"healthy": 1}[Verdict.HEALTHY] == 1


def test_worst():
    assert Verdict.worst(["healthy", Verdict.DEGRADED, "unknown"]) is Verdict.UNKNOWN
    assert Verdict.worst(["unhealthy", "unknown"]) is Verdict.UNHEALTHY
    assert Verdict.worst([]) is None
    with pytest.raises(ValueError):
        Verdict.worst(["no data"])  # not a verdict


def _reason(row, signal):
    return next(r for r in row["reasons"] if r.signal == signal)


def _branches():
    """One reason of every kind the judge writes, by name."""
    found = {}
    degraded = healthy_kubelet() + rows(
        ("n1", "kube-proxy", "up", 0.0), ("n1", "kube-proxy", "stale_rules_seconds", 0.0),
    )
    degraded[1]["value"] = 0.02
    frame = judge_rows(degraded)
    kubelet = verdict_of(frame, "n1", "kubelet")
    found["threshold"] = _reason(kubelet, "runtime_error_ratio")
    found["up"] = _reason(kubelet, "up")
    found["no series"] = _reason(kubelet, "apiserver_error_ratio")
    proxy = verdict_of(frame, "n1", "kube-proxy")
    found["gauge"] = _reason(proxy, "stale_rules_seconds")
    found["up down"] = _reason(proxy, "up")
    gke = verdict_of(judge_rows(healthy_kubelet()[:1] + healthy_kubelet()[2:], catalog=GKE), "n1", "kubelet")
    found["not collected"] = _reason(gke, "runtime_error_ratio")
    garbage = healthy_kubelet()
    garbage[0]["value"] = math.nan
    found["invalid"] = _reason(verdict_of(judge_rows(garbage), "n1", "kubelet"), "up")
    found["no series at all"] = verdict_of(judge_rows(rows(("n1", "inventory", "known_nodes", 1.0))), "n1",
                                           "kubelet")["reasons"][0]
    found["no work"] = verdict_of(judge_rows(rows(("n1", "kubelet", "up", 1.0))), "n1", "kubelet")["reasons"][0]
    beyond = healthy_kubelet() + rows(("n1", "kubelet", beyond_top_bucket("pleg_relist_p99"), 1.0))
    beyond[2]["value"] = 1.0
    found["lower bound"] = _reason(verdict_of(judge_rows(beyond), "n1", "kubelet"), "pleg_relist_p99")
    beyond[2]["value"] = 10.0
    found["beyond"] = _reason(verdict_of(judge_rows(beyond), "n1", "kubelet"), "pleg_relist_p99")
    warning = SourceWarning("kubelet", "runtime_error_ratio", "partial response")
    partial = rows(("n1", "kubelet", "up", 1.0), ("n1", "kubelet", "runtime_error_ratio", 0.0))
    found["partial"] = _reason(verdict_of(judge_rows(partial, [warning]), "n1", "kubelet"), "runtime_error_ratio")
    partial[1]["value"] = 0.2
    found["partial breach"] = _reason(verdict_of(judge_rows(partial, [warning]), "n1", "kubelet"),
                                      "runtime_error_ratio")
    return found


BRANCHES = _branches()
THRESHOLD_KEYS = ["signal", "level", "value", "threshold", "degraded_at", "unhealthy_at", "op", "unit", "source",
                  "text"]


@pytest.mark.parametrize("name", sorted(BRANCHES))
def test_every_branch_gives_a_reason_with_every_field(name):
    reason = BRANCHES[name]
    assert type(reason) is Reason
    for field in fields(Reason):
        assert hasattr(reason, field.name)
    assert isinstance(reason.level, (Verdict, NoData)) and reason.level != Verdict.UNKNOWN
    assert isinstance(reason.text, str) and reason.text
    assert isinstance(reason.beyond_top_bucket, bool)
    shown = reason.to_dict()
    assert list(shown)[:3] == ["signal", "level", "value"] and "text" in shown
    assert set(shown) <= {field.name for field in fields(Reason)}
    assert dict(reason) == shown and json.loads(json.dumps(shown)) == shown
    assert type(shown["level"]) is str


@pytest.mark.parametrize(
    "name, keys",
    [
        ("threshold", [*THRESHOLD_KEYS, "window"]),
        ("gauge", THRESHOLD_KEYS),
        ("up", ["signal", "level", "value", "threshold", "op", "unit", "source", "text"]),
        ("up down", ["signal", "level", "value", "threshold", "op", "unit", "source", "text"]),
        ("no series", ["signal", "level", "value", "text"]),
        ("not collected", ["signal", "level", "value", "text"]),
        ("invalid", ["signal", "level", "value", "text"]),
        ("no series at all", ["signal", "level", "value", "text"]),
        ("no work", ["signal", "level", "value", "text"]),
        ("lower bound", [*THRESHOLD_KEYS, "window", "beyond_top_bucket"]),
        ("beyond", [*THRESHOLD_KEYS, "window", "beyond_top_bucket"]),
        ("partial", [*THRESHOLD_KEYS, "window"]),
        ("partial breach", [*THRESHOLD_KEYS, "window"]),
    ],
)
def test_the_json_object_of_each_branch_keeps_its_keys_in_order(name, keys):
    """The CLI's reason objects as they were when reasons were dicts (a public contract)."""
    assert list(BRANCHES[name].to_dict()) == keys


def test_the_json_objects_hold_what_they_held():
    assert BRANCHES["threshold"].to_dict() == {
        "signal": "runtime_error_ratio", "level": "degraded", "value": 0.02, "threshold": 0.01, "degraded_at": 0.01,
        "unhealthy_at": 0.05, "op": ">=", "unit": "ratio", "source": "project default: 1 % degraded, 5 % unhealthy",
        "text": "runtime_error_ratio = 2.00 % over 5m ≥ 1.00 %", "window": "5m",
    }
    assert BRANCHES["up down"].to_dict() == {
        "signal": "up", "level": "unhealthy", "value": 0.0, "threshold": 1, "op": "<", "unit": "bool",
        "source": "a down target is unhealthy", "text": "target down (up = 0)",
    }
    assert BRANCHES["no work"].to_dict() == {
        "signal": None, "level": "no data", "value": None, "text": "no work signal had data besides up",
    }
    assert BRANCHES["lower bound"]["level"] == "no data" and BRANCHES["lower bound"]["beyond_top_bucket"] is True
    assert BRANCHES["partial"]["text"] == "runtime_error_ratio: partial data (partial response)"
    assert BRANCHES["partial breach"]["text"].endswith(" (partial data: partial response)")
    assert BRANCHES["partial breach"].level == Verdict.UNHEALTHY


def test_not_applicable_fields_are_none():
    missing = BRANCHES["no series"]
    assert (missing.level, missing.value, missing.threshold, missing.op, missing.window) == (NO_DATA, None, None,
                                                                                              None, None)
    assert BRANCHES["no series at all"].signal is None
    assert BRANCHES["up"].degraded_at is None and BRANCHES["up"].window is None
    assert BRANCHES["gauge"].window is None and BRANCHES["gauge"].threshold is not None


def test_reasons_are_listed_breaches_first_then_no_data_then_healthy():
    base = BRANCHES["threshold"]
    given = [replace(base, level=level, text=str(level))
             for level in (Verdict.HEALTHY, NO_DATA, Verdict.DEGRADED, Verdict.UNHEALTHY, Verdict.HEALTHY)]
    assert [r.text for r in listing_order(given)] == ["unhealthy", "degraded", "no data", "healthy", "healthy"]
    kubelet = verdict_of(judge_rows(healthy_kubelet()), "n1", "kubelet")
    levels = [r.level for r in kubelet["reasons"]]
    assert levels == [NO_DATA, NO_DATA, Verdict.HEALTHY, Verdict.HEALTHY, Verdict.HEALTHY]
