#!/bin/sh
# The task recipes of session 8, one core each: defocus-unet-s6 (the defocus default on the 68
# photos, 120 minutes) on one core; on the other dehaze-asmunet-s-dcpres7 (the dehaze default
# taught its transmission and light directly: [optim] estimate_weight), stopped after 38 minutes
# (kill -TERM) when its light on the dusk photo had not moved, then dehaze-asmunet-s-dcpres8
# (the same with darkened scenes: [data] exposure_prob, 78 minutes).
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
    run dehaze-asmunet-s-dcpres8
    wait
fi
