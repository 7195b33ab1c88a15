"""HMI benchmark in headless Chromium against a real server (simulated demo plant, Runtime, API app, HMI).

Figures (one JSON line each):

* ``hmi_overview_first_render_p50``: navigation start to the first machine tile in the DOM, p50 of ``--loads``
  loads of the overview page with an empty browser cache (target <= 1000 ms); p90 and max too.
* ``hmi_overview_render_warm_p50``: the same with the browser's cache kept (a tablet reloading the page).
* ``hmi_live_update_p50``: a value published on the bus until it shows in ``--clients`` open machine pages
  (browser clock: performance.timeOrigin + now), p50 and max over every client and round.
* ``hmi_oee_by_shift_30d_p50``: navigation start to the table of the OEE-over-time page by shift over the last 30
  days of a site of the demo plant, with 30 days of seeded history (``tests/hmi/seed.py``), p50 of ``--loads``
  warm loads (target <= 1000 ms); ``--oee-only`` measures this figure alone.
* ``hmi_page_warm_p50`` (one line per page: overview, line, machine, alarms, approvals, audit, users, OEE over
  time): navigation start to the page's content in the DOM (its main panel, the machine page's trend chart with
  its values), p50 of ``--loads`` warm loads (cache kept) as the demo admin, logged in through the login page on a
  server with the real authentication and 4 h of seeded history (target <= 800 ms); ``--pages-only``.
* ``hmi_login_to_first_tile_p50``: a new browser (empty cache) on the login page; from the click on "Log in" to
  the first machine tile of the overview (target <= 1500 ms).
* ``hmi_server_cpu_per_client``: CPU of the server process (runtime + simulator + HMI, this process) with
  ``--clients`` pages open minus with none, per client, in % of one core.

    .venv/bin/python bench/hmi.py [--loads 10] [--clients 10] [--oee-only | --pages-only]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.hmi.harness import CHROMIUM, CHROMIUM_ARGS, HmiServer, chromium_available

from plantlink.identity import Principal
from plantlink.samples import Quality, now_us, numeric_batch

PRESS = "windsor/stamping/press-line-1/press1"
FIRST_TILE_JS = """
window.__tileAt = null;
new MutationObserver((_, obs) => {
  if (document.querySelector('.pl-tile')) { window.__tileAt = performance.now(); obs.disconnect(); }
}).observe(document, {childList: true, subtree: true});
"""
WATCH_JS = """
([sel, want]) => {
  window.__seenAt = null;
  const el = document.querySelector(sel);
  const done = () => { window.__seenAt = performance.timeOrigin + performance.now(); };
  new MutationObserver((_, obs) => { if (el.innerText === want) { obs.disconnect(); done(); } })
    .observe(el, {childList: true, subtree: true, characterData: true});
}
"""


def emit(name: str, value: float, unit: str, **extra: Any) -> None:
    print(json.dumps({"name": name, "value": round(value, 1), "unit": unit, **extra}), flush=True)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def first_render(browser: Any, url: str, loads: int, cold: bool = True) -> list[float]:
    """Cold: a new browser context (empty cache) per load. Warm: one context, its cache kept."""
    out = []
    ctx = None
    for _ in range(loads):
        if ctx is None:
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            ctx.add_init_script(FIRST_TILE_JS)
        page = ctx.new_page()
        page.goto(url + "/hmi/")
        page.wait_for_selector(".pl-tile")
        out.append(float(page.evaluate("window.__tileAt")))
        page.close()
        if cold:
            ctx.close()
            ctx = None
    if ctx is not None:
        ctx.close()
    return out


async def _publish(server: HmiServer, tag_id: int, value: float) -> float:
    assert server.runtime is not None
    sent = time.time() * 1000
    server.runtime.bus.publish(numeric_batch([tag_id], now_us() + 3_600_000_000, [value], Quality.GOOD))
    return sent


def live_updates(browser: Any, server: HmiServer, clients: int, rounds: int = 5) -> tuple[list[float], float]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pages = []
    for _ in range(clients):
        p = ctx.new_page()
        p.goto(server.url + f"/hmi/machine/{PRESS}")
        p.wait_for_selector('[data-testid="value-spm_setpoint"]')
        pages.append(p)
    assert server.runtime is not None
    tag = server.runtime.tag_ids[f"{PRESS}/spm_setpoint"]
    lags: list[float] = []
    for r in range(rounds):
        value = 200.0 + r
        want = f"{value:,.1f} 1/min"
        for p in pages:
            p.evaluate(WATCH_JS, ['[data-testid="value-spm_setpoint"]', want])
        sent = server.call(_publish(server, tag, value))
        for p in pages:
            p.wait_for_function("window.__seenAt !== null", timeout=10_000)
            lags.append(float(p.evaluate("window.__seenAt")) - sent)
        time.sleep(0.5)
    proc = psutil.Process()
    cpu = _cpu(proc, 10.0)
    ctx.close()
    return lags, cpu


OEE_TABLE_JS = """
window.__tableAt = null;
new MutationObserver((_, obs) => {
  if (document.querySelector('[data-testid="periods-table"]')) {
    window.__tableAt = performance.now(); obs.disconnect(); }
}).observe(document, {childList: true, subtree: true});
"""
OEE_DAYS = 30


def oee_page(browser: Any, loads: int) -> tuple[list[float], int]:
    """Warm loads of the OEE page by shift over 30 days of a seeded site; (times in ms, shifts shown)."""
    from tests.hmi import seed as seeding
    from tests.hmi.conftest import seed_history

    seeding.HOURS = OEE_DAYS * 24  # the seed reads it when it runs
    with tempfile.TemporaryDirectory() as tmp:
        server = HmiServer(Path(tmp), {"default": Principal("bench", {"*": "viewer"})}, prepare=seed_history).start()
        try:
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            ctx.add_init_script(OEE_TABLE_JS)
            out, rows = [], 0
            for i in range(loads + 1):
                page = ctx.new_page()
                page.goto(server.url + "/hmi/oee?scope=windsor&range=30d&by=shift")
                page.wait_for_selector('[data-testid="periods-table"]', timeout=120_000)
                if i:  # the first load warms NiceGUI's page template
                    out.append(float(page.evaluate("window.__tableAt")))
                rows = page.locator('[data-testid="periods-table"] tbody tr').count()
                page.close()
            ctx.close()
            return out, rows
        finally:
            server.stop()


LINE = "windsor/stamping/press-line-1"
#: page -> (path, the selector of its content)
PAGES = {
    "overview": ("/hmi/", ".pl-tile"),
    "line": (f"/hmi/line/{LINE}", '[data-testid="oee"]'),
    "machine": (f"/hmi/machine/{PRESS}", '[data-testid="trend-chart"] canvas'),
    "alarms": ("/hmi/alarms", '[data-testid="alarm-list"]'),
    "approvals": ("/hmi/approvals", '[data-testid="approvals"]'),
    "audit": ("/hmi/audit", '[data-testid="audit-count"]'),
    "users": ("/hmi/users", '[data-testid="users-table"]'),
    "oee": ("/hmi/oee?scope=windsor", '[data-testid="periods-table"]'),
}
SEEN_JS = """
window.__seenAt = null;
new MutationObserver((_, obs) => {
  if (document.querySelector(%s)) { window.__seenAt = performance.now(); obs.disconnect(); }
}).observe(document, {childList: true, subtree: true});
"""
ADMIN = "admin"


def _login(page: Any, url: str, user: str, password: str) -> float:
    """Log in through the login page; ms from the click to the first tile of the overview."""
    page.goto(url + "/login?next=/hmi/")
    page.fill("#user", user)
    page.fill("#password", password)
    t0 = time.perf_counter()
    page.click("button[type=submit]")
    page.wait_for_selector(".pl-tile", timeout=60_000)
    return (time.perf_counter() - t0) * 1000


def page_loads(browser: Any, loads: int, machine: dict[str, Any]) -> None:
    """Warm loads of every page, and login to the first tile, on a server with the real authentication."""
    from tests.hmi.conftest import seed_history
    from tests.hmi.harness import demo_users_server

    from plantlink.auth import DEMO_USERS

    password = DEMO_USERS[ADMIN][1]
    with tempfile.TemporaryDirectory() as tmp, demo_users_server(Path(tmp), prepare=seed_history) as server:
        logins = []
        for _ in range(loads + 1):
            ctx = browser.new_context(viewport={"width": 1400, "height": 900})
            logins.append(_login(ctx.new_page(), server.url, ADMIN, password))
            ctx.close()
        logins = logins[1:]  # the first one builds NiceGUI's page template
        emit("hmi_login_to_first_tile_p50", statistics.median(logins), "ms", max=round(max(logins), 1),
             loads=loads, cache="cold", target=1500, load_avg=round(os.getloadavg()[0], 2), machine=machine)
        ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        _login(ctx.new_page(), server.url, ADMIN, password)
        for name, (path, selector) in PAGES.items():
            out = []
            for i in range(loads + 1):
                page = ctx.new_page()
                page.add_init_script(SEEN_JS % json.dumps(selector))
                page.goto(server.url + path)
                page.wait_for_selector(selector, state="attached", timeout=60_000)
                if i:  # the first load fills the cache
                    out.append(float(page.evaluate("window.__seenAt")))
                page.close()
            emit("hmi_page_warm_p50", statistics.median(out), "ms", page=name, max=round(max(out), 1), loads=loads,
                 cache="warm", target=800, load_avg=round(os.getloadavg()[0], 2))
        ctx.close()


def _cpu(proc: psutil.Process, seconds: float) -> float:
    t0, c0 = time.monotonic(), sum(proc.cpu_times()[:2])
    time.sleep(seconds)
    return 100 * (sum(proc.cpu_times()[:2]) - c0) / (time.monotonic() - t0)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loads", type=int, default=10)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--oee-only", action="store_true", help="measure the OEE-over-time page alone")
    ap.add_argument("--pages-only", action="store_true", help="measure the warm page loads and the login alone")
    args = ap.parse_args()
    if not chromium_available():
        sys.exit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    machine = {"cpu": _cpu_model(), "cores": psutil.cpu_count(),
               "python": platform.python_version()}
    if args.oee_only or args.pages_only:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            if args.oee_only:
                _emit_oee(browser, args.loads, machine)
            else:
                page_loads(browser, args.loads, machine)
            browser.close()
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = HmiServer(Path(tmp), {"default": Principal("bench", {"*": "operator"})}).start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                first_render(browser, server.url, 1)  # warm: NiceGUI builds its page template once
                times = first_render(browser, server.url, args.loads)
                emit("hmi_overview_first_render_p50", statistics.median(times), "ms", p90=round(pct(times, 0.9), 1),
                     max=round(max(times), 1), loads=args.loads, cache="cold", target=1000, machine=machine)
                warm = first_render(browser, server.url, args.loads, cold=False)
                emit("hmi_overview_render_warm_p50", statistics.median(warm), "ms", p90=round(pct(warm, 0.9), 1),
                     max=round(max(warm), 1), loads=args.loads, cache="warm")
                idle_cpu = _cpu(psutil.Process(), 10.0)
                lags, busy_cpu = live_updates(browser, server, args.clients)
                emit("hmi_live_update_p50", statistics.median(lags), "ms", max=round(max(lags), 1),
                     clients=args.clients, samples=len(lags), target=1000)
                emit("hmi_server_cpu_per_client", (busy_cpu - idle_cpu) / args.clients, "% of a core",
                     idle=round(idle_cpu, 1), with_clients=round(busy_cpu, 1), clients=args.clients)
                _emit_oee(browser, args.loads, machine)
                page_loads(browser, args.loads, machine)
                browser.close()
        finally:
            server.stop()


def _emit_oee(browser: Any, loads: int, machine: dict[str, Any]) -> None:
    times, rows = oee_page(browser, loads)
    emit("hmi_oee_by_shift_30d_p50", statistics.median(times), "ms", max=round(max(times), 1), loads=loads,
         shifts=rows, days=OEE_DAYS, scope="windsor", target=1000, load_avg=round(os.getloadavg()[0], 2),
         machine=machine)


if __name__ == "__main__":
    main()
