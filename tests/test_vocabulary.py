"""One vocabulary: a flag means one thing in every subcommand, and renamed flags say what they became."""

from __future__ import annotations

import argparse
import re
from collections import defaultdict

import pytest

from facedouble.cli import build_parser, main

# Flags that several commands share on purpose, each with the one meaning it has everywhere. A flag not
# listed here that appears in two commands must have the same dest, type, action and help text in both.
SAME_MEANING = {
    "--config": "TOML file with this command's settings",
    "--set": "one setting of this command by its TOML key",
    "--workspace": "the workspace folder (consent records, certs/), default $FACEDOUBLE_WORKSPACE",
    "--out": "where this command writes its result (file or folder)",
    "--json": "machine-readable output",
    "--model": "a trained model folder",
    "--clip": "the target clip (the plate)",
    "--target": "the target the render was made from (its clip, or for merge also its faceset)",
    "--face-type": "crop coverage of the aligned faces (full, whole, ...)",
    "--size": "aligned face size in pixels",
    "--reference": "image or faceset of the wanted person",
    "--label": "visible label burnt into every frame",
    "--segment-frames": "frames per resumable merge segment",
    "--embed-every": "identity embedding on every Nth face/frame",
    "--max-iters": "stop training at this total iteration",
    "--workers": "background worker threads of this command",
    "--no-progress": "no progress bars",
    "--device": "where the model runs (train, merge; extract: its detector): auto, cpu or cuda",
    "--frames": "source frames A-B, inclusive, the source's own numbers (merge renders them, extract analyses them)",
    "--handles": "extra frames before A and after B (merge, extract)",
    "--preset": "a model preset (train, and `config show train`)",
    "--faceset": "a faceset folder (merge/farm: the target's; mask train: faces with labels)",
    # training options of the two trainers (face model: train; segmenter: mask train)
    "--lr": "learning rate",
    "--seed": "random seed",
    "--batch-size": "samples per step (train, mask train/apply)",
    "--bf16": "bf16 autocast",
    "--threads": "torch threads",
    "--resolution": "model input size in pixels",
    "--save-every-min": "minutes between checkpoints",
    "--preview-every-min": "minutes between previews",
    "--max-minutes": "stop after this many minutes",
}

# Old spelling -> (command, new spelling). The old one exits 2 with one line naming the new one.
RENAMED = {
    ("merge", "--preset"): "--x264-preset",
    ("merge", "--smooth"): "--transform-smooth",
    ("extract", "--smooth"): "--landmark-smooth",
    ("farm openjd", "--config"): "--merge-config",
    ("verify", "--key"): "--watermark-key",  # merge's --key is the C2PA signing key
}


def _leaf_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser) of every subcommand, nested ones included."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for action in subs:
        for name, sub in action.choices.items():
            yield from _leaf_parsers(sub, (*path, name))


def _flags() -> dict[str, list[tuple[str, tuple]]]:
    """flag -> [(command, meaning)] over every subcommand; retired flags (hidden hints) are left out."""
    found: dict[str, list[tuple[str, tuple]]] = defaultdict(list)
    for path, parser in _leaf_parsers(build_parser()):
        for action in parser._actions:
            if not action.option_strings or action.help == argparse.SUPPRESS:
                continue
            if isinstance(action, argparse._HelpAction):
                continue
            help_text = re.sub(r"\s*\(default[^()]*\)\s*$", "", action.help or "")
            kind = getattr(action.type, "__name__", None) or "str"
            kind = "str" if kind in ("str", "Path") else kind  # a path is a string on the command line
            dest, act = action.dest, type(action).__name__
            if act == "_StoreTrueAction" and dest.startswith("no_"):  # --no-x into no_x is --no-x into x=False
                dest, act = dest[3:], "_StoreFalseAction"
            meaning = (dest, kind, act, help_text)
            for flag in action.option_strings:
                if flag.startswith("--no-") and isinstance(action, argparse.BooleanOptionalAction):
                    continue  # the negative form of a --x/--no-x switch
                found[flag].append((" ".join(path), meaning))
    return found


def test_every_subcommand_parser_builds_and_has_flags():
    commands = [" ".join(p) for p, _ in _leaf_parsers(build_parser())]
    for name in ("extract", "faceset sort", "train", "merge", "report", "verify", "certs init", "farm openjd",
                 "config show merge", "config show train"):
        assert name in commands
    assert len(_flags()) > 60


def test_one_flag_name_has_one_meaning():
    clashes = []
    for flag, uses in sorted(_flags().items()):
        commands = {command for command, _ in uses}
        if len(commands) < 2 or flag in SAME_MEANING:
            continue
        # `config show STAGE` repeats STAGE's setting flags: the same meaning by construction, checked here too
        meanings = {meaning for _, meaning in uses}
        if len(meanings) > 1:
            clashes.append(f"{flag}: " + "; ".join(sorted(f"{c} -> {m[0]}/{m[1]}: {m[3][:50]!r}" for c, m in uses)))
    assert not clashes, "one flag, several meanings (rename one, or list it in SAME_MEANING):\n" + "\n".join(clashes)


def test_same_meaning_flags_share_dest_and_type():
    """The allow-list is no blanket: a listed flag still reads into the same dest with the same type."""
    for flag in SAME_MEANING:
        uses = _flags().get(flag, [])
        assert uses, f"{flag} is allowed but no command has it; drop it from SAME_MEANING"
        kinds = {(m[0], m[1]) for _, m in uses}
        assert len(kinds) == 1, f"{flag}: {sorted(kinds, key=str)}"


def test_renamed_flags_are_not_live_anywhere_else_with_another_meaning():
    flags = _flags()
    assert "--smooth" not in flags  # both smoothings are named for what they smooth
    assert {c for c, _ in flags["--preset"]} <= {"train", "config show train"}
    assert {c for c, _ in flags["--x264-preset"]} == {"merge", "config show merge"}
    assert "farm openjd" not in {c for c, _ in flags["--config"]}


@pytest.mark.parametrize(("command", "old"), sorted(RENAMED))
def test_old_spelling_gives_a_one_line_hint_and_usage_exit(command, old, capsys):
    new = RENAMED[(command, old)]
    with pytest.raises(SystemExit) as exc:
        main([*command.split(), old, "1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err == err.splitlines()[0] and f"{old} was renamed {new}" in err
    assert err.startswith(f"facedouble {command}: error:")
    # the retired spelling stays out of --help
    with pytest.raises(SystemExit):
        main([*command.split(), "--help"])
    out = capsys.readouterr().out
    assert new in out and not re.search(rf"(^|\s){re.escape(old)}[\s,]", out.replace(new, ""))


def test_retired_toml_keys_get_the_same_hint(tmp_path, capsys):
    bad = tmp_path / "merge.toml"
    bad.write_text('preset = "fast"\n')
    assert main(["config", "show", "merge", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'preset'" in err and "x264_preset" in err


def test_one_workspace_default_for_every_command(tmp_path, monkeypatch, capsys):
    """`certs init` writes where merge looks: WORKSPACE/certs, WORKSPACE from --workspace or the environment."""
    from facedouble.trust.render import find_signer

    ws = tmp_path / "ws"
    monkeypatch.setenv("FACEDOUBLE_WORKSPACE", str(ws))
    assert main(["certs", "init"]) == 0
    assert find_signer(ws, None, None) == (ws / "certs" / "signer.pem", ws / "certs" / "signer.key")
    other = tmp_path / "other"
    assert main(["certs", "init", "--workspace", str(other)]) == 0
    assert (other / "certs" / "signer.pem").exists()
    helps = {a.help for _, parser in _leaf_parsers(build_parser()) for a in parser._actions
             if "--workspace" in a.option_strings}
    assert len(helps) >= 3 and all("$FACEDOUBLE_WORKSPACE, else ./facedouble-workspace" in h for h in helps), helps
