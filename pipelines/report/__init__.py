"""The run report: one self-contained HTML page per run (`html`), its pictures drawn as inline SVG
(`svg`): no script, no stylesheet or font to fetch, readable offline and without JavaScript."""

__all__ = ["history", "html", "svg"]  # public modules
