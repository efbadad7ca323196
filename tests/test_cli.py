"""Top-level CLI behaviour."""

import subprocess
import sys

from facedouble.cli import main


def test_help_lists_stages(capsys):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    assert "extract" in out and "faceset" in out and "demo" in out


def test_console_script_reports_missing_input_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "facedouble", "extract", str(tmp_path / "missing.mp4"),
                           str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 3
    assert proc.stderr.strip() == f"facedouble extract: error: input not found: {tmp_path / 'missing.mp4'}"


def test_demo_extracts_both_sample_clips(tmp_path, grid_clip, capsys):
    source, target = grid_clip("bbaf2n"), grid_clip("lbbc2a")
    assert main(["demo", str(source), str(target), "--out", str(tmp_path), "--size", "64"]) == 0
    out = capsys.readouterr().out
    assert "source faceset" in out and "target faceset" in out
    assert len(list((tmp_path / "source-faceset").glob("*.png"))) == 75
