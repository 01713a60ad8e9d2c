#!/bin/sh
# Builds the libFuzzer harnesses (clang, ASan + UBSan) in build-fuzz/ and runs each for SECONDS
# on a seed corpus made from tests/golden/io. Exits non-zero if any fuzzer reports a finding
# (crash, sanitizer error, leak, timeout or out-of-memory); reproducers land in
# build-fuzz/artifacts/.
#   tools/fuzz.sh [SECONDS [TARGET...]]     (default 60 s, all six targets)
set -eu
SECS=${1:-60}
[ $# -gt 0 ] && shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD="$ROOT/build-fuzz"
TARGETS="${*:-fuzz_pt fuzz_pickle fuzz_zip fuzz_safetensors fuzz_npy fuzz_image}"

if [ ! -f "$BUILD/build.ninja" ]; then
  # Only the fuzz targets are built below; the library and tests are not configured for clang.
  CC=clang CXX=clang++ meson setup "$BUILD" "$ROOT" -Dcuda=disabled -Dfuzz=true -Dbenchmarks=disabled -Dtests=false
fi
ninja -C "$BUILD" -j2 $(for t in $TARGETS; do printf 'tests/fuzz/%s ' "$t"; done)

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
GOLDEN="$ROOT/tests/golden/io"
FUZZ="$ROOT/tests/fuzz"
for t in fuzz_pt fuzz_pickle fuzz_zip fuzz_safetensors fuzz_npy fuzz_image; do
  mkdir -p "$WORK/$t/seeds" "$WORK/$t/corpus"
done
seed() {  # seed TARGET FILE...
  t=$1; shift
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$WORK/$t/seeds/"; done
  return 0
}
seed fuzz_pt "$GOLDEN"/*.pt "$GOLDEN"/bare.pkl
seed fuzz_zip "$GOLDEN"/*.pt "$GOLDEN"/*.npz
seed fuzz_safetensors "$GOLDEN"/*.safetensors
seed fuzz_npy "$GOLDEN"/*.npy "$GOLDEN"/*.npz
for f in "$GOLDEN"/*.png "$GOLDEN"/*.jpg "$GOLDEN"/*.bmp; do
  # small images only: large ones slow every iteration down
  [ "$(wc -c < "$f")" -le 20000 ] && seed fuzz_image "$f"
done
# Past findings (tests/fuzz/regressions/<target>_*) stay in the seeds.
for f in "$FUZZ"/regressions/*; do
  [ -f "$f" ] || continue
  case $(basename "$f") in
    image_*) seed fuzz_image "$f" ;; pt_*) seed fuzz_pt "$f" ;; pickle_*) seed fuzz_pickle "$f" ;;
    zip_*) seed fuzz_zip "$f" ;; safetensors_*) seed fuzz_safetensors "$f" ;; npy_*) seed fuzz_npy "$f" ;;
  esac
done
# The pickle VM gets the data.pkl records of the zip checkpoints and the legacy streams.
python3 - "$GOLDEN" "$WORK/fuzz_pickle/seeds" <<'PY'
import os, sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
for n in sorted(os.listdir(src)):
    p = os.path.join(src, n)
    if n.endswith(".pt") and zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as z:
            for e in z.namelist():
                if e.endswith("/data.pkl"):
                    open(os.path.join(dst, n + ".data.pkl"), "wb").write(z.read(e))
    elif n.endswith(".pt"):
        open(os.path.join(dst, n + ".legacy.pkl"), "wb").write(open(p, "rb").read()[15:])
PY
cat "$FUZZ/pickle.dict" "$FUZZ/zip.dict" > "$WORK/pt.dict"

mkdir -p "$BUILD/artifacts"
failed=0
summary=""
for t in $TARGETS; do
  case $t in
    fuzz_pt) dict="$WORK/pt.dict" ;;
    fuzz_pickle) dict="$FUZZ/pickle.dict" ;;
    fuzz_zip) dict="$FUZZ/zip.dict" ;;
    fuzz_safetensors) dict="$FUZZ/safetensors.dict" ;;
    fuzz_npy) dict="$FUZZ/npy.dict" ;;
    fuzz_image) dict="$FUZZ/image.dict" ;;
  esac
  log="$WORK/$t.log"
  echo "== $t: ${SECS}s on $(ls "$WORK/$t/seeds" | wc -l) seeds"
  rc=0
  "$BUILD/tests/fuzz/$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -dict="$dict" -artifact_prefix="$BUILD/artifacts/$t-" -print_final_stats=1 \
      "$WORK/$t/corpus" "$WORK/$t/seeds" > "$log" 2>&1 || rc=$?
  done_line=$(grep -E '^Done [0-9]+ runs' "$log" | tail -1 || true)
  if [ "$rc" -ne 0 ]; then
    failed=1
    tail -40 "$log"
    summary="$summary$t: FINDING (exit $rc), see $BUILD/artifacts/\n"
  else
    summary="$summary$t: ${done_line:-no summary}, no findings\n"
  fi
done
printf '%b' "$summary"
exit $failed
