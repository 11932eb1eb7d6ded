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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

NOTE_KIND_UNSPECIFIED = "NOTE_KIND_UNSPECIFIED"
SEVERITY_UNSPECIFIED = "SEVERITY_UNSPECIFIED"
SEVERITIES = (SEVERITY_UNSPECIFIED, "MINIMAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")

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
_VULNERABILITY_ID = re.compile(
    r"\b(CVE-\d{4}-\d{4,}|GHSA(?:-[0-9a-z]{4}){3}|[A-Z][A-Z0-9]*-\d{4}-[0-9A-Za-z]+)\b",
    re.IGNORECASE,
)
_CLUSTER_PATH = re.compile(r"/clusters/([^/\s?#\"']+)")
_GKE_CONTEXT = re.compile(r"\bgke_[^_\s]+_[^_\s]+_([^\s/\"']+)")

# Column kinds: each frame is built with fixed dtypes so that an empty frame has the same schema.
_STR, _TIME, _FLOAT, _BOOL, _OBJECT = "str", "time", "float", "bool", "object"

_COMMON = {"occurrence": _STR, "resource_uri": _STR, "note_name": _STR, "kind": _STR,
           "create_time": _TIME}
_SCHEMAS: dict[str, dict[str, str]] = {
    "vulnerabilities": {**_COMMON, "cve": _STR, "severity": _STR, "effective_severity": _STR,
                        "cvss": _FLOAT, "package": _STR, "package_type": _STR,
                        "installed_version": _STR, "fixed_version": _STR, "fix_available": _BOOL,
                        "description": _STR},
    "builds": {**_COMMON, "builder": _STR, "build_id": _STR, "builder_version": _STR,
               "creator": _STR, "source_repo": _STR, "source_revision": _STR,
               "build_start": _TIME, "build_end": _TIME, "built_artifacts": _OBJECT,
               "provenance_builder_id": _STR, "predicate_type": _STR},
    "attestations": {**_COMMON, "content_type": _STR, "serialized_payload": _OBJECT,
                     "payload_error": _STR, "signatures": _OBJECT, "pgp_key_id": _STR,
                     "jwts": _OBJECT},
    "deployments": {**_COMMON, "deploy_time": _TIME, "undeploy_time": _TIME, "platform": _STR,
                    "address": _STR, "cluster": _STR, "user_email": _STR, "config": _STR,
                    "deployed_resource_uris": _OBJECT},
    "discoveries": {**_COMMON, "analysis_status": _STR, "last_scan_time": _TIME,
                    "continuous_analysis": _STR, "analysis_error": _STR},
    "other": {**_COMMON, "details": _OBJECT},
    "all": dict(_COMMON),
}
COLUMNS: dict[str, tuple[str, ...]] = {frame: tuple(schema) for frame, schema in _SCHEMAS.items()}
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


def _get(obj: Any, name: str) -> Any:
    """``obj[name]`` under its lowerCamelCase or snake_case spelling; None if absent or not a dict."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(name)
    if value is None:
        value = obj.get(_snake(name))
    return value


def _obj(obj: Any, name: str) -> dict:
    value = _get(obj, name)
    return value if isinstance(value, dict) else {}


def _list(obj: Any, name: str) -> list:
    value = _get(obj, name)
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
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if number is not None:
        return names[number] if 0 <= number < len(names) else None
    text = _text(value)
    if text is None:
        return None
    return text.strip().upper() if upper else text


def _time(value: Any) -> pd.Timestamp:
    """A protobuf Timestamp (RFC 3339 text, or ``{seconds, nanos}``) as a UTC ns Timestamp or NaT."""
    try:
        if isinstance(value, dict):
            seconds = _int(_get(value, "seconds"))
            if seconds is None:
                return pd.NaT
            stamp = pd.Timestamp(seconds, unit="s", tz="UTC") + pd.Timedelta(
                _int(_get(value, "nanos")) or 0, unit="ns")
        elif (isinstance(value, str) and value.strip()[:1].isdigit()
              and not value.startswith(_ZERO_TIME_PREFIX)):
            # RFC 3339 starts with a digit; this also keeps pandas from reading "now" or "today".
            stamp = pd.Timestamp(value.strip())
        else:
            return pd.NaT
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return stamp.as_unit("ns")
    except (ValueError, TypeError, OverflowError, ArithmeticError):
        # pandas' OutOfBoundsDatetime is a ValueError.
        return pd.NaT


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
    return (_text(_get(occurrence, "resourceUri"))
            or _text(_get(_obj(occurrence, "resource"), "uri"))
            or _text(_get(occurrence, "resourceUrl")))


def kind(occurrence: dict) -> str:
    """The occurrence's kind (e.g. ``VULNERABILITY``), inferred from its payload if not stated."""
    named = _enum(_get(occurrence, "kind"), _NUMBERED_KINDS)
    if named and named != NOTE_KIND_UNSPECIFIED:
        return named
    if isinstance(occurrence, dict):
        for key, payload_kind in _PAYLOAD_KINDS.items():
            if _get(occurrence, key) is not None:
                return payload_kind
    return NOTE_KIND_UNSPECIFIED


def note_name(occurrence: dict) -> str | None:
    """The ``projects/…/notes/…`` name the occurrence refers to (None if absent)."""
    return _text(_get(occurrence, "noteName"))


def _common(occurrence: Any, occurrence_kind: str) -> dict[str, Any]:
    return {
        "occurrence": _text(_get(occurrence, "name")),
        "resource_uri": resource_uri(occurrence),
        "note_name": note_name(occurrence),
        "kind": occurrence_kind,
        "create_time": _time(_get(occurrence, "createTime")),
    }


def _payload(occurrence: Any, *keys: str) -> dict:
    for key in keys:
        value = _get(occurrence, key)
        if isinstance(value, dict):
            return value
    return {}


def _unwrap(payload: dict, inner: str) -> dict:
    """v1beta1 nests details one level deeper (``deployment.deployment``); v1 does not."""
    nested = _get(payload, inner)
    return nested if isinstance(nested, dict) else payload


# --- vulnerabilities ------------------------------------------------------------------------------


def _severity(value: Any) -> str | None:
    """A known, specified severity name, else None (UNSPECIFIED is proto3's "unset")."""
    name = _enum(value, SEVERITIES)
    return name if name in SEVERITIES and name != SEVERITY_UNSPECIFIED else None


def _version_text(version: Any) -> str | None:
    if not isinstance(version, dict):
        return None
    if _enum(_get(version, "kind"), _VERSION_KINDS) in ("MINIMUM", "MAXIMUM"):
        return None
    full_name = _text(_get(version, "fullName"))
    if full_name:
        return full_name
    name = _text(_get(version, "name"))
    if not name:
        return None
    revision = _text(_get(version, "revision"))
    text = f"{name}-{revision}" if revision else name
    epoch = _int(_get(version, "epoch"))
    return f"{epoch}:{text}" if epoch else text


def _fix_in_version(version: Any) -> bool | None:
    """Whether a fixed version denotes a real fix; None if it says nothing either way."""
    if not isinstance(version, dict):
        return None
    version_kind = _enum(_get(version, "kind"), _VERSION_KINDS)
    if version_kind == "MAXIMUM":
        return False
    if version_kind == "NORMAL" or _text(_get(version, "name")):
        return True
    return None


def _vulnerability_id(note: str | None, details: dict) -> str | None:
    note_id = note.rsplit("/", 1)[-1] if note else None
    short_description = _text(_get(details, "shortDescription"))
    candidates = [note_id, short_description]
    candidates += [_get(link, "url") for link in _list(details, "relatedUrls")]
    for candidate in candidates:
        match = _VULNERABILITY_ID.search(candidate) if isinstance(candidate, str) else None
        if match:
            return match.group(1)
    return _text(note_id) or short_description


def _vulnerability_rows(occurrence: Any, common: dict) -> list[dict]:
    details = _payload(occurrence, "vulnerability")
    provider_severity = _severity(_get(details, "severity"))
    occurrence_severity = _severity(_get(details, "effectiveSeverity"))
    cvss = _float(_get(details, "cvssScore"))
    if math.isnan(cvss):
        cvss = _float(_get(_obj(details, "cvssv3"), "baseScore"))
    description = _text(_get(details, "shortDescription")) or _text(_get(details, "longDescription"))
    shared = {
        **common,
        "cve": _vulnerability_id(common["note_name"], details),
        "severity": provider_severity or SEVERITY_UNSPECIFIED,
        "cvss": cvss,
        "description": description,
    }
    occurrence_fix = _get(details, "fixAvailable")
    issues = [issue for issue in _list(details, "packageIssue") if isinstance(issue, dict)]
    rows = []
    for issue in issues or [{}]:
        affected_location = _obj(issue, "affectedLocation")
        fixed_location = _obj(issue, "fixedLocation")
        fixed_version = _get(issue, "fixedVersion")
        if fixed_version is None:
            fixed_version = _get(fixed_location, "version")
        issue_fix = _get(issue, "fixAvailable")
        # The per-issue flag wins; v1 omits it when false, so an issue without it is judged by its
        # own fixed version before falling back to the occurrence-wide "any issue has a fix".
        if issue_fix is not None:
            fix_available = _bool(issue_fix)
        else:
            fix_in_version = _fix_in_version(fixed_version)
            fix_available = fix_in_version if fix_in_version is not None else _bool(occurrence_fix)
        rows.append({
            **shared,
            "effective_severity": (_severity(_get(issue, "effectiveSeverity"))
                                   or occurrence_severity or provider_severity
                                   or SEVERITY_UNSPECIFIED),
            "package": (_text(_get(issue, "affectedPackage"))
                        or _text(_get(affected_location, "package"))),
            "package_type": _text(_get(issue, "packageType")) or _text(_get(details, "type")),
            "installed_version": _version_text(_get(issue, "affectedVersion")
                                               or _get(affected_location, "version")),
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
    payload, error = _base64(_get(envelope, "payload"))
    if error or payload is None:
        return {}
    try:
        statement = json.loads(payload)
    except ValueError:
        return {}
    return statement if isinstance(statement, dict) else {}


def _provenance_facts(build: dict, envelope: dict) -> dict[str, Any]:
    """Builder, predicate type, times, subjects and first material of an in-toto statement.

    Sources, first found wins: ``intotoStatement`` (v0.1/v0.2 predicates under ``provenance``,
    ``slsaProvenance``, ``slsaProvenanceZeroTwo`` or the spec's own ``predicate``),
    ``inTotoSlsaProvenanceV1``, the deprecated bare ``intotoProvenance``, then the DSSE envelope.
    """
    statement = _obj(build, "intotoStatement") or _obj(build, "inTotoSlsaProvenanceV1")
    if not statement and not _obj(build, "intotoProvenance"):
        statement = _envelope_statement(envelope)
    predicate = (_payload(statement, "predicate", "slsaProvenanceZeroTwo", "slsaProvenance",
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
    source = config_source if _text(_get(config_source, "uri")) else (
        materials[0] if materials else None)
    if isinstance(source, str):
        source = {"uri": source}
    source_digest = _get(source, "digest")
    revision = None
    if isinstance(source_digest, dict):
        revision = next((_text(value) for value in source_digest.values() if _text(value)), None)
    subjects = [_digest_reference(_text(_get(subject, "name")), _get(subject, "digest"))
                for subject in _list(statement, "subject")]
    return {
        "predicate_type": _text(_get(statement, "predicateType")),
        "builder_id": (_text(_get(_obj(predicate, "builder"), "id"))
                       or _text(_get(_obj(run_details, "builder"), "id"))),
        "build_id": (_text(_get(metadata, "buildInvocationId"))
                     or _text(_get(run_metadata, "invocationId"))),
        "start": _time(_get(metadata, "buildStartedOn") or _get(run_metadata, "startedOn")),
        "end": _time(_get(metadata, "buildFinishedOn") or _get(run_metadata, "finishedOn")),
        "subjects": [subject for subject in subjects if subject],
        "source_repo": _text(_get(source, "uri")),
        "source_revision": revision,
    }


def _source_context(provenance: dict) -> tuple[str | None, str | None]:
    context = _obj(_obj(provenance, "sourceProvenance"), "context")
    git = _obj(context, "git")
    if git:
        return _text(_get(git, "url")), _text(_get(git, "revisionId"))
    cloud_repo = _obj(context, "cloudRepo")
    if cloud_repo:
        repo_id = _obj(cloud_repo, "repoId")
        project_repo = _obj(repo_id, "projectRepoId")
        name = "/".join(part for part in (_text(_get(project_repo, "projectId")),
                                          _text(_get(project_repo, "repoName"))) if part)
        revision = (_text(_get(cloud_repo, "revisionId"))
                    or _text(_get(_obj(cloud_repo, "aliasContext"), "name")))
        return name or _text(_get(repo_id, "uid")), revision
    gerrit = _obj(context, "gerrit")
    if gerrit:
        host = _text(_get(gerrit, "hostUri"))
        project = _text(_get(gerrit, "gerritProject"))
        revision = (_text(_get(gerrit, "revisionId"))
                    or _text(_get(_obj(gerrit, "aliasContext"), "name")))
        return "/".join(part.rstrip("/") for part in (host, project) if part) or None, revision
    return None, None


def _build_rows(occurrence: Any, common: dict) -> list[dict]:
    build = _payload(occurrence, "build")
    provenance = _obj(build, "provenance")
    facts = _provenance_facts(build, _obj(occurrence, "envelope"))
    artifacts = []
    for artifact in _list(provenance, "builtArtifacts"):
        reference = _text(_get(artifact, "id")) or _text(_get(artifact, "checksum"))
        if reference:
            artifacts.append(reference)
    repo, revision = _source_context(provenance)
    builder_version = _text(_get(provenance, "builderVersion"))
    creator = _text(_get(provenance, "creator"))
    start = _time(_get(provenance, "startTime"))
    end = _time(_get(provenance, "endTime"))
    return [{
        **common,
        "builder": facts.get("builder_id") or creator or builder_version,
        "build_id": _text(_get(provenance, "id")) or facts.get("build_id"),
        "builder_version": builder_version,
        "creator": creator,
        "source_repo": repo or facts.get("source_repo"),
        "source_revision": revision or facts.get("source_revision"),
        "build_start": start if not pd.isna(start) else facts.get("start", pd.NaT),
        "build_end": end if not pd.isna(end) else facts.get("end", pd.NaT),
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


def _attestation_rows(occurrence: Any, common: dict) -> list[dict]:
    attestation = _unwrap(_payload(occurrence, "attestation"), "attestation")
    pgp = _obj(attestation, "pgpSignedAttestation")
    generic = _obj(attestation, "genericSignedAttestation")
    row = {**common, "content_type": None, "serialized_payload": None, "payload_error": None,
           "signatures": [], "pgp_key_id": None, "jwts": []}
    if pgp:
        key_id = _text(_get(pgp, "pgpKeyId"))
        row.update(content_type=_enum(_get(pgp, "contentType"), _CONTENT_TYPES, upper=False),
                   pgp_key_id=key_id,
                   payload_error="payload is attached inside the PGP signature",
                   signatures=[_pgp_signature(key_id, _get(pgp, "signature"))])
        return [row]
    signed = generic or attestation
    payload, payload_error = _base64(_get(signed, "serializedPayload"))
    row.update(
        content_type=_enum(_get(generic, "contentType"), _CONTENT_TYPES, upper=False),
        serialized_payload=payload,
        payload_error=f"serializedPayload: {payload_error}" if payload_error else None,
        signatures=[_signature(_get(entry, "publicKeyId"), _get(entry, "signature"))
                    for entry in _list(signed, "signatures")],
        jwts=[jwt for jwt in (_text(_get(entry, "compactJwt")) for entry in _list(signed, "jwts"))
              if jwt],
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


def _deployment_rows(occurrence: Any, common: dict) -> list[dict]:
    deployment = _unwrap(_payload(occurrence, "deployment"), "deployment")
    address = _text(_get(deployment, "address"))
    config = _text(_get(deployment, "config"))
    return [{
        **common,
        "deploy_time": _time(_get(deployment, "deployTime")),
        "undeploy_time": _time(_get(deployment, "undeployTime")),
        "platform": _enum(_get(deployment, "platform"), _PLATFORMS),
        "address": address,
        "cluster": _cluster(address, config),
        "user_email": _text(_get(deployment, "userEmail")),
        "config": config,
        "deployed_resource_uris": [uri for uri in _list(deployment, "resourceUri") if _text(uri)],
    }]


def _discovery_rows(occurrence: Any, common: dict) -> list[dict]:
    discovered = _unwrap(_payload(occurrence, "discovery", "discovered"), "discovered")
    last_scan = _time(_get(discovered, "lastScanTime"))
    if pd.isna(last_scan):
        last_scan = _time(_get(discovered, "lastAnalysisTime"))
    status_error = _get(discovered, "analysisStatusError")
    return [{
        **common,
        "analysis_status": _enum(_get(discovered, "analysisStatus"), _ANALYSIS_STATUSES),
        "last_scan_time": last_scan,
        "continuous_analysis": _enum(_get(discovered, "continuousAnalysis"), _CONTINUOUS_ANALYSIS),
        "analysis_error": _text(_get(status_error, "message")) or _text(status_error),
    }]


def _other_rows(occurrence: Any, common: dict) -> list[dict]:
    details = None
    if isinstance(occurrence, dict):
        details = next((_get(occurrence, key) for key in _PAYLOAD_KINDS
                        if _get(occurrence, key) is not None), None)
    return [{**common, "details": details}]


_ROW_BUILDERS: dict[str, tuple[str, Callable[[Any, dict], list[dict]]]] = {
    "VULNERABILITY": ("vulnerabilities", _vulnerability_rows),
    "BUILD": ("builds", _build_rows),
    "ATTESTATION": ("attestations", _attestation_rows),
    "DEPLOYMENT": ("deployments", _deployment_rows),
    "DISCOVERY": ("discoveries", _discovery_rows),
}


# --- frames ---------------------------------------------------------------------------------------


def _frame(rows: list[dict], schema: dict[str, str]) -> pd.DataFrame:
    columns = {}
    for column, column_kind in schema.items():
        values = [row.get(column) for row in rows]
        if column_kind == _TIME:
            columns[column] = pd.Series(values, dtype="datetime64[ns, UTC]")
        elif column_kind == _FLOAT:
            columns[column] = pd.Series(values, dtype="float64")
        elif column_kind == _BOOL:
            columns[column] = pd.Series([bool(value) for value in values], dtype="bool")
        else:
            # object keeps None for missing text (the pandas 3 "str" dtype would turn it into NaN).
            columns[column] = pd.Series(values, dtype=object)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(rows)))


def normalise(occurrences: list[dict]) -> Occurrences:
    """Split occurrences of any dialect into one tidy frame per kind (plus ``all``).

    A vulnerability occurrence gives one row per package issue (one row if it has none); every
    other occurrence gives one row. Kinds without a frame of their own land in ``other``.
    """
    rows: dict[str, list[dict]] = {frame: [] for frame in _SCHEMAS}
    for occurrence in occurrences if isinstance(occurrences, (list, tuple)) else []:
        occurrence_kind = kind(occurrence)
        common = _common(occurrence, occurrence_kind)
        rows["all"].append(common)
        frame, build_rows = _ROW_BUILDERS.get(occurrence_kind, ("other", _other_rows))
        rows[frame].extend(build_rows(occurrence, common))
    return Occurrences(**{frame: _frame(rows[frame], schema) for frame, schema in _SCHEMAS.items()})
