"""The pipeline benchmark's results file: a scale measured alone merges with the scales on record."""

import copy
import json
import shutil
from pathlib import Path

from lakehouse.tools.bench_pipeline import write_results

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_a_scale_measured_alone_replaces_its_entry_and_keeps_the_others(tmp_path):
    on_record = json.loads((DOCS / "benchmarks-pipeline.json").read_text())["results"]
    scales = [r["customers"] for r in on_record]
    assert len(scales) >= 2, "the results in git hold every scale of the table"
    out_json, out_md = tmp_path / "pipeline.json", tmp_path / "pipeline.md"
    shutil.copy(DOCS / "benchmarks-pipeline.json", out_json)
    out_md.write_text("# head\n\n<!-- bench pipeline: start -->\nold\n<!-- bench pipeline: end -->\n\ntail\n")

    again = copy.deepcopy(on_record[0])
    again["total_seconds"] = 4242.5
    written = write_results([again], out_json, out_md)

    assert [r["customers"] for r in written] == scales
    assert json.loads(out_json.read_text())["results"] == written
    assert written[0]["total_seconds"] == 4242.5 and written[1:] == on_record[1:]
    text = out_md.read_text()
    assert text.startswith("# head\n") and text.rstrip().endswith("tail") and "\nold\n" not in text
    summary = [line for line in text.splitlines() if line[:3].strip("| ").isdigit() and " x " in line.split("|")[1]]
    assert len(summary) == len(scales) and "**4242.5**" in summary[0]
    assert (tmp_path / "pipeline.png").stat().st_size > 0
