"""The base-model catalog, for pickers: name, languages, description, offline or not."""

from __future__ import annotations

from fastapi import APIRouter

from loraforge.api.deps import CurrentUser
from loraforge.api.errors import error_responses
from loraforge.api.schemas import CatalogModelPublic, CatalogPublic
from loraforge.models.catalog import catalog_listing

router = APIRouter(tags=["base models"])


@router.get(
    "/base-models",
    response_model=CatalogPublic,
    summary="The base-model catalog",
    responses=error_responses(401),
)
async def list_base_models(_user: CurrentUser) -> CatalogPublic:
    """Names usable as `model.base_model` in a training config, with their languages and
    whether the server can load each without the network.
    Any Hugging Face id or local folder works too. (Registered, fine-tuned models are
    under /models.)"""
    return CatalogPublic(data=[CatalogModelPublic(**row) for row in catalog_listing()])
