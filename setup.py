"""Package discovery for the ``learnhub`` namespace, and the JupyterLab extension's build.

``pyproject.toml`` holds all metadata. This file exists only because the
``learnhub`` namespace is spread over four top-level folders (``learnhub/``,
``extensions/``, ``graders/``, ``recommender/``, mapped with ``package-dir``),
and setuptools' static ``packages.find`` cannot rename folders into a namespace.

It also builds the JupyterLab extension in ``extensions/labextension/`` (TypeScript) when its
built output is missing or older than its sources — ``npm ci`` when ``node_modules`` is missing or
older than ``package-lock.json``, then ``tsc`` and ``jupyter labextension build`` — and installs
the built output as data files into ``share/jupyter/labextensions/<package name>/`` (with an
``install.json``), where JupyterLab finds it under ``sys.prefix``, for editable installs and
wheels alike. Node.js with npm is needed only when a build is needed; without it the install
fails with a clear message, unless ``LEARNHUB_SKIP_LABEXTENSION=1`` (then the extension is left
out, or shipped as last built). See docs/labextension.md.
"""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from importlib.util import find_spec
from pathlib import Path

from setuptools import Command, find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.build import build
from setuptools.command.sdist import sdist

PACKAGE_DIRS = {
    "learnhub": "learnhub",
    "learnhub.extensions": "extensions",
    "learnhub.graders": "graders",
    "learnhub.recommender": "recommender",
}


def namespace_packages():
    packages = []
    for name, folder in PACKAGE_DIRS.items():
        packages.append(name)
        packages.extend(f"{name}.{sub}" for sub in find_packages(folder))
    return packages


# --- the JupyterLab extension ----------------------------------------------------------------

HERE = Path(__file__).resolve().parent
LABEXT = HERE / "extensions" / "labextension"
# What the built output depends on (tests do not change it).
LABEXT_SOURCES = ("package.json", "package-lock.json", "tsconfig.json", "src", "style")
SKIP_ENV = "LEARNHUB_SKIP_LABEXTENSION"


def _labext_meta() -> dict:
    return json.loads((LABEXT / "package.json").read_text())


def _labext_output() -> Path:
    return LABEXT / _labext_meta()["jupyterlab"]["outputDir"]


def _source_files():
    for name in LABEXT_SOURCES:
        path = LABEXT / name
        if path.is_file():
            yield path
        elif path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and "__tests__" not in file.parts:
                    yield file


def _newest_source() -> float:
    return max((f.stat().st_mtime for f in _source_files()), default=0.0)


def labextension_is_stale() -> bool:
    """True when the built output is missing or older than any of its sources."""
    built = _labext_output() / "package.json"
    if not built.exists() or not (_labext_output() / "static").is_dir():
        return True
    return built.stat().st_mtime < _newest_source()


def _say(message: str) -> None:
    print(f"learnhub labextension: {message}", file=sys.stderr, flush=True)


def _run(cmd: list, env=None) -> None:
    _say("$ " + " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], cwd=LABEXT, env=env, check=True)


def build_labextension() -> None:
    """npm ci (if needed) + tsc + jupyter labextension build, in extensions/labextension."""
    npm = shutil.which("npm")
    node = shutil.which("node")
    if not (npm and node):
        raise SystemExit(
            "learnhub: building the JupyterLab extension (extensions/labextension) needs Node.js >= 18 "
            "with npm on PATH, and "
            + ("neither node nor npm" if not (npm or node) else ("npm" if not npm else "node"))
            + " was found. Install Node.js (e.g. apt-get install nodejs npm), or set "
            f"{SKIP_ENV}=1 to install learnhub without its JupyterLab extension."
        )
    started = time.monotonic()
    lock = LABEXT / "package-lock.json"
    installed = LABEXT / "node_modules" / ".package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"])
    # clean first: tsc's incremental state would skip emitting into a deleted lib/
    _run([npm, "run", "clean"])
    _run([npm, "run", "build:lib:prod"])
    # `jupyter labextension build`, run with this interpreter (the build environment's JupyterLab),
    # against that JupyterLab's own core metadata (its staging folder), so the shared packages
    # match the JupyterLab installed alongside.
    cmd = [sys.executable, "-m", "jupyterlab.labextensions", "build"]
    spec = find_spec("jupyterlab")
    if spec is None:
        raise SystemExit("learnhub: building the JupyterLab extension needs jupyterlab in the build "
                         "environment ([build-system] requires in pyproject.toml).")
    staging = Path(spec.submodule_search_locations[0]) / "staging"
    if (staging / "package.json").exists():
        cmd += ["--core-path", str(staging)]
    env = dict(os.environ)
    # JupyterLab >= 4.6 delegates to the `jupyter-builder` script: find this environment's.
    scripts = [sysconfig.get_path("scripts"), str(Path(sys.executable).parent)]
    env["PATH"] = os.pathsep.join(scripts + [env.get("PATH", "")])
    _run(cmd + ["."], env=env)
    write_install_json()
    _say(f"built in {time.monotonic() - started:.1f} s")


def write_install_json() -> None:
    """How `jupyter labextension list` tells where the extension came from."""
    install = {
        "packageManager": "python",
        "packageName": "learnhub",
        "uninstallInstructions": "Use your Python package manager (pip, conda, etc.) to uninstall the package learnhub",
    }
    (_labext_output() / "install.json").write_text(json.dumps(install, indent=2) + "\n")


def labextension_data_files() -> list:
    """(share/jupyter/labextensions/<name>/<dir>, [files]) for everything built."""
    output = _labext_output()
    if not (output / "package.json").exists():
        return []
    if not (output / "install.json").exists():
        write_install_json()
    target = Path("share", "jupyter", "labextensions", *_labext_meta()["name"].split("/"))
    entries = {}
    for file in sorted(output.rglob("*")):
        if file.is_file():
            folder = (target / file.parent.relative_to(output)).as_posix()
            entries.setdefault(folder, []).append(file.relative_to(HERE).as_posix())
    return sorted(entries.items())


def ensure_labextension() -> list:
    """Build the extension if needed (or skip, when asked) and return its data files."""
    if not (LABEXT / "package.json").exists():
        return []
    if os.environ.get(SKIP_ENV, "").lower() in ("1", "true", "yes"):
        if not labextension_data_files():
            _say(f"{SKIP_ENV} is set: not building; learnhub is installed without its JupyterLab extension")
        elif labextension_is_stale():
            _say(f"{SKIP_ENV} is set: not building; installing the last build, which is older than its sources")
        else:
            _say(f"{SKIP_ENV} is set, and the build is up to date")
    elif labextension_is_stale():
        build_labextension()
    else:
        _say("up to date")
    return labextension_data_files()


#: JupyterLab settings defaults learnhub ships (JupyterLab reads share/jupyter/lab/settings/overrides.d/):
#: no prompt about, and no fetching of, Jupyter's news — learnhub's own notifications use that corner,
#: and a learner's sandboxed server has no business reaching the internet.
LAB_SETTINGS = [("share/jupyter/lab/settings/overrides.d", ["extensions/labextension/settings/learnhub.json"])]


class build_labextension_cmd(Command):
    """Build the JupyterLab extension and add its assets to the data files (first step of build)."""

    description = "build the learnhub JupyterLab extension (npm ci, tsc, jupyter labextension build)"
    user_options = []

    def initialize_options(self):
        pass

    def finalize_options(self):
        pass

    def run(self):
        files = ensure_labextension() + [entry for entry in LAB_SETTINGS if (HERE / entry[1][0]).exists()]
        data = [entry for entry in (self.distribution.data_files or [])
                if not str(entry[0]).startswith(("share/jupyter/labextensions/", "share/jupyter/lab/settings/"))]
        self.distribution.data_files = data + files
        # install_data reads the list when it is created; update one created before this ran.
        install_data = self.distribution.get_command_obj("install_data", create=False)
        if install_data is not None:
            install_data.data_files = self.distribution.data_files
        # setuptools' editable_wheel never installs data files (it asks the distribution for
        # `has_data`, which does not exist; pypa/setuptools#3399), so put them into the editable
        # wheel here: editable_wheel has pointed install_data at the wheel's .data folder already.
        # (Once setuptools installs them itself, its own install_data run sees this one was done.)
        if files and self.distribution.get_command_obj("editable_wheel", create=False) is not None:
            self.run_command("install_data")


class build_with_labextension(build):
    # First, so that install_data (wheels) and editable_wheel's data step see the files.
    sub_commands = [("build_labextension", None)] + build.sub_commands


class build_py_with_hub_config(build_py):
    """A built (non-editable) learnhub carries the hub's composition root as
    ``learnhub/jupyterhub_config.py`` (``learnhub.hub.hub_config_file`` looks there when there is no
    checkout), as the container images install it."""

    def run(self):
        super().run()
        if not self.editable_mode:
            target = Path(self.build_lib) / "learnhub" / "jupyterhub_config.py"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(HERE / "hub_config" / "jupyterhub_config.py", target)


class sdist_with_labextension(sdist):
    """Ship the extension's sources (and its build, if current) but never node_modules."""

    def make_release_tree(self, base_dir, files):
        # setuptools takes the file list from egg_info's manifest, not from sdist.add_defaults.
        extra = []
        if (LABEXT / "package.json").exists():
            tests = [f for f in (LABEXT / "src").rglob("*") if f.is_file() and "__tests__" in f.parts]
            configs = [LABEXT / n for n in ("jest.config.js", "babel.config.js", "tsconfig.test.json",
                                            "settings/learnhub.json")]
            extra = [f.relative_to(HERE).as_posix()
                     for f in list(_source_files()) + tests + configs if f.exists()]
            if not labextension_is_stale():
                extra += [file for _, group in labextension_data_files() for file in group]
        known = set(files)
        super().make_release_tree(base_dir, list(files) + [f for f in extra if f not in known])


setup(
    packages=namespace_packages(),
    package_dir=PACKAGE_DIRS,
    # The extension's sources and build are not Python package data (the build ships as data files).
    exclude_package_data={"learnhub.extensions": ["labextension/*"]},
    cmdclass={
        "build": build_with_labextension,
        "build_py": build_py_with_hub_config,
        "build_labextension": build_labextension_cmd,
        "sdist": sdist_with_labextension,
    },
)
