"""Normalise Grafeas occurrences into one tidy schema of pandas DataFrames.

Grafeas speaks several JSON dialects of the same data:

* v1 (Artifact Registry, Container Analysis, current open-source server): ``resourceUri``, payload
  under ``vulnerability`` / ``build`` / ``attestation`` / ``deployment`` / ``discovery`` / ...
* v1beta1 (older open-source server): ``resource.uri``, payloads nested one level deeper
  (``deployment.deployment``, ``discovered.discovered``, ``attestation.attestation``), vulnerability
  locations as ``affectedLocation`` / ``fixedLocation``, no ``fixAvailable``.
* v1alpha1 (historic): ``resourceUrl`` and ``attestation.pgpSignedAttestation``.

Protobuf JSON rules apply throughout: keys may be lowerCamelCase or snake_case, a false bool or an
empty string/list is usually omitted, enums are strings (or, rarely, their numbers), ``bytes`` are
base64 and int64s may be strings. Servers written in Go also emit ``""`` for unset strings and
``0001-01-01T00:00:00Z`` for unset times; both count as missing here.

Nothing in this module raises on malformed input: a field of the wrong type reads as missing.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

NOTE_KIND_UNSPECIFIED = "NOTE_KIND_UNSPECIFIED"
SEVERITY_UNSPECIFIED = "SEVERITY_UNSPECIFIED"
SEVERITIES = (SEVERITY_UNSPECIFIED, "MINIMAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
_SPECIFIED_SEVERITIES = frozenset(SEVERITIES[1:])

# Enum numbers 0-7 are shared by v1 and v1beta1; above that the dialects disagree, so a numeric kind
# beyond 7 is left to payload inference.
_NUMBERED_KINDS = (NOTE_KIND_UNSPECIFIED, "VULNERABILITY", "BUILD", "IMAGE", "PACKAGE",
                   "DEPLOYMENT", "DISCOVERY", "ATTESTATION")
_VERSION_KINDS = ("VERSION_KIND_UNSPECIFIED", "NORMAL", "MINIMUM", "MAXIMUM")
_PLATFORMS = ("PLATFORM_UNSPECIFIED", "GKE", "FLEX", "CUSTOM")
_CONTINUOUS_ANALYSIS = ("CONTINUOUS_ANALYSIS_UNSPECIFIED", "ACTIVE", "INACTIVE")
_ANALYSIS_STATUSES = ("ANALYSIS_STATUS_UNSPECIFIED", "PENDING", "SCANNING", "FINISHED_SUCCESS",
                      "FINISHED_FAILED", "FINISHED_UNSUPPORTED")
_CONTENT_TYPES = ("CONTENT_TYPE_UNSPECIFIED", "SIMPLE_SIGNING_JSON")

# Occurrence payload key -> kind, for occurrences that carry no usable ``kind`` (v1alpha1, request
# bodies, hand-written data). v1 and v1beta1 names are both listed.
_PAYLOAD_KINDS = {
    "vulnerability": "VULNERABILITY",
    "build": "BUILD",
    "image": "IMAGE",
    "derivedImage": "IMAGE",
    "package": "PACKAGE",
    "installation": "PACKAGE",
    "deployment": "DEPLOYMENT",
    "discovery": "DISCOVERY",
    "discovered": "DISCOVERY",
    "attestation": "ATTESTATION",
    "upgrade": "UPGRADE",
    "compliance": "COMPLIANCE",
    "dsseAttestation": "DSSE_ATTESTATION",
    "sbomReference": "SBOM_REFERENCE",
    "secret": "SECRET",
    "intoto": "INTOTO",
    "sbom": "SBOM",
    "spdxPackage": "SPDX_PACKAGE",
    "spdxFile": "SPDX_FILE",
    "spdxRelationship": "SPDX_RELATIONSHIP",
}

_ZERO_TIME_PREFIX = "0001-01-01T00:00:00"
_FIRST_NS, _LAST_NS = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
_VULNERABILITY_ID = re.compile(
    r"\b(CVE-\d{4}-\d{4,}|GHSA(?:-[0-9a-z]{4}){3}|[A-Z][A-Z0-9]*-\d{4}-[0-9A-Za-z]+)\b",
    re.IGNORECASE,
)
_CLUSTER_PATH = re.compile(r"/clusters/([^/\s?#\"']+)")
_GKE_CONTEXT = re.compile(r"\bgke_[^_\s]+_[^_\s]+_([^\s/\"']+)")

# Column kinds: each frame is built with fixed dtypes so that an empty frame has the same schema.
# A time cell holds a tuple of raw candidates, parsed a column at once; the first that parses wins.
_STR, _TIME, _FLOAT, _BOOL, _OBJECT = "str", "time", "float", "bool", "object"

_COMMON = {"occurrence": _STR, "resource_uri": _STR, "note_name": _STR, "kind": _STR,
           "create_time": _TIME}
# A kind's frame: the common columns of each row's occurrence (its row in ``all``), then these.
_SCHEMAS: dict[str, dict[str, str]] = {
    "vulnerabilities": {"cve": _STR, "severity": _STR, "effective_severity": _STR,
                        "cvss": _FLOAT, "package": _STR, "package_type": _STR,
                        "installed_version": _STR, "fixed_version": _STR, "fix_available": _BOOL,
                        "description": _STR},
    "builds": {"builder": _STR, "build_id": _STR, "builder_version": _STR,
               "creator": _STR, "source_repo": _STR, "source_revision": _STR,
               "build_start": _TIME, "build_end": _TIME, "built_artifacts": _OBJECT,
               "provenance_builder_id": _STR, "predicate_type": _STR},
    "attestations": {"content_type": _STR, "serialized_payload": _OBJECT,
                     "payload_error": _STR, "signatures": _OBJECT, "pgp_key_id": _STR,
                     "jwts": _OBJECT},
    "deployments": {"deploy_time": _TIME, "undeploy_time": _TIME, "platform": _STR,
                    "address": _STR, "cluster": _STR, "user_email": _STR, "config": _STR,
                    "deployed_resource_uris": _OBJECT},
    "discoveries": {"analysis_status": _STR, "last_scan_time": _TIME,
                    "continuous_analysis": _STR, "analysis_error": _STR},
    "other": {"details": _OBJECT},
}
COLUMNS: dict[str, tuple[str, ...]] = {
    **{frame: (*_COMMON, *schema) for frame, schema in _SCHEMAS.items()}, "all": tuple(_COMMON)}
"""Column names of every frame of :class:`Occurrences`, by frame name."""


@dataclass(frozen=True)
class Occurrences:
    """Occurrences of every kind as tidy frames; see :data:`COLUMNS` for their columns.

    Every frame starts with the common columns ``occurrence`` (name), ``resource_uri``,
    ``note_name``, ``kind`` and ``create_time`` (UTC). Missing text is ``None``, missing times
    ``NaT``, missing floats ``NaN``, missing bools ``False``.
    """

    vulnerabilities: pd.DataFrame
    builds: pd.DataFrame
    attestations: pd.DataFrame
    deployments: pd.DataFrame
    discoveries: pd.DataFrame
    other: pd.DataFrame
    all: pd.DataFrame


# --- field access -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _snake(camel: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", camel).lower()


class _TwoSpellings(dict):
    """A JSON object with snake_case keys: ``get(name)`` falls back from the lowerCamelCase
    ``name`` to its snake_case spelling (the camelCase one wins unless it is null)."""

    def get(self, key: str, default: Any = None) -> Any:
        value = super().get(key)
        return super().get(_snake(key), default) if value is None else value


def _fields(value: Any) -> dict:
    """A JSON object read by lowerCamelCase field name with ``get``; {} if ``value`` is no object.

    The spelling is settled once per object rather than on every read: an object with no
    underscore in any key (as good as every object of a lowerCamelCase response) is returned as it
    is, since no snake_case spelling can be in it; any other is wrapped so that ``get`` tries both.
    """
    if not isinstance(value, dict):
        return {}
    try:
        if "_" not in "".join(value):
            return value
    except TypeError:  # a key that is not text: not JSON, so take the careful path
        pass
    return value if isinstance(value, _TwoSpellings) else _TwoSpellings(value)


def _obj(fields: dict, *names: str) -> dict:
    """The first of ``names`` in ``fields`` that holds an object, as fields; {} if none does."""
    for name in names:
        value = fields.get(name)
        if isinstance(value, dict):
            return _fields(value)
    return {}


def _list(fields: dict, name: str) -> list:
    value = fields.get(name)
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _float(value: Any) -> float:
    if isinstance(value, bool):
        return math.nan
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return math.nan
    return math.nan


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _enum(value: Any, names: tuple[str, ...], *, upper: bool = True) -> str | None:
    """An enum as its name: numbers are looked up in ``names``, strings upper-cased if ``upper``."""
    if isinstance(value, str):
        if value in names:  # already a name as it should be spelled: the usual case, made quick
            return value
        if not value.strip():
            return None
        return value.strip().upper() if upper else value
    if isinstance(value, int) and not isinstance(value, bool):
        return names[value] if 0 <= value < len(names) else None
    return None


def _time_text(value: Any) -> str | None:
    """Text worth parsing as a time: not Go's zero time, and starting with a digit as RFC 3339
    does (which also keeps pandas from reading "now" or "today")."""
    if isinstance(value, str) and not value.startswith(_ZERO_TIME_PREFIX):
        text = value.strip()
        if text[:1].isdigit():
            return text
    return None


def _time(value: Any) -> pd.Timestamp:
    """A protobuf Timestamp (RFC 3339 text, or ``{seconds, nanos}``) as a UTC ns Timestamp or NaT."""
    try:
        if isinstance(value, dict):
            fields = _fields(value)
            seconds = _int(fields.get("seconds"))
            if seconds is None:
                return pd.NaT
            stamp = pd.Timestamp(seconds, unit="s", tz="UTC") + pd.Timedelta(
                _int(fields.get("nanos")) or 0, unit="ns")
        else:
            text = _time_text(value)
            if text is None:
                return pd.NaT
            stamp = pd.Timestamp(text)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return stamp.as_unit("ns")
    except (ValueError, TypeError, OverflowError, ArithmeticError):
        # pandas' OutOfBoundsDatetime is a ValueError.
        return pd.NaT


def _times(values: list) -> pd.Series:
    """:func:`_time` of every value, with ISO 8601 text parsed in one vectorised pass."""
    texts = [_time_text(value) for value in values]
    # cache=False: pandas' de-duplicating cache costs more than it saves, even on repeated times.
    parsed = pd.Series(pd.to_datetime(texts, utc=True, format="ISO8601", errors="coerce",
                                      cache=False))
    # pandas infers the unit from the text; keep only what fits in nanoseconds, as _time does.
    try:
        parsed = parsed.dt.as_unit("ns")
    except pd.errors.OutOfBoundsDatetime:
        parsed = parsed.where(parsed.between(_FIRST_NS, _LAST_NS)).dt.as_unit("ns")
    for index in parsed.index[parsed.isna()]:
        # Not ISO 8601, out of range, or {seconds, nanos}: _time has the last word.
        if texts[index] is not None or isinstance(values[index], dict):
            parsed[index] = _time(values[index])
    return parsed


def _base64(value: Any) -> tuple[bytes | None, str | None]:
    """Decode protobuf JSON ``bytes`` (standard or URL-safe alphabet, padding optional)."""
    if value is None or value == "":
        return None, "missing"
    if not isinstance(value, str):
        return None, f"expected a base64 string, got {type(value).__name__}"
    text = re.sub(r"\s+", "", value).replace("-", "+").replace("_", "/")
    if len(text.rstrip("=")) % 4 == 1:
        return None, "invalid base64 (truncated)"
    text = text.rstrip("=")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True), None
    except (binascii.Error, ValueError):
        return None, "invalid base64"


# --- occurrence identity --------------------------------------------------------------------------


def resource_uri(occurrence: dict) -> str | None:
    """The URI of the resource an occurrence is about, in any dialect (None if absent)."""
    return _resource_uri(_fields(occurrence))


def kind(occurrence: dict) -> str:
    """The occurrence's kind (e.g. ``VULNERABILITY``), inferred from its payload if not stated."""
    return _kind(_fields(occurrence))


def note_name(occurrence: dict) -> str | None:
    """The ``projects/…/notes/…`` name the occurrence refers to (None if absent)."""
    return _text(_fields(occurrence).get("noteName"))


def _resource_uri(occurrence: dict) -> str | None:
    return (_text(occurrence.get("resourceUri"))
            or _text(_obj(occurrence, "resource").get("uri"))
            or _text(occurrence.get("resourceUrl")))


def _kind(occurrence: dict) -> str:
    named = _enum(occurrence.get("kind"), _NUMBERED_KINDS)
    if named and named != NOTE_KIND_UNSPECIFIED:
        return named
    for key, payload_kind in _PAYLOAD_KINDS.items():
        if occurrence.get(key) is not None:
            return payload_kind
    return NOTE_KIND_UNSPECIFIED


def _common(occurrence: dict, occurrence_kind: str) -> dict[str, Any]:
    return {
        "occurrence": _text(occurrence.get("name")),
        "resource_uri": _resource_uri(occurrence),
        "note_name": _text(occurrence.get("noteName")),
        "kind": occurrence_kind,
        "create_time": (occurrence.get("createTime"),),
    }


def _unwrap(payload: dict, inner: str) -> dict:
    """v1beta1 nests details one level deeper (``deployment.deployment``); v1 does not."""
    nested = payload.get(inner)
    return _fields(nested) if isinstance(nested, dict) else payload


# --- vulnerabilities ------------------------------------------------------------------------------


def _severity(value: Any) -> str | None:
    """A known, specified severity name, else None (UNSPECIFIED is proto3's "unset")."""
    name = _enum(value, SEVERITIES)
    return name if name in _SPECIFIED_SEVERITIES else None


def _version_text(version: dict) -> str | None:
    if _enum(version.get("kind"), _VERSION_KINDS) in ("MINIMUM", "MAXIMUM"):
        return None
    full_name = _text(version.get("fullName"))
    if full_name:
        return full_name
    name = _text(version.get("name"))
    if not name:
        return None
    revision = _text(version.get("revision"))
    text = f"{name}-{revision}" if revision else name
    epoch = _int(version.get("epoch"))
    return f"{epoch}:{text}" if epoch else text


def _fix_in_version(version: dict) -> bool | None:
    """Whether a fixed version denotes a real fix; None if it says nothing either way."""
    version_kind = _enum(version.get("kind"), _VERSION_KINDS)
    if version_kind == "MAXIMUM":
        return False
    if version_kind == "NORMAL" or _text(version.get("name")):
        return True
    return None


def _first_vulnerability_id(candidates: Iterable[Any]) -> str | None:
    for candidate in candidates:
        match = _VULNERABILITY_ID.search(candidate) if isinstance(candidate, str) else None
        if match:
            return match.group(1)
    return None


@functools.lru_cache(maxsize=4096)
def _note_vulnerability_id(note_id: str | None) -> str | None:
    # Cached: a vulnerability's note (projects/goog-vulnz/notes/CVE-…) is shared by every image
    # that has it, so the same few thousand note ids come back again and again.
    return _first_vulnerability_id((note_id,))


def _vulnerability_id(note: str | None, details: dict) -> str | None:
    note_id = note.rsplit("/", 1)[-1] if note else None
    short_description = _text(details.get("shortDescription"))
    return (_note_vulnerability_id(note_id) or _first_vulnerability_id((short_description,))
            or _first_vulnerability_id(_fields(link).get("url")
                                       for link in _list(details, "relatedUrls"))
            or _text(note_id) or short_description)


def _vulnerability_rows(occurrence: dict, common: dict) -> list[dict]:
    details = _obj(occurrence, "vulnerability")
    provider_severity = _severity(details.get("severity"))
    occurrence_severity = _severity(details.get("effectiveSeverity"))
    cvss = _float(details.get("cvssScore"))
    if math.isnan(cvss):
        cvss = _float(_obj(details, "cvssv3").get("baseScore"))
    description = _text(details.get("shortDescription")) or _text(details.get("longDescription"))
    shared = {
        "cve": _vulnerability_id(common["note_name"], details),
        "severity": provider_severity or SEVERITY_UNSPECIFIED,
        "cvss": cvss,
        "description": description,
    }
    occurrence_fix = details.get("fixAvailable")
    issues = [_fields(issue) for issue in _list(details, "packageIssue") if isinstance(issue, dict)]
    rows = []
    for issue in issues or [{}]:
        # v1beta1 has the package and versions in locations; they are read only if v1's are absent.
        fixed_version = issue.get("fixedVersion")
        if fixed_version is None:
            fixed_version = _obj(issue, "fixedLocation").get("version")
        fixed_version = _fields(fixed_version)
        issue_fix = issue.get("fixAvailable")
        # The per-issue flag wins; v1 omits it when false, so an issue without it is judged by its
        # own fixed version before falling back to the occurrence-wide "any issue has a fix".
        if issue_fix is not None:
            fix_available = _bool(issue_fix)
        else:
            fix_in_version = _fix_in_version(fixed_version)
            fix_available = fix_in_version if fix_in_version is not None else _bool(occurrence_fix)
        rows.append({
            **shared,
            "effective_severity": (_severity(issue.get("effectiveSeverity"))
                                   or occurrence_severity or provider_severity
                                   or SEVERITY_UNSPECIFIED),
            "package": (_text(issue.get("affectedPackage"))
                        or _text(_obj(issue, "affectedLocation").get("package"))),
            "package_type": _text(issue.get("packageType")) or _text(details.get("type")),
            "installed_version": _version_text(_fields(
                issue.get("affectedVersion") or _obj(issue, "affectedLocation").get("version"))),
            "fixed_version": _version_text(fixed_version),
            "fix_available": fix_available,
        })
    return rows


# --- builds ---------------------------------------------------------------------------------------


def _digest_reference(name: str | None, digest: Any) -> str | None:
    if not isinstance(digest, dict):
        return name
    for algorithm, value in digest.items():
        if isinstance(algorithm, str) and _text(value):
            return f"{name}@{algorithm}:{value}" if name else f"{algorithm}:{value}"
    return name


def _envelope_statement(envelope: dict) -> dict:
    payload, error = _base64(envelope.get("payload"))
    if error or payload is None:
        return {}
    try:
        statement = json.loads(payload)
    except ValueError:
        return {}
    return _fields(statement)


def _provenance_facts(build: dict, envelope: dict) -> dict[str, Any]:
    """Builder, predicate type, raw times, subjects and first material of an in-toto statement.

    Sources, first found wins: ``intotoStatement`` (v0.1/v0.2 predicates under ``provenance``,
    ``slsaProvenance``, ``slsaProvenanceZeroTwo`` or the spec's own ``predicate``),
    ``inTotoSlsaProvenanceV1``, the deprecated bare ``intotoProvenance``, then the DSSE envelope.
    """
    statement = _obj(build, "intotoStatement") or _obj(build, "inTotoSlsaProvenanceV1")
    if not statement and not _obj(build, "intotoProvenance"):
        statement = _envelope_statement(envelope)
    predicate = (_obj(statement, "predicate", "slsaProvenanceZeroTwo", "slsaProvenance",
                      "provenance")
                 or _obj(build, "intotoProvenance"))
    if not statement and not predicate:
        return {}
    run_details = _obj(predicate, "runDetails")
    metadata = _obj(predicate, "metadata")
    run_metadata = _obj(run_details, "metadata")
    materials = (_list(predicate, "materials")
                 or _list(_obj(predicate, "buildDefinition"), "resolvedDependencies"))
    config_source = _obj(_obj(predicate, "invocation"), "configSource")
    source = config_source if _text(config_source.get("uri")) else (
        materials[0] if materials else None)
    source = _fields({"uri": source} if isinstance(source, str) else source)
    source_digest = source.get("digest")
    revision = None
    if isinstance(source_digest, dict):
        revision = next((_text(value) for value in source_digest.values() if _text(value)), None)
    subjects = [_digest_reference(_text(subject.get("name")), subject.get("digest"))
                for subject in map(_fields, _list(statement, "subject"))]
    return {
        "predicate_type": _text(statement.get("predicateType")),
        "builder_id": (_text(_obj(predicate, "builder").get("id"))
                       or _text(_obj(run_details, "builder").get("id"))),
        "build_id": (_text(metadata.get("buildInvocationId"))
                     or _text(run_metadata.get("invocationId"))),
        "start": metadata.get("buildStartedOn") or run_metadata.get("startedOn"),
        "end": metadata.get("buildFinishedOn") or run_metadata.get("finishedOn"),
        "subjects": [subject for subject in subjects if subject],
        "source_repo": _text(source.get("uri")),
        "source_revision": revision,
    }


def _source_context(provenance: dict) -> tuple[str | None, str | None]:
    context = _obj(_obj(provenance, "sourceProvenance"), "context")
    git = _obj(context, "git")
    if git:
        return _text(git.get("url")), _text(git.get("revisionId"))
    cloud_repo = _obj(context, "cloudRepo")
    if cloud_repo:
        repo_id = _obj(cloud_repo, "repoId")
        project_repo = _obj(repo_id, "projectRepoId")
        name = "/".join(part for part in (_text(project_repo.get("projectId")),
                                          _text(project_repo.get("repoName"))) if part)
        revision = (_text(cloud_repo.get("revisionId"))
                    or _text(_obj(cloud_repo, "aliasContext").get("name")))
        return name or _text(repo_id.get("uid")), revision
    gerrit = _obj(context, "gerrit")
    if gerrit:
        host = _text(gerrit.get("hostUri"))
        project = _text(gerrit.get("gerritProject"))
        revision = (_text(gerrit.get("revisionId"))
                    or _text(_obj(gerrit, "aliasContext").get("name")))
        return "/".join(part.rstrip("/") for part in (host, project) if part) or None, revision
    return None, None


def _build_rows(occurrence: dict, common: dict) -> list[dict]:
    build = _obj(occurrence, "build")
    provenance = _obj(build, "provenance")
    facts = _provenance_facts(build, _obj(occurrence, "envelope"))
    artifacts = []
    for artifact in map(_fields, _list(provenance, "builtArtifacts")):
        reference = _text(artifact.get("id")) or _text(artifact.get("checksum"))
        if reference:
            artifacts.append(reference)
    repo, revision = _source_context(provenance)
    builder_version = _text(provenance.get("builderVersion"))
    creator = _text(provenance.get("creator"))
    return [{
        "builder": facts.get("builder_id") or creator or builder_version,
        "build_id": _text(provenance.get("id")) or facts.get("build_id"),
        "builder_version": builder_version,
        "creator": creator,
        "source_repo": repo or facts.get("source_repo"),
        "source_revision": revision or facts.get("source_revision"),
        "build_start": (provenance.get("startTime"), facts.get("start")),
        "build_end": (provenance.get("endTime"), facts.get("end")),
        "built_artifacts": artifacts or facts.get("subjects", []),
        "provenance_builder_id": facts.get("builder_id"),
        "predicate_type": facts.get("predicate_type"),
    }]


# --- attestations ---------------------------------------------------------------------------------


def _signature(public_key_id: Any, encoded: Any) -> dict[str, Any]:
    signature, error = _base64(encoded)
    return {"public_key_id": _text(public_key_id), "signature": signature,
            "error": f"signature: {error}" if error else None}


def _pgp_signature(public_key_id: Any, armored: Any) -> dict[str, Any]:
    # The proto field is a string holding the ASCII-armored signature; the v1alpha1 tutorials
    # base64-encoded that text, so both are accepted.
    text = _text(armored)
    if text and text.lstrip().startswith("-----BEGIN PGP"):
        return {"public_key_id": _text(public_key_id), "signature": text.encode(), "error": None}
    return _signature(public_key_id, armored)


def _attestation_rows(occurrence: dict, common: dict) -> list[dict]:
    attestation = _unwrap(_obj(occurrence, "attestation"), "attestation")
    pgp = _obj(attestation, "pgpSignedAttestation")
    generic = _obj(attestation, "genericSignedAttestation")
    row = {"content_type": None, "serialized_payload": None, "payload_error": None,
           "signatures": [], "pgp_key_id": None, "jwts": []}
    if pgp:
        key_id = _text(pgp.get("pgpKeyId"))
        row.update(content_type=_enum(pgp.get("contentType"), _CONTENT_TYPES, upper=False),
                   pgp_key_id=key_id,
                   payload_error="payload is attached inside the PGP signature",
                   signatures=[_pgp_signature(key_id, pgp.get("signature"))])
        return [row]
    signed = generic or attestation
    payload, payload_error = _base64(signed.get("serializedPayload"))
    row.update(
        content_type=_enum(generic.get("contentType"), _CONTENT_TYPES, upper=False),
        serialized_payload=payload,
        payload_error=f"serializedPayload: {payload_error}" if payload_error else None,
        signatures=[_signature(entry.get("publicKeyId"), entry.get("signature"))
                    for entry in map(_fields, _list(signed, "signatures"))],
        jwts=[jwt for jwt in (_text(_fields(entry).get("compactJwt"))
                              for entry in _list(signed, "jwts")) if jwt],
    )
    return [row]


# --- deployments and discoveries ------------------------------------------------------------------


def _cluster(*texts: str | None) -> str | None:
    for text in texts:
        if not text:
            continue
        match = _CLUSTER_PATH.search(text) or _GKE_CONTEXT.search(text)
        if match:
            return match.group(1)
    return None


def _deployment_rows(occurrence: dict, common: dict) -> list[dict]:
    deployment = _unwrap(_obj(occurrence, "deployment"), "deployment")
    address = _text(deployment.get("address"))
    config = _text(deployment.get("config"))
    return [{
        "deploy_time": (deployment.get("deployTime"),),
        "undeploy_time": (deployment.get("undeployTime"),),
        "platform": _enum(deployment.get("platform"), _PLATFORMS),
        "address": address,
        "cluster": _cluster(address, config),
        "user_email": _text(deployment.get("userEmail")),
        "config": config,
        "deployed_resource_uris": [uri for uri in _list(deployment, "resourceUri") if _text(uri)],
    }]


def _discovery_rows(occurrence: dict, common: dict) -> list[dict]:
    discovered = _unwrap(_obj(occurrence, "discovery", "discovered"), "discovered")
    status_error = discovered.get("analysisStatusError")
    return [{
        "analysis_status": _enum(discovered.get("analysisStatus"), _ANALYSIS_STATUSES),
        "last_scan_time": (discovered.get("lastScanTime"), discovered.get("lastAnalysisTime")),
        "continuous_analysis": _enum(discovered.get("continuousAnalysis"), _CONTINUOUS_ANALYSIS),
        "analysis_error": _text(_fields(status_error).get("message")) or _text(status_error),
    }]


def _other_rows(occurrence: dict, common: dict) -> list[dict]:
    details = next((occurrence.get(key) for key in _PAYLOAD_KINDS
                    if occurrence.get(key) is not None), None)
    return [{"details": details}]


_ROW_BUILDERS: dict[str, tuple[str, Callable[[dict, dict], list[dict]]]] = {
    "VULNERABILITY": ("vulnerabilities", _vulnerability_rows),
    "BUILD": ("builds", _build_rows),
    "ATTESTATION": ("attestations", _attestation_rows),
    "DEPLOYMENT": ("deployments", _deployment_rows),
    "DISCOVERY": ("discoveries", _discovery_rows),
}


# --- frames ---------------------------------------------------------------------------------------


def _time_column(cells: list[tuple]) -> pd.Series:
    """A time column from cells of raw candidate values: per row, the first that parses.

    A column's builder gives every cell the same number of candidates, so the candidates are
    parsed a position at a time, each filling what the ones before left missing.
    """
    if not cells:
        return pd.Series([], dtype="datetime64[ns, UTC]")
    column = _times([cell[0] for cell in cells])
    for position in range(1, len(cells[0])):
        column = column.fillna(_times([cell[position] for cell in cells]))
    return column


class _Table:
    """One frame's columns, filled with row dicts as the occurrences stream in.

    Rows are moved into columns in small batches, while they are still in the CPU's caches
    (reading a large list of rows once per column, at the end, costs several times as much), and
    the columns into a pandas frame every ``_CHUNK`` rows. So most of the work is done while the
    next page of occurrences is on its way, and little is left once the last one is in.
    """

    _BATCH = 256
    _CHUNK = 4096

    def __init__(self, schema: dict[str, str]) -> None:
        self._schema = schema
        self._columns: dict[str, list] = {column: [] for column in schema}
        self._pending: list[dict] = []
        self._chunks: list[pd.DataFrame] = []

    def add(self, rows: list[dict]) -> None:
        self._pending += rows
        if len(self._pending) >= self._BATCH:
            self._move_pending()
            if self._moved() >= self._CHUNK:
                self._chunks.append(self._chunk())

    def frame(self) -> pd.DataFrame:
        self._move_pending()
        if not self._chunks or self._moved():
            self._chunks.append(self._chunk())
        if len(self._chunks) == 1:
            return self._chunks[0]
        return pd.concat(self._chunks, ignore_index=True)

    def _move_pending(self) -> None:
        for column, values in self._columns.items():
            values += [row[column] for row in self._pending]
        self._pending = []

    def _moved(self) -> int:
        """Rows moved into the columns since the last chunk."""
        return len(next(iter(self._columns.values())))

    def _chunk(self) -> pd.DataFrame:
        """The rows moved so far as a frame; the columns start empty again."""
        columns = {}
        for (column, column_kind), values in zip(self._schema.items(), self._columns.values()):
            if column_kind == _TIME:
                columns[column] = _time_column(values)
            elif column_kind == _FLOAT:
                columns[column] = pd.Series(values, dtype="float64")
            elif column_kind == _BOOL:
                columns[column] = pd.Series([bool(value) for value in values], dtype="bool")
            else:
                # object keeps None for missing text (pandas 3's "str" dtype would make it NaN).
                columns[column] = pd.Series(values, dtype=object)
        chunk = pd.DataFrame(columns, index=pd.RangeIndex(self._moved()), copy=False)
        self._columns = {column: [] for column in self._schema}
        return chunk


def normalise(occurrences: Iterable[dict]) -> Occurrences:
    """Split occurrences of any dialect into one tidy frame per kind (plus ``all``).

    ``occurrences`` may be a stream (``GrafeasSource.occurrences``): each is read once, as it comes.

    A vulnerability occurrence gives one row per package issue (one row if it has none); every
    other occurrence gives one row. Kinds without a frame of their own land in ``other``.
    """
    commons = _Table(_COMMON)
    tables = {frame: _Table(schema) for frame, schema in _SCHEMAS.items()}
    owners: dict[str, list[int]] = {frame: [] for frame in _SCHEMAS}
    if not isinstance(occurrences, Iterable) or isinstance(occurrences, (str, bytes, dict)):
        occurrences = ()  # a decoded body that is not a list of occurrences holds none
    for position, occurrence in enumerate(occurrences):
        fields = _fields(occurrence)
        common = _common(fields, _kind(fields))
        commons.add([common])
        frame, build_rows = _ROW_BUILDERS.get(common["kind"], ("other", _other_rows))
        built = build_rows(fields, common)
        tables[frame].add(built)
        owners[frame] += [position] * len(built)
    everything = commons.frame()
    return Occurrences(all=everything, **{
        frame: pd.concat([everything.iloc[owners[frame]].reset_index(drop=True),
                          table.frame()], axis=1)
        for frame, table in tables.items()})
