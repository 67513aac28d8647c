"""Clinitune: clinical notes in, a safely fine-tuned, evaluated and served domain LLM out."""

__version__ = "0.1.0"
