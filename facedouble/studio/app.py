"""The studio web app: thin routes over workspace, gallery and job modules, behind StudioGuard."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from facedouble.errors import FacedoubleError, InputError, PolicyError
from facedouble.studio import gallery, jobkinds
from facedouble.studio import training as training_logic
from facedouble.studio.jobs import JobRunner
from facedouble.studio.paths import inside
from facedouble.studio.routers import masks, merge, training, upload, verify
from facedouble.studio.security import LOOPBACK_HOSTS, MAX_BODY, MAX_UPLOAD, StudioGuard
from facedouble.studio.workspace import scan_workspace

STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class FaceNames(BaseModel):
    """A faceset and some of its faces, as listed by the gallery page API."""

    faceset: str
    names: list[str]


class JobRequest(BaseModel):
    """A job to start; only known kinds (facedouble.studio.jobkinds), never a free command line."""

    kind: str
    clip: str | None = None
    output: str | None = None
    every_nth: int | None = None
    src: str | None = None
    dst: str | None = None
    extra_dst: list[str] | None = None  # train: more dst facesets, one decoder each (multi-identity, DF presets)
    model: str | None = None
    preset: str | None = None
    options: dict | None = None
    faceset: str | None = None
    facesets: list[str] | None = None
    max_iters: int | None = None
    out: str | None = None
    overrides: str | None = None
    settings: dict | None = None


def _faceset(workspace: Path, rel: str) -> Path:
    folder = inside(workspace, rel)
    if not folder.is_dir():
        raise InputError(f"faceset folder not found: {rel}")
    return folder


def _face(workspace: Path, faceset: str, name: str) -> Path:
    path = gallery.face_file(_faceset(workspace, faceset), name)
    inside(workspace, path.relative_to(workspace).as_posix())  # a face symlinked to outside is refused
    return path


def create_app(workspace: Path, token: str, allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS,
               max_body: int = MAX_BODY, max_upload: int = MAX_UPLOAD, single_use: bool = True) -> StudioGuard:
    """The ASGI app for `workspace`, opened by the launch `token` (see facedouble.studio.security)."""
    workspace = Path(workspace).resolve()
    if not workspace.is_dir():
        raise InputError(f"workspace folder not found: {workspace}")
    runner = JobRunner(workspace)
    app = FastAPI(title="facedouble studio", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.workspace = workspace
    app.state.runner = runner
    app.state.static = STATIC
    for view in (masks, training, merge, verify, upload):
        app.include_router(view.router)

    @app.exception_handler(FacedoubleError)
    async def _user_error(request: Request, exc: FacedoubleError) -> JSONResponse:
        # a trust rule's refusal (consent, marks) is 403, like the CLI's distinct exit code
        code = 403 if isinstance(exc, PolicyError) else 404 if "not found" in str(exc) else 400
        return JSONResponse({"error": str(exc)}, status_code=code)

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/gallery")
    def gallery_page() -> FileResponse:
        return FileResponse(STATIC / "gallery.html")

    @app.get("/api/workspace")
    def api_workspace() -> dict:
        return {"workspace": str(workspace), **scan_workspace(workspace), "jobs": runner.list(),
                "model_dirs": training_logic.model_dirs(workspace, runner)}

    @app.get("/api/file")
    def api_file(path: str) -> FileResponse:
        real = inside(workspace, path)
        if not real.is_file():
            raise InputError(f"file not found: {path}")
        return FileResponse(real, media_type=mimetypes.guess_type(real.name)[0] or "application/octet-stream")

    @app.get("/api/faceset/page")
    def api_page(faceset: str, offset: int = 0, limit: int = 100, sort: str | None = None,
                 rejected: bool = False) -> dict:
        return gallery.page(_faceset(workspace, faceset), offset, limit, sort or None, rejected)

    @app.get("/api/faceset/thumb")
    def api_thumb(faceset: str, name: str, overlay: str | None = None, size: int = gallery.THUMB_SIZE) -> Response:
        layers = gallery.overlays_of(overlay)
        # overlays follow the labels and masks, which the mask editor and `mask apply` rewrite: revalidate them
        cache = "private, no-cache" if layers else "private, max-age=3600"
        return Response(gallery.thumbnail(workspace, _face(workspace, faceset, name), layers, size),
                        media_type="image/jpeg", headers={"Cache-Control": cache})

    @app.get("/api/faceset/info")
    def api_face_info(faceset: str, name: str) -> dict:
        return gallery.face_info(_face(workspace, faceset, name))

    @app.get("/api/faceset/source")
    def api_source_frame(faceset: str, name: str) -> Response:
        jpeg, info = gallery.source_frame(workspace, _face(workspace, faceset, name))
        return Response(jpeg, media_type="image/jpeg",
                        headers={"Cache-Control": "private, no-cache", "X-Clip": info["clip"],
                                 "X-Frame": str(info["frame"])})

    @app.get("/api/faceset/face")
    def api_face(faceset: str, name: str) -> FileResponse:
        return FileResponse(_face(workspace, faceset, name))

    @app.post("/api/faceset/reject")
    def api_reject(body: FaceNames) -> dict:
        return {"moved": gallery.reject(_faceset(workspace, body.faceset), body.names)}

    @app.post("/api/faceset/restore")
    def api_restore(body: FaceNames) -> dict:
        return {"moved": gallery.restore(_faceset(workspace, body.faceset), body.names)}

    @app.get("/api/jobs")
    def api_jobs() -> list[dict]:
        return runner.list()

    @app.get("/api/jobs/{job_id}")
    def api_job(job_id: str) -> dict:
        return runner.get(job_id)

    @app.get("/api/jobs/{job_id}/log")
    def api_job_log(job_id: str) -> Response:
        return Response(runner.log(job_id), media_type="text/plain; charset=utf-8")

    @app.post("/api/jobs")
    def api_start(body: JobRequest) -> dict:
        kind, args, options = jobkinds.build(workspace, body.model_dump(exclude_none=True))
        return runner.start(kind, args, **options)

    @app.post("/api/jobs/{job_id}/cancel")
    def api_cancel(job_id: str) -> dict:
        return runner.cancel(job_id)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return StudioGuard(app, token, allowed_hosts, max_body, max_upload, single_use)
