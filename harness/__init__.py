"""The real parts that tests, benchmarks and the screenshot script start on 127.0.0.1: a Prometheus
backfilled with promtool, the Grafeas test server (v1 and v1beta1 wire formats) and the app itself.

Not part of the installed product: it lives beside `dashboard/` so that `bench/` and `scripts/`
need nothing from `tests/`.
"""
