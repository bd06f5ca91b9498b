"""An isolated, headless JupyterLab server for the browser tests.

Every piece of per-user state (config, settings, workspaces, runtime files, IPython
profile) lives in a temporary folder, so nothing on this machine leaks in and nothing
leaks out. The kernel imports featurelab from this checkout (PYTHONPATH).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LABEXTENSION = "featurelab-cells"  # the name in js/labextension/package.json
CHROMIUM = "/usr/bin/chromium"
# Browser downloads (`playwright install`) do not work here: the system Chromium, headless.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]

# JupyterLab's news / update toasts would cover the notebook in screenshots.
SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False,
    },
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """`jupyter lab` (or Notebook 7's `jupyter notebook`) on a free port, serving
    `root_dir`; start() waits until it answers.

    With `extension` (the default) it loads featurelab's labextension as built in this
    checkout (featurelab/labextension, through JUPYTER_PATH); without, it disables it,
    as in a JupyterLab where it is not installed.
    """

    def __init__(self, root_dir: str | Path, extension: bool = True, app: str = "lab") -> None:
        self.root_dir = Path(root_dir)
        self.extension = extension
        self.app = app  # "lab": JupyterLab; "notebook": Notebook 7 (same extensions)
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.home = Path(tempfile.mkdtemp(prefix="featurelab-jlab-"))
        self.log_path = self.home / "lab.log"
        self.startup_s: float | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}?token={self.token}"

    def notebook_url(self, name: str) -> str:
        """Where notebook `name` opens. JupyterLab: in a fresh workspace, since it
        otherwise restores the notebooks of the previous test into the same layout."""
        if self.app == "notebook":
            return self.url(f"notebooks/{name}")
        return self.url(f"lab/workspaces/t{secrets.token_hex(5)}/tree/{name}")

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            JUPYTER_CONFIG_DIR=str(self.home / "config"),
            JUPYTERLAB_SETTINGS_DIR=str(self.home / "settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(self.home / "workspaces"),
            JUPYTER_RUNTIME_DIR=str(self.home / "runtime"),
            IPYTHONDIR=str(self.home / "ipython"),
            JUPYTER_PATH=str(self.home / "data"),
            JUPYTER_PLATFORM_DIRS="1",
            PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p),
            PATH=os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", ""))),
        )
        return env

    def start(self, timeout: float = 60) -> LabServer:
        for name, value in SETTINGS.items():
            path = self.home / "settings" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        if self.extension:  # this checkout's build, ahead of any installed copy
            extensions = self.home / "data" / "labextensions"
            extensions.mkdir(parents=True)
            (extensions / LABEXTENSION).symlink_to(REPO / "featurelab" / "labextension")
        else:  # also when an installed copy exists (pip install -e puts one in sys.prefix)
            page_config = self.home / "config" / "labconfig" / "page_config.json"
            page_config.parent.mkdir(parents=True)
            page_config.write_text(json.dumps({"disabledExtensions": {LABEXTENSION: True}}))
        app_class = "JupyterNotebookApp" if self.app == "notebook" else "LabApp"
        cmd = [
            sys.executable, "-m", "notebook" if self.app == "notebook" else "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1", f"--port={self.port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            f"--{app_class}.expose_app_in_browser=True",  # window.jupyterapp, for assertions
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ]
        t0 = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         env=self._env(), cwd=self.root_dir)
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited ({self.proc.returncode}):\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=2) as reply:
                    if reply.status == 200:
                        self.startup_s = time.monotonic() - t0
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"jupyter lab did not answer in {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def api(self, method: str, path: str) -> object:
        request = urllib.request.Request(self.url(path), method=method)
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = reply.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Frees the CPU between tests: every test's kernel is one more process."""
        try:
            for kernel in self.api("GET", "api/kernels") or []:
                self.api("DELETE", f"api/kernels/{kernel['id']}")
        except OSError:
            pass

    def stop(self) -> None:
        """Stops our server (its own pid only); SIGTERM lets it shut its kernels down."""
        if self.proc is not None and self.proc.poll() is None:
            self.shutdown_kernels()
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.home, ignore_errors=True)
