"""Release identifiers: the service a release belongs to, and URIs as users type them: checked,
matched with or without ``https://``, and, when nothing matches, the releases probably meant.

Grafeas stores a container image's resource URI with its scheme (``https://gcr.io/p/app@sha256:…``),
while ``docker``, ``kubectl`` and our own release table readers often drop it. A URI given either way
names the same release; which form the source holds is found by asking for each in turn.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

SCHEME = "https://"
_ANY_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# A resource URI: no whitespace or control characters, a host-like first part and a path.
_URI = re.compile(r"(?:[a-z][a-z0-9+.-]*://)?[^\s/\x00-\x1f\x7f]+/[^\s\x00-\x1f\x7f]+", re.IGNORECASE)


class ResourceError(ValueError):
    """A ``--resource`` that cannot name a release (empty, or not a URI)."""


def checked_resource(text: str) -> str:
    """``text`` stripped, refusing what no release can be called: empty text, or not a URI."""
    uri = text.strip()
    if not uri:
        raise ResourceError("--resource is empty: give the release's URI, e.g. "
                            "https://gcr.io/PROJECT/IMAGE@sha256:…")
    if not _URI.fullmatch(uri):
        raise ResourceError(f"--resource {uri!r} is not a resource URI: expected "
                            "[https://]REGISTRY/PATH/IMAGE@sha256:… (no spaces)")
    return uri


def service_of(resource_uri: str) -> str:
    """The image repository of a resource URI: no scheme, digest or tag.

    ``https://gcr.io/acme/checkout@sha256:…`` gives ``gcr.io/acme/checkout``; a registry port
    (``localhost:5000/app:1.2``) is kept.
    """
    reference = _ANY_SCHEME.sub("", resource_uri.strip()).split("@", 1)[0].rstrip("/")
    head, slash, last = reference.rpartition("/")
    return head + slash + last.split(":", 1)[0]


def uri_forms(uri: str) -> list[str]:
    """The forms a release may be stored under: as given first, then with or without ``https://``."""
    if uri.startswith(SCHEME):
        return [uri, uri[len(SCHEME):]]
    if "://" in uri:
        return [uri]
    return [uri, SCHEME + uri]


def similar_resources(uri: str, known: Iterable[str], limit: int = 3) -> list[str]:
    """Known release URIs close to ``uri`` (compared without scheme), most similar first."""
    bare = {candidate.removeprefix(SCHEME): candidate for candidate in known if isinstance(candidate, str)}
    close = difflib.get_close_matches(uri.removeprefix(SCHEME), list(bare), n=limit, cutoff=0.6)
    return [bare[match] for match in close]


def not_found_message(suggestions: list[str]) -> str:
    """The one line a user reads when their ``--resource`` matched no occurrence."""
    hint = f"; did you mean {' or '.join(suggestions)}?" if suggestions else ""
    return f"no occurrences for this resource (check the URI{hint})"
