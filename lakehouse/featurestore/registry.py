"""The feature registry (``conf/base/features/registry.yaml``): entity, feature views, features, versions.

Validated on load: unique (name, version) pairs, dtypes known, each view's TTL positive, and each
locked (name, version)'s expression unchanged. The lock file ``conf/base/features/registry.lock.json``
holds a fingerprint per version; editing a locked expression in place fails with the feature named,
so a changed definition always gets a new version and training sets that name a version keep their
meaning. ``lakehouse features lock`` records fingerprints of new versions.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lakehouse.config import PROJECT_ROOT
from lakehouse.errors import ConfigError

REGISTRY = PROJECT_ROOT / "conf" / "base" / "features" / "registry.yaml"
DTYPES = {"string": "string", "int": "int", "double": "double", "boolean": "boolean", "date": "date"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Entity(_Strict):
    name: str
    key: str
    description: str = ""


class Feature(_Strict):
    name: str
    dtype: Literal["string", "int", "double", "boolean", "date"]
    version: int = Field(default=1, ge=1)
    description: str
    expression: str | None = None  # Spark SQL over the view's source columns; default: the column itself
    tags: list[str] = Field(default_factory=list)
    owner: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"

    @property
    def sql(self) -> str:
        return self.expression or f"`{self.name}`"

    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.dtype}|{self.sql}".encode()).hexdigest()[:16]


class Source(_Strict):
    layer: str
    table: str


class FeatureView(_Strict):
    name: str = ""
    description: str = ""
    source: Source
    timestamp: str
    created: str | None = None  # when a row became known; default: the end of its timestamp's day
    ttl_days: int = Field(gt=0)
    owner: str
    features: list[Feature]

    @model_validator(mode="after")
    def _unique_versions(self) -> "FeatureView":
        seen = set()
        for f in self.features:
            if (f.name, f.version) in seen:
                raise ValueError(f"feature {f.ref} is declared twice")
            seen.add((f.name, f.version))
        return self

    def latest(self) -> list[Feature]:
        """The newest version of every feature name, in declaration order."""
        best: dict[str, Feature] = {}
        for f in self.features:
            if f.name not in best or f.version > best[f.name].version:
                best[f.name] = f
        return list(best.values())


class Registry(_Strict):
    entity: Entity
    feature_views: dict[str, FeatureView]

    @model_validator(mode="after")
    def _name_views(self) -> "Registry":
        for name, view in self.feature_views.items():
            object.__setattr__(view, "name", name)
        return self

    def view(self, name: str) -> FeatureView:
        if name not in self.feature_views:
            raise ConfigError(f"unknown feature view {name!r} (known: {', '.join(self.feature_views)})")
        return self.feature_views[name]

    def resolve(self, ref: str) -> tuple[FeatureView, Feature]:
        """``view:name``, ``view:name@vN`` or just ``name[@vN]`` (when unambiguous) -> (view, feature).

        Without a version the newest is meant.
        """
        view_name, _, rest = ref.rpartition(":")
        name, _, version = rest.partition("@")
        views = [self.view(view_name)] if view_name else list(self.feature_views.values())
        found = []
        for v in views:
            versions = [f for f in v.features if f.name == name]
            if version:
                want = int(version.lstrip("v")) if version.lstrip("v").isdigit() else -1
                versions = [f for f in versions if f.version == want]
            if versions:
                found.append((v, max(versions, key=lambda f: f.version)))
        if not found:
            raise ConfigError(f"unknown feature {ref!r}: `lakehouse features list` shows what exists")
        if len(found) > 1:
            raise ConfigError(f"feature {ref!r} is in several views ({', '.join(v.name for v, _ in found)}): "
                              "write view:name")
        return found[0]

    def all_features(self) -> list[tuple[FeatureView, Feature]]:
        return [(v, f) for v in self.feature_views.values() for f in v.features]

    def fingerprints(self) -> dict[str, str]:
        return {f"{v.name}:{f.ref}": f.fingerprint() for v, f in self.all_features()}


def lock_path(path: Path) -> Path:
    return path.with_suffix(".lock.json")


def load_registry(path: Path | None = None, check_lock: bool = True) -> Registry:
    path = path or REGISTRY
    try:
        reg = Registry.model_validate(yaml.safe_load(path.read_text()))
    except FileNotFoundError:
        raise ConfigError(f"feature registry {path} not found") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: invalid feature registry: {problems}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    lock = lock_path(path)
    if check_lock and lock.exists():
        locked = json.loads(lock.read_text())
        for ref, fp in reg.fingerprints().items():
            if ref in locked and locked[ref] != fp:
                raise ConfigError(
                    f"{path}: feature {ref} changed its definition but kept its version; add a new version "
                    f"(version: N+1) and keep the old one, then run `lakehouse features lock`")
    return reg


def write_lock(path: Path | None = None) -> tuple[Path, list[str]]:
    """Record fingerprints of versions not locked yet; locked ones are never rewritten."""
    path = path or REGISTRY
    reg = load_registry(path)
    lock = lock_path(path)
    locked = json.loads(lock.read_text()) if lock.exists() else {}
    added = [ref for ref in reg.fingerprints() if ref not in locked]
    locked.update({ref: fp for ref, fp in reg.fingerprints().items() if ref in added})
    lock.write_text(json.dumps(dict(sorted(locked.items())), indent=2) + "\n")
    return lock, added
