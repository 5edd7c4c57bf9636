"""Reads /metrics text on stdin with Prometheus' own OpenMetrics parser (prometheus_client)
and prints its samples as JSON: [{"name", "labels", "value"}]. A text the parser refuses
exits non-zero with its error."""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        samples.append({"name": s.name, "labels": s.labels, "value": s.value, "type": family.type})
print(json.dumps(samples))
