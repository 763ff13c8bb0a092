"""Render ``dvc plots show`` in headless Chromium, take a screenshot, and check the plots drew data.

    python scripts/check_plots.py [--vega-dir node_modules] [--out dvc_plots_check]

Run it from the repository root after ``dvc repro`` (not a CI test: it needs Chromium,
``apt-get install chromium``). Steps:

1. ``dvc plots show -o OUT/html`` writes the page a user opens.
2. A copy, ``OUT/html/check.html``, asks vega-embed for SVG instead of a canvas, so the
   rendered page's DOM holds every mark with its data in an ``aria-label``; with
   ``--vega-dir`` (a ``node_modules`` holding vega, vega-lite and vega-embed, e.g. from
   ``npm install vega@5 vega-lite@5 vega-embed@6``) the copy loads those instead of the CDN,
   so the check works offline.
3. Chromium renders the copy (``--dump-dom``) and screenshots it (``OUT/plots.png``).
4. For each top-level plot of ``dvc.yaml`` the drawn marks are compared with the file it plots,
   read here independently: a line chart needs one line per ``y`` field with one vertex per
   row; a bar chart one bar per row whose label carries the row's value, and bar lengths
   proportional to the values (one scale). The screenshot must not be blank.

Prints one line per plot and exits 1 when any plot is empty or wrong.
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from PIL import Image

CDN_SCRIPT = re.compile(r'<script src="https://cdn\.jsdelivr\.net/npm/(vega|vega-lite|vega-embed)'
                        r'@[\d.]+"></script>')
EMBED_CALL = re.compile(r"vegaEmbed\('(#[^']+)', spec\)")
MARK_PATH = re.compile(r'<path aria-label="([^"]*)" role="graphics-symbol" '
                       r'aria-roledescription="(line mark|bar)" d="([^"]*)"')


@dataclass(frozen=True)
class PlotDef:
    """One top-level ``plots:`` entry of dvc.yaml.

    Attributes:
        title: The plot id (DVC's title).
        template: DVC template name (``linear``, ``bar_horizontal`` ...).
        file: The data file.
        x: The x field. y: The y fields.
    """

    title: str
    template: str
    file: Path
    x: str
    y: tuple[str, ...]

    @property
    def div_id(self) -> str:
        """The HTML element id DVC gives the plot."""
        return re.sub(r"[^a-zA-Z0-9]", "_", self.title)

    @property
    def is_bar(self) -> bool:
        return self.template.startswith("bar")


def plot_definitions(dvc_yaml: Path) -> list[PlotDef]:
    """The top-level plots of ``dvc_yaml`` that name one data file in a ``y`` mapping."""
    plots = yaml.safe_load(dvc_yaml.read_text()).get("plots", [])
    out = []
    for entry in plots:
        if not isinstance(entry, dict):
            continue
        (title, spec), = entry.items()
        if not isinstance(spec, dict) or not isinstance(spec.get("y"), dict):
            continue
        (file, fields), = spec["y"].items()
        fields = (fields,) if isinstance(fields, str) else tuple(fields)
        out.append(PlotDef(title, spec.get("template", "linear"), Path(file), spec["x"], fields))
    return out


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def localize(html: str, vega_dir: Path | None, html_dir: Path) -> str:
    """The page with SVG rendering and, given ``vega_dir``, local copies of the vega scripts."""
    html = EMBED_CALL.sub(r"vegaEmbed('\1', spec, {renderer: 'svg', actions: false})", html)
    if vega_dir is None:
        return html

    def local(match: re.Match[str]) -> str:
        name = match.group(1)
        source = vega_dir / name / "build" / f"{name}.min.js"
        if not source.exists():
            sys.exit(f"check_plots: {source} not found (npm install {name} in {vega_dir.parent})")
        shutil.copy(source, html_dir / source.name)
        return f'<script src="{source.name}"></script>'

    return CDN_SCRIPT.sub(local, html)


def chromium(binary: str, url: str, *args: str) -> str:
    """Run headless Chromium on ``url`` and return its stdout (its stderr is D-Bus noise)."""
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--virtual-time-budget=20000", *args, url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    if result.returncode != 0:
        sys.exit(f"check_plots: chromium failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return result.stdout


def div_segments(dom: str, ids: list[str]) -> dict[str, str]:
    """The DOM text of each plot's ``<div id=...>`` (up to the next plot's)."""
    starts = {i: dom.find(f'id="{i}"') for i in ids}
    order = sorted((s, i) for i, s in starts.items() if s >= 0)
    return {i: dom[s:(order[k + 1][0] if k + 1 < len(order) else len(dom))]
            for k, (s, i) in enumerate(order)}


def _labels(aria: str) -> dict[str, str]:
    return dict(part.split(": ", 1) for part in aria.split("; ") if ": " in part)


def check_plot(plot: PlotDef, svg: str | None, rows: list[dict[str, str]]) -> tuple[bool, str]:
    """Compare one plot's drawn marks with its data rows; returns (ok, one-line verdict)."""
    if svg is None:
        return False, "no such plot on the page"
    if not rows:
        return False, f"{plot.file} has no rows"
    marks = [(_labels(a), kind, d) for a, kind, d in MARK_PATH.findall(svg)]
    if plot.is_bar:
        bars = [(lab, d) for lab, kind, d in marks if kind == "bar"]
        field, category = plot.x, plot.y[0]
        want = {r[category]: float(r[field]) for r in rows}
        got = {lab.get(category): float(lab.get(field, "nan")) for lab, _ in bars}
        if set(got) != set(want):
            return False, f"bars for {sorted(got)}, rows for {sorted(want)}"
        bad = [k for k in want if abs(got[k] - want[k]) > 1e-9 * max(1.0, abs(want[k]))]
        if bad:
            return False, f"bar values differ from {plot.file} for {bad}"
        lengths = {lab[category]: float(re.match(r"M[-\d.e]+,[-\d.e]+h([-\d.e]+)", d).group(1))
                   for lab, d in bars}
        scale = [lengths[k] / want[k] for k in want if want[k] != 0]
        zero_drawn = [k for k in want if want[k] == 0 and abs(lengths[k]) > 1e-6]
        if zero_drawn or (scale and max(scale) - min(scale) > 1e-6 * abs(max(scale))):
            return False, "bar lengths are not proportional to the values"
        return True, (f"{len(bars)} bars = {len(rows)} rows of {plot.file}, values equal, "
                      f"lengths on one scale ({min(want.values()):.3g}..{max(want.values()):.3g})")
    lines = {lab.get("field"): d for lab, kind, d in marks if kind == "line mark"}
    missing = [f for f in plot.y if f not in lines]
    if missing:
        return False, f"no line for {missing}"
    vertices = {f: lines[f].count("L") + 1 for f in plot.y}
    short = {f: n for f, n in vertices.items() if n != len(rows)}
    if short:
        return False, f"line vertices {short}, {len(rows)} rows in {plot.file}"
    return True, f"{len(plot.y)} lines x {len(rows)} points = {plot.file} ({', '.join(plot.y)})"


def ink_fraction(png: Path) -> float:
    """Share of the screenshot's pixels that are not (near-)white."""
    image = Image.open(png).convert("L")
    dark = sum(n for value, n in enumerate(image.histogram()) if value < 245)
    return dark / (image.width * image.height)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("dvc_plots_check"),
                        help="where the page, the DOM dump and the screenshot go")
    parser.add_argument("--vega-dir", type=Path, default=None,
                        help="node_modules with vega, vega-lite, vega-embed (default: the "
                             "CDN, which needs network)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--size", default="1100,1600", help="window WIDTH,HEIGHT [px]")
    args = parser.parse_args(argv)

    html_dir = args.out / "html"
    shutil.rmtree(html_dir, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)  # dvc creates only the last folder
    shown = subprocess.run(["dvc", "plots", "show", "-o", str(html_dir)],
                           capture_output=True, text=True)
    if shown.returncode != 0:
        sys.exit(f"check_plots: dvc plots show failed:\n{shown.stdout}{shown.stderr}")
    page = html_dir / "check.html"
    page.write_text(localize((html_dir / "index.html").read_text(), args.vega_dir, html_dir))
    url = page.resolve().as_uri()
    dom = chromium(args.chromium, url, "--dump-dom")
    (args.out / "dom.html").write_text(dom)
    png = args.out / "plots.png"
    chromium(args.chromium, url, f"--window-size={args.size}", f"--screenshot={png.resolve()}")

    plots = plot_definitions(Path("dvc.yaml"))
    segments = div_segments(dom, [p.div_id for p in plots])
    failures = 0
    for plot in plots:
        ok, verdict = check_plot(plot, segments.get(plot.div_id), read_rows(plot.file))
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {plot.title}: {verdict}")
    ink = ink_fraction(png)
    print(f"{'ok  ' if ink > 0.02 else 'FAIL'} screenshot {png}: {100 * ink:.1f} % of pixels "
          "drawn")
    failures += ink <= 0.02
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
