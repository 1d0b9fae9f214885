"""The base of response models whose further fields pass through unchanged.

A FastAPI `response_model` filters a response down to its declared fields. Analyses and views carry
fields per query (breakdown columns, per-model metrics), and the console reads them: these models
declare and check the fields every answer has, and keep the rest (`additionalProperties` in OpenAPI).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")
