"""Every PostgreSQL advisory lock id of the project, in one place, so that two parts can never pick the same one
(tests/unit/test_layers.py fails if two are equal).

Two ids once were: the dedup rebuild's lock and the reversal lock were both 7003, so a rebuild blocked every
worker commit and a sink transaction made a rebuild believe another one ran.
"""

from __future__ import annotations

MIGRATIONS = 7001  # session lock: one process applies the migrations at a time
SEAL = 7002  # transaction lock: one sealer at a time, so the chain never forks; reversals and reviews take it too
# Transaction lock taken shared by every sink commit and exclusively by reversals: a reversal never runs beside
# a sink that could commit its invoice unseen (each would miss the other under READ COMMITTED).
REVERSAL = 7003
REBUILD = 7004  # session lock: one dedup rebuild at a time, whichever host runs it
# Session lock, with the destination's hash as second key: one relay per outbox destination at a time, so its
# records go out in order and its rate cap holds; a second relay waits as a standby.
EXPORT = 7005
CLOSE_DAY = 7006  # transaction lock: one process closes days at a time (workers/closing.py)
PARTITIONS = 7161  # transaction lock: one process creates the months' partitions at a time (core/partitions.py)
# Transaction lock: one archive detach or drop at a time, and none while another process archives (gateway/archive).
ARCHIVE = 7162

ALL = {
    "MIGRATIONS": MIGRATIONS,
    "SEAL": SEAL,
    "REVERSAL": REVERSAL,
    "REBUILD": REBUILD,
    "EXPORT": EXPORT,
    "CLOSE_DAY": CLOSE_DAY,
    "PARTITIONS": PARTITIONS,
    "ARCHIVE": ARCHIVE,
}
