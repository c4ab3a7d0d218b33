"""Run exercise cells in fresh IPython namespaces (used by tests/test_exercises.py).

Usage: python tests/exercise_runner.py CASES.json RESULTS.json

CASES.json is a list of ``{"id": str, "cwd": str, "cells": [source, ...]}``. The cells of a case
run one after the other in one namespace, as a learner runs them; every case starts from an
empty namespace (``InteractiveShell.reset``), in its own working directory, so a cell that
leans on a name defined elsewhere in its notebook fails here. Cells run through IPython, so
magics (``%%writefile``) work as in a notebook. RESULTS.json gets, per case, one entry per
cell: ``{"error": exception class name or null, "message": str, "output": captured text}``.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from contextlib import redirect_stderr, redirect_stdout

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def run_cases(cases: list[dict]) -> dict[str, list[dict]]:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance(colors="nocolor")
    results = {}
    for case in cases:
        shell.reset(new_session=False)
        os.makedirs(case["cwd"], exist_ok=True)
        os.chdir(case["cwd"])
        cells = []
        for source in case["cells"]:
            buf = io.StringIO()
            with redirect_stdout(buf), redirect_stderr(buf):
                result = shell.run_cell(source, store_history=False)
            error = result.error_before_exec or result.error_in_exec
            cells.append({
                "error": type(error).__name__ if error is not None else None,
                "message": str(error)[:4000] if error is not None else "",
                "output": _ANSI.sub("", buf.getvalue())[-8000:],
            })
        results[case["id"]] = cells
    return results


def main(cases_path: str, results_path: str) -> int:
    with open(cases_path, encoding="utf-8") as f:
        cases = json.load(f)
    results = run_cases(cases)
    tmp = results_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    os.replace(tmp, results_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
