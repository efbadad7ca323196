"""Finishing-grade image sequences through extract and merge (facedouble.merge.seqwriters).

A half EXR sequence in ACEScg, numbered from 1001 and made in the test from a GRID clip, goes through
extract and merge and comes out as EXR with the same numbering; every pixel outside the dilated matte is
bit-identical in float to the plate; the face matches the same merge done in the 8-bit working space
within the tolerance stated below. DPX 10-bit and TIFF 16-bit sequences go round the same way.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facedouble.io.ocio import ColourConverter
from facedouble.io.sequence import media_options, read_plate
from facedouble.io.video import open_source
from facedouble.merge.pipeline import MergeConfig, Outputs
from tests.io.test_sequence import acescg_sequence, write
from tests.merge.conftest import CLIP, consented
from tests.standin import ShiftSwapper
from tests.standin import merge_unmarked as merge

oiio = pytest.importorskip("OpenImageIO")

FRAMES = 4
CONFIG = MergeConfig(segment_frames=2, batch=2, workers=1)
# The face, converted back to the working space, against the same merge done on the 8-bit working frames:
# where the matte is solid the difference is half-float rounding and the OCIO round trip; at the soft edge
# the plate's sub-8-bit detail is kept, which the 8-bit merge quantises away (measured on these frames: max
# 0.34/255 solid, 0.21/255 edge, mean 0.03/255). Stated tolerance: 0.5/255 anywhere in the matte, 0.1/255 mean.
SOLID_MAX, EDGE_MAX, MEAN_MAX = 0.5 / 255, 0.5 / 255, 0.1 / 255


@pytest.fixture(scope="module")
def plate(grid_clip, tmp_path_factory) -> tuple[Path, list[np.ndarray], Path]:
    """(ACEScg half EXR folder shot.1001-1004, its float plates, a faceset extracted from it)."""
    from facedouble.extract.pipeline import ExtractConfig, extract

    frames = []
    for frame in open_source(grid_clip(CLIP)):
        frames.append(frame.image)
        if len(frames) == FRAMES:
            break
    root = tmp_path_factory.mktemp("finishing")
    plates = acescg_sequence(root / "plate", frames)
    extract(root / "plate", root / "faceset", ExtractConfig(size=64, face_type="full", progress=False))
    return root / "plate", plates, root / "faceset"


def exr(path: Path) -> tuple[np.ndarray, tuple[str, ...], str]:
    """(pixels as stored, channel names, pixel type) of an EXR."""
    inp = oiio.ImageInput.open(str(path))
    spec = inp.spec()
    data = inp.read_image(0, 0, 0, spec.nchannels, "half")
    inp.close()
    return np.asarray(data).reshape(spec.height, spec.width, spec.nchannels), tuple(spec.channelnames), str(spec.format)


def outside(matte: np.ndarray, grow: int = 5) -> np.ndarray:
    """Pixels outside the matte dilated by `grow` pixels."""
    kernel = np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)
    return cv2.dilate((matte > 0).astype(np.uint8), kernel) == 0


def test_exr_sequence_through_extract_and_merge_cli(plate, tmp_path, monkeypatch, capsys, signing_workspace):
    """The CLI with every provenance mark: numbering, channels, untouched plate, signed record."""
    import facedouble.cli as cli
    from facedouble.merge import model as model_module
    from facedouble.trust.seqsign import verify_sidecar

    monkeypatch.setattr(model_module, "load_model", lambda path, **options: consented(ShiftSwapper(96)))
    folder, plates, _ = plate
    out = tmp_path / "out" / "shot.%04d.exr"
    # a bare plate folder as --target: extracted first (with the same colour options), then merged
    code = cli.main(["merge", "--model", "m", "--target", str(folder), "--out", str(out), "--colourspace", "ACEScg",
                     "--fps", "24", "--segment-frames", "2", "--batch", "2", "--no-progress",
                     "--png-dir", str(tmp_path / "png")])
    assert code == 0, capsys.readouterr().err
    names = sorted(p.name for p in out.parent.glob("shot.*.exr"))
    assert names == ["shot.1001.exr", "shot.1002.exr", "shot.1003.exr", "shot.1004.exr"]
    changed_anywhere = False
    for name, original in zip(names, plates, strict=True):
        pixels, channels, kind = exr(out.parent / name)
        assert channels == ("R", "G", "B", "A") and kind == "half"
        rgb, matte = pixels[..., :3], pixels[..., 3].astype(np.float32)
        keep = outside(matte)
        assert keep.mean() > 0.8
        # bit-identical in float outside the dilated matte (compare the stored bits, not the values)
        assert np.array_equal(rgb[keep].view(np.uint16), original.astype(np.float16)[keep].view(np.uint16))
        changed_anywhere |= bool((rgb != original.astype(np.float16)).any())
    assert changed_anywhere
    # every frame carries the watermark: found in the EXRs' 8-bit working view, with the record's payload
    import json

    from facedouble.trust.watermark import WatermarkKey, detect_frames

    conv = ColourConverter("ACEScg")
    views = [conv.working_uint8(exr(out.parent / n)[0][..., :3].astype(np.float32)) for n in names]
    found = detect_frames(views, WatermarkKey.for_workspace(signing_workspace))
    record = json.loads(out.with_name(out.name + ".render.json").read_text())
    assert found.found and found.payload == record["watermark"]["payload_id"]
    check = verify_sidecar(out)
    assert check == {"signature": True, "frames_ok": 4, "frames_changed": [], "frames_missing": []}
    # 8-bit PNGs beside it are C2PA-signed too (a plate folder is no parent file)
    from facedouble.trust.c2pa_sign import read_manifest

    pngs = sorted((tmp_path / "png").glob("*.png"))
    assert len(pngs) == 4 and read_manifest(pngs[0])["status"] == "valid"
    assert "EXR/DPX cannot hold a C2PA manifest" in record["sequence"]["c2pa"]
    with open(out.parent / names[0], "r+b") as handle:  # tampering with a frame is seen
        handle.seek(-8, 2)
        handle.write(b"tampered")
    assert verify_sidecar(out)["frames_changed"] == [names[0]]


def test_face_matches_the_working_space_merge(plate, tmp_path, monkeypatch):
    """The EXR's face, back in the working space, against the same merge on the 8-bit working frames; each
    source EXR is read once (the reader's plate travels to the sequence writer)."""
    from facedouble.io import sequence as sequence_module

    folder, plates, faceset = plate
    model = ShiftSwapper(96)
    exr_out = Outputs(sequence=tmp_path / "exr" / "shot.%04d.exr")
    reads: list[str] = []

    def counted(path, *args, **kwargs):
        reads.append(Path(path).name)
        return read_plate(path, *args, **kwargs)

    monkeypatch.setattr(sequence_module, "read_plate", counted)
    merge(model, faceset, exr_out, CONFIG, clip=folder, progress=False)
    monkeypatch.undo()
    assert sorted(reads) == sorted(p.name for p in folder.glob("*.exr")), reads
    # the reference: the frames every 8-bit stage sees, as a plain PNG folder, merged the same way
    pngs = tmp_path / "working"
    pngs.mkdir()
    for frame in open_source(folder):
        cv2.imwrite(str(pngs / f"{frame.index:06d}.png"), cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
    png_out = Outputs(png_dir=tmp_path / "png", matte_dir=tmp_path / "matte")
    merge(model, faceset, png_out, CONFIG, clip=pngs, progress=False)
    conv = ColourConverter("ACEScg")
    for i in range(FRAMES):
        pixels, _, _ = exr(tmp_path / "exr" / f"shot.{1001 + i:04d}.exr")
        ours = conv.to_working(pixels[..., :3].astype(np.float32))
        ref = cv2.cvtColor(cv2.imread(str(tmp_path / "png" / f"{i:06d}.png")), cv2.COLOR_BGR2RGB) / 255.0
        matte = pixels[..., 3].astype(np.float32)
        solid, edge = matte >= 0.999, (matte > 0) & (matte < 0.999)
        assert solid.sum() > 500
        diff = np.abs(ours - ref).max(axis=-1)
        assert diff[solid].max() <= SOLID_MAX and diff[edge].max() <= EDGE_MAX
        assert diff[matte > 0].mean() <= MEAN_MAX
        assert np.array_equal(pixels[outside(matte)][..., :3].view(np.uint16),
                              plates[i].astype(np.float16)[outside(matte)].view(np.uint16))


@pytest.mark.parametrize(("suffix", "kind", "bits"), [(".dpx", "uint16", 10), (".tif", "uint16", 16),
                                                     (".png", "uint16", 16)])
def test_dpx_10_and_tiff_16_round_trip(plate, tmp_path, suffix, kind, bits):
    """A 10-bit DPX / 16-bit TIFF or PNG sequence comes out at its depth, numbered alike, untouched outside
    the matte."""
    folder, _, faceset = plate
    top = (1 << bits) - 1
    source = tmp_path / "plate"
    source.mkdir()
    codes = []
    for frame in open_source(folder):
        # codes that no 8-bit value maps to exactly, so a pass through 8 bits would show
        code = np.minimum(frame.image.astype(np.uint32) * top // 255 + 1, top).astype(np.uint16)
        attrs = {"oiio:BitsPerSample": bits} if suffix == ".dpx" else {}
        write(source / f"plate.{1001 + frame.index}{suffix}", code.astype(np.float32) / top, kind, attrs=attrs)
        codes.append(code)
    out = tmp_path / "out" / f"plate.####{suffix}"
    with media_options(None):
        merge(ShiftSwapper(96), faceset, Outputs(sequence=out, matte_dir=tmp_path / "matte"), CONFIG, clip=source,
              progress=False)
    names = sorted(p.name for p in out.parent.glob(f"plate.*{suffix}"))
    assert names == [f"plate.{n}{suffix}" for n in range(1001, 1001 + FRAMES)]
    for i, name in enumerate(names):
        got = read_plate(out.parent / name)
        assert got.bits == bits
        values = np.rint(got.rgb * top).astype(np.uint16)
        matte = cv2.imread(str(tmp_path / "matte" / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED)
        keep = outside(matte)
        assert keep.mean() > 0.8 and np.array_equal(values[keep], codes[i][keep])
        assert (values != codes[i]).any()


def test_tiff_and_png_frames_are_c2pa_signed_in_the_file(tmp_path):
    """PNG/TIFF sequence frames carry an embedded C2PA manifest with the record; pixels stay as written."""
    from facedouble.io.sequence import Plate
    from facedouble.merge.seqwriters import write_png16, write_tiff
    from facedouble.trust.c2pa_sign import init_test_ca, read_manifest
    from facedouble.trust.seqsign import finalize_sequence, verify_sidecar

    init_test_ca(tmp_path / "certs")
    rgb = np.random.default_rng(0).random((24, 32, 3), dtype=np.float32)
    rec = {"tool": {"version": "test"}, "output": "s", "watermark": {"payload_id": 7}}
    for suffix, writer in ((".tif", write_tiff), (".png", write_png16)):
        for n in (1001, 1002):
            writer(tmp_path / suffix[1:] / f"s.{n}{suffix}", rgb, rgb[..., 0], Plate(rgb, None, "uint16", 16, {}))
        pattern = tmp_path / suffix[1:] / f"s.%04d{suffix}"
        signed = finalize_sequence(pattern, rec, tmp_path / "plates", tmp_path / "certs" / "signer.pem",
                                   tmp_path / "certs" / "signer.key")
        assert [p.name for p in signed] == [f"s.1001{suffix}", f"s.1002{suffix}"]
        manifest = read_manifest(signed[0])
        assert manifest["status"] == "valid" and manifest["record"]["watermark"]["payload_id"] == 7
        assert np.array_equal(np.rint(read_plate(signed[1]).rgb * 65535), np.rint(rgb * 65535))
        assert verify_sidecar(pattern)["signature"] is True


def test_a_video_source_gives_numbered_frames_with_its_timecode(tmp_path):
    """From a video (no float plate): frames numbered by index, the start timecode counted on per frame."""
    from types import SimpleNamespace

    from facedouble.merge.seqwriters import SequenceOutput, timecode_at

    assert timecode_at("01:00:59:23", 1, 24.0) == (0x01010000, 0)  # 01:01:00:00
    assert timecode_at("23:59:59:24", 1, 25.0) == (0, 0)  # wraps at midnight
    assert timecode_at("01:00:59;29", 1, 29.97) == (0x01010042, 0)  # drop-frame: 01:01:00;02, flag set
    assert timecode_at(None, 3, 25.0) is None
    source = SimpleNamespace(sequence=None, info=SimpleNamespace(timecode="10:00:00:00", fps=25.0))
    writer = SequenceOutput(tmp_path / "v.%06d.exr", source)
    target = np.full((16, 20, 3), 120, np.uint8)
    rendered = target.copy()
    rendered[4:8, 4:8] = 200
    alpha = (rendered != target).any(-1).astype(np.float32)
    path = writer.write(26, rendered, target, alpha)
    assert path.name == "v.000026.exr"
    spec = oiio.ImageInput.open(str(path)).spec()
    assert spec.getattribute("smpte:TimeCode") == (timecode_at("10:00:01:01", 0, 25.0)[0], 0)
    assert spec.getattribute("framesPerSecond") == (25, 1)
    pixels, _, _ = exr(path)
    assert np.array_equal(pixels[0, 0, :3], np.full(3, 120 / 255, np.float16))  # untouched: the 8-bit value


def test_resuming_with_other_colour_settings_is_refused(plate, tmp_path):
    from facedouble.errors import FacedoubleError
    from facedouble.io.sequence import MediaOptions

    folder, _, faceset = plate
    outputs = Outputs(sequence=tmp_path / "o" / "shot.%04d.exr")
    with media_options(MediaOptions(colourspace="ACEScg")):
        merge(ShiftSwapper(96), faceset, outputs, CONFIG, clip=folder, progress=False)
    (outputs.work_dir() / "seg_00001.json").unlink()  # as if interrupted after the first segment
    with media_options(MediaOptions(colourspace="Linear Rec.709 (sRGB)")), pytest.raises(FacedoubleError) as exc:
        merge(ShiftSwapper(96), faceset, outputs, CONFIG, clip=folder, progress=False)
    assert "other colour settings" in str(exc.value) and "--fresh" in str(exc.value)


def test_frames_name_a_sequences_own_numbers() -> None:
    """--frames on a sequence numbered from 1001 names those numbers, not decode indices."""
    from facedouble.errors import FacedoubleError
    from facedouble.merge.config import MergeConfig

    config = MergeConfig(frames="1003-1005", handles=1).validate()
    assert config.window(10, first_number=1001) == (1, 5)  # frames 1002..1006 = indices 1..5
    assert MergeConfig(frames="3-5", handles=1).validate().window(10) == (2, 6)  # a video counts from 0
    with pytest.raises(FacedoubleError, match="first frame"):
        MergeConfig(frames="10-20").validate().window(10, first_number=1001)
    with pytest.raises(FacedoubleError, match="last frame \\(1010\\)"):
        MergeConfig(frames="1011-1020").validate().window(10, first_number=1001)
