"""distviz benchmarks: prints numbers against the budgets of the scale issue; asserts nothing.

    .venv/bin/python bench/run.py            # or: make bench
    .venv/bin/python bench/run.py --only sim,size --profile
    .venv/bin/python bench/run.py --only fanout --servers uvicorn --viewers 100 --commands 50

1. sim     evolve(node_added / node_removed) on 50 nodes x 160 vnodes and 100,000 keys: the
           full recompute of owners and moved keys (budget: <= 50 ms).
2. size    bytes of the one broadcast frame per command on that ring, for a mix of commands,
           through room_command_apply + render_broadcast (budget: median <= 8 KB).
3. fanout  command -> all of 300 viewers on one server process (daphne, uvicorn), next to a bare
           `websockets` broadcast server in the same run (budget: p50 <= 2x, p99 <= 3x bare).
4. log     log partitions on 1,000,000 records (12 partitions, 6 brokers, RF 3, two groups): one
           tick's evolve (budget: <= 5 ms), the broadcast frame per command kind (budget: <= 8 KB)
           and bytes per viewer per second while playing at 1x (budget: <= 2 KB/s). See logbench.py.
5. lock    lock quorums (RedLock): decide + evolve per command of Kleppmann's scenarios in every mode
           and the class race of 60 (budget: <= 5 ms), the broadcast frame per command of every
           lesson, scenario and playing tick (budget: <= 8 KB), and the space-time diagram on a run of
           600+ messages, also in headless Chromium against daphne (budget: per-update p99 < 100 ms,
           DOM bounded). See lockbench.py.
6. join    a room page's bytes on the wire per concept, first visit (page + scripts + styles, br/gzip;
           budget: <= 70 KB) and repeat visit (page + the socket's first frame; budget: <= 20 KB), and a
           join storm: 300 clients (page + static + WebSocket + full state) within 10 s, next to a bare
           asyncio static + websockets server with the same bytes (all must get a working room). See
           joinstorm.py.
7. workflow workflow graphs: one room-clock tick (decide + evolve) of a 20-service saga with 100 messages in
           flight (budget: <= 5 ms median and p99), the broadcast frame per command of every lesson and of
           sagas played at 1x with faults (budget: median <= 8 KB), and bytes per viewer per second with both
           views playing, raw and with permessage-deflate, next to the log and lock rooms. See workflowbench.py.

Extras (off by default): --profile (cProfile of part 2), --profile-server (each app server once
more under cProfile, measured commands only), --what-if lazy-expiry,direct (the app with one
fan-out cost patched away at start-up, see bench/variant.py), --deflate (permessage-deflate rows).

Runs on loopback only, with temporary SQLite databases: about 2 minutes by default on 2 cores (the
join part alone about 45 s), about 3 minutes with every extra.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
os.chdir(HERE.parent)

from common import fmt_ms, median, percentile, raise_nofile  # noqa: E402

SIM_BUDGET_MS = 50.0
BYTES_BUDGET = 8 * 1024
P50_BUDGET, P99_BUDGET = 2.0, 3.0


def heading(text: str) -> None:
    print(f"\n== {text} " + "=" * max(0, 86 - len(text)), flush=True)


def verdict(ok: bool | None) -> str:
    return "n/a " if ok is None else ("PASS" if ok else "MISS")


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def print_fanout_table(results: list, bare_for: dict) -> None:
    cols = (f"  {'server':<26}{'payload B':>10}{'p50 ms':>8}{'p99 ms':>8}{'1st p50':>8}{'1st p99':>8}{'last p50':>9}"
            f"{'bcast/s':>8}"
            f"{'CPU ms/b':>9}{'cli ms/b':>9}{'p50 x':>7}{'p99 x':>7}{'CPU x':>7}{'lost':>6}")
    print(cols)
    for r in results:
        bare = bare_for.get(r.name)
        pay = int(median(r.payload_bytes)) if r.payload_bytes else 0
        line = (f"  {r.name:<26}{pay:>10,}{fmt_ms(r.p50):>8}{fmt_ms(r.p99):>8}{fmt_ms(median(r.first_viewer)):>8}"
                f"{fmt_ms(percentile(r.first_viewer, 99)):>8}{fmt_ms(median(r.last_viewer)):>9}"
                f"{r.rate:>8.1f}{r.cpu_per_broadcast * 1000:>9.2f}{r.client_cpu / max(r.commands, 1) * 1000:>9.2f}")
        if bare is not None and bare is not r:
            line += (f"{ratio(r.p50, bare.p50):>7.2f}{ratio(r.p99, bare.p99):>7.2f}"
                     f"{ratio(r.cpu_per_broadcast, bare.cpu_per_broadcast):>7.1f}")
        else:
            line += f"{'1':>7}{'1':>7}{'1':>7}"
        line += f"{r.missing:>6}"
        print(line)
    print("  p50/p99: send -> each viewer's receive, all viewer deliveries pooled. 1st: send -> the first viewer\n"
          "  has it, per broadcast (command + render + first write). last p50: until the last viewer has it.\n"
          "  bcast/s: commands / time busy (one command in flight). CPU ms/b: server process utime+stime per\n"
          "  broadcast; cli ms/b: this client process. x: ratio against the bare server. lost: deliveries missing.")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="sim,size,fanout,log,lock,join,workflow",
                    help="comma-separated parts: sim, size, fanout, log, lock, join, workflow")
    ap.add_argument("--servers", default="daphne,uvicorn", help="app servers for the fan-out: daphne, uvicorn")
    ap.add_argument("--viewers", type=int, default=300)
    ap.add_argument("--commands", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--uvicorn-ws", default="websockets", choices=["websockets", "websockets-sansio", "wsproto"],
                    help="uvicorn's WebSocket implementation (default: websockets)")
    ap.add_argument("--deflate", action="store_true",
                    help="also run uvicorn and the bare server with permessage-deflate negotiated")
    ap.add_argument("--what-if", default="", metavar="VARIANTS",
                    help="also run each app server with a fan-out cost patched away at start-up (bench/variant.py; "
                         "the app on disk is unchanged): lazy-expiry, direct (comma-separated)")
    ap.add_argument("--profile", action="store_true", help="cProfile the command + render mix of part 2")
    ap.add_argument("--profile-server", action="store_true",
                    help="after the fan-out, run each app server once more under cProfile (all threads) and "
                         "print where its time goes")
    args = ap.parse_args()
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    args.viewers = max(1, min(args.viewers, 2000))
    args.commands = max(1, min(args.commands, 1000))
    started = time.perf_counter()
    summary: list[tuple[str, bool | None, str]] = []
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"distviz bench: python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {load} "
          "(other work on the machine skews every number)")

    if "sim" in parts:
        heading("1. simulation: membership change, 50 nodes x 160 vnodes, 100,000 keys")
        import sim_timing

        res = sim_timing.run()
        worst = max(res["node_added"]["p95_ms"], res["node_removed"]["p95_ms"])
        meds = f"median {res['node_added']['median_ms']:.1f} / {res['node_removed']['median_ms']:.1f} ms"
        summary.append(("sim: owners + moved keys <= 50 ms (add / remove)", worst <= SIM_BUDGET_MS,
                        f"{meds}, worst p95 {worst:.1f} ms"))

    if "size" in parts:
        heading("2. broadcast size: one frame per command on that ring")
        import broadcast

        broadcast.setup_django()
        res = broadcast.run(profile=args.profile)
        summary.append(("bytes per broadcast <= 8 KB median", res["median_bytes"] <= BYTES_BUDGET,
                        f"median {res['median_bytes']:,.0f} B"))

    if "fanout" in parts:
        heading(f"3. fan-out: one command -> {args.viewers} viewers, {args.commands} commands (+{args.warmup} warm-up)")
        import fanout

        fanout.UVICORN_WS = args.uvicorn_ws
        nofile = raise_nofile(4 * args.viewers + 1024)
        print(f"  open files limit {nofile[0]}; workload: add_key / lookup alternately on a fresh default room")
        results, bare_for = [], {}
        whatif: set[str] = set()
        frames: list[bytes] = []
        for kind in [s.strip() for s in args.servers.split(",") if s.strip()]:
            try:
                r = fanout.run_app(kind, args.viewers, args.commands, args.warmup)
            except Exception as exc:  # noqa: BLE001 - report and go on with the other servers
                print(f"  {kind}: FAILED: {exc}")
                summary.append((f"fan-out {kind}", None, f"failed: {str(exc).splitlines()[0][:80]}"))
                continue
            results.append(r)
            frames = frames or r.frames
            for e in r.errors:
                print(f"  {kind}: {e}")
        for variant in [v.strip() for v in args.what_if.split(",") if v.strip()]:
            for kind in [s.strip() for s in args.servers.split(",") if s.strip()]:
                try:
                    r = fanout.run_app(kind, args.viewers, args.commands, args.warmup, variant=variant)
                except Exception as exc:  # noqa: BLE001
                    print(f"  {kind} [{variant}]: FAILED: {exc}")
                    continue
                results.append(r)
                whatif.add(r.name)
                for e in r.errors:
                    print(f"  {r.name}: {e}")
        if not frames:
            print("  (no app frames captured: the bare server gets synthetic 5,000-byte frames)")
            frames = fanout.synthetic_frames(20)
        bare = fanout.run_bare(args.viewers, args.commands, args.warmup, frames)
        for e in bare.errors:
            print(f"  bare: {e}")
        for r in results:
            bare_for[r.name] = bare
        results.append(bare)
        if args.deflate:
            try:
                rd = fanout.run_app("uvicorn", args.viewers, args.commands, args.warmup, deflate=True)
                bd = fanout.run_bare(args.viewers, args.commands, args.warmup, frames, deflate=True)
                bare_for[rd.name] = bd
                results += [rd, bd]
            except Exception as exc:  # noqa: BLE001
                print(f"  deflate variant FAILED: {exc}")
        print()
        print_fanout_table(results, bare_for)
        if whatif:
            print("  [variant] rows: what-if runs of the app with one cost patched away at start-up (bench/variant.py);\n"
                  "  they measure what a change would buy and are not judged against the budget.")
        for r in results:
            b = bare_for.get(r.name)
            if b is None or r.name in whatif:
                continue
            p50x, p99x = ratio(r.p50, b.p50), ratio(r.p99, b.p99)
            summary.append((f"fan-out {r.name}: p50 <= 2x bare", p50x <= P50_BUDGET if not math.isnan(p50x) else None,
                            f"{p50x:.2f}x ({fmt_ms(r.p50)} vs {fmt_ms(b.p50)} ms)"))
            summary.append((f"fan-out {r.name}: p99 <= 3x bare", p99x <= P99_BUDGET if not math.isnan(p99x) else None,
                            f"{p99x:.2f}x ({fmt_ms(r.p99)} vs {fmt_ms(b.p99)} ms)"))

    if "log" in parts:
        heading("4. log partitions: one tick on 1,000,000 records; the broadcast per command kind")
        import logbench

        res = logbench.run()
        summary.extend(res["summary"])

    if "lock" in parts:
        heading("5. lock quorums: a scenario step, the broadcast per command, the diagram on 600+ messages")
        import lockbench

        res = lockbench.run()
        summary.extend(res["summary"])

    if "join" in parts:
        heading("6. join: a room page's bytes on the wire; 300 clients joining within 10 s")
        import joinstorm

        res = joinstorm.run()
        summary.extend(res["summary"])

    if "workflow" in parts:
        heading("7. workflow graphs: a 20-service saga's tick; the broadcast per command; bytes per second playing")
        import workflowbench

        res = workflowbench.run()
        summary.extend(res["summary"])

    if "fanout" in parts and args.profile_server:
        import tempfile

        import fanout
        from common import print_profile, profile_by_package

        for kind in [s.strip() for s in args.servers.split(",") if s.strip()]:
            heading(f"3b. {kind} under cProfile (every thread), {args.viewers} viewers, {min(args.commands, 60)} commands")
            out = os.path.join(tempfile.mkdtemp(prefix="distviz-bench-prof-"), f"{kind}.prof")
            try:
                r = fanout.run_app(kind, args.viewers, min(args.commands, 60), args.warmup, profile_out=out)
                print(f"  (profiled, so slower: p50 {fmt_ms(r.p50)} ms, server CPU {r.cpu_per_broadcast * 1000:.1f} ms "
                      f"per broadcast)")
                if not os.path.exists(out):
                    raise RuntimeError("the server wrote no profile")
                profile_by_package(out)
                print_profile(out, f"{kind} server process, measured commands only", limit=25,
                              sorts=("tottime", "cumulative"))
            except Exception as exc:  # noqa: BLE001
                print(f"  {kind} profile FAILED: {exc}")
            finally:
                shutil.rmtree(os.path.dirname(out), ignore_errors=True)

    heading("summary")
    for name, ok, detail in summary:
        print(f"  {verdict(ok)}  {name:<52} {detail}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"  (whole run {time.perf_counter() - started:.0f} s, load average now {load}; numbers are printed, "
          "never asserted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
