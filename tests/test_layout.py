"""The repository's layout rules that code review alone would let slip."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_bench_scripts_harness_and_the_product_never_import_from_tests():
    offenders = [
        f"{path.relative_to(ROOT)} imports {module}"
        for folder in ("bench", "scripts", "harness", "dashboard", "pages")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for module in _imported_modules(path)
        if module == "tests" or module.startswith("tests.")
    ]
    assert offenders == []


def test_the_product_imports_neither_the_harness_nor_streamlit_outside_the_ui():
    offenders = []
    for path in sorted((ROOT / "dashboard").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for module in _imported_modules(path):
            if module.split(".")[0] == "harness":
                offenders.append(f"{relative} imports {module}")
            if module.split(".")[0] == "streamlit" and not relative.startswith(("dashboard/ui/", "dashboard/app.py")):
                offenders.append(f"{relative} imports {module}")
    assert offenders == []
