"""One config system: every stage loads TOML, --set and flags the same way, validates, and `config show` prints it."""

from __future__ import annotations

import argparse

import pytest

from facedouble import errors
from facedouble.cli import build_parser, main
from facedouble.config import StageConfig, from_dict, to_toml

# Each stage's real command with inputs that do not exist: settings are loaded and checked before any input
# is touched, so a bad setting must be what stops it.
STAGE_COMMANDS = {
    "extract": ["extract", "missing.mp4", "out"],
    "sort": ["faceset", "sort", "missing", "--by", "blur"],
    "train": ["train", "--src", "missing", "--dst", "missing", "--model", "m"],
    "merge": ["merge", "--model", "missing", "--target", "missing", "--out", "o.mp4"],
    "report": ["report", "missing.mp4", "--target", "t.mp4", "--source", "s"],
}
SHOW_ARGS = {"sort": ["--by", "blur"]}  # sort has a required setting


def _stages() -> dict[str, StageConfig]:
    parser = build_parser()
    config = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["config"]
    show = next(a for a in config._actions if isinstance(a, argparse._SubParsersAction)).choices["show"]
    stages = next(a for a in show._actions if isinstance(a, argparse._SubParsersAction)).choices
    return {name: p.get_default("stage_config") for name, p in stages.items()}


def test_every_stage_is_in_config_show():
    assert set(_stages()) == set(STAGE_COMMANDS)


@pytest.mark.parametrize("stage", sorted(STAGE_COMMANDS))
def test_a_bad_toml_key_is_one_line_naming_it_in_every_stage(stage, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text("no_such_key = 1\n")
    for argv in (STAGE_COMMANDS[stage], ["config", "show", stage]):
        assert main([*argv, "--config", str(bad)]) == errors.EXIT_USAGE
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "unknown setting 'no_such_key'" in err and str(bad) in err


@pytest.mark.parametrize("stage", sorted(STAGE_COMMANDS))
def test_bad_set_value_and_malformed_toml_are_usage_errors(stage, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    broken = tmp_path / "broken.toml"
    broken.write_text("x = = 1\n")
    assert main([*STAGE_COMMANDS[stage], "--config", str(broken)]) == errors.EXIT_USAGE
    assert "not valid TOML" in capsys.readouterr().err
    assert main([*STAGE_COMMANDS[stage], "--set", "novalue"]) == errors.EXIT_USAGE
    assert "KEY=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize("stage", sorted(STAGE_COMMANDS))
def test_config_show_reads_back_through_config(stage, tmp_path, capsys):
    assert main(["config", "show", stage, *SHOW_ARGS.get(stage, [])]) == 0
    first = capsys.readouterr().out
    saved = tmp_path / f"{stage}.toml"
    saved.write_text(first)
    assert main(["config", "show", stage, "--config", str(saved)]) == 0  # `by` comes from the file now
    again = capsys.readouterr().out
    body = lambda text: text.split("\n", 1)[1]  # noqa: E731 - the first line names the sources
    assert body(again) == body(first)


def test_precedence_defaults_toml_set_flags(tmp_path, capsys):
    toml = tmp_path / "m.toml"
    toml.write_text('crf = 30\nblur = 2.0\nx264_preset = "fast"\n')
    assert main(["config", "show", "merge", "--config", str(toml), "--set", "crf=25", "--set", "blur=3",
                 "--blur", "5", "--precision", "fp32", "--conv", "direct"]) == 0
    out = capsys.readouterr().out
    assert "crf = 25" in out and "blur = 5.0" in out and 'x264_preset = "fast"' in out
    assert 'precision = "fp32"' in out and 'conv = "direct"' in out  # merge's arithmetic is in MergeConfig now


def test_train_toml_takes_flat_keys_or_model_and_train_tables(tmp_path, capsys):
    flat = tmp_path / "flat.toml"
    flat.write_text("lr = 0.0002\nresolution = 96\n")
    tables = tmp_path / "tables.toml"
    tables.write_text("[model]\nresolution = 96\n[train]\nlr = 0.0002\n")
    outs = []
    for path in (flat, tables):
        assert main(["config", "show", "train", "--preset", "tiny", "--config", str(path)]) == 0
        outs.append(capsys.readouterr().out.split("\n", 1)[1])
    assert outs[0] == outs[1] and "lr = 0.0002" in outs[0] and "resolution = 96" in outs[0]


@pytest.mark.parametrize(("stage", "setting", "needle"), [
    ("extract", "size=8", "size"),
    ("sort", "reject_worst=150", "reject-worst"),
    ("train", "batch_size=0", "batch_size"),
    ("train", "lr_dropout=2", "lr_dropout"),
    ("train", "optimizer_kernel='fast'", "optimizer kernel"),
    ("train", "resolution=100", "resolution"),
    ("merge", "crf=99", "crf"),
    ("merge", "x264_preset='quick'", "x264_preset"),
    ("merge", "precision='fp8'", "precision"),
    ("report", "embed_every=0", "embed_every"),
])
def test_impossible_values_are_refused_in_one_line(stage, setting, needle, capsys):
    assert main(["config", "show", stage, *SHOW_ARGS.get(stage, []), "--set", setting]) == errors.EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err


def test_train_config_validates_itself_on_every_path():
    from facedouble.train.trainer import TrainConfig

    with pytest.raises(errors.FacedoubleError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(errors.FacedoubleError, match="lr must be"):
        from_dict(TrainConfig, {"lr": -1})
    with pytest.raises(errors.FacedoubleError, match="must be true or false"):
        from_dict(TrainConfig, {"pretrain": "maybe"})
    assert TrainConfig(lr=1e-4).lr == 1e-4


@pytest.mark.parametrize("stage", sorted(STAGE_COMMANDS))
def test_help_shows_every_settings_default(stage):
    """Each setting flag's --help states its default (read from the dataclass, so it cannot drift)."""
    spec = _stages()[stage]
    parser = argparse.ArgumentParser()
    spec.add_flags(parser)
    sections = spec.effective(parser.parse_args(SHOW_ARGS.get(stage, [])))
    fields = {k for cfg in sections.values() for k in cfg.__dataclass_fields__}
    shown = [a for a in parser._actions if a.dest in fields and a.option_strings and a.help != argparse.SUPPRESS]
    assert shown
    for action in shown:
        if stage == "train" and action.dest in sections["model"].__dataclass_fields__:
            assert "the preset's" in (action.container.title or ""), action.dest  # shape defaults come from --preset
            continue
        assert "default" in (action.help or ""), f"{stage} {action.option_strings[0]}: {action.help!r}"


def test_to_toml_writes_unset_values_as_comments():
    from facedouble.extract.pipeline import ExtractConfig

    text = to_toml({"": ExtractConfig()})
    assert "# reference = (unset: auto)" in text and "size = 256" in text


def test_exit_codes_are_one_table_and_two_is_usage_only():
    assert errors.UsageError.exit_code == errors.FacedoubleError.exit_code == errors.EXIT_USAGE == 2
    assert errors.InputError.exit_code == 3 and errors.PolicyError.exit_code == 4
    assert errors.InternalError.exit_code == errors.EXIT_INTERNAL == 70
    assert len(set(errors.EXIT_CODES)) == len(errors.EXIT_CODES)
    assert [code for code, (name, _) in errors.EXIT_CODES.items() if name == "usage"] == [2]
    for code in errors.EXIT_CODES:
        assert str(code) in errors.__doc__


def test_an_unexpected_exception_is_one_line_and_exit_70(monkeypatch, capsys):
    from facedouble.trust import verify

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(verify, "verify_file", boom)
    assert main(["verify", "x.mp4"]) == errors.EXIT_INTERNAL  # not 1, which is verify's "not marked"
    err = capsys.readouterr().err.strip()
    assert err == "facedouble verify: internal error: RuntimeError: disk on fire (run with -v for the traceback)"
