"""Every staff route, under /admin, and the two static files the pages use."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from web.admin import (
    ADMIN_DIR,
    api_key_pages,
    attention_pages,
    campaign_pages,
    contact_pages,
    editor_pages,
    editor_previews,
    import_pages,
    inbound_pages,
    login,
    overview_pages,
    previews,
    projection,
    review_pages,
    signup_form_pages,
    webhook_pages,
)
from web.admin.session import StaffNotFound

router = APIRouter(prefix="/admin", include_in_schema=False)
router.include_router(login.router)
router.include_router(overview_pages.router)  # the home page, /admin/
router.include_router(campaign_pages.router)
router.include_router(review_pages.router)
router.include_router(previews.router)
router.include_router(editor_pages.router)
router.include_router(editor_previews.router)
router.include_router(projection.router)
router.include_router(contact_pages.router)
router.include_router(import_pages.router)
router.include_router(attention_pages.router)
router.include_router(inbound_pages.router)
router.include_router(api_key_pages.router)
router.include_router(webhook_pages.router)
router.include_router(signup_form_pages.router)

STATIC = {
    "admin.css": "text/css",
    "admin.js": "text/javascript",
    "editor.css": "text/css",
    "editor.js": "text/javascript",
}


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC:
        raise StaffNotFound("not found")
    return FileResponse(
        ADMIN_DIR / "static" / name,
        media_type=STATIC[name],
        headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
