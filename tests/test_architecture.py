"""The import rules between the packages, read from the source with `ast` (every import, also
those inside functions and under TYPE_CHECKING):

- pipeline/ imports neither features/ nor detectors/; features/ and detectors/ import nothing of pipeline/;
- flows.py is the only module importing both features and detectors (it chains the steps);
- pipeline/ imports flows only in pipeline/cli.py, inside its command functions (the CLI is the
  front door that calls the flows; flows.py never imports pipeline.cli);
- no source file of pipeline/, features/ or detectors/ is over 500 lines.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "features", "detectors")
MAX_LINES = 500


def _sources(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (REPO / package).rglob("*.py"))


def _module(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level) for every import in the file; relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    top = {id(node) for node in tree.body}
    package = _module(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            # `from pipeline import stages` imports pipeline.stages: count the names as modules too
            found += [(base, id(node) in top)] + [(f"{base}.{alias.name}", id(node) in top) for alias in node.names]
    return found


def _imports_package(path: Path, package: str) -> list[str]:
    return sorted({name for name, _ in _imports(path) if name == package or name.startswith(package + ".")})


def test_pipeline_imports_neither_features_nor_detectors() -> None:
    offenders = {
        str(path.relative_to(REPO)): found
        for path in _sources("pipeline")
        if (found := _imports_package(path, "features") + _imports_package(path, "detectors"))
    }
    assert offenders == {}


def test_detectors_import_nothing_of_pipeline() -> None:
    offenders = {str(p.relative_to(REPO)): f for p in _sources("detectors") if (f := _imports_package(p, "pipeline"))}
    assert offenders == {}


def test_features_import_nothing_of_pipeline() -> None:
    offenders = {str(p.relative_to(REPO)): f for p in _sources("features") if (f := _imports_package(p, "pipeline"))}
    assert offenders == {}


def test_flows_is_the_only_module_importing_both_features_and_detectors() -> None:
    both = [
        str(path.relative_to(REPO))
        for path in [*_sources(*PACKAGES), REPO / "flows.py"]
        if _imports_package(path, "features") and _imports_package(path, "detectors")
    ]
    assert both == ["flows.py"]


def test_only_the_cli_imports_flows_and_only_inside_its_commands() -> None:
    importers = {}
    for path in _sources(*PACKAGES):
        flows_imports = [(name, top) for name, top in _imports(path) if name == "flows" or name.startswith("flows.")]
        if flows_imports:
            importers[str(path.relative_to(REPO))] = {top for _, top in flows_imports}
    assert importers == {"pipeline/cli.py": {False}}  # never at module level: `goodhart --help` needs no Prefect
    assert not [name for name, _ in _imports(REPO / "flows.py") if name.startswith("pipeline.cli")]


def test_no_source_file_is_over_500_lines() -> None:
    long = {
        str(path.relative_to(REPO)): lines
        for path in _sources(*PACKAGES)
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_package_reaches_another_by_name_at_run_time() -> None:
    """The rules above cannot be dodged with importlib: no module of features/ or detectors/ names
    pipeline in an import_module or __import__ call, and none of pipeline/ names features or detectors."""
    forbidden = {"features": ("pipeline",), "detectors": ("pipeline",), "pipeline": ("features", "detectors")}
    dodges = []
    for package, names in forbidden.items():
        for path in _sources(package):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                        "import_module", "__import__"):
                    literal = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else ""
                    if str(literal).split(".")[0] in names:
                        dodges.append(f"{path.relative_to(REPO)}:{node.lineno} {literal}")
    assert dodges == []
