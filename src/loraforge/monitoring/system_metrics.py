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
        used = GaugeMetricFamily(
            "system_memory_usage_gigabytes", "Memory in use on this machine (total - available)"
        )
        used.add_metric([], round((memory.total - memory.available) / 1e9, 4))
        yield used
