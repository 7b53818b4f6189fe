"""The worker's query API (``/v1``), its OpenAPI document and the live page (``/``)."""

from streams.api.openapi import openapi_document
from streams.api.page import page_handler
from streams.api.routes import MAX_BODY, QueryState, build_api

__all__ = ["MAX_BODY", "QueryState", "build_api", "openapi_document", "page_handler"]
