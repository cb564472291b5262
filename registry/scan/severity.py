"""Severity of an advisory (pure): from a CVSS v3/v4 vector (base score by the ``cvss``
package, rated per FIRST's scale), else the record's own label, else ``UNDEFINED``."""

from __future__ import annotations

__all__ = ["from_label", "from_score", "from_vector", "rate"]

_LABELS = {
    "critical": "CRITICAL",
    "high": "HIGH",
    "important": "HIGH",
    "moderate": "MEDIUM",
    "medium": "MEDIUM",
    "low": "LOW",
    "negligible": "INFORMATIONAL",
    "informational": "INFORMATIONAL",
    "none": "INFORMATIONAL",
    "info": "INFORMATIONAL",
}


def from_score(score: float) -> str:
    """FIRST's qualitative rating: 0 None, 0.1-3.9 Low, 4-6.9 Medium, 7-8.9 High, 9-10 Critical."""
    if score >= 9.0:
        return "CRITICAL"
    if score >= 7.0:
        return "HIGH"
    if score >= 4.0:
        return "MEDIUM"
    if score > 0.0:
        return "LOW"
    return "INFORMATIONAL"


def from_vector(vector: str) -> float | None:
    """The base score of a CVSS v3.x or v4.0 vector, or None when it does not parse."""
    import cvss

    try:
        if vector.startswith("CVSS:4.0/"):
            return float(cvss.CVSS4(vector).base_score)
        if vector.startswith("CVSS:3."):
            return float(cvss.CVSS3(vector).scores()[0])
    except (cvss.CVSSError, ValueError, KeyError, IndexError):
        return None
    return None


def from_label(label: str) -> str:
    return _LABELS.get(label.strip().lower(), "UNDEFINED") if label else "UNDEFINED"


def rate(vectors: list[str], label: str = "") -> tuple[str, float | None, str]:
    """(severity, score, vector): the newest CVSS version that parses wins, then ``label``."""
    for prefix in ("CVSS:4.0/", "CVSS:3.1/", "CVSS:3.0/"):
        for v in vectors:
            if v.startswith(prefix):
                score = from_vector(v)
                if score is not None:
                    return from_score(score), score, v
    return from_label(label), None, ""
