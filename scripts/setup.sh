# Shared set-up of scripts/lab and scripts/test (sourced, not run). It installs every
# tool the build needs, in the order the build needs them, into one virtual
# environment, so nothing installed by hand can stand in for a missing step.

# The virtual environment: the active one (CI makes its own), else ./.venv (git-ignored),
# created on first use. Without a venv, pip would write into whatever Python is first
# on PATH, and `jupyter-builder` (called by the labextension build) might not be found.
featurelab_venv() {
  if [ -z "${VIRTUAL_ENV:-}" ]; then
    if [ ! -x .venv/bin/python ]; then
      echo "featurelab: creating the virtual environment .venv"
      python3 -m venv .venv
    fi
    # shellcheck disable=SC1091
    . .venv/bin/activate
  fi
  echo "featurelab: using $(python --version) in ${VIRTUAL_ENV}"
}

# Python first, because the JavaScript build calls a Python tool: the labextension is
# built by `jupyter-builder` (PyPI's jupyter_builder drives npm's @jupyter/builder).
# torch is the CPU build 2.13.0 before anything asks for torch: a bare "torch"
# requirement on a machine without it pulls the CUDA build (several GB).
featurelab_build_tools() {
  python -m pip install --quiet torch==2.13.0 "jupyter_builder>=1.3"
}

# The panel's bundle (featurelab/static) and the labextension (featurelab/labextension),
# both git-ignored, built from js/ with the committed lockfiles as they are (npm ci
# never rewrites a lockfile): the package's build hook then finds them and skips npm.
featurelab_build_js() {
  npm ci --prefix js --no-audit --no-fund
  npm run build:all --prefix js
}
