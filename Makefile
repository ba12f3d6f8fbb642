# The README's two commands: `make run` and `make test`. Both create .venv when needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

EXAMPLES := Na3Zr2Si2PO12 Na3.4Zr1.6Sc0.4Si2PO12 Na3PS4 Na2.88Sb0.88W0.12S4 Na3YCl6 Na2.25Y0.25Zr0.75Cl6 \
	NaCB11H12 Na2B12H12 Na3OCl

.PHONY: run test venv lint clean model bench gnn

venv: $(STAMP)

# torch first, pinned, so pip takes this machine's CPU wheel instead of a multi-GB CUDA build (docs: STACK.md).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/nacond data validate datasets/na_sse
	$(BIN)/nacond data stats datasets/na_sse
	$(BIN)/nacond train --data datasets/na_sse --cv grouped --out build/model
	$(BIN)/nacond predict --model build/model $(EXAMPLES)
	@echo ""
	@echo "Next: serve the model just trained (REST, OpenAPI at http://127.0.0.1:8000/docs):"
	@echo "  $(BIN)/nacond serve --model build/model --port 8000"
	@echo "Browse its MLflow run (store ./mlflow.db):"
	@echo "  $(BIN)/nacond ui --port 5000    # then open http://127.0.0.1:5000"

# Rebuild the committed reference model (no MLflow run; deterministic for a given dataset and seed).
model: $(STAMP)
	$(BIN)/nacond train --data datasets/na_sse --cv grouped --out models/default --no-mlflow --no-learning-curve

# The residual crystal-graph GNN on the entries' parent structures (1 min 44 s and 2 min 7 s in two runs on 2 cores, 2026-12-07, venv ready), then a prediction
# for a CIF written from the Sc-doped NASICON mapping.
gnn: $(STAMP)
	$(BIN)/nacond train --data datasets/na_sse --model gnn --cv none --out build/gnn
	$(BIN)/python -c "from ml.structures import structure_for; structure_for('Na3.4Zr1.6Sc0.4Si2PO12', 'nasicon_R-3c').structure.to(filename='build/Na3.4Zr1.6Sc0.4Si2PO12.cif')"
	$(BIN)/nacond predict --model build/gnn --cif build/Na3.4Zr1.6Sc0.4Si2PO12.cif

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_composition.py --out docs/bench
	$(BIN)/python benchmarks/bench_serving.py --out docs/bench
	$(BIN)/python benchmarks/bench_temperature.py --out docs/bench
	$(BIN)/python benchmarks/bench_screening.py --out docs/bench
	$(BIN)/python benchmarks/bench_ray.py --out docs/bench
	$(BIN)/python benchmarks/bench_structure.py --out docs/bench
	$(BIN)/python benchmarks/bench_structure_inference.py --out docs/bench
	$(BIN)/python benchmarks/bench_structure_candidates.py --out docs/bench
	$(BIN)/python benchmarks/bench_heldback.py --out docs/bench
	$(BIN)/python benchmarks/bench_heldback.py --residual --out docs/bench
	[ -d build/gnn ] || $(MAKE) gnn
	$(BIN)/python benchmarks/bench_gnn_inference.py --model build/gnn --repeats 5 --out docs/bench
	if [ -d ../shared/external/obelix ]; then $(BIN)/python benchmarks/bench_gnn_pretrain.py --out docs/bench; fi
	$(BIN)/python benchmarks/bench_trust.py --out docs/bench
	$(BIN)/python benchmarks/bench_robustness.py --out docs/bench
	if [ -d ../shared/external/obelix ]; then $(BIN)/python benchmarks/bench_obelix.py --out docs/bench; fi
	$(BIN)/python benchmarks/render.py

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) mlruns mlflow.db
