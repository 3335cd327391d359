"""The layering of docs/design.md holds: a module imports only layers listed before it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "aggregator"

# docs/design.md, "Layers". The package root (version, user agent) is open to every layer.
LAYERS = [
    "aggregator",
    "aggregator.errors",
    "aggregator.numbers",
    "aggregator.filters",
    "aggregator.urls",
    "aggregator.models",
    "aggregator.children",
    "aggregator.clock",
    "aggregator.greader.passwords",
    "aggregator.config",
    "aggregator.opml",
    "aggregator.dedup",
    "aggregator.word_frequencies",
    "aggregator.ingest",
    "aggregator.ingest.normalize",
    "aggregator.ingest.prefilter",
    "aggregator.ingest.jsonfeed_reader",
    "aggregator.ingest.parse",
    "aggregator.ingest.prepare",
    "aggregator.ingest.staged",
    "aggregator.ingest.parse_worker",
    "aggregator.ingest.fetch",
    "aggregator.ingest.fetch_pool",
    "aggregator.schedule",
    "aggregator.feed_policy",
    "aggregator.store.records",
    "aggregator.store.protocols",
    "aggregator.store.sql",
    "aggregator.store.sqlite",
    "aggregator.store.postgresql",
    "aggregator.store.coordination",
    "aggregator.store.locations",
    "aggregator.store.copying",
    "aggregator.store",
    "aggregator.lock",
    "aggregator.checks",
    "aggregator.pipeline",
    "aggregator.evaluation",
    "aggregator.maintenance",
    "aggregator.roles",
    "aggregator.daemon",
    "aggregator.status",
    "aggregator.digest",
    "aggregator.render",
    "aggregator.greader",
    "aggregator.web",
    "aggregator.logs",
    "aggregator.cli.common",
    "aggregator.cli.reading",
    "aggregator.cli.running",
    "aggregator.cli.feeds",
    "aggregator.cli.grouping",
    "aggregator.cli.filtering",
    "aggregator.cli.moving",
    "aggregator.cli",
    "aggregator.__main__",
]


def layer_of(module: str) -> int:
    """Index of the longest layer name that `module` is or lies under."""
    matches = [
        i for i, name in enumerate(LAYERS) if module == name or module.startswith(name + ".")
    ]
    return max(matches, key=lambda i: len(LAYERS[i]))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == "aggregator"}


def test_every_module_has_a_layer() -> None:
    """A new module must be placed in the layering before it can be imported."""
    for path in PACKAGE.rglob("*.py"):
        assert layer_of(module_name(path)) > 0 or module_name(path) == "aggregator"


def test_imports_point_to_earlier_layers_only() -> None:
    """No module imports a layer listed after its own (the pure core never imports I/O)."""
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = layer_of(module_name(path))
        for imported in imported_modules(path):
            try:
                target = layer_of(imported)
            except ValueError:
                continue  # `from aggregator import X` where X is a constant of the root
            if target > own:
                violations.append(f"{module_name(path)} imports {imported}")
    assert violations == []


def test_only_fetch_touches_the_network_and_only_store_touches_sqlite() -> None:
    """urllib3/socket only in fetch; the database drivers only in store."""
    owners = {"urllib3": "aggregator.ingest.fetch", "socket": "aggregator.ingest.fetch",
              "sqlite3": "aggregator.store", "sqlite_utils": "aggregator.store",
              "psycopg": "aggregator.store", "psycopg_pool": "aggregator.store"}  # fmt: skip
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            for name in names:
                if name in owners:
                    owner = owners[name]
                    inside = module_name(path) == owner or module_name(path).startswith(owner + ".")
                    assert inside, f"{path.name} imports {name}"


def test_every_exception_class_lives_in_the_error_tree() -> None:
    """Exceptions are defined in `errors.py` only, so the tree its docstring draws is whole."""
    outside = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if module_name(path) == "aggregator.errors":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(base, ast.Name) and (base.id.endswith(("Error", "Exception")))
                for base in node.bases
            ):
                outside.append(f"{module_name(path)}.{node.name}")
    assert outside == []


def test_the_error_tree_drawing_names_every_error() -> None:
    """Every class of `errors.py` appears in the tree of its docstring."""
    import aggregator.errors as errors

    classes = [
        name for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, Exception)
    ]  # fmt: skip
    assert errors.__doc__ is not None
    assert [name for name in classes if name not in errors.__doc__] == []


def test_no_sql_outside_the_store() -> None:
    """Only `store/` speaks to the database: no other module reaches through a store's
    `db` (sqlite-utils) to query it, so a second engine needs no changes elsewhere."""
    reaching = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        if name == "aggregator.store" or name.startswith("aggregator.store."):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "db"
                and node.attr in {"query", "execute", "conn", "table", "executescript"}
            ):
                reaching.append(f"{name}:{node.lineno}")
    assert reaching == []
