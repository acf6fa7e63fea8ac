"""MkDocs hook: LaTeX maths in the docs and docstrings rendered to MathML when the site is built.

`$...$` (inline) and `$$...$$` (display) are converted by `latex2mathml`, so the pages need no
script or font from anywhere (browsers draw MathML natively) and the site works offline.
Code spans and fenced code are left alone.  Registered in `mkdocs.yml` under `hooks:`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as etree

import mkdocs.plugins
from latex2mathml.converter import convert
from markdown import Extension
from markdown.inlinepatterns import InlineProcessor
from markdown.preprocessors import Preprocessor

DISPLAY = re.compile(r"(?<!\\)\$\$(.+?)\$\$", re.S)
INLINE = r"(?<![\\$\w])\$(?=\S)([^$]+?)(?<=\S)\$(?![\w$])"  # may wrap lines, not cross a `$`


class _DisplayMath(Preprocessor):
    def run(self, lines):
        text = "\n".join(lines)

        def block(match: re.Match) -> str:
            html = convert(match.group(1).strip(), display="block")
            return "\n\n" + self.md.htmlStash.store(html) + "\n\n"

        return DISPLAY.sub(block, text).split("\n")


class _InlineMath(InlineProcessor):
    def handleMatch(self, match, data):
        return self.md.htmlStash.store(convert(match.group(1))), match.start(0), match.end(0)


class MathML(Extension):
    def extendMarkdown(self, md):
        # after fenced code (25) has stashed code blocks; inline: after code spans (190), before escapes (180)
        md.preprocessors.register(_DisplayMath(md), "spikede_display_math", 20)
        md.inlinePatterns.register(_InlineMath(INLINE, md), "spikede_inline_math", 185)


@mkdocs.plugins.event_priority(100)  # before mkdocstrings reads the Markdown extensions
def on_config(config):
    config.markdown_extensions.append(MathML())
    return config
