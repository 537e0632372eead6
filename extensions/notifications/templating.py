"""Jinja2 templates for each notification type: subject, plain text (email and SMS), HTML (email).

Files in ``templates/``: ``<type>.subject.txt``, ``<type>.txt``, ``<type>.html``. Operators
override them by putting files of the same name in a directory listed first in
``NotificationsService.template_paths``. Undefined variables are errors (StrictUndefined):
a broken template must fail loudly — the sender dead-letters that notification with the
reason — rather than send a half-empty message.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jinja2 import (ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, TemplateError,
                    TemplateNotFound, select_autoescape)

DEFAULT_TEMPLATES = Path(__file__).with_name("templates")


class RenderError(Exception):
    """A template failed; the message says which and why."""


@dataclass
class Rendered:
    subject: str
    text: str
    html: str | None


class Renderer:
    def __init__(self, template_paths: list[str] | None = None, public_url: str = ""):
        loaders = [FileSystemLoader(p) for p in (template_paths or [])] + [FileSystemLoader(str(DEFAULT_TEMPLATES))]
        self.env = Environment(loader=ChoiceLoader(loaders), undefined=StrictUndefined,
                               autoescape=select_autoescape(enabled_extensions=("html",), default=False),
                               trim_blocks=True, lstrip_blocks=True)
        self.public_url = public_url.rstrip("/")

    def _render(self, name: str, context: dict, required: bool = True) -> str | None:
        try:
            return self.env.get_template(name).render(**context).strip()
        except TemplateNotFound:
            if required:
                raise RenderError(f"template {name} not found")
            return None
        except TemplateError as exc:
            raise RenderError(f"template {name} failed: {type(exc).__name__}: {exc}")
        except Exception as exc:  # a filter blowing up on odd data is a template problem too
            raise RenderError(f"template {name} failed: {type(exc).__name__}: {exc}")

    def render(self, type_: str, context: dict, html: bool = True) -> Rendered:
        context = {"public_url": self.public_url, **context}
        subject = self._render(f"{type_}.subject.txt", context)
        text = self._render(f"{type_}.txt", context)
        body_html = self._render(f"{type_}.html", context, required=False) if html else None
        return Rendered(subject=" ".join(subject.split()), text=text, html=body_html)
