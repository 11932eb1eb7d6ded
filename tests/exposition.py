"""Turn captured Prometheus text expositions into timestamped OpenMetrics for ``promtool`` backfilling.

A captured exposition is one scrape: one value per series. PromQL's ``rate()``, ``increase()`` and
``histogram_quantile()`` need several samples over time, so each target is replayed as ``samples``
scrapes, ``step`` seconds apart, the last one at ``end_ts``::

    t_k     = end_ts - (samples - 1 - k) * step             k = 0 .. samples - 1
    value_k = captured * (k + 1) / samples                  cumulative samples: counters, histogram
                                                            _bucket/_sum/_count, summary _sum/_count
    value_k = captured                                      gauges, untyped, summary quantiles

Consequences, for a query evaluated at ``end_ts``:

* an instant selector returns exactly the captured value of every series;
* every cumulative series grows by ``captured / (samples * step)`` per second, so ``rate()`` of any
  two counters has the ratio of their captured values, and ``histogram_quantile()`` over
  ``rate()``-d buckets equals ``histogram_quantile()`` over the captured buckets;
* ``increase(x[<samples*step>s])`` equals the captured value (Prometheus extrapolates the first
  sample back one step, to the implied zero).

No staleness markers are written: the series just end, so instant queries keep returning the last
value until the lookback delta (5m by default) after ``end_ts`` has passed, and nothing afterwards.

How text-format families become OpenMetrics families (valid OpenMetrics 1.0, even though
Prometheus 2.42's parser would accept much less):

* counter ``foo_total`` -> counter family ``foo``, samples keep the name ``foo_total``;
* counter without ``_total`` (legacy, e.g. kubelet 1.13 ``kubelet_docker_operations``) -> ``unknown``
  family; its values still grow;
* untyped -> ``unknown``;
* samples that do not belong to their ``# TYPE`` family (the CoreDNS 1.7.0 fixture types
  ``coredns_dns_response_rcode_count_total`` but exposes ``coredns_dns_responses_total``) form a
  family of their own: a counter if the name ends in ``_total``, ``unknown`` otherwise;
* families of the same name from several targets are merged under one ``# TYPE`` block. Where a
  counter family ``foo`` meets a non-counter family ``foo`` (legacy and modern kubelet in one file)
  the counter is written as an ``unknown`` family named after its samples, ``foo_total``;
* the target labels (``extra_labels``) are added to every sample; an exposed label of the same
  name is renamed ``exported_<name>``, as Prometheus does with ``honor_labels: false``;
* timestamps present in the exposition are ignored.

OpenMetrics timestamps are written with millisecond precision, the resolution of the TSDB.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dashboard.catalog import escape_label_value

Labels = tuple[tuple[str, str], ...]

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_HELP_RE = re.compile(rf"#\s+HELP\s+({_NAME})(?:[ \t](.*))?$")
_TYPE_RE = re.compile(rf"#\s+TYPE\s+({_NAME})\s+(\w+)\s*$")
_SAMPLE_RE = re.compile(rf"({_NAME})\s*(?:\{{(.*)\}})?\s+(\S+)(?:\s+-?\d+)?\s*$")
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n"}
_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count")}
_POINT_LABEL = {"histogram": "le", "summary": "quantile"}


@dataclass(frozen=True)
class Sample:
    """One sample line of a text exposition (labels unescaped, in exposition order)."""

    name: str
    labels: Labels
    value: float


@dataclass
class SourceFamily:
    """A metric family as exposed in the text format: declared by ``# HELP``/``# TYPE`` or inferred."""

    name: str
    type: str = "untyped"
    help: str | None = None
    samples: list[Sample] = field(default_factory=list)

    def owns(self, sample_name: str) -> bool:
        """Whether the text format puts a sample of this name in this family."""
        suffixes = _SUFFIXES.get(self.type, ("",))
        return any(sample_name == self.name + suffix for suffix in suffixes)

    def is_cumulative(self, sample: Sample) -> bool:
        """Whether the sample only grows over time (counter-like), as opposed to a gauge-like value."""
        if self.type == "summary":
            return sample.name != self.name
        return self.type in ("counter", "histogram")


def parse_exposition(text: str) -> list[SourceFamily]:
    """Parse a Prometheus text exposition into its families (those with samples), in order of appearance.

    Raises ``ValueError`` naming the line for anything that is not a comment, blank or sample line.
    """
    families: dict[str, SourceFamily] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if match := _HELP_RE.match(line):
                family = families.setdefault(match[1], SourceFamily(match[1]))
                family.help = _unescape(match[2] or "")
            elif match := _TYPE_RE.match(line):
                families.setdefault(match[1], SourceFamily(match[1])).type = match[2]
            continue
        sample = _parse_sample(line, lineno)
        _owner(families, sample.name).samples.append(sample)
    return [family for family in families.values() if family.samples]


def _parse_sample(line: str, lineno: int) -> Sample:
    match = _SAMPLE_RE.fullmatch(line)
    if not match:
        raise ValueError(f"line {lineno}: not a sample line: {line!r}")
    labels: list[tuple[str, str]] = []
    body, pos = match[2] or "", 0
    while pos < len(body.rstrip()):
        label = _LABEL_RE.match(body, pos)
        if not label:
            raise ValueError(f"line {lineno}: bad label set: {{{body}}}")
        labels.append((label[1], _unescape(label[2])))
        pos = label.end()
    try:
        value = float(match[3])
    except ValueError:
        raise ValueError(f"line {lineno}: bad value {match[3]!r}") from None
    return Sample(match[1], tuple(labels), value)


def _owner(families: dict[str, SourceFamily], sample_name: str) -> SourceFamily:
    """The declared family a sample belongs to, or a family inferred from the sample's own name."""
    for suffix in ("", "_bucket", "_sum", "_count"):
        if sample_name.endswith(suffix):
            family = families.get(sample_name[: len(sample_name) - len(suffix)])
            if family is not None and family.owns(sample_name):
                return family
    inferred = "counter" if sample_name.endswith("_total") else "untyped"
    return families.setdefault(sample_name, SourceFamily(sample_name, inferred))


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: _UNESCAPE.get(m[1], m[0]), value)


def _openmetrics_identity(family: SourceFamily) -> tuple[str, str]:
    """(OpenMetrics family name, OpenMetrics type) for a text-format family."""
    if family.type == "counter":
        if family.name.endswith("_total"):
            return family.name[: -len("_total")], "counter"
        return family.name, "unknown"
    if family.type in ("gauge", "histogram", "summary"):
        return family.name, family.type
    return family.name, "unknown"


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _format_timestamp(ts_ms: int) -> str:
    return f"{ts_ms // 1000}.{ts_ms % 1000:03d}"


def _sample_line(name: str, labels: Labels, value: float, ts_ms: int) -> str:
    label_text = ",".join(f'{key}="{escape_label_value(val)}"' for key, val in labels)
    series = f"{name}{{{label_text}}}" if labels else name
    return f"{series} {_format_value(value)} {_format_timestamp(ts_ms)}"


def _with_target_labels(labels: Labels, extra: Mapping[str, str]) -> Labels:
    renamed = tuple((f"exported_{key}" if key in extra else key, val) for key, val in labels)
    return renamed + tuple(extra.items())


@dataclass
class _Family:
    name: str
    type: str
    help: str | None
    metrics: dict[Labels, list[str]] = field(default_factory=dict)  # labels without le/quantile -> lines


class OpenMetricsWriter:
    """Collects series from several targets into one OpenMetrics document (what promtool backfills).

    Every series' samples must be in increasing time order: promtool silently drops out-of-order
    samples, so the writer refuses them (``add_series``) or never produces them (``add_exposition``).
    A series added twice (same family and labels) is a ``ValueError``: give each target distinct
    ``extra_labels``.
    """

    def __init__(self) -> None:
        self._families: dict[tuple[str, str], _Family] = {}

    def add_exposition(
        self,
        text: str,
        extra_labels: Mapping[str, str],
        end_ts: float,
        samples: int = 20,
        step: float = 30.0,
    ) -> None:
        """Replay one captured exposition as ``samples`` scrapes ending at ``end_ts`` (see module doc)."""
        if samples < 2 or step <= 0:
            raise ValueError("need samples >= 2 and step > 0 for rate() to have data")
        extra = _check_label_names(extra_labels, reserved=("le", "quantile"))
        end_ms, step_ms = round(end_ts * 1000), round(step * 1000)
        times = [end_ms - (samples - 1 - k) * step_ms for k in range(samples)]
        for source in parse_exposition(text):
            name, om_type = _openmetrics_identity(source)
            family = self._family(name, om_type, source.help)
            point_label = _POINT_LABEL.get(source.type)
            grouped: dict[Labels, list[Sample]] = {}
            for sample in source.samples:
                key = tuple(kv for kv in sample.labels if kv[0] != point_label)
                grouped.setdefault(_with_target_labels(key, extra), []).append(sample)
            for key, members in grouped.items():
                lines = []
                for k, ts_ms in enumerate(times):
                    growth = (k + 1) / samples
                    for sample in members:
                        value = sample.value * growth if source.is_cumulative(sample) else sample.value
                        labels = _with_target_labels(sample.labels, extra)
                        lines.append(_sample_line(sample.name, labels, value, ts_ms))
                self._add_metric(family, key, lines)

    def add_series(
        self,
        name: str,
        labels: Mapping[str, str],
        points: Iterable[tuple[float, float]],
        metric_type: str = "gauge",
        help: str | None = None,
    ) -> None:
        """Add one series from explicit ``(unix seconds, value)`` points, e.g. a counter that resets.

        ``metric_type`` is the text-format type: ``gauge``, ``counter`` (name ending in ``_total``,
        else it becomes ``unknown`` as legacy counters do) or ``untyped``. For histograms, add an
        exposition or give each ``_bucket``/``_sum``/``_count`` series as ``untyped``.
        """
        if metric_type not in ("gauge", "counter", "untyped"):
            raise ValueError(f"add_series supports gauge, counter and untyped, not {metric_type!r}")
        family_name, om_type = _openmetrics_identity(SourceFamily(name, metric_type))
        key = tuple(_check_label_names(labels).items())
        lines, last_ms = [], None
        for ts, value in points:
            ts_ms = round(ts * 1000)
            if last_ms is not None and ts_ms <= last_ms:
                raise ValueError(f"{name}{dict(key)}: timestamps must increase ({ts} after {last_ms / 1000})")
            lines.append(_sample_line(name, key, value, ts_ms))
            last_ms = ts_ms
        if not lines:
            raise ValueError(f"{name}{dict(key)}: no points")
        self._add_metric(self._family(family_name, om_type, help), key, lines)

    def add_container_usage(self, labels: Mapping[str, str], times: list[float], cores: float,
                            working_set_bytes: float) -> None:
        """One cgroup as cAdvisor reports it: CPU seconds growing at ``cores`` from 100 s, and a
        steady working set, sampled at ``times``."""
        self.add_series("container_cpu_usage_seconds_total", labels,
                        [(t, 100 + cores * (t - times[0])) for t in times], "counter")
        self.add_series("container_memory_working_set_bytes", labels,
                        [(t, working_set_bytes) for t in times])

    def render(self) -> str:
        """The OpenMetrics document: one ``# TYPE`` block per family, ending with ``# EOF``."""
        type_counts: dict[str, int] = {}
        for name, _ in self._families:
            type_counts[name] = type_counts.get(name, 0) + 1
        out: list[str] = []
        emitted: set[str] = set()
        for (name, om_type), family in self._families.items():
            if om_type == "counter" and type_counts[name] > 1:
                name, om_type = f"{name}_total", "unknown"
            if name in emitted:
                raise ValueError(f"metric family {name!r} exposed with conflicting types; cannot merge")
            emitted.add(name)
            out.append(f"# TYPE {name} {om_type}")
            if family.help:
                out.append(f"# HELP {name} {escape_label_value(family.help)}")
            for lines in family.metrics.values():
                out.extend(lines)
        out.append("# EOF")
        return "\n".join(out) + "\n"

    def write(self, path: Path) -> Path:
        """Write ``render()`` to ``path`` and return it."""
        path.write_text(self.render(), encoding="utf-8")
        return path

    def _family(self, name: str, om_type: str, help: str | None) -> _Family:
        family = self._families.setdefault((name, om_type), _Family(name, om_type, help))
        family.help = family.help or help
        return family

    @staticmethod
    def _add_metric(family: _Family, key: Labels, lines: list[str]) -> None:
        if key in family.metrics:
            raise ValueError(f"duplicate series in family {family.name!r}: {dict(key)}")
        family.metrics[key] = lines


def _check_label_names(labels: Mapping[str, str], reserved: tuple[str, ...] = ()) -> dict[str, str]:
    for key in labels:
        if not _LABEL_NAME_RE.fullmatch(key) or key.startswith("__") or key in reserved:
            raise ValueError(f"invalid label name {key!r}")
    return dict(labels)


def exposition_to_openmetrics(
    text: str,
    extra_labels: Mapping[str, str],
    end_ts: float,
    samples: int = 20,
    step: float = 30.0,
) -> str:
    """One exposition as a complete OpenMetrics document; use ``OpenMetricsWriter`` to combine targets."""
    writer = OpenMetricsWriter()
    writer.add_exposition(text, extra_labels, end_ts, samples=samples, step=step)
    return writer.render()
