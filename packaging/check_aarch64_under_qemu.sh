#!/usr/bin/env bash
# Run an aarch64 radedge module on an x86_64 Debian 12 machine through qemu-user: Debian's arm64
# Python 3.11 and numpy in a scratch sysroot, the module from an aarch64 wheel for Python 3.11
#   .venv/bin/python packaging/build_wheels.py --only cpu-aarch64 --dist /tmp/a64 \
#       --jetson-python "$(command -v python3.11)"
#   packaging/check_aarch64_under_qemu.sh /tmp/a64/radedge-*-cp311-*aarch64.whl
# It counts a histogram against numpy's bincount, checks that a C++ exception arrives as a
# ValueError, and prints a hash of preprocess's output, which must equal the x86_64 module's
# (the same script run by the x86_64 .venv's Python; -ffp-contract=off keeps them identical).
# Needs root for apt-get (qemu-user, libc6-arm64-cross; the arm64 packages are only downloaded).
set -euo pipefail
wheel="$(realpath "$1")"
repo="$(cd "$(dirname "$0")/.." && pwd)"
root="${RADEDGE_QEMU_ROOT:-/tmp/radedge-aarch64-root}"
command -v qemu-aarch64 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user
if [ ! -x "$root/usr/bin/python3.11" ]; then
  debs="$(mktemp -d)"
  arch='-o APT::Architectures=amd64,arm64'
  apt-get $arch update -qq
  (cd "$debs" && apt-get $arch download libc6:arm64 python3.11-minimal:arm64 libpython3.11-minimal:arm64 \
     libpython3.11-stdlib:arm64 zlib1g:arm64 libexpat1:arm64 libffi8:arm64 python3-numpy:arm64 libblas3:arm64 \
     liblapack3:arm64 libgfortran5:arm64 libgcc-s1:arm64 libstdc++6:arm64)
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$root"; done
  # Debian's alternatives pick the BLAS at install time; nothing is installed here.
  (cd "$root/usr/lib/aarch64-linux-gnu" && ln -sf blas/libblas.so.3 libblas.so.3 && ln -sf lapack/liblapack.so.3 liblapack.so.3)
fi
module="$(mktemp -d)"
(cd "$module" && python3 -m zipfile -e "$wheel" . && cp radedge/_kernels.*.so .)
cat > "$module/check.py" <<'PY'
import hashlib, platform, sys
import numpy as np
import _kernels as k
print(platform.machine(), sys.version.split()[0], k.build_info())
rng = np.random.default_rng(7)
pixels = rng.integers(0, 4096, size=(1201, 997), dtype=np.uint16)
counts = np.zeros(4096, dtype=np.int64)
k.histogram_cpu(pixels, counts, 0, threads=4)
assert (counts == np.bincount(pixels.ravel(), minlength=4096)).all(), "histogram differs from numpy's"
try:
    k.histogram_cpu(pixels, counts, 0, region=(900, 0, 200, 10))
    raise SystemExit("a region outside the image was accepted")
except ValueError as exc:
    print("a region outside the image: ValueError:", str(exc)[:60], "...")
lut = np.arange(4096, dtype=np.float32) / np.float32(4095.0)
for resize in ("letterbox", "stretch"):
    out = np.empty((1, 3, 512, 384), dtype=np.float32)
    k.preprocess_cpu(pixels, lut, 0, out, 0, threads=3, height=512, width=384, channels=3, dtype="float32",
                     resize=resize, pad_value=0.0, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    print("preprocess", resize, "sha256", hashlib.sha256(out.tobytes()).hexdigest()[:16])
PY
qemu-aarch64 -L "$root" -E PYTHONHOME="$root/usr" -E PYTHONPATH="$module:$root/usr/lib/python3/dist-packages" \
  "$root/usr/bin/python3.11" "$module/check.py"
echo "the x86_64 module, for comparison:"
(cd "$module" && "$repo/.venv/bin/python" -c "import radedge._kernels as k, runpy, sys; sys.modules['_kernels'] = k; runpy.run_path('check.py')")
