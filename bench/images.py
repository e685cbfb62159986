"""Images benchmark (docs/images.md): illustrate a 10-screen course.

* offline, the library path: the on-box model's keywords (default: the manifest's default model, if
  its file is in models/, else the small test model; `--model` names another), the ranking, the
  composed SVG, the upload rule, encryption and the usage row; time and bytes per image. The same
  without a model (the title's words choose) shows what the model's call costs.
* with a remote engine: the tests' stand-in engine (tests/images/engine_server.py, a local HTTP
  server answering a 512 x 512 PNG of noise, about 790 KB), no model: the appliance's overhead over
  the engine's own time (request to last byte) per image: the checks, the upload rule, encryption,
  storage and the usage row.

Results go to bench/results-images-<date>.json (with date, CPU, nproc and load average).

    .venv/bin/python bench/images.py [--model NAME] [--screens 10] [--no-model]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.ai.models import REPO_MODELS_DIR, default_model_name, get_spec
from appliance.config import ImageSettings, RemoteEngine
from appliance.images.service import Illustration, illustrate
from appliance.runtime import Runtime, initialise
from bench.documents import machine
from tests.images.engine_server import engine_server, url

COURSE = [
    ("Why fire safety matters", "Fires at work injure people and stop the business. Most can be prevented."),
    ("Common causes of fire", "Faulty wiring, overloaded sockets, heaters near paper, and careless smoking."),
    ("Smoke alarms", "Test the alarms every week and never cover a detector."),
    ("Raising the alarm", "Break the glass of the nearest call point and shout 'Fire!'."),
    ("Fire extinguishers", "Water for paper and wood, CO2 for electrical fires, foam for liquids."),
    ("Escape routes", "Keep exits and corridors clear; know two ways out of every room."),
    ("Assembly point", "Walk to the assembly point and wait to be counted. Never go back inside."),
    ("Helping others", "Guide visitors and colleagues who need help, as your plan says."),
    ("Fire doors", "Keep fire doors closed: they hold back smoke and flames for 30 minutes."),
    ("Your checklist", "Know the exits, the call points, the extinguishers and the assembly point."),
]


def default_model() -> str:
    """The manifest's default model if its file is in models/, else the small test model."""
    for name in (default_model_name(REPO_MODELS_DIR), default_model_name(REPO_MODELS_DIR, test=True)):
        if get_spec(name, REPO_MODELS_DIR).path(REPO_MODELS_DIR).is_file():
            return name
    raise SystemExit("no model file in models/: run models/install.py")


def run(runtime: Runtime, workspace: int, screens: int, engine: Any) -> list[Illustration]:
    made = []
    for title, text in COURSE[:screens]:
        made.append(illustrate(runtime, workspace_id=workspace, environment="test", subject=("client", "bench"),
                               title=title, text=text, theme=None, purpose="screen", client_identifier="bench",
                               engine=engine))
    return made


def summary(images: list[Illustration]) -> dict[str, Any]:
    seconds = [i.seconds for i in images]
    return {"images": len(images), "seconds_median": round(statistics.median(seconds), 3),
            "seconds_min": round(min(seconds), 3), "seconds_max": round(max(seconds), 3),
            "seconds_total": round(sum(seconds), 3), "bytes_median": int(statistics.median(i.bytes for i in images)),
            "sources": sorted({i.source for i in images})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--screens", type=int, default=10)
    parser.add_argument("--no-model", action="store_true")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    results: dict[str, Any] = {**machine(), "screens": args.screens}
    with tempfile.TemporaryDirectory() as tmp:
        runtime, _new = initialise(Path(tmp) / "data")
        try:
            workspace = runtime.create_workspace("bench")
            results["library_no_model"] = summary(run(runtime, workspace, args.screens, None))
            if not args.no_model:
                from appliance.ai.local import LocalEngine

                name = args.model or default_model()
                engine = LocalEngine(name, models_dir=REPO_MODELS_DIR, n_threads=args.threads)
                try:
                    assert engine.wait_ready(300).value == "ready", engine.info()
                    made = run(runtime, workspace, args.screens, engine)
                finally:
                    engine.close()
                results["library_with_model"] = {"model": name, **summary(made),
                                                 "alts": [i.alt for i in made], "keywords": [i.keywords for i in made]}
            with engine_server() as server:
                runtime.settings.images = ImageSettings(engines=[RemoteEngine(url=url(server, "noise"), name="stand-in")])
                made = run(runtime, workspace, args.screens, None)
            overhead = [i.seconds - i.engine_seconds for i in made]
            results["remote_engine"] = {
                **summary(made), "engine_seconds_median": round(statistics.median(i.engine_seconds for i in made), 3),
                "overhead_seconds_median": round(statistics.median(overhead), 3),
                "overhead_seconds_max": round(max(overhead), 3),
            }
        finally:
            runtime.close()
    out = Path(args.out or f"bench/results-images-{results['date'][:10]}.json")
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
