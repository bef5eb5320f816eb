#!/bin/sh
# SPDX-License-Identifier: MIT
# Bootstraps the Autotools build from a git checkout.
set -e
cd "$(dirname "$0")"
mkdir -p m4 build-aux
autoreconf --install --force --warnings=all
