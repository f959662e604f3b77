"""The report: one self-contained HTML with every section, everything escaped, and a PDF.

One synthetic run set (tests/runfactory.py) is reported once per test run through the CLI;
the tests then read what it wrote. The set lives under a folder pair whose joined path reads
`<script>alert(1)</script>`, so every path the report prints is a would-be script.
"""

import html.parser
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pypdfium2
import pytest
import runfactory
from openloop_factory import compose, known_sequences, write_video
from typer.testing import CliRunner

from analysis import report
from cli import app

SCRIPT = "<script>alert(1)</script>"
SECTION_IDS = ["data-label", "setup", "aggregate", "curves", "mask", "openloop", "per-run", "problems"]
METHODS = ("baseline", "adapt", "placebo")
runner = CliRunner()


class Tags(html.parser.HTMLParser):
    """Collect start tags, to see what the browser would treat as markup."""

    def __init__(self):
        super().__init__()
        self.tags, self.ids = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.ids += [value for name, value in attrs if name == "id"]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    root = base / "<script>alert(1)<" / "script>"
    runfactory.write_study(root, seeds=3, frames=40_000, episodes=40, log_lines=20, methods=METHODS)
    truth, pred = known_sequences(3, 10)
    for run in sorted(root.glob("*/seed*")):
        write_video(run, compose(truth, pred, 5))
        if "adapt" in run.parent.name:
            with open(run / "config.yaml", "a") as f:
                f.write("agent:\n  imag_adapt:\n    enabled: true\n")
    with open(next(root.glob("*_baseline/seed1*")) / "scores.jsonl", "a") as f:
        f.write('{"step": 40001, "episode/sco')  # a run that died mid-write
    (root / "README.md").write_text(
        f"# Synthetic set\n\n**Synthetic runs** for tests, not results. {SCRIPT} "
        "<img src=x onerror=alert(2)> [link](https://example.com)\n\n"
        + "A long paragraph. " * 80
        + "\n\nTHE END OF THE README\n"
    )
    out = base / "out"
    result = runner.invoke(
        app, ["report", *(str(root / f"atari100k_alien_{m}") for m in METHODS), "--out", str(out), "--reps", "300"]
    )
    assert result.exit_code == 0, result.output
    return out, result.output


def test_html_has_every_section_and_embeds_everything(written):
    out, _ = written
    text = (out / "report.html").read_text()
    parser = Tags()
    parser.feed(text)
    assert set(SECTION_IDS) <= set(parser.ids)
    assert "script" not in parser.tags and "link" not in parser.tags
    assert not re.search(r'(src|href)="(https?:)?//', text)  # no network needed
    assert text.count("data:image/png;base64,") >= 8  # score figures, mask, open loop
    for heading in ("Aggregate scores", "Probability of improvement", "Per-run table", "Ingest problems"):
        assert heading in text


def test_names_from_disk_are_escaped(written):
    out, _ = written
    text = (out / "report.html").read_text()
    assert SCRIPT not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(2)&gt;" in text


def test_sections_show_the_data(written):
    out, _ = written
    text = (out / "report.html").read_text()
    assert "agent.imag_adapt.enabled" in text  # the config difference between the methods
    assert "torn" in text or "cut off" in text or "last line" in text  # the damaged scores file
    assert "observed frames" in text and "error vs horizon" in text
    for method in METHODS[1:]:  # open loop of every other method against the reference
        assert (out / "openloop" / f"baseline_vs_{method}" / "openloop.mp4").exists()
        assert f"{method} vs baseline: error vs horizon" in text
    assert all(f"<td>{m}</td>" in text for m in METHODS)  # the aggregate tables have every method
    assert "tables/aggregate.{tex,md,csv}" in text and (out / "tables" / "per_task.tex").is_file()
    assert text.count("power, ") == 2  # a seeds-needed statement per other method
    assert (out / "figures" / "aggregates.png").is_file() and (out / "figures" / "mask_vs_loss.pdf").is_file()


def test_data_label_is_the_nearest_readme_rendered_short(written):
    out, _ = written
    text = (out / "report.html").read_text()
    label = text[text.index('id="data-label"') : text.index('id="setup"')]
    assert "<strong>Synthetic runs</strong> for tests, not results" in label and "**" not in label
    assert "<h1>Synthetic set</h1>" in label
    assert "THE END OF THE README" not in label and "[...]" in label  # short: the opening only
    assert "https://example.com" not in label.split("[link]")[0] and 'href="https' not in label
    assert "dreamer-report" not in label  # the repository's own README is never a data label


def test_pdf_pages_render_and_every_character_lies_on_the_page(written):
    """The PDF renders (pypdfium2, a test dependency), its first page is not blank, and no text
    (the per-run table's last column included) runs past the page's right edge."""
    out, output = written
    pdf = pypdfium2.PdfDocument(str(out / "report.pdf"))
    assert len(pdf) == int(re.search(r"\((\d+) pages\)", output).group(1)) >= 3
    first = np.asarray(pdf[0].render(scale=0.5).to_pil().convert("L"))
    assert first.min() < 100 and first.max() > 200  # ink on paper
    for index in range(len(pdf)):
        page = pdf[index]
        width = page.get_width()
        text = page.get_textpage()
        rights = [text.get_charbox(i)[2] for i in range(text.count_chars())]
        assert not rights or max(rights) <= width, (index + 1, max(rights), width)
    assert "Per-run" in "".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))


def test_missing_label_is_a_visible_warning():

    nothing = SimpleNamespace(data=SimpleNamespace(runs=[]))
    data = report.ReportData("t", [("a", ["p"])], [report.label_section(nothing)])
    text = report.render_html(data)
    assert "WARNING: no README was found" in text


def test_config_differences_table():
    table = report.config_differences(
        {
            "baseline": [{"a": 1, "seed": 0, "b": "x"}, {"a": 1, "seed": 1, "b": "y"}],
            "adapt": [{"a": 2, "seed": 0, "b": "x"}],
        }
    )
    rows = {row[0]: row[1:] for row in table.rows}
    assert rows["a"] == ["1", "2"] and rows["b"] == ["x | y", "x"] and "seed" not in rows


def test_report_cli_missing_path_is_one_line_exit_2(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path / "nope"), str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and "nope" in result.output


def test_nearest_readme_is_the_run_sets_own_never_the_projects(tmp_path):

    artifacts = Path(__file__).parent.parent / "artifacts"
    run = next((artifacts / "atari100k_alien_adapt").glob("seed0_*"))
    assert report.nearest_readme(run) == (artifacts / "atari100k_alien_adapt" / "README.md").resolve()
    assert report.nearest_readme(Path(__file__).parent) is None  # tests/ -> the repository's README: no
