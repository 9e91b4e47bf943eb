"""Running a function over many items in worker processes (sonic.parallel)."""

from __future__ import annotations

import os

import pytest

from sonic.errors import AudioError, SonicError
from sonic.parallel import map_files, run_tasks, task_size, worker_count


def _square_unless_seven(item: int) -> int:
    if item % 7 == 0:
        raise SonicError(f"item {item} is a multiple of seven")
    return item * item


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
