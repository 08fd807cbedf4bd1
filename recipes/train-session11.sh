#!/bin/sh
# The task recipes of session 11, one core each, 110 minutes: deblur-unet-s5 (the deblur default
# continued at lr 1e-4) and defocus-unet-s9 (the defocus default, continued as trained).
# Each run writes runs/<name>/, its log recipes/<name>.log and its printed entry
# recipes/<name>.entry.toml (recipes/train-recipes.sh).
# Needs the photos first: python recipes/fetch_debian_photos.py && python recipes/fetch_opencv_photos.py
#   sh recipes/train-session11.sh [name ...]
set -e
run() { sh "$(dirname "$0")/train-recipes.sh" "$@"; }
if [ $# -gt 0 ]; then
    run "$@"
else
    run deblur-unet-s5 &
    run defocus-unet-s9
    wait
fi
