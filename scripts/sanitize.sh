#!/usr/bin/env bash
# rxfeed under AddressSanitizer + UndefinedBehaviorSanitizer (docs/testing.md):
#
#   bash scripts/sanitize.sh              # set up, run the parser tests, fuzz every harness
#   bash scripts/sanitize.sh setup        # only build .venv-asan
#   bash scripts/sanitize.sh test [args]  # only the tests (extra args go to pytest)
#   bash scripts/sanitize.sh fuzz [name]  # only the atheris harnesses (all, or tests/fuzz/fuzz_<name>.py)
#   bash scripts/sanitize.sh repro name file...   # run one harness once on the given inputs
#
# A separate virtualenv (.venv-asan) and build directory (build/asan) keep the
# normal .venv untouched. The native extensions are built with clang,
# -fsanitize=address,undefined and -fsanitize=fuzzer-no-link (coverage for
# atheris); Python runs with atheris's ASan+libFuzzer runtime preloaded and
# PYTHONMALLOC=malloc, so that Python buffers handed to native code are
# ASan-checked heap blocks too.
#
# Environment: RXFEED_FUZZ_SECONDS (per harness; default 10, CI 60),
# RXFEED_FUZZ_SEED (libFuzzer's seed; default 1, fixed; 0: random),
# RXFEED_ASAN_VENV, RXFEED_ASAN_BUILD, RXFEED_FUZZ_OUT (crash reproducers and
# logs; default build/fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
RXFEED_VENV=${RXFEED_ASAN_VENV:-$PWD/.venv-asan}
# shellcheck source=dev.sh
. scripts/dev.sh  # apt_install, setup_base; sets ROOT and VENV
BUILD=${RXFEED_ASAN_BUILD:-$ROOT/build/asan}
FUZZ_OUT=${RXFEED_FUZZ_OUT:-$ROOT/build/fuzz}
FUZZ_SECONDS=${RXFEED_FUZZ_SECONDS:-10}
# test files whose code paths are the native parsers and books (no DPDK, live or latency tests)
SANITIZED_TESTS=(tests/test_fuzz_corpus.py tests/test_igmp.py tests/test_pcap_replay.py tests/test_nasdaq_file.py tests/test_file_mapping.py
                 tests/test_moldudp64.py
                 tests/test_itch_spec.py tests/test_decoder_outputs.py tests/test_itch_wire.py tests/test_python_callbacks.py tests/test_books.py tests/test_books_index.py tests/test_books_outputs.py tests/test_fuzz.py
                 tests/test_books_robustness.py tests/test_itch_golden.py tests/test_sequencer.py tests/test_lines.py
                 tests/test_rerequest_client.py tests/test_recovery.py tests/test_faults.py
                 tests/test_iex_codegen.py tests/test_iex_books.py
                 tests/test_iextp.py tests/test_iex_decoder.py tests/test_event_books.py tests/test_iex_book_events.py
                 tests/test_events.py tests/test_event_ring.py tests/test_book_events.py)
HARNESSES=(pcap stream moldudp64 books iex_books iex igmp)

san_setup() {
    setup_base clang
    apt_install "libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev"  # the sanitizer runtimes
    local pip="$VENV/bin/python -m pip"
    $pip install -q atheris
    # a regular (not editable) install from a build directory of its own
    CC=clang $pip install -q --no-build-isolation \
        -Cbuild-dir="$BUILD" \
        -Csetup-args=-Dbuildtype=debugoptimized \
        -Csetup-args=-Db_sanitize=address,undefined -Csetup-args=-Db_lundef=false \
        "-Csetup-args=-Dc_args=-fsanitize=fuzzer-no-link -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
        -Csetup-args=-Ddpdk=disabled -Csetup-args=-Defvi=disabled "$ROOT[test]"
}

# Run a command under the sanitizers (the runtime must be loaded before Python).
sanitized() {
    local rt
    rt="$("$VENV/bin/python" -c 'import atheris; print(atheris.path())')/asan_with_fuzzer.so"
    LD_PRELOAD="$rt" PYTHONMALLOC=malloc \
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:handle_segv=1:handle_sigbus=1" \
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" "$@"
}

san_test() {
    # C harnesses the tests compile themselves (cffi) get the sanitizers too
    # the recovery tests on a 100k-message day (the property, not the size, is what is checked here)
    CC=clang RXFEED_HARNESS_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
    RXFEED_RECOVERY_MESSAGES=100000 sanitized "$VENV/bin/python" -m pytest -q -p no:cacheprovider -k "not efvi and not dpdk and not generated_files_are_fresh" \
        "${SANITIZED_TESTS[@]}" "$@"
}

# One harness for RXFEED_FUZZ_SECONDS over a copy of its committed corpus.
fuzz_one() {
    local name=$1 out="$FUZZ_OUT/$1"
    rm -rf "$out" && mkdir -p "$out/corpus" "$out/crashes"
    cp "$ROOT/tests/fuzz/corpus/$name/"* "$out/corpus/"
    echo "sanitize.sh: fuzz_$name for ${FUZZ_SECONDS}s"
    # a fixed seed: a run replays the same inputs in the same order (CI cannot
    # fail on an input nobody has seen); RXFEED_FUZZ_SEED=0 explores at random
    # harnesses that compile their C with cffi (tests/c_harness.py) get coverage and the sanitizers too
    if ! CC=clang RXFEED_HARNESS_CFLAGS="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined" \
            sanitized "$VENV/bin/python" -m "tests.fuzz.fuzz_$name" -max_total_time="$FUZZ_SECONDS" \
            -seed="${RXFEED_FUZZ_SEED:-1}" \
            -max_len=16384 -timeout=20 -rss_limit_mb=3072 -print_final_stats=1 \
            -artifact_prefix="$out/crashes/" "$out/corpus" >"$out/log" 2>&1; then
        tail -n 60 "$out/log"
        echo "sanitize.sh: fuzz_$name FAILED; reproducer(s):" $(ls "$out"/crashes/* 2>/dev/null)
        echo "  reproduce with: bash scripts/sanitize.sh repro $name <file>"
        return 1
    fi
    grep -E "^(stat::number_of_executed_units|stat::new_units_added|Done)" "$out/log" || true
}

san_fuzz() {
    local failed=() names=("$@") name
    [ $# -gt 0 ] || names=("${HARNESSES[@]}")
    for name in "${names[@]}"; do
        fuzz_one "$name" || failed+=("$name")
    done
    [ ${#failed[@]} -eq 0 ] || { echo "sanitize.sh: crashing harnesses: ${failed[*]}" >&2; return 1; }
}

san_repro() {
    local name=$1
    shift
    sanitized "$VENV/bin/python" -m "tests.fuzz.fuzz_$name" "$@"
}

cmd=${1:-all}
shift || true
case "$cmd" in
    all)
        status=0
        t0=$SECONDS
        san_setup
        t1=$SECONDS
        san_test || status=1
        t2=$SECONDS
        san_fuzz || status=1
        echo "sanitize.sh: done in $((SECONDS - t0)) s (set-up $((t1 - t0)) s, tests $((t2 - t1)) s," \
             "fuzzing $((SECONDS - t2)) s), status $status"
        exit $status
        ;;
    setup) san_setup ;;
    test) san_test "$@" ;;
    fuzz) san_fuzz "$@" ;;
    repro) san_repro "$@" ;;
    *)
        echo "usage: bash scripts/sanitize.sh [all|setup|test [pytest args]|fuzz [harness...]|repro harness file...]" >&2
        exit 2
        ;;
esac
