"""Build a cmi5 package (a zip) for one published course: `cmi5.xml` and the learner player.

The player is the SCORM package's (appliance.scorm.package: the same files, the same static course,
answer key, assets and narration); the transport differs: `cmi5.js` with
`player/cmi5-transport.js` follows the cmi5 launch (the LMS puts `endpoint`, `fetch`, `actor`,
`registration` and `activityId` on the launch URL; the AU POSTs `fetch` for its auth token, reads
the `LMS.LaunchData` state and sends cmi5-defined statements to the LMS's LRS). Nothing in the
package talks to the appliance.

`cmi5.xml` is one course with one AU (docs/xapi.md, cmi5): `moveOn` CompletedAndPassed when the
course has a scored quiz, Completed otherwise; ids are IRIs under the appliance's public URL with
the workspace and environment in them (one course, one id, across exports).
"""

from __future__ import annotations

import json
import time
from typing import Any
from xml.etree import ElementTree as ET

import sqlite_utils

from appliance.courses import service as courses
from appliance.embeds import player
from appliance.scorm.package import (
    TEST_SECONDS,
    WEB_DIR,
    ClipReader,
    MediaReader,
    _slug,
    _zip,
    answer_key,
    extract_assets,
    extract_narration,
    extract_stored_media,
    player_files,
)

NS = "https://w3id.org/xapi/profiles/cmi5/v1/CourseStructure.xsd"


def course_iri(base_url: str, workspace_id: int, environment: str, course_id: int) -> str:
    return f"{base_url.rstrip('/')}/cmi5/{workspace_id}/{environment}/course/{course_id}"


def build_structure(*, course_id: str, title: str, description: str, scored: bool, language: str) -> bytes:
    """`cmi5.xml`: the course and its one AU, launched from `index.html` in the package."""
    ET.register_namespace("", NS)
    root = ET.Element(f"{{{NS}}}courseStructure")

    def text(parent: ET.Element, name: str, value: str) -> None:
        element = ET.SubElement(parent, f"{{{NS}}}{name}")
        ET.SubElement(element, f"{{{NS}}}langstring", {"lang": language}).text = value

    course = ET.SubElement(root, f"{{{NS}}}course", {"id": course_id})
    text(course, "title", title)
    text(course, "description", description)
    au = ET.SubElement(
        root,
        f"{{{NS}}}au",
        {"id": f"{course_id}/au", "moveOn": "CompletedAndPassed" if scored else "Completed", "launchMethod": "AnyWindow"},
    )
    text(au, "title", title)
    text(au, "description", description)
    ET.SubElement(au, f"{{{NS}}}url").text = "index.html"
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body


def launch_page() -> bytes:
    """The SCORM launch page with the cmi5 entry instead of the SCORM one."""
    page = (WEB_DIR / "scorm.html").read_text()
    page = page.replace('src="scorm.js"', 'src="cmi5.js"').replace("SCORM launch page", "cmi5 AU launch page")
    return page.encode()


def build_cmi5_package(
    db: sqlite_utils.Database,
    *,
    workspace_id: int,
    environment: str,
    course_id: int,
    base_url: str,
    now: float | None = None,
    clip: ClipReader | None = None,
    media: MediaReader | None = None,
) -> tuple[bytes, str]:
    """The zip and its file name. 404 for a deleted course, 409 for one never published. `clip` and
    `media` read narration clips and stored images as for a static SCORM package."""
    moment = int(time.time() if now is None else now)
    row = courses.get_row(db, course_id)
    course = player.course_for_player(db, course_id, None)  # 404 deleted, 409 unpublished
    content = player.published_content(row)
    files = {name: data for name, data in player_files().items() if name != "scorm.js"}
    files["index.html"] = launch_page()
    files["cmi5.js"] = (WEB_DIR / "cmi5.js").read_bytes()
    files.update(extract_assets(course))
    if media is not None:
        files.update(extract_stored_media(course, workspace_id, environment, media))
    if clip is not None:
        files.update(extract_narration(course, player.published_content(player.played_row(db, course_id, None)), clip))
    else:
        for screen in course.get("screens", []):
            screen["narration"] = None
    iri = course_iri(base_url, workspace_id, environment, course_id)
    config: dict[str, Any] = {
        "environment": environment,
        "course": course,
        "key": answer_key(content),
        "expires": moment + TEST_SECONDS if environment == "test" else None,
        "courseId": iri,
    }
    files["package.js"] = (
        "// Written by the appliance at export (docs/xapi.md, cmi5); read by cmi5.js.\nexport default "
        + json.dumps(config, ensure_ascii=True, sort_keys=True, indent=1)
        + ";\n"
    ).encode()
    scored = any(s.get("type") == "quiz" and s.get("scored", True) for s in content.get("screens", []))
    files["cmi5.xml"] = build_structure(
        course_id=iri,
        title=str(row["title"]),
        description=str(row["description"] or row["title"]),
        scored=scored,
        language=str(row["language"] or "en"),
    )
    return _zip(files), f"{_slug(str(row['title']))}-cmi5.zip"
