"""Build the offline illustration library (appliance/images/tabler/) from an unpacked npm package of
@tabler/icons (MIT). Run at development time only, never at run time (no Node on the appliance):

    cd /tmp && npm pack @tabler/icons@<version> && tar xzf tabler-icons-<version>.tgz
    python build/vendor-illustrations.py /tmp/package

It writes icons.json: every outline icon (the "-off" variants, a struck-through icon, are left out:
they illustrate nothing) as [name, category, tags, drawing], the drawing being the SVG elements inside
the icon's 24x24 <svg> without the invisible bounding-box path; plus the package's LICENSE.
appliance.images.library indexes it by name and tags.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "appliance" / "images" / "tabler"
BOX = re.compile(r'<path stroke="none" d="M0 0h24v24H0z" fill="none"\s*/>')


def main(package: Path) -> None:
    version = json.loads((package / "package.json").read_text())["version"]
    meta = json.loads((package / "icons.json").read_text())
    icons = []
    for name in sorted(meta):
        entry = meta[name]
        svg_path = package / "icons" / "outline" / f"{name}.svg"
        if name.endswith("-off") or "outline" not in entry.get("styles", {}) or not svg_path.exists():
            continue
        inner = re.search(r"<svg[^>]*>(.*)</svg>", svg_path.read_text(), re.S)
        assert inner, name
        drawing = " ".join(BOX.sub("", inner.group(1)).split())
        tags = " ".join(sorted({str(t).lower() for t in entry.get("tags", [])}))
        icons.append([name, str(entry.get("category") or ""), tags, drawing])
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "LICENSE").write_text((package / "LICENSE").read_text())
    document = {"source": "@tabler/icons", "version": version, "licence": "MIT", "icons": icons}
    (OUT / "icons.json").write_text(json.dumps(document, separators=(",", ":"), ensure_ascii=False) + "\n")
    print(f"{len(icons)} icons, {(OUT / 'icons.json').stat().st_size} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
