"""``.. module-header:: _loop``: a private module's docstring, verbatim.

The design of each concurrency module is written at the top of its source file (its
glossary, thread rules, races and rejected alternatives). This directive shows that
text as it is in ``src/sysletloop/<name>.py``, read without importing the module, so
the design page can never disagree with the code it describes.
"""

from __future__ import annotations

import ast
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

SOURCE = Path(__file__).resolve().parents[2] / "src" / "sysletloop"


class ModuleHeader(SphinxDirective):
    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        path = SOURCE / f"{name.replace('.', '/')}.py"
        if not path.is_file():
            raise self.error(f"module-header: no such module file {path}")
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        if not docstring:
            raise self.error(f"module-header: {path} has no module docstring")
        self.env.note_dependency(str(path))
        title = nodes.paragraph()
        title += nodes.strong(text=f"src/sysletloop/{name}.py")
        block = nodes.literal_block(docstring, docstring)
        block["language"] = "text"
        return [title, block]


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("module-header", ModuleHeader)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
