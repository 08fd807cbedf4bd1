#!/bin/sh
# The task recipes of session 9, one core each: defocus-unet-s7 (the defocus default on 128-px
# patches, 120 minutes) and dehaze-asmunet-s-dcpres9 (dcpres8's recipe on asmunet-s-dcpres-lh,
# the light from an image-wide head, 120 minutes).
# Each run writes runs/<name>/, its log recipes/<name>.log and its printed entry
# recipes/<name>.entry.toml (recipes/train-recipes.sh).
# Needs the photos first: python recipes/fetch_debian_photos.py && python recipes/fetch_opencv_photos.py
#   sh recipes/train-session9.sh [name ...]
set -e
run() { sh "$(dirname "$0")/train-recipes.sh" "$@"; }
if [ $# -gt 0 ]; then
    run "$@"
else
    run defocus-unet-s7 &
    run dehaze-asmunet-s-dcpres9
    wait
fi
