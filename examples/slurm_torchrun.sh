#!/bin/bash
# Multi-node data-parallel cl-ssl under Slurm: one torchrun per node, one process per GPU.
#
#   sbatch --nodes 2 examples/slurm_torchrun.sh --stream twitch-periods \
#       --manifest frames.csv --strategy naive,lwf-ssl --backbone resnet50 --image-size 224
#
# Every argument is `clssl bench`'s. --batch-size is the global batch (B / (nodes x GPUs)
# images per process); rank 0 (first node, first GPU) evaluates and writes the run.
# Pass --run-name NAME, not --run (torchrun's parser takes --run for its --run-path).
# An interrupted job goes on with: sbatch examples/slurm_torchrun.sh --resume runs/NAME
#SBATCH --job-name=cl-ssl
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=64
#SBATCH --time=24:00:00
set -euo pipefail

GPUS_PER_NODE=${SLURM_GPUS_ON_NODE:-8}
HEAD_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
PORT=${PORT:-29500}
# Torch threads per process: the node's cores shared by its processes.
export OMP_NUM_THREADS=$(( ${SLURM_CPUS_PER_TASK:-64} / GPUS_PER_NODE ))

# srun starts one torchrun per node; torchrun's c10d rendezvous on the head node joins them.
srun torchrun \
    --nnodes "$SLURM_JOB_NUM_NODES" \
    --nproc_per_node "$GPUS_PER_NODE" \
    --rdzv_id "$SLURM_JOB_ID" \
    --rdzv_backend c10d \
    --rdzv_endpoint "$HEAD_NODE:$PORT" \
    -m cl_ssl bench "$@"
