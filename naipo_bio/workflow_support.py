"""Helpers for the Snakemake scripts under workflow/scripts."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def rule_logging(path: str | Path) -> Iterator[None]:
    """Send the package's log records and warnings of one rule to ``path``.

    An exception is written to the log with its traceback and raised again, so
    Snakemake marks the job failed and the log says why.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        yield
    except Exception:
        logging.getLogger("naipo_bio").error("rule failed:\n%s", traceback.format_exc())
        raise
    finally:
        root.removeHandler(handler)
        handler.close()
