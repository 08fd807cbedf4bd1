#!/bin/sh
# The task recipes of session 6, one core each, started together.
# Each run writes runs/<name>/ and its weights there; its log goes to recipes/<name>.log and
# the printed [[weights]] entry to recipes/<name>.entry.toml.
# Needs the Debian photos first: python recipes/fetch_debian_photos.py
#   sh recipes/train-session6.sh [name ...]
set -e
cd "$(dirname "$0")/.."
run() {
    for name in "$@"; do
        restore train "recipes/$name.toml" --name "$name" --embedded "weights/$name.safetensors" \
            > "recipes/$name.entry.toml" 2> "recipes/$name.log"
    done
}
if [ $# -gt 0 ]; then
    run "$@"
else
    run derain-unet-s5 &
    run dehaze-asmunet-s-dcpres5
    wait
fi
