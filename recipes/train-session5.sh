#!/bin/sh
# The task recipes of session 5, one core each. As run: dehaze-asmunet-s-dcp2 (stopped by hand
# after 35 min: +0.4 / +0.8 dB on the validation photo, less than dcpres gained from the
# overview alone) and defocus-unet-s4 (65 min) started together; dehaze-asmunet-s-dcpres3 took
# dcp2's core, and dehaze-asmunet-s-dcpres4 followed defocus-unet-s4 on the other.
# Each run writes runs/<name>/ and its weights there; its log goes to recipes/<name>.log and
# the printed [[weights]] entry to recipes/<name>.entry.toml.
# Needs the Debian photos first: python recipes/fetch_debian_photos.py
#   sh recipes/train-session5.sh [name ...]
set -e
run() { sh "$(dirname "$0")/train-recipes.sh" "$@"; }
if [ $# -gt 0 ]; then
    run "$@"
else
    run dehaze-asmunet-s-dcpres3 &
    run defocus-unet-s4 dehaze-asmunet-s-dcpres4
    wait
fi
