"""The test suite as a regular package: `tests.integration.workers` and friends must resolve
here, not to a top-level `tests` package a dependency installs into site-packages
(libcovebods does), which would shadow a namespace package of that name."""
