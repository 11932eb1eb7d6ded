"""The text renderings shared by the CLI and the pages: remote strings shown, never obeyed."""

import io
from datetime import datetime, timezone

import pandas as pd

from dashboard.gate import Check, GateResult
from dashboard.health import VERDICT_COLUMNS, Evaluation
import dashboard.reports
from dashboard.reports import evaluation_table, gate_text, releases_csv, rfc3339, write_timeline_csv

HOSTILE = "node-1\x1b[2K\r ALL HEALTHY"


def test_a_terminal_escape_in_a_label_is_shown_not_obeyed():
    verdicts = pd.DataFrame([{
        "cluster": "prod", "node": HOSTILE, "component": "kubelet", "scope": "node", "verdict": "unhealthy",
        "reasons": [{"signal": "up", "level": "unhealthy", "value": 0.0, "text": "target down (up = 0)"}],
        "work": {}, "resources": {}, "no_data": [],
    }], columns=VERDICT_COLUMNS)
    text = evaluation_table(Evaluation(datetime(2026, 12, 2, tzinfo=timezone.utc), "test", None, verdicts))
    assert "\x1b" not in text and "\r" not in text
    assert "node-1\\x1b[2K\\r ALL HEALTHY" in text and "unhealthy" in text


def test_gate_text_escapes_check_details_and_counts_the_checks():
    result = GateResult("https://gcr.io/a/b@sha256:" + "1" * 64, False, [
        Check("digest", True, "ok"),
        Check("attestation", False, "no attestation\x1b]0;owned\x07", "projects/p/notes/n"),
    ])
    lines = gate_text(result).splitlines()
    assert lines[0] == "DENIED: https://gcr.io/a/b@sha256:" + "1" * 64
    assert lines[1] == "  FAILED attestation:projects/p/notes/n: no attestation\\x1b]0;owned\\x07"
    assert lines[2] == "  1 of 2 checks passed"


def test_releases_csv_writes_deployments_lists_and_times_as_text():
    deployed = pd.Timestamp("2026-12-01T08:30:00Z")
    table = pd.DataFrame({
        "resource_uri": ["https://gcr.io/a/b@sha256:" + "1" * 64],
        "build_time": pd.to_datetime(["2026-12-01T08:00:00.123Z"], utc=True),
        "deployments": [[{"cluster": "prod", "address": "x", "deploy_time": deployed},
                         {"cluster": None, "address": "https://10.0.0.1", "deploy_time": None}]],
        "failed_checks": [["scan", "build-provenance"]],
        "source_revision": [None],
    })
    header, row = releases_csv(table).strip().splitlines()
    assert header == "resource_uri,build_time,deployments,failed_checks,source_revision"
    assert row.endswith(",2026-12-01T08:00:00Z,prod@2026-12-01T08:30:00Z; https://10.0.0.1,scan; build-provenance,")


def test_rfc3339_of_missing_and_zoned_times():
    assert rfc3339(None) == "" and rfc3339(pd.NaT) == ""
    assert rfc3339(pd.Timestamp("2026-12-02T11:00:00+01:00")) == "2026-12-02T10:00:00Z"


def test_the_timeline_csv_written_in_blocks_is_the_csv_written_at_once(monkeypatch):
    at = pd.Timestamp("2026-12-02T10:00:00Z")
    timeline = pd.DataFrame({
        "time": [at, at, at + pd.Timedelta(minutes=5)],
        "cluster": ["prod", "prod", "prod"],
        "node": [None, HOSTILE, "node-2"],
        "component": ["dns", "kubelet", "kubelet"],
        "scope": ["cluster", "node", "node"],
        "verdict": ["healthy", "unhealthy", "unknown"],
        "signal": [None, "runtime_error_ratio", None],
        "value": [float("nan"), 0.12, float("nan")],
    })
    at_once = io.StringIO()
    write_timeline_csv(timeline, at_once)
    monkeypatch.setattr(dashboard.reports, "CSV_ROWS_AT_ONCE", 2)
    in_blocks = io.StringIO()
    write_timeline_csv(timeline, in_blocks)
    assert in_blocks.getvalue() == at_once.getvalue()
    assert at_once.getvalue().splitlines() == [
        "time,cluster,node,component,verdict,signal,value",
        "2026-12-02T10:00:00Z,prod,,dns,healthy,,",
        "2026-12-02T10:00:00Z,prod,node-1\\x1b[2K\\r ALL HEALTHY,kubelet,unhealthy,runtime_error_ratio,0.12",
        "2026-12-02T10:05:00Z,prod,node-2,kubelet,unknown,,",
    ]
