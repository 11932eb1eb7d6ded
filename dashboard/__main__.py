"""The CLI: ``python -m dashboard health|gate|releases …`` for on-call scripts and CI.

Exit codes (a public contract). health: 0 evaluated, 1 the worst verdict reached ``--fail-on``.
gate: 0 allowed, 1 denied. releases: 0 listed. All: 2 usage or configuration error; 3 a source
could not be read (one line on stderr, no traceback). The gate fails closed: with exit 3 its
verdict is still "denied".
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from contextlib import nullcontext
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from dashboard.config import ConfigError, Settings, load_settings
from dashboard.deploy_impact import deployment_impact, impacts_by_release
from dashboard.deployments import deployments_between
from dashboard.durations import parse_duration
from dashboard.gate import evaluate_gate
from dashboard.health import Evaluation, evaluate
from dashboard.impact import FAIL, ImpactRules
from dashboard.inventory import known_clusters
from dashboard.policy import PolicyError
from dashboard.process import garbage_collection_paused
from dashboard.provenance import release_table
from dashboard.release_record import release_record
from dashboard.reports import (
    evaluation_table,
    gate_text,
    incidents_csv,
    incidents_records,
    release_text,
    releases_csv,
    releases_text,
    timeline_records,
    write_timeline_csv,
)
from dashboard.resources import ResourceError, checked_resource, not_found_message, similar_resources, uri_forms
from dashboard.sources import health_source, supply_chain_source
from dashboard.sources.base import HealthSource, SourceError
from dashboard.supply_chain import NoPolicyError, gate_policy, read_release, read_supply_chain
from dashboard.timeline import evaluate_range, incidents
from dashboard.verdicts import Verdict

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_SOURCE = 0, 1, 2, 3
# Commands that read a whole Grafeas listing; their process pauses the garbage collector meanwhile.
SUPPLY_CHAIN_COMMANDS = ("gate", "releases", "release")


class UsageError(Exception):
    """A flag value that argparse could not check by itself."""


def parse_time(text: str, flag: str = "--at") -> datetime:
    """Unix seconds or RFC 3339 (a time without zone is taken as UTC)."""
    expected = f"{flag} {text!r}: expected unix seconds or RFC 3339 (2026-11-25T10:00:00Z)"
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        if not math.isfinite(seconds):
            raise UsageError(expected)
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise UsageError(f"{flag} {text!r} is out of range") from None
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise UsageError(expected) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def past_time(text: str | None, flag: str = "--at") -> datetime:
    """``text`` parsed (default now); a moment in the future has no data to judge and is refused."""
    now = datetime.now(timezone.utc)
    if text is None:
        return now
    moment = parse_time(text, flag)
    if moment > now:
        raise UsageError(
            f"{flag} {text!r} is in the future (now is {_rfc3339(now)}): "
            "there is nothing to judge yet"
        )
    return moment


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dashboard",
        description="Node-component health and release provenance for on-call scripts and CI.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    health = commands.add_parser("health", help="judge node components (kubelet, kube-proxy, DNS)")
    _prometheus_flags(health)
    health.add_argument("--at", help="evaluation time, not in the future: unix seconds or RFC 3339; default now")
    health.add_argument("--window", help="rate/quantile window, a PromQL duration of at least 1m (default 5m)")
    health.add_argument("--format", choices=("table", "json"), default="table")
    health.add_argument("--config", help="TOML configuration file (env DASHBOARD_CONFIG)")
    health.add_argument(
        "--fail-on", choices=(Verdict.DEGRADED.value, Verdict.UNHEALTHY.value),
        help=f"exit 1 when the worst verdict reaches this level; the order is {' < '.join(Verdict)}, "
        "so degraded also fails on components that cannot be judged",
    )
    gate = commands.add_parser("gate", help="may this release (image@digest) be deployed?")
    gate.add_argument(
        "--resource", required=True,
        help="the release: [https://]REGISTRY/PROJECT/IMAGE@sha256:… (matched with or without https://, "
        "as the releases table's resource column shows it)",
    )
    _grafeas_flags(gate)
    gate.add_argument("--format", choices=("text", "json"), default="text")
    releases = commands.add_parser("releases", help="every release with its provenance and gate verdict")
    releases.add_argument("--service", help="only this service (image repository, or its last path segment)")
    _grafeas_flags(releases)
    releases.add_argument("--format", choices=("table", "json", "csv"), default="table")
    releases.add_argument("--prometheus-url", help="Prometheus-API base URL for the impact column (env PROMETHEUS_URL); "
                          "none = embedded demo")
    releases.add_argument("--preset", help="signal catalog preset: kube-prometheus-stack or gke-managed-prometheus")
    releases.add_argument("--no-impact", action="store_true",
                          help="leave the impact column empty and read no health source")
    timeline = commands.add_parser("timeline", help="a verdict per node component at every step of a time range")
    _prometheus_flags(timeline)
    timeline.add_argument("--start", help="first step: unix seconds or RFC 3339; default 6 h before --end")
    timeline.add_argument("--end", help="last moment, not in the future: unix seconds or RFC 3339; default now")
    timeline.add_argument("--step", default="5m", help="time between steps, a PromQL duration (default 5m)")
    timeline.add_argument("--window", help="rate/quantile window, a PromQL duration of at least 1m (default 5m)")
    timeline.add_argument("--format", choices=("csv", "json"), default="csv")
    timeline.add_argument("--incidents", action="store_true",
                          help="one row per incident (a run of non-healthy steps) instead of one per step")
    timeline.add_argument("--config", help="TOML configuration file (env DASHBOARD_CONFIG)")
    release = commands.add_parser("release", help="one release's whole record, with what each deployment did")
    release.add_argument("--resource", required=True, help="the release: [https://]REGISTRY/PROJECT/IMAGE@sha256:…")
    release.add_argument("--window", default="30m",
                         help="impact window before and after each deploy, a PromQL duration (default 30m)")
    release.add_argument("--format", choices=("text", "json"), default="text")
    release.add_argument("--fail-on-impact", action="store_true",
                         help="exit 1 when any deployment's impact is Fail")
    _prometheus_flags(release)
    _grafeas_flags(release)
    return parser


def _prometheus_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prometheus-url", help="Prometheus-API base URL (env PROMETHEUS_URL); none = embedded demo")
    parser.add_argument("--cluster", help="only this cluster (the cluster label's exact value)")
    parser.add_argument("--preset", help="signal catalog preset: kube-prometheus-stack or gke-managed-prometheus")


def _grafeas_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grafeas-url", help="Grafeas base URL (env GRAFEAS_URL); none = embedded demo")
    parser.add_argument("--project", help="project holding the occurrences (env GRAFEAS_PROJECT)")
    parser.add_argument("--grafeas-api", choices=("v1", "v1beta1"), help="API dialect (default v1)")
    parser.add_argument("--policy", help="gate policy TOML (env GATE_POLICY); the demo has its own")
    parser.add_argument("--config", help="TOML configuration file (env DASHBOARD_CONFIG)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run = {"health": run_health, "gate": run_gate, "releases": run_releases, "timeline": run_timeline,
           "release": run_release}[args.command]
    pause = garbage_collection_paused if args.command in SUPPLY_CHAIN_COMMANDS else nullcontext
    try:
        with pause():
            return run(args)
    except (UsageError, ConfigError, PolicyError, NoPolicyError, ResourceError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except SourceError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_SOURCE


def _health_settings(args: argparse.Namespace, window: str | None) -> Settings:
    """Settings for the commands that read Prometheus; ``window`` is the rate window flag."""
    settings = load_settings(
        {
            "prometheus_url": args.prometheus_url,
            "cluster": args.cluster,
            "window": window,
            "config": args.config,
            "preset": args.preset,
        }
    )
    if settings.uses_demo:
        print("note: no Prometheus URL configured; running on the embedded demo", file=sys.stderr)
    return settings


def _check_cluster_known(source: HealthSource, settings: Settings, at: datetime) -> None:
    """A ``--cluster`` the source does not know is a usage error naming the clusters it knows."""
    known = known_clusters(source, settings.catalog, at=at)
    if settings.cluster not in known:
        raise UsageError(
            f"cluster {settings.cluster!r} is not known to {source.description} at {_rfc3339(at)}; "
            f"known clusters: {', '.join(known) or 'none'}"
        )


def run_health(args: argparse.Namespace) -> int:
    at = past_time(args.at)
    settings = _health_settings(args, args.window)
    source = health_source(settings.prometheus)
    evaluation = evaluate(source, settings.catalog, at=at, cluster=settings.cluster)
    if settings.cluster is not None and evaluation.verdicts.empty:
        _check_cluster_known(source, settings, at)
    if args.format == "json":
        print(json.dumps(evaluation_to_json(evaluation), indent=2))
    else:
        print(evaluation_table(evaluation))
    if args.fail_on:
        worst = evaluation.worst()
        if worst is None:
            print("note: no node components found; cannot confirm health", file=sys.stderr)
            return EXIT_FAILED
        if worst.rank >= Verdict(args.fail_on).rank:
            return EXIT_FAILED
    return EXIT_OK


def run_timeline(args: argparse.Namespace) -> int:
    end = past_time(args.end, "--end")
    start = parse_time(args.start, "--start") if args.start else end - timedelta(hours=6)
    if start >= end:
        raise UsageError(f"--start {_rfc3339(start)} is not before --end {_rfc3339(end)}: the range is empty")
    try:
        step = timedelta(seconds=parse_duration(args.step))
    except ValueError as error:
        raise UsageError(f"--step: {error}") from None
    if step <= timedelta(0):
        raise UsageError("--step must be longer than 0s")
    settings = _health_settings(args, args.window)
    source = health_source(settings.prometheus)
    if settings.cluster is not None:
        _check_cluster_known(source, settings, end)
    timeline = evaluate_range(source, settings.catalog, start=start, end=end, step=step, cluster=settings.cluster)
    header = {"cluster": settings.cluster, "start": _rfc3339(start), "end": _rfc3339(end), "step": args.step,
              "source": source.description}
    if args.incidents:
        found = incidents(timeline, end=end)
        if args.format == "json":
            print(json.dumps({**header, "incidents": incidents_records(found)}, indent=2))
        else:
            print(incidents_csv(found), end="")
    elif args.format == "json":
        print(json.dumps({**header, "timeline": timeline_records(timeline)}, indent=2))
    else:
        write_timeline_csv(timeline, sys.stdout)
    return EXIT_OK


def run_release(args: argparse.Namespace) -> int:
    resource = checked_resource(args.resource)
    try:
        rules = ImpactRules(window=timedelta(seconds=parse_duration(args.window)))
    except ValueError as error:
        raise UsageError(f"--window: {error}") from None
    if rules.window < timedelta(minutes=1):
        raise UsageError(f"--window {args.window!r} is under 1m: too short to compare before and after")
    settings = _release_settings(args)
    policy = gate_policy(settings)
    now = datetime.now(timezone.utc)
    chain = read_supply_chain(settings, now=now)
    known_uris = set(chain.occurrences.all["resource_uri"].dropna())
    resource = next((form for form in uri_forms(resource) if form in known_uris), resource)
    gate = evaluate_gate(resource, chain.occurrences, policy, source_error=chain.error)
    health = health_source(settings.prometheus)
    try:
        clusters, health_error = known_clusters(health, settings.catalog, at=now), None
    except SourceError as error:
        clusters, health_error = None, str(error)
    # Every deploy so far: any of them may confound one of this release's deployments.
    markers = deployments_between(chain.occurrences, datetime.min.replace(tzinfo=timezone.utc), now,
                                  aliases=settings.cluster_aliases, known_clusters=clusters)

    def impact_for(deployment: dict) -> dict:
        return deployment_impact(health, settings.catalog, deployment, now=now, rules=rules, other_deploys=markers,
                                 resource_uri=resource, source_error=health_error)

    record = release_record(resource, chain.occurrences, policy, gate=gate, impact_for=impact_for,
                            aliases=settings.cluster_aliases, known_clusters=clusters)
    if args.format == "json":
        print(json.dumps(record, indent=2))
    else:
        not_found = None if resource in known_uris or chain.error else not_found_message(
            similar_resources(resource, known_uris))
        print(release_text(record, gate_text(gate, not_found=not_found)))
    errors = [error for error in (chain.error, health_error) if error]
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if errors:
        return EXIT_SOURCE
    if args.fail_on_impact and any(d["impact"]["verdict"] == FAIL for d in record["deployments"]):
        return EXIT_FAILED
    return EXIT_OK


def _release_settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(
        {
            "prometheus_url": args.prometheus_url,
            "cluster": getattr(args, "cluster", None),
            "preset": args.preset,
            "grafeas_url": args.grafeas_url,
            "project": args.project,
            "grafeas_api": args.grafeas_api,
            "policy": args.policy,
            "config": args.config,
        }
    )
    if settings.uses_demo:
        print("note: no Prometheus URL configured; running on the embedded demo", file=sys.stderr)
    if settings.uses_demo_grafeas:
        print("note: no Grafeas URL configured; running on the embedded demo", file=sys.stderr)
    try:
        supply_chain_source(settings.grafeas)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return settings


def _supply_chain_settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(
        {
            "grafeas_url": args.grafeas_url,
            "project": args.project,
            "grafeas_api": args.grafeas_api,
            "policy": args.policy,
            "config": args.config,
        }
    )
    if settings.uses_demo_grafeas:
        print("note: no Grafeas URL configured; running on the embedded demo", file=sys.stderr)
    return settings


def _supply_chain(settings: Settings):
    try:
        return supply_chain_source(settings.grafeas)
    except ValueError as error:
        raise UsageError(str(error)) from None


def run_gate(args: argparse.Namespace) -> int:
    resource = checked_resource(args.resource)
    settings = _supply_chain_settings(args)
    policy = gate_policy(settings)
    release = read_release(_supply_chain(settings), resource)
    result = evaluate_gate(release.resource, release.occurrences, policy, source_error=release.error)
    if args.format == "json":
        answer = result.to_json_dict()
        if release.not_found:
            answer["not_found"] = release.not_found
        print(json.dumps(answer, indent=2))
    else:
        print(gate_text(result, not_found=release.not_found))
    if release.error is not None:
        print(f"error: {release.error}", file=sys.stderr)
        return EXIT_SOURCE
    return EXIT_OK if result.allowed else EXIT_FAILED


def run_releases(args: argparse.Namespace) -> int:
    settings = _supply_chain_settings(args) if args.no_impact else _release_settings(args)
    _supply_chain(settings)  # a Grafeas configured without a project is a usage error
    policy = gate_policy(settings)
    now = datetime.now(timezone.utc)
    chain = read_supply_chain(settings, now=now)
    if chain.error:
        raise SourceError(chain.error)
    table = release_table(chain.occurrences, policy)
    if args.service:
        wanted = args.service.strip()
        table = table[(table["service"] == wanted) | (table["service"].str.rsplit("/", n=1).str[-1] == wanted)]
    health_error = None
    if args.no_impact:
        table["impact"] = None
    else:
        health = health_source(settings.prometheus)
        try:
            clusters = known_clusters(health, settings.catalog, at=now)
        except SourceError as error:
            clusters, health_error = None, str(error)
        markers = deployments_between(chain.occurrences, datetime.min.replace(tzinfo=timezone.utc), now,
                                      aliases=settings.cluster_aliases, known_clusters=clusters)
        markers = markers[markers["resource_uri"].isin(table["resource_uri"])]
        impacts = impacts_by_release(health, settings.catalog, markers, now=now, source_error=health_error)
        table["impact"] = [impacts.get(uri) for uri in table["resource_uri"]]
    if args.format == "json":
        print(table.to_json(orient="records", date_format="iso", indent=2))
    elif args.format == "csv":
        print(releases_csv(table), end="")
    else:
        print(releases_text(table))
    if health_error:
        print(f"error: {health_error}", file=sys.stderr)
        return EXIT_SOURCE
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
                "reasons": [reason.to_dict() for reason in row["reasons"]],
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


if __name__ == "__main__":
    sys.exit(main())
