#!/usr/bin/env bash
# Opt-in check that the ef_vi backend builds against real Onload (both
# receive loops: EF10 in efvi_rx.c and efct/X3 in efct_rx.c, one extension).
# CI cannot run it: it needs an Onload source tree, which CI has no access to.
#
#   bash scripts/onload-check.sh ONLOAD_SRC_TREE [BUILD_DIR]
#
# ONLOAD_SRC_TREE is a checkout of Xilinx-CNS/onload OUTSIDE this repository
# (never commit Onload files). The script builds Onload's user-space libciul
# there if it is not built yet (mmakebuildtree --user; make lib/ciul), then
# configures rxfeed with -Donload_prefix=ONLOAD_SRC_TREE -Defvi=enabled in
# BUILD_DIR (default build/onload-check), compiles and links the _efvi
# extension, and reports: the compiler's warnings for the backend's C files,
# that the ef_vi/efct symbols resolve inside libciul, and what loading the
# extension and opening an interface says on a machine without the driver.
set -euo pipefail
usage="usage: bash scripts/onload-check.sh ONLOAD_SRC_TREE [BUILD_DIR]"
ONLOAD=$(cd "${1:?$usage}" && pwd)
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${2:-$ROOT/build/onload-check}
VENV=${RXFEED_VENV:-$ROOT/.venv}
export PATH="$VENV/bin:$PATH"

case "$ONLOAD/" in
    "$ROOT"/*) echo "onload-check.sh: keep the Onload tree outside the repository ($ONLOAD)" >&2; exit 2 ;;
esac
if [ ! -f "$ONLOAD/src/include/etherfabric/efct_vi.h" ]; then
    echo "onload-check.sh: $ONLOAD is not an Onload source tree (no src/include/etherfabric/efct_vi.h)" >&2
    exit 2
fi

build_libciul() {
    local lib="$ONLOAD/build/gnu_x86_64/lib/ciul/libciul1.a"
    [ -f "$lib" ] && return 0
    echo "onload-check.sh: building Onload's user-space libciul in $ONLOAD"
    (cd "$ONLOAD" && PATH=$PWD/scripts:$PATH mmakebuildtree --user &&
        PATH=$PWD/scripts:$PATH make -C build/gnu_x86_64/lib/ciul NDEBUG=1 MMAKE_LIBERAL=1)
}

build_extension() {
    rm -rf "$BUILD"
    meson setup "$BUILD" -Donload_prefix="$ONLOAD" -Defvi=enabled -Defvi_standin=false -Ddpdk=disabled \
        -Dwarning_level=2 >"$BUILD.setup.log" 2>&1 || { cat "$BUILD.setup.log"; exit 1; }
    grep -E "efvi backend|ciul" "$BUILD.setup.log" || true
    local suffix
    suffix=$(python -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
    SO="$BUILD/_efvi$suffix"
    ninja -C "$BUILD" -v "_efvi$suffix" >"$BUILD.ninja.log" 2>&1 || { cat "$BUILD.ninja.log"; exit 1; }
}

report_warnings() {
    local w
    w=$(grep -E "(efvi_rx|efct_rx)\.[ch]:[0-9]+:[0-9]+: warning" "$BUILD.ninja.log" || true)
    if [ -n "$w" ]; then echo "onload-check.sh: warnings in the backend's C files:"; echo "$w"
    else echo "onload-check.sh: efvi_rx.c and efct_rx.c compiled without warnings (-Wall -Wextra)"; fi
}

# Every ef_vi / efct function the backend calls is defined inside the extension (libciul linked statically).
check_symbols() {
    local missing
    missing=$(nm -u "$SO" | grep -E " (ef_|efct_)" || true)
    if [ -n "$missing" ]; then echo "onload-check.sh: unresolved ef_vi symbols:"; echo "$missing"; exit 1; fi
    local defined
    defined=$(nm --defined-only "$SO")
    for sym in ef_driver_open ef_vi_alloc_from_pd ef_vi_filter_add ef_memreg_alloc \
               efct_vi_rxpkt_get efct_vi_rxpkt_release efct_vi_rx_future_peek efct_vi_rx_future_poll; do
        grep -qE " T $sym\$" <<<"$defined" || { echo "onload-check.sh: $sym not linked in" >&2; exit 1; }
    done
    echo "onload-check.sh: linked $(basename "$SO"); the EF10 and efct entry points resolve inside libciul"
}

# Loading the extension works; opening needs the driver (absent here: a clear error, not a crash).
try_open() {
    python - "$SO" <<'EOF'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("rxfeed.backends.efvi._efvi", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
print("onload-check.sh: BUILT_AGAINST =", mod.BUILT_AGAINST)
for datapath in ("auto", "efct"):
    try:
        mod.EfviReceiver("eth0", datapath=datapath, future_peek=datapath == "efct")
        print(f"onload-check.sh: datapath={datapath}: opened (an Onload driver and NIC are present)")
    except RuntimeError as exc:
        print(f"onload-check.sh: datapath={datapath}: {exc}")
EOF
}

build_libciul
build_extension
report_warnings
check_symbols
try_open
