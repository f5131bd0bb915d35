"""The layout keeps its promises: platforms live in their plugins, not in core or the intake.

A platform's name may appear in core only where the data model itself names it: enum members
(``core/enums.py``), entity columns that carry a platform's id (the customer's Stripe id),
migrations and demo data. Comments and docstrings do not count; code and string literals do.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = re.compile(r"stripe|shopify|woocommerce", re.IGNORECASE)
ALLOWED_FILES = {"core/enums.py", "core/demo.py"}
ALLOWED_NAMES = {"stripe_customer_id", "customer.stripeCustomerId"}  # the column and its inputs


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def platform_mentions(source: str) -> Iterator[tuple[int, str]]:
    """Each identifier or string literal of ``source`` (docstrings aside) naming a platform."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    for node in ast.walk(tree):
        words: list[str] = []
        if isinstance(node, ast.Name):
            words = [node.id]
        elif isinstance(node, ast.Attribute):
            words = [node.attr]
        elif isinstance(node, ast.arg) or (isinstance(node, ast.keyword) and node.arg):
            words = [node.arg]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            words = [node.name]
        elif isinstance(node, ast.alias):
            words = [node.name, node.asname or ""]
        elif isinstance(node, ast.ImportFrom):
            words = [node.module or ""]
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            words = [node.value]
        for word in words:
            if PLATFORM.search(word) and word not in ALLOWED_NAMES:
                yield getattr(node, "lineno", 0), word


def checked_files() -> list[Path]:
    files = sorted((ROOT / "webhooks").rglob("*.py"))
    for path in sorted((ROOT / "core").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative not in ALLOWED_FILES and not relative.startswith("core/migrations/"):
            files.append(path)
    return files


def test_no_platform_is_named_in_core_or_the_webhook_intake() -> None:
    mentions = [
        f"{path.relative_to(ROOT)}:{line}: {word[:60]!r}"
        for path in checked_files()
        for line, word in platform_mentions(path.read_text())
    ]
    assert not mentions, "\n".join(mentions)


@pytest.mark.parametrize(
    "source",
    [
        "provider = PaymentProviderName.STRIPE\n",
        "def refund_through_stripe(): pass\n",
        "from plugins.shopify import plugin\n",
        'PATH = "/webhooks/woocommerce"\n',
        "def f(*, shopify_domain): pass\n",
    ],
)
def test_the_check_finds_a_platform_in_code(source: str) -> None:
    assert list(platform_mentions(source))


def test_the_check_leaves_comments_docstrings_and_the_customer_column_alone() -> None:
    source = '"""Stripe docs."""\n# Shopify\ndef f(customer):\n    """WooCommerce."""\n'
    source += "    return customer.stripe_customer_id\n"
    assert not list(platform_mentions(source))
