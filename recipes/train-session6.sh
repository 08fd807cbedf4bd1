#!/bin/sh
# The task recipes of session 6, one core each. As run: derain-unet-s5 (120 min) and
# dehaze-asmunet-s-dcpres5 started together; dehaze-asmunet-s-dcpres5 was stopped by hand after
# 85 min (its held-out scores were falling: 100.3 dB summed over the four rows at 30 min,
# 98.6 at 80, against the shipped dcpres's 101.3), and defocus-unet-s5 (35 min) took its core.
# Each run writes runs/<name>/, its log recipes/<name>.log and its printed entry
# recipes/<name>.entry.toml (recipes/train-recipes.sh).
# Needs the Debian photos first: python recipes/fetch_debian_photos.py
#   sh recipes/train-session6.sh [name ...]
set -e
run() { sh "$(dirname "$0")/train-recipes.sh" "$@"; }
if [ $# -gt 0 ]; then
    run "$@"
else
    run derain-unet-s5 &
    run dehaze-asmunet-s-dcpres5 defocus-unet-s5
    wait
fi
