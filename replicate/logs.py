"""Job logs: one configuration point (``setup_job_logging``), timestamped lines on stderr (the
Snakemake rules send a job's stderr to its log file), and progress text with rate and ETA.

Progress is logging only: it reads the clock where the loops already are, never syncs a
device or evaluates anything, so it changes no number."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Callable, Optional

LOGGER = "replicate"
FORMAT = "%(asctime)s %(message)s"
DATEFMT = "%Y-%m-%dT%H:%M:%S"
# at most one progress line between two dev checks per this many seconds of wall time
PROGRESS_EVERY_S = 60.0


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is logged (a test's capture, a
    redirected stream), not to the one there was when logging was set up."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler sets it; the property always reads sys.stderr
        pass


def setup_job_logging(quiet_transformers: bool = True) -> logging.Logger:
    """Configure the jobs' logger once (later calls change nothing): ``FORMAT`` to stderr at
    INFO; and, with ``quiet_transformers``, transformers' (and the Hub's) progress bars off
    and transformers' own logging at warnings at most (TRANSFORMERS_VERBOSITY=error stays),
    so that "Loading weights" bars do not fill the job logs."""
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    if quiet_transformers:
        quiet_hugging_face()
    return logger


# transformers' verbosity names above warning, as TRANSFORMERS_VERBOSITY takes them
_VERBOSE = ("info", "debug", "detail")


def quiet_hugging_face() -> None:
    """transformers' and the Hub's progress bars off, transformers' logging at warnings at
    most (TRANSFORMERS_VERBOSITY=error stays). Not imported yet (a job at its start): through
    the environment variables they read when imported, so that a job that never loads them
    (a split) does not pay for importing them; imported: through their functions."""
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    else:
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # transformers' bars follow it when it is imported
    if "transformers" in sys.modules:
        import transformers.utils.logging as hf_logging

        hf_logging.disable_progress_bar()
        if hf_logging.get_verbosity() < logging.WARNING:  # info or debug: down to warnings (error stays error)
            hf_logging.set_verbosity_warning()
    elif os.environ.get("TRANSFORMERS_VERBOSITY", "").lower() in _VERBOSE:
        os.environ["TRANSFORMERS_VERBOSITY"] = "warning"


def job_log(msg: str) -> None:
    """One line (or block) of a job's log, timestamped; the ``log=`` callback jobs pass down."""
    logger = logging.getLogger(LOGGER)
    if not logger.handlers:  # a job called from Python rather than through the CLI
        setup_job_logging(quiet_transformers=False)
    logger.info(msg)


def duration_text(seconds: float) -> str:
    """"212 s" below 10 minutes, "17 min" below 2 hours, "3 h 05 min" beyond."""
    seconds = max(0.0, seconds)
    if seconds < 600:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def eta_text(done: int, total: int, elapsed: float, unit: str = "step") -> str:
    """"212 s, 0.42 s/step, ETA 17 min": the wall time so far, the seconds per ``unit`` over
    the ``done`` units it took, and what that rate leaves for the ``total - done`` to go
    (no rate before the first unit is done)."""
    if done <= 0:
        return f"{duration_text(elapsed)}, ETA unknown"
    rate = elapsed / done
    return f"{duration_text(elapsed)}, {rate:.3g} s/{unit}, ETA {duration_text(rate * max(0, total - done))}"


class Progress:
    """Rate and ETA of a loop of ``total`` units (steps, forward calls), from ``done`` at start
    (a resumed run: the rate counts this process's units only).

    ``text(done)``: what a dev-check line appends. ``tick(done)``: a ``"<unit> k/N: ..."`` line
    when ``every_s`` seconds of wall time have passed since the last line (a tick, or a line
    with ``text``; default ``PROGRESS_EVERY_S``), so that a long stretch between dev checks still shows progress at a
    steady cadence whatever a step costs."""

    def __init__(self, total: int, log: Callable[[str], None], unit: str = "step", done: int = 0,
                 every_s: Optional[float] = None, clock: Callable[[], float] = time.perf_counter):
        self.total, self.log, self.unit, self.first, self.clock = total, log, unit, done, clock
        self.every_s = PROGRESS_EVERY_S if every_s is None else every_s
        self.start = self.last_line = clock()

    def text(self, done: int) -> str:
        now = self.clock()
        self.last_line = now
        return eta_text(done - self.first, self.total - self.first, now - self.start, self.unit)

    def tick(self, done: int, label: Optional[str] = None) -> None:
        if self.clock() - self.last_line >= self.every_s:
            self.log(f"{label or self.unit} {done}/{self.total}: {self.text(done)}")
