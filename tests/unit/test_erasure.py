"""The erasure's matching rules, without Spark: what counts as the customer's record in raw files."""

import json
import re

import pytest

from lakehouse.erasure import _drop_records, check_customer_id, token_pattern
from lakehouse.errors import LakehouseError


def test_the_id_matches_as_a_whole_token_only():
    rx = re.compile(token_pattern("C0000042"))
    assert rx.search("C0000042") and rx.search("C0000042-20260101-1-2") and rx.search('"customer_id":"C0000042"')
    assert not rx.search("C00000421") and not rx.search("XC0000042") and not rx.search("C000004")


def test_lines_and_json_page_records_of_the_customer_are_dropped_and_counted():
    rx = re.compile(token_pattern("C0000042").encode())
    csv = b"transaction_id,customer_id\nT1,C0000042\nT2,C0000043\nT3,C0000042\n"
    out, n = _drop_records("transactions.csv", csv, rx)
    assert (out, n) == (b"transaction_id,customer_id\nT2,C0000043\n", 2)
    page = {"data": [{"customer_id": "C0000042", "x": 1}, {"customer_id": "C0000007", "x": 2}], "next": None}
    out, n = _drop_records("tickets-page-00001.json", json.dumps(page).encode(), rx)
    assert n == 1 and json.loads(out) == {"data": [{"customer_id": "C0000007", "x": 2}], "next": None}
    # a malformed line that holds the id goes too: it is the customer's data all the same
    out, n = _drop_records("events.jsonl", b'{"customer_id": "C0000042", "ts": \n{"customer_id": "C0000001"}\n', rx)
    assert (out, n) == (b'{"customer_id": "C0000001"}\n', 1)


@pytest.mark.parametrize("bad", ["", "  ", "C0", "C00*", "12345", "a b"])
def test_ids_that_could_match_too_much_are_refused(bad):
    with pytest.raises(LakehouseError):
        check_customer_id(bad)
