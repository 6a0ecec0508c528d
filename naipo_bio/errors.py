"""Exceptions and warning classes.

Every error a user can cause with bad input derives from :class:`NaipoError`, so
the command line reports it as one message with no traceback. Statistical
trouble that does not stop a run is a subclass of :class:`NaipoWarning`, so users
can filter all model warnings together (``-W ignore::naipo_bio.NaipoWarning``).
"""

from __future__ import annotations


class NaipoError(Exception):
    """Base class of the errors that bad input or configuration can cause."""


class InputError(NaipoError, ValueError):
    """An input file or table is invalid: the message names the file, the row or
    sample, the value, and the fix."""


class ConfigError(NaipoError, ValueError):
    """The configuration is invalid or inconsistent."""


class DisclosureError(NaipoError):
    """The site's data are below the disclosure policy's minimum for any release."""


class BundleError(NaipoError):
    """A summary bundle is unreadable, altered, or does not fit the others."""


class MergeError(NaipoError):
    """Bundles cannot be pooled together (mixed settings, no shared biomarkers)."""


class NaipoWarning(UserWarning):
    """Base class of the statistical and data-quality warnings."""


class ConvergenceWarning(NaipoWarning):
    """A Cox fit did not converge; its estimate is reported with that status."""


class SeparationWarning(NaipoWarning):
    """Monotone likelihood: a hazard ratio is infinite, so its Wald test is void."""


class DataQualityWarning(NaipoWarning):
    """Input values were excluded or flagged (missing times, time 0, NaN values)."""


class SuppressionWarning(NaipoWarning):
    """The disclosure policy withheld values from the bundle."""
