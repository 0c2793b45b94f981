"""Build step for the one compiled module: the R-peak detector's judgement fast path.

Everything else is in pyproject.toml. The module is optional: without a C compiler the package
installs anyway and the detector runs the same judgement in Python (same results, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "edge.pipeline._rpeak_kernel",
            ["edge/pipeline/_rpeak_kernel.c"],
            # No fused multiply-add: the arithmetic must round exactly as the Python path's does.
            extra_compile_args=["-ffp-contract=off"],
            optional=True,
        )
    ]
)
