"""End-to-end merge on a real GRID clip with the stand-in model: outputs, audio, masks, flicker."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from facedouble.io.video import open_source
from facedouble.merge.pipeline import MergeConfig, Outputs, Rendered, flicker_figure, flicker_pair
from tests.standin import merge_unmarked as merge


def _read_png(path: Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    image = cv2.imread(str(path), flags)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else image


def _packets(path: Path, kind: str) -> list[bytes]:
    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[0]
        return [bytes(p) for p in container.demux(stream) if p.dts is not None]


@pytest.fixture(scope="module")
def render(target, tmp_path_factory):
    """One full render of the GRID clip: MP4 + PNG + mattes + transforms."""
    from tests.standin import ShiftSwapper

    out = tmp_path_factory.mktemp("render")
    model = ShiftSwapper(96)
    outputs = Outputs(video=out / "render.mp4", png_dir=out / "png", matte_dir=out / "matte",
                      transforms=out / "transforms.json")
    result = merge(model, target[0], outputs, MergeConfig(segment_frames=20, colour="none", batch=8),
                   progress=False)
    # batched inference: 75 frames in batches of 8 that never straddle a 20-frame segment
    assert model.calls == 3 + 3 + 3 + 2  # frames 0-19, 20-39, 40-59: 8+8+4; frames 60-74: 8+7
    return result, outputs


def test_mp4_has_target_frame_count_timestamps_and_audio(render, target):
    result, outputs = render
    source = [(f.index, f.timestamp) for f in open_source(target[1])]
    rendered = [(f.index, f.timestamp) for f in open_source(outputs.video)]
    assert result.frames == len(source) == 75
    assert len(rendered) == len(source)
    assert np.allclose([t for _, t in rendered], [t for _, t in source], atol=1e-6)
    with av.open(str(outputs.video)) as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "h264"
        assert video.codec_context.pix_fmt == "yuv420p"
        assert len(container.streams.audio) == 1
    assert _packets(outputs.video, "audio") == _packets(target[1], "audio")  # copied, not re-encoded


def test_png_outside_dilated_mask_is_bit_exact_and_face_is_replaced(render, target_frames):
    _, outputs = render
    changed_inside = 0
    for index, original in enumerate(target_frames):
        image = _read_png(outputs.png_dir / f"{index:06d}.png")
        matte = _read_png(outputs.matte_dir / f"{index:06d}.png", cv2.IMREAD_UNCHANGED)
        assert matte.dtype == np.uint16
        dilated = cv2.dilate((matte > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        assert np.array_equal(image[~dilated], original[~dilated]), f"frame {index} changed outside the mask"
        core = matte > 60000
        changed_inside += np.abs(image[core].astype(int) - original[core]).mean() > 5
    assert changed_inside == len(target_frames)


def test_mp4_outside_mask_within_codec_noise(render, target_frames):
    _, outputs = render
    for frame in open_source(outputs.video):
        matte = _read_png(outputs.matte_dir / f"{frame.index:06d}.png", cv2.IMREAD_UNCHANGED)
        outside = cv2.dilate((matte > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
        diff = np.abs(frame.image.astype(int) - target_frames[frame.index])
        assert diff[outside].mean() < 2.5, frame.index  # crf 18 re-encode of an MPEG-1 source


def test_transforms_json_and_flicker(render, target):
    result, outputs = render
    data = json.loads(outputs.transforms.read_text())
    assert [f["index"] for f in data["frames"]] == list(range(75))
    face = data["frames"][10]["faces"][0]
    to_frame = np.array(face["aligned_to_frame"])
    assert to_frame.shape == (2, 3) and len(face["corner_pin"]) == 4
    # the crop centre lands on the face: inside the box of the pasted pixels
    cx, cy = to_frame @ [48, 48, 1]
    x0, y0, x1, y1 = face["box_xyxy"]
    assert x0 < cx < x1 and y0 < cy < y1
    # the stand-in only shifts colour, so the face moves as the performer's did: flicker ~ 1
    assert result.flicker is not None and 0.6 < result.flicker < 1.4


def test_flicker_figure_is_one_for_an_unchanged_render():
    rng = np.random.default_rng(0)
    alpha = np.zeros((32, 32), np.float32)
    alpha[8:24, 8:24] = 1
    frames = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    faces = [{"box_xyxy": [8, 8, 24, 24]}]
    same = [Rendered(i, i / 25, f, f, alpha, faces, False) for i, f in enumerate(frames)]
    assert flicker_figure([flicker_pair(a, b) for a, b in zip(same, same[1:], strict=False)]) == pytest.approx(1.0)
    still = [Rendered(i, i / 25, frames[0], f, alpha, faces, False) for i, f in enumerate(frames)]
    assert flicker_figure([flicker_pair(a, b) for a, b in zip(still, still[1:], strict=False)]) == 0.0


def test_test_clip_with_aac_audio_and_bt709_keeps_audio_and_colour(target, target_frames, tmp_path):
    """An MP4 target (H.264 tagged BT.709 + AAC) made with PyAV's bundled FFmpeg: the audio is copied
    bit for bit, the colour tags are kept and pixels outside the face stay within codec noise."""
    from tests.standin import ShiftSwapper

    clip = tmp_path / "clip.mp4"
    with av.open(str(target[1])) as src, av.open(str(clip), "w") as dst:
        vin, ain = src.streams.video[0], src.streams.audio[0]
        vout = dst.add_stream("libx264", rate=25)
        vout.width, vout.height, vout.pix_fmt = 360, 288, "yuv420p"
        for key in ("colorspace", "color_primaries", "color_trc", "color_range"):
            setattr(vout.codec_context, key, 1)  # BT.709, limited range
        aout = dst.add_stream("aac", rate=ain.rate)
        for frame in src.decode(vin, ain):
            if isinstance(frame, av.VideoFrame):
                rgb = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
                dst.mux(vout.encode(rgb.reformat(format="yuv420p", dst_colorspace=1, dst_color_range=1)))
            else:
                frame.pts = None
                dst.mux(aout.encode(frame))
        dst.mux(vout.encode())
        dst.mux(aout.encode())
    out = tmp_path / "out.mp4"
    outputs = Outputs(video=out, matte_dir=tmp_path / "matte")
    result = merge(ShiftSwapper(96), target[0], outputs, MergeConfig(), clip=clip, progress=False)
    assert result.frames == len(list(open_source(clip))) == 75
    assert _packets(out, "audio") == _packets(clip, "audio")
    with av.open(str(out)) as container:
        cc = container.streams.video[0].codec_context
        assert (cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range) == (1, 1, 1, 1)
    for before, after in zip(open_source(clip), open_source(out), strict=True):
        matte = _read_png(outputs.matte_dir / f"{after.index:06d}.png", cv2.IMREAD_UNCHANGED)
        outside = cv2.dilate((matte > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
        assert np.abs(after.image.astype(int) - before.image)[outside].mean() < 2.0


def test_two_faces_in_one_frame_are_both_replaced(tmp_path):
    """Two real people side by side: both faces swapped, each with its own track, nothing else touched."""
    from facedouble.extract.pipeline import ExtractConfig, extract
    from tests.conftest import grid_path
    from tests.footage import frames_of, write_clip
    from tests.standin import ShiftSwapper

    left, right = frames_of(grid_path("bbaf2n"), 12), frames_of(grid_path("sbwe5n"), 12)
    clip = write_clip(tmp_path / "two.mp4", [np.hstack([a, b]) for a, b in zip(left, right, strict=True)])
    extract(clip, tmp_path / "faces", ExtractConfig(size=64, progress=False))
    outputs = Outputs(png_dir=tmp_path / "png", matte_dir=tmp_path / "matte", transforms=tmp_path / "t.json")
    merge(ShiftSwapper(96), tmp_path / "faces", outputs, MergeConfig(colour="none"), progress=False)
    frames = json.loads(outputs.transforms.read_text())["frames"]
    assert [len(f["faces"]) for f in frames] == [2] * 12
    assert len({face["track_id"] for f in frames for face in f["faces"]}) == 2
    for index, original in enumerate(frames_of(clip)):
        image = _read_png(outputs.png_dir / f"{index:06d}.png")
        matte = _read_png(outputs.matte_dir / f"{index:06d}.png", cv2.IMREAD_UNCHANGED)
        dilated = cv2.dilate((matte > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        assert np.array_equal(image[~dilated], original[~dilated]), index
        for half in (slice(0, 360), slice(360, 720)):  # one face in each half, each replaced
            core = matte[:, half] > 60000
            assert core.sum() > 1000, (index, half)
            assert np.abs(image[:, half][core].astype(int) - original[:, half][core]).mean() > 5, (index, half)


def test_odd_frame_size_renders_pngs_and_refuses_mp4_before_any_work(tmp_path):
    """A 359x287 image sequence: PNG output works; MP4 (yuv420p needs even sizes) is refused up front."""
    from facedouble.errors import FacedoubleError
    from facedouble.extract.pipeline import ExtractConfig, extract
    from tests.conftest import grid_path
    from tests.footage import frames_of
    from tests.standin import ShiftSwapper

    stills = tmp_path / "stills"
    stills.mkdir()
    for index, image in enumerate(frames_of(grid_path("lbbc2a"), 4)):
        cv2.imwrite(str(stills / f"{index:04d}.png"), cv2.cvtColor(image[:287, :359], cv2.COLOR_RGB2BGR))
    extract(stills, tmp_path / "faces", ExtractConfig(size=64, progress=False))
    with pytest.raises(FacedoubleError, match="even frame sizes.*PNG"):
        merge(ShiftSwapper(96), tmp_path / "faces", Outputs(video=tmp_path / "out" / "r.mp4"), progress=False)
    assert not (tmp_path / "out").exists()  # refused before any work folder or frame
    result = merge(ShiftSwapper(96), tmp_path / "faces", Outputs(png_dir=tmp_path / "png"), progress=False)
    assert result.frames == 4
    assert _read_png(tmp_path / "png" / "000003.png").shape == (287, 359, 3)
