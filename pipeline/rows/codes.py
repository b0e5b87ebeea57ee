"""Grouping columns as dense integer codes, one per row in file order, and the name of each code.

Strings are read from the Parquet dictionary pages as codes (never a string per row); memory is
the codes (2 bytes a row where the levels fit) plus one row group. A group of several columns is
each row's combination of their codes, named as pipeline/grouping.py names a group."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import polars as pl
import pyarrow as pa

from servetrace import grouping
from servetrace.arrays import numpy_of
from servetrace.grouping import Grouping


COUNT_ROWS = 1 << 20


@dataclass(frozen=True)
class Codes:
    """A string column as dense integer codes (row order) and the level name of each code."""

    codes: np.ndarray
    levels: list[str]

    @cached_property
    def counts(self) -> np.ndarray:
        """Rows of each level, counted once (the stages and the fit ask for them several times), a
        million codes at a time: bincount casts 16-bit codes to 64 bits, and one temporary of the
        whole trace's (80 MB at 10 M rows) had its pages faulted in and zeroed each time."""
        return count(self.codes, len(self.levels))


def count(codes: np.ndarray, size: int) -> np.ndarray:
    """How often each of 0 .. size - 1 occurs in `codes`, a million at a time (see Codes.counts)."""
    out = np.zeros(size, np.int64)
    for lo in range(0, len(codes), COUNT_ROWS):
        out += np.bincount(codes[lo: lo + COUNT_ROWS], minlength=size)
    return out


def _small(codes: np.ndarray, n_levels: int) -> np.ndarray:
    # int16 when it fits: numpy's stable sort of 16-bit integers is a radix sort
    return codes.astype(np.int16 if n_levels < 2**15 else np.int32, copy=False)


def one_group(rows: int) -> Codes:
    return Codes(np.zeros(rows, np.int16), [grouping.ALL])


def combined(parts: list[Codes], rows: int) -> Codes:
    """Each row's combination of the parts' levels (the group of a grouping of those columns),
    only combinations that occur."""
    if not parts:
        return one_group(rows)
    if len(parts) == 1:
        return parts[0]
    size = int(np.prod([len(p.levels) for p in parts], dtype=object))
    # in the narrowest integer the combinations fit (a quarter of int64's memory traffic for a few)
    dtype = np.int16 if size < 2**15 else np.int32 if size < 2**31 else np.int64
    code = parts[0].codes.astype(dtype)
    for p in parts[1:]:
        code *= len(p.levels)
        code += p.codes
    if size > 1 << 24:
        used, index = np.unique(code, return_inverse=True)
    else:
        used = np.flatnonzero(count(code, size))
        if len(used) == size:  # every combination occurs: the code is its index
            index = code
        else:
            remap = np.zeros(size, dtype)
            remap[used] = np.arange(len(used))
            index = remap[code]
    names = []
    for c in used.tolist():
        values = []
        for p in reversed(parts):
            c, at = divmod(c, len(p.levels))
            values.append(p.levels[at])
        names.append(grouping.name_parts(values[::-1]))
    return Codes(_small(index.reshape(-1), len(names)), names)


def load_codes(requests_path, rows: int, names: list[str]) -> dict[str, Codes]:
    """The codes of the named string columns of a Parquet table (a file or parts), in file order:
    a column per thread (pyarrow's reads and lookups let go of the GIL), each with its own readers."""
    import pyarrow.parquet as pq

    from servetrace import io

    def codes_of(name: str) -> Codes:
        return _column_codes([pq.ParquetFile(p, read_dictionary=[name]) for p in io.parquet_parts(requests_path)],
                             name, rows)

    if len(names) < 2:
        return {name: codes_of(name) for name in names}
    with ThreadPoolExecutor(len(names)) as pool:
        return dict(zip(names, pool.map(codes_of, names)))


def group_codes(requests_path, rows: int, by: Grouping) -> Codes:
    """The group of every row of a Parquet file under the grouping `by`."""
    codes = load_codes(requests_path, rows, list(by.columns))
    return combined([codes[c] for c in by.columns], rows)


def frame_group_codes(frame: pl.DataFrame, by: Grouping) -> Codes:
    """The group of every row of a frame under the grouping `by`."""
    parts = []
    for c in by.columns:
        s = frame[c].cast(pl.String).fill_null(grouping.NONE)
        levels = s.unique(maintain_order=True)
        codes = s.replace_strict(levels, pl.Series(np.arange(levels.len())), return_dtype=pl.Int64).to_numpy()
        parts.append(Codes(_small(codes, levels.len()), levels.to_list()))
    return combined(parts, frame.height)


def _column_codes(parts: list, name: str, rows: int) -> Codes:
    """One dictionary-encoded column, row group by row group, as codes into one growing level list
    (memory: the codes, 2 bytes a row, plus one row group); a null is the level '(none)'."""
    levels = pa.nulls(0, pa.string())  # pa.array of a Python list would import pandas
    out = np.empty(rows, np.int16)
    at = 0
    for parquet, group in ((p, g) for p in parts for g in range(p.num_row_groups)):
        for chunk in parquet.read_row_group(group, columns=[name]).column(0).chunks:
            dictionary = chunk.dictionary
            mapping = np.zeros(0, np.int64)
            if len(dictionary):  # an all-null column (a source without it) has an empty one
                import pyarrow.compute as pc  # here: a trace without these columns never loads it (~0.05 s)

                dictionary = dictionary.cast(pa.string())
                new = dictionary.filter(pc.is_null(pc.index_in(dictionary, value_set=levels)))
                if len(new):
                    levels = pa.concat_arrays([levels, new])
                mapping = numpy_of(pc.index_in(dictionary, value_set=levels), null=-1).astype(np.int64)
            if len(levels) >= 2**15 - 1 and out.dtype == np.int16:
                out = out.astype(np.int32)
            # each row's level (-1: null, the slot past the dictionary's) gathered into its place in `out`
            np.take(np.append(mapping, -1).astype(out.dtype), numpy_of(chunk.indices, null=len(mapping)),
                    out=out[at: at + len(chunk)], mode="clip")
            at += len(chunk)
    names = levels.to_pylist()
    nulls = out[:at] < 0
    if nulls.any():
        if grouping.NONE not in names:
            names.append(grouping.NONE)
        out[nulls] = names.index(grouping.NONE)
    return Codes(out, names)
