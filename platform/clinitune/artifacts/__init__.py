"""What crosses a stage boundary, defined once: every stage writes and reads it through here.

* :mod:`~clinitune.artifacts.publish`: ``publish_whole`` (stage beside, swap in whole, crash-safe),
  the only way a directory or file output is published;
* :mod:`~clinitune.artifacts.curated`: the curated dataset (layout, manifest, lineage);
* :mod:`~clinitune.artifacts.tokenized`: the tokenised training dataset;
* :mod:`~clinitune.artifacts.model`: the model artifact (descriptor, layout, references, loading,
  merging an adapter into its base);
* :mod:`~clinitune.artifacts.knowledge_base`: where knowledge bases live.

This package sits on the lowest floor: it imports only ``clinitune.errors``, ``clinitune.schema``
and (lazily) the base-model cache, never a stage.
"""
