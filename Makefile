# rfpga: every step from a fresh clone. `make demo` runs the main job on a small default,
# `make test` runs the tests; each does its own setup (idempotent, offline once done).
SHELL := bash
.DEFAULT_GOAL := demo

CARGO      ?= cargo
RFPGA      := target/release/rfpga
CIFAR_SRC  ?= ../shared/data/cifar10
DATA_DIR   ?= data/cifar-10-batches-bin
TORCH_VENV := .venv-torch

# Pipeline settings (override on the command line: make train DEPTH=56 EPOCHS=30).
DEPTH       ?= 20
SHORTCUT    ?= A
EPOCHS      ?= 4
BATCH       ?= 128
LR          ?= 0.2
SCHEDULE    ?= onecycle:0.15
WD          ?= 5e-4
SMOOTHING   ?= 0.1
SEED        ?= 0
LIMIT_TRAIN ?= 10000
DEVICE      ?= cpu
SKIPS       ?= long
# Quantization-aware training: weights, activations and input at QAT (float: none); biases at
# QAT_BIAS. The demo's <8,3> is the deck's and hls4ml's Pynq-Z2 format.
QAT         ?= ap_fixed<8,3,AP_RND,AP_SAT>
QAT_BIAS    ?= ap_fixed<16,6,AP_RND,AP_SAT>
QAT_SLUG    := $(if $(filter float,$(QAT)),float,$(shell echo '$(QAT)' | sed -E 's/ap_(u?)fixed<([0-9]+),([0-9-]+).*/q\1\2.\3/'))
RUN         ?= runs/resnet$(DEPTH)-$(SHORTCUT)-$(QAT_SLUG)-e$(EPOCHS)-n$(LIMIT_TRAIN)-s$(SEED)
QAT_FLAGS   := $(if $(filter float,$(QAT)),,--weight-format '$(QAT)' --act-format '$(QAT)' --input-format '$(QAT)' --bias-format '$(QAT_BIAS)')
TRAIN_FLAGS ?=

.PHONY: setup setup-torch setup-data setup-tools setup-onnx onnx-check qonnx-check build test demo train eval quantize sim sim-check bench-sim sim-agreement \
        fuzz codegen fit fit-tables csim csim-check dataflow dataflow-tables \
        docs cli-reference setup-mdbook freeze board board-deck skip-variants skip-variant-runs deck-teacher deck deck-status deck-figures recipe-ab ste-ab gpu-build bench-train bench-qat bench-skip skip-experiment skip-plots sweep summarize test-slurm estimate clean

setup: setup-torch setup-data setup-tools setup-ap-types setup-onnx

# onnx, onnxruntime (pinned) for checking rfpga's ONNX exports; never used by the binary.
setup-onnx:
	@bash scripts/setup-onnx.sh .venv-onnx

setup-tools:
	@bash scripts/setup-tools.sh

setup-torch:
	@bash scripts/setup-torch.sh $(TORCH_VENV)

# CIFAR-10: CIFAR_ARCHIVE=path/to/cifar-10-binary.tar.gz (the official archive, md5-checked), else
# the copy in CIFAR_SRC.
CIFAR_ARCHIVE ?=
setup-data:
	@bash scripts/setup-cifar10.sh $(if $(CIFAR_ARCHIVE),--archive '$(CIFAR_ARCHIVE)') $(CIFAR_SRC) data

build: setup-torch
	$(CARGO) build --release

# The documentation site (mdBook, pinned; built from crates.io into .tools/) into target/book.
docs: setup-mdbook
	.tools/mdbook/bin/mdbook build docs
	@echo "open target/book/index.html"

setup-mdbook:
	@bash scripts/setup-mdbook.sh

# docs/reference/cli.md from the command-line definitions (a test fails when it is stale).
cli-reference: build
	$(RFPGA) cli-reference > docs/reference/cli.md.tmp && mv docs/reference/cli.md.tmp docs/reference/cli.md

quantize: freeze

# Every parser of user input fuzzed for FUZZ_SECONDS each, FUZZ_JOBS at a time (scripts/fuzz.sh;
# crashes land in fuzz/regressions/, which the ordinary tests run).
FUZZ_SECONDS ?= 600
FUZZ_JOBS    ?= 2
fuzz: build setup-data
	@bash scripts/setup-fuzz.sh
	@bash scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_JOBS)

# The Rust tests, then the ap_fixed vectors through the real Xilinx headers with g++.
test: setup
	$(CARGO) test --release --workspace
	@$(MAKE) --no-print-directory check-ap-vectors
	@bash scripts/tutorial-check.sh
	@$(MAKE) --no-print-directory test-slurm

# The tiny sweep through a real single-node Slurm started on localhost (Debian's packages,
# installed by scripts/slurm-local.sh when root) and through the local engine: same summary.
# Without root and without Slurm's packages, `make test SKIP_SLURM=1` skips it (and says so).
SKIP_SLURM ?=
test-slurm: build setup-data
	@if [ -n "$(SKIP_SLURM)" ]; then echo "test-slurm: SKIPPED (SKIP_SLURM=$(SKIP_SLURM))"; else bash scripts/test-slurm.sh; fi

# A sweep file's grid of pipeline runs (docs/howto/slurm-sweep.md): make sweep SWEEP_FILE=sweeps/deck-cpu.toml
# [ENGINE=slurm] [JOBS=2] [ONLY='--only depth=20'], then make summarize SWEEP_OUT=sweeps/deck-cpu.
SWEEP_FILE ?= sweeps/tiny.toml
ENGINE     ?= local
JOBS       ?= 1
ONLY       ?=
SWEEP_OUT  ?= sweeps/$(basename $(notdir $(SWEEP_FILE)))
sweep: build setup-data
	$(RFPGA) sweep $(SWEEP_FILE) --engine $(ENGINE) --jobs $(JOBS) $(ONLY)

summarize: build
	$(RFPGA) summarize $(SWEEP_OUT)

# The deck's experiments at full length (issue #16; hours on 2 cores, each step resumable):
# the float ResNet-20 teacher, 100 epochs on all 50,000 images (continued with --resume after an
# interruption), then the two sweeps that distill QAT <8,3> students from it.
DECK_TEACHER ?= runs/deck/teacher-r20
DECK_TEACHER_EPOCHS ?= 100
deck-teacher: build setup-data
	@if [ -f $(DECK_TEACHER)/summary.json ]; then echo "$(DECK_TEACHER) is complete"; \
	elif [ -f $(DECK_TEACHER)/checkpoint.safetensors ]; then $(RFPGA) train --resume $(DECK_TEACHER) --threads 2 --quiet; \
	else $(RFPGA) train --depth 20 --epochs $(DECK_TEACHER_EPOCHS) --seed 0 --data-dir $(DATA_DIR) --threads 2 --quiet --out $(DECK_TEACHER); fi

# The recipe options (--flip alternate, --ema, --label-smoothing 0.2, --zero-init-residual) each
# against the default recipe, same epochs and seeds; the table goes to docs/recipe-ab.md.
recipe-ab: build setup-data
	@bash scripts/recipe-ab.sh

# The binary and data parts for the GPU machine (torch 2.11 / tch 0.24; docs/howto/gpu.md).
gpu-build:
	@bash scripts/gpu/build.sh

# The QAT gradient rule (--ste identity / clipped) on the 50,000-image <8,3> run that collapsed;
# the table goes to docs/ste-ab.md.
ste-ab: build setup-data
	@bash scripts/ste-ab.sh

# Seed 0 of both sweeps first, so every row of the table and both figures have a first value
# early; then the other seeds. Finished runs are skipped, interrupted ones resumed.
deck: deck-teacher
	$(RFPGA) sweep sweeps/deck20.toml --engine local --only seed=0
	$(RFPGA) sweep sweeps/deck20-skipless.toml --engine local --only seed=0
	$(RFPGA) sweep sweeps/deck20.toml --engine local
	$(RFPGA) sweep sweeps/deck20-skipless.toml --engine local
	@$(MAKE) --no-print-directory deck-figures

# Where `make deck` stands: each run's state and the training left, per sweep.
deck-status:
	@$(RFPGA) sweep status sweeps/deck20.toml && echo && $(RFPGA) sweep status sweeps/deck20-skipless.toml

# The deck's two figures and tables from the sweeps' finished runs, into docs/deck/ (table.md is
# the README's deck table; scripts/deck-figures.sh).
deck-figures: build setup-data
	@bash scripts/deck-figures.sh

# The main job on a small default, the whole pipeline: ResNet-20 trained quantization-aware at
# ap_fixed<8,3> on 10,000 training images for 4 epochs, its test accuracy on all 10,000 test
# images, frozen at the run's formats and simulated bit-exactly on the same images, the fastest
# design that fits the Pynq-Z2's xc7z020 within FIT_BUDGET % of each resource (rfpga fit), its
# Vitis HLS project, compiled with g++ and C-simulated on CSIM_IMAGES images against the
# simulator, bit for bit, and the project's estimate: accuracy, images/s and resources.
demo: train eval freeze sim fit codegen csim estimate

train: build setup-data
	@if [ -f $(RUN)/summary.json ]; then echo "$(RUN) is complete (remove it to train again)"; \
	elif [ -f $(RUN)/checkpoint.safetensors ]; then $(RFPGA) train --resume $(RUN) --device $(DEVICE); \
	else $(RFPGA) train --depth $(DEPTH) --shortcut $(SHORTCUT) --epochs $(EPOCHS) --batch-size $(BATCH) \
	  --lr $(LR) --schedule $(SCHEDULE) --weight-decay $(WD) --label-smoothing $(SMOOTHING) --seed $(SEED) \
	  --skips $(SKIPS) --train-images $(LIMIT_TRAIN) --data-dir $(DATA_DIR) --device $(DEVICE) --out $(RUN) $(QAT_FLAGS) $(TRAIN_FLAGS); fi

eval: build setup-data
	$(RFPGA) eval $(RUN) --data-dir $(DATA_DIR) --device $(DEVICE)

# Freeze RUN into FROZEN and simulate it. WFORMAT=run takes the run's QAT weight format (the
# default for QAT runs; float runs are frozen at <16,6>); the other formats default to the run's
# QAT formats (QUANT_FLAGS: --act-format, --input-format, --bias-format, --accum-format…).
# `make quantize` is the old name of `make freeze`.
FLOAT_WFORMAT := ap_fixed<16,6,AP_RND,AP_SAT>
WFORMAT     ?= $(if $(filter float,$(QAT)),$(FLOAT_WFORMAT),run)
FROZEN      ?= $(RUN)-frozen
QUANT_FLAGS ?=
freeze: build setup-data
	$(RFPGA) freeze $(RUN) $(if $(filter run,$(WFORMAT)),,--weight-format '$(WFORMAT)') --data-dir $(DATA_DIR) \
	  --out $(FROZEN) $(QUANT_FLAGS)

sim: build setup-data
	$(RFPGA) sim $(FROZEN) --data-dir $(DATA_DIR)

# The QAT model in tch and its frozen form in the simulator, side by side.
sim-check: build setup-data
	$(RFPGA) eval $(RUN) --frozen $(FROZEN) --data-dir $(DATA_DIR) --device $(DEVICE)

# The exact simulator against onnxruntime float on the same ResNet-20, images and threads (scripts/bench-sim.sh).
bench-sim: build setup-data setup-onnx
	@DATA_DIR=$(DATA_DIR) bash scripts/bench-sim.sh

# QAT fine-tunes at <8,3> and <16,4> with long/no/short skips, frozen and compared (README).
sim-agreement: build setup-data
	@bash scripts/sim-agreement.sh

# The Vitis HLS project of FROZEN, with CSIM_IMAGES test vectors from the simulator, and its
# C simulation with g++ against the ap_types headers (non-zero exit on any mismatch).
# With a design file from `make fit` (DESIGN), the project follows it; without, PARALLELISM.
PROJECT     ?= $(FROZEN)-hls
PART        ?= xc7z020clg400-1
CLOCK_NS    ?= 10
PARALLELISM ?= 1
CSIM_IMAGES ?= 20
DESIGN      ?= $(FROZEN)-design.json
FIT_BUDGET  ?= 80
codegen: build setup-data
	@if [ -f '$(DESIGN)' ]; then set -x; $(RFPGA) codegen $(FROZEN) --out $(PROJECT) --design '$(DESIGN)' --clock-ns $(CLOCK_NS) \
	  --images $(CSIM_IMAGES) --data-dir $(DATA_DIR); \
	else set -x; $(RFPGA) codegen $(FROZEN) --out $(PROJECT) --part $(PART) --clock-ns $(CLOCK_NS) \
	  --parallelism $(PARALLELISM) --images $(CSIM_IMAGES) --data-dir $(DATA_DIR); fi

# The fastest design of FROZEN that fits PART within FIT_BUDGET % of each resource (estimates
# are not placed designs: the rest is room for place and route), written to DESIGN.
fit: build
	$(RFPGA) fit $(FROZEN) --part $(PART) --clock-ns $(CLOCK_NS) --budget $(FIT_BUDGET) --out '$(DESIGN)'

# The float network of RUN exported to ONNX and run by onnxruntime on all 10,000 test images
# against rfpga eval: logits within 1e-4 of each image's largest, and both top-1 figures.
ONNX_DIR ?= $(RUN)-onnx
onnx-check: build setup-data setup-onnx
	@mkdir -p $(ONNX_DIR)
	$(RFPGA) export onnx $(RUN) --out $(ONNX_DIR)/model.onnx
	@rm -rf $(ONNX_DIR)/logits
	$(RFPGA) eval $(RUN) --data-dir $(DATA_DIR) --save-logits $(ONNX_DIR)/logits
	.venv-onnx/bin/python scripts/onnx_check.py $(ONNX_DIR)/model.onnx $(ONNX_DIR)/logits

# FROZEN exported as QONNX, checked bit for bit by qonnx's executor on CSIM_IMAGES test images,
# then loaded by hls4ml 1.3's ONNX front end (~1 min).
QONNX_DIR ?= $(FROZEN)-qonnx
qonnx-check: build setup-data setup-onnx
	@mkdir -p $(QONNX_DIR)
	$(RFPGA) export qonnx $(FROZEN) --out $(QONNX_DIR)/model.onnx
	@rm -rf $(QONNX_DIR)/vectors
	$(RFPGA) sim $(FROZEN) --images $(CSIM_IMAGES) --data-dir $(DATA_DIR) --export-vectors $(QONNX_DIR)/vectors
	.venv-onnx/bin/python scripts/qonnx_check.py $(QONNX_DIR)/model.onnx $(QONNX_DIR)/vectors
	.venv-onnx/bin/python scripts/hls4ml_load.py $(QONNX_DIR)/model.onnx $(QONNX_DIR)/hls4ml | tail -1

# Threaded: each dataflow process a thread, each stream blocking at its generated depth.
csim: build setup-ap-types setup-tools
	$(RFPGA) csim $(PROJECT) --ap-types third_party/ap_types --threaded

# The generated design's cycle-level dataflow simulation: interval, latency, FIFO occupancy.
dataflow: build
	$(RFPGA) dataflow $(PROJECT)

# The generated design's resources and images/s on its part, before synthesis.
estimate: build
	$(RFPGA) estimate $(PROJECT)

# The fastest designs that fit (budget 80 %) for the deck's students on xc7z020, KV260 and
# ZCU104 and ResNet-56/110 on ZCU104, each C-simulated threaded on FIT_CSIM images back to back
# (scripts/fit-tables.sh → docs/fit/table.md).
FIT_CSIM ?= 100
fit-tables: build setup-data setup-ap-types setup-tools
	@bash scripts/fit-tables.sh $(FIT_CSIM)

# A board package (Vivado block design, bitstream script, PYNQ driver, validation script) for
# PROJECT: make board PROJECT=... [BOARD=pynq-z2] [BOARD_OUT=...].
BOARD     ?= pynq-z2
BOARD_OUT ?= $(PROJECT)-$(BOARD)
board: build setup-data
	$(RFPGA) board $(PROJECT) --board $(BOARD) --out $(BOARD_OUT)

# The deck's kept-skip student packaged for the Pynq-Z2, its batch and truncation checks and the
# driver's round trip through the C-simulated core (docs/board/r20-keep-pynq-z2.md).
board-deck: build setup-data setup-ap-types setup-tools setup-onnx
	@bash scripts/board-deck.sh

# The skip-change variants (sweeps deck20, deck20-skipless, fold20, fold20-random, sched20, ramp20, early20,
# early60, kept60) side by side:
# each finished run frozen with folding, simulated, fitted to the xc7z020 within 80 %, seed 0's
# design C-simulated (docs/results/skip-variants.md; runs not finished are listed as such).
skip-variants: build setup-data setup-ap-types setup-tools
	@python3 scripts/skip_variants.py

# Their training runs, the most informative first (resumable; about 23 hours on 2 cores in all).
skip-variant-runs: build setup-data deck-teacher
	@bash scripts/skip-variant-runs.sh

# Dataflow intervals (old and new layer library) and estimate/fit tables of ResNet-20 <8,3>
# (docs/explanation/estimate.md).
dataflow-tables: build setup-data
	@bash scripts/dataflow-tables.sh

# Threaded C-sim against the simulator on 100 images for frozen ResNet-20s (README).
csim-check: build setup-ap-types setup-tools
	@bash scripts/csim-check.sh

# tch against PyTorch eager (installs a full PyTorch 2.13.0 venv, ~4.7 GB, once).
# QAT training throughput: the fused fake-quantization kernel against libtorch's tensor ops.
bench-qat: build
	@bash scripts/bench-qat.sh

bench-train: build
	@bash scripts/bench-train.sh

# Skip removal against plain KD, same epochs/student/data: wall-time ratio.
bench-skip: build setup-data
	@bash scripts/bench-skip.sh

# The skip experiment of the deck on CPU: teacher → iterative removal (and, separately,
# shortening) with KD at QAT formats; plots under docs/. Variables: TEACHER, QFORMAT, AFORMAT,
# EVERY, FINETUNE, SKIP_LIMIT_TRAIN.
TEACHER          ?= runs/resnet20-e40
QFORMAT          ?= ap_fixed<8,3>
AFORMAT          ?=
EVERY            ?= 1
FINETUNE         ?= 2
SKIP_LIMIT_TRAIN ?= 50000
SKIP_TAG         ?= r20-w83-e$(EVERY)
SKIP_FLAGS       = --teacher $(TEACHER) --kd mse --every $(EVERY) --finetune $(FINETUNE) \
                   --weight-format '$(QFORMAT)' $(if $(AFORMAT),--act-format '$(AFORMAT)') \
                   --train-images $(SKIP_LIMIT_TRAIN) --data-dir $(DATA_DIR) --quiet $(SKIP_STE)
# The README's skip-experiment figures were made with the identity gradient (before the A/B).
SKIP_STE         ?= --ste identity
skip-experiment: build setup-data
	@for p in remove shorten; do r=runs/skip-$(SKIP_TAG)-$$p; \
	  if [ -f $$r/summary.json ]; then echo "$$r is complete"; \
	  elif [ -f $$r/checkpoint.safetensors ]; then $(RFPGA) distill --resume $$r --quiet; \
	  else $(RFPGA) distill $(SKIP_FLAGS) --skip-policy $$p --out $$r; fi; done
	$(MAKE) skip-plots

skip-plots: build
	$(RFPGA) plot-skips runs/skip-$(SKIP_TAG)-remove runs/skip-$(SKIP_TAG)-shorten --out docs/skips-$(SKIP_TAG).svg

clean:
	$(CARGO) clean

# The ap_fixed test vectors of rfpga-core (crates/rfpga-core/testdata/ap_fixed) against the real
# Xilinx headers (fetched once, pinned, into third_party/ap_types). Prints "N passed, M failed".
AP_VECTORS_DIR := crates/rfpga-core/testdata/ap_fixed
AP_VECTORS_BIN := target/ap_vectors/ap_vectors
.PHONY: check-ap-vectors setup-ap-types
setup-ap-types:
	@bash scripts/setup-ap-types.sh third_party/ap_types

$(AP_VECTORS_BIN): testbench/ap_vectors.cpp $(AP_VECTORS_DIR)/dispatch.inc third_party/ap_types/.rfpga-pin
	@mkdir -p $(dir $@)
	g++ -O2 -std=c++17 -I third_party/ap_types testbench/ap_vectors.cpp -o $@

third_party/ap_types/.rfpga-pin:
	@bash scripts/setup-ap-types.sh third_party/ap_types

check-ap-vectors: setup-ap-types $(AP_VECTORS_BIN)
	$(AP_VECTORS_BIN) $(AP_VECTORS_DIR)
