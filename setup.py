"""The optional C watchdog; everything else about the build is in pyproject.toml.

``optional=True``: where the extension cannot be compiled (no C compiler, not Linux) the
package installs without it and the pure-Python watchdog serves
(``sysletloop._watchdog`` picks whichever is there).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "sysletloop._cwatchdog",
            ["src/sysletloop/_cwatchdog.c"],
            optional=True,
            extra_compile_args=["-O2", "-std=c11"],
        )
    ]
)
