#!/bin/sh
# The task recipes of session 5: two runs at a time, one core each: dehaze-asmunet-s-dcp2
# (whole-scene views) and defocus-unet-s4 (65 more minutes of the default).
# Each run writes runs/<name>/ and its weights there; its log goes to recipes/<name>.log and
# the printed [[weights]] entry to recipes/<name>.entry.toml.
# Needs the Debian photos first: python recipes/fetch_debian_photos.py
#   sh recipes/train-session5.sh [name ...]
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
    run dehaze-asmunet-s-dcp2 &
    run defocus-unet-s4
    wait
fi
