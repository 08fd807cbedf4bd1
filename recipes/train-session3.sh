#!/bin/sh
# The task recipes of session 3, one after another on one core (the other core trained the
# denoiser's stage 3). Each run writes runs/<name>/ and its weights there; its log goes to
# recipes/<name>.log and the printed [[weights]] entry to recipes/<name>.entry.toml.
# Needs the Debian photos first: python recipes/fetch_debian_photos.py
#   sh recipes/train-session3.sh [name ...]
set -e
exec sh "$(dirname "$0")/train-recipes.sh" ${*:-derain-unet-s2 dehaze-asmunet-s desnow-unet-s2 dehaze-asmunet-s-dcp deblur-unet-s2 derain-unet-s3 defocus-unet-s2}
