"""Bring your own data: both profile shapes run end to end from a file, against what the example
generator planted (blanks, unparseable numbers, duplicate lines) and a label recomputed from the
raw file with pandas; profile mistakes fail naming the column and the values."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F

from lakehouse import delta_io, tables
from lakehouse.tables import Table
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
RUN_DATE = dt.date(2026, 6, 30)


def _fast(profile, algorithms=None):
    """Two CV folds (and fewer algorithms) keep the test short; the rest as the shipped profile says."""
    update = {"cv_folds": 2} | ({"algorithms": algorithms} if algorithms else {})
    return profile.model_copy(update={"training": profile.training.model_copy(update=update)})


@pytest.fixture(scope="module")
def byod(spark, tmp_path_factory):
    from lakehouse.byod.example import write_examples

    tmp = tmp_path_factory.mktemp("byod")
    planted = write_examples(tmp / "files", customers=1200, seed=5)
    return make_settings(tmp), tmp, planted


@pytest.fixture(scope="module")
def snapshot_run(spark, byod):
    from lakehouse.byod.pipeline import run_profile
    from lakehouse.byod.profile import load_profile

    settings, tmp, planted = byod
    profile = _fast(load_profile(ROOT / "conf/base/byod/acme_customers.yaml"))
    return run_profile(spark, settings, profile, tmp / "files/acme_customers.csv", RUN_DATE, tmp / "out-snapshot")


@pytest.fixture(scope="module")
def events_run(spark, byod):
    from lakehouse.byod.pipeline import run_profile
    from lakehouse.byod.profile import load_profile

    settings, tmp, planted = byod
    from lakehouse.byod.profile import BusinessSpec

    profile = _fast(load_profile(ROOT / "conf/base/byod/acme_orders.yaml"), ["logistic_regression"])
    profile = profile.model_copy(update={"business": BusinessSpec(target_contact_rate=0.2)})
    # candidates compared on a sample of the training rows, as on a file too large to cross-validate whole
    settings = settings.model_copy(update={"model": settings.model.model_copy(update={"max_cv_rows": CV_ROWS})})
    return run_profile(spark, settings, profile, tmp / "files/acme_orders.txt", RUN_DATE, tmp / "out-events")


CV_ROWS = 500


def _finding(result, column, problem_start):
    return sum(f["rows"] for f in result.findings if f["column"] == column and f["problem"].startswith(problem_start))


def test_snapshot_profile_end_to_end(spark, byod, snapshot_run):
    from lakehouse import delta_io
    from lakehouse.ml import tracking

    settings, tmp, planted = byod
    p = planted["acme_customers.csv"]
    r = snapshot_run
    # every line accounted for; exactly what was planted was found
    assert r.rows["lines"] == p.rows
    assert r.rows["duplicates_removed"] == p.duplicates
    assert r.rows["quarantined"] == p.unparseable["support_calls"]
    assert r.rows["silver"] == p.customers - p.unparseable["support_calls"]
    blanks = _finding(r, "monthly_fee", "text of blanks") + _finding(r, "monthly_fee", "empty field")
    # quarantined rows are counted by the rule, blanks over the parsed rows (quarantined ones included)
    assert blanks == p.blanks["monthly_fee"]
    assert _finding(r, "total_spent", "text of blanks") == p.blanks["total_spent"]
    assert _finding(r, "support_calls", "not a number") == p.unparseable["support_calls"]
    assert _finding(r, "churned", "one value written in several letter cases") > 0  # Yes, yes, " YES "
    # ids stay text with their leading zeros; personal data is hashed
    silver = delta_io.read(spark, tables.silver("byod_acme_customers").uri(settings))
    assert "e_mail" not in silver.columns and "e_mail_hash" in silver.columns
    assert silver.where("account_no = '000001'").count() == 1
    gold = delta_io.read(spark, Table("gold", "byod_acme_customers_features").uri(settings))
    assert gold.count() == r.rows["silver"]
    assert gold.where("label = 1").count() > 0
    # all algorithms compared on probabilities, each tuned and plain, beside the prior; the planted
    # signal is found; rows weigh the same, so the registered model's scores beat the prior's Brier score
    algos = {"logistic_regression", "random_forest", "gbt"}
    assert set(r.metrics) == algos | {f"plain_{a}" for a in algos} | {"prior"}
    assert r.split["method"] == "stratified" and r.split["class_weight"] == "none"
    assert r.split["positive_class_weight"] == 1.0
    assert r.best != "prior" and r.metrics[r.best]["roc_auc"] >= 0.75, r.metrics
    assert r.metrics[r.best]["roc_auc"] == max(m["roc_auc"] for m in r.metrics.values())
    assert r.metrics["prior"]["roc_auc"] == 0.5 and r.metrics[r.best]["brier"] < r.metrics["prior"]["brier"]
    for name, m in r.metrics.items():
        assert m["roc_auc_low"] <= m["roc_auc"] <= m["roc_auc_high"], name
    report = (Path(r.out_dir) / "model_report.md").read_text()
    assert r.best in report and "plain_gbt" in report and "| prior | prior | 0.5000 [0.5000, 0.5000]" in report
    assert "Costs from conf model.costs" in report and "## Calibration" in report
    assert (Path(r.out_dir) / f"plots/{r.best}/roc.png").exists()
    # one self-contained HTML report, also in the lake: every model's curves embedded, the column profile,
    # quarantined lines with their line numbers (personal data masked)
    page = (Path(settings.path(settings.lake.root)) / f"reports/byod/acme_customers/date={RUN_DATE}/report.html").read_text()
    assert page.count("data:image/png;base64,") >= 5 * 6 and "src='plots/" not in page
    for name in r.metrics:
        if name != "prior":
            assert f"<h3>{name}</h3>" in page
    assert "<td>monthly_fee</td>" in page  # the column profile
    samples = page.split("<h2>Quarantined lines (first 10)</h2>", 1)[1].split("<h1", 1)[0]
    assert "support_calls" in samples and samples.count("<tr>") - 1 == min(10, r.rows["quarantined"])
    assert "&lt;personal data&gt;" in samples and "@" not in samples  # the e-mail column is masked
    assert "monthly_fee" in (Path(r.out_dir) / "quality_report.md").read_text()
    # Deequ's metric agrees with the row counts: blank and empty cells are missing values, not type errors
    import json

    rules = {x["rule"]: x for x in json.loads((Path(r.out_dir) / "quality_findings.json").read_text())["rules"]}
    assert rules["monthly_fee_type"]["failing_rows"] == 0 and rules["monthly_fee_type"]["metric"] == 1.0
    n_ok = r.rows["lines"] - p.unparseable["support_calls"]
    assert rules["support_calls_type"]["metric"] == pytest.approx(n_ok / r.rows["lines"])
    assert r.suggestions, "Deequ's constraint suggestions are part of the quality report"
    # tracked and registered in MLflow; the report travels with the run
    client = tracking.client(settings)
    mv = client.get_model_version("byod_acme_customers", r.registered)
    assert mv.run_id
    assert "model_report.md" in [a.path for a in client.list_artifacts(r.mlflow_run_id)]


def test_a_new_file_is_scored_with_the_registered_model_after_the_same_checks(spark, byod, snapshot_run, tmp_path):
    """The snapshot without its label column, scored with the version the run registered: every row that
    passed the checks gets the score the model gives its features in gold (computed here from the
    gold table), contact = score at or above the recorded threshold; the planted bad rows are
    quarantined under the scoring table's name; a second run replaces the date's scores."""
    from pyspark.ml.functions import vector_to_array

    from lakehouse.byod.profile import load_profile
    from lakehouse.byod.scoring import score_file
    from lakehouse.ml import tracking

    settings, tmp, planted = byod
    r = snapshot_run
    profile = load_profile(ROOT / "conf/base/byod/acme_customers.yaml")
    lines = (tmp / "files/acme_customers.csv").read_text().splitlines()
    unlabelled = tmp_path / "to_score.csv"
    unlabelled.write_text("\n".join(ln.rsplit(",", 1)[0] for ln in lines) + "\n")
    day = dt.date(2026, 7, 31)
    first = score_file(spark, settings, profile, unlabelled, day, version=r.registered)
    again = score_file(spark, settings, profile, unlabelled, day, version=r.registered)
    assert first["rows"] == again["rows"] and first["model_version"] == r.registered
    assert first["rows"]["scored"] == r.rows["silver"] and first["rows"]["quarantined"] == r.rows["quarantined"]
    scores = delta_io.read(spark, tables.byod_scores(profile.table).uri(settings))
    assert scores.count() == r.rows["silver"] and {x[0] for x in scores.select("_run_id").distinct().collect()} == {
        again["run_id"]}
    threshold = r.metrics[r.best]["threshold"]
    assert first["threshold"] == pytest.approx(threshold)
    assert first["contacted"] == scores.where(F.col("score") >= threshold).count() == scores.where("contact").count()
    model = tracking.load_spark_model(settings, f"models:/{profile.table}/{r.registered}")
    gold = delta_io.read(spark, tables.byod_features(profile.table).uri(settings)).where(F.col("run_date") == RUN_DATE)
    expected = model.transform(gold).select("customer_id", vector_to_array("probability")[1].alias("expected"))
    joined = scores.join(expected, "customer_id")
    assert joined.count() == r.rows["silver"]
    assert joined.agg(F.max(F.abs(F.col("score") - F.col("expected")))).first()[0] < 1e-9
    quarantined = delta_io.read(spark, tables.quarantine("byod").uri(settings)).where(
        f"table = '{profile.table}_score' AND _ingest_date = '{day}'")
    assert quarantined.count() == r.rows["quarantined"]


def test_event_log_profile_derives_labels_point_in_time(spark, byod, events_run):
    from lakehouse import delta_io

    settings, tmp, planted = byod
    r = events_run
    assert r.rows["lines"] == planted["acme_orders.txt"].rows and r.rows["quarantined"] == 0
    assert r.split["method"] == "out_of_time" and len(r.split["eval_dates"]) == 1
    gold = delta_io.read(spark, Table("gold", "byod_acme_orders_features").uri(settings)).toPandas()
    # the label and recency recomputed from the raw file with pandas, independently of Spark
    raw = pd.read_csv(tmp / "files/acme_orders.txt", sep=r"\s+", header=None, dtype={0: str},
                      names=["cust", "day", "items", "price"])
    raw["day"] = pd.to_datetime(raw["day"].astype(str), format="%Y%m%d")
    for cutoff in sorted(gold["as_of"].unique()):
        c = pd.Timestamp(cutoff)
        before = raw[raw["day"] < c].groupby("cust")["day"].max()
        active = set(before[before >= c - pd.Timedelta(days=180)].index)
        after = set(raw[(raw["day"] >= c) & (raw["day"] < c + pd.Timedelta(days=60))]["cust"])
        g = gold[gold["as_of"] == cutoff].set_index("customer_id")
        assert set(g.index) == active
        assert {cid for cid in active if cid not in after} == set(g.index[g["label"] == 1])
        some = sorted(active)[:20]
        assert all(g.loc[cid, "recency_days"] == (c - before[cid]).days for cid in some)
    # one algorithm here (all three run on the snapshot profile above); the profile's target contact rate
    # sets the threshold: the top 20% of scores are contacted
    assert set(r.metrics) == {"logistic_regression", "plain_logistic_regression", "prior"}
    assert r.metrics[r.best]["roc_auc"] >= 0.7, r.metrics
    m = r.metrics[r.best]
    assert 0.2 * m["rows"] <= m["contacted"] <= 0.25 * m["rows"], m
    report = (Path(r.out_dir) / "model_report.md").read_text()
    assert "target contact rate 20%" in report
    # beyond model.max_cv_rows the candidates were compared on a stratified sample, and the report says so
    notes, train_rows = r.split["modeling"], r.split["rows"]["train"]
    assert train_rows > 2 * CV_ROWS, train_rows
    assert abs(notes["cv_rows"] - CV_ROWS) < 0.2 * CV_ROWS and notes["cv_fraction"] == round(CV_ROWS / train_rows, 6)
    assert f"on {notes['cv_rows']} of the {train_rows} training rows" in report


def test_an_event_log_can_keep_identical_lines_as_genuine_repeats(spark, byod, tmp_path):
    """Five order lines repeated verbatim: removed as exact duplicates by default (the snapshot test
    shows that path), kept with keep_identical_lines, each told apart by its line number."""
    from lakehouse.byod.pipeline import run_profile
    from lakehouse.byod.profile import LINE_ID, load_profile

    settings, tmp, planted = byod
    lines = (tmp / "files/acme_orders.txt").read_text().splitlines()
    repeated = tmp_path / "orders.txt"
    repeated.write_text("\n".join(lines + lines[100:105]) + "\n")
    profile = _fast(load_profile(ROOT / "conf/base/byod/acme_orders.yaml"), ["logistic_regression"])
    profile = profile.model_copy(update={"name": "acme_orders_repeats", "events": profile.events.model_copy(
        update={"keep_identical_lines": True})})
    r = run_profile(spark, settings, profile, repeated, RUN_DATE, tmp_path / "out")
    assert r.rows["lines"] == len(lines) + 5 and r.rows["duplicates_removed"] == 0
    assert r.rows["silver"] == len(lines) + 5
    silver = delta_io.read(spark, tables.byod_silver("byod_acme_orders_repeats").uri(settings))
    assert silver.select(LINE_ID).distinct().count() == len(lines) + 5


def test_profile_mistakes_name_the_column_and_values(spark, byod, tmp_path):
    from lakehouse.byod.pipeline import run_profile
    from lakehouse.byod.profile import ProfileError, load_profile

    settings, tmp, planted = byod
    profile = load_profile(ROOT / "conf/base/byod/acme_customers.yaml")
    wrong = profile.model_copy(update={"numeric": [*profile.numeric, "Monthly Fees"]})
    with pytest.raises(ProfileError, match=r"numeric column 'Monthly Fees' \(did you mean 'monthly_fee'\?\)"):
        run_profile(spark, settings, wrong, tmp / "files/acme_customers.csv", RUN_DATE, tmp_path)
    # a label value the profile does not declare
    odd = tmp_path / "odd.csv"
    lines = (tmp / "files/acme_customers.csv").read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0] + ",Maybe"
    lines[6] = lines[6].rsplit(",", 1)[0] + ",Maybe"
    odd.write_text("\n".join(lines) + "\n")
    with pytest.raises(ProfileError, match=r"label column 'Churned\?' has values the profile does not declare: "
                                           r"'maybe' \(2 rows\)"):
        run_profile(spark, settings, profile, odd, RUN_DATE, tmp_path)


def test_a_rerun_whose_columns_changed_is_refused_before_anything_is_written(spark, byod, snapshot_run, tmp_path):
    from lakehouse.byod.pipeline import run_profile
    from lakehouse.byod.profile import load_profile
    from lakehouse.errors import LakehouseError

    settings, tmp, _ = byod
    profile = _fast(load_profile(ROOT / "conf/base/byod/acme_customers.yaml"))
    lines = (tmp / "files/acme_customers.csv").read_text().splitlines()
    wider = tmp_path / "acme_customers.csv"  # one more column than the run before loaded
    wider.write_text("\n".join([lines[0] + ",Loyalty Tier", *[ln + ",gold" for ln in lines[1:]]]) + "\n")
    raw = settings.path(settings.lake.root) / "raw/byod" / profile.name
    before = sorted((p.relative_to(raw), p.stat().st_mtime_ns) for p in raw.rglob("*") if p.is_file())
    bronze = tables.bronze(profile.table).uri(settings)
    version = delta_io.latest_version(spark, bronze)
    with pytest.raises(LakehouseError, match=r"its columns differ from those profile 'acme_customers' loaded before "
                                             r"\(bronze.byod_acme_customers\): added \['loyalty_tier'\]\. Nothing "
                                             r"was written\."):
        run_profile(spark, settings, profile, wider, RUN_DATE, tmp_path / "out")
    assert sorted((p.relative_to(raw), p.stat().st_mtime_ns) for p in raw.rglob("*") if p.is_file()) == before
    assert delta_io.latest_version(spark, bronze) == version
    # --replace: the profile's tables are dropped and every layer holds this file's run
    fast = _fast(profile, ["logistic_regression"])
    result = run_profile(spark, settings, fast, wider, RUN_DATE, tmp_path / "out", replace=True)
    assert "loyalty_tier" in delta_io.read(spark, bronze).columns  # silver keeps the profile's columns only
    for table in (tables.bronze(profile.table), tables.byod_silver(profile.table)):
        df = delta_io.read(spark, table.uri(settings))
        assert {r[0] for r in df.select("_run_id").distinct().collect()} == {result.run_id}, table.qualified
    gold = delta_io.read(spark, tables.byod_features(profile.table).uri(settings))
    assert gold.count() == result.rows["silver"] and delta_io.latest_version(spark, bronze) == 0
    quarantined = delta_io.read(spark, tables.quarantine("byod").uri(settings)).where(f"table = '{profile.table}'")
    assert quarantined.count() == result.rows["quarantined"]


def test_a_snapshot_without_an_id_column_gets_row_ids_and_its_exact_duplicates_are_still_found(spark, byod, tmp_path):
    """The example snapshot without its account number: `byod init` drafts no id, `byod check` passes,
    the run gives each row an id from its values, so the planted duplicate lines are found as exact
    duplicates and every other line is a customer of its own."""
    import yaml

    from lakehouse.byod.draft import draft_profile
    from lakehouse.byod.pipeline import run_profile
    from lakehouse.byod.profile import ROW_ID, Profile, check_header, check_sample, load_profile, read_header

    settings, tmp, planted = byod
    p = planted["acme_customers.csv"]
    lines = (tmp / "files/acme_customers.csv").read_text().splitlines()
    no_id = tmp_path / "no_id.csv"
    no_id.write_text("\n".join(ln.split(",", 1)[1] for ln in lines) + "\n")
    draft = yaml.safe_load(draft_profile(no_id, "snapshot", name="no_id"))
    assert draft["customer_id"] is None
    drafted = Profile.model_validate(draft)
    header = read_header(no_id, drafted)
    check_header(drafted, header, str(no_id))
    check_sample(no_id, drafted, header)
    profile = _fast(load_profile(ROOT / "conf/base/byod/acme_customers.yaml"), ["logistic_regression"])
    profile = profile.model_copy(update={"name": "acme_no_id", "customer_id": None})
    r = run_profile(spark, settings, profile, no_id, RUN_DATE, tmp_path / "out")
    assert r.rows["lines"] == p.rows and r.rows["duplicates_removed"] == p.duplicates
    assert r.rows["silver"] == p.customers - p.unparseable["support_calls"] and r.rows["superseded"] == 0
    silver = delta_io.read(spark, tables.byod_silver("byod_acme_no_id").uri(settings))
    ids = [row[0] for row in silver.select(ROW_ID).collect()]
    assert len(set(ids)) == len(ids) == r.rows["silver"] and all(i.startswith("r") and len(i) == 17 for i in ids)
    with pytest.raises(Exception, match="needs customer_id"):
        Profile.model_validate({**load_profile(ROOT / "conf/base/byod/acme_orders.yaml").model_dump(),
                                "customer_id": None})


def test_profile_validation_and_cli_check(tmp_path, capsys):
    from lakehouse.byod.profile import ProfileError, load_profile
    from lakehouse.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nshape: snapshot\ncustomer_id: id\nnumeric: [a]\n")
    with pytest.raises(ProfileError, match="needs 'label'"):
        load_profile(bad)
    src = ROOT / "conf/base/byod/acme_customers.yaml"
    shutil.copy(src, tmp_path / "p.yaml")
    data = tmp_path / "d.csv"
    data.write_text("Account No,Plan Type\n1,Basic\n")
    assert main(["byod", "check", str(tmp_path / "p.yaml"), "--file", str(data)]) == 2
    err = capsys.readouterr().err
    assert "label column 'Churned?'" in err and "numeric column 'Monthly Fee'" in err


def test_byod_init_drafts_a_profile_that_fits_the_file(tmp_path):
    import yaml

    from lakehouse.byod.draft import draft_profile
    from lakehouse.byod.example import write_event_log, write_snapshot
    from lakehouse.byod.profile import ProfileError, load_profile

    write_snapshot(tmp_path / "crm.csv", customers=300, seed=2)
    write_event_log(tmp_path / "orders.txt", customers=100, seed=3)
    text = draft_profile(tmp_path / "crm.csv", "snapshot")
    (tmp_path / "crm.yaml").write_text(text)
    p = load_profile(tmp_path / "crm.yaml")
    assert p.customer_id == "account_no" and p.label.column == "churned"
    assert p.label.churned == ["yes"] and p.label.retained == ["no"]
    assert set(p.numeric) == {"monthly_fee", "total_spent", "support_calls", "days_since_login", "tenure_months"}
    assert set(p.categorical) == {"plan_type", "contract", "region"} and p.pii == ["e_mail"]
    assert "signup_date" in p.drop
    # a header-less log: the id cannot be guessed from names, and the error says what to pass
    with pytest.raises(ProfileError, match=r"cannot tell which column is the id; pass it \(--id\)"):
        draft_profile(tmp_path / "orders.txt", "event_log")
    events = yaml.safe_load(draft_profile(tmp_path / "orders.txt", "event_log", customer_id="col1", timestamp="col2"))
    assert events["source"]["format"] == "whitespace" and events["source"]["header"] is False
    assert events["events"]["timestamp"] == {"column": "col2", "formats": ["yyyyMMdd"]}


def test_byod_init_marks_personal_data_by_name_and_values_and_drafts_an_amount_once(tmp_path, capsys):
    import random

    import yaml

    from lakehouse.byod.draft import draft_profile
    from lakehouse.byod.profile import load_profile
    from lakehouse.cli import main

    rng = random.Random(5)
    rows = ["customerID,PhoneService,Phone,tenure,Churn"]
    rows += [f"C{i:04d},{rng.choice(['Yes', 'No'])},555-{i:04d},{rng.randint(1, 70)},{rng.choice(['Yes', 'No'])}"
             for i in range(80)]
    (tmp_path / "telco.csv").write_text("\n".join(rows) + "\n")
    text = draft_profile(tmp_path / "telco.csv", "snapshot")
    (tmp_path / "telco.yaml").write_text(text)
    p = load_profile(tmp_path / "telco.yaml")
    assert p.pii == ["phone"] and "phoneservice" in p.categorical  # a Yes/No product flag is not a phone number
    assert "# 'phone': personal data, hashed in silver (its name matches 'phone' and 80 of 80 sample values differ)" in text
    assert "# 'phoneservice': its name looks personal ('phone') but it has 2 distinct values in 80 rows" in text

    log = ["customer_id,order_date,dollar_value,store"]
    log += [f"C{rng.randint(1, 20):03d},2026-0{rng.randint(1, 6)}-1{rng.randint(0, 9)},{rng.uniform(5, 90):.2f},"
            f"{rng.choice(['north', 'south'])}" for _ in range(200)]
    (tmp_path / "orders.csv").write_text("\n".join(log) + "\n")
    text = draft_profile(tmp_path / "orders.csv", "event_log")  # declared 'dollar_value' twice before
    (tmp_path / "orders.yaml").write_text(text)
    events = load_profile(tmp_path / "orders.yaml").events
    assert events.amount == "dollar_value" and "dollar_value" not in events.numeric
    for name in ("telco", "orders"):
        assert main(["byod", "check", str(tmp_path / f"{name}.yaml"), "--file", str(tmp_path / f"{name}.csv")]) == 0
    assert capsys.readouterr().out.count("ok: profile") == 2
    assert yaml.safe_load(text)["events"]["timestamp"]["column"] == "order_date"


def test_byod_check_reads_the_first_lines_and_names_the_line_and_value_that_break(tmp_path, capsys):
    from lakehouse.cli import main

    good = ["customer_id,order_date,dollar_value,store"]
    good += [f"C{i % 7:03d},2026-03-{i % 28 + 1:02d},{i * 1.5:.2f},north" for i in range(40)]
    profile = ("name: orders\nshape: event_log\ncustomer_id: customer_id\nsource: {header: %s}\n"
               "events:\n  timestamp: {column: order_date, formats: [%s]}\n  amount: dollar_value\n"
               "  categorical: [store]\n")

    def check(lines, header="true", formats="yyyy-MM-dd", extra=""):
        (tmp_path / "o.csv").write_text("\n".join(lines) + "\n")
        (tmp_path / "o.yaml").write_text(profile % (header, formats) + extra)
        code = main(["byod", "check", str(tmp_path / "o.yaml"), "--file", str(tmp_path / "o.csv")])
        out = capsys.readouterr()
        return code, out.out + out.err

    code, out = check(good)
    assert code == 0 and "ok: profile 'orders' (event_log)" in out and "note:" not in out
    code, out = check(good[:5] + ["C001,2026-03-05,oops,north"] + good[5:], extra="  numeric: [dollar_value]\n")
    assert code == 2 and "declared twice" in out  # the amount column is not numeric as well
    code, out = check(good[:5] + ["C001,2026-03-05;9.5;north"] + good[5:])
    assert code == 2 and "line 6 has 2 fields, the header 4 (delimiter ','" in out
    code, out = check(good, formats="dd.MM.yyyy")
    assert code == 2 and "reads column 'order_date', e.g. line 2: '2026-03-01'" in out
    code, out = check(good[:3] + ["C002,03/04/2026,2.00,south"] + good[3:])
    assert code == 0 and "note: timestamp 'order_date': 1 of 41 values unreadable (the checks catch them), e.g. line 4" in out
    # a header-less profile on a file that has a header
    (tmp_path / "o.yaml").write_text((profile % ("false", "yyyy-MM-dd")).replace(
        "source: {header: false}", "source: {header: false, column_names: [customer_id, order_date, dollar_value, "
                                   "store]}"))
    assert main(["byod", "check", str(tmp_path / "o.yaml"), "--file", str(tmp_path / "o.csv")]) == 2
    assert "line 1 looks like a header (customer_id, order_date, dollar_value, store...)" in capsys.readouterr().err

    snapshot = ["id,plan,churn"] + [f"{i},basic,{'Yes' if i % 3 else 'No'}" for i in range(20)] + ["99,basic,maybe"]
    (tmp_path / "s.csv").write_text("\n".join(snapshot) + "\n")
    (tmp_path / "s.yaml").write_text("name: s\nshape: snapshot\ncustomer_id: id\ncategorical: [plan]\n"
                                     "label: {column: churn, churned: ['yes'], retained: ['no']}\n")
    assert main(["byod", "check", str(tmp_path / "s.yaml"), "--file", str(tmp_path / "s.csv")]) == 2
    assert "label column 'churn' has values the profile lists neither as churned nor as retained: ['maybe'], " \
           "e.g. line 22" in capsys.readouterr().err
