"""The wheel carries the panel and the prebuilt labextension; installing it enables it.

The wheel is built from this checkout (`pip wheel .`: the build hook runs the npm
build only where the bundles are missing) and installed, without its dependencies,
into a new virtual environment that sees this environment's packages through a .pth
file (torch, jupyterlab, ... are not installed twice). Not --system-site-packages: that
shows the base interpreter's packages, not those of the venv pytest itself runs in.
`jupyter labextension list` of that environment must report the extension from the
environment's own share/jupyter, enabled, and `import featurelab` must load the wheel.
"""

import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXTENSION = "featurelab-cells"
SHARE = f"featurelab-0.1.0.data/data/share/jupyter/labextensions/{EXTENSION}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if not (REPO / "featurelab" / "labextension" / "package.json").exists():
        pytest.skip("the labextension is not built (npm run build:all --prefix js)")
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps",
                           "-w", str(out), "-q"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = out.glob("featurelab-*.whl")
    return path


def test_the_wheel_holds_the_extension_and_the_panel(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert f"{SHARE}/install.json" in names
    assert f"{SHARE}/package.json" in names
    assert any(re.fullmatch(rf"{SHARE}/static/remoteEntry\.\w+\.js", n) for n in names)
    assert "featurelab/static/widget.js" in names and "featurelab/static/widget.css" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "featurelab = featurelab.cli:main" in zipfile.ZipFile(wheel).read(
        entry_points).decode()


def test_installing_the_wheel_enables_the_extension(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    inner = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    # After the new venv's own site-packages: the wheel's featurelab wins over this
    # checkout's editable install (whose own .pth files are not read from there).
    outer = dict.fromkeys(sysconfig.get_path(k) for k in ("purelib", "platlib"))
    Path(inner, "outer-environment.pth").write_text("\n".join(outer) + "\n")
    done = subprocess.run([python, "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_PLATFORM_DIRS": "1"}
    # `jupyter labextension list`, run by the new environment's interpreter (the
    # `jupyter` script is the outer environment's)
    listed = subprocess.run([python, "-m", "jupyterlab.labextensions", "list"],
                            capture_output=True, text=True, env=env, timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr)
    section = text.split(str(venv / "share" / "jupyter" / "labextensions"), 1)
    assert len(section) == 2, text
    line = next((x for x in section[1].splitlines() if EXTENSION in x), "")
    assert re.search(rf"{EXTENSION} v0\.1\.0 enabled\s+OK \(python, featurelab\)", line), text
    where = subprocess.run([python, "-c", "import featurelab; print(featurelab.__file__)"],
                           capture_output=True, text=True, env=env, timeout=120,
                           cwd=tmp_path)  # not the checkout, whose featurelab/ would win
    assert where.stdout.strip().startswith(str(venv)), where


def test_the_packages_lazy_names_are_listed_alike_and_import():
    """featurelab/__init__.py names its exports three times (type checkers, the lookup on
    first use, __all__): they agree, and each resolves to what its module defines."""
    import ast
    import importlib

    import featurelab as fl

    tree = ast.parse(Path(fl.__file__).read_text())
    [block] = [n for n in tree.body if isinstance(n, ast.If)
               and ast.unparse(n.test) == "TYPE_CHECKING"]
    typed = {a.name: n.module for n in block.body if isinstance(n, ast.ImportFrom)
             for a in n.names}
    assert typed == fl._MODULES
    assert sorted(fl.__all__) == sorted(fl._MODULES)
    for name, module in fl._MODULES.items():
        assert getattr(fl, name) is getattr(importlib.import_module(module), name)
    import featurelab.replay  # a module named like the function stays hidden behind it
    import featurelab.trust
    assert callable(fl.replay) and callable(fl.trust)
    # a submodule is an attribute after a bare `import featurelab`, as when it was eager
    code = ("import featurelab as fl; print(len(fl.actions.ACTIONS) > 0, "
            "fl.engine.threads.SMALL_MOST, 'nope' in dir(fl))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["True", "2", "False"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        fl.nope
