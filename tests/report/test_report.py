"""Quality-report metrics on constructed cases made from real GRID footage."""

import shutil
import subprocess
import tempfile

import cv2
import numpy as np
import pytest

from facedouble.cli import main
from facedouble.report.build import ReportConfig, build_report
from facedouble.report.html import write_report
from tests.footage import frames_of, write_clip

N = 20


@pytest.fixture(scope="module")
def clips(tmp_path_factory, grid_clip):
    tmp = tmp_path_factory.mktemp("report")
    target = frames_of(grid_clip("bbaf2n"), N)
    shift = np.float32([[1, 0, 24], [0, 1, 0]])
    roll = cv2.getRotationMatrix2D((180, 144), -10, 1.0)  # 10 degrees clockwise
    return {
        "target": write_clip(tmp / "target.mp4", target),
        "shifted": write_clip(tmp / "shifted.mp4", [cv2.warpAffine(f, shift, (360, 288),
                                                                   borderMode=cv2.BORDER_REPLICATE) for f in target]),
        "rolled": write_clip(tmp / "rolled.mp4", [cv2.warpAffine(f, roll, (360, 288),
                                                                 borderMode=cv2.BORDER_REPLICATE) for f in target]),
        "other": write_clip(tmp / "other.mp4", frames_of(grid_clip("sbwe5n"), N)),
    }


def report(render, target, source):
    return build_report(render, target, source, ReportConfig(embed_every=4, progress=False))


@pytest.fixture(scope="module")
def identical(clips, grid_faceset):
    return report(clips["target"], clips["target"], grid_faceset("sbwe5n", embed_every=5))


def test_identical_clip_has_zero_error_and_zero_residual_flicker(identical):
    s = identical["summary"]
    assert s["pose_error"]["max"] == pytest.approx(0, abs=1e-9)
    assert s["mouth_error"]["max"] == pytest.approx(0, abs=1e-9)
    assert s["eyes_error"]["max"] == pytest.approx(0, abs=1e-9)
    assert s["residual_flicker"] == pytest.approx(0, abs=1e-9) and s["flicker"] == s["residual_flicker"]
    assert s["face_stability_ratio"] == pytest.approx(1.0)
    assert s["gaze_error"]["max"] == pytest.approx(0, abs=1e-9)
    assert s["seam_score"]["min"] == pytest.approx(1.0) and s["worst_frames"]["seam_score"]
    assert s["ssim"]["min"] == pytest.approx(1.0)
    assert s["face_share"] == 1.0
    assert s["identity_to_target"]["max"] == pytest.approx(0, abs=1e-9)


def test_shifted_face_keeps_pose_and_expression(clips, grid_faceset):
    s = report(clips["shifted"], clips["target"], grid_faceset("sbwe5n", embed_every=5))["summary"]
    assert s["pose_error"]["mean"] < 2.0  # a translation is no pose change
    assert s["mouth_error"]["mean"] < 0.05 and s["eyes_error"]["mean"] < 0.05
    assert s["identity_to_target"]["mean"] < 0.3  # same person
    assert s["ssim"]["mean"] < 0.9  # but the pixels no longer line up


def test_rolled_face_shows_the_known_pose_change(clips, grid_faceset):
    s = report(clips["rolled"], clips["target"], grid_faceset("sbwe5n", embed_every=5))["summary"]
    assert s["pose_error"]["median"] == pytest.approx(10, abs=1.5)
    assert s["mouth_error"]["mean"] < 0.05


def test_different_person_is_far_from_target_and_closer_to_its_source(clips, grid_faceset, identical):
    s = report(clips["other"], clips["target"], grid_faceset("sbwe5n", embed_every=5))["summary"]
    assert s["identity_to_target"]["min"] > 0.5 > identical["summary"]["identity_to_target"]["max"]
    assert s["closer_to_source_share"] == 1.0
    assert identical["summary"]["closer_to_source_share"] == 0.0
    assert s["flicker"] is not None and s["worst_frames"]["pose_error"]


def test_html_report_renders_in_a_browser(identical, tmp_path):
    page = write_report(identical, tmp_path / "rep")
    assert (tmp_path / "rep" / "report.json").exists()
    text = page.read_text()
    assert 'id="summary"' in text and "data:image/png;base64," in text
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.skip("chromium not installed (apt-get install chromium) for the screenshot check")
    shot = tmp_path / "shot.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={profile}", "--window-size=1000,1400", f"--screenshot={shot}",
                        page.as_uri()], capture_output=True, timeout=120, check=True)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (1400, 1000)
    assert image.std() > 20  # text, plots and thumbnails, not a blank page


def test_cli_report(clips, grid_faceset, tmp_path, capsys):
    assert main(["report", str(clips["target"]), "--target", str(clips["target"]), "--source",
                 str(grid_faceset("sbwe5n", embed_every=5)), "--out", str(tmp_path / "r"), "--no-progress",
                 "--embed-every", "10"]) == 0
    out = capsys.readouterr().out
    assert "residual flicker 0.000" in out and "gaze_error" in out and (tmp_path / "r" / "index.html").exists()
