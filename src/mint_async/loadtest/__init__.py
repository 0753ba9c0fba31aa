"""Load-testing a MinT / Tinker endpoint: ``mint-async loadtest`` and ``loadtest.run(config)``.

Example::

    from mint_async import loadtest

    config = loadtest.LoadTestConfig(
        workloads=(loadtest.SampleWorkload(max_tokens=loadtest.IntDistribution.parse("uniform(16,64)")),),
        concurrency=64,
        duration=30.0,
    )
    report = loadtest.run(config)            # or: await loadtest.run_async(config)
    print(report.render())
    failed = loadtest.check_thresholds(report, ["p99_time_to_result<2s", "error_rate<0.01"])

Without ``base_url`` the local reference server is started in a child process
and tested. See ``mint-async loadtest --help`` for the command line.
"""

from __future__ import annotations

from ._compare import compare_reports as compare_reports
from ._config import LoadTestConfig as LoadTestConfig
from ._config import parse_seconds as parse_seconds
from ._distributions import IntDistribution as IntDistribution
from ._histogram import LatencyHistogram as LatencyHistogram
from ._plot import plot_report as plot_report
from ._report import LoadTestReport as LoadTestReport
from ._run import run as run
from ._run import run_async as run_async
from ._scenario import Scenario as Scenario
from ._thresholds import Threshold as Threshold
from ._thresholds import ThresholdResult as ThresholdResult
from ._thresholds import check_thresholds as check_thresholds
from ._workloads import ForwardBackwardWorkload as ForwardBackwardWorkload
from ._workloads import RLStepWorkload as RLStepWorkload
from ._workloads import SampleWorkload as SampleWorkload
from ._workloads import Workload as Workload

__all__ = [
    "ForwardBackwardWorkload",
    "IntDistribution",
    "LatencyHistogram",
    "LoadTestConfig",
    "LoadTestReport",
    "RLStepWorkload",
    "SampleWorkload",
    "Scenario",
    "Threshold",
    "ThresholdResult",
    "Workload",
    "check_thresholds",
    "compare_reports",
    "parse_seconds",
    "plot_report",
    "run",
    "run_async",
]
