"""Browser test: Debian's chromium driven by Playwright against a real uvicorn server on GRID faces."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from facedouble.faceset.store import REJECTS_DIR
from tests.studio.conftest import TOKEN

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parents[2] / "docs"
THUMBS_LOADED = "[...document.querySelectorAll('.cell img')].every(i => i.complete && i.naturalWidth > 0)"


@pytest.fixture()
def server(workspace):
    pytest.importorskip("uvicorn")
    from facedouble.studio.server import serve_in_thread

    with serve_in_thread(workspace, TOKEN) as url:
        yield url


def test_reject_a_face_in_the_gallery_moves_it_on_disk(server, workspace):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    folder = workspace / "facesets" / "bbaf2n"
    n_faces = len(list(folder.glob("*.png")))
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        # bypass_csp only lets the test evaluate its own JS checks; the pages themselves run under the CSP
        page = browser.new_page(viewport={"width": 1280, "height": 720}, bypass_csp=True)
        page.goto(f"{server}/?token={TOKEN}")
        assert "token" not in page.url  # redirected, the token is now an HttpOnly cookie
        page.wait_for_selector("#facesets a")
        page.wait_for_selector("#clips li button")
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / "studio_workspace.png"))
        page.click("#facesets a")
        page.wait_for_selector(".cell img")
        page.wait_for_function(THUMBS_LOADED)
        assert page.locator(".cell").count() == n_faces
        name = page.locator(".cell").nth(2).get_attribute("data-name")
        page.locator(".cell").nth(2).click()
        page.wait_for_selector(".cell.selected")
        # overlays drawn by the server into the thumbnails; double-click: the face panel with its source frame
        page.check("#ov_landmarks")
        page.check("#ov_mask")
        page.wait_for_function("[...document.querySelectorAll('.cell img')].every(i => i.src.includes('overlay=')"
                               " && i.complete && i.naturalWidth > 0)")
        page.locator(".cell").nth(4).dblclick()
        page.wait_for_function("document.getElementById('face').dataset.frame && "
                               "document.getElementById('fsrc').complete && "
                               "document.getElementById('fsrc').naturalWidth > 0")
        assert "clips/bbaf2n.mpg" in page.locator("#fsrcinfo").text_content()
        page.screenshot(path=str(DOCS / "studio_gallery.png"))
        page.click("#fclose")
        page.click("#act")
        page.wait_for_function(f"document.querySelectorAll('.cell').length === {n_faces - 1}")
        assert not document_has(page, name)
        browser.close()
    assert not (folder / name).exists() and (folder / REJECTS_DIR / "manual" / name).is_file()


def document_has(page, name: str) -> bool:
    return page.evaluate("n => [...document.querySelectorAll('.cell')].some(c => c.dataset.name === n)", name)


def test_grid_keeps_only_visible_rows_in_the_dom(server, workspace):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    src = sorted((workspace / "facesets" / "bbaf2n").glob("*.png"))
    big = workspace / "facesets" / "big"
    big.mkdir()
    for i in range(3000):  # symlinks inside the workspace: a large faceset without 3000 decodes
        (big / f"f{i:05d}.png").symlink_to(src[i % len(src)])
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 640}, bypass_csp=True)
        page.goto(f"{server}/gallery?faceset=facesets/big&token={TOKEN}")
        page.wait_for_selector(".cell")
        first = page.locator(".cell").count()
        assert 0 < first < 120  # about 8 columns x 7 rows, not 3000
        page.evaluate("document.getElementById('grid').scrollTop = 150000")
        page.wait_for_function("document.querySelector('.cell') && Number(document.querySelector('.cell')"
                               ".dataset.index) > 1000")
        assert page.locator(".cell").count() < 120
        page.wait_for_function(THUMBS_LOADED)
        page.screenshot(path=str(DOCS / "studio_gallery_scrolled.png"))
        browser.close()
