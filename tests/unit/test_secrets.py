"""No secrets in the repository; config names the environment variables that hold them; servers
bind to 127.0.0.1 by default."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PATTERNS = {
    "private key": re.compile(r"-----BEGIN (RSA |EC |OPENSSH |DSA |)PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"),
    "Slack token": re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}"),
    # a literal password in a URL; ${VAR}, {placeholder} and %(name)s interpolations are fine
    "URL with a password": re.compile(r"\b[a-z][a-z0-9+.-]*://(?![$%{<])[^/\s:@]+:(?![$%{<])[^/\s@]{3,}@"),
}
SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_key|apikey|credential)s?$", re.I)


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / p for p in out.splitlines() if (ROOT / p).is_file()]


def test_no_secret_patterns_in_tracked_files():
    found = []
    for path in tracked_files():
        if path.suffix in (".png", ".jar", ".ipynb") or path.stat().st_size > 2_000_000:
            continue
        text = path.read_text(errors="ignore")
        for what, pattern in PATTERNS.items():
            for m in pattern.finditer(text):
                found.append(f"{path.relative_to(ROOT)}: {what}: {m.group(0)[:40]}")
    assert not found, found


def _walk(node, prefix=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{prefix}[{i}]")
    else:
        yield prefix, node


def test_config_holds_variable_names_never_secret_values():
    offenders = []
    for path in sorted((ROOT / "conf").rglob("*.yaml")):
        for key, value in _walk(yaml.safe_load(path.read_text()) or {}):
            leaf = key.rsplit(".", 1)[-1]
            if SECRET_KEY.search(leaf) and value not in (None, ""):
                offenders.append(f"{path.relative_to(ROOT)}: {key} = {value!r} (name an environment variable: {leaf}_env)")
    assert not offenders, offenders
    base = yaml.safe_load((ROOT / "conf/base/pipeline.yaml").read_text())
    assert base["sources"]["support_api"]["token_env"] and base["quality"]["pii_key_env"]


def test_servers_bind_to_loopback_by_default():
    import inspect

    from lakehouse.config import load_settings
    from lakehouse.featurestore import server

    assert load_settings("local").simulator.api.host == "127.0.0.1"
    assert inspect.signature(server.serve).parameters["host"].default == "127.0.0.1"
    makefile = (ROOT / "Makefile").read_text()
    assert "0.0.0.0" not in makefile
