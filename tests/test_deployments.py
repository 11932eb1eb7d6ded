"""Deploy → cluster mapping and deploy markers, on occurrences in the real v1beta1 wire shape."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dashboard.deployments import deployments_between, map_cluster, map_deployments
from dashboard.occurrences import normalise
from dashboard.policy import load_policy

SAMPLE = json.loads((Path(__file__).parent / "fixtures" / "grafeas" / "v1beta1-occurrence-deployment.json").read_text())
DIGEST = "sha256:" + "ab" * 32
URI = f"https://gcr.io/acme/checkout@{DIGEST}"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def deployment(address: str | None, *, config: str | None = None, at: datetime | None = T0,
               uri: str = URI, name: str = "d1") -> dict:
    """The real sample with its placeholders replaced."""
    occurrence = copy.deepcopy(SAMPLE)
    occurrence["name"] = f"projects/acme/occurrences/{name}"
    occurrence["resource"]["uri"] = uri
    details = occurrence["deployment"]["deployment"]
    details["address"], details["config"] = address, config
    details.pop("undeployTime")
    if at is None:
        details.pop("deployTime")
    else:
        details["deployTime"] = at.isoformat()
    return occurrence


@pytest.mark.parametrize(
    "address, config, cluster, how",
    [
        ("https://container.googleapis.com/v1/projects/acme/locations/europe-west1/clusters/prod-eu", None,
         "prod-eu", "api-path"),
        ("//container.googleapis.com/projects/acme/zones/us-central1-a/clusters/staging", None, "staging", "api-path"),
        ("gke_acme-prod_europe-west1_prod-eu", None, "prod-eu", "gke-context"),
        (None, "kubectl --context gke_acme_us-central1-a_batch apply -f deploy.yaml", "batch", "gke-context"),
        ("arn:aws:eks:eu-west-1:123456789012:cluster/shop-prod", None, "shop-prod", "eks-arn"),
        ("arn:aws-us-gov:eks:us-gov-west-1:123456789012:cluster/gov", None, "gov", "eks-arn"),
        ("https://10.0.0.1:6443", None, None, "unmapped"),
        (None, None, None, "unmapped"),
    ],
)
def test_each_address_form_maps_to_its_cluster(address, config, cluster, how):
    assert map_cluster(address, config) == (cluster, how)


def test_the_alias_map_wins_and_renames_parsed_names():
    aliases = {"https://10.0.0.1:6443": "onprem", "prod-eu": "prod", "kind-dev": "dev"}
    assert map_cluster("https://10.0.0.1:6443", None, aliases=aliases) == ("onprem", "alias")
    assert map_cluster("gke_acme_europe-west1_prod-eu", None, aliases=aliases) == ("prod", "alias")
    assert map_cluster(None, "kind-dev", aliases=aliases) == ("dev", "alias")


def test_a_cluster_prometheus_does_not_know_is_unmapped_and_keeps_its_address():
    occurrences = normalise([
        deployment("gke_acme_europe-west1_prod", name="a"),
        deployment("gke_acme_europe-west1_elsewhere", name="b"),
        deployment("https://10.0.0.1:6443", name="c"),
    ])
    mapped = map_deployments(occurrences.deployments, known_clusters={"prod", "staging"})
    assert list(mapped["cluster"]) == ["prod", None, None]
    assert list(mapped["mapped_by"]) == ["gke-context", "unmapped", "unmapped"]
    assert list(mapped["address"]) == ["gke_acme_europe-west1_prod", "gke_acme_europe-west1_elsewhere",
                                       "https://10.0.0.1:6443"]


def test_markers_between_two_times_with_service_digest_and_gate(tmp_path):
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text("[gate]\nrequired_attestations = []\nrequire_scan = false\nrequire_build_provenance = false\n"
                           'max_fixable_severity = "ALLOW_ALL"\nmax_unfixable_severity = "ALLOW_ALL"\n')
    occurrences = normalise([
        deployment("gke_acme_europe-west1_prod", at=T0 - timedelta(days=2), name="old"),
        deployment("gke_acme_europe-west1_prod", at=T0, name="in"),
        deployment("gke_acme_europe-west1_staging", at=T0 + timedelta(minutes=5), name="other-cluster"),
        deployment("https://10.0.0.1:6443", at=T0 + timedelta(minutes=6), name="unmapped"),
        deployment("gke_acme_europe-west1_prod", at=None, name="no-time"),
    ])
    window = (T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    markers = deployments_between(occurrences, *window, "prod", policy=load_policy(policy_file))
    assert len(markers) == 1
    marker = markers.iloc[0]
    assert marker["time"] == T0 and marker["cluster"] == "prod"
    assert marker["service"] == "gcr.io/acme/checkout" and marker["short_digest"] == DIGEST[:19]
    assert marker["resource_uri"] == URI and marker["gate"] == "allowed"
    everywhere = deployments_between(occurrences, *window)
    assert list(everywhere["cluster"]) == ["prod", "staging", None]
    assert list(everywhere["gate"]) == ["not evaluated"] * 3
    assert list(everywhere["mapped_by"]) == ["gke-context", "gke-context", "unmapped"]


def test_a_release_without_the_policy_s_evidence_is_marked_denied(tmp_path):
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text('[gate]\nrequired_attestations = ["projects/a/notes/qa"]\n')
    occurrences = normalise([deployment("gke_acme_europe-west1_prod")])
    markers = deployments_between(occurrences, T0 - timedelta(hours=1), T0 + timedelta(hours=1),
                                  policy=load_policy(policy_file))
    assert list(markers["gate"]) == ["denied"]


def test_no_deployments_give_an_empty_frame_with_the_columns():
    markers = deployments_between(normalise([]), T0, T0 + timedelta(hours=1))
    assert markers.empty and "short_digest" in markers.columns
    assert str(markers["time"].dtype) == "datetime64[ns, UTC]"
