#!/bin/sh
# The NATS load test of issue #15 at full size: 2 hosts x 5 components x N
# messages (default N = 100,000 per component) over JetStream, 0 lost,
# order per topic per subscriber kept (runtime/tests/jetstream.rs,
# `load_two_hosts_five_components`; CI runs it with N = 300). Needs
# `nats-server` (Debian: `apt-get install nats-server`). Prints the figure.
#
# Usage: scripts/nats-load.sh [N]
set -eu
cd "$(dirname "$0")/.."
AIRSSYS_NATS_LOAD_N="${1:-100000}" exec cargo test -p airssys-runtime --features nats \
    --test jetstream load_two_hosts_five_components -- --exact --nocapture
