"""The package's floors: every import of facedouble runs down the pipeline, never back up.

Floors, lowest first (a module may import its own floor's group and any lower floor):

    base        errors, log, runtime, progress, config, io/
    shared      face/ (geometry), colour/ (colour transfer), nn/ (checkpoints, precision)
    faceset     faceset/, beside policy/ (trust's low policies: the content guard, the workspace keys); the
                two do not import each other
    extract     extract/
    mask        mask/
    consent     consent/, the consent gate (consent records, the person check, the model's consent seal):
                below train, which calls it; above extract, whose identity model the person check uses
    train       train/
    merge       merge/
    provenance  trust/, the marks (watermark, label, record, C2PA, verify, render): they plug into merge's hooks
    report      report/
    api         api.py: what the CLI and the studio call
    top         studio/, farm/, demo.py

The command line (facedouble/cli/, and __main__.py) stands on top of everything: it may import anything, and no
other module may import it. Lazy imports inside functions count the same as top-level ones.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "facedouble"

# (floor, group, module prefixes); a module belongs to the entry with its longest matching prefix.
FLOORS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (0, "base", ("facedouble.errors", "facedouble.log", "facedouble.runtime",
                 "facedouble.progress", "facedouble.config", "facedouble.io")),
    (1, "shared", ("facedouble.face", "facedouble.colour", "facedouble.nn")),
    (2, "faceset", ("facedouble.faceset",)),
    (2, "policy", ("facedouble.policy",)),
    (3, "extract", ("facedouble.extract",)),
    (4, "mask", ("facedouble.mask",)),
    (5, "consent", ("facedouble.consent",)),
    (6, "train", ("facedouble.train",)),
    (7, "merge", ("facedouble.merge",)),
    (8, "provenance", ("facedouble.trust",)),
    (9, "report", ("facedouble.report",)),
    (10, "api", ("facedouble.api",)),
    (11, "top", ("facedouble.studio", "facedouble.farm", "facedouble.demo")),
)


def is_cli(module: str) -> bool:
    """Command-line modules (facedouble/cli/ and __main__.py): the top of the house."""
    return module == "facedouble.cli" or module.startswith("facedouble.cli.") or module.endswith(".__main__")


def module_name(path: Path) -> str:
    """Dotted name of a file of the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def floor_of(module: str) -> tuple[int, str]:
    """(floor, group) of a module: the FLOORS entry with its longest matching prefix."""
    if module == "facedouble":  # the package's face: __version__
        return 0, "base"
    matches = [(len(prefix), floor, group) for floor, group, prefixes in FLOORS for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} stands on no floor: add it to FLOORS in tests/test_layers.py"
    _, floor, group = max(matches)
    return floor, group


def imports_of(path: Path, module: str) -> list[tuple[int, str, str]]:
    """(line, imported facedouble module, names taken) for every import in the file, lazy ones included.

    `from facedouble.x import y` counts as importing facedouble.x.y when that is a module, else facedouble.x.
    """
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: dict[tuple[int, str], list[str]] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "facedouble":
                    found.setdefault((node.lineno, alias.name), [])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "facedouble":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if _is_module(sub):
                    found.setdefault((node.lineno, sub), [])
                else:
                    found.setdefault((node.lineno, target), []).append(alias.name)
    return sorted((line, target, ", ".join(names)) for (line, target), names in found.items())


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (PACKAGE.parent / rel).with_suffix(".py").is_file() or (PACKAGE.parent / rel / "__init__.py").is_file()


def arrows_back_up() -> list[str]:
    """One line for every import that runs against the floors, saying where, what and why."""
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        if is_cli(module):
            continue
        floor, group = floor_of(module)
        for line, target, names in imports_of(path, module):
            what = f"{target} ({names})" if names else target
            where = f"{path.relative_to(PACKAGE.parent)}:{line}: {module} [{group}, floor {floor}] imports {what}"
            if is_cli(target):
                bad.append(f"{where}, a command-line module: cli modules stand on top and nothing imports "
                           "them; move what is needed out of the cli module, onto the importer's floor or below")
                continue
            t_floor, t_group = floor_of(target)
            if t_group == group or t_floor < floor or target == "facedouble":
                continue
            how = "a higher floor" if t_floor > floor else "a neighbour on the same floor"
            bad.append(f"{where} [{t_group}, floor {t_floor}]: {how}; move the shared code down "
                       "(face/, colour/, nn/) or hand it in from above (a hook, a parameter)")
    return bad


def test_imports_run_one_way() -> None:
    """No module imports a later stage (cli modules exempt); the message names each offending import."""
    bad = arrows_back_up()
    assert not bad, "imports against the floors (see tests/test_layers.py):\n" + "\n".join(bad)


def test_every_module_has_a_floor() -> None:
    """A new top-level module or package must be placed on a floor before it can be imported."""
    for path in PACKAGE.rglob("*.py"):
        module = module_name(path)
        if not is_cli(module):
            floor_of(module)


def test_the_walker_sees_lazy_imports_and_names_what_they_take(tmp_path: Path) -> None:
    """Imports inside functions count; `from facedouble.x import module` is an arrow to that module."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from facedouble.merge import masks\n    import facedouble.train.data\n"
                     "    from facedouble.errors import InputError, PolicyError\n")
    assert imports_of(probe, "facedouble.faceset.probe") == [
        (2, "facedouble.merge.masks", ""), (3, "facedouble.train.data", ""),
        (4, "facedouble.errors", "InputError, PolicyError")]
    assert floor_of("facedouble.merge.masks") > floor_of("facedouble.faceset.meta")
    assert is_cli("facedouble.cli.train") and is_cli("facedouble.cli") and not is_cli("facedouble.api")
