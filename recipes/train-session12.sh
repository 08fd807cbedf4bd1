#!/bin/sh
# The task recipes of session 12, one core each: defocus-wienerunet-s (the defocus default's U-Net
# given a Wiener bank of its input, restorecli/models/wienerunet.py; 125 minutes) and
# defocus-wienerunet-s-mix (Gaussian PSFs in the bank too, and per-pixel gates taking the
# deconvolutions into the output; 92 minutes, started 33 later). defocus-wienerunet-s-dg (the
# bank with Gaussians, no gates) ran 22 minutes (1,040 steps) on the second core first and was stopped for -mix.
# Each run writes runs/<name>/, its log recipes/<name>.log and its printed entry
# recipes/<name>.entry.toml (recipes/train-recipes.sh).
# Needs the photos first: python recipes/fetch_debian_photos.py && python recipes/fetch_opencv_photos.py
#   sh recipes/train-session12.sh [name ...]
set -e
run() { sh "$(dirname "$0")/train-recipes.sh" "$@"; }
if [ $# -gt 0 ]; then
    run "$@"
else
    run defocus-wienerunet-s &
    run defocus-wienerunet-s-mix
    wait
fi
