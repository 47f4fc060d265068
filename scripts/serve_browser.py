#!/usr/bin/env python3
"""The browser test's driver (tests/cli_serve_browser.sh): cmcr serve's page in headless
Chromium through Debian's python3-selenium and chromium-driver, with no network but the
server's (the page must need none). It types a text and searches, then uploads a sound, and
checks what the page shows against `cmcr search --json` for the same queries (given as files):
as many image cards as results, their paths and scores (descending), the other results'
list, thumbnails and heatmaps loaded (naturalWidth > 0); then a corrupt upload must show the
server's error. Saves a screenshot of the sound's results and checks that it decodes and is
not blank. Exits 0 when every check passed, 1 otherwise (77: selenium or Chromium missing).
"""
import argparse
import json
import os
import shutil
import sys
import time

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    print("SKIPPED: needs Debian's python3-selenium")
    sys.exit(77)

FAILS = []


def check(ok, what):
    print(("  ok: " if ok else "FAIL: ") + what)
    if not ok:
        FAILS.append(what)
    return ok


def browser(chromium, driver_path):
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--disable-gpu", "--window-size=1280,1040", "--no-first-run",
              "--disable-dev-shm-usage", "--disable-extensions", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--hide-scrollbars",
              # nothing but this machine resolves: a page that needed the network would break
              "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--proxy-server=direct://"):
        opts.add_argument(a)
    if os.geteuid() == 0:
        opts.add_argument("--no-sandbox")  # Chromium's sandbox refuses to run as root
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver is named explicitly, so Selenium never looks for (or downloads) one.
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)


def wait(d, what, cond, secs=60):
    try:
        WebDriverWait(d, secs, poll_frequency=0.1).until(lambda drv: cond())
        return True
    except TimeoutException:
        return check(False, "waited %d s for %s" % (secs, what))


def js(d, code, *args):
    return d.execute_script(code, *args)


SETTLED = """
const cards = [...document.querySelectorAll('#cards .card')];
return cards.every(c => c.classList.contains('heated') || c.querySelector('.note'));
"""

SHOWN = """
const items = sel => [...document.querySelectorAll(sel)].map(e => ({
  rank: +e.dataset.rank, score: +e.dataset.score, path: e.dataset.path,
  shownRank: e.querySelector('.rank').textContent, shownScore: e.querySelector('.score').textContent,
  thumb: e.querySelector('.thumb') ? e.querySelector('.thumb').naturalWidth : null,
  heat: e.querySelector('.heat') ? e.querySelector('.heat').naturalWidth : null,
  note: e.querySelector('.note') ? e.querySelector('.note').textContent : null}));
return {cards: items('#cards .card'), list: items('#list li'), error: document.getElementById('error').hidden ? null :
        document.getElementById('error').textContent, status: document.getElementById('status').textContent};
"""


def same(shown, expected, what, heat):
    exp = expected["results"]
    check(len(shown) == len(exp), "%s: %d shown, %d from cmcr search" % (what, len(shown), len(exp)))
    for s, e in zip(shown, exp):
        ok = s["path"] == e["path"] and s["rank"] == e["rank"] and abs(s["score"] - e["score"]) <= 1e-5
        ok = ok and s["shownRank"] == "#%d" % e["rank"] and s["shownScore"] == "%.4f" % e["score"]
        if not check(ok, "%s #%d: %s %.6f as cmcr search's %s %.6f" % (what, e["rank"], s["path"], s["score"],
                                                                        e["path"], e["score"])):
            break
    scores = [s["score"] for s in shown]
    check(scores == sorted(scores, reverse=True), "%s: scores in descending order" % what)
    if heat is not None:
        check(all(s["thumb"] and s["thumb"] > 0 for s in shown), "%s: every thumbnail loaded" % what)
        if heat:
            check(all(s["heat"] and s["heat"] > 0 and not s["note"] for s in shown),
                  "%s: every heatmap loaded (naturalWidth > 0): %s" % (what, [(s["heat"], s["note"]) for s in shown]))


def search_and_check(d, what, start, images, others, heat=True):
    start()
    ok = wait(d, what + ": results", lambda: len(d.find_elements(By.CSS_SELECTOR, "#cards .card")) == len(images["results"])
              and "images" in d.find_element(By.ID, "status").text)
    ok = ok and wait(d, what + ": heatmaps", lambda: js(d, SETTLED))
    shown = js(d, SHOWN)
    check(shown["error"] is None, "%s: no error shown (%s)" % (what, shown["error"]))
    same(shown["cards"], images, what + ", image cards", heat)
    same(shown["list"], others, what + ", other results", None)
    return ok


def screenshot_ok(path):
    from PIL import Image, ImageStat
    im = Image.open(path)
    im.load()
    stat = ImageStat.Stat(im.convert("L"))
    colours = len(im.convert("RGB").getcolors(1 << 24) or [])
    check(im.size[0] >= 800 and im.size[1] >= 600 and stat.stddev[0] > 20 and colours > 500,
          "screenshot %s decodes: %dx%d, grey stddev %.1f, %d colours (not blank)" %
          (path, im.size[0], im.size[1], stat.stddev[0], colours))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--text", required=True, help="the text query")
    ap.add_argument("--text-images", required=True, help="cmcr search --json of the text, images only")
    ap.add_argument("--text-others", required=True, help="... the other modalities")
    ap.add_argument("--sound", required=True, help="the sound file to upload")
    ap.add_argument("--sound-images", required=True)
    ap.add_argument("--sound-others", required=True)
    ap.add_argument("--corrupt", required=True, help="a corrupt sound file to upload")
    ap.add_argument("--error", required=True, help="what the corrupt upload's message must contain")
    ap.add_argument("--top", type=int, required=True)
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--driver", default=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    a = ap.parse_args()
    for exe in (a.chromium, a.driver):
        if not os.access(exe, os.X_OK):
            print("SKIPPED: needs Debian's chromium and chromium-driver (%s is missing)" % exe)
            return 77
    load = lambda p: json.load(open(p))
    d = browser(a.chromium, a.driver)
    try:
        t0 = time.time()
        d.get(a.url + "/")
        wait(d, "the page's description of the server", lambda: d.find_element(By.ID, "info").text not in ("", "loading…"))
        check("cmcr" in d.title, "the page's title: %r" % d.title)
        js(d, "document.getElementById('top').value = arguments[0]", a.top)

        def type_text():
            box = d.find_element(By.ID, "text")
            box.clear()
            box.send_keys(a.text)
            d.find_element(By.ID, "textgo").click()
        search_and_check(d, "the text %r" % a.text, type_text, load(a.text_images), load(a.text_others))

        upload = lambda path: d.find_element(By.ID, "file").send_keys(os.path.abspath(path))
        search_and_check(d, "the sound %s" % os.path.basename(a.sound), lambda: upload(a.sound),
                         load(a.sound_images), load(a.sound_others))
        # the whole page: the window as tall as the document
        height = js(d, "return document.documentElement.scrollHeight")
        d.set_window_size(1280, min(int(height) + 160, 4000))
        d.save_screenshot(a.screenshot)
        severe = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
        check(not severe, "no error in the browser's console: %s" % severe)
        origin = a.url.rstrip("/")
        foreign = js(d, "return performance.getEntriesByType('resource').map(e => e.name)"
                        ".filter(n => !n.startsWith(arguments[0]) && !n.startsWith('blob:') && !n.startsWith('data:'))",
                     origin)
        check(not foreign, "every resource came from the server: %s" % foreign)

        upload(a.corrupt)
        wait(d, "the corrupt upload's error", lambda: js(d, SHOWN)["error"] is not None)
        shown = js(d, SHOWN)
        check(shown["error"] is not None and a.error in shown["error"],
              "a corrupt upload shows the server's message: %r" % shown["error"])
        check(not shown["cards"] and not shown["list"], "no results shown with the error")
        print("  the browser run took %.1f s" % (time.time() - t0))
    finally:
        d.quit()
    screenshot_ok(a.screenshot)
    print("serve_browser: %s" % ("all checks passed" if not FAILS else "%d check(s) failed" % len(FAILS)))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
