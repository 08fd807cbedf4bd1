#!/bin/sh
# The task recipes of session 14, one core each, 125 minutes: derain-unet-s7-soft (the derain
# default with a share of soft rainy photos) and dehaze-asmunet-s-dcpres10 (the dehaze default
# with haze-free samples). deblur-unet-s6-p160 (the deblur default on 160-px patches) was started
# and stopped at step 400 (8 minutes) for dcpres10; `restore train recipes/deblur-unet-s6-p160.toml
# --resume` continues it. Each run writes runs/<name>/, its log recipes/<name>.log and its printed
# entry recipes/<name>.entry.toml (recipes/train-recipes.sh).
# Needs the photos first: python recipes/fetch_debian_photos.py && python recipes/fetch_opencv_photos.py
#   sh recipes/train-session14.sh [name ...]
set -e
run() { sh "$(dirname "$0")/train-recipes.sh" "$@"; }
if [ $# -gt 0 ]; then
    run "$@"
else
    run derain-unet-s7-soft &
    run dehaze-asmunet-s-dcpres10
    wait
fi
