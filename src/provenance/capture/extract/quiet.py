"""Silence the extraction libraries' logging and warnings while they run."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

_QUIET_LOGGERS = ("trafilatura", "htmldate", "justext", "courlan", "readability")
_QUIET_LOCK = threading.Lock()


@contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Silence the extraction libraries: their complaints are about the page, not for users.

    Logger levels and warning filters are process-wide, so calls are serialised; the libraries
    are CPU-bound under the GIL anyway.
    """
    with _QUIET_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
        levels = [logger.level for logger in loggers]
        for logger in loggers:
            logger.setLevel(logging.CRITICAL + 1)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)
