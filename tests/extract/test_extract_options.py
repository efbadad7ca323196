"""extract's --frames/--handles (merge's meaning: source frame numbers, a sequence's own) and --device."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from facedouble.cli import main
from facedouble.errors import FacedoubleError
from facedouble.extract.detectors import get_detector, onnx_providers
from facedouble.extract.pipeline import ExtractConfig
from facedouble.faceset import Faceset
from facedouble.io.framerange import frame_window
from facedouble.merge.config import MergeConfig
from tests.footage import frames_of, write_clip

CUDA = "CUDAExecutionProvider" in __import__("onnxruntime").get_available_providers()


@pytest.fixture(scope="module")
def clip(tmp_path_factory, grid_clip):
    return write_clip(tmp_path_factory.mktemp("opts") / "clip.mp4", frames_of(grid_clip("bbaf2n"), 12))


def _frames_in(folder) -> list[int]:
    return sorted({meta.frame_index for _, meta in Faceset(folder).metas()})


@pytest.mark.parametrize(("frames", "handles", "count", "first"),
                         [("", 0, 10, 0), ("3-5", 0, 10, 0), ("3-5", 2, 10, 0), ("0-2", 4, 10, 0), ("8-20", 1, 10, 0),
                          ("1003-1004", 1, 10, 1001), ("1000-1002", 0, 10, 1001), ("1003-1004", 0, None, 1001)])
def test_extract_and_merge_share_the_window(frames, handles, count, first):
    ext = ExtractConfig(frames=frames, handles=handles)
    ext.validate()
    merge = MergeConfig(frames=frames, handles=handles).validate()
    assert ext.window(count, first) == merge.window(count, first) == frame_window(frames, handles, count, first)


def test_frames_and_handles_analyse_exactly_the_window(clip, tmp_path, capsys):
    out = tmp_path / "fs"
    assert main(["extract", str(clip), str(out), "--size", "64", "--frames", "5-7", "--handles", "1",
                 "--no-progress"]) == 0
    report = json.loads((out / "extract-report.json").read_text())
    assert report["frames_read"] == report["frames_analysed"] == 5
    assert report["config"]["frames"] == "5-7" and report["config"]["handles"] == 1
    assert _frames_in(out) == [4, 5, 6, 7, 8]


def test_frames_of_a_sequence_are_its_own_numbers(grid_clip, tmp_path):
    seq = tmp_path / "seq"
    seq.mkdir()
    for i, image in enumerate(frames_of(grid_clip("bbaf2n"), 6)):  # 16-bit PNGs: a numbered sequence
        bgr16 = cv2.cvtColor(image, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257
        cv2.imwrite(str(seq / f"shot.{1001 + i:04d}.png"), bgr16)
    out = tmp_path / "fs"
    assert main(["extract", str(seq), str(out), "--size", "64", "--frames", "1003-1004",
                 "--no-progress", "--fps", "25"]) == 0
    report = json.loads((out / "extract-report.json").read_text())
    assert report["frames_analysed"] == 2
    assert _frames_in(out) == [2, 3]  # decode positions of shot.1003/1004 (face names keep decode order)


@pytest.mark.parametrize("args", [["--frames", "7-5"], ["--frames", "abc"], ["--frames", "50-60"],
                                  ["--handles", "-1"]])
def test_bad_range_is_a_one_line_error(clip, tmp_path, capsys, args):
    code = main(["extract", str(clip), str(tmp_path / "fs"), "--no-progress", *args])
    err = capsys.readouterr().err.strip()
    assert code not in (0, None) and err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "fs" / "extract-report.json").exists()


def test_device_cpu_is_the_default_and_auto_falls_back():
    assert ExtractConfig().device == "cpu"
    assert onnx_providers("cpu") == ["CPUExecutionProvider"]
    assert onnx_providers("auto")[-1] == "CPUExecutionProvider"
    assert (onnx_providers("auto")[0] == "CUDAExecutionProvider") == CUDA
    assert get_detector("retinaface", "auto").name == "retinaface"
    with pytest.raises(FacedoubleError, match="device must be"):
        onnx_providers("tpu")


@pytest.mark.skipif(CUDA, reason="a CUDA execution provider is present")
def test_device_cuda_without_gpu_is_a_one_line_error(clip, tmp_path, capsys):
    code = main(["extract", str(clip), str(tmp_path / "fs"), "--device", "cuda", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code not in (0, None) and "\n" not in err and "--device cuda" in err and "CUDA" in err
    assert not (tmp_path / "fs" / "extract-report.json").exists()
