#!/usr/bin/env bash
# Issue 19's GPU checks as one prepared run, for a session that is lent a GPU machine.
#
# Run from the repository root on the GPU machine (the device tool's `run`), with MNIST
# copied into the ignored folder .gpu_data/ and carried:
#     mkdir -p .gpu_data && cp -r ../shared/data/mnist .gpu_data/      (.gitignore ignores it)
#     run(command="bash scripts/gpu_check.sh", carry=[".gpu_data"], timeout_s=560)
# Each step has its own time limit so that one hang does not eat the others; logs and the
# benchmark JSON land in $OUT (or ./gpu_check_out when OUT is unset). The machine's python3
# must already have numpy, numba, pillow, tqdm, safetensors, threadpoolctl, pytest, cupy
# and torch (the H200 image has them); nothing is installed.
set -u
out="${OUT:-gpu_check_out}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TINYGRAD_CV_DATA="$PWD/.gpu_data"

step() {   # step NAME SECONDS COMMAND...: run with a limit, log to $out/NAME.log
    local name=$1 limit=$2; shift 2
    echo "== $name (limit ${limit}s): $*"
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    echo "== $name: exit $?"; tail -n 15 "$out/$name.log"
}

step machine 30 bash -c 'nvidia-smi -L; python3 -c "import sys, numpy, numba, cupy, torch; print(sys.version); print(\"numpy\", numpy.__version__, \"numba\", numba.__version__, \"cupy\", cupy.__version__, \"torch\", torch.__version__)"; python3 -c "import tinygrad_cv as tc; print(\"cuda available:\", tc.cuda.is_available())"'
# 1. every device-parametrised test's cuda variant (xdist spreads them over the cores)
xdist=$(python3 -c "import xdist" 2>/dev/null && echo "-n 8")
step tests_cuda 240 python3 -m pytest -q -rfs -k cuda -p no:cacheprovider $xdist tests
# 2. one epoch of the MNIST CNN on the GPU, to compare with the CPU's accuracy
step mnist_cuda 120 python3 examples/mnist_cnn.py --device cuda --epochs 1
# 3. training speed against PyTorch CUDA (TF32 off on both: bench_vs_torch.py sets it)
step bench_cuda 150 python3 benchmarks/bench_vs_torch.py --device cuda \
    --models mnist_cnn,resnet20 --batch-sizes 64,256 --modes train --trials 3 \
    --no-rss --no-compile --json "$out/bench_cuda.json"
