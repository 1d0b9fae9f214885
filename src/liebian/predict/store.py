"""The model store: files in DATA_DIR/models/<kind>/<id>/ and one JSON manifest listing them all.

Each entry records what the model is (kind, parameters), what it was fitted on (the data snapshot)
and how good it is (metrics). Artefacts that are not plain JSON (a fitted scikit-learn model) are
pickled beside the entry; they are only ever loaded from this private data directory.
"""

from __future__ import annotations

import json
import os
import pickle
import uuid
from pathlib import Path
from typing import Any

from liebian.config import get_settings
from liebian.db.base import utcnow
from liebian.predict.common import PredictError, jsonable


def models_dir() -> Path:
    return get_settings().data_dir / "models"


def manifest_path() -> Path:
    return models_dir() / "manifest.json"


def _read_manifest() -> list[dict]:
    path = manifest_path()
    if not path.exists():
        return []
    return json.loads(path.read_text(encoding="utf-8"))


def _write_manifest(entries: list[dict]) -> None:
    path = manifest_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader never sees half a manifest


def save_model(
    kind: str,
    params: dict,
    metrics: dict,
    snapshot: dict,
    artefact: Any | None = None,
) -> dict:
    """Store one fitted model; returns its manifest entry."""
    model_id = f"{kind}-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    folder = models_dir() / kind / model_id
    folder.mkdir(parents=True, exist_ok=True)
    entry = {
        "id": model_id,
        "kind": kind,
        "created_at": utcnow().isoformat(),
        "params": jsonable(params),
        "metrics": jsonable(metrics),
        "snapshot": snapshot,
        "path": str(folder.relative_to(models_dir())),
        "artefact": None,
    }
    if artefact is not None:
        (folder / "model.pkl").write_bytes(pickle.dumps(artefact))
        entry["artefact"] = "model.pkl"
    (folder / "entry.json").write_text(json.dumps(entry, ensure_ascii=False, indent=2), encoding="utf-8")
    entries = _read_manifest()
    entries.append(entry)
    _write_manifest(entries)
    return entry


def list_models(kind: str | None = None) -> list[dict]:
    return [e for e in _read_manifest() if kind is None or e["kind"] == kind]


def get_model(model_id: str | None = None, kind: str | None = None) -> dict:
    """One entry by id, or the newest of a kind."""
    entries = list_models(kind)
    if model_id is not None:
        entries = [e for e in entries if e["id"] == model_id]
    if not entries:
        what = f"model {model_id!r}" if model_id else f"a stored {kind} model"
        raise PredictError(f"{what} not found in {manifest_path()}; fit one first")
    return entries[-1]


def load_artefact(entry: dict) -> Any:
    if not entry.get("artefact"):
        raise PredictError(f"model {entry['id']} has no stored artefact")
    return pickle.loads((models_dir() / entry["path"] / entry["artefact"]).read_bytes())
