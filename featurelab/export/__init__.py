"""Publishing a session: the blog draft (Markdown, HTML), the knowledge graph and a
standalone script. Everything here reads a Lab and changes nothing; the Lab's
`export_blog`, `graph`, `export_graph` and `export_script` call into it, importing it
only then (matplotlib and networkx stay out of the engine's import time).
"""

from featurelab.export.blog import build_document, export_blog
from featurelab.export.graph import build_graph, export_graph
from featurelab.export.script import export_script, script_source

__all__ = ["build_document", "build_graph", "export_blog", "export_graph", "export_script",
           "script_source"]
