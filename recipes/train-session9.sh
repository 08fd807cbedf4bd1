#!/bin/sh
# The task recipes of session 9, one core each: defocus-unet-s7 (the defocus default on 128-px
# patches, 120 minutes); on the other dehaze-asmunet-s-dcpres9 (dcpres8's recipe on
# asmunet-s-dcpres-lh, the light from an image-wide head), stopped after 56 minutes (kill -TERM)
# when held-out light haze had fallen 2 dB (chelsea 4 dB, as in dcpres8), then deblur-unet-s4
# (the deblur default on the 68 photos, 70 minutes).
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
    run dehaze-asmunet-s-dcpres9 deblur-unet-s4
    wait
fi
