# Two commands do all set-up (see README):
#   make table3   # create .venv, install, regenerate MP2 Table 3 on the embedded default
#   make test     # create .venv, install, run the test suite
PYTHON ?= python3
VENV ?= .venv
CORES ?= 2
# The CPU build of torch; on this project's machines pip takes it from the local disk.
TORCH_SPEC ?= torch==2.13.0
BIN := $(abspath $(VENV))/bin
# Rules call `python -m replicate`: put the environment's python first on PATH.
RUN := PATH="$(BIN):$$PATH"

.PHONY: setup table3 showcase mpt_table3 compt tables report test bench clean-results

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# The workstation profile: keep going past a failed job, rerun incomplete ones, one retry.
SNAKEMAKE := snakemake --profile profiles/workstation --cores $(CORES)

table3: setup
	$(RUN) $(SNAKEMAKE) table3

# The showcase: table3 with longer pre-trainings and black-box budgets (config/showcase.yaml,
# named over the embedded default), into results/showcase; under two hours on 2 cores.
showcase: setup
	$(RUN) $(SNAKEMAKE) table3 --configfile config/config.yaml config/showcase.yaml

# MPT Table 3 (few-shot: model tuning, PT, SPoT, MPT) on the embedded default, its
# pre-trainings included (SPoT's, the teachers, MPT's source training).
mpt_table3: setup
	$(RUN) $(SNAKEMAKE) mpt_table3

# ComPT Table 1 (SSUM, MSUM, MCAT over the six embedded tasks at once, and PT) and its Fig 3
# heatmap (each task's score with one source prompt kept) on the embedded default.
compt: setup
	$(RUN) $(SNAKEMAKE) compt_table1 compt_fig3

# Every paper table with a row of the run's methods (from the same cells as table3).
tables: setup
	$(RUN) $(SNAKEMAKE) tables

# The Snakemake report of a run that was built (`make table3` first): every table, diff and figure of
# REPORT_TARGETS with its caption, in one self-contained page (results/report.zip: REPORT=...zip).
REPORT ?= results/report.html
REPORT_TARGETS ?= table3
report: setup
	$(RUN) snakemake --report $(REPORT) $(REPORT_TARGETS)

test: setup
	$(RUN) python -m pytest -q

bench: setup
	$(RUN) python bench/seed_batching.py

clean-results:
	rm -rf results/splits results/cells results/prompts results/tables results/logs results/benchmarks
