"""Watermark: payload coding, frame schedule, robustness on a real GRID render, no false positives."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import PAYLOAD, grid_clip, read_frames

from facedouble.trust import watermark as wm
from tests.footage import write_clip

GRID_CLIPS = ["bbaf2n", "id2_vcd_swwp2s", "lbbc2a", "lrwp9a", "lwbsza", "pwij3p", "sbia1a", "sbwe5n",
              "swiz3n"]


def test_payload_roundtrip_and_single_bit_errors_detected():
    for payload in (0, 1, 12345, wm.MAX_PAYLOAD_ID):
        bits = wm.encode_payload(payload)
        assert wm.decode_payload(bits) == payload
        for pos in range(32):
            flipped = bits.copy()
            flipped[pos] = 1 - flipped[pos]
            assert wm.decode_payload(flipped) is None
    assert wm.decode_payload(np.zeros(32)) is None and wm.decode_payload(np.ones(32)) is None


def test_key_frames_cover_every_two_second_excerpt():
    keys = wm.frames_to_mark(250, 25.0)
    for start in range(0, 200):
        assert len([k for k in keys if start <= k < start + 50]) >= 3


def test_vote_never_reports_a_wrong_payload():
    rng = np.random.default_rng(0)
    bits = wm.encode_payload(PAYLOAD) * 2 - 1
    # consistent 2-bit corruption in every frame: uncorrectable, so "not found" is the only right answer
    corrupted = bits.copy()
    corrupted[[3, 17]] *= -1
    obs = [(i, corrupted * 3 + rng.normal(0, 0.5, 32)) for i in range(40)]
    result = wm._vote(obs, min_votes=2, examined=40)
    assert not result.found or result.payload == PAYLOAD
    # content-like bias: every frame decodes to the same arbitrary (non-code) word, plus noise
    for _ in range(200):
        biased = rng.choice([-1.0, 1.0], 32)
        if wm.decode_payload(biased > 0) is not None:
            continue
        obs = [(i, biased * 2 + rng.normal(0, 1.0, 32)) for i in range(40)]
        assert not wm._vote(obs, min_votes=2, examined=40).found


def test_alternating_blocks_cancel_content_bias():
    rng = np.random.default_rng(1)
    bits = wm.encode_payload(PAYLOAD) * 2 - 1
    bias = rng.choice([-1.0, 1.0], 32) * 2.0  # stronger than the mark: a plain vote decodes the bias
    obs = [(i, bias + bits * (1 if (i // 12) % 2 == 0 else -1) * 1.0 + rng.normal(0, 0.5, 32))
           for i in range(50)]
    result = wm._vote(obs, min_votes=2, examined=50)
    assert result.found and result.payload == PAYLOAD


def test_mark_survives_crf28_and_half_resize(render):
    lossless = wm.detect_frames(render["marked"][:12])
    assert lossless.found and lossless.payload == PAYLOAD
    attacked = wm.detect_video(render["attacked"])
    assert attacked.found, attacked
    assert attacked.payload == PAYLOAD
    assert attacked.frames_voted >= 10


def test_embed_changes_only_the_face_region(render):
    frame, marked = render["frames"][0], render["marked"][0]
    diff = np.abs(frame.astype(int) - marked.astype(int)).max(axis=2)
    box = render["boxes"][0]
    side = max(box[2] - box[0], box[3] - box[1]) * (1 + 2 * wm.PAD)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    ys, xs = np.nonzero(diff)
    assert np.all(np.abs(xs - cx) <= side / 2 + 2) and np.all(np.abs(ys - cy) <= side / 2 + 2)


def _face_box_psnr(render) -> tuple[float, float]:
    """(worst per-frame PSNR over the face box, worst per-frame RMS chroma change there) of the render."""
    import cv2

    worst_psnr, worst_chroma = np.inf, 0.0
    for frame, marked, box in zip(render["frames"], render["marked"], render["boxes"], strict=True):
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        a, b = frame[y0:y1, x0:x1], marked[y0:y1, x0:x1]
        mse = float(((a.astype(float) - b.astype(float)) ** 2).mean())
        worst_psnr = min(worst_psnr, 10 * np.log10(255.0**2 / max(mse, 1e-9)))
        chroma = (cv2.cvtColor(b, cv2.COLOR_RGB2YCrCb).astype(float)
                  - cv2.cvtColor(a, cv2.COLOR_RGB2YCrCb).astype(float))[..., 1:]
        worst_chroma = max(worst_chroma, float(np.sqrt((chroma**2).mean())))
    return worst_psnr, worst_chroma


def test_mark_no_more_visible_than_measured(render):
    # regression guard at the default (robust) strength: 28.8 dB and 7.0 levels of chroma RMS (worst frame) on
    # this render. This is NOT the invisibility target (see the xfail below); it stops it getting worse.
    psnr, chroma = _face_box_psnr(render)
    assert psnr >= 28.0, psnr
    assert chroma <= 7.5, chroma


@pytest.mark.xfail(strict=True, reason="open: at the strength that survives CRF 28 + 50% on ~110 px faces "
                   "the RivaGAN mark is a visible chroma mottle (see the watermark module docstring)")
def test_mark_invisible_target(render):
    psnr, chroma = _face_box_psnr(render)
    assert psnr >= 40.0 and chroma <= 1.0, (psnr, chroma)


@pytest.mark.parametrize("clip", GRID_CLIPS)
def test_unmarked_grid_clip_not_reported(clip, tmp_path):
    frames = read_frames(grid_clip(clip), 12)
    assert not wm.detect_frames(frames).found
    # the attacked form of an unmarked clip must not turn into a mark either
    copy = write_clip(tmp_path / "clean.mp4", frames, crf=28, scale=0.5)
    assert not wm.detect_video(copy).found
