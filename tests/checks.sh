# Sourced by the test scripts: `check NAME COMMAND...` runs COMMAND and
# prints "ok: NAME" or "FAILED: NAME", counting both in $pass and $fail.
pass=0 fail=0
check() {
  if "${@:2}"; then pass=$((pass + 1)); echo "ok: $1"; else fail=$((fail + 1)); echo "FAILED: $1"; fi
}
