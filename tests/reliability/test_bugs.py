"""Regression tests for the reliability bug list (tracker issue 16); each failed on the old code."""

from __future__ import annotations

import random
import struct
import zlib
from fractions import Fraction

import numpy as np
import pytest
import torch

from facedouble.errors import InputError
from facedouble.io import imagemeta


@pytest.fixture(scope="module")
def face(grid_clip) -> np.ndarray:
    """A 64x64 RGB uint8 crop around the face of the first frame of a real GRID clip."""
    from facedouble.io.video import open_source

    image = next(iter(open_source(grid_clip("bbaf2n")))).image
    h, w = image.shape[:2]
    return np.ascontiguousarray(image[h // 2 - 48:h // 2 + 16, w // 2 - 32:w // 2 + 32])


# 1. idt / sot with a soft mask ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["idt", "sot"])
def test_sample_transfers_survive_a_soft_mask(face, name):
    from facedouble.colour import get_colour_transfer

    src = face.astype(np.float32) / 255.0
    tgt = np.clip(src * 0.8 + np.array([0.1, 0.0, -0.05], np.float32), 0, 1)
    yy, xx = np.mgrid[:64, :64]
    blob = np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / 300.0).astype(np.float32)
    transfer = get_colour_transfer(name)
    # Plenty of weight (sum ~900) but no pixel above the 0.5 sample threshold: used to IndexError.
    soft = blob * 0.5
    assert soft.sum() > 100 and soft.max() <= 0.5
    assert transfer(src, tgt, soft) is src
    # A handful of samples is too few for quantiles: the input comes back unchanged.
    few = soft.copy()
    few[30:33, 30:33] = 1.0
    assert transfer(src, tgt, few) is src
    # A real selection still transfers.
    out = transfer(src, tgt, blob)
    assert out.shape == src.shape and out.dtype == np.float32 and np.abs(out - src).max() > 0.01


# 2. crafted PNG iTXt chunks ---------------------------------------------------------------------

def _raw_itxt(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + b"iTXt" + payload + struct.pack(">I", zlib.crc32(b"iTXt" + payload))


def _itxt(key: str, body: bytes, compressed: bool) -> bytes:
    return _raw_itxt(key.encode("latin-1") + b"\x00" + bytes([int(compressed), 0]) + b"en\x00\x00" + body)


def _with_chunk(png: bytes, chunk: bytes) -> bytes:
    iend = png.rindex(b"IEND") - 4
    return png[:iend] + chunk + png[iend:]


def _check(data: bytes) -> None:
    """Only InputError (or a clean result) may come out of the codec."""
    try:
        text = imagemeta.get_text(data, "k")
        assert text is None or isinstance(text, str)
        imagemeta.remove_text(data, "k")
        imagemeta.set_text(data, "k", "v")
    except InputError:
        pass


@pytest.fixture(scope="module")
def face_png(face) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", face)
    assert ok
    return buf.tobytes()


def test_png_itxt_mutations_raise_only_input_error(face_png):
    text = '{"landmarks": [[1.5, 2.5], [3.5, 4.5]], "source": "bbaf2n.mpg", "note": "✓"}'.encode()
    plain = _itxt("k", text, compressed=False)
    packed = _itxt("k", zlib.compress(text), compressed=True)
    assert imagemeta.get_text(_with_chunk(face_png, packed), "k") == text.decode()
    rng = random.Random(16)
    for chunk in (plain, packed):
        for _ in range(300):
            bad = bytearray(chunk)
            if rng.random() < 0.5:
                # truncate the chunk's data, keeping the length field consistent so the chunk is read
                cut = rng.randrange(2, len(chunk) - 12)
                data = bytes(chunk[8:8 + cut])
                bad = bytearray(struct.pack(">I", cut) + b"iTXt" + data + b"\x00" * 4)
            for _ in range(rng.randint(1, 4)):
                pos = rng.randrange(len(bad))
                bad[pos] ^= 1 << rng.randrange(8)
            _check(_with_chunk(face_png, bytes(bad)))
    # The cases the old parser crashed on, each a one-line InputError now.
    for chunk in (_raw_itxt(b"k\x00"),                          # keyword only: was IndexError
                  _itxt("k", text, compressed=True),              # flag says zlib, body is not: zlib.error
                  _raw_itxt(b"k\x00\x00\x00no separators")):     # no NUL after the language: ValueError
        with pytest.raises(InputError):
            imagemeta.get_text(_with_chunk(face_png, chunk), "k")


def test_png_itxt_decompression_is_bounded(face_png):
    bomb = _itxt("k", zlib.compress(b"a" * (imagemeta.MAX_TEXT_BYTES + 10), 9), compressed=True)
    assert len(bomb) < 50_000
    with pytest.raises(InputError, match="oversized"):
        imagemeta.get_text(_with_chunk(face_png, bomb), "k")
    cut = _itxt("k", zlib.compress(b"hello " * 1000)[:40], compressed=True)
    with pytest.raises(InputError, match="truncated"):
        imagemeta.get_text(_with_chunk(face_png, cut), "k")


# 3. the encoder child must not import modules from the user's working directory ------------------

def test_encoder_process_ignores_a_planted_module_in_cwd(tmp_path, monkeypatch):
    from facedouble.merge.writers import EncoderProcess

    marker = tmp_path / "PWNED"
    (tmp_path / "numpy.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nraise ImportError('planted')\n")
    monkeypatch.chdir(tmp_path)
    encoder = EncoderProcess()
    try:
        encoder.open(tmp_path / "seg.mp4", 64, 64, Fraction(1, 25), Fraction(25))
        for pts in range(3):
            encoder.write(np.full((64, 64, 3), 40 * pts, np.uint8), pts)
        encoder.close()
    finally:
        encoder.shutdown()
    assert not marker.exists()
    assert (tmp_path / "seg.mp4").stat().st_size > 0


# 4. the compiled optimizer must not apply a step twice -------------------------------------------

def test_compiled_step_that_fails_after_writing_is_not_reapplied(monkeypatch):
    from facedouble.train import optim

    def mutates_then_fails(params, grads, ms, vs, *rest):
        params[0].add_(1.0)  # part of the step is done ...
        raise RuntimeError("device lost mid-step")  # ... and then it fails

    monkeypatch.setattr(optim, "_compiled", lambda: mutates_then_fails)
    p = torch.nn.Parameter(torch.zeros(4, 3))
    opt = optim.AdaBelief([p], lr=1e-2, kernel="compiled")
    p.grad = torch.ones(4, 3)
    with pytest.raises(RuntimeError, match="device lost"):
        opt.step()
    # Only the fake's write happened: no eager re-run on top of it.
    torch.testing.assert_close(p.detach(), torch.ones(4, 3))
    assert opt.kernel == "compiled"


def test_compiled_step_that_fails_before_writing_still_falls_back(monkeypatch):
    from facedouble.train import optim

    def fails(*args):
        raise RuntimeError("InductorError: no C++ compiler")

    monkeypatch.setattr(optim, "_compiled", lambda: fails)
    p = torch.nn.Parameter(torch.zeros(4, 3))
    opt = optim.AdaBelief([p], lr=1e-2, kernel="compiled")
    p.grad = torch.ones(4, 3)
    opt.step()
    assert opt.kernel == "eager"
    expected = optim.AdaBelief([q := torch.nn.Parameter(torch.zeros(4, 3))], lr=1e-2)
    q.grad = torch.ones(4, 3)
    expected.step()
    torch.testing.assert_close(p.detach(), q.detach())


# 5. resume keys on the source's content and the face settings ------------------------------------

def test_same_named_clips_from_two_cards_are_both_extracted_and_merged_apart(tmp_path, grid_clip):
    from facedouble.extract.pipeline import ExtractConfig, extract
    from facedouble.faceset import Faceset
    from facedouble.merge.plan import build_plan
    from tests.footage import frames_of, write_clip

    cards = []
    for card, stem in (("card_a", "bbaf2n"), ("card_b", "lbbc2a")):
        (tmp_path / card).mkdir()
        cards.append(write_clip(tmp_path / card / "C0001.mp4", frames_of(grid_clip(stem), 6)))
    out = tmp_path / "faces"
    cfg = ExtractConfig(size=64, progress=False)
    assert extract(cards[0], out, cfg).faces_written == 6
    second = extract(cards[1], out, cfg)
    assert second.faces_written == 6 and second.faces_skipped_existing == 0  # not "already there"
    metas = [m for _, m in Faceset(out).metas()]
    assert len(metas) == 12 and {m.source for m in metas} == {str(c) for c in cards}
    assert extract(cards[1], out, cfg).faces_skipped_existing == 6  # a true re-run still resumes
    # merge takes only card b's faces for card b's clip: one face per frame, not both cards' faces
    plan = build_plan(out, 64, "full", 0.0, clip=cards[1])
    assert sorted(plan.faces) == list(range(6)) and all(len(jobs) == 1 for jobs in plan.faces.values())
    # another size would silently keep the old 64 px faces: refused with a one-line message instead
    with pytest.raises(InputError, match="size 64.*asks for size 96"):
        extract(cards[0], out, ExtractConfig(size=96, progress=False))
    with pytest.raises(InputError, match="face type full.*face type whole"):
        extract(cards[0], out, ExtractConfig(size=64, face_type="whole", progress=False))
    with pytest.raises(InputError, match="format png.*format jpg"):
        extract(cards[0], out, ExtractConfig(size=64, image_format="jpg", progress=False))
    assert len(Faceset(out).paths()) == 12


# 6. a truncated clip leaves no partial faceset behind ---------------------------------------------

def test_truncated_clip_removes_the_faces_of_its_readable_part(tmp_path, grid_clip):
    import av

    from facedouble.extract.pipeline import ExtractConfig, extract
    from tests.footage import frames_of

    clip = tmp_path / "full.mp4"
    with av.open(str(clip), "w", options={"movflags": "faststart"}) as container:  # index first: still opens
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 360, 288, "yuv420p"
        stream.options = {"crf": "18", "threads": "1"}
        for image in frames_of(grid_clip("sbia1a"), 40):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size * 6 // 10])
    out = tmp_path / "faces"
    with pytest.raises(InputError, match=r"cut\.mp4.*faces extracted from its readable part were removed"):
        extract(cut, out, ExtractConfig(size=64, progress=False))
    assert not [p for p in out.glob("*") if p.suffix in (".png", ".jpg")] if out.exists() else True


# 7. the seek table ignores frames an MP4 edit list cuts -------------------------------------------

def test_seek_table_skips_frames_cut_by_an_edit_list(tmp_path, face):
    import av

    from facedouble.io.video import open_source

    plain = tmp_path / "plain.mp4"
    with av.open(str(plain), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.options = {"threads": "1", "bf": "0", "crf": "12"}
        for i in range(12):
            image = np.roll(face, 5 * i, axis=1)  # every frame distinct
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    # Remux with timestamps moved 3 frames earlier: the muxer writes an edit list that starts at
    # pts 0, so the first 3 packets are demuxed (flagged discard) but never shown.
    trimmed = tmp_path / "trimmed.mp4"
    with av.open(str(plain)) as source, av.open(str(trimmed), "w") as out:
        ist = source.streams.video[0]
        ost = out.add_stream_from_template(ist)
        shift = int(Fraction(3, 25) / ist.time_base)
        for packet in source.demux(ist):
            if packet.dts is None:
                continue
            packet.pts, packet.dts, packet.stream = packet.pts - shift, packet.dts - shift, ost
            out.mux(packet)
    with av.open(str(trimmed)) as container:
        assert sum(p.is_discard for p in container.demux(video=0) if p.size) == 3  # the edit list is there
    full = list(open_source(trimmed))
    assert len(full) == 9
    for start in (1, 4, 8):
        seeked = list(open_source(trimmed).frames(start))
        assert [f.index for f in seeked] == [f.index for f in full[start:]]
        assert [f.timestamp for f in seeked] == [f.timestamp for f in full[start:]]
        assert all(np.array_equal(a.image, b.image) for a, b in zip(seeked, full[start:], strict=True))


# 8. a phone clip with a rotation display matrix --------------------------------------------------

@pytest.mark.parametrize("rotation", [90, 270])
def test_rotated_phone_clip_is_read_upright_and_merged_with_its_rotation(tmp_path, grid_clip, rotation):
    import av

    from facedouble.extract.pipeline import ExtractConfig, extract
    from facedouble.faceset import Faceset
    from facedouble.io.video import open_source
    from facedouble.merge.pipeline import MergeConfig, Outputs
    from tests.footage import frames_of
    from tests.standin import ShiftSwapper
    from tests.standin import merge_unmarked as merge

    upright = frames_of(grid_clip("bbaf2n"), 10)
    clip = tmp_path / "IMG_0001.MOV"
    # As a phone does: pixels stored turned a quarter, plus a display matrix that turns them back.
    with av.open(str(clip), "w", format="mov") as out:
        stream = out.add_stream("libx264", rate=25)
        stored = [np.ascontiguousarray(np.rot90(image, -rotation // 90)) for image in upright]
        stream.width, stream.height, stream.pix_fmt = stored[0].shape[1], stored[0].shape[0], "yuv420p"
        stream.options = {"crf": "12", "threads": "1"}
        stream.set_display_rotation(rotation)
        for image in stored:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    src = open_source(clip)
    assert (src.info.width, src.info.height, src.info.rotation) == (360, 288, rotation)
    frames = list(src)
    assert all(f.image.shape == (288, 360, 3) for f in frames)
    assert np.abs(frames[3].image.astype(int) - upright[3]).mean() < 3  # upright, as a player shows it
    late = list(open_source(clip).frames(6))  # the seeking path turns frames the same way
    assert all(np.array_equal(a.image, b.image) for a, b in zip(late, frames[6:], strict=True))
    # faces are found upright: eyes above the mouth in source pixels, frame size as displayed
    faces = tmp_path / "faces"
    assert extract(clip, faces, ExtractConfig(size=64, progress=False)).faces_written == 10
    for _, meta in Faceset(faces).metas():
        assert meta.frame_size == (360, 288)
        assert meta.landmarks[36:48, 1].mean() < meta.landmarks[48:68, 1].mean() - 10
    # the merge output keeps the plate's layout: pixels stored turned as the plate's, the same display matrix
    # (not re-written upright), so it plays upright and conforms over the original
    outputs = Outputs(video=tmp_path / "out.mp4")
    merge(ShiftSwapper(64), faces, outputs, MergeConfig(segment_frames=5, batch=5), hooks=_marked(),
          progress=False)
    with av.open(str(outputs.video)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (288, 360)  # stored as the phone stored it
        raw = [f for f in container.decode(stream)]
        assert [round(f.rotation) % 360 for f in raw] == [rotation] * 10
        stored_corner = np.rot90(upright[3], -rotation // 90)[:60, :60]  # a stored corner away from the face
        here = raw[3].to_ndarray(format="rgb24")[:60, :60]
        assert np.abs(here.astype(int) - stored_corner).mean() < 4
    rendered = open_source(outputs.video)
    assert (rendered.info.width, rendered.info.height, rendered.info.rotation) == (360, 288, rotation)
    got = [f.image for f in rendered]
    assert len(got) == 10
    corner = (slice(0, 60), slice(0, 80))  # background, away from the swapped face
    assert np.abs(got[3][corner].astype(int) - upright[3][corner]).mean() < 4


def _marked():
    """Post-composite hooks as a marked render has (merge refuses to render without any)."""
    from facedouble.merge.pipeline import MergeHooks

    return MergeHooks(post_composite=[lambda ctx: None])
