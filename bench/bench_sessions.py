"""Many dashboard sessions at once, without browsers: server-side interaction time of a date step
and the server's memory per session.

    .venv/bin/python bench/bench_sessions.py --sessions 20 50
    .venv/bin/python bench/bench_sessions.py --sessions 20 50 --think 2
    .venv/bin/python bench/bench_sessions.py --sessions 20 --steps 5 --data-dir /tmp/world/fluxlens-data

1. Builds the small demo world (``fluxlens demo --small``) into a temporary data directory, or uses
   ``--data-dir`` when it has a catalog.
2. For each count in ``--sessions``, starts a fresh ``fluxlens serve`` on 127.0.0.1 and opens that
   many sessions the way a page does: GET ``/app`` (the server builds the session's dashboard), then
   the Bokeh websocket with the page's token: pull the document, send ``document_ready``. At most
   ``--connect-parallel`` sessions are being opened at a time.
3. Every session then steps the date ``--steps`` times, as the sidebar's calendar does in a page (a
   ``PATCH-DOC`` setting the date picker's value to the next day; each session starts on another
   day). A step's times, measured from sending the change: **map** = until the patch carrying the
   new map image (the image data source's ``ColumnDataChanged``) has arrived; **settled** = until
   the last patch before ``--quiet`` seconds without one after that. A step without a new image
   within ``--step-timeout`` counts as timed out. Then the session steps again, at once or after a
   ``--think`` time (a user looking at the map; 0, the default, is the heaviest load).
4. Prints p50/p95/max of the first-patch, map and settled times over all steps, how many steps
   brought a new map image, the time to open a session, the server's RSS (psutil) before the
   sessions, with them open and at its peak, the RSS per session, the server's CPU use while
   stepping, and the load average.

The client speaks Bokeh's websocket protocol directly (``bokeh.protocol``'s message receiver, no
client-side document), all sessions in one asyncio loop, so the harness itself costs little CPU
(its CPU time is printed too). No browser lays the page out, so the server draws the map at the
figure's default size, not at a browser's window size. Everything is bounded: per-step and
per-run time limits, a fixed number of steps; the servers are stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import psutil
from bokeh.protocol import Protocol
from bokeh.protocol.receiver import Receiver
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.browser import FLUXLENS, free_port  # noqa: E402

HOST = "127.0.0.1"
DATE_PICKER_TITLE = "Calendar"
DOCUMENT_READY = {
    "kind": "MessageSent",
    "msg_type": "bokeh_event",
    "msg_data": {"type": "event", "name": "document_ready", "values": {"type": "map"}},
}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def ensure_world(data_dir: Path) -> None:
    if (data_dir / "catalog.yaml").is_file():
        return
    t0 = time.perf_counter()
    env = dict(os.environ, FLUXLENS_DATA_DIR=str(data_dir))
    cmd = [*FLUXLENS, "demo", "--small"]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, timeout=1800)
    print(f"small demo world built in {time.perf_counter() - t0:.0f} s: {data_dir}")


class Server:
    """``fluxlens serve`` on 127.0.0.1 in its own process group; stopped by :meth:`stop`."""

    def __init__(self, data_dir: Path, log_path: Path, timeout_s: float = 600):
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        env = dict(os.environ, FLUXLENS_DATA_DIR=str(data_dir), FLUXLENS_AUTH="off")
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [*FLUXLENS, "serve", "--port", str(self.port), "--address", HOST],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fluxlens serve exited ({self.proc.returncode}), see {log_path}")
            try:
                urllib.request.urlopen(self.base + "/bench-readiness-probe", timeout=5)
            except urllib.error.HTTPError:
                break  # answering (404)
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"fluxlens serve did not answer within {timeout_s:.0f} s") from None
                time.sleep(0.5)

    def rss_mb(self) -> float:
        return self.ps.memory_info().rss / 2**20

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


def _frames(msgtype: str, content: dict) -> list[str]:
    return [json.dumps({"msgid": uuid.uuid4().hex[:16], "msgtype": msgtype}), "{}", json.dumps(content)]


def _find_model(doc, title: str) -> dict | None:
    stack = [doc]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            attrs = x.get("attributes")
            if x.get("type") == "object" and isinstance(attrs, dict) and attrs.get("title") == title:
                return x
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return None


def _is_image_patch(msg) -> bool:
    """A patch carrying a column data source's new arrays as binary buffers: the map image."""
    return (
        msg.msgtype == "PATCH-DOC"
        and bool(msg.buffers)
        and any(e.get("kind") == "ColumnDataChanged" for e in msg.content["events"])
    )


class Session:
    """One page's worth of websocket session, driven like the page's date picker."""

    def __init__(self, base: str, index: int):
        self.base = base
        self.index = index
        self.ws = None
        self.receiver = Receiver(Protocol())
        self.picker: dict | None = None
        self.steps: list[dict] = []
        self.open_s = float("nan")

    async def open(self, timeout: float) -> None:
        t0 = time.perf_counter()
        page = await AsyncHTTPClient().fetch(self.base + "/app", request_timeout=timeout)
        token = re.search(r'"token":"([^"]+)"', page.body.decode()).group(1)
        request = HTTPRequest(
            self.base.replace("http://", "ws://") + "/app/ws",
            headers={"Origin": self.base},
            connect_timeout=timeout,
            request_timeout=timeout,
        )
        self.ws = await websocket_connect(request, subprotocols=["bokeh", token], max_message_size=2**28)
        msg = await self._next(timeout)
        assert msg.msgtype == "ACK", msg.msgtype
        await self._send("PULL-DOC-REQ", {})
        while (msg := await self._next(timeout)).msgtype != "PULL-DOC-REPLY":
            pass
        self.picker = _find_model(msg.content["doc"], DATE_PICKER_TITLE)
        if self.picker is None:
            raise RuntimeError(f"no widget titled {DATE_PICKER_TITLE!r} in the document")
        await self._send("PATCH-DOC", {"events": [DOCUMENT_READY]})
        await self._drain(quiet=0.5, limit=timeout)  # the page's on-load updates
        self.open_s = time.perf_counter() - t0

    async def _send(self, msgtype: str, content: dict) -> None:
        for frame in _frames(msgtype, content):
            await self.ws.write_message(frame)

    async def _next(self, timeout: float):
        while True:
            fragment = await asyncio.wait_for(self.ws.read_message(), timeout)
            if fragment is None:
                raise ConnectionError("websocket closed by the server")
            msg = await self.receiver.consume(fragment)
            if msg is not None:
                return msg

    async def _drain(self, quiet: float, limit: float) -> tuple[list[tuple[float, object]], bool]:
        """Messages until ``quiet`` s pass without one, with arrival times; and whether ``limit``
        s in all ended the wait instead."""
        out = []
        end = time.perf_counter() + limit
        while (left := end - time.perf_counter()) > 0:
            try:
                msg = await self._next(min(quiet, left))
            except TimeoutError:
                if left > quiet:
                    return out, False
                break
            out.append((time.perf_counter(), msg))
        return out, True

    async def step_dates(self, n: int, *, quiet: float, limit: float, think: float = 0.0) -> None:
        attrs = self.picker["attributes"]
        first = dt.date.fromisoformat(attrs["min_date"])
        last = dt.date.fromisoformat(attrs["max_date"])
        span = (last - first).days + 1
        day = first + dt.timedelta(days=self.index % span)
        rng = random.Random(self.index)
        for i in range(n):
            if think:  # the first step too, or all sessions would start in one burst
                await asyncio.sleep(rng.uniform(0.5, 1.5) * think if i else rng.uniform(0, 1.5) * think)
            day = first + dt.timedelta(days=((day - first).days + 1) % span)
            ref = {"id": self.picker["id"]}
            event = {"kind": "ModelChanged", "model": ref, "attr": "value", "new": str(day)}
            t0 = time.perf_counter()
            await self._send("PATCH-DOC", {"events": [event]})
            received, image_at = [], None
            while image_at is None and (left := t0 + limit - time.perf_counter()) > 0:
                try:
                    msg = await self._next(left)
                except TimeoutError:
                    break
                received.append((time.perf_counter(), msg))
                if _is_image_patch(msg):
                    image_at = received[-1][0]
            more, _ = await self._drain(quiet=quiet, limit=max(0.0, t0 + limit - time.perf_counter()))
            patches = [t for t, m in received + more if m.msgtype == "PATCH-DOC"]
            self.steps.append(
                {
                    "map": image_at - t0 if image_at is not None else None,
                    "settled": patches[-1] - t0 if patches else None,
                    "first": patches[0] - t0 if patches else None,
                    "timed_out": image_at is None,
                }
            )

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()


async def _sample_rss(server: Server, peak: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], server.rss_mb())
        try:
            await asyncio.wait_for(stop.wait(), 0.25)
        except TimeoutError:
            pass


async def run_sessions(server: Server, n: int, args) -> dict:
    AsyncHTTPClient.configure(None, max_clients=max(args.connect_parallel, 10))
    sessions = [Session(server.base, i) for i in range(n)]
    gate = asyncio.Semaphore(args.connect_parallel)
    peak = [server.rss_mb()]
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_rss(server, peak, stop))

    async def open_one(s: Session):
        async with gate:
            await s.open(args.step_timeout * 4)

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(open_one(s) for s in sessions))
        opened_s = time.perf_counter() - t0
        await asyncio.sleep(1.0)
        rss_open = server.rss_mb()
        cpu0, wall0, load0 = server.cpu_s(), time.perf_counter(), os.getloadavg()
        await asyncio.gather(
            *(
                s.step_dates(args.steps, quiet=args.quiet, limit=args.step_timeout, think=args.think)
                for s in sessions
            )
        )
        cpu1, wall1 = server.cpu_s(), time.perf_counter()
        rss_after = server.rss_mb()
        load1 = os.getloadavg()
    finally:
        stop.set()
        await sampler
        for s in sessions:
            s.close()
    steps = [st for s in sessions for st in s.steps]
    return {
        "sessions": n,
        "think": args.think,
        "steps": steps,
        "open": [s.open_s for s in sessions],
        "opened_s": opened_s,
        "rss_open": rss_open,
        "rss_after": rss_after,
        "rss_peak": peak[0],
        "server_cpu": (cpu1 - cpu0) / (wall1 - wall0),
        "stepping_s": wall1 - wall0,
        "load_before": load0,
        "load_after": load1,
    }


def _stats(values: list[float]) -> str:
    if not values:
        return "none"
    return (
        f"p50 {statistics.median(values):6.3f} s  p95 {percentile(values, 95):6.3f} s  "
        f"max {max(values):6.3f} s  (n={len(values)})"
    )


def report(r: dict, rss_base: float) -> None:
    steps = r["steps"]
    n = r["sessions"]
    maps = [s["map"] for s in steps if s["map"] is not None]
    settled = [s["settled"] for s in steps if s["settled"] is not None]
    first = [s["first"] for s in steps if s["first"] is not None]
    print(f"\n== {n} sessions, {len(steps)} date steps, think time {r['think']:g} s ==")
    print(f"  opening a session (GET /app, websocket, document): {_stats(r['open'])}")
    print(f"  all {n} sessions open after {r['opened_s']:.1f} s")
    print(f"  step -> first patch          : {_stats(first)}")
    print(f"  step -> new map image patch  : {_stats(maps)}")
    print(f"  step -> settled (last patch) : {_stats(settled)}")
    timed_out = sum(s["timed_out"] for s in steps)
    print(f"  steps with a new map image: {len(maps)}/{len(steps)}; timed out: {timed_out}")
    print(
        f"  server RSS: {rss_base:.0f} MB before, {r['rss_open']:.0f} MB with the sessions open, "
        f"{r['rss_after']:.0f} MB after stepping, peak {r['rss_peak']:.0f} MB"
    )
    print(
        f"  RSS per session: {(r['rss_open'] - rss_base) / n:.1f} MB open, "
        f"{(r['rss_peak'] - rss_base) / n:.1f} MB at the peak"
    )
    cpu = r["server_cpu"] * 100
    print(f"  server CPU while stepping: {cpu:.0f} % of one core over {r['stepping_s']:.1f} s")
    lb, la = r["load_before"], r["load_after"]
    print(
        f"  load average (1/5/15 min): before stepping {lb[0]:.2f}/{lb[1]:.2f}/{lb[2]:.2f}, "
        f"after {la[0]:.2f}/{la[1]:.2f}/{la[2]:.2f} ({os.cpu_count()} CPUs)"
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, nargs="+", default=[20, 50], help="session counts, one run each")
    p.add_argument("--steps", type=int, default=10, help="date steps per session (default 10)")
    p.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean seconds a user looks at the map before the next step (uniform 0.5-1.5 x; default 0: "
        "every session steps again as soon as its page has settled)",
    )
    p.add_argument("--quiet", type=float, default=0.5, help="seconds without a patch that end a step")
    p.add_argument("--step-timeout", type=float, default=30.0, help="limit per step, seconds")
    p.add_argument("--connect-parallel", type=int, default=4, help="sessions being opened at a time")
    p.add_argument("--data-dir", type=Path, default=None, help="demo world (default: a fresh small one)")
    p.add_argument("--run-limit", type=float, default=1800.0, help="limit per run, seconds")
    args = p.parse_args(argv)
    if min(args.sessions) < 1 or args.steps < 1 or max(args.sessions) > 500:
        p.error("--sessions 1..500 and --steps >= 1")

    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="bench-sessions-"))
        data_dir = tmp / "fluxlens-data"
    log_dir = Path(tempfile.mkdtemp(prefix="bench-sessions-logs-"))
    try:
        ensure_world(data_dir)
        print(f"machine: {os.cpu_count()} CPUs, load average {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
        for n in args.sessions:
            server = Server(data_dir, log_dir / f"serve-{n}.log")
            try:
                time.sleep(2.0)  # let the start-up settle before the baseline
                rss_base = server.rss_mb()
                result = asyncio.run(asyncio.wait_for(run_sessions(server, n, args), args.run_limit))
            finally:
                server.stop()
            report(result, rss_base)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(f"\nharness CPU time: {usage.ru_utime + usage.ru_stime:.1f} s; server logs in {log_dir}")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
