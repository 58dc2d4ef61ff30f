"""The seed's machine gauges, read at scrape time: ``system_cpu_percent`` and
``system_memory_usage_gigabytes`` of the machine (or container) the process runs on.

Every process that serves metrics (API, worker, prediction server) reports them with its
own ``instance`` label, so a dashboard shows each machine.
"""

from __future__ import annotations

from collections.abc import Iterator

import psutil
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class SystemCollector(Collector):
    def __init__(self) -> None:
        # cpu_percent(None) measures since the previous call; the first call is the baseline.
        psutil.cpu_percent(interval=None)

    def collect(self) -> Iterator[Metric]:
        cpu = GaugeMetricFamily(
            "system_cpu_percent", "CPU use of this machine since the previous scrape, percent"
        )
        cpu.add_metric([], psutil.cpu_percent(interval=None))
        yield cpu
        memory = psutil.virtual_memory()
        in_use = memory.total - memory.available
        # The seed's name (its dashboard queries it), and the base-unit form Prometheus'
        # conventions ask for (promtool's lint names the first).
        seed = GaugeMetricFamily(
            "system_memory_usage_gigabytes", "Memory in use on this machine (total - available)"
        )
        seed.add_metric([], round(in_use / 1e9, 4))
        yield seed
        base = GaugeMetricFamily(
            "system_memory_usage_bytes", "Memory in use on this machine (total - available)"
        )
        base.add_metric([], float(in_use))
        yield base
