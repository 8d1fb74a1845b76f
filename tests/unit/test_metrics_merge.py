from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from core.metrics import Merged


def test_a_metrics_file_left_empty_by_a_killed_process_does_not_break_the_merge(tmp_path: Path) -> None:
    live = MmapedDict(str(tmp_path / "counter_101.db"))
    live.write_value(mmap_key("jobs_total", "jobs_total", [], [], "jobs"), 3.0, 0.0)
    live.close()
    (tmp_path / "gauge_max_102.db").touch()  # killed between creating its file and sizing it

    registry = CollectorRegistry()
    Merged(registry, path=str(tmp_path))  # type: ignore[no-untyped-call]
    assert b"jobs_total 3.0" in generate_latest(registry)
