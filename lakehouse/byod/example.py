"""Example files for the "use your own data" guide, in shapes unlike the simulator's.

``acme_customers.csv`` is a CRM extract: a row per customer, a Yes/No label in mixed case and
padding, header quirks (spaces, mixed case, a doubled blank, punctuation), numbers stored as text
with blanks, a few unparseable numbers, IDs with leading zeros, exact duplicate rows, CRLF line
endings. ``acme_orders.txt`` is a purchase log: whitespace-separated, no header, one line per order
(customer, date as yyyymmdd, items, unit price), no label.

Both carry real signal (churn depends on support calls, logins, contract, tenure; order rates fade
before a customer leaves) and the generator returns what it planted (blanks, bad values, duplicates)
so tests can check the quality stage reports exactly that.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SNAPSHOT_HEADER = ["Account No", " Signup  Date", "Plan Type", "Contract", "Monthly Fee", "Total Spent",
                   "Support Calls", "Days Since Login", "Tenure Months", "Region", "E-Mail", "Churned?"]


@dataclass
class Planted:
    rows: int = 0                      # data lines written (duplicates included)
    customers: int = 0
    duplicates: int = 0                # exact duplicate lines added
    blanks: dict[str, int] = field(default_factory=dict)       # column -> blank or empty cells (all lines)
    unparseable: dict[str, int] = field(default_factory=dict)  # column -> non-numeric text (all lines)
    churned: int = 0


def write_snapshot(path: Path, customers: int = 3000, seed: int = 11) -> Planted:
    rng = np.random.default_rng(seed)
    planted = Planted(customers=customers, blanks={"monthly_fee": 0, "total_spent": 0},
                      unparseable={"support_calls": 0})
    plans = {"Basic": 19.9, "Plus": 34.9, "Pro": 59.9}
    contracts = ["Month-to-month", "One year", "Two year"]
    regions = ["North", "South", "East", "West"]
    lines = [",".join(SNAPSHOT_HEADER)]
    unique_lines = []
    for i in range(customers):
        plan = rng.choice(list(plans), p=[0.45, 0.35, 0.2])
        contract = rng.choice(contracts, p=[0.55, 0.28, 0.17])
        tenure = int(rng.integers(1, 72))
        calls = int(rng.poisson(1.2 + (1.5 if plan == "Basic" else 0.0)))
        login = int(rng.exponential(9 if contract == "Month-to-month" else 5))
        fee = plans[plan] * float(rng.uniform(0.9, 1.1))
        total = fee * tenure * float(rng.uniform(0.95, 1.0))
        logit = (-2.3 + 0.55 * calls + 0.07 * login - 0.035 * tenure
                 + {"Month-to-month": 0.9, "One year": -0.2, "Two year": -1.2}[contract]
                 + 0.015 * (fee - 35))
        churned = rng.random() < 1 / (1 + math.exp(-logit))
        planted.churned += int(churned)
        signup = dt.date(2026, 6, 30) - dt.timedelta(days=30 * tenure + int(rng.integers(0, 28)))
        label = rng.choice(["Yes", "yes", " YES "] if churned else ["No", "no", "No "], p=[0.8, 0.15, 0.05])
        fee_text = f"{fee:.2f}"
        if rng.random() < 0.03:
            fee_text = str(rng.choice(["", " "]))
        total_text = f"{total:.2f}"
        if tenure == 1 and rng.random() < 0.5 or rng.random() < 0.01:
            total_text = " "
        calls_text = str(calls)
        if rng.random() < 0.004:
            calls_text = "n/a"
        flags = {"monthly_fee": fee_text.strip() == "", "total_spent": total_text.strip() == "",
                 "support_calls": calls_text == "n/a"}
        email = f"user{i}@example.org"
        fields = [f"{i + 1:06d}", signup.strftime("%d/%m/%Y"), str(plan), str(contract), fee_text, total_text,
                  calls_text, str(login), str(tenure), str(rng.choice(regions)), email, str(label)]
        unique_lines.append((",".join(f'"{f}"' if "," in f else f for f in fields), flags))
    for line, flags in unique_lines:
        copies = 2 if rng.random() < 0.02 else 1
        lines += [line] * copies
        planted.duplicates += copies - 1
        for col, hit in flags.items():
            if hit:
                (planted.unparseable if col == "support_calls" else planted.blanks)[col] += copies
    planted.rows = len(lines) - 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    return planted


def write_event_log(path: Path, customers: int = 1500, seed: int = 12, start: dt.date = dt.date(2025, 1, 1),
                    days: int = 365) -> Planted:
    """Orders of ``customers`` over ``days``: each customer orders at their own rate, which fades over
    the weeks before they leave; leaving is likelier for customers who order rarely and little."""
    rng = np.random.default_rng(seed)
    planted = Planted(customers=customers)
    out = []
    for c in range(customers):
        first = int(rng.integers(0, days // 3))
        rate = float(rng.lognormal(mean=math.log(2.0), sigma=0.6)) / 30  # orders per day
        basket = float(rng.lognormal(mean=math.log(25), sigma=0.5))
        hazard = 0.004 / (0.6 + 20 * rate) * (1.4 if basket < 20 else 1.0)
        leave = first + int(rng.exponential(1 / hazard)) + 1
        planted.churned += int(leave < days)
        day = first
        while day < min(leave, days):
            fade = 1.0 if leave - day > 45 else max(0.25, (leave - day) / 45)
            items = 1 + int(rng.poisson(2))
            price = basket / items * float(rng.uniform(0.8, 1.2))
            out.append((c, day, items, price))
            day += 1 + int(rng.exponential(1 / (rate * fade)))
    out.sort(key=lambda r: (r[1], r[0]))
    lines = [f"{c + 1:05d}  {(start + dt.timedelta(days=d)).strftime('%Y%m%d')}   {items:>2d}  {price:8.2f}"
             for c, d, items, price in out]
    planted.rows = len(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return planted


def write_examples(out_dir: Path, customers: int = 3000, seed: int = 11) -> dict[str, Planted]:
    return {"acme_customers.csv": write_snapshot(out_dir / "acme_customers.csv", customers, seed),
            "acme_orders.txt": write_event_log(out_dir / "acme_orders.txt", max(200, customers // 2), seed + 1)}
