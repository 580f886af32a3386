# Quick start: `make demo` and `make test` create ./.venv on first use and install everything.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH := torch==2.14.1 torchvision==0.29.1
FASTREID := fastreid==1.4.0
STAMP := $(VENV)/.installed

.PHONY: venv test test-quick demo benchmark clean-venv

venv: $(STAMP)

$(STAMP): setup.py Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	# fastreid's metadata pins torch 1.13.1 (no Python 3.11 wheel): install it without deps.
	$(PY) -m pip install -q --no-deps $(FASTREID)
	$(PY) -m pip install -q -e ".[cpu,test,onnx]"
	$(PY) -c "import fastreid_mmt, faiss, sklearn, onnxruntime; print('environment ready')"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

# The fast inner loop: everything but the end-to-end runs marked slow.
test-quick: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

demo: $(STAMP)
	$(PY) tools/demo.py --output-dir output/demo

benchmark: $(STAMP)
	$(PY) benchmarks/clustering.py

clean-venv:
	rm -rf $(VENV)
