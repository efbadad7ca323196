"""Finishing-grade video out of merge (issue 15): a 10-bit ProRes 422 HQ source with timecode and two audio
streams -> ProRes 4444 with the change matte as alpha; --frames/--handles; face patches; range and levels.

Sources are made here with PyAV from a few frames of a real GRID clip (nothing is committed).
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from facedouble.io.video import open_source
from facedouble.merge.pipeline import MergeConfig, Outputs
from tests.standin import ShiftSwapper
from tests.standin import merge_unmarked as merge

FRAMES = 8
TIMECODE = "01:00:10:05"


def _grain(shape: tuple[int, ...]) -> np.ndarray:
    """A fixed sub-8-bit pattern (0..255 in 16-bit units) so the source holds real 10-bit detail."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return (((xx * 7 + yy * 13) % 4) * 64).astype(np.uint16)[..., None]


def write_10bit_source(path: Path, images: list[np.ndarray], codec: str = "prores_ks", pix_fmt: str = "yuv422p10le",
                       options: dict[str, str] | None = None, colour_range: int = 1, timecode: str | None = TIMECODE,
                       audio: bool = True) -> Path:
    """A 10-bit clip (ProRes 422 HQ by default) with a timecode track and two PCM audio streams (stereo, mono)."""
    fmt = "mov" if path.suffix == ".mov" else "mp4"
    with av.open(str(path), "w", format=fmt) as out:
        video = out.add_stream(codec, rate=25)
        video.width, video.height, video.pix_fmt = images[0].shape[1], images[0].shape[0], pix_fmt
        video.options = options if options is not None else {"profile": "3"}
        video.codec_context.color_range = colour_range
        video.codec_context.colorspace = 1
        video.codec_context.thread_count = 1
        if timecode:
            video.metadata["timecode"] = timecode
        tracks = []
        if audio:
            for layout, freq in (("stereo", 440.0), ("mono", 660.0)):
                stream = out.add_stream("pcm_s24le" if fmt == "mov" else "aac", rate=48000)
                stream.layout = layout
                tracks.append((stream, layout, freq))
        for index, image in enumerate(images):
            deep = image.astype(np.uint16) * 257 + _grain(image.shape)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(deep), format="rgb48le")
            frame = frame.reformat(format=pix_fmt, dst_colorspace=1, dst_color_range=colour_range)
            frame.pts = index
            out.mux(video.encode(frame))
        out.mux(video.encode())
        for stream, layout, freq in tracks:
            samples = 48000 * len(images) // 25
            wave = (0.25 * np.sin(2 * np.pi * freq * np.arange(samples) / 48000)).astype(np.float32)
            channels = 2 if layout == "stereo" else 1
            chunk = 1920  # one frame of audio per packet
            for start in range(0, samples, chunk):
                part = np.ascontiguousarray(np.tile(wave[start:start + chunk], (channels, 1)))
                frame = av.AudioFrame.from_ndarray(part, format="fltp", layout=layout)
                frame.sample_rate, frame.pts = 48000, start
                out.mux(stream.encode(frame))
            out.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def prores_source(target, target_frames, tmp_path_factory) -> Path:
    """Frames 0..7 of the GRID target as 10-bit ProRes 422 HQ with timecode and two audio streams."""
    return write_10bit_source(tmp_path_factory.mktemp("src") / "plate.mov", target_frames[:FRAMES])


def _packets(path: Path, index: int) -> list[bytes]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[index]
        return [bytes(p) for p in container.demux(stream) if p.dts is not None]


def _rgb48(path: Path) -> list[np.ndarray]:
    """The clip's frames at full precision through the frame reader, in 16-bit units (float)."""
    return [f.deep.astype(np.float64) * 65535.0 for f in open_source(path, deep=True)]


def test_source_decodes_at_10_bits_with_its_tags(prores_source):
    source = open_source(prores_source, deep=True)
    info = source.info
    assert (info.bit_depth, info.pix_fmt, info.timecode, info.audio_streams) == (10, "yuv422p10le", TIMECODE, 2)
    assert info.colour["color_range"] == 1 and info.colour["colorspace"] == 1
    frame = next(iter(source))
    assert frame.deep is not None and frame.deep.dtype == np.float32
    # the 8-bit view is round(deep * 255) and the deep one holds detail below 8 bits
    assert np.array_equal(frame.image, np.clip(np.rint(frame.deep * 255), 0, 255).astype(np.uint8))
    assert np.mean(np.abs(frame.deep * 255 - frame.image) > 0.05) > 0.5
    assert next(iter(open_source(prores_source))).deep is None  # only on request


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> tuple[Path, dict]:
    """A workspace with a test signer and the stand-in performer's consent record: (folder, consent)."""
    from facedouble.consent.records import add_identity
    from facedouble.trust.c2pa_sign import init_test_ca

    folder = tmp_path_factory.mktemp("ws")
    init_test_ca(folder / "certs")
    release = folder / "release.txt"
    release.write_text("signed release of the test performer\n")
    record = add_identity(folder, "test-performer", release)
    return folder, {"name": "test-performer", "record_hash": record.record_hash}


def _model(consent: dict) -> ShiftSwapper:
    model = ShiftSwapper(96)
    model.consent = dict(consent)
    return model


@pytest.fixture(scope="module")
def prores_render(target, prores_source, tmp_path_factory, workspace):
    """The ProRes source merged with every trust hook (api.merge_render) into ProRes 4444 + patches + PNGs."""
    from facedouble import api

    out = tmp_path_factory.mktemp("prores")
    outputs = {"png_dir": out / "png", "patch_dir": out / "patches", "transforms": out / "t.json"}
    result = api.merge_render(_model(workspace[1]), target[0], out / "render.mov", clip=prores_source,
                              workspace=workspace[0], config=MergeConfig(
                                  codec="prores-4444", colour="none", segment_frames=4, batch=4), **outputs)
    return result, out


def test_prores_4444_out_keeps_timecode_audio_and_10_bits(prores_render, prores_source):
    result, out = prores_render
    video = out / "render.mov"
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "prores"
        # 4444 with alpha; FFmpeg's decoder hands ProRes 4444 out as 12-bit, whatever the encoder's depth
        assert stream.codec_context.pix_fmt in ("yuva444p10le", "yuva444p12le")
        assert stream.codec_context.profile == "4444"
        bits = int(stream.codec_context.pix_fmt[8:10])
        assert stream.metadata.get("timecode") == TIMECODE
        assert [s.metadata.get("timecode") for s in container.streams if s.type == "data"] == [TIMECODE]
        assert len(container.streams.audio) == 2
        first = next(container.decode(video=0))
        luma = np.frombuffer(first.planes[0], np.uint16).reshape(first.height, -1)[:, :first.width]
        assert np.mean(luma % (1 << (bits - 8)) != 0) > 0.5  # more than 8 bits, not 8-bit values shifted up
    for index in range(2):  # every audio stream copied packet for packet
        assert _packets(video, index) == _packets(prores_source, index)
    assert result.frames == FRAMES
    # outside the face, the plate survives at better than 8-bit precision (8-bit rounding alone: ~64 / 65535)
    plate, render = _rgb48(prores_source), _rgb48(video)
    assert len(render) == FRAMES
    boxes = [f["box_xywh"] for f in json.loads((out / "patches" / "patches.json").read_text())["frames"]]
    for index, (x, y, w, h) in enumerate(boxes):  # the patch box bounds everything merge changed
        outside = np.ones(render[index].shape[:2], bool)
        outside[max(0, y - 8):y + h + 8, max(0, x - 8):x + w + 8] = False
        diff = np.abs(render[index] - plate[index])[outside]
        assert diff.mean() < 40, (index, diff.mean())


def test_prores_render_carries_the_trust_marks(prores_render, workspace):
    """MOV (ProRes 4444, tmcd track, two PCM streams) takes the C2PA manifest in place (no sidecar needed), the
    render record in its metadata and beside it; every face patch is marked like a PNG frame."""
    from facedouble import api
    from facedouble.trust.c2pa_sign import read_manifest
    from facedouble.trust.record import read_embedded

    _, out = prores_render
    manifest = read_manifest(out / "render.mov")
    assert manifest["status"] == "valid" and manifest["record"]["output"] == "render.mov"
    assert read_embedded(out / "render.mov")["watermark"] == manifest["record"]["watermark"]
    assert (out / "render.mov.render.json").exists()
    with av.open(str(out / "render.mov")) as container:
        assert "synthetic" in container.metadata.get("comment", "")
    patch = sorted((out / "patches").glob("*.png"))[0]
    assert read_manifest(patch)["status"] == "valid" and read_embedded(patch) is not None
    report = api.verify(out / "render.mov", workspace=workspace[0])
    assert report["exit_code"] == 0 and report["watermark"]["found"], report  # C2PA valid, watermark found


def _over(plate: np.ndarray, patch_path: Path, box: list[int]) -> np.ndarray:
    """The plate with a 16-bit RGBA patch composited over it at its box (straight alpha), in 16-bit units."""
    bgra = cv2.imread(str(patch_path), cv2.IMREAD_UNCHANGED)
    assert bgra.dtype == np.uint16 and bgra.shape[2] == 4
    x, y, w, h = box
    out = plate.astype(np.float64) * (257 if plate.dtype == np.uint8 else 1)
    alpha = bgra[..., 3:].astype(np.float64) / 65535.0
    out[y:y + h, x:x + w] = bgra[..., 2::-1] * alpha + out[y:y + h, x:x + w] * (1 - alpha)
    return out


def test_patches_placed_with_their_matrices_reproduce_the_render(prores_render, prores_source):
    _, out = prores_render
    data = json.loads((out / "patches" / "patches.json").read_text())
    assert "y up" in data["convention"] and data["height"] == 288
    entries = {e["index"]: e for e in data["frames"]}
    assert sorted(entries) == list(range(FRAMES))  # a face in every frame
    plate, render = _rgb48(prores_source), _rgb48(out / "render.mov")
    with av.open(str(out / "render.mov")) as container:
        alphas = [f.to_ndarray(format="rgba64le")[..., 3] for f in container.decode(video=0)]
    for index, entry in entries.items():
        x, y, w, h = entry["box_xywh"]
        assert entry["patch_to_frame"] == [[1.0, 0.0, x], [0.0, 1.0, y]]
        assert entry["nuke_transform_translate"] == [x, 288 - y - h]
        # Nuke's matrix maps the patch's bottom-left pixel centre (0.5, 0.5) to the frame's, y up
        nuke = np.array(entry["patch_to_frame_nuke"])
        assert np.allclose(nuke @ [0.5, 0.5, 1.0], [x + 0.5, 288 - (y + h) + 0.5, 1.0])
        patch = out / "patches" / entry["file"]
        # 8 bits: the source's 8-bit view with the patch over it is the rendered PNG, exactly
        png = cv2.cvtColor(cv2.imread(str(out / "png" / f"{index:06d}.png")), cv2.COLOR_BGR2RGB)
        eight = open_source(prores_source).frames(index).__next__().image
        placed8 = np.rint(_over(eight, patch, entry["box_xywh"]) / 257)
        assert np.abs(placed8 - png).max() <= 1, index
        assert np.mean(placed8 == png) > 0.999, index
        # full precision: over the decoded 10-bit plate it matches the ProRes render within codec noise
        placed = _over(plate[index], patch, entry["box_xywh"])
        diff = np.abs(placed - render[index])
        assert diff.mean() < 64 and np.percentile(diff, 99) < 1024, (index, diff.mean())
        # the ProRes alpha is the patch's matte (everything merge changed), zero elsewhere
        matte = np.zeros((288, 360))
        matte[y:y + h, x:x + w] = cv2.imread(str(patch), cv2.IMREAD_UNCHANGED)[..., 3]
        assert np.abs(alphas[index].astype(float) - matte).max() <= 64, index
        assert matte.max() == 65535 and (alphas[index][matte == 0] == 0).all()


def test_frames_and_handles_render_exactly_the_requested_frames(target, prores_source, tmp_path):
    """--frames 2-4 --handles 1 of the 8-frame ProRes plate: source frames 1..5, numbered as in the source,
    the timecode moved on by one frame, both audio streams cut to those frames; H.264 10-bit in MOV."""
    outputs = Outputs(video=tmp_path / "range.mov", png_dir=tmp_path / "png", transforms=tmp_path / "t.json")
    config = MergeConfig(codec="h264-10", frames="2-4", handles=1, segment_frames=2, batch=2, colour="none")
    model = ShiftSwapper(96)
    result = merge(model, target[0], outputs, config, clip=prores_source, progress=False)
    assert result.frames == 5
    assert sorted(p.name for p in outputs.png_dir.glob("*.png")) == [f"{i:06d}.png" for i in range(1, 6)]
    assert [f["index"] for f in json.loads(outputs.transforms.read_text())["frames"]] == [1, 2, 3, 4, 5]
    with av.open(str(outputs.video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.pix_fmt == "yuv420p10le" and stream.codec_context.profile == "High 10"
        assert stream.metadata.get("timecode") == "01:00:10:06"
        times = [float(f.time) for f in container.decode(stream)]
        assert times == pytest.approx([0.0, 0.04, 0.08, 0.12, 0.16])
        assert len(container.streams.audio) == 2
    for index in range(2):
        with av.open(str(outputs.video)) as container:
            audio = container.streams.audio[index]
            packets = [p for p in container.demux(audio) if p.dts is not None]
            seconds = sum(p.duration for p in packets) * audio.time_base
            longest = max(p.duration for p in packets) * audio.time_base
            assert packets[0].pts == 0 and 0.2 - 1e-6 <= seconds <= 0.2 + longest
    # each video frame is its source frame: closest to the PNG of source frame i + 1 (H.264 noise on a
    # grainy plate is ~4-5 levels; neighbouring GRID frames differ by a little more)
    video = [f.image for f in open_source(outputs.video)]
    pngs = [cv2.cvtColor(cv2.imread(str(outputs.png_dir / f"{i:06d}.png")), cv2.COLOR_BGR2RGB) for i in range(1, 6)]
    errors = np.array([[np.abs(image.astype(int) - png).mean() for png in pngs] for image in video])
    assert list(errors.argmin(axis=1)) == [0, 1, 2, 3, 4] and errors.diagonal().max() < 6


def test_frames_outside_the_clip_and_bad_ranges_are_refused(target, prores_source, tmp_path):
    from facedouble.errors import FacedoubleError

    with pytest.raises(FacedoubleError, match="A-B"):
        MergeConfig(frames="5-2").validate()
    with pytest.raises(FacedoubleError, match="start after the clip"):
        merge(ShiftSwapper(96), target[0], Outputs(png_dir=tmp_path / "png"), MergeConfig(frames="20-30"),
              clip=prores_source, progress=False)
    with pytest.raises(FacedoubleError, match="use .mov"):
        merge(ShiftSwapper(96), target[0], Outputs(video=tmp_path / "x.mp4"), MergeConfig(codec="prores-hq"),
              clip=prores_source, progress=False)


@pytest.mark.parametrize("full_range", [False, True], ids=["limited", "full"])
def test_limited_and_full_range_sources_keep_their_levels_outside_the_face(target, target_frames, tmp_path,
                                                                           full_range):
    """10-bit H.264 plates (black and white bars, limited or full range) merged into H.264 10-bit: outside the
    matte the output's Y'CbCr codes are the source's (lossless output here, so exactly), tagged the same."""
    from tests.io.test_video_depth import barred, luma, write_clip

    source = write_clip(tmp_path / "plate.mp4", [barred(f) for f in target_frames[:3]], full_range=full_range)
    outputs = Outputs(video=tmp_path / "out.mp4", matte_dir=tmp_path / "matte")
    merge(ShiftSwapper(96), target[0], outputs, MergeConfig(codec="h264-10", crf=0, colour="none"),
          clip=source, progress=False)
    with av.open(str(source)) as a, av.open(str(outputs.video)) as b:
        assert b.streams.video[0].codec_context.color_range == (2 if full_range else 1)
        assert b.streams.video[0].codec_context.pix_fmt == "yuv420p10le"
        for index, (before, after) in enumerate(zip(a.decode(video=0), b.decode(video=0), strict=True)):
            matte = cv2.imread(str(outputs.matte_dir / f"{index:06d}.png"), cv2.IMREAD_UNCHANGED)
            outside = cv2.dilate((matte > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) == 0
            y0, y1 = luma(before), luma(after)
            assert np.median(y1[:16]) == np.median(y0[:16]) == (0 if full_range else 64)
            assert np.median(y1[-16:]) == np.median(y0[-16:])
            diff = np.abs(y1 - y0)[outside]
            assert diff.max() <= 1 and diff.mean() < 0.05, (index, diff.max(), diff.mean())
            assert np.abs(y1 - y0)[~outside].mean() > 4  # the face did change


def test_device_setting_cpu_default_auto_and_cuda(monkeypatch):
    """--device: cpu is the default (the model loads as before); auto picks CUDA only where PyTorch sees one;
    cuda without one is a one-line error, not a traceback from deep inside torch."""
    import torch

    from facedouble import api
    from facedouble.errors import FacedoubleError
    from facedouble.merge import model as model_module
    from facedouble.merge.config import resolve_device

    assert MergeConfig().device == "cpu"
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(FacedoubleError, match="no CUDA device"):
            resolve_device("cuda")
    with pytest.raises(FacedoubleError, match="device must be one of"):
        MergeConfig(device="tpu").validate()
    asked = []
    monkeypatch.setattr(model_module, "load_model", lambda path, **options: asked.append(options))
    api.load_model("m", MergeConfig())
    api.load_model("m", MergeConfig(device="auto"))
    assert asked == [{"precision": "auto", "conv_algo": "auto"},
                     {"precision": "auto", "conv_algo": "auto", "device": "auto"}]


def test_cli_takes_the_finishing_flags(tmp_path):
    from facedouble.cli import build_parser

    args = build_parser().parse_args(["merge", "--model", "m", "--target", "t", "--out", str(tmp_path / "o.mov"),
                                      "--codec", "prores-4444", "--frames", "1001-1050", "--handles", "8",
                                      "--device", "auto", "--patch-dir", str(tmp_path / "p")])
    from facedouble.config import config_from_args

    config = config_from_args(MergeConfig, args)
    assert (config.codec, config.frames, config.handles, config.device) == ("prores-4444", "1001-1050", 8, "auto")
    assert config.window(2000) == (993, 1058) and config.window(1040) == (993, 1039)


@pytest.mark.parametrize("codec, name, profile, pix_fmts", [
    ("h264", "h264", "High", ("yuv420p",)),
    ("h264-10", "h264", "High 10", ("yuv420p10le",)),
    ("h265-10", "hevc", "Main 10", ("yuv420p10le",)),
    ("prores-hq", "prores", "HQ", ("yuv422p10le",)),
    ("prores-4444", "prores", "4444", ("yuva444p10le", "yuva444p12le")),
    ("dnxhr-hqx", "dnxhd", "DNXHR HQX", ("yuv422p10le",)),
])
def test_every_registered_codec_writes_and_joins(tmp_path, codec, name, profile, pix_fmts):
    """Each codec of the registry: segments in a child encoder, joined losslessly with timecode."""
    from facedouble.merge.writers import VIDEO_CODECS, EncoderProcess, concat_segments

    spec = VIDEO_CODECS[codec]
    rng = np.random.default_rng(1)
    encoder = EncoderProcess()
    segments = []
    try:
        for k in range(2):
            segments.append(tmp_path / f"seg{k}{spec.segment_suffix}")
            encoder.open(segments[-1], 256, 144, Fraction(1, 25), Fraction(25), codec=codec,
                         colour={"colorspace": 1, "color_range": 1})
            for pts in range(2 * k, 2 * k + 2):
                encoder.write(rng.random((144, 256, 3), np.float32) if spec.bits > 8 else
                              rng.integers(0, 256, (144, 256, 3), np.uint8), pts)
            encoder.close()
    finally:
        encoder.shutdown()
    out = tmp_path / f"out{spec.containers[0]}"  # MP4 or MOV: both carry a tmcd track
    concat_segments(segments, out, timecode="00:59:59:24", fps=Fraction(25))
    with av.open(str(out)) as container:
        cc = container.streams.video[0].codec_context
        assert (cc.name, cc.profile, cc.color_range) == (name, profile, 1) and cc.pix_fmt in pix_fmts
        assert container.streams.video[0].metadata.get("timecode") == "00:59:59:24"
        assert len(list(container.decode(video=0))) == 4


def test_a_frame_range_in_shards_equals_one_run(target, prores_source, tmp_path):
    """Segments count from the range's first frame: two shards + concat give a single run's frames."""
    from facedouble.merge.pipeline import finalize

    config = MergeConfig(frames="2-6", segment_frames=2, batch=2, colour="none")
    single = Outputs(png_dir=tmp_path / "single")
    merge(ShiftSwapper(96), target[0], single, config, clip=prores_source, progress=False)
    sharded = Outputs(png_dir=tmp_path / "sharded")
    for shard in ((1, 2), (2, 2)):
        assert merge(ShiftSwapper(96), target[0], sharded, config, clip=prores_source, shard=shard,
                     progress=False) is None
    result = finalize(sharded)
    assert result.frames == 5
    names = [f"{i:06d}.png" for i in range(2, 7)]
    assert sorted(p.name for p in sharded.png_dir.glob("*.png")) == names
    for name in names:
        assert (sharded.png_dir / name).read_bytes() == (single.png_dir / name).read_bytes()
