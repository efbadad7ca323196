"""A file the C2PA reader cannot parse and that holds no manifest is never called tampered."""

from __future__ import annotations

import shutil

from facedouble.trust.c2pa_sign import has_manifest_bytes, read_manifest
from facedouble.trust.verify import EXIT_TAMPERED
from tests.trust.conftest import grid_clip, run_cli


def test_text_named_mp4_is_not_tampered(tmp_path, capsys):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 50)
    assert read_manifest(fake)["status"] == "absent" and not has_manifest_bytes(fake)
    code = run_cli(["verify", str(fake)])
    assert code not in (EXIT_TAMPERED, 1, 0)
    assert "altered" not in capsys.readouterr().out


def test_mpeg_ps_copied_to_mp4_is_not_tampered(tmp_path, capsys):
    clip = tmp_path / "x.mp4"
    shutil.copyfile(grid_clip("pwij3p"), clip)
    assert read_manifest(clip)["status"] == "absent"
    code = run_cli(["verify", str(clip)])
    out = capsys.readouterr().out
    assert code != EXIT_TAMPERED and "altered" not in out


def test_a_signed_render_still_has_manifest_bytes(render):
    assert has_manifest_bytes(render["path"])
