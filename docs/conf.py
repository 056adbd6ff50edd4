"""Sphinx configuration of the evolino documentation.

Build: ``pip install -e ".[docs]" && sphinx-build -W -n -b html docs docs/_build/html``.

The API reference (``docs/api/``) is written by :func:`write_api_pages` below from the
``__all__`` lists of the package, so every public name gets a page without a hand-kept
list; each object is documented once, at its home (the module that defines it), and every
module that re-exports it links there.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # document this source tree, not an installed copy

import evolino  # noqa: E402

project = "evolino"
author = "the evolino developers"
copyright = "2026, the evolino developers"  # noqa: A001 - Sphinx's name
release = evolino.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "README.md"]
templates_path = ["_templates"]
html_theme = "alabaster"
html_static_path = ["_static"]
html_title = f"evolino {release}"

myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

autosummary_generate = True
autosummary_ignore_module_all = False
autodoc_typehints = "none"  # the numpydoc docstrings carry the types (with shapes); see below
autodoc_member_order = "bysource"
numpydoc_show_class_members = False  # members are documented on the class page by autodoc
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Nitpicky mode (-n) checks every cross-reference *written in a docstring or page*
# (``:class:`...```, ``:func:`...```). Types named in numpydoc "Parameters" sections are
# plain text (numpydoc_xref_param_type = False) and signatures carry no annotations, because
# the builds run without network access, so intersphinx cannot resolve numpy, scikit-learn,
# gymnasium or Ray names; the references below to those libraries are accepted unresolved.
nitpick_ignore_regex = [
    ("py:.*", r"(numpy|np|sklearn|gymnasium|ray|cma|scipy|pandas|tqdm|threadpoolctl)(\..*)?"),
]
# One reference that names a method shared by several classes (every evaluator's close()).
nitpick_ignore = [("py:meth", "close")]

# ------------------------------------------------------------------ the API reference pages

INTERNAL = ["evolino._io", "evolino._data"]  # private, but named by public docstrings


def _public_modules():
    names = ["evolino", *INTERNAL]
    for info in pkgutil.walk_packages(evolino.__path__, "evolino."):
        if not any(part.startswith("_") for part in info.name.split(".")) and info.name != "evolino.cli":
            names.append(info.name)
    return sorted(names)


def _is_private(modname):
    return any(part.startswith("_") for part in modname.split("."))


def _homes(modules):
    """``{(listing module, name): home module}``: where each public object is documented."""
    listed = {}
    for modname, mod in modules.items():
        for name in getattr(mod, "__all__", []):
            if name != "__version__":
                listed.setdefault(name, []).append(modname)
    homes = {}
    for modname, mod in modules.items():
        for name in getattr(mod, "__all__", []):
            if name == "__version__":
                continue
            obj = getattr(mod, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                home = obj.__module__
                if _is_private(home) or home not in modules:
                    home = min((m for m in modules if name in getattr(modules[m], "__all__", [])
                                and getattr(modules[m], name) is obj), key=len)
            else:  # a constant: the deepest module listing the same object
                home = max((m for m in listed[name] if getattr(modules[m], name) is obj), key=len)
            homes[modname, name] = home
    return homes


def write_api_pages():
    modules = {name: importlib.import_module(name) for name in _public_modules()}
    homes = _homes(modules)
    out = os.path.join(HERE, "api")
    os.makedirs(out, exist_ok=True)
    pages = []
    for modname, mod in modules.items():
        own = sorted({f"{home}.{n}" for (m, n), home in homes.items() if home == modname},
                     key=lambda full: list(getattr(mod, "__all__", [])).index(full.rsplit(".", 1)[1])
                     if full.rsplit(".", 1)[1] in getattr(mod, "__all__", []) else 10**6)
        reexported = [f"{homes[modname, n]}.{n}" for n in getattr(mod, "__all__", [])
                      if n != "__version__" and homes[modname, n] != modname]
        lines = [f"{modname}", "=" * len(modname), "", f".. automodule:: {modname}", "   :no-members:", ""]
        if own:
            lines += ["Defined here", "------------", "", ".. autosummary::", "   :toctree: generated", "",
                      *(f"   {full.rsplit('.', 1)[1]}" for full in own), ""]
        if reexported:  # full paths: leave the module's context so autosummary takes them as given
            lines += ["Re-exported here", "----------------", "", ".. currentmodule:: None", "", ".. autosummary::", "",
                      *(f"   {full}" for full in reexported), ""]
        if modname == "evolino":
            lines += [".. data:: evolino.__version__", "", "   The version of this release, a string such as "
                      f"``\"{release}\"`` (also ``evolino --version``).", ""]
        text = "\n".join(lines)
        path = os.path.join(out, f"{modname}.rst")
        if not os.path.exists(path) or open(path).read() != text:  # unchanged pages keep their mtime
            with open(path, "w") as f:
                f.write(text)
        pages.append(modname)
    index = ["API reference", "=============", "",
             "Every public name of evolino (the ``__all__`` of each module), documented once at the module",
             "that defines it; packages list what they re-export. Pages are generated from the docstrings.", "",
             ".. toctree::", "   :maxdepth: 1", "", *(f"   {p}" for p in pages), ""]
    text = "\n".join(index)
    path = os.path.join(out, "index.rst")
    if not os.path.exists(path) or open(path).read() != text:
        with open(path, "w") as f:
            f.write(text)


write_api_pages()


def _resolve_short(app, env, node, contnode):
    """Resolve a Python reference that names a documented object by a shorter path.

    Docstrings say ``evolino.Evolino`` (the public path) or ``ESP`` / ``LSTMSpec.init`` (the
    names a reader sees); the object is documented once, at its home
    (``evolino.trainer.Evolino``). A reference is resolved when exactly one documented
    object's full name ends with it; anything else stays a nitpicky warning.
    """
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    objects = env.get_domain("py").objects
    candidates = {name for name in objects if name == target or name.endswith("." + target)}
    if not candidates:
        home = _home_of(target)
        if home in objects:
            candidates = {home}
        elif home and home.rpartition(".")[0] in objects and objects[home.rpartition(".")[0]].objtype == "class":
            candidates = {home.rpartition(".")[0]}  # an attribute listed in its class's Attributes section
    if not candidates:  # documented under another public path: same object, same last name
        obj = _import(target)
        last = target.rpartition(".")[2]
        candidates = {n for n in objects if obj is not None and n.endswith("." + last) and _import(n) is obj}
    if len(candidates) != 1:
        return None
    full = candidates.pop()
    from sphinx.util.nodes import make_refnode

    return make_refnode(app.builder, node["refdoc"], objects[full].docname, objects[full].node_id, contnode, full)


def _import(path):
    """The object at a dotted path, or None."""
    module, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError):
        return None


def _home_of(path):
    """``evolino.Evolino.fit`` -> ``evolino.trainer.Evolino.fit`` (the module that defines it), or None."""
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        rest = parts[i:]
        break
    else:
        return None
    owner = None
    for k, attr in enumerate(rest):
        if not hasattr(obj, attr):
            return None
        if inspect.isclass(obj) or inspect.isfunction(obj):
            owner = (obj, rest[k:])
        obj = getattr(obj, attr)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return f"{obj.__module__}.{obj.__qualname__}"
    if owner is not None:  # a method or attribute: its class's home plus the remaining names
        return ".".join([owner[0].__module__, owner[0].__qualname__, *owner[1]])
    return None


def _skip_foreign(app, what, name, obj, skip, options):
    """Members a class inherits from scikit-learn (``set_params``, ``set_fit_request``, ...) are not ours."""
    func = getattr(obj, "__func__", obj)
    if callable(func) and not inspect.isclass(func):
        module = getattr(func, "__module__", None) or ""
        if not module.startswith("evolino"):
            return True
    return None


def setup(app):
    app.connect("missing-reference", _resolve_short)
    app.connect("autodoc-skip-member", _skip_foreign)
