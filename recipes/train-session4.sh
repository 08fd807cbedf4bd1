#!/bin/sh
# The task recipes of session 4: two runs at a time, one core each (deblur-unet-s3 then
# derain-unet-s4 on one core; dehaze-asmunet-s-dcpres, then defocus-unet-s3, on the other).
# Each run writes runs/<name>/ and its weights there; its log goes to recipes/<name>.log and
# the printed [[weights]] entry to recipes/<name>.entry.toml.
# Needs the Debian photos first: python recipes/fetch_debian_photos.py
#   sh recipes/train-session4.sh [name ...]
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
    run deblur-unet-s3 derain-unet-s4 &
    run dehaze-asmunet-s-dcpres defocus-unet-s3
    wait
fi
