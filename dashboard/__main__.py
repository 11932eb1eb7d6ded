"""The CLI: ``python -m dashboard health …`` for on-call scripts and CI.

Exit codes (a public contract): 0 evaluated; 1 the worst verdict reached ``--fail-on``; 2 usage or
configuration error; 3 the source could not be read (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import datetime, timezone
from typing import Any, Sequence

from dashboard.config import ConfigError, load_settings
from dashboard.health import SEVERITY, Evaluation, evaluate, verdict_table
from dashboard.sources import health_source
from dashboard.sources.base import SourceError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_SOURCE = 0, 1, 2, 3


class UsageError(Exception):
    """A flag value that argparse could not check by itself."""


def parse_time(text: str) -> datetime:
    """Unix seconds or RFC 3339 (a time without zone is taken as UTC)."""
    try:
        return datetime.fromtimestamp(float(text), tz=timezone.utc)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise UsageError(f"--at {text!r}: expected unix seconds or RFC 3339 (2026-11-25T10:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dashboard", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    health = commands.add_parser("health", help="judge node components (kubelet, kube-proxy, DNS)")
    health.add_argument("--prometheus-url", help="Prometheus-API base URL (env PROMETHEUS_URL); none = embedded demo")
    health.add_argument("--cluster", help="only this cluster (matches the cluster label)")
    health.add_argument("--at", help="evaluation time: unix seconds or RFC 3339; default now")
    health.add_argument("--window", help="rate/quantile window, a PromQL duration (default 5m)")
    health.add_argument("--format", choices=("table", "json"), default="table")
    health.add_argument("--config", help="TOML configuration file (env DASHBOARD_CONFIG)")
    health.add_argument("--preset", help="signal catalog preset: kube-prometheus-stack or gke-managed-prometheus")
    health.add_argument(
        "--fail-on", choices=("degraded", "unhealthy"),
        help="exit 1 when the worst verdict reaches this level (unknown counts as degraded)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_health(args)
    except (UsageError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except SourceError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_SOURCE


def run_health(args: argparse.Namespace) -> int:
    at = parse_time(args.at) if args.at else datetime.now(timezone.utc)
    settings = load_settings(
        {
            "prometheus_url": args.prometheus_url,
            "cluster": args.cluster,
            "window": args.window,
            "config": args.config,
            "preset": args.preset,
        }
    )
    if settings.uses_demo:
        print("note: no Prometheus URL configured; running on the embedded demo", file=sys.stderr)
    source = health_source(settings.prometheus)
    evaluation = evaluate(source, settings.catalog, at=at, cluster=settings.cluster)
    if args.format == "json":
        print(json.dumps(evaluation_to_json(evaluation), indent=2))
    else:
        print(evaluation_table(evaluation))
    if args.fail_on:
        worst = evaluation.worst()
        if worst is None:
            print("note: no node components found; cannot confirm health", file=sys.stderr)
            return EXIT_FAILED
        if SEVERITY[worst] >= SEVERITY[args.fail_on]:
            return EXIT_FAILED
    return EXIT_OK


def _finite(value: Any) -> Any:
    """JSON has no NaN or Infinity: those become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def evaluation_to_json(evaluation: Evaluation) -> dict:
    """The JSON contract: cluster, at, source, verdicts[node, component, verdict, reasons, work, resources]."""
    verdicts = [
        _finite(
            {
                "cluster": row["cluster"],
                "node": row["node"],
                "component": row["component"],
                "scope": row["scope"],
                "verdict": row["verdict"],
                "reasons": row["reasons"],
                "work": row["work"],
                "resources": row["resources"],
                "no_data": row["no_data"],
            }
        )
        for row in evaluation.verdicts.to_dict(orient="records")
    ]
    return {
        "cluster": evaluation.cluster,
        "at": evaluation.at.isoformat().replace("+00:00", "Z"),
        "source": evaluation.source,
        "verdicts": verdicts,
    }


def evaluation_table(evaluation: Evaluation) -> str:
    """A plain-text table for people: one line per node and component, with the deciding reason."""
    table = verdict_table(evaluation.verdicts)
    header = ("CLUSTER", "NODE", "COMPONENT", "VERDICT", "WHY")
    lines = [header] + [
        (row.cluster or "-", row.node, row.component, row.verdict, row.why)
        for row in table.itertuples(index=False)
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    text = [
        "  ".join(cell.ljust(width) for cell, width in zip(line[:-1], widths)) + "  " + line[-1]
        for line in lines
    ]
    counts = table["verdict"].value_counts()
    summary = f"{evaluation.source} at {evaluation.at.isoformat()}: " + (
        ", ".join(f"{count} {verdict}" for verdict, count in counts.items()) or "no node components found"
    )
    return "\n".join([*text, "", summary])


if __name__ == "__main__":
    sys.exit(main())
