"""What the web UI's live view costs the server: its CPU time over a
quiet period with no browser, then with one headless chromium showing the
live view (an event a second), no traffic in either.

Usage: .venv/bin/python bench/ui_live_cost.py SERVER_PID URL KEY [SECONDS]
(SECONDS per phase, default 60). Prints each phase's share of one core.
"""

import os
import sys
import time

from playwright.sync_api import sync_playwright

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User and system CPU time of process `pid` so far, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def share_of_a_core(pid, seconds):
    start_cpu, start = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - start_cpu) / (time.monotonic() - start)


def main(pid, url, key, seconds=60):
    seconds = float(seconds)
    idle = share_of_a_core(pid, seconds)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        page = browser.new_page()
        page.goto(f"{url}/ui/")
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Overview").wait_for()
        page.goto(f"{url}/ui/#/live")
        page.locator("#live-table table").wait_for(timeout=10_000)
        watched = share_of_a_core(pid, seconds)
        browser.close()
    print(f"no browser:          {idle * 100:.3f} % of a core over {seconds:.0f} s")
    print(f"live view open:      {watched * 100:.3f} % of a core over {seconds:.0f} s")
    print(f"the live view costs: {(watched - idle) * 100:.3f} % of a core")


if __name__ == "__main__":
    main(*sys.argv[1:])
