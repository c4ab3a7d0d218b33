# Heatmaps to Keypoints — `make lab` opens the course, `make test` checks all of it.
# Both bootstrap .venv on their own (Python 3.11 + gcc are all a fresh machine needs).

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.course-installed
# torch first, pinned to the release the course is tested with: a local CPU wheel is taken when
# pip's find-links offers one, the ordinary index otherwise. Override e.g. TORCH_SPEC="torch>=2.2".
TORCH_SPEC ?= torch==2.13.0
PORT ?= 8888
TEST_WORKERS ?= 2
TEST_ENV := COURSE_PROFILE=smoke COURSE_STRICT=1 MPLBACKEND=Agg OMP_NUM_THREADS=1 \
            OPENBLAS_NUM_THREADS=1 PYTHONHASHSEED=0 TQDM_MININTERVAL=5

.PHONY: help venv data data-smoke coco lab test unit notebooks lint student html book bench clean distclean

help:
	@echo "make lab      set everything up and open the course in JupyterLab"
	@echo "make test     set everything up and run lint, unit tests, browser test, all notebooks"
	@echo "make data     generate the synthetic mini-COCO for COURSE_PROFILE (default: cpu)"
	@echo "make coco     download COCO 2017 annotations + val images (then COURSE_DATA=coco)"
	@echo "make student  write the student edition (solutions replaced by stubs) to student/"
	@echo "make html     execute every notebook (smoke profile) into a static site in html/"
	@echo "make book     the published edition: every notebook in the cpu profile into book/"
	@echo "make bench    run the benchmarks (speed ratios)"
	@echo "make lint     ruff + notebook hygiene"
	@echo "make clean    remove build products and test data; make distclean also .venv and data/"

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip setuptools wheel
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "$(TORCH_SPEC)"
	COURSE_BUILD_EXT=0 $(PY) -m pip install -e ".[dev,track,export]"
	@# build the C++ decoder once now (cppimport); without a compiler the course falls back to numpy
	$(PY) -c "from course_lib import native; print('C++ decoder:', 'ready' if native.available() else 'unavailable, numpy fallback')"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course)" >/dev/null
	@touch $(STAMP)

data: $(STAMP)
	$(PY) data_scripts/make_synthetic_coco.py

data-smoke: $(STAMP)
	COURSE_PROFILE=smoke $(PY) data_scripts/make_synthetic_coco.py

coco: $(STAMP)
	$(PY) data_scripts/download_coco.py --only annotations val

lab: $(STAMP)
	@if [ "$$($(PY) -c 'from course_lib import config; print(config.data_source())')" = synthetic ]; \
	then $(PY) data_scripts/make_synthetic_coco.py; \
	else $(PY) -c 'from course_lib import config; config.check_env()'; fi
	@echo "Opening JupyterLab on the course; the URL with its token is printed below."
	$(VENV)/bin/jupyter lab --ServerApp.root_dir="$(CURDIR)" --port=$(PORT) \
	    --LabApp.default_url=/lab/tree/notebooks/00_setup.ipynb \
	    $$( [ "$$(id -u)" = 0 ] && echo --ServerApp.allow_root=True ) \
	    $$( [ -z "$$DISPLAY$$WAYLAND_DISPLAY" ] && [ "$$(uname)" = Linux ] && echo --no-browser )

# the tests run in two processes (pytest-xdist: one per core of a laptop), the notebooks in two
# queues (see notebooks)
test: $(STAMP) data-smoke lint
	$(TEST_ENV) $(PY) -m pytest tests -q -p no:cacheprovider -n $(TEST_WORKERS)
	$(MAKE) --no-print-directory notebooks

unit: $(STAMP) data-smoke
	$(TEST_ENV) $(PY) -m pytest tests -q -m "not browser"

# every notebook runs top to bottom twice in one kernel (its cells doubled) through nbmake, in
# two queues side by side: 05-08 in order (06-08 read the checkpoint 05 trains), the rest
NBMAKE := $(TEST_ENV) $(PY) -m pytest --nbmake --nbmake-timeout=600 -q -p no:cacheprovider
notebooks: $(STAMP) data-smoke
	$(PY) tools/double_notebooks.py notebooks .build/notebooks-twice
	@T=.build/notebooks-twice; \
	{ $(NBMAKE) $$T/05_*.ipynb $$T/06_*.ipynb $$T/07_*.ipynb $$T/08_*.ipynb & first=$$!; \
	  $(NBMAKE) $$(ls $$T/*.ipynb | grep -v '/0[5-8]_'); rest=$$?; \
	  wait $$first; trained=$$?; exit $$((rest || trained)); }

lint: $(STAMP)
	$(VENV)/bin/ruff check course_lib heatmaps_to_keypoints tests tools data_scripts benchmarks setup.py
	$(PY) tools/notebook_hygiene.py notebooks

student: $(STAMP)
	$(PY) tools/student.py notebooks student --guide docs/INSTRUCTOR_GUIDE.md

html: $(STAMP) data-smoke
	$(TEST_ENV) $(PY) tools/build_html.py notebooks html

# The published edition (contents, previous/next links, MathJax served by the site itself):
# notebooks 00-08 in the cpu profile (BOOK_NOTEBOOKS='*' adds 09-11 and their races and
# capstone training). Notebook 05 reuses a finished checkpoint of runs/cpu with
# its configuration, else trains it once (about 15 minutes on 2 cores). Only notebooks changed
# since the last build run again; --timeout is per cell (the training cell runs 14 minutes).
# BOOK_PROFILE=smoke BOOK_DIR=/tmp/b checks the machinery fast.
BOOK_PROFILE ?= cpu
BOOK_DIR ?= book
BOOK_NOTEBOOKS ?= 0[0-8]_*
book: $(STAMP)
	COURSE_PROFILE=$(BOOK_PROFILE) $(PY) data_scripts/make_synthetic_coco.py --quiet
	COURSE_PROFILE=$(BOOK_PROFILE) COURSE_STRICT=1 MPLBACKEND=Agg PYTHONHASHSEED=0 \
	    TQDM_MININTERVAL=5 $(PY) tools/build_html.py notebooks $(BOOK_DIR) \
	    --profile $(BOOK_PROFILE) --timeout 1800 --only '$(BOOK_NOTEBOOKS)'

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; OMP_NUM_THREADS=1 $(PY) $$b || exit 1; done

clean:
	rm -rf .build html book test-artifacts .pytest_cache .ruff_cache build dist *.egg-info
	rm -rf data/synthetic-smoke runs/smoke
	find . -name __pycache__ -prune -exec rm -rf {} +
	rm -f cpp/*.so cpp/.rendered.* course_lib/*.so

distclean: clean
	rm -rf $(VENV) data runs
