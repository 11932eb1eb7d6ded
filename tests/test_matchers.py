"""Operator selectors must parse as PromQL label-matcher lists."""

from __future__ import annotations

import pytest

from dashboard.matchers import is_label_name, validate_matchers


@pytest.mark.parametrize(
    "text",
    [
        'job="kubelet", metrics_path="/metrics"',
        "job='kubelet'",
        'job=~"kube.*",instance!~`10\\.0\\..*`,',
        'a!="x\\"y\\n\\x41\\u00e9\\101"',
        '  job = "kubelet" ,  ',
        "",
    ],
)
def test_valid_matcher_lists_pass(text):
    assert validate_matchers(text) == text.strip()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('job="a"} or up{x="1"', "expected a comma at character 8 ('}')"),
        ('job="kubelet', "expected a quoted string after job="),
        ('job=kubelet', "expected a quoted string after job="),
        ('job=="a"', "expected a quoted string after job="),
        ('1job="a"', "expected a label name at character 1"),
        ('k8s-cluster="a"', "expected =, !=, =~ or !~ after k8s"),
        ('job="a",,x="b"', "expected a label name at character 9"),
        ('job="a" x="b"', "expected a comma"),
        ('job="\\q"', "invalid escape"),
        ('job="a\nb"', "expected a quoted string"),
    ],
)
def test_invalid_matcher_lists_name_the_problem(text, problem):
    with pytest.raises(ValueError) as raised:
        validate_matchers(text)
    assert problem in str(raised.value)


@pytest.mark.parametrize(("text", "expected"), [
    ("cluster", True), ("_k8s_cluster2", True), ("k8s-cluster", False), ("cluster, job", False),
    ("", False), ("cluster\n", False), ("2x", False),
])
def test_is_label_name(text, expected):
    assert is_label_name(text) is expected
