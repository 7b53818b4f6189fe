"""Everything that talks to Kafka except the worker's own loop.

- ``clients``: the one factory for aiokafka clients (security settings applied once);
- ``broker``: the embedded Tansu broker; ``running``: the per-user list of running brokers
  and workers; ``connect``: broker sessions (no silent detour: reachable, or one line);
- ``archive``: the embedded mode's append-only archive and the refill of a fresh broker;
- ``topics``: topic names, partitions and configs, and their creation;
- ``publish``: keyed, batched producing (archived first in embedded mode);
- ``partitions``: reading a partition to its true end (the high watermark of a fetch);
- ``headers``: dead-letter, quiet and alert-cause headers;
- ``replay``, ``tail``, ``rebuild``: what ``stakewatch replay``, ``alerts`` /
  ``dead-letters`` and ``rebuild`` do.
"""
