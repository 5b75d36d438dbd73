#!/usr/bin/env bash
# Generate a fleet-scale environment for measuring (issue 14): a copy of the repository's catalog/
# (and templates/, when there is one) with environments/fleet-N/config.yaml holding N models that
# alternate the shipped qwen-cpu (KServe, CPU) and qwen-gpu (raw vLLM, one GPU) shapes. The render
# benchmark (benches/render.rs) measures the environments this script makes.
#
#   scripts/fleet-env.sh N [DIR]    prints DIR (default: a new mktemp -d), the env is `fleet-N`
#
# Then, e.g.:
#   platform --repo DIR --env fleet-1000 root --profile full
#   /usr/bin/time -v platform --repo DIR --env fleet-1000 root --profile full --stdout >/dev/null
set -euo pipefail
n=${1:?usage: scripts/fleet-env.sh N [DIR]}
case $n in '' | *[!0-9]*) echo "N must be a number: $n" >&2; exit 2 ;; esac
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${2:-$(mktemp -d)}
mkdir -p "$dir/environments/fleet-$n"
cp -r "$repo/catalog" "$dir/"
[ -d "$repo/templates" ] && cp -r "$repo/templates" "$dir/"
{
  cat <<YAML
cluster: {name: fleet-$n}
repoURL: https://github.com/example-org/ai-platform.git
repoBranch: main
features: {raw-vllm: true, kserve: true, llm-d: false}
models:
YAML
  for ((i = 0; i < n; i++)); do
    if ((i % 2 == 0)); then
      cat <<YAML
  - name: qwen-cpu-$i
    layer: kserve
    source: hf://Qwen/Qwen2.5-0.5B-Instruct
    revision: main
    servedName: qwen2.5-0.5b
    preset: vllm-cpu
    replicas: 1
    resources:
      requests: { cpu: "2", memory: 6Gi }
      limits: { cpu: "2", memory: 8Gi }
    storage: { staged: true, dir: qwen, size: 5Gi, accessMode: ReadWriteOnce }
YAML
    else
      cat <<YAML
  - name: qwen-gpu-$i
    layer: raw-vllm
    source: hf://Qwen/Qwen2.5-7B-Instruct
    revision: main
    servedName: qwen2.5-7b
    preset: vllm-gpu
    gpus: 1
    tensorParallelSize: 1
    maxModelLen: 16384
    resources:
      requests: { cpu: "4", memory: 24Gi }
      limits: { memory: 32Gi }
    storage: { dir: qwen2.5-7b, size: 40Gi }
YAML
    fi
  done
} >"$dir/environments/fleet-$n/config.yaml"
echo "$dir"
