"""Consent is re-checked at every render: expired or withdrawn (`identity revoke`) refuses the next merge."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from facedouble.errors import PolicyError
from tests.standin import ShiftSwapper
from tests.trust.conftest import run_cli

CLIP = "bbaf2n"


@pytest.fixture()
def setup(tmp_path, monkeypatch, grid_faceset):
    """Workspace with a signer and a consent record expiring tomorrow; `load_model` gives a model carrying it."""
    from facedouble.consent.records import add_identity
    from facedouble.merge import model as model_module
    from facedouble.trust.c2pa_sign import init_test_ca

    ws = tmp_path / "ws"
    init_test_ca(ws / "certs")
    release = tmp_path / "release.txt"
    release.write_text("signed release\n")
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    record = add_identity(ws, "performer", release, expires=tomorrow)

    def load(path, **options):
        model = ShiftSwapper(96)
        model.consent = {"name": "performer", "record_hash": record.record_hash}
        return model

    monkeypatch.setattr(model_module, "load_model", load)
    monkeypatch.setenv("FACEDOUBLE_WORKSPACE", str(ws))
    return ws, grid_faceset(CLIP, size=64, face_type="full")


def _merge(faceset, out) -> int:
    import facedouble.cli as cli

    return cli.main(["merge", "--model", "m", "--target", str(faceset), "--out", str(out), "--preview", "3"])


def test_revoke_takes_effect_at_the_next_render(setup, tmp_path, capsys):
    ws, faceset = setup
    assert _merge(faceset, tmp_path / "a.png") == 0
    assert run_cli(["identity", "revoke", "performer", "--workspace", str(ws), "--reason", "asked"]) == 0
    assert "withdrew the consent of performer" in capsys.readouterr().out
    assert _merge(faceset, tmp_path / "b.png") != 0 and not (tmp_path / "b.png").exists()
    assert "withdrawn" in capsys.readouterr().err
    assert run_cli(["identity", "list", "--workspace", str(ws)]) == 0
    assert "performer\twithdrawn" in capsys.readouterr().out
    full = tmp_path / "c.mp4"  # a full render is refused too, before any frame
    import facedouble.cli as cli

    assert cli.main(["merge", "--model", "m", "--target", str(faceset), "--out", str(full)]) != 0
    assert not full.exists()


def test_expired_consent_refuses_the_render(setup, tmp_path, monkeypatch):
    from facedouble.consent import records as consent
    from facedouble.trust.render import check_consent

    ws, _ = setup
    model = ShiftSwapper(96)
    model.consent = {"name": "performer", "record_hash": consent.load_identity(ws, "performer").record_hash}
    assert check_consent(model, ws) == model.consent

    later = dt.date.today() + dt.timedelta(days=2)

    class Later(dt.date):
        @classmethod
        def today(cls):
            return later

    monkeypatch.setattr(consent, "dt", SimpleNamespace(date=Later))  # the consent module's clock only
    with pytest.raises(PolicyError, match="expired"):
        check_consent(model, ws)
