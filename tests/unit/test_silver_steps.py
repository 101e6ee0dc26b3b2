"""Silver's table order: a table that checks references against another table's silver runs after it."""

import pytest

from lakehouse.errors import LakehouseError
from lakehouse.quality.rules import load_rules
from lakehouse.silver.stage import table_steps


def test_referenced_tables_come_first_and_the_rest_share_a_step():
    rules = load_rules()
    steps = table_steps(rules)
    assert steps[0] == ["customers", "web_events"]
    assert sorted(steps[1]) == ["nps_responses", "subscriptions", "support_tickets", "transactions"]
    for later, step in enumerate(steps):
        for name in step:
            for rule in rules[name].rules:
                if rule.check == "references":
                    earlier = [n for s in steps[:later] for n in s]
                    assert rule.table in earlier, f"{name} checks {rule.table} before it is loaded"


def test_a_subset_keeps_its_dependencies_in_order():
    rules = load_rules()
    assert table_steps({n: rules[n] for n in ("transactions", "customers")}) == [["customers"], ["transactions"]]
    # without the referenced table in the run, the reference reads whatever silver holds already
    assert table_steps({"transactions": rules["transactions"]}) == [["transactions"]]


def test_a_reference_cycle_is_refused():
    rules = load_rules()
    ref = next(r for r in rules["transactions"].rules if r.check == "references")
    looped = rules["customers"].model_copy(update={"rules": [*rules["customers"].rules,
                                                            ref.model_copy(update={"table": "transactions"})]})
    with pytest.raises(LakehouseError, match="cycle: customers -> transactions -> customers"):
        table_steps({"customers": looped, "transactions": rules["transactions"]})
