"""Reading delimited tables as text, so every value is checked with its row."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pandas as pd

from naipo_bio.errors import InputError

#: Cell values read as missing. TCGA's bracketed codes are included because its
#: clinical exports use them for every kind of unknown.
NA_VALUES = frozenset(
    {"", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", ".", "[Not Available]",
     "[Not Applicable]", "[Unknown]", "[Not Evaluated]", "[Discrepancy]"}
)  # fmt: skip


def delimiter_for(path: Path) -> str:
    """Tab for .tsv/.txt (optionally .gz), comma for .csv."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in (".gz", ".bgz")]
    if suffixes and suffixes[-1] == ".csv":
        return ","
    return "\t"


def header_fields(path: Path) -> list[str]:
    """Column names of a delimited file, read from its first line as written.

    pandas renames a repeated column ("P001" becomes "P001.1"), which would hide
    a duplicated sample; this reads the header without that renaming.
    """
    opener = gzip.open if path.suffix.lower() in (".gz", ".bgz") else open
    with opener(path, "rt", newline="") as handle:
        first = handle.readline()
    return next(csv.reader([first], delimiter=delimiter_for(path)), [])


def check_unique_columns(path: Path, what: str) -> list[str]:
    """Raise if the file's header repeats a column name; return the names."""
    names = header_fields(path)
    seen: dict[str, int] = {}
    for position, name in enumerate(names):
        if name in seen:
            raise InputError(
                f"{path}: the {what} header has the column {name!r} twice (columns "
                f"{seen[name] + 1} and {position + 1}). Column and sample names must "
                "be unique; rename or drop one of them."
            )
        seen[name] = position
    return names


def read_text_table(path: str | Path, what: str) -> pd.DataFrame:
    """Read a TSV/CSV (gzip allowed) with every cell as a string.

    Missing cells stay as the text they hold; callers decide with
    :func:`is_missing`. Blank lines are dropped, and the frame's index keeps
    each row's place in the file: index ``i`` is line ``i + 2``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"The {what} file was not found: {path}")
    try:
        frame = pd.read_csv(
            path,
            sep=delimiter_for(path),
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            comment=None,
            skip_blank_lines=False,
        )
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise InputError(f"Could not read the {what} file {path}: {exc}") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"The {what} file {path} is empty.") from None
    blank = (frame.fillna("").astype(str).apply(lambda c: c.str.strip()) == "").all(
        axis=1
    )
    frame = frame.loc[~blank]
    if frame.shape[0] == 0:
        raise InputError(f"The {what} file {path} has a header but no rows.")
    check_unique_columns(path, what)
    return frame


def is_missing(values: pd.Series) -> pd.Series:
    """True where a text cell is one of :data:`NA_VALUES` (after trimming)."""
    return values.str.strip().isin(NA_VALUES)


def line_numbers(index) -> list[int]:
    """File line numbers (header = line 1) of frame rows."""
    return [int(i) + 2 for i in index]


def require_columns(frame: pd.DataFrame, columns: dict[str, str], path, what: str):
    """Raise if any mapped column is absent, listing what the file has."""
    missing = {role: col for role, col in columns.items() if col not in frame.columns}
    if missing:
        wanted = ", ".join(f"{role} -> {col!r}" for role, col in missing.items())
        have = ", ".join(repr(c) for c in list(frame.columns)[:30])
        raise InputError(
            f"The {what} file {path} has no column for {wanted}. Columns found: "
            f"{have}. Map the role to the right column in the site configuration."
        )
