# Two commands on a fresh machine: `make demo` and `make test`. Each creates
# .venv (Python 3.10, which the pinned stack needs) on first use.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export GLOG_minloglevel ?= 1
export MUJOCO_GL ?= egl

.PHONY: demo test bench venv clean

venv: $(STAMP)

$(STAMP): setup.py requirements.lock
	@bash tools/make_venv.sh $(VENV)
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/abmrl demo

# Test worker processes (pytest-xdist). Most tests wait on process start-up
# or one busy process, so two share 2 cores well; each worker runs whole
# programs, so keep it near the core count.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=15

bench: $(STAMP)
	$(PY) benchmarks/pipeline.py

clean:
	rm -rf $(VENV) runs/demo data/demo-point_mass
