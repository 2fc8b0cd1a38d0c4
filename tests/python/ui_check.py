"""The web UI in a real browser: Debian's chromium, headless, driven by
Playwright.

Usage: ui_check.py BASE_URL ADMIN_KEY READER_KEY CHROMIUM SCREENSHOT_DIR.
The server serves iris version 1 (Production) and holds unpromoted
versions 2 and 3. Signs in with the admin key, finds iris serving version 1 on
the overview, promotes version 2 on the model page through the
confirmation (which must name what changes) after shifted traffic made
the drift chart gain points above the threshold (one line per feature) and
the histogram of a chosen feature show the shift, and sees the overview serve
version 2; starts a rollout of version 3 in the rollout view, with
traffic flowing, and watches its weight go 20 % → 60 % → 100 %; sees
that traffic second by second in the live view; uploads
a 100,000-row CSV in the jobs view, sees the upload bar reach 100 % and
the job succeed, and downloads a result per row; makes a key (its token
shown once) and revokes the reader's. A reader sees no promote control, and the server refuses the
call anyway. Screenshots of each step go to SCREENSHOT_DIR. Prints OK.
"""

import json
import os
import sys
import threading
import time

import requests

from playwright.sync_api import expect, sync_playwright


def sign_in(page, base, key):
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/ui/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def serving_cell(page, model):
    return page.locator(f'.serving[data-model="{model}"]')


class Traffic:
    """Inference requests to iris from a thread, until stopped."""

    def __init__(self, base, key):
        meta = requests.get(f"{base}/v2/models/iris", timeout=10,
                            headers={"authorization": f"Bearer {key}"}).json()
        self.body = {"inputs": [{"name": meta["inputs"][0]["name"], "shape": [1, 4],
                                 "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
        self.url = f"{base}/v2/models/iris/infer"
        self.headers = {"authorization": f"Bearer {key}"}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        with requests.Session() as session:
            while not self.stopped.is_set():
                session.post(self.url, json=self.body, headers=self.headers, timeout=10)

    def stop(self):
        self.stopped.set()
        self.thread.join()


def roll_out(page, base, key, shots):
    """Starts a rollout of version 3 in the UI and watches its weight move
    to the end, with traffic flowing."""
    traffic = Traffic(base, key)
    try:
        page.get_by_role("link", name="iris", exact=True).click()
        page.get_by_role("link", name="Rollout").click()
        expect(page.get_by_role("heading", name="Rollout of iris")).to_be_visible()
        page.get_by_label("Canary version").select_option("3")
        page.get_by_label("Steps (canary %)").fill("20,60")
        page.get_by_label("Shortest step (s)").fill("1")
        page.get_by_label("Fewest canary requests per step").fill("20")
        page.get_by_label("Check the gates every (ms)").fill("200")
        page.get_by_label("Most canary p99 / stable p99").fill("10")
        page.get_by_text("More settings").click()
        page.get_by_label("Failed checks in a row that roll back").fill("3")
        page.get_by_label("Most 5xx rate rise").fill("0.05")
        page.get_by_label("Fallback rate rise rolls back at once").check()
        page.screenshot(path=f"{shots}/rollout-start.png", full_page=True)
        page.get_by_role("button", name="Start rollout").click()
        dialog = page.locator("dialog#confirm")
        expect(dialog).to_contain_text("Version 3 of iris takes 20 %, then 60 % of the traffic")
        dialog.get_by_role("button", name="Start rollout").click()
        weights, deadline = [], time.monotonic() + 90
        while time.monotonic() < deadline:
            state = page.locator("#rollout-state").inner_text()
            weights.append(page.locator("#rollout-weight-text").inner_text())
            if len(weights) == 3:
                page.screenshot(path=f"{shots}/rollout.png", full_page=True)
            if state.startswith("completed") or state.startswith("rolled back"):
                break
            time.sleep(0.2)
        assert state.startswith("completed"), (state, weights)
        seen = [int(w.rstrip(" %")) for w in weights]
        assert seen[0] == 20 and seen[-1] == 100 and seen == sorted(seen), seen
        expect(page.locator("ol.timeline")).to_contain_text("completed")
        settings = requests.get(f"{base}/api/v1/models/iris/rollout", timeout=10,
                                headers={"authorization": f"Bearer {key}"}).json()["settings"]
        assert settings["failure_threshold"] == 3, settings
        assert settings["gates"]["error_rate"] == {"max": 0.05, "critical": True}, settings
        assert settings["gates"]["fallback_rate"] == {"max": 0.01, "critical": True}, settings
        assert settings["gates"]["p99_ratio"]["max"] == 10, settings
        assert settings["approve_final"] is False and settings.get("sticky_header") is None, settings
    finally:
        traffic.stop()


def see_drift(page, base, key, shots):
    """Shifted traffic to iris (version 1, which carries its reference
    profile) makes the drift chart gain points above the threshold."""
    auth = {"authorization": f"Bearer {key}"}
    config = {"monitoring": {"window_rows": 50, "window_seconds": 3600,
                             "max_observed_rows_per_s": 10_000}}
    stored = requests.put(f"{base}/api/v1/models/iris/serving-config", json=config,
                          headers=auth, timeout=10)
    assert stored.status_code == 200, stored.text
    page.goto(f"{base}/ui/#/models/iris/drift")
    expect(page.get_by_role("heading", name="Drift of iris")).to_be_visible()
    shifted = [[7.5 + i % 3, 1.5, 1.0 + i % 2, 2.4] for i in range(10)]
    body = {"inputs": [{"name": "input", "shape": [10, 4], "datatype": "FP32",
                        "data": [x for row in shifted for x in row]}]}
    for _ in range(25):
        answer = requests.post(f"{base}/v2/models/iris/infer", json=body, headers=auth, timeout=10)
        assert answer.status_code == 200, answer.text
    page.wait_for_function(
        """() => Number(document.querySelector('#drift-chart-1')?.dataset.above ?? 0) >= 3""",
        timeout=30_000,
    )
    chart = page.locator("#drift-chart-1")
    assert chart.get_attribute("data-features") == "4", chart.get_attribute("data-features")
    # The histogram of a chosen feature: the shifted sepal lengths (7.5 to
    # 9.5, past the reference's largest) fill the last bin, which holds
    # only a small share of the reference.
    page.get_by_label("Histogram of").select_option("sepal_length")
    histogram = page.locator("#drift-histogram-1[data-feature='sepal_length']")
    expect(histogram).to_be_visible()
    expect(histogram.locator("canvas")).to_be_visible()
    reference = json.loads(histogram.get_attribute("data-reference"))
    window = json.loads(histogram.get_attribute("data-window"))
    assert len(reference) == len(window) >= 2, (reference, window)
    assert window[-1] > 0.5 > reference[-1], (reference, window)
    # The pick survives the page's refresh (which waits while the picker
    # has the focus).
    page.get_by_role("heading", name="Drift of iris").click()
    page.wait_for_timeout(2500)
    expect(page.locator("#drift-histogram-1")).to_have_attribute("data-feature", "sepal_length")
    expect(page.locator("#drift")).to_contain_text("Data contract violations")
    page.screenshot(path=f"{shots}/drift.png", full_page=True)
    page.get_by_role("link", name="Overview", exact=True).click()
    expect(page.locator("tbody tr", has_text="iris").get_by_role("link", name="drifted")).to_be_visible()


def watch_live(page, base, key, shots):
    """The live view: a second-by-second figure of iris's traffic, and
    charts that gain points."""
    traffic = Traffic(base, key)
    try:
        page.get_by_role("link", name="Live").click()
        expect(page.get_by_role("heading", name="Live traffic")).to_be_visible()
        page.wait_for_function(
            """() => [...document.querySelectorAll('#live-table .rps[data-model="iris"]')]
                     .some((e) => parseFloat(e.textContent) > 0)""",
            timeout=20_000,
        )
        expect(page.locator("#chart-rps canvas")).to_have_count(1)
        expect(page.locator("#chart-latency")).to_contain_text("p99")
        time.sleep(3)
        page.screenshot(path=f"{shots}/live.png", full_page=True)
        # The overview shows the same traffic, per model.
        page.get_by_role("link", name="Overview", exact=True).click()
        page.wait_for_function(
            """() => parseFloat(document.querySelector(
                 'span.live[data-model="iris"][data-field="rps"]')?.textContent) > 0""",
            timeout=20_000,
        )
        expect(page.locator('span.live[data-model="iris"][data-field="breaker"]')).to_have_text("closed")
        page.screenshot(path=f"{shots}/overview-traffic.png", full_page=True)
    finally:
        traffic.stop()


ROWS = 100_000


def score_a_file(page, shots):
    """Uploads a 100,000-row CSV in the jobs view, sees the upload reach
    100 % and the job succeed, and downloads one result per row."""
    path = os.path.join(shots, "rows.csv")
    with open(path, "w") as f:
        f.write("sepal_length,sepal_width,petal_length,petal_width\n")
        for i in range(ROWS):
            f.write(f"{4.5 + (i % 30) / 10},{3.0 + (i % 7) / 10},{1.0 + (i % 50) / 10},{(i % 25) / 10}\n")
    page.get_by_role("link", name="Jobs").click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    page.get_by_label("Model").select_option("iris")
    page.get_by_label("File (CSV, JSON lines, Parquet)").set_input_files(path)
    page.get_by_role("button", name="Upload and score").click()
    expect(page.locator("#upload-percent")).to_have_text("100 %", timeout=60_000)
    expect(page.get_by_role("status")).to_contain_text("accepted")
    row = page.locator("#jobs tbody tr").first
    expect(row).to_contain_text("succeeded", timeout=180_000)
    expect(row).to_contain_text(f"{ROWS} / {ROWS}")
    page.screenshot(path=f"{shots}/jobs.png", full_page=True)
    with page.expect_download() as download:
        row.get_by_role("button", name="Results").click()
    saved = os.path.join(shots, "results.csv")
    download.value.save_as(saved)
    with open(saved) as f:
        lines = sum(1 for _ in f)
    assert lines == ROWS + 1, lines  # a header, then a result per row


def main(base, admin_key, reader_key, chromium, shots):
    os.makedirs(shots, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        sign_in(page, base, admin_key)
        expect(serving_cell(page, "iris")).to_have_text("1")
        expect(page.locator("#who")).to_contain_text("admin")
        page.screenshot(path=f"{shots}/overview.png", full_page=True)

        see_drift(page, base, admin_key, shots)

        # Promote version 2 through the confirmation.
        page.get_by_role("link", name="iris", exact=True).click()
        expect(page.get_by_role("heading", name="iris", exact=True)).to_be_visible()
        expect(page.locator("#serving-now")).to_contain_text("Serving version 1")
        page.get_by_label("Stage for version 2").select_option("Production")
        page.locator('button.promote[data-version="2"]').click()
        dialog = page.locator("dialog#confirm")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("Version 2 of iris moves from None to Production.")
        expect(dialog).to_contain_text("Version 1 now in Production moves to Archived.")
        page.screenshot(path=f"{shots}/promote-confirmation.png")
        dialog.get_by_role("button", name="Move to Production").click()
        expect(page.get_by_role("status")).to_contain_text("iris serves version 2")
        expect(page.locator("#serving-now")).to_contain_text("Serving version 2")
        expect(page.get_by_role("heading", name="History")).to_be_visible()
        expect(page.locator("ol.timeline")).to_contain_text("transition stage version 2")
        page.screenshot(path=f"{shots}/model.png", full_page=True)

        # Try it: a form of the named features, filled from the reference
        # profile, answered with the version and the latency.
        expect(page.get_by_label("petal_length")).not_to_have_value("")
        page.get_by_label("petal_length").fill("6.0")
        page.get_by_label("petal_width").fill("2.5")
        page.get_by_role("button", name="Predict").click()
        expect(page.locator("#try-answer")).to_contain_text("Version 2 answered in")
        expect(page.locator("#try-answer")).to_contain_text('"label": 2')
        page.screenshot(path=f"{shots}/try-it.png", full_page=True)

        page.get_by_role("link", name="← Overview").click()
        expect(serving_cell(page, "iris")).to_have_text("2")

        roll_out(page, base, admin_key, shots)
        watch_live(page, base, admin_key, shots)
        score_a_file(page, shots)

        # Dark, at phone width, the page still reads.
        page.get_by_role("link", name="Overview", exact=True).click()
        page.get_by_role("button", name="Switch between light and dark").click()
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=f"{shots}/overview-dark-phone.png", full_page=True)
        assert not errors, errors

        # A reader sees no promote control; the server refuses anyway.
        reader = browser.new_page(viewport={"width": 1280, "height": 800})
        sign_in(reader, base, reader_key)
        expect(reader.locator("#who")).to_contain_text("reader")
        reader.goto(f"{base}/ui/#/models/iris")
        expect(reader.locator("#serving-now")).to_contain_text("Serving version 3")
        expect(reader.locator("button.promote")).to_have_count(0)
        expect(reader.get_by_role("button", name="Set alias")).to_have_count(0)
        refused = reader.evaluate(
            """async (key) => (await fetch('/api/v1/models/iris/versions/1/stage', {
                   method: 'POST',
                   headers: {authorization: `Bearer ${key}`, 'content-type': 'application/json'},
                   body: JSON.stringify({stage: 'Production'})})).status""",
            reader_key,
        )
        assert refused == 403, refused
        reader.screenshot(path=f"{shots}/reader-model.png", full_page=True)

        # An admin makes a key in the UI (its token shown once), and the
        # reader's key, revoked there, stops working.
        page.set_viewport_size({"width": 1280, "height": 800})
        page.get_by_role("link", name="Keys").click()
        page.get_by_label("Name").fill("ci-bot")
        page.get_by_label("Role").select_option("predictor")
        page.get_by_role("button", name="Create key").click()
        token = page.get_by_label("New token").input_value()
        assert token.startswith("fsk_"), token
        who = requests.get(f"{base}/api/v1/whoami", timeout=10,
                           headers={"authorization": f"Bearer {token}"}).json()
        assert who["name"] == "ci-bot" and who["role"] == "predictor", who
        page.locator('button.revoke[data-key="analyst"]').click()
        page.locator("dialog#confirm").get_by_role("button", name="Revoke").click()
        expect(page.locator("#keys")).to_contain_text("revoked")
        page.screenshot(path=f"{shots}/keys.png", full_page=True)
        gone = requests.get(f"{base}/api/v1/models", timeout=10,
                            headers={"authorization": f"Bearer {reader_key}"})
        assert gone.status_code == 401, gone.status_code
        expect(reader.locator("#nav-keys")).to_be_hidden()

        # The serving config editor shows the server's refusal in place;
        # rolling back brings the previous Production version back.
        page.goto(f"{base}/ui/#/models/iris")
        page.get_by_label("Revision", exact=False).fill('{"serve": "nowhere"}')
        page.get_by_role("button", name="Store revision").click()
        page.locator("dialog#confirm").get_by_role("button", name="Store revision").click()
        expect(page.locator("#config-error [role=alert]")).to_contain_text("serve")
        page.screenshot(path=f"{shots}/config-error.png", full_page=True)
        page.get_by_role("button", name="Roll back").click()
        page.locator("dialog#confirm").get_by_role("button", name="Roll back").click()
        expect(page.get_by_role("status")).to_contain_text("Version 2 is in Production again")

        # An A/B split in the serving config shows on the overview.
        split = {"serve": "production", "traffic": {"split": [
            {"version": 2, "weight": 70}, {"version": 3, "weight": 30}]}}
        stored = requests.put(f"{base}/api/v1/models/iris/serving-config", json=split, timeout=10,
                              headers={"authorization": f"Bearer {admin_key}"})
        assert stored.status_code == 200, stored.text
        page.get_by_role("link", name="Overview", exact=True).click()
        expect(page.locator("span.traffic[data-model=iris]")).to_have_text("A/B: v2 70 %, v3 30 %")

        # A wrong key is refused in place, saying so.
        stranger = browser.new_page()
        stranger.goto(f"{base}/ui/")
        stranger.get_by_label("API key").fill("fsk_not_a_key")
        stranger.get_by_role("button", name="Sign in").click()
        expect(stranger.get_by_role("alert")).to_be_visible()
        browser.close()
    print("OK")


if __name__ == "__main__":
    main(*sys.argv[1:6])
