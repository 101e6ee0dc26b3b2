"""A seeded simulation of a subscription business, the ground truth behind the simulated sources.

The pipeline never imports this module: it reaches the simulated systems only through their
protocols (JDBC, files in an inbox, HTTP). Tests and the demo use it to stand the systems up.

How churn arises (documented in docs/sources.md): every active customer has a daily cancellation
hazard ``h = target_daily * exp(risk) / mean(exp(risk))`` over the active base, so the realised churn
rate tracks ``churn.target_monthly_rate`` while *who* churns follows ``risk``:

    risk = 6.2 * engagement_decline + 0.8 * failed_payments_30d + 0.65 * open_tickets
           + 0.9 * price_rise_60d + 0.8 * (tenure < 90d) - 1.55 * annual_contract
           + 0.65 * detractor_nps + 0.5 * (plan == basic)

Engagement declines for customers who hit a "disengagement" event (a small daily chance, higher
after failed payments or unresolved tickets), so declining activity precedes most cancellations.

Every generated record is produced for one logical date; data-quality faults are injected at the
configured rates and recorded in ``ground_truth/faults.jsonl`` so tests can measure recall.
"""

from __future__ import annotations

import datetime as dt
import math
import pickle
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from lakehouse.config import SimulatorConfig

PLANS = {"basic": 9.99, "standard": 19.99, "premium": 34.99}
PLAN_WEIGHTS = [0.45, 0.38, 0.17]
CHANNELS = ["organic", "paid_search", "referral", "partner", "social"]
COUNTRIES = {  # ISO code -> (full name, region, currency)
    "DE": ("Germany", "EU", "EUR"), "FR": ("France", "EU", "EUR"), "ES": ("Spain", "EU", "EUR"),
    "NL": ("Netherlands", "EU", "EUR"), "GB": ("United Kingdom", "UK", "GBP"),
    "US": ("United States", "NA", "USD"), "CA": ("Canada", "NA", "USD"),
}
COUNTRY_WEIGHTS = [0.2, 0.15, 0.1, 0.08, 0.15, 0.25, 0.07]
FIRST = ["Ana", "Ben", "Chloe", "David", "Emma", "Felix", "Grace", "Hugo", "Ines", "Jonas", "Kira", "Liam",
         "Mia", "Noah", "Olga", "Paul", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Victor", "Wen", "Yara", "Zoe"]
LAST = ["Smith", "Muller", "Garcia", "Dubois", "Jansen", "Brown", "Rossi", "Novak", "Silva", "Kim", "Lopez",
        "Weber", "Martin", "Evans", "Fischer", "Moreau", "Costa", "Young", "Berg", "Olsen"]
PAGES = ["home", "dashboard", "reports", "settings", "billing", "help", "export", "integrations"]
DEVICES = ["web", "ios", "android"]
TICKET_CATEGORIES = ["billing", "technical", "account", "how_to", "cancellation"]
PAY_METHODS = ["card", "paypal", "sepa"]

BILLING_COLUMNS = ["transaction_id", "customer_id", "billed_at", "amount", "currency", "status",
                   "payment_method", "plan"]
BILLING_COLUMNS_V2 = ["transaction_id", "customer_id", "billed_at", "amount", "tax_amount", "currency",
                      "status", "payment_method", "plan"]


@dataclass
class Customer:
    customer_id: str
    first_name: str
    last_name: str
    email: str
    phone: str
    country: str
    channel: str
    birth_year: int
    signup_date: dt.date
    plan: str
    contract: str
    price: float
    payment_method: str
    billing_day: int
    subscription_id: str
    base_engagement: float
    engagement: float
    payment_risk: float
    is_active: bool = True
    churn_date: dt.date | None = None
    declining_since: dt.date | None = None
    failed_payments: list[dt.date] = field(default_factory=list)
    open_tickets: int = 0
    price_rise_date: dt.date | None = None
    last_nps: int | None = None


class Spilled:
    """Records kept in a file instead of memory, read back in the order they were added (the web
    events of large simulations: 100,000 customers x 90 days are ~36M events, ~18 GiB as dicts)."""

    def __init__(self, path: Path):
        self.path = path
        self.count = 0

    def extend(self, records: list[dict[str, Any]]) -> None:
        if records:
            with self.path.open("ab") as fh:
                pickle.dump(records, fh, protocol=pickle.HIGHEST_PROTOCOL)
            self.count += len(records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            while True:
                try:
                    yield from pickle.load(fh)
                except EOFError:
                    return

    def __len__(self) -> int:
        return self.count


@dataclass
class DayOutput:
    """Everything the source systems receive for one logical date (before fault injection)."""

    date: dt.date
    customers: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    transactions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    tickets: list[dict[str, Any]] = field(default_factory=list)
    nps: list[dict[str, Any]] = field(default_factory=list)


def _ts(day: dt.date, seconds: int) -> str:
    return (dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    # Knuth; lam stays small (sessions per day, events per session)
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


class BusinessSimulator:
    """Simulates the business day by day. ``run()`` returns one ``DayOutput`` per date. With
    ``spill_dir``, each day's web events go to a file there when the day is done (``Spilled``)."""

    def __init__(self, cfg: SimulatorConfig, spill_dir: Path | None = None):
        self.cfg = cfg
        self.spill_dir = spill_dir
        self.rng = random.Random(f"{cfg.seed}:business")
        self.activity_rng = random.Random(f"{cfg.seed}:activity")
        self.customers: list[Customer] = []
        self._next_customer = 1
        self._next_txn = 1
        self._next_ticket = 1
        self._next_nps = 1
        self._open_tickets: list[dict[str, Any]] = []
        self.target_daily = 1 - (1 - cfg.churn.target_monthly_rate) ** (1 / 30)
        self.price_rise_day = cfg.start_date + dt.timedelta(days=min(45, cfg.days // 2))
        self.churn_events: list[tuple[str, dt.date]] = []
        self.active_days: list[tuple[dt.date, int]] = []

    # ---- customers ---------------------------------------------------------------------------
    def _new_customer(self, signup: dt.date) -> Customer:
        r = self.rng
        n = self._next_customer
        self._next_customer += 1
        first, last = r.choice(FIRST), r.choice(LAST)
        country = r.choices(list(COUNTRIES), COUNTRY_WEIGHTS)[0]
        plan = r.choices(list(PLANS), PLAN_WEIGHTS)[0]
        contract = "annual" if r.random() < 0.3 else "monthly"
        price = round(PLANS[plan] * (0.85 if contract == "annual" else 1.0), 2)
        base = r.lognormvariate(0.0, 0.5) * {"basic": 0.7, "standard": 1.0, "premium": 1.3}[plan]
        return Customer(
            customer_id=f"C{n:07d}", first_name=first, last_name=last,
            email=f"{first.lower()}.{last.lower()}{n}@example.com",
            phone=f"+{r.randint(1, 49)} {r.randint(100, 999)} {r.randint(100000, 999999)}",
            country=country, channel=r.choice(CHANNELS), birth_year=r.randint(1950, 2006),
            signup_date=signup, plan=plan, contract=contract, price=price,
            payment_method=r.choice(PAY_METHODS), billing_day=signup.day if signup.day <= 28 else 28,
            subscription_id=f"S{n:07d}", base_engagement=base, engagement=base,
            payment_risk=min(0.5, r.betavariate(1.2, 18)),
        )

    def _customer_row(self, c: Customer, updated: str) -> dict[str, Any]:
        return {
            "customer_id": c.customer_id, "first_name": c.first_name, "last_name": c.last_name,
            "email": c.email, "phone": c.phone, "country": c.country, "channel": c.channel,
            "birth_year": c.birth_year, "signup_date": c.signup_date.isoformat(), "updated_at": updated,
        }

    def _subscription_row(self, c: Customer, updated: str) -> dict[str, Any]:
        return {
            "subscription_id": c.subscription_id, "customer_id": c.customer_id, "plan": c.plan,
            "contract": c.contract, "monthly_price": c.price,
            "status": "active" if c.is_active else "cancelled",
            "start_date": c.signup_date.isoformat(),
            "cancel_date": c.churn_date.isoformat() if c.churn_date else None, "updated_at": updated,
        }

    # ---- the daily loop ----------------------------------------------------------------------
    def run(self) -> list[DayOutput]:
        cfg = self.cfg
        start = cfg.start_date
        days = []
        initial = int(cfg.customers * 0.7)
        arrivals_per_day = (cfg.customers - initial) / cfg.days
        for _ in range(initial):
            self.customers.append(self._new_customer(start - dt.timedelta(days=self.rng.randint(1, 1000))))
        for offset in range(cfg.days):
            day = start + dt.timedelta(days=offset)
            out = DayOutput(day)
            if offset == 0:  # go-live: the first day carries a full snapshot of existing customers
                for c in self.customers:
                    out.customers.append(self._customer_row(c, _ts(day, 60)))
                    out.subscriptions.append(self._subscription_row(c, _ts(day, 60)))
            arrivals = int(arrivals_per_day * (offset + 1)) - int(arrivals_per_day * offset)
            for _ in range(arrivals):
                c = self._new_customer(day)
                self.customers.append(c)
                sec = self.rng.randint(3600, 80000)
                out.customers.append(self._customer_row(c, _ts(day, sec)))
                out.subscriptions.append(self._subscription_row(c, _ts(day, sec)))
            self._simulate_day(day, out)
            if self.spill_dir is not None:
                spilled = Spilled(self.spill_dir / f"events-{day.isoformat()}.pkl")
                spilled.extend(out.events)
                out.events = spilled
            days.append(out)
        return days

    def _risk(self, c: Customer, day: dt.date) -> float:
        decline = max(0.0, 1.0 - c.engagement / c.base_engagement) if c.base_engagement > 0 else 0.0
        failed_30 = sum(1 for f in c.failed_payments if (day - f).days <= 30)
        price_rise = 1.0 if c.price_rise_date and (day - c.price_rise_date).days <= 60 else 0.0
        # coefficients raised on 2026-11-26 (from 3.6/0.6/0.5/0.7/0.6/-1.2/0.5/0.4 and a 1.5x lower
        # disengagement rate): the old mix let even the true risk rank 30-day churners only at
        # ROC AUC ~0.82 (docs/model-report.md), a ceiling no model could pass
        return (6.2 * min(decline, 1.0) + 0.8 * failed_30 + 0.65 * min(c.open_tickets, 3)
                + 0.9 * price_rise + 0.8 * ((day - c.signup_date).days < 90)
                - 1.55 * (c.contract == "annual") + 0.65 * (c.last_nps is not None and c.last_nps <= 6)
                + 0.5 * (c.plan == "basic"))

    def _simulate_day(self, day: dt.date, out: DayOutput) -> None:
        r = self.rng
        active = [c for c in self.customers if c.is_active and c.signup_date <= day]
        self.active_days.append((day, len(active)))
        # price rise on the configured day: basic and standard plans +15 %
        if day == self.price_rise_day:
            for c in active:
                if c.plan in ("basic", "standard") and c.contract == "monthly":
                    c.price = round(c.price * 1.15, 2)
                    c.price_rise_date = day
                    out.subscriptions.append(self._subscription_row(c, _ts(day, 7200)))
        for c in active:
            self._billing(c, day, out)
            self._engagement(c, day)
            self._activity(c, day, out)
            self._support(c, day, out)
        self._resolve_tickets(day, out)
        # churn: hazard normalised over the active base so the realised rate tracks the target
        risks = [math.exp(self._risk(c, day)) for c in active]
        mean_risk = sum(risks) / len(risks) if risks else 1.0
        for c, risk in zip(active, risks):
            hazard = min(0.5, self.target_daily * risk / mean_risk)
            if r.random() < hazard:
                c.is_active = False
                c.churn_date = day
                self.churn_events.append((c.customer_id, day))
                out.subscriptions.append(self._subscription_row(c, _ts(day, r.randint(28800, 86000))))

    def _billing(self, c: Customer, day: dt.date, out: DayOutput) -> None:
        r = self.rng
        due = day.day == c.billing_day and day > c.signup_date and (
            c.contract == "monthly" or day.month == c.signup_date.month)
        retry = any((day - f).days == 3 for f in c.failed_payments)
        if due or (retry and not due):
            failed = r.random() < c.payment_risk * (1.6 if retry else 1.0)
            if failed:
                c.failed_payments.append(day)
            amount = c.price * (12 if c.contract == "annual" and due else 1)
            self._txn(c, day, round(amount, 2), "failed" if failed else "paid", out)
        if r.random() < 0.01 * c.engagement:  # add-on purchase
            self._txn(c, day, round(r.uniform(2, 20), 2), "paid", out)

    def _txn(self, c: Customer, day: dt.date, amount: float, status: str, out: DayOutput) -> None:
        n = self._next_txn
        self._next_txn += 1
        out.transactions.append({
            "transaction_id": f"T{n:09d}", "customer_id": c.customer_id,
            "billed_at": _ts(day, self.rng.randint(0, 86399)), "amount": amount,
            "tax_amount": round(amount * 0.19, 2), "currency": COUNTRIES[c.country][2], "status": status,
            "payment_method": c.payment_method, "plan": c.plan,
        })

    def _engagement(self, c: Customer, day: dt.date) -> None:
        r = self.rng
        if c.declining_since is None:
            p = 0.006 + 0.015 * bool(c.failed_payments and (day - c.failed_payments[-1]).days < 14) \
                + 0.009 * min(c.open_tickets, 2) + 0.006 * (c.price_rise_date is not None)
            if r.random() < p:
                c.declining_since = day
            c.engagement = max(0.05, c.base_engagement * r.uniform(0.85, 1.15))
        else:
            c.engagement = max(0.02, c.engagement * r.uniform(0.93, 0.99))

    def _activity(self, c: Customer, day: dt.date, out: DayOutput) -> None:
        r = self.activity_rng
        for s in range(_poisson(r, 0.9 * c.engagement)):
            session = f"{c.customer_id}-{day:%Y%m%d}-{s}"
            t = r.randint(6 * 3600, 23 * 3600)
            device = r.choice(DEVICES)
            kinds = ["login"] + ["page_view" if r.random() < 0.7 else "feature_use"
                                 for _ in range(1 + _poisson(r, 2.0))] + ["logout"]
            for i, kind in enumerate(kinds):
                t += r.randint(5, 300)
                out.events.append({
                    "event_id": f"{session}-{i}", "customer_id": c.customer_id, "session_id": session,
                    "event_type": kind, "page": None if kind in ("login", "logout") else r.choice(PAGES),
                    "device": device, "ts": _ts(day, min(t, 86399)),
                })

    def _support(self, c: Customer, day: dt.date, out: DayOutput) -> None:
        r = self.rng
        recent_fail = bool(c.failed_payments and (day - c.failed_payments[-1]).days < 7)
        if r.random() < 0.003 + 0.05 * recent_fail + 0.01 * (c.declining_since is not None):
            n = self._next_ticket
            self._next_ticket += 1
            category = "billing" if recent_fail else r.choice(TICKET_CATEGORIES[1:4])
            ticket = {
                "ticket_id": f"K{n:08d}", "customer_id": c.customer_id, "category": category,
                "priority": r.choice(["low", "normal", "high"]), "status": "open",
                "created_at": _ts(day, r.randint(0, 80000)), "resolved_at": None,
                "updated_at": None, "_resolve_in": r.choice([1, 2, 3, 5, 8, 30, 60]),
            }
            ticket["updated_at"] = ticket["created_at"]
            c.open_tickets += 1
            self._open_tickets.append(ticket)
            out.tickets.append({k: v for k, v in ticket.items() if not k.startswith("_")})
        if r.random() < 0.01:
            satisfaction = c.engagement / max(c.base_engagement, 0.01)
            score = max(0, min(10, round(r.gauss(4 + 5 * min(satisfaction, 1.1) - 2 * min(c.open_tickets, 2), 1.5))))
            c.last_nps = score
            n = self._next_nps
            self._next_nps += 1
            out.nps.append({"response_id": f"N{n:08d}", "customer_id": c.customer_id,
                            "submitted_at": _ts(day, r.randint(0, 86399)), "score": score,
                            "channel": r.choice(["email", "in_app"])})

    def _resolve_tickets(self, day: dt.date, out: DayOutput) -> None:
        still_open = []
        by_id = {c.customer_id: c for c in self.customers}
        for t in self._open_tickets:
            created = dt.date.fromisoformat(t["created_at"][:10])
            if (day - created).days >= t["_resolve_in"]:
                t["status"] = "resolved"
                t["resolved_at"] = t["updated_at"] = _ts(day, self.rng.randint(0, 86399))
                by_id[t["customer_id"]].open_tickets -= 1
                out.tickets.append({k: v for k, v in t.items() if not k.startswith("_")})
            else:
                still_open.append(t)
        self._open_tickets = still_open
