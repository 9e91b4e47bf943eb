"""Running a function over many items in worker processes (sonic.parallel)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from sonic.errors import AudioError, SonicError
from sonic.parallel import (
    RESULT_SLOT_BYTES,
    SHARED_ARRAY_BYTES,
    FileResult,
    _InSlot,
    _ResultSlots,
    map_files,
    run_tasks,
    task_size,
    worker_count,
)


def _square_unless_seven(item: int) -> int:
    if item % 7 == 0:
        raise SonicError(f"item {item} is a multiple of seven")
    return item * item


def _waveform(item: int) -> np.ndarray:
    """A different 1 MB array per item (large enough to go back through shared memory), or a reason."""
    if item % 11 == 0:
        raise SonicError(f"item {item} is a multiple of eleven")
    return np.random.default_rng(item).standard_normal(250_000 + item).astype(np.float32)


def _die_on_five(task: list[int]) -> list[int]:
    if 5 in task:
        os._exit(1)
    return task


@pytest.mark.parametrize("num_workers", [0, 2])
def test_map_files_gives_every_value_or_reason(num_workers):
    results = list(map_files(_square_unless_seven, list(range(1, 40)), num_workers=num_workers, progress=False))

    by_item = {result.item: result for result in results}
    assert sorted(by_item) == list(range(1, 40))
    for item, result in by_item.items():
        if item % 7 == 0:
            assert not result.ok and result.value is None
            assert result.reason == f"item {item} is a multiple of seven"
        else:
            assert result.ok and result.value == item * item


def test_other_exceptions_are_bugs_and_propagate():
    with pytest.raises(TypeError):
        list(map_files(_square_unless_seven, ["a"], num_workers=0, progress=False))


def test_a_dying_worker_is_one_error_naming_the_items_in_flight():
    tasks = [[i, i + 1] for i in range(0, 20, 2)]

    with pytest.raises(AudioError, match=r"a worker process died .* while decoding one of '\d+'"):
        list(run_tasks(_die_on_five, tasks, workers=2, activity="decoding"))


def test_tasks_run_in_order_without_workers():
    tasks = [[1, 2], [3], [4, 6]]

    assert list(run_tasks(_die_on_five, tasks, workers=0)) == [(task, task) for task in tasks]


def test_worker_count_and_task_size():
    assert worker_count(0) == 0 and worker_count(1) == 0 and worker_count(3) == 3
    assert worker_count(None) == (os.cpu_count() if (os.cpu_count() or 1) > 1 else 0)
    with pytest.raises(SonicError, match="integer >= 0"):
        worker_count(-1)
    assert task_size(1000, 2, 8) == 8  # capped
    assert task_size(64, 2, 8) == 2  # 16 tasks per worker
    assert task_size(3, 2, 8) == 1


def test_large_arrays_come_back_whole_through_shared_memory_slots():
    """Many tasks of several large arrays each: every slot is filled and emptied many times over."""
    items = list(range(1, 90))

    results = list(map_files(_waveform, items, num_workers=2, progress=False, most_per_task=3))

    by_item = {result.item: result for result in results}
    assert sorted(by_item) == items
    for item, result in by_item.items():
        if item % 11 == 0:
            assert result.reason == f"item {item} is a multiple of eleven"
        else:
            np.testing.assert_array_equal(result.value, _waveform(item))


def test_a_result_slot_takes_the_large_arrays_that_fit_and_gives_them_back():
    big = np.arange(SHARED_ARRAY_BYTES // 4 + 6, dtype=np.float32).reshape(2, -1)  # not a multiple of 64 bytes
    other = np.full((3, SHARED_ARRAY_BYTES // 5), 7, dtype=np.int16)
    small = np.ones(10, dtype=np.float64)
    too_big = np.zeros(RESULT_SLOT_BYTES // 4, dtype=np.float32)  # fits no slot with the others in it
    objects = np.empty(SHARED_ARRAY_BYTES // 8, dtype=object)  # pointers: only pickling can carry them
    value = [FileResult("a", big, None), FileResult("b", None, "why"), (other, small), too_big, objects]

    with _ResultSlots(3) as slots:
        filled = slots.filled(value, 2)
        assert isinstance(filled[0].value, _InSlot) and filled[0].value.offset == 2 * RESULT_SLOT_BYTES
        assert isinstance(filled[2][0], _InSlot) and filled[2][0].offset == filled[0].value.offset + big.nbytes + 40
        assert filled[2][1] is small and filled[3] is too_big and filled[4] is objects and filled[1] == value[1]
        back = slots.emptied(filled, 2)

    assert isinstance(back[0], FileResult) and back[0].item == "a" and back[1] == value[1]
    np.testing.assert_array_equal(back[0].value, big)
    np.testing.assert_array_equal(back[2][0], other)
    assert back[2][0].dtype == np.int16 and back[2][1] is small and back[3] is too_big


def _death_signal(task: list[int]) -> list[tuple[int, int]]:
    """(the signal this worker gets when its parent dies, its parent's pid) (Linux prctl PR_GET_PDEATHSIG)."""
    import ctypes

    value = ctypes.c_int(-1)
    ctypes.CDLL(None).prctl(2, ctypes.byref(value), 0, 0, 0)
    return [(value.value, os.getppid()) for _ in task]


@pytest.mark.skipif(not os.uname().sysname == "Linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_are_killed_when_their_parent_dies():
    import signal

    results = [value for _, values in run_tasks(_death_signal, [[1], [2]], workers=2) for value in values]

    assert results == [(signal.SIGKILL, os.getpid())] * 2


def _fake_cgroup(tmp_path, cgroup_line: str, files: dict[str, str]):
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "cgroup").write_text(cgroup_line + "\n")
    root = tmp_path / "cgroup"
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return str(proc), str(root)


def test_available_cpus_follows_cgroup_v2_quota(tmp_path):
    import os

    from sonic.parallel import available_cpus

    affinity = len(os.sched_getaffinity(0))
    proc, root = _fake_cgroup(tmp_path, "0::/job", {"job/cpu.max": "150000 100000\n"})
    assert available_cpus(proc=proc, cgroup_root=root) == min(affinity, 2)  # ceil(1.5)
    proc, root = _fake_cgroup(tmp_path / "b", "0::/job/inner", {"job/cpu.max": "100000 100000\n",
                                                                "job/inner/cpu.max": "max 100000\n"})
    assert available_cpus(proc=proc, cgroup_root=root) == 1  # the enclosing cgroup's quota
    proc, root = _fake_cgroup(tmp_path / "c", "0::/", {"cpu.max": "max 100000\n"})
    assert available_cpus(proc=proc, cgroup_root=root) == affinity


def test_available_cpus_follows_cgroup_v1_quota_and_affinity(tmp_path):
    import os

    from sonic.parallel import available_cpus

    affinity = len(os.sched_getaffinity(0))
    proc, root = _fake_cgroup(tmp_path, "4:cpu,cpuacct:/docker/x", {
        "cpu,cpuacct/docker/x/cpu.cfs_quota_us": "100000\n", "cpu,cpuacct/docker/x/cpu.cfs_period_us": "100000\n"})
    assert available_cpus(proc=proc, cgroup_root=root) == 1
    proc, root = _fake_cgroup(tmp_path / "b", "4:cpu,cpuacct:/", {
        "cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"})
    assert available_cpus(proc=proc, cgroup_root=root) == affinity
    assert available_cpus(proc=str(tmp_path / "missing"), cgroup_root=root) == affinity


def test_worker_count_uses_the_affinity(monkeypatch):
    import os

    from sonic import parallel

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    monkeypatch.setattr(parallel, "_cgroup_cpu_quota", lambda proc, root: None)
    assert parallel.available_cpus() == 1
    assert parallel.worker_count(None) == 0  # one CPU: work in this process
