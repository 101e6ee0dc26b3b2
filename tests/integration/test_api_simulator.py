"""The support vendor API against the real HTTP server on 127.0.0.1."""

import time

import pytest
import requests

from lakehouse.simulator.api import ApiServer
from tests.conftest import TOKEN


@pytest.fixture(scope="module")
def api(generated_sources):
    out, _ = generated_sources
    with ApiServer(out / "support", TOKEN, rate_limit_per_s=1000) as srv:
        yield srv


def get(url, token=TOKEN, **params):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(url, headers=headers, params=params, timeout=10)


def test_health_needs_no_token(api):
    assert get(f"{api.url}/api/v1/health", token=None).json() == {"status": "ok"}


def test_missing_or_wrong_token_is_rejected(api):
    assert get(f"{api.url}/api/v1/tickets", token=None, date="2026-01-05").status_code == 401
    assert get(f"{api.url}/api/v1/tickets", token="wrong", date="2026-01-05").status_code == 401


def test_pages_cover_the_day_exactly_once(api, generated_sources):
    import json

    out, _ = generated_sources
    expected = {}
    for line in (out / "support" / "tickets.jsonl").read_text().splitlines():
        rec = json.loads(line)
        expected.setdefault(rec["_delivered_on"], []).append(rec)
    date, recs = max(expected.items(), key=lambda kv: len(kv[1]))
    assert len(recs) >= 3
    seen, page = [], 1
    while page:
        body = get(f"{api.url}/api/v1/tickets", date=date, page=page, page_size=2).json()
        assert body["total"] == len(recs) and len(body["data"]) <= 2
        seen.extend(body["data"])
        page = body["next_page"]
    strip = lambda r: json.dumps({k: v for k, v in r.items() if k != "_delivered_on"}, sort_keys=True)  # noqa: E731
    assert sorted(map(strip, seen)) == sorted(map(strip, recs))


def test_bad_parameters_are_400(api):
    r = get(f"{api.url}/api/v1/tickets", date="2026-13-01")
    assert r.status_code == 400 and "bad parameters" in r.json()["error"]


def test_rate_limit_answers_429_with_retry_after(generated_sources):
    out, _ = generated_sources
    with ApiServer(out / "support", TOKEN, rate_limit_per_s=2) as srv:
        codes = [get(f"{srv.url}/api/v1/nps", date="2026-01-03") for _ in range(6)]
        limited = [r for r in codes if r.status_code == 429]
        assert limited, [r.status_code for r in codes]
        assert int(limited[0].headers["Retry-After"]) >= 1
        time.sleep(int(limited[0].headers["Retry-After"]))
        assert get(f"{srv.url}/api/v1/nps", date="2026-01-03").status_code == 200


def test_injected_failures_are_503(generated_sources):
    out, _ = generated_sources
    with ApiServer(out / "support", TOKEN, rate_limit_per_s=1000, failure_rate=1.0) as srv:
        assert get(f"{srv.url}/api/v1/nps", date="2026-01-03").status_code == 503
        srv.faults["failure_rate"] = 0.0
        assert get(f"{srv.url}/api/v1/nps", date="2026-01-03").status_code == 200
