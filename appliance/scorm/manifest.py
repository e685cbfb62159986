"""`imsmanifest.xml` for SCORM 1.2 and SCORM 2004 4th edition: one organization, one item, one SCO
resource listing every file of the package."""

from __future__ import annotations

from xml.etree import ElementTree as ET

XSI = "http://www.w3.org/2001/XMLSchema-instance"

NS_12 = {
    "": "http://www.imsproject.org/xsd/imscp_rootv1p1p2",
    "adlcp": "http://www.adlnet.org/xsd/adlcp_rootv1p2",
    "xsi": XSI,
}
SCHEMAS_12 = (
    "http://www.imsproject.org/xsd/imscp_rootv1p1p2 imscp_rootv1p1p2.xsd "
    "http://www.imsglobal.org/xsd/imsmd_rootv1p2p1 imsmd_rootv1p2p1.xsd "
    "http://www.adlnet.org/xsd/adlcp_rootv1p2 adlcp_rootv1p2.xsd"
)

NS_2004 = {
    "": "http://www.imsglobal.org/xsd/imscp_v1p1",
    "adlcp": "http://www.adlnet.org/xsd/adlcp_v1p3",
    "adlseq": "http://www.adlnet.org/xsd/adlseq_v1p3",
    "adlnav": "http://www.adlnet.org/xsd/adlnav_v1p3",
    "imsss": "http://www.imsglobal.org/xsd/imsss",
    "xsi": XSI,
}
SCHEMAS_2004 = (
    "http://www.imsglobal.org/xsd/imscp_v1p1 imscp_v1p1.xsd "
    "http://www.adlnet.org/xsd/adlcp_v1p3 adlcp_v1p3.xsd "
    "http://www.adlnet.org/xsd/adlseq_v1p3 adlseq_v1p3.xsd "
    "http://www.adlnet.org/xsd/adlnav_v1p3 adlnav_v1p3.xsd "
    "http://www.imsglobal.org/xsd/imsss imsss_v1p0.xsd"
)
VERSIONS = ("1.2", "2004")


def _q(ns: dict[str, str], prefix: str, name: str) -> str:
    return f"{{{ns[prefix]}}}{name}"


def build_manifest(
    *, version: str, identifier: str, title: str, files: list[str], launch: str = "index.html"
) -> bytes:
    """The manifest document (UTF-8 bytes with an XML declaration). `files` are the package's paths."""
    if version not in VERSIONS:
        raise ValueError("version must be 1.2 or 2004")
    ns = NS_12 if version == "1.2" else NS_2004
    for prefix, uri in ns.items():
        ET.register_namespace(prefix, uri)

    manifest = ET.Element(
        _q(ns, "", "manifest"),
        {
            "identifier": identifier,
            "version": "1",
            _q(ns, "xsi", "schemaLocation"): SCHEMAS_12 if version == "1.2" else SCHEMAS_2004,
        },
    )
    metadata = ET.SubElement(manifest, _q(ns, "", "metadata"))
    ET.SubElement(metadata, _q(ns, "", "schema")).text = "ADL SCORM"
    ET.SubElement(metadata, _q(ns, "", "schemaversion")).text = "1.2" if version == "1.2" else "2004 4th Edition"

    organizations = ET.SubElement(manifest, _q(ns, "", "organizations"), {"default": "ORG-1"})
    org_attrs = {"identifier": "ORG-1"}
    if version == "2004":
        org_attrs[_q(ns, "adlseq", "objectivesGlobalToSystem")] = "false"
    organization = ET.SubElement(organizations, _q(ns, "", "organization"), org_attrs)
    ET.SubElement(organization, _q(ns, "", "title")).text = title
    item = ET.SubElement(
        organization, _q(ns, "", "item"), {"identifier": "ITEM-1", "identifierref": "RES-1", "isvisible": "true"}
    )
    ET.SubElement(item, _q(ns, "", "title")).text = title
    if version == "2004":
        # the SCO itself reports completion and success (it is the only activity)
        sequencing = ET.SubElement(item, _q(ns, "imsss", "sequencing"))
        ET.SubElement(
            sequencing,
            _q(ns, "imsss", "deliveryControls"),
            {"tracked": "true", "completionSetByContent": "true", "objectiveSetByContent": "true"},
        )
        org_sequencing = ET.SubElement(organization, _q(ns, "imsss", "sequencing"))
        ET.SubElement(org_sequencing, _q(ns, "imsss", "controlMode"), {"choice": "true", "flow": "true"})

    resources = ET.SubElement(manifest, _q(ns, "", "resources"))
    scorm_type = _q(ns, "adlcp", "scormtype" if version == "1.2" else "scormType")
    resource = ET.SubElement(
        resources,
        _q(ns, "", "resource"),
        {"identifier": "RES-1", "type": "webcontent", scorm_type: "sco", "href": launch},
    )
    for path in sorted(set(files)):
        ET.SubElement(resource, _q(ns, "", "file"), {"href": path})
    ET.indent(manifest)
    body: bytes = ET.tostring(manifest, encoding="utf-8", xml_declaration=True)
    return body
