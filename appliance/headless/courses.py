"""Courses: list, get, soft delete, restore, duplicate, publish, revert,
content manifest. Thin handlers over appliance.courses.service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import sqlite_utils
from litestar import Controller, Request, Response, delete, get, post
from litestar.params import QueryParameter

from appliance.ai import narration
from appliance.courses import service
from appliance.embeds.sessions import signer_of
from appliance.errors import ApiError
from appliance.headless.common import check_owner, page_window
from appliance.headless.deps import provide_principal, provide_runtime, require_entitlement, set_target
from appliance.images.service import stored_file
from appliance.learners.identities import ensure_identity
from appliance.runtime import Runtime
from appliance.scorm import cmi5
from appliance.scorm import package as scorm
from appliance.scorm.manifest import VERSIONS
from appliance.server import public
from appliance.storage.database import Database, fetch_all

Identifier = Annotated[str | None, QueryParameter(name="identifier")]
ClientIdentifier = Annotated[str | None, QueryParameter(name="clientIdentifier")]


class DuplicateInput(msgspec.Struct):
    identifier: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | None = None
    clientIdentifier: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | None = None


def _owned(
    db: sqlite_utils.Database, course_id: int, identifier: str | None, client: str | None
) -> dict[str, Any]:
    row = service.get_row(db, course_id)
    check_owner(row, "Course", identifier, client)
    return row


@dataclass
class _PackageSource:
    """What a package export (SCORM, cmi5) reads: the caller's own, live, untranslated course (404
    otherwise; the `scorm` entitlement covers every package), its narration clips and stored media."""

    reader: sqlite_utils.Database
    runtime: Runtime
    workspace_id: int
    environment: str

    @classmethod
    def of(cls, request: Request[Any, Any, Any], db: Database, course_id: int, identifier: str | None,
           client_identifier: str | None) -> _PackageSource:
        set_target(request, f"course:{course_id}")
        require_entitlement(request, "scorm")
        reader = db.read()
        row = _owned(reader, course_id, identifier, client_identifier)
        if row["deleted"] is not None or row["translation_of"] is not None:
            raise ApiError(404, "Course not found")
        principal = provide_principal(request)
        return cls(reader, provide_runtime(request), principal.workspace_id, principal.environment)

    def clip(self, content: dict[str, Any], screen_id: int) -> bytes:
        return narration.screen_clip(self.runtime, self.workspace_id, self.environment, content, screen_id)

    def media(self, object_id: str, _extension: str) -> bytes:
        return stored_file(self.runtime, self.workspace_id, self.environment, object_id)


class CoursesController(Controller):
    tags = ["Courses"]

    @get("/courses", summary="List courses", sync_to_thread=False)
    def list_courses(
        self,
        db: Database,
        identifier: Identifier = None,
        client_identifier: ClientIdentifier = None,
        title: str | None = None,
        deleted: bool = False,
        page: int = 0,
        length: int = 100,
    ) -> list[dict[str, Any]]:
        limit, offset = page_window(page, length)
        where = ["deleted IS NOT NULL" if deleted else "deleted IS NULL", "translation_of IS NULL"]
        params: list[Any] = []
        if identifier is not None:
            where.append("identifier = ?")
            params.append(identifier)
        if client_identifier is not None:
            where.append("client_identifier = ?")
            params.append(client_identifier)
        if title:
            where.append("instr(lower(title), lower(?)) > 0")
            params.append(title)
        reader = db.read()
        rows = fetch_all(
            reader,
            f"SELECT * FROM courses WHERE {' AND '.join(where)} ORDER BY id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [service.to_wire(reader, r) for r in rows]

    @get("/courses/{course_id:int}", summary="Get one course", sync_to_thread=False)
    def get_course(
        self,
        request: Request[Any, Any, Any],
        db: Database,
        course_id: int,
        identifier: Identifier = None,
        client_identifier: ClientIdentifier = None,
    ) -> dict[str, Any]:
        # identifier/clientIdentifier name the caller, not a filter: Coassemble's Moodle plugin opens
        # other teachers' and library courses this way and breaks on a 404 (lists still filter)
        set_target(request, f"course:{course_id}")
        reader = db.read()
        return service.to_wire(reader, service.get_row(reader, course_id))

    @delete("/course/{course_id:int}", summary="Soft-delete a course", status_code=200)
    async def delete_course(
        self,
        request: Request[Any, Any, Any],
        db: Database,
        course_id: int,
        identifier: Identifier = None,
        client_identifier: ClientIdentifier = None,
    ) -> dict[str, Any]:
        set_target(request, f"course:{course_id}")

        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            _owned(w, course_id, identifier, client_identifier)
            service.soft_delete(w, course_id)
            return service.wire(w, course_id)

        return await db.awrite(job)

    @post("/course/{course_id:int}/restore", summary="Restore a soft-deleted course", status_code=200)
    async def restore_course(
        self,
        request: Request[Any, Any, Any],
        db: Database,
        course_id: int,
        identifier: Identifier = None,
        client_identifier: ClientIdentifier = None,
    ) -> dict[str, Any]:
        set_target(request, f"course:{course_id}")

        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            _owned(w, course_id, identifier, client_identifier)
            service.restore(w, course_id)
            return service.wire(w, course_id)

        return await db.awrite(job)

    @post("/course/{course_id:int}/duplicate", summary="Duplicate a course", status_code=200)
    async def duplicate_course(
        self,
        request: Request[Any, Any, Any],
        db: Database,
        course_id: int,
        data: DuplicateInput | None = None,
    ) -> dict[str, Any]:
        set_target(request, f"course:{course_id}")
        body = data or DuplicateInput()

        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            new_id = service.duplicate(w, course_id, body.identifier, body.clientIdentifier)
            # like every route that names an owner, duplication creates the user and client
            ensure_identity(w, body.identifier, body.clientIdentifier)
            return service.wire(w, new_id)

        return await db.awrite(job)

    @post("/course/{course_id:int}/publish", summary="Publish the current draft", status_code=200)
    async def publish_course(
        self, request: Request[Any, Any, Any], db: Database, course_id: int
    ) -> dict[str, Any]:
        set_target(request, f"course:{course_id}")
        require_entitlement(request, "api_authoring")

        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            service.publish(w, course_id)
            return service.wire(w, course_id)

        return await db.awrite(job)

    @post(
        "/course/{course_id:int}/revert", summary="Revert the draft to the published version", status_code=200
    )
    async def revert_course(
        self, request: Request[Any, Any, Any], db: Database, course_id: int
    ) -> dict[str, Any]:
        set_target(request, f"course:{course_id}")
        require_entitlement(request, "api_authoring")

        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            service.revert(w, course_id)
            return service.wire(w, course_id)

        return await db.awrite(job)

    @get("/course/content/{course_id:int}", summary="Course content manifest", sync_to_thread=False)
    def course_content(self, request: Request[Any, Any, Any], db: Database, course_id: int) -> dict[str, Any]:
        set_target(request, f"course:{course_id}")
        return service.content_manifest(db.read(), course_id)

    @get(
        "/course/scorm/{course_id:int}",
        summary="Export a SCORM package",
        description="A zip (application/zip): `type` dynamic (default) or static, `version` 1.2 or 2004 "
        "(default). Test packages expire 30 days after export. See docs/scorm.md.",
        sync_to_thread=True,
        media_type="application/zip",
    )
    def course_scorm(
        self,
        request: Request[Any, Any, Any],
        db: Database,
        course_id: int,
        kind: Annotated[str, QueryParameter(name="type")] = "dynamic",
        version: str = "2004",
        identifier: Identifier = None,
        client_identifier: ClientIdentifier = None,
    ) -> Response[bytes]:
        package = _PackageSource.of(request, db, course_id, identifier, client_identifier)
        if kind not in scorm.KINDS:
            raise ApiError(422, "type must be dynamic or static")
        if version not in VERSIONS:
            raise ApiError(422, "version must be 1.2 or 2004")
        body, filename = scorm.build_package(
            package.reader,
            signer_of(package.runtime),
            workspace_id=package.workspace_id,
            environment=package.environment,
            course_id=course_id,
            kind=kind,
            version=version,
            base_url=public.base_url(request),
            clip=package.clip,
            media=package.media,
        )
        return Response(
            body,
            media_type="application/zip",
            headers={"content-disposition": f'attachment; filename="{filename}"'},
        )

    @get(
        "/course/cmi5/{course_id:int}",
        summary="Export a cmi5 package",
        description="A zip (application/zip): `cmi5.xml` (one course, one AU) and the learner player, which "
        "a cmi5 LMS launches (fetch URL, auth token) and which sends its statements to the LMS's LRS. "
        "Test packages expire 30 days after export. See docs/xapi.md.",
        sync_to_thread=True,
        media_type="application/zip",
    )
    def course_cmi5(
        self,
        request: Request[Any, Any, Any],
        db: Database,
        course_id: int,
        identifier: Identifier = None,
        client_identifier: ClientIdentifier = None,
    ) -> Response[bytes]:
        package = _PackageSource.of(request, db, course_id, identifier, client_identifier)
        body, filename = cmi5.build_cmi5_package(
            package.reader,
            workspace_id=package.workspace_id,
            environment=package.environment,
            course_id=course_id,
            base_url=public.base_url(request),
            clip=package.clip,
            media=package.media,
        )
        return Response(
            body,
            media_type="application/zip",
            headers={"content-disposition": f'attachment; filename="{filename}"'},
        )
