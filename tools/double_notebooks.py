"""Write copies of the notebooks whose cells appear twice, so that nbmake runs each notebook
top to bottom twice in one kernel (a notebook must survive "Run All" a second time).

Run by ``make notebooks``. Usage: python tools/double_notebooks.py SRC_DIR OUT_DIR
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
from pathlib import Path


def double(nb: dict) -> dict:
    """The notebook with its cells followed by a copy of them (ids made unique)."""
    out = copy.deepcopy(nb)
    second = copy.deepcopy(nb["cells"])
    for cell in second:
        if "id" in cell:
            cell["id"] = f"{cell['id']}-again"[:64]
    out["cells"] = nb["cells"] + second
    return out


def main(src: str, dst: str) -> int:
    src_dir, dst_dir = Path(src), Path(dst)
    shutil.rmtree(dst_dir, ignore_errors=True)
    dst_dir.mkdir(parents=True)
    paths = sorted(src_dir.glob("[0-9]*.ipynb"))
    for path in paths:
        nb = json.loads(path.read_text(encoding="utf-8"))
        (dst_dir / path.name).write_text(json.dumps(double(nb), indent=1), encoding="utf-8")
    print(f"doubled {len(paths)} notebooks into {dst_dir}")
    return 0 if paths else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
