"""``python -m bench``: the whole performance benchmark (:mod:`bench.suite`)."""

from bench.suite import main

main()
