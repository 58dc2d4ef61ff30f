"""The base-model catalog, for pickers: name, language, description."""

from __future__ import annotations

from fastapi import APIRouter

from loraforge.api.deps import CurrentUser
from loraforge.api.schemas import CatalogModelPublic, CatalogPublic
from loraforge.models.catalog import CATALOG

router = APIRouter(tags=["models"])


@router.get("/models", response_model=CatalogPublic)
async def list_models(_user: CurrentUser) -> CatalogPublic:
    return CatalogPublic(
        data=[
            CatalogModelPublic(
                name=entry.name,
                language=entry.language,
                description=entry.description,
                bundled=entry.source == "bundled",
            )
            for entry in CATALOG.values()
        ]
    )
