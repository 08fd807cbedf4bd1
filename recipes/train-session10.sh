#!/bin/sh
# The task recipes of session 10, one core each, 120 minutes: desnow-unet-s4 (the desnow default
# on layers of mixed flake shapes, the 68 photos, 128-px patches) and defocus-unet-s8 (the defocus
# default, continued as trained).
# Each run writes runs/<name>/, its log recipes/<name>.log and its printed entry
# recipes/<name>.entry.toml (recipes/train-recipes.sh).
# Needs the photos first: python recipes/fetch_debian_photos.py && python recipes/fetch_opencv_photos.py
#   sh recipes/train-session10.sh [name ...]
set -e
run() { sh "$(dirname "$0")/train-recipes.sh" "$@"; }
if [ $# -gt 0 ]; then
    run "$@"
else
    run desnow-unet-s4 &
    run defocus-unet-s8
    wait
fi
