#!/bin/sh
# The task recipes of session 7, one core each: derain-unet-s6 and dehaze-asmunet-s-dcpres6, as
# run (started together, 120 minutes each), both continuing their predecessors on twice the
# photos (68: recipes/fetch_debian_photos.py
# now takes 13 Ubuntu community photographs too, recipes/fetch_opencv_photos.py 20 of OpenCV's).
# Each run writes runs/<name>/, its log recipes/<name>.log and its printed entry
# recipes/<name>.entry.toml (recipes/train-recipes.sh).
# Needs the photos first: python recipes/fetch_debian_photos.py && python recipes/fetch_opencv_photos.py
#   sh recipes/train-session7.sh [name ...]
set -e
run() { sh "$(dirname "$0")/train-recipes.sh" "$@"; }
if [ $# -gt 0 ]; then
    run "$@"
else
    run derain-unet-s6 &
    run dehaze-asmunet-s-dcpres6
    wait
fi
