#!/usr/bin/env bash
# The program on bad input: exit status 2, exactly one line on stderr naming
# what was wrong, nothing already written touched; under mpirun every rank
# ends (no hang) and only one message is printed.
# Usage: cli_errors.sh path/to/ranksweep
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

# expect STATUS PATTERN CMD...: status must match, stderr must be one line containing PATTERN
expect() {
  local want=$1 pattern=$2
  shift 2
  local out rc lines
  out=$(timeout 120 "$@" 2>&1 >/dev/null)
  rc=$?
  lines=$(printf '%s\n' "$out" | grep -c 'ranksweep: error' || true)
  if [[ $rc -eq $want && ( -z "$pattern" || ( "$out" == *"$pattern"* && $lines -eq 1 ) ) ]]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAILED: $* -> status $rc (want $want), stderr:"
    printf '  %s\n' "$out"
  fi
}

printf '\x01\x02\x08\x03junk' > "$tmp/bad-magic"
printf '[train]\nepocs = 3\n' > "$tmp/typo.toml"
printf '[train]\nlr = -1\n' > "$tmp/range.toml"
printf '[train\n' > "$tmp/syntax.toml"
small="--set data.validation=59000 --set train.epochs=1 --set model.hidden=[8]"

expect 0 "" "$bin" --help
expect 0 "" "$bin" train --help
expect 0 "" "$bin" info
# The main thread flushes denormals from its first instructions; the threads it starts inherit it.
if "$bin" info | grep -q "denormals flushed to zero (FTZ, DAZ)"; then pass=$((pass + 1)); else
  fail=$((fail + 1)) && echo "FAILED: ranksweep info does not say denormals are flushed to zero"
fi
expect 0 "" "$bin"  # no command: the help
[[ $("$bin" 2>/dev/null) == *"Subcommands:"*"export"* ]] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAILED: no help without arguments"; }
expect 2 "command line" "$bin" train --bogus-flag
expect 2 "/nope.toml: config file not found" "$bin" train /nope.toml
expect 2 "typo.toml:2: train.epocs: unknown key" "$bin" train "$tmp/typo.toml" --out "$tmp/r"
expect 2 "train.lr: -1 is out of range" "$bin" train "$tmp/range.toml" --out "$tmp/r"
expect 2 "syntax.toml:1:" "$bin" train "$tmp/syntax.toml" --out "$tmp/r"
expect 2 "--set train.epochs: expected key=value" "$bin" train "$tmp/range.toml" --set train.epochs
printf '' > "$tmp/empty.toml"
expect 2 "bad-magic: bad magic number" "$bin" train "$tmp/empty.toml" --set "data.train_images=\"$tmp/bad-magic\"" --out "$tmp/r"
# Malformed data files: each one line naming the file and the problem.
idx() {  # idx FILE TYPE DIMS... : IDX header only; payload appended by the caller
  local f=$1 t=$2; shift 2
  printf "\\x00\\x00\\x$t\\x$(printf %02x $#)" > "$f"
  for d in "$@"; do printf "\\x$(printf %02x $((d >> 24 & 255)))\\x$(printf %02x $((d >> 16 & 255)))\\x$(printf %02x $((d >> 8 & 255)))\\x$(printf %02x $((d & 255)))" >> "$f"; done
}
idx "$tmp/trunc" 08 10 28 28; head -c 100 /dev/zero >> "$tmp/trunc"
idx "$tmp/dtype" 0d 2 2 2; head -c 32 /dev/zero >> "$tmp/dtype"
idx "$tmp/trail" 08 2 2 2; head -c 9 /dev/zero >> "$tmp/trail"
cp "$tmp/trail" "$tmp/plain.gz"
: > "$tmp/empty"
for c in "trunc:truncated" "dtype:IDX element type 0x0d is not unsigned byte" "trail:1 trailing bytes" \
         "plain.gz:named .gz but not gzip" "empty:empty file"; do
  f=${c%%:*} msg=${c#*:}
  expect 2 "$tmp/$f: $msg" "$bin" train "$tmp/empty.toml" --set "data.train_images=\"$tmp/$f\"" --out "$tmp/r"
done
idx "$tmp/im" 08 3 2 2; head -c 12 /dev/zero >> "$tmp/im"
idx "$tmp/lb" 08 2; printf '\x00\x01' >> "$tmp/lb"
expect 2 "$tmp/lb: 2 labels for 3 images" "$bin" train "$tmp/empty.toml" --set "data.train_images=\"$tmp/im\"" \
  --set "data.train_labels=\"$tmp/lb\"" --out "$tmp/r"
idx "$tmp/lb" 08 3; printf '\x00\x01\x0c' >> "$tmp/lb"
expect 2 "$tmp/lb: label 12 of sample 2" "$bin" train "$tmp/empty.toml" --set "data.train_images=\"$tmp/im\"" \
  --set "data.train_labels=\"$tmp/lb\"" --out "$tmp/r"
expect 2 "device cuda" "$bin" train "$tmp/empty.toml" --device cuda --out "$tmp/r"
expect 2 "$tmp/r/run.h5: file not found" "$bin" train "$tmp/empty.toml" --resume "$tmp/r"

# A finished run is never overwritten: the second attempt fails and leaves it as it was.
if "$bin" train "$tmp/empty.toml" $small --out "$tmp/done" >/dev/null 2>&1; then
  sum=$(md5sum < "$tmp/done/run.h5")
  expect 2 "run.h5: exists" "$bin" train "$tmp/empty.toml" $small --out "$tmp/done"
  [[ $(md5sum < "$tmp/done/run.h5") == "$sum" ]] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAILED: run.h5 changed"; }
else
  fail=$((fail + 1)); echo "FAILED: small training run"
fi

# A warm start from a study of other keys (or no study): exit 2 naming the key (the file), before any training.
printf '[sweep]\nmethod = "grid"\n[sweep.space]\n"train.lr" = [0.05]\n' > "$tmp/old.toml"
if "$bin" sweep "$tmp/old.toml" $small --out "$tmp/old" >/dev/null 2>&1; then
  printf '[sweep]\nmethod = "tpe"\nwarm_start = "%s"\n[sweep.space]\n"train.momentum" = [0.5, 0.9]\n' \
    "$tmp/old/study.h5" > "$tmp/warm.toml"
  expect 2 "study.h5: warm start: the study searched \"train.lr\", which is not a key of this sweep.space" \
    mpirun --oversubscribe -np 2 "$bin" sweep "$tmp/warm.toml" $small --out "$tmp/warm"
  [[ ! -e $tmp/warm/study.h5 ]] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAILED: warm/study.h5 written"; }
  expect 2 "nope.h5" "$bin" sweep "$tmp/warm.toml" $small --set "sweep.warm_start=\"$tmp/nope.h5\"" --out "$tmp/warm"
  # old trials outside the new space: the sweep runs and says how many the model counts unknown there
  printf '[sweep]\nmethod = "tpe"\ntrials = 1\nwarm_start = "%s"\n[sweep.space]\n"train.lr" = [0.1, 0.2]\n' \
    "$tmp/old/study.h5" > "$tmp/warm2.toml"
  out=$("$bin" sweep "$tmp/warm2.toml" $small --out "$tmp/warm2" 2>&1)
  [[ $out == *"warm start: 2 of the 2 trials of $tmp/old/study.h5 lie outside this sweep.space"* ]] &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAILED: no note on warm-start trials outside the space"; }
else
  fail=$((fail + 1)); echo "FAILED: small sweep"
fi

# infer on bad input, under mpirun -np 3: status 2 on every rank, one message,
# and no output file (nor a complete-looking one) left behind.
model=$tmp/done/run.h5
fm=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
if [[ -f $model ]] && command -v mpirun >/dev/null; then
  mpi3=(mpirun --oversubscribe -np 3 "$bin")
  no_output() {  # no_output FILE: neither FILE nor a temporary of it (FILE.*) exists
    if compgen -G "$1*" >/dev/null; then fail=$((fail + 1)); echo "FAILED: $1 left behind: $(ls "$1"*)"; else pass=$((pass + 1)); fi
  }
  echo "not hdf5" > "$tmp/text.h5"
  expect 2 "text.h5: not an HDF5 file" "${mpi3[@]}" infer --model "$tmp/text.h5" --data "$fm" --out "$tmp/p1.h5"
  no_output "$tmp/p1.h5"
  head -c 20000 "$model" > "$tmp/trunc.h5"
  expect 2 "trunc.h5" "${mpi3[@]}" infer --model "$tmp/trunc.h5" --data "$fm" --out "$tmp/p2.h5"
  no_output "$tmp/p2.h5"
  expect 2 "images are 1x2x2 (CxHxW), the model takes 1x28x28" "${mpi3[@]}" infer --model "$model" --data "$tmp/im" \
    --out "$tmp/p3.h5"
  no_output "$tmp/p3.h5"
  mkdir -p "$tmp/photos" && printf '\x89PNG broken' > "$tmp/photos/x.png"
  expect 2 "x.png: cannot decode image" "${mpi3[@]}" infer --model "$model" --data "$tmp/photos" --out "$tmp/p4.h5"
  no_output "$tmp/p4.h5"
  expect 2 "labels need 1 dimension" "${mpi3[@]}" infer --model "$model" --data "$fm" --labels "$fm" --out "$tmp/p5.h5"
  no_output "$tmp/p5.h5"
  expect 2 "command line" "$bin" infer --model "$model" --data "$fm" --format png
  # A finished prediction file is never overwritten; a predictions file is not a model.
  if "${mpi3[@]}" infer --model "$model" --data "$fm" --out "$tmp/done.h5" >/dev/null 2>&1; then
    sum=$(md5sum < "$tmp/done.h5")
    expect 2 "done.h5: already exists" "${mpi3[@]}" infer --model "$model" --data "$fm" --out "$tmp/done.h5"
    [[ $(md5sum < "$tmp/done.h5") == "$sum" ]] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAILED: done.h5 changed"; }
    expect 2 "done.h5: not a ranksweep run or study file" "$bin" infer --model "$tmp/done.h5" --data "$fm" \
      --out "$tmp/p6.h5"
    # --overwrite never writes over the run's own inputs
    expect 2 "is the --model" "$bin" infer --model "$model" --data "$fm" --out "$model" --overwrite
    expect 2 "is the --data" "$bin" infer --model "$model" --data "$tmp/done.h5" --format hdf5 --out "$tmp/done.h5" --overwrite
    # An output in use by another run (its lock held): exit 2 naming the holder, the output untouched
    flock -n "$tmp/done.h5.lock" sleep 20 & holder=$!
    sleep 0.5
    expect 2 "done.h5: in use by another ranksweep run" "${mpi3[@]}" infer --model "$model" --data "$fm" \
      --out "$tmp/done.h5" --overwrite
    [[ $(md5sum < "$tmp/done.h5") == "$sum" ]] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAILED: done.h5 changed under a lock"; }
    kill $holder 2>/dev/null; wait $holder 2>/dev/null
    # A write error (a file size limit on every rank): one line, status 2 on every rank, nothing left behind
    expect 2 "p7.h5: cannot write: File too large" mpirun --oversubscribe -np 2 bash -c \
      "ulimit -f 100; exec '$bin' infer --model '$model' --data '$fm' --out '$tmp/p7.h5'"
    no_output "$tmp/p7.h5"
  else
    fail=$((fail + 1)); echo "FAILED: infer on Fashion-MNIST"
  fi
fi

# Memory bounded by what the data holds: a 2 KB HDF5 file declaring 30M
# samples, an IDX gzip declaring 2^28 samples (header and trailer consistent),
# a 30000x30000 PNG and JPEG: each refused before the allocation, under 1 GB of RSS.
/usr/bin/python3 - "$tmp" <<'PY'
import sys, struct, zlib, gzip, h5py
t = sys.argv[1]
with h5py.File(f"{t}/huge.h5", "w") as f:
    f.create_dataset("images", shape=(30000000, 28, 28), dtype="uint8")
    f.create_dataset("labels", shape=(30000000,), dtype="int32")
n = 1 << 28  # 16 + n * 784 = 16 mod 2^32: the gzip size trailer agrees with the header
open(f"{t}/forged-images-idx3-ubyte.gz", "wb").write(gzip.compress(b"\0\0\x08\x03" + struct.pack(">III", n, 28, 28)))
c = zlib.compressobj(1, zlib.DEFLATED, 31)
out = c.compress(b"\0\0\x08\x01" + struct.pack(">I", n)) + b"".join(c.compress(b"\0" * (1 << 24)) for _ in range(16))
open(f"{t}/forged-labels-idx1-ubyte.gz", "wb").write(out + c.flush())
def chunk(k, d): return struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))
ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
import io, os
from PIL import Image
os.makedirs(f"{t}/bigpics", exist_ok=True); open(f"{t}/bigpics/big.png", "wb").write(png)
b = io.BytesIO(); Image.new("L", (8, 8)).save(b, "JPEG"); j = bytearray(b.getvalue())
sof = j.index(b"\xff\xc0") + 5  # the frame header's height and width, made 30000 x 30000
j[sof:sof + 4] = struct.pack(">HH", 30000, 30000)
os.makedirs(f"{t}/bigjpeg", exist_ok=True); open(f"{t}/bigjpeg/big.jpg", "wb").write(j)
PY
rss() {  # rss PATTERN CMD...: status 2, one error line with PATTERN, peak RSS under 1 GB
  local pattern=$1; shift
  expect 2 "$pattern" /usr/bin/time -f "%M" -o "$tmp/rss" "$@"
  (( $(tail -1 "$tmp/rss") < 1000000 )) && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAILED: $* took $(tail -1 "$tmp/rss") KB"; }
}
printf '[data]\nformat = "hdf5"\npath = "%s/huge.h5"\nclasses = 10\n' "$tmp" > "$tmp/huge.toml"
rss "huge.h5: /images declares 30000000 samples" "$bin" train "$tmp/huge.toml" --out "$tmp/h1"
rss "forged-images-idx3-ubyte.gz: the IDX header declares 210453397504 bytes of data, more than" "$bin" train "$tmp/empty.toml" \
  --set "data.train_images=\"$tmp/forged-images-idx3-ubyte.gz\"" --set "data.train_labels=\"$tmp/forged-labels-idx1-ubyte.gz\"" \
  --out "$tmp/h2"
# A damaged HDF5 file (found by fuzzing) on which HDF5 1.10.8 itself crashes (SIGSEGV in H5F__accum_read):
# one line and status 2, with 1 rank and with 2 (MPI_Abort(2) ends the partner waiting for the data).
src=$(dirname "$0")/fixtures/hdf5-lib-crash.h5
expect 2 "hdf5-lib-crash.h5: damaged HDF5 file" "$bin" train "$tmp/empty.toml" --set 'data.format="hdf5"' \
  --set "data.path=\"$src\"" --out "$tmp/crash1"
expect 2 "hdf5-lib-crash.h5: damaged HDF5 file" mpirun --oversubscribe -np 2 "$bin" train "$tmp/empty.toml" \
  --set 'data.format="hdf5"' --set "data.path=\"$src\"" --out "$tmp/crash2"
# A 4 KB damaged HDF5 file (found by fuzzing) on which HDF5 1.10.8 walks a cyclic symbol table, allocating
# until the machine is out of memory (23 GB, then the OOM killer): one line and status 2 once it has taken
# 2 GB, with 1 rank and with 2.
src=$(dirname "$0")/fixtures/hdf5-lib-loop.h5
expect 2 "hdf5-lib-loop.h5: damaged HDF5 file (the HDF5 library took" "$bin" train "$tmp/empty.toml" \
  --set 'data.format="hdf5"' --set "data.path=\"$src\"" --out "$tmp/loop1"
expect 2 "hdf5-lib-loop.h5: damaged HDF5 file (the HDF5 library took" mpirun --oversubscribe -np 2 "$bin" train \
  "$tmp/empty.toml" --set 'data.format="hdf5"' --set "data.path=\"$src\"" --out "$tmp/loop2"
# A 4 KB file (found by fuzzing) whose contiguous /images claims 9.3 TB of samples stored in 33 TB:
# refused before anything is allocated for it.
expect 2 "hdf5-claims-terabytes.h5: /images declares 7890025 samples" "$bin" train "$tmp/empty.toml" \
  --set 'data.format="hdf5"' --set "data.path=\"$(dirname "$0")/fixtures/hdf5-claims-terabytes.h5\"" --out "$tmp/tb"
src=$(dirname "$0")/fixtures/hdf5-lib-crash-read.h5  # the crash is in H5Dread of the samples
expect 2 "hdf5-lib-crash-read.h5: damaged HDF5 file" "$bin" train "$tmp/empty.toml" --set 'data.format="hdf5"' \
  --set "data.path=\"$src\"" --out "$tmp/crash3"
# A file system too small for one checkpoint: found before the first epoch (a 1 MB tmpfs; needs root).
if mkdir -p "$tmp/small" && mount -t tmpfs -o size=1M tmpfs "$tmp/small" 2>/dev/null; then
  expect 2 "small/run/run.h5: a checkpoint of this model needs 6.41 MB, the file system has" \
    "$bin" train "$tmp/empty.toml" --out "$tmp/small/run"
  umount "$tmp/small"
else
  echo "cli: note: the full-disk case needs root (mount -t tmpfs); not run"
fi
if [[ -f $tmp/done/run.h5 ]]; then
  rss "big.png: 30000x30000 pixels" "$bin" infer --model "$tmp/done/run.h5" --data "$tmp/bigpics" --out "$tmp/h3.h5"
  rss "big.jpg: 30000x30000 pixels" "$bin" infer --model "$tmp/done/run.h5" --data "$tmp/bigjpeg" --out "$tmp/h3.h5"
fi

# Clear errors: a sweep key that does not exist, or a range no trial can use,
# at the start (nothing written); a --set value that is not TOML names --set;
# a resumed run cannot change what it computes; report on a study where no
# trial trained prints no epoch count.
printf '[sweep]\nmethod = "grid"\n[sweep.space]\n"train.lrr" = [0.1, 0.2]\n' > "$tmp/lrr.toml"
expect 2 'sweep.space "train.lrr" = 0.1 does not make a valid config' "$bin" sweep "$tmp/lrr.toml" $small --out "$tmp/lrr"
[[ ! -e $tmp/lrr/study.h5 ]] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAILED: lrr study written"; }
printf '[sweep]\nmethod = "random"\n[sweep.space]\n"train.batch_size" = { distribution = "int_uniform", low = 1, high = 1e300 }\n' > "$tmp/big.toml"
expect 2 "int_uniform needs integer bounds" "$bin" sweep "$tmp/big.toml" $small --out "$tmp/big"
expect 2 "--set train.lr=0.1.2: train.lr: expected a number" "$bin" train "$tmp/empty.toml" --set train.lr=0.1.2 --out "$tmp/r"
if [[ -f $tmp/done/run.h5 ]]; then
  expect 2 "--set train.seed=5: cannot change on --resume" "$bin" train --resume "$tmp/done" --set train.seed=5
fi
mkdir -p "$tmp/blocked/trials" && touch "$tmp/blocked/trials/0" "$tmp/blocked/trials/1"
printf '[sweep]\nmethod = "grid"\n[sweep.space]\n"train.lr" = [0.1]\n' > "$tmp/one.toml"
if "$bin" sweep "$tmp/one.toml" $small --out "$tmp/blocked" >/dev/null 2>&1; then
  out=$("$bin" report "$tmp/blocked/study.h5" 2>&1)
  if [[ $out == *"no trial has trained"* && $out != *9223372036854775807* ]]; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAILED: report on a study with no trained trial:"; printf '  %s\n' "$out"; fi
else
  fail=$((fail + 1)); echo "FAILED: sweep with every trial failing should end with status 0"
fi

# a sweep killed before its first rewrite of study.h5 leaves its journal alone: a damaged first line is
# one line and exit 2 for report, export and a resumed sweep, and nothing is written
mkdir -p "$tmp/journal" && printf '00000000 {"seq": 0}\n' > "$tmp/journal/study.journal"
expect 2 "study.journal: line 1 is not a ranksweep study journal header" "$bin" report "$tmp/journal/study.h5"
expect 2 "study.journal: line 1 is not a ranksweep study journal header" "$bin" export "$tmp/journal/study.h5"
expect 2 "study.journal: line 1 is not a ranksweep study journal header" \
  "$bin" sweep "$tmp/one.toml" $small --out "$tmp/journal"
[[ ! -e $tmp/journal/study.h5 && $(cat "$tmp/journal/study.journal") == '00000000 {"seq": 0}' ]] &&
  pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAILED: a damaged journal was changed or a study written"; }

# export: a run's history, a study's trials, predictions as CSV and JSON records
if [[ -f $tmp/done/run.h5 && -f $tmp/blocked/study.h5 ]]; then
  "$bin" export "$tmp/done/run.h5" > "$tmp/run.csv" && "$bin" export "$tmp/done/run.h5" --format json --out "$tmp/run.json" &&
    "$bin" export "$tmp/blocked/study.h5" --format csv --out "$tmp/study.csv" &&
    /usr/bin/python3 - "$tmp" <<'PY' && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAILED: export"; }
import csv, json, sys
t = sys.argv[1]
rows = list(csv.DictReader(open(f"{t}/run.csv")))
assert len(rows) == 1 and rows[0]["epoch"] == "1" and 0 < float(rows[0]["test_accuracy"]) <= 1, rows
recs = json.load(open(f"{t}/run.json"))
assert recs[0]["epoch"] == 1 and abs(recs[0]["test_accuracy"] - float(rows[0]["test_accuracy"])) < 1e-12, recs
trials = list(csv.DictReader(open(f"{t}/study.csv")))
assert [r["status"] for r in trials] == ["failed", "failed"] and "Not a directory" in trials[0]["message"], trials
PY
  expect 2 "not a ranksweep study, run or prediction file" "$bin" export "$tmp/huge.h5"
fi
if [[ -f $tmp/done.h5 ]]; then
  "$bin" export "$tmp/done.h5" --format csv --out "$tmp/pred.csv" && /usr/bin/python3 -c "
import csv, sys; r = list(csv.DictReader(open(sys.argv[1])))
assert len(r) == 10000 and set(r[0]) >= {'index', 'true_label', 'label_1', 'probability_1'}, r[0]" "$tmp/pred.csv" &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAILED: export predictions"; }
fi
# cmake --install: the program, the job scripts, the shipped configs
if cmake --install "$(dirname "$bin")" --prefix "$tmp/prefix" >/dev/null 2>&1 && [[ -x $tmp/prefix/bin/ranksweep &&
   -f $tmp/prefix/share/ranksweep/jobs/fuzz.sh && -f $tmp/prefix/share/ranksweep/inputs/fmnist-mlp.toml ]]; then
  pass=$((pass + 1))
else
  fail=$((fail + 1)); echo "FAILED: cmake --install"
fi

# Outputs: a run directory in use (its lock held) is refused, naming the
# holder; a location that cannot be written is refused before any training;
# a checkpoint that cannot be written (a file size limit) is one line, status 2.
mkdir -p "$tmp/busy"
flock -n "$tmp/busy/.lock" sleep 20 & holder=$!
sleep 0.5
expect 2 "busy: in use by another ranksweep run" "$bin" train "$tmp/empty.toml" $small --out "$tmp/busy"
printf '[sweep]\nmethod = "grid"\n[sweep.space]\n"train.lr" = [0.1]\n' > "$tmp/grid.toml"
expect 2 "busy: in use by another ranksweep run" "$bin" sweep "$tmp/grid.toml" $small --out "$tmp/busy"
kill $holder 2>/dev/null; wait $holder 2>/dev/null
expect 2 "cannot create output directory" "$bin" train "$tmp/empty.toml" $small --out /proc/self/nope
if command -v mpirun >/dev/null; then
  expect 2 "run.h5: cannot write: File too large" mpirun -np 1 bash -c \
    "ulimit -f 20; exec '$bin' train '$tmp/empty.toml' $small --out '$tmp/fsize'"
fi

# Under mpirun, bad data seen by rank 0: every rank ends with status 2, one message.
if command -v mpirun >/dev/null; then
  expect 2 "bad-magic: bad magic number" mpirun --oversubscribe -np 3 "$bin" train "$tmp/empty.toml" \
    --set "data.train_images=\"$tmp/bad-magic\"" --out "$tmp/m"
  expect 2 "train.epocs: unknown key" mpirun --oversubscribe -np 2 "$bin" train "$tmp/typo.toml" --out "$tmp/m"
fi

# ---- Reliability: hostile inputs found by an adversarial run
same() {  # same WHAT A B: files (or device numbers) A and B are unchanged
  if [[ "$2" == "$3" ]]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $1"; fi
}
# Deadlines: values that overflow or are no date are one line and status 2 (a huge one crashed in strftime).
for d in 99999999999999999999999 +99999999999999999999 1e400 2026-13-45T99:99:99 nan; do
  expect 2 "--deadline $d: expected seconds since the epoch" "$bin" train "$tmp/empty.toml" $small --deadline "$d" \
    --out "$tmp/dl"
done
expect 2 "--deadline: an empty deadline" "$bin" sweep "$tmp/one.toml" $small --deadline "" --out "$tmp/dl"
for m in nan -1 inf; do
  expect 2 "--deadline-margin: expected seconds, a number >= 0" "$bin" train "$tmp/empty.toml" --deadline-margin "$m"
done
out=$("$bin" train "$tmp/empty.toml" --deadline-margin -1 2>&1)
[[ $out != *17976931348623157* && ${#out} -lt 200 ]] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAILED: margin message prints DBL_MAX"; }
for e in 99999999999999999999999 1e400; do
  SLURM_JOB_END_TIME=$e expect 2 "SLURM_JOB_END_TIME=$e: expected seconds since the epoch" "$bin" train \
    "$tmp/empty.toml" $small --out "$tmp/dl"
done
# export: never over its input, a device or a FIFO; a link's target written, the link kept.
if [[ -f $tmp/blocked/study.h5 ]]; then
  st=$tmp/blocked/study.h5 sum=$(md5sum < "$tmp/blocked/study.h5")
  expect 2 "is the file being exported" "$bin" export "$st" --out "$st"
  ln -sf "$st" "$tmp/study-link.h5"
  expect 2 "is the file being exported" "$bin" export "$st" --out "$tmp/study-link.h5"
  same "export --out over its input" "$(md5sum < "$st")" "$sum"
  if mknod "$tmp/null" c 1 3 2>/dev/null; then
    "$bin" export "$st" --out "$tmp/null" && same "export to a character device keeps it" "$(stat -c %F "$tmp/null")" \
      "character special file"
    ln -sf "$tmp/null" "$tmp/null-link"
    "$bin" export "$st" --out "$tmp/null-link"
    same "export through a link to a device keeps both" "$(stat -c %F "$tmp/null-link"):$(stat -c %F "$tmp/null")" \
      "symbolic link:character special file"
    if [[ -f $model ]]; then
      expect 2 "null: not a regular file" "$bin" infer --model "$model" --data "$fm" --out "$tmp/null" --overwrite
      same "infer --overwrite to a device keeps it" "$(stat -c %F "$tmp/null")" "character special file"
    fi
  fi
  expect 2 "/dev/full: cannot write: No space left on device" "$bin" export "$st" --out /dev/full
  mkfifo "$tmp/fifo" && { cat "$tmp/fifo" > "$tmp/fifo.out" & } && "$bin" export "$st" --out "$tmp/fifo" && wait &&
    same "export into a FIFO" "$(stat -c %F "$tmp/fifo"):$(head -c 3 "$tmp/fifo.out")" "fifo:id,"
  : > "$tmp/target.csv" && ln -sf "$tmp/target.csv" "$tmp/target-link.csv"
  "$bin" export "$st" --out "$tmp/target-link.csv"
  same "export through a link to a file" "$(stat -c %F "$tmp/target-link.csv"):$(head -c 3 "$tmp/target.csv")" \
    "symbolic link:id,"
  # standard output that cannot be written: status 2, one line; a damaged study: one line, no HDF5 stack
  for c in "report $st" "export $st" "info"; do
    out=$("$bin" $c 2>&1 >/dev/full); rc=$?
    [[ $rc -eq 2 && $out == "ranksweep: error: standard output: cannot write"* && $(wc -l <<< "$out") -eq 1 ]] &&
      pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAILED: $c > /dev/full: $rc $out"; }
  done
  head -c 3000 "$st" > "$tmp/trunc-study.h5"
  expect 2 "trunc-study.h5" "$bin" export "$tmp/trunc-study.h5"
  out=$("$bin" export "$tmp/trunc-study.h5" 2>&1 >/dev/null)
  [[ $(wc -l <<< "$out") -eq 1 ]] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAILED: stack: $out"; }
fi
# A warm start that is not a file says what it is.
printf '[sweep]\nmethod = "tpe"\nwarm_start = "%s"\n[sweep.space]\n"train.lr" = [0.1, 0.2]\n' "$tmp" > "$tmp/warmdir.toml"
expect 2 "is a directory, not an HDF5 file" "$bin" sweep "$tmp/warmdir.toml" $small --out "$tmp/wd"
expect 2 "/dev/null: not a regular file" "$bin" sweep "$tmp/warmdir.toml" $small --set 'sweep.warm_start="/dev/null"' \
  --out "$tmp/wd"
# Enqueued trials: outside the space, twice, or the default: one line each.
enq() { printf '[train]\nlr = 0.1\n[sweep]\nmethod = "grid"\n[sweep.space]\n"train.lr" = [0.1, 0.2]\n%s' "$1" > "$tmp/enq.toml"; }
enq $'[[sweep.enqueue]]\n"train.lr" = 0.5\n'
out=$("$bin" sweep "$tmp/enq.toml" $small --out "$tmp/e0" 2>&1)
[[ $out == *'sweep.enqueue[0]: "train.lr" = 0.5 is outside sweep.space: it runs as given'* ]] &&
  pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAILED: no note on an enqueued value outside the space"; }
enq $'[[sweep.enqueue]]\n"train.lr" = 0.2\n[[sweep.enqueue]]\n"train.lr" = 0.2\n'
expect 2 "sweep.enqueue[1] repeats sweep.enqueue[0]" "$bin" sweep "$tmp/enq.toml" $small --out "$tmp/e"
enq $'[[sweep.enqueue]]\n"train.lr" = 0.1\n'
expect 2 "sweep.enqueue[0] is the default trial" "$bin" sweep "$tmp/enq.toml" $small --out "$tmp/e"
# Batch norm over one sample a step.
expect 2 "train.batch_size: batch norm layer bn1 needs at least 2 samples" "$bin" train "$tmp/empty.toml" \
  --set model.batch_norm=true --set train.batch_size=1 --out "$tmp/bn"
# A huge value in a config: the error stays one line of bounded length.
/usr/bin/python3 - "$tmp" <<'PY'
import sys, zlib, struct, os
t = sys.argv[1]
open(f"{t}/huge-value.toml", "w").write('[train]\noptimizer = "' + "x" * 5000000 + "\\n" + "y" * 100 + '"\n')
def chunk(k, d): return struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))
def png(path, v):
    raw = b"".join(b"\0" + bytes([v] * 4) for _ in range(4))
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
for c, v in (("a", 10), ("b", 200)):
    os.makedirs(f"{t}/cls/{c}", exist_ok=True)
    for i in range(3): png(f"{t}/cls/{c}/{i}.png", v)
os.makedirs(f"{t}/cls/.git", exist_ok=True)
PY
out=$("$bin" train "$tmp/huge-value.toml" 2>&1); rc=$?
[[ $rc -eq 2 && $(wc -l <<< "$out") -eq 1 && ${#out} -lt 2000 && $out == *"is not one of"* ]] && pass=$((pass + 1)) ||
  { fail=$((fail + 1)); echo "FAILED: huge value: status $rc, ${#out} chars"; }
# Image class folders: a link loop, an empty class, a class linked to another, hidden folders.
imgcfg=(--set 'data.format="images"' --set "data.path=\"$tmp/cls\"" --set data.classes=2 --set data.channels=1
        --set 'data.image_size=[4, 4]' --set data.validation=0 --set model.hidden=[4] --set train.epochs=1)
"$bin" train "$tmp/empty.toml" "${imgcfg[@]}" --out "$tmp/img0" >/dev/null 2>&1 &&
  pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAILED: a hidden folder counted as a class"; }
ln -s loop "$tmp/cls/a/loop.png" && ln -s loop.png "$tmp/cls/a/loop"
expect 2 "cls/a/loop.png: cannot read: Too many levels of symbolic links" "$bin" train "$tmp/empty.toml" \
  "${imgcfg[@]}" --out "$tmp/img1"
[[ -f $model ]] && expect 2 "loop.png: cannot read: Too many levels of symbolic links" "$bin" infer --model "$model" \
  --data "$tmp/cls/a" --out "$tmp/img1.h5"
rm "$tmp/cls/a/loop.png" "$tmp/cls/a/loop"
ln -s a "$tmp/cls/c"
expect 2 'class directories "a" and "c" are the same directory' "$bin" train "$tmp/empty.toml" "${imgcfg[@]}" \
  --set data.classes=3 --out "$tmp/img2"
rm "$tmp/cls/c" && mkdir "$tmp/cls/c"
expect 2 "cls/c: no .png/.jpg/.jpeg files: a class needs training images" "$bin" train "$tmp/empty.toml" \
  "${imgcfg[@]}" --set data.classes=3 --out "$tmp/img3"
# Files that checksum themselves: a flipped bit anywhere, a cut, a damaged header: one line, before HDF5 reads it.
if [[ -f $model && -f $tmp/blocked/study.h5 ]]; then
  /usr/bin/python3 - "$model" "$tmp/blocked/study.h5" "$tmp" <<'PY'
import sys
run, study, t = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read(), sys.argv[3]
def flip(b, at):
    b = bytearray(b); b[at] ^= 0x10; return bytes(b)
assert run.startswith(b"ranksweep-crc64 ") and run[512:520] == b"\x89HDF\r\n\x1a\n", run[:40]
open(f"{t}/flip-run.h5", "wb").write(flip(run, len(run) - 100))       # raw data, no HDF5 checksum there
open(f"{t}/flip-study.h5", "wb").write(flip(study, len(study) // 2))
open(f"{t}/cut-study.h5", "wb").write(study[:-1])
open(f"{t}/head-run.h5", "wb").write(flip(run, 20))                     # the checksum header itself
open(f"{t}/nohead-run.h5", "wb").write(bytes(512) + run[512:])
PY
  expect 2 "flip-run.h5: damaged file: its content does not match its checksum" "$bin" infer --model "$tmp/flip-run.h5" \
    --data "$fm" --out "$tmp/f1.h5"
  mkdir -p "$tmp/fr" && cp "$tmp/flip-run.h5" "$tmp/fr/run.h5"
  expect 2 "fr/run.h5: damaged file: its content does not match its checksum" "$bin" train --resume "$tmp/fr"
  expect 2 "flip-study.h5: damaged file: its content does not match its checksum" "$bin" report "$tmp/flip-study.h5"
  expect 2 "cut-study.h5: damaged file: " "$bin" export "$tmp/cut-study.h5"
  expect 2 "head-run.h5: damaged file: " "$bin" export "$tmp/head-run.h5"
  expect 2 "nohead-run.h5: damaged file: no ranksweep checksum header" "$bin" export "$tmp/nohead-run.h5"
fi
# JSON export: hyperparameters as numbers, file names that are not UTF-8 as valid JSON.
if [[ -f $model && -f $tmp/blocked/study.h5 ]]; then
  mkdir -p "$tmp/odd" && cp "$tmp/cls/a/0.png" "$tmp/odd/"$'\xff\xfe'.png
  "$bin" infer --model "$model" --data "$tmp/odd" --out "$tmp/odd.h5" >/dev/null 2>&1
  "$bin" export "$tmp/odd.h5" --format json --out "$tmp/odd.json" &&
    "$bin" export "$tmp/blocked/study.h5" --format json --out "$tmp/study.json" && /usr/bin/python3 - "$tmp" <<'PY' &&
import json, sys
t = sys.argv[1]
p = json.load(open(f"{t}/odd.json"))
assert len(p) == 1 and p[0]["name"] == "\ufffd\ufffd.png", p
s = json.load(open(f"{t}/study.json"))
assert [r["train.lr"] for r in s] == [0.01, 0.1], s
PY
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAILED: JSON export of numbers and odd names"; }
fi
# A stop signal in the first instants of the process is a stop request (status 75), not a kill.
early=0
for i in 1 2 3; do
  rm -rf "$tmp/early"
  "$bin" train "$tmp/empty.toml" $small --out "$tmp/early" >/dev/null 2>&1 &
  p=$!
  while [[ $(readlink "/proc/$p/exe") != "$(readlink -f "$bin")" ]] && kill -0 $p 2>/dev/null; do :; done
  sleep 0.05
  kill -USR1 $p
  wait $p
  rc=$?
  [[ $rc -eq 75 ]] && early=$((early + 1)) || echo "early USR1: status $rc"
done
same "a USR1 50 ms after exec: status 75 (3 of 3)" "$early" 3

echo "cli: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
