"""Checks a trace written by --trace: valid JSON in the Chrome trace-event
format, one process per rank named host:rank, spans that nest and come in
order on every thread, and on every rank's main thread the spans of work (all
but the grouping spans `epoch` and `trial`, whose time between their children
is untraced) cover at least 90% of the time from its first span's start to
its last's end.

Usage: trace_check.py TRACE.json RANKS NAME... (span names that must appear on every rank)
Exit 0 when all holds, 1 otherwise (naming what failed).
"""
import json
import sys
from collections import defaultdict

path, ranks, wanted = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
with open(path) as f:
    trace = json.load(f)
events = trace["traceEvents"]
problems = []
names = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
if sorted(names) != list(range(ranks)):
    problems.append(f"processes {sorted(names)}, want ranks 0..{ranks - 1}")
for pid, name in names.items():
    if not name.endswith(f":{pid}"):
        problems.append(f"process {pid} is named {name!r}, not host:{pid}")
main_tid = {e["pid"]: e["tid"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"
            and e["args"]["name"] == "main"}

threads = defaultdict(list)
for e in events:
    if e["ph"] == "X":
        threads[e["pid"], e["tid"]].append(e)
eps = 0.01  # microseconds: the timestamps' rounding
for (pid, tid), spans in threads.items():
    starts = [s["ts"] for s in spans]
    if starts != sorted(starts):
        problems.append(f"rank {pid} thread {tid}: spans out of order")
    stack = []
    for s in spans:
        begin, end = s["ts"], s["ts"] + s["dur"]
        while stack and begin >= stack[-1][1] - eps:
            stack.pop()
        if stack and end > stack[-1][1] + eps:
            problems.append(f"rank {pid} thread {tid}: {s['name']} [{begin:.0f}, {end:.0f}] overlaps the end of "
                            f"{stack[-1][2]} [{stack[-1][0]:.0f}, {stack[-1][1]:.0f}] without nesting")
        stack.append((begin, end, s["name"]))
    if tid != main_tid.get(pid):
        continue
    first = min(s["ts"] for s in spans)
    last = max(s["ts"] + s["dur"] for s in spans)
    covered, at = 0.0, first
    for s in sorted(spans, key=lambda s: s["ts"]):
        begin, end = s["ts"], s["ts"] + s["dur"]
        if s["name"] in ("epoch", "trial") or end <= at:
            continue
        covered += end - max(begin, at)
        at = end
    share = covered / (last - first)
    print(f"rank {pid} ({names.get(pid)}): {len(spans)} spans over {(last - first) / 1e6:.2f} s, "
          f"spans of work cover {100 * share:.1f}%")
    if share < 0.9:
        problems.append(f"rank {pid}: spans of work cover {100 * share:.1f}% of its time (< 90%)")
    have = {s["name"] for (p, _), ss in threads.items() if p == pid for s in ss}
    missing = [w for w in wanted if w not in have]
    if missing:
        problems.append(f"rank {pid}: no span named {', '.join(missing)}")
for p in problems:
    print("FAILED:", p)
sys.exit(1 if problems else 0)
