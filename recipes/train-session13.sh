#!/bin/sh
# The task recipes of session 13, one core each, 125 minutes: defocus-unet-s10 (the defocus default
# trained longer, as session 11's lost defocus-unet-s9) and defocus-unet-s10-p160 (the same on
# 160-px patches; 192 px is too large for one training photo). Each run writes runs/<name>/, its log recipes/<name>.log and its printed entry
# recipes/<name>.entry.toml (recipes/train-recipes.sh).
# Needs the photos first: python recipes/fetch_debian_photos.py && python recipes/fetch_opencv_photos.py
#   sh recipes/train-session13.sh [name ...]
set -e
run() { sh "$(dirname "$0")/train-recipes.sh" "$@"; }
if [ $# -gt 0 ]; then
    run "$@"
else
    run defocus-unet-s10 &
    run defocus-unet-s10-p160
    wait
fi
