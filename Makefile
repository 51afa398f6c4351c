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
RUN         ?= runs/resnet$(DEPTH)-$(SHORTCUT)-e$(EPOCHS)-n$(LIMIT_TRAIN)-s$(SEED)
TRAIN_FLAGS ?=

.PHONY: setup setup-torch setup-data build test demo train eval bench-train clean

setup: setup-torch setup-data

setup-torch:
	@bash scripts/setup-torch.sh $(TORCH_VENV)

setup-data:
	@bash scripts/setup-cifar10.sh $(CIFAR_SRC) data

build: setup-torch
	$(CARGO) build --release

test: setup
	$(CARGO) test --release --workspace

# The main job on a small default: ResNet-20 on 10,000 training images for 4 epochs
# (about 3 minutes on 2 cores), then its test accuracy on all 10,000 test images.
demo: train eval

train: build setup-data
	@if [ -f $(RUN)/summary.json ]; then echo "$(RUN) is complete (remove it to train again)"; \
	elif [ -f $(RUN)/checkpoint.safetensors ]; then $(RFPGA) train --resume $(RUN) --device $(DEVICE); \
	else $(RFPGA) train --depth $(DEPTH) --shortcut $(SHORTCUT) --epochs $(EPOCHS) --batch-size $(BATCH) \
	  --lr $(LR) --schedule $(SCHEDULE) --weight-decay $(WD) --label-smoothing $(SMOOTHING) --seed $(SEED) \
	  --limit-train $(LIMIT_TRAIN) --data-dir $(DATA_DIR) --device $(DEVICE) --out $(RUN) $(TRAIN_FLAGS); fi

eval: build setup-data
	$(RFPGA) eval $(RUN) --data-dir $(DATA_DIR) --device $(DEVICE)

# tch against PyTorch eager (installs a full PyTorch 2.13.0 venv, ~4.7 GB, once).
bench-train: build
	@bash scripts/bench-train.sh

clean:
	$(CARGO) clean
