"""naipo-bio: federated biomarker-survival association tests.

Each site computes Cox score statistics and other aggregates from its own
patients and writes them into a summary bundle; a coordinator pools the bundles
into association tests equal to a centralized analysis stratified by site.
"""

from importlib import metadata

from naipo_bio.errors import NaipoError, NaipoWarning

try:
    __version__ = metadata.version("naipo-bio")
except metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["NaipoError", "NaipoWarning", "__version__"]
