"""Short fuzzing run of every reader (the long campaign is `python -m bench.fuzz`), plus the inputs the
campaign found, kept as regression tests; each of those failed before its fix."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facedouble.errors import FacedoubleError, InputError
from tests.reliability.fuzz.harness import ALLOWED, CORPUS, TARGETS, seeds
from tests.reliability.fuzz.runner import Worker, fuzz

SECONDS = {name: (3.0 if name.startswith("video") else 2.5) for name in TARGETS}  # ~30 s for all


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    w.close()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_short_fuzz_run_finds_nothing(worker, name):
    camp = fuzz(name, SECONDS[name], seed=16, worker=worker, min_execs=len(seeds(name)) + 20)
    assert camp.executions >= len(seeds(name)) + 20  # mutated inputs ran, however busy the machine
    assert not camp.findings, {sig: camp.examples[sig] for sig in camp.findings}


def test_every_seed_is_read_by_its_reader(tmp_path):
    for name, target in TARGETS.items():
        for i, data in enumerate(seeds(name)):
            scratch = tmp_path / f"{name}-{i}"
            scratch.mkdir()
            try:
                target(data, scratch)
            except ALLOWED[name]:
                assert name in ("faceset", "overrides", "consent")  # seeds of another file kind of the family


# What the campaign found (each a crash with another exception before its fix) -------------------

def _run(name: str, data: bytes, tmp_path: Path) -> None:
    with pytest.raises(ALLOWED[name]):
        TARGETS[name](data, tmp_path)


def test_override_sidecar_that_is_not_utf8_or_lacks_frames(tmp_path):
    from facedouble.merge.overrides import load_overrides

    path = tmp_path / "fix.json"
    path.write_bytes(b'{"override": [{"frames": "5", "blur": \xc8.5}]}')
    with pytest.raises(FacedoubleError, match="not UTF-8"):  # was UnicodeDecodeError
        load_overrides(path)
    for text in ('[[override]]\ncolour = "lct"\n',  # no frames: was TypeError from the dataclass
                 'override = "x"\n', 'override = ["x"]\n',  # not tables: was AttributeError later
                 '[[override]]\nframes = "1"\nerode = 1e999\nblur = [1]\n'):
        toml = tmp_path / "fix.toml"
        toml.write_text(text)
        with pytest.raises(FacedoubleError):
            load_overrides(toml)


def test_config_values_of_the_wrong_shape_are_one_line_errors(tmp_path):
    from facedouble.config import load_toml
    from facedouble.extract.pipeline import ExtractConfig

    for text in ("size = 1e999\n", "size = [1]\n", 'face_type = {a = 1}\n', "size = inf\n"):
        path = tmp_path / "c.toml"
        path.write_text(text)
        with pytest.raises(FacedoubleError):  # was OverflowError / silently kept a list
            load_toml(ExtractConfig, path).validate()


@pytest.mark.parametrize("record", [
    {"expires": "2027-13-45"}, {"expires": 20271231}, {"created": "yesterday"}, {"name": 5}, {"version": "1"}])
def test_consent_record_with_bad_fields_is_refused_on_load(tmp_path, record):
    from facedouble.consent.records import check_model_consent, load_identity

    ws = tmp_path / "ws"
    (ws / "identities").mkdir(parents=True)
    base = {"name": "jane", "release_sha256": "ab", "release_path": "/nonexistent"}
    (ws / "identities" / "jane.json").write_text(json.dumps(base | record))
    with pytest.raises(InputError, match="malformed"):  # was ValueError/TypeError at the expiry check
        load_identity(ws, "jane")
    with pytest.raises(FacedoubleError):
        check_model_consent({"name": "jane", "record_hash": "x"}, ws)


def test_withdrawal_or_binding_of_the_wrong_shape_fails_closed(tmp_path):
    from facedouble.consent.records import BINDING_FILE, check_model_consent, load_identity, require_consent
    from facedouble.errors import PolicyError

    ws = tmp_path / "ws"
    for folder in ("identities", "revocations"):
        (ws / folder).mkdir(parents=True)
    (ws / "identities" / "jane.json").write_text(json.dumps(
        {"name": "jane", "release_sha256": "ab", "release_path": "/nonexistent"}))
    record = load_identity(ws, "jane")
    (ws / "revocations" / "jane.json").write_text("[1, 2]")  # was AttributeError: counts as withdrawn now
    with pytest.raises(PolicyError, match="withdrawn"):
        check_model_consent({"name": "jane", "record_hash": record.record_hash}, ws)
    faceset = tmp_path / "faces"
    faceset.mkdir()
    (faceset / BINDING_FILE).write_text('{"identity": 5, "record_hash": "x"}')  # was TypeError in re.match
    with pytest.raises(PolicyError, match="malformed"):
        require_consent(faceset, ws)


def test_video_with_an_unknown_codec_tag_is_an_input_error(tmp_path):
    data = (CORPUS / "mp4" / "clip.mp4").read_bytes().replace(b"avc1", b"zzz1")
    with pytest.raises(InputError, match="codec is unknown"):  # was AttributeError on codec_context
        TARGETS["video-mp4"](data, tmp_path)


# Property-based checks (hypothesis) of the in-process codecs ------------------------------------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF), min_size=1, max_size=20),
       text=st.text(max_size=2000), jpeg=st.booleans())
def test_metadata_text_round_trips(key, text, jpeg):
    from facedouble.io import imagemeta

    image = seeds("imagemeta")[1 if jpeg else 2]
    stored = imagemeta.set_text(image, key, text)
    assert imagemeta.get_text(stored, key) == text
    assert imagemeta.get_text(imagemeta.remove_text(stored, key), key) is None


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=4), max_leaves=30)


@settings(max_examples=200, deadline=None)
@given(changes=st.dictionaries(
    st.sampled_from(["version", "source", "frame_index", "size", "frame_size", "landmarks", "transform", "mesh",
                     "labels", "face_type", "score", "identity", "extra"]), _json, max_size=3))
def test_face_metadata_with_any_changed_fields_is_read_or_refused(changes):
    from facedouble.faceset.meta import FaceMeta

    raw = json.loads((CORPUS / "faceset" / "meta.json").read_text())
    raw.update(changes)
    with contextlib.suppress(InputError):
        FaceMeta.from_json(json.dumps(raw))
