# Sourced by the scripts: one target dir outside the clone (reused across runs and clones) and
# Debian's mold linker when present. Every script sets the same flags so builds are shared.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/switchboard-target}"
if command -v mold >/dev/null 2>&1; then
  export RUSTFLAGS="${RUSTFLAGS:--C link-arg=-fuse-ld=mold}"
fi
