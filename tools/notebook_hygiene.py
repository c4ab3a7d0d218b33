"""Notebook hygiene, used by `make lint` (python tools/notebook_hygiene.py notebooks) and
tests/test_packaging.py.

A notebook must be stored without outputs or execution counts and with the `python3` kernelspec
(nbmake and JupyterLab look the kernel up by that name).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def problems(path: Path) -> list[str]:
    """What is wrong with one stored notebook (empty when it is clean)."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"{path}: unreadable ({exc})"]
    found = []
    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != "python3":
        found.append(f"{path}: kernelspec name is {kernel!r}, expected 'python3'")
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            found.append(f"{path}: cell {i} has stored outputs (strip them: nbstripout)")
        if cell.get("execution_count") is not None:
            found.append(f"{path}: cell {i} has an execution count (strip it: nbstripout)")
    return found


def main(folder: str) -> int:
    paths = sorted(Path(folder).glob("*.ipynb"))
    found = [p for path in paths for p in problems(path)]
    for line in found:
        print(line)
    print(f"notebook hygiene: {len(paths)} notebooks, {len(found)} problems")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "notebooks"))
