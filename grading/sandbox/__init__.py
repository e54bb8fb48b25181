"""Stage 2, sandbox: running student notebooks confined, one warm sandbox per worker.

layers.py      the OS isolation layers: bubblewrap, cgroups, rlimits, safe staging of files
isolation.py   namespaces and the seccomp filter, used by the zygote inside the sandbox
zygote.py      the kernel fork server inside the sandbox (`python -m grading.sandbox.zygote`)
kernels.py     fresh kernels from the zygote, on demand, from the host side
execute.py     running cells with time and output limits
worker.py      what runs in each Dask worker: a warm sandbox per process

Docstring only, no imports: the sandbox sees only this file, grading/__init__.py, zygote.py
and isolation.py (layers.readonly_grading_files).
"""
