#!/bin/sh
# Trains the named recipes one after another: recipes/<name>.toml -> runs/<name>/ (checkpoints,
# metrics.jsonl, the weights), the log in recipes/<name>.log and the printed [[weights]] entry
# in recipes/<name>.entry.toml. The session scripts (train-session*.sh) call it, one chain per core.
#   sh recipes/train-recipes.sh NAME [NAME ...]
set -e
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: sh recipes/train-recipes.sh NAME [NAME ...]" >&2; exit 2; }
for name in "$@"; do
    restore train "recipes/$name.toml" --name "$name" --embedded "weights/$name.safetensors" \
        > "recipes/$name.entry.toml" 2> "recipes/$name.log"
done
