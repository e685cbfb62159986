"""imsmanifest.xml for both SCORM versions, parsed back with xml.etree; zip member safety."""

from __future__ import annotations

import io
import zipfile
from xml.etree import ElementTree as ET

import pytest

from appliance.scorm.manifest import NS_12, NS_2004, build_manifest
from appliance.scorm.package import PackageError, _zip, safe_name

FILES = ["index.html", "scorm.js", "package.js", "player/player.js", "assets/abc.png"]


def _parse(version: str) -> tuple[ET.Element, dict[str, str]]:
    raw = build_manifest(version=version, identifier="coassemble-course-7-static", title="Safety & <you>", files=FILES)
    assert raw.startswith(b"<?xml")
    ns = NS_12 if version == "1.2" else NS_2004
    return ET.fromstring(raw), {("cp" if k == "" else k): v for k, v in ns.items()}


def test_scorm12_manifest() -> None:
    root, ns = _parse("1.2")
    assert root.tag == "{http://www.imsproject.org/xsd/imscp_rootv1p1p2}manifest"
    assert root.get("identifier") == "coassemble-course-7-static"
    location = root.get("{http://www.w3.org/2001/XMLSchema-instance}schemaLocation") or ""
    for xsd in ("imscp_rootv1p1p2.xsd", "imsmd_rootv1p2p1.xsd", "adlcp_rootv1p2.xsd"):
        assert xsd in location
    assert root.findtext("cp:metadata/cp:schema", namespaces=ns) == "ADL SCORM"
    assert root.findtext("cp:metadata/cp:schemaversion", namespaces=ns) == "1.2"
    orgs = root.find("cp:organizations", ns)
    assert orgs is not None
    org = orgs.find(f"cp:organization[@identifier='{orgs.get('default')}']", ns)
    assert org is not None and org.findtext("cp:title", namespaces=ns) == "Safety & <you>"
    item = org.find("cp:item", ns)
    assert item is not None
    resource = root.find(f"cp:resources/cp:resource[@identifier='{item.get('identifierref')}']", ns)
    assert resource is not None
    assert resource.get("{http://www.adlnet.org/xsd/adlcp_rootv1p2}scormtype") == "sco"
    assert resource.get("type") == "webcontent" and resource.get("href") == "index.html"
    assert sorted(f.get("href") or "" for f in resource.findall("cp:file", ns)) == sorted(FILES)
    assert root.find(".//{http://www.imsglobal.org/xsd/imsss}sequencing") is None  # 2004 only


def test_scorm2004_manifest() -> None:
    root, ns = _parse("2004")
    assert root.tag == "{http://www.imsglobal.org/xsd/imscp_v1p1}manifest"
    location = root.get("{http://www.w3.org/2001/XMLSchema-instance}schemaLocation") or ""
    for xsd in ("imscp_v1p1.xsd", "adlcp_v1p3.xsd", "adlseq_v1p3.xsd", "adlnav_v1p3.xsd", "imsss_v1p0.xsd"):
        assert xsd in location
    assert root.findtext("cp:metadata/cp:schemaversion", namespaces=ns) == "2004 4th Edition"
    orgs = root.find("cp:organizations", ns)
    assert orgs is not None
    org = orgs.find(f"cp:organization[@identifier='{orgs.get('default')}']", ns)
    assert org is not None
    assert org.get(f"{{{ns['adlseq']}}}objectivesGlobalToSystem") == "false"
    item = org.find("cp:item", ns)
    assert item is not None
    controls = item.find("imsss:sequencing/imsss:deliveryControls", ns)
    assert controls is not None and controls.get("completionSetByContent") == "true"
    assert controls.get("objectiveSetByContent") == "true"
    resource = root.find(f"cp:resources/cp:resource[@identifier='{item.get('identifierref')}']", ns)
    assert resource is not None
    assert resource.get(f"{{{ns['adlcp']}}}scormType") == "sco"
    assert sorted(f.get("href") or "" for f in resource.findall("cp:file", ns)) == sorted(FILES)
    # element order the content-packaging schema requires
    assert [child.tag.split("}")[1] for child in root] == ["metadata", "organizations", "resources"]


def test_unknown_version_is_refused() -> None:
    with pytest.raises(ValueError):
        build_manifest(version="2004.3", identifier="x", title="x", files=[])


@pytest.mark.parametrize(
    "name", ["../evil.js", "/etc/passwd", "a/../../b", "C:/x.js", "a\\b.js", "a//b", "./a", "", "a/", ".hidden/../x"]
)
def test_unsafe_member_names_are_refused(name: str) -> None:
    with pytest.raises(PackageError):
        safe_name(name)
    with pytest.raises(PackageError):
        _zip({"index.html": b"x", name: b"y"})


def test_zip_is_deterministic_and_manifest_first() -> None:
    files = {"index.html": b"<p>", "imsmanifest.xml": b"<manifest/>", "player/player.js": b"x" * 1000}
    first, second = _zip(files), _zip(dict(reversed(list(files.items()))))
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert archive.namelist()[0] == "imsmanifest.xml"
        assert {i.date_time for i in archive.infolist()} == {(2000, 1, 1, 0, 0, 0)}
        assert archive.testzip() is None
