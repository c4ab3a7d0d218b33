"""Generated blocks in the course's markdown: the lines between two marker lines.

The README's badges, run-time table and cpu-training figures and the instructor guide's run
times and exercise list are each written by a tool (``tools/badges.py``,
``tools/time_notebooks.py``, ``benchmarks/record_cpu_training.py``, ``tools/student.py``)
between a begin and an end marker, so a rerun rewrites exactly that part and a check can tell a
stale one. These two functions are the only code that finds and replaces such a block.
"""

from __future__ import annotations


def block_span(text: str, begin: str, end: str, where: str) -> tuple[int, int]:
    """``(start, stop)`` of the block's body in ``text``: from the line after ``begin`` to the
    ``end`` marker. ``ValueError`` naming ``where`` when either marker is missing."""
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"{where}: expected the lines {begin!r} and {end!r} around the "
                         "generated block")
    return start + len(begin) + 1, stop


def replace_block(text: str, begin: str, end: str, body: str, where: str) -> str:
    """``text`` with the block between the ``begin`` and ``end`` lines set to ``body`` (which
    ends with a newline)."""
    start, stop = block_span(text, begin, end, where)
    return text[:start - 1] + "\n" + body + text[stop:]
