#!/bin/sh
# The task recipes of session 8, one core each, 120 minutes each: defocus-unet-s6 (the defocus
# default on the 68 photos) and dehaze-asmunet-s-dcpres7 (the dehaze default taught its
# transmission and light directly: [optim] estimate_weight).
# Each run writes runs/<name>/, its log recipes/<name>.log and its printed entry
# recipes/<name>.entry.toml (recipes/train-recipes.sh).
# Needs the photos first: python recipes/fetch_debian_photos.py && python recipes/fetch_opencv_photos.py
#   sh recipes/train-session8.sh [name ...]
set -e
run() { sh "$(dirname "$0")/train-recipes.sh" "$@"; }
if [ $# -gt 0 ]; then
    run "$@"
else
    run defocus-unet-s6 &
    run dehaze-asmunet-s-dcpres7
    wait
fi
