"""Base models: a small catalog of local Hugging Face directories (``clinitune models``); the model
registry of fine-tuned versions is ``clinitune.registry``.

* ``resolve_model(ref)``: a registered name, the embedded default or a directory -> local path.
* ``import_model(source, name)``: register a local directory or fetch a URI into the cache.
* ``list_models()``: what is registered, with architecture and chat-template status.
* ``create_tiny_model(dir)``: a random-init tiny Llama and tokenizer (tests, smoke runs).

Nothing here touches a model hub: every model is a local directory.
"""

from __future__ import annotations

from clinitune._lazy import lazy_getattr

_EXPORTS = {
    "resolve_model": "clinitune.models.catalog",
    "import_model": "clinitune.models.catalog",
    "list_models": "clinitune.models.catalog",
    "ModelEntry": "clinitune.models.catalog",
    "clinitune_home": "clinitune.models.catalog",
    "DEFAULT_MODEL": "clinitune.models.catalog",
    "create_tiny_model": "clinitune.models.tiny",
    "convert_gguf": "clinitune.models.gguf",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
