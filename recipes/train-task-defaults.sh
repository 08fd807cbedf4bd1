#!/bin/sh
# Trains the five task defaults of issue 8 one after another on one core (session 2 of
# this project: the other core trained the denoiser). Each run writes runs/<task>-unet-s/
# (checkpoints, metrics.jsonl) and the weights; its log goes to recipes/<task>-unet-s.log and
# the printed [[weights]] entry to recipes/<task>-unet-s.entry.toml.
#   sh recipes/train-task-defaults.sh [task ...]        (default: all five)
set -e
cd "$(dirname "$0")/.."
for task in ${*:-derain deblur defocus dehaze desnow}; do
    restore train "recipes/$task-unet-s.toml" --name "$task-unet-s" \
        --embedded "weights/$task-unet-s.safetensors" \
        -o "restorecli/weights/$task-unet-s.safetensors" \
        > "recipes/$task-unet-s.entry.toml" 2> "recipes/$task-unet-s.log"
done
