"""Browser tests of the mask editor, training and merge tuning views: Debian's chromium driven by Playwright
against a real uvicorn server, on GRID faces. The screenshots are the README's."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from facedouble.mask import read_labels
from tests.studio.conftest import SHOT, TOKEN
from tests.studio.test_browser import CHROMIUM, DOCS

FS = "facesets/bbaf2n"


def serve(ws: Path):
    """The studio on a free loopback port (a context manager yielding its URL)."""
    pytest.importorskip("uvicorn")
    from facedouble.studio.server import serve_in_thread

    return serve_in_thread(ws, TOKEN)


@contextlib.contextmanager
def browser_page(width: int = 1280, height: int = 760):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser.new_page(viewport={"width": width, "height": height}, bypass_csp=True)
        finally:
            browser.close()


def test_draw_a_polygon_save_and_reload_shows_it(workspace):
    from facedouble.faceset.meta import read_face, write_face
    from facedouble.faceset.xseg import encode_mask

    names = sorted(p.name for p in (workspace / FS).glob("*.png"))
    rgb, meta = read_face(workspace / FS / names[0])  # a predicted mask to overlay, as `mask apply` stores it
    yy, xx = np.mgrid[0:64, 0:64]
    meta.xseg = encode_mask((((xx - 32) / 20.0) ** 2 + ((yy - 36) / 24.0) ** 2 < 1).astype(np.float32), "test")
    write_face(workspace / FS / names[0], rgb, meta)
    with serve(workspace) as url, browser_page() as page:
        page.goto(f"{url}/mask?faceset={FS}&token={TOKEN}")
        page.wait_for_selector("body[data-ready='1']")
        box = page.locator("#canvas").bounding_box()
        s = box["width"] / 64  # face pixels -> screen
        for x, y in ((12, 20), (52, 20), (54, 60), (10, 60)):
            page.mouse.click(box["x"] + x * s, box["y"] + y * s)
        page.keyboard.press("Enter")
        page.keyboard.press("w")  # exclude mode: a hole over the mouth
        for x, y in ((26, 48), (38, 48), (32, 54)):
            page.mouse.click(box["x"] + x * s, box["y"] + y * s)
        page.keyboard.press("Enter")
        page.keyboard.press("Control+z")  # undo the close, redo it
        assert page.locator("#canvas").get_attribute("data-polygons") == "1"
        page.keyboard.press("Control+Shift+z")
        assert page.locator("#canvas").get_attribute("data-polygons") == "2"
        page.check("#showpred")
        page.keyboard.press("s")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('saved')")
        page.wait_for_function("document.getElementById('pred').complete && !document.getElementById('pred').hidden")
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / "studio_mask_editor.png"))
        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator("#canvas").get_attribute("data-polygons") == "2"
        assert names[0] in page.locator("#pos").text_content()
        page.keyboard.press("d")  # next face: unlabelled, nothing drawn
        page.wait_for_function(f"!document.getElementById('pos').textContent.startsWith('{names[0]}')")
        assert page.locator("#canvas").get_attribute("data-polygons") == "0"
    labels = read_labels(workspace / FS / names[0])
    assert len(labels.include) == 1 and len(labels.exclude) == 1 and len(labels.include[0]) == 4
    assert np.allclose(labels.include[0][0], (12, 20), atol=0.6)
    assert np.allclose(labels.exclude[0][2], (32, 54), atol=0.6)


def test_tuning_preview_changes_with_the_colour_mode_and_saves_overrides(trained_workspace):
    shutil.rmtree(trained_workspace / "overrides", ignore_errors=True)  # no keys left by the other tuning tests
    with serve(trained_workspace) as url, browser_page(1400, 820) as page:
        page.goto(f"{url}/merge?model=models/tiny&faceset={FS}&frame=10&token={TOKEN}")
        page.wait_for_selector("body[data-ready='1']")
        page.wait_for_function("document.getElementById('swap').dataset.frame === '10' && "
                               "document.getElementById('swap').naturalWidth > 0", timeout=60_000)
        before = page.locator("#swap").screenshot()
        page.select_option("#s_colour", "none")
        page.wait_for_function("(document.getElementById('swap').dataset.settings || '')"
                               ".includes('\"colour\":\"none\"')", timeout=60_000)
        page.wait_for_function("document.getElementById('swap').complete")
        after = page.locator("#swap").screenshot()
        assert before != after
        page.click("#key")  # colour none from frame 10 on
        page.fill("#rfrom", "40")
        page.fill("#rto", "49")
        page.select_option("#s_colour", "mkl")
        page.click("#range")
        page.click("#save")
        page.wait_for_function("document.getElementById('saved').dataset.path")
        page.select_option("#s_colour", "rct")  # the screenshot: an unsaved try on top of the saved rules
        page.fill("#wipe", "60")
        page.dispatch_event("#wipe", "input")
        page.wait_for_function("(document.getElementById('swap').dataset.settings || '')"
                               ".includes('\"colour\":\"rct\"') && "
                               "document.getElementById('status').textContent.startsWith('frame')", timeout=60_000)
        page.wait_for_function("document.getElementById('swap').complete")
        page.screenshot(path=str(DOCS / "studio_merge.png"))
        path = trained_workspace / page.locator("#saved").get_attribute("data-path")
    rules = json.loads(path.read_text())["override"]
    assert {"frames": "10-", "colour": "none"}.items() <= rules[0].items()
    assert rules[1]["frames"] == "40-49" and rules[1]["colour"] == "mkl"


def test_start_a_tiny_training_watch_the_loss_and_stop_it(trained_workspace):
    model = trained_workspace / "models" / "live"
    with serve(trained_workspace) as url, browser_page(1280, 800) as page:
        page.goto(f"{url}/train?token={TOKEN}")
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator("#src option").count() == 1  # the model folders' preview.png are no facesets
        page.fill("#model", "models/live")
        page.select_option("#preset", "tiny")
        page.fill("#max_minutes", "5")  # a capped session: the eager optimizer step, no compile
        page.fill("#save_every_min", "60")
        page.click("#start")
        card = "[data-model='models/live']"
        page.wait_for_selector(f"{card}[data-state='running']", timeout=60_000)
        # the chart moves with the trainer's status line, long before the first save
        page.wait_for_function(f"Number(document.querySelector(\"{card} canvas\").dataset.points) >= 2 || "
                               f"document.querySelector(\"{card}\").dataset.state !== 'running'", timeout=120_000)
        assert page.locator(card).get_attribute("data-state") == "running", page.locator(card).text_content()
        assert not (model / "loss.csv").exists() or len((model / "loss.csv").read_text().splitlines()) <= 1
        page.click(f"{card} button:has-text('stop')")
        page.wait_for_selector(f"{card}[data-state='cancelled']", timeout=60_000)
        page.wait_for_function(f"document.querySelector(\"{card}\").dataset.checkpoint !== ''", timeout=30_000)
        page.wait_for_function(f"document.querySelector(\"{card} img.preview\").naturalWidth > 0", timeout=30_000)
        page.screenshot(path=str(DOCS / "studio_training.png"))
    assert (model / "latest.json").is_file() and (model / "preview.png").is_file()
    assert len((model / "loss.csv").read_text().splitlines()) >= 3  # the stop saved the curve


def test_a_rendered_shot_passes_verify_in_the_verify_page(trained_workspace, rendered_shot):
    with serve(trained_workspace) as url, browser_page(1280, 760) as page:
        page.goto(f"{url}/verify?token={TOKEN}")
        page.wait_for_selector("body[data-ready='1']")
        page.select_option("#file", SHOT)
        page.click("#go")
        page.wait_for_function("document.getElementById('verdict').dataset.verdict", timeout=120_000)
        assert page.locator("#verdict").get_attribute("data-verdict") == "facedouble-render", \
            page.locator("#summary").text_content()
        assert page.locator("#verdict").get_attribute("class") == "ok"
        assert "C2PA" in page.locator("#report").text_content()
        page.screenshot(path=str(DOCS / "studio_verify.png"))
