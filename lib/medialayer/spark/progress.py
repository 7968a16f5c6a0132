"""Progress of long Spark stages, logged from the driver at a steady cadence."""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from pyspark import SparkContext

log = logging.getLogger("medialayer.progress")


@contextmanager
def progress(sc: SparkContext, label: str, interval_s: float = 15.0) -> Iterator[None]:
    """Log tasks done / total and the rate of the running stages every `interval_s` while the body runs."""
    stop = threading.Event()
    started = time.monotonic()

    def report() -> None:
        tracker = sc.statusTracker()
        while not stop.wait(interval_s):
            stages = [tracker.getStageInfo(s) for s in tracker.getActiveStageIds()]
            stages = [s for s in stages if s is not None]
            done = sum(s.numCompletedTasks for s in stages)
            total = sum(s.numTasks for s in stages)
            failed = sum(s.numFailedTasks for s in stages)
            elapsed = time.monotonic() - started
            log.info("%s: %d/%d tasks of %d active stage(s), %d failed, %.0fs elapsed",
                     label, done, total, len(stages), failed, elapsed)

    thread = threading.Thread(target=report, name=f"progress-{label}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=1.0)
        log.info("%s: done in %.1fs", label, time.monotonic() - started)
