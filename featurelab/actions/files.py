"""Where an action may write a file (DESIGN.md, Trust): nobody writes over the lab's own
store, and an agent writes only inside the lab's folder.

The lab's folder is the directory of its store (the Lab's `root`, `.featurelab` by
default), or the working directory for an in-memory lab, which has none. Paths are
judged as the file system will resolve them ('..', symlinks, hard links), and a path
that merely looks like a lab's files (`*.sqlite`, its -wal/-shm/-journal, a
`*.snapshots` folder) is refused to an agent too: other labs may share the folder.
"""

from __future__ import annotations

from pathlib import Path

from featurelab.errors import ConfigError
from featurelab.store import Store

STORE_ENDINGS = (".sqlite", ".sqlite-wal", ".sqlite-shm", ".sqlite-journal")


def _looks_like_a_store(path: Path, folder: Path) -> bool:
    inside = path.relative_to(folder).parts
    return path.name.endswith(STORE_ENDINGS) or any(p.endswith(".snapshots") for p in inside)


def check_write(path: str | Path, store: Store, actor: str, field: str = "path",
                suffix: str | tuple[str, ...] | None = None) -> Path:
    """`path` as given, if `actor` may write it; ConfigError naming it and the rule if not.
    Everyone: never the store's own files. An agent: only inside the lab's folder, and
    only a file of the kind the action writes (`suffix`): an agent's log export must not
    replace a notebook or a script that happens to be in the folder."""
    try:
        target = Path(path).resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # a NUL byte, a symlink loop, ...
        raise ConfigError(field, str(path), "a path the file system can resolve",
                          hint=str(exc)) from None
    if store.owns(target):
        raise ConfigError(field, str(path), "any file but the lab's own store",
                          hint=f"{target} is a file of the lab's store "
                          f"{store.path.absolute() if store.path else ''}: writing it would "
                          "destroy the lab")
    if actor == "agent":
        folder = store.folder.resolve()
        if not target.is_relative_to(folder):
            raise ConfigError(field, str(path), f"a file inside the lab's folder {folder}",
                              hint=f"it resolves to {target}; an agent writes only inside "
                              "the lab's folder")
        if target == folder:
            raise ConfigError(field, str(path), f"a file inside the lab's folder {folder}",
                              hint="not the folder itself")
        if suffix is not None and not target.name.lower().endswith(suffix):
            kinds = " or ".join(suffix) if isinstance(suffix, tuple) else suffix
            raise ConfigError(field, str(path), f"a {kinds} file inside the lab's folder",
                              hint="an agent writes only the kind of file the action makes")
        if _looks_like_a_store(target, folder):
            raise ConfigError(field, str(path), f"a file inside the lab's folder {folder}, "
                              "not a lab's store (*.sqlite, -wal, -shm, *.snapshots/)",
                              hint="an agent never writes where a lab keeps its data")
    return Path(path)


def check_read(path: str | Path, store: Store, field: str) -> Path:
    """`path` as given, if an agent may read it: a file inside the lab's folder (an
    agent's action must not copy what lies elsewhere on the machine into the lab)."""
    try:
        target = Path(path).resolve()
    except (OSError, ValueError, RuntimeError) as exc:
        raise ConfigError(field, str(path), "a path the file system can resolve",
                          hint=str(exc)) from None
    folder = store.folder.resolve()
    if not target.is_relative_to(folder):
        raise ConfigError(field, str(path), f"a file inside the lab's folder {folder}",
                          hint=f"it resolves to {target}; an agent reads only inside the "
                          "lab's folder")
    return Path(path)

