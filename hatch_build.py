"""Hatchling build hook: compiles the collector's fast path (``collector/_segment_fast.pyx``).

Cython turns the module into C and setuptools' ``build_ext`` compiles it next to its
source, for wheels and for editable installs alike (``pip install -e .``), so the one
install step of the Makefile builds it. Hatchling cannot compile extensions itself; this
is its documented way to run a build step (``[tool.hatch.build.hooks.custom]``).

The collector works without the compiled module (the Python path is the reference
implementation), so ``CDPFLOW_SKIP_COMPILE=1`` builds a pure-Python package, e.g. on a
machine without a C compiler. Without that variable a failed compile fails the install:
a silent fallback would hide a 2-3x slower collector.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

EXTENSIONS = {"collector._segment_fast": "collector/_segment_fast.pyx"}


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or os.environ.get("CDPFLOW_SKIP_COMPILE") == "1":
            return
        try:
            built = compile_extensions(Path(self.root))
        except Exception as exc:  # setuptools raises its own error classes; name the way out
            raise RuntimeError(
                "compiling the collector's fast path (collector/_segment_fast.pyx) failed: "
                f"{str(exc).rstrip('.')}. Install a C compiler and Python's headers (Debian: "
                "gcc, python3-dev), or set CDPFLOW_SKIP_COMPILE=1 to install without it (the "
                "collector then maps every message in Python)."
            ) from exc
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":  # an editable install imports them from the source tree
            for path in built:
                relative = path.relative_to(self.root).as_posix()
                build_data["force_include"][relative] = relative


def compile_extensions(root: Path) -> list[Path]:
    """Compile every extension in place; return the paths of the built libraries."""
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension

    modules = [Extension(name, [str(root / source)]) for name, source in EXTENSIONS.items()]
    cwd = os.getcwd()
    os.chdir(root)  # build_ext --inplace writes relative to the working directory
    try:
        distribution = Distribution(
            {"ext_modules": cythonize(modules, language_level=3, quiet=True)}
        )
        command = distribution.get_command_obj("build_ext")
        command.inplace = True
        command.ensure_finalized()
        command.run()
        return [Path(command.get_ext_fullpath(name)).resolve() for name in EXTENSIONS]
    finally:
        os.chdir(cwd)
