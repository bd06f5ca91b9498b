"""`jupyter nbconvert --to featurelab_blog notebook.ipynb`: the blog draft of a recorded
notebook, the same Markdown (and pictures) as `lab.export_blog(path, notebook=...)`.

The exporter finds the notebook's lab in its code (`fl.Lab("name", root=...)`), opens
it beside the notebook, or runs the notebook's code cells first when the lab has no
store yet (only if the notebook is trusted or `--BlogExporter.execute=True`
says so), and writes the draft with the markdown cells as the researcher's notes.
Registered as the "featurelab_blog" entry point in pyproject.toml; nbconvert is needed
only here, so featurelab itself does not depend on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nbconvert.exporters import Exporter
from traitlets import Bool, Unicode

from featurelab.export.blog import DETAILS, build_document
from featurelab.export.markdown import render_markdown
from featurelab.export.notebook import open_notebook_lab


class BlogExporter(Exporter):
    """Writes a featurelab session's blog draft (Markdown, pictures beside it)."""

    export_from_notebook = "featurelab blog draft"
    output_mimetype = "text/markdown"
    detail = Unicode("full", help="full: every event (like the reference post); condensed: "
                     "consecutive view events merged").tag(config=True)
    title = Unicode("", help="the post's title (default: the notebook's # heading, or the "
                    "lab's name)").tag(config=True)
    execute = Bool(False, help="run the notebook's code cells when its lab has no store "
                   "beside it, even if the notebook is not trusted (signed by you): it "
                   "runs that code here").tag(config=True)

    def _file_extension_default(self) -> str:
        return ".md"

    def from_notebook_node(self, nb: Any, resources: dict[str, Any] | None = None,
                           **kw: Any) -> tuple[str, dict[str, Any]]:
        nb_copy, resources = super().from_notebook_node(nb, resources, **kw)
        if self.detail not in DETAILS:
            raise ValueError(f"BlogExporter.detail={self.detail!r}; allowed: "
                             f"{', '.join(DETAILS)}")
        directory = Path((resources.get("metadata") or {}).get("path") or ".")
        lab = open_notebook_lab(nb_copy, directory, execute=self.execute)
        # The pictures go where nbconvert puts a notebook's files ("<name>_files"), the
        # folder lab.export_blog("<name>.md") uses.
        stem = resources.get("unique_key") or "notebook"
        files_dir = resources.get("output_files_dir") or f"{stem}_files"
        document = build_document(lab, detail=self.detail, title=self.title or None,
                                  notebook=nb_copy)
        text, files = render_markdown(document, files_dir)
        resources.setdefault("outputs", {}).update(files)
        return text, resources
