"""The groups `make test` hands its xdist workers (tests/conftest.py) name files that exist, and a shared
session fixture's files share a group."""

from pathlib import Path

from tests.conftest import LONGEST_FIRST, SHARED_STATE, group_of

ROOT = Path(__file__).resolve().parents[2]


def test_every_file_the_groups_name_exists_and_a_shared_group_is_ranked_by_its_first_file():
    named = [path for group in SHARED_STATE for path in group] + LONGEST_FIRST
    assert [p for p in named if not (ROOT / p).is_file()] == []
    assert all(group[0] in LONGEST_FIRST and not set(group[1:]) & set(LONGEST_FIRST) for group in SHARED_STATE)


def test_files_sharing_a_fixture_share_a_group_and_others_are_their_own():
    assert group_of("tests/integration/test_models.py::test_x") == group_of("tests/dags/test_dag_run.py::test_y")
    assert group_of("tests/integration/test_silver.py::test_x") == group_of("tests/integration/test_ingest.py::t")
    assert group_of("tests/integration/test_gold.py::test_x") == "tests/integration/test_gold.py"
    assert group_of("tests/integration/test_gold.py::test_x") != group_of("tests/integration/test_models.py::t")
