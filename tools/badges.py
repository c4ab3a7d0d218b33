"""The "Open in Colab" and "launch Binder" badges of every notebook and of the README.

The course's GitHub repository is named in ONE place, :data:`REPO` below (and its branch in
:data:`BRANCH`). Set it once after forking or publishing the course::

    python tools/badges.py --repo OWNER/heatmaps-to-keypoints [--branch main]

which saves the new values in this file and refreshes every link; ``python tools/badges.py``
alone refreshes the links from the saved values, ``--check`` writes nothing and exits with
status 1 when a link is missing or out of date (``tests/test_badges.py`` runs it).

What it writes (idempotent: a second run changes nothing):

- the first line of each notebook's first (markdown) cell: both badges for that notebook;
- the ``REPO_URL = "..."`` line of a notebook's code (the hosted-runtime setup cell of
  ``00_setup.ipynb`` clones the course from there on Colab);
- in ``README.md``, the line between ``<!-- badges -->`` and ``<!-- /badges -->`` (notebook
  00) and the table between ``<!-- badge-table -->`` and ``<!-- /badge-table -->`` (all).

Notebooks are rewritten in their stored JSON form (``indent=1``, UTF-8 as is), so only the
changed lines show in a diff. Run ``make student`` afterwards: the student edition copies the
first cells.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from urllib.parse import quote

REPO = "OWNER/heatmaps-to-keypoints"  # the course on GitHub: set it once (see the docstring)
BRANCH = "main"

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a clone, uninstalled
    sys.path.insert(0, str(ROOT))

import doc_blocks  # noqa: E402  (next to this file: tools/doc_blocks.py)

from course_lib.config import write_atomic  # noqa: E402

COLAB_SVG = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_SVG = "https://mybinder.org/badge_logo.svg"
BADGE_LINE = re.compile(r"^\[!\[Open in Colab\]\(.*$")
REPO_URL_LINE = re.compile(r'^(\s*REPO_URL = )"https://github\.com/[^"]*"', re.M)
REPO_LINE = re.compile(r'^REPO = "[^"]*"', re.M)
BRANCH_LINE = re.compile(r'^BRANCH = "[^"]*"', re.M)
REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$")


def colab_url(repo: str, branch: str, path: str) -> str:
    """Colab's link that opens ``path`` (e.g. ``notebooks/00_setup.ipynb``) from GitHub."""
    return f"https://colab.research.google.com/github/{repo}/blob/{branch}/{path}"


def binder_url(repo: str, branch: str, path: str) -> str:
    """mybinder.org's link that builds the repository and opens ``path`` in JupyterLab."""
    return f"https://mybinder.org/v2/gh/{repo}/{branch}?labpath={quote(path, safe='')}"


def badge_line(repo: str, branch: str, path: str) -> str:
    """Both badges for one notebook, as one markdown line."""
    return (f"[![Open in Colab]({COLAB_SVG})]({colab_url(repo, branch, path)}) "
            f"[![launch Binder]({BINDER_SVG})]({binder_url(repo, branch, path)})")


def github_url(repo: str) -> str:
    return f"https://github.com/{repo}"


def notebook_paths(root: Path) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9]*.ipynb"))


def _text(source: str | list[str]) -> str:
    return source if isinstance(source, str) else "".join(source)


def _like(original: str | list[str], text: str) -> str | list[str]:
    """``text`` stored the way ``original`` was (one string, or a list of lines)."""
    return text if isinstance(original, str) else text.splitlines(keepends=True)


def with_badges(markdown: str, line: str) -> str:
    """``markdown`` whose first line is ``line``: an old badge line is replaced, else added."""
    first, sep, rest = markdown.partition("\n")
    if BADGE_LINE.match(first):
        return line + sep + rest
    return f"{line}\n\n{markdown}"


def refresh_notebook(nb: dict, path: str, repo: str, branch: str) -> dict:
    """The notebook with its badge line and ``REPO_URL`` lines up to date (a new dict)."""
    nb = json.loads(json.dumps(nb))
    cells = nb.get("cells", [])
    if not cells or cells[0].get("cell_type") != "markdown":
        raise ValueError(f"{path}: the first cell must be markdown (the title) to hold the badges")
    first = cells[0]
    first["source"] = _like(first["source"], with_badges(_text(first["source"]),
                                                         badge_line(repo, branch, path)))
    for cell in cells:
        if cell.get("cell_type") == "code":
            text = _text(cell["source"])
            new = REPO_URL_LINE.sub(lambda m: f'{m.group(1)}"{github_url(repo)}"', text)
            if new != text:
                cell["source"] = _like(cell["source"], new)
    return nb


def dump_notebook(nb: dict) -> str:
    """The stored JSON form of the course's notebooks."""
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def readme_table(root: Path, repo: str, branch: str) -> str:
    rows = ["| notebook | Colab | Binder |", "|---|---|---|"]
    for nb in notebook_paths(root):
        path = f"notebooks/{nb.name}"
        rows.append(f"| [`{nb.name}`]({path}) "
                    f"| [![Open in Colab]({COLAB_SVG})]({colab_url(repo, branch, path)}) "
                    f"| [![launch Binder]({BINDER_SVG})]({binder_url(repo, branch, path)}) |")
    return "\n".join(rows)


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with the lines between ``<!-- name -->`` and ``<!-- /name -->`` set to ``body``."""
    return doc_blocks.replace_block(text, f"<!-- {name} -->", f"<!-- /{name} -->", body + "\n",
                                    "README.md")


def refresh_readme(text: str, root: Path, repo: str, branch: str) -> str:
    text = replace_block(text, "badges", badge_line(repo, branch, "notebooks/00_setup.ipynb"))
    return replace_block(text, "badge-table", readme_table(root, repo, branch))


def save_settings(text: str, repo: str, branch: str) -> str:
    """This file's source with :data:`REPO` and :data:`BRANCH` set."""
    text = REPO_LINE.sub(f'REPO = "{repo}"', text, count=1)
    return BRANCH_LINE.sub(f'BRANCH = "{branch}"', text, count=1)


def planned(root: Path, repo: str, branch: str, save: bool) -> dict[Path, str]:
    """Every file whose text changes, with its new text."""
    out: dict[Path, str] = {}
    for path in notebook_paths(root):
        old = path.read_text(encoding="utf-8")
        new = dump_notebook(refresh_notebook(json.loads(old), f"notebooks/{path.name}",
                                             repo, branch))
        if new != old:
            out[path] = new
    readme = root / "README.md"
    old = readme.read_text(encoding="utf-8")
    new = refresh_readme(old, root, repo, branch)
    if new != old:
        out[readme] = new
    me = root / "tools" / "badges.py"
    if save and me.is_file():
        old = me.read_text(encoding="utf-8")
        new = save_settings(old, repo, branch)
        if new != old:
            out[me] = new
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", help=f"OWNER/NAME on GitHub, saved in this file (now {REPO})")
    parser.add_argument("--branch", help=f"branch the badges open, saved too (now {BRANCH})")
    parser.add_argument("--root", type=Path, default=ROOT, help="the course's folder")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    repo, branch = args.repo or REPO, args.branch or BRANCH
    if not REPO_NAME.match(repo):
        parser.error(f"--repo: expected OWNER/NAME, got {repo!r}")
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", branch):
        parser.error(f"--branch: expected a branch name, got {branch!r}")
    changes = planned(args.root, repo, branch, save=bool(args.repo or args.branch))
    for path, text in changes.items():
        rel = path.relative_to(args.root) if path.is_relative_to(args.root) else path
        if args.check:
            print(f"{rel}: badges out of date (run python tools/badges.py)")
        else:
            write_atomic(path, text)
            print(f"{rel}: badges refreshed")
    print(f"badges: {len(notebook_paths(args.root))} notebooks, {repo}@{branch}, "
          f"{len(changes)} file(s) {'stale' if args.check else 'changed'}")
    return 1 if args.check and changes else 0


if __name__ == "__main__":
    sys.exit(main())
