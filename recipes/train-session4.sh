#!/bin/sh
# The task recipes of session 4: two runs at a time, one core each. As run: deblur-unet-s3
# (stopped by hand after 22 min, no held-out gain), derain-unet-s4, desnow-unet-s3 on one core;
# dehaze-asmunet-s-dcpres, dehaze-asmunet-s-dcpres2 on the other; defocus-unet-s3 on the first.
# Each run writes runs/<name>/ and its weights there; its log goes to recipes/<name>.log and
# the printed [[weights]] entry to recipes/<name>.entry.toml.
# Needs the Debian photos first: python recipes/fetch_debian_photos.py
#   sh recipes/train-session4.sh [name ...]
set -e
run() { sh "$(dirname "$0")/train-recipes.sh" "$@"; }
if [ $# -gt 0 ]; then
    run "$@"
else
    run derain-unet-s4 desnow-unet-s3 defocus-unet-s3 &
    run dehaze-asmunet-s-dcpres dehaze-asmunet-s-dcpres2
    wait
fi
