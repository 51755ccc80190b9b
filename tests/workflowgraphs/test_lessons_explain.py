"""The workflow room's side panel (``workflowgraphs/_explain.html``): the seed's definitions,
analogy and tools table, as a plain HTML fragment the page's CSP allows (no script, no inline
style or handler), every element closed."""
from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

EXPLAIN = (Path(__file__).resolve().parents[2] / "apps" / "workflowgraphs" / "templates" / "workflowgraphs"
           / "_explain.html")
VOID = {"br", "hr", "img", "wbr"}


class Fragment(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.problems: list[str] = []
        self.tools: list[str] = []  # the tools table's rows, by their header cell
        self._row_header = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.problems.append(f"<{tag}>")
        self.problems += [f"{tag} {name}=" for name, _ in attrs if name == "style" or name.startswith("on")]
        self._row_header = tag == "th" and ("scope", "row") in attrs
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:]}")
        else:
            self.open.pop()
        self._row_header = False

    def handle_data(self, data: str) -> None:
        if self._row_header and data.strip():
            self.tools.append(data.strip())


def parsed() -> tuple[Fragment, str]:
    text = EXPLAIN.read_text()
    fragment = Fragment()
    fragment.feed(text)
    return fragment, " ".join(text.split())


def test_the_panel_is_a_plain_fragment_the_csp_allows():
    fragment, _ = parsed()
    assert not fragment.problems and not fragment.open, (fragment.problems, fragment.open)


def test_the_panel_has_the_seeds_definitions_analogy_and_tools():
    fragment, text = parsed()
    assert "Orchestration is a central conductor managing everything" in text
    assert "Choreography is independent actors responding to shared events" in text
    assert "<dt>Orchestration</dt>" in text and "<dt>Choreography</dt>" in text
    assert fragment.tools == ["Apache Airflow", "Camunda", "Temporal", "Apache Kafka", "RabbitMQ", "NATS"]
    assert "What the picture shows" in text
